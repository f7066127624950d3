//! `proxtalos_cluster_health` (data source): staged health checks run by
//! the provider itself, one call per node, until all pass or the read
//! timeout (honoured at any length: there is no server-side cap).
//!
//! Stages, in order: `apid` (every node answers with mutual TLS), `etcd`
//! (every control plane lists as many voting members as there are control
//! planes), `services` (the services each role needs are Running and
//! healthy, kubelet included), and with `kubernetes = true` the stage
//! `kubernetes` (what `talosctl health` checks through the Kubernetes API,
//! `crate::kubernetes::health`). A failure names the stage, the node (or
//! the API server) and the last observation.

use std::time::Duration;

use async_trait::async_trait;

use crate::data::ProxtalosData;
use crate::kubernetes::{self, Kubeconfig, health};
use crate::plugin::timeouts::{self, Operation};
use crate::plugin::{
    Attribute, AttributePath, Context, DataSource, Diagnostic, Diagnostics, ReadDataRequest, ReadDataResponse, Schema,
    Type, ValidateRequest, Value,
};
use crate::resources::shared::common::strings;
use crate::resources::shared::talos_node::{
    NodeArgs, POLL, attempt_timeouts, check_address, check_address_at, check_client_configuration, client_attr,
    endpoint_attr,
};
use crate::talos::api::ApiError;
use crate::talos::api::error::chain;
use crate::talos::api::wait::{Target, Until};
use crate::wait::{self, Backoff, Ended, Probe, Wait};

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
containerd, cri, kubelet, and on control planes etcd and trustd are Running and healthy), and with `kubernetes = true` \
**kubernetes**: what `talosctl health` checks through the Kubernetes API (every node registered and matched by \
address, the control-plane static pods running and Ready on each control plane, every node Ready, at \
`kubernetes_version` when set, kube-proxy and CoreDNS ready, no node cordoned). On timeout the error names the \
stage and the node (or check) that failed with what it last reported.",
        vec![
            endpoint_attr(),
            client_attr(),
            Attribute::new("control_plane_nodes", Type::list(Type::String))
                .required()
                .description("Addresses of every control-plane node (same form as `node` elsewhere)."),
            Attribute::new("worker_nodes", Type::list(Type::String))
                .optional()
                .description("Addresses of the worker nodes. Not set: none are checked."),
            Attribute::new("kubernetes", Type::Bool).optional().description(
                "Also run the stage `kubernetes` (needs `kubeconfig`): the Kubernetes-side checks of `talosctl health`. \
Default `false`.",
            ),
            Attribute::new("kubeconfig", Type::String).optional().sensitive().description(
                "An admin kubeconfig for the stage `kubernetes`, e.g. \
`proxtalos_cluster_kubeconfig.this.kubeconfig_raw`. Its CA is the only one trusted.",
            ),
            Attribute::new("kubernetes_version", Type::String).optional().description(
                "With `kubernetes = true`: every node's kubelet must report this version (`1.33.1` or `v1.33.1`), \
so a health check after a version change waits for the new version.",
            ),
            Attribute::new("stages", Type::list(Type::String)).computed().description(
                "The stages that passed, in order: `[\"apid\", \"etcd\", \"services\"]`, then `\"kubernetes\"` \
when it ran.",
            ),
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
    let bad = unhealthy_services(&services, need);
    if bad.is_empty() { Ok(()) } else { Err(fail(bad.join(", "), false)) }
}

/// The services of `need` that are not Running and healthy, each as
/// `id is STATE` with the service's last health message when it has one
/// (a failed etcd says why in etcd's own words).
fn unhealthy_services(services: &[crate::talos::api::ServiceInfo], need: &[&str]) -> Vec<String> {
    need.iter()
        .filter_map(|id| match services.iter().find(|s| s.id == *id) {
            Some(s) if s.state == "Running" && s.health.as_ref().is_none_or(|h| h.healthy) => None,
            Some(s) => Some(match s.health.as_ref().map(|h| h.last_message.trim()).filter(|m| !m.is_empty()) {
                Some(why) => format!("{id} is {} ({why})", s.state),
                None => format!("{id} is {}", s.state),
            }),
            None => Some(format!("{id} is not listed")),
        })
        .collect()
}

