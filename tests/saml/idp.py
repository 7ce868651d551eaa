"""A real SAML 2.0 identity provider for the tests: pysaml2's IdP on loopback.

    python3 tests/saml/idp.py --users users.json [--port 0] [--want-signed-requests]

Prints one JSON line once listening: {"base": ..., "metadata_url": ..., "entity_id": ...}.

- GET  /metadata          the IdP's metadata (entity id, HTTP-Redirect SSO endpoint, signing cert)
- POST /sp                 body: an SP's metadata XML; the IdP trusts that SP from then on
- GET  /sso                HTTP-Redirect binding: shows a sign-in form for the AuthnRequest
                           (with --want-signed-requests, only for one the SP signed, checked
                           against the signing certificate of the SP's metadata)
- POST /sso/login          user=<key>: answers with an auto-posting form to the SP's ACS
- POST /forge              test-only: a Response built to order (see `forge`), tampered or
                           signed by another key, as the base64 SAMLResponse to post to an ACS

Users (users.json): {"<key>": {"email": ..., "name": ..., "nameid": ...}}.
"""

import argparse
import base64
import copy
import functools
import datetime
import html
import json
import os
import subprocess
import sys
import tempfile
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import warnings

warnings.filterwarnings("ignore")

from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import rsa  # noqa: E402
from cryptography.x509.oid import NameOID  # noqa: E402
from lxml import etree  # noqa: E402
import saml2.entity  # noqa: E402
import saml2.sigver  # noqa: E402
from saml2 import BINDING_HTTP_REDIRECT, saml  # noqa: E402
from saml2.config import IdPConfig  # noqa: E402
from saml2.metadata import entity_descriptor  # noqa: E402
from saml2.saml import NAME_FORMAT_URI, NAMEID_FORMAT_PERSISTENT  # noqa: E402
from saml2.server import Server  # noqa: E402
from saml2.xmldsig import DIGEST_SHA1, DIGEST_SHA256, SIG_RSA_SHA1, SIG_RSA_SHA256  # noqa: E402

# Encrypted assertions with AES-128-CBC (pysaml2's default, 3DES, is obsolete).
saml2.entity.pre_encryption_part = functools.partial(
    saml2.sigver.pre_encryption_part, msg_enc="http://www.w3.org/2001/04/xmlenc#aes128-cbc")
_encrypt_assertion = saml2.sigver.SecurityContext.encrypt_assertion
saml2.sigver.SecurityContext.encrypt_assertion = (
    lambda self, statement, enc_key, template, key_type="des-192", node_xpath=None:
    _encrypt_assertion(self, statement, enc_key, template, "aes-128", node_xpath))

NS = {
    "samlp": "urn:oasis:names:tc:SAML:2.0:protocol",
    "saml": "urn:oasis:names:tc:SAML:2.0:assertion",
    "ds": "http://www.w3.org/2000/09/xmldsig#",
}


