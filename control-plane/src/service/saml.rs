//! SAML 2.0 service provider for companies' identity providers: the IdP's metadata, our own
//! metadata, the AuthnRequest (HTTP-Redirect binding) and the check of a Response (HTTP-POST).
//!
//! Signatures are checked by xmlsec1 through `samael`, which then reduces the document to what
//! the signature covers: only the signed element is read, so wrapped copies are never seen.
//! samael's own checks (destination, recipient, times, issuer, `InResponseTo`) run on that; the
//! rules it leaves optional are enforced here: a signing certificate must exist, the audience
//! must be present and ours, the assertion must have an id, a subject and a bearer
//! confirmation. Replays (an assertion id seen before) are refused by the caller's cache.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use openssl::pkey::{PKey, Private};
use openssl::x509::X509;
use samael::crypto::{AllowedSignatureAlgorithm, CertificateDer};
use samael::metadata::{EntityDescriptor, HTTP_REDIRECT_BINDING};
use samael::schema::Assertion;
use samael::service_provider::{Error as SpError, ServiceProvider, ServiceProviderBuilder};
use samael::traits::ToXml;

/// Largest SAMLResponse accepted (base64), and largest IdP metadata document.
pub const MAX_RESPONSE: usize = 256 * 1024;
pub const MAX_METADATA: usize = 512 * 1024;

/// NameID formats our metadata offers; persistent first (a stable id), email as a fallback.
const NAMEID_PERSISTENT: &str = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent";
const NAMEID_EMAIL: &str = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress";
/// How our AuthnRequests are signed, when they are (XML-DSig's name, RFC 4051).
const SIG_RSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256";

/// Attribute names IdPs commonly use for the email and the display name, tried in order after
/// the connection's own mapping.
const EMAIL_ATTRIBUTES: &[&str] = &[
    "email",
    "mail",
    "emailaddress",
    "urn:oid:0.9.2342.19200300.100.1.3",
    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress",
];
const NAME_ATTRIBUTES: &[&str] = &[
    "name",
    "displayname",
    "urn:oid:2.16.840.1.113730.3.1.241",
    "http://schemas.microsoft.com/identity/claims/displayname",
    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name",
];

/// Why metadata or a response was refused. Each variant has a stable code for pages and the
/// audit log; the detail (never secret) says what was found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SamlError {
    #[error("the identity provider's metadata is not valid: {0}")]
    BadMetadata(String),
    #[error("the SAML response is not valid XML or base64")]
    Malformed,
    #[error("the signature does not verify against the connection's certificates")]
    Signature,
    #[error("the response is for another destination")]
    Destination,
    #[error("the assertion is for another recipient")]
    Recipient,
    #[error("the assertion is for another audience")]
    Audience,
    #[error("the response or assertion has expired")]
    Expired,
    #[error("the assertion is not valid yet")]
    NotYetValid,
    #[error("the response answers another request")]
    InResponseTo,
    #[error("an unsolicited response (IdP-initiated sign-in is off)")]
    Unsolicited,
    #[error("the response comes from another issuer")]
    Issuer,
    #[error("the identity provider refused the sign-in: {0}")]
    Status(String),
    #[error("the assertion names no subject")]
    NoSubject,
    #[error("the assertion is encrypted and cannot be decrypted")]
    Decryption,
    /// Not one Response holding exactly one assertion, or a DOCTYPE: the shapes of signature
    /// wrapping and entity tricks, refused before anything is verified.
    #[error("the response does not have the shape of one signed answer: {0}")]
    Structure(String),
    #[error("SAML: {0}")]
    Internal(String),
}

/// The code of an assertion accepted before (the caller's replay cache says so).
pub const REPLAYED: &str = "saml_replayed";

/// Every code of [`SamlError::code`], and [`REPLAYED`].
pub const CODES: &[&str] = &[
    REPLAYED,
    "saml_bad_metadata",
    "saml_malformed",
    "saml_signature_invalid",
    "saml_wrong_destination",
    "saml_wrong_recipient",
    "saml_wrong_audience",
    "saml_expired",
    "saml_not_yet_valid",
    "saml_in_response_to_mismatch",
    "saml_unsolicited",
    "saml_wrong_issuer",
    "saml_idp_error",
    "saml_no_subject",
    "saml_decryption_failed",
    "saml_bad_structure",
    "saml_error",
];

