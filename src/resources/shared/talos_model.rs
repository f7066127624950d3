//! The Terraform shape of Talos secrets and client credentials, shared by
//! the machine secrets resource, the data sources and the ephemeral twins.
//!
//! The shape follows siderolabs/terraform-provider-talos (certificates and
//! keys as standard base64 of PEM, `cert`/`key` names), so configurations
//! that pass `machine_secrets` or `client_configuration` around move over
//! unchanged.

use std::time::{Duration, SystemTime};

use crate::plugin::{Type, Value};
use crate::talos::VersionContract;
use crate::talos::client_config::ClientConfiguration;
use crate::talos::secrets::{CertAndKey, Certs, ClusterSecrets, Secrets, SecretsBundle, TrustdInfo};

use crate::resources::shared::common::{b64, unb64};

/// Markdown for the `machine_secrets` object.
pub const MACHINE_SECRETS_DOC: &str = "The machine secrets bundle as an object, the shape `talos_machine_secrets` uses: \
`cluster` (`id`, `secret`), `secrets` (`bootstrap_token`, `secretbox_encryption_secret`, `aescbc_encryption_secret`), \
`trustdinfo` (`token`) and `certs` (`etcd`, `k8s`, `k8s_aggregator`, `os`: each `cert` and `key`; `k8s_serviceaccount`: `key`). \
Certificates and keys are standard base64 of PEM, as in `secrets.yaml`.";

/// Markdown for the `client_configuration` object.
pub const CLIENT_CONFIGURATION_DOC: &str = "Talos API client credentials: `ca_certificate` (the OS CA), `client_certificate` \
(Organization `os:admin`, extended key usage client authentication only) and `client_key`, each standard base64 of PEM \
as in a talosconfig.";

/// The newest supported contract: what a new bundle is generated for when
/// `talos_version` is not set.
pub const LATEST_CONTRACT: VersionContract = VersionContract::V1_14;

/// Default client certificate validity (one year, as `talosctl gen config`).
pub const DEFAULT_CLIENT_TTL: &str = "8760h";

/// Default renewal window (30 days, as the upstream provider).
pub const DEFAULT_RENEWAL_WINDOW: &str = "720h";

fn pair_type() -> Type {
    Type::object([("cert", Type::String), ("key", Type::String)])
}

/// The object type of `machine_secrets`.
pub fn machine_secrets_type() -> Type {
    Type::object([
        ("cluster", Type::object([("id", Type::String), ("secret", Type::String)])),
        (
            "secrets",
            Type::object([
                ("bootstrap_token", Type::String),
                ("secretbox_encryption_secret", Type::String),
                ("aescbc_encryption_secret", Type::String),
            ]),
        ),
        ("trustdinfo", Type::object([("token", Type::String)])),
        (
            "certs",
            Type::object([
                ("etcd", pair_type()),
                ("k8s", pair_type()),
                ("k8s_aggregator", pair_type()),
                ("k8s_serviceaccount", Type::object([("key", Type::String)])),
                ("os", pair_type()),
            ]),
        ),
    ])
}

/// The object type of `client_configuration`.
pub fn client_configuration_type() -> Type {
    Type::object([("ca_certificate", Type::String), ("client_certificate", Type::String), ("client_key", Type::String)])
}

fn pair_value(p: Option<&CertAndKey>) -> Value {
    p.map_or(Value::Null, |p| Value::object([("cert", b64(&p.crt).into()), ("key", b64(&p.key).into())]))
}

/// A bundle as a `machine_secrets` value.
pub fn bundle_to_value(b: &SecretsBundle) -> Value {
    let c = &b.certs;
    Value::object([
        (
            "cluster",
            Value::object([("id", b.cluster.id.as_str().into()), ("secret", b.cluster.secret.as_str().into())]),
        ),
        (
            "secrets",
            Value::object([
                ("bootstrap_token", b.secrets.bootstrap_token.as_str().into()),
                ("secretbox_encryption_secret", b.secrets.secretbox_encryption_secret.clone().into()),
                ("aescbc_encryption_secret", b.secrets.aescbc_encryption_secret.clone().into()),
            ]),
        ),
        ("trustdinfo", Value::object([("token", b.trustd_info.token.as_str().into())])),
        (
            "certs",
            Value::object([
                ("etcd", pair_value(c.etcd.as_ref())),
                ("k8s", pair_value(c.k8s.as_ref())),
                ("k8s_aggregator", pair_value(c.k8s_aggregator.as_ref())),
                (
                    "k8s_serviceaccount",
                    c.k8s_service_account_key.as_ref().map_or(Value::Null, |k| Value::object([("key", b64(k).into())])),
                ),
                ("os", pair_value(Some(&c.os))),
            ]),
        ),
    ])
}

/// Why a `machine_secrets` or `client_configuration` value is unusable:
/// the dotted field inside the object and the problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelError {
    /// Dotted path inside the object, e.g. `certs.os.key`.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for ModelError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.field.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.field, self.message)
        }
    }
}

fn err(field: &str, message: impl Into<String>) -> ModelError {
    ModelError { field: field.to_string(), message: message.into() }
}

fn text(v: &Value, field: &str) -> Result<String, ModelError> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Null => Err(err(field, "is missing")),
        _ => Err(err(field, "is not known")),
    }
}

fn opt_text(v: &Value) -> Option<String> {
    v.as_str().map(str::to_string)
}

fn pem(v: &Value, field: &str) -> Result<String, ModelError> {
    unb64(&text(v, field)?).map_err(|m| err(field, m))
}

