//! `proxtalos_cluster_kubeconfig` (resource and ephemeral twin): the admin
//! kubeconfig a control plane mints on every Kubeconfig call, its parts for
//! the kubernetes/helm providers, and its expiry. The resource plans a
//! renewal when the certificate expires within `certificate_renewal_window`.
//!
//! Capabilities: `validate_config`, `modify_plan` (renewal with an
//! injectable clock). Read keeps the state: every call mints a new
//! certificate, so there is nothing to compare.

use std::time::{Duration, SystemTime};

use async_trait::async_trait;

use crate::data::ProxtalosData;
use crate::plugin::timeouts::{self, Operation};
use crate::plugin::{
    ApplyResponse, Attribute, AttributePath, Context, CreateRequest, DeleteRequest, Diagnostic, Diagnostics,
    EphemeralResource, ModifyPlanRequest, ModifyPlanResponse, OpenRequest, OpenResponse, ReadRequest, ReadResponse,
    Resource, Schema, Type, UpdateRequest, ValidateRequest, Value,
};
use crate::resources::shared::common::{Clock, duration_attr, rfc3339, system_clock};
use crate::resources::shared::talos_node::{
    NodeArgs, api_diag, attempt_timeouts, check_address, check_client_configuration, client_attr, deadline,
    endpoint_attr, node_attr, wait,
};
use crate::talos::api::ApiError;
use crate::talos::api::error::chain;
use crate::talos::api::wait::Until;
use crate::talos::api::wait::{Probe, Target};

/// Default create/update timeout.
pub const TIMEOUT: Duration = Duration::from_secs(10 * 60);
/// Default renewal window (30 days).
pub const DEFAULT_WINDOW: &str = "720h";
/// Condition name: the control plane hands out a kubeconfig.
pub const KUBECONFIG: &str = "the control plane to hand out a kubeconfig";

/// The resource; `clock` decides renewal (tests move it).
pub struct ClusterKubeconfig {
    clock: Clock,
}

impl Default for ClusterKubeconfig {
    fn default() -> Self {
        ClusterKubeconfig { clock: system_clock() }
    }
}

impl ClusterKubeconfig {
    /// The resource with another clock.
    pub fn with_clock(clock: Clock) -> Self {
        ClusterKubeconfig { clock }
    }
}

/// The ephemeral twin.
#[derive(Debug, Default)]
pub struct ClusterKubeconfigEphemeral;

fn client_config_type() -> Type {
    Type::object([
        ("host", Type::String),
        ("ca_certificate", Type::String),
        ("client_certificate", Type::String),
        ("client_key", Type::String),
    ])
}

fn outputs() -> Vec<Attribute> {
    vec![
        Attribute::string("kubeconfig_raw")
            .computed()
            .sensitive()
            .description("The admin kubeconfig YAML (client certificate CN `admin`, O `system:masters`)."),
        Attribute::new("kubernetes_client_configuration", client_config_type()).computed().sensitive().description(
            "The kubeconfig's parts for the `kubernetes` and `helm` providers: `host` (the API server URL) and \
`ca_certificate`, `client_certificate`, `client_key` as PEM.",
        ),
        Attribute::string("expires_at").computed().description("When the client certificate expires (RFC 3339, UTC)."),
    ]
}

fn inputs() -> Vec<Attribute> {
    vec![node_attr("to ask (a control plane)"), endpoint_attr(), client_attr()]
}

fn schema() -> Schema {
    let mut attrs = vec![Attribute::string("id").computed().use_state_for_unknown().description("The node address.")];
    attrs.extend(inputs());
    attrs.push(Attribute::string("certificate_renewal_window").optional().default(DEFAULT_WINDOW).description(
        "A plan made when the client certificate expires within this duration fetches a new kubeconfig (an \
in-place update). Default `\"720h\"` (30 days). Renewal happens only when someone plans and applies inside the \
window; keep it well below the certificate lifetime (`cluster.adminKubeconfig.certLifetime`, one year by default), \
else every plan renews.",
    ));
    attrs.extend(outputs());
    Schema::new(
        "Fetches the admin kubeconfig from a control-plane node (the Talos Kubeconfig call; etcd need not be up) \
and plans a new one when its client certificate comes within `certificate_renewal_window` of expiry. The \
kubeconfig is sensitive and stored in state; the ephemeral twin keeps it out of state.",
        attrs,
    )
    .blocks(vec![timeouts::block(&[(Operation::Create, TIMEOUT), (Operation::Update, TIMEOUT)])])
}

