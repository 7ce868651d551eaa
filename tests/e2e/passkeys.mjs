// Passkeys in real headless Chromium with a virtual authenticator (Chrome DevTools Protocol
// WebAuthn.addVirtualAuthenticator: CTAP2, resident keys, user verification). Run by
// tests/api/factors_browser.rs against a real tenantd whose public URL is http://localhost:PORT:
//
//   sign in with the password → /account: add a passkey → sign out → password, then the
//   passkey as second step → sign out → the passkey alone (after the email step) → remove it
//   with the password → the password alone signs in again.
//
// Every page is checked as in flow.mjs (CSP, valid and accessible HTML, no inline script: the
// one script is /assets/passkey.js).
//
// Environment: E2E_BASE_URL, E2E_MAIL_DIR, E2E_EMAIL, E2E_PASSWORD, E2E_ARTIFACTS_DIR, E2E_CHROMIUM.

import { env, BASE, check, equal, newPage, screenshot, checkPage, submit, goto, pathOf, runFlow, problems } from './harness.mjs';

const EMAIL = env('E2E_EMAIL');
const PASSWORD = env('E2E_PASSWORD');

async function passwordStep(page) {
  let res = await goto(page, `${BASE}/login`);
  await checkPage(page, res, '/login');
  await page.getByLabel('Email').fill(EMAIL);
  res = await submit(page, page.getByRole('button', { name: 'Continue' }));
  await checkPage(page, res, 'password step');
  return res;
}

async function signOut(page) {
  await submit(page, page.getByRole('button', { name: 'Sign out' }).first());
  equal(pathOf(page), '/login?done=signed_out', 'signed out');
}

async function run(browser) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await newPage(context, 'person');
  const cdp = await context.newCDPSession(page);
  await cdp.send('WebAuthn.enable');
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: {
      protocol: 'ctap2',
      transport: 'internal',
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true,
      automaticPresenceSimulation: true,
    },
  });

  // ---- Password only, then add a passkey on /account. ------------------------------------
  await passwordStep(page);
  await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
  let res = await submit(page, page.getByRole('button', { name: 'Sign in', exact: true }));
  equal(pathOf(page), '/account', 'signed in with the password alone');
  await checkPage(page, res, '/account');
  await page.getByLabel('Name of the passkey').fill('Laptop');
  res = await submit(page, page.getByRole('button', { name: 'Add a passkey' }));
  equal(pathOf(page), '/account?done=passkey_added', 'the passkey was added');
  await checkPage(page, res, '/account after adding a passkey');
  check((await page.locator('td', { hasText: 'Laptop' }).count()) === 1, 'the passkey is listed');
  const creds = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
  equal(creds.credentials.length, 1, 'one credential in the authenticator');
  check(creds.credentials[0].isResidentCredential, 'a discoverable credential');
  await screenshot(page, 'passkey-added');
  await signOut(page);

  // ---- Password, then the passkey as second step. -----------------------------------------
  await passwordStep(page);
  await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
  res = await submit(page, page.getByRole('button', { name: 'Sign in', exact: true }));
  equal(pathOf(page), '/login', 'a second step, not yet signed in');
  await checkPage(page, res, 'second step');
  await screenshot(page, 'second-step');
  res = await submit(page, page.getByRole('button', { name: 'Use your passkey or security key' }));
  equal(pathOf(page), '/account', 'signed in with password and passkey');
  await signOut(page);

  // ---- The passkey alone, after the email step. -------------------------------------------
  await passwordStep(page);
  res = await submit(page, page.getByRole('button', { name: 'Use a passkey instead' }));
  await checkPage(page, res, 'passkey page');
  res = await submit(page, page.getByRole('button', { name: 'Use a passkey' }));
  equal(pathOf(page), '/account', 'signed in with the passkey alone');
  await checkPage(page, res, '/account after a passkey sign-in');

  // ---- Remove it (with the password): the password alone signs in again. ------------------
  await page.getByLabel('Your password').fill(PASSWORD);
  res = await submit(page, page.getByRole('button', { name: 'Remove' }));
  equal(pathOf(page), '/account?done=factor_removed', 'the passkey was removed');
  check((await page.locator('td', { hasText: 'Laptop' }).count()) === 0, 'the passkey is gone');
  await signOut(page);
  await passwordStep(page);
  await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
  await submit(page, page.getByRole('button', { name: 'Sign in', exact: true }));
  equal(pathOf(page), '/account', 'the password alone again');

  // With scripts on, a page left quickly (the passkey script submits its form) aborts its
  // icon's download: not a problem of the page.
  const real = problems.filter((p) => !/net::ERR_ABORTED/.test(p));
  check(real.length === 0, `browser problems:\n  ${real.join('\n  ')}`);
  console.log('e2e passkeys passed');
}

runFlow(run);
