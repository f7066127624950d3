//! Typed documents (`apiVersion: v1alpha1`, `kind: ...`) per contract
//! (behaviour.md §10 "Extra documents", §11).

use serde_yaml_ng::Value;

use super::build::{M, empty, strings};
use super::input::{Checked, Cni};
use super::legacy::string_map;
use super::shared;
use crate::talos::secrets::SecretsBundle;

/// Typed documents for contracts v1.12 and v1.13.
pub(crate) fn v1_12(c: &Checked<'_>) -> Vec<Value> {
    let mut docs = registry_mirrors(c);
    docs.push(hostname());
    docs
}

fn hostname() -> Value {
    M::doc("HostnameConfig").set("auto", "stable").value()
}

fn registry_mirrors(c: &Checked<'_>) -> Vec<Value> {
    c.input
        .registry_mirrors
        .iter()
        .map(|(host, endpoints)| {
            M::doc("RegistryMirrorConfig")
                .set("name", host)
                .set("endpoints", endpoints.iter().map(|e| M::new().set("url", e)).collect::<Vec<_>>())
                .value()
        })
        .collect()
}

/// Typed documents for contract v1.14 (the Kubernetes split).
pub(crate) fn v1_14(c: &Checked<'_>, s: &SecretsBundle) -> Vec<Value> {
    let i = c.input;
    let mut docs = vec![
        M::doc("DiscoveryServiceConfig").set("name", "default").set("endpoint", "https://discovery.talos.dev/").value(),
        M::doc("DiscoveryIdentityConfig")
            .set("clusterID", &s.cluster.id)
            .set("clusterSecret", &s.cluster.secret)
            .value(),
    ];
    if let Some(disk) = &i.install_disk {
        let installer = M::new().set_opt("image", i.install_image.as_ref());
        docs.push(
            M::doc("UnattendedInstallConfig")
                .set("installer", installer)
                .set(
                    "provisioning",
                    M::new()
                        .set("diskSelector", M::new().set("match", format!("disk.dev_path == {disk:?}")))
                        .set("wipe", false),
                )
                .value(),
        );
    }
    docs.push(M::doc("ResolverConfig").set("hostDNS", shared::host_dns()).value());
    if !i.sysctls.is_empty() {
        docs.push(M::doc("SysctlConfig").set("params", string_map(i.sysctls.iter())).value());
    }
    docs.extend([
        M::doc("VolumeConfig").set("name", "EPHEMERAL").set("mount", M::new().set("secure", true)).value(),
        M::doc("FilesystemTrimConfig").set("interval", "168h0m0s").value(),
        M::doc("SecurityProfileConfig").set("workloadIsolation", true).value(),
    ]);
    docs.extend(registry_mirrors(c));
    docs.push(hostname());
    docs.push(M::doc("KubeClusterConfig").set("clusterName", &i.cluster_name).set("endpoint", &i.endpoint).value());
    let mut node = M::doc("KubeNodeConfig").set("nodeIP", empty());
    if c.cp {
        node = node.set(
            "labels",
            M::new()
                .set("node-role.kubernetes.io/control-plane", "")
                .set("node.kubernetes.io/exclude-from-external-load-balancers", ""),
        );
        if !i.allow_scheduling_on_control_planes {
            node = node.set("taints", M::new().set("node-role.kubernetes.io/control-plane", "NoSchedule"));
        }
    }
    docs.push(node.value());
    docs.push(
        M::doc("KubeletConfig")
            .set("image", format!("ghcr.io/siderolabs/kubelet:{}", c.k8s_tag))
            .set("config", empty())
            .set("defaultRuntimeSeccompProfileEnabled", true)
            .value(),
    );
    docs.push(
        M::doc("KubeNetworkConfig")
            .set("dnsDomain", &c.dns_domain)
            .set("podSubnets", strings(&[shared::POD_SUBNET]))
            .set("serviceSubnets", strings(&[shared::SERVICE_SUBNET]))
            .value(),
    );
    if let Some(k8s) = &s.certs.k8s {
        let doc = M::doc("KubeAPIServerCAConfig");
        docs.push(if c.cp {
            doc.set("issuingCA", M::new().set("cert", &k8s.crt).set("key", &k8s.key)).value()
        } else {
            doc.set("acceptedCAs", strings(&[&k8s.crt])).value()
        });
    }
    docs.push(M::doc("KubePrismConfig").set("port", 7445u16).value());
    if !c.cp {
        return docs;
    }
    if let Some(agg) = &s.certs.k8s_aggregator {
        docs.push(
            M::doc("KubeAggregatorCAConfig")
                .set("issuingCA", M::new().set("cert", &agg.crt).set("key", &agg.key))
                .value(),
        );
    }
    docs.extend(control_plane_docs(c, s));
    docs
}

