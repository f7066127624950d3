//! rustls client configurations for the two ways a node is reached
//! (behaviour.md §2, §3), ring only (release.md §5):
//!
//! - **maintenance**: the node's certificate chains to a throw-away CA made
//!   per boot, so no CA is checked; the handshake signature still is, and
//!   the leaf's public key can be pinned by its fingerprint (standard base64
//!   of SHA-256 over the SubjectPublicKeyInfo DER, as the console prints it).
//!   No client certificate is sent.
//! - **normal**: mutual TLS; the server must chain to the OS CA and have the
//!   dialled address among its SANs; we present the client certificate
//!   (Ed25519 from `talosctl gen config`, or ECDSA P-256).

use std::sync::Arc;

use base64::Engine as _;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use sha2::Digest as _;
use x509_cert::der::{Decode as _, Encode as _};

use crate::talos::client_config::ClientConfiguration;
use crate::talos::pki;

/// The ring crypto provider every Talos TLS config here uses.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Fingerprint of a certificate as Talos prints it for maintenance mode:
/// standard base64 of the SHA-256 of the SubjectPublicKeyInfo DER
/// (behaviour.md §2). `None` when `cert_der` is not a certificate.
pub fn spki_fingerprint(cert_der: &[u8]) -> Option<String> {
    let cert = x509_cert::Certificate::from_der(cert_der).ok()?;
    let spki = cert.tbs_certificate().subject_public_key_info().to_der().ok()?;
    Some(base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(&spki)))
}

/// The pinned fingerprint did not match the node's certificate.
#[derive(Debug, thiserror::Error)]
#[error("server certificate fingerprint {got} does not match the pinned {expected}")]
pub struct FingerprintMismatch {
    /// The pin.
    pub expected: String,
    /// What the node presented.
    pub got: String,
}

/// Accepts any certificate chain (maintenance mode), optionally pinned.
#[derive(Debug)]
struct MaintenanceVerifier {
    pin: Option<String>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for MaintenanceVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Some(expected) = &self.pin {
            let got = spki_fingerprint(end_entity)
                .ok_or(rustls::Error::InvalidCertificate(rustls::CertificateError::BadEncoding))?;
            if &got != expected {
                let err = FingerprintMismatch { expected: expected.clone(), got };
                return Err(rustls::Error::InvalidCertificate(rustls::CertificateError::Other(rustls::OtherError(
                    Arc::new(err),
                ))));
            }
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// Client config for a maintenance-mode node: no CA, no client certificate,
/// optional SPKI pin.
pub fn maintenance_config(pin: Option<&str>) -> Result<Arc<rustls::ClientConfig>, String> {
    let provider = provider();
    let verifier =
        MaintenanceVerifier { pin: pin.map(str::to_string), algorithms: provider.signature_verification_algorithms };
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(cfg))
}

/// Client config for a configured node: trust only the OS CA, present the
/// client certificate.
pub fn normal_config(creds: &ClientConfiguration) -> Result<Arc<rustls::ClientConfig>, String> {
    let provider = provider();
    let mut roots = rustls::RootCertStore::empty();
    for ca in certificates(&creds.ca)? {
        roots.add(ca).map_err(|e| format!("OS CA certificate: {e}"))?;
    }
    let chain = certificates(&creds.crt)?;
    let key = private_key(&creds.key)?;
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .map_err(|e| format!("client certificate and key: {e}"))?;
    cfg.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(cfg))
}

/// Every `CERTIFICATE` block of a PEM text, as DER.
pub fn certificates(pem: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    let mut out = Vec::new();
    for (i, _) in pem.match_indices(BEGIN) {
        let rest = &pem[i..];
        let end = rest.find("-----END CERTIFICATE-----").ok_or("unterminated PEM certificate")?;
        let block = &rest[..end + "-----END CERTIFICATE-----".len()];
        let (_, der) = pki::pem_decode(block).map_err(|e| format!("certificate PEM: {e}"))?;
        out.push(CertificateDer::from(der));
    }
    if out.is_empty() {
        return Err("no PEM certificate found".to_string());
    }
    Ok(out)
}

/// A private key in any label Talos writes (`ED25519 PRIVATE KEY` holds
/// PKCS#8; `EC PRIVATE KEY` is SEC1; `RSA PRIVATE KEY` is PKCS#1).
pub fn private_key(pem: &str) -> Result<PrivateKeyDer<'static>, String> {
    let (label, der) = pki::key_der(pem).map_err(|e| format!("private key PEM: {e}"))?;
    match label.as_str() {
        pki::ED25519_KEY_LABEL | pki::PKCS8_KEY_LABEL => Ok(PrivateKeyDer::Pkcs8(der.into())),
        pki::EC_KEY_LABEL => Ok(PrivateKeyDer::Sec1(der.into())),
        pki::RSA_KEY_LABEL => Ok(PrivateKeyDer::Pkcs1(der.into())),
        other => Err(format!("unsupported key type (PEM label {other:?})")),
    }
}