impl SamlError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadMetadata(_) => "saml_bad_metadata",
            Self::Malformed => "saml_malformed",
            Self::Signature => "saml_signature_invalid",
            Self::Destination => "saml_wrong_destination",
            Self::Recipient => "saml_wrong_recipient",
            Self::Audience => "saml_wrong_audience",
            Self::Expired => "saml_expired",
            Self::NotYetValid => "saml_not_yet_valid",
            Self::InResponseTo => "saml_in_response_to_mismatch",
            Self::Unsolicited => "saml_unsolicited",
            Self::Issuer => "saml_wrong_issuer",
            Self::Status(_) => "saml_idp_error",
            Self::NoSubject => "saml_no_subject",
            Self::Decryption => "saml_decryption_failed",
            Self::Structure(_) => "saml_bad_structure",
            Self::Internal(_) => "saml_error",
        }
    }
}

/// What matters of an IdP's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdpMetadata {
    pub entity_id: String,
    /// Where AuthnRequests go (HTTP-Redirect binding).
    pub sso_url: String,
    /// Signing certificates (base64 DER); several during a rollover.
    pub certificates: Vec<String>,
}

fn descriptor(xml: &str) -> Result<EntityDescriptor, SamlError> {
    if xml.len() > MAX_METADATA {
        return Err(SamlError::BadMetadata("larger than 512 KiB".into()));
    }
    xml.parse::<EntityDescriptor>()
        .map_err(|e| SamlError::BadMetadata(format!("not SAML metadata ({e})")))
}

/// Reads an IdP's metadata; refuses one without an entity id, an HTTP-Redirect sign-in
/// endpoint or a signing certificate (without one, nothing could be verified).
pub fn parse_idp_metadata(xml: &str) -> Result<IdpMetadata, SamlError> {
    let ed = descriptor(xml)?;
    let entity_id = ed
        .entity_id
        .clone()
        .filter(|e| !e.is_empty())
        .ok_or_else(|| SamlError::BadMetadata("no entityID".into()))?;
    let sp = ServiceProviderBuilder::default()
        .idp_metadata(ed)
        .build()
        .map_err(|e| SamlError::Internal(e.to_string()))?;
    let sso_url = sp
        .sso_binding_location(HTTP_REDIRECT_BINDING)
        .ok_or_else(|| {
            SamlError::BadMetadata("no SingleSignOnService with the HTTP-Redirect binding".into())
        })?;
    let certificates: Vec<String> = sp
        .idp_signing_certs()
        .map_err(|e| SamlError::BadMetadata(format!("unreadable certificate ({e})")))?
        .unwrap_or_default()
        .iter()
        .map(|c| B64.encode(c.der_data()))
        .collect();
    if certificates.is_empty() {
        return Err(SamlError::BadMetadata("no signing certificate".into()));
    }
    for c in &certificates {
        let der = B64.decode(c).unwrap_or_default();
        X509::from_der(&der)
            .map_err(|_| SamlError::BadMetadata("a certificate is not X.509".into()))?;
    }
    Ok(IdpMetadata {
        entity_id,
        sso_url,
        certificates,
    })
}

/// Our side of one connection: its entity id and ACS URL, and the key IdPs may encrypt to.
pub struct Sp {
    pub entity_id: String,
    pub acs_url: String,
    pub key: PKey<Private>,
    pub certificate: X509,
}

impl std::fmt::Debug for Sp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sp")
            .field("entity_id", &self.entity_id)
            .field("acs_url", &self.acs_url)
            .finish_non_exhaustive()
    }
}

