//! Keys and certificates as Talos makes them (behaviour.md §9): Ed25519 OS
//! CA, ECDSA P-256 Kubernetes/etcd CAs, RSA-4096 service-account key, the PEM
//! labels Talos's loader accepts, and X.509 issuance with an injectable RNG
//! and clock.

use std::time::{Duration, SystemTime};

use ed25519_dalek::pkcs8::spki::EncodePublicKey;
use p256::elliptic_curve::Generate;
use rand_core::CryptoRng;
use x509_cert::Certificate;
use x509_cert::SubjectPublicKeyInfo;
use x509_cert::builder::profile::BuilderProfile;
use x509_cert::builder::{Builder, CertificateBuilder};
use x509_cert::certificate::TbsCertificate;
use x509_cert::der::asn1::OctetString;
use x509_cert::der::pem::LineEnding;
use x509_cert::der::{self as der, Decode, DecodePem, Encode};
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, KeyUsages, SubjectKeyIdentifier,
};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::SubjectPublicKeyInfoRef;
use x509_cert::time::{Time, Validity};

/// PEM label of certificates.
pub const CERTIFICATE_LABEL: &str = "CERTIFICATE";
/// PEM label Talos uses for Ed25519 keys (PKCS#8 body; non-standard label).
pub const ED25519_KEY_LABEL: &str = "ED25519 PRIVATE KEY";
/// PEM label of SEC1 EC keys.
pub const EC_KEY_LABEL: &str = "EC PRIVATE KEY";
/// PEM label of PKCS#1 RSA keys.
pub const RSA_KEY_LABEL: &str = "RSA PRIVATE KEY";
/// PEM label of plain PKCS#8 keys (accepted on import, never emitted).
pub const PKCS8_KEY_LABEL: &str = "PRIVATE KEY";

/// Validity of every CA Talos generates: 87600 h (10 years).
pub const CA_VALIDITY: Duration = Duration::from_secs(87_600 * 3600);

/// Key or certificate handling failed.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// Text is not PEM, or has an unexpected label.
    #[error("not a PEM block labelled {expected}")]
    Pem {
        /// Label(s) that were acceptable.
        expected: String,
        /// Underlying decoder error, when there was one.
        #[source]
        source: Option<der::Error>,
    },
    /// The PEM label is not one Talos's loader accepts.
    #[error("unsupported key type (PEM label {label:?})")]
    UnsupportedKey {
        /// The label found.
        label: String,
    },
    /// The DER inside a PEM block does not decode.
    #[error("malformed {what}")]
    Der {
        /// What was being decoded.
        what: &'static str,
        /// The DER error.
        #[source]
        source: der::Error,
    },
    /// Key generation or encoding failed.
    #[error("key {what} failed: {message}")]
    Key {
        /// Operation.
        what: &'static str,
        /// Details from the crypto library.
        message: String,
    },
    /// Certificate building failed.
    #[error("certificate building failed")]
    Build(#[source] x509_cert::builder::Error),
    /// A time is outside what X.509 can carry.
    #[error("time out of range for X.509")]
    Time(#[source] der::Error),
}

/// Public-key algorithm of a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyAlgorithm {
    /// Ed25519 (`ED25519 PRIVATE KEY` or `PRIVATE KEY`).
    Ed25519,
    /// ECDSA on NIST P-256 (`EC PRIVATE KEY`).
    EcdsaP256,
    /// RSA (`RSA PRIVATE KEY`).
    Rsa,
}

/// A private key able to sign certificates.
pub enum SigningKey {
    /// Ed25519.
    Ed25519(ed25519_dalek::SigningKey),
    /// ECDSA P-256.
    EcdsaP256(p256::ecdsa::SigningKey),
}

