//! What `talosctl health` checks on the Kubernetes side (siderolabs/talos
//! `pkg/cluster/check/default.go` and `kubernetes.go`, v1.13), in its
//! order and with its descriptions, as pure functions over a [`Snapshot`]
//! of the cluster; [`snapshot`] takes one with list calls.
//!
//! Nodes are matched to the expected Talos nodes by address, as upstream's
//! `NodesMatch` does (`pkg/cluster/cluster.go`): every expected address
//! must be one of exactly one Node's addresses, and no Node may be left
//! over.

use kube_core::Resource as _;
use kube_core::params::ListParams;

use super::objects::{Condition, DaemonSet, Deployment, Kind, List, Node, Pod};
use super::{Client, Error};

/// The control-plane components whose pods must run on every control plane.
pub const COMPONENTS: [&str; 3] = ["kube-apiserver", "kube-controller-manager", "kube-scheduler"];

/// The checks, in order, as `talosctl health` prints them, plus ours
/// (kubelet version) where a version is expected.
pub const CHECKS: [&str; 7] = [
    "all k8s nodes to report",
    "all control plane components to be ready",
    "all k8s nodes to report ready",
    "all k8s nodes to report the expected kubelet version",
    "kube-proxy to report ready",
    "coredns to report ready",
    "all k8s nodes to report schedulable",
];

/// What the cluster should look like.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Expected {
    /// Control-plane node addresses.
    pub control_planes: Vec<String>,
    /// Worker node addresses.
    pub workers: Vec<String>,
    /// The kubelet version every Node must report (`v1.33.1`), if any.
    pub kubelet_version: Option<String>,
}

/// The objects the checks read.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Every Node.
    pub nodes: Vec<Node>,
    /// `kube-system` pods by component (`k8s-app=<component>`), in
    /// [`COMPONENTS`] order.
    pub components: Vec<Vec<Pod>>,
    /// The kube-proxy DaemonSet's `desiredNumberScheduled` and its pods,
    /// if there is one.
    pub kube_proxy: Option<(i32, Vec<Pod>)>,
    /// CoreDNS's desired replicas and its pods, if there is a Deployment.
    pub coredns: Option<(i32, Vec<Pod>)>,
}

/// A check that did not pass, and what it saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unhealthy {
    /// The check, as in [`CHECKS`].
    pub check: &'static str,
    /// What it saw.
    pub detail: String,
}

impl std::fmt::Display for Unhealthy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.check, self.detail)
    }
}

async fn list<K: Kind>(c: &Client, namespace: Option<&str>, labels: &str) -> Result<Vec<K>, Error> {
    let mut params = ListParams::default();
    if !labels.is_empty() {
        params = params.labels(labels);
    }
    let req = kube_core::Request::new(K::Api::url_path(&(), namespace)).list(&params).map_err(Error::Build)?;
    Ok(c.send::<List<K>>(req).await?.items)
}

/// Lists what the checks read (8 list calls).
pub async fn snapshot(c: &Client) -> Result<Snapshot, Error> {
    let nodes = list::<Node>(c, None, "").await?;
    let mut components = Vec::new();
    for name in COMPONENTS {
        components.push(list::<Pod>(c, Some("kube-system"), &format!("k8s-app={name}")).await?);
    }
    let proxy = list::<DaemonSet>(c, Some("kube-system"), "k8s-app=kube-proxy").await?;
    let kube_proxy = match proxy.first() {
        Some(ds) => {
            let desired = ds.status.desired_number_scheduled;
            Some((desired, list::<Pod>(c, Some("kube-system"), "k8s-app=kube-proxy").await?))
        }
        None => None,
    };
    let dns = list::<Deployment>(c, Some("kube-system"), "k8s-app=kube-dns").await?;
    let coredns = match dns.first() {
        Some(d) => {
            let replicas = d.spec.replicas.unwrap_or(1);
            Some((replicas, list::<Pod>(c, Some("kube-system"), "k8s-app=kube-dns").await?))
        }
        None => None,
    };
    Ok(Snapshot { nodes, components, kube_proxy, coredns })
}

fn name(n: &Node) -> String {
    n.metadata.name.clone()
}

fn addresses(n: &Node) -> Vec<String> {
    n.status.addresses.iter().map(|a| a.address.clone()).collect()
}

fn node_ready(n: &Node) -> Option<bool> {
    Condition::of(&n.status.conditions, "Ready")
}

