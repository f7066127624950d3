//! The parts of an admin kubeconfig the client needs: the first cluster's
//! server and CA, the first user's client certificate and key (inline
//! `*-data` fields, as Talos writes them). Errors name the missing field,
//! never a value.

use base64::Engine as _;

use crate::secret::Secret;

/// A kubeconfig could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KubeconfigError {
    /// Not YAML (position and kind only).
    #[error("not YAML: {0}")]
    Yaml(String),
    /// A field is missing or not text.
    #[error("the kubeconfig has no {0}")]
    Missing(String),
    /// A `*-data` field is not base64 of text.
    #[error("{0} is not base64-encoded PEM")]
    Encoding(String),
}

/// What a client takes from a kubeconfig.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kubeconfig {
    /// `clusters[0].cluster.server`, e.g. `https://10.0.0.10:6443`.
    pub server: String,
    /// The cluster CA (PEM).
    pub ca_pem: String,
    /// The client certificate (PEM).
    pub client_certificate_pem: String,
    /// The client key (PEM).
    pub client_key_pem: Secret,
}

impl Kubeconfig {
    /// Reads the parts out of kubeconfig YAML.
    pub fn parse(text: &str) -> Result<Kubeconfig, KubeconfigError> {
        let y: serde_yaml_ng::Value =
            serde_yaml_ng::from_str(text).map_err(|e| KubeconfigError::Yaml(crate::talos::yaml::safe_error(&e)))?;
        let field = |path: &[&str]| -> Result<String, KubeconfigError> {
            let mut cur = &y;
            for p in path {
                cur = match p.parse::<usize>() {
                    Ok(i) => cur.get(i),
                    Err(_) => cur.get(*p),
                }
                .ok_or_else(|| KubeconfigError::Missing(path.join(".")))?;
            }
            cur.as_str().map(str::to_string).ok_or_else(|| KubeconfigError::Missing(path.join(".")))
        };
        let data = |path: &[&str]| -> Result<String, KubeconfigError> {
            let b = base64::engine::general_purpose::STANDARD
                .decode(field(path)?.trim())
                .map_err(|_| KubeconfigError::Encoding(path.join(".")))?;
            String::from_utf8(b).map_err(|_| KubeconfigError::Encoding(path.join(".")))
        };
        Ok(Kubeconfig {
            server: field(&["clusters", "0", "cluster", "server"])?,
            ca_pem: data(&["clusters", "0", "cluster", "certificate-authority-data"])?,
            client_certificate_pem: data(&["users", "0", "user", "client-certificate-data"])?,
            client_key_pem: Secret::new(data(&["users", "0", "user", "client-key-data"])?),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    #[test]
    fn the_parts_come_out_and_errors_name_the_field_never_the_value() {
        let text = format!(
            "clusters:\n  - name: c\n    cluster:\n      server: https://10.0.0.10:6443\n      certificate-authority-data: {}\nusers:\n  - name: u\n    user:\n      client-certificate-data: {}\n      client-key-data: {}\n",
            b64("CA"),
            b64("CRT"),
            b64("SECRET-KEY")
        );
        let k = Kubeconfig::parse(&text).unwrap();
        assert_eq!(
            (k.server.as_str(), k.ca_pem.as_str(), k.client_certificate_pem.as_str()),
            ("https://10.0.0.10:6443", "CA", "CRT")
        );
        assert_eq!(k.client_key_pem.expose(), "SECRET-KEY");
        assert!(!format!("{k:?}").contains("SECRET-KEY"));
        let bad = text.replace(&b64("SECRET-KEY"), "SECRET-KEY$$");
        let e = Kubeconfig::parse(&bad).unwrap_err();
        assert_eq!(e.to_string(), "users.0.user.client-key-data is not base64-encoded PEM");
        let e = Kubeconfig::parse("clusters: []\n").unwrap_err();
        assert_eq!(e, KubeconfigError::Missing("clusters.0.cluster.server".into()));
        let e = Kubeconfig::parse("a: [SECRET-KEY").unwrap_err();
        assert!(!e.to_string().contains("SECRET-KEY"), "{e}");
    }
}