impl SigningKey {
    /// A fresh Ed25519 key.
    pub fn generate_ed25519<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        SigningKey::Ed25519(ed25519_dalek::SigningKey::generate(rng))
    }

    /// A fresh ECDSA P-256 key.
    pub fn generate_p256<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        SigningKey::EcdsaP256(p256::ecdsa::SigningKey::generate_from_rng(rng))
    }

    /// The key's algorithm.
    pub fn algorithm(&self) -> KeyAlgorithm {
        match self {
            SigningKey::Ed25519(_) => KeyAlgorithm::Ed25519,
            SigningKey::EcdsaP256(_) => KeyAlgorithm::EcdsaP256,
        }
    }

    /// PEM text with the label Talos writes (`ED25519 PRIVATE KEY` around a
    /// PKCS#8 body, or SEC1 `EC PRIVATE KEY`).
    pub fn to_pem(&self) -> Result<String, PkiError> {
        match self {
            SigningKey::Ed25519(k) => {
                // Go's x509.MarshalPKCS8PrivateKey: PKCS#8 v1, no public key.
                let mut der = vec![
                    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
                ];
                der.extend_from_slice(&k.to_bytes());
                pem_encode(ED25519_KEY_LABEL, &der)
            }
            SigningKey::EcdsaP256(k) => {
                let secret = p256::SecretKey::from(k.as_nonzero_scalar());
                let der = secret
                    .to_sec1_der()
                    .map_err(|e| PkiError::Key { what: "SEC1 encoding", message: e.to_string() })?;
                pem_encode(EC_KEY_LABEL, &der)
            }
        }
    }

    /// Parses a signing key from PEM (Ed25519 or ECDSA P-256 labels).
    pub fn from_pem(pem: &str) -> Result<Self, PkiError> {
        let (label, der) = pem_decode(pem)?;
        match label.as_str() {
            ED25519_KEY_LABEL | PKCS8_KEY_LABEL => {
                use ed25519_dalek::pkcs8::DecodePrivateKey;
                ed25519_dalek::SigningKey::from_pkcs8_der(&der)
                    .map(SigningKey::Ed25519)
                    .map_err(|e| PkiError::Key { what: "Ed25519 PKCS#8 decoding", message: e.to_string() })
            }
            EC_KEY_LABEL => {
                let secret = p256::SecretKey::from_sec1_der(&der)
                    .map_err(|e| PkiError::Key { what: "SEC1 decoding", message: e.to_string() })?;
                Ok(SigningKey::EcdsaP256(p256::ecdsa::SigningKey::from(secret)))
            }
            other => Err(PkiError::UnsupportedKey { label: other.to_string() }),
        }
    }

    fn public_key_info(&self) -> Result<SubjectPublicKeyInfo, PkiError> {
        let der = match self {
            SigningKey::Ed25519(k) => k.verifying_key().to_public_key_der(),
            SigningKey::EcdsaP256(k) => k.verifying_key().to_public_key_der(),
        }
        .map_err(|e| PkiError::Key { what: "public key encoding", message: e.to_string() })?;
        SubjectPublicKeyInfo::from_der(der.as_bytes()).map_err(|source| PkiError::Der { what: "public key", source })
    }
}

/// Checks that `pem` is a private key Talos's loader accepts and reports
/// its algorithm (`RSA PRIVATE KEY`, `EC PRIVATE KEY`, `ED25519 PRIVATE KEY`,
/// `PRIVATE KEY`; behaviour.md §9 "Rust gotcha").
pub fn private_key_algorithm(pem: &str) -> Result<KeyAlgorithm, PkiError> {
    let (label, der) = pem_decode(pem)?;
    if label == RSA_KEY_LABEL {
        use rsa::pkcs1::DecodeRsaPrivateKey;
        rsa::RsaPrivateKey::from_pkcs1_der(&der)
            .map_err(|e| PkiError::Key { what: "PKCS#1 decoding", message: e.to_string() })?;
        return Ok(KeyAlgorithm::Rsa);
    }
    SigningKey::from_pem(pem).map(|k| k.algorithm())
}

/// A fresh RSA key as PKCS#1 `RSA PRIVATE KEY` PEM.
pub fn generate_rsa_pem<R: CryptoRng + ?Sized>(rng: &mut R, bits: usize) -> Result<String, PkiError> {
    use rsa::pkcs1::EncodeRsaPrivateKey;
    let key = rsa::RsaPrivateKey::new(rng, bits)
        .map_err(|e| PkiError::Key { what: "RSA generation", message: e.to_string() })?;
    let der = key.to_pkcs1_der().map_err(|e| PkiError::Key { what: "PKCS#1 encoding", message: e.to_string() })?;
    pem_encode(RSA_KEY_LABEL, der.as_bytes())
}

/// Encodes DER as PEM with LF line endings and 64-column lines (as Go does).
pub fn pem_encode(label: &str, der: &[u8]) -> Result<String, PkiError> {
    der::pem::encode_string(label, LineEnding::LF, der)
        .map_err(|e| PkiError::Key { what: "PEM encoding", message: e.to_string() })
}

/// Decodes one PEM block into (label, DER).
pub fn pem_decode(pem: &str) -> Result<(String, Vec<u8>), PkiError> {
    let (label, der) = der::pem::decode_vec(pem.trim().as_bytes()).map_err(|e| PkiError::Pem {
        expected: "a private key or certificate".to_string(),
        source: Some(der::Error::from(e)),
    })?;
    Ok((label.to_string(), der))
}

