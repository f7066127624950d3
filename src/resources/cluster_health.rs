//! `proxtalos_cluster_health` (data source): staged health checks run by
//! the provider itself, one call per node, until all pass or the read
//! timeout (honoured at any length: there is no server-side cap).
//!
//! Stages, in order: `apid` (every node answers with mutual TLS), `etcd`
//! (every control plane lists as many voting members as there are control
//! planes), `services` (the services each role needs are Running and
//! healthy, kubelet included). A failure names the stage, the node and the
//! last observation.

use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;

use super::common::strings;
use super::talos_node::{
    NodeArgs, POLL, attempt_timeouts, check_address, check_address_at, check_client_configuration, client_attr,
    endpoint_attr,
};
use crate::plugin::timeouts::{self, Operation};
use crate::plugin::{
    Attribute, AttributePath, Context, DataSource, Diagnostic, Diagnostics, ReadDataRequest, ReadDataResponse, Schema,
    Type, ValidateRequest, Value,
};
use crate::provider::ProxtalosData;
use crate::talos::api::ApiError;
use crate::talos::api::error::chain;
use crate::talos::api::wait::Target;

/// Default read timeout.
pub const READ_TIMEOUT: Duration = Duration::from_secs(10 * 60);

/// Services a control plane must run.
pub const CONTROL_PLANE_SERVICES: &[&str] = &["apid", "containerd", "cri", "etcd", "kubelet", "trustd"];
/// Services a worker must run.
pub const WORKER_SERVICES: &[&str] = &["apid", "containerd", "cri", "kubelet"];

/// The data source.
#[derive(Debug, Default)]
pub struct ClusterHealth;

fn schema() -> Schema {
    Schema::new(
        "Waits until a Talos cluster is healthy, checking in stages from the provider (one call per node, no \
server-side time cap, so `timeouts.read` is honoured however long it is): **apid** (every node answers with mutual \
TLS), **etcd** (each control plane sees as many etcd members as there are control planes), **services** (apid, \
containerd, cri, kubelet, and on control planes etcd and trustd are Running and healthy). On timeout the error names \
the stage and the node that failed with what it last reported. Kubernetes node readiness is not checked (the \
provider has no Kubernetes client); use the `kubernetes` provider for that.",
        vec![
            endpoint_attr(),
            client_attr(),
            Attribute::new("control_plane_nodes", Type::list(Type::String))
                .required()
                .description("Addresses of every control-plane node (same form as `node` elsewhere)."),
            Attribute::new("worker_nodes", Type::list(Type::String))
                .optional()
                .description("Addresses of the worker nodes. Not set: none are checked."),
            Attribute::new("stages", Type::list(Type::String))
                .computed()
                .description("The stages that passed, in order: `[\"apid\", \"etcd\", \"services\"]`."),
        ],
    )
    .blocks(vec![timeouts::block(&[(Operation::Read, READ_TIMEOUT)])])
}

/// A stage that did not pass yet: which node and what it said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The node.
    pub node: String,
    /// What it reported (or the error).
    pub last: String,
}

struct Node {
    address: String,
    control_plane: bool,
}

fn target(args: &NodeArgs, node: &str) -> Target {
    NodeArgs { node: node.to_string(), ..args.clone() }.target(attempt_timeouts())
}

/// A fatal error (wrong credentials, a call the node refuses) ends the
/// wait at once; everything else is "not yet".
fn fatal(e: &ApiError) -> bool {
    matches!(e, ApiError::ClientCertRejected { .. } | ApiError::Credentials { .. } | ApiError::PermissionDenied { .. })
}

async fn check_apid(args: &NodeArgs, n: &Node) -> Result<(), (Failure, bool)> {
    let t = target(args, &n.address);
    let r = async { t.connect().await?.version().await }.await;
    r.map(|_| ()).map_err(|e| (Failure { node: n.address.clone(), last: chain(&e) }, fatal(&e)))
}

async fn check_etcd(args: &NodeArgs, n: &Node, want: usize) -> Result<(), (Failure, bool)> {
    let t = target(args, &n.address);
    let fail = |last: String, f: bool| (Failure { node: n.address.clone(), last }, f);
    let members =
        async { t.connect().await?.etcd_members(false).await }.await.map_err(|e| fail(chain(&e), fatal(&e)))?;
    let voting = members.iter().filter(|m| !m.is_learner).count();
    if voting == want {
        Ok(())
    } else {
        let names: Vec<_> = members.iter().map(|m| m.hostname.clone()).collect();
        Err(fail(format!("{voting} etcd members ({}), want {want} (one per control plane)", names.join(", ")), false))
    }
}

async fn check_services(args: &NodeArgs, n: &Node) -> Result<(), (Failure, bool)> {
    let t = target(args, &n.address);
    let fail = |last: String, f: bool| (Failure { node: n.address.clone(), last }, f);
    let services = async { t.connect().await?.services().await }.await.map_err(|e| fail(chain(&e), fatal(&e)))?;
    let need = if n.control_plane { CONTROL_PLANE_SERVICES } else { WORKER_SERVICES };
    let bad: Vec<String> = need
        .iter()
        .filter_map(|id| match services.iter().find(|s| s.id == *id) {
            Some(s) if s.state == "Running" && s.health.as_ref().is_none_or(|h| h.healthy) => None,
            Some(s) => Some(format!("{id} is {}", s.state)),
            None => Some(format!("{id} is not listed")),
        })
        .collect();
    if bad.is_empty() { Ok(()) } else { Err(fail(bad.join(", "), false)) }
}

