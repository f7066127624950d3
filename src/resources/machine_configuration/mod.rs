//! `proxtalos_machine_configuration` (data source): renders a Talos machine
//! configuration from the secrets bundle and the cluster inputs, applies
//! config patches, checks the result against the contract's schema, and
//! returns it (sensitive) together with a redacted rendering that is not
//! sensitive, so a plan shows what a change does to the configuration.
//!
//! Capabilities: `validate_config` renders with a placeholder bundle as soon
//! as the inputs are known, so bad patches fail at plan time even when the
//! secrets are not created yet. The ephemeral twin shares everything here.

use std::collections::HashSet;

use async_trait::async_trait;

use crate::data::ProxtalosData;
use crate::plugin::{
    Attribute, AttributePath, Context, DataSource, Diagnostic, Diagnostics, ReadDataRequest, ReadDataResponse, Schema,
    Type, ValidateRequest, Value,
};
use crate::resources::shared::common::{str_attr, string_list_map, string_map, strings};
use crate::resources::shared::talos_model::{MACHINE_SECRETS_DOC, machine_secrets_type, value_to_bundle};
use crate::talos::VersionContract;
use crate::talos::config::{self, Cni, ConfigError, ConfigInput, MachineConfig, MachineType};
use crate::talos::patch::{self, PatchError};
use crate::talos::schema::Deprecation;
use crate::talos::secrets::{CertAndKey, Certs, ClusterSecrets, Secrets, SecretsBundle, TrustdInfo};

mod schema;
pub(crate) use schema::attributes;

/// The data source.
#[derive(Debug, Default)]
pub struct MachineConfiguration;

/// Description shared by the data source and its ephemeral twin.
pub(crate) const DESCRIPTION: &str = "Renders a Talos machine configuration for a controlplane or worker machine, as \
`talosctl gen config` does for the chosen version contract (v1.10 … v1.15, single- or multi-document), then applies \
`config_patches` in order and checks the result against that contract's schema (and, as Talos does, refuses a \
deprecated v1alpha1 setting next to the typed document that replaces it; deprecated settings Talos accepts get a \
warning naming the replacement). Nothing is contacted. \
`machine_configuration` holds every secret and is sensitive; `machine_configuration_redacted` is the same YAML with \
secrets replaced by `******` and is **not** sensitive, so a plan shows a readable diff of any change (put it in an \
output or a resource attribute to see it).";

/// Attribute paths by library input name.
fn input_path(field: &str) -> AttributePath {
    AttributePath::attr(match field {
        "endpoint" => "cluster_endpoint",
        "cni" => "cni_urls",
        other => other,
    })
}

fn patch_index(e: &PatchError) -> usize {
    match e {
        PatchError::Parse { patch, .. }
        | PatchError::JsonPatchMultiDocument { patch, .. }
        | PatchError::JsonPatchOp { patch, .. }
        | PatchError::Format { patch }
        | PatchError::Strategic { patch, .. } => *patch,
    }
}

/// A patch problem: the path names the patch, and so does the text (Terraform
/// shows the attribute's source line, not its index).
fn patch_diag(index: usize, detail: String) -> Diagnostic {
    let prefix = format!("config patch {index}: ");
    let detail = detail.strip_prefix(&prefix).unwrap_or(&detail);
    Diagnostic::error("Invalid config patch", format!("config_patches[{index}]: {detail}"))
        .at(AttributePath::attr("config_patches").and_index(index as i64))
}

/// Turns a generation error into a diagnostic naming the attribute (and,
/// for patches, the patch index and the path inside the configuration).
fn config_error(e: &ConfigError, input: &ConfigInput, secrets: &SecretsBundle) -> Diagnostic {
    let detail = crate::plugin::diag::error_chain(e);
    match e {
        ConfigError::Input { field, message } => {
            Diagnostic::error(format!("Invalid {field}"), message.clone()).at(input_path(field))
        }
        ConfigError::MissingSecret(what) => Diagnostic::error(
            "Incomplete machine secrets",
            format!("The secrets bundle has no {what}, which a {} configuration needs.", input.machine_type.as_str()),
        )
        .at(AttributePath::attr("machine_secrets")),
        ConfigError::Patch(p) => patch_diag(patch_index(p), detail),
        ConfigError::Schema(_) => match guilty_patch(input, secrets) {
            Some(i) => patch_diag(
                i,
                format!(
                    "After this patch the configuration is not a valid Talos {} configuration: {detail}",
                    input.contract
                ),
            ),
            None => Diagnostic::error("Invalid machine configuration", detail),
        },
        ConfigError::Yaml(_) => Diagnostic::error("Invalid machine configuration", detail),
    }
}

