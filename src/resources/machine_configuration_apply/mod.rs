//! `proxtalos_machine_configuration_apply` (resource): applies a machine
//! configuration to a node and waits until the node runs it; reads the
//! active configuration back for drift; optionally resets on destroy.
//!
//! Capabilities: `validate_config` (exactly one configuration input, apply
//! mode, durations, addresses, the client CA against `machine.ca`),
//! `modify_plan` (hash, redacted rendering, best-effort dry run), `read`
//! (drift), `delete` (reset). No import: the configuration cannot be read
//! without the credentials in the configuration.

use std::time::Duration;

use async_trait::async_trait;

use crate::data::ProxtalosData;
use crate::plugin::timeouts::{self, Operation, parse_duration};
use crate::plugin::{
    ApplyResponse, AttributePath, Context, CreateRequest, DeleteRequest, Diagnostics, ModifyPlanRequest,
    ModifyPlanResponse, ReadRequest, ReadResponse, Resource, Schema, UpdateRequest, ValidateRequest, Value,
};
use crate::resources::shared::talos_node::{
    BACK_IN_MAINTENANCE, CONFIG_ACTIVE, CONFIGURED, NodeArgs, Reached, api_diag, attempt_timeouts, canonical,
    check_address, check_client_configuration, config_active, config_hash, deadline, in_maintenance, quick_timeouts,
    reach, reach_once, redacted, wait,
};
use crate::talos::api::wait::conditions;
use crate::talos::api::{ApiError, ApplyMode, ApplyOutcome, ApplyRequest, RebootMode, ResetRequest};
use crate::wait::Stop;

mod schema;
mod upgrade;
pub use schema::APPLY_MODES;
use schema::{CREATE_TIMEOUT, DELETE_TIMEOUT, UPDATE_TIMEOUT};
pub(crate) use upgrade::kubelet_version;

/// The resource.
#[derive(Debug, Default)]
pub struct MachineConfigurationApply;

/// The configuration text from config (or state): the plain attribute or
/// the write-only one. `Err(())` when unknown.
#[allow(clippy::result_unit_err)]
pub fn config_text(v: &Value) -> Result<Option<String>, ()> {
    for name in ["machine_configuration", "machine_configuration_wo"] {
        match v.attr(name) {
            Value::Unknown => return Err(()),
            Value::String(s) => return Ok(Some(s.clone())),
            _ => {}
        }
    }
    Ok(None)
}

/// `machine.ca.crt` (PEM) of a configuration, if it has one.
fn os_ca_of(text: &str) -> Option<String> {
    let docs = crate::talos::yaml::parse_documents(text).ok()?;
    docs.iter().find_map(|d| {
        let b64 = d.get("machine")?.get("ca")?.get("crt")?.as_str()?;
        crate::resources::shared::common::unb64(b64).ok()
    })
}

fn mode_name(m: ApplyMode) -> &'static str {
    match m {
        ApplyMode::Reboot => "reboot",
        ApplyMode::Auto => "auto",
        ApplyMode::NoReboot => "no_reboot",
        ApplyMode::Staged => "staged",
        ApplyMode::Try => "try",
    }
}

/// What the user asked for, as one request for a configured node running
/// Talos `minor`, plus whether the provider must reboot it afterwards
/// (v1.14 dropped the REBOOT mode).
pub fn plan_request(mode: &str, minor: u32, try_timeout: Duration) -> (ApplyMode, Option<Duration>, bool) {
    match mode {
        "reboot" if minor >= 14 => (ApplyMode::NoReboot, None, true),
        "reboot" => (ApplyMode::Reboot, None, false),
        "no_reboot" => (ApplyMode::NoReboot, None, false),
        "staged" => (ApplyMode::Staged, None, false),
        "try" => (ApplyMode::Try, Some(try_timeout), false),
        _ => (ApplyMode::Auto, None, false),
    }
}

