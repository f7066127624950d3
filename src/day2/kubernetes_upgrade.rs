//! A Kubernetes upgrade as `talosctl upgrade-k8s` does it (siderolabs/talos
//! `pkg/cluster/kubernetes/talos_managed.go` `Upgrade`; facts in
//! `src/talos/sim/README.md`):
//!
//! 1. The path: from the lowest kubelet version of the nodes to the target,
//!    the same minor or the next one only (go-kubernetes `upgrade/path.go`).
//! 2. kube-apiserver, then kube-controller-manager, then kube-scheduler, each
//!    on every control plane in turn: the component's image in the node's
//!    running configuration becomes `<repository>:v<to>` (skipped when it
//!    already is), applied with `NO_REBOOT`; then wait for the component's
//!    config version to go up and for its static pod on that node to carry
//!    that `talos.dev/config-version` and be Ready (`upgradeStaticPodOnNode`,
//!    `checkPodStatus`).
//! 3. kube-proxy's image on every control plane (`upgradeKubeProxy`).
//! 4. The kubelet on every node, control planes first: the kubelet image,
//!    applied, then wait for the kubelet spec's version to go up and for
//!    the Node to report the new kubelet version and be Ready.
//! 5. The bootstrap manifests from the first control plane, applied
//!    server-side as field manager `talos` with `force` (Talos ≥ 1.13's
//!    `syncManifestsSSA`), each kind placed by the API server's discovery;
//!    the inventory and its prune are not done here.
//!
//! The image edits are sans-IO ([`set_image`], table-tested); the steps run
//! on the provider's clients and waits, so each ends on its deadline and on
//! Ctrl-C.

use std::time::Duration;

use serde_json::Value as Json;

use crate::kubernetes;
use crate::talos::api::wait::{Target, Until, poll_until};
use crate::talos::api::{ApiError, ApplyMode, ApplyRequest, NodeClient};
use crate::talos::yaml::{self, Value};
use crate::wait::Probe;

/// An image a Kubernetes upgrade sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Component {
    /// `cluster.apiServer.image` / `KubeAPIServerConfig.image`.
    ApiServer,
    /// `cluster.controllerManager.image` / `KubeControllerManagerConfig.image`.
    ControllerManager,
    /// `cluster.scheduler.image` / `KubeSchedulerConfig.image`.
    Scheduler,
    /// `cluster.proxy.image` / `KubeProxyConfig.image`.
    Proxy,
    /// `machine.kubelet.image` / `KubeletConfig.image`.
    Kubelet,
}

impl Component {
    /// The static pod / service name (`kube-apiserver`).
    pub fn name(self) -> &'static str {
        match self {
            Component::ApiServer => "kube-apiserver",
            Component::ControllerManager => "kube-controller-manager",
            Component::Scheduler => "kube-scheduler",
            Component::Proxy => "kube-proxy",
            Component::Kubelet => "kubelet",
        }
    }

    /// The image repository upgrade-k8s uses (its `--*-image` defaults,
    /// `pkg/machinery/constants`).
    pub fn repository(self) -> &'static str {
        match self {
            Component::ApiServer => "registry.k8s.io/kube-apiserver",
            Component::ControllerManager => "registry.k8s.io/kube-controller-manager",
            Component::Scheduler => "registry.k8s.io/kube-scheduler",
            Component::Proxy => "registry.k8s.io/kube-proxy",
            Component::Kubelet => "ghcr.io/siderolabs/kubelet",
        }
    }

    fn legacy_path(self) -> [&'static str; 3] {
        match self {
            Component::ApiServer => ["cluster", "apiServer", "image"],
            Component::ControllerManager => ["cluster", "controllerManager", "image"],
            Component::Scheduler => ["cluster", "scheduler", "image"],
            Component::Proxy => ["cluster", "proxy", "image"],
            Component::Kubelet => ["machine", "kubelet", "image"],
        }
    }

    fn typed_kind(self) -> &'static str {
        match self {
            Component::ApiServer => "KubeAPIServerConfig",
            Component::ControllerManager => "KubeControllerManagerConfig",
            Component::Scheduler => "KubeSchedulerConfig",
            Component::Proxy => "KubeProxyConfig",
            Component::Kubelet => "KubeletConfig",
        }
    }
}