/// Runs one stage over every node until all pass or `deadline`.
async fn stage<'a, F, Fut>(nodes: &'a [Node], deadline: Instant, check: F) -> Result<(), (Failure, bool)>
where
    F: Fn(&'a Node) -> Fut,
    Fut: std::future::Future<Output = Result<(), (Failure, bool)>>,
{
    loop {
        let mut first = None;
        for n in nodes {
            let left = deadline.saturating_duration_since(Instant::now());
            let r = match tokio::time::timeout(left.max(Duration::from_millis(1)), check(n)).await {
                Ok(r) => r,
                Err(_) => {
                    Err((Failure { node: n.address.clone(), last: "no answer before the deadline".into() }, false))
                }
            };
            if let Err((f, is_fatal)) = r {
                if is_fatal {
                    return Err((f, true));
                }
                first = Some(f);
                break;
            }
        }
        let Some(f) = first else { return Ok(()) };
        if Instant::now() >= deadline {
            return Err((f, false));
        }
        tokio::time::sleep(POLL.min(deadline.saturating_duration_since(Instant::now()))).await;
    }
}

fn failure_diag(stage: &str, f: &Failure, limit: Duration, timed_out: bool) -> Diagnostic {
    let why = if timed_out {
        format!("did not pass within {} (`timeouts.read`)", crate::plugin::timeouts::format_duration(limit))
    } else {
        "failed".to_string()
    };
    Diagnostic::error(
        format!("Cluster health check failed at stage {stage}"),
        format!("Stage {stage} {why} on node {}: {}.", f.node, f.last),
    )
}

#[async_trait]
impl DataSource<ProxtalosData> for ClusterHealth {
    fn type_name(&self) -> &'static str {
        "proxtalos_cluster_health"
    }

    fn schema(&self) -> Schema {
        schema()
    }

    fn validate_config(&self, req: &ValidateRequest, diags: &mut Diagnostics) {
        timeouts::validate(&req.config, diags);
        check_address(&req.config, "endpoint", diags);
        check_client_configuration(&req.config, diags);
        for list in ["control_plane_nodes", "worker_nodes"] {
            for (i, n) in req.config.attr(list).as_elements().unwrap_or_default().iter().enumerate() {
                if let Some(s) = n.as_str() {
                    check_address_at(s, AttributePath::attr(list).and_index(i as i64), diags);
                }
            }
        }
        if req.config.attr("control_plane_nodes").as_elements().is_some_and(<[Value]>::is_empty) {
            diags.error_at(
                AttributePath::attr("control_plane_nodes"),
                "No control planes",
                "List at least one control-plane node.",
            );
        }
    }

    async fn read(&self, _ctx: &Context<ProxtalosData>, req: ReadDataRequest, resp: &mut ReadDataResponse) {
        let mut cfg = req.config.clone();
        cfg.set_attr("node", Value::string(""));
        let args = match NodeArgs::from_value(&cfg) {
            Ok(a) => a,
            Err(d) => return resp.diags.push(d),
        };
        let limit = timeouts::get(&req.config, Operation::Read, READ_TIMEOUT);
        let deadline = Instant::now() + limit;
        let cps = strings(req.config.attr("control_plane_nodes"));
        let mut nodes: Vec<Node> = cps.iter().map(|a| Node { address: a.clone(), control_plane: true }).collect();
        nodes.extend(
            strings(req.config.attr("worker_nodes")).into_iter().map(|a| Node { address: a, control_plane: false }),
        );
        let cp_nodes: Vec<Node> = cps.iter().map(|a| Node { address: a.clone(), control_plane: true }).collect();
        let want = cp_nodes.len();
        let mut passed: Vec<&'static str> = Vec::new();
        for name in ["apid", "etcd", "services"] {
            let r = match name {
                "apid" => stage(&nodes, deadline, |n| check_apid(&args, n)).await,
                "etcd" => stage(&cp_nodes, deadline, |n| check_etcd(&args, n, want)).await,
                _ => stage(&nodes, deadline, |n| check_services(&args, n)).await,
            };
            if let Err((f, is_fatal)) = r {
                return resp.diags.push(failure_diag(name, &f, limit, !is_fatal));
            }
            passed.push(name);
        }
        resp.state.set_attr("stages", Value::List(passed.iter().map(|s| Value::string(*s)).collect()));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn schema_is_consistent() {
        assert!(schema().check().is_empty(), "{:?}", schema().check());
    }

    #[test]
    fn failures_name_stage_and_node() {
        let f = Failure { node: "10.0.0.12".into(), last: "1 etcd members".into() };
        let d = failure_diag("etcd", &f, Duration::from_secs(900), true);
        assert_eq!(d.summary, "Cluster health check failed at stage etcd");
        assert!(d.detail.contains("within 15m") && d.detail.contains("node 10.0.0.12"), "{}", d.detail);
    }
}
