//! A Talos node simulator on the same protos as the client (feature `sim`;
//! tests and development only, never in the provider build). Each node
//! listens on its own address and port (loopback such as `127.0.10.x:50000`)
//! and reproduces behaviour.md: maintenance mode in both implementations
//! (≤ v1.12 `Unimplemented`, v1.13+ reader role and `PermissionDenied`),
//! apply modes per version, install + reboot into mutual TLS with a server
//! certificate from the applied OS CA, roles from the client certificate's
//! Organization, Bootstrap, Kubeconfig, etcd membership, Reset, Reboot,
//! Upgrade, with delays scaled by [`SimOptions::time_scale`].
//!
//! ```no_run
//! # async fn f() -> Result<(), proxtalos::talos::sim::SimError> {
//! use proxtalos::talos::sim::{NodeSpec, SimCluster, SimOptions};
//! let cluster = SimCluster::start(SimOptions::fast("v1.13.9"), vec![NodeSpec::metal("127.0.10.1".parse().unwrap())]).await?;
//! let addr = cluster.endpoint(0); // "127.0.10.1:50000"
//! # Ok(()) }
//! ```
//! Dropping the [`SimCluster`] stops every listener and connection.

mod boot;
pub use boot::ImageFault;
mod config;
mod etcd;
pub mod etcd_member;
pub mod kube;
mod kubeconfig;
mod lifecycle;
mod listener;
mod machine;
mod manifests;
mod node;
mod real;
mod status;
mod tls;
mod vip;

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::talos::api::proto::machine::EtcdMember;
use crate::talos::secrets::CertAndKey;
use node::Node;

/// The simulator could not start or a node operation failed.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// Binding a node's listener failed (is the loopback address usable?).
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The socket error.
        #[source]
        source: std::io::Error,
    },
    /// TLS material could not be made.
    #[error("simulator TLS: {0}")]
    Tls(String),
    /// No node has that index or address.
    #[error("no simulated node {0}")]
    NoSuchNode(String),
    /// The directory for real etcd members could not be made.
    #[error("simulator etcd directory")]
    EtcdDir(#[source] std::io::Error),
}

/// How a node boots (behaviour.md §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Platform {
    /// ISO boot: apply ⇒ install ⇒ reboot; install instructions required.
    Metal,
    /// Disk image: already installed, no install and no reboot after the
    /// first apply; install instructions optional.
    Nocloud,
}

/// Where a node is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Waiting for a config (maintenance API).
    Maintenance,
    /// Installing to disk (API down).
    Installing,
    /// Rebooting (API down, connections refused).
    Rebooting,
    /// Configured, services starting (mTLS API up, Bootstrap not yet possible).
    Booting,
    /// Configured and running.
    Running,
    /// Powered off (Reset with reboot=false).
    Off,
}

/// Real-world step durations, before scaling (behaviour.md §8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delays {
    /// Install after a complete config in maintenance mode (`metal`).
    pub install: Duration,
    /// Down time of a reboot.
    pub reboot: Duration,
    /// From boot until CRI is up (Bootstrap answers FailedPrecondition before).
    pub services: Duration,
    /// After bootstrap, until another control plane joins etcd.
    pub etcd_join: Duration,
    /// From a requested reboot (the Reboot call without FORCE, a
    /// REBOOT-mode apply) until the node goes down: services stop while the
    /// API still answers, so a client tells the reboot by the boot id
    /// (behaviour.md §6).
    pub shutdown: Duration,
}

impl Default for Delays {
    /// Realistic figures: install 60 s, reboot 30 s, services 20 s, join
    /// 30 s, graceful shutdown 10 s.
    fn default() -> Self {
        Delays {
            install: Duration::from_secs(60),
            reboot: Duration::from_secs(30),
            services: Duration::from_secs(20),
            etcd_join: Duration::from_secs(30),
            shutdown: Duration::from_secs(10),
        }
    }
}