/// One pass of the Talos stages (`apid`, `etcd`, `services`) over the
/// nodes, for callers with their own wait (the rollout's health gate):
/// the first failure as `stage X on node N: what it said`.
pub(crate) async fn talos_once(args: &NodeArgs, control_planes: &[String], workers: &[String]) -> Result<(), String> {
    let cps: Vec<Node> = control_planes.iter().map(|a| Node { address: a.clone(), control_plane: true }).collect();
    let mut all: Vec<Node> = control_planes.iter().map(|a| Node { address: a.clone(), control_plane: true }).collect();
    all.extend(workers.iter().map(|a| Node { address: a.clone(), control_plane: false }));
    let seen = |stage: &str, (f, _): (Failure, bool)| format!("stage {stage} {}", f.observation());
    for n in &all {
        check_apid(args, n).await.map_err(|f| seen("apid", f))?;
    }
    for n in &cps {
        check_etcd(args, n, cps.len()).await.map_err(|f| seen("etcd", f))?;
    }
    for n in &all {
        check_services(args, n).await.map_err(|f| seen("services", f))?;
    }
    Ok(())
}

/// One pass of the stage `kubernetes` (see [`talos_once`]).
pub(crate) async fn kubernetes_once(client: &kubernetes::Client, want: &health::Expected) -> Result<(), String> {
    let at = format!("stage kubernetes at {}", client.server());
    match health::snapshot(client).await {
        Ok(s) => health::check(&s, want).map_err(|u| format!("{at}: {u}")),
        Err(e) => Err(format!("{at}: {}", chain(&e))),
    }
}

/// How a stage ended without passing.
#[derive(Debug, Clone, PartialEq, Eq)]
enum StageEnd {
    /// A node refused us for good (credentials, permissions): what it said.
    Fatal(String),
    /// The deadline passed; the last observation names the node.
    TimedOut(String),
    /// Terraform asked the provider to stop.
    Stopped(String),
}

impl Failure {
    fn observation(&self) -> String {
        format!("on node {}: {}", self.node, self.last)
    }
}

/// Runs one stage over every node until all pass, a fatal failure, the
/// deadline or stop (one probe is a pass over the nodes, first failure
/// first).
async fn stage<'a, F, Fut>(name: &str, nodes: &'a [Node], until: &Until, check: F) -> Result<(), StageEnd>
where
    F: Fn(&'a Node) -> Fut,
    Fut: std::future::Future<Output = Result<(), (Failure, bool)>>,
{
    let w = Wait::until(name, until.deadline, Backoff::fixed(POLL), &until.stop);
    let r = wait::until(&w, || async {
        for n in nodes {
            // Bounded by the deadline here, so a node that hangs is named.
            let left = until.deadline.saturating_duration_since(tokio::time::Instant::now());
            let Ok(checked) = tokio::time::timeout(left, check(n)).await else {
                let hung = Failure { node: n.address.clone(), last: "no answer before the deadline".into() };
                return Ok(Probe::NotYet(hung.observation()));
            };
            match checked {
                Ok(()) => {}
                Err((f, true)) => return Err(f),
                Err((f, false)) => return Ok(Probe::NotYet(f.observation())),
            }
        }
        Ok(Probe::Ready(()))
    })
    .await;
    r.map_err(|e| match e {
        Ended::Failed(f) => StageEnd::Fatal(f.observation()),
        Ended::TimedOut(r) => StageEnd::TimedOut(r.last_or_none()),
        Ended::Stopped(r) => StageEnd::Stopped(r.last_or_none()),
    })
}

/// The stage `kubernetes`: polls a snapshot of the cluster through the
/// API server until every check passes. A refused credential ends it at
/// once; an API server that does not answer yet is "not yet".
async fn stage_kubernetes(client: &kubernetes::Client, want: &health::Expected, until: &Until) -> Result<(), StageEnd> {
    let at = format!("at {}", client.server());
    let w = Wait::until("kubernetes", until.deadline, Backoff::fixed(POLL), &until.stop);
    let r = wait::until(&w, || async {
        match health::snapshot(client).await {
            Ok(s) => Ok(match health::check(&s, want) {
                Ok(()) => Probe::Ready(()),
                Err(u) => Probe::NotYet(format!("{at}: {u}")),
            }),
            Err(e) if e.is_auth() => Err(format!("{at}: {}", chain(&e))),
            Err(e) => Ok(Probe::NotYet(format!("{at}: {}", chain(&e)))),
        }
    })
    .await;
    r.map_err(|e| match e {
        Ended::Failed(f) => StageEnd::Fatal(f),
        Ended::TimedOut(r) => StageEnd::TimedOut(r.last_or_none()),
        Ended::Stopped(r) => StageEnd::Stopped(r.last_or_none()),
    })
}

/// `1.33.1` or `v1.33.1` (a pre-release suffix allowed) as the kubelet
/// reports it, or None when it is not a version.
fn kubelet_version(v: &str) -> Option<String> {
    let bare = v.trim().strip_prefix('v').unwrap_or(v.trim());
    let (core, _) = bare.split_once('-').unwrap_or((bare, ""));
    let parts: Vec<&str> = core.split('.').collect();
    (parts.len() == 3 && parts.iter().all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())))
        .then(|| format!("v{bare}"))
}

