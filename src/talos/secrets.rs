//! The machine secrets bundle (behaviour.md §9): generation as Talos does it
//! and the `secrets.yaml` form written by `talosctl gen secrets`.
//!
//! In memory every certificate and key is PEM text; in `secrets.yaml` it is
//! standard base64 of that PEM text.

use std::time::SystemTime;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use rand_core::CryptoRng;
use serde::{Deserialize, Serialize};

use super::pki::{self, CertTemplate, KeyAlgorithm, PkiError, SigningKey};
use super::version::VersionContract;
use super::yaml;

/// Building, reading or checking a secrets bundle failed.
#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    /// The text is not a YAML secrets bundle (unknown or missing field, wrong type).
    /// The message names the path, the kind and the position only
    /// ([`yaml::safe_error`]): the bundle is key material.
    #[error("secrets bundle is not valid YAML of the expected shape: {0}")]
    Yaml(String),
    /// A field holds a value of the wrong form.
    #[error("secrets bundle field {field}: {message}")]
    Field {
        /// Dotted YAML path of the field, e.g. `certs.os.key`.
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// A field's key or certificate does not parse.
    #[error("secrets bundle field {field}")]
    Pki {
        /// Dotted YAML path of the field.
        field: String,
        /// The key/certificate error.
        #[source]
        source: PkiError,
    },
}

/// Cluster identity (`cluster:`).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterSecrets {
    /// Cluster ID: 32 random bytes, base64 (URL-safe alphabet before v1.14).
    pub id: String,
    /// Cluster secret: 32 random bytes, standard base64.
    pub secret: String,
}

/// Shared secrets (`secrets:`).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Secrets {
    /// Kubernetes bootstrap token, `[0-9a-z]{6}.[0-9a-z]{16}`.
    #[serde(rename = "bootstraptoken")]
    pub bootstrap_token: String,
    /// AES-CBC etcd encryption secret (contracts before 1.3 only).
    #[serde(rename = "aescbcencryptionsecret", default, skip_serializing_if = "Option::is_none")]
    pub aescbc_encryption_secret: Option<String>,
    /// Secretbox etcd encryption secret: 32 random bytes, standard base64.
    #[serde(rename = "secretboxencryptionsecret", default, skip_serializing_if = "Option::is_none")]
    pub secretbox_encryption_secret: Option<String>,
}

/// trustd credentials (`trustdinfo:`).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustdInfo {
    /// Machine token workers present to trustd, same form as the bootstrap token.
    pub token: String,
}

/// A certificate and its private key, both PEM text. `key` may be empty
/// (worker configs carry CA certificates without keys).
#[derive(Clone, PartialEq, Eq)]
pub struct CertAndKey {
    /// PEM `CERTIFICATE`.
    pub crt: String,
    /// PEM private key (Talos labels), or empty.
    pub key: String,
}

/// The certificate authorities and keys (`certs:`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Certs {
    /// etcd CA (ECDSA P-256).
    pub etcd: Option<CertAndKey>,
    /// Kubernetes CA (ECDSA P-256).
    pub k8s: Option<CertAndKey>,
    /// Kubernetes front-proxy (aggregator) CA (ECDSA P-256).
    pub k8s_aggregator: Option<CertAndKey>,
    /// Service-account signing key PEM (RSA-4096 from contract 1.7, else ECDSA P-256).
    pub k8s_service_account_key: Option<String>,
    /// Talos API (OS) CA (Ed25519).
    pub os: CertAndKey,
}

/// The whole machine secrets bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretsBundle {
    /// Cluster ID and secret.
    pub cluster: ClusterSecrets,
    /// Bootstrap token and etcd encryption secret.
    pub secrets: Secrets,
    /// trustd token.
    pub trustd_info: TrustdInfo,
    /// CAs and keys.
    pub certs: Certs,
}