/// Simulator knobs.
#[derive(Debug, Clone, PartialEq)]
pub struct SimOptions {
    /// Talos tag every node starts with, e.g. `v1.12.0`, `v1.13.9`, `v1.14.0`.
    pub talos_version: String,
    /// Port every node listens on (50000 like apid).
    pub port: u16,
    /// Multiplies every delay (0.001 turns a minute into 60 ms). Also
    /// scales TRY-mode rollback timeouts.
    pub time_scale: f64,
    /// Step durations before scaling.
    pub delays: Delays,
    /// Reject a config whose OS CA, Kubernetes CA or cluster name differs
    /// from nodes already configured (a simulator guard: real Talos accepts
    /// it and then never joins).
    pub strict_cluster_identity: bool,
    /// Where real etcd binaries are (`etcd_member::bin_dir`): with them each
    /// control plane runs a real etcd member (`real.rs`); without, the
    /// simulator's own member model answers.
    pub etcd_bin: Option<std::path::PathBuf>,
    /// Port each control plane serves the lab's Kubernetes API on (6443
    /// like kube-apiserver; `kube/`).
    pub kube_port: u16,
}

impl SimOptions {
    /// Realistic delays at full scale, port 50000.
    pub fn new(talos_version: &str) -> SimOptions {
        SimOptions {
            talos_version: talos_version.to_string(),
            port: 50000,
            time_scale: 1.0,
            delays: Delays::default(),
            strict_cluster_identity: true,
            etcd_bin: None,
            kube_port: 6443,
        }
    }

    /// For tests: realistic delays scaled by 1/1000 (a minute is 60 ms).
    pub fn fast(talos_version: &str) -> SimOptions {
        SimOptions { time_scale: 0.001, ..SimOptions::new(talos_version) }
    }

    fn scaled(&self, d: Duration) -> Duration {
        d.mul_f64(self.time_scale.max(0.0))
    }
}

/// One node to simulate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeSpec {
    /// Listen address (one per node).
    pub address: IpAddr,
    /// Hostname (etcd member name).
    pub hostname: String,
    /// Boot medium.
    pub platform: Platform,
}

impl NodeSpec {
    /// An ISO-booted node (`metal`).
    pub fn metal(address: IpAddr) -> NodeSpec {
        NodeSpec { address, hostname: format!("talos-{}", address).replace(['.', ':'], "-"), platform: Platform::Metal }
    }

    /// A disk-image node (`nocloud`).
    pub fn nocloud(address: IpAddr) -> NodeSpec {
        NodeSpec { platform: Platform::Nocloud, ..NodeSpec::metal(address) }
    }
}

/// State shared by the nodes of one cluster.
pub(crate) struct Shared {
    pub options: SimOptions,
    pub nodes: Mutex<Vec<Arc<Node>>>,
    pub members: Mutex<Vec<EtcdMember>>,
    pub bootstrapped: watch::Sender<bool>,
    /// gRPC calls received, by method (`machine.MachineService/Version`).
    pub calls: Mutex<BTreeMap<String, u64>>,
    /// Installer images that misbehave once installed, by reference.
    pub image_faults: Mutex<BTreeMap<String, ImageFault>>,
    /// Installer references the registry does not have (Pull fails).
    pub missing_images: Mutex<std::collections::BTreeSet<String>>,
    /// etcd members (by host name) whose health check fails.
    pub unhealthy_members: Mutex<std::collections::BTreeSet<String>>,
    /// The leading member's id once leadership moved; else the first member.
    pub leader: Mutex<Option<u64>>,
    /// Real etcd members, when `SimOptions::etcd_bin` is set.
    pub real: Option<real::RealEtcd>,
    /// The Kubernetes objects (`kube/`).
    pub kube: Mutex<kube::model::Cluster>,
    /// Each node's going down and coming up, in order ([`SimCluster::events`]).
    pub events: Mutex<Vec<(IpAddr, Phase)>>,
    /// The control planes' shared IPs (`vip.rs`).
    pub vips: vip::Vips,
}

impl Shared {
    /// Records that the node at `ip` entered `phase` (down or running).
    pub fn event(&self, ip: IpAddr, phase: Phase) {
        self.events.lock().unwrap_or_else(|e| e.into_inner()).push((ip, phase));
    }

    /// Counts one call to `path` (`/machine.MachineService/Version`).
    pub fn count_call(&self, path: &str) {
        let method = path.strip_prefix('/').unwrap_or(path);
        let mut calls = self.calls.lock().unwrap_or_else(|e| e.into_inner());
        *calls.entry(method.to_string()).or_default() += 1;
    }