/// The parts of a kubeconfig and the client certificate's expiry.
pub fn parse_kubeconfig(text: &str) -> Result<(Value, SystemTime), String> {
    let k = crate::kubernetes::Kubeconfig::parse(text).map_err(|e| e.to_string())?;
    let cert = crate::talos::pki::parse_certificate(&k.client_certificate_pem).map_err(|e| e.to_string())?;
    let expiry = crate::talos::pki::not_after(&cert);
    let parts = Value::object([
        ("host", k.server.into()),
        ("ca_certificate", k.ca_pem.into()),
        ("client_certificate", k.client_certificate_pem.into()),
        ("client_key", k.client_key_pem.expose().to_string().into()),
    ]);
    Ok((parts, expiry))
}

async fn kubeconfig_probe(target: &Target) -> Result<Probe<String>, ApiError> {
    let attempt = async { target.connect().await?.kubeconfig().await };
    match attempt.await {
        Ok(k) => Ok(Probe::Ready(k)),
        Err(e @ ApiError::ServerCertUntrusted { .. }) => Ok(Probe::NotYet(format!(
            "{} (the node still presents its maintenance certificate: not configured yet or installing)",
            chain(&e)
        ))),
        Err(e) => Err(e),
    }
}

/// Fetches and fills the three outputs into `v`.
async fn fetch(config: &Value, limit: &Until, v: &mut Value) -> Result<(), Diagnostic> {
    let args = NodeArgs::from_value(config)?;
    let target = args.target(attempt_timeouts());
    let summary = format!("Cannot fetch the kubeconfig from Talos node {}", args.node);
    let text = wait(&args.node, KUBECONFIG, limit, || kubeconfig_probe(&target)).await.map_err(|e| {
        let mut d = api_diag(&summary, "kubeconfig", &e);
        if matches!(e, ApiError::Unimplemented { .. }) {
            d.detail.push_str(" Only control-plane nodes hand out a kubeconfig.");
        }
        d
    })?;
    let (parts, expiry) = parse_kubeconfig(&text)
        .map_err(|e| Diagnostic::error(summary.clone(), format!("Node {}, stage: kubeconfig.\n\n{e}", args.node)))?;
    v.set_attr("kubeconfig_raw", Value::string(text));
    v.set_attr("kubernetes_client_configuration", parts);
    v.set_attr("expires_at", Value::string(rfc3339(expiry)));
    v.set_attr("id", Value::string(args.node));
    Ok(())
}

/// Whether the stored certificate expires within the window at `now`.
pub fn needs_renewal(prior: &Value, plan: &Value, now: SystemTime) -> bool {
    let mut ignored = Diagnostics::new();
    let Some(window) = duration_attr(plan, "certificate_renewal_window", &mut ignored) else { return false };
    let crt = prior.attr("kubernetes_client_configuration").attr("client_certificate");
    match crt.as_str().map(crate::talos::pki::parse_certificate) {
        Some(Ok(c)) => crate::talos::pki::not_after(&c) <= now + window,
        _ => true,
    }
}

fn validate(config: &Value, diags: &mut Diagnostics) {
    timeouts::validate(config, diags);
    check_address(config, "node", diags);
    check_address(config, "endpoint", diags);
    check_client_configuration(config, diags);
    duration_attr(config, "certificate_renewal_window", diags);
}

#[async_trait]
impl Resource<ProxtalosData> for ClusterKubeconfig {
    fn type_name(&self) -> &'static str {
        "proxtalos_cluster_kubeconfig"
    }

    fn schema(&self) -> Schema {
        schema()
    }

    fn validate_config(&self, req: &ValidateRequest, diags: &mut Diagnostics) {
        validate(&req.config, diags);
    }

    async fn modify_plan(&self, _ctx: &Context<ProxtalosData>, req: &ModifyPlanRequest, resp: &mut ModifyPlanResponse) {
        if resp.plan.is_null() || req.prior.is_null() {
            return;
        }
        // The kubeconfig changes only when it is renewed: any other change
        // (the window, the timeouts, a re-issued Talos client certificate)
        // keeps it, so nothing downstream sees it as unknown.
        let renew = needs_renewal(&req.prior, &resp.plan, (self.clock)());
        for a in ["kubeconfig_raw", "kubernetes_client_configuration", "expires_at"] {
            let v = if renew { Value::Unknown } else { req.prior.attr(a).clone() };
            resp.plan.set_attr(a, v);
        }
    }

    async fn create(&self, ctx: &Context<ProxtalosData>, req: CreateRequest, resp: &mut ApplyResponse) {
        let mut state = req.planned.clone();
        match fetch(
            &req.config,
            &deadline(timeouts::get(&req.config, Operation::Create, TIMEOUT), &ctx.stop),
            &mut state,
        )
        .await
        {
            Ok(()) => resp.state = state,
            Err(d) => {
                resp.state = Value::Null;
                resp.diags.push(d);
            }
        }
    }

    async fn read(&self, _ctx: &Context<ProxtalosData>, _req: ReadRequest, _resp: &mut ReadResponse) {}

    async fn update(&self, ctx: &Context<ProxtalosData>, req: UpdateRequest, resp: &mut ApplyResponse) {
        let mut state = req.planned.clone();
        if !state.attr("kubeconfig_raw").is_unknown() {
            resp.state = state;
            return;
        }
        match fetch(
            &req.config,
            &deadline(timeouts::get(&req.config, Operation::Update, TIMEOUT), &ctx.stop),
            &mut state,
        )
        .await
        {
            Ok(()) => resp.state = state,
            Err(d) => {
                resp.state = req.prior;
                resp.diags.push(d);
            }
        }
    }

    async fn delete(&self, _ctx: &Context<ProxtalosData>, _req: DeleteRequest, _diags: &mut Diagnostics) {}
}