def keypair(folder, name):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"test idp {name}")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    key_file = os.path.join(folder, f"{name}.key")
    cert_file = os.path.join(folder, f"{name}.crt")
    with open(key_file, "wb") as f:
        f.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.TraditionalOpenSSL,
                serialization.NoEncryption(),
            )
        )
    with open(cert_file, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    return key_file, cert_file


def make_server(base, folder, name, want_signed=False):
    key_file, cert_file = keypair(folder, name)
    conf = {
        "entityid": base + "/metadata",
        "service": {
            "idp": {
                "name": "tenantd test IdP",
                "endpoints": {
                    "single_sign_on_service": [(base + "/sso", BINDING_HTTP_REDIRECT)],
                },
                "policy": {
                    "default": {
                        "lifetime": {"minutes": 15},
                        "attribute_restrictions": None,
                        "name_form": NAME_FORMAT_URI,
                    }
                },
                "name_id_format": [NAMEID_FORMAT_PERSISTENT],
                "want_authn_requests_signed": want_signed,
                "signing_algorithm": SIG_RSA_SHA256,
                "digest_algorithm": DIGEST_SHA256,
            }
        },
        "key_file": key_file,
        "cert_file": cert_file,
        "encryption_keypairs": [{"key_file": key_file, "cert_file": cert_file}],
        "xmlsec_binary": "/usr/bin/xmlsec1",
        "metadata": {},
    }
    cfg = IdPConfig()
    cfg.load(conf)
    return Server(config=cfg)


class IdP:
    def __init__(self, base, users, want_signed=False):
        self.base = base
        self.users = users
        self.folder = tempfile.mkdtemp(prefix="saml-idp-")
        self.server = make_server(base, self.folder, "idp", want_signed)
        # Same entity id, another key: what an attacker without the IdP's key can sign.
        self.impostor = make_server(base, self.folder, "impostor")
        self.sps = {}
        self.lock = threading.Lock()

    def metadata(self):
        return str(entity_descriptor(self.server.config))

    def add_sp(self, xml):
        with self.lock:
            for s in (self.server, self.impostor):
                s.metadata.load("inline", xml)
        root = etree.fromstring(xml.encode())
        entity_id = root.get("entityID")
        acs = root.find(".//{*}AssertionConsumerService").get("Location")
        self.sps[entity_id] = acs
        return entity_id

    def response(self, user, in_response_to, sp_entity_id, acs, server=None, **kw):
        u = self.users[user]
        identity = {"mail": [u["email"]], "displayName": [u.get("name", "")]}
        server = server or self.server
        resp = server.create_authn_response(
            identity,
            in_response_to=in_response_to,
            destination=acs,
            sp_entity_id=sp_entity_id,
            name_id=saml.NameID(format=NAMEID_FORMAT_PERSISTENT, text=u["nameid"]),
            authn={"class_ref": saml.AUTHN_PASSWORD_PROTECTED, "authn_auth": self.base},
            sign_response=kw.get("sign_response", True),
            sign_assertion=kw.get("sign_assertion", True),
            encrypt_assertion=kw.get("encrypt", False),
            encrypt_cert_assertion=kw.get("encrypt_cert"),
            sign_alg=kw.get("sign_alg"),
            digest_alg=kw.get("digest_alg"),
        )
        return str(resp)


def post_form(acs, saml_response, relay_state):
    fields = f'<input type="hidden" name="SAMLResponse" value="{html.escape(saml_response)}">'
    if relay_state:
        fields += f'<input type="hidden" name="RelayState" value="{html.escape(relay_state)}">'
    return (
        "<!doctype html><title>Test IdP</title>"
        f'<form method="post" action="{html.escape(acs)}">{fields}'
        '<button id="continue" type="submit">Continue to the app</button></form>'
    )


def b64(xml):
    return base64.b64encode(xml.encode()).decode()


def forge(idp, spec):
    """A Response to order, to post to an ACS. spec: user, sp (entity id), in_response_to, and:
    - variant "genuine" (default): what the IdP would send;
    - "other_key": signed by a key that is not in the IdP's metadata;
    - "unsigned": no signature at all;
    - "encrypted": the assertion encrypted to `encrypt_cert` (PEM), the Response signed;
    - "resigned" with `change`: the fields in `change` rewritten, then signed again with the
      IdP's real key by xmlsec1 -- a correctly signed response that breaks one rule;
    - "tampered" with `change`: the same rewrite without signing again;
    - a wrapping variant (see `wrap`), with `evil_user` the identity smuggled in."""
    variant = spec.get("variant", "genuine")
    sp = spec["sp"]
    acs = idp.sps[sp]
    user = spec["user"]
    irt = spec.get("in_response_to")
    if variant == "other_key":
        return b64(idp.response(user, irt, sp, acs, server=idp.impostor))
    if variant == "sha1":
        # The real key, with an algorithm too weak to accept.
        return b64(idp.response(user, irt, sp, acs, sign_alg=SIG_RSA_SHA1, digest_alg=DIGEST_SHA1))
    if variant == "unsigned":
        return b64(idp.response(user, irt, sp, acs, sign_response=False, sign_assertion=False))
    if variant == "wrong_destination":
        # Signed Response and assertion, addressed to another service's ACS.
        return b64(idp.response(user, irt, sp, spec.get("destination", "https://evil.test/acs"),
                                sign_response=True, sign_assertion=True))
    if variant == "encrypted":
        return b64(idp.response(user, irt, sp, acs, sign_response=True, sign_assertion=False,
                                encrypt=True, encrypt_cert=spec["encrypt_cert"]))
    genuine = idp.response(user, irt, sp, acs, sign_response=False, sign_assertion=True)
    if variant == "genuine":
        return b64(genuine)
    if variant in ("resigned", "tampered"):
        changed = rewrite(genuine, spec.get("change", {}))
        if variant == "resigned":
            changed = resign(changed, idp.folder)
        return b64(changed)
    evil_user = idp.users[spec["evil_user"]] if "evil_user" in spec else None
    return b64(wrap(genuine, variant, evil_user))


def shifted(value, seconds):
    t = datetime.datetime.strptime(value[:19], "%Y-%m-%dT%H:%M:%S")
    return (t + datetime.timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def rewrite(xml, change):
    root = etree.fromstring(xml.encode())
    a = root.find("saml:Assertion", NS)
    if "shift_seconds" in change:
        # Every time in the response moves: an old response (negative) or a future one.
        for el in root.iter():
            for attr in ("IssueInstant", "NotBefore", "NotOnOrAfter", "AuthnInstant",
                         "SessionNotOnOrAfter"):
                if el.get(attr):
                    el.set(attr, shifted(el.get(attr), change["shift_seconds"]))
    if "destination" in change:
        root.set("Destination", change["destination"])
    scd = a.find("saml:Subject/saml:SubjectConfirmation/saml:SubjectConfirmationData", NS)
    if "recipient" in change:
        scd.set("Recipient", change["recipient"])
    if "in_response_to" in change:
        root.set("InResponseTo", change["in_response_to"])
        scd.set("InResponseTo", change["in_response_to"])
    if "audience" in change:
        for aud in a.iterfind(".//saml:Audience", NS):
            aud.text = change["audience"]
    if change.get("drop_audience"):
        cond = a.find("saml:Conditions", NS)
        for r in cond.findall("saml:AudienceRestriction", NS):
            cond.remove(r)
    if "issuer" in change:
        for iss in root.iterfind(".//saml:Issuer", NS):
            iss.text = change["issuer"]
    if "email" in change:
        for v in a.iterfind(".//saml:AttributeValue", NS):
            if "@" in (v.text or ""):
                v.text = change["email"]
    if "nameid" in change:
        a.find("saml:Subject/saml:NameID", NS).text = change["nameid"]
    if "assertion_id" in change:
        old = a.get("ID")
        a.set("ID", change["assertion_id"])
        ref = a.find("ds:Signature/ds:SignedInfo/ds:Reference", NS)
        if ref is not None and ref.get("URI") == "#" + old:
            ref.set("URI", "#" + change["assertion_id"])
    return etree.tostring(root, encoding="unicode")


def resign(xml, folder):
    """Signs the assertion again with the IdP's real key, with Debian's xmlsec1."""
    src = os.path.join(folder, f"resign-{os.getpid()}-{threading.get_ident()}.xml")
    out = src + ".signed"
    with open(src, "w") as f:
        f.write(xml)
    key = os.path.join(folder, "idp.key") + "," + os.path.join(folder, "idp.crt")
    subprocess.run(
        ["xmlsec1", "--sign", "--privkey-pem", key,
         "--id-attr:ID", "urn:oasis:names:tc:SAML:2.0:assertion:Assertion",
         "--output", out, src],
        check=True, capture_output=True)
    with open(out) as f:
        return f.read()


def wrap(xml, variant, evil_user):
    """XML signature wrapping: the signed assertion stays (so the signature verifies) while an
    unsigned, attacker-written one is placed where a careless reader would look."""
    root = etree.fromstring(xml.encode())
    signed = root.find("saml:Assertion", NS)
    evil = copy.deepcopy(signed)
    for sig in evil.findall("ds:Signature", NS):
        evil.remove(sig)
    if evil_user is not None:
        evil.find("saml:Subject/saml:NameID", NS).text = evil_user["nameid"]
        for v in evil.iterfind(".//saml:AttributeValue", NS):
            if "@" in (v.text or ""):
                v.text = evil_user["email"]
    idx = list(root).index(signed)
    if variant == "xsw_sibling_before":
        # The evil assertion first, with the same ID: a reader taking the first one is fooled.
        root.insert(idx, evil)
    elif variant == "xsw_sibling_after":
        evil.set("ID", "_evil")
        root.insert(idx + 1, evil)
    elif variant == "xsw_evil_wraps_signed":
        # The evil assertion takes the signed one's place and hides it inside itself.
        root.remove(signed)
        evil.set("ID", "_evil")
        evil.append(signed)
        root.insert(idx, evil)
    elif variant == "xsw_signed_in_extensions":
        # The signed assertion moves into samlp:Extensions; the evil one takes its place.
        root.remove(signed)
        ext = etree.Element("{%s}Extensions" % NS["samlp"])
        ext.append(signed)
        root.insert(1, ext)
        root.insert(idx + 1, evil)
    elif variant == "xsw_signature_object":
        # The evil assertion carries the signature, whose ds:Object holds the signed original.
        root.remove(signed)
        sig = copy.deepcopy(signed.find("ds:Signature", NS))
        obj = etree.SubElement(sig, "{%s}Object" % NS["ds"])
        obj.append(signed)
        evil.set("ID", "_evil")
        evil.insert(1, sig)
        root.insert(idx, evil)
    elif variant == "comment_in_nameid":
        # A comment inside the NameID: exclusive C14N drops it, so the signature still
        # verifies, and a reader that keeps only the first text node sees another name.
        nid = signed.find("saml:Subject/saml:NameID", NS)
        text = nid.text or ""
        nid.text = (evil_user or {}).get("nameid", text[:3])
        c = etree.Comment("x")
        c.tail = text[len(nid.text):] if text.startswith(nid.text) else ""
        nid.append(c)
    else:
        raise ValueError("unknown variant " + variant)
    return etree.tostring(root, encoding="unicode")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--users", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--want-signed-requests", action="store_true")
    args = ap.parse_args()
    with open(args.users) as f:
        users = json.load(f)

    holder = {}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def reply(self, status, body, ctype="text/html; charset=utf-8"):
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def body(self):
            n = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(n).decode()

        def do_GET(self):
            idp = holder["idp"]
            url = urllib.parse.urlparse(self.path)
            q = dict(urllib.parse.parse_qsl(url.query))
            if url.path == "/metadata":
                return self.reply(200, idp.metadata(), "application/samlmetadata+xml")
            if url.path == "/sso":
                try:
                    req = idp.server.parse_authn_request(
                        q["SAMLRequest"], BINDING_HTTP_REDIRECT, relay_state=q.get("RelayState"),
                        sigalg=q.get("SigAlg"), signature=q.get("Signature"))
                except Exception as e:  # a bad request gets the IdP's own error page
                    return self.reply(400, f"bad AuthnRequest: {html.escape(str(e))}")
                msg = req.message
                options = "".join(
                    f'<option value="{html.escape(k)}">{html.escape(v["email"])}</option>'
                    for k, v in idp.users.items()
                )
                page = (
                    "<!doctype html><title>Test IdP sign-in</title><h1>Test IdP</h1>"
                    '<form method="post" action="/sso/login">'
                    f'<input type="hidden" name="id" value="{html.escape(msg.id)}">'
                    f'<input type="hidden" name="sp" value="{html.escape(msg.issuer.text)}">'
                    f'<input type="hidden" name="acs" value="{html.escape(msg.assertion_consumer_service_url or "")}">'
                    f'<input type="hidden" name="relay" value="{html.escape(q.get("RelayState", ""))}">'
                    f'<select name="user" id="user">{options}</select>'
                    '<button id="signin" type="submit">Sign in</button></form>'
                )
                return self.reply(200, page)
            return self.reply(404, "not found")

        def do_POST(self):
            idp = holder["idp"]
            url = urllib.parse.urlparse(self.path)
            if url.path == "/sp":
                entity = idp.add_sp(self.body())
                return self.reply(200, json.dumps({"entity_id": entity}), "application/json")
            if url.path == "/sso/login":
                f = dict(urllib.parse.parse_qsl(self.body()))
                acs = idp.sps.get(f["sp"])
                if acs is None or (f.get("acs") and f["acs"] != acs):
                    return self.reply(400, "unknown service provider or ACS")
                xml = idp.response(f["user"], f["id"], f["sp"], acs)
                return self.reply(200, post_form(acs, b64(xml), f.get("relay")))
            if url.path == "/forge":
                spec = json.loads(self.body())
                try:
                    out = forge(idp, spec)
                except Exception as e:
                    return self.reply(400, json.dumps({"error": str(e)}), "application/json")
                return self.reply(200, json.dumps({"SAMLResponse": out}), "application/json")
            return self.reply(404, "not found")

    httpd = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    holder["idp"] = IdP(base, users, args.want_signed_requests)
    print(json.dumps({"base": base, "metadata_url": base + "/metadata",
                      "entity_id": base + "/metadata"}), flush=True)
    httpd.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