    /// How an installer image behaves once installed (boot.rs).
    pub fn image_fault(&self, reference: &str) -> ImageFault {
        self.image_faults.lock().map(|f| f.get(reference).copied().unwrap_or_default()).unwrap_or_default()
    }

    /// Whether the registry lacks `reference` (SimCluster::missing_image).
    pub fn image_missing(&self, reference: &str) -> bool {
        self.missing_images.lock().map(|m| m.contains(reference)).unwrap_or(false)
    }

    /// Whether the member `hostname` fails its health check.
    pub fn member_unhealthy(&self, hostname: &str) -> bool {
        self.unhealthy_members.lock().map(|m| m.contains(hostname)).unwrap_or(false)
    }

    /// The leader among `members`: the one leadership moved to while it is
    /// still a member, else the first (the bootstrap node).
    pub fn leader(&self, members: &[EtcdMember]) -> Option<u64> {
        let moved = self.leader.lock().map(|l| *l).unwrap_or(None);
        moved.filter(|id| members.iter().any(|m| m.id == *id)).or_else(|| members.first().map(|m| m.id))
    }

    /// Leadership moves to `id`.
    pub fn set_leader(&self, id: u64) {
        if let Ok(mut l) = self.leader.lock() {
            *l = Some(id);
        }
    }

    pub(crate) fn nodes(&self) -> Vec<Arc<Node>> {
        self.nodes.lock().map(|n| n.clone()).unwrap_or_default()
    }

    pub fn find(&self, addr: &str) -> Option<Arc<Node>> {
        let host = crate::talos::api::Address::parse(addr).ok()?.host;
        self.nodes().into_iter().find(|n| n.ip().to_string() == host)
    }

    /// trustd: a running control plane's OS CA (with key) matching `crt`.
    pub fn trustd(&self, crt: &str) -> Option<CertAndKey> {
        self.nodes().into_iter().find_map(|n| {
            let st = n.state();
            let running = matches!(st.phase, Phase::Booting | Phase::Running);
            st.config
                .as_ref()
                .and_then(|c| c.os_ca.clone())
                .filter(|ca| running && ca.crt == crt && !ca.key.trim().is_empty())
        })
    }

    /// The identity other configured nodes carry: (OS CA crt, k8s CA crt, cluster name).
    pub fn identity_conflict(&self, me: IpAddr, facts: &config::Facts) -> Option<String> {
        if !self.options.strict_cluster_identity || !facts.complete {
            return None;
        }
        for n in self.nodes().into_iter().filter(|n| n.ip() != me) {
            let st = n.state();
            let Some(other) = st.config.as_ref().or(st.staged.as_ref()) else { continue };
            let crt = |c: &Option<CertAndKey>| c.as_ref().map(|c| c.crt.trim().to_string());
            if crt(&other.os_ca) != crt(&facts.os_ca) {
                return Some(format!("machine.ca differs from node {}'s (another cluster's OS CA)", n.ip()));
            }
            if crt(&other.k8s_ca) != crt(&facts.k8s_ca) {
                return Some(format!("the Kubernetes CA differs from node {}'s", n.ip()));
            }
            if other.cluster_name != facts.cluster_name {
                return Some(format!("cluster name {:?} differs from node {}'s", facts.cluster_name, n.ip()));
            }
        }
        None
    }

    pub fn add_member(&self, node: &Node) {
        let hostname = node.hostname();
        let mut m = self.members.lock().unwrap_or_else(|e| e.into_inner());
        if m.iter().any(|x| x.hostname == hostname) {
            return;
        }
        let ip = node.ip();
        let host = match ip {
            IpAddr::V6(v6) => format!("[{v6}]"),
            IpAddr::V4(v4) => v4.to_string(),
        };
        let id = hostname.bytes().fold(0xcbf29ce484222325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100000001b3));
        m.push(EtcdMember {
            id,
            hostname,
            peer_urls: vec![format!("https://{host}:2380")],
            client_urls: vec![format!("https://{host}:2379")],
            is_learner: false,
        });
    }

    pub fn remove_member(&self, hostname: &str) {
        let mut m = self.members.lock().unwrap_or_else(|e| e.into_inner());
        m.retain(|x| x.hostname != hostname);
        if m.is_empty() {
            self.bootstrapped.send_replace(false);
        }
    }

    pub fn members(&self) -> Vec<EtcdMember> {
        self.members.lock().map(|m| m.clone()).unwrap_or_default()
    }
}