fn minor_of(tag: &str) -> u32 {
    tag.trim_start_matches('v').split('.').nth(1).and_then(|m| m.parse().ok()).unwrap_or(0)
}

fn try_timeout(v: &Value) -> Duration {
    v.attr("try_timeout").as_str().and_then(|s| parse_duration(s).ok()).unwrap_or(Duration::from_secs(60))
}

/// Sends the configuration in the right mode for the node's state and
/// version. Returns the node's answer, the mode name to record and, when
/// the apply reboots the node, its boot id from before (read first: the
/// node may go down as soon as it replies).
async fn send(
    reached: &Reached,
    text: &str,
    v: &Value,
    dry_run: bool,
) -> Result<(ApplyOutcome, String, Option<String>), (ApiError, &'static str)> {
    let mode = v.attr("apply_mode").as_str().unwrap_or("auto");
    send_mode(reached, text, mode, try_timeout(v), dry_run).await
}

/// [`send`] with the apply mode given (`auto`, `reboot`, …).
pub(crate) async fn send_mode(
    reached: &Reached,
    text: &str,
    mode: &str,
    try_for: Duration,
    dry_run: bool,
) -> Result<(ApplyOutcome, String, Option<String>), (ApiError, &'static str)> {
    let config = text.as_bytes().to_vec();
    match reached {
        Reached::Maintenance(c) => {
            // The first apply installs; ≤ v1.12 maintenance accepts only
            // AUTO/REBOOT/TRY, so the chosen mode is for later changes.
            let req = ApplyRequest { config, mode: ApplyMode::Auto, dry_run, try_timeout: None };
            let out = c.apply_configuration(&req).await.map_err(|e| (e, "apply (maintenance mode)"))?;
            let name = mode_name(out.mode).to_string();
            Ok((out, name, None))
        }
        Reached::Normal(c) => {
            let tag = c.version_tag().await.map_err(|e| (e, "version check"))?;
            let minor = minor_of(&tag);
            let (m, try_for, reboot_after) = plan_request(mode, minor, try_for);
            // A reboot is known done when the boot id changes (how talosctl
            // tells, behaviour.md §6); v1.14's AUTO never reboots.
            let may_reboot = reboot_after || m == ApplyMode::Reboot || (m == ApplyMode::Auto && minor <= 13);
            let boot_before = if may_reboot && !dry_run {
                Some(c.boot_id().await.map_err(|e| (e, "read the boot id before applying"))?)
            } else {
                None
            };
            let req = ApplyRequest { config, mode: m, dry_run, try_timeout: try_for };
            let out = c.apply_configuration(&req).await.map_err(|e| (e, "apply"))?;
            let mut name = mode_name(out.mode).to_string();
            if reboot_after && !dry_run {
                c.reboot(RebootMode::Default).await.map_err(|e| (e, "reboot after apply (v1.14+)"))?;
                name = "reboot".to_string();
            }
            let rebooting = reboot_after || out.mode == ApplyMode::Reboot;
            Ok((out, name, boot_before.filter(|_| rebooting)))
        }
    }
}

fn fill_outputs(state: &mut Value, text: &str) {
    state.set_attr("machine_configuration_hash", Value::string(config_hash(text)));
    state.set_attr("machine_configuration_redacted", redacted(text).map_or(Value::Null, Value::string));
}

