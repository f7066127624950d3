//! What the simulator reads out of an applied machine configuration, and
//! the checks Talos makes on apply (behaviour.md §4, §10, §11; api.md §3.1):
//! parse and schema of the node's version, known document kinds, install
//! instructions on `metal`, the v1alpha1 document on a configured node.

use std::net::IpAddr;

use base64::Engine as _;
use serde_yaml_ng::Value;

use crate::talos::config::MachineConfig;
use crate::talos::secrets::CertAndKey;
use crate::talos::version::VersionContract;

/// Facts about one applied config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    /// The text as applied.
    pub text: String,
    /// Whether it has the `version: v1alpha1` document (a *complete* config).
    pub complete: bool,
    /// `machine.type` is `controlplane` (or `init`).
    pub control_plane: bool,
    /// OS CA (`machine.ca`): crt always, key on control planes.
    pub os_ca: Option<CertAndKey>,
    /// Kubernetes CA: crt, key on control planes.
    pub k8s_ca: Option<CertAndKey>,
    /// `cluster.etcd.ca` present.
    pub etcd_ca: bool,
    /// Cluster name.
    pub cluster_name: String,
    /// Control-plane endpoint URL.
    pub endpoint: String,
    /// Install instructions present (disk, diskSelector, or UnattendedInstallConfig).
    pub install: bool,
    /// The installer image the install uses (`machine.install.image`, or
    /// `UnattendedInstallConfig.installer.image`); None: Talos's default,
    /// the installer of the running version.
    pub install_image: Option<String>,
    /// `cluster.adminKubeconfig.certLifetime`, if set.
    pub kubeconfig_lifetime: Option<String>,
    /// The host name the configuration sets (`HostnameConfig.hostname`, or
    /// v1alpha1 `machine.network.hostname`); None: the node's own.
    pub hostname: Option<String>,
    /// What the node runs of Kubernetes (the lab's Kubernetes API, `kube/`).
    pub kube: KubeFacts,
    /// The shared virtual IPs the configuration asks for (`vip.rs`).
    pub vips: Vec<VipFact>,
}

/// One Layer 2 shared IP of a configuration: `Layer2VIPConfig` (v1.12+;
/// `name` is the address, `link` the link) or v1alpha1's
/// `machine.network.interfaces[].vip.ip` (and a VLAN's `vlans[].vip.ip`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VipFact {
    /// The shared address.
    pub ip: IpAddr,
    /// Whether the link it is put on exists on the machine: the simulated
    /// machine's one link, a selector (`deviceSelector`, which matches it),
    /// or a link the configuration itself makes (an alias, VLAN, bond,
    /// bridge or dummy link document).
    pub link_found: bool,
    /// The link as written (for the simulator's log).
    pub link: String,
}

/// The name Talos gives the simulated machine's one NIC: Proxmox puts
/// `net0` (virtio) at PCI slot 0x12, and systemd's predictable naming,
/// which Talos uses from v1.5 on, calls it `ens18`.
pub const SIM_LINK: &str = "ens18";

/// The v1.12+ documents that make a link a VIP may be put on.
const LINK_KINDS: [&str; 5] = ["LinkAliasConfig", "VLANConfig", "BondConfig", "BridgeConfig", "DummyLinkConfig"];

/// The Kubernetes side of a configuration: images (their tags are the
/// versions the components report) and scheduling.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KubeFacts {
    /// `machine.kubelet.image` / `KubeletConfig.image`.
    pub kubelet_image: String,
    /// `cluster.apiServer.image` / `KubeAPIServerConfig.image`.
    pub apiserver_image: String,
    /// `cluster.controllerManager.image` / `KubeControllerManagerConfig.image`.
    pub controller_manager_image: String,
    /// `cluster.scheduler.image` / `KubeSchedulerConfig.image`.
    pub scheduler_image: String,
    /// `cluster.proxy.image` / `KubeProxyConfig.image`.
    pub proxy_image: String,
    /// `cluster.proxy.disabled`: Talos deploys no kube-proxy (its
    /// `BootstrapManifestsConfig.ProxyEnabled` is false; siderolabs/talos
    /// `internal/app/machined/pkg/controllers/k8s/manifest.go` renders
    /// `10-kube-proxy` only when enabled).
    pub proxy_disabled: bool,
    /// `cluster.coreDNS.image`, empty when the config leaves Talos's
    /// default.
    pub coredns_image: String,
    /// `cluster.allowSchedulingOnControlPlanes` (no control-plane taint).
    pub schedulable_control_plane: bool,
}

impl KubeFacts {
    /// The kubelet's version: its image tag (`v1.33.1`), or empty.
    pub fn kubelet_version(&self) -> &str {
        tag_of(&self.kubelet_image)
    }
}

/// The tag of an image reference (`registry.k8s.io/kube-apiserver:v1.33.1`
/// → `v1.33.1`), or empty.
pub fn tag_of(image: &str) -> &str {
    let name = image.rsplit('/').next().unwrap_or(image);
    name.split('@').next().unwrap_or(name).split_once(':').map_or("", |(_, t)| t)
}

