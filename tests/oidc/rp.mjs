// A relying party built on openid-client (v6) and jose, against a real tenantd acting as an
// OpenID Connect provider (docs/OIDC.md). Run by tests/api/oidc_rp.rs.
//
//   discovery and keys → PKCE S256 code flow through the real login pages (an HTML form flow
//   with a cookie jar) → ID token, access token and userinfo claims → the access token on
//   tenantd's JSON API → refresh rotation and reuse detection → revocation and introspection →
//   the refusals (PKCE, codes, clients, redirect URIs, secrets, forged tokens, other companies)
//   → RP-initiated logout → a back-channel logout token, verified against the JWKS, for every
//   way a session ends, after which the session's tokens are dead; a failed delivery is retried.
//
// The script registers its own apps with tenantctl: their back-channel logout URI is this
// script's HTTP server, whose port is only known once it listens.
//
// Environment:
//   RP_ISSUER           the issuer: tenantd's public URL, where it also listens (required)
//   RP_PEOPLE           JSON object, key → { email, id, name, role, org: { id, slug, name } }, with
//                       the keys admin, member, all, blocked, deleted, promoted, reset (one
//                       company, each a different active user), other (the admin of a second
//                       company), restored and suspended (the admins of a third and a fourth
//                       company, which the script restores and suspends) (required)
//   RP_PASSWORD         everyone's password (required)
//   RP_NEW_PASSWORD     the password the reset scenario sets (required)
//   RP_MAIL_DIR         folder where tenantd's mail lands (an aiosmtpd maildir) (required)
//   RP_TENANTCTL        the tenantctl binary (required); it runs with this process's
//                       environment, so the TENANTD_* variables (data directory, mail, public
//                       URL) must be the server's
//   RP_WAIT_MS          how long to wait for each logout token or mail (default 30000; three
//                       times that for a delivery that must be retried)
//
// Exit code 0 and a last line `oidc rp passed` mean every check passed.

import * as client from 'openid-client';
import * as jose from 'jose';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { mailFiles, parseMail } from '../e2e/mail.mjs';

const env = (name, fallback) => {
  const v = process.env[name] ?? fallback;
  if (v === undefined || v === '') throw new Error(`environment variable ${name} is required`);
  return v;
};

const ISSUER = env('RP_ISSUER').replace(/\/$/, '');
const PEOPLE = JSON.parse(env('RP_PEOPLE'));
const PASSWORD = env('RP_PASSWORD');
const NEW_PASSWORD = env('RP_NEW_PASSWORD');
const MAIL_DIR = env('RP_MAIL_DIR');
const TENANTCTL = env('RP_TENANTCTL');
const WAIT_MS = Number(env('RP_WAIT_MS', '30000'));

const SCOPE = 'openid profile email offline_access';
const LOGOUT_EVENT = 'http://schemas.openid.net/event/backchannel-logout';
// tenantd answers over http on the loopback address in the tests.
const execute = [client.allowInsecureRequests];

for (const key of ['admin', 'member', 'all', 'blocked', 'deleted', 'promoted', 'reset', 'other', 'restored', 'suspended']) {
  if (!PEOPLE[key]) throw new Error(`RP_PEOPLE has no ${key}`);
  PEOPLE[key].password = PASSWORD;
}

function step(what) {
  console.log(`— ${what}`);
}

function excerpt(text) {
  return text.length > 2000 ? `${text.slice(0, 2000)}…` : text;
}

// ---- HTML forms ---------------------------------------------------------------------------