/// A running simulated cluster; dropping it stops every node.
pub struct SimCluster {
    shared: Arc<Shared>,
    root: CancellationToken,
}

impl Drop for SimCluster {
    fn drop(&mut self) {
        self.root.cancel();
    }
}

impl SimCluster {
    /// Starts one listener per node (each `address:options.port`) in
    /// maintenance mode. Fails if an address cannot be bound.
    pub async fn start(options: SimOptions, nodes: Vec<NodeSpec>) -> Result<SimCluster, SimError> {
        let root = CancellationToken::new();
        let real = match &options.etcd_bin {
            Some(bin) => Some(real::RealEtcd {
                bin: bin.clone(),
                dir: tempfile::Builder::new().prefix("proxtalos-sim-etcd").tempdir().map_err(SimError::EtcdDir)?,
            }),
            None => None,
        };
        let shared = Arc::new(Shared {
            options: options.clone(),
            nodes: Mutex::new(Vec::new()),
            members: Mutex::new(Vec::new()),
            bootstrapped: watch::channel(false).0,
            calls: Mutex::new(BTreeMap::new()),
            events: Mutex::new(Vec::new()),
            vips: vip::Vips::default(),
            image_faults: Mutex::new(BTreeMap::new()),
            missing_images: Mutex::new(Default::default()),
            unhealthy_members: Mutex::new(Default::default()),
            leader: Mutex::new(None),
            real,
            // A pod takes a quarter of a boot's service start to get Ready.
            kube: Mutex::new(kube::model::Cluster::new(
                options.scaled(options.delays.services) / 4,
                getrandom::u64().unwrap_or(0x5eed),
            )),
        });
        tokio::spawn(vip::run(Arc::downgrade(&shared), root.clone()));
        let cluster = SimCluster { shared, root };
        for spec in nodes {
            cluster.add_node(spec, None).await?;
        }
        Ok(cluster)
    }

    /// Adds a node at runtime (a machine powered on for the first time), in
    /// maintenance mode, running `version` (else the cluster's
    /// [`SimOptions::talos_version`]). Returns its index. Fails if its
    /// address cannot be bound or another node already has it.
    pub async fn add_node(&self, spec: NodeSpec, version: Option<&str>) -> Result<usize, SimError> {
        let options = &self.shared.options;
        let addr = SocketAddr::new(spec.address, options.port);
        if self.index_of(spec.address).is_some() {
            return Err(SimError::Bind {
                addr,
                source: std::io::Error::new(std::io::ErrorKind::AddrInUse, "another simulated node has this address"),
            });
        }
        // Bound now: a bad address is an error, and the node answers at once.
        let first = tokio::net::TcpListener::bind(addr).await.map_err(|source| SimError::Bind { addr, source })?;
        let spec_address = spec.address;
        // Each node has its own token under the cluster's, so removing one
        // stops only its listener, server and timers.
        let token = self.root.child_token();
        let version = version.unwrap_or(&options.talos_version).to_string();
        let node = Arc::new(Node::new(spec, Arc::downgrade(&self.shared), version, token.clone()));
        node.maintenance_identity().ok_or_else(|| SimError::Tls("maintenance certificate".to_string()))?;
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        tokio::spawn(listener::run(node.clone(), addr, first, token.clone(), tx));
        let kube_addr = SocketAddr::new(spec_address, options.kube_port);
        tokio::spawn(kube::server::run(node.clone(), kube_addr, token.clone()));
        tokio::spawn(machine::serve(node.clone(), rx, token));
        let mut nodes = self.shared.nodes.lock().unwrap_or_else(|e| e.into_inner());
        nodes.push(node);
        Ok(nodes.len() - 1)
    }