fn failure_diag(stage: &str, end: &StageEnd, limit: Duration) -> Diagnostic {
    let (why, seen) = match end {
        StageEnd::Fatal(seen) => ("failed".to_string(), seen.clone()),
        StageEnd::TimedOut(seen) => (
            format!("did not pass within {} (`timeouts.read`)", crate::plugin::timeouts::format_duration(limit)),
            seen.clone(),
        ),
        StageEnd::Stopped(seen) => {
            return crate::resources::shared::common::interrupted(
                &format!("Stage {stage} had not passed yet (last seen {seen})."),
                "Nothing was changed; run the plan or apply again to check the cluster's health.",
            );
        }
    };
    Diagnostic::error(format!("Cluster health check failed at stage {stage}"), format!("Stage {stage} {why} {seen}."))
}

/// Plan-time checks of the Kubernetes stage's inputs (each where it is
/// known): the kubeconfig is required with `kubernetes = true` and must
/// hold a server, CA and client certificate; the version must be one;
/// either set without the stage only warns that nothing checks it.
fn validate_kubernetes(config: &Value, diags: &mut Diagnostics) {
    let on = config.attr("kubernetes").as_bool();
    let kubeconfig = config.attr("kubeconfig");
    if on == Some(true) && kubeconfig.is_null() {
        diags.error_at(
            AttributePath::attr("kubeconfig"),
            "Missing kubeconfig",
            "The stage kubernetes reads the cluster through the Kubernetes API: set `kubeconfig` (for example \
`proxtalos_cluster_kubeconfig.this.kubeconfig_raw`).",
        );
    }
    if let Some(text) = kubeconfig.as_str()
        && let Err(e) = Kubeconfig::parse(text)
    {
        diags.error_at(AttributePath::attr("kubeconfig"), "Unusable kubeconfig", e.to_string());
    }
    if let Some(v) = config.attr("kubernetes_version").as_str()
        && kubelet_version(v).is_none()
    {
        diags.error_at(
            AttributePath::attr("kubernetes_version"),
            "Not a Kubernetes version",
            format!("{v:?} is not a version like 1.33.1 or v1.33.1."),
        );
    }
    let stage_off = on == Some(false) || config.attr("kubernetes").is_null();
    if stage_off {
        for attr in ["kubeconfig", "kubernetes_version"] {
            if !config.attr(attr).is_null() && !config.attr(attr).is_unknown() {
                diags.warning_at(
                    AttributePath::attr(attr),
                    "Not checked",
                    format!("`{attr}` is set but `kubernetes` is not true, so the stage kubernetes does not run."),
                );
            }
        }
    }
}

