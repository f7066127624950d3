//! `proxtalos_machine_configuration` (ephemeral resource): the data source's
//! rendering, never stored in plan or state (Terraform ≥ 1.10). Pair it with
//! the ephemeral `proxtalos_machine_secrets` and write-only attributes.

use async_trait::async_trait;

use super::machine_configuration::{DESCRIPTION, attributes, fill, render, validate};
use crate::data::ProxtalosData;
use crate::plugin::{Context, Diagnostics, EphemeralResource, OpenRequest, OpenResponse, Schema, ValidateRequest};

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
        if let Some(c) = resp.diags.off_thread(move |d| render(&req.config, d)).await.flatten() {
            fill(&mut resp.result, &c);
        }
    }
}
