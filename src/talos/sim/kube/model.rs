//! The lab's Kubernetes objects and the controllers behind them, sans-IO:
//! every call takes what the simulated machines show at that moment
//! ([`Machine`]) and the time, so the rules are unit-tested without a
//! network. What each rule reproduces, with its upstream source, is in
//! `src/talos/sim/README.md` (section "Kubernetes API").

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{Duration, Instant, SystemTime};

use super::super::config::KubeFacts;

/// What the Kubernetes API sees of one simulated machine right now.
#[derive(Debug, Clone, PartialEq)]
pub struct Machine {
    /// Host name (= Node name, as the kubelet registers it).
    pub name: String,
    /// The node's address (the Node's `InternalIP`).
    pub ip: IpAddr,
    /// Changes on every boot (a kubelet restart).
    pub boot_id: u64,
    /// `machine.type: controlplane`.
    pub control_plane: bool,
    /// The kubelet runs (the machine is up with its services started).
    pub kubelet_running: bool,
    /// The kubelet passes its health check (`ImageFault::KubeletUnhealthy`
    /// makes it fail).
    pub kubelet_healthy: bool,
    /// This control plane serves the Kubernetes API (running, etcd up).
    pub serving: bool,
    /// Running Talos tag (`osImage: Talos (v1.13.9)`).
    pub talos_version: String,
    /// Images and scheduling from the active configuration.
    pub kube: KubeFacts,
}

impl Machine {
    /// A healthy running machine at `127.0.9.<octet>` with kubelet,
    /// API server and kube-proxy v1.33.1 images (unit tests).
    #[cfg(test)]
    pub fn for_test(name: &str, octet: u8, control_plane: bool) -> Machine {
        Machine {
            name: name.to_string(),
            ip: IpAddr::from([127, 0, 9, octet]),
            boot_id: 1,
            control_plane,
            kubelet_running: true,
            kubelet_healthy: true,
            serving: control_plane,
            talos_version: "v1.13.9".to_string(),
            kube: KubeFacts {
                kubelet_image: "ghcr.io/siderolabs/kubelet:v1.33.1".to_string(),
                apiserver_image: "registry.k8s.io/kube-apiserver:v1.33.1".to_string(),
                proxy_image: "registry.k8s.io/kube-proxy:v1.33.1".to_string(),
                ..KubeFacts::default()
            },
        }
    }

    /// The Node's Ready condition would be true.
    pub fn ready(&self) -> bool {
        self.kubelet_running && self.kubelet_healthy
    }
}

/// A Deployment the cluster runs (one ReplicaSet each).
#[derive(Debug, PartialEq, Eq)]
pub struct Workload {
    /// Namespace.
    pub namespace: &'static str,
    /// Deployment name.
    pub name: &'static str,
    /// The ReplicaSet's pod-template-hash.
    pub template_hash: &'static str,
    /// The pods' selector label (key, value).
    pub label: (&'static str, &'static str),
    /// Desired replicas.
    pub replicas: usize,
    /// Tolerates the control-plane NoSchedule taint.
    pub on_control_planes: bool,
    /// A PodDisruptionBudget of this name with `minAvailable`.
    pub pdb_min_available: Option<usize>,
    /// Container image.
    pub image: &'static str,
}

/// CoreDNS, as Talos's bootstrap manifests deploy it (2 replicas,
/// `k8s-app: kube-dns`, tolerating control planes); and a demo web app
/// with a PodDisruptionBudget, the lab's stand-in for a user's workload so
/// that drains have something to respect.
pub const WORKLOADS: [Workload; 2] = [
    Workload {
        namespace: "kube-system",
        name: "coredns",
        template_hash: "6b7f9c5d8c",
        label: ("k8s-app", "kube-dns"),
        replicas: 2,
        on_control_planes: true,
        pdb_min_available: None,
        image: "registry.k8s.io/coredns/coredns:v1.12.1",
    },
    Workload {
        namespace: "default",
        name: "web",
        template_hash: "5d9c7b6f4d",
        label: ("app", "web"),
        replicas: 2,
        on_control_planes: false,
        pdb_min_available: Some(1),
        image: "registry.k8s.io/e2e-test-images/agnhost:2.53",
    },
];

