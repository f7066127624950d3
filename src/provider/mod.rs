//! The proxtalos provider: its configuration block and its object types.
//!
//! ```hcl
//! provider "proxtalos" {
//!   proxmox {
//!     endpoint  = "https://pve.example.com:8006/"
//!     api_token = "terraform@pve!provider=00000000-0000-0000-0000-000000000000"
//!   }
//! }
//! ```
//!
//! Every Proxmox setting falls back to the environment variable bpg's
//! provider uses (`PROXMOX_VE_*`), so users can switch without renaming
//! secrets. With Proxmox settings, configuration makes one call
//! (`GET /version`, [`connection`]) so a wrong endpoint, certificate or
//! credential is an error on the attribute (and so on the variable) to fix,
//! before any plan; `skip_connection_check` turns it off. Without Proxmox
//! settings the Talos-only objects still work and nothing is called.

pub mod connection;

pub use crate::data::{ProxmoxAuth, ProxmoxSettings, ProxtalosData, PveUnavailable, SettingsOrigin};

use std::sync::Arc;

use async_trait::async_trait;

use crate::plugin::{
    Attribute, AttributePath, ConfigureRequest, DataSource, Diagnostics, EphemeralResource, NestedBlock, Nesting,
    Provider, Resource, Schema, Value,
};

/// The provider.
#[derive(Debug, Default)]
pub struct ProxtalosProvider;

fn proxmox_block() -> NestedBlock {
    let mut b = NestedBlock::new(
        "proxmox",
        Nesting::List,
        "How to reach the Proxmox VE API. Needed by the Proxmox resources only; each setting falls back to the environment variable named in its description.",
        vec![
            Attribute::string("endpoint")
                .optional()
                .description("Base URL of the Proxmox VE API, e.g. `https://pve.example.com:8006/`. Environment: `PROXMOX_VE_ENDPOINT`."),
            Attribute::string("api_token")
                .optional()
                .sensitive()
                .description("API token as `USER@REALM!TOKENID=SECRET`. Conflicts with `username`/`password`. Environment: `PROXMOX_VE_API_TOKEN`."),
            Attribute::string("username")
                .optional()
                .description("User for ticket login, as `user@realm` (e.g. `root@pam`). Needs `password`. Environment: `PROXMOX_VE_USERNAME`."),
            Attribute::string("password")
                .optional()
                .sensitive()
                .description("Password for ticket login. Environment: `PROXMOX_VE_PASSWORD`."),
            Attribute::bool("insecure")
                .optional()
                .description("Skip TLS certificate verification. Off by default; prefer `ca_certificate` for a self-signed PVE. Environment: `PROXMOX_VE_INSECURE`."),
            Attribute::string("ca_certificate")
                .optional()
                .description("PEM certificate(s) of the CA that signed the PVE API certificate, trusted in addition to the built-in roots."),
            Attribute::bool("skip_connection_check")
                .optional()
                .description("Do not check the endpoint, certificate and credentials when the provider is configured. By default the provider calls `GET /version` once per run, so a wrong `endpoint`, `ca_certificate` or `api_token` is reported on that attribute before any plan. Set this when Proxmox may be unreachable while only Talos objects are planned. Environment: `PROXMOX_VE_SKIP_CONNECTION_CHECK`."),
        ],
    );
    b.max_items = 1;
    b
}

/// Reads a string attribute; unknown counts as "not set yet".
fn str_attr<'v>(v: &'v Value, name: &str) -> Option<&'v str> {
    v.attr(name).as_str()
}