impl MachineConfigurationApply {
    /// Create and update: reach the node, apply, record, wait.
    async fn apply(&self, config: &Value, planned: &Value, op: Operation, stop: &Stop, resp: &mut ApplyResponse) {
        let limit =
            timeouts::get(config, op, if matches!(op, Operation::Create) { CREATE_TIMEOUT } else { UPDATE_TIMEOUT });
        let until = &deadline(limit, stop);
        let args = match NodeArgs::from_value(config) {
            Ok(a) => a,
            Err(d) => return resp.diags.push(d),
        };
        let text = match config_text(config) {
            Ok(Some(t)) => t,
            _ => {
                return resp.diags.error(
                    "No machine configuration",
                    "Set `machine_configuration` or `machine_configuration_wo` to a known value.",
                );
            }
        };
        let summary = format!("Cannot configure Talos node {}", args.node);
        let reached = match reach(&args, until).await {
            Ok(r) => r,
            Err(e) => return resp.diags.push(api_diag(&summary, "reach the node", &e)),
        };
        let maintenance = matches!(reached, Reached::Maintenance(_));
        // Maintenance mode has no server authentication (by Talos's design).
        // It is used to install a node this resource creates; a node it
        // configured before that now answers in maintenance mode was reset
        // behind Terraform's back, or something else answers at its address.
        // Sending it the configuration (CA keys, tokens) would hand secrets
        // to an unverified peer, so that needs an explicit replacement.
        if maintenance && matches!(op, Operation::Update) {
            return resp.diags.error(
                summary,
                format!(
                    "Node {} was configured by this resource but now answers in maintenance mode, where its identity \
                     cannot be verified. If it was reset on purpose, reinstall it with \
                     `terraform apply -replace=<this resource's address>`; otherwise check what answers at that address.",
                    args.node
                ),
            );
        }
        // What the node ran before: recorded until the upgrade step (if
        // any) says otherwise, so a stopped apply never claims a version.
        let versions = upgrade::Versions {
            planned: planned.attr("talos_version").clone(),
            prior: if resp.state.is_null() { Value::Null } else { resp.state.attr("talos_version").clone() },
            create: matches!(op, Operation::Create),
            reinstall: !resp.state.is_null()
                && upgrade::reinstall(resp.state.attr("machine_configuration_redacted").as_str(), &text).is_some(),
        };
        let record = |mode: &str, resp: &mut ApplyResponse| {
            let mut state = planned.clone();
            state.set_attr("id", Value::string(args.node.clone()));
            fill_outputs(&mut state, &text);
            state.set_attr("resolved_apply_mode", Value::string(mode.to_string()));
            state.set_attr("talos_version", versions.prior.clone());
            resp.state = state;
        };
        let (mode, boot_before, unanswered) = match send(&reached, &text, config, false).await {
            Ok((outcome, mode, boot_before)) => {
                // The node has the configuration: record it before waiting,
                // so an interrupted or timed-out wait keeps what was done
                // (tainted).
                record(&mode, resp);
                for w in outcome.warnings {
                    resp.diags.warning(format!("Talos node {} warns about the configuration", args.node), w);
                }
                (mode, boot_before, None)
            }
            // Sent in maintenance mode, but no reply: the node may have
            // taken it (it stops its maintenance listener as it installs).
            // Look rather than guess: the wait below tells.
            Err((e @ (ApiError::Unavailable { .. } | ApiError::Deadline { .. }), stage)) if maintenance => {
                tracing::warn!(node = %args.node, error = %e, "no reply to the maintenance-mode apply; waiting to see whether the node took it");
                (String::new(), None, Some((e, stage)))
            }
            Err((e, stage)) => return resp.diags.push(api_diag(&summary, stage, &e)),
        };
        let want = canonical(&text);
        let target = args.target(attempt_timeouts());
        let result = if maintenance {
            wait(&args.node, CONFIGURED, until, || config_active(&target, &want)).await
        } else if matches!(mode.as_str(), "staged" | "try") {
            // Staged: active after the next boot. Try: the node rolls back
            // by itself, so only its being up is checked.
            wait(&args.node, conditions::SECURE_API, until, || conditions::secure_api_up(&target)).await.map(|_| ())
        } else {
            let rebooted = match &boot_before {
                Some(before) => {
                    wait(&args.node, conditions::REBOOTED, until, || conditions::rebooted(&target, before)).await
                }
                None => Ok(()),
            };
            match rebooted {
                Ok(()) => wait(&args.node, CONFIG_ACTIVE, until, || config_active(&target, &want)).await,
                Err(e) => Err(e),
            }
        };
        let applied = result.is_ok();
        match (result, unanswered) {
            (Ok(()), None) => {}
            (Ok(()), Some(_)) => {
                // It did take it: record it with the mode the node reports
                // for an install (≤ v1.12 REBOOT, v1.13+ NO_REBOOT).
                let minor = match target.connect().await {
                    Ok(c) => c.version_tag().await.map(|t| minor_of(&t)).unwrap_or(0),
                    Err(_) => 0,
                };
                record(if minor >= 13 { "no_reboot" } else { "reboot" }, resp);
                resp.diags.warning(
                    format!("Talos node {} did not answer the apply", args.node),
                    "The connection broke before the node replied, but the node came up with this configuration, so the apply is recorded as done.",
                );
            }
            (Err(e), None) => {
                let stage = if maintenance { "wait for install, reboot and mutual TLS" } else { "wait after apply" };
                resp.diags.push(api_diag(&summary, stage, &e));
            }
            (Err(wait_error), Some((e, stage))) => {
                let mut d = api_diag(&summary, stage, &e);
                d.detail.push_str(&format!(
                    " The node did not reply, and it did not come up with this configuration either ({wait_error}). Run apply again: a node that took it answers over mutual TLS and gets it again."
                ));
                resp.diags.push(d);
            }
        }
        if applied && !resp.state.is_null() {
            upgrade::run(&args, config, &text, &versions, until, resp).await;
        }
    }
}

