//! `proxtalos_cluster` (resource): one Talos cluster, created and then
//! rolled forward one safe step at a time (issue 14).
//!
//! - `schema.rs`: attributes and blocks; `model.rs`: members, installer,
//!   contract, each node's rendered configuration, the `nodes` statuses;
//! - `plan.rs`: the steps a change needs (pure); `rollout.rs`: runs them
//!   with a health gate after each; `ops.rs`: one operation on one node.
//!
//! The plan compares each node's recorded status (`nodes`, refreshed from
//! the nodes) with what the configuration renders, so the steps shown are
//! the steps the apply runs, and a stopped rollout continues where it
//! stopped.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::future::join_all;

use crate::data::ProxtalosData;
use crate::plugin::timeouts::{self, Operation, parse_duration};
use crate::plugin::{
    ApplyResponse, AttributePath, Context, CreateRequest, DeleteRequest, Diagnostic, Diagnostics, ImportRequest,
    ImportResponse, ModifyPlanRequest, ModifyPlanResponse, ReadRequest, ReadResponse, Resource, Schema, UpdateRequest,
    ValidateRequest, Value,
};
use crate::resources::shared::common::interrupted;
use crate::resources::shared::talos_model::value_to_client;
use crate::resources::shared::talos_node::{attempt_timeouts, check_client_configuration, config_hash, deadline};
use crate::talos::api::ResetRequest;
use crate::talos::client_config::ClientConfiguration;

mod checks;
pub mod import;
pub mod model;
pub mod ops;
pub mod plan;
pub mod rollout;
pub mod schema;

use model::{Inputs, Member, Role, Status};
use plan::{Step, Wanted};
use rollout::{Failed, Policy, Rollout, StepError};

/// The resource.
#[derive(Debug, Default)]
pub struct Cluster;

/// `v1.33.1` from `1.33.1` or `v1.33.1`.
fn kube_v(s: &str) -> String {
    format!("v{}", s.trim().trim_start_matches('v'))
}

/// What the configuration wants, rendered.
struct Desired {
    members: Vec<Member>,
    contract: String,
    installer: String,
    talos_version: String,
    kubernetes: (String, String),
    now_texts: BTreeMap<String, String>,
    final_texts: BTreeMap<String, String>,
    planned: BTreeMap<String, Status>,
    /// Per member: the hash a node that has no configuration change runs
    /// (its `now` configuration with the installer of the version it runs:
    /// an upgrade's new installer tag is not a configuration change).
    unchanged: BTreeMap<String, String>,
}

impl Desired {
    fn steps(&self, prior: &BTreeMap<String, Status>, snapshots: bool) -> Vec<Step> {
        let w = Wanted {
            members: &self.members,
            hashes: &self.unchanged,
            talos_version: &self.talos_version,
            installer: model::repository(&self.installer),
            kubernetes: Some(self.kubernetes.clone()),
            snapshots,
        };
        plan::steps(prior, &w)
    }
}

