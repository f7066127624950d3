//! Redacted rendering: the same documents with every secret value replaced
//! by [`REDACTED`], so plan diffs stay readable and non-sensitive.
//! Certificates (`crt`, `cert`, `acceptedCAs`) and IDs are public and kept.

use serde_yaml_ng::Value;

/// The stable marker that replaces secret values.
pub const REDACTED: &str = "**.redacted.**";

/// Mapping keys whose (non-empty) values are secret wherever they appear:
/// private keys (`key`, `privateKey`), tokens, the cluster secret, etcd
/// encryption secrets, registry credentials.
const SECRET_KEYS: &[&str] = &[
    "key",
    "privateKey",
    "token",
    "secret",
    "clusterSecret",
    "secretboxEncryptionSecret",
    "aescbcEncryptionSecret",
    "bootstraptoken",
    "password",
    "identityToken",
    "auth",
    "passphrase",
];

/// Replaces secret values in `value` (recursively) by [`REDACTED`].
pub fn redact_value(value: &mut Value) {
    match value {
        Value::Mapping(m) => {
            for (k, v) in m.iter_mut() {
                let secret = k.as_str().is_some_and(|k| SECRET_KEYS.contains(&k));
                if secret && !is_empty(v) {
                    *v = Value::from(REDACTED);
                } else {
                    redact_value(v);
                }
            }
        }
        Value::Sequence(s) => s.iter_mut().for_each(redact_value),
        Value::Tagged(t) => redact_value(&mut t.value),
        _ => {}
    }
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Mapping(m) => m.is_empty(),
        Value::Sequence(s) => s.is_empty(),
        _ => false,
    }
}

/// Redacted copies of `docs`.
pub fn redact(docs: &[Value]) -> Vec<Value> {
    let mut out = docs.to_vec();
    out.iter_mut().for_each(redact_value);
    out
}
