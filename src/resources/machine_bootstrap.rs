//! `proxtalos_machine_bootstrap` (resource): runs Bootstrap on one control
//! plane, idempotently: `AlreadyExists` means the cluster is bootstrapped
//! (also after an interrupted apply), `FailedPrecondition` is retried until
//! the timeout, a worker or a node without etcd fails at once.
//!
//! Capabilities: `validate_config`, `import` (by node address). Read keeps
//! the state (a bootstrapped cluster cannot become un-bootstrapped in a way
//! Bootstrap could repair), delete only forgets.

use std::time::Duration;

use async_trait::async_trait;

use crate::data::ProxtalosData;
use crate::plugin::timeouts::{self, Operation};
use crate::plugin::{
    ApplyResponse, Attribute, Context, CreateRequest, DeleteRequest, Diagnostic, Diagnostics, ImportRequest,
    ImportResponse, ReadRequest, ReadResponse, Resource, Schema, UpdateRequest, ValidateRequest, Value,
};
use crate::resources::shared::common::null_object;
use crate::resources::shared::talos_node::{
    NodeArgs, api_diag, attempt_timeouts, check_address, check_client_configuration, client_attr, deadline,
    endpoint_attr, node_attr, wait,
};
use crate::talos::api::ApiError;
use crate::talos::api::error::chain;
use crate::talos::api::wait::{Probe, Target, conditions};

/// Default create timeout.
pub const CREATE_TIMEOUT: Duration = Duration::from_secs(10 * 60);

/// The resource.
#[derive(Debug, Default)]
pub struct MachineBootstrap;

fn schema() -> Schema {
    Schema::new(
        "Bootstraps etcd on one control-plane node: run it once per cluster, after the node's \
`proxtalos_machine_configuration_apply` (use `depends_on`). Idempotent: a cluster that is already bootstrapped \
(`AlreadyExists`, e.g. after an apply that was interrupted after the call) counts as done, and a node that is not \
ready yet (`FailedPrecondition`, or still installing) is retried until `timeouts.create`. A worker fails at once. \
Import marks an existing cluster as bootstrapped: `terraform import proxtalos_machine_bootstrap.this 10.0.0.11`.",
        vec![
            Attribute::string("id").computed().use_state_for_unknown().description("The node address."),
            node_attr("to bootstrap (a control plane)"),
            endpoint_attr(),
            client_attr(),
        ],
    )
    .blocks(vec![timeouts::block(&[(Operation::Create, CREATE_TIMEOUT)])])
}

/// One Bootstrap attempt: done, not yet, or fatal (a worker, on every
/// version: [`ApiError::is_control_plane_only`]).
pub async fn bootstrap_probe(target: &Target) -> Result<Probe<()>, ApiError> {
    match conditions::bootstrapped(target).await {
        Err(e @ ApiError::ServerCertUntrusted { .. }) => Ok(Probe::NotYet(format!(
            "{} (the node still presents its maintenance certificate: not configured yet or installing)",
            chain(&e)
        ))),
        other => other,
    }
}

fn worker_diag(node: &str, e: &ApiError) -> Diagnostic {
    Diagnostic::error(
        format!("Talos node {node} cannot be bootstrapped"),
        format!(
            "Node {node}, stage: bootstrap.\n\n{}. Bootstrap runs on a control-plane node only; point `node` at \
one of the control planes.",
            chain(e)
        ),
    )
}

#[async_trait]
impl Resource<ProxtalosData> for MachineBootstrap {
    fn type_name(&self) -> &'static str {
        "proxtalos_machine_bootstrap"
    }

    fn schema(&self) -> Schema {
        schema()
    }

    fn validate_config(&self, req: &ValidateRequest, diags: &mut Diagnostics) {
        timeouts::validate(&req.config, diags);
        check_address(&req.config, "node", diags);
        check_address(&req.config, "endpoint", diags);
        check_client_configuration(&req.config, diags);
    }

    async fn create(&self, ctx: &Context<ProxtalosData>, req: CreateRequest, resp: &mut ApplyResponse) {
        resp.state = Value::Null;
        let args = match NodeArgs::from_value(&req.config) {
            Ok(a) => a,
            Err(d) => return resp.diags.push(d),
        };
        let until = deadline(timeouts::get(&req.config, Operation::Create, CREATE_TIMEOUT), &ctx.stop);
        let target = args.target(attempt_timeouts());
        match wait(&args.node, conditions::BOOTSTRAPPED, &until, || bootstrap_probe(&target)).await {
            Ok(()) => {
                let mut state = req.planned.clone();
                state.set_attr("id", Value::string(args.node.clone()));
                resp.state = state;
            }
            Err(e) if e.is_control_plane_only() => resp.diags.push(worker_diag(&args.node, &e)),
            Err(e) => resp.diags.push(api_diag(&format!("Cannot bootstrap Talos node {}", args.node), "bootstrap", &e)),
        }
    }

    async fn read(&self, _ctx: &Context<ProxtalosData>, _req: ReadRequest, _resp: &mut ReadResponse) {}

    async fn update(&self, _ctx: &Context<ProxtalosData>, req: UpdateRequest, resp: &mut ApplyResponse) {
        // Only the way the node is reached changed; bootstrap is not re-run.
        resp.state = req.planned;
    }

    async fn delete(&self, _ctx: &Context<ProxtalosData>, _req: DeleteRequest, _diags: &mut Diagnostics) {}

    async fn import(&self, _ctx: &Context<ProxtalosData>, req: ImportRequest, resp: &mut ImportResponse) {
        let node = req.id.trim();
        if crate::talos::api::Address::parse(node).is_err() || node.contains("://") {
            return resp.diags.error(
                "Invalid import id",
                format!("The import id is the control-plane node address, e.g. \"10.0.0.11\"; got {node:?}."),
            );
        }
        let mut state = null_object(&schema().value_type());
        state.set_attr("id", Value::string(node));
        state.set_attr("node", Value::string(node));
        resp.state = state;
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

    #[tokio::test]
    async fn import_takes_a_node_address() {
        let ctx = crate::resources::machine_secrets::tests::ctx();
        let mut resp = ImportResponse::default();
        MachineBootstrap.import(&ctx, ImportRequest { id: "10.0.0.11".into(), identity: None }, &mut resp).await;
        assert!(resp.diags.is_empty());
        assert_eq!(resp.state.attr("node").as_str(), Some("10.0.0.11"));
        let mut resp = ImportResponse::default();
        MachineBootstrap.import(&ctx, ImportRequest { id: "https://x".into(), identity: None }, &mut resp).await;
        assert!(resp.diags.has_errors());
    }
}