#[async_trait]
impl Resource<ProxtalosData> for MachineConfigurationApply {
    fn type_name(&self) -> &'static str {
        "proxtalos_machine_configuration_apply"
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
        if unknown_address_would_reset(req, resp) {
            return;
        }
        let text = config_text(&req.config);
        match &text {
            Ok(Some(t)) => fill_outputs(&mut resp.plan, t),
            _ => {
                resp.plan.set_attr("machine_configuration_hash", Value::Unknown);
                resp.plan.set_attr("machine_configuration_redacted", Value::Unknown);
            }
        }
        let known_text = match &text {
            Ok(Some(t)) => Some(t.as_str()),
            _ => None,
        };
        upgrade::plan(&req.prior, &req.config, &mut resp.plan, known_text, &mut resp.diags);
        upgrade::kubernetes_note(&req.prior, &req.config, known_text, &mut resp.diags);
        let changed = !resp.plan.semantically_equal(&req.prior);
        if !changed {
            return;
        }
        if !needs_apply(&req.prior, &resp.plan) {
            // Only `on_destroy` or `timeouts` changed: nothing is sent.
            resp.plan.set_attr("resolved_apply_mode", req.prior.attr("resolved_apply_mode").clone());
            return;
        }
        resp.plan.set_attr("resolved_apply_mode", Value::Unknown);
        if let Some(node) = req.config.attr("node").as_str() {
            resp.plan.set_attr("id", Value::string(node));
        }
        let (Ok(Some(text)), Ok(args)) = (text, NodeArgs::from_value(&req.config)) else { return };
        // Best effort: an unreachable node gives no diff and no error; a
        // node that rejects the configuration fails the plan. The answer is
        // a warning, not an attribute: it may differ between plan and apply.
        // A configured node is only ever sent its configuration over mutual
        // TLS: an unverified "maintenance" answer at its address gets nothing.
        let configured = !req.prior.is_null();
        let attempt = async {
            let reached = reach_once(&args, quick_timeouts()).await.map_err(|e| (e, "dry run"))?;
            if configured && matches!(reached, Reached::Maintenance(_)) {
                return Ok(None);
            }
            send(&reached, &text, &resp.plan, true).await.map(Some)
        };
        match tokio::time::timeout(Duration::from_secs(20), attempt).await {
            Ok(Ok(None)) => resp.diags.warning(
                format!("Talos node {} answers in maintenance mode", args.node),
                "It was configured by this resource; the apply will refuse to send its configuration to an \
                 unverified peer. If the node was reset on purpose, use `terraform apply -replace=<address>`.",
            ),
            Ok(Ok(Some((out, _, _)))) if !out.details.is_empty() => resp.diags.warning(
                format!("Dry run on Talos node {}", args.node),
                format!("What the node says about the planned configuration (secrets redacted):\n\n{}", out.details),
            ),
            Ok(Err((e, stage))) if e.is_invalid_argument() => {
                resp.diags.push(
                    api_diag(&format!("Talos node {} rejects the configuration", args.node), stage, &e)
                        .at(AttributePath::attr("machine_configuration")),
                );
            }
            _ => {}
        }
    }

    async fn create(&self, ctx: &Context<ProxtalosData>, req: CreateRequest, resp: &mut ApplyResponse) {
        resp.state = Value::Null;
        self.apply(&req.config, &req.planned, Operation::Create, &ctx.stop, resp).await;
    }

    async fn update(&self, ctx: &Context<ProxtalosData>, req: UpdateRequest, resp: &mut ApplyResponse) {
        if !needs_apply(&req.prior, &req.planned) {
            resp.state = req.planned;
            return;
        }
        resp.state = req.prior.clone();
        self.apply(&req.config, &req.planned, Operation::Update, &ctx.stop, resp).await;
    }

    async fn read(&self, _ctx: &Context<ProxtalosData>, req: ReadRequest, resp: &mut ReadResponse) {
        refresh(&req.state, resp).await;
    }

    async fn delete(&self, ctx: &Context<ProxtalosData>, req: DeleteRequest, diags: &mut Diagnostics) {
        let od = req.prior.attr("on_destroy");
        if od.attr("reset").as_bool() != Some(true) {
            return;
        }
        let graceful = od.attr("graceful").as_bool().unwrap_or(true);
        let reboot = od.attr("reboot").as_bool().unwrap_or(false);
        let args = match NodeArgs::from_value(&req.prior) {
            Ok(a) => a,
            Err(d) => return diags.push(d),
        };
        let until = &deadline(timeouts::get(&req.prior, Operation::Delete, DELETE_TIMEOUT), &ctx.stop);
        let summary = format!("Cannot reset Talos node {}", args.node);
        let reset = ResetRequest { reboot, ..ResetRequest::to_maintenance(graceful) };
        let client = match args.target(attempt_timeouts()).connect().await {
            Ok(c) => c,
            Err(e) => return diags.push(api_diag(&summary, "reset", &e)),
        };
        match client.reset(&reset).await {
            Ok(_) => {}
            // A node that starts resetting may cut the call before its reply
            // arrives; when it is to come back, coming back in maintenance
            // mode is the answer.
            Err(e) if reboot && e.is_transient() => {
                tracing::debug!(node = %args.node, error = %crate::talos::api::error::chain(&e), "reset call cut off; waiting for maintenance mode");
            }
            Err(e) => {
                let mut d = api_diag(&summary, "reset", &e);
                if matches!(e, ApiError::FailedPrecondition { .. }) && graceful {
                    d.detail.push_str(" The last etcd member cannot leave gracefully: set `on_destroy.graceful = false` and apply before destroying.");
                }
                return diags.push(d);
            }
        }
        if reboot {
            match wait(&args.node, BACK_IN_MAINTENANCE, until, || in_maintenance(&args)).await {
                Ok(()) => {}
                // The reset was sent and the node is resetting: what this
                // resource recorded is gone, so it leaves state.
                Err(ApiError::Stopped { .. }) => diags.warning(
                    format!("Talos node {} is resetting", args.node),
                    "Terraform asked the provider to stop before the node came back in maintenance mode; the reset \
was sent, so the resource is removed from state.",
                ),
                Err(e) => diags.push(api_diag(&summary, "wait for maintenance mode after reset", &e)),
            }
        }
    }
}

