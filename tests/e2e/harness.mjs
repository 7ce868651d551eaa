// What the browser flows share (flow.mjs, console.mjs): the settings from the environment, a
// Chromium without JavaScript, the checks every page passes (CSP header, valid and accessible
// HTML, no inline script or style, the stylesheet applied, one h1), screenshots, and mail.

import { chromium } from 'playwright-core';
import { HtmlValidate } from 'html-validate';
import fs from 'node:fs';
import path from 'node:path';
import { mailFiles as mailFilesIn, parseMail } from './mail.mjs';

export const env = (name, fallback) => {
  const v = process.env[name] ?? fallback;
  if (v === undefined || v === '') throw new Error(`environment variable ${name} is required`);
  return v;
};

export const BASE = env('E2E_BASE_URL').replace(/\/$/, '');
export const PUBLIC = (process.env.E2E_PUBLIC_URL ?? '').replace(/\/$/, '');
export const MAIL_DIR = env('E2E_MAIL_DIR');
export const ARTIFACTS = env('E2E_ARTIFACTS_DIR', 'target/e2e-artifacts');
export const CHROMIUM = env('E2E_CHROMIUM', '/usr/bin/chromium');

export const CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

fs.mkdirSync(ARTIFACTS, { recursive: true });

// Valid HTML, with the accessibility rules (labels, headings, landmarks…) on.
const validator = new HtmlValidate({
  extends: ['html-validate:recommended', 'html-validate:a11y'],
  rules: { 'input-missing-label': 'error' },
});

// ---- checks -------------------------------------------------------------------------------

export function check(ok, message) {
  if (!ok) throw new Error(`check failed: ${message}`);
}

export function equal(actual, expected, what) {
  check(actual === expected, `${what}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`);
}

// ---- mail ---------------------------------------------------------------------------------

export const mailFiles = () => mailFilesIn(MAIL_DIR);

/** Waits for a mail to `to`, not among `seen`, whose text has a `/<kind>?token=` link. */
export async function waitForLink(to, kind, seen) {
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

export const problems = [];
export let shot = 0;

export async function newPage(context, who) {
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

export async function screenshot(page, name) {
  shot += 1;
  const file = path.join(ARTIFACTS, `${String(shot).padStart(2, '0')}-${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  console.log(`screenshot ${file}`);
}

/** Checks what every page must have: the CSP, our stylesheet applied, no inline script/style. */
export async function checkPage(page, response, what) {
  check(response !== null, `${what}: no response`);
  equal(response.headers()['content-security-policy'], CSP, `${what}: CSP header`);
  equal(response.headers()['referrer-policy'], 'no-referrer', `${what}: Referrer-Policy`);
  const html = await response.text();
  const report = await validator.validateString(html, what);
  const messages = report.results.flatMap((r) => r.messages.map((m) => `line ${m.line}: ${m.ruleId}: ${m.message}`));
  check(report.valid, `${what}: invalid HTML:\n  ${messages.join('\n  ')}`);
  // The one script allowed is our own passkey helper, as a file (the CSP allows 'self' only).
  const scripts = html.replace(/<script src="\/assets\/passkey\.js\?v=[0-9a-f]+" defer><\/script>/g, '');
  check(!/<script/i.test(scripts), `${what}: the page has an inline or foreign <script>`);
  check(!/\sstyle=/i.test(html) && !/<style/i.test(html), `${what}: the page has inline style`);
  // The stylesheet was loaded and applied (the CSP allows it from 'self').
  const bg = await page.locator('body').evaluate((b) => getComputedStyle(b).backgroundColor);
  equal(bg, 'rgb(243, 245, 249)', `${what}: body background from app.css`);
  equal(await page.locator('h1').count(), 1, `${what}: one h1`);
}

/** Clicks a submit button and waits for the page it leads to; returns the final response. */
export async function submit(page, button) {
  const [response] = await Promise.all([page.waitForNavigation(), button.click()]);
  return response;
}

export async function goto(page, url) {
  return page.goto(url, { waitUntil: 'load' });
}

export function pathOf(page) {
  const u = new URL(page.url());
  return u.pathname + u.search;
}

export async function alertText(page) {
  return (await page.locator('[role="alert"]').innerText()).trim();
}

async function main(run) {
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

// Runs a flow in a fresh Chromium: exit code 0 when every check passed.
export function runFlow(run) {
  main(run).then(
    () => process.exit(0),
    (err) => {
      console.error(err?.stack ?? String(err));
      if (problems.length) console.error(`browser problems:\n  ${problems.join('\n  ')}`);
      process.exit(1);
    },
  );
}
