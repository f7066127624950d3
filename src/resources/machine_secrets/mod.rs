//! `proxtalos_machine_secrets` (resource): the cluster's secrets bundle,
//! generated locally, and an `os:admin` client certificate renewed at plan
//! time when it comes within a window of expiry.
//!
//! Capabilities: `validate_config`, `modify_plan` (renewal, contract
//! default), `import` (a `secrets.yaml` path or its content). No identity:
//! the bundle has no remote id to look up.

use std::time::{Duration, SystemTime};

use async_trait::async_trait;

use crate::data::ProxtalosData;
use crate::plugin::diag::error_chain;
use crate::plugin::{
    ApplyResponse, Attribute, AttributePath, Context, CreateRequest, DeleteRequest, Diagnostics, ImportRequest,
    ImportResponse, ModifyPlanRequest, ModifyPlanResponse, ReadRequest, ReadResponse, Resource, Schema, UpdateRequest,
    ValidateRequest, Value,
};
use crate::resources::shared::common::{Clock, duration_attr, null_object, os_rng, str_attr, system_clock};
use crate::resources::shared::talos_model::{
    CLIENT_CONFIGURATION_DOC, DEFAULT_CLIENT_TTL, DEFAULT_RENEWAL_WINDOW, LATEST_CONTRACT, MACHINE_SECRETS_DOC,
    bundle_to_value, client_configuration_type, client_to_value, expiry_value, infer_contract, issue_client,
    machine_secrets_type, value_to_bundle, value_to_client,
};
use crate::talos::VersionContract;
use crate::talos::client_config::ClientConfiguration;
use crate::talos::secrets::SecretsBundle;

/// The resource. `clock` is the time source for certificate validity and
/// the renewal check (tests inject a fixed or moved clock).
pub struct MachineSecrets {
    clock: Clock,
}

impl Default for MachineSecrets {
    fn default() -> Self {
        MachineSecrets { clock: system_clock() }
    }
}

impl MachineSecrets {
    /// The resource with another clock.
    pub fn with_clock(clock: Clock) -> Self {
        MachineSecrets { clock }
    }

    fn now(&self) -> SystemTime {
        (self.clock)()
    }
}

pub(crate) const TALOS_VERSION_DOC: &str = "Talos version contract the bundle is generated for: `v1.10` … `v1.15` (a patch \
level such as `v1.13.2` is accepted). Default: `v1.14`. The contract only decides how a \
*new* bundle is generated (before v1.14 the cluster ID uses the URL-safe base64 alphabet), and a bundle from any \
contract works with every supported Talos version. So changing `talos_version` later is an in-place update that only \
records the new value: it never regenerates the secrets of a running cluster. (siderolabs/terraform-provider-talos \
replaces the whole bundle on a downgrade; here that would rotate every CA, so it is left to an explicit \
`terraform apply -replace`.) For an imported bundle the value is inferred: `v1.13` when the cluster ID is URL-safe \
base64, else `v1.14`; leave it unset to keep the plan empty after import.";

pub(crate) const TTL_DOC: &str = "Validity of the `os:admin` client certificate, as a duration such as `\"8760h\"` \
(the default, one year, like `talosctl gen config`). Changing it re-issues the certificate.";

/// The schema attributes, shared with the ephemeral twin where noted.
fn attributes() -> Vec<Attribute> {
    vec![
        Attribute::string("talos_version").optional().computed().use_state_for_unknown().description(TALOS_VERSION_DOC),
        Attribute::string("client_certificate_ttl").optional().default(DEFAULT_CLIENT_TTL).description(TTL_DOC),
        Attribute::string("client_certificate_renewal_window").optional().default(DEFAULT_RENEWAL_WINDOW).description(
            "When the client certificate expires within this duration of the time a plan is made, the plan re-issues \
it (an in-place update showing `client_certificate_expires_at` as known after apply). Default `\"720h\"` (30 days). \
Must be shorter than `client_certificate_ttl`, else every plan would renew. Renewal happens only when someone plans \
and applies inside the window; schedule a plan well within it.",
        ),
        Attribute::new("machine_secrets", machine_secrets_type())
            .computed()
            .sensitive()
            .use_state_for_unknown()
            .description(format!("{MACHINE_SECRETS_DOC} Pass it to `proxtalos_machine_configuration`.")),
        Attribute::string("secrets_yaml").computed().sensitive().use_state_for_unknown().description(
            "The bundle as `secrets.yaml`, exactly as `talosctl gen secrets` writes it (for `talosctl gen config \
--with-secrets` or a secret store).",
        ),
        Attribute::new("client_configuration", client_configuration_type())
            .computed()
            .sensitive()
            .use_state_for_unknown()
            .description(format!("{CLIENT_CONFIGURATION_DOC} Pass it to `proxtalos_client_configuration`.")),
        Attribute::string("client_certificate_expires_at").computed().use_state_for_unknown().description(
            "When the client certificate expires (RFC 3339, UTC). Shown as known after apply when a plan renews it.",
        ),
    ]
}