/// Renders what `config` wants, from `prior` (Null on create). None while
/// something it needs is unknown, or when it cannot (errors in `diags`).
fn desired(config: &Value, prior: &Value, diags: &mut Diagnostics) -> Option<Desired> {
    let members = model::members(config)?;
    if !config.attr("machine_secrets").is_fully_known() {
        return None;
    }
    let talos_version = config.attr("talos_version").as_str()?.to_string();
    let to = kube_v(config.attr("kubernetes_version").as_str()?);
    if !["cluster_name", "cluster_endpoint", "config_patches", "control_plane_patches", "worker_patches"]
        .iter()
        .all(|k| config.attr(k).is_fully_known())
    {
        return None;
    }
    let contract = model::contract(config, prior)?;
    let installer = model::installer(config, &talos_version)?;
    let recorded = model::statuses(prior);
    // The Kubernetes version running: the lowest any node's configuration
    // names (a stopped upgrade-k8s leaves some at the new one).
    let from = recorded
        .values()
        .map(|s| s.kubernetes_version.clone())
        .filter(|v| !v.is_empty())
        .min_by_key(|v| model::version_key(v))
        .unwrap_or_else(|| to.clone());
    let mut now_texts = BTreeMap::new();
    let mut final_texts = BTreeMap::new();
    let mut planned = BTreeMap::new();
    let mut unchanged = BTreeMap::new();
    let mut failed = false;
    for m in &members {
        let own = recorded.get(&m.name).map(|s| s.kubernetes_version.clone()).filter(|v| !v.is_empty());
        let at = |k8s: &str, installer: &str| {
            let inputs = Inputs {
                config,
                contract: contract.clone(),
                installer: installer.to_string(),
                kubernetes_version: k8s.trim_start_matches('v').to_string(),
            };
            model::render(&inputs, m)
        };
        let own_k8s = own.as_deref().unwrap_or(&from);
        // A node that runs another version, or was installed from another
        // installer (a new schematic), is upgraded: its configuration
        // "without a change" names the installer it runs, so that the
        // installer alone is not also a configuration change.
        let wanted_repo = model::repository(&installer);
        let running = recorded.get(&m.name).and_then(|s| {
            let other_repo = !s.installer.is_empty() && s.installer != wanted_repo;
            let v = s.talos_version.as_str();
            (model::release(v) && (v != talos_version || other_repo)).then(|| {
                let repo = if s.installer.is_empty() { wanted_repo } else { s.installer.as_str() };
                format!("{repo}:{v}")
            })
        });
        if let Some(i) = running {
            match at(own_k8s, &i) {
                Ok(t) => {
                    unchanged.insert(m.name.clone(), config_hash(&t));
                }
                Err(e) => {
                    e.into_iter().for_each(|d| diags.push(d));
                    failed = true;
                    continue;
                }
            }
        }
        let (now, fin) = match (at(own_k8s, &installer), at(&to, &installer)) {
            (Ok(n), Ok(f)) => (n, f),
            (Err(e), _) | (_, Err(e)) => {
                e.into_iter().for_each(|d| diags.push(d));
                failed = true;
                continue;
            }
        };
        planned.insert(m.name.clone(), Status::of(m, &talos_version, &fin));
        // A node that took the new configuration before its upgrade
        // stopped has no configuration change left either.
        let now_hash = config_hash(&now);
        if recorded.get(&m.name).is_some_and(|s| s.config_hash == now_hash) {
            unchanged.insert(m.name.clone(), now_hash);
        } else {
            unchanged.entry(m.name.clone()).or_insert(now_hash);
        }
        now_texts.insert(m.name.clone(), now);
        final_texts.insert(m.name.clone(), fin);
    }
    if failed {
        return None;
    }
    Some(Desired {
        members,
        contract,
        installer,
        talos_version,
        kubernetes: (from, to),
        now_texts,
        final_texts,
        planned,
        unchanged,
    })
}

fn policy(config: &Value) -> Policy {
    let r = config.attr("rollout");
    let dur =
        |k: &str, d: u64| r.attr(k).as_str().and_then(|s| parse_duration(s).ok()).unwrap_or(Duration::from_secs(d));
    let num = |k: &str, d: i64| r.attr(k).as_i64().unwrap_or(d).max(1) as usize;
    Policy {
        worker_parallelism: num("worker_parallelism", 1),
        health_timeout: dur("health_timeout", 600),
        drain: r.attr("drain").as_bool().unwrap_or(true),
        drain_timeout: dur("drain_timeout", 300),
        drain_options: crate::resources::shared::talos_node::drain_options(r),
        rollback: r.attr("rollback_on_failure").as_bool().unwrap_or(true),
        snapshot_dir: r.attr("etcd_snapshot_dir").as_str().map(std::path::PathBuf::from),
        snapshot_keep: num("etcd_snapshot_keep", 5),
    }
}

fn talosconfig(config: &Value, members: &[Member], creds: &ClientConfiguration) -> Option<String> {
    let name = config.attr("cluster_name").as_str()?;
    let cps: Vec<String> = members.iter().filter(|m| m.role == Role::ControlPlane).map(|m| m.address.clone()).collect();
    Some(crate::talos::client_config::talosconfig(name, &cps, &cps, creds))
}

