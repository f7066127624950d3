//! Fragments shared by the v1alpha1 document and the typed documents.

use serde_yaml_ng::Value;

use super::build::{M, strings};

/// Default pod CIDR (IPv4 endpoint).
pub(crate) const POD_SUBNET: &str = "10.244.0.0/16";
/// Default service CIDR (IPv4 endpoint).
pub(crate) const SERVICE_SUBNET: &str = "10.96.0.0/12";

/// `hostDNS: {enabled, forwardKubeDNSToHost}`.
pub(crate) fn host_dns() -> M {
    M::new().set("enabled", true).set("forwardKubeDNSToHost", true)
}

/// The PodSecurity admission configuration Talos generates.
pub(crate) fn pod_security() -> Value {
    M::new()
        .set("apiVersion", "pod-security.admission.config.k8s.io/v1alpha1")
        .set(
            "defaults",
            M::new()
                .set("audit", "restricted")
                .set("audit-version", "latest")
                .set("enforce", "baseline")
                .set("enforce-version", "latest")
                .set("warn", "restricted")
                .set("warn-version", "latest"),
        )
        .set(
            "exemptions",
            M::new()
                .set("namespaces", strings(&["kube-system"]))
                .set("runtimeClasses", strings::<&str>(&[]))
                .set("usernames", strings::<&str>(&[])),
        )
        .set("kind", "PodSecurityConfiguration")
        .value()
}

/// The audit policy Talos generates.
pub(crate) fn audit_policy() -> Value {
    M::new()
        .set("apiVersion", "audit.k8s.io/v1")
        .set("kind", "Policy")
        .set("rules", vec![M::new().set("level", "Metadata")])
        .value()
}