/// A registered Node (what the kubelet created; it stays when the machine
/// goes away, as in a real cluster, until someone deletes it).
#[derive(Debug, Clone, PartialEq)]
pub struct NodeRecord {
    /// `metadata.uid`.
    pub uid: String,
    /// `metadata.creationTimestamp`.
    pub created: SystemTime,
    /// `spec.unschedulable` (cordoned).
    pub unschedulable: bool,
    /// `metadata.resourceVersion`.
    pub rv: u64,
    /// The machine as last seen (kept when it goes away).
    pub last: Machine,
}

/// A pod of a [`Workload`] (kept: its node and start time matter).
#[derive(Debug, Clone, PartialEq)]
pub struct Pod {
    /// Index into [`WORKLOADS`].
    pub workload: usize,
    /// Pod name (`web-5d9c7b6f4d-x2b4k`).
    pub name: String,
    /// `metadata.uid`.
    pub uid: String,
    /// `metadata.creationTimestamp`.
    pub created: SystemTime,
    /// `spec.nodeName` once scheduled.
    pub node: Option<String>,
    /// When it was bound (its containers start then).
    pub bound_at: Option<Instant>,
    /// `metadata.resourceVersion`.
    pub rv: u64,
    /// The image its container runs (the template's when it was made).
    pub image: String,
}

/// A control-plane component's static pod on one node. Talos renders the
/// component's config as a COSI resource whose version goes up whenever
/// it changes (an image patched by `upgrade-k8s`, say); the static pod
/// carries that version as `talos.dev/config-version` and restarts
/// (siderolabs/talos `control_plane_static_pod.go`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticPod {
    /// The image it runs.
    pub image: String,
    /// The config version (`talos.dev/config-version`), from 1.
    pub version: u64,
    /// When it (re)started.
    pub since: Instant,
}

/// The control-plane components Talos runs as static pods.
pub const COMPONENTS: [&str; 3] = ["kube-apiserver", "kube-controller-manager", "kube-scheduler"];

impl KubeFacts {
    /// The image of a [`COMPONENTS`] entry.
    pub fn component_image(&self, component: &str) -> &str {
        match component {
            "kube-apiserver" => &self.apiserver_image,
            "kube-controller-manager" => &self.controller_manager_image,
            _ => &self.scheduler_image,
        }
    }
}

/// Why an eviction was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EvictError {
    /// No such pod.
    NotFound,
    /// The PodDisruptionBudget allows no disruption now (HTTP 429).
    Budget {
        /// The budget's name.
        pdb: String,
    },
}