impl Sp {
    fn provider(
        &self,
        idp_xml: &str,
        allow_idp_initiated: bool,
    ) -> Result<ServiceProvider, SamlError> {
        let cert = self
            .certificate
            .to_der()
            .map_err(|e| SamlError::Internal(e.to_string()))?;
        ServiceProviderBuilder::default()
            .entity_id(Some(self.entity_id.clone()))
            .acs_url(Some(self.acs_url.clone()))
            .metadata_url(Some(self.entity_id.clone()))
            // samael's metadata wants one; `metadata_xml` takes it out again (no single logout).
            .slo_url(Some(self.acs_url.clone()))
            .key(Some(self.key.clone()))
            .certificate(Some(CertificateDer::from(cert)))
            .idp_metadata(descriptor(idp_xml)?)
            .authn_name_id_format(Some(NAMEID_PERSISTENT.to_owned()))
            .allow_idp_initiated(allow_idp_initiated)
            .max_issue_delay(chrono::Duration::minutes(5))
            .max_clock_skew(chrono::Duration::minutes(2))
            .allowed_signature_algorithms(Some(vec![
                AllowedSignatureAlgorithm::RsaSha256,
                AllowedSignatureAlgorithm::RsaSha384,
                AllowedSignatureAlgorithm::RsaSha512,
                AllowedSignatureAlgorithm::EcdsaSha256,
                AllowedSignatureAlgorithm::EcdsaSha384,
                AllowedSignatureAlgorithm::EcdsaSha512,
            ]))
            .build()
            .map_err(|e| SamlError::Internal(e.to_string()))
    }

    /// Our metadata for the company admin to give their IdP: entity id, the ACS (HTTP-POST),
    /// NameID formats, our certificate (for encrypted assertions and signed requests), and
    /// whether our requests are signed.
    pub fn metadata_xml(&self, idp_xml: &str, sign_requests: bool) -> Result<String, SamlError> {
        let mut md = self
            .provider(idp_xml, false)?
            .metadata()
            .map_err(|e| SamlError::Internal(e.to_string()))?;
        md.valid_until = None;
        if let Some(sp) = md.sp_sso_descriptors.as_mut().and_then(|v| v.first_mut()) {
            sp.name_id_formats = Some(vec![NAMEID_PERSISTENT.into(), NAMEID_EMAIL.into()]);
            sp.want_assertions_signed = Some(true);
            sp.authn_requests_signed = Some(sign_requests);
            sp.single_logout_services = None;
        }
        md.to_string()
            .map_err(|e| SamlError::Internal(e.to_string()))
    }

    /// The URL that sends the browser to the IdP with an AuthnRequest of id `request_id`
    /// (HTTP-Redirect binding), signed with our key when `sign` is set.
    pub fn authn_request_url(
        &self,
        idp: &IdpMetadata,
        idp_xml: &str,
        request_id: &str,
        relay_state: &str,
        sign: bool,
    ) -> Result<String, SamlError> {
        let internal = |e: &dyn std::fmt::Display| SamlError::Internal(e.to_string());
        let mut req = self
            .provider(idp_xml, false)?
            .make_authentication_request(&idp.sso_url)
            .map_err(|e| internal(&e))?;
        req.id = request_id.to_owned();
        let url = req
            .redirect(relay_state)
            .map_err(|e| internal(&e))?
            .ok_or_else(|| SamlError::Internal("no destination".into()))?;
        if !sign {
            return Ok(url.to_string());
        }
        // The signature covers `SAMLRequest`, `RelayState` and `SigAlg` as sent, in that order
        // (SAML bindings 3.4.4.1), and nothing of the IdP's own query, if its URL has one.
        let request = url
            .query_pairs()
            .find(|(k, _)| k == "SAMLRequest")
            .map(|(_, v)| v.into_owned())
            .ok_or_else(|| SamlError::Internal("no SAMLRequest".into()))?;
        let mut ours = url::form_urlencoded::Serializer::new(String::new());
        ours.append_pair("SAMLRequest", &request);
        if !relay_state.is_empty() {
            ours.append_pair("RelayState", relay_state);
        }
        ours.append_pair("SigAlg", SIG_RSA_SHA256);
        let signed = ours.finish();
        let mut signer =
            openssl::sign::Signer::new(openssl::hash::MessageDigest::sha256(), &self.key)
                .map_err(|e| internal(&e))?;
        signer.update(signed.as_bytes()).map_err(|e| internal(&e))?;
        let signature = B64.encode(signer.sign_to_vec().map_err(|e| internal(&e))?);
        let signature: String =
            url::form_urlencoded::byte_serialize(signature.as_bytes()).collect();
        let mut out = url::Url::parse(&idp.sso_url).map_err(|e| internal(&e))?;
        let query = match out.query() {
            Some(q) if !q.is_empty() => format!("{q}&{signed}&Signature={signature}"),
            _ => format!("{signed}&Signature={signature}"),
        };
        out.set_query(Some(&query));
        Ok(out.to_string())
    }