/// Parses a PEM `CERTIFICATE`.
pub fn parse_certificate(pem: &str) -> Result<Certificate, PkiError> {
    Certificate::from_pem(pem.trim().as_bytes())
        .map_err(|source| PkiError::Pem { expected: CERTIFICATE_LABEL.to_string(), source: Some(source) })
}

/// What kind of certificate to issue.
#[derive(Debug, Clone)]
pub struct CertTemplate {
    /// Subject distinguished name in RFC 4514 form (`O=talos`, `CN=front-proxy`, `` for empty).
    pub subject: String,
    /// A CA (BasicConstraints CA, CertSign, server+client auth) or a client leaf.
    pub is_ca: bool,
    /// NotBefore.
    pub not_before: SystemTime,
    /// NotAfter.
    pub not_after: SystemTime,
}

/// Self-signs a CA certificate for `key`; returns PEM.
pub fn self_signed_ca<R: CryptoRng + ?Sized>(
    rng: &mut R,
    key: &SigningKey,
    template: &CertTemplate,
) -> Result<String, PkiError> {
    issue(rng, template, &key.public_key_info()?, key, None, &[])
}

/// A subject alternative name of a server certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum San {
    /// A DNS name.
    Dns(String),
    /// An IP address.
    Ip(std::net::IpAddr),
}

/// Issues a TLS server certificate (KeyUsage DigitalSignature, ExtKeyUsage
/// ServerAuth, the given SANs) for `subject_key` signed by `issuer`, as
/// Talos issues apid certificates (behaviour.md §3); `template.is_ca` is
/// ignored. Returns PEM.
pub fn issue_server_leaf<R: CryptoRng + ?Sized>(
    rng: &mut R,
    template: &CertTemplate,
    sans: &[San],
    subject_key: &SigningKey,
    issuer_cert: &Certificate,
    issuer_key: &SigningKey,
) -> Result<String, PkiError> {
    let sans = if sans.is_empty() { &[San::Dns("localhost".to_string())][..] } else { sans };
    issue(rng, template, &subject_key.public_key_info()?, issuer_key, Some(issuer_cert), sans)
}

/// The PKCS#8 DER body of a private key PEM (`ED25519 PRIVATE KEY` and
/// `PRIVATE KEY`), or SEC1 DER for `EC PRIVATE KEY`, with its label: what a
/// TLS library needs to load a Talos key.
pub fn key_der(pem: &str) -> Result<(String, Vec<u8>), PkiError> {
    pem_decode(pem)
}

/// Issues a certificate for `subject_key` signed by `issuer` (its PEM cert
/// and key); returns PEM.
pub fn issue_leaf<R: CryptoRng + ?Sized>(
    rng: &mut R,
    template: &CertTemplate,
    subject_key: &SigningKey,
    issuer_cert: &Certificate,
    issuer_key: &SigningKey,
) -> Result<String, PkiError> {
    issue(rng, template, &subject_key.public_key_info()?, issuer_key, Some(issuer_cert), &[])
}

struct Profile {
    subject: Name,
    issuer: Option<Name>,
}

impl BuilderProfile for Profile {
    fn get_issuer(&self, subject: &Name) -> Name {
        self.issuer.clone().unwrap_or_else(|| subject.clone())
    }
    fn get_subject(&self) -> Name {
        self.subject.clone()
    }
    fn build_extensions(
        &self,
        _spk: SubjectPublicKeyInfoRef<'_>,
        _issuer_spk: SubjectPublicKeyInfoRef<'_>,
        _tbs: &TbsCertificate,
    ) -> x509_cert::builder::Result<Vec<Extension>> {
        Ok(Vec::new())
    }
}

fn extension<E: der::Encode + der::oid::AssociatedOid>(value: &E, critical: bool) -> Result<Extension, PkiError> {
    let bytes = value.to_der().map_err(|source| PkiError::Der { what: "extension", source })?;
    Ok(Extension {
        extn_id: E::OID,
        critical,
        extn_value: OctetString::new(bytes).map_err(|source| PkiError::Der { what: "extension", source })?,
    })
}