function unescapeHtml(s) {
  return s.replace(/&(#x[0-9a-f]+|#[0-9]+|amp|lt|gt|quot|apos);/gi, (_, e) => {
    const l = e.toLowerCase();
    if (l.startsWith('#x')) return String.fromCodePoint(parseInt(l.slice(2), 16));
    if (l.startsWith('#')) return String.fromCodePoint(parseInt(l.slice(1), 10));
    return { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" }[l];
  });
}

function attributes(s) {
  const out = {};
  for (const m of s.matchAll(/([^\s"'<>/=]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'=<>`]+)))?/g)) {
    out[m[1].toLowerCase()] = unescapeHtml(m[2] ?? m[3] ?? m[4] ?? '');
  }
  return out;
}

/** Every form of a page: action, method, inputs and buttons (with their attributes). */
function formsOf(html) {
  return [...html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/gi)].map((m) => {
    const a = attributes(m[1]);
    return {
      action: a.action ?? '',
      method: (a.method ?? 'get').toLowerCase(),
      inputs: [...m[2].matchAll(/<input\b([^>]*)>/gi)].map((i) => attributes(i[1])),
      buttons: [...m[2].matchAll(/<button\b([^>]*)>([\s\S]*?)<\/button>/gi)].map((b) => ({
        ...attributes(b[1]),
        text: b[2].replace(/<[^>]*>/g, '').trim(),
      })),
    };
  });
}

/** What a browser submits for a form: every named field as it stands, with `fill` applied. */
function fieldsOf(form, fill = {}) {
  const fields = [];
  for (const i of form.inputs) {
    if (!i.name) continue;
    const type = (i.type ?? 'text').toLowerCase();
    if (['submit', 'button', 'image', 'reset', 'file'].includes(type)) continue;
    if ((type === 'checkbox' || type === 'radio') && !('checked' in i)) continue;
    const readonly = 'readonly' in i && i.value;
    fields.push([i.name, !readonly && i.name in fill ? fill[i.name] : (i.value ?? '')]);
  }
  return fields;
}

/** The sign-in form of a page, if it is one: a POST form asking for an email or a password. */
function loginForm(html) {
  return formsOf(html).find(
    (f) => f.method === 'post' && f.inputs.some((i) => i.name === 'email' || i.name === 'password'),
  );
}

// ---- a browser: cookie jar, redirects by hand ---------------------------------------------

class Browser {
  #jar = new Map();

  constructor(name) {
    this.name = name;
  }

  get cookieHeader() {
    return [...this.#jar].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  #store(setCookie) {
    const [pair, ...attrs] = setCookie.split(';');
    const i = pair.indexOf('=');
    const name = pair.slice(0, i).trim();
    const value = pair.slice(i + 1).trim();
    const gone = attrs.some((a) => {
      const [k, v = ''] = a.trim().split('=');
      const key = k.toLowerCase();
      return (key === 'max-age' && Number(v) <= 0) || (key === 'expires' && Date.parse(v) < Date.now());
    });
    if (gone || value === '') this.#jar.delete(name);
    else this.#jar.set(name, value);
  }

  /** One request, redirects not followed; `form` posts fields as a page of the issuer would. */
  async request(url, { method = 'GET', form, json, headers = {} } = {}) {
    const h = new Headers(headers);
    if (this.#jar.size && new URL(url).origin === ISSUER) h.set('cookie', this.cookieHeader);
    let body;
    if (form) {
      body = new URLSearchParams(form).toString();
      h.set('content-type', 'application/x-www-form-urlencoded');
    }
    if (json) {
      body = JSON.stringify(json);
      h.set('content-type', 'application/json');
    }
    if (method !== 'GET' && method !== 'HEAD') {
      // What a browser sends with a request from tenantd's own pages.
      h.set('origin', ISSUER);
      h.set('sec-fetch-site', 'same-origin');
    }
    const res = await fetch(url, { method, headers: h, body, redirect: 'manual' });
    for (const c of res.headers.getSetCookie()) this.#store(c);
    return { status: res.status, headers: res.headers, text: await res.text(), url: new URL(url) };
  }

  /** A JSON API call with this browser's cookies. */
  async api(method, pathname, json) {
    const r = await this.request(`${ISSUER}${pathname}`, { method, json });
    let body = null;
    try {
      body = r.text ? JSON.parse(r.text) : null;
    } catch {
      // Not JSON: kept as text below.
    }
    return { status: r.status, body, text: r.text };
  }

  /**
   * Goes to `start` and follows redirects until one points at `stopAt` (compared without the
   * query), signing in on the login pages met on the way with `creds`. Returns that URL and the
   * login pages shown.
   */
  async navigate(start, stopAt, creds) {
    const target = new URL(stopAt);
    let req = { url: new URL(start), method: 'GET' };
    const loginPages = [];
    let passwordSent = false;
    for (let hop = 0; hop < 25; hop++) {
      if (req.url.origin === target.origin && req.url.pathname === target.pathname) {
        return { url: req.url, loginPages };
      }
      const res = await this.request(req.url, req);
      if (res.status >= 300 && res.status < 400) {
        const location = res.headers.get('location');
        assert.ok(location, `${this.name}: ${res.status} without Location from ${req.url}`);
        req = { url: new URL(location, req.url), method: 'GET' };
        continue;
      }
      const form = res.status === 200 && creds ? loginForm(res.text) : undefined;
      if (form) {
        const asksPassword = form.inputs.some((i) => i.name === 'password');
        assert.ok(!(asksPassword && passwordSent), `${this.name}: the password was refused:\n${excerpt(res.text)}`);
        passwordSent ||= asksPassword;
        loginPages.push({ url: req.url, html: res.text, form });
        req = {
          url: new URL(form.action || req.url.href, req.url),
          method: 'POST',
          form: fieldsOf(form, { email: creds.email, password: creds.password }),
        };
        continue;
      }
      throw new Error(
        `${this.name}: ${req.method} ${req.url} answered ${res.status} on the way to ${stopAt}:\n${excerpt(res.text)}`,
      );
    }
    throw new Error(`${this.name}: more than 25 redirects on the way to ${stopAt}`);
  }
}

// ---- tenantctl and mail -------------------------------------------------------------------

const run = promisify(execFile);

async function tenantctl(...args) {
  try {
    const { stdout } = await run(TENANTCTL, ['--json', ...args], { env: process.env, maxBuffer: 1 << 24 });
    return JSON.parse(stdout);
  } catch (err) {
    throw new Error(`tenantctl ${args.join(' ')} failed: ${err.message}\n${err.stdout ?? ''}${err.stderr ?? ''}`);
  }
}

/** Waits for a mail to `to`, not among `seen`, with a `/<kind>?token=` link; returns the token. */
async function mailedToken(to, kind, seen) {
  const deadline = Date.now() + WAIT_MS;
  const pattern = new RegExp(`https?://\\S+?/${kind}\\?token=([A-Za-z0-9._-]+)`);
  while (Date.now() < deadline) {
    for (const file of mailFiles(MAIL_DIR)) {
      if (seen.has(file)) continue;
      const mail = parseMail(file);
      const m = mail.to === to.toLowerCase() && pattern.exec(mail.text);
      if (m) return m[1];
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`no ${kind} mail to ${to} within ${WAIT_MS} ms`);
}

// ---- back-channel logout receiver ---------------------------------------------------------

class Receiver {
  deliveries = [];
  /** Paths whose first delivery is answered 503, as an app that is down would. */
  failOnce = new Set();
  #waiters = new Set();

  async start() {
    this.server = http.createServer((req, res) => this.#handle(req, res));
    await new Promise((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.base = `http://127.0.0.1:${this.server.address().port}`;
  }

  #handle(req, res) {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const delivery = {
        method: req.method,
        path: new URL(req.url, this.base).pathname,
        contentType: req.headers['content-type'] ?? '',
        params: new URLSearchParams(body),
        at: Date.now(),
      };
      if (!delivery.path.startsWith('/backchannel/')) {
        res.writeHead(404).end();
        return;
      }
      try {
        delivery.claims = jose.decodeJwt(delivery.params.get('logout_token') ?? '');
      } catch (err) {
        delivery.problem = `not a JWT: ${err.message}`;
      }
      delivery.answered = this.failOnce.delete(delivery.path) ? 503 : 200;
      this.deliveries.push(delivery);
      res.writeHead(delivery.answered, { 'cache-control': 'no-store' }).end();
      for (const w of this.#waiters) w(delivery);
    });
  }

  /** Resolves with the first delivery (past or future) that `match` accepts. */
  waitFor(match, what, timeout = WAIT_MS) {
    const found = this.deliveries.find(match);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const waiter = (d) => {
        if (!match(d)) return;
        this.#waiters.delete(waiter);
        clearTimeout(timer);
        resolve(d);
      };
      const timer = setTimeout(() => {
        this.#waiters.delete(waiter);
        const seen = this.deliveries.map((d) => `${d.path} sid=${d.claims?.sid}`).join(', ') || 'none';
        reject(new Error(`no back-channel logout token for ${what} within ${timeout} ms (received: ${seen})`));
      }, timeout);
      this.#waiters.add(waiter);
    });
  }

  close() {
    this.server.closeAllConnections?.();
    this.server.close();
  }
}

// ---- the relying party --------------------------------------------------------------------

let jwks;
const receiver = new Receiver();
/** Sessions whose end the script caused: a logout token for any other sid is a fault. */
const endedSids = new Set();

/** An app registered with tenantctl, with its openid-client configuration. */
async function register(name, { kind = 'basic', backchannel, redirects = ['/callback'] } = {}) {
  const slug = name.toLowerCase().replace(/[^a-z0-9]+/g, '-');
  const redirectUris = redirects.map((r) => `${receiver.base}/${slug}${r}`);
  const args = ['client', 'create', '--name', name];
  for (const r of redirectUris) args.push('--redirect-uri', r);
  const postLogout = `${receiver.base}/${slug}/signed-out`;
  args.push('--post-logout-redirect-uri', postLogout);
  if (backchannel) args.push('--backchannel-logout-uri', `${receiver.base}/backchannel/${slug}`);
  if (kind === 'public') args.push('--public');
  const made = await tenantctl(...args);
  assert.ok(made.client_id, `client create: ${JSON.stringify(made)}`);
  const auth = kind === 'public' ? client.None() : client.ClientSecretBasic(made.client_secret);
  const config = await client.discovery(new URL(ISSUER), made.client_id, undefined, auth, { execute });
  return {
    name,
    id: made.client_id,
    secret: made.client_secret,
    config,
    redirectUri: redirectUris[0],
    redirectUris,
    postLogout,
    backchannelPath: backchannel ? `/backchannel/${slug}` : null,
  };
}

/** The same app seen with other credentials (a wrong secret, another method). */
async function withAuth(app, auth) {
  return client.discovery(new URL(ISSUER), app.id, undefined, auth, { execute });
}

/** An authorization request; its PKCE verifier, state and nonce. */
async function authorizationRequest(app, extra = {}, redirectUri = app.redirectUri) {
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const url = client.buildAuthorizationUrl(app.config, {
    redirect_uri: redirectUri,
    scope: SCOPE,
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    nonce,
    ...extra,
  });
  return { url, verifier, state, nonce, redirectUri };
}

/** Authorizes `app` in `browser` (signing `person` in if the pages ask): a code on the callback. */
async function authorize(browser, app, person, extra = {}) {
  const req = await authorizationRequest(app, extra);
  const { url: callback, loginPages } = await browser.navigate(req.url, req.redirectUri, person);
  const q = callback.searchParams;
  assert.equal(q.get('error'), null, `${browser.name}: authorization error ${q.get('error')}: ${q.get('error_description')}`);
  assert.ok(q.get('code'), `${browser.name}: no code on ${callback}`);
  assert.equal(q.get('state'), req.state, 'state is echoed');
  assert.equal(q.get('iss'), ISSUER, 'iss is on the authorization response (RFC 9207)');
  return { ...req, callback, loginPages };
}

/** The token request for a code, with the checks openid-client makes (state, iss, PKCE, nonce, ID token). */
function exchange(app, code, opts = {}) {
  const verifier = 'verifier' in opts ? opts.verifier : code.verifier;
  return client.authorizationCodeGrant(opts.config ?? app.config, opts.callback ?? code.callback, {
    pkceCodeVerifier: verifier,
    expectedState: code.state,
    expectedNonce: code.nonce,
    idTokenExpected: true,
    maxAge: opts.maxAge,
  });
}

/** A signed-in grant: authorize, exchange, check every token. */
async function signIn(browser, app, person, extra = {}) {
  const code = await authorize(browser, app, person, extra);
  // With max_age, openid-client also checks auth_time against it.
  const tokens = await exchange(app, code, 'max_age' in extra ? { maxAge: Number(extra.max_age) } : {});
  const grant = { browser, app, person, tokens, access: tokens.access_token, refresh: tokens.refresh_token };
  grant.claims = await checkTokens(grant, code.nonce);
  grant.loginPages = code.loginPages;
  return grant;
}

function nowSecs() {
  return Math.floor(Date.now() / 1000);
}

/** Polls `check` until it holds; fails after RP_WAIT_MS, naming `what`. */
async function until(check, what) {
  const deadline = Date.now() + WAIT_MS;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${WAIT_MS} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}


/** Checks the ID token (as openid-client did, and again with jose) and the access token. */
async function checkTokens(grant, nonce) {
  const { app, person, tokens } = grant;
  const c = tokens.claims();
  const who = `${person.email} at ${app.name}`;
  assert.equal(c.iss, ISSUER, `${who}: iss`);
  assert.ok([c.aud].flat().includes(app.id), `${who}: aud ${c.aud}`);
  assert.equal(c.sub, person.id, `${who}: sub is the user's id`);
  assert.equal(c.email, person.email, `${who}: email`);
  assert.equal(c.email_verified, true, `${who}: email_verified`);
  assert.equal(c.name, person.name, `${who}: name`);
  assert.equal(c.org_id, person.org.id, `${who}: org_id`);
  assert.equal(c.org_slug, person.org.slug, `${who}: org_slug`);
  assert.equal(c.org_name, person.org.name, `${who}: org_name`);
  assert.equal(c.role, person.role, `${who}: role`);
  assert.equal(typeof c.sid, 'string', `${who}: sid`);
  assert.ok(c.sid.length > 0, `${who}: sid`);
  assert.equal(typeof c.auth_time, 'number', `${who}: auth_time`);
  assert.ok(c.auth_time <= nowSecs() + 5 && c.auth_time > nowSecs() - 3600, `${who}: auth_time ${c.auth_time}`);
  assert.deepEqual(c.amr, ['pwd'], `${who}: amr`);
  assert.equal(c.nonce, nonce, `${who}: nonce`);
  assert.equal(typeof c.at_hash, 'string', `${who}: at_hash`);

  const id = await jose.jwtVerify(tokens.id_token, jwks, { issuer: ISSUER, audience: app.id, algorithms: ['RS256'] });
  assert.ok(id.protectedHeader.kid, `${who}: the ID token names its key`);

  assert.equal(tokens.token_type.toLowerCase(), 'bearer', `${who}: token_type`);
  assert.equal(typeof tokens.expires_in, 'number', `${who}: expires_in`);
  assert.ok(tokens.refresh_token, `${who}: offline_access gives a refresh token`);
  const at = await jose.jwtVerify(tokens.access_token, jwks, {
    issuer: ISSUER,
    audience: ISSUER,
    typ: 'at+jwt',
    algorithms: ['RS256'],
    requiredClaims: ['exp', 'iat', 'jti', 'sub', 'client_id', 'scope'],
  });
  const a = at.payload;
  assert.equal(a.sub, person.id, `${who}: access token sub`);
  assert.equal(a.client_id, app.id, `${who}: access token client_id`);
  assert.deepEqual(a.scope.split(' ').sort(), SCOPE.split(' ').sort(), `${who}: access token scope`);
  assert.equal(a.sid, c.sid, `${who}: access token sid`);
  assert.equal(a.auth_time, c.auth_time, `${who}: access token auth_time`);
  for (const k of ['org_id', 'org_slug', 'org_name', 'role']) assert.equal(a[k], c[k], `${who}: access token ${k}`);
  assert.equal(a.exp - a.iat, 300, `${who}: access tokens live TENANTD_ACCESS_TOKEN_SECS (300 by default)`);
  return c;
}

// ---- expectations -------------------------------------------------------------------------

/** The OAuth error a rejected openid-client call got: status, error code, body. */
async function oauthErrorOf(promise, what) {
  let result;
  try {
    result = await promise;
  } catch (err) {
    if (err instanceof client.ResponseBodyError) {
      return { status: err.status, error: err.error, body: err.cause };
    }
    if (err instanceof client.WWWAuthenticateChallengeError) {
      // A 401 with a challenge: the body still says which error.
      const body = await err.response.json().catch(() => ({}));
      return { status: err.status, error: body.error ?? err.cause?.[0]?.parameters?.error, body };
    }
    throw new Error(`${what}: expected an OAuth error answer, got ${err.name}: ${err.message}`, { cause: err });
  }
  throw new Error(`${what}: expected an error, but tokens were issued: ${JSON.stringify(result)}`);
}

/** A token endpoint refusal with exactly `error` and `status`, and nothing issued. */
async function refused(promise, error, status, what) {
  const got = await oauthErrorOf(promise, what);
  assert.equal(got.error, error, `${what}: error (answer ${got.status} ${JSON.stringify(got.body)})`);
  assert.equal(got.status, status, `${what}: status`);
  for (const k of ['access_token', 'id_token', 'refresh_token']) {
    assert.ok(!(got.body && k in got.body), `${what}: ${k} issued with the error`);
  }
}

async function bearer(token, pathname = '/api/session', method = 'GET') {
  const res = await fetch(`${ISSUER}${pathname}`, { method, headers: { authorization: `Bearer ${token}` } });
  const text = await res.text();
  let body = null;
  try {
    body = JSON.parse(text);
  } catch {
    // Left null: the assertions print the status.
  }
  return { status: res.status, headers: res.headers, body, text };
}

/** The API refuses the bearer token as RFC 6750 says: 401, invalid_token, and the challenge. */
async function bearerRefused(token, what, pathname = '/api/session') {
  const r = await bearer(token, pathname);
  assert.equal(r.status, 401, `${what}: ${pathname} with the bearer token answered ${r.status} ${r.text}`);
  assert.equal(r.body?.error, 'invalid_token', `${what}: error code (${r.text})`);
  assert.match(r.headers.get('www-authenticate') ?? '', /^Bearer\b.*error="invalid_token"/, `${what}: WWW-Authenticate`);
}

/** The grant's tokens no longer work: refresh is refused, the access token is refused. */
async function dead(grant, what) {
  await refused(client.refreshTokenGrant(grant.app.config, grant.refresh), 'invalid_grant', 400, `${what}: refresh`);
  await bearerRefused(grant.access, `${what}: access token`);
  const intro = await client.tokenIntrospection(grant.app.config, grant.access);
  assert.equal(intro.active, false, `${what}: introspection of the access token: ${JSON.stringify(intro)}`);
}

async function alive(grant, what) {
  const r = await bearer(grant.access);
  assert.equal(r.status, 200, `${what}: /api/session with the bearer token: ${r.status} ${r.text}`);
  assert.equal(r.body.user.id, grant.person.id, `${what}: the bearer token's user`);
}

/**
 * Starts waiting for the logout token of `grant`'s session at its app's back-channel URI, to be
 * verified as a relying party must (Back-Channel Logout 1.0 §2.6). Call it before ending the
 * session; await the result after.
 */
function loggedOut(grant, what, timeout = WAIT_MS) {
  const { app, claims } = grant;
  endedSids.add(claims.sid);
  const arrived = receiver.waitFor(
    (d) => d.path === app.backchannelPath && d.claims?.sid === claims.sid && d.answered === 200,
    `${what} (${app.name}, sid ${claims.sid})`,
    timeout,
  );
  const verified = arrived.then(async (d) => {
    assert.equal(d.method, 'POST', `${what}: delivery method`);
    assert.match(d.contentType, /^application\/x-www-form-urlencoded\b/, `${what}: delivery content type`);
    const token = d.params.get('logout_token');
    const { payload, protectedHeader } = await jose.jwtVerify(token, jwks, {
      issuer: ISSUER,
      audience: app.id,
      typ: 'logout+jwt',
      algorithms: ['RS256'],
      requiredClaims: ['iat', 'exp', 'jti', 'sub', 'sid', 'events'],
    });
    assert.ok(protectedHeader.kid, `${what}: the logout token names its key`);
    assert.deepEqual(payload.events, { [LOGOUT_EVENT]: {} }, `${what}: events`);
    assert.equal(payload.sub, claims.sub, `${what}: sub`);
    assert.equal(payload.sid, claims.sid, `${what}: sid`);
    assert.ok(!('nonce' in payload), `${what}: a logout token has no nonce`);
    return payload;
  });
  // Handled here too: a scenario that fails before awaiting it must not crash the run.
  verified.catch(() => {});
  return verified;
}

/** Scenarios that fail are reported together at the end; the run goes on with the others. */
const failures = [];

async function scenario(what, fn) {
  step(what);
  try {
    await fn();
  } catch (err) {
    failures.push({ what, err });
    console.log(`  FAILED: ${String(err.message).split('\n')[0]}`);
  }
}

// ---- the run ------------------------------------------------------------------------------

const { member, admin } = PEOPLE;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'oidc-rp-'));

try {
  await receiver.start();

  step('discovery and keys');
  const discovered = await fetch(`${ISSUER}/.well-known/openid-configuration`);
  assert.equal(discovered.status, 200, 'discovery document');
  const meta = await discovered.json();
  assert.equal(meta.issuer, ISSUER, 'issuer');
  const endpoints = {
    jwks_uri: '/oauth2/jwks',
    authorization_endpoint: '/oauth2/authorize',
    token_endpoint: '/oauth2/token',
    userinfo_endpoint: '/oauth2/userinfo',
    revocation_endpoint: '/oauth2/revoke',
    introspection_endpoint: '/oauth2/introspect',
    end_session_endpoint: '/oauth2/logout',
  };
  for (const [k, p] of Object.entries(endpoints)) assert.equal(meta[k], `${ISSUER}${p}`, k);
  assert.deepEqual(meta.code_challenge_methods_supported, ['S256'], 'code_challenge_methods_supported');
  assert.equal(meta.backchannel_logout_supported, true, 'backchannel_logout_supported');
  assert.equal(meta.backchannel_logout_session_supported, true, 'backchannel_logout_session_supported');
  assert.ok(meta.response_types_supported?.includes('code'), 'response_types_supported');
  assert.ok(meta.id_token_signing_alg_values_supported?.includes('RS256'), 'RS256 ID tokens');
  for (const s of SCOPE.split(' ')) assert.ok(meta.scopes_supported?.includes(s), `scopes_supported has ${s}`);
  const keys = await (await fetch(meta.jwks_uri)).json();
  assert.ok(keys.keys.length > 0, 'the JWKS has a key');
  for (const k of keys.keys) {
    assert.equal(k.kty, 'RSA', `key ${k.kid}: kty`);
    assert.ok(k.kid, 'every key has a kid');
    assert.ok(!('d' in k), 'no private part in the JWKS');
  }
  jwks = jose.createRemoteJWKSet(new URL(meta.jwks_uri));

  const main = await register('Main App', { backchannel: true, redirects: ['/callback', '/callback-two'] });
  const second = await register('Second App', { backchannel: true });
  const spa = await register('Single Page App', { kind: 'public' });
  assert.equal(main.config.serverMetadata().issuer, ISSUER, 'openid-client discovered the issuer');

  await scenario('an unknown client or redirect URI gets an error page, never a redirect', async () => {
    const unknown = new URL(meta.authorization_endpoint);
    unknown.search = new URLSearchParams({
      client_id: 'no-such-client',
      redirect_uri: main.redirectUri,
      response_type: 'code',
      scope: 'openid',
      state: 's',
      code_challenge: 'x'.repeat(43),
      code_challenge_method: 'S256',
    }).toString();
    for (const [what, url] of [
      ['unknown client_id', unknown],
      ['unregistered redirect_uri', (await authorizationRequest(main, {}, `${receiver.base}/elsewhere`)).url],
    ]) {
      const r = await new Browser(what).request(url);
      assert.ok(r.status >= 400 && r.status < 500, `${what}: answered ${r.status} ${r.headers.get('location') ?? ''}`);
      assert.equal(r.headers.get('location'), null, `${what}: redirected`);
    }
  });

  await scenario('prompt=none without a session answers login_required', async () => {
    const req = await authorizationRequest(main, { prompt: 'none' });
    const { url } = await new Browser('nobody').navigate(req.url, req.redirectUri);
    assert.equal(url.searchParams.get('error'), 'login_required', `prompt=none: ${url}`);
    assert.equal(url.searchParams.get('code'), null, 'prompt=none: no code');
    assert.equal(url.searchParams.get('state'), req.state, 'prompt=none: state');
    assert.equal(url.searchParams.get('iss'), ISSUER, 'prompt=none: iss');
  });

  step('code flow with PKCE through the login pages (login_hint pre-fills the email)');
  const mb = new Browser('member');
  const mg = await signIn(mb, main, member, { login_hint: member.email });
  assert.ok(mg.loginPages.length >= 1, 'the login page was shown');
  const firstEmail = mg.loginPages[0].form.inputs.find((i) => i.name === 'email');
  assert.equal(firstEmail?.value, member.email, 'login_hint pre-fills the email');

  step('userinfo');
  const info = await client.fetchUserInfo(main.config, mg.access, member.id);
  for (const k of ['sub', 'email', 'email_verified', 'name', 'org_id', 'org_slug', 'org_name', 'role']) {
    assert.deepEqual(info[k], mg.claims[k], `userinfo ${k}`);
  }

  step('the access token on the JSON API');
  {
    const r = await bearer(mg.access);
    assert.equal(r.status, 200, `/api/session: ${r.text}`);
    assert.equal(r.body.user.id, member.id, '/api/session user');
    assert.equal(r.body.tenant.id, member.org.id, '/api/session company');
    const denied = await bearer(mg.access, '/api/admin/users');
    assert.equal(denied.status, 403, `a member's token on /api/admin/users: ${denied.text}`);
  }
  const ab = new Browser('admin');
  const ag = await signIn(ab, main, admin);
  {
    const r = await bearer(ag.access, '/api/admin/users');
    assert.equal(r.status, 200, `an admin's token on /api/admin/users: ${r.text}`);
    assert.ok(r.body.users.some((u) => u.id === member.id), 'the admin sees the company');
    const other = await bearer(ag.access, `/api/admin/users/${PEOPLE.other.id}`);
    assert.equal(other.status, 404, `another company's user: ${other.text}`);
  }

  step('introspection of a live access token');
  {
    const intro = await client.tokenIntrospection(main.config, mg.access);
    assert.equal(intro.active, true, `introspection: ${JSON.stringify(intro)}`);
    assert.equal(intro.sub, member.id, 'introspection sub');
    assert.equal(intro.client_id, main.id, 'introspection client_id');
    assert.deepEqual(intro.scope.split(' ').sort(), SCOPE.split(' ').sort(), 'introspection scope');
    assert.ok(intro.exp > nowSecs(), 'introspection exp');
  }

  await scenario('a signed-in browser is not asked again; prompt=login and max_age=0 ask again', async () => {
    const silent = await signIn(mb, main, member);
    assert.equal(silent.loginPages.length, 0, 'no login page with a live session');
    assert.equal(silent.claims.sid, mg.claims.sid, 'same session, same sid');
    const b = new Browser('fresh-sign-in');
    let last = await signIn(b, main, member);
    endedSids.add(last.claims.sid);
    for (const extra of [{ prompt: 'login' }, { max_age: '0' }]) {
      // Right after the last sign-in (often within the same second): asked all the same.
      const again = await signIn(b, main, member, extra);
      const what = new URLSearchParams(extra).toString();
      assert.ok(again.loginPages.length >= 1, `${what} shows the login page`);
      assert.ok(again.claims.auth_time >= last.claims.auth_time, `${what}: auth_time`);
      // Signing in again may replace the browser's session: a logout token for it is no fault.
      endedSids.add(again.claims.sid);
      last = again;
    }
  });

  await scenario('refresh rotates; a used refresh token revokes the grant', async () => {
    const g = await signIn(mb, main, member);
    const first = g.refresh;
    const r1 = await client.refreshTokenGrant(main.config, first);
    assert.ok(r1.refresh_token && r1.refresh_token !== first, 'a new refresh token');
    assert.ok(r1.access_token && r1.access_token !== g.access, 'a new access token');
    await alive({ ...g, access: r1.access_token }, 'refreshed access token');
    const r2 = await client.refreshTokenGrant(main.config, r1.refresh_token);
    await refused(client.refreshTokenGrant(main.config, first), 'invalid_grant', 400, 'a used refresh token');
    await refused(client.refreshTokenGrant(main.config, r2.refresh_token), 'invalid_grant', 400, 'the newest refresh token after reuse');
    await bearerRefused(r2.access_token, 'the access token of a grant revoked for reuse');
  });

  await scenario('revocation, then introspection says inactive', async () => {
    const g = await signIn(mb, main, member);
    await client.tokenRevocation(main.config, g.refresh);
    const rt = await client.tokenIntrospection(main.config, g.refresh);
    assert.equal(rt.active, false, `revoked refresh token: ${JSON.stringify(rt)}`);
    await dead(g, 'after revoking its refresh token');
  });

  await scenario('PKCE and codes: wrong, missing, plain, reused, another client, another redirect URI, wrong secret', async () => {
    const wrong = await authorize(mb, main, member);
    await refused(exchange(main, wrong, { verifier: client.randomPKCECodeVerifier() }), 'invalid_grant', 400, 'a wrong code_verifier');
    const missing = await authorize(mb, main, member);
    await refused(exchange(main, missing, { verifier: undefined }), 'invalid_grant', 400, 'no code_verifier');

    for (const [what, extra] of [
      ['code_challenge_method=plain', { code_challenge_method: 'plain' }],
      ['no code_challenge', { code_challenge: undefined, code_challenge_method: undefined }],
    ]) {
      const req = await authorizationRequest(main, {});
      const u = new URL(req.url);
      for (const [k, v] of Object.entries(extra)) {
        if (v === undefined) u.searchParams.delete(k);
        else u.searchParams.set(k, v);
      }
      if (extra.code_challenge_method === 'plain') u.searchParams.set('code_challenge', req.verifier);
      const { url } = await mb.navigate(u, req.redirectUri, member);
      assert.equal(url.searchParams.get('error'), 'invalid_request', `${what}: ${url}`);
      assert.equal(url.searchParams.get('code'), null, `${what}: a code was issued`);
      assert.equal(url.searchParams.get('state'), req.state, `${what}: state`);
      assert.equal(url.searchParams.get('iss'), ISSUER, `${what}: iss`);
    }

    const once = await authorize(mb, main, member);
    const used = await exchange(main, once);
    const usedGrant = { app: main, person: member, access: used.access_token, refresh: used.refresh_token };
    await alive(usedGrant, 'the first use of a code');
    await refused(exchange(main, once), 'invalid_grant', 400, 'a code used twice');
    await dead(usedGrant, 'the tokens of a code used twice');

    const theirs = await authorize(mb, main, member);
    await refused(exchange(main, theirs, { config: second.config }), 'invalid_grant', 400, "another client's code");

    const moved = await authorize(mb, main, member);
    const elsewhere = new URL(main.redirectUris[1]);
    elsewhere.search = moved.callback.search;
    await refused(exchange(main, moved, { callback: elsewhere }), 'invalid_grant', 400, 'another registered redirect_uri at the token endpoint');

    const secretless = await authorize(mb, main, member);
    const wrongSecret = await withAuth(main, client.ClientSecretBasic('not-the-secret-0123456789abcdefghijklmnop'));
    await refused(exchange(main, secretless, { config: wrongSecret }), 'invalid_client', 401, 'a wrong client secret');
  });

  await scenario('client_secret_post, and a public client with PKCE and no secret', async () => {
    const post = await withAuth(second, client.ClientSecretPost(second.secret));
    const code = await authorize(mb, second, member);
    const tokens = await exchange(second, code, { config: post });
    assert.equal(tokens.claims().sub, member.id, 'client_secret_post');

    const g = await signIn(mb, spa, member);
    const r = await client.refreshTokenGrant(spa.config, g.refresh);
    assert.ok(r.refresh_token !== g.refresh, 'a public client refreshes with rotation');
    const bare = await authorize(mb, spa, member);
    await refused(exchange(spa, bare, { verifier: undefined }), 'invalid_grant', 400, 'a public client without code_verifier');
  });

  await scenario('forged access tokens on the API', async () => {
    const g = await signIn(mb, main, member);
    const { payload, protectedHeader } = await jose.jwtVerify(g.access, jwks, { issuer: ISSUER, typ: 'at+jwt' });
    const raised = { ...payload, sub: admin.id, role: 'admin' };
    const none = new jose.UnsecuredJWT(raised).encode();
    const unsignedAt = `${jose.base64url.encode(JSON.stringify({ alg: 'none', typ: 'at+jwt' }))}.${none.split('.')[1]}.`;
    const { privateKey } = await jose.generateKeyPair('RS256');
    const foreign = await new jose.SignJWT(raised).setProtectedHeader(protectedHeader).sign(privateKey);
    const [h, , s] = g.access.split('.');
    const altered = `${h}.${jose.base64url.encode(JSON.stringify(raised))}.${s}`;
    for (const [what, token] of [
      ['alg none', none],
      ['alg none, typ at+jwt', unsignedAt],
      ['signed by another key with the real kid', foreign],
      ['payload altered', altered],
    ]) {
      await bearerRefused(token, `forged: ${what}`);
      await bearerRefused(token, `forged: ${what}`, '/api/admin/users');
    }
    await alive(g, 'the genuine token still works');
  });

  await scenario('RP-initiated logout with id_token_hint', async () => {
    const b = new Browser('rp-logout');
    const g = await signIn(b, main, member);
    const state = client.randomState();
    const end = client.buildEndSessionUrl(main.config, {
      id_token_hint: g.tokens.id_token,
      post_logout_redirect_uri: main.postLogout,
      state,
    });
    const out = loggedOut(g, 'RP-initiated logout');
    const { url } = await b.navigate(end, main.postLogout);
    assert.equal(url.searchParams.get('state'), state, 'post-logout redirect carries state');
    const session = await b.api('GET', '/api/session');
    assert.equal(session.status, 401, `the browser's session after RP-initiated logout: ${session.text}`);
    await dead(g, 'after RP-initiated logout');
    await out;
  });

  await scenario('RP-initiated logout without a hint asks first', async () => {
    const b = new Browser('rp-logout-confirm');
    const g = await signIn(b, main, member);
    const state = client.randomState();
    const end = client.buildEndSessionUrl(main.config, { post_logout_redirect_uri: main.postLogout, state });
    const page = await b.request(end);
    assert.equal(page.status, 200, `a confirmation page: ${page.status} ${page.headers.get('location') ?? ''}`);
    const form = formsOf(page.text).find((f) => f.method === 'post');
    assert.ok(form, `a confirmation form:\n${excerpt(page.text)}`);
    await alive(g, 'before confirming');
    const fields = fieldsOf(form);
    const button = form.buttons.find((x) => x.name && /sign|log|yes|confirm|end/i.test(`${x.text} ${x.value ?? ''}`));
    if (button) fields.push([button.name, button.value ?? '']);
    const out = loggedOut(g, 'confirmed RP-initiated logout');
    const answer = await b.request(new URL(form.action || end.href, end), { method: 'POST', form: fields });
    assert.ok(answer.status >= 300 && answer.status < 400, `confirming: ${answer.status}\n${excerpt(answer.text)}`);
    const { url } = await b.navigate(new URL(answer.headers.get('location'), end), main.postLogout);
    assert.equal(url.searchParams.get('state'), state, 'post-logout redirect carries state');
    await dead(g, 'after a confirmed logout');
    await out;
  });

  await scenario('back-channel logout: sign-out (API), to every app of the session', async () => {
    const b = new Browser('sign-out');
    const g = await signIn(b, main, member);
    const h = await signIn(b, second, member);
    assert.equal(h.claims.sid, g.claims.sid, 'one session, two apps');
    const out = [loggedOut(g, 'sign-out'), loggedOut(h, 'sign-out (second app)')];
    const r = await b.api('POST', '/api/auth/logout');
    assert.equal(r.status, 200, `sign-out: ${r.text}`);
    await dead(g, 'sign-out');
    await dead(h, 'sign-out (second app)');
    await Promise.all(out);
  });

  await scenario('back-channel logout: sign-out (page)', async () => {
    const b = new Browser('sign-out-page');
    const g = await signIn(b, main, member);
    const account = await b.request(`${ISSUER}/account`);
    assert.equal(account.status, 200, `/account: ${account.status}`);
    const form = formsOf(account.text).find((f) => f.action === '/logout');
    assert.ok(form, `a sign-out form on /account:\n${excerpt(account.text)}`);
    const out = loggedOut(g, 'sign-out page');
    const r = await b.request(`${ISSUER}/logout`, { method: 'POST', form: fieldsOf(form) });
    assert.equal(r.status, 303, `POST /logout: ${r.status}\n${excerpt(r.text)}`);
    await dead(g, 'sign-out page');
    await out;
  });

  await scenario('back-channel logout: sign-out everywhere', async () => {
    const x = await signIn(new Browser('everywhere-1'), main, PEOPLE.all);
    const y = await signIn(new Browser('everywhere-2'), main, PEOPLE.all);
    assert.notEqual(x.claims.sid, y.claims.sid, 'two sessions');
    const out = [loggedOut(x, 'sign-out everywhere'), loggedOut(y, 'sign-out everywhere (other session)')];
    const r = await x.browser.api('POST', '/api/auth/logout-all');
    assert.equal(r.status, 200, `logout-all: ${r.text}`);
    await dead(x, 'sign-out everywhere (this session)');
    await dead(y, 'sign-out everywhere (the other session)');
    await Promise.all(out);
  });

  await scenario('back-channel logout: an admin blocks a user', async () => {
    const g = await signIn(new Browser('blocked'), main, PEOPLE.blocked);
    const out = loggedOut(g, 'blocked');
    const r = await ab.api('PATCH', `/api/admin/users/${PEOPLE.blocked.id}`, { blocked: true });
    assert.equal(r.status, 200, `block: ${r.text}`);
    await dead(g, 'blocked');
    await out;
  });

  await scenario('back-channel logout: an admin deletes a user', async () => {
    const g = await signIn(new Browser('deleted'), main, PEOPLE.deleted);
    const out = loggedOut(g, 'deleted');
    const r = await ab.api('DELETE', `/api/admin/users/${PEOPLE.deleted.id}`);
    assert.equal(r.status, 204, `delete: ${r.text}`);
    await dead(g, 'deleted');
    await out;
  });

  await scenario("back-channel logout: an admin changes a user's role", async () => {
    const g = await signIn(new Browser('promoted'), main, PEOPLE.promoted);
    const out = loggedOut(g, 'role changed');
    const r = await ab.api('PATCH', `/api/admin/users/${PEOPLE.promoted.id}`, { role: 'admin' });
    assert.equal(r.status, 200, `role change: ${r.text}`);
    await dead(g, 'role changed');
    await out;
  });

  await scenario('back-channel logout: a session revoked from another one', async () => {
    const b = new Browser('revoked');
    const g = await signIn(b, main, member);
    const mine = await b.api('GET', '/api/sessions');
    assert.equal(mine.status, 200, `/api/sessions: ${mine.text}`);
    const current = mine.body.sessions.find((s) => s.current);
    assert.ok(current, `the current session in ${mine.text}`);
    const other = new Browser('revoker');
    const login = await other.api('POST', '/api/auth/login', { email: member.email, password: PASSWORD });
    assert.equal(login.status, 200, `sign-in: ${login.text}`);
    const out = loggedOut(g, 'revoked session');
    const r = await other.api('DELETE', `/api/sessions/${current.id}`);
    assert.equal(r.status, 204, `revoke: ${r.text}`);
    await dead(g, 'revoked session');
    await out;
    const still = await other.api('GET', '/api/session');
    assert.equal(still.status, 200, 'the revoking session lives on');
  });

  await scenario('back-channel logout: a password reset', async () => {
    const person = PEOPLE.reset;
    const g = await signIn(new Browser('reset'), main, person);
    const seen = new Set(mailFiles(MAIL_DIR));
    const asked = await new Browser('forgot').api('POST', '/api/auth/forgot', { email: person.email });
    assert.equal(asked.status, 202, `forgot: ${asked.text}`);
    const token = await mailedToken(person.email, 'reset', seen);
    const out = loggedOut(g, 'password reset');
    const r = await new Browser('reset-link').api('POST', '/api/auth/reset', { token, password: NEW_PASSWORD });
    assert.equal(r.status, 200, `reset: ${r.text}`);
    await dead(g, 'password reset');
    await out;
  });

  await scenario('back-channel logout: a restore raises the auth epoch', async () => {
    const person = PEOPLE.restored;
    const g = await signIn(new Browser('restored'), main, person);
    const dir = path.join(tmp, 'backup');
    await tenantctl('backup', '--out', dir, '--tenant', person.org.slug);
    const out = loggedOut(g, 'restore');
    await tenantctl('restore', '--from', dir, '--tenant', person.org.slug);
    // tenantctl changed the files: the server learns of it on its own, so the logout token
    // says when to look.
    await out;
    await dead(g, 'restore');
  });

  await scenario('back-channel logout: a company suspended', async () => {
    const person = PEOPLE.suspended;
    const g = await signIn(new Browser('suspended'), main, person);
    const out = loggedOut(g, 'suspension');
    await tenantctl('tenant', 'suspend', person.org.slug);
    await out;
    await refused(client.refreshTokenGrant(main.config, g.refresh), 'invalid_grant', 400, 'suspension: refresh');
    // While suspended, the company's people are told so, bearer or cookie alike.
    const told = await bearer(g.access);
    assert.equal(told.status, 403, `suspension: access token: ${told.text}`);
    assert.equal(told.body?.error, 'tenant_suspended', `suspension: access token: ${told.text}`);
    // Resuming the company does not bring the ended session back.
    await tenantctl('tenant', 'resume', person.org.slug);
    await until(async () => (await bearer(g.access)).status !== 403, 'the server sees the company resumed');
    await dead(g, 'suspension, once the company is resumed');
  });

  await scenario('back-channel logout: a delivery that failed is tried again', async () => {
    const flaky = await register('Flaky App', { backchannel: true });
    receiver.failOnce.add(flaky.backchannelPath);
    const b = new Browser('flaky');
    const g = await signIn(b, flaky, member);
    // The first retry comes after a backoff of seconds: wait longer than for a first delivery.
    const out = loggedOut(g, 'retried delivery', 3 * WAIT_MS);
    const r = await b.api('POST', '/api/auth/logout');
    assert.equal(r.status, 200, `sign-out: ${r.text}`);
    const failed = await receiver.waitFor(
      (d) => d.path === flaky.backchannelPath && d.answered === 503,
      'the first delivery to an app that is down',
    );
    await out;
    const retried = receiver.deliveries.find((d) => d.path === flaky.backchannelPath && d.answered === 200);
    assert.equal(failed.claims?.sid, g.claims.sid, 'the failed delivery was for that session');
    assert.ok(retried.at > failed.at, 'delivered again after the failure');
  });

  await scenario('sessions that did not end are untouched', async () => {
    // The run may outlast an access token: refresh first.
    const r = await client.refreshTokenGrant(main.config, ag.refresh);
    await alive({ ...ag, access: r.access_token }, "the admin's grant");
    const bad = receiver.deliveries.filter((d) => d.problem || !endedSids.has(d.claims?.sid));
    assert.deepEqual(
      bad.map((d) => ({ path: d.path, problem: d.problem, claims: d.claims })),
      [],
      'logout tokens only for the sessions that ended',
    );
  });

  if (failures.length > 0) {
    for (const { what, err } of failures) console.error(`\n✗ ${what}\n${err.stack ?? err}`);
    throw new Error(`${failures.length} scenario(s) failed: ${failures.map((f) => f.what).join('; ')}`);
  }
  console.log('oidc rp passed');
} finally {
  receiver.close();
  fs.rmSync(tmp, { recursive: true, force: true });
}