    /// Checks a base64 `SAMLResponse`. `request_id`: the outstanding request of this browser,
    /// or `None` for an unsolicited response (accepted only when `allow_idp_initiated`).
    pub fn check_response(
        &self,
        idp: &IdpMetadata,
        idp_xml: &str,
        saml_response: &str,
        request_id: Option<&str>,
        allow_idp_initiated: bool,
        attributes: &AttributeNames,
    ) -> Result<Asserted, SamlError> {
        if saml_response.len() > MAX_RESPONSE {
            return Err(SamlError::Malformed);
        }
        let cleaned: String = saml_response
            .chars()
            .filter(|c| !c.is_ascii_whitespace())
            .collect();
        let bytes = B64.decode(cleaned).map_err(|_| SamlError::Malformed)?;
        let xml = std::str::from_utf8(&bytes).map_err(|_| SamlError::Malformed)?;
        let encrypted = shape(xml)?;
        let xml = &declare_ds_in_encrypted_key_info(xml)?;
        if request_id.is_none() && !allow_idp_initiated {
            return Err(SamlError::Unsolicited);
        }
        let provider = self.provider(idp_xml, request_id.is_none() && allow_idp_initiated)?;
        let ids: Vec<&str> = request_id.into_iter().collect();
        let assertion = provider
            .parse_xml_response(xml, request_id.map(|_| ids.as_slice()))
            .map_err(|e| {
                tracing::debug!(error = %e, "SAML response refused");
                match map_error(e) {
                    // What samael says when our key cannot open the assertion.
                    SamlError::Internal(_) if encrypted => SamlError::Decryption,
                    other => other,
                }
            })?;
        self.enforce(idp, &assertion)?;
        read(&assertion, attributes)
    }

    /// The rules samael leaves optional.
    fn enforce(&self, idp: &IdpMetadata, a: &Assertion) -> Result<(), SamlError> {
        if a.issuer.value.as_deref() != Some(idp.entity_id.as_str()) {
            return Err(SamlError::Issuer);
        }
        let audiences: Vec<&str> = a
            .conditions
            .iter()
            .flat_map(|c| c.audience_restrictions.iter().flatten())
            .flat_map(|r| r.audience.iter().map(String::as_str))
            .collect();
        if !audiences.contains(&self.entity_id.as_str()) {
            return Err(SamlError::Audience);
        }
        if a.conditions
            .as_ref()
            .and_then(|c| c.not_on_or_after)
            .is_none()
            && a.subject
                .iter()
                .flat_map(|s| s.subject_confirmations.iter().flatten())
                .all(|c| {
                    c.subject_confirmation_data
                        .as_ref()
                        .and_then(|d| d.not_on_or_after)
                        .is_none()
                })
        {
            return Err(SamlError::Expired);
        }
        if a.id.is_empty() {
            return Err(SamlError::Malformed);
        }
        Ok(())
    }
}

/// A Response as the root, no DOCTYPE, and exactly one assertion (plain or encrypted) in the
/// whole document. Every signature-wrapping attack adds a second assertion somewhere (beside,
/// around or inside the signed one), so none gets as far as the signature check.
/// Whether the assertion is encrypted.
fn shape(xml: &str) -> Result<bool, SamlError> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(xml);
    let (mut root, mut assertions, mut encrypted) = (None::<Vec<u8>>, 0usize, false);
    loop {
        let name = match reader.read_event().map_err(|_| SamlError::Malformed)? {
            Event::DocType(_) => return Err(SamlError::Structure("a DOCTYPE".into())),
            Event::Eof => break,
            Event::Start(e) | Event::Empty(e) => e.local_name().as_ref().to_vec(),
            _ => continue,
        };
        if root.is_none() {
            root = Some(name);
        } else if name == b"Assertion" || name == b"EncryptedAssertion" {
            assertions += 1;
            encrypted = name == b"EncryptedAssertion";
        }
    }
    if root.as_deref() != Some(b"Response".as_slice()) {
        return Err(SamlError::Structure("the root is not a Response".into()));
    }
    if assertions != 1 {
        return Err(SamlError::Structure(format!("{assertions} assertions")));
    }
    Ok(encrypted)
}

