"""A second, independent relying party built on Authlib, against a real tenantd acting as an
OpenID Connect provider (docs/OIDC.md). Run by tests/api/oidc_rp.rs.

    discovery → PKCE S256 code flow through the real login pages (a requests session keeps the
    cookies; redirects followed by hand) → token exchange with client_secret_basic → ID token
    validated with Authlib's JWT and the JWKS (iss, aud, nonce, at_hash, signature) → userinfo →
    refresh with rotation; then the same as a public client (token_endpoint_auth_method none),
    which PKCE alone proves.

Environment (all required):
    RP_ISSUER             the issuer: tenantd's public URL, where it also listens
    RP_CLIENT_ID          a confidential app registered with RP_REDIRECT_URI
    RP_CLIENT_SECRET      its secret
    RP_PUBLIC_CLIENT_ID   a public app registered with RP_REDIRECT_URI
    RP_REDIRECT_URI       the redirect URI of both (never fetched: the code is read off the
                          redirect)
    RP_PERSON             JSON {email, id, name, role, org: {id, slug, name}}: an active user
    RP_PASSWORD           their password

Exit code 0 and a last line `authlib rp passed` mean every check passed.
"""

import json
import os
import sys
import time
import warnings
from html.parser import HTMLParser
from urllib.parse import parse_qs, urljoin, urlsplit

# Authlib refuses plain http unless told: the test server answers on http://127.0.0.1.
os.environ["AUTHLIB_INSECURE_TRANSPORT"] = "1"

import requests  # noqa: E402
from authlib.deprecate import AuthlibDeprecationWarning  # noqa: E402

# authlib.jose works through 1.x; its notice about joserfc would only clutter failures.
warnings.filterwarnings("ignore", category=AuthlibDeprecationWarning)

from authlib.common.security import generate_token  # noqa: E402
from authlib.integrations.requests_client import OAuth2Session, OAuthError  # noqa: E402
from authlib.jose import JsonWebKey, jwt  # noqa: E402
from authlib.oauth2.base import OAuth2Error  # noqa: E402
from authlib.oidc.core import CodeIDToken  # noqa: E402


def env(name):
    value = os.environ.get(name, "")
    if not value:
        raise SystemExit(f"environment variable {name} is required")
    return value


ISSUER = env("RP_ISSUER").rstrip("/")
CLIENT_ID = env("RP_CLIENT_ID")
CLIENT_SECRET = env("RP_CLIENT_SECRET")
PUBLIC_CLIENT_ID = env("RP_PUBLIC_CLIENT_ID")
REDIRECT_URI = env("RP_REDIRECT_URI")
PERSON = json.loads(env("RP_PERSON"))
PASSWORD = env("RP_PASSWORD")
SCOPE = "openid profile email offline_access"


class CheckFailed(Exception):
    pass


def check(ok, message):
    if not ok:
        raise CheckFailed(message)


def equal(actual, expected, what):
    check(actual == expected, f"{what}: expected {expected!r}, got {actual!r}")


def step(what):
    print(f"— {what}", flush=True)


# ---- the login pages ------------------------------------------------------------------------


