//! The lab's Kubernetes API (issue 13 §3): no kube-apiserver can be
//! installed here, so every control plane that runs the API (configured,
//! running, etcd up) answers the part of it that day 2 uses at
//! `address:`[`SimOptions::kube_port`](super::SimOptions::kube_port), over
//! TLS from the cluster's Kubernetes CA with x509 client authentication, so
//! the kubeconfig the provider retrieves works with real kubectl.
//!
//! - [`model`]: Nodes the kubelets register, workload pods, the
//!   ReplicaSet, scheduler, pod-GC and eviction rules (sans-IO).
//! - [`render`], [`table`], [`discovery`]: the objects as JSON.
//! - [`api`]: request → response (sans-IO); [`server`]: the socket.
//! - `drain`: Talos's own cordon, drain and uncordon around an upgrade,
//!   a shutdown or a graceful reset.

pub mod api;
pub mod apply;
pub mod discovery;
pub(crate) mod drain;
pub mod model;
pub mod render;
pub(crate) mod server;
pub mod store;
pub mod table;

use std::time::{Instant, SystemTime};

use super::{ImageFault, Phase, Shared};
use model::{Cluster, Machine};

/// What the Kubernetes API sees of the cluster's machines now: every node
/// with a complete configuration.
pub(crate) fn machines(shared: &Shared) -> Vec<Machine> {
    let bootstrapped = *shared.bootstrapped.borrow();
    shared
        .nodes()
        .iter()
        .filter_map(|n| {
            let name = n.hostname();
            let st = n.state();
            let cfg = st.config.as_ref().filter(|c| c.complete)?;
            let running = st.phase == Phase::Running && st.cri_up;
            Some(Machine {
                name,
                ip: n.ip(),
                boot_id: st.boot_id,
                control_plane: cfg.control_plane,
                kubelet_running: running,
                kubelet_healthy: st.running_fault != ImageFault::KubeletUnhealthy,
                serving: running && cfg.control_plane && bootstrapped && st.etcd_data,
                talos_version: st.version.clone(),
                kube: cfg.kube.clone(),
            })
        })
        .collect()
}

/// Runs `f` on the objects brought up to date with the machines now (the
/// one place that takes the lock and syncs: requests, watches, Talos's
/// drain and its COSI reads all go through it).
pub(crate) fn synced<T>(shared: &Shared, f: impl FnOnce(&mut Cluster, &[Machine], Instant) -> T) -> T {
    let machines = machines(shared);
    let now = Instant::now();
    let mut cluster = shared.kube.lock().unwrap_or_else(|e| e.into_inner());
    cluster.sync(&machines, now, SystemTime::now());
    f(&mut cluster, &machines, now)
}

/// Opens a watch (`api::watch`) on the objects brought up to date.
pub(crate) fn watch_start(
    shared: &Shared,
    req: &api::Request<'_>,
) -> Result<(api::watch::Watch, Vec<serde_json::Value>), api::Response> {
    synced(shared, |cluster, machines, now| api::watch::Watch::start(cluster, machines, now, req))
}

/// The events of an open watch since its last look.
pub(crate) fn watch_poll(shared: &Shared, watch: &mut api::watch::Watch) -> Vec<serde_json::Value> {
    synced(shared, |cluster, machines, now| watch.poll(cluster, machines, now))
}

/// Brings the objects up to date and answers one request.
pub(crate) fn serve(shared: &Shared, req: &api::Request<'_>) -> api::Response {
    synced(shared, |cluster, machines, now| api::handle(cluster, machines, now, req))
}