/// The cluster's objects and the controllers that keep them.
#[derive(Debug)]
pub struct Cluster {
    /// Registered Nodes by name.
    pub nodes: BTreeMap<String, NodeRecord>,
    /// Nodes deleted through the API, with the boot id of that moment: the
    /// kubelet registers again only after it restarts.
    pub deleted: BTreeMap<String, u64>,
    /// Workload pods by (namespace, name).
    pub pods: BTreeMap<(String, String), Pod>,
    /// The cluster-wide resourceVersion counter.
    pub rv: u64,
    /// Bootstrap manifests applied (workloads exist).
    pub seeded: bool,
    /// Fault: every PodDisruptionBudget allows no disruption (a drain that
    /// never finishes).
    pub budgets_blocked: bool,
    /// How long a pod takes from bound to Ready.
    pub pod_start: Duration,
    /// Nodes Talos cordoned itself (annotation `talos.dev/cordoned`), and
    /// so uncordons when the machine runs again.
    pub talos_cordoned: std::collections::BTreeSet<String>,
    /// Static pods by (control-plane node, component).
    pub static_pods: BTreeMap<(String, &'static str), StaticPod>,
    /// Objects made or changed by server-side apply (`store.rs`).
    pub objects: BTreeMap<super::store::ObjKey, super::store::Stored>,
    /// kube-proxy's image at bootstrap (the bootstrapping control plane's
    /// configuration).
    pub boot_proxy_image: Option<String>,
    /// The bootstrapping control plane's configuration disables kube-proxy
    /// (`cluster.proxy.disabled`): no DaemonSet, no pods.
    pub proxy_disabled: bool,
    /// CoreDNS's image at bootstrap, when the configuration sets one.
    pub boot_coredns_image: Option<String>,
    nonce: u64,
    counter: u64,
}

/// The alphabet Kubernetes draws generated name suffixes from
/// (apimachinery `pkg/util/rand`: no vowels, no confusable digits).
const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

impl Cluster {
    /// An empty cluster; pods are Ready `pod_start` after binding.
    pub fn new(pod_start: Duration, nonce: u64) -> Cluster {
        Cluster {
            nodes: BTreeMap::new(),
            deleted: BTreeMap::new(),
            pods: BTreeMap::new(),
            rv: 1,
            seeded: false,
            budgets_blocked: false,
            pod_start,
            talos_cordoned: Default::default(),
            static_pods: BTreeMap::new(),
            objects: BTreeMap::new(),
            boot_proxy_image: None,
            proxy_disabled: false,
            boot_coredns_image: None,
            nonce,
            counter: 0,
        }
    }

    fn next(&mut self) -> u64 {
        self.counter += 1;
        super::super::node::splitmix64(self.nonce ^ self.counter)
    }

    /// A new resourceVersion.
    pub fn bump(&mut self) -> u64 {
        self.rv += 1;
        self.rv
    }

    /// A new uid (a version-4 UUID).
    pub fn uid(&mut self) -> String {
        let (hi, lo) = (self.next(), self.next());
        super::super::node::uuid_v4(hi, lo)
    }

    /// A generated name suffix of `n` characters.
    pub fn suffix(&mut self, n: usize) -> String {
        let mut x = self.next();
        (0..n)
            .map(|_| {
                let c = ALPHABET[(x % ALPHABET.len() as u64) as usize] as char;
                x /= ALPHABET.len() as u64;
                c
            })
            .collect()
    }

    /// Brings the objects up to date with the machines: kubelets register
    /// their Nodes, the bootstrap manifests' workloads appear with the
    /// first Node, pods of deleted Nodes are collected, ReplicaSets top up
    /// their replicas, and the scheduler binds pending pods.
    pub fn sync(&mut self, machines: &[Machine], now: Instant, wall: SystemTime) {
        let api_up = machines.iter().any(|m| m.serving);
        for m in machines {
            if let Some(rec) = self.nodes.get_mut(&m.name) {
                if rec.last != *m {
                    rec.last = m.clone();
                }
                continue;
            }
            let deleted_now = self.deleted.get(&m.name).is_some_and(|b| *b == m.boot_id);
            if api_up && m.kubelet_running && !deleted_now {
                self.deleted.remove(&m.name);
                let (uid, rv) = (self.uid(), self.bump());
                self.nodes.insert(
                    m.name.clone(),
                    NodeRecord { uid, created: wall, unschedulable: false, rv, last: m.clone() },
                );
            }
        }
        if !self.nodes.is_empty() && !self.seeded {
            self.seeded = true;
            let boot = machines.iter().find(|m| m.serving).map(|m| m.kube.clone());
            if let Some(k) = boot {
                self.proxy_disabled = k.proxy_disabled;
                self.boot_proxy_image = Some(k.proxy_image).filter(|i| !i.is_empty());
                self.boot_coredns_image = Some(k.coredns_image).filter(|i| !i.is_empty());
            }
        }
        self.sync_static_pods(now);
        // Pod garbage collection: pods bound to a Node that no longer exists.
        let gone: Vec<_> = self
            .pods
            .iter()
            .filter(|(_, p)| p.node.as_ref().is_some_and(|n| !self.nodes.contains_key(n)))
            .map(|(k, _)| k.clone())
            .collect();
        for k in gone {
            self.pods.remove(&k);
        }
        if self.seeded {
            // A changed template image rolls the pods (all at once: a lab
            // simplification of the Deployment's rolling update).
            let images: Vec<String> = (0..WORKLOADS.len()).map(|i| self.workload_image(i)).collect();
            self.pods.retain(|_, p| p.image == images[p.workload]);
            for (i, w) in WORKLOADS.iter().enumerate() {
                let have = self.pods.values().filter(|p| p.workload == i).count();
                for _ in have..w.replicas {
                    let name = format!("{}-{}-{}", w.name, w.template_hash, self.suffix(5));
                    let (uid, rv) = (self.uid(), self.bump());
                    let image = images[i].clone();
                    let pod = Pod {
                        workload: i,
                        name: name.clone(),
                        uid,
                        created: wall,
                        node: None,
                        bound_at: None,
                        rv,
                        image,
                    };
                    self.pods.insert((w.namespace.to_string(), name), pod);
                }
            }
        }
        self.schedule(now);
    }

