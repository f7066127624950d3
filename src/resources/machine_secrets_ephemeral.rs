//! `proxtalos_machine_secrets` (ephemeral resource): the same bundle and
//! client credentials, never written to plan or state. Either generated on
//! every open (pair it with a secret store) or read from a `secrets.yaml`
//! given as input (e.g. from that secret store), so configurations can be
//! rendered without secrets in state.

use async_trait::async_trait;

use super::machine_secrets::{TALOS_VERSION_DOC, TTL_DOC, generate};
use crate::data::ProxtalosData;
use crate::plugin::diag::error_chain;
use crate::plugin::{
    Attribute, AttributePath, Context, Diagnostics, EphemeralResource, OpenRequest, OpenResponse, Schema,
    ValidateRequest, Value,
};
use crate::resources::shared::common::{Clock, duration_attr, str_attr, system_clock};
use crate::resources::shared::talos_model::{
    CLIENT_CONFIGURATION_DOC, LATEST_CONTRACT, MACHINE_SECRETS_DOC, bundle_to_value, client_configuration_type,
    client_to_value, expiry_value, infer_contract, issue_client, machine_secrets_type,
};
use crate::talos::VersionContract;
use crate::talos::secrets::SecretsBundle;

/// The ephemeral resource.
pub struct MachineSecretsEphemeral {
    clock: Clock,
}

impl Default for MachineSecretsEphemeral {
    fn default() -> Self {
        MachineSecretsEphemeral { clock: system_clock() }
    }
}

#[async_trait]
impl EphemeralResource<ProxtalosData> for MachineSecretsEphemeral {
    fn type_name(&self) -> &'static str {
        "proxtalos_machine_secrets"
    }

    fn schema(&self) -> Schema {
        Schema::new(
            "Ephemeral machine secrets: the bundle and an `os:admin` client certificate, never stored in plan or \
state (Terraform ≥ 1.10). Without `secrets_yaml` a **new** bundle is generated on every run, so use it only to write \
the bundle to a secret store once, or give it the stored `secrets_yaml` to read the same bundle back on every run.",
            vec![
                Attribute::string("talos_version").optional().computed().description(TALOS_VERSION_DOC),
                Attribute::string("client_certificate_ttl")
                    .optional()
                    .description(format!("{TTL_DOC} A new certificate is issued on every open.")),
                Attribute::string("secrets_yaml").optional().computed().sensitive().description(
                    "A `secrets.yaml` (as `talosctl gen secrets` writes it) to read the bundle from instead of \
generating one. When not set, the generated bundle's `secrets.yaml` is returned here.",
                ),
                Attribute::new("machine_secrets", machine_secrets_type())
                    .computed()
                    .sensitive()
                    .description(MACHINE_SECRETS_DOC),
                Attribute::new("client_configuration", client_configuration_type())
                    .computed()
                    .sensitive()
                    .description(CLIENT_CONFIGURATION_DOC),
                Attribute::string("client_certificate_expires_at")
                    .computed()
                    .description("When the client certificate expires (RFC 3339, UTC)."),
            ],
        )
    }

    fn validate_config(&self, req: &ValidateRequest, diags: &mut Diagnostics) {
        super::machine_secrets::validate_common(&req.config, diags);
        if let Some(text) = str_attr(&req.config, "secrets_yaml")
            && let Err(e) = SecretsBundle::from_yaml(text)
        {
            diags.error_at(AttributePath::attr("secrets_yaml"), "Malformed secrets.yaml", error_chain(&e));
        }
    }

    async fn open(&self, _ctx: &Context<ProxtalosData>, req: OpenRequest, resp: &mut OpenResponse) {
        let mut diags = Diagnostics::new();
        let ttl = duration_attr(&req.config, "client_certificate_ttl", &mut diags)
            .unwrap_or(crate::talos::client_config::DEFAULT_VALIDITY);
        let given = str_attr(&req.config, "talos_version").and_then(|v| v.parse::<VersionContract>().ok());
        let now = (self.clock)();
        let made = match str_attr(&req.config, "secrets_yaml") {
            Some(text) => SecretsBundle::from_yaml(text)
                .map_err(|e| (AttributePath::attr("secrets_yaml"), "Malformed secrets.yaml", error_chain(&e)))
                .and_then(|b| {
                    let c = issue_client(&b, ttl, now)
                        .map_err(|e| (AttributePath::root(), "Cannot issue a client certificate", e))?;
                    let contract = given.unwrap_or_else(|| infer_contract(&b));
                    Ok((b, c, contract))
                }),
            None => {
                let contract = given.unwrap_or(LATEST_CONTRACT);
                generate(contract, ttl, now)
                    .await
                    .map(|(b, c)| (b, c, contract))
                    .map_err(|e| (AttributePath::root(), "Cannot generate machine secrets", e))
            }
        };
        match made {
            Ok((bundle, client, contract)) => {
                let r = &mut resp.result;
                r.set_attr("talos_version", Value::string(contract.to_string()));
                if r.attr("secrets_yaml").is_null() {
                    // A given secrets_yaml is returned as given (Terraform checks it).
                    r.set_attr("secrets_yaml", Value::string(bundle.to_yaml()));
                }
                r.set_attr("machine_secrets", bundle_to_value(&bundle));
                r.set_attr("client_configuration", client_to_value(&client));
                r.set_attr("client_certificate_expires_at", expiry_value(&client));
            }
            Err((path, summary, detail)) => resp.diags.error_at(path, summary, detail),
        }
        resp.diags.extend(diags);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::resources::shared::common::null_object;
    use crate::resources::shared::talos_model::value_to_bundle;

    const GOLDEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/talos/golden/secrets.yaml");

    #[tokio::test]
    async fn open_reads_a_given_bundle() {
        let e = MachineSecretsEphemeral::default();
        assert!(e.schema().check().is_empty(), "{:?}", e.schema().check());
        let text = std::fs::read_to_string(GOLDEN).unwrap();
        let mut config = null_object(&e.schema().value_type());
        config.set_attr("secrets_yaml", Value::string(text.as_str()));
        let mut resp = OpenResponse { result: config.clone(), ..OpenResponse::default() };
        let ctx = crate::resources::machine_secrets::tests::ctx();
        e.open(&ctx, OpenRequest { config }, &mut resp).await;
        assert!(resp.diags.is_empty(), "{:?}", resp.diags);
        assert!(resp.result.is_fully_known());
        assert_eq!(
            value_to_bundle(resp.result.attr("machine_secrets")).unwrap(),
            SecretsBundle::from_yaml(&text).unwrap()
        );
        assert_eq!(resp.result.attr("talos_version"), &Value::from("v1.13"));
        assert_eq!(resp.result.attr("secrets_yaml"), &Value::string(text.as_str()), "returned as given");
    }

    #[test]
    fn malformed_yaml_is_reported_at_validate() {
        let e = MachineSecretsEphemeral::default();
        let mut config = null_object(&e.schema().value_type());
        config.set_attr("secrets_yaml", "cluster: 3".into());
        let mut d = Diagnostics::new();
        e.validate_config(&ValidateRequest { config }, &mut d);
        assert_eq!(d.0[0].path.as_ref().map(ToString::to_string).as_deref(), Some("secrets_yaml"));
    }
}