fn get<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(v, |cur, k| cur.get(*k))
}

fn string(v: &Value, path: &[&str]) -> Option<String> {
    get(v, path).and_then(Value::as_str).map(str::to_string).filter(|s| !s.is_empty())
}

fn b64_pem(v: &Value, path: &[&str]) -> Option<String> {
    let s = string(v, path)?;
    base64::engine::general_purpose::STANDARD.decode(s.trim()).ok().and_then(|b| String::from_utf8(b).ok())
}

fn pair(v: &Value, path: &[&str]) -> Option<CertAndKey> {
    let mut crt_path = path.to_vec();
    crt_path.push("crt");
    let mut key_path = path.to_vec();
    key_path.push("key");
    Some(CertAndKey { crt: b64_pem(v, &crt_path)?, key: b64_pem(v, &key_path).unwrap_or_default() })
}

fn kind(doc: &Value) -> Option<&str> {
    doc.get("kind").and_then(Value::as_str)
}

/// Parses and validates `text` as a Talos `contract` node would.
pub fn read(contract: VersionContract, text: &str) -> Result<Facts, String> {
    let config = MachineConfig::parse(contract, text).map_err(|e| crate::talos::api::error::chain(&e))?;
    let docs = config.documents();
    let legacy = docs.iter().find(|d| d.get("version").and_then(Value::as_str) == Some("v1alpha1"));
    let by_kind = |k: &str| docs.iter().find(|d| kind(d) == Some(k));
    let mut facts = Facts {
        text: text.to_string(),
        complete: legacy.is_some(),
        control_plane: false,
        os_ca: None,
        k8s_ca: None,
        etcd_ca: false,
        cluster_name: String::new(),
        endpoint: String::new(),
        install: false,
        install_image: None,
        kubeconfig_lifetime: None,
        hostname: None,
        kube: KubeFacts::default(),
        vips: Vec::new(),
    };
    if let Some(l) = legacy {
        let t = string(l, &["machine", "type"]).unwrap_or_default();
        facts.control_plane = t == "controlplane" || t == "init";
        facts.os_ca = pair(l, &["machine", "ca"]);
        facts.k8s_ca = pair(l, &["cluster", "ca"]);
        facts.etcd_ca = get(l, &["cluster", "etcd", "ca", "crt"]).is_some();
        facts.cluster_name = string(l, &["cluster", "clusterName"]).unwrap_or_default();
        facts.endpoint = string(l, &["cluster", "controlPlane", "endpoint"]).unwrap_or_default();
        facts.install_image = string(l, &["machine", "install", "image"]);
        facts.install = string(l, &["machine", "install", "disk"]).is_some()
            || get(l, &["machine", "install", "diskSelector"]).is_some();
        facts.kubeconfig_lifetime = string(l, &["cluster", "adminKubeconfig", "certLifetime"]);
        facts.hostname = string(l, &["machine", "network", "hostname"]);
        let image = |p: &[&str]| string(l, p).unwrap_or_default();
        facts.kube = KubeFacts {
            kubelet_image: image(&["machine", "kubelet", "image"]),
            apiserver_image: image(&["cluster", "apiServer", "image"]),
            controller_manager_image: image(&["cluster", "controllerManager", "image"]),
            scheduler_image: image(&["cluster", "scheduler", "image"]),
            proxy_image: image(&["cluster", "proxy", "image"]),
            proxy_disabled: get(l, &["cluster", "proxy", "disabled"]).and_then(Value::as_bool).unwrap_or(false),
            coredns_image: image(&["cluster", "coreDNS", "image"]),
            schedulable_control_plane: get(l, &["cluster", "allowSchedulingOnControlPlanes"])
                .and_then(Value::as_bool)
                .unwrap_or(false),
        };
    }
    // v1.15's typed Kubernetes documents carry the images instead.
    for (k, field) in [
        ("KubeletConfig", &mut facts.kube.kubelet_image),
        ("KubeAPIServerConfig", &mut facts.kube.apiserver_image),
        ("KubeControllerManagerConfig", &mut facts.kube.controller_manager_image),
        ("KubeSchedulerConfig", &mut facts.kube.scheduler_image),
        ("KubeProxyConfig", &mut facts.kube.proxy_image),
    ] {
        if let Some(img) = by_kind(k).and_then(|d| string(d, &["image"])) {
            *field = img;
        }
    }
    // The typed document wins over the legacy field (Talos refuses both at
    // once: V1Alpha1ConflictValidate).
    if let Some(h) = by_kind("HostnameConfig").and_then(|k| string(k, &["hostname"])) {
        facts.hostname = Some(h);
    }
    if let Some(k) = by_kind("KubeClusterConfig") {
        facts.cluster_name = string(k, &["clusterName"]).unwrap_or(facts.cluster_name);
        facts.endpoint = string(k, &["endpoint"]).unwrap_or(facts.endpoint);
    }
    if let Some(k) = by_kind("KubeAPIServerCAConfig") {
        if let Some(crt) = string(k, &["issuingCA", "cert"]) {
            facts.k8s_ca = Some(CertAndKey { crt, key: string(k, &["issuingCA", "key"]).unwrap_or_default() });
        } else if let Some(crt) = get(k, &["acceptedCAs"]).and_then(|v| v.get(0)).and_then(Value::as_str) {
            facts.k8s_ca = Some(CertAndKey { crt: crt.to_string(), key: String::new() });
        }
    }
    if let Some(u) = by_kind("UnattendedInstallConfig").or_else(|| by_kind("UnattendedInstall")) {
        facts.install = true;
        if let Some(img) = string(u, &["installer", "image"]) {
            facts.install_image = Some(img);
        }
    }
    facts.vips = vips(docs, legacy);
    if facts.complete {
        if facts.os_ca.is_none() {
            return Err("machine.ca is required".to_string());
        }
        if facts.endpoint.is_empty() {
            return Err("cluster.controlPlane.endpoint is required".to_string());
        }
    }
    Ok(facts)
}