/// Warns about every deprecated field the patched configuration sets (Talos
/// accepts them), on the patch that first sets it: each patch is applied in
/// turn to the unpatched configuration and the new deprecations are its.
fn warn_deprecated(input: &ConfigInput, secrets: &SecretsBundle, done: &MachineConfig, diags: &mut Diagnostics) {
    let Ok(all) = done.deprecations() else { return };
    if all.is_empty() {
        return;
    }
    let key = |d: &Deprecation| (d.kind.clone(), d.path.clone());
    let mut base = input.clone();
    base.config_patches.clear();
    let mut seen: HashSet<(String, String)> = HashSet::new();
    let mut by_patch: Vec<(Option<usize>, &Deprecation)> = Vec::new();
    // What the inputs alone generate (as `talosctl gen config` would) is not warned about.
    let mut generated: HashSet<(String, String)> = HashSet::new();
    if let Ok(mut partial) = config::generate(&base, secrets) {
        generated.extend(partial.deprecations().unwrap_or_default().iter().map(key));
        seen.clone_from(&generated);
        for (i, p) in input.config_patches.iter().enumerate() {
            if partial.apply_patches(std::slice::from_ref(p)).is_err() {
                break;
            }
            for d in partial.deprecations().unwrap_or_default() {
                if seen.insert(key(&d))
                    && let Some(found) = all.iter().find(|a| key(a) == key(&d))
                {
                    by_patch.push((Some(i), found));
                }
            }
        }
    }
    let unplaced: Vec<&Deprecation> = all
        .iter()
        .filter(|d| !generated.contains(&key(d)) && !by_patch.iter().any(|(_, f)| key(f) == key(d)))
        .collect();
    by_patch.extend(unplaced.into_iter().map(|d| (None, d)));
    for (patch, d) in by_patch {
        let path = AttributePath::attr("config_patches");
        let (path, prefix) = match patch {
            Some(i) => (path.and_index(i as i64), format!("config_patches[{i}]: ")),
            None => (path, String::new()),
        };
        diags.warning_at(
            path,
            "Deprecated Talos setting",
            format!("{prefix}{}. Talos {} still accepts it.", d.message.trim_end_matches('.'), input.contract),
        );
    }
}

/// The first patch after which the configuration fails schema validation.
fn guilty_patch(input: &ConfigInput, secrets: &SecretsBundle) -> Option<usize> {
    (1..=input.config_patches.len())
        .find(|&n| {
            let mut partial = input.clone();
            partial.config_patches.truncate(n);
            config::generate(&partial, secrets).is_err()
        })
        .map(|n| n - 1)
}

fn parse_enum<T: std::str::FromStr>(config: &Value, name: &str, what: &str, diags: &mut Diagnostics) -> Option<T>
where
    T::Err: std::fmt::Display,
{
    let s = str_attr(config, name)?;
    match s.parse::<T>() {
        Ok(v) => Some(v),
        Err(e) => {
            diags.error_at(AttributePath::attr(name), format!("Unknown {what}"), e.to_string());
            None
        }
    }
}

