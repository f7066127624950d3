//! The lab's Kubernetes objects as the API serves them (JSON), built from
//! a [`View`]: the [`Cluster`] plus what the machines show now. Besides the
//! workload pods the cluster keeps, every registered control plane has its
//! three static (mirror) pods and every Node a kube-proxy pod, derived from
//! the Node as the kubelet and the DaemonSet controller would make them.

use std::time::{Instant, SystemTime};

use serde_json::{Value, json};

use super::model::{COMPONENTS, Cluster, Machine, NodeRecord, WORKLOADS};
use crate::talos::sim::config::tag_of;

/// Cluster state at one moment, ready to render.
pub struct View<'a> {
    /// The objects.
    pub cluster: &'a Cluster,
    /// The machines now.
    pub machines: &'a [Machine],
    /// Monotonic now (pod readiness).
    pub now: Instant,
}

/// Who owns a pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// A mirror pod of a static pod: owned by its Node.
    Node,
    /// A DaemonSet pod (kube-proxy).
    DaemonSet(&'static str),
    /// A ReplicaSet pod of a Deployment.
    ReplicaSet(String),
}

/// One pod, whatever made it.
#[derive(Debug, Clone)]
pub struct PodObj {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// uid.
    pub uid: String,
    /// Node it is bound to.
    pub node: Option<String>,
    /// Ready condition.
    pub ready: bool,
    /// Labels.
    pub labels: Vec<(String, String)>,
    /// Annotations.
    pub annotations: Vec<(String, String)>,
    /// Owner.
    pub owner: Owner,
    /// Container name and image.
    pub container: (String, String),
    /// Created.
    pub created: SystemTime,
    /// resourceVersion.
    pub rv: u64,
    /// Tolerates every taint (static and DaemonSet pods).
    pub host_network: bool,
}

/// RFC 3339 in UTC, seconds precision (Kubernetes' `metav1.Time`).
pub fn timestamp(t: SystemTime) -> String {
    let secs = t.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|d| {
            d.format(&time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z")).ok()
        })
        .unwrap_or_default()
}

fn stable_uid(seed: &str) -> String {
    let h = seed.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    let lo = crate::talos::sim::node::splitmix64(h);
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        h >> 32,
        (h >> 16) & 0xffff,
        h & 0xfff,
        0x8000 | (lo >> 50),
        lo & 0xffff_ffff_ffff
    )
}

/// Kernel and containerd a Talos release ships (siderolabs/talos
/// `pkg/machinery/constants/constants.go` DefaultKernelVersion and
/// DefaultContainerdVersion at v1.11.0, v1.12.0, v1.13.9, release-1.14;
/// v1.10 and v1.15 take their neighbours': a simulator choice).
fn runtime_versions(talos: &str) -> (&'static str, &'static str) {
    match crate::talos::sim::node::minor_of(talos) {
        ..=11 => ("6.12.43-talos", "2.1.4"),
        12 => ("6.18.1-talos", "2.1.6"),
        13 => ("6.18.44-talos", "2.2.7"),
        _ => ("6.18.44-talos", "2.3.3"),
    }
}

fn labels_json(l: &[(String, String)]) -> Value {
    Value::Object(l.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect())
}

