//! Minting the admin kubeconfig as Talos does on every Kubeconfig call
//! (api.md §3.4, behaviour.md §7): a fresh client certificate from the
//! Kubernetes CA, CN `admin`, O `system:masters`, valid from now−10 s for
//! `cluster.adminKubeconfig.certLifetime` (default 1 year).

use std::time::{Duration, SystemTime};

use base64::Engine as _;

use super::config::{Facts, go_duration};
use crate::talos::pki::{self, CertTemplate, KeyAlgorithm, SigningKey};

/// Default admin certificate lifetime.
pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(365 * 24 * 3600);

/// The kubeconfig YAML for `facts` (a control-plane config with the
/// Kubernetes CA key).
pub fn mint(facts: &Facts) -> Result<String, String> {
    let ca = facts.k8s_ca.as_ref().filter(|c| !c.key.trim().is_empty()).ok_or("no Kubernetes CA key in the config")?;
    let ca_cert = pki::parse_certificate(&ca.crt).map_err(|e| e.to_string())?;
    let ca_key = SigningKey::from_pem(&ca.key).map_err(|e| e.to_string())?;
    let mut rng = rand_core::UnwrapErr(getrandom::SysRng);
    let key = match ca_key.algorithm() {
        KeyAlgorithm::Ed25519 => SigningKey::generate_ed25519(&mut rng),
        _ => SigningKey::generate_p256(&mut rng),
    };
    let lifetime = facts.kubeconfig_lifetime.as_deref().and_then(go_duration).unwrap_or(DEFAULT_LIFETIME);
    let now = SystemTime::now();
    let template = CertTemplate {
        subject: "CN=admin,O=system:masters".to_string(),
        is_ca: false,
        not_before: now - Duration::from_secs(10),
        not_after: now + lifetime,
    };
    let crt = pki::issue_leaf(&mut rng, &template, &key, &ca_cert, &ca_key).map_err(|e| e.to_string())?;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s.as_bytes());
    let name = &facts.cluster_name;
    let user = format!("admin@{name}");
    Ok(format!(
        "apiVersion: v1\nkind: Config\nclusters:\n    - name: {name}\n      cluster:\n        server: {server}\n        certificate-authority-data: {ca}\nusers:\n    - name: {user}\n      user:\n        client-certificate-data: {crt}\n        client-key-data: {key}\ncontexts:\n    - context:\n        cluster: {name}\n        namespace: default\n        user: {user}\n      name: {user}\ncurrent-context: {user}\n",
        server = facts.endpoint,
        ca = b64(&ca.crt),
        crt = b64(&crt),
        key = b64(&key.to_pem().map_err(|e| e.to_string())?),
    ))
}
