//! SAML 2.0: the check of responses against a real IdP (pysaml2, signing with xmlsec1), with a
//! forged response for every rule: each must be refused with its own reason.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::json;
use tests::inproc::saml::{AttributeNames, SamlError, Sp, new_sp_keypair, parse_idp_metadata};
use tests::saml::{IdpUser, SamlIdp};

const SP_ENTITY: &str = "http://sp.test/saml/c1/metadata";
const SP_ACS: &str = "http://sp.test/saml/c1/acs";

fn users() -> Vec<IdpUser<'static>> {
    vec![
        IdpUser {
            key: "alice",
            email: "alice@acme.test",
            name: "Alice",
            nameid: "alice-1",
        },
        IdpUser {
            key: "mallory",
            email: "mallory@evil.test",
            name: "Mallory",
            nameid: "alice-1.mallory",
        },
    ]
}

struct Setup {
    idp: SamlIdp,
    idp_xml: String,
    sp: Sp,
    /// Our certificate (PEM), which the IdP may encrypt assertions to.
    sp_cert: String,
}

async fn setup() -> Setup {
    let idp = SamlIdp::start(&users());
    let idp_xml = idp.metadata().await;
    let (key, cert) = new_sp_keypair("tenantd test").expect("keypair");
    let sp = Sp::from_pem(SP_ENTITY.into(), SP_ACS.into(), &key, &cert).expect("sp");
    idp.trust(&sp.metadata_xml(&idp_xml, false).expect("sp metadata"))
        .await;
    Setup {
        idp,
        idp_xml,
        sp,
        sp_cert: cert,
    }
}

impl Setup {
    async fn check(
        &self,
        spec: serde_json::Value,
        request_id: Option<&str>,
        allow_idp_initiated: bool,
    ) -> Result<tests::inproc::saml::Asserted, SamlError> {
        let mut spec = spec;
        spec["sp"] = json!(SP_ENTITY);
        spec["user"] = spec.get("user").cloned().unwrap_or(json!("alice"));
        let response = self.idp.forge(spec).await;
        let idp = parse_idp_metadata(&self.idp_xml).expect("idp metadata");
        self.sp.check_response(
            &idp,
            &self.idp_xml,
            &response,
            request_id,
            allow_idp_initiated,
            &AttributeNames::default(),
        )
    }
}

/// A signed AuthnRequest's signature covers `SAMLRequest`, `RelayState` and `SigAlg` as sent,
/// and not the IdP's own query parameters (Google's SSO URL carries `idpid`).
#[tokio::test]
async fn a_signed_request_covers_our_parameters_only_even_when_the_idp_url_has_a_query() {
    let s = setup().await;
    let mut idp = parse_idp_metadata(&s.idp_xml).expect("idp metadata");
    idp.sso_url = format!("{}/sso?idpid=C0123", s.idp.base);
    let url =
        s.sp.authn_request_url(&idp, &s.idp_xml, "_req-2", "relay-2", true)
            .expect("signed request");
    let parsed = url::Url::parse(&url).expect("url");
    let query = parsed.query().expect("query");
    let ours = query
        .strip_prefix("idpid=C0123&")
        .unwrap_or_else(|| panic!("the IdP's parameter first: {query}"));
    let (signed, signature) = ours.split_once("&Signature=").expect("Signature last");
    assert!(signed.starts_with("SAMLRequest="), "{signed}");
    assert!(
        signed.ends_with(
            "&RelayState=relay-2&SigAlg=http%3A%2F%2Fwww.w3.org%2F2001%2F04%2Fxmldsig-more%23rsa-sha256"
        ),
        "{signed}"
    );
    let signature: String = url::form_urlencoded::parse(format!("s={signature}").as_bytes())
        .map(|(_, v)| v.into_owned())
        .next()
        .expect("signature");
    let signature = B64.decode(signature).expect("base64 signature");
    let key = openssl::x509::X509::from_pem(s.sp_cert.as_bytes())
        .and_then(|c| c.public_key())
        .expect("our public key");
    let verifies = |text: &str| {
        let mut v = openssl::sign::Verifier::new(openssl::hash::MessageDigest::sha256(), &key)
            .expect("verifier");
        v.update(text.as_bytes()).expect("update");
        v.verify(&signature).expect("verify")
    };
    assert!(verifies(signed), "the signature covers what was sent");
    assert!(
        !verifies(query.split("&Signature=").next().unwrap()),
        "not the IdP's parameter"
    );
    assert!(
        !verifies(&signed.replace("relay-2", "relay-3")),
        "another RelayState"
    );

    // Unsigned: no SigAlg, no Signature.
    let plain =
        s.sp.authn_request_url(&idp, &s.idp_xml, "_req-3", "relay-3", false)
            .expect("request");
    assert!(
        !plain.contains("SigAlg=") && !plain.contains("Signature="),
        "{plain}"
    );
    assert!(plain.contains("idpid=C0123&SAMLRequest="), "{plain}");
}

