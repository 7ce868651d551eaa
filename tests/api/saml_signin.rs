//! SAML sign-in through the real binaries against a real pysaml2 IdP: a company's SAML
//! connection, our metadata, SP-initiated sign-in (linking and creation), IdP-initiated
//! sign-in when allowed, and every forged or misused response refused with no session and an
//! audit entry naming the reason.

use serde_json::{Value, json};
use tests::saml::{IdpUser, SamlIdp};
use tests::{Company, Options, PASSWORD, Person, TestApp, browser};

fn users() -> Vec<IdpUser<'static>> {
    vec![
        IdpUser {
            key: "alice",
            email: "alice@acme.test",
            name: "Alice Example",
            nameid: "idp-alice",
        },
        IdpUser {
            key: "newbie",
            email: "newbie@acme.test",
            name: "New Person",
            nameid: "idp-newbie",
        },
        IdpUser {
            key: "mallory",
            email: "mallory@evil.test",
            name: "Mallory",
            nameid: "idp-mallory",
        },
    ]
}

struct Setup {
    app: TestApp,
    acme: Company,
    evil: Company,
    idp: SamlIdp,
    /// `<tenant-id>.<connection-id>`.
    reference: String,
    /// Our entity ID for the connection.
    sp: String,
}

/// acme (with the member alice), evil (owning evil.test), an IdP, and acme's SAML connection
/// for acme.test, made from the IdP's metadata URL; the IdP trusts our metadata.
async fn setup(idp_initiated: bool) -> Setup {
    setup_with(
        SamlIdp::start(&users()),
        json!({"idp_initiated": idp_initiated}),
    )
    .await
}

/// [`setup`] with this IdP, and these fields (`idp_initiated`…) in the connection.
async fn setup_with(idp: SamlIdp, fields: Value) -> Setup {
    let app = TestApp::spawn_with(Options::at_own_address()).await;
    let acme = app.company("acme").await;
    let evil = app.company("evil").await;
    app.add_user(&acme.admin, "alice@acme.test", "member").await;
    let mut input = json!({"kind": "saml", "name": "Acme SAML",
        "idp_metadata_url": idp.metadata_url, "domains": ["acme.test"],
        "jit": {"enabled": true, "role": "member"}});
    for (k, v) in fields.as_object().expect("fields") {
        input[k] = v.clone();
    }
    let idp_initiated = input["idp_initiated"].as_bool().unwrap_or(false);
    let r = acme.admin.post("/api/admin/sso/connections", input).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let c = r.json();
    assert_eq!(c["kind"], "saml");
    assert_eq!(
        c["issuer"], idp.entity_id,
        "the IdP's entity id, from its metadata"
    );
    let saml = &c["saml"];
    let sp = saml["sp_entity_id"].as_str().expect("entity id").to_owned();
    let prefix = format!("{}/saml/", app.public_url);
    let reference = sp
        .strip_prefix(&prefix)
        .and_then(|r| r.strip_suffix("/metadata"))
        .expect("entity id is our metadata URL")
        .to_owned();
    assert_eq!(saml["sp_metadata_url"], sp);
    assert_eq!(saml["acs_url"], format!("{prefix}{reference}/acs"));
    assert_eq!(c["callback_url"], saml["acs_url"]);
    assert_eq!(saml["idp_sso_url"], format!("{}/sso", idp.base));
    assert_eq!(saml["idp_certificates"].as_array().map(Vec::len), Some(1));
    assert_eq!(saml["idp_initiated"], idp_initiated);

    // Our metadata, served to anyone (the IdP fetches it): entity id, ACS (HTTP-POST), NameID
    // formats, and our certificate.
    let md = app
        .person()
        .get(&format!("/saml/{reference}/metadata"))
        .await;
    assert_eq!(md.status, 200);
    assert!(md.header("content-type").contains("samlmetadata+xml"));
    for needle in [
        sp.as_str(),
        saml["acs_url"].as_str().unwrap(),
        "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST",
        "nameid-format:persistent",
        "X509Certificate",
    ] {
        assert!(md.body.contains(needle), "{needle} missing: {}", md.body);
    }
    idp.trust(&md.body).await;
    Setup {
        app,
        acme,
        evil,
        idp,
        reference,
        sp,
    }
}

impl Setup {
    /// A new attempt of `p`: the IdP URL our AuthnRequest sends the browser to.
    async fn start(&self, p: &Person) -> String {
        let r = p
            .get(&format!("/sso/start?connection={}", self.reference))
            .await;
        assert_eq!(r.status, 303, "{}", r.body);
        r.location().to_owned()
    }

