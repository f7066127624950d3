//! The `version: v1alpha1` document (behaviour.md §10), per contract.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_yaml_ng::Value;

use super::build::{M, empty, strings};
use super::input::{Checked, Cni};
use super::shared;
use crate::talos::secrets::{CertAndKey, SecretsBundle};

fn b64(pem: &str) -> String {
    STANDARD.encode(pem.as_bytes())
}

/// `{crt, key}` with base64 PEM; the key is emptied when `with_key` is false.
fn pair(p: &CertAndKey, with_key: bool) -> M {
    M::new().set("crt", b64(&p.crt)).set("key", if with_key { b64(&p.key) } else { String::new() })
}

/// Builds the v1alpha1 document.
pub(crate) fn document(c: &Checked<'_>, s: &SecretsBundle) -> Value {
    let minor = c.input.contract.minor();
    M::new()
        .set("version", "v1alpha1")
        .set("debug", false)
        .set("persist", true)
        .set("machine", machine(c, s, minor))
        .set("cluster", cluster(c, s, minor))
        .value()
}

fn machine(c: &Checked<'_>, s: &SecretsBundle, minor: u32) -> M {
    let i = c.input;
    let legacy_k8s = minor < 14;
    let mut m = M::new()
        .set("type", i.machine_type.as_str())
        .set("token", &s.trustd_info.token)
        .set("ca", pair(&s.certs.os, c.cp))
        .set("certSANs", strings(&i.extra_cert_sans));
    if legacy_k8s {
        m = m
            .set(
                "kubelet",
                M::new()
                    .set("image", format!("ghcr.io/siderolabs/kubelet:{}", c.k8s_tag))
                    .set("defaultRuntimeSeccompProfileEnabled", true)
                    .set("disableManifestsDirectory", true),
            )
            .set_if(minor <= 12, "network", empty())
            .set(
                "install",
                M::new()
                    .set_opt("disk", i.install_disk.as_ref())
                    .set_if(
                        !i.install_extra_kernel_args.is_empty(),
                        "extraKernelArgs",
                        strings(&i.install_extra_kernel_args),
                    )
                    .set_opt("image", i.install_image.as_ref())
                    .set("wipe", false)
                    .set_if(minor >= 12, "grubUseUKICmdline", true),
            )
            .set_if(!i.sysctls.is_empty(), "sysctls", string_map(i.sysctls.iter()));
        if minor < 12 && !i.registry_mirrors.is_empty() {
            let mut mirrors = M::new();
            for (host, endpoints) in &i.registry_mirrors {
                mirrors = mirrors.set(host, M::new().set("endpoints", strings(endpoints)));
            }
            m = m.set("registries", M::new().set("mirrors", mirrors));
        }
    }
    let mut features = M::new();
    if minor <= 11 {
        features = features.set("rbac", true).set("stableHostname", true).set("apidCheckExtKeyUsage", true);
    }
    features = features.set("diskQuotaSupport", true);
    if legacy_k8s {
        features = features
            .set("kubePrism", M::new().set("enabled", true).set("port", 7445u16))
            .set("hostDNS", shared::host_dns());
    }
    m = m.set("features", features);
    if legacy_k8s && c.cp {
        m = m.set("nodeLabels", M::new().set("node.kubernetes.io/exclude-from-external-load-balancers", ""));
    }
    m
}

fn cluster(c: &Checked<'_>, s: &SecretsBundle, minor: u32) -> M {
    let i = c.input;
    let etcd = |m: M| match &s.certs.etcd {
        Some(etcd) if c.cp => m.set("etcd", M::new().set("ca", pair(etcd, true))),
        _ => m,
    };
    if minor >= 14 {
        return etcd(M::new().set("token", &s.secrets.bootstrap_token));
    }
    let mut control_plane = M::new().set("endpoint", &i.endpoint);
    if c.cp {
        control_plane = control_plane.set_opt("localAPIServerPort", i.local_api_server_port);
    }
    let mut network = M::new();
    match &i.cni {
        Cni::Default => {}
        Cni::None => network = network.set("cni", M::new().set("name", "none")),
        Cni::Custom(urls) => network = network.set("cni", M::new().set("name", "custom").set("urls", strings(urls))),
    }
    network = network
        .set("dnsDomain", &c.dns_domain)
        .set("podSubnets", strings(&[shared::POD_SUBNET]))
        .set("serviceSubnets", strings(&[shared::SERVICE_SUBNET]));
    let mut m = M::new()
        .set("id", &s.cluster.id)
        .set("secret", &s.cluster.secret)
        .set("controlPlane", control_plane)
        .set("clusterName", &i.cluster_name)
        .set("network", network)
        .set("token", &s.secrets.bootstrap_token);
    if c.cp {
        m = m
            .set_opt("aescbcEncryptionSecret", s.secrets.aescbc_encryption_secret.as_ref())
            .set_opt("secretboxEncryptionSecret", s.secrets.secretbox_encryption_secret.as_ref());
    }
    if let Some(k8s) = &s.certs.k8s {
        m = m.set("ca", pair(k8s, c.cp));
    }
    if c.cp {
        if let Some(agg) = &s.certs.k8s_aggregator {
            m = m.set("aggregatorCA", pair(agg, true));
        }
        if let Some(sa) = &s.certs.k8s_service_account_key {
            m = m.set("serviceAccount", M::new().set("key", b64(sa)));
        }
        let mut sans: Vec<String> = Vec::new();
        if minor <= 11 {
            sans.push(c.host.clone());
        }
        sans.extend(i.extra_cert_sans.iter().cloned());
        let api = M::new()
            .set("image", format!("registry.k8s.io/kube-apiserver:{}", c.k8s_tag))
            .set_if(!sans.is_empty(), "certSANs", strings(&sans))
            .set_if(minor <= 11, "disablePodSecurityPolicy", true)
            .set(
                "admissionControl",
                vec![M::new().set("name", "PodSecurity").set("configuration", shared::pod_security())],
            )
            .set("auditPolicy", shared::audit_policy());
        m = m
            .set("apiServer", api)
            .set("controllerManager", image("kube-controller-manager", c))
            .set("proxy", image("kube-proxy", c))
            .set("scheduler", image("kube-scheduler", c));
    }
    m = m.set(
        "discovery",
        M::new()
            .set("enabled", true)
            .set("registries", M::new().set("kubernetes", M::new().set("disabled", true)).set("service", empty())),
    );
    m = etcd(m);
    m.set_if(c.cp && i.allow_scheduling_on_control_planes, "allowSchedulingOnControlPlanes", true)
}

fn image(name: &str, c: &Checked<'_>) -> M {
    M::new().set("image", format!("registry.k8s.io/{name}:{}", c.k8s_tag))
}

pub(crate) fn string_map<'a>(items: impl Iterator<Item = (&'a String, &'a String)>) -> M {
    items.fold(M::new(), |m, (k, v)| m.set(k, v))
}