fn api_port(config: &Value) -> u16 {
    config
        .attr("cluster_endpoint")
        .as_str()
        .and_then(|e| e.rsplit(':').next())
        .and_then(|p| p.trim_end_matches('/').parse().ok())
        .unwrap_or(6443)
}

fn validate(config: &Value, diags: &mut Diagnostics) {
    timeouts::validate(config, diags);
    check_client_configuration(config, diags);
    model::validate_members(config, diags);
    if let Some(v) = config.attr("talos_version").as_str()
        && (!model::release(v) || v.parse::<crate::talos::VersionContract>().is_err())
    {
        diags.error_at(
            AttributePath::attr("talos_version"),
            "Not a Talos release",
            format!("{v:?} is not a Talos release this provider knows, such as \"v1.14.2\" (v1.10 … v1.15)."),
        );
    }
    if let Some(v) = config.attr("config_contract").as_str()
        && v.parse::<crate::talos::VersionContract>().is_err()
    {
        diags.error_at(
            AttributePath::attr("config_contract"),
            "Unknown contract",
            format!("{v:?} is not one of v1.10 … v1.15."),
        );
    }
    if let Some(v) = config.attr("kubernetes_version").as_str()
        && crate::day2::kubernetes_upgrade::minor_of(v).is_none()
    {
        diags.error_at(
            AttributePath::attr("kubernetes_version"),
            "Not a Kubernetes version",
            format!("{v:?} is not a version such as \"1.33.1\"."),
        );
    }
    if let Some(e) = config.attr("cluster_endpoint").as_str()
        && !e.starts_with("https://")
    {
        diags.error_at(
            AttributePath::attr("cluster_endpoint"),
            "Invalid endpoint",
            format!("{e:?} is not an https:// URL such as \"https://10.0.0.10:6443\"."),
        );
    }
    if !config.attr("installer_image").is_null() && !config.attr("schematic_id").is_null() {
        diags.error_at(
            AttributePath::attr("schematic_id"),
            "Two installers",
            "Set `installer_image` or `schematic_id`, not both.",
        );
    }
    if let Some(id) = config.attr("schematic_id").as_str()
        && !(id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()))
    {
        diags.error_at(
            AttributePath::attr("schematic_id"),
            "Not a schematic id",
            format!("{id:?} is not an Image Factory schematic id (64 lowercase hexadecimal characters)."),
        );
    }
    if let Some(i) = config.attr("installer_image").as_str()
        && i.rsplit('/').next().is_some_and(|last| last.contains(':') || last.contains('@'))
    {
        diags.error_at(
            AttributePath::attr("installer_image"),
            "Installer image with a tag",
            format!("{i:?} has a tag or digest; give the repository only (the tag is `talos_version`)."),
        );
    }
    let r = config.attr("rollout");
    let at = |k: &str| AttributePath::attr("rollout").and_attr(k);
    for k in ["health_timeout", "drain_timeout"] {
        if let Some(s) = r.attr(k).as_str()
            && let Err(e) = parse_duration(s)
        {
            diags.error_at(at(k), "Invalid duration", format!("{s:?} is not a duration such as \"5m\": {e}"));
        }
    }
    for k in ["worker_parallelism", "etcd_snapshot_keep"] {
        if let Some(n) = r.attr(k).as_i64()
            && n < 1
        {
            diags.error_at(at(k), "Must be at least 1", format!("`{k}` is {n}."));
        }
    }
    if let (Some(n), Some(workers)) = (r.attr("worker_parallelism").as_i64(), config.attr("worker").as_elements())
        && n > 1
        && n as usize > workers.len()
    {
        diags.error_at(
            at("worker_parallelism"),
            "Batch larger than the workers",
            format!("`worker_parallelism` is {n} but the cluster has {} workers.", workers.len()),
        );
    }
}

fn creds_of(v: &Value) -> Result<ClientConfiguration, Diagnostic> {
    value_to_client(v.attr("client_configuration")).map_err(|e| {
        Diagnostic::error("Invalid client configuration", e.to_string()).at(AttributePath::attr("client_configuration"))
    })
}