    /// Posts a SAMLResponse (and RelayState) to our ACS as the browser `p` would.
    async fn post_acs(&self, p: &Person, response: &str, relay: Option<&str>) -> tests::Reply {
        let mut form = vec![("SAMLResponse", response)];
        if let Some(r) = relay {
            form.push(("RelayState", r));
        }
        tests::http::read(
            p.request(
                reqwest::Method::POST,
                &format!("/saml/{}/acs", self.reference),
            )
            .form(&form),
        )
        .await
    }

    /// A forged response for the attempt at `idp_url` (its request id unless `spec` names one).
    async fn forge(&self, idp_url: Option<&str>, spec: Value) -> (String, Option<String>) {
        let mut spec = spec;
        spec["sp"] = json!(self.sp);
        if spec.get("user").is_none() {
            spec["user"] = json!("alice");
        }
        let relay = match idp_url {
            Some(url) => {
                let req = self.idp.read_request(url).await;
                if spec.get("in_response_to").is_none() {
                    spec["in_response_to"] = json!(req.id);
                }
                Some(req.relay_state)
            }
            None => None,
        };
        (self.idp.forge(spec).await, relay)
    }

    /// `user` signs in at the IdP for the attempt at `url`, and the browser `p` carries the
    /// IdP's answer to our ACS and on through the finish link: the final answer.
    async fn complete(&self, p: &Person, url: &str, user: &str) -> tests::Reply {
        let answer = self.idp.sign_in(url, user).await;
        let acs = self
            .post_acs(p, &answer.saml_response, Some(&answer.relay_state))
            .await;
        through_finish(p, &acs).await
    }

    /// The admin changes the connection: its new state.
    async fn edit(&self, fields: Value) -> Value {
        let id = self.reference.split_once('.').expect("reference").1;
        let r = self
            .acme
            .admin
            .patch(&format!("/api/admin/sso/connections/{id}"), fields)
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        r.json()
    }

    /// Our metadata for the connection, as the IdP fetches it.
    async fn our_metadata(&self) -> String {
        let md = self
            .app
            .person()
            .get(&format!("/saml/{}/metadata", self.reference))
            .await;
        assert_eq!(md.status, 200, "{}", md.body);
        md.body
    }

    async fn failures(&self) -> Vec<Value> {
        let v = self
            .acme
            .admin
            .get("/api/admin/audit?limit=200")
            .await
            .json();
        v["entries"]
            .as_array()
            .expect("entries")
            .iter()
            .filter(|e| e["action"] == "sso.failed")
            .cloned()
            .collect()
    }
}

/// Follows the ACS's answer to `finish` and on; the final answer.
async fn through_finish(p: &Person, acs: &tests::Reply) -> tests::Reply {
    assert_eq!(acs.status, 303, "{}", acs.body);
    let to = acs.location();
    if !to.starts_with("/saml/finish?") {
        return acs.clone();
    }
    p.get(to).await
}

async fn signed_in_as(p: &Person) -> Option<String> {
    let r = p.get("/api/session").await;
    (r.status == 200).then(|| r.json()["user"]["email"].as_str().unwrap_or("").to_owned())
}

/// The answer is the error page's redirect with `code`, no session exists, and acme's audit
/// log has one more `sso.failed` entry with that code.
async fn refused(s: &Setup, p: &Person, answer: &tests::Reply, code: &str, before: usize) {
    assert_eq!(answer.status, 303, "{}", answer.body);
    assert_eq!(
        answer.location(),
        format!("/sso/error?code={code}"),
        "expected {code}"
    );
    assert!(answer.session().is_none(), "a session cookie was set");
    assert_eq!(signed_in_as(p).await, None, "signed in after {code}");
    let after = s.failures().await;
    assert_eq!(
        after.len(),
        before + 1,
        "one audit entry for {code}: {after:?}"
    );
    assert!(
        after.iter().any(|e| e["details"]["code"] == code),
        "no audit entry names {code}: {after:?}"
    );
    let page = p.get(&format!("/sso/error?code={code}")).await;
    assert!(page.body.contains(code), "{}", page.body);
}

