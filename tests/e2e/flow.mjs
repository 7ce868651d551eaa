// End-to-end test of the tenantd pages in real headless Chromium, with JavaScript disabled
// (the pages must work without it). Run by tests/api/pages.rs against a real tenantd:
//
//   sign in on /login (email, then password) → invite someone on /admin → accept on /invite
//   (the link read from the real mail) → sign out → /forgot → /reset (link from the mail)
//   → sign in with the new password.
//
// Every step is screenshotted into E2E_ARTIFACTS_DIR. Every page is checked for the CSP
// header, valid and accessible HTML (html-validate), no inline script or style, and the
// stylesheet applied; any CSP violation reported by the browser, page error or failed
// sub-resource fails the run. Exit code 0 means every check passed.
//
// Environment:
//   E2E_BASE_URL        where tenantd listens, e.g. http://127.0.0.1:40123 (required)
//   E2E_PUBLIC_URL      the public URL mail links must start with (optional)
//   E2E_MAIL_DIR        folder where mail lands: an aiosmtpd maildir or tenantd's outbox (required)
//   E2E_ADMIN_EMAIL     an active admin of the company (required)
//   E2E_ADMIN_PASSWORD  their password (required)
//   E2E_COMPANY         the company's name, as shown on the pages (required)
//   E2E_INVITEE         the address to invite (required; must not exist yet)
//   E2E_ARTIFACTS_DIR   screenshots go here (default target/e2e-artifacts)
//   E2E_CHROMIUM        the browser (default /usr/bin/chromium)

import {
  env,
  BASE,
  ARTIFACTS,
  check,
  equal,
  mailFiles,
  waitForLink,
  problems,
  shot,
  newPage,
  screenshot,
  checkPage,
  submit,
  goto,
  pathOf,
  alertText,
  runFlow,
} from './harness.mjs';

const ADMIN_EMAIL = env('E2E_ADMIN_EMAIL');
const ADMIN_PASSWORD = env('E2E_ADMIN_PASSWORD');
const COMPANY = env('E2E_COMPANY');
const INVITEE = env('E2E_INVITEE').toLowerCase();
const INVITEE_NAME = 'Mia Example';
const FIRST_PASSWORD = 'copper-lantern-meadow-31';
const NEW_PASSWORD = 'violet-harbor-engine-58';