/// Checks `talos_version` and the two durations (shared with the ephemeral twin).
pub(crate) fn validate_common(config: &Value, diags: &mut Diagnostics) {
    if let Some(v) = str_attr(config, "talos_version")
        && let Err(e) = v.parse::<VersionContract>()
    {
        diags.error_at(AttributePath::attr("talos_version"), "Unknown Talos version contract", e.to_string());
    }
    let ttl = duration_attr(config, "client_certificate_ttl", diags);
    if ttl.is_some_and(|d| d < Duration::from_secs(3600)) {
        diags.error_at(
            AttributePath::attr("client_certificate_ttl"),
            "Client certificate validity too short",
            "`client_certificate_ttl` must be at least \"1h\".",
        );
    }
    let window = duration_attr(config, "client_certificate_renewal_window", diags);
    let ttl = ttl.or_else(|| crate::plugin::timeouts::parse_duration(DEFAULT_CLIENT_TTL).ok());
    if let (Some(w), Some(t)) = (window, ttl)
        && w >= t
    {
        diags.error_at(
            AttributePath::attr("client_certificate_renewal_window"),
            "Renewal window not shorter than the certificate validity",
            format!(
                "A renewal window of {} with a validity of {} would renew the client certificate on every plan. \
Make the window shorter than `client_certificate_ttl`.",
                crate::plugin::timeouts::format_duration(w),
                crate::plugin::timeouts::format_duration(t)
            ),
        );
    }
}

fn ttl_of(v: &Value) -> Duration {
    let mut ignored = Diagnostics::new();
    duration_attr(v, "client_certificate_ttl", &mut ignored).unwrap_or(crate::talos::client_config::DEFAULT_VALIDITY)
}

/// Generates a bundle for `contract` and its client credentials (RSA-4096
/// key generation takes a moment, so it runs off the async workers).
pub(crate) async fn generate(
    contract: VersionContract,
    ttl: Duration,
    now: SystemTime,
) -> Result<(SecretsBundle, ClientConfiguration), String> {
    let job = tokio::task::spawn_blocking(move || {
        let mut rng = os_rng()?;
        let bundle = SecretsBundle::generate(contract, &mut rng, now).map_err(|e| error_chain(&e))?;
        let client = ClientConfiguration::generate(&bundle.certs.os, &["os:admin"], ttl, &mut rng, now)
            .map_err(|e| error_chain(&e))?;
        Ok((bundle, client))
    });
    job.await.map_err(|e| format!("secret generation stopped: {e}"))?
}

/// Whether a plan from `prior` to `plan` must re-issue the client certificate.
pub(crate) fn needs_new_client(prior: &Value, plan: &Value, now: SystemTime) -> bool {
    let (pt, nt) = (prior.attr("client_certificate_ttl"), plan.attr("client_certificate_ttl"));
    if pt.as_str().is_some() && nt.as_str().is_some() && pt != nt {
        return true;
    }
    let mut ignored = Diagnostics::new();
    let Some(window) = duration_attr(plan, "client_certificate_renewal_window", &mut ignored) else {
        return false; // unknown window: decide at the next plan
    };
    match value_to_client(prior.attr("client_configuration")) {
        Ok(c) => c.needs_renewal(now, window).unwrap_or(true),
        Err(_) => true,
    }
}

fn fill_client(state: &mut Value, client: &ClientConfiguration) {
    state.set_attr("client_configuration", client_to_value(client));
    state.set_attr("client_certificate_expires_at", expiry_value(client));
}