#[tokio::test]
async fn people_sign_in_through_the_company_saml_idp_linked_by_nameid_or_created() {
    let s = setup(false).await;
    // The shared login page's email step sends acme.test to the SAML connection.
    let p = s.app.person();
    let d = p
        .post("/api/auth/discover", json!({"email": "alice@acme.test"}))
        .await;
    assert_eq!(d.json()["method"], "sso", "{}", d.body);
    assert!(
        d.json()["redirect"]
            .as_str()
            .unwrap()
            .contains(&s.reference),
        "{}",
        d.body
    );

    // alice: found by email in a verified domain, linked to her NameID, signed in.
    let url = s.start(&p).await;
    let answer = s.idp.sign_in(&url, "alice").await;
    assert_eq!(
        answer.acs,
        format!("{}/saml/{}/acs", s.app.public_url, s.reference)
    );
    let acs = s
        .post_acs(&p, &answer.saml_response, Some(&answer.relay_state))
        .await;
    let done = through_finish(&p, &acs).await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(done.location(), "/account");
    assert!(done.session().is_some());
    assert_eq!(signed_in_as(&p).await.as_deref(), Some("alice@acme.test"));
    let session = p.get("/api/session").await.json();
    assert!(
        session["amr"]
            .as_array()
            .is_none_or(|a| a.contains(&json!("fed"))),
        "{session}"
    );

    // The same finish link again: used once.
    let again = p.get(acs.location()).await;
    assert_eq!(again.location(), "/sso/error?code=invalid_state");

    // newbie: no account, the connection creates people: a member now.
    let q = s.app.person();
    let url = s.start(&q).await;
    let done = s.complete(&q, &url, "newbie").await;
    assert_eq!(done.location(), "/account", "{}", done.body);
    let found = s.acme.admin.get("/api/admin/users?q=newbie").await.json();
    assert_eq!(found["users"][0]["email"], "newbie@acme.test", "{found}");
    assert_eq!(found["users"][0]["name"], "New Person");
    assert_eq!(found["users"][0]["role"], "member");

    // Linked by NameID: once linked, an email the IdP now sends differently still finds
    // alice (the link, not the email, decides).
    let r = s.app.person();
    let url = s.start(&r).await;
    let (response, relay) = s
        .forge(
            Some(&url),
            json!({"variant": "resigned", "change": {"email": "alice.renamed@acme.test"}}),
        )
        .await;
    let done = through_finish(&r, &s.post_acs(&r, &response, relay.as_deref()).await).await;
    assert_eq!(done.location(), "/account", "{}", done.body);
    assert_eq!(signed_in_as(&r).await.as_deref(), Some("alice@acme.test"));
    let log = s.acme.admin.get("/api/admin/audit?limit=200").await.json();
    let linked = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "sso.linked")
        .count();
    assert_eq!(linked, 2, "alice and newbie linked once each: {log}");
}

