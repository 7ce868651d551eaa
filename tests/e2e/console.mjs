// End-to-end test of the admin console in real headless Chromium, with JavaScript disabled.
// Run by tests/api/console_browser.rs against a real tenantd:
//
//   bulk invite (paste, preview with per-line errors, send) → search and filter the people
//   → export the list as CSV → a person's page: rename, change the email → the person
//   confirms from the link in the mail → the audit log filtered by action → the account page.
//
// Every page is checked as in flow.mjs: the CSP header, valid and accessible HTML
// (html-validate), no inline script or style, the stylesheet applied, one h1.
//
// Environment: E2E_BASE_URL, E2E_PUBLIC_URL, E2E_MAIL_DIR, E2E_ADMIN_EMAIL,
// E2E_ADMIN_PASSWORD, E2E_COMPANY, E2E_DOMAIN (the company's domain), E2E_ARTIFACTS_DIR,
// E2E_CHROMIUM — as flow.mjs.

import fs from 'node:fs';
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
  runFlow,
} from './harness.mjs';

const ADMIN_EMAIL = env('E2E_ADMIN_EMAIL');
const ADMIN_PASSWORD = env('E2E_ADMIN_PASSWORD');
const COMPANY = env('E2E_COMPANY');
const DOMAIN = env('E2E_DOMAIN');

