// End-to-end test of the example vendor app (control-plane/examples/vendor-app.rs) signing people
// in through tenantd's OpenID Connect provider, in real headless Chromium with JavaScript
// disabled. Run by tests/api/vendor_app.rs against a real tenantd and the real example:
//
//   1. the admin: app / → "Sign in" → tenantd's login page (email, then password) → back at the
//      app, signed in: company, role, the company's users (tenantd's API, with the access
//      token) → "Sign out" (RP-initiated logout) → back at the app, signed out, and signed out of
//      tenantd too;
//   2. a member (when E2E_MEMBER_EMAIL is set): signs in the same way, sees that the API
//      answered 403, then prints `member signed in: sid=… cookie=…` and waits (polling the
//      app's page) until the session is ended from tenantd's side (the test does that) and the
//      back-channel logout has signed them out of the app.
//
// Every step is screenshotted into E2E_ARTIFACTS_DIR. Exit code 0 means every check passed.
//
// Environment:
//   E2E_APP_URL          where the vendor app listens, e.g. http://127.0.0.1:41000 (required)
//   E2E_TENANTD_URL      where tenantd listens (its public URL) (required)
//   E2E_ADMIN_EMAIL      an admin of the company, and E2E_ADMIN_PASSWORD (required)
//   E2E_COMPANY          the company's name (required)
//   E2E_MEMBER_EMAIL     a member of the same company, and E2E_MEMBER_PASSWORD (optional)
//   E2E_LOGOUT_WAIT_MS   how long part 2 waits for the back-channel logout (default 60000)
//   E2E_ARTIFACTS_DIR    screenshots go here (default target/e2e-artifacts/vendor-app)
//   E2E_CHROMIUM         the browser (default /usr/bin/chromium)

import { chromium } from 'playwright-core';
import fs from 'node:fs';
import path from 'node:path';

const env = (name, fallback) => {
  const v = process.env[name] ?? fallback;
  if (v === undefined || v === '') throw new Error(`environment variable ${name} is required`);
  return v;
};

const APP = env('E2E_APP_URL').replace(/\/$/, '');
const TENANTD = env('E2E_TENANTD_URL').replace(/\/$/, '');
const ADMIN_EMAIL = env('E2E_ADMIN_EMAIL');
const ADMIN_PASSWORD = env('E2E_ADMIN_PASSWORD');
const COMPANY = env('E2E_COMPANY');
const MEMBER_EMAIL = process.env.E2E_MEMBER_EMAIL ?? '';
const MEMBER_PASSWORD = MEMBER_EMAIL ? env('E2E_MEMBER_PASSWORD') : '';
const LOGOUT_WAIT_MS = Number(env('E2E_LOGOUT_WAIT_MS', '60000'));
const ARTIFACTS = env('E2E_ARTIFACTS_DIR', 'target/e2e-artifacts/vendor-app');
const CHROMIUM = env('E2E_CHROMIUM', '/usr/bin/chromium');

fs.mkdirSync(ARTIFACTS, { recursive: true });

function check(ok, message) {
  if (!ok) throw new Error(`check failed: ${message}`);
}

function equal(actual, expected, what) {
  check(actual === expected, `${what}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`);
}

const problems = [];
const trail = []; // every document response, printed when a check fails
let shot = 0;