// ---- YAML form (base64 of PEM) ----

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBundle {
    cluster: ClusterSecrets,
    secrets: Secrets,
    trustdinfo: TrustdInfo,
    certs: RawCerts,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCerts {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    etcd: Option<RawPair>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    k8s: Option<RawPair>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    k8saggregator: Option<RawPair>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    k8sserviceaccount: Option<RawKey>,
    os: RawPair,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPair {
    crt: String,
    #[serde(default)]
    key: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKey {
    key: String,
}

/// Generates a kubeadm-style token `[0-9a-z]{6}.[0-9a-z]{16}`.
pub fn generate_token<R: CryptoRng + ?Sized>(rng: &mut R) -> String {
    const ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut pick = |n: usize| -> String {
        let mut out = String::with_capacity(n);
        while out.len() < n {
            let mut b = [0u8; 1];
            rng.fill_bytes(&mut b);
            // Rejection sampling keeps the distribution uniform (252 = 7 * 36).
            if b[0] < 252 {
                out.push(ALPHABET[(b[0] % 36) as usize] as char);
            }
        }
        out
    };
    let a = pick(6);
    let b = pick(16);
    format!("{a}.{b}")
}

fn random_b64<R: CryptoRng + ?Sized>(rng: &mut R, url_safe: bool) -> String {
    let mut bytes = [0u8; 32];
    rng.fill_bytes(&mut bytes);
    if url_safe { URL_SAFE.encode(bytes) } else { STANDARD.encode(bytes) }
}

fn ca<R: CryptoRng + ?Sized>(
    rng: &mut R,
    algorithm: KeyAlgorithm,
    subject: &str,
    now: SystemTime,
) -> Result<CertAndKey, PkiError> {
    let key = match algorithm {
        KeyAlgorithm::Ed25519 => SigningKey::generate_ed25519(rng),
        _ => SigningKey::generate_p256(rng),
    };
    let template =
        CertTemplate { subject: subject.to_string(), is_ca: true, not_before: now, not_after: now + pki::CA_VALIDITY };
    let crt = pki::self_signed_ca(rng, &key, &template)?;
    Ok(CertAndKey { crt, key: key.to_pem()? })
}

impl SecretsBundle {
    /// Generates a fresh bundle as `talosctl gen secrets` does for `contract`,
    /// with CAs valid for 10 years from `now`.
    pub fn generate<R: CryptoRng + ?Sized>(
        contract: VersionContract,
        rng: &mut R,
        now: SystemTime,
    ) -> Result<Self, SecretsError> {
        let pki_err = |field: &str| {
            let field = field.to_string();
            move |source| SecretsError::Pki { field, source }
        };
        let cluster = ClusterSecrets {
            // URL-safe alphabet before v1.14, standard from v1.14 (§9).
            id: random_b64(rng, !contract.at_least(14)),
            secret: random_b64(rng, false),
        };
        let secrets = Secrets {
            bootstrap_token: generate_token(rng),
            aescbc_encryption_secret: None,
            secretbox_encryption_secret: Some(random_b64(rng, false)),
        };
        let trustd_info = TrustdInfo { token: generate_token(rng) };
        let etcd = ca(rng, KeyAlgorithm::EcdsaP256, "O=etcd", now).map_err(pki_err("certs.etcd"))?;
        let k8s = ca(rng, KeyAlgorithm::EcdsaP256, "O=kubernetes", now).map_err(pki_err("certs.k8s"))?;
        let k8s_aggregator =
            ca(rng, KeyAlgorithm::EcdsaP256, "CN=front-proxy", now).map_err(pki_err("certs.k8saggregator"))?;
        // Every supported contract is >= 1.7: RSA-4096 service-account key.
        let sa = pki::generate_rsa_pem(rng, 4096).map_err(pki_err("certs.k8sserviceaccount"))?;
        let os = ca(rng, KeyAlgorithm::Ed25519, "O=talos", now).map_err(pki_err("certs.os"))?;
        Ok(SecretsBundle {
            cluster,
            secrets,
            trustd_info,
            certs: Certs {
                etcd: Some(etcd),
                k8s: Some(k8s),
                k8s_aggregator: Some(k8s_aggregator),
                k8s_service_account_key: Some(sa),
                os,
            },
        })
    }

    /// Parses and checks `secrets.yaml` (as written by `talosctl gen secrets`).
    pub fn from_yaml(input: &str) -> Result<Self, SecretsError> {
        let raw: RawBundle = serde_yaml_ng::from_str(input).map_err(|e| SecretsError::Yaml(yaml::safe_error(&e)))?;
        let pair = |field: &str, p: RawPair| -> Result<CertAndKey, SecretsError> {
            Ok(CertAndKey {
                crt: decode_pem_b64(&format!("{field}.crt"), &p.crt)?,
                key: decode_pem_b64(&format!("{field}.key"), &p.key)?,
            })
        };
        let certs = Certs {
            etcd: raw.certs.etcd.map(|p| pair("certs.etcd", p)).transpose()?,
            k8s: raw.certs.k8s.map(|p| pair("certs.k8s", p)).transpose()?,
            k8s_aggregator: raw.certs.k8saggregator.map(|p| pair("certs.k8saggregator", p)).transpose()?,
            k8s_service_account_key: raw
                .certs
                .k8sserviceaccount
                .map(|k| decode_pem_b64("certs.k8sserviceaccount.key", &k.key))
                .transpose()?,
            os: pair("certs.os", raw.certs.os)?,
        };
        let bundle = SecretsBundle { cluster: raw.cluster, secrets: raw.secrets, trustd_info: raw.trustdinfo, certs };
        bundle.validate()?;
        Ok(bundle)
    }

    /// Renders `secrets.yaml` (4-space YAML, base64 PEM), as `talosctl` writes it.
    pub fn to_yaml(&self) -> String {
        let enc = |pem: &str| STANDARD.encode(pem.as_bytes());
        let pair = |p: &CertAndKey| RawPair { crt: enc(&p.crt), key: enc(&p.key) };
        let raw = RawBundle {
            cluster: self.cluster.clone(),
            secrets: self.secrets.clone(),
            trustdinfo: self.trustd_info.clone(),
            certs: RawCerts {
                etcd: self.certs.etcd.as_ref().map(pair),
                k8s: self.certs.k8s.as_ref().map(pair),
                k8saggregator: self.certs.k8s_aggregator.as_ref().map(pair),
                k8sserviceaccount: self.certs.k8s_service_account_key.as_ref().map(|k| RawKey { key: enc(k) }),
                os: pair(&self.certs.os),
            },
        };
        match serde_yaml_ng::to_value(&raw) {
            Ok(v) => yaml::emit_document(&v),
            // Plain strings and structs always convert; keep the API infallible.
            Err(_) => String::new(),
        }
    }

    /// Checks tokens, secrets, keys and certificates; errors name the field.
    pub fn validate(&self) -> Result<(), SecretsError> {
        let field_err =
            |field: &str, message: &str| SecretsError::Field { field: field.to_string(), message: message.to_string() };
        check_b64_32(
            "cluster.id",
            &self.cluster.id,
            true, // either alphabet (§9)
        )?;
        check_b64_32("cluster.secret", &self.cluster.secret, false)?;
        check_token("secrets.bootstraptoken", &self.secrets.bootstrap_token)?;
        check_token("trustdinfo.token", &self.trustd_info.token)?;
        match (&self.secrets.secretbox_encryption_secret, &self.secrets.aescbc_encryption_secret) {
            (Some(s), None) => check_b64_32("secrets.secretboxencryptionsecret", s, false)?,
            (None, Some(s)) => check_b64_32("secrets.aescbcencryptionsecret", s, false)?,
            _ => {
                return Err(field_err(
                    "secrets.secretboxencryptionsecret",
                    "exactly one of secretboxencryptionsecret and aescbcencryptionsecret must be set",
                ));
            }
        }
        let check_pair = |field: &str, p: &CertAndKey, algo: &[KeyAlgorithm]| {
            pki::parse_certificate(&p.crt)
                .map_err(|source| SecretsError::Pki { field: format!("{field}.crt"), source })?;
            check_key(&format!("{field}.key"), &p.key, algo)
        };
        if let Some(p) = &self.certs.etcd {
            check_pair("certs.etcd", p, &[KeyAlgorithm::EcdsaP256])?;
        }
        if let Some(p) = &self.certs.k8s {
            check_pair("certs.k8s", p, &[KeyAlgorithm::EcdsaP256])?;
        }
        if let Some(p) = &self.certs.k8s_aggregator {
            check_pair("certs.k8saggregator", p, &[KeyAlgorithm::EcdsaP256])?;
        }
        if let Some(k) = &self.certs.k8s_service_account_key {
            check_key("certs.k8sserviceaccount.key", k, &[KeyAlgorithm::Rsa, KeyAlgorithm::EcdsaP256])?;
        }
        check_pair("certs.os", &self.certs.os, &[KeyAlgorithm::Ed25519, KeyAlgorithm::EcdsaP256])
    }
}

fn decode_pem_b64(field: &str, value: &str) -> Result<String, SecretsError> {
    let bytes = STANDARD
        .decode(value.trim())
        .map_err(|e| SecretsError::Field { field: field.to_string(), message: format!("not standard base64: {e}") })?;
    String::from_utf8(bytes).map_err(|_| SecretsError::Field {
        field: field.to_string(),
        message: "base64 does not decode to PEM text".to_string(),
    })
}

fn check_key(field: &str, pem: &str, allowed: &[KeyAlgorithm]) -> Result<(), SecretsError> {
    if pem.is_empty() {
        return Err(SecretsError::Field { field: field.to_string(), message: "private key is missing".to_string() });
    }
    let algo =
        pki::private_key_algorithm(pem).map_err(|source| SecretsError::Pki { field: field.to_string(), source })?;
    if !allowed.contains(&algo) {
        return Err(SecretsError::Field {
            field: field.to_string(),
            message: format!("unexpected key algorithm {algo:?}"),
        });
    }
    Ok(())
}

fn check_b64_32(field: &str, value: &str, either: bool) -> Result<(), SecretsError> {
    let decoded = STANDARD.decode(value).or_else(|e| if either { URL_SAFE.decode(value) } else { Err(e) });
    match decoded {
        Ok(b) if b.len() == 32 => Ok(()),
        Ok(b) => Err(SecretsError::Field {
            field: field.to_string(),
            message: format!("expected 32 bytes, got {}", b.len()),
        }),
        Err(e) => Err(SecretsError::Field { field: field.to_string(), message: format!("not base64: {e}") }),
    }
}

fn check_token(field: &str, token: &str) -> Result<(), SecretsError> {
    let ok = token.split_once('.').is_some_and(|(a, b)| {
        a.len() == 6
            && b.len() == 16
            && a.bytes().chain(b.bytes()).all(|c| c.is_ascii_digit() || c.is_ascii_lowercase())
    });
    if ok {
        Ok(())
    } else {
        Err(SecretsError::Field {
            field: field.to_string(),
            message: "expected a token of the form [0-9a-z]{6}.[0-9a-z]{16}".to_string(),
        })
    }
}

// Debug never prints secret material: ids and certificates yes, secrets,
// tokens and private keys no (a `{:?}` in a log line must not leak them).
impl std::fmt::Debug for ClusterSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterSecrets").field("id", &self.id).field("secret", &crate::secret::REDACTED).finish()
    }
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secrets")
            .field("bootstrap_token", &crate::secret::REDACTED)
            .field("aescbc_encryption_secret", &self.aescbc_encryption_secret.as_ref().map(|_| crate::secret::REDACTED))
            .field(
                "secretbox_encryption_secret",
                &self.secretbox_encryption_secret.as_ref().map(|_| crate::secret::REDACTED),
            )
            .finish()
    }
}

impl std::fmt::Debug for TrustdInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrustdInfo").field("token", &crate::secret::REDACTED).finish()
    }
}

impl std::fmt::Debug for CertAndKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertAndKey").field("crt", &self.crt).field("key", &crate::secret::REDACTED).finish()
    }
}

#[cfg(test)]
mod debug_redaction_tests {
    use super::*;

    #[test]
    fn debug_never_shows_secrets() {
        let ck = CertAndKey { crt: "CERT".into(), key: "PRIVATEKEY".into() };
        let s = Secrets {
            bootstrap_token: "TOKEN".into(),
            aescbc_encryption_secret: Some("AES".into()),
            secretbox_encryption_secret: Some("BOX".into()),
        };
        let c = ClusterSecrets { id: "ID".into(), secret: "CLUSTERSECRET".into() };
        let t = TrustdInfo { token: "TRUSTD".into() };
        let out = format!("{ck:?} {s:?} {c:?} {t:?}");
        for secret in ["PRIVATEKEY", "TOKEN", "AES", "BOX", "CLUSTERSECRET", "TRUSTD"] {
            assert!(!out.contains(secret), "{secret} in {out}");
        }
        assert!(out.contains("CERT") && out.contains("ID"));
    }
}
