//! Typed documents that Talos refuses next to a v1alpha1 setting they
//! replace. Talos validates every config with each document's
//! `V1Alpha1ConflictValidate` (siderolabs/talos
//! `pkg/machinery/config/container/validate.go`); the rules here restate
//! those checks (`pkg/machinery/config/types/{k8s,network,cluster,cri,
//! block,runtime}/*.go`, v1.12–v1.15), so a deprecated v1alpha1 field the
//! schema accepts is still refused where Talos refuses it: on v1.14,
//! `machine.kubelet` next to the generated `KubeletConfig` document, or
//! `machine.network.nameservers` next to the generated `ResolverConfig`.

use std::net::IpAddr;

use serde_yaml_ng::Value;

use super::VersionContract;

/// How a v1alpha1 value counts as set, as the Go accessor sees it.
#[derive(Clone, Copy)]
enum Set {
    /// Key present and not null (a non-nil pointer, map or slice).
    Present,
    /// A non-empty string, list or map.
    NonEmpty,
    /// `true`.
    True,
    /// A number other than 0 or a duration other than `0s`.
    NonZero,
    /// A list with at least one IP address (`Config.Resolvers()`).
    HasIp,
}

/// `(document kind, v1alpha1 path, test, Talos's message)`.
type Rule = (&'static str, &'static str, Set, &'static str);

const RULES: &[Rule] = &[
    (
        "KubeletConfig",
        "/machine/kubelet",
        Set::Present,
        "kubelet config is already set in v1alpha1 config (.machine.kubelet)",
    ),
    (
        "KubeCredentialProviderConfig",
        "/machine/kubelet",
        Set::Present,
        "cannot use KubeCredentialProviderConfig with legacy kubelet configuration (.machine.kubelet)",
    ),
    (
        "KubeNodeConfig",
        "/cluster/allowSchedulingOnControlPlanes",
        Set::Present,
        ".cluster.allowSchedulingOnControlPlanes is already set in v1alpha1 config",
    ),
    (
        "KubeNodeConfig",
        "/cluster/allowSchedulingOnMasters",
        Set::Present,
        ".cluster.allowSchedulingOnMasters is already set in v1alpha1 config",
    ),
    (
        "KubeNodeConfig",
        "/machine/kubelet/skipNodeRegistration",
        Set::Present,
        ".machine.kubelet.skipNodeRegistration is already set in v1alpha1 config",
    ),
    (
        "KubeNodeConfig",
        "/machine/kubelet/registerWithFQDN",
        Set::Present,
        ".machine.kubelet.registerWithFQDN is already set in v1alpha1 config",
    ),
    (
        "KubeNodeConfig",
        "/machine/kubelet/nodeIP",
        Set::Present,
        ".machine.kubelet.nodeIP is already set in v1alpha1 config",
    ),
    ("KubeNodeConfig", "/machine/nodeLabels", Set::Present, ".machine.nodeLabels is already set in v1alpha1 config"),
    (
        "KubeNodeConfig",
        "/machine/nodeAnnotations",
        Set::Present,
        ".machine.nodeAnnotations is already set in v1alpha1 config",
    ),
    ("KubeNodeConfig", "/machine/nodeTaints", Set::Present, ".machine.nodeTaints is already set in v1alpha1 config"),
    (
        "ResolverConfig",
        "/machine/network/searchDomains",
        Set::Present,
        ".machine.network.searchDomains is already set in v1alpha1 config",
    ),
    (
        "ResolverConfig",
        "/machine/network/nameservers",
        Set::HasIp,
        ".machine.network.nameservers is already set in v1alpha1 config",
    ),
    (
        "ResolverConfig",
        "/machine/network/disableSearchDomain",
        Set::True,
        ".machine.network.disableSearchDomain is already set in v1alpha1 config",
    ),
    ("HostnameConfig", "/machine/network/hostname", Set::NonEmpty, "static hostname is already set in v1alpha1 config"),
    (
        "HostnameConfig",
        "/machine/features/stableHostname",
        Set::True,
        "stable hostname is already set in v1alpha1 config",
    ),
    (
        "UnattendedInstallConfig",
        "/machine/install",
        Set::Present,
        "UnattendedInstallConfig config is incompatible with v1alpha1 config (.machine.install)",
    ),
    (
        "KubeSpanConfig",
        "/machine/network/kubespan",
        Set::Present,
        "kubespan is already configured in v1alpha1 machine.network.kubespan",
    ),
    (
        "TimeSyncConfig",
        "/machine/time/disabled",
        Set::True,
        "time sync cannot be disabled in both v1alpha1 and new-style configuration",
    ),
    (
        "TimeSyncConfig",
        "/machine/time/servers",
        Set::NonEmpty,
        "time servers cannot be specified in both v1alpha1 and new-style configuration",
    ),
    (
        "TimeSyncConfig",
        "/machine/time/bootTimeout",
        Set::NonZero,
        "boot timeout cannot be specified in both v1alpha1 and new-style configuration",
    ),
    (
        "DiscoveryIdentityConfig",
        "/cluster/id",
        Set::NonEmpty,
        "cluster identity is already configured in .cluster.id/.cluster.secret of the v1alpha1 config",
    ),
    (
        "DiscoveryIdentityConfig",
        "/cluster/secret",
        Set::NonEmpty,
        "cluster identity is already configured in .cluster.id/.cluster.secret of the v1alpha1 config",
    ),
    (
        "DiscoveryServiceConfig",
        "/cluster/discovery",
        Set::Present,
        "discovery service is already configured in .cluster.discovery of the v1alpha1 config",
    ),
    (
        "CRIBaseRuntimeSpecConfig",
        "/machine/baseRuntimeSpecOverrides",
        Set::Present,
        "base runtime spec overrides are already set in v1alpha1 config",
    ),
    (
        "ImageCacheConfig",
        "/machine/features/imageCache",
        Set::Present,
        "image cache config is already set in v1alpha1 config",
    ),
    (
        "KubeAdmissionControlConfig",
        "/cluster/apiServer/admissionControl",
        Set::NonEmpty,
        "admission control plugin config is already set in v1alpha1 config",
    ),
    (
        "KubeAuthorizerConfig",
        "/cluster/apiServer/admissionControl",
        Set::NonEmpty,
        "admission control plugin config is already set in v1alpha1 config",
    ),
    (
        "KubeAuditPolicyConfig",
        "/cluster/apiServer/auditPolicy",
        Set::NonEmpty,
        "audit policy config is already set in v1alpha1 config",
    ),
    (
        "KubeAggregatorCAConfig",
        "/cluster/aggregatorCA",
        Set::Present,
        "kube-apiserver aggregator CA is already set in v1alpha1 config (.cluster.aggregatorCA), please remove it and use the new KubeAggregatorCAConfig document instead",
    ),
    (
        "KubeAPIServerConfig",
        "/cluster/apiServer",
        Set::Present,
        "kube-apiserver config is already set in v1alpha1 config (.cluster.apiServer)",
    ),
    (
        "KubeAPIServerConfig",
        "/cluster/controlPlane/localAPIServerPort",
        Set::NonZero,
        "kube-apiserver API port is already set in v1alpha1 config (.cluster.controlPlane.localAPIServerPort)",
    ),
    (
        "KubeAPIServerCAConfig",
        "/cluster/ca",
        Set::Present,
        "kube-apiserver CA is already set in v1alpha1 config (.cluster.ca)",
    ),
    (
        "KubeClusterConfig",
        "/cluster/clusterName",
        Set::NonEmpty,
        "cluster name is already set in the v1alpha1 config (.cluster.clusterName). Please remove it and use only the new KubeClusterConfig document to avoid conflicts",
    ),
    (
        "KubeClusterConfig",
        "/cluster/controlPlane/endpoint",
        Set::Present,
        "cluster endpoint is already set in the v1alpha1 config (.cluster.controlPlane.endpoint). Please remove it and use only the new KubeClusterConfig document to avoid conflicts",
    ),
    (
        "KubeControllerManagerConfig",
        "/cluster/controllerManager",
        Set::Present,
        "kube-controller-manager config is already set in v1alpha1 config (.cluster.controllerManager)",
    ),
    (
        "KubeControllerManagerConfig",
        "/machine/controlPlane/controllerManager",
        Set::Present,
        "kube-controller-manager config is already set in v1alpha1 config (.machine.controlplane.controllerManager)",
    ),
    (
        "KubeCoreDNSConfig",
        "/cluster/coreDNS",
        Set::Present,
        "CoreDNS config is already set in v1alpha1 config (.cluster.coreDNS)",
    ),
    (
        "KubeEtcdEncryptionConfig",
        "/cluster/secretboxEncryptionSecret",
        Set::NonEmpty,
        "etcd encryption config is already set in v1alpha1 config",
    ),
    (
        "KubeEtcdEncryptionConfig",
        "/cluster/aescbcEncryptionSecret",
        Set::NonEmpty,
        "etcd encryption config is already set in v1alpha1 config",
    ),
    (
        "KubeFlannelCNIConfig",
        "/cluster/network",
        Set::Present,
        "cluster network config in v1alpha1 config (.machine.cluster.network) can't be used with KubeFlannelCNIConfig document, please remove it to avoid conflicts",
    ),
    (
        "KubeNetworkConfig",
        "/cluster/network",
        Set::Present,
        "cluster network config is already set in the v1alpha1 config (.machine.cluster.network). Please remove it and use only the new KubeNetworkConfig document to avoid conflicts",
    ),
    (
        "KubePrismConfig",
        "/machine/features/kubePrism",
        Set::Present,
        "KubePrism config in v1alpha1 config (.machine.features.kubePrism) can't be used with KubePrismConfig document, please remove it to avoid conflicts",
    ),
    (
        "KubeProxyConfig",
        "/cluster/proxy",
        Set::Present,
        "cluster proxy config in v1alpha1 config (.machine.cluster.proxy) can't be used with KubeProxyConfig document, please remove it to avoid conflicts",
    ),
    (
        "KubeSchedulerConfig",
        "/cluster/scheduler",
        Set::Present,
        "kube-scheduler config is already set in v1alpha1 config (.cluster.scheduler)",
    ),
    (
        "KubeSchedulerConfig",
        "/machine/controlPlane/scheduler",
        Set::Present,
        "kube-scheduler config is already set in v1alpha1 config (.machine.controlplane.scheduler)",
    ),
    (
        "KubeServiceAccountConfig",
        "/cluster/serviceAccount",
        Set::Present,
        "service account is already set in v1alpha1 config (.cluster.serviceAccount)",
    ),
    (
        "KubeTalosAPIAccessConfig",
        "/machine/features/kubernetesTalosAPIAccess",
        Set::Present,
        ".machine.features.kubernetesTalosAPIAccess is already set in v1alpha1 config",
    ),
];

/// A document Talos would refuse next to the v1alpha1 one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Conflict {
    /// Zero-based index of the typed document.
    pub document: usize,
    /// Its kind.
    pub kind: String,
    /// Talos's message.
    pub message: String,
}

