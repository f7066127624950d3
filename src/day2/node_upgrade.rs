//! One node's in-place OS upgrade, as `talosctl upgrade` does it
//! (shared day-2 facts in `src/talos/sim/README.md`, "Upgrades"):
//!
//! - **Talos ≥ v1.13**: `ImageService.Pull`, `LifecycleService.Upgrade`
//!   (installs to the slot not booted; no reboot, no drain, no etcd check),
//!   then the client cordons and drains the Node through the Kubernetes API,
//!   a control plane forfeits etcd leadership, `Reboot`, wait for the Node
//!   to be Ready, uncordon (siderolabs/talos
//!   `cmd/talosctl/cmd/talos/upgrade.go`, `drain.go`; Omni forfeits
//!   leadership before a control plane reboots).
//! - **Talos ≤ v1.12**: the legacy `MachineService.Upgrade`, which checks
//!   etcd on a control plane, drains and reboots by itself.
//!
//! Either way it ends when the node has booted again (a new boot id), is
//! running and ready, and reports the new version; a node that boots its
//! old version again fell back (the new image did not boot) and that is an
//! error naming both versions. Every upgrade holds a lock per cluster for
//! the whole procedure (a control plane's until etcd runs again on it):
//! within one provider process (one `terraform apply`, whatever its
//! parallelism) the nodes of a cluster upgrade one at a time, so two control
//! planes are never down at once and two workers are never drained at once
//! (their pods, and PodDisruptionBudgets, need somewhere to go).

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use crate::kubernetes;
use crate::talos::api::wait::{Target, Until, conditions, poll_until};
use crate::talos::api::{ApiError, MachineStage, OsUpgrade, RebootMode, UpgradeRequest};
use crate::wait::Probe;

/// Draining before the reboot (v1.13+; the legacy call drains itself).
#[derive(Debug, Clone)]
pub struct Drain {
    /// A client of the cluster's Kubernetes API (admin kubeconfig).
    pub kube: kubernetes::Client,
    /// How long the evictions may take (talosctl: 5 min).
    pub timeout: Duration,
    /// DaemonSet and emptyDir pods (talosctl: both allowed).
    pub options: kubernetes::DrainOptions,
}

/// One upgrade.
#[derive(Debug, Clone)]
pub struct NodeUpgrade {
    /// The node, in normal mode.
    pub target: Target,
    /// The installer image (`ghcr.io/siderolabs/installer:v1.14.2`).
    pub image: String,
    /// The Talos version it carries (`v1.14.2`): what the node must run.
    pub version: String,
    /// Install even when the node runs `version` already: the image is
    /// another installer of it (a new Image Factory schematic, other
    /// extensions), as `talosctl upgrade --image` does.
    pub reinstall: bool,
    /// The cluster the node belongs to (any stable key, e.g. its OS CA):
    /// nodes of one cluster upgrade one at a time.
    pub cluster: String,
    /// The node is a control plane (forfeits etcd leadership before its
    /// reboot; done once etcd runs again).
    pub control_plane: bool,
    /// Drain before the reboot; None: the node reboots with its pods.
    pub drain: Option<Drain>,
    /// How the node reboots into the new image.
    pub reboot_mode: RebootMode,
    /// When set, how long the node may take from its reboot to running,
    /// ready and (drained) its Node Ready: a health gate's bound, shorter
    /// than the whole operation's. None: the operation's deadline.
    pub settle: Option<Duration>,
}

/// How it went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Done {
    /// The node already ran the version: nothing was done.
    AlreadyThere,
    /// Upgraded from the first version to the second.
    Upgraded {
        /// The version before.
        from: String,
        /// The version now.
        to: String,
    },
}

/// Why an upgrade stopped; `step` says where.
#[derive(Debug, thiserror::Error)]
pub enum UpgradeError {
    /// A Talos call or wait failed.
    #[error("{step}: {source}")]
    Talos {
        /// The step.
        step: &'static str,
        /// The cause.
        #[source]
        source: ApiError,
    },
    /// A Kubernetes call or the drain failed.
    #[error("{step}: {source}")]
    Kube {
        /// The step.
        step: &'static str,
        /// The cause.
        #[source]
        source: kubernetes::Error,
    },
    /// The node came back on its old version.
    #[error(
        "the node booted {booted} again instead of {wanted}: the new image did not boot and Talos fell back to the previous one"
    )]
    FellBack {
        /// What it runs.
        booted: String,
        /// What it should run.
        wanted: String,
    },
    /// The node has no Kubernetes Node name to drain by.
    #[error("the node reports no Kubernetes node name, so it cannot be drained")]
    NoNodeName,
    /// The deadline passed while another node of the cluster was upgrading.
    #[error("waited for another node's upgrade in this cluster to finish: the timeout passed first")]
    Queued,
    /// Terraform asked the provider to stop during `step`.
    #[error("{step}: Terraform asked the provider to stop")]
    Stopped {
        /// What was under way.
        step: &'static str,
    },
}