async function run(browser) {
  const contextOptions = { javaScriptEnabled: false, viewport: { width: 1280, height: 860 } };

  // ---- 1. The admin signs in: email first, then password. --------------------------------
  const adminContext = await browser.newContext(contextOptions);
  const admin = await newPage(adminContext, 'admin');
  let res = await goto(admin, `${BASE}/admin`);
  equal(pathOf(admin), '/login?next=/admin', 'signed-out /admin goes to /login');
  await checkPage(admin, res, '/login');
  await screenshot(admin, 'login-email');

  const cookies = await adminContext.cookies();
  const csrf = cookies.find((c) => c.name === 'tenantd_csrf');
  check(csrf && csrf.httpOnly && csrf.sameSite === 'Strict', 'the CSRF cookie is HttpOnly and SameSite=Strict');

  await admin.getByLabel('Email').fill(ADMIN_EMAIL);
  res = await submit(admin, admin.getByRole('button', { name: 'Continue' }));
  equal(res.status(), 200, 'email step');
  await checkPage(admin, res, 'password step');
  equal(await admin.getByLabel('Email').inputValue(), ADMIN_EMAIL, 'email kept on the password step');
  await screenshot(admin, 'login-password');

  await admin.getByLabel('Password').fill('not-the-right-password');
  res = await submit(admin, admin.getByRole('button', { name: 'Sign in' }));
  equal(res.status(), 401, 'wrong password');
  equal(await alertText(admin), 'The email or password is not correct.', 'wrong password message');
  equal(await admin.getByLabel('Email').inputValue(), ADMIN_EMAIL, 'email kept after a wrong password');
  await screenshot(admin, 'login-wrong-password');

  await admin.getByLabel('Password').fill(ADMIN_PASSWORD);
  res = await submit(admin, admin.getByRole('button', { name: 'Sign in' }));
  equal(pathOf(admin), '/admin', 'the admin lands on /admin (the allowlisted next)');
  equal(res.status(), 200, '/admin');
  await checkPage(admin, res, '/admin');
  check((await admin.locator('nav .company').innerText()).includes(COMPANY), 'company name in the navigation');
  const session = (await adminContext.cookies()).find((c) => c.name === 'tenantd_session');
  check(session && session.httpOnly, 'the session cookie is HttpOnly');
  const csrfAfter = (await adminContext.cookies()).find((c) => c.name === 'tenantd_csrf');
  check(csrfAfter.value !== csrf.value, 'signing in replaced the CSRF token');
  await screenshot(admin, 'admin');

  // ---- 2. The admin invites someone. ------------------------------------------------------
  const inviteForm = admin.locator('form[action="/admin/invite"]');
  await inviteForm.getByLabel('Email').fill(ADMIN_EMAIL);
  res = await submit(admin, inviteForm.getByRole('button', { name: 'Send invitation' }));
  equal(res.status(), 409, 'inviting an existing user');
  equal(await alertText(admin), 'This person is already a user of your company.', 'existing user message');
  equal(await inviteForm.getByLabel('Email').inputValue(), ADMIN_EMAIL, 'typed email kept');
  await screenshot(admin, 'admin-invite-refused');

  const seen = new Set(mailFiles());
  await inviteForm.getByLabel('Email').fill(INVITEE);
  await inviteForm.getByLabel('Name (optional)').fill(INVITEE_NAME);
  await inviteForm.getByLabel('Role').selectOption('member');
  res = await submit(admin, inviteForm.getByRole('button', { name: 'Send invitation' }));
  equal(pathOf(admin), '/admin?done=invited', 'redirect after inviting (no user data in the URL)');
  await checkPage(admin, res, '/admin after invite');
  equal((await admin.locator('[role="status"]').innerText()).trim(), 'Invitation sent.', 'flash message');
  const row = admin.locator('tbody tr', { hasText: INVITEE });
  equal(await row.count(), 1, 'the invitee is listed');
  check((await row.innerText()).includes('Invited'), 'the invitee is shown as invited');
  await screenshot(admin, 'admin-invited');

  // ---- 3. The invitee accepts, in their own browser, from the link in the mail. ----------
  const inviteLink = await waitForLink(INVITEE, 'invite', seen);
  const mia = await browser.newContext(contextOptions);
  const invitee = await newPage(mia, 'invitee');
  res = await goto(invitee, inviteLink);
  equal(res.status(), 200, 'invite page');
  await checkPage(invitee, res, '/invite');
  equal((await invitee.locator('h1').innerText()).trim(), `Join ${COMPANY}`, 'invite heading');
  equal(await invitee.getByLabel('Your email').inputValue(), INVITEE, 'the invited address is shown');
  equal(await invitee.getByLabel('Your name').inputValue(), INVITEE_NAME, 'the name given by the admin is offered');
  await screenshot(invitee, 'invite');

  await invitee.getByLabel('Choose a password').fill(FIRST_PASSWORD);
  await invitee.getByLabel('Repeat the password').fill(`${FIRST_PASSWORD}x`);
  res = await submit(invitee, invitee.getByRole('button', { name: 'Accept and sign in' }));
  equal(res.status(), 400, 'different passwords');
  check((await alertText(invitee)).includes('not the same'), 'different passwords message');
  await screenshot(invitee, 'invite-passwords-differ');

  await invitee.getByLabel('Choose a password').fill(FIRST_PASSWORD);
  await invitee.getByLabel('Repeat the password').fill(FIRST_PASSWORD);
  res = await submit(invitee, invitee.getByRole('button', { name: 'Accept and sign in' }));
  equal(pathOf(invitee), '/account', 'a member lands on /account');
  await checkPage(invitee, res, '/account');
  const facts = await invitee.locator('dl.facts').innerText();
  for (const fact of [INVITEE_NAME, INVITEE, 'Member', COMPANY]) {
    check(facts.includes(fact), `/account shows ${fact}`);
  }
  await screenshot(invitee, 'account');

  // A member may not open the admin page.
  res = await goto(invitee, `${BASE}/admin`);
  equal(res.status(), 403, 'a member on /admin');
  await checkPage(invitee, res, '/admin as a member');
  await screenshot(invitee, 'admin-forbidden');

  // The admin sees the invitation accepted.
  res = await goto(admin, `${BASE}/admin`);
  check((await admin.locator('tbody tr', { hasText: INVITEE }).innerText()).includes('Active'), 'the invitee is now active');
  await screenshot(admin, 'admin-after-accept');

  // ---- 4. The invitee signs out, forgets the password, and resets it. --------------------
  res = await goto(invitee, `${BASE}/account`);
  res = await submit(invitee, invitee.locator('main form[action="/logout"] button'));
  equal(pathOf(invitee), '/login?done=signed_out', 'signed out');
  equal((await invitee.locator('[role="status"]').innerText()).trim(), 'You are signed out.', 'signed-out notice');
  await screenshot(invitee, 'signed-out');

  res = await submit(invitee, invitee.getByRole('link', { name: 'Forgot your password?' }));
  await checkPage(invitee, res, '/forgot');
  await screenshot(invitee, 'forgot');

  const seenBeforeReset = new Set(mailFiles());
  await invitee.getByLabel('Email').fill(INVITEE);
  res = await submit(invitee, invitee.getByRole('button', { name: 'Send the link' }));
  equal(res.status(), 200, 'forgot');
  await checkPage(invitee, res, '/forgot sent');
  equal((await invitee.locator('h1').innerText()).trim(), 'Check your email', 'forgot confirmation');
  await screenshot(invitee, 'forgot-sent');

  const resetLink = await waitForLink(INVITEE, 'reset', seenBeforeReset);
  res = await goto(invitee, resetLink);
  equal(res.status(), 200, 'reset page');
  await checkPage(invitee, res, '/reset');
  equal(await invitee.getByLabel('Account').inputValue(), INVITEE, 'the reset page names the account');
  await screenshot(invitee, 'reset');

  await invitee.getByLabel('New password', { exact: true }).fill('short');
  await invitee.getByLabel('Repeat the new password').fill('short');
  // Browsers check minlength themselves; the server's own message is what must be clear, so
  // send the form past the browser's check.
  await invitee.locator('form[action="/reset"]').evaluate((f) => f.setAttribute('novalidate', ''));
  res = await submit(invitee, invitee.getByRole('button', { name: 'Change the password' }));
  equal(res.status(), 400, 'a too short password');
  equal(await alertText(invitee), 'Choose a password of at least 15 characters.', 'too short message');
  await screenshot(invitee, 'reset-too-short');

  await invitee.getByLabel('New password', { exact: true }).fill(NEW_PASSWORD);
  await invitee.getByLabel('Repeat the new password').fill(NEW_PASSWORD);
  res = await submit(invitee, invitee.getByRole('button', { name: 'Change the password' }));
  equal(pathOf(invitee), '/login?done=reset', 'after the reset');
  equal(
    (await invitee.locator('[role="status"]').innerText()).trim(),
    'Your password was changed. Sign in with the new one.',
    'reset notice',
  );
  await screenshot(invitee, 'reset-done');

  res = await goto(invitee, resetLink);
  equal(res.status(), 400, 'a used reset link');
  equal((await invitee.locator('h1').innerText()).trim(), 'This link does not work', 'used link page');
  await screenshot(invitee, 'reset-link-used');

  // ---- 5. The old password no longer works; the new one does. ----------------------------
  res = await goto(invitee, `${BASE}/login`);
  await invitee.getByLabel('Email').fill(INVITEE);
  res = await submit(invitee, invitee.getByRole('button', { name: 'Continue' }));
  await invitee.getByLabel('Password').fill(FIRST_PASSWORD);
  res = await submit(invitee, invitee.getByRole('button', { name: 'Sign in' }));
  equal(res.status(), 401, 'the old password');
  await screenshot(invitee, 'login-old-password');

  await invitee.getByLabel('Password').fill(NEW_PASSWORD);
  res = await submit(invitee, invitee.getByRole('button', { name: 'Sign in' }));
  equal(pathOf(invitee), '/account', 'signed in with the new password');
  await checkPage(invitee, res, '/account after reset');
  check((await invitee.locator('dl.facts').innerText()).includes(INVITEE), 'signed in as the invitee');
  await screenshot(invitee, 'login-new-password');

  check(problems.length === 0, `browser problems:\n  ${problems.join('\n  ')}`);
  console.log(`e2e flow passed (${shot} screenshots in ${ARTIFACTS})`);
}

runFlow(run);