/// Whether the node must be sent its configuration: the configuration (its
/// hash, which a refresh reads back from the node), its version knob or
/// the apply mode changed. A change of `on_destroy` or `timeouts` alone
/// only updates state.
fn needs_apply(prior: &Value, plan: &Value) -> bool {
    prior.is_null()
        || [
            "machine_configuration_hash",
            "machine_configuration_wo_version",
            "apply_mode",
            "try_timeout",
            "endpoint",
            "talos_version",
        ]
        .iter()
        .any(|k| plan.attr(k).is_unknown() || !plan.attr(k).semantically_equal(prior.attr(k)))
}

/// A configured node whose `node` became unknown (say, its VM's address is
/// known only after an unrelated VM update) must be replaced; with
/// `on_destroy.reset` that replacement would wipe the node. Refuse such a
/// plan with the way forward, instead of resetting a node nobody asked to
/// reset. Returns true when it refused.
fn unknown_address_would_reset(req: &ModifyPlanRequest, resp: &mut ModifyPlanResponse) -> bool {
    if req.prior.is_null() || !req.config.attr("node").is_unknown() {
        return false;
    }
    let node = req.prior.attr("node").as_str().unwrap_or("?");
    let resets = req.prior.attr("on_destroy").attr("reset").as_bool() == Some(true);
    let why = format!(
        "The address given in `node` is not known until apply (it comes from something that this plan \
changes), so Terraform must plan to replace this resource, which was applied to Talos node {node}."
    );
    if !resets {
        resp.diags.warning_at(
            AttributePath::attr("node"),
            format!("Talos node {node} is re-applied because its address is unknown"),
            format!(
                "{why} Destroy only forgets the node (no `on_destroy.reset`) and create applies the \
configuration again. To avoid it, apply the change that makes the address unknown first (e.g. \
`terraform apply -target=<the VM>`), or set `node` to a value known at plan time."
            ),
        );
        return false;
    }
    resp.diags.error_at(
        AttributePath::attr("node"),
        format!("Refusing to reset Talos node {node} because its address is unknown"),
        format!(
            "{why} With `on_destroy.reset = true` the replacement would reset the node (wipe its configuration \
and data) although nothing asked for that. To go on without a reset: apply the change that makes the address \
unknown on its own first (e.g. `terraform apply -target=<the VM resource>`), then plan again; or set `node` to a \
value known at plan time (the node's static address). To reset and re-configure the node on purpose: \
`terraform destroy -target=<this resource>`, then apply."
        ),
    );
    true
}