/// `1.34.0` or `v1.34.0` → `(1, 34)`.
pub fn minor_of(version: &str) -> Option<(u32, u32)> {
    let mut p = version.trim_start_matches('v').split('.');
    Some((p.next()?.parse().ok()?, p.next()?.parse().ok()?))
}

/// Whether `from` → `to` is a path upgrade-k8s supports: the same minor
/// (a patch release, or a re-run) or exactly the next one.
pub fn supported_path(from: &str, to: &str) -> bool {
    match (minor_of(from), minor_of(to)) {
        (Some((a, b)), Some((c, d))) => a == c && (d == b || d == b + 1),
        _ => false,
    }
}

/// The configuration `text` with `component`'s image set to
/// `<repository>:v<to>`, in the document that holds it (v1.15's typed
/// document when there is one, else the v1alpha1 field); None when the
/// image already is that (upgrade-k8s skips the node then).
pub fn set_image(text: &str, component: Component, to: &str) -> Result<Option<String>, String> {
    let mut docs = yaml::parse_documents(text).map_err(|e| e.to_string())?;
    let typed = docs.iter().position(|d| d.get("kind").and_then(Value::as_str) == Some(component.typed_kind()));
    let current = match typed {
        Some(i) => docs[i].get("image").and_then(Value::as_str).map(str::to_string),
        None => {
            let [a, b, c] = component.legacy_path();
            docs.iter().find_map(|d| d.get(a)?.get(b)?.get(c)?.as_str().map(str::to_string))
        }
    };
    // The configured repository stays (a mirror, an air-gapped registry);
    // upstream's where the configuration names none.
    let repository = current.as_deref().map(repository_of).unwrap_or(component.repository()).to_string();
    let image = format!("{repository}:v{}", to.trim_start_matches('v'));
    if current.as_deref() == Some(image.as_str()) {
        return Ok(None);
    }
    match typed {
        Some(i) => set(&mut docs[i], &["image"], &image),
        None => {
            let i = docs
                .iter()
                .position(|d| d.get("version").and_then(Value::as_str) == Some("v1alpha1"))
                .ok_or("the configuration has no v1alpha1 document")?;
            set(&mut docs[i], &component.legacy_path(), &image);
        }
    }
    Ok(Some(yaml::emit_documents(&docs)))
}

/// The repository of an image reference (`reg:5000/kube-apiserver:v1.33.1@sha256:…`
/// → `reg:5000/kube-apiserver`).
fn repository_of(image: &str) -> &str {
    let name = image.split('@').next().unwrap_or(image);
    match name.rsplit_once(':') {
        // A colon after the last slash separates the tag; one before it is
        // a registry port.
        Some((repo, tag)) if !tag.contains('/') => repo,
        _ => name,
    }
}

fn set(doc: &mut Value, path: &[&str], image: &str) {
    let mut cur = doc;
    for (i, key) in path.iter().enumerate() {
        let Some(map) = cur.as_mapping_mut() else { return };
        let k = Value::String((*key).to_string());
        if i + 1 == path.len() {
            map.insert(k, Value::String(image.to_string()));
            return;
        }
        if !map.contains_key(&k) {
            map.insert(k.clone(), Value::Mapping(Default::default()));
        }
        let Some(next) = map.get_mut(&k) else { return };
        cur = next;
    }
}

/// The upgrade's inputs.
#[derive(Debug, Clone)]
pub struct KubernetesUpgrade {
    /// Control planes, in the order they are taken.
    pub control_planes: Vec<Target>,
    /// Workers.
    pub workers: Vec<Target>,
    /// The target version (`1.34.0`).
    pub to: String,
    /// An admin client of the cluster's Kubernetes API.
    pub kube: kubernetes::Client,
}

/// Why the upgrade stopped.
#[derive(Debug, thiserror::Error)]
pub enum KubernetesUpgradeError {
    /// Not the same minor or the next one.
    #[error("Kubernetes {from} → {to} is not a supported upgrade path: only the same minor or the next one")]
    Path {
        /// The lowest version running.
        from: String,
        /// The target.
        to: String,
    },
    /// A Talos call or wait on a node failed.
    #[error("node {node}: {step}: {source}")]
    Talos {
        /// The node.
        node: String,
        /// The step.
        step: String,
        /// The cause.
        #[source]
        source: ApiError,
    },
    /// A Kubernetes call failed.
    #[error("{step}: {source}")]
    Kube {
        /// The step.
        step: String,
        /// The cause.
        #[source]
        source: kubernetes::Error,
    },
    /// A configuration that cannot be edited.
    #[error("node {node}: {message}")]
    Config {
        /// The node.
        node: String,
        /// What is wrong.
        message: String,
    },
}