#[async_trait]
impl EphemeralResource<ProxtalosData> for ClusterKubeconfigEphemeral {
    fn type_name(&self) -> &'static str {
        "proxtalos_cluster_kubeconfig"
    }

    fn schema(&self) -> Schema {
        let mut attrs = inputs();
        attrs.push(Attribute::string("timeout").optional().description(
            "How long to wait for the control plane to hand out the kubeconfig, e.g. `\"5m\"`. Default `\"10m\"`.",
        ));
        attrs.extend(outputs());
        Schema::new(
            "Fetches the admin kubeconfig from a control-plane node like the `proxtalos_cluster_kubeconfig` \
resource, but never stores it in plan or state (Terraform ≥ 1.10): use it in provider blocks and write-only \
attributes. A new client certificate is minted on every run.",
            attrs,
        )
    }

    fn validate_config(&self, req: &ValidateRequest, diags: &mut Diagnostics) {
        check_address(&req.config, "node", diags);
        check_address(&req.config, "endpoint", diags);
        check_client_configuration(&req.config, diags);
        duration_attr(&req.config, "timeout", diags);
    }

    async fn open(&self, ctx: &Context<ProxtalosData>, req: OpenRequest, resp: &mut OpenResponse) {
        let mut ignored = Diagnostics::new();
        let limit = duration_attr(&req.config, "timeout", &mut ignored).unwrap_or(TIMEOUT);
        let mut result = req.config.clone();
        match fetch(&req.config, &deadline(limit, &ctx.stop), &mut result).await {
            Ok(()) => {
                if let Some(m) = result.attrs_mut() {
                    m.remove("id");
                }
                resp.result = result;
            }
            Err(d) => resp.diags.push(d.at(AttributePath::attr("node"))),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::resources::shared::common::{b64, null_object};

    #[test]
    fn schemas_are_consistent() {
        assert!(schema().check().is_empty(), "{:?}", schema().check());
        let e = EphemeralResource::schema(&ClusterKubeconfigEphemeral);
        assert!(e.check().is_empty(), "{:?}", e.check());
    }

    fn cert_pem(valid_for: Duration) -> String {
        use crate::talos::pki::{CertTemplate, SigningKey, issue_leaf, self_signed_ca};
        let mut rng = rand_core::UnwrapErr(getrandom::SysRng);
        let now = SystemTime::now();
        let ca_key = SigningKey::generate_p256(&mut rng);
        let t = |is_ca, d| CertTemplate { subject: "O=kubernetes".into(), is_ca, not_before: now, not_after: now + d };
        let ca = self_signed_ca(&mut rng, &ca_key, &t(true, Duration::from_secs(86400 * 3650))).unwrap();
        let ca_cert = crate::talos::pki::parse_certificate(&ca).unwrap();
        let key = SigningKey::generate_p256(&mut rng);
        issue_leaf(&mut rng, &t(false, valid_for), &key, &ca_cert, &ca_key).unwrap()
    }

    #[test]
    fn kubeconfig_parts_and_renewal_window() {
        let crt = cert_pem(Duration::from_secs(40 * 86400));
        let text = format!(
            "apiVersion: v1\nclusters:\n  - name: c\n    cluster:\n      server: https://10.0.0.10:6443\n      certificate-authority-data: {}\nusers:\n  - name: u\n    user:\n      client-certificate-data: {}\n      client-key-data: {}\n",
            b64("CA"),
            b64(&crt),
            b64("KEY")
        );
        let (parts, expiry) = parse_kubeconfig(&text).unwrap();
        assert_eq!(parts.attr("host").as_str(), Some("https://10.0.0.10:6443"));
        assert_eq!(parts.attr("client_key").as_str(), Some("KEY"));
        let mut prior = null_object(&schema().value_type());
        prior.set_attr("kubernetes_client_configuration", parts);
        let mut plan = prior.clone();
        plan.set_attr("certificate_renewal_window", "720h".into());
        let now = SystemTime::now();
        assert!(!needs_renewal(&prior, &plan, now));
        assert!(needs_renewal(&prior, &plan, now + Duration::from_secs(11 * 86400)));
        assert!(expiry > now);
        assert!(parse_kubeconfig("clusters: []").is_err());
    }
}