    /// Each registered control plane's static pods follow its active
    /// configuration: a new image is a new config version and a restart.
    fn sync_static_pods(&mut self, now: Instant) {
        for (name, rec) in &self.nodes {
            if !rec.last.control_plane {
                continue;
            }
            for component in COMPONENTS {
                let image = rec.last.kube.component_image(component);
                let entry = self.static_pods.entry((name.clone(), component)).or_insert_with(|| StaticPod {
                    image: image.to_string(),
                    version: 1,
                    since: now,
                });
                if entry.image != image {
                    entry.image = image.to_string();
                    entry.version += 1;
                    entry.since = now;
                }
            }
        }
        let nodes = &self.nodes;
        self.static_pods.retain(|(n, _), _| nodes.contains_key(n));
    }

    /// A static pod is Ready: its node is, and it has been up `pod_start`
    /// since its last (re)start.
    pub fn static_pod_ready(&self, node: &str, component: &str, machines: &[Machine], now: Instant) -> bool {
        self.static_pods
            .iter()
            .find(|((n, c), _)| n == node && *c == component)
            .is_some_and(|(_, p)| now >= p.since + self.pod_start && self.node_ready(node, machines))
    }

    /// The node a pending pod of `workload` goes to: Ready, not cordoned,
    /// tolerated, fewest pods of the same workload, then by name.
    fn place(&self, workload: usize) -> Option<String> {
        let w = &WORKLOADS[workload];
        self.nodes
            .iter()
            .filter(|(_, r)| r.last.ready() && !r.unschedulable)
            .filter(|(_, r)| !r.last.control_plane || r.last.kube.schedulable_control_plane || w.on_control_planes)
            .min_by_key(|(n, _)| {
                let same = self.pods.values().filter(|p| p.workload == workload && p.node.as_ref() == Some(n)).count();
                (same, (*n).clone())
            })
            .map(|(n, _)| n.clone())
    }

    fn schedule(&mut self, now: Instant) {
        let pending: Vec<_> =
            self.pods.iter().filter(|(_, p)| p.node.is_none()).map(|(k, p)| (k.clone(), p.workload)).collect();
        for (key, workload) in pending {
            if let Some(node) = self.place(workload) {
                let rv = self.bump();
                if let Some(p) = self.pods.get_mut(&key) {
                    p.node = Some(node);
                    p.bound_at = Some(now);
                    p.rv = rv;
                }
            }
        }
    }

    /// Whether a Node counts as Ready (its kubelet reports healthy).
    pub fn node_ready(&self, name: &str, machines: &[Machine]) -> bool {
        machines.iter().any(|m| m.name == name && m.ready()) && self.nodes.contains_key(name)
    }