impl UpgradeError {
    /// Terraform asked the provider to stop.
    pub fn is_stopped(&self) -> bool {
        matches!(self, UpgradeError::Talos { source: ApiError::Stopped { .. }, .. })
            || matches!(self, UpgradeError::Kube { source: kubernetes::Error::Stopped { .. }, .. })
            || matches!(self, UpgradeError::Stopped { .. })
    }
}

/// One lock per cluster: its nodes upgrade one at a time.
static CLUSTERS: LazyLock<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>> = LazyLock::new(Default::default);

fn cluster_lock(key: &str) -> Arc<tokio::sync::Mutex<()>> {
    let mut all = CLUSTERS.lock().unwrap_or_else(|e| e.into_inner());
    all.entry(key.to_string()).or_default().clone()
}

fn talos(step: &'static str) -> impl FnOnce(ApiError) -> UpgradeError {
    move |source| UpgradeError::Talos { step, source }
}

fn kube(step: &'static str) -> impl FnOnce(kubernetes::Error) -> UpgradeError {
    move |source| UpgradeError::Kube { step, source }
}

/// How often the waits of an upgrade look again: a node's reboot is a
/// rollout's critical path, so a short interval (a cheap call each).
const POLL: Duration = Duration::from_millis(250);
const RUNNING: &str = "the node to be running and ready";
const NODE_READY: &str = "the Kubernetes Node to be Ready";

/// Runs the upgrade (see the module) within `until`.
pub async fn upgrade(u: &NodeUpgrade, until: &Until) -> Result<Done, UpgradeError> {
    let node = u.target.node.clone();
    let client = u.target.connect().await.map_err(talos("connect"))?;
    let from = client.version_tag().await.map_err(talos("read the running version"))?;
    if from == u.version && !u.reinstall {
        return Ok(Done::AlreadyThere);
    }
    let lock = cluster_lock(&u.cluster);
    let _turn = tokio::select! {
        g = lock.lock_owned() => g,
        _ = until.stop.stopped() => return Err(UpgradeError::Stopped { step: "wait for another node's upgrade" }),
        _ = tokio::time::sleep_until(until.deadline) => return Err(UpgradeError::Queued),
    };
    // Another node's upgrade may have ended while this one waited; the
    // version is read again below only if needed.
    tracing::info!(node = %node, from = %from, to = %u.version, image = %u.image, "upgrading Talos in place");
    let boot_before = client.boot_id().await.map_err(talos("read the boot id"))?;
    let left = until.deadline.saturating_duration_since(tokio::time::Instant::now());
    let req = UpgradeRequest { image: u.image.clone(), preserve: true, ..Default::default() };
    // The pull and the install may take minutes: Ctrl-C ends them.
    let installed = tokio::select! {
        r = client.upgrade_os(&req, left) => r.map_err(talos("install the new image"))?,
        _ = until.stop.stopped() => return Err(UpgradeError::Stopped { step: "install the new image" }),
    };
    let mut cordoned: Option<(kubernetes::Client, String)> = None;
    let reboot = matches!(installed, OsUpgrade::Installed(_));
    if let OsUpgrade::Installed(report) = installed {
        tracing::info!(node = %node, messages = report.messages.len(), "installed; rebooting into it");
        if let Some(d) = &u.drain {
            let name = client.nodename().await.map_err(talos("read the Kubernetes node name"))?;
            let name = name.ok_or(UpgradeError::NoNodeName)?;
            // A Node someone cordoned on purpose stays cordoned afterwards.
            let by_someone = d.kube.node_unschedulable(&name).await.map_err(kube("read the Node"))?;
            d.kube.cordon(&name, true).await.map_err(kube("cordon"))?;
            if !by_someone {
                cordoned = Some((d.kube.clone(), name.clone()));
            }
            if let Err(e) = d.kube.drain(&name, d.options, d.timeout, &until.stop).await {
                // The new image waits in the other slot; the next attempt
                // drains again.
                return Err(uncordon_after(cordoned, &node, UpgradeError::Kube { step: "drain", source: e }).await);
            }
        }
    }
    match reboot_and_wait(u, &client, reboot, &boot_before, until).await {
        Ok(now) => {
            // Running again, on either image: the Node goes back into
            // service (a node that fell back runs its previous version).
            if let Some((kube_client, name)) = &cordoned {
                let settle = settled(u, until);
                if let Err(e) = node_ready(kube_client, &node, name, &settle).await {
                    return Err(uncordon_after(cordoned, &node, e).await);
                }
                kube_client.cordon(name, false).await.map_err(kube("uncordon"))?;
            }
            if now != u.version {
                return Err(UpgradeError::FellBack { booted: now, wanted: u.version.clone() });
            }
            tracing::info!(node = %node, from = %from, to = %now, "upgraded");
            Ok(Done::Upgraded { from, to: now })
        }
        Err(e) => Err(uncordon_after(cordoned, &node, e).await),
    }
}