/// samael reads the `KeyInfo` of an `EncryptedData` only when that element itself declares the
/// `ds` (or `dsig`) prefix, as Shibboleth writes it; pysaml2 and ADFS use other prefixes or a
/// default namespace. An unused namespace declaration is left out by exclusive C14N, so adding
/// one changes no signature: it is added where missing.
fn declare_ds_in_encrypted_key_info(xml: &str) -> Result<String, SamlError> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(xml);
    let (mut inserts, mut encrypted_depth, mut depth) = (Vec::new(), None::<usize>, 0usize);
    loop {
        let at = usize::try_from(reader.buffer_position()).map_err(|_| SamlError::Malformed)?;
        let event = reader.read_event().map_err(|_| SamlError::Malformed)?;
        match &event {
            Event::Eof => break,
            Event::Start(e) | Event::Empty(e) => {
                let local = e.local_name();
                if matches!(event, Event::Start(_)) {
                    depth += 1;
                }
                if local.as_ref() == b"EncryptedData" && encrypted_depth.is_none() {
                    encrypted_depth = Some(depth);
                } else if local.as_ref() == b"KeyInfo" && encrypted_depth.is_some() {
                    let declared = e
                        .attributes()
                        .flatten()
                        .any(|a| matches!(a.key.as_ref(), b"xmlns:ds" | b"xmlns:dsig"));
                    if !declared {
                        // Right after `<` and the element's name.
                        inserts.push(at + 1 + e.name().as_ref().len());
                    }
                }
            }
            Event::End(e) => {
                if e.local_name().as_ref() == b"EncryptedData" && encrypted_depth == Some(depth) {
                    encrypted_depth = None;
                }
                depth = depth.saturating_sub(1);
            }
            _ => {}
        }
    }
    let mut out = xml.to_owned();
    for i in inserts.into_iter().rev() {
        if !out.is_char_boundary(i) {
            return Err(SamlError::Malformed);
        }
        out.insert_str(i, " xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\"");
    }
    Ok(out)
}

/// Which attributes hold the email and the name, when the IdP does not use a common name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AttributeNames {
    pub email: Option<String>,
    pub name: Option<String>,
}

/// What a valid assertion says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Asserted {
    /// For the replay cache: accepted once.
    pub assertion_id: String,
    /// Until when the assertion could be replayed (Unix seconds): how long to remember its id.
    pub valid_until: i64,
    pub name_id: String,
    pub email: Option<String>,
    pub name: Option<String>,
}

fn attribute(a: &Assertion, wanted: &[&str]) -> Option<String> {
    let attrs: Vec<_> = a
        .attribute_statements
        .iter()
        .flatten()
        .flat_map(|s| s.attributes.iter())
        .collect();
    for w in wanted {
        for at in &attrs {
            let names = [at.name.as_deref(), at.friendly_name.as_deref()];
            if names.iter().flatten().any(|n| n.eq_ignore_ascii_case(w))
                && let Some(v) = at.values.iter().find_map(|v| v.value.clone())
            {
                return Some(v.trim().to_owned());
            }
        }
    }
    None
}

fn read(a: &Assertion, names: &AttributeNames) -> Result<Asserted, SamlError> {
    let name_id = a
        .subject
        .as_ref()
        .and_then(|s| s.name_id.as_ref())
        .ok_or(SamlError::NoSubject)?;
    let value = name_id.value.trim().to_owned();
    if value.is_empty() {
        return Err(SamlError::NoSubject);
    }
    let mut email_names: Vec<&str> = names.email.iter().map(String::as_str).collect();
    email_names.extend(EMAIL_ATTRIBUTES);
    let mut name_names: Vec<&str> = names.name.iter().map(String::as_str).collect();
    name_names.extend(NAME_ATTRIBUTES);
    let email = attribute(a, &email_names)
        .or_else(|| (name_id.format.as_deref() == Some(NAMEID_EMAIL)).then(|| value.clone()));
    let valid_until = a
        .subject
        .iter()
        .flat_map(|s| s.subject_confirmations.iter().flatten())
        .filter_map(|c| c.subject_confirmation_data.as_ref()?.not_on_or_after)
        .chain(a.conditions.as_ref().and_then(|c| c.not_on_or_after))
        .map(|t| t.timestamp())
        .max()
        .unwrap_or(0);
    Ok(Asserted {
        assertion_id: a.id.clone(),
        valid_until,
        name_id: value,
        email,
        name: attribute(a, &name_names),
    })
}

