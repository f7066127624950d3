//! The two TLS personalities of a simulated apid (behaviour.md §2, §3):
//! maintenance (self-signed per-boot Ed25519 CA, no client certificate
//! requested) and normal (server certificate from the OS CA, client
//! certificate required, chained to the OS CA, ExtKeyUsage exactly
//! ClientAuth), plus roles from the client certificate's Organization.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rustls::DistinguishedName;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use x509_cert::der::Decode as _;

use super::SimError;
use crate::talos::api::tls::{certificates, private_key, provider};
use crate::talos::pki::{self, CertTemplate, San, SigningKey};
use crate::talos::secrets::CertAndKey;

/// A server identity: certificate chain and key for rustls, plus the
/// leaf's SPKI fingerprint.
pub struct Identity {
    /// Server TLS config.
    pub config: Arc<rustls::ServerConfig>,
    /// SPKI fingerprint of the leaf (what the console prints).
    pub fingerprint: String,
}

fn rng() -> rand_core::UnwrapErr<getrandom::SysRng> {
    rand_core::UnwrapErr(getrandom::SysRng)
}

/// A server leaf for `ip`. With a host name, as Talos issues the API
/// certificate of a configured node (siderolabs/talos
/// internal/app/machined/pkg/controllers/secrets/api.go): subject `CN=<fqdn>`
/// and no Organization, the host name among the DNS SANs.
fn server_leaf(
    ca: &CertAndKey,
    ip: IpAddr,
    hostname: Option<&str>,
    validity: Duration,
) -> Result<(String, String), SimError> {
    let pki_err = |what: &'static str| move |e: pki::PkiError| SimError::Tls(format!("{what}: {e}"));
    let ca_cert = pki::parse_certificate(&ca.crt).map_err(pki_err("CA certificate"))?;
    let ca_key = SigningKey::from_pem(&ca.key).map_err(pki_err("CA key"))?;
    let mut rng = rng();
    let key = match ca_key.algorithm() {
        pki::KeyAlgorithm::EcdsaP256 => SigningKey::generate_p256(&mut rng),
        _ => SigningKey::generate_ed25519(&mut rng),
    };
    let now = SystemTime::now();
    let template = CertTemplate {
        subject: hostname.map_or_else(|| "O=talos".to_string(), |h| format!("CN={h}")),
        is_ca: false,
        not_before: now - Duration::from_secs(10),
        not_after: now + validity,
    };
    let mut sans = vec![San::Ip(ip), San::Ip(IpAddr::from([127, 0, 0, 1])), San::Dns("localhost".to_string())];
    sans.extend(hostname.map(|h| San::Dns(h.to_string())));
    let crt = pki::issue_server_leaf(&mut rng, &template, &sans, &key, &ca_cert, &ca_key).map_err(pki_err("issue"))?;
    Ok((crt, key.to_pem().map_err(pki_err("key"))?))
}

fn server_config(
    chain_pem: &str,
    key_pem: &str,
    client_auth: Option<Arc<dyn ClientCertVerifier>>,
) -> Result<Arc<rustls::ServerConfig>, SimError> {
    let chain = certificates(chain_pem).map_err(SimError::Tls)?;
    let key: PrivateKeyDer<'static> = private_key(key_pem).map_err(SimError::Tls)?;
    let builder = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| SimError::Tls(e.to_string()))?;
    let builder = match client_auth {
        Some(v) => builder.with_client_cert_verifier(v),
        None => builder.with_no_client_auth(),
    };
    let mut cfg = builder.with_single_cert(chain, key).map_err(|e| SimError::Tls(e.to_string()))?;
    cfg.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(cfg))
}

fn fingerprint_of(pem: &str) -> String {
    certificates(pem)
        .ok()
        .and_then(|c| c.first().and_then(|d| crate::talos::api::tls::spki_fingerprint(d)))
        .unwrap_or_default()
}

/// Maintenance personality: a throw-away Ed25519 CA made for this boot, a
/// 24 h server certificate for the node address, no client certificate.
pub fn maintenance_identity(ip: IpAddr) -> Result<Identity, SimError> {
    let mut rng = rng();
    let ca_key = SigningKey::generate_ed25519(&mut rng);
    let now = SystemTime::now();
    let template = CertTemplate {
        subject: "O=talos-maintenance".to_string(),
        is_ca: true,
        not_before: now - Duration::from_secs(10),
        not_after: now + Duration::from_secs(24 * 3600),
    };
    let ca_crt = pki::self_signed_ca(&mut rng, &ca_key, &template).map_err(|e| SimError::Tls(e.to_string()))?;
    let ca = CertAndKey { crt: ca_crt, key: ca_key.to_pem().map_err(|e| SimError::Tls(e.to_string()))? };
    let (crt, key) = server_leaf(&ca, ip, None, Duration::from_secs(24 * 3600))?;
    let fingerprint = fingerprint_of(&crt);
    Ok(Identity { config: server_config(&format!("{crt}{}", ca.crt), &key, None)?, fingerprint })
}

