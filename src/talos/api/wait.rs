//! Waiting for a node: small named conditions and one polling helper with a
//! deadline. Transient errors (refused connections, `Unavailable`, a call
//! deadline — what a rebooting node produces, api.md §5) are waited out;
//! anything else ends the wait at once.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use super::client::{Mode, NodeClient, Timeouts};
use super::error::{ApiError, At};
pub use crate::wait::Probe;
use crate::wait::{self, Backoff, Ended, Stop, Wait};

/// When a wait gives up: its deadline, or Terraform's stop request.
#[derive(Clone, Debug)]
pub struct Until {
    /// The deadline.
    pub deadline: Instant,
    /// Ends the wait early.
    pub stop: Stop,
}

impl Until {
    /// `limit` from now, ending early on `stop`.
    pub fn after(limit: Duration, stop: &Stop) -> Until {
        Until { deadline: Instant::now() + limit, stop: stop.clone() }
    }
}

/// Polls `probe` every `interval` until it is [`Probe::Ready`], a
/// non-transient error occurs, the deadline passes
/// ([`ApiError::WaitTimedOut`] naming `condition` and the last observation)
/// or stop is requested ([`ApiError::Stopped`], likewise), on the
/// provider's one polling helper ([`crate::wait::until`]).
pub async fn poll_until<T, F, Fut>(
    node: &str,
    condition: &'static str,
    until: &Until,
    interval: Duration,
    mut probe: F,
) -> Result<T, ApiError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Probe<T>, ApiError>>,
{
    let w = Wait::until(condition, until.deadline, Backoff::fixed(interval), &until.stop);
    let at = || At { node: node.to_string(), call: condition };
    wait::until(&w, || {
        let fut = probe();
        async move {
            match fut.await {
                Err(e) if e.is_transient() => Ok(Probe::NotYet(super::error::chain(&e))),
                other => other,
            }
        }
    })
    .await
    .map_err(|e| match e {
        Ended::Failed(e) => e,
        Ended::TimedOut(r) => ApiError::WaitTimedOut { at: at(), condition, after: r.after, last: r.last_or_none() },
        Ended::Stopped(r) => ApiError::Stopped { at: at(), condition, after: r.after, last: r.last_or_none() },
    })
}

/// Where and how the conditions below reach a node.
#[derive(Debug, Clone)]
pub struct Target {
    /// The node address (`host[:port]`).
    pub node: String,
    /// Optional proxying endpoint (normal mode only).
    pub endpoint: Option<String>,
    /// Connection mode.
    pub mode: Mode,
    /// Per-attempt timeouts.
    pub timeouts: Timeouts,
}

impl Target {
    /// A fresh connection (each poll redials: a reboot kills connections).
    pub async fn connect(&self) -> Result<NodeClient, ApiError> {
        NodeClient::connect(&self.node, self.endpoint.as_deref(), &self.mode, self.timeouts).await
    }
}

/// Named conditions for [`poll_until`]; each is one probe.
pub mod conditions {
    use super::*;

    /// Condition name: the maintenance API answers `Disks` (how the anchor
    /// detects maintenance mode, behaviour.md §2).
    pub const MAINTENANCE_API: &str = "maintenance API to answer";
    /// Condition name: the mTLS API answers `Version`.
    pub const SECURE_API: &str = "the node to answer with mutual TLS";
    /// Condition name: the node reports a given Talos version.
    pub const VERSION: &str = "the node to report the expected Talos version";
    /// Condition name: Bootstrap accepted or already done.
    pub const BOOTSTRAPPED: &str = "etcd to be bootstrapped";
    /// Condition name: etcd has the expected number of members.
    pub const ETCD_MEMBERS: &str = "etcd membership";
    /// Condition name: a service is Running and healthy.
    pub const SERVICE_RUNNING: &str = "a service to be running";
    /// Condition name: the node booted again (a new boot id).
    pub const REBOOTED: &str = "the node to reboot (a new boot id)";

    /// The node answers `Disks` in `target`'s mode. In maintenance mode a
    /// node that still wants a client certificate is "not yet" (it is about
    /// to reset), and in normal mode one we do not trust (still in
    /// maintenance) is too.
    pub async fn api_answers(target: &Target) -> Result<Probe<NodeClient>, ApiError> {
        let attempt = async {
            let client = target.connect().await?;
            client.disks().await?;
            Ok::<_, ApiError>(client)
        };
        match (attempt.await, &target.mode) {
            (Ok(c), _) => Ok(Probe::Ready(c)),
            (Err(e @ ApiError::ClientCertRejected { .. }), Mode::Maintenance { .. })
            | (Err(e @ ApiError::ServerCertUntrusted { .. }), Mode::Normal(_)) => {
                Ok(Probe::NotYet(super::super::error::chain(&e)))
            }
            (Err(e), _) => Err(e),
        }
    }