#[tokio::test]
async fn metadata_both_ways_and_the_authn_request_reach_the_idp() {
    let s = setup().await;
    let idp = parse_idp_metadata(&s.idp_xml).expect("idp metadata");
    assert_eq!(idp.entity_id, s.idp.entity_id);
    assert_eq!(idp.sso_url, format!("{}/sso", s.idp.base));
    assert_eq!(idp.certificates.len(), 1);

    let ours = s.sp.metadata_xml(&s.idp_xml, false).expect("sp metadata");
    for needle in [
        SP_ENTITY,
        SP_ACS,
        "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST",
        "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent",
    ] {
        assert!(ours.contains(needle), "{needle} missing from {ours}");
    }

    let url =
        s.sp.authn_request_url(&idp, &s.idp_xml, "_req-1", "relay-1", false)
            .expect("authn request");
    assert!(url.starts_with(&idp.sso_url) && url.contains("RelayState=relay-1"));
    let page = reqwest::get(&url).await.expect("idp sso");
    assert_eq!(page.status(), 200);
    let body = page.text().await.expect("page");
    assert!(body.contains("_req-1"), "the IdP read our request: {body}");

    // Metadata without a signing certificate could verify nothing: refused.
    let stripped = regex_free_strip_certs(&s.idp_xml);
    assert!(matches!(
        parse_idp_metadata(&stripped),
        Err(SamlError::BadMetadata(_))
    ));
    assert!(matches!(
        parse_idp_metadata("<not-metadata/>"),
        Err(SamlError::BadMetadata(_))
    ));
}

/// The metadata with its KeyDescriptor elements removed.
fn regex_free_strip_certs(xml: &str) -> String {
    let mut out = xml.to_owned();
    while let Some(start) = out.find("<ns0:KeyDescriptor") {
        let end_tag = "</ns0:KeyDescriptor>";
        let Some(end) = out[start..].find(end_tag) else {
            break;
        };
        out.replace_range(start..start + end + end_tag.len(), "");
    }
    assert!(!out.contains("X509Certificate"), "{out}");
    out
}

#[tokio::test]
async fn a_genuine_response_is_read_and_each_forgery_is_refused_for_its_reason() {
    let s = setup().await;
    let ok = s
        .check(json!({"in_response_to": "_req-1"}), Some("_req-1"), false)
        .await
        .expect("genuine response");
    assert_eq!(ok.name_id, "alice-1");
    assert_eq!(ok.email.as_deref(), Some("alice@acme.test"));
    assert_eq!(ok.name.as_deref(), Some("Alice"));
    assert!(!ok.assertion_id.is_empty() && ok.valid_until > tests::now());

    let cases: Vec<(&str, serde_json::Value, SamlError)> = vec![
        (
            "signed by another key",
            json!({"variant": "other_key"}),
            SamlError::Signature,
        ),
        (
            "unsigned",
            json!({"variant": "unsigned"}),
            SamlError::Signature,
        ),
        (
            "signed with SHA-1",
            json!({"variant": "sha1"}),
            SamlError::Signature,
        ),
        (
            "tampered after signing",
            json!({"variant": "tampered", "change": {"email": "boss@acme.test"}}),
            SamlError::Signature,
        ),
        (
            "for another ACS",
            json!({"variant": "wrong_destination"}),
            SamlError::Destination,
        ),
        (
            "another recipient",
            json!({"variant": "resigned", "change": {"recipient": "https://evil.test/acs"}}),
            SamlError::Recipient,
        ),
        (
            "another audience",
            json!({"variant": "resigned", "change": {"audience": "https://evil.test/sp"}}),
            SamlError::Audience,
        ),
        (
            "no audience at all",
            json!({"variant": "resigned", "change": {"drop_audience": true}}),
            SamlError::Audience,
        ),
        (
            "expired an hour ago",
            json!({"variant": "resigned", "change": {"shift_seconds": -3600}}),
            SamlError::Expired,
        ),
        (
            "valid only in an hour",
            json!({"variant": "resigned", "change": {"shift_seconds": 3600}}),
            SamlError::NotYetValid,
        ),
        (
            "answering another request",
            json!({"variant": "resigned", "change": {"in_response_to": "_req-other"}}),
            SamlError::InResponseTo,
        ),
        (
            "from another issuer",
            json!({"variant": "resigned", "change": {"issuer": "https://evil.test/idp"}}),
            SamlError::Issuer,
        ),
    ];
    for (what, mut spec, want) in cases {
        spec["in_response_to"] = json!("_req-1");
        let got = s.check(spec, Some("_req-1"), false).await;
        assert_eq!(got.as_ref().err(), Some(&want), "{what}: {got:?}");
    }

    // Unsolicited: refused unless the connection allows IdP-initiated sign-in.
    let got = s.check(json!({}), None, false).await;
    assert_eq!(got.err(), Some(SamlError::Unsolicited));
    let got = s.check(json!({}), None, true).await.expect("IdP-initiated");
    assert_eq!(got.name_id, "alice-1");
}