    /// A workload pod is Ready: bound, started, on a Ready Node.
    pub fn pod_ready(&self, pod: &Pod, machines: &[Machine], now: Instant) -> bool {
        match (&pod.node, pod.bound_at) {
            (Some(n), Some(at)) => now >= at + self.pod_start && self.node_ready(n, machines),
            _ => false,
        }
    }

    /// Evicts a pod through the eviction API: refused (429) while its
    /// workload's PodDisruptionBudget has no disruption to spare (healthy
    /// pods − minAvailable < 1), else the pod is deleted (and its
    /// ReplicaSet makes a replacement at the next sync).
    pub fn evict(&mut self, namespace: &str, name: &str, machines: &[Machine], now: Instant) -> Result<(), EvictError> {
        let key = (namespace.to_string(), name.to_string());
        let pod = self.pods.get(&key).ok_or(EvictError::NotFound)?;
        let w = &WORKLOADS[pod.workload];
        if let Some(min) = w.pdb_min_available {
            let healthy =
                self.pods.values().filter(|p| p.workload == pod.workload && self.pod_ready(p, machines, now)).count();
            if self.budgets_blocked || healthy.saturating_sub(min) < 1 {
                return Err(EvictError::Budget { pdb: w.name.to_string() });
            }
        }
        self.pods.remove(&key);
        self.bump();
        Ok(())
    }

    /// Disruptions a workload's budget allows now (`status.disruptionsAllowed`).
    pub fn disruptions_allowed(&self, workload: usize, machines: &[Machine], now: Instant) -> (usize, usize) {
        let healthy = self.pods.values().filter(|p| p.workload == workload && self.pod_ready(p, machines, now)).count();
        let min = WORKLOADS[workload].pdb_min_available.unwrap_or(0);
        let allowed = if self.budgets_blocked { 0 } else { healthy.saturating_sub(min) };
        (healthy, allowed)
    }

    /// Deletes a Node object; its pods are collected at the next sync and
    /// the kubelet registers again only once it restarts.
    pub fn delete_node(&mut self, name: &str) -> bool {
        match self.nodes.remove(name) {
            Some(rec) => {
                self.deleted.insert(name.to_string(), rec.last.boot_id);
                self.bump();
                true
            }
            None => false,
        }
    }

    /// The workload pods bound to `node` (what a drain evicts: mirror and
    /// DaemonSet pods are never among them).
    pub fn pods_on(&self, node: &str) -> Vec<(String, String)> {
        self.pods.iter().filter(|(_, p)| p.node.as_deref() == Some(node)).map(|(k, _)| k.clone()).collect()
    }

    /// Talos cordons its Node for an upgrade, a shutdown or a reset
    /// (siderolabs/talos `node_cordoned_spec.go`): `spec.unschedulable`
    /// and the annotation `talos.dev/cordoned: "true"`. False when the
    /// Node is not registered.
    pub fn cordon_by_talos(&mut self, name: &str) -> bool {
        let Some(was_cordoned) = self.nodes.get(name).map(|r| r.unschedulable) else {
            return false;
        };
        // A Node someone else cordoned stays theirs: no annotation, so no
        // uncordon by Talos later.
        if !was_cordoned {
            self.set_unschedulable(name, true);
            self.talos_cordoned.insert(name.to_string());
        }
        true
    }

    /// When the machine runs again Talos uncordons its Node, but only if
    /// it cordoned it itself (the annotation is there): a Node a person
    /// cordoned stays cordoned.
    pub fn uncordon_by_talos(&mut self, name: &str) {
        if self.talos_cordoned.remove(name) {
            self.set_unschedulable(name, false);
        }
    }

    /// Sets `spec.unschedulable`; false when there is no such Node.
    pub fn set_unschedulable(&mut self, name: &str, value: bool) -> bool {
        let rv = self.rv + 1;
        match self.nodes.get_mut(name) {
            Some(rec) => {
                if rec.unschedulable != value {
                    rec.unschedulable = value;
                    rec.rv = rv;
                    self.rv = rv;
                }
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests;