const POLL: Duration = Duration::from_millis(500);

fn talos_err(node: &str, step: &str) -> impl FnOnce(ApiError) -> KubernetesUpgradeError {
    let (node, step) = (node.to_string(), step.to_string());
    move |source| KubernetesUpgradeError::Talos { node, step, source }
}

/// Runs the upgrade (see the module); returns what it did, a line per step.
pub async fn upgrade(u: &KubernetesUpgrade, until: &Until) -> Result<Vec<String>, KubernetesUpgradeError> {
    let to = u.to.trim_start_matches('v').to_string();
    let mut log = Vec::new();
    let from = lowest_kubelet(u).await?;
    if !supported_path(&from, &to) {
        return Err(KubernetesUpgradeError::Path { from, to });
    }
    for component in [Component::ApiServer, Component::ControllerManager, Component::Scheduler] {
        for cp in &u.control_planes {
            if let Some(line) = static_pod_step(u, cp, component, &to, until).await? {
                log.push(line);
            }
        }
    }
    for cp in &u.control_planes {
        let c = connect(cp).await?;
        if patch_and_apply(&c, &cp.node, Component::Proxy, &to).await? {
            log.push(format!("{}: kube-proxy image → v{to}", cp.node));
        }
    }
    for node in u.control_planes.iter().chain(&u.workers) {
        if let Some(line) = kubelet_step(u, node, &to, until).await? {
            log.push(line);
        }
    }
    let first = u.control_planes.first().ok_or_else(|| KubernetesUpgradeError::Config {
        node: String::new(),
        message: "no control plane to read the bootstrap manifests from".to_string(),
    })?;
    let manifests =
        connect(first).await?.manifests().await.map_err(talos_err(&first.node, "read the bootstrap manifests"))?;
    let mut applied = 0;
    let mut seen = kubernetes::Discovered::default();
    for m in &manifests {
        for obj in &m.objects {
            u.kube
                .apply_discovered(&mut seen, obj, "talos", true)
                .await
                .map_err(|source| KubernetesUpgradeError::Kube { step: format!("apply manifest {}", m.id), source })?;
            applied += 1;
        }
    }
    log.push(format!("bootstrap manifests: {applied} objects applied server-side (field manager talos)"));
    Ok(log)
}

async fn connect(t: &Target) -> Result<NodeClient, KubernetesUpgradeError> {
    t.connect().await.map_err(talos_err(&t.node, "connect"))
}

/// The lowest kubelet version the nodes run (their kubelet specs' images).
async fn lowest_kubelet(u: &KubernetesUpgrade) -> Result<String, KubernetesUpgradeError> {
    let mut lowest: Option<((u32, u32, u32), String)> = None;
    for t in u.control_planes.iter().chain(&u.workers) {
        let spec = connect(t).await?.kubelet_spec().await.map_err(talos_err(&t.node, "read the kubelet spec"))?;
        let Some(spec) = spec else { continue };
        let tag = spec.image.rsplit_once(':').map(|(_, t)| t.to_string()).unwrap_or_default();
        let v = tag.trim_start_matches('v').to_string();
        let mut parts = v.split('.').map(|p| p.split('-').next().unwrap_or_default().parse::<u32>().unwrap_or(0));
        let key = (parts.next().unwrap_or(0), parts.next().unwrap_or(0), parts.next().unwrap_or(0));
        if lowest.as_ref().is_none_or(|(k, _)| key < *k) {
            lowest = Some((key, v));
        }
    }
    lowest.map(|(_, v)| v).ok_or_else(|| KubernetesUpgradeError::Config {
        node: String::new(),
        message: "no node reports a kubelet".to_string(),
    })
}