async function newPage(context, who) {
  const page = await context.newPage();
  page.setDefaultTimeout(15_000);
  page.on('console', (msg) => {
    const t = msg.text();
    if (/Content Security Policy|Refused to/i.test(t)) problems.push(`[${who}] CSP: ${t}`);
  });
  page.on('pageerror', (err) => problems.push(`[${who}] page error: ${err.message}`));
  page.on('requestfailed', (req) => problems.push(`[${who}] request failed: ${req.url()} ${req.failure()?.errorText}`));
  page.on('response', (res) => {
    if (res.request().resourceType() === 'document') {
      trail.push(`[${who}] ${res.request().method()} ${res.url()} → ${res.status()} ${res.headers().location ?? ''}`);
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

const origin = (page) => new URL(page.url()).origin;
const pathOf = (page) => new URL(page.url()).pathname;
const text = async (page, selector) => (await page.locator(selector).innerText()).trim();

/** Clicks, waits for the page it leads to (after every redirect), checks where that is. */
async function clickTo(page, target, where, what) {
  const [response] = await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), target.click()]);
  check(where(new URL(page.url())), `${what}: ended on ${page.url()} (${response?.status()})`);
  check(response && response.status() < 400, `${what}: ${page.url()} answered ${response?.status()}`);
}

const atApp = (url) => url.origin === APP && url.pathname === '/';
const atTenantdLogin = (url) => url.origin === TENANTD && url.pathname === '/login';

/** From the app's signed-out page through tenantd's login page back to the app, signed in. */
async function signIn(page, email, password, who) {
  await page.goto(`${APP}/`);
  equal(await text(page, 'h1'), 'Vendor app', `${who}: the app's signed-out page`);
  await screenshot(page, `${who}-app-signed-out`);

  await clickTo(page, page.getByRole('link', { name: 'Sign in' }), atTenantdLogin, `${who}: Sign in`);
  await screenshot(page, `${who}-tenantd-login-email`);
  await page.getByLabel('Email').fill(email);
  await clickTo(page, page.getByRole('button', { name: 'Continue' }), atTenantdLogin, `${who}: email step`);
  equal(await page.getByLabel('Email').inputValue(), email, `${who}: email kept on the password step`);
  await screenshot(page, `${who}-tenantd-login-password`);
  await page.getByLabel('Password').fill(password);
  await clickTo(page, page.getByRole('button', { name: 'Sign in' }), atApp, `${who}: password step`);

  equal(await text(page, '#email'), email, `${who}: the app shows the email`);
  equal(await text(page, '#company'), COMPANY, `${who}: the app shows the company`);
  check((await text(page, '#slug')).length > 0, `${who}: the app shows the company slug`);
  check((await text(page, '#org-id')).length > 0, `${who}: the app shows the company id`);
  check((await text(page, '#sid')).length > 0, `${who}: the app shows the session id`);
}

async function run(browser) {
  const contextOptions = { javaScriptEnabled: false, viewport: { width: 1100, height: 800 } };

  // ---- 1. The admin signs in, sees the company's users, signs out. ------------------------
  const adminContext = await browser.newContext(contextOptions);
  const admin = await newPage(adminContext, 'admin');
  await signIn(admin, ADMIN_EMAIL, ADMIN_PASSWORD, 'admin');
  equal(await text(admin, '#role'), 'admin', 'the admin\'s role');
  const users = await text(admin, '#users');
  check(users.includes(ADMIN_EMAIL), `the users list names the admin:\n${users}`);
  if (MEMBER_EMAIL) check(users.includes(MEMBER_EMAIL), `the users list names the member:\n${users}`);
  const cookie = (await adminContext.cookies(APP)).find((c) => c.name === 'vendor_app_session');
  check(cookie && cookie.httpOnly && cookie.sameSite === 'Lax', 'the app\'s cookie is HttpOnly and SameSite=Lax');
  await screenshot(admin, 'admin-app-signed-in');

  await clickTo(admin, admin.getByRole('button', { name: 'Sign out' }), atApp, 'Sign out');
  check(new URL(admin.url()).searchParams.has('state'), 'tenantd sent the state back');
  equal(await text(admin, '[role="status"]'), 'You are signed out.', 'signed out of the app');
  equal(await admin.getByRole('link', { name: 'Sign in' }).count(), 1, 'the Sign in link is back');
  await screenshot(admin, 'admin-app-signed-out');

  // RP-initiated logout ended tenantd's session too: its pages ask to sign in again.
  await admin.goto(`${TENANTD}/account`);
  equal(origin(admin), TENANTD, 'tenantd\'s /account');
  equal(pathOf(admin), '/login', 'signed out of tenantd too');
  await screenshot(admin, 'admin-tenantd-signed-out');
  await adminContext.close();

  // ---- 2. A member signs in; tenantd ends the session; the app learns it. -----------------
  if (MEMBER_EMAIL) {
    const memberContext = await browser.newContext(contextOptions);
    const member = await newPage(memberContext, 'member');
    await signIn(member, MEMBER_EMAIL, MEMBER_PASSWORD, 'member');
    equal(await text(member, '#role'), 'member', 'the member\'s role');
    equal(await text(member, '#api'), 'tenantd\'s API answered 403 Forbidden.', 'a member may not list users');
    await screenshot(member, 'member-app-signed-in');

    const sid = await text(member, '#sid');
    const appCookie = (await memberContext.cookies(APP)).find((c) => c.name === 'vendor_app_session');
    check(appCookie, 'the member has the app\'s cookie');
    console.log(`member signed in: sid=${sid} cookie=${appCookie.value}`);

    // Nothing in this browser signs out: only a back-channel logout can end the app's session.
    const deadline = Date.now() + LOGOUT_WAIT_MS;
    for (;;) {
      await member.goto(`${APP}/`);
      if ((await member.getByRole('link', { name: 'Sign in' }).count()) === 1) break;
      check(Date.now() < deadline, `the app still shows the member signed in after ${LOGOUT_WAIT_MS} ms`);
      await new Promise((r) => setTimeout(r, 200));
    }
    equal(await member.locator('#sid').count(), 0, 'the app no longer shows the member');
    await screenshot(member, 'member-app-signed-out-by-backchannel');
    await memberContext.close();
  }

  check(problems.length === 0, `browser problems:\n  ${problems.join('\n  ')}`);
  console.log(`vendor app flow passed (${shot} screenshots in ${ARTIFACTS})`);
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

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err?.stack ?? String(err));
    console.error(`pages loaded:\n  ${trail.join('\n  ')}`);
    if (problems.length) console.error(`browser problems:\n  ${problems.join('\n  ')}`);
    process.exit(1);
  },
);