fn issue<R: CryptoRng + ?Sized>(
    rng: &mut R,
    template: &CertTemplate,
    spki: &SubjectPublicKeyInfo,
    signer: &SigningKey,
    issuer: Option<&Certificate>,
    server_sans: &[San],
) -> Result<String, PkiError> {
    let subject: Name = template.subject.parse().map_err(|source| PkiError::Der { what: "subject name", source })?;
    let profile = Profile { subject, issuer: issuer.map(|c| c.tbs_certificate().subject().clone()) };
    // Random positive 128-bit serial, as Go's crypto/x509 helpers use.
    let mut serial = [0u8; 16];
    rng.fill_bytes(&mut serial);
    serial[0] &= 0x7f;
    serial[0] |= 0x01;
    let serial = SerialNumber::new(&serial).map_err(|source| PkiError::Der { what: "serial number", source })?;
    let validity = Validity::new(
        Time::try_from(template.not_before).map_err(PkiError::Time)?,
        Time::try_from(template.not_after).map_err(PkiError::Time)?,
    );
    let mut builder = CertificateBuilder::new(profile, serial, validity, spki.clone()).map_err(PkiError::Build)?;
    let mut exts = Vec::new();
    if template.is_ca {
        exts.push(extension(&KeyUsage(KeyUsages::DigitalSignature | KeyUsages::KeyCertSign), true)?);
        exts.push(extension(
            &ExtendedKeyUsage(vec![der::oid::db::rfc5280::ID_KP_SERVER_AUTH, der::oid::db::rfc5280::ID_KP_CLIENT_AUTH]),
            false,
        )?);
        exts.push(extension(&BasicConstraints { ca: true, path_len_constraint: None }, true)?);
        let mut ski = [0u8; 20];
        rng.fill_bytes(&mut ski);
        let ski = OctetString::new(ski.to_vec())
            .map_err(|source| PkiError::Der { what: "subject key identifier", source })?;
        exts.push(extension(&SubjectKeyIdentifier(ski), false)?);
    } else if !server_sans.is_empty() {
        use x509_cert::der::asn1::Ia5String;
        use x509_cert::ext::pkix::SubjectAltName;
        use x509_cert::ext::pkix::name::GeneralName;
        exts.push(extension(&KeyUsage(KeyUsages::DigitalSignature.into()), true)?);
        exts.push(extension(&ExtendedKeyUsage(vec![der::oid::db::rfc5280::ID_KP_SERVER_AUTH]), false)?);
        exts.push(extension(&BasicConstraints { ca: false, path_len_constraint: None }, true)?);
        let mut names = Vec::new();
        for san in server_sans {
            names.push(match san {
                San::Dns(d) => GeneralName::DnsName(
                    Ia5String::new(d).map_err(|source| PkiError::Der { what: "DNS name", source })?,
                ),
                San::Ip(ip) => {
                    let octets = match ip {
                        std::net::IpAddr::V4(v4) => v4.octets().to_vec(),
                        std::net::IpAddr::V6(v6) => v6.octets().to_vec(),
                    };
                    GeneralName::IpAddress(
                        OctetString::new(octets).map_err(|source| PkiError::Der { what: "IP address", source })?,
                    )
                }
            });
        }
        exts.push(extension(&SubjectAltName(names), false)?);
    } else {
        exts.push(extension(&KeyUsage(KeyUsages::DigitalSignature.into()), true)?);
        exts.push(extension(&ExtendedKeyUsage(vec![der::oid::db::rfc5280::ID_KP_CLIENT_AUTH]), false)?);
        exts.push(extension(&BasicConstraints { ca: false, path_len_constraint: None }, true)?);
    }
    if let Some(issuer_ski) = issuer.and_then(subject_key_id) {
        exts.push(extension(
            &AuthorityKeyIdentifier {
                key_identifier: Some(issuer_ski),
                authority_cert_issuer: None,
                authority_cert_serial_number: None,
            },
            false,
        )?);
    }
    for ext in exts {
        builder.add_extension(ext).map_err(|source| PkiError::Der { what: "extension", source })?;
    }
    let cert = match signer {
        SigningKey::Ed25519(k) => builder.build::<_, ed25519_dalek::Signature>(k),
        SigningKey::EcdsaP256(k) => builder.build::<_, p256::ecdsa::DerSignature>(k),
    }
    .map_err(PkiError::Build)?;
    let der = cert.to_der().map_err(|source| PkiError::Der { what: "certificate", source })?;
    pem_encode(CERTIFICATE_LABEL, &der)
}

/// The SubjectKeyIdentifier of a certificate, if any.
pub fn subject_key_id(cert: &Certificate) -> Option<OctetString> {
    cert.tbs_certificate()
        .extensions()?
        .iter()
        .find(|e| e.extn_id == <SubjectKeyIdentifier as der::oid::AssociatedOid>::OID)
        .and_then(|e| SubjectKeyIdentifier::from_der(e.extn_value.as_bytes()).ok())
        .map(|s| s.0)
}

/// NotAfter of a certificate.
pub fn not_after(cert: &Certificate) -> SystemTime {
    cert.tbs_certificate().validity().not_after.to_system_time()
}

/// NotBefore of a certificate.
pub fn not_before(cert: &Certificate) -> SystemTime {
    cert.tbs_certificate().validity().not_before.to_system_time()
}