/// Each node's current status, one call per node (unreachable: None).
async fn observe_all(r: &Rollout, members: &[Member]) -> BTreeMap<String, Option<Status>> {
    join_all(members.iter().map(|m| async move { (m.name.clone(), r.observe(m).await) })).await.into_iter().collect()
}

/// Removals of nodes that no longer answer (their VM was destroyed
/// first: Terraform destroys a removed VM before it updates what depends
/// on it unless the VM has `create_before_destroy`) go first, so that no
/// health gate waits for a node that is gone; the others keep their place.
async fn gone_first(creds: &ClientConfiguration, steps: Vec<Step>, recorded: &BTreeMap<String, Status>) -> Vec<Step> {
    let probes = join_all(steps.iter().map(|s| async move {
        match (s, s.node().and_then(|n| recorded.get(n))) {
            (Step::Remove { .. }, Some(st)) => {
                let t = ops::args(creds, &st.address).target(crate::resources::shared::talos_node::quick_timeouts());
                ops::running_version(&t).await.is_err()
            }
            _ => false,
        }
    }))
    .await;
    let (gone, rest): (Vec<_>, Vec<_>) = steps.into_iter().zip(probes).partition(|(_, g)| *g);
    if !gone.is_empty() {
        tracing::warn!(nodes = ?gone.iter().filter_map(|(s, _)| s.node()).collect::<Vec<_>>(), "removed nodes do not answer; removing what they left first");
    }
    gone.into_iter().chain(rest).map(|(s, _)| s).collect()
}

fn failed_diag(cluster: &str, f: &Failed, nodes: &BTreeMap<String, Status>) -> Diagnostic {
    tracing::warn!(cluster = %cluster, error = %crate::plugin::diag::error_chain(&f.error), "rollout stopped");
    let at: Vec<String> =
        nodes.iter().map(|(n, s)| format!("{n}: Talos {} ({})", s.talos_version, s.kubernetes_version)).collect();
    let where_ = f.node.as_ref().map(|n| format!(" at node {n}")).unwrap_or_default();
    let detail = format!(
        "Step \"{}\": {}.\n\nThe nodes now: {}. State records this, so the next apply continues from here (after fixing \
the cause, or changing the version back).",
        f.step,
        f.error,
        at.join("; ")
    );
    if f.error.is_stopped() {
        return interrupted(
            &format!("The rollout of cluster {cluster} stopped{where_}. {detail}"),
            "Run apply again to continue.",
        );
    }
    let summary = match &f.error {
        StepError::RolledBack { .. } => format!("Rollout of cluster {cluster} stopped{where_}: rolled back"),
        _ => format!("Rollout of cluster {cluster} stopped{where_}"),
    };
    Diagnostic::error(summary, detail)
}