/// Validates and resolves the proxmox settings from the block and `env`.
/// `final_` is true at configure time (all values known, env consulted).
pub fn proxmox_settings(
    block: &Value,
    env: &dyn Fn(&str) -> Option<String>,
    final_: bool,
    diags: &mut Diagnostics,
) -> Option<ProxmoxSettings> {
    let base = AttributePath::attr("proxmox").and_index(0);
    // The value and whether it came from the environment.
    let get_with_origin = |name: &str, var: &str| -> Option<(String, bool)> {
        match block.attr(name) {
            Value::Unknown => None,
            v => v
                .as_str()
                .map(|s| (s.to_string(), false))
                .or_else(|| if final_ { env(var).filter(|s| !s.is_empty()).map(|s| (s, true)) } else { None }),
        }
    };
    let split = |o: Option<(String, bool)>| -> (Option<String>, bool) {
        let from_env = o.as_ref().is_some_and(|(_, e)| *e);
        (o.map(|(v, _)| v), from_env)
    };
    let (endpoint, endpoint_from_env) = split(get_with_origin("endpoint", "PROXMOX_VE_ENDPOINT"));
    let (token, token_from_env) = split(get_with_origin("api_token", "PROXMOX_VE_API_TOKEN"));
    let (username, _) = split(get_with_origin("username", "PROXMOX_VE_USERNAME"));
    let (password, password_from_env) = split(get_with_origin("password", "PROXMOX_VE_PASSWORD"));
    let truthy = |v: String| matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes");
    let flag = |name: &str, var: &str| match block.attr(name) {
        Value::Bool(b) => *b,
        _ if final_ => env(var).is_some_and(truthy),
        _ => false,
    };
    let insecure = flag("insecure", "PROXMOX_VE_INSECURE");
    let skip_connection_check = flag("skip_connection_check", "PROXMOX_VE_SKIP_CONNECTION_CHECK");
    let ca = str_attr(block, "ca_certificate").map(str::to_string);

    if let Some(ep) = &endpoint
        && let Some(problem) = endpoint_problem(ep)
    {
        diags.error_at(base.and_attr("endpoint"), "Invalid Proxmox endpoint", problem);
    }
    if let Some(t) = &token
        && let Some(problem) = token_problem(t)
    {
        diags.error_at(base.and_attr("api_token"), "Invalid Proxmox API token", problem);
    }
    let block_token = str_attr(block, "api_token").is_some();
    let block_user = str_attr(block, "username").is_some() || str_attr(block, "password").is_some();
    if block_token && block_user {
        diags.error_at(
            base.and_attr("api_token"),
            "Conflicting Proxmox credentials",
            "Set either `api_token` or `username` and `password`, not both.",
        );
    }
    if let Some(u) = str_attr(block, "username")
        && !u.contains('@')
    {
        diags.error_at(
            base.and_attr("username"),
            "Invalid Proxmox username",
            format!("{u:?} has no realm; write it as `user@realm`, e.g. `root@pam`."),
        );
    }
    if let Some(pem) = &ca {
        if let Some(problem) = crate::proxmox::ca_pem::problem(pem) {
            diags.error_at(
                base.and_attr("ca_certificate"),
                "Invalid CA certificate",
                format!("`ca_certificate` holds no usable PEM certificate: {problem}"),
            );
        }
        if insecure {
            diags.warning_at(
                base.and_attr("insecure"),
                "TLS verification disabled",
                "`insecure = true` ignores `ca_certificate`; remove `insecure` to verify against the CA.",
            );
        }
    }
    if !final_ || diags.has_errors() {
        return None;
    }
    // `skip_connection_check` alone does not ask for an endpoint.
    let block_set = ["endpoint", "api_token", "username", "password", "insecure", "ca_certificate"]
        .iter()
        .any(|n| !block.attr(n).is_null());
    let Some(endpoint) = endpoint else {
        if block_set {
            diags.error_at(
                base.and_attr("endpoint"),
                "Missing Proxmox endpoint",
                "Set `endpoint` (or `PROXMOX_VE_ENDPOINT`), e.g. `https://pve.example.com:8006/`.",
            );
        }
        return None;
    };
    // The block wins over the environment; a token wins over a password.
    let auth = match (token, username, password) {
        (Some(t), _, _) if !block_user => (
            ProxmoxAuth::ApiToken(t),
            if token_from_env { "PROXMOX_VE_API_TOKEN" } else { "the provider's `api_token`" },
        ),
        (_, Some(username), Some(password)) => (
            ProxmoxAuth::Password { username, password },
            if password_from_env {
                "PROXMOX_VE_USERNAME/PROXMOX_VE_PASSWORD"
            } else {
                "the provider's `username`/`password`"
            },
        ),
        (_, Some(_), None) => {
            diags.error_at(
                base.and_attr("password"),
                "Missing Proxmox password",
                "`username` needs `password` (or `PROXMOX_VE_PASSWORD`).",
            );
            return None;
        }
        _ => {
            diags.error_at(
                base,
                "Missing Proxmox credentials",
                "Set `api_token` (or `PROXMOX_VE_API_TOKEN`), or `username` and `password` (or `PROXMOX_VE_USERNAME`/`PROXMOX_VE_PASSWORD`).",
            );
            return None;
        }
    };
    let (auth, credentials) = auth;
    let origin = SettingsOrigin {
        endpoint: if endpoint_from_env { "PROXMOX_VE_ENDPOINT" } else { "the provider's `endpoint`" },
        credentials,
    };
    Some(ProxmoxSettings { endpoint, auth, insecure, ca_certificate: ca, origin, skip_connection_check })
}

fn endpoint_problem(ep: &str) -> Option<String> {
    let rest = ep.strip_prefix("https://").or_else(|| ep.strip_prefix("http://"));
    match rest {
        None => Some(format!("{ep:?} needs a scheme: write it as `https://HOST:8006/`.")),
        Some(r) if r.trim_end_matches('/').is_empty() || r.starts_with(':') => Some(format!("{ep:?} has no host.")),
        Some(_) => None,
    }
}

