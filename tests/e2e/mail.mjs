// Mail as the scripts read it: the messages a real SMTP server (aiosmtpd) stored in its
// maildir, or tenantd wrote to its outbox, parsed into { file, to, text } (unfolded headers,
// the decoded text/plain part). Shared by tests/e2e/flow.mjs and tests/oidc/rp.mjs.

import fs from 'node:fs';
import path from 'node:path';

/** Every file under the mail folder (maildir new/ and cur/, or the outbox's .eml files). */
export function mailFiles(dir) {
  const out = [];
  const walk = (dir) => {
    let entries;
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) {
        if (e.name !== 'tmp') walk(p);
      } else if (e.isFile()) {
        out.push(p);
      }
    }
  };
  walk(dir);
  return out;
}

function splitHeaders(raw) {
  const text = raw.replace(/\r\n/g, '\n');
  const cut = text.indexOf('\n\n');
  const head = cut < 0 ? text : text.slice(0, cut);
  const body = cut < 0 ? '' : text.slice(cut + 2);
  const headers = new Map();
  let last = null;
  for (const line of head.split('\n')) {
    if (/^[ \t]/.test(line) && last) {
      headers.set(last, `${headers.get(last)} ${line.trim()}`);
    } else {
      const i = line.indexOf(':');
      if (i > 0) {
        last = line.slice(0, i).trim().toLowerCase();
        if (!headers.has(last)) headers.set(last, line.slice(i + 1).trim());
      }
    }
  }
  return { headers, body };
}

function decodeQuotedPrintable(s) {
  const bytes = [];
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === '=' && s[i + 1] === '\n') {
      i += 1;
    } else if (c === '=' && /^[0-9A-Fa-f]{2}$/.test(s.slice(i + 1, i + 3))) {
      bytes.push(parseInt(s.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      bytes.push(...Buffer.from(c, 'utf8'));
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

function decodeBody(body, encoding) {
  switch ((encoding ?? '').toLowerCase()) {
    case 'base64':
      return Buffer.from(body.replace(/\s+/g, ''), 'base64').toString('utf8');
    case 'quoted-printable':
      return decodeQuotedPrintable(body);
    default:
      return body;
  }
}

/** The decoded text/plain part of a message, descending into multiparts. */
function textPart(headers, body) {
  const ctype = headers.get('content-type') ?? 'text/plain';
  if (/^multipart\//i.test(ctype)) {
    const m = /boundary="?([^";]+)"?/i.exec(ctype);
    if (!m) return null;
    const parts = body.split(`--${m[1]}`).slice(1);
    for (const part of parts) {
      if (part.startsWith('--')) break;
      const p = splitHeaders(part.replace(/^\n/, ''));
      const t = textPart(p.headers, p.body);
      if (t !== null) return t;
    }
    return null;
  }
  if (/^text\/plain/i.test(ctype)) return decodeBody(body, headers.get('content-transfer-encoding'));
  return null;
}

export function parseMail(file) {
  const { headers, body } = splitHeaders(fs.readFileSync(file, 'utf8'));
  const toHeader = headers.get('x-rcptto') ?? headers.get('to') ?? '';
  const angle = /<([^>]+)>/.exec(toHeader);
  const to = (angle ? angle[1] : toHeader).trim().toLowerCase();
  const text = textPart(headers, body) ?? '';
  return { file, to, text };
}
