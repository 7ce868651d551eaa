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

import { chromium } from 'playwright-core';
import { HtmlValidate } from 'html-validate';
import fs from 'node:fs';
import path from 'node:path';
import { mailFiles as mailFilesIn, parseMail } from './mail.mjs';

const env = (name, fallback) => {
  const v = process.env[name] ?? fallback;
  if (v === undefined || v === '') throw new Error(`environment variable ${name} is required`);
  return v;
};

const BASE = env('E2E_BASE_URL').replace(/\/$/, '');
const PUBLIC = (process.env.E2E_PUBLIC_URL ?? '').replace(/\/$/, '');
const MAIL_DIR = env('E2E_MAIL_DIR');
const ADMIN_EMAIL = env('E2E_ADMIN_EMAIL');
const ADMIN_PASSWORD = env('E2E_ADMIN_PASSWORD');
const COMPANY = env('E2E_COMPANY');
const ARTIFACTS = env('E2E_ARTIFACTS_DIR', 'target/e2e-artifacts');
const CHROMIUM = env('E2E_CHROMIUM', '/usr/bin/chromium');
const DOMAIN = env('E2E_DOMAIN');

const CSP =
  "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

fs.mkdirSync(ARTIFACTS, { recursive: true });

// Valid HTML, with the accessibility rules (labels, headings, landmarks…) on.
const validator = new HtmlValidate({
  extends: ['html-validate:recommended', 'html-validate:a11y'],
  rules: { 'input-missing-label': 'error' },
});

// ---- checks -------------------------------------------------------------------------------

function check(ok, message) {
  if (!ok) throw new Error(`check failed: ${message}`);
}

function equal(actual, expected, what) {
  check(actual === expected, `${what}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`);
}

// ---- mail ---------------------------------------------------------------------------------

const mailFiles = () => mailFilesIn(MAIL_DIR);

/** Waits for a mail to `to`, not among `seen`, whose text has a `/<kind>?token=` link. */
async function waitForLink(to, kind, seen) {
  const deadline = Date.now() + 30_000;
  const pattern = new RegExp(`(https?://\\S+?)(/${kind}\\?token=[A-Za-z0-9._-]+)`);
  while (Date.now() < deadline) {
    for (const file of mailFiles()) {
      if (seen.has(file)) continue;
      const mail = parseMail(file);
      if (mail.to !== to) continue;
      const m = pattern.exec(mail.text);
      if (!m) continue;
      if (PUBLIC) equal(m[1], PUBLIC, `origin of the ${kind} link in the mail`);
      // The link points at the public URL; the browser opens the same path on the test server.
      return `${BASE}${m[2]}`;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`no ${kind} mail to ${to} within 30 s`);
}

// ---- browser ------------------------------------------------------------------------------

const problems = [];
let shot = 0;

async function newPage(context, who) {
  const page = await context.newPage();
  page.setDefaultTimeout(15_000);
  page.on('console', (msg) => {
    const text = msg.text();
    if (/Content Security Policy|Refused to/i.test(text)) problems.push(`[${who}] CSP: ${text}`);
    // Pages answered with an error status (401, 409, …) on purpose are logged as "Failed to
    // load resource"; sub-resources are checked by status below instead.
    else if (msg.type() === 'error' && !text.startsWith('Failed to load resource')) {
      problems.push(`[${who}] console error: ${text}`);
    }
  });
  page.on('pageerror', (err) => problems.push(`[${who}] page error: ${err.message}`));
  page.on('requestfailed', (req) => problems.push(`[${who}] request failed: ${req.url()} ${req.failure()?.errorText}`));
  page.on('response', (res) => {
    const type = res.request().resourceType();
    if ((type === 'stylesheet' || type === 'image') && res.status() !== 200) {
      problems.push(`[${who}] ${type} ${res.url()} answered ${res.status()}`);
    }
  });
  return page;
}

async function screenshot(page, name) {
  shot += 1;
  const file = path.join(ARTIFACTS, `${String(shot).padStart(2, '0')}-${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  console.log(`screenshot ${file}`);
}

/** Checks what every page must have: the CSP, our stylesheet applied, no inline script/style. */
async function checkPage(page, response, what) {
  check(response !== null, `${what}: no response`);
  equal(response.headers()['content-security-policy'], CSP, `${what}: CSP header`);
  equal(response.headers()['referrer-policy'], 'no-referrer', `${what}: Referrer-Policy`);
  const html = await response.text();
  const report = await validator.validateString(html, what);
  const messages = report.results.flatMap((r) => r.messages.map((m) => `line ${m.line}: ${m.ruleId}: ${m.message}`));
  check(report.valid, `${what}: invalid HTML:\n  ${messages.join('\n  ')}`);
  check(!/<script/i.test(html), `${what}: the page has a <script>`);
  check(!/\sstyle=/i.test(html) && !/<style/i.test(html), `${what}: the page has inline style`);
  // The stylesheet was loaded and applied (the CSP allows it from 'self').
  const bg = await page.locator('body').evaluate((b) => getComputedStyle(b).backgroundColor);
  equal(bg, 'rgb(243, 245, 249)', `${what}: body background from app.css`);
  equal(await page.locator('h1').count(), 1, `${what}: one h1`);
}

/** Clicks a submit button and waits for the page it leads to; returns the final response. */
async function submit(page, button) {
  const [response] = await Promise.all([page.waitForNavigation(), button.click()]);
  return response;
}

async function goto(page, url) {
  return page.goto(url, { waitUntil: 'load' });
}

function pathOf(page) {
  const u = new URL(page.url());
  return u.pathname + u.search;
}

async function alertText(page) {
  return (await page.locator('[role="alert"]').innerText()).trim();
}

async function main() {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  try {
    await run(browser);
  } finally {
    await browser.close();
  }
}


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

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err?.stack ?? String(err));
    if (problems.length) console.error(`browser problems:\n  ${problems.join('\n  ')}`);
    process.exit(1);
  },
);