fn map_error(e: SpError) -> SamlError {
    match e {
        SpError::FailedToValidateSignature => SamlError::Signature,
        SpError::DestinationValidationError { .. } => SamlError::Destination,
        SpError::AssertionRecipientMismatch { .. } => SamlError::Recipient,
        SpError::AssertionConditionAudienceRestrictionFailed { .. } => SamlError::Audience,
        SpError::ResponseExpired { .. }
        | SpError::AssertionExpired { .. }
        | SpError::AssertionConditionExpired { .. }
        | SpError::AssertionSubjectConfirmationExpired { .. } => SamlError::Expired,
        SpError::AssertionConditionExpiredBefore { .. }
        | SpError::AssertionSubjectConfirmationExpiredBefore { .. } => SamlError::NotYetValid,
        SpError::ResponseInResponseToInvalid { .. }
        | SpError::AssertionInResponseToInvalid { .. } => SamlError::InResponseTo,
        SpError::ResponseIssuerMismatch { .. } | SpError::AssertionIssuerMismatch { .. } => {
            SamlError::Issuer
        }
        SpError::ResponseBadStatusCode { code } => SamlError::Status(code),
        SpError::AssertionBearerSubjectConfirmationMissing
        | SpError::AssertionSubjectConfirmationMissing => SamlError::NoSubject,
        SpError::MissingPrivateKeySP => SamlError::Decryption,
        SpError::FailedToParseSamlResponse(_) | SpError::FailedToParseSamlAssertion(_) => {
            SamlError::Malformed
        }
        other => {
            let text = other.to_string();
            if text.to_ascii_lowercase().contains("decrypt") {
                SamlError::Decryption
            } else {
                SamlError::Internal(text)
            }
        }
    }
}

/// A new key pair and self-signed certificate for our side (encrypted assertions), as PEM.
pub fn new_sp_keypair(common_name: &str) -> Result<(String, String), SamlError> {
    use openssl::asn1::Asn1Time;
    use openssl::bn::{BigNum, MsbOption};
    use openssl::hash::MessageDigest;
    use openssl::rsa::Rsa;
    use openssl::x509::X509NameBuilder;
    let e = |e: openssl::error::ErrorStack| SamlError::Internal(e.to_string());
    let key = PKey::from_rsa(Rsa::generate(2048).map_err(e)?).map_err(e)?;
    let mut name = X509NameBuilder::new().map_err(e)?;
    name.append_entry_by_text("CN", common_name).map_err(e)?;
    let name = name.build();
    let mut b = X509::builder().map_err(e)?;
    b.set_version(2).map_err(e)?;
    let mut serial = BigNum::new().map_err(e)?;
    serial.rand(128, MsbOption::MAYBE_ZERO, false).map_err(e)?;
    let serial = serial.to_asn1_integer().map_err(e)?;
    b.set_serial_number(&serial).map_err(e)?;
    b.set_subject_name(&name).map_err(e)?;
    b.set_issuer_name(&name).map_err(e)?;
    b.set_pubkey(&key).map_err(e)?;
    let (from, until) = (
        Asn1Time::days_from_now(0).map_err(e)?,
        Asn1Time::days_from_now(3650).map_err(e)?,
    );
    b.set_not_before(&from).map_err(e)?;
    b.set_not_after(&until).map_err(e)?;
    b.sign(&key, MessageDigest::sha256()).map_err(e)?;
    let cert = b.build();
    let key_pem = String::from_utf8(key.private_key_to_pem_pkcs8().map_err(e)?)
        .map_err(|x| SamlError::Internal(x.to_string()))?;
    let cert_pem = String::from_utf8(cert.to_pem().map_err(e)?)
        .map_err(|x| SamlError::Internal(x.to_string()))?;
    Ok((key_pem, cert_pem))
}

impl Sp {
    pub fn from_pem(
        entity_id: String,
        acs_url: String,
        key_pem: &str,
        cert_pem: &str,
    ) -> Result<Self, SamlError> {
        let e = |e: openssl::error::ErrorStack| SamlError::Internal(e.to_string());
        Ok(Self {
            entity_id,
            acs_url,
            key: PKey::private_key_from_pem(key_pem.as_bytes()).map_err(e)?,
            certificate: X509::from_pem(cert_pem.as_bytes()).map_err(e)?,
        })
    }
}