/// The shared IPs of a configuration (see [`VipFact`]).
fn vips(docs: &[Value], legacy: Option<&Value>) -> Vec<VipFact> {
    let made: Vec<String> = docs
        .iter()
        .filter(|d| kind(d).is_some_and(|k| LINK_KINDS.contains(&k)))
        .filter_map(|d| string(d, &["name"]))
        .collect();
    let fact = |ip: &str, link: &str, selector: bool| {
        let ip = ip.parse().ok()?;
        let link_found = selector || link == SIM_LINK || made.iter().any(|m| m == link);
        Some(VipFact { ip, link_found, link: link.to_string() })
    };
    let mut out = Vec::new();
    for d in docs.iter().filter(|d| kind(d) == Some("Layer2VIPConfig")) {
        if let (Some(ip), Some(link)) = (string(d, &["name"]), string(d, &["link"])) {
            out.extend(fact(&ip, &link, false));
        }
    }
    let interfaces = legacy.and_then(|l| get(l, &["machine", "network", "interfaces"])).and_then(Value::as_sequence);
    for i in interfaces.into_iter().flatten() {
        let name = string(i, &["interface"]).unwrap_or_default();
        let selector = i.get("deviceSelector").is_some();
        if let Some(ip) = string(i, &["vip", "ip"]) {
            out.extend(fact(&ip, &name, selector));
        }
        for v in i.get("vlans").and_then(Value::as_sequence).into_iter().flatten() {
            if let Some(ip) = string(v, &["vip", "ip"]) {
                out.extend(fact(&ip, &name, selector));
            }
        }
    }
    out
}

/// A reboot-needing difference between two configs on ≤ v1.13 (the
/// simulator's stand-in for Talos's live-apply check): kernel settings,
/// install kernel arguments, disk encryption, or the machine type.
pub fn needs_reboot(old: &str, new: &str) -> bool {
    let legacy = |t: &str| {
        crate::talos::yaml::parse_documents(t)
            .ok()
            .and_then(|d| d.into_iter().find(|d| d.get("version").and_then(Value::as_str) == Some("v1alpha1")))
    };
    let (Some(a), Some(b)) = (legacy(old), legacy(new)) else {
        return false;
    };
    [
        &["machine", "kernel"][..],
        &["machine", "install", "extraKernelArgs"],
        &["machine", "systemDiskEncryption"],
        &["machine", "type"],
    ]
    .iter()
    .any(|p| get(&a, p) != get(&b, p))
}

/// A line diff for dry-run summaries (redacted YAML of both sides).
pub fn diff(old: &str, new: &str) -> String {
    let redacted = |t: &str| {
        crate::talos::yaml::parse_documents(t)
            .map(|d| crate::talos::yaml::emit_documents(&crate::talos::redact::redact(&d)))
            .unwrap_or_default()
    };
    let (a, b) = (redacted(old), redacted(new));
    let a_lines: Vec<&str> = a.lines().collect();
    let b_lines: Vec<&str> = b.lines().collect();
    let mut out = String::new();
    for l in &a_lines {
        if !b_lines.contains(l) {
            out.push_str(&format!("-{l}\n"));
        }
    }
    for l in &b_lines {
        if !a_lines.contains(l) {
            out.push_str(&format!("+{l}\n"));
        }
    }
    if out.is_empty() { "No changes.".to_string() } else { out }
}

/// Parses a Go duration such as `8760h0m0s` or `720h` (h, m, s units).
pub fn go_duration(s: &str) -> Option<std::time::Duration> {
    let mut total = 0f64;
    let mut num = String::new();
    for c in s.chars() {
        match c {
            '0'..='9' | '.' => num.push(c),
            'h' | 'm' | 's' => {
                let n: f64 = num.parse().ok()?;
                total += n * match c {
                    'h' => 3600.0,
                    'm' => 60.0,
                    _ => 1.0,
                };
                num.clear();
            }
            _ => return None,
        }
    }
    if !num.is_empty() {
        return None;
    }
    Some(std::time::Duration::from_secs_f64(total))
}
