//! What the rollout does to one node, each a small operation on the
//! shared clients and waits: install (or re-apply) a configuration, apply
//! a change, the health gate, roll back to the previous image, take a node
//! out, snapshot etcd.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::kubernetes::{self, health};
use crate::resources::machine_configuration_apply::send_mode;
use crate::resources::shared::talos_node::{
    CONFIG_ACTIVE, CONFIGURED, NodeArgs, Reached, attempt_timeouts, canonical, config_active, quick_timeouts, reach,
    running_ready, wait,
};
use crate::talos::api::wait::{Target, Until, conditions, poll_until};
use crate::talos::api::{ApiError, ResetRequest};
use crate::talos::client_config::ClientConfiguration;
use crate::wait::Probe;

/// Why an operation on a node stopped.
#[derive(Debug, thiserror::Error)]
pub enum OpError {
    /// A Talos call or wait failed.
    #[error("{step}: {source}")]
    Talos {
        /// The step.
        step: &'static str,
        /// The cause.
        #[source]
        source: ApiError,
    },
    /// A Kubernetes call failed.
    #[error("{step}: {source}")]
    Kube {
        /// The step.
        step: &'static str,
        /// The cause.
        #[source]
        source: kubernetes::Error,
    },
    /// The health gate did not pass in time.
    #[error("the health gate did not pass within {limit}: {seen}")]
    Gate {
        /// The gate's limit, formatted.
        limit: String,
        /// What it saw last.
        seen: String,
    },
    /// The snapshot is not usable or could not be written.
    #[error("etcd snapshot: {0}")]
    Snapshot(#[from] crate::resources::shared::etcd_snapshot::SnapshotError),
    /// Terraform asked the provider to stop.
    #[error("{step}: Terraform asked the provider to stop")]
    Stopped {
        /// What was under way.
        step: &'static str,
    },
}

impl OpError {
    /// Terraform asked the provider to stop.
    pub fn is_stopped(&self) -> bool {
        matches!(self, OpError::Stopped { .. } | OpError::Talos { source: ApiError::Stopped { .. }, .. })
            || matches!(self, OpError::Kube { source: kubernetes::Error::Stopped { .. }, .. })
    }
}

fn talos(step: &'static str) -> impl FnOnce(ApiError) -> OpError {
    move |source| OpError::Talos { step, source }
}

/// The credentials and the node's address as the shared helpers take them.
pub fn args(creds: &ClientConfiguration, address: &str) -> NodeArgs {
    NodeArgs { node: address.to_string(), endpoint: None, creds: creds.clone() }
}

/// Installs `text` on a node in maintenance mode, or (a node configured
/// already, e.g. after an interrupted create) applies it when its active
/// configuration differs. Answers the version it runs.
pub async fn install(a: &NodeArgs, text: &str, until: &Until) -> Result<String, OpError> {
    let reached = reach(a, until).await.map_err(talos("reach the node"))?;
    let target = a.target(attempt_timeouts());
    let want = canonical(text);
    match &reached {
        Reached::Maintenance(_) => {
            match send_mode(&reached, text, "auto", Duration::from_secs(60), false).await {
                Ok(_) => {}
                // The node may take it and stop its listener before replying:
                // the wait below tells.
                Err((e @ (ApiError::Unavailable { .. } | ApiError::Deadline { .. }), _)) => {
                    tracing::warn!(node = %a.node, error = %e, "no reply to the maintenance-mode apply; waiting");
                }
                Err((e, step)) => return Err(OpError::Talos { step, source: e }),
            }
            wait(&a.node, CONFIGURED, until, || config_active(&target, &want)).await.map_err(talos("install"))?;
        }
        Reached::Normal(c) => {
            let active = c.machine_config().await.map_err(talos("read the active configuration"))?;
            if active.as_deref().map(canonical) != Some(want.clone()) {
                configure(a, text, until).await?;
            }
        }
    }
    running_version(&target).await.map_err(talos("read the version"))
}

/// Applies `text` to a configured node (`auto`: without a reboot where
/// Talos allows it) and waits until it is active.
pub async fn configure(a: &NodeArgs, text: &str, until: &Until) -> Result<(), OpError> {
    let target = a.target(attempt_timeouts());
    let c = target.connect().await.map_err(talos("connect"))?;
    let reached = Reached::Normal(c);
    let (_, _, boot_before) = send_mode(&reached, text, "auto", Duration::from_secs(60), false)
        .await
        .map_err(|(e, step)| OpError::Talos { step, source: e })?;
    if let Some(before) = boot_before {
        wait(&a.node, conditions::REBOOTED, until, || conditions::rebooted(&target, &before))
            .await
            .map_err(talos("wait for the reboot after the change"))?;
    }
    let want = canonical(text);
    wait(&a.node, CONFIG_ACTIVE, until, || config_active(&target, &want)).await.map_err(talos("wait for the change"))
}

/// The Talos version a node runs.
pub async fn running_version(target: &Target) -> Result<String, ApiError> {
    target.connect().await?.version_tag().await
}

/// The version and the hash of the active configuration of a node (a
/// refresh: quick limits), or what went wrong.
pub async fn observe(a: &NodeArgs) -> Result<(String, Option<crate::resources::cluster::model::Active>), ApiError> {
    let c = a.target(quick_timeouts()).connect().await?;
    let version = c.version_tag().await?;
    let text = c.machine_config().await?;
    Ok((version, text.map(|t| crate::resources::cluster::model::Active::of(&t))))
}

/// An admin kubeconfig from a control plane (`talosctl kubeconfig`),
/// waiting while the API server is not up yet.
pub async fn kubeconfig(a: &NodeArgs, until: &Until) -> Result<String, OpError> {
    let target = a.target(attempt_timeouts());
    wait(&a.node, "the kubeconfig", until, || async {
        match target.connect().await?.kubeconfig().await {
            Ok(k) => Ok(Probe::Ready(k)),
            Err(e) if !e.is_control_plane_only() => Ok(Probe::NotYet(crate::talos::api::error::chain(&e))),
            Err(e) => Err(e),
        }
    })
    .await
    .map_err(talos("fetch the kubeconfig"))
}

/// What the gate expects of the cluster after a node's step.
#[derive(Debug, Clone)]
pub struct Expect {
    /// The node that changed and the Talos version it must run (none for
    /// a cluster-wide step).
    pub node: Option<(String, String)>,
    /// Addresses of the control planes now in the cluster.
    pub control_planes: Vec<String>,
    /// Addresses of the workers now in the cluster.
    pub workers: Vec<String>,
    /// The kubelet version every Node must report.
    pub kubelet: Option<String>,
}

/// The health gate: polls until the node runs its version, every node's
/// Talos stages pass, (with a client) the Kubernetes checks of
/// `talosctl health` pass from a control plane, and (with `endpoint`) the
/// API answers at the cluster endpoint (a shared VIP or a load balancer:
/// its holder may be the node that just rebooted), within `limit`.
pub async fn gate(
    creds: &ClientConfiguration,
    kube: Option<&kubernetes::Client>,
    endpoint: Option<&kubernetes::Client>,
    e: &Expect,
    limit: Duration,
    until: &Until,
) -> Result<(), OpError> {
    let mut bounded = until.clone();
    bounded.deadline = bounded.deadline.min(tokio::time::Instant::now() + limit);
    let base = args(creds, "");
    let host = |a: &String| crate::resources::cluster::model::host_of(a);
    let want = health::Expected {
        control_planes: e.control_planes.iter().map(host).collect(),
        workers: e.workers.iter().map(host).collect(),
        kubelet_version: e.kubelet.clone(),
    };
    let label = e.node.as_ref().map_or_else(|| "cluster".to_string(), |(n, _)| n.clone());
    let probe = || async {
        if let Some((address, version)) = &e.node {
            let t = args(creds, address).target(attempt_timeouts());
            match running_version(&t).await {
                Ok(v) if &v == version => {}
                Ok(v) => return Ok(Probe::NotYet(format!("node {address} runs {v}, not {version}"))),
                Err(err) => {
                    return Ok(Probe::NotYet(format!("node {address}: {}", crate::talos::api::error::chain(&err))));
                }
            }
        }
        if let Err(seen) = crate::resources::cluster_health::talos_once(&base, &e.control_planes, &e.workers).await {
            return Ok(Probe::NotYet(seen));
        }
        if let Some(k) = kube
            && let Err(seen) = crate::resources::cluster_health::kubernetes_once(k, &want).await
        {
            return Ok(Probe::NotYet(seen));
        }
        if let Some(k) = endpoint
            && let Err(e) = k.version().await
        {
            return Ok(Probe::NotYet(format!("the cluster endpoint {} does not answer: {e}", k.server())));
        }
        Ok(Probe::Ready(()))
    };
    match poll_until(&label, "the health gate", &bounded, Duration::from_millis(250), probe).await {
        Ok(()) => Ok(()),
        // Stopped: the error keeps what the gate saw last.
        Err(err @ ApiError::Stopped { .. }) => Err(OpError::Talos { step: "health gate", source: err }),
        Err(err) => {
            Err(OpError::Gate { limit: crate::plugin::timeouts::format_duration(limit), seen: last_seen(&err) })
        }
    }
}

/// What a timed-out wait saw last.
fn last_seen(e: &ApiError) -> String {
    match e {
        ApiError::WaitTimedOut { last, .. } => last.clone(),
        other => crate::talos::api::error::chain(other),
    }
}

/// Boots the previous A/B image of a node that failed its gate (as
/// `talosctl rollback`) and waits until it runs `from` again.
pub async fn rollback(a: &NodeArgs, from: &str, until: &Until) -> Result<(), OpError> {
    let target = a.target(attempt_timeouts());
    let c = target.connect().await.map_err(talos("connect for the rollback"))?;
    let before = c.boot_id().await.map_err(talos("read the boot id"))?;
    match c.rollback().await {
        Ok(()) => {}
        Err(e) if e.is_transient() => tracing::debug!(node = %a.node, error = %e, "rollback reply cut off"),
        Err(e) => return Err(OpError::Talos { step: "rollback", source: e }),
    }
    wait(&a.node, conditions::REBOOTED, until, || conditions::rebooted(&target, &before))
        .await
        .map_err(talos("wait for the reboot into the previous image"))?;
    wait(&a.node, "the node to run its previous version", until, || async {
        Ok(match running_ready(&target).await? {
            Probe::Ready(v) if v == from => Probe::Ready(()),
            Probe::Ready(v) => Probe::NotYet(format!("{v}, running and ready")),
            Probe::NotYet(seen) => Probe::NotYet(seen),
        })
    })
    .await
    .map_err(talos("wait for the previous version"))
}

/// Takes a node out: a graceful reset (Talos cordons, drains, and a
/// control plane leaves etcd) and power-off; a node that does not answer
/// is gone already, so a control plane's etcd member is removed by id from
/// `via`. The Node object is deleted either way.
pub async fn remove(
    creds: &ClientConfiguration,
    name: &str,
    address: &str,
    control_plane: bool,
    via: Option<&str>,
    kube: Option<&kubernetes::Client>,
) -> Result<(), OpError> {
    let a = args(creds, address);
    let reset = ResetRequest { reboot: false, ..ResetRequest::to_maintenance(true) };
    let answered = match a.target(attempt_timeouts()).connect().await {
        Ok(c) => match c.reset(&reset).await {
            Ok(_) => true,
            Err(e) if e.is_transient() => true,
            Err(e) => return Err(OpError::Talos { step: "graceful reset", source: e }),
        },
        Err(e) => {
            tracing::warn!(node = %name, error = %crate::talos::api::error::chain(&e), "a removed node does not answer; removing what it leaves behind");
            false
        }
    };
    if !answered
        && control_plane
        && let Some(via) = via
    {
        let c =
            args(creds, via).target(attempt_timeouts()).connect().await.map_err(talos("connect to a control plane"))?;
        let members = c.etcd_members(false).await.map_err(talos("list etcd members"))?;
        if let Some(m) = members.iter().find(|m| m.hostname == name) {
            c.etcd_remove_member(m.id).await.map_err(talos("remove the etcd member"))?;
        }
    }
    if let Some(k) = kube {
        k.delete_node(name).await.map_err(|source| OpError::Kube { step: "delete the Node", source })?;
    }
    Ok(())
}

/// Takes an etcd snapshot from `address` into `dir` as
/// `<cluster>-<time>.snapshot` once its integrity hash checks out (0600,
/// written under a temporary name, then renamed), and keeps the newest
/// `keep` of the cluster's.
pub async fn snapshot(
    creds: &ClientConfiguration,
    address: &str,
    cluster: &str,
    dir: &Path,
    keep: usize,
    until: &Until,
) -> Result<PathBuf, OpError> {
    let c =
        args(creds, address).target(attempt_timeouts()).connect().await.map_err(talos("connect for the snapshot"))?;
    let left = until.deadline.saturating_duration_since(tokio::time::Instant::now());
    let bytes = tokio::select! {
        r = c.etcd_snapshot(left) => r.map_err(talos("etcd snapshot"))?,
        _ = until.stop.stopped() => return Err(OpError::Stopped { step: "etcd snapshot" }),
    };
    crate::resources::shared::etcd_snapshot::verify(&bytes)?;
    let (path, _) = crate::resources::shared::etcd_snapshot::keep(dir, cluster, &bytes, keep)?;
    Ok(path)
}