/// After the install: when `reboot` (v1.13+; the legacy call reboots by
/// itself) forfeit etcd leadership (a control plane) and reboot; then wait
/// for the new boot, the node running and ready, and etcd on a control
/// plane. Answers the version that booted.
async fn reboot_and_wait(
    u: &NodeUpgrade,
    client: &crate::talos::api::NodeClient,
    reboot: bool,
    boot_before: &str,
    until: &Until,
) -> Result<String, UpgradeError> {
    let node = u.target.node.clone();
    if reboot {
        if u.control_plane {
            // Omni moves etcd leadership away before a control plane reboots.
            if let Err(e) = client.etcd_forfeit_leadership().await {
                tracing::warn!(node = %node, error = %crate::talos::api::error::chain(&e), "forfeiting etcd leadership failed; rebooting anyway");
            }
        }
        match client.reboot(u.reboot_mode).await {
            Ok(_) => {}
            // A node going down may cut the call before its reply: the boot
            // id tells.
            Err(e) if e.is_transient() => tracing::debug!(node = %node, error = %e, "reboot reply cut off"),
            Err(e) => return Err(UpgradeError::Talos { step: "reboot", source: e }),
        }
    }
    let settle = settled(u, until);
    poll_until(&node, conditions::REBOOTED, &settle, POLL, || conditions::rebooted(&u.target, boot_before))
        .await
        .map_err(talos("wait for the reboot"))?;
    poll_until(&node, RUNNING, &settle, POLL, || running(&u.target)).await.map_err(talos("wait for the node"))?;
    let booted = u.target.connect().await.map_err(talos("connect"))?;
    let now = booted.version_tag().await.map_err(talos("read the version after the reboot"))?;
    if u.control_plane {
        poll_until(&node, conditions::SERVICE_RUNNING, until, POLL, || conditions::service_running(&u.target, "etcd"))
            .await
            .map_err(talos("wait for etcd"))?;
    }
    Ok(now)
}

/// The deadline of the waits after the reboot: `settle` from now, within
/// the operation's.
fn settled(u: &NodeUpgrade, until: &Until) -> Until {
    match u.settle {
        Some(d) => {
            let mut s = until.clone();
            s.deadline = s.deadline.min(tokio::time::Instant::now() + d);
            s
        }
        None => until.clone(),
    }
}

/// Best effort: a Node this upgrade cordoned goes back into service when
/// the upgrade stops early (a failed drain, a reboot that never ends, a
/// timeout, Ctrl-C); answers `e`.
async fn uncordon_after(cordoned: Option<(kubernetes::Client, String)>, node: &str, e: UpgradeError) -> UpgradeError {
    if let Some((kube, name)) = cordoned
        && let Err(undo) = kube.cordon(&name, false).await
    {
        tracing::warn!(node = %node, error = %undo, "uncordoning after a stopped upgrade failed");
    }
    e
}

/// The node's stage is running and it is ready.
async fn running(target: &Target) -> Result<Probe<()>, ApiError> {
    let s = target.connect().await?.machine_status().await?;
    Ok(if s.stage == MachineStage::Running && s.ready {
        Probe::Ready(())
    } else {
        Probe::NotYet(format!("stage {:?}, ready {}", s.stage, s.ready))
    })
}

/// Waits until the Kubernetes Node `name` is Ready (talosctl waits for it
/// before it uncordons).
async fn node_ready(kube: &kubernetes::Client, node: &str, name: &str, until: &Until) -> Result<(), UpgradeError> {
    let probe = || async {
        match kube.node_ready(name).await {
            Ok(true) => Ok(Probe::Ready(())),
            Ok(false) => Ok(Probe::NotYet(format!("Node {name} is not Ready"))),
            Err(e) => Ok(Probe::NotYet(e.to_string())),
        }
    };
    poll_until(node, NODE_READY, until, POLL, probe).await.map_err(talos("wait for the Node to be Ready"))
}