fn pair(v: &Value, field: &str) -> Result<Option<CertAndKey>, ModelError> {
    if v.is_null() {
        return Ok(None);
    }
    let key = match v.attr("key") {
        Value::Null => String::new(),
        k => pem(k, &format!("{field}.key"))?,
    };
    Ok(Some(CertAndKey { crt: pem(v.attr("cert"), &format!("{field}.cert"))?, key }))
}

/// Reads a `machine_secrets` value back into a checked bundle.
pub fn value_to_bundle(v: &Value) -> Result<SecretsBundle, ModelError> {
    if !v.is_fully_known() {
        return Err(err("", "is not known yet"));
    }
    if v.is_null() {
        return Err(err("", "is null"));
    }
    let certs = v.attr("certs");
    let bundle = SecretsBundle {
        cluster: ClusterSecrets {
            id: text(v.attr("cluster").attr("id"), "cluster.id")?,
            secret: text(v.attr("cluster").attr("secret"), "cluster.secret")?,
        },
        secrets: Secrets {
            bootstrap_token: text(v.attr("secrets").attr("bootstrap_token"), "secrets.bootstrap_token")?,
            aescbc_encryption_secret: opt_text(v.attr("secrets").attr("aescbc_encryption_secret")),
            secretbox_encryption_secret: opt_text(v.attr("secrets").attr("secretbox_encryption_secret")),
        },
        trustd_info: TrustdInfo { token: text(v.attr("trustdinfo").attr("token"), "trustdinfo.token")? },
        certs: Certs {
            etcd: pair(certs.attr("etcd"), "certs.etcd")?,
            k8s: pair(certs.attr("k8s"), "certs.k8s")?,
            k8s_aggregator: pair(certs.attr("k8s_aggregator"), "certs.k8s_aggregator")?,
            k8s_service_account_key: match certs.attr("k8s_serviceaccount") {
                Value::Null => None,
                sa => Some(pem(sa.attr("key"), "certs.k8s_serviceaccount.key")?),
            },
            os: pair(certs.attr("os"), "certs.os")?.ok_or_else(|| err("certs.os", "is missing"))?,
        },
    };
    bundle.validate().map_err(|e| err("", crate::plugin::diag::error_chain(&e)))?;
    Ok(bundle)
}

/// Client credentials as a `client_configuration` value.
pub fn client_to_value(c: &ClientConfiguration) -> Value {
    Value::object([
        ("ca_certificate", b64(&c.ca).into()),
        ("client_certificate", b64(&c.crt).into()),
        ("client_key", b64(&c.key).into()),
    ])
}

/// Reads a `client_configuration` value.
pub fn value_to_client(v: &Value) -> Result<ClientConfiguration, ModelError> {
    if v.is_null() {
        return Err(err("", "is null"));
    }
    Ok(ClientConfiguration {
        ca: pem(v.attr("ca_certificate"), "ca_certificate")?,
        crt: pem(v.attr("client_certificate"), "client_certificate")?,
        key: pem(v.attr("client_key"), "client_key")?,
    })
}

/// The client certificate's expiry as RFC 3339, or null when it cannot be read.
pub fn expiry_value(c: &ClientConfiguration) -> Value {
    c.expires_at().map_or(Value::Null, |t| Value::string(crate::resources::shared::common::rfc3339(t)))
}

/// Issues `os:admin` credentials from the bundle's OS CA.
pub fn issue_client(bundle: &SecretsBundle, ttl: Duration, now: SystemTime) -> Result<ClientConfiguration, String> {
    let mut rng = crate::resources::shared::common::os_rng()?;
    ClientConfiguration::generate(&bundle.certs.os, &["os:admin"], ttl, &mut rng, now)
        .map_err(|e| crate::plugin::diag::error_chain(&e))
}

/// The contract an existing bundle was most likely generated for: talosctl
/// writes the cluster ID in the URL-safe base64 alphabet before v1.14 and in
/// the standard one from v1.14 on.
pub fn infer_contract(b: &SecretsBundle) -> VersionContract {
    if b.cluster.id.contains(['-', '_']) { VersionContract::V1_13 } else { LATEST_CONTRACT }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const GOLDEN: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/talos/golden/secrets.yaml"));

    #[test]
    fn bundle_round_trips_through_the_value() {
        let b = SecretsBundle::from_yaml(GOLDEN).unwrap();
        let v = bundle_to_value(&b);
        assert!(crate::plugin::codec::encode_json(&v, &machine_secrets_type()).is_ok());
        assert_eq!(value_to_bundle(&v).unwrap(), b);
        assert_eq!(infer_contract(&b), VersionContract::V1_13, "golden id is URL-safe");
    }

    #[test]
    fn broken_values_name_the_field() {
        let b = SecretsBundle::from_yaml(GOLDEN).unwrap();
        let mut v = bundle_to_value(&b);
        let mut certs = v.attr("certs").clone();
        certs.set_attr("os", Value::object([("cert", "@@@".into()), ("key", Value::Null)]));
        v.set_attr("certs", certs);
        assert_eq!(value_to_bundle(&v).unwrap_err().field, "certs.os.cert");
        let mut v = bundle_to_value(&b);
        v.set_attr("trustdinfo", Value::object([("token", "nope".into())]));
        assert!(value_to_bundle(&v).unwrap_err().message.contains("trustdinfo.token"));
        assert!(value_to_bundle(&Value::Unknown).is_err());
    }

    #[test]
    fn client_credentials_round_trip() {
        let b = SecretsBundle::from_yaml(GOLDEN).unwrap();
        let now = SystemTime::now();
        let c = issue_client(&b, Duration::from_secs(3600), now).unwrap();
        assert_eq!(value_to_client(&client_to_value(&c)).unwrap(), c);
        assert!(expiry_value(&c).as_str().unwrap().ends_with('Z'));
    }
}