impl Cluster {
    async fn apply(
        &self,
        config: &Value,
        planned: &Value,
        prior: &Value,
        op: Operation,
        stop: &crate::wait::Stop,
        resp: &mut ApplyResponse,
    ) {
        let create = prior.is_null();
        let limit = timeouts::get(config, op, if create { schema::CREATE_TIMEOUT } else { schema::UPDATE_TIMEOUT });
        let until = deadline(limit, stop);
        let name = config.attr("cluster_name").as_str().unwrap_or_default().to_string();
        let creds = match creds_of(config) {
            Ok(c) => c,
            Err(d) => return resp.diags.push(d),
        };
        let mut diags = Diagnostics::default();
        let mut filled = model::statuses(prior);
        import::fill_unread(&creds, &mut filled).await;
        let mut prior = prior.clone();
        if !prior.is_null() {
            prior.set_attr("nodes", model::statuses_value(&filled));
        }
        let prior = &prior;
        let Some(d) = desired(config, prior, &mut diags) else {
            if !diags.has_errors() {
                diags.error("Cannot render the cluster", "Some inputs are still unknown at apply.");
            }
            return diags.into_iter().for_each(|x| resp.diags.push(x));
        };
        let mut recorded = filled;
        let p = policy(config);
        let steps = d.steps(&recorded, p.snapshot_dir.is_some());
        let mut r = Rollout {
            creds,
            cluster: name.clone(),
            members: d.members.clone(),
            now_texts: d.now_texts.clone(),
            final_texts: d.final_texts.clone(),
            talos_version: d.talos_version.clone(),
            installer: d.installer.clone(),
            kubernetes: d.kubernetes.clone(),
            policy: p,
            api_port: api_port(config),
            kubeconfig: prior.attr("kubeconfig").as_str().map(str::to_string),
        };
        let steps = gone_first(&r.creds, steps, &recorded).await;
        if !create && r.kubeconfig.is_none() {
            // An imported cluster: its kubeconfig, from a control plane.
            if let Some(cp) = recorded.values().find(|s| s.role == Role::ControlPlane.as_str()) {
                match ops::kubeconfig(&ops::args(&r.creds, &cp.address), &until).await {
                    Ok(k) => r.kubeconfig = Some(k),
                    Err(e) => {
                        return resp
                            .diags
                            .error(format!("Cannot fetch the kubeconfig of cluster {name}"), e.to_string());
                    }
                }
            }
        }
        let mut done = Vec::new();
        let result = if create {
            r.create(&mut recorded, &until).await
        } else {
            r.run(&steps, &mut recorded, &until, &mut done).await
        };
        let mut state = planned.clone();
        state.set_attr("id", Value::string(name.clone()));
        state.set_attr("config_contract", Value::string(d.contract.clone()));
        if let Some(k) = &r.kubeconfig {
            state.set_attr("kubeconfig", Value::string(k.clone()));
        }
        match result {
            Ok(()) => {
                // What the nodes report now is what state records; the
                // planned statuses are what a rollout that ended well gives.
                let seen = observe_all(&r, &d.members).await;
                for (n, s) in seen {
                    if let Some(s) = s {
                        recorded.insert(n, s);
                    }
                }
                recorded.retain(|n, _| d.planned.contains_key(n));
                for (n, want) in &d.planned {
                    if recorded.get(n) != Some(want) {
                        let got = recorded.get(n).map(|s| {
                            format!(
                                "Talos {}, configuration {}",
                                s.talos_version,
                                &s.config_hash[..12.min(s.config_hash.len())]
                            )
                        });
                        resp.diags.error(
                            format!("Node {n} did not reach the planned state"),
                            format!(
                                "The rollout ended, but node {n} reports {} instead of Talos {} with configuration {}. \
Run apply again; if it persists, the node changes its configuration by itself (a controller or a person).",
                                got.unwrap_or_else(|| "nothing".into()),
                                want.talos_version,
                                &want.config_hash[..12]
                            ),
                        );
                    }
                }
                state.set_attr("nodes", model::statuses_value(&recorded));
            }
            Err(f) => {
                if create && r.kubeconfig.is_none() {
                    state.set_attr("kubeconfig", Value::Null);
                }
                state.set_attr("nodes", model::statuses_value(&recorded));
                if !create && !done.iter().any(|s| matches!(s, Step::Kubernetes { .. })) {
                    state.set_attr("kubernetes_version", prior.attr("kubernetes_version").clone());
                }
                resp.diags.push(failed_diag(&name, &f, &recorded));
            }
        }
        resp.state = state;
    }
}

