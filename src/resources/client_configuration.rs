//! `proxtalos_client_configuration` (data source): a talosconfig file from
//! client credentials, as `talosctl` writes it.

use async_trait::async_trait;

use crate::data::ProxtalosData;
use crate::plugin::{
    Attribute, AttributePath, Context, DataSource, Diagnostics, ReadDataRequest, ReadDataResponse, Schema, Type,
    ValidateRequest, Value,
};
use crate::resources::shared::common::{str_attr, strings};
use crate::resources::shared::talos_model::{CLIENT_CONFIGURATION_DOC, client_configuration_type, value_to_client};
use crate::talos::client_config::talosconfig;

/// The data source.
#[derive(Debug, Default)]
pub struct ClientConfigurationData;

fn attributes() -> Vec<Attribute> {
    vec![
        Attribute::string("cluster_name")
            .required()
            .description("Name of the talosconfig context (usually the cluster name); it is also the current context."),
        Attribute::new("client_configuration", client_configuration_type()).required().sensitive().description(
            format!("{CLIENT_CONFIGURATION_DOC} Usually `proxtalos_machine_secrets.<name>.client_configuration`."),
        ),
        Attribute::new("endpoints", Type::list(Type::String)).optional().description(
            "Talos API endpoints talosctl dials (control-plane addresses or names, without scheme), e.g. \
`[\"10.0.0.11\", \"10.0.0.12\"]`. Not set: an empty list, as `talosctl gen config` writes it.",
        ),
        Attribute::new("nodes", Type::list(Type::String))
            .optional()
            .description("Default target nodes for talosctl commands. Not set: left out."),
        Attribute::string("talos_config").computed().sensitive().description(
            "The talosconfig YAML (context, endpoints, nodes, and the CA, client certificate and key as base64 PEM). \
Write it with `local_sensitive_file` or pass it to `TALOSCONFIG`.",
        ),
    ]
}

#[async_trait]
impl DataSource<ProxtalosData> for ClientConfigurationData {
    fn type_name(&self) -> &'static str {
        "proxtalos_client_configuration"
    }

    fn schema(&self) -> Schema {
        Schema::new(
            "Renders a talosconfig for `talosctl` from client credentials, exactly as `talosctl gen config` writes \
one: a single context named after the cluster, with its endpoints, optional nodes and base64 PEM credentials.",
            attributes(),
        )
    }

    fn validate_config(&self, req: &ValidateRequest, diags: &mut Diagnostics) {
        if str_attr(&req.config, "cluster_name").is_some_and(|s| s.trim().is_empty()) {
            diags.error_at(
                AttributePath::attr("cluster_name"),
                "Empty cluster name",
                "`cluster_name` names the talosconfig context; it must not be empty.",
            );
        }
        crate::resources::shared::talos_node::check_client_configuration(&req.config, diags);
        for (i, e) in strings(req.config.attr("endpoints")).iter().enumerate() {
            if e.contains("://") {
                diags.error_at(
                    AttributePath::attr("endpoints").and_index(i as i64),
                    "Endpoint with a scheme",
                    format!("talosctl endpoints are plain addresses (optionally with a port), e.g. \"10.0.0.11\"; got {e:?}."),
                );
            }
        }
    }

    async fn read(&self, _ctx: &Context<ProxtalosData>, req: ReadDataRequest, resp: &mut ReadDataResponse) {
        let creds = match value_to_client(req.config.attr("client_configuration")) {
            Ok(c) => c,
            Err(e) => {
                resp.diags.error_at(
                    AttributePath::attr("client_configuration"),
                    "Invalid client configuration",
                    e.to_string(),
                );
                return;
            }
        };
        let context = str_attr(&req.config, "cluster_name").unwrap_or_default();
        let text =
            talosconfig(context, &strings(req.config.attr("endpoints")), &strings(req.config.attr("nodes")), &creds);
        resp.state.set_attr("talos_config", Value::string(text));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::resources::machine_secrets::tests::ctx;
    use crate::resources::shared::common::{null_object, unb64};
    use crate::resources::shared::talos_model::{client_to_value, issue_client};
    use crate::talos::secrets::SecretsBundle;

    const GOLDEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/talos/golden/secrets.yaml");

    #[tokio::test]
    async fn renders_a_talosconfig() {
        let d = ClientConfigurationData;
        assert!(d.schema().check().is_empty(), "{:?}", d.schema().check());
        let bundle = SecretsBundle::from_yaml(&std::fs::read_to_string(GOLDEN).unwrap()).unwrap();
        let client = issue_client(&bundle, std::time::Duration::from_secs(3600), std::time::SystemTime::now()).unwrap();
        let mut config = null_object(&d.schema().value_type());
        config.set_attr("cluster_name", "homelab".into());
        config.set_attr("client_configuration", client_to_value(&client));
        config.set_attr("endpoints", Value::List(vec!["10.0.0.11".into()]));
        let mut resp = ReadDataResponse { state: config.clone(), diags: Diagnostics::new() };
        d.read(&ctx(), ReadDataRequest { config }, &mut resp).await;
        assert!(resp.diags.is_empty());
        let text = resp.state.attr("talos_config").as_str().unwrap().to_string();
        let y: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
        assert_eq!(y["context"], "homelab");
        let ctx = &y["contexts"]["homelab"];
        assert_eq!(ctx["endpoints"][0], "10.0.0.11");
        assert!(ctx.get("nodes").is_none());
        assert_eq!(unb64(ctx["crt"].as_str().unwrap()).unwrap(), client.crt);
        assert_eq!(unb64(ctx["ca"].as_str().unwrap()).unwrap(), bundle.certs.os.crt);
    }

    #[test]
    fn endpoints_with_scheme_are_rejected() {
        let d = ClientConfigurationData;
        let mut config = null_object(&d.schema().value_type());
        config.set_attr("endpoints", Value::List(vec!["https://10.0.0.11:50000".into()]));
        let mut diags = Diagnostics::new();
        d.validate_config(&ValidateRequest { config }, &mut diags);
        assert_eq!(diags.0[0].path.as_ref().map(ToString::to_string).as_deref(), Some("endpoints[0]"));
    }
}
