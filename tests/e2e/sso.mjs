// Signing in through a company's identity provider and a social provider, in real headless
// Chromium with JavaScript disabled, against real oidc-provider instances. Run by
// tests/api/sso_browser.rs:
//
//   a member's email → the company's IdP login page → back signed in; a new person created on
//   first sign-in; the admin's break-glass password sign-in and the /admin/sso page (policy:
//   SSO required except admins, social sign-in on); the member's password refused; an invited
//   person's social sign-in ("Continue with …").
//
// Environment: E2E_BASE_URL, E2E_IDP (company IdP issuer), E2E_SOCIAL_IDP, E2E_SOCIAL_LABEL,
// E2E_ADMIN_EMAIL, E2E_ADMIN_PASSWORD, E2E_MEMBER_EMAIL, E2E_MEMBER_PASSWORD, E2E_JIT_EMAIL,
// E2E_INVITED_EMAIL, E2E_ARTIFACTS_DIR, E2E_CHROMIUM.

import { env, BASE, check, equal, newPage, screenshot, checkPage, submit, goto, pathOf, alertText, runFlow } from './harness.mjs';

const IDP = env('E2E_IDP');
const SOCIAL_IDP = env('E2E_SOCIAL_IDP');
const SOCIAL_LABEL = env('E2E_SOCIAL_LABEL');
const ADMIN_EMAIL = env('E2E_ADMIN_EMAIL');
const ADMIN_PASSWORD = env('E2E_ADMIN_PASSWORD');
const MEMBER_EMAIL = env('E2E_MEMBER_EMAIL');
const MEMBER_PASSWORD = env('E2E_MEMBER_PASSWORD');
const JIT_EMAIL = env('E2E_JIT_EMAIL');
const INVITED_EMAIL = env('E2E_INVITED_EMAIL');

const options = { javaScriptEnabled: false, viewport: { width: 1280, height: 900 } };

/** At the IdP's login page (its own origin), signs in as the prefilled account. */
async function atIdp(page, issuer, name) {
  await page.waitForURL((u) => u.href.startsWith(issuer));
  await screenshot(page, `${name}-idp`);
  equal(await page.locator('input[name="login"]').inputValue() !== undefined, true, 'IdP form');
  await Promise.all([
    page.waitForURL((u) => u.href.startsWith(BASE) && !u.pathname.startsWith('/sso/')),
    page.getByRole('button', { name: 'Sign in at IdP' }).click(),
  ]);
}

/** Email step on the shared login page, on to the company's IdP and back. */
async function ssoSignIn(browser, email, name) {
  const context = await browser.newContext(options);
  const page = await newPage(context, name);
  const res = await goto(page, `${BASE}/login`);
  await checkPage(page, res, '/login');
  await page.getByLabel('Email').fill(email);
  await page.getByRole('button', { name: 'Continue' }).click();
  await atIdp(page, IDP, name);
  equal(pathOf(page), '/account', `${name} lands on /account`);
  check((await page.content()).includes(email), `${name}: the account page shows ${email}`);
  await screenshot(page, `${name}-signed-in`);
  return context;
}

/** The break-glass way: the password form whatever the domain. */
async function passwordSignIn(page, email, password) {
  await goto(page, `${BASE}/login`);
  await submit(page, page.getByRole('link', { name: 'Sign in with a password instead' }));
  await page.getByLabel('Email').fill(email);
  await submit(page, page.getByRole('button', { name: 'Continue' }));
  await page.getByLabel('Password').fill(password);
  return submit(page, page.getByRole('button', { name: 'Sign in' }));
}

async function run(browser) {
  // ---- An existing member, then a new person created on first sign-in. -------------------
  await ssoSignIn(browser, MEMBER_EMAIL, 'member');
  await ssoSignIn(browser, JIT_EMAIL, 'jit');

  // ---- The admin's break-glass password, and the company's sign-in page. -----------------
  const adminContext = await browser.newContext(options);
  const admin = await newPage(adminContext, 'admin');
  await passwordSignIn(admin, ADMIN_EMAIL, ADMIN_PASSWORD);
  equal(pathOf(admin), '/admin', 'the admin lands on /admin');
  let res = await submit(admin, admin.getByRole('link', { name: 'Sign-in' }));
  await checkPage(admin, res, '/admin/sso');
  check((await admin.locator('#callback-url').innerText()).endsWith('/sso/callback'), 'the callback URL is shown');
  await admin.getByLabel('Require sign-in through our identity provider').check();
  await admin.getByLabel('Except administrators').check();
  await admin.getByLabel('Allow social sign-in for our people').check();
  res = await submit(admin, admin.getByRole('button', { name: 'Save policy' }));
  await checkPage(admin, res, '/admin/sso saved');
  check((await admin.content()).includes('Sign-in policy saved.'), 'policy saved');
  await screenshot(admin, 'admin-sso');

  // ---- SSO required: the member's password is refused; the admin's still works. ----------
  const memberContext = await browser.newContext(options);
  const member = await newPage(memberContext, 'member-password');
  res = await passwordSignIn(member, MEMBER_EMAIL, MEMBER_PASSWORD);
  equal(res.status(), 403, 'the member password is refused');
  check((await alertText(member)).includes('identity provider'), 'the page says to use the identity provider');
  await screenshot(member, 'member-password-refused');
  const again = await newPage(await browser.newContext(options), 'admin-again');
  await passwordSignIn(again, ADMIN_EMAIL, ADMIN_PASSWORD);
  equal(pathOf(again), '/admin', 'break-glass: the admin still signs in with the password');

  // ---- Social sign-in of an invited person. ----------------------------------------------
  const socialContext = await browser.newContext(options);
  const social = await newPage(socialContext, 'social');
  res = await goto(social, `${BASE}/login`);
  await checkPage(social, res, '/login with social');
  await social.getByRole('link', { name: `Continue with ${SOCIAL_LABEL}` }).click();
  await social.waitForURL((u) => u.href.startsWith(SOCIAL_IDP));
  await social.locator('input[name="login"]').fill(INVITED_EMAIL);
  await Promise.all([
    social.waitForURL((u) => u.href.startsWith(BASE) && !u.pathname.startsWith('/sso/')),
    social.getByRole('button', { name: 'Sign in at IdP' }).click(),
  ]);
  equal(pathOf(social), '/account', 'the invited person lands on /account');
  check((await social.content()).includes(INVITED_EMAIL), 'signed in as the invited person');
  await screenshot(social, 'social-signed-in');
  console.log('e2e sso passed');
}

runFlow(run);