/// Sets `component`'s image in the node's running configuration and
/// applies it without a reboot; false when it already was that.
async fn patch_and_apply(
    c: &NodeClient,
    node: &str,
    component: Component,
    to: &str,
) -> Result<bool, KubernetesUpgradeError> {
    let text =
        c.machine_config().await.map_err(talos_err(node, "read the running configuration"))?.ok_or_else(|| {
            KubernetesUpgradeError::Config { node: node.to_string(), message: "no configuration".into() }
        })?;
    let Some(next) = set_image(&text, component, to)
        .map_err(|message| KubernetesUpgradeError::Config { node: node.to_string(), message })?
    else {
        return Ok(false);
    };
    let req = ApplyRequest { config: next.into_bytes(), mode: ApplyMode::NoReboot, dry_run: false, try_timeout: None };
    c.apply_configuration(&req).await.map_err(talos_err(node, &format!("apply the {} image", component.name())))?;
    Ok(true)
}

/// One control-plane component on one node. Already at the image (a re-run
/// after a stopped upgrade), its pod is still waited for at the config
/// version it runs, as `upgradeStaticPodOnNode` does.
async fn static_pod_step(
    u: &KubernetesUpgrade,
    cp: &Target,
    component: Component,
    to: &str,
    until: &Until,
) -> Result<Option<String>, KubernetesUpgradeError> {
    let name = component.name();
    let c = connect(cp).await?;
    let before = c.component_config_version(name).await.map_err(talos_err(&cp.node, "read the component config"))?;
    let node_name =
        c.nodename().await.map_err(talos_err(&cp.node, "read the Kubernetes node name"))?.unwrap_or_default();
    let patched = patch_and_apply(&c, &cp.node, component, to).await?;
    let version = if patched {
        let step = format!("wait for the {name} config to change");
        poll_until(&cp.node, "the component config version to go up", until, POLL, || async {
            let now = cp.connect().await?.component_config_version(name).await?;
            Ok(match (now, before) {
                (Some(n), Some(b)) if n > b => Probe::Ready(n),
                (Some(n), None) => Probe::Ready(n),
                (n, _) => Probe::NotYet(format!("config version {n:?}")),
            })
        })
        .await
        .map_err(talos_err(&cp.node, &step))?
    } else {
        match before {
            Some(v) => v,
            None => return Ok(None),
        }
    };
    let want = version.to_string();
    let step = format!("wait for the {name} pod at config version {want} to be Ready");
    poll_until(&cp.node, "the static pod to run the new config", until, POLL, || async {
        Ok(match static_pod_ready(&u.kube, name, &node_name, &want).await {
            Ok(true) => Probe::Ready(()),
            Ok(false) => Probe::NotYet(format!("{name} on {node_name}: not Ready at config version {want}")),
            Err(e) => Probe::NotYet(e.to_string()),
        })
    })
    .await
    .map_err(talos_err(&cp.node, &step))?;
    Ok(patched.then(|| format!("{}: {name} → v{to} (config version {want})", cp.node)))
}