fn pod_ready(p: &Pod) -> Option<bool> {
    Condition::of(&p.status.conditions, "Ready")
}

fn is_control_plane(n: &Node) -> bool {
    n.metadata.labels.contains_key("node-role.kubernetes.io/control-plane")
}

/// upstream `NodesMatch`: each expected address on exactly one Node, no
/// Node without an expected address.
fn nodes_match(expected: &[String], nodes: &[&Node]) -> Result<(), String> {
    let missing: Vec<&String> = expected.iter().filter(|e| !nodes.iter().any(|n| addresses(n).contains(e))).collect();
    if !missing.is_empty() {
        return Err(format!("can't find expected node with IPs {missing:?}"));
    }
    let extra: Vec<String> =
        nodes.iter().filter(|n| !addresses(n).iter().any(|a| expected.contains(a))).map(|n| name(n)).collect();
    if !extra.is_empty() {
        return Err(format!("unexpected nodes {extra:?}"));
    }
    Ok(())
}

/// Pods of `what` that count: all ready, exactly `want` of them
/// (upstream `K8sPodReadyAssertion`).
fn pods_ready(want: usize, pods: &[Pod]) -> Result<(), String> {
    let live: Vec<&Pod> = pods
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter(|p| !matches!(p.status.phase.as_deref(), Some("Failed" | "Succeeded")))
        .collect();
    let not_ready: Vec<String> =
        live.iter().filter(|p| pod_ready(p) != Some(true)).map(|p| p.metadata.name.clone()).collect();
    if !not_ready.is_empty() {
        return Err(format!("some pods are not ready: {not_ready:?}"));
    }
    let ready = live.len();
    if want == 0 && ready == 0 {
        return Ok(());
    }
    if ready != want || ready == 0 {
        return Err(format!("expected {want} ready pods, got {ready}"));
    }
    Ok(())
}

/// Runs the checks in order; the first that fails is the answer.
pub fn check(s: &Snapshot, e: &Expected) -> Result<(), Unhealthy> {
    let fail = |i: usize| move |detail: String| Unhealthy { check: CHECKS[i], detail };
    let all: Vec<String> = e.control_planes.iter().chain(&e.workers).cloned().collect();
    nodes_match(&all, &s.nodes.iter().collect::<Vec<_>>()).map_err(fail(0))?;

    let cps: Vec<&Node> = s.nodes.iter().filter(|n| is_control_plane(n)).collect();
    nodes_match(&e.control_planes, &cps).map_err(fail(1))?;
    for (component, pods) in COMPONENTS.iter().zip(&s.components) {
        if pods.len() != e.control_planes.len() {
            let msg =
                format!("expected number of pods for {component} to be {}, got {}", e.control_planes.len(), pods.len());
            return Err(fail(1)(msg));
        }
        let not_ready: Vec<String> =
            pods.iter().filter(|p| pod_ready(p) == Some(false)).map(|p| p.metadata.name.clone()).collect();
        if !not_ready.is_empty() {
            return Err(fail(1)(format!("some pods are not ready for {component}: {not_ready:?}")));
        }
    }

    let not_ready: Vec<String> =
        s.nodes.iter().filter(|n| node_ready(n) == Some(false) || node_ready(n).is_none()).map(name).collect();
    if !not_ready.is_empty() {
        return Err(fail(2)(format!("some nodes are not ready: {not_ready:?}")));
    }

    if let Some(want) = &e.kubelet_version {
        let other: Vec<String> = s
            .nodes
            .iter()
            .filter_map(|n| {
                let v = n.status.node_info.kubelet_version.clone();
                (v != *want).then(|| format!("{} ({})", name(n), if v.is_empty() { "none" } else { &v }))
            })
            .collect();
        if !other.is_empty() {
            return Err(fail(3)(format!("want {want}; nodes with another kubelet version: {}", other.join(", "))));
        }
    }

    if let Some((desired, pods)) = &s.kube_proxy {
        pods_ready(usize::try_from(*desired).unwrap_or(0), pods).map_err(fail(4))?;
    }
    if let Some((replicas, pods)) = &s.coredns {
        pods_ready(usize::try_from(*replicas).unwrap_or(0), pods).map_err(fail(5))?;
    }

    let cordoned: Vec<String> = s.nodes.iter().filter(|n| n.spec.unschedulable == Some(true)).map(name).collect();
    if !cordoned.is_empty() {
        return Err(fail(6)(format!("some nodes are not schedulable: {cordoned:?}")));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