/// Normal personality: server certificate from the OS CA (needs its key:
/// control planes have it, workers get theirs "from trustd", i.e. from a
/// control plane's config), mTLS against `trusted_ca`.
pub fn normal_identity(
    ip: IpAddr,
    hostname: &str,
    issuing_ca: &CertAndKey,
    trusted_ca: &str,
) -> Result<Identity, SimError> {
    let (crt, key) = server_leaf(issuing_ca, ip, Some(hostname), Duration::from_secs(24 * 3600))?;
    let mut roots = rustls::RootCertStore::empty();
    for ca in certificates(trusted_ca).map_err(SimError::Tls)? {
        roots.add(ca).map_err(|e| SimError::Tls(e.to_string()))?;
    }
    let inner = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
        .build()
        .map_err(|e| SimError::Tls(e.to_string()))?;
    let verifier = Arc::new(ClientAuthOnly { inner });
    let fingerprint = fingerprint_of(&crt);
    Ok(Identity { config: server_config(&crt, &key, Some(verifier))?, fingerprint })
}

/// WebPKI client verification plus Talos's feature-locked check: the leaf's
/// ExtKeyUsage must be exactly `[ClientAuth]` (behaviour.md §3, v1.12+).
#[derive(Debug)]
struct ClientAuthOnly {
    inner: Arc<dyn ClientCertVerifier>,
}

impl ClientCertVerifier for ClientAuthOnly {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let ok = self.inner.verify_client_cert(end_entity, intermediates, now)?;
        let eku = ext_key_usage(end_entity);
        if eku.as_deref() != Some(&[x509_cert::der::oid::db::rfc5280::ID_KP_CLIENT_AUTH][..]) {
            return Err(rustls::Error::InvalidCertificate(rustls::CertificateError::InvalidPurpose));
        }
        Ok(ok)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

fn ext_key_usage(der: &[u8]) -> Option<Vec<x509_cert::der::oid::ObjectIdentifier>> {
    use x509_cert::ext::pkix::ExtendedKeyUsage;
    let cert = x509_cert::Certificate::from_der(der).ok()?;
    let ext = cert
        .tbs_certificate()
        .extensions()?
        .iter()
        .find(|e| e.extn_id == <ExtendedKeyUsage as x509_cert::der::oid::AssociatedOid>::OID)?;
    ExtendedKeyUsage::from_der(ext.extn_value.as_bytes()).ok().map(|e| e.0)
}

/// The Organization values of a certificate's subject: the caller's roles
/// (unknown strings are kept; the RBAC check ignores them).
pub fn organizations(der: &[u8]) -> Vec<String> {
    subject_values(der, x509_cert::der::oid::db::rfc4519::O)
}

/// The subject's Common Name (a Kubernetes client certificate's user), or
/// empty.
pub fn common_name(der: &[u8]) -> String {
    subject_values(der, x509_cert::der::oid::db::rfc4519::CN).into_iter().next().unwrap_or_default()
}

fn subject_values(der: &[u8], oid: x509_cert::der::oid::ObjectIdentifier) -> Vec<String> {
    let Ok(cert) = x509_cert::Certificate::from_der(der) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for atv in cert.tbs_certificate().subject().iter() {
        if atv.oid != oid {
            continue;
        }
        if let Ok(s) = std::str::from_utf8(atv.value.value()) {
            out.push(s.to_string());
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A configured node's API certificate, as Talos issues it
    /// (siderolabs/talos internal/app/machined/pkg/controllers/secrets/api.go):
    /// subject `CN=<host name>` only, the host name among the DNS SANs. The
    /// maintenance certificate has no host name.
    #[test]
    fn the_api_certificate_is_issued_to_the_host_name() {
        use x509_cert::der::DecodePem as _;
        let mut rng = rng();
        let ca_key = SigningKey::generate_ed25519(&mut rng);
        let now = SystemTime::now();
        let t = CertTemplate {
            subject: "O=talos".into(),
            is_ca: true,
            not_before: now,
            not_after: now + Duration::from_secs(60),
        };
        let ca = CertAndKey { crt: pki::self_signed_ca(&mut rng, &ca_key, &t).unwrap(), key: ca_key.to_pem().unwrap() };
        let ip = IpAddr::from([10, 0, 0, 11]);
        let (crt, _) = server_leaf(&ca, ip, Some("cp-1"), Duration::from_secs(60)).unwrap();
        let cert = x509_cert::Certificate::from_pem(crt.as_bytes()).unwrap();
        assert_eq!(cert.tbs_certificate().subject().to_string(), "CN=cp-1");
        let der = x509_cert::der::Encode::to_der(&cert).unwrap();
        // Once in the subject, once among the DNS SANs.
        assert_eq!(der.windows(4).filter(|w| *w == b"cp-1").count(), 2, "cp-1 among the SANs");
        let (crt, _) = server_leaf(&ca, ip, None, Duration::from_secs(60)).unwrap();
        let cert = x509_cert::Certificate::from_pem(crt.as_bytes()).unwrap();
        assert_eq!(cert.tbs_certificate().subject().to_string(), "O=talos");
    }
}