impl View<'_> {
    /// The Ready condition's status of a Node: `True`, `False` (kubelet
    /// unhealthy) or `Unknown` (kubelet stopped posting).
    pub fn node_status(&self, name: &str) -> &'static str {
        match self.machines.iter().find(|m| m.name == name) {
            Some(m) if m.ready() => "True",
            Some(m) if m.kubelet_running => "False",
            _ => "Unknown",
        }
    }

    /// Every pod: static pods and kube-proxy per Node, then the workloads.
    pub fn pods(&self) -> Vec<PodObj> {
        let mut out = Vec::new();
        for (name, rec) in &self.cluster.nodes {
            let ready = self.node_status(name) == "True";
            let k = &rec.last.kube;
            if rec.last.control_plane {
                for component in COMPONENTS {
                    let Some(sp) = self.cluster.static_pods.get(&(name.clone(), component)) else { continue };
                    let image = &sp.image;
                    out.push(PodObj {
                        namespace: "kube-system".to_string(),
                        name: format!("{component}-{name}"),
                        uid: stable_uid(&format!("{component}/{name}/{}/{}", rec.uid, sp.version)),
                        node: Some(name.clone()),
                        ready: self.cluster.static_pod_ready(name, component, self.machines, self.now),
                        labels: vec![
                            ("app.kubernetes.io/component".into(), "control-plane".into()),
                            ("app.kubernetes.io/managed-by".into(), "Talos".into()),
                            ("app.kubernetes.io/name".into(), component.into()),
                            ("app.kubernetes.io/version".into(), tag_of(image).trim_start_matches('v').into()),
                            ("component".into(), component.into()),
                            ("k8s-app".into(), component.into()),
                            ("tier".into(), "control-plane".into()),
                        ],
                        // The kubelet fetches Talos's static pods over HTTP
                        // (kubelet staticPodURL), hence config.source http.
                        annotations: vec![
                            (
                                "kubernetes.io/config.mirror".into(),
                                stable_uid(image).replace('-', "")[..32].to_string(),
                            ),
                            ("kubernetes.io/config.source".into(), "http".into()),
                            ("talos.dev/config-version".into(), sp.version.to_string()),
                        ],
                        owner: Owner::Node,
                        container: (component.to_string(), image.clone()),
                        created: rec.created,
                        rv: rec.rv + sp.version,
                        host_network: true,
                    });
                }
            }
            // The DaemonSet's pod: a new image is a new pod (its rollout).
            if self.cluster.proxy_disabled {
                continue;
            }
            let proxy_image = self.cluster.proxy_image(&k.proxy_image);
            out.push(PodObj {
                namespace: "kube-system".to_string(),
                name: format!("kube-proxy-{}", &stable_uid(&format!("{name}/{proxy_image}")).replace('-', "")[..5]),
                uid: stable_uid(&format!("kube-proxy/{name}/{}/{proxy_image}", rec.uid)),
                node: Some(name.clone()),
                ready,
                labels: vec![("k8s-app".into(), "kube-proxy".into()), ("tier".into(), "node".into())],
                annotations: Vec::new(),
                owner: Owner::DaemonSet("kube-proxy"),
                container: ("kube-proxy".to_string(), proxy_image),
                created: rec.created,
                rv: rec.rv,
                host_network: true,
            });
        }
        for ((ns, name), p) in &self.cluster.pods {
            let w = &WORKLOADS[p.workload];
            out.push(PodObj {
                namespace: ns.clone(),
                name: name.clone(),
                uid: p.uid.clone(),
                node: p.node.clone(),
                ready: self.cluster.pod_ready(p, self.machines, self.now),
                labels: vec![
                    (w.label.0.into(), w.label.1.into()),
                    ("pod-template-hash".into(), w.template_hash.into()),
                ],
                annotations: Vec::new(),
                owner: Owner::ReplicaSet(format!("{}-{}", w.name, w.template_hash)),
                container: (w.name.to_string(), p.image.clone()),
                created: p.created,
                rv: p.rv,
                host_network: false,
            });
        }
        out
    }

    /// A Node object.
    pub fn node(&self, name: &str, rec: &NodeRecord) -> Value {
        let m = &rec.last;
        let mut labels = vec![
            ("beta.kubernetes.io/arch", "amd64"),
            ("beta.kubernetes.io/os", "linux"),
            ("kubernetes.io/arch", "amd64"),
            ("kubernetes.io/hostname", name),
            ("kubernetes.io/os", "linux"),
        ];
        let mut taints = Vec::new();
        if m.control_plane {
            labels.push(("node-role.kubernetes.io/control-plane", ""));
            labels.push(("node.kubernetes.io/exclude-from-external-load-balancers", ""));
            if !m.kube.schedulable_control_plane {
                taints.push(json!({"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}));
            }
        }
        let status = self.node_status(name);
        match status {
            "False" => taints.push(json!({"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"})),
            "Unknown" => taints.push(json!({"key": "node.kubernetes.io/unreachable", "effect": "NoSchedule"})),
            _ => {}
        }
        if rec.unschedulable {
            taints.push(json!({"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}));
        }
        let (reason, message) = match status {
            "True" => ("KubeletReady", "kubelet is posting ready status"),
            "False" => ("KubeletNotReady", "container runtime status check may not have completed yet"),
            _ => ("NodeStatusUnknown", "Kubelet stopped posting node status."),
        };
        let created = timestamp(rec.created);
        let mut spec = json!({});
        if !taints.is_empty() {
            spec["taints"] = Value::Array(taints);
        }
        if rec.unschedulable {
            spec["unschedulable"] = Value::Bool(true);
        }
        json!({
            "kind": "Node",
            "apiVersion": "v1",
            "metadata": {
                "name": name,
                "uid": rec.uid,
                "resourceVersion": rec.rv.to_string(),
                "creationTimestamp": created,
                "labels": labels_json(&labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<Vec<_>>()),
                "annotations": if self.cluster.talos_cordoned.contains(name) {
                    json!({"talos.dev/owned-labels": "[]", "node.alpha.kubernetes.io/ttl": "0", "talos.dev/cordoned": "true"})
                } else {
                    json!({"talos.dev/owned-labels": "[]", "node.alpha.kubernetes.io/ttl": "0"})
                },
            },
            "spec": spec,
            "status": {
                "conditions": [{
                    "type": "Ready", "status": status, "reason": reason, "message": message,
                    "lastHeartbeatTime": timestamp(SystemTime::now()), "lastTransitionTime": created,
                }],
                "addresses": [{"type": "InternalIP", "address": m.ip.to_string()}, {"type": "Hostname", "address": name}],
                "nodeInfo": {
                    "machineID": stable_uid(name).replace('-', ""),
                    "systemUUID": stable_uid(&format!("vm/{name}")),
                    "bootID": stable_uid(&format!("{name}/{}", m.boot_id)),
                    "kernelVersion": runtime_versions(&m.talos_version).0,
                    "osImage": format!("Talos ({})", m.talos_version),
                    "containerRuntimeVersion": format!("containerd://{}", runtime_versions(&m.talos_version).1),
                    "kubeletVersion": m.kube.kubelet_version(),
                    "operatingSystem": "linux",
                    "architecture": "amd64",
                },
            },
        })
    }

    /// A Pod object.
    pub fn pod(&self, p: &PodObj) -> Value {
        let owner = match &p.owner {
            Owner::Node => {
                let uid = p.node.as_ref().and_then(|n| self.cluster.nodes.get(n)).map(|r| r.uid.clone());
                json!({"apiVersion": "v1", "kind": "Node", "name": p.node, "uid": uid, "controller": true})
            }
            Owner::DaemonSet(n) => json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "name": n,
                "uid": stable_uid(&format!("ds/{n}")), "controller": true, "blockOwnerDeletion": true}),
            Owner::ReplicaSet(n) => json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": n,
                "uid": stable_uid(&format!("rs/{n}")), "controller": true, "blockOwnerDeletion": true}),
        };
        let phase = if p.node.is_some() { "Running" } else { "Pending" };
        let ready = if p.ready { "True" } else { "False" };
        let ip = p.node.as_ref().and_then(|n| self.cluster.nodes.get(n)).map(|r| r.last.ip.to_string());
        let mut status = json!({
            "phase": phase,
            "conditions": [
                {"type": "PodScheduled", "status": if p.node.is_some() { "True" } else { "False" }},
                {"type": "Ready", "status": ready},
                {"type": "ContainersReady", "status": ready},
            ],
        });
        if p.node.is_some() {
            status["hostIP"] = json!(ip);
            status["podIP"] = json!(ip);
            status["startTime"] = json!(timestamp(p.created));
            status["containerStatuses"] = json!([{
                "name": p.container.0, "image": p.container.1, "ready": p.ready, "restartCount": 0,
                "started": true, "state": {"running": {"startedAt": timestamp(p.created)}},
            }]);
        }
        let mut spec = json!({
            "containers": [{"name": p.container.0, "image": p.container.1}],
            "restartPolicy": "Always",
        });
        if let Some(n) = &p.node {
            spec["nodeName"] = json!(n);
        }
        if p.host_network {
            spec["hostNetwork"] = json!(true);
            spec["tolerations"] = json!([{"operator": "Exists"}]);
        }
        json!({
            "kind": "Pod",
            "apiVersion": "v1",
            "metadata": {
                "name": p.name,
                "namespace": p.namespace,
                "uid": p.uid,
                "resourceVersion": p.rv.to_string(),
                "creationTimestamp": timestamp(p.created),
                "labels": labels_json(&p.labels),
                "annotations": labels_json(&p.annotations),
                "ownerReferences": [owner],
            },
            "spec": spec,
            "status": status,
        })
    }

    /// The kube-proxy DaemonSet: one pod per Node.
    pub fn daemonset(&self) -> Value {
        let nodes = self.cluster.nodes.len();
        let ready = self.cluster.nodes.keys().filter(|n| self.node_status(n) == "True").count();
        let fallback = self.cluster.nodes.values().next().map(|r| r.last.kube.proxy_image.clone()).unwrap_or_default();
        let image = self.cluster.proxy_image(&fallback);
        json!({
            "kind": "DaemonSet", "apiVersion": "apps/v1",
            "metadata": {"name": "kube-proxy", "namespace": "kube-system", "uid": stable_uid("ds/kube-proxy"),
                "resourceVersion": self.cluster.rv.to_string(), "generation": 1,
                "labels": {"k8s-app": "kube-proxy", "tier": "node"}},
            "spec": {"selector": {"matchLabels": {"k8s-app": "kube-proxy"}},
                "template": {"metadata": {"labels": {"k8s-app": "kube-proxy", "tier": "node"}},
                    "spec": {"containers": [{"name": "kube-proxy", "image": image}]}}},
            "status": {"currentNumberScheduled": nodes, "desiredNumberScheduled": nodes, "numberAvailable": ready,
                "numberReady": ready, "updatedNumberScheduled": nodes, "numberMisscheduled": 0, "observedGeneration": 1},
        })
    }

    fn workload_counts(&self, i: usize) -> (usize, usize) {
        let pods: Vec<_> = self.cluster.pods.values().filter(|p| p.workload == i).collect();
        let ready = pods.iter().filter(|p| self.cluster.pod_ready(p, self.machines, self.now)).count();
        (pods.len(), ready)
    }

    /// A Deployment of [`WORKLOADS`].
    pub fn deployment(&self, i: usize) -> Value {
        let w = &WORKLOADS[i];
        let (have, ready) = self.workload_counts(i);
        json!({
            "kind": "Deployment", "apiVersion": "apps/v1",
            "metadata": {"name": w.name, "namespace": w.namespace, "uid": stable_uid(&format!("deploy/{}", w.name)),
                "resourceVersion": self.cluster.rv.to_string(), "generation": 1, "labels": {w.label.0: w.label.1}},
            "spec": {"replicas": w.replicas, "selector": {"matchLabels": {w.label.0: w.label.1}},
                "template": {"metadata": {"labels": {w.label.0: w.label.1}},
                    "spec": {"containers": [{"name": w.name, "image": self.cluster.workload_image(i)}]}}},
            "status": {"observedGeneration": 1, "replicas": have, "updatedReplicas": have, "readyReplicas": ready,
                "availableReplicas": ready, "unavailableReplicas": w.replicas.saturating_sub(ready)},
        })
    }

    /// The ReplicaSet of a [`WORKLOADS`] Deployment.
    pub fn replicaset(&self, i: usize) -> Value {
        let w = &WORKLOADS[i];
        let (have, ready) = self.workload_counts(i);
        let name = format!("{}-{}", w.name, w.template_hash);
        json!({
            "kind": "ReplicaSet", "apiVersion": "apps/v1",
            "metadata": {"name": name, "namespace": w.namespace, "uid": stable_uid(&format!("rs/{name}")),
                "resourceVersion": self.cluster.rv.to_string(), "generation": 1,
                "labels": {w.label.0: w.label.1, "pod-template-hash": w.template_hash},
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": w.name,
                    "uid": stable_uid(&format!("deploy/{}", w.name)), "controller": true, "blockOwnerDeletion": true}]},
            "spec": {"replicas": w.replicas, "selector": {"matchLabels": {w.label.0: w.label.1, "pod-template-hash": w.template_hash}}},
            "status": {"replicas": have, "readyReplicas": ready, "availableReplicas": ready, "observedGeneration": 1},
        })
    }

    /// A PodDisruptionBudget of a [`WORKLOADS`] entry that has one.
    pub fn pdb(&self, i: usize) -> Option<Value> {
        let w = &WORKLOADS[i];
        let min = w.pdb_min_available?;
        let (healthy, allowed) = self.cluster.disruptions_allowed(i, self.machines, self.now);
        Some(json!({
            "kind": "PodDisruptionBudget", "apiVersion": "policy/v1",
            "metadata": {"name": w.name, "namespace": w.namespace, "uid": stable_uid(&format!("pdb/{}", w.name)),
                "resourceVersion": self.cluster.rv.to_string(), "generation": 1},
            "spec": {"minAvailable": min, "selector": {"matchLabels": {w.label.0: w.label.1}}},
            "status": {"currentHealthy": healthy, "desiredHealthy": min, "disruptionsAllowed": allowed,
                "expectedPods": w.replicas, "observedGeneration": 1},
        }))
    }

    /// The version the API server reports (`/version`): the tag of the
    /// image the serving control planes run.
    pub fn server_version(&self) -> String {
        self.machines
            .iter()
            .find(|m| m.serving)
            .map(|m| tag_of(&m.kube.apiserver_image).to_string())
            .unwrap_or_default()
    }
}