#[tokio::test]
async fn every_forged_or_misused_response_is_refused_with_no_session_and_its_reason_audited() {
    let s = setup(false).await;
    let p = s.app.person();
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "signed by another key",
            json!({"variant": "other_key"}),
            "saml_signature_invalid",
        ),
        (
            "unsigned",
            json!({"variant": "unsigned"}),
            "saml_signature_invalid",
        ),
        (
            "tampered after signing",
            json!({"variant": "tampered", "change": {"email": "admin@acme.test"}}),
            "saml_signature_invalid",
        ),
        (
            "wrapping: the evil assertion before the signed one",
            json!({"variant": "xsw_sibling_before", "evil_user": "mallory"}),
            "saml_bad_structure",
        ),
        (
            "wrapping: the evil assertion after the signed one",
            json!({"variant": "xsw_sibling_after", "evil_user": "mallory"}),
            "saml_bad_structure",
        ),
        (
            "wrapping: the signed assertion inside the evil one",
            json!({"variant": "xsw_evil_wraps_signed", "evil_user": "mallory"}),
            "saml_bad_structure",
        ),
        (
            "wrapping: the signed assertion in Extensions",
            json!({"variant": "xsw_signed_in_extensions", "evil_user": "mallory"}),
            "saml_bad_structure",
        ),
        (
            "wrapping: the signed assertion in the signature's Object",
            json!({"variant": "xsw_signature_object", "evil_user": "mallory"}),
            "saml_bad_structure",
        ),
        (
            "for another ACS",
            json!({"variant": "wrong_destination"}),
            "saml_wrong_destination",
        ),
        (
            "for another audience",
            json!({"variant": "resigned", "change": {"audience": "https://evil.test/sp"}}),
            "saml_wrong_audience",
        ),
        (
            "expired",
            json!({"variant": "resigned", "change": {"shift_seconds": -3600}}),
            "saml_expired",
        ),
        (
            "from another issuer",
            json!({"variant": "resigned", "change": {"issuer": "https://evil.test/idp"}}),
            "saml_wrong_issuer",
        ),
        (
            "answering another request",
            json!({"variant": "resigned", "change": {"in_response_to": "_another"},
                   "in_response_to": "_another"}),
            "saml_in_response_to_mismatch",
        ),
    ];
    for (what, spec, code) in cases {
        let before = s.failures().await.len();
        let url = s.start(&p).await;
        let (response, relay) = s.forge(Some(&url), spec).await;
        let acs = s.post_acs(&p, &response, relay.as_deref()).await;
        let answer = through_finish(&p, &acs).await;
        assert_eq!(
            answer.location(),
            format!("/sso/error?code={code}"),
            "{what}: {}",
            answer.body
        );
        refused(&s, &p, &answer, code, before).await;
    }

    // InResponseTo of another request of this browser: a real response to the first attempt,
    // posted with the second's RelayState.
    let before = s.failures().await.len();
    let first = s.start(&p).await;
    let second = s.start(&p).await;
    let answer = s.idp.sign_in(&first, "alice").await;
    let other_relay = s.idp.read_request(&second).await.relay_state;
    let acs = s
        .post_acs(&p, &answer.saml_response, Some(&other_relay))
        .await;
    refused(&s, &p, &acs, "saml_in_response_to_mismatch", before).await;

    // Unsolicited (no RelayState) while IdP-initiated sign-in is off.
    let before = s.failures().await.len();
    let (response, _) = s.forge(None, json!({})).await;
    let acs = s.post_acs(&p, &response, None).await;
    refused(&s, &p, &acs, "saml_unsolicited", before).await;

    // Replayed: a response and RelayState that signed someone in, posted again.
    let before = s.failures().await.len();
    let url = s.start(&p).await;
    let answer = s.idp.sign_in(&url, "alice").await;
    let victim = s.app.person();
    let ok = through_finish(
        &p,
        &s.post_acs(&p, &answer.saml_response, Some(&answer.relay_state))
            .await,
    )
    .await;
    assert_eq!(ok.location(), "/account");
    let replay = s
        .post_acs(&victim, &answer.saml_response, Some(&answer.relay_state))
        .await;
    refused(&s, &victim, &replay, "invalid_state", before).await;

    // Another browser: the RelayState of p's attempt, completed in q's browser (login CSRF).
    let q = s.app.person();
    let before = s.failures().await.len();
    let url = s.start(&p).await;
    let answer = s.complete(&q, &url, "alice").await;
    refused(&s, &q, &answer, "invalid_state", before).await;

    // A ticket carried to another company (the token's readable prefix changed): refused.
    let t = s.app.person();
    let url = s.start(&t).await;
    let answer = s.idp.sign_in(&url, "alice").await;
    let acs = s
        .post_acs(&t, &answer.saml_response, Some(&answer.relay_state))
        .await;
    let moved = acs.location().replace(
        &format!("token={}.", s.acme.tenant_id),
        &format!("token={}.", s.evil.tenant_id),
    );
    assert_ne!(moved, acs.location());
    let answer = t.get(&moved).await;
    assert_eq!(answer.location(), "/sso/error?code=invalid_state");
    assert_eq!(signed_in_as(&t).await, None);

    // An assertion for an address of another company's domain (evil.test).
    let m = s.app.person();
    let before = s.failures().await.len();
    let url = s.start(&m).await;
    let answer = s.complete(&m, &url, "mallory").await;
    refused(&s, &m, &answer, "domain_not_allowed", before).await;

    // Garbage is a clear refusal, never a 500.
    let g = s.app.person();
    let before = s.failures().await.len();
    let url = s.start(&g).await;
    let relay = s.idp.read_request(&url).await.relay_state;
    let acs = s.post_acs(&g, "not base64 at all!", Some(&relay)).await;
    refused(&s, &g, &acs, "saml_malformed", before).await;
    let r = s.app.person().get("/saml/nope.nope/metadata").await;
    assert_eq!(r.status, 404);
}

/// The answer of the IdP's sign-in page for the request at `url`.
async fn idp_answers(url: &str) -> (u16, String) {
    let r = reqwest::get(url).await.expect("IdP sign-in page");
    (r.status().as_u16(), r.text().await.unwrap_or_default())
}