/// Validate-time checks.
pub fn validate(config: &Value, diags: &mut Diagnostics) {
    timeouts::validate(config, diags);
    check_address(config, "node", diags);
    check_address(config, "endpoint", diags);
    check_client_configuration(config, diags);
    let plain = config.attr("machine_configuration");
    let wo = config.attr("machine_configuration_wo");
    if !plain.is_null() && !wo.is_null() {
        diags.error_at(
            AttributePath::attr("machine_configuration_wo"),
            "Two machine configurations",
            "Set either `machine_configuration` or `machine_configuration_wo`, not both.",
        );
    } else if plain.is_null() && wo.is_null() && !config.attr("machine_configuration_wo").is_unknown() {
        diags.error_at(
            AttributePath::attr("machine_configuration"),
            "No machine configuration",
            "Set `machine_configuration` (stored in state) or `machine_configuration_wo` (write-only).",
        );
    }
    if let Some(m) = config.attr("apply_mode").as_str()
        && !APPLY_MODES.contains(&m)
    {
        diags.error_at(
            AttributePath::attr("apply_mode"),
            "Unknown apply mode",
            format!(
                "{m:?} is not one of {}.",
                APPLY_MODES.iter().map(|m| format!("\"{m}\"")).collect::<Vec<_>>().join(", ")
            ),
        );
    }
    crate::resources::shared::common::duration_attr(config, "try_timeout", diags);
    upgrade::validate(config, diags);
    // The client must trust the node's certificate, which machine.ca issues.
    if let (Ok(Some(text)), Some(ca)) =
        (config_text(config), config.attr("client_configuration").attr("ca_certificate").as_str())
        && let (Some(os_ca), Ok(client_ca)) = (os_ca_of(&text), crate::resources::shared::common::unb64(ca))
        && os_ca.trim() != client_ca.trim()
    {
        diags.error_at(
            AttributePath::attr("client_configuration").and_attr("ca_certificate"),
            "Client configuration from another cluster",
            "`client_configuration.ca_certificate` is not the OS CA (`machine.ca`) of the machine configuration, so \
the node's certificate would never be trusted. Use the client configuration of the same \
`proxtalos_machine_secrets` the configuration was made from.",
        );
    }
}