    /// Removes the node at `address` for good (a machine destroyed: its
    /// disk and state are gone): its listener closes, its connections die,
    /// and it leaves the etcd membership (once no member is left, the
    /// cluster can be bootstrapped again). Indices of later nodes shift
    /// down by one.
    pub fn remove_node(&self, address: IpAddr) -> Result<(), SimError> {
        let node = {
            let mut nodes = self.shared.nodes.lock().unwrap_or_else(|e| e.into_inner());
            let i = nodes
                .iter()
                .position(|n| n.ip() == address)
                .ok_or_else(|| SimError::NoSuchNode(address.to_string()))?;
            nodes.remove(i)
        };
        node.destroy();
        if self.shared.real.is_none() {
            // The model drops the member; real etcd keeps it until someone
            // removes it by id, as a real cluster does.
            self.shared.remove_member(&node.hostname());
        }
        Ok(())
    }

    /// The node that holds the shared IP `vip` now (`Layer2VIPConfig`).
    pub fn vip_holder(&self, vip: IpAddr) -> Option<IpAddr> {
        self.shared.vips.holder(vip)
    }

    /// Every change of a shared IP's holder, in order: (VIP, the node
    /// that took it, or None when it was released).
    pub fn vip_events(&self) -> Vec<(IpAddr, Option<IpAddr>)> {
        self.shared.vips.events()
    }

    /// Index of the node listening on `address`.
    pub fn index_of(&self, address: IpAddr) -> Option<usize> {
        self.shared.nodes().iter().position(|n| n.ip() == address)
    }

    fn node(&self, index: usize) -> Result<Arc<Node>, SimError> {
        self.shared.nodes().get(index).cloned().ok_or_else(|| SimError::NoSuchNode(index.to_string()))
    }

    /// `address:port` of node `index` (for the client), or empty.
    pub fn endpoint(&self, index: usize) -> String {
        self.node(index).map(|n| SocketAddr::new(n.ip(), self.shared.options.port).to_string()).unwrap_or_default()
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.shared.nodes().len()
    }

    /// True when there are no nodes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Phase of node `index`.
    pub fn phase(&self, index: usize) -> Result<Phase, SimError> {
        Ok(self.node(index)?.state().phase)
    }

    /// Running Talos tag of node `index`.
    pub fn version(&self, index: usize) -> Result<String, SimError> {
        Ok(self.node(index)?.state().version.clone())
    }

    /// Whether node `index`'s Kubernetes Node is cordoned
    /// (`spec.unschedulable`); false when it is not registered.
    pub fn unschedulable(&self, index: usize) -> Result<bool, SimError> {
        let name = self.node(index)?.hostname();
        Ok(kube::synced(&self.shared, |cluster, _, _| cluster.nodes.get(&name).is_some_and(|r| r.unschedulable)))
    }

    /// Boot id of node `index` (changes on every boot).
    pub fn boot_id(&self, index: usize) -> Result<u64, SimError> {
        Ok(self.node(index)?.state().boot_id)
    }

    /// The maintenance certificate's SPKI fingerprint of node `index`, as
    /// its console prints it (changes every boot).
    pub fn maintenance_fingerprint(&self, index: usize) -> Result<String, SimError> {
        let node = self.node(index)?;
        node.maintenance_identity()
            .map(|i| i.fingerprint.clone())
            .ok_or_else(|| SimError::Tls("maintenance certificate".to_string()))
    }

    /// The active config text of node `index` (what a drift check reads back).
    pub fn active_config(&self, index: usize) -> Result<Option<String>, SimError> {
        Ok(self.node(index)?.state().config.as_ref().map(|c| c.text.clone()))
    }

    /// Reboots node `index` behind the provider's back.
    pub fn reboot(&self, index: usize) -> Result<(), SimError> {
        tokio::spawn(self.node(index)?.reboot());
        Ok(())
    }

    /// Powers on node `index` if it is off. An installed node boots its
    /// installed system and configuration; one that never finished
    /// installing boots to maintenance again.
    pub fn power_on(&self, index: usize) -> Result<(), SimError> {
        self.node(index)?.power_on();
        Ok(())
    }

