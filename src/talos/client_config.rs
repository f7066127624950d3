//! Talos API client credentials and the `talosconfig` file (behaviour.md §3,
//! §9): an `os:admin` (or other roles) client certificate signed by the OS
//! CA, ExtKeyUsage ClientAuth only, key of the CA's algorithm (Ed25519).

use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rand_core::CryptoRng;
use serde_yaml_ng::{Mapping, Value};

use super::pki::{self, CertTemplate, KeyAlgorithm, PkiError, SigningKey};
use super::secrets::CertAndKey;
use super::yaml;

/// Default client certificate validity: 1 year, as `talosctl gen config`.
pub const DEFAULT_VALIDITY: Duration = Duration::from_secs(365 * 24 * 3600);

/// Building client credentials failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientConfigError {
    /// The OS CA has no private key (a worker-style bundle), so nothing can be signed.
    #[error("the OS CA private key is missing: cannot sign a client certificate")]
    MissingCaKey,
    /// The OS CA or the new certificate could not be handled.
    #[error("client certificate: {what}")]
    Pki {
        /// Which step failed.
        what: &'static str,
        /// The cause.
        #[source]
        source: PkiError,
    },
    /// The validity is zero or does not fit in X.509 time.
    #[error("invalid validity {0:?}")]
    Validity(Duration),
}

/// Client credentials for the Talos API: CA, certificate and key, all PEM.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientConfiguration {
    /// OS CA certificate (what the client trusts).
    pub ca: String,
    /// Client certificate.
    pub crt: String,
    /// Client private key (`ED25519 PRIVATE KEY` for an Ed25519 OS CA).
    pub key: String,
}

/// Never prints the private key.
impl std::fmt::Debug for ClientConfiguration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientConfiguration")
            .field("ca", &self.ca)
            .field("crt", &self.crt)
            .field("key", &crate::secret::REDACTED)
            .finish()
    }
}

impl ClientConfiguration {
    /// Issues a client certificate from the OS CA with Organization = `roles`
    /// (usually `["os:admin"]`), valid from `now` for `validity`.
    pub fn generate<R: CryptoRng + ?Sized>(
        os_ca: &CertAndKey,
        roles: &[&str],
        validity: Duration,
        rng: &mut R,
        now: SystemTime,
    ) -> Result<Self, ClientConfigError> {
        if validity.is_zero() {
            return Err(ClientConfigError::Validity(validity));
        }
        if os_ca.key.trim().is_empty() {
            return Err(ClientConfigError::MissingCaKey);
        }
        let pki_err = |what| move |source| ClientConfigError::Pki { what, source };
        let ca_cert = pki::parse_certificate(&os_ca.crt).map_err(pki_err("OS CA certificate"))?;
        let ca_key = SigningKey::from_pem(&os_ca.key).map_err(pki_err("OS CA key"))?;
        // The leaf key follows the CA's algorithm (§9).
        let key = match ca_key.algorithm() {
            KeyAlgorithm::EcdsaP256 => SigningKey::generate_p256(rng),
            _ => SigningKey::generate_ed25519(rng),
        };
        let subject = roles
            .iter()
            .map(|r| format!("O={}", r.replace(',', "\\,").replace('+', "\\+")))
            .collect::<Vec<_>>()
            .join("+");
        let template = CertTemplate {
            subject,
            is_ca: false,
            not_before: now,
            not_after: now.checked_add(validity).ok_or(ClientConfigError::Validity(validity))?,
        };
        let crt = pki::issue_leaf(rng, &template, &key, &ca_cert, &ca_key).map_err(pki_err("issuing"))?;
        Ok(ClientConfiguration { ca: os_ca.crt.clone(), crt, key: key.to_pem().map_err(pki_err("key encoding"))? })
    }

    /// NotAfter of the client certificate.
    pub fn expires_at(&self) -> Result<SystemTime, PkiError> {
        pki::parse_certificate(&self.crt).map(|c| pki::not_after(&c))
    }

    /// NotBefore of the client certificate.
    pub fn valid_from(&self) -> Result<SystemTime, PkiError> {
        pki::parse_certificate(&self.crt).map(|c| pki::not_before(&c))
    }

    /// True when the certificate expires within `window` of `now` (or has
    /// expired): the moment a resource should plan a renewal.
    pub fn needs_renewal(&self, now: SystemTime, window: Duration) -> Result<bool, PkiError> {
        let expiry = self.expires_at()?;
        Ok(now.checked_add(window).is_none_or(|limit| limit >= expiry))
    }
}

/// Renders a talosconfig with one context named `context`, as talosctl
/// writes it: endpoints (empty list allowed), optional nodes, base64 PEM
/// `ca`/`crt`/`key`.
pub fn talosconfig(context: &str, endpoints: &[String], nodes: &[String], creds: &ClientConfiguration) -> String {
    let strings = |v: &[String]| Value::Sequence(v.iter().map(|s| Value::from(s.as_str())).collect());
    let b64 = |s: &str| Value::from(STANDARD.encode(s.as_bytes()));
    let mut ctx = Mapping::new();
    ctx.insert("endpoints".into(), strings(endpoints));
    if !nodes.is_empty() {
        ctx.insert("nodes".into(), strings(nodes));
    }
    ctx.insert("ca".into(), b64(&creds.ca));
    ctx.insert("crt".into(), b64(&creds.crt));
    ctx.insert("key".into(), b64(&creds.key));
    let mut contexts = Mapping::new();
    contexts.insert(context.into(), Value::Mapping(ctx));
    let mut root = Mapping::new();
    root.insert("context".into(), context.into());
    root.insert("contexts".into(), Value::Mapping(contexts));
    yaml::emit_document(&Value::Mapping(root))
}