async function run(browser) {
  const contextOptions = { javaScriptEnabled: false, viewport: { width: 1280, height: 900 }, acceptDownloads: true };
  const adminContext = await browser.newContext(contextOptions);
  const admin = await newPage(adminContext, 'admin');

  // ---- The admin signs in and lands on the people list. ----------------------------------
  let res = await goto(admin, `${BASE}/login?next=/admin`);
  await admin.getByLabel('Email').fill(ADMIN_EMAIL);
  res = await submit(admin, admin.getByRole('button', { name: 'Continue' }));
  await admin.getByLabel('Password').fill(ADMIN_PASSWORD);
  res = await submit(admin, admin.getByRole('button', { name: 'Sign in' }));
  equal(pathOf(admin), '/admin', 'the admin lands on /admin');
  await checkPage(admin, res, '/admin');

  // ---- Bulk invite: paste a CSV, see each line checked, then send. -----------------------
  res = await submit(admin, admin.getByRole('link', { name: 'Invite many from a CSV' }));
  await checkPage(admin, res, '/admin/bulk');
  const csv = [
    'email,name,role',
    `lee@${DOMAIN},Lee Larsen,member`,
    `max@${DOMAIN},Max Moreau,admin`,
    `nina@${DOMAIN},Nina Nagel,member`,
    'not-an-address,Broken,member',
    `lee@${DOMAIN},Lee again,member`,
  ].join('\n');
  await admin.getByLabel('Paste the list').fill(csv);
  await screenshot(admin, 'console-bulk-paste');
  res = await submit(admin, admin.getByRole('button', { name: 'Check the list' }));
  equal(res.status(), 200, 'bulk preview');
  await checkPage(admin, res, '/admin/bulk preview');
  const rows = admin.locator('tbody tr');
  equal(await rows.count(), 5, 'every line is shown');
  check((await rows.nth(3).innerText()).includes('Enter a valid email address.'), 'the bad address is named');
  check((await rows.nth(4).innerText()).includes('earlier in the same list'), 'the duplicate is named');
  await screenshot(admin, 'console-bulk-preview');
  const seenBeforeSend = new Set(mailFiles());
  res = await submit(admin, admin.getByRole('button', { name: 'Send 3 invitations' }));
  await checkPage(admin, res, '/admin/bulk/send');
  check((await admin.locator('[role="status"]').innerText()).includes('3 invitations sent'), 'sent notice');
  await screenshot(admin, 'console-bulk-sent');
  for (const who of ['lee', 'max', 'nina']) await waitForLink(`${who}@${DOMAIN}`, 'invite', seenBeforeSend);

  // ---- Search and filter the people list. ------------------------------------------------
  res = await goto(admin, `${BASE}/admin`);
  await admin.getByLabel('Search').fill('nag');
  res = await submit(admin, admin.getByRole('button', { name: 'Search' }));
  await checkPage(admin, res, '/admin search');
  equal(await admin.locator('tbody tr').count(), 1, 'one person matches "nag"');
  check((await admin.locator('tbody tr').innerText()).includes('Nina Nagel'), 'Nina is found');
  await admin.getByLabel('Search').fill('');
  await admin.getByLabel('Status').selectOption('invited');
  await admin.getByLabel('Sort').selectOption('name');
  res = await submit(admin, admin.getByRole('button', { name: 'Search' }));
  await checkPage(admin, res, '/admin filtered');
  const names = await admin.locator('tbody tr .who a').allInnerTexts();
  equal(JSON.stringify(names), JSON.stringify(['Lee Larsen', 'Max Moreau', 'Nina Nagel']), 'invited people by name');
  await screenshot(admin, 'console-people');

  // ---- Export: the CSV of the filtered list. ---------------------------------------------
  const [download] = await Promise.all([
    admin.waitForEvent('download'),
    admin.getByRole('link', { name: 'Export this list (CSV)' }).click(),
  ]);
  const exported = fs.readFileSync(await download.path(), 'utf8');
  check(exported.startsWith('id,email,name,role,status,created_at,last_login_at'), 'CSV header');
  equal(exported.trim().split('\n').length, 4, 'the export has the filtered people');
  check(!exported.includes(ADMIN_EMAIL), 'the export follows the filter');

  // ---- A person's page: details, rename, email change. -----------------------------------
  res = await submit(admin, admin.getByRole('link', { name: 'Lee Larsen' }));
  await checkPage(admin, res, 'person page');
  equal((await admin.locator('h1').innerText()).trim(), 'Lee Larsen', 'person heading');
  await screenshot(admin, 'console-person');
  await admin.getByLabel('Name', { exact: true }).fill('Lee Larsen-Kim');
  res = await submit(admin, admin.getByRole('button', { name: 'Save name' }));
  await checkPage(admin, res, 'person renamed');
  equal((await admin.locator('h1').innerText()).trim(), 'Lee Larsen-Kim', 'the new name');
  const seenBeforeChange = new Set(mailFiles());
  await admin.getByLabel('New email address').fill(`lee.kim@${DOMAIN}`);
  res = await submit(admin, admin.getByRole('button', { name: 'Change email' }));
  await checkPage(admin, res, 'email change requested');
  check((await admin.locator('[role="status"]').first().innerText()).includes('confirmation link'), 'change notice');
  check((await admin.locator('main').innerText()).includes(`lee.kim@${DOMAIN}`), 'the pending address is shown');
  await screenshot(admin, 'console-person-email-pending');

  // Lee opens the link from the mail, in their own browser, and confirms.
  const confirmLink = await waitForLink(`lee.kim@${DOMAIN}`, 'account/email/confirm', seenBeforeChange);
  const leeContext = await browser.newContext(contextOptions);
  const lee = await newPage(leeContext, 'lee');
  res = await goto(lee, confirmLink);
  await checkPage(lee, res, '/account/email/confirm');
  await screenshot(lee, 'console-email-confirm');
  res = await submit(lee, lee.getByRole('button', { name: `Use lee.kim@${DOMAIN}` }));
  equal(res.status(), 200, 'email confirmed');
  await checkPage(lee, res, 'email confirmed');
  equal((await lee.locator('h1').innerText()).trim(), 'Your email address was changed', 'confirmed heading');
  await screenshot(lee, 'console-email-confirmed');
  // Invited, so the invitation comes again, to the new address.
  await waitForLink(`lee.kim@${DOMAIN}`, 'invite', seenBeforeChange);

  res = await goto(admin, admin.url().split('?')[0]);
  check((await admin.locator('dl.facts').innerText()).includes(`lee.kim@${DOMAIN}`), 'the person page shows the new address');

  // ---- The audit log, filtered by action. ------------------------------------------------
  res = await submit(admin, admin.getByRole('link', { name: 'Audit log' }).first());
  await checkPage(admin, res, '/admin/audit');
  await admin.getByLabel('Action').selectOption('email.changed');
  res = await submit(admin, admin.getByRole('button', { name: 'Filter' }));
  await checkPage(admin, res, '/admin/audit filtered');
  equal(await admin.locator('tbody tr').count(), 1, 'one email change');
  check((await admin.locator('tbody tr').innerText()).includes('Email changed'), 'the entry');
  check((await admin.getByRole('link', { name: 'Export as CSV' }).getAttribute('href')).includes('format=csv'), 'CSV export link');
  await admin.getByLabel('Action').selectOption('');
  res = await submit(admin, admin.getByRole('button', { name: 'Filter' }));
  await screenshot(admin, 'console-audit');

  // ---- The account page: name, sessions, password, the place for later methods. ----------
  res = await goto(admin, `${BASE}/account`);
  await checkPage(admin, res, '/account');
  await admin.getByLabel('Name', { exact: true }).fill('Ada Lovelace');
  res = await submit(admin, admin.getByRole('button', { name: 'Save name' }));
  await checkPage(admin, res, '/account renamed');
  equal((await admin.locator('[role="status"]').innerText()).trim(), 'Your name was saved.', 'rename notice');
  check((await admin.locator('dl.facts').innerText()).includes('Ada Lovelace'), 'the new name');
  check((await admin.locator('tbody').innerText()).includes('This browser'), 'this session is listed');
  check((await admin.getByRole('heading', { name: 'Sign-in methods' }).count()) === 1, 'the place for later methods');
  await screenshot(admin, 'console-account');

  check(problems.length === 0, `browser problems:\n  ${problems.join('\n  ')}`);
  console.log(`e2e console passed (${shot} screenshots in ${ARTIFACTS})`);
}

runFlow(run);
