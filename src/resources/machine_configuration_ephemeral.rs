//! `proxtalos_machine_configuration` (ephemeral resource): the data source's
//! rendering, never stored in plan or state (Terraform ≥ 1.10). Pair it with
//! the ephemeral `proxtalos_machine_secrets` and write-only attributes.

use async_trait::async_trait;

use super::machine_configuration::{DESCRIPTION, attributes, fill, render_off_thread, validate};
use crate::plugin::{Context, Diagnostics, EphemeralResource, OpenRequest, OpenResponse, Schema, ValidateRequest};
use crate::provider::ProxtalosData;

/// The ephemeral resource.
#[derive(Debug, Default)]
pub struct MachineConfigurationEphemeral;

#[async_trait]
impl EphemeralResource<ProxtalosData> for MachineConfigurationEphemeral {
    fn type_name(&self) -> &'static str {
        "proxtalos_machine_configuration"
    }

    fn schema(&self) -> Schema {
        Schema::new(
            format!("{DESCRIPTION}\n\nThis ephemeral twin is never stored in plan or state (Terraform ≥ 1.10)."),
            attributes(),
        )
    }

    fn validate_config(&self, req: &ValidateRequest, diags: &mut Diagnostics) {
        validate(&req.config, diags);
    }

    async fn open(&self, _ctx: &Context<ProxtalosData>, req: OpenRequest, resp: &mut OpenResponse) {
        if let Some(c) = render_off_thread(req.config, &mut resp.diags).await {
            fill(&mut resp.result, &c);
        }
    }
}