    /// The node answers `Version` (normal mode: installed, rebooted, mTLS
    /// up). A certificate we do not trust counts as "not yet": right after an
    /// apply the node still presents its maintenance certificate; a wrong CA
    /// therefore shows in the timeout's last observation.
    pub async fn secure_api_up(target: &Target) -> Result<Probe<String>, ApiError> {
        let attempt = async { target.connect().await?.version_tag().await };
        match attempt.await {
            Ok(tag) => Ok(Probe::Ready(tag)),
            Err(e @ ApiError::ServerCertUntrusted { .. }) => Ok(Probe::NotYet(super::super::error::chain(&e))),
            Err(e) => Err(e),
        }
    }

    /// The node runs Talos `tag`.
    pub async fn version_is(target: &Target, tag: &str) -> Result<Probe<()>, ApiError> {
        let got = target.connect().await?.version_tag().await?;
        Ok(if got == tag { Probe::Ready(()) } else { Probe::NotYet(format!("running {got}")) })
    }

    /// Bootstrap succeeded now or earlier: `AlreadyExists` counts as done,
    /// `FailedPrecondition` as not yet, a worker's refusal as an error
    /// (behaviour.md §5).
    pub async fn bootstrapped(target: &Target) -> Result<Probe<()>, ApiError> {
        match target.connect().await?.bootstrap().await {
            Ok(()) | Err(ApiError::AlreadyExists { .. }) => Ok(Probe::Ready(())),
            // A worker never bootstraps (v1.12 says so with FailedPrecondition).
            Err(e) if e.is_control_plane_only() => Err(e),
            Err(ApiError::FailedPrecondition { message, .. }) => Ok(Probe::NotYet(message)),
            Err(e) => Err(e),
        }
    }

    /// The node answers with a boot id other than `before`: it went down
    /// and came back (behaviour.md §6, talosctl's reboot check).
    pub async fn rebooted(target: &Target, before: &str) -> Result<Probe<()>, ApiError> {
        let now = target.connect().await?.boot_id().await?;
        Ok(if now != before { Probe::Ready(()) } else { Probe::NotYet(format!("still boot {now}")) })
    }

    /// etcd lists at least `count` members (not learners).
    pub async fn etcd_members_at_least(target: &Target, count: usize) -> Result<Probe<usize>, ApiError> {
        let members = target.connect().await?.etcd_members(false).await?;
        let voting = members.iter().filter(|m| !m.is_learner).count();
        Ok(if voting >= count { Probe::Ready(voting) } else { Probe::NotYet(format!("{voting} members")) })
    }

    /// Service `id` is Running and healthy.
    pub async fn service_running(target: &Target, id: &str) -> Result<Probe<()>, ApiError> {
        let services = target.connect().await?.services().await?;
        match services.iter().find(|s| s.id == id) {
            Some(s) if s.state == "Running" && s.health.as_ref().is_none_or(|h| h.healthy) => Ok(Probe::Ready(())),
            Some(s) => Ok(Probe::NotYet(format!("{id} is {}", s.state))),
            None => Ok(Probe::NotYet(format!("{id} not listed"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// A probe cut off by the deadline leaves the last answer in the error:
    /// "not trusted" is what the user needs, not "still running".
    #[tokio::test(start_paused = true)]
    async fn a_probe_cut_off_by_the_deadline_keeps_the_last_answer() {
        let calls = AtomicU32::new(0);
        let until = Until::after(Duration::from_secs(5), &Stop::never());
        let err = poll_until("10.0.0.1", "the secure API answers", &until, Duration::from_millis(500), || async {
            if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                return Ok::<Probe<()>, ApiError>(Probe::NotYet("TLS certificate is not trusted".into()));
            }
            std::future::pending().await
        })
        .await
        .unwrap_err();
        let ApiError::WaitTimedOut { last, .. } = err else { panic!("{err:?}") };
        assert_eq!(last, "TLS certificate is not trusted (a later probe was still running at the deadline)");
    }

    #[tokio::test(start_paused = true)]
    async fn a_first_probe_cut_off_says_so() {
        let until = Until::after(Duration::from_secs(5), &Stop::never());
        let err = poll_until("10.0.0.1", "the secure API answers", &until, Duration::from_millis(500), || {
            std::future::pending::<Result<Probe<()>, ApiError>>()
        })
        .await
        .unwrap_err();
        let ApiError::WaitTimedOut { last, .. } = err else { panic!("{err:?}") };
        assert_eq!(last, "the first probe was still running at the deadline");
    }

    /// Stop ends a node wait with `Stopped`, keeping the last observation.
    #[tokio::test(start_paused = true)]
    async fn stop_ends_a_node_wait_with_the_last_observation() {
        let (tx, stop) = Stop::new();
        let until = Until::after(Duration::from_secs(600), &stop);
        let waiting = poll_until("10.0.0.1", "etcd membership", &until, Duration::from_secs(1), || async {
            Ok::<Probe<()>, ApiError>(Probe::NotYet("1 members".into()))
        });
        let (r, ()) = tokio::join!(waiting, async {
            tokio::time::sleep(Duration::from_secs(3)).await;
            tx.stop();
        });
        let Err(ApiError::Stopped { last, condition, after, .. }) = r else { panic!("{r:?}") };
        assert_eq!((last.as_str(), condition), ("1 members", "etcd membership"));
        assert!(after < Duration::from_secs(4), "{after:?}");
    }
}