/// Whether the `k8s-app=<component>` pod on Node `node_name` carries
/// `talos.dev/config-version: version` and is Ready (`checkPodStatus`,
/// which matches the host IP; the Node name holds for any address form).
async fn static_pod_ready(
    kube: &kubernetes::Client,
    component: &str,
    node_name: &str,
    version: &str,
) -> Result<bool, kubernetes::Error> {
    let params = kube_core::params::ListParams::default().labels(&format!("k8s-app={component}"));
    let req = kube_core::Request::new("/api/v1/namespaces/kube-system/pods")
        .list(&params)
        .map_err(kubernetes::Error::Build)?;
    let pods: Json = kube.send(req).await?;
    Ok(pods["items"].as_array().is_some_and(|items| {
        items.iter().any(|p| {
            p["spec"]["nodeName"] == node_name
                && p["metadata"]["annotations"]["talos.dev/config-version"] == version
                && p["status"]["conditions"]
                    .as_array()
                    .is_some_and(|c| c.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
        })
    }))
}

/// The kubelet of one node: its image, applied; then its spec's version
/// goes up and the Node reports the new kubelet version, Ready.
async fn kubelet_step(
    u: &KubernetesUpgrade,
    t: &Target,
    to: &str,
    until: &Until,
) -> Result<Option<String>, KubernetesUpgradeError> {
    let c = connect(t).await?;
    let before = c.kubelet_spec().await.map_err(talos_err(&t.node, "read the kubelet spec"))?.map(|s| s.version);
    if !patch_and_apply(&c, &t.node, Component::Kubelet, to).await? {
        return Ok(None);
    }
    poll_until(&t.node, "the kubelet spec to change", until, POLL, || async {
        let now = t.connect().await?.kubelet_spec().await?.map(|s| s.version);
        Ok(if now > before { Probe::Ready(()) } else { Probe::NotYet(format!("kubelet spec version {now:?}")) })
    })
    .await
    .map_err(talos_err(&t.node, "wait for the kubelet spec"))?;
    let name = c.nodename().await.map_err(talos_err(&t.node, "read the Kubernetes node name"))?.unwrap_or_default();
    let want = format!("v{to}");
    poll_until(&t.node, "the Node to report the new kubelet", until, POLL, || async {
        Ok(match node_kubelet(&u.kube, &name).await {
            Ok((v, true)) if v == want => Probe::Ready(()),
            Ok((v, ready)) => Probe::NotYet(format!("Node {name}: kubelet {v}, Ready {ready}")),
            Err(e) => Probe::NotYet(e.to_string()),
        })
    })
    .await
    .map_err(talos_err(&t.node, "wait for the Node"))?;
    Ok(Some(format!("{}: kubelet → {want}", t.node)))
}

async fn node_kubelet(kube: &kubernetes::Client, name: &str) -> Result<(String, bool), kubernetes::Error> {
    let node = kube.node(name).await?;
    let ready = kubernetes::objects::Condition::of(&node.status.conditions, "Ready") == Some(true);
    Ok((node.status.node_info.kubelet_version, ready))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_upgrade_k8s_supports() {
        assert!(supported_path("1.33.1", "1.34.0"));
        assert!(supported_path("v1.33.1", "1.33.4"));
        assert!(!supported_path("1.33.1", "1.35.0"), "two minors");
        assert!(!supported_path("1.34.0", "1.33.9"), "a downgrade of a minor");
        assert!(!supported_path("x", "1.34.0"));
    }

    #[test]
    fn images_are_set_in_the_document_that_holds_them() {
        let legacy = "version: v1alpha1\nmachine:\n  kubelet:\n    image: ghcr.io/siderolabs/kubelet:v1.33.1\ncluster:\n  apiServer:\n    image: registry.k8s.io/kube-apiserver:v1.33.1\n";
        let out = set_image(legacy, Component::ApiServer, "1.34.0").unwrap().unwrap();
        assert!(out.contains("image: registry.k8s.io/kube-apiserver:v1.34.0"), "{out}");
        assert!(out.contains("kubelet:v1.33.1"), "only the component: {out}");
        assert_eq!(set_image(&out, Component::ApiServer, "v1.34.0").unwrap(), None, "already there: skipped");
        let k = set_image(legacy, Component::Kubelet, "1.34.0").unwrap().unwrap();
        assert!(k.contains("ghcr.io/siderolabs/kubelet:v1.34.0"), "{k}");
        // A field the configuration leaves to Talos's default is added.
        let p = set_image(legacy, Component::Proxy, "1.34.0").unwrap().unwrap();
        assert!(p.contains("proxy:\n        image: registry.k8s.io/kube-proxy:v1.34.0"), "{p}");
        // A mirror stays the repository.
        let mirror = legacy.replace("registry.k8s.io/kube-apiserver", "mirror.lan:5000/k8s/kube-apiserver");
        let m = set_image(&mirror, Component::ApiServer, "1.34.0").unwrap().unwrap();
        assert!(m.contains("image: mirror.lan:5000/k8s/kube-apiserver:v1.34.0"), "{m}");
        assert_eq!(repository_of("reg:5000/x/kubelet@sha256:00"), "reg:5000/x/kubelet");
        // v1.15: the typed document holds it.
        let typed = "version: v1alpha1\nmachine:\n  type: controlplane\n---\napiVersion: v1alpha1\nkind: KubeAPIServerConfig\nimage: registry.k8s.io/kube-apiserver:v1.35.0\n";
        let t = set_image(typed, Component::ApiServer, "1.36.0").unwrap().unwrap();
        assert!(t.contains("kind: KubeAPIServerConfig\nimage: registry.k8s.io/kube-apiserver:v1.36.0"), "{t}");
        assert!(!t.contains("apiServer"), "{t}");
    }
}