#[async_trait]
impl Resource<ProxtalosData> for MachineSecrets {
    fn type_name(&self) -> &'static str {
        "proxtalos_machine_secrets"
    }

    fn schema(&self) -> Schema {
        Schema::new(
            "Generates a Talos machine secrets bundle (cluster identity, tokens, the etcd, Kubernetes, front-proxy \
and Talos API CAs, the service-account key) locally, like `talosctl gen secrets`, plus an `os:admin` client \
certificate for the Talos API. No node is contacted. A cluster made with `talosctl` is adopted by importing its \
`secrets.yaml`. The client certificate is re-issued by a plan made within `client_certificate_renewal_window` of its \
expiry. Everything secret is in state (sensitive): keep state encrypted, or use the ephemeral \
`proxtalos_machine_secrets` with a secret store.",
            attributes(),
        )
    }

    fn validate_config(&self, req: &ValidateRequest, diags: &mut Diagnostics) {
        validate_common(&req.config, diags);
    }

    async fn modify_plan(&self, _ctx: &Context<ProxtalosData>, req: &ModifyPlanRequest, resp: &mut ModifyPlanResponse) {
        if resp.plan.is_null() {
            return;
        }
        if resp.plan.attr("talos_version").is_unknown() && req.config.attr("talos_version").is_null() {
            let v = if req.prior.is_null() {
                Value::string(LATEST_CONTRACT.to_string())
            } else {
                req.prior.attr("talos_version").clone()
            };
            resp.plan.set_attr("talos_version", v);
        }
        if req.prior.is_null() {
            return;
        }
        if needs_new_client(&req.prior, &resp.plan, self.now()) {
            resp.plan.set_attr("client_configuration", Value::Unknown);
            resp.plan.set_attr("client_certificate_expires_at", Value::Unknown);
        }
    }

    async fn create(&self, _ctx: &Context<ProxtalosData>, req: CreateRequest, resp: &mut ApplyResponse) {
        let contract = str_attr(&req.planned, "talos_version")
            .and_then(|v| v.parse::<VersionContract>().ok())
            .unwrap_or(LATEST_CONTRACT);
        match generate(contract, ttl_of(&req.planned), self.now()).await {
            Ok((bundle, client)) => {
                let mut state = req.planned.clone();
                state.set_attr("talos_version", Value::string(contract.to_string()));
                state.set_attr("machine_secrets", bundle_to_value(&bundle));
                state.set_attr("secrets_yaml", Value::string(bundle.to_yaml()));
                fill_client(&mut state, &client);
                resp.state = state;
            }
            Err(e) => resp.diags.error("Cannot generate machine secrets", e),
        }
    }

    async fn read(&self, _ctx: &Context<ProxtalosData>, _req: ReadRequest, _resp: &mut ReadResponse) {
        // The bundle lives only in state; there is nothing remote to refresh.
    }

    async fn update(&self, _ctx: &Context<ProxtalosData>, req: UpdateRequest, resp: &mut ApplyResponse) {
        let mut state = req.planned.clone();
        if state.attr("client_configuration").is_unknown() || state.attr("client_certificate_expires_at").is_unknown() {
            let issued = value_to_bundle(req.prior.attr("machine_secrets"))
                .map_err(|e| format!("the stored bundle is unusable: {e}"))
                .and_then(|b| issue_client(&b, ttl_of(&state), self.now()));
            match issued {
                Ok(client) => fill_client(&mut state, &client),
                Err(e) => {
                    resp.diags.error_at(
                        AttributePath::attr("client_configuration"),
                        "Cannot renew the client certificate",
                        e,
                    );
                    resp.state = req.prior;
                    return;
                }
            }
        }
        resp.state = state;
    }

    async fn delete(&self, _ctx: &Context<ProxtalosData>, _req: DeleteRequest, _diags: &mut Diagnostics) {
        // Nothing outside state: removing it from state is the whole delete.
    }

    async fn import(&self, _ctx: &Context<ProxtalosData>, req: ImportRequest, resp: &mut ImportResponse) {
        match import_state(&req.id, self.now()) {
            Ok(state) => resp.state = state,
            Err((summary, detail)) => resp.diags.error(summary, detail),
        }
    }
}

/// The import id is a path to `secrets.yaml` or the YAML itself.
fn read_import_id(id: &str) -> Result<String, (String, String)> {
    let trimmed = id.trim();
    if trimmed.contains('\n') || trimmed.starts_with("cluster:") {
        return Ok(id.to_string());
    }
    // Never echo an id that may be secret material rather than a path.
    let shown = if trimmed.len() > 200 || trimmed.contains(['{', ':', '=']) {
        "the given id".to_string()
    } else {
        format!("{trimmed:?}")
    };
    std::fs::read_to_string(trimmed).map_err(|e| {
        (
            "Cannot read secrets.yaml".to_string(),
            format!(
                "The import id is taken as a path to a secrets.yaml written by `talosctl gen secrets` (or the YAML \
itself); reading {shown} failed: {e}"
            ),
        )
    })
}

/// The state an import of `id` produces (a fresh client certificate is issued).
pub(crate) fn import_state(id: &str, now: SystemTime) -> Result<Value, (String, String)> {
    let text = read_import_id(id)?;
    let bundle = SecretsBundle::from_yaml(&text).map_err(|e| {
        (
            "Malformed secrets.yaml".to_string(),
            format!("{} (expected the file `talosctl gen secrets` writes)", error_chain(&e)),
        )
    })?;
    let ttl = crate::talos::client_config::DEFAULT_VALIDITY;
    let client = issue_client(&bundle, ttl, now).map_err(|e| ("Cannot issue a client certificate".to_string(), e))?;
    let mut state = null_object(&MachineSecrets::default().schema().value_type());
    state.set_attr("talos_version", Value::string(infer_contract(&bundle).to_string()));
    state.set_attr("client_certificate_ttl", DEFAULT_CLIENT_TTL.into());
    state.set_attr("client_certificate_renewal_window", DEFAULT_RENEWAL_WINDOW.into());
    state.set_attr("machine_secrets", bundle_to_value(&bundle));
    state.set_attr("secrets_yaml", Value::string(bundle.to_yaml()));
    fill_client(&mut state, &client);
    Ok(state)
}

#[cfg(test)]
pub(crate) mod tests;