#[tokio::test]
async fn signature_wrapping_never_lets_the_unsigned_assertion_be_read() {
    let s = setup().await;
    for variant in [
        "xsw_sibling_before",
        "xsw_sibling_after",
        "xsw_evil_wraps_signed",
        "xsw_signed_in_extensions",
        "xsw_signature_object",
    ] {
        let got = s
            .check(
                json!({"variant": variant, "in_response_to": "_req-1", "user": "alice",
                       "evil_user": "mallory"}),
                Some("_req-1"),
                false,
            )
            .await;
        // Two assertions: refused before anything is read.
        assert!(
            matches!(got, Err(SamlError::Structure(_))),
            "{variant}: {got:?}"
        );
    }
    // A DOCTYPE (entity tricks) is refused the same way, before the signature is checked.
    let genuine = s
        .idp
        .forge(json!({"sp": SP_ENTITY, "user": "alice", "in_response_to": "_req-1"}))
        .await;
    let xml = String::from_utf8(B64.decode(&genuine).expect("base64")).expect("utf-8");
    let at = xml
        .find("<ns0:Response")
        .or_else(|| xml.find("<samlp:Response"))
        .expect("root");
    let with_doctype = format!(
        "{}<!DOCTYPE r [<!ENTITY a \"b\">]>{}",
        &xml[..at],
        &xml[at..]
    );
    let idp = parse_idp_metadata(&s.idp_xml).expect("idp metadata");
    let got = s.sp.check_response(
        &idp,
        &s.idp_xml,
        &B64.encode(with_doctype),
        Some("_req-1"),
        false,
        &AttributeNames::default(),
    );
    assert!(matches!(got, Err(SamlError::Structure(_))), "{got:?}");
    // A comment inside Mallory's signed NameID must not turn it into Alice's.
    let got = s
        .check(
            json!({"variant": "comment_in_nameid", "in_response_to": "_req-1",
                   "user": "mallory", "evil_user": "alice"}),
            Some("_req-1"),
            false,
        )
        .await;
    if let Ok(a) = got {
        assert_ne!(a.name_id, "alice-1");
    }
}

#[tokio::test]
async fn encrypted_assertions_are_decrypted_with_our_key_only() {
    let s = setup().await;
    let got = s
        .check(
            json!({"variant": "encrypted", "in_response_to": "_req-1", "encrypt_cert": s.sp_cert}),
            Some("_req-1"),
            false,
        )
        .await
        .expect("an assertion encrypted to our certificate");
    assert_eq!(got.name_id, "alice-1");
    assert_eq!(got.email.as_deref(), Some("alice@acme.test"));

    // Encrypted to someone else's certificate: we cannot read it.
    let (_, other) = new_sp_keypair("someone else").expect("keypair");
    let got = s
        .check(
            json!({"variant": "encrypted", "in_response_to": "_req-1", "encrypt_cert": other}),
            Some("_req-1"),
            false,
        )
        .await;
    assert!(matches!(got, Err(SamlError::Decryption)), "{got:?}");
}