#[async_trait]
impl Resource<ProxtalosData> for Cluster {
    fn type_name(&self) -> &'static str {
        "proxtalos_cluster"
    }

    fn schema(&self) -> Schema {
        schema::schema()
    }

    fn validate_config(&self, req: &ValidateRequest, diags: &mut Diagnostics) {
        validate(&req.config, diags);
    }

    async fn modify_plan(&self, _ctx: &Context<ProxtalosData>, req: &ModifyPlanRequest, resp: &mut ModifyPlanResponse) {
        if resp.plan.is_null() {
            return;
        }
        let plan = &mut resp.plan;
        if let Some(n) = req.config.attr("cluster_name").as_str() {
            plan.set_attr("id", Value::string(n));
        }
        let create = req.prior.is_null();
        let kubeconfig = req.prior.attr("kubeconfig");
        plan.set_attr("kubeconfig", if kubeconfig.is_null() { Value::Unknown } else { kubeconfig.clone() });
        // An imported cluster's nodes are read here, with the
        // configuration's credentials (the import had none).
        let mut prior_value = req.prior.clone();
        let mut prior = model::statuses(&req.prior);
        if !create && let Ok(creds) = creds_of(&req.config) {
            import::fill_unread(&creds, &mut prior).await;
            prior_value.set_attr("nodes", model::statuses_value(&prior));
        }
        let Some(d) = desired(&req.config, &prior_value, &mut resp.diags) else {
            for k in ["nodes", "rollout_steps", "talosconfig"] {
                plan.set_attr(k, Value::Unknown);
            }
            if req.config.attr("config_contract").is_null() {
                plan.set_attr(
                    "config_contract",
                    model::contract(&req.config, &prior_value).map_or(Value::Unknown, Value::string),
                );
            }
            return;
        };
        plan.set_attr("config_contract", Value::string(d.contract.clone()));
        plan.set_attr(
            "talosconfig",
            creds_of(&req.config)
                .ok()
                .and_then(|c| talosconfig(&req.config, &d.members, &c))
                .map_or(Value::Unknown, Value::string),
        );
        let snapshots = !req.config.attr("rollout").attr("etcd_snapshot_dir").is_null();
        let dir = req.config.attr("rollout").attr("etcd_snapshot_dir").as_str().map(str::to_string);
        checks::versions_go_together(&d, &prior, &mut resp.diags);
        if create
            && req.config.attr("on_destroy").attr("reset").as_bool() == Some(true)
            && let Ok(creds) = creds_of(&req.config)
        {
            let name = req.config.attr("cluster_name").as_str().unwrap_or("?");
            checks::warn_tainted_reset(&creds, &d.members, name, &mut resp.diags).await;
        }
        let lines = if create {
            let all: Vec<&str> = d.members.iter().map(|m| m.name.as_str()).collect();
            let first = d.members.iter().find(|m| m.role == Role::ControlPlane).map_or("?", |m| m.name.as_str());
            vec![
                format!("1. install Talos {} on {}", d.talos_version, all.join(", ")),
                format!("2. {first}: bootstrap etcd"),
                "3. wait until the cluster is healthy, fetch the kubeconfig".to_string(),
            ]
        } else {
            checks::against_prior(&d, &prior, &mut resp.diags);
            let steps = d.steps(&prior, snapshots);
            checks::warn_rejoins(&steps, &prior, &d.members, &mut resp.diags);
            if let Some(endpoint) = req.config.attr("cluster_endpoint").as_str() {
                checks::warn_endpoint_removed(&steps, &prior, endpoint, &mut resp.diags);
            }
            plan::lines(&steps, &d.talos_version, dir.as_deref())
        };
        let same = !create && lines.is_empty();
        plan.set_attr(
            "rollout_steps",
            if same {
                req.prior.attr("rollout_steps").clone()
            } else {
                Value::List(lines.iter().map(Value::string).collect())
            },
        );
        let planned = model::statuses_value(&d.planned);
        plan.set_attr(
            "nodes",
            if same && planned.semantically_equal(req.prior.attr("nodes")) {
                req.prior.attr("nodes").clone()
            } else {
                planned
            },
        );
        if !create && !lines.is_empty() {
            resp.diags.warning(
                format!("Rollout of cluster {}", req.config.attr("cluster_name").as_str().unwrap_or("?")),
                format!(
                    "The apply takes these steps, in order, with a health gate after each node:\n{}",
                    lines.join("\n")
                ),
            );
        }
    }

    async fn create(&self, ctx: &Context<ProxtalosData>, req: CreateRequest, resp: &mut ApplyResponse) {
        resp.state = Value::Null;
        self.apply(&req.config, &req.planned, &Value::Null, Operation::Create, &ctx.stop, resp).await;
    }

    async fn update(&self, ctx: &Context<ProxtalosData>, req: UpdateRequest, resp: &mut ApplyResponse) {
        resp.state = req.prior.clone();
        self.apply(&req.config, &req.planned, &req.prior, Operation::Update, &ctx.stop, resp).await;
    }

    async fn read(&self, _ctx: &Context<ProxtalosData>, req: ReadRequest, resp: &mut ReadResponse) {
        let Ok(creds) = creds_of(&req.state) else { return };
        let recorded = model::statuses(&req.state);
        let seen = join_all(recorded.iter().map(|(n, s)| {
            let a = ops::args(&creds, &s.address);
            async move { (n.clone(), tokio::time::timeout(Duration::from_secs(30), ops::observe(&a)).await) }
        }))
        .await;
        let mut nodes = recorded.clone();
        let mut unreachable = Vec::new();
        for (n, r) in seen {
            let Some(s) = nodes.get_mut(&n) else { continue };
            match r {
                Ok(Ok((version, active))) => s.observed(version, active),
                // Back in maintenance mode (reset behind Terraform's back):
                // no configuration, so the next plan installs it again.
                Ok(Err(crate::talos::api::ApiError::ServerCertUntrusted { .. })) => {
                    s.config_hash = String::new();
                }
                Ok(Err(e)) => unreachable.push(format!("{n}: {}", crate::talos::api::error::chain(&e))),
                Err(_) => unreachable.push(format!("{n}: no answer within 30s")),
            }
        }
        if !unreachable.is_empty() {
            resp.diags.warning(
                "Cannot refresh every node of the cluster",
                format!(
                    "What these nodes run is not checked; their stored status is kept: {}.",
                    unreachable.join("; ")
                ),
            );
        }
        if nodes != recorded {
            let mut s = req.state.clone();
            s.set_attr("nodes", model::statuses_value(&nodes));
            resp.state = s;
        }
    }

    async fn import(&self, _ctx: &Context<ProxtalosData>, req: ImportRequest, resp: &mut ImportResponse) {
        match import::parse(&req.id) {
            Ok((cluster, nodes)) => resp.state = import::state(&schema::schema().value_type(), &cluster, &nodes),
            Err(why) => resp.diags.error(
                "Invalid import id",
                format!(
                    "The import id names the cluster and its nodes, \
`<cluster>/<cp name>=<address>,…[/<worker name>=<address>,…]`, e.g. \
`homelab/cp-1=10.0.0.11,cp-2=10.0.0.12,cp-3=10.0.0.13/worker-1=10.0.0.21`: {why}."
                ),
            ),
        }
    }

    async fn delete(&self, ctx: &Context<ProxtalosData>, req: DeleteRequest, diags: &mut Diagnostics) {
        if req.prior.attr("on_destroy").attr("reset").as_bool() != Some(true) {
            return;
        }
        let creds = match creds_of(&req.prior) {
            Ok(c) => c,
            Err(d) => return diags.push(d),
        };
        let until = deadline(timeouts::get(&req.prior, Operation::Delete, schema::DELETE_TIMEOUT), &ctx.stop);
        let nodes = model::statuses(&req.prior);
        // Workers first, then control planes; the whole cluster goes, so
        // nobody leaves etcd (the last member could not).
        for role in ["worker", "controlplane"] {
            let resets = join_all(nodes.iter().filter(|(_, s)| s.role == role).map(|(n, s)| {
                let a = ops::args(&creds, &s.address);
                async move {
                    let reset = ResetRequest { reboot: false, ..ResetRequest::to_maintenance(false) };
                    let r = async { a.target(attempt_timeouts()).connect().await?.reset(&reset).await }.await;
                    (n.clone(), r)
                }
            }))
            .await;
            for (n, r) in resets {
                match r {
                    Ok(_) => {}
                    Err(e) if e.is_transient() => {}
                    Err(e) => diags.error(format!("Cannot reset node {n}"), crate::talos::api::error::chain(&e)),
                }
            }
            if until.stop.is_stopped() {
                return diags.push(interrupted("The cluster was being reset.", "Run destroy again."));
            }
        }
    }
}

#[cfg(test)]
mod tests;