/// `url` with the value of query parameter `name` replaced by `value` (or removed: `None`).
fn with_param(url: &str, name: &str, value: Option<&str>) -> String {
    let mut u = reqwest::Url::parse(url).expect("url");
    let pairs: Vec<(String, String)> = u
        .query_pairs()
        .filter(|(k, _)| k != name)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .chain(value.map(|v| (name.to_owned(), v.to_owned())))
        .collect();
    u.query_pairs_mut().clear().extend_pairs(pairs);
    u.to_string()
}

#[tokio::test]
async fn signed_requests_satisfy_an_idp_that_requires_them_and_cannot_be_altered() {
    let s = setup_with(
        SamlIdp::start_wanting_signed_requests(&users()),
        json!({"sign_requests": true}),
    )
    .await;
    let id = s.reference.split_once('.').unwrap().1;
    let c = s
        .acme
        .admin
        .get(&format!("/api/admin/sso/connections/{id}"))
        .await;
    assert_eq!(c.json()["saml"]["sign_requests"], true, "{}", c.body);
    let md = s.our_metadata().await;
    assert!(md.contains(r#"AuthnRequestsSigned="true""#), "{md}");

    // A signed request: the IdP checks it against our metadata's certificate and signs alice in.
    let p = s.app.person();
    let url = s.start(&p).await;
    let query: Vec<String> = reqwest::Url::parse(&url)
        .expect("url")
        .query_pairs()
        .map(|(k, _)| k.into_owned())
        .collect();
    assert_eq!(
        query,
        ["SAMLRequest", "RelayState", "SigAlg", "Signature"],
        "{url}"
    );
    assert!(
        url.contains("SigAlg=http%3A%2F%2Fwww.w3.org%2F2001%2F04%2Fxmldsig-more%23rsa-sha256"),
        "{url}"
    );
    let done = s.complete(&p, &url, "alice").await;
    assert_eq!(done.location(), "/account", "{}", done.body);
    assert_eq!(signed_in_as(&p).await.as_deref(), Some("alice@acme.test"));

    // The signature covers the request and its RelayState: altered or stripped, the IdP
    // refuses it.
    let q = s.app.person();
    let url = s.start(&q).await;
    let relay = reqwest::Url::parse(&url)
        .expect("url")
        .query_pairs()
        .find(|(k, _)| k == "RelayState")
        .map(|(_, v)| v.into_owned())
        .expect("RelayState");
    for (what, forged) in [
        (
            "another RelayState",
            with_param(&url, "RelayState", Some(&format!("{relay}x"))),
        ),
        ("no signature", with_param(&url, "Signature", None)),
        (
            "another algorithm named",
            with_param(
                &url,
                "SigAlg",
                Some("http://www.w3.org/2001/04/xmldsig-more#rsa-sha512"),
            ),
        ),
    ] {
        let (status, body) = idp_answers(&forged).await;
        assert_eq!(status, 400, "{what}: {body}");
    }
    assert_eq!(idp_answers(&url).await.0, 200, "the genuine request");

    // Signing turned off by the admin: the metadata says so, and this IdP refuses the requests.
    let c = s.edit(json!({"sign_requests": false})).await;
    assert_eq!(c["saml"]["sign_requests"], false);
    let md = s.our_metadata().await;
    assert!(md.contains(r#"AuthnRequestsSigned="false""#), "{md}");
    let url = s.start(&s.app.person()).await;
    assert!(!url.contains("Signature="), "{url}");
    let (status, body) = idp_answers(&url).await;
    assert_eq!(status, 400, "an unsigned request: {body}");
}

#[tokio::test]
async fn idp_initiated_sign_in_works_when_allowed_and_each_assertion_counts_once() {
    let s = setup(true).await;
    let p = s.app.person();
    let (response, _) = s.forge(None, json!({})).await;
    let acs = s.post_acs(&p, &response, None).await;
    let done = through_finish(&p, &acs).await;
    assert_eq!(done.location(), "/account", "{}", done.body);
    assert_eq!(signed_in_as(&p).await.as_deref(), Some("alice@acme.test"));

    // The same assertion again, from another browser: the replay cache refuses it.
    let q = s.app.person();
    let before = s.failures().await.len();
    let acs = s.post_acs(&q, &response, None).await;
    refused(&s, &q, &acs, "saml_replayed", before).await;

    // Turned off again by the admin: unsolicited responses are refused.
    let c = s.edit(json!({"idp_initiated": false})).await;
    assert_eq!(c["saml"]["idp_initiated"], false);
    let before = s.failures().await.len();
    let (response, _) = s.forge(None, json!({})).await;
    let acs = s.post_acs(&q, &response, None).await;
    refused(&s, &q, &acs, "saml_unsolicited", before).await;
}

#[tokio::test]
async fn connection_input_is_checked_with_stable_codes() {
    let app = TestApp::spawn_with(Options::at_own_address()).await;
    let acme = app.company("acme").await;
    let post = |body: Value| acme.admin.post("/api/admin/sso/connections", body);
    for (body, code) in [
        (
            json!({"kind": "saml", "name": "x", "idp_metadata_xml": "<nope/>"}),
            "invalid_saml_metadata",
        ),
        (json!({"kind": "saml", "name": "x"}), "invalid_connection"),
        (
            json!({"kind": "saml", "name": "x", "idp_metadata_url": "ftp://idp.test/md"}),
            "invalid_connection",
        ),
        (
            json!({"kind": "saml", "name": "x", "client_id": "abc"}),
            "invalid_connection",
        ),
        (
            json!({"kind": "oidc", "name": "x", "idp_initiated": true}),
            "invalid_connection",
        ),
        (json!({"kind": "ws-fed", "name": "x"}), "invalid_connection"),
    ] {
        let r = post(body.clone()).await;
        assert_eq!(r.status, 400, "{body}: {}", r.body);
        assert_eq!(r.code(), code, "{body}");
    }
    // Metadata without a signing certificate could verify nothing: refused.
    let idp = SamlIdp::start(&users());
    let xml = idp.metadata().await;
    let start = xml.find("<ns0:KeyDescriptor").expect("key descriptor");
    let end = xml.rfind("</ns0:KeyDescriptor>").expect("end") + "</ns0:KeyDescriptor>".len();
    let stripped = format!("{}{}", &xml[..start], &xml[end..]);
    let r = post(json!({"kind": "saml", "name": "x", "idp_metadata_xml": stripped})).await;
    assert_eq!(r.code(), "invalid_saml_metadata", "{}", r.body);
    assert!(r.body.contains("signing certificate"), "{}", r.body);
    // The document itself is accepted, and `test` reads it again.
    let r = post(json!({"kind": "saml", "name": "x", "idp_metadata_xml": xml})).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let id = r.json()["id"].as_str().unwrap().to_owned();
    let t = acme
        .admin
        .post_empty(&format!("/api/admin/sso/connections/{id}/test"))
        .await
        .json();
    assert_eq!(t["ok"], true, "{t}");
    assert_eq!(t["signing_keys"], 1);
}

#[tokio::test]
async fn an_admin_sets_saml_up_from_the_admin_page_and_people_sign_in_in_chromium() {
    let app = TestApp::spawn_with(Options::at_own_address()).await;
    let acme = app.company("acme").await;
    app.add_user(&acme.admin, "alice@acme.test", "member").await;
    let idp = SamlIdp::start(&users());
    let artifacts = browser::artifacts_dir("E2E_SAML_ARTIFACTS_DIR", "saml");
    browser::run_flow(
        "tests/e2e/saml.mjs",
        &artifacts,
        &[
            ("E2E_BASE_URL", app.address.clone()),
            ("E2E_PUBLIC_URL", app.public_url.clone()),
            ("E2E_MAIL_DIR", app.smtp.maildir.display().to_string()),
            ("E2E_IDP_BASE", idp.base.clone()),
            ("E2E_IDP_METADATA_URL", idp.metadata_url.clone()),
            ("E2E_ADMIN_EMAIL", acme.admin_email.clone()),
            ("E2E_ADMIN_PASSWORD", PASSWORD.to_owned()),
            ("E2E_MEMBER_EMAIL", "alice@acme.test".to_owned()),
            ("E2E_MEMBER_KEY", "alice".to_owned()),
            ("E2E_JIT_EMAIL", "newbie@acme.test".to_owned()),
            ("E2E_JIT_KEY", "newbie".to_owned()),
        ],
        "e2e saml passed",
    )
    .await;
    // What the browser did is in the server.
    let users = acme.admin.get("/api/admin/users?q=newbie").await.json();
    assert_eq!(users["users"][0]["email"], "newbie@acme.test", "{users}");
    let log = acme.admin.get("/api/admin/audit?limit=200").await.json();
    assert!(
        log["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "sso.connection_created" && e["details"]["kind"] == "saml"),
        "{log}"
    );
}