fn control_plane_docs(c: &Checked<'_>, s: &SecretsBundle) -> Vec<Value> {
    let i = c.input;
    let image = |name: &str| format!("registry.k8s.io/{name}:{}", c.k8s_tag);
    let mut docs = vec![
        M::doc("KubeAdmissionControlConfig")
            .set("name", "PodSecurity")
            .set("configuration", shared::pod_security())
            .value(),
        M::doc("KubeAuditPolicyConfig").set("configuration", shared::audit_policy()).value(),
        M::doc("KubeAuthenticationConfig")
            .set(
                "configuration",
                M::new()
                    .set(
                        "anonymous",
                        M::new()
                            .set(
                                "conditions",
                                ["/livez", "/readyz", "/healthz"]
                                    .iter()
                                    .map(|p| M::new().set("path", *p))
                                    .collect::<Vec<_>>(),
                            )
                            .set("enabled", true),
                    )
                    .set("jwt", strings::<&str>(&[])),
            )
            .value(),
        M::doc("KubeAuthorizerConfig").set("name", "node").set("type", "Node").value(),
        M::doc("KubeAuthorizerConfig").set("name", "rbac").set("type", "RBAC").value(),
    ];
    if let Some(secret) = &s.secrets.secretbox_encryption_secret {
        let provider =
            M::new().set("secretbox", M::new().set("keys", vec![M::new().set("name", "key2").set("secret", secret)]));
        docs.push(
            M::doc("KubeEtcdEncryptionConfig")
                .set(
                    "config",
                    M::new().set(
                        "resources",
                        vec![M::new().set("providers", vec![provider]).set("resources", strings(&["secrets"]))],
                    ),
                )
                .value(),
        );
    }
    if let Some(sa) = &s.certs.k8s_service_account_key {
        docs.push(
            M::doc("KubeServiceAccountConfig")
                .set("issuer", M::new().set("privateKey", sa).set("issuerURL", &i.endpoint))
                .value(),
        );
    }
    docs.extend([
        M::doc("KubeAPIServerConfig")
            .set("image", image("kube-apiserver"))
            .set_opt("apiPort", i.local_api_server_port)
            .set_if(!i.extra_cert_sans.is_empty(), "certExtraSANs", strings(&i.extra_cert_sans))
            .value(),
        M::doc("KubeControllerManagerConfig").set("image", image("kube-controller-manager")).value(),
        M::doc("KubeSchedulerConfig").set("image", image("kube-scheduler")).set("config", empty()).value(),
        M::doc("KubeProxyConfig").set("image", image("kube-proxy")).set("config", empty()).value(),
    ]);
    if i.cni == Cni::Default {
        docs.push(M::doc("KubeFlannelCNIConfig").set("backendType", "vxlan").set("backendPort", 4789u16).value());
    }
    docs.push(M::doc("KubeCoreDNSConfig").set("enabled", true).value());
    if let Cni::Custom(urls) = &i.cni {
        for (n, url) in urls.iter().enumerate() {
            let name = if n == 0 { "custom-cni".to_string() } else { format!("custom-cni-{n}") };
            docs.push(M::doc("KubeExternalManifestConfig").set("name", name).set("url", url).value());
        }
    }
    docs
}