fn token_problem(t: &str) -> Option<String> {
    let ok = t.split_once('!').and_then(|(user, rest)| rest.split_once('=').map(|(id, secret)| (user, id, secret)));
    match ok {
        Some((user, id, secret)) if user.contains('@') && !id.is_empty() && !secret.is_empty() => None,
        _ => Some(
            "Expected `USER@REALM!TOKENID=SECRET`, e.g. `terraform@pve!provider=…` (the secret is not shown here)."
                .to_string(),
        ),
    }
}

#[async_trait]
impl Provider for ProxtalosProvider {
    type Data = ProxtalosData;

    fn type_name(&self) -> &'static str {
        "proxtalos"
    }

    fn schema(&self) -> Schema {
        Schema::new(
            "The proxtalos provider puts Talos Linux Kubernetes clusters on Proxmox VE: images, VMs, machine secrets and configuration, bootstrap and kubeconfig in one provider.",
            vec![Attribute::string("image_factory_url").optional().description(
                "The Talos Image Factory that `proxtalos_image_factory_schematic` registers schematics with, unless \
it names its own `factory_url`: `https://factory.talos.dev` (the default) or a self-hosted factory \
(`http(s)://host[:port]`). Environment: `PROXTALOS_IMAGE_FACTORY_URL`.",
            )],
        )
        .blocks(vec![proxmox_block()])
    }

    fn validate_config(&self, config: &Value, diags: &mut Diagnostics) {
        if let Some(u) = config.attr("image_factory_url").as_str() {
            check_factory_url(u, "image_factory_url", diags);
        }
        if let Some(block) = first_block(config) {
            proxmox_settings(block, &|_| None, false, diags);
        }
    }

    async fn configure(&self, req: ConfigureRequest, diags: &mut Diagnostics) -> Option<ProxtalosData> {
        let env = |k: &str| std::env::var(k).ok();
        let empty = Value::object(Vec::<(String, Value)>::new());
        let block = first_block(&req.config).unwrap_or(&empty);
        let proxmox = proxmox_settings(block, &env, true, diags);
        if diags.has_errors() {
            return None;
        }
        let factory = match config_or_env(&req.config, "image_factory_url", "PROXTALOS_IMAGE_FACTORY_URL", &env) {
            Some((u, origin)) => {
                check_factory_url(&u, origin, diags);
                Some(u.trim_end_matches('/').to_string())
            }
            None => None,
        };
        if diags.has_errors() {
            return None;
        }
        let mut data = ProxtalosData::new(proxmox);
        data.image_factory_url = factory;
        if let Some(p) = &data.proxmox {
            tracing::debug!(endpoint = %p.endpoint, auth = ?p.auth, "proxmox configured");
            if !p.skip_connection_check {
                connection::check(&data, p, diags).await;
            }
        }
        Some(data)
    }

    fn resources(&self) -> Vec<Arc<dyn Resource<ProxtalosData>>> {
        crate::resources::resources()
    }

    fn data_sources(&self) -> Vec<Arc<dyn DataSource<ProxtalosData>>> {
        crate::resources::data_sources()
    }

    fn ephemeral_resources(&self) -> Vec<Arc<dyn EphemeralResource<ProxtalosData>>> {
        crate::resources::ephemeral_resources()
    }

    fn list_resources(&self) -> Vec<Arc<dyn crate::plugin::ListResource<ProxtalosData>>> {
        vec![Arc::new(crate::resources::vm::list::VmList)]
    }

    fn actions(&self) -> Vec<Arc<dyn crate::plugin::Action<ProxtalosData>>> {
        crate::resources::actions::all()
    }

    fn functions(&self) -> Vec<Arc<dyn crate::plugin::Function>> {
        crate::resources::functions::all()
    }
}

/// A top-level setting from the configuration, else its environment
/// variable (non-empty), with where it came from.
fn config_or_env(
    config: &Value,
    name: &'static str,
    var: &'static str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Option<(String, &'static str)> {
    match config.attr(name).as_str() {
        Some(v) => Some((v.to_string(), name)),
        None => env(var).filter(|v| !v.is_empty()).map(|v| (v, var)),
    }
}

/// An Image Factory URL, as `proxtalos_image_factory_schematic` takes it.
fn check_factory_url(url: &str, origin: &str, diags: &mut Diagnostics) {
    if let Err(e) = crate::image_factory::base_url(url) {
        let d = crate::plugin::Diagnostic::error("Invalid Image Factory URL", format!("{origin}: {e}."));
        diags.push(if origin == "image_factory_url" { d.at(AttributePath::attr(origin)) } else { d });
    }
}