    /// Cuts the power of node `index` (a VM stopped): its API goes away,
    /// connections die, an install or reboot in progress is abandoned.
    /// What is on its disk (installation, configuration, etcd data) stays
    /// for [`SimCluster::power_on`].
    pub fn power_off(&self, index: usize) -> Result<(), SimError> {
        self.node(index)?.power_off();
        Ok(())
    }

    /// Fault: node `index` carries out its next maintenance-mode
    /// ApplyConfiguration (installs, reboots) but the reply is lost, as when
    /// the connection breaks after the request arrived; the client gets
    /// `Unavailable`.
    pub fn lose_next_apply_reply(&self, index: usize) -> Result<(), SimError> {
        self.node(index)?.state().lose_apply_reply = true;
        Ok(())
    }

    /// Fault: node `index` carries out its next Reset but the reply is
    /// lost, as when the node tears its connections down first; the client
    /// gets `Unavailable`.
    pub fn lose_next_reset_reply(&self, index: usize) -> Result<(), SimError> {
        self.node(index)?.state().lose_reset_reply = true;
        Ok(())
    }

    /// Fault: every node that installs the installer image `reference`
    /// from now on gets an image that behaves as `fault` says (one that
    /// never boots falls back to the previous slot by itself).
    pub fn fail_image(&self, reference: &str, fault: ImageFault) {
        if let Ok(mut f) = self.shared.image_faults.lock() {
            f.insert(reference.to_string(), fault);
        }
    }

    /// Fault: the registry does not have `reference`; ImageService.Pull of
    /// it fails as containerd's resolver does.
    pub fn missing_image(&self, reference: &str) {
        if let Ok(mut m) = self.shared.missing_images.lock() {
            m.insert(reference.to_string());
        }
    }

    /// Fault: every PodDisruptionBudget allows no disruption from now on
    /// (`true`), so a drain never finishes; `false` lifts it.
    pub fn block_evictions(&self, blocked: bool) {
        self.shared.kube.lock().unwrap_or_else(|e| e.into_inner()).budgets_blocked = blocked;
    }

    /// Fault: the etcd member of the node named `hostname` fails its health
    /// check (an upgrade is refused; EtcdStatus reports an error).
    pub fn unhealthy_member(&self, hostname: &str) {
        if let Ok(mut m) = self.shared.unhealthy_members.lock() {
            m.insert(hostname.to_string());
        }
    }

    /// The Talos tag in node `index`'s other boot slot (what `Rollback`
    /// would boot), if one was ever written.
    pub fn previous_version(&self, index: usize) -> Result<Option<String>, SimError> {
        Ok(self.node(index)?.state().slots.previous().map(|i| i.version.clone()))
    }

    /// Whether node `index` has Talos installed on its disk.
    pub fn installed(&self, index: usize) -> Result<bool, SimError> {
        Ok(self.node(index)?.state().installed)
    }

    /// Current etcd members (hostnames).
    pub fn etcd_members(&self) -> Vec<String> {
        self.shared.members().into_iter().map(|m| m.hostname).collect()
    }

    /// The options the cluster runs with (time scale, delays, port).
    pub fn options(&self) -> &SimOptions {
        &self.shared.options
    }

    /// Every gRPC call the nodes received since the start or the last
    /// [`SimCluster::reset_calls`], by method (`machine.MachineService/ApplyConfiguration`),
    /// summed over the cluster. Calls are counted as they arrive, whatever
    /// their answer (a refused role or a maintenance `Unimplemented` counts);
    /// a node that is down receives none.
    pub fn calls(&self) -> BTreeMap<String, u64> {
        self.shared.calls.lock().map(|c| c.clone()).unwrap_or_default()
    }

    /// Every node's transitions into a down phase (`Rebooting`,
    /// `Installing`, `Off`) and into `Running`, in the order they happened:
    /// a test reads a rollout's order from it (never two control planes
    /// down at once).
    pub fn events(&self) -> Vec<(IpAddr, Phase)> {
        self.shared.events.lock().map(|e| e.clone()).unwrap_or_default()
    }

    /// Sets every call counter back to zero.
    pub fn reset_calls(&self) {
        self.shared.calls.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    /// Stops every node now (also done on drop).
    pub fn shutdown(&self) {
        self.root.cancel();
    }
}
