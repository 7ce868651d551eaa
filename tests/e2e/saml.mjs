// SAML sign-in set up from the admin page alone and used, in real headless Chromium with
// JavaScript disabled, against a real pysaml2 IdP (tests/saml/idp.py). Run by
// tests/api/saml_signin.rs:
//
//   the admin signs in with a password, adds a SAML identity provider on /admin/sso from its
//   metadata URL and reads our metadata URL there; our metadata is given to the IdP; a member's
//   email on the shared login page → the IdP → the ACS → signed in; a new person is created on
//   first sign-in.
//
// Environment: E2E_BASE_URL, E2E_IDP_BASE, E2E_IDP_METADATA_URL, E2E_ADMIN_EMAIL,
// E2E_ADMIN_PASSWORD, E2E_MEMBER_EMAIL, E2E_MEMBER_KEY, E2E_JIT_EMAIL, E2E_JIT_KEY,
// E2E_ARTIFACTS_DIR, E2E_CHROMIUM.

import { env, BASE, check, equal, newPage, screenshot, checkPage, submit, goto, pathOf, runFlow } from './harness.mjs';

const IDP = env('E2E_IDP_BASE');
const IDP_METADATA_URL = env('E2E_IDP_METADATA_URL');
const ADMIN_EMAIL = env('E2E_ADMIN_EMAIL');
const ADMIN_PASSWORD = env('E2E_ADMIN_PASSWORD');

const options = { javaScriptEnabled: false, viewport: { width: 1280, height: 900 } };

async function passwordSignIn(page, email, password) {
  await goto(page, `${BASE}/login`);
  await page.getByLabel('Email').fill(email);
  await submit(page, page.getByRole('button', { name: 'Continue' }));
  await page.getByLabel('Password').fill(password);
  return submit(page, page.getByRole('button', { name: 'Sign in' }));
}

/** The email step, the IdP's sign-in as `key`, its form posted to our ACS, and back. */
async function samlSignIn(browser, email, key, name) {
  const context = await browser.newContext(options);
  const page = await newPage(context, name);
  const res = await goto(page, `${BASE}/login`);
  await checkPage(page, res, '/login');
  await page.getByLabel('Email').fill(email);
  await page.getByRole('button', { name: 'Continue' }).click();
  await page.waitForURL((u) => u.href.startsWith(IDP));
  await screenshot(page, `${name}-idp`);
  await page.locator('#user').selectOption(key);
  await submit(page, page.getByRole('button', { name: 'Sign in' }));
  // The IdP's HTTP-POST binding: its form to our ACS (a button, as JavaScript is off).
  await Promise.all([
    page.waitForURL((u) => u.href.startsWith(BASE) && !u.pathname.startsWith('/saml/')),
    page.getByRole('button', { name: 'Continue to the app' }).click(),
  ]);
  equal(pathOf(page), '/account', `${name} lands on /account`);
  check((await page.content()).includes(email), `${name}: the account page shows ${email}`);
  await screenshot(page, `${name}-signed-in`);
}

async function run(browser) {
  // ---- The admin sets the connection up on /admin/sso. -----------------------------------
  const admin = await newPage(await browser.newContext(options), 'admin');
  await passwordSignIn(admin, ADMIN_EMAIL, ADMIN_PASSWORD);
  equal(pathOf(admin), '/admin', 'the admin lands on /admin');
  let res = await submit(admin, admin.getByRole('link', { name: 'Sign-in' }));
  await checkPage(admin, res, '/admin/sso');
  await admin.locator('#s-name').fill('Acme SAML');
  await admin.locator('#s-url').fill(IDP_METADATA_URL);
  await admin.locator('#s-domains').fill('acme.test');
  await admin.getByLabel('Create people on their first sign-in, as').last().check();
  res = await submit(admin, admin.getByRole('button', { name: 'Add SAML identity provider' }));
  await checkPage(admin, res, '/admin/sso with SAML');
  check((await admin.content()).includes('SAML connection added'), 'the connection is added');
  const metadataUrl = (await admin.locator('.sp-metadata-url').first().innerText()).trim();
  check(metadataUrl.startsWith(`${BASE}/saml/`) && metadataUrl.endsWith('/metadata'), `our metadata URL: ${metadataUrl}`);
  const acs = (await admin.locator('.acs-url').first().innerText()).trim();
  check(acs.endsWith('/acs'), `the ACS URL: ${acs}`);
  await screenshot(admin, 'admin-saml');

  // ---- What the company admin does at their IdP: give it our metadata. -------------------
  const ours = await fetch(metadataUrl);
  equal(ours.status, 200, 'our metadata is served');
  const xml = await ours.text();
  check(xml.includes(acs), 'our metadata names the ACS');
  const trusted = await fetch(`${IDP}/sp`, { method: 'POST', body: xml });
  equal(trusted.status, 200, 'the IdP took our metadata');

  // ---- People sign in through it. ----------------------------------------------------------
  await samlSignIn(browser, env('E2E_MEMBER_EMAIL'), env('E2E_MEMBER_KEY'), 'member');
  await samlSignIn(browser, env('E2E_JIT_EMAIL'), env('E2E_JIT_KEY'), 'jit');
  console.log('e2e saml passed');
}

runFlow(run);