/// Builds the library input from a configuration. With `placeholders`,
/// unknown values are replaced by harmless ones (validate time) and
/// `None` is returned only for errors; unknown patches are left out.
fn input_from(config: &Value, placeholders: bool, diags: &mut Diagnostics) -> Option<ConfigInput> {
    let text = |name: &str, fallback: &str| -> Option<String> {
        match config.attr(name) {
            Value::String(s) => Some(s.clone()),
            _ if placeholders => Some(fallback.to_string()),
            _ => None,
        }
    };
    let contract = parse_enum::<VersionContract>(config, "talos_version", "Talos version contract", diags);
    let machine_type = parse_enum::<MachineType>(config, "machine_type", "machine type", diags);
    let cni = match (str_attr(config, "cni"), config.attr("cni_urls")) {
        (_, urls) if !urls.is_fully_known() => Cni::Default,
        (None | Some("custom"), urls) if !strings(urls).is_empty() => Cni::Custom(strings(urls)),
        (Some("custom"), _) => Cni::Custom(Vec::new()),
        (None | Some("default"), Value::Null) => Cni::Default,
        (Some("none"), Value::Null) => Cni::None,
        (Some(other @ ("default" | "none")), _) => {
            diags.error_at(
                AttributePath::attr("cni_urls"),
                "CNI URLs without a custom CNI",
                format!("`cni_urls` only apply with `cni = \"custom\"` (or `cni` unset), not with {other:?}."),
            );
            Cni::Default
        }
        (Some(other), _) => {
            diags.error_at(
                AttributePath::attr("cni"),
                "Unknown CNI",
                format!("{other:?} is not one of \"default\" (Flannel), \"none\" or \"custom\"."),
            );
            Cni::Default
        }
        (None, _) => Cni::Default,
    };
    let port = match config.attr("local_api_server_port") {
        Value::Null | Value::Unknown => None,
        v => match v.as_i64().and_then(|p| u16::try_from(p).ok()).filter(|p| *p > 0) {
            Some(p) => Some(p),
            None => {
                diags.error_at(
                    AttributePath::attr("local_api_server_port"),
                    "Invalid port",
                    "`local_api_server_port` must be a whole number from 1 to 65535.",
                );
                None
            }
        },
    };
    let patches_value = config.attr("config_patches");
    for (i, p) in patches_value.as_elements().unwrap_or_default().iter().enumerate() {
        if let Some(text) = p.as_str()
            && let Err(e) = patch::parse_patch(i, text)
        {
            diags.push(patch_diag(i, crate::plugin::diag::error_chain(&e)));
        }
    }
    if diags.has_errors() {
        return None;
    }
    let contract = contract.or(placeholders.then_some(VersionContract::V1_14))?;
    let machine_type = machine_type.or(placeholders.then_some(MachineType::Controlplane))?;
    let mut input = ConfigInput::new(
        text("cluster_name", "placeholder")?,
        text("cluster_endpoint", "https://placeholder:6443")?,
        machine_type,
        contract,
        text("kubernetes_version", &format!("1.{}.0", contract.min_kubernetes_minor()))?,
    );
    input.install_disk = str_attr(config, "install_disk").map(str::to_string);
    input.install_image = str_attr(config, "install_image").map(str::to_string);
    input.install_extra_kernel_args = strings(config.attr("kernel_args"));
    input.extra_cert_sans = strings(config.attr("extra_cert_sans"));
    input.dns_domain = str_attr(config, "dns_domain").map(str::to_string);
    input.allow_scheduling_on_control_planes =
        config.attr("allow_scheduling_on_control_planes").as_bool().unwrap_or(false);
    input.cni = cni;
    input.registry_mirrors = string_list_map(config.attr("registry_mirrors"));
    input.sysctls = string_map(config.attr("sysctls"));
    input.local_api_server_port = port;
    if patches_value.is_fully_known() {
        input.config_patches = strings(patches_value);
    } else if !placeholders {
        return None;
    }
    Some(input)
}

/// A bundle of well-formed dummy values: generation only copies secrets
/// into the documents, so rendering with it finds every input and patch
/// error before the real secrets exist.
fn placeholder_bundle() -> SecretsBundle {
    let pem = |label: &str| format!("-----BEGIN {label}-----\ncGxhY2Vob2xkZXI=\n-----END {label}-----\n");
    let pair = || CertAndKey { crt: pem("CERTIFICATE"), key: pem("EC PRIVATE KEY") };
    let b64 = "cGxhY2Vob2xkZXJwbGFjZWhvbGRlcnBsYWNlaG9sZGU=".to_string();
    SecretsBundle {
        cluster: ClusterSecrets { id: b64.clone(), secret: b64.clone() },
        secrets: Secrets {
            bootstrap_token: "abcdef.0123456789abcdef".into(),
            aescbc_encryption_secret: None,
            secretbox_encryption_secret: Some(b64),
        },
        trustd_info: TrustdInfo { token: "abcdef.0123456789abcdef".into() },
        certs: Certs {
            etcd: Some(pair()),
            k8s: Some(pair()),
            k8s_aggregator: Some(pair()),
            k8s_service_account_key: Some(pem("RSA PRIVATE KEY")),
            os: pair(),
        },
    }
}

fn warn_ignored_kernel_args(input: &ConfigInput, diags: &mut Diagnostics) {
    if input.contract.at_least(14) && !input.install_extra_kernel_args.is_empty() {
        diags.warning_at(
            AttributePath::attr("kernel_args"),
            "Kernel arguments not written from v1.14 on",
            "Like `talosctl gen config`, contracts from v1.14 on no longer write `machine.install.extraKernelArgs`; \
set kernel arguments in the boot image (Image Factory schematic) instead.",
        );
    }
}

/// A Kubernetes version the contract's Talos release does not run: the
/// configuration renders (`talosctl gen config` does not check, its mode
/// is local), but a node of that release refuses it on apply
/// (`day2::compat`), so the plan says so.
fn warn_unsupported_kubernetes(input: &ConfigInput, diags: &mut Diagnostics) {
    let talos = format!("{}.0", input.contract);
    let Err(e) = crate::day2::compat::kubernetes_supported(&input.kubernetes_version, &talos) else { return };
    let range = crate::day2::compat::kubernetes_range(&talos).unwrap_or_default();
    let why = format!("Kubernetes {} is too {}", e.kubernetes, e.age());
    diags.warning_at(
        AttributePath::attr("kubernetes_version"),
        format!("Talos {} does not run Kubernetes {}", input.contract, input.kubernetes_version),
        format!(
            "{why} for Talos {}: {range}. The configuration renders, but a node running Talos {} refuses it on apply \
(\"kubelet image is not valid\").",
            input.contract, input.contract
        ),
    );
}