/// The client and the expectations of the stage `kubernetes`, when it runs.
fn kubernetes_stage(
    config: &Value,
    control_planes: &[String],
) -> Result<Option<(kubernetes::Client, health::Expected)>, Diagnostic> {
    if config.attr("kubernetes").as_bool() != Some(true) {
        return Ok(None);
    }
    let summary = "Cannot check the cluster's Kubernetes health";
    let text =
        config.attr("kubeconfig").as_str().map(str::to_string).ok_or_else(|| {
            Diagnostic::error(summary, "`kubeconfig` is not set.").at(AttributePath::attr("kubeconfig"))
        })?;
    let kc = Kubeconfig::parse(&text)
        .map_err(|e| Diagnostic::error(summary, e.to_string()).at(AttributePath::attr("kubeconfig")))?;
    let client = kubernetes::Client::new(&kc, kubernetes::Timeouts::default())
        .map_err(|e| Diagnostic::error(summary, chain(&e)).at(AttributePath::attr("kubeconfig")))?;
    // Nodes are matched by address: a `host:port` entry is its host.
    let host = |a: &String| crate::talos::api::Address::parse(a).map(|x| x.host).unwrap_or_else(|_| a.clone());
    let want = health::Expected {
        control_planes: control_planes.iter().map(host).collect(),
        workers: strings(config.attr("worker_nodes")).iter().map(host).collect(),
        kubelet_version: config.attr("kubernetes_version").as_str().and_then(kubelet_version),
    };
    Ok(Some((client, want)))
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
        validate_kubernetes(&req.config, diags);
        if req.config.attr("control_plane_nodes").as_elements().is_some_and(<[Value]>::is_empty) {
            diags.error_at(
                AttributePath::attr("control_plane_nodes"),
                "No control planes",
                "List at least one control-plane node.",
            );
        }
    }

    async fn read(&self, ctx: &Context<ProxtalosData>, req: ReadDataRequest, resp: &mut ReadDataResponse) {
        let mut cfg = req.config.clone();
        cfg.set_attr("node", Value::string(""));
        let args = match NodeArgs::from_value(&cfg) {
            Ok(a) => a,
            Err(d) => return resp.diags.push(d),
        };
        let limit = timeouts::get(&req.config, Operation::Read, READ_TIMEOUT);
        let until = Until::after(limit, &ctx.stop);
        let cps = strings(req.config.attr("control_plane_nodes"));
        let mut nodes: Vec<Node> = cps.iter().map(|a| Node { address: a.clone(), control_plane: true }).collect();
        nodes.extend(
            strings(req.config.attr("worker_nodes")).into_iter().map(|a| Node { address: a, control_plane: false }),
        );
        let cp_nodes: Vec<Node> = cps.iter().map(|a| Node { address: a.clone(), control_plane: true }).collect();
        let want = cp_nodes.len();
        let kube = match kubernetes_stage(&req.config, &cps) {
            Ok(k) => k,
            Err(d) => return resp.diags.push(d),
        };
        let mut passed: Vec<&'static str> = Vec::new();
        for name in ["apid", "etcd", "services"] {
            let r = match name {
                "apid" => stage(name, &nodes, &until, |n| check_apid(&args, n)).await,
                "etcd" => stage(name, &cp_nodes, &until, |n| check_etcd(&args, n, want)).await,
                _ => stage(name, &nodes, &until, |n| check_services(&args, n)).await,
            };
            if let Err(end) = r {
                return resp.diags.push(failure_diag(name, &end, limit));
            }
            passed.push(name);
        }
        if let Some((client, want)) = kube {
            if let Err(end) = stage_kubernetes(&client, &want, &until).await {
                return resp.diags.push(failure_diag("kubernetes", &end, limit));
            }
            passed.push("kubernetes");
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

    fn config(kubernetes: Value, kubeconfig: Value, version: Value) -> Value {
        Value::object([
            ("kubernetes", kubernetes),
            ("kubeconfig", kubeconfig),
            ("kubernetes_version", version),
            ("control_plane_nodes", Value::List(vec![Value::string("10.0.0.11")])),
        ])
    }

    #[test]
    fn the_kubernetes_inputs_are_checked_at_plan_time_where_known() {
        let check = |v: Value| {
            let mut d = Diagnostics::default();
            validate_kubernetes(&v, &mut d);
            d.into_iter()
                .map(|d| (d.severity, d.path.map(|p| p.to_string()).unwrap_or_default(), d.detail))
                .collect::<Vec<_>>()
        };
        let on = Value::Bool(true);
        let missing = check(config(on.clone(), Value::Null, Value::Null));
        assert_eq!(missing.len(), 1);
        assert!(missing[0].1.contains("kubeconfig") && missing[0].2.contains("set `kubeconfig`"), "{missing:?}");
        let bad = check(config(on.clone(), Value::string("SECRET: ["), Value::string("latest")));
        assert_eq!(bad.len(), 2, "{bad:?}");
        assert!(bad.iter().all(|d| !d.2.contains("SECRET")), "{bad:?}");
        assert!(bad[1].1.contains("kubernetes_version") && bad[1].2.contains("\"latest\""), "{bad:?}");
        // Unknown until apply: nothing to say yet.
        assert!(check(config(on, Value::Unknown, Value::Unknown)).is_empty());
        // Set without the stage: a warning on each, nothing checks them.
        let off = check(config(Value::Null, Value::Null, Value::string("1.33.1")));
        assert_eq!(off.len(), 1);
        assert!(off[0].1.contains("kubernetes_version") && off[0].2.contains("does not run"), "{off:?}");
    }

    #[test]
    fn unhealthy_services_say_why_when_the_service_does() {
        use crate::talos::api::proto::machine::ServiceHealth;
        let svc = |id: &str, state: &str, healthy: bool, why: &str| crate::talos::api::ServiceInfo {
            id: id.into(),
            state: state.into(),
            events: None,
            health: Some(ServiceHealth { unknown: false, healthy, last_message: why.into(), last_change: None }),
        };
        let services = [
            svc("apid", "Running", true, ""),
            svc("etcd", "Failed", false, "etcd member cp-1 exited (exit status: 1): bind: address already in use"),
            svc("kubelet", "Running", false, ""),
        ];
        assert_eq!(
            unhealthy_services(&services, &["apid", "etcd", "kubelet", "trustd"]),
            [
                "etcd is Failed (etcd member cp-1 exited (exit status: 1): bind: address already in use)",
                "kubelet is Running",
                "trustd is not listed"
            ]
        );
    }

    #[test]
    fn kubelet_versions_take_either_form() {
        assert_eq!(kubelet_version("1.33.1").as_deref(), Some("v1.33.1"));
        assert_eq!(kubelet_version("v1.37.0-rc.0").as_deref(), Some("v1.37.0-rc.0"));
        for bad in ["1.33", "latest", "v1.x.0", ""] {
            assert_eq!(kubelet_version(bad), None, "{bad}");
        }
    }

    #[test]
    fn failures_name_stage_and_node() {
        let f = Failure { node: "10.0.0.12".into(), last: "1 etcd members".into() };
        let d = failure_diag("etcd", &StageEnd::TimedOut(f.observation()), Duration::from_secs(900));
        assert_eq!(d.summary, "Cluster health check failed at stage etcd");
        assert_eq!(d.detail, "Stage etcd did not pass within 15m (`timeouts.read`) on node 10.0.0.12: 1 etcd members.");
        let d = failure_diag("etcd", &StageEnd::Fatal(f.observation()), Duration::from_secs(900));
        assert_eq!(d.detail, "Stage etcd failed on node 10.0.0.12: 1 etcd members.");
        let d = failure_diag("etcd", &StageEnd::Stopped(f.observation()), Duration::from_secs(900));
        assert_eq!(d.summary, crate::resources::shared::common::INTERRUPTED);
        assert!(d.detail.contains("on node 10.0.0.12: 1 etcd members"), "{}", d.detail);
    }
}