/// The first conflict between the v1alpha1 document and a typed one.
pub(super) fn first(contract: VersionContract, docs: &[Value]) -> Option<Conflict> {
    let legacy = docs.iter().find(|d| super::document_kind(d).as_deref() == Some("v1alpha1"))?;
    let legacy = serde_json::to_value(legacy).ok()?;
    docs.iter().enumerate().find_map(|(document, doc)| {
        let kind = super::document_kind(doc).filter(|k| k != "v1alpha1")?;
        let conflict = |message: String| Conflict { document, kind: kind.clone(), message };
        if let Some(m) = extra(contract, &kind, doc, &legacy) {
            return Some(conflict(m));
        }
        RULES
            .iter()
            .filter(|(k, ..)| *k == kind || (*k == "UnattendedInstallConfig" && kind == "UnattendedInstall"))
            .find(|(_, path, test, _)| legacy.pointer(path).is_some_and(|v| is_set(v, *test)))
            .map(|(.., message)| conflict((*message).to_string()))
    })
}

/// The two checks that also look at the typed document.
fn extra(contract: VersionContract, kind: &str, doc: &Value, legacy: &serde_json::Value) -> Option<String> {
    let set = |v: Option<&Value>| v.is_some_and(|v| !v.is_null() && v.as_mapping().is_none_or(|m| !m.is_empty()));
    match kind {
        // network/resolver.go (v1.14+): a non-empty hostDNS next to .machine.features.hostDNS.
        "ResolverConfig"
            if contract.at_least(14)
                && set(doc.get("hostDNS"))
                && legacy.pointer("/machine/features/hostDNS").is_some_and(|v| is_set(v, Set::Present)) =>
        {
            Some(".machine.features.hostDNS is already set in v1alpha1 config".to_string())
        }
        // block/volume_config.go: encryption of STATE/EPHEMERAL in both places.
        "VolumeConfig" if set(doc.get("encryption")) => {
            let name = doc.get("name").and_then(Value::as_str)?;
            let legacy_key = match name {
                "STATE" => "state",
                "EPHEMERAL" => "ephemeral",
                _ => return None,
            };
            legacy
                .pointer(&format!("/machine/systemDiskEncryption/{legacy_key}"))
                .is_some_and(|v| is_set(v, Set::Present))
                .then(|| {
                    format!(
                        "system disk encryption for {name:?} is configured in both v1alpha1.Config and VolumeConfig"
                    )
                })
        }
        _ => None,
    }
}

fn is_set(v: &serde_json::Value, test: Set) -> bool {
    use serde_json::Value as J;
    match (test, v) {
        (_, J::Null) => false,
        (Set::Present, _) => true,
        (Set::NonEmpty, J::String(s)) => !s.is_empty(),
        (Set::NonEmpty, J::Array(a)) => !a.is_empty(),
        (Set::NonEmpty, J::Object(o)) => !o.is_empty(),
        (Set::NonEmpty, _) => true,
        (Set::True, J::Bool(b)) => *b,
        (Set::True, _) => false,
        (Set::NonZero, J::Number(n)) => n.as_f64() != Some(0.0),
        (Set::NonZero, J::String(s)) => !s.is_empty() && s.trim_start_matches(['0', '.']) != "s" && s != "0",
        (Set::NonZero, _) => false,
        (Set::HasIp, J::Array(a)) => a.iter().any(|s| s.as_str().is_some_and(|s| s.parse::<IpAddr>().is_ok())),
        (Set::HasIp, _) => false,
    }
}