/// Read: the node's active configuration replaces the stored one when it
/// differs (drift); an unreachable node keeps the state with a warning.
async fn refresh(state: &Value, resp: &mut ReadResponse) {
    let Ok(args) = NodeArgs::from_value(state) else { return };
    let staged = state.attr("resolved_apply_mode").as_str() == Some("staged");
    let read = async {
        let c = args.target(quick_timeouts()).connect().await?;
        let config = c.machine_config().await?;
        Ok::<_, ApiError>((config, c.version_tag().await.ok()))
    };
    let (running, version) = match tokio::time::timeout(Duration::from_secs(30), read).await {
        Ok(Ok(r)) => r,
        Ok(Err(e @ ApiError::ServerCertUntrusted { .. })) => {
            // A node that went back to maintenance mode (reset behind our
            // back) has no configuration: the next apply configures it.
            if matches!(reach_once(&args, quick_timeouts()).await, Ok(Reached::Maintenance(_))) {
                (None, None)
            } else {
                return warn_unreachable(&args.node, &e, resp);
            }
        }
        Ok(Err(e)) => return warn_unreachable(&args.node, &e, resp),
        Err(_) => {
            return resp.diags.warning(
                format!("Cannot refresh Talos node {}", args.node),
                "The node did not answer within 30s; the stored state is kept.",
            );
        }
    };
    let stored_hash = state.attr("machine_configuration_hash").as_str().map(str::to_string);
    let running_hash = running.as_deref().map(config_hash);
    let version = version.map_or(Value::Null, Value::string);
    if !version.semantically_equal(state.attr("talos_version")) {
        let mut s = if resp.state.is_null() { state.clone() } else { resp.state.clone() };
        s.set_attr("talos_version", version);
        resp.state = s;
    }
    if running_hash == stored_hash || (staged && running.is_some()) {
        return;
    }
    let mut s = if resp.state.is_null() { state.clone() } else { resp.state.clone() };
    match &running {
        Some(text) => {
            fill_outputs(&mut s, text);
            if !state.attr("machine_configuration").is_null() {
                s.set_attr("machine_configuration", Value::string(text.clone()));
            }
        }
        None => {
            s.set_attr("machine_configuration_hash", Value::Null);
            s.set_attr("machine_configuration_redacted", Value::Null);
            if !state.attr("machine_configuration").is_null() {
                s.set_attr("machine_configuration", Value::Null);
            }
        }
    }
    resp.state = s;
}

fn warn_unreachable(node: &str, e: &ApiError, resp: &mut ReadResponse) {
    resp.diags.warning(
        format!("Cannot refresh Talos node {node}"),
        format!(
            "The active configuration could not be read back, so drift is not checked and the stored state is kept: {}",
            crate::talos::api::error::chain(e)
        ),
    );
}

#[cfg(test)]
mod tests;