/// Validate-time checks shared with the ephemeral twin. The full render
/// (patches, schema) runs only when the contract, the machine type and the
/// patches are known: a placeholder for those could report errors the real
/// values would not have.
pub(crate) fn validate(config: &Value, diags: &mut Diagnostics) {
    let Some(input) = input_from(config, true, diags) else { return };
    warn_ignored_kernel_args(&input, diags);
    // Only a version the user gave (unknown ones get a placeholder), and
    // one the generator accepts (else its error says enough).
    let given = config.attr("kubernetes_version").as_str().is_some() && config.attr("talos_version").as_str().is_some();
    let minor = crate::day2::kubernetes_upgrade::minor_of(&input.kubernetes_version).map(|(_, m)| m);
    if given && minor.is_some_and(|m| m >= input.contract.min_kubernetes_minor()) {
        warn_unsupported_kubernetes(&input, diags);
    }
    let secrets = placeholder_bundle();
    let decisive = ["talos_version", "machine_type", "config_patches"];
    if decisive.iter().all(|k| config.attr(k).is_fully_known()) {
        match config::generate(&input, &secrets) {
            Ok(c) => warn_deprecated(&input, &secrets, &c, diags),
            Err(e) => diags.push(config_error(&e, &input, &secrets)),
        }
        return;
    }
    // Without them, only the input checks (endpoint, Kubernetes version,
    // CNI) are certain: they do not depend on the contract or the patches.
    let mut unpatched = input;
    unpatched.config_patches.clear();
    if let Err(e @ ConfigError::Input { .. }) = config::generate(&unpatched, &secrets) {
        diags.push(config_error(&e, &unpatched, &secrets));
    }
}

/// Renders the configuration: `(yaml, redacted yaml)`.
pub(crate) fn render(config: &Value, diags: &mut Diagnostics) -> Option<MachineConfig> {
    let input = input_from(config, false, diags)?;
    let secrets = match value_to_bundle(config.attr("machine_secrets")) {
        Ok(b) => b,
        Err(e) => {
            diags.error_at(
                AttributePath::attr("machine_secrets"),
                "Invalid machine secrets",
                format!("`machine_secrets` must be the `machine_secrets` of proxtalos_machine_secrets: {e}"),
            );
            return None;
        }
    };
    match config::generate(&input, &secrets) {
        Ok(c) => {
            warn_deprecated(&input, &secrets, &c, diags);
            Some(c)
        }
        Err(e) => {
            diags.push(config_error(&e, &input, &secrets));
            None
        }
    }
}

/// Fills the two outputs into `v`.
pub(crate) fn fill(v: &mut Value, c: &MachineConfig) {
    v.set_attr("machine_configuration", Value::string(c.to_yaml()));
    v.set_attr("machine_configuration_redacted", Value::string(c.to_redacted_yaml()));
}

#[async_trait]
impl DataSource<ProxtalosData> for MachineConfiguration {
    fn type_name(&self) -> &'static str {
        "proxtalos_machine_configuration"
    }

    fn schema(&self) -> Schema {
        Schema::new(DESCRIPTION, attributes())
    }

    fn validate_config(&self, req: &ValidateRequest, diags: &mut Diagnostics) {
        validate(&req.config, diags);
    }

    async fn read(&self, _ctx: &Context<ProxtalosData>, req: ReadDataRequest, resp: &mut ReadDataResponse) {
        // Key derivation, YAML and the schema check: off the async workers.
        if let Some(c) = resp.diags.off_thread(move |d| render(&req.config, d)).await.flatten() {
            fill(&mut resp.state, &c);
        }
    }
}

/// `machine_secrets` as an input attribute.
pub(crate) fn secrets_input() -> Attribute {
    Attribute::new("machine_secrets", machine_secrets_type()).required().sensitive().description(format!(
        "{MACHINE_SECRETS_DOC} Usually `proxtalos_machine_secrets.<name>.machine_secrets` (or the ephemeral twin's)."
    ))
}

/// The type of the `registry_mirrors` attribute.
pub(crate) fn mirrors_type() -> Type {
    Type::map(Type::list(Type::String))
}

#[cfg(test)]
mod tests;