fn first_block(config: &Value) -> Option<&Value> {
    config.attr("proxmox").as_elements().and_then(|e| e.first())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_image_factory_url_comes_from_config_then_environment_and_is_checked() {
        let env = |k: &str| (k == "PROXTALOS_IMAGE_FACTORY_URL").then(|| "http://127.0.0.1:9/".to_string());
        let none = |_: &str| None;
        let set = Value::object([("image_factory_url", Value::string("https://f.lan"))]);
        let unset = Value::object([("image_factory_url", Value::Null)]);
        assert_eq!(
            config_or_env(&set, "image_factory_url", "PROXTALOS_IMAGE_FACTORY_URL", &env).unwrap().0,
            "https://f.lan"
        );
        assert_eq!(
            config_or_env(&unset, "image_factory_url", "PROXTALOS_IMAGE_FACTORY_URL", &env),
            Some(("http://127.0.0.1:9/".to_string(), "PROXTALOS_IMAGE_FACTORY_URL"))
        );
        assert_eq!(config_or_env(&unset, "image_factory_url", "PROXTALOS_IMAGE_FACTORY_URL", &none), None);
        let mut d = Diagnostics::new();
        check_factory_url("factory.talos.dev", "image_factory_url", &mut d);
        check_factory_url("ftp://x", "PROXTALOS_IMAGE_FACTORY_URL", &mut d);
        assert_eq!(d.0.len(), 2);
        assert_eq!(d.0[0].path.as_ref().map(ToString::to_string).as_deref(), Some("image_factory_url"));
        assert!(d.0[1].path.is_none() && d.0[1].detail.starts_with("PROXTALOS_IMAGE_FACTORY_URL:"), "{:?}", d.0[1]);
    }

    fn block(pairs: &[(&str, Value)]) -> Value {
        let names =
            ["endpoint", "api_token", "username", "password", "insecure", "ca_certificate", "skip_connection_check"];
        Value::object(
            names
                .iter()
                .map(|n| (*n, pairs.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone()).unwrap_or(Value::Null))),
        )
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn token_from_block() {
        let mut d = Diagnostics::new();
        let s = proxmox_settings(
            &block(&[("endpoint", "https://pve:8006/".into()), ("api_token", "t@pve!id=secret".into())]),
            &no_env,
            true,
            &mut d,
        )
        .unwrap();
        assert!(d.is_empty());
        assert_eq!(s.auth, ProxmoxAuth::ApiToken("t@pve!id=secret".into()));
        assert!(!format!("{s:?}").contains("secret"), "Debug must not show the secret");
    }

    #[test]
    fn env_fallbacks_as_bpg_names_them() {
        let env = |k: &str| match k {
            "PROXMOX_VE_ENDPOINT" => Some("https://pve:8006/".to_string()),
            "PROXMOX_VE_USERNAME" => Some("root@pam".to_string()),
            "PROXMOX_VE_PASSWORD" => Some("pw".to_string()),
            "PROXMOX_VE_INSECURE" => Some("true".to_string()),
            _ => None,
        };
        let mut d = Diagnostics::new();
        let s = proxmox_settings(&block(&[]), &env, true, &mut d).unwrap();
        assert!(s.insecure);
        assert_eq!(s.auth, ProxmoxAuth::Password { username: "root@pam".into(), password: "pw".into() });
    }

    #[test]
    fn bad_input_names_the_attribute() {
        let cases: Vec<(Vec<(&str, Value)>, &str)> = vec![
            (vec![("endpoint", "pve:8006".into())], "proxmox[0].endpoint"),
            (vec![("api_token", "nonsense".into())], "proxmox[0].api_token"),
            (vec![("api_token", "a@pve!b=c".into()), ("username", "root@pam".into())], "proxmox[0].api_token"),
            (vec![("username", "root".into())], "proxmox[0].username"),
            (vec![("ca_certificate", "not pem".into())], "proxmox[0].ca_certificate"),
        ];
        for (pairs, path) in cases {
            let mut d = Diagnostics::new();
            proxmox_settings(&block(&pairs), &no_env, false, &mut d);
            assert!(d.has_errors(), "{pairs:?}");
            assert_eq!(d.0[0].path.as_ref().map(ToString::to_string).as_deref(), Some(path));
        }
    }

    #[test]
    fn unknown_values_are_not_errors_at_validate() {
        let mut d = Diagnostics::new();
        proxmox_settings(
            &block(&[("endpoint", Value::Unknown), ("api_token", Value::Unknown)]),
            &no_env,
            false,
            &mut d,
        );
        assert!(d.is_empty());
    }

    #[test]
    fn no_proxmox_at_all_is_fine() {
        let mut d = Diagnostics::new();
        assert!(proxmox_settings(&block(&[]), &no_env, true, &mut d).is_none());
        assert!(d.is_empty());
    }

    #[test]
    fn provider_schema_is_consistent() {
        assert!(ProxtalosProvider.schema().check().is_empty());
    }
}