class Forms(HTMLParser):
    """Every form of a page with its inputs (attributes as written)."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.forms = []
        self._open = None

    def handle_starttag(self, tag, attrs):
        a = {k: (v if v is not None else "") for k, v in attrs}
        if tag == "form":
            self._open = {"action": a.get("action", ""), "method": a.get("method", "get").lower(), "inputs": []}
            self.forms.append(self._open)
        elif tag == "input" and self._open is not None:
            self._open["inputs"].append(a)

    def handle_endtag(self, tag):
        if tag == "form":
            self._open = None


def login_form(html):
    parser = Forms()
    parser.feed(html)
    for form in parser.forms:
        names = {i.get("name") for i in form["inputs"]}
        if form["method"] == "post" and names & {"email", "password"}:
            return form
    return None


def fields_of(form, fill):
    """What a browser submits: every named field as it stands, the empty ones we know filled."""
    fields = []
    for i in form["inputs"]:
        name, kind = i.get("name"), i.get("type", "text").lower()
        if not name or kind in ("submit", "button", "image", "reset", "file"):
            continue
        if kind in ("checkbox", "radio") and "checked" not in i:
            continue
        readonly = "readonly" in i and i.get("value")
        fields.append((name, fill[name] if name in fill and not readonly else i.get("value", "")))
    return fields


def navigate(browser, start, stop_at, creds):
    """Follows redirects from `start` (signing in on the login pages met) until one points at
    `stop_at`; returns that URL and how many login pages were shown."""
    target = urlsplit(stop_at)
    method, url, data = "GET", start, None
    pages, password_sent = 0, False
    for _ in range(25):
        u = urlsplit(url)
        if (u.scheme, u.netloc, u.path) == (target.scheme, target.netloc, target.path):
            return url, pages
        headers = {}
        if method == "POST":
            # What a browser sends with a form of tenantd's own pages.
            headers = {"Origin": ISSUER, "Sec-Fetch-Site": "same-origin"}
        r = browser.request(method, url, data=data, headers=headers, allow_redirects=False, timeout=30)
        if 300 <= r.status_code < 400:
            check("location" in r.headers, f"{r.status_code} without Location from {url}")
            method, url, data = "GET", urljoin(url, r.headers["location"]), None
            continue
        form = login_form(r.text) if r.status_code == 200 else None
        if form is not None:
            asks_password = any(i.get("name") == "password" for i in form["inputs"])
            check(not (asks_password and password_sent), f"the password was refused:\n{r.text[:2000]}")
            password_sent = password_sent or asks_password
            pages += 1
            method = "POST"
            data = fields_of(form, {"email": creds["email"], "password": creds["password"]})
            url = urljoin(url, form["action"] or url)
            continue
        raise CheckFailed(f"{method} {url} answered {r.status_code} on the way to {stop_at}:\n{r.text[:2000]}")
    raise CheckFailed(f"more than 25 redirects on the way to {stop_at}")


# ---- the relying party ----------------------------------------------------------------------


def discover():
    r = requests.get(f"{ISSUER}/.well-known/openid-configuration", timeout=30)
    equal(r.status_code, 200, "discovery document")
    meta = r.json()
    equal(meta["issuer"], ISSUER, "issuer")
    equal(meta["code_challenge_methods_supported"], ["S256"], "code_challenge_methods_supported")
    for key, path in [
        ("authorization_endpoint", "/oauth2/authorize"),
        ("token_endpoint", "/oauth2/token"),
        ("userinfo_endpoint", "/oauth2/userinfo"),
        ("jwks_uri", "/oauth2/jwks"),
    ]:
        equal(meta[key], f"{ISSUER}{path}", key)
    keys = requests.get(meta["jwks_uri"], timeout=30).json()
    return meta, JsonWebKey.import_key_set(keys)


def id_token_claims(token, client_id, nonce, keys):
    """The ID token validated by Authlib: signature against the JWKS, then iss, aud, exp, iat,
    nonce, auth_time and at_hash (CodeIDToken)."""
    claims = jwt.decode(
        token["id_token"],
        keys,
        claims_cls=CodeIDToken,
        claims_options={
            "iss": {"essential": True, "value": ISSUER},
            "aud": {"essential": True, "value": client_id},
            "sub": {"essential": True, "value": PERSON["id"]},
            "nonce": {"essential": True, "value": nonce},
            "auth_time": {"essential": True},
        },
        claims_params={"nonce": nonce, "client_id": client_id, "access_token": token["access_token"]},
    )
    claims.validate(leeway=5)
    equal(claims.header["alg"], "RS256", "ID token alg")
    return claims


def check_person(claims, what):
    equal(claims["sub"], PERSON["id"], f"{what}: sub")
    equal(claims["email"], PERSON["email"], f"{what}: email")
    equal(claims["email_verified"], True, f"{what}: email_verified")
    equal(claims["name"], PERSON["name"], f"{what}: name")
    equal(claims["role"], PERSON["role"], f"{what}: role")
    for k in ("id", "slug", "name"):
        equal(claims[f"org_{k}"], PERSON["org"][k], f"{what}: org_{k}")


def oauth_error(call, what):
    try:
        result = call()
    except (OAuthError, OAuth2Error) as err:
        return err.error
    raise CheckFailed(f"{what}: expected an error, but tokens were issued: {result}")


def sign_in(browser, meta, keys, session, client_id, verifier=None):
    """The code flow for one app in `browser`: returns the token response and ID token claims."""
    verifier = verifier or generate_token(48)
    nonce = generate_token(24)
    url, state = session.create_authorization_url(
        meta["authorization_endpoint"], code_verifier=verifier, nonce=nonce
    )
    check("code_challenge_method=S256" in url, f"Authlib asked for S256: {url}")
    callback, pages = navigate(browser, url, REDIRECT_URI, {"email": PERSON["email"], "password": PASSWORD})
    q = parse_qs(urlsplit(callback).query)
    check("error" not in q, f"authorization error: {q}")
    equal(q.get("iss"), [ISSUER], "iss on the authorization response (RFC 9207)")
    # fetch_token checks the state against the one Authlib made.
    token = session.fetch_token(
        meta["token_endpoint"], authorization_response=callback, code_verifier=verifier, state=state
    )
    claims = id_token_claims(token, client_id, nonce, keys)
    check_person(claims, f"ID token of {client_id}")
    equal(claims["amr"], ["pwd"], "amr")
    check(isinstance(claims.get("sid"), str) and claims["sid"], "sid")
    check(claims["auth_time"] <= time.time() + 5, "auth_time")
    return token, claims, pages


def exercise(meta, keys, browser, session, client_id, what):
    step(f"{what}: code flow, ID token, userinfo")
    token, claims, pages = sign_in(browser, meta, keys, session, client_id)
    check(token.get("refresh_token"), f"{what}: offline_access gives a refresh token")
    info = session.get(meta["userinfo_endpoint"], timeout=30)
    equal(info.status_code, 200, f"{what}: userinfo")
    check_person(info.json(), f"{what}: userinfo")

    step(f"{what}: refresh rotates")
    old = token["refresh_token"]
    fresh = session.refresh_token(meta["token_endpoint"], refresh_token=old)
    check(fresh.get("access_token"), f"{what}: a new access token")
    check(fresh.get("refresh_token") and fresh["refresh_token"] != old, f"{what}: a new refresh token")
    me = requests.get(f"{ISSUER}/api/session", headers={"Authorization": f"Bearer {fresh['access_token']}"}, timeout=30)
    equal(me.status_code, 200, f"{what}: the refreshed access token on /api/session")
    equal(me.json()["user"]["id"], PERSON["id"], f"{what}: /api/session user")
    err = oauth_error(lambda: session.refresh_token(meta["token_endpoint"], refresh_token=old), f"{what}: reuse")
    equal(err, "invalid_grant", f"{what}: a used refresh token")
    return pages


def main():
    step("discovery")
    meta, keys = discover()
    browser = requests.Session()

    confidential = OAuth2Session(
        CLIENT_ID,
        CLIENT_SECRET,
        scope=SCOPE,
        redirect_uri=REDIRECT_URI,
        code_challenge_method="S256",
        token_endpoint_auth_method="client_secret_basic",
    )
    pages = exercise(meta, keys, browser, confidential, CLIENT_ID, "client_secret_basic")
    check(pages >= 1, "the login pages were shown")

    public = OAuth2Session(
        PUBLIC_CLIENT_ID,
        scope=SCOPE,
        redirect_uri=REDIRECT_URI,
        code_challenge_method="S256",
        token_endpoint_auth_method="none",
    )
    # The same browser: signed in already, so no login page this time.
    pages = exercise(meta, keys, browser, public, PUBLIC_CLIENT_ID, "public client")
    equal(pages, 0, "login pages for a signed-in browser")

    step("public client: a wrong code_verifier is refused")
    url, state = public.create_authorization_url(
        meta["authorization_endpoint"], code_verifier=generate_token(48), nonce=generate_token(24)
    )
    callback, _ = navigate(browser, url, REDIRECT_URI, None)
    err = oauth_error(
        lambda: public.fetch_token(
            meta["token_endpoint"], authorization_response=callback, code_verifier=generate_token(48), state=state
        ),
        "wrong code_verifier",
    )
    equal(err, "invalid_grant", "a public client's wrong code_verifier")

    print("authlib rp passed", flush=True)


if __name__ == "__main__":
    try:
        main()
    except CheckFailed as failure:
        print(f"check failed: {failure}", file=sys.stderr, flush=True)
        sys.exit(1)
