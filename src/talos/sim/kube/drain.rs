//! Talos's own cordon and drain before an upgrade, a shutdown or a
//! graceful reset, and its uncordon when the machine runs again
//! (siderolabs/talos `v1alpha1_sequencer_tasks.go` `CordonAndDrainNode`,
//! `pkg/kubernetes/kubernetes.go` `Drain`, `node_cordoned_spec.go`):
//!
//! - nothing to do when the kubelet never registered the Node;
//! - cordon (`spec.unschedulable`, annotation `talos.dev/cordoned`);
//! - evict every pod of the Node except mirror and DaemonSet pods through
//!   the eviction API, so PodDisruptionBudgets hold; a refusal is retried
//!   every 5 s until `DrainTimeout` (5 min), and then only logged: the
//!   sequence goes on with the pods still there;
//! - uncordon at Running only if Talos cordoned it.
//!
//! Durations are scaled with the cluster's time scale.

use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::talos::sim::Shared;

/// upstream `DrainTimeout`.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5 * 60);
/// The pause after a refused eviction.
const RETRY: Duration = Duration::from_secs(5);

/// Cordons and drains the Node `name` (see the module doc); returns when
/// no evictable pod is left, at the drain timeout, or on `stop`.
pub(crate) async fn cordon_and_drain(shared: &Shared, name: &str, stop: &CancellationToken) {
    let deadline = Instant::now() + shared.options.scaled(DRAIN_TIMEOUT);
    let retry = shared.options.scaled(RETRY).max(Duration::from_millis(1));
    if !super::synced(shared, |c, _, _| c.cordon_by_talos(name)) {
        return;
    }
    loop {
        let left = super::synced(shared, |c, machines, now| {
            for (ns, pod) in c.pods_on(name) {
                // A refusal (the budget) is retried; upstream only logs it.
                let _ = c.evict(&ns, &pod, machines, now);
            }
            c.pods_on(name).len()
        });
        if left == 0 {
            return;
        }
        if Instant::now() >= deadline {
            tracing::warn!(node = name, pods = left, "simulated drain: timeout, continuing with pods left");
            return;
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(retry) => {}
        }
    }
}

/// Uncordons the Node `name` if Talos cordoned it.
pub(crate) fn uncordon(shared: &Shared, name: &str) {
    shared.kube.lock().unwrap_or_else(|e| e.into_inner()).uncordon_by_talos(name);
}
