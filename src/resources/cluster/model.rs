//! The cluster's configuration as the rollout sees it: its members (by
//! name), the installer, the contract, each node's rendered machine
//! configuration, and the per-node status recorded in `nodes`.

use std::collections::BTreeMap;

use crate::plugin::{AttributePath, Diagnostic, Diagnostics, Value};
use crate::resources::shared::common::strings;
use crate::resources::shared::talos_node::{check_address_at, config_hash};
use crate::talos::VersionContract;

/// A node's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A control plane (etcd member, API server).
    ControlPlane,
    /// A worker.
    Worker,
}

impl Role {
    /// As written in `nodes` and in the rendered configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::ControlPlane => "controlplane",
            Role::Worker => "worker",
        }
    }

    fn block(self) -> &'static str {
        match self {
            Role::ControlPlane => "control_plane",
            Role::Worker => "worker",
        }
    }
}

/// One `control_plane` or `worker` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Host name and Node name; the key of `nodes`.
    pub name: String,
    /// Its role.
    pub role: Role,
    /// The Talos API address.
    pub address: String,
    /// `machine.install.disk`.
    pub install_disk: String,
    /// Its own patches.
    pub patches: Vec<String>,
    /// Its block's index (for attribute paths).
    pub index: usize,
}

impl Member {
    /// The path of one of its block's attributes.
    pub fn path(&self, attr: &str) -> AttributePath {
        AttributePath::attr(self.role.block()).and_index(self.index as i64).and_attr(attr)
    }
}

/// The members in rollout order (control planes, then workers), or None
/// while any of them is not known yet.
pub fn members(config: &Value) -> Option<Vec<Member>> {
    let mut out = Vec::new();
    for role in [Role::ControlPlane, Role::Worker] {
        let blocks = config.attr(role.block());
        if blocks.is_unknown() {
            return None;
        }
        for (index, b) in blocks.as_elements().unwrap_or_default().iter().enumerate() {
            let (Some(name), Some(address)) = (b.attr("name").as_str(), b.attr("address").as_str()) else {
                return None;
            };
            if !b.attr("config_patches").is_fully_known() || b.attr("install_disk").is_unknown() {
                return None;
            }
            out.push(Member {
                name: name.to_string(),
                role,
                address: address.to_string(),
                install_disk: b.attr("install_disk").as_str().unwrap_or("/dev/sda").to_string(),
                patches: strings(b.attr("config_patches")),
                index,
            });
        }
    }
    Some(out)
}

/// Validate-time checks of the members that are known: names are host
/// names, addresses parse, neither repeats.
pub fn validate_members(config: &Value, diags: &mut Diagnostics) {
    let mut names: BTreeMap<String, AttributePath> = BTreeMap::new();
    let mut addresses: BTreeMap<String, AttributePath> = BTreeMap::new();
    for role in [Role::ControlPlane, Role::Worker] {
        for (i, b) in config.attr(role.block()).as_elements().unwrap_or_default().iter().enumerate() {
            let at = |a: &str| AttributePath::attr(role.block()).and_index(i as i64).and_attr(a);
            if let Some(name) = b.attr("name").as_str() {
                if !hostname_ok(name) {
                    diags.error_at(
                        at("name"),
                        "Invalid node name",
                        format!(
                            "{name:?} is not a host name: 1–63 lowercase letters, digits and `-`, starting and \
ending with a letter or digit (it becomes the Kubernetes Node name)."
                        ),
                    );
                }
                if let Some(first) = names.insert(name.to_string(), at("name")) {
                    diags.error_at(
                        at("name"),
                        "Two nodes with one name",
                        format!("{name:?} is also the name of the node at {first}; names must be unique."),
                    );
                }
            }
            if let Some(address) = b.attr("address").as_str() {
                check_address_at(address, at("address"), diags);
                if let Some(first) = addresses.insert(address.to_string(), at("address")) {
                    diags.error_at(
                        at("address"),
                        "Two nodes with one address",
                        format!("{address:?} is also the address of the node at {first}; each node needs its own."),
                    );
                }
            }
        }
    }
}

/// The host of a node address (`10.0.0.11:50000` → `10.0.0.11`); the
/// address itself when it does not parse.
pub fn host_of(address: &str) -> String {
    crate::talos::api::Address::parse(address).map(|a| a.host).unwrap_or_else(|_| address.to_string())
}

/// The host of an endpoint URL (`https://[fd00::10]:6443` → `fd00::10`).
pub fn endpoint_host(url: &str) -> Option<String> {
    let url = reqwest::Url::parse(url).ok()?;
    Some(url.host_str()?.trim_start_matches('[').trim_end_matches(']').to_string())
}

/// Kubernetes Node names Talos derives from host names: RFC 1123 labels.
fn hostname_ok(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// The default installer repository.
pub const DEFAULT_INSTALLER: &str = "ghcr.io/siderolabs/installer";

/// The installer image for `version`, from `installer_image` or
/// `schematic_id`; None while either is unknown.
pub fn installer(config: &Value, version: &str) -> Option<String> {
    let repo = match (config.attr("installer_image"), config.attr("schematic_id")) {
        (Value::Unknown, _) | (_, Value::Unknown) => return None,
        (Value::String(r), _) => r.trim_end_matches('/').to_string(),
        (_, Value::String(id)) => {
            crate::image_factory::installer_repository(crate::image_factory::PUBLIC_HOST, id, false)
        }
        _ => DEFAULT_INSTALLER.to_string(),
    };
    Some(format!("{repo}:{version}"))
}

/// Whether a Talos release version (`v1.14.2`).
pub fn release(v: &str) -> bool {
    let Some(rest) = v.strip_prefix('v') else { return false };
    let parts: Vec<&str> = rest.split('.').collect();
    parts.len() == 3 && parts.iter().all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

/// `v1.14.2` as numbers, for ordering.
pub fn version_key(v: &str) -> Vec<u32> {
    v.trim_start_matches('v').split('.').map(|p| p.parse().unwrap_or(0)).collect()
}

/// The contract the configurations are generated for: `config_contract`
/// when set, else what the prior state recorded, else the minor of
/// `talos_version`.
pub fn contract(config: &Value, prior: &Value) -> Option<String> {
    match config.attr("config_contract") {
        Value::String(s) => return Some(s.clone()),
        Value::Unknown => return None,
        _ => {}
    }
    if let Some(s) = prior.attr("config_contract").as_str() {
        return Some(s.to_string());
    }
    let v = config.attr("talos_version").as_str()?;
    let c: VersionContract = v.parse().ok()?;
    Some(format!("v1.{}", c.minor()))
}

/// The per-node patch that names the node: a `HostnameConfig` document
/// from v1.12 on, `machine.network.hostname` before.
fn hostname_patch(contract: &str, name: &str) -> String {
    let multi = contract.parse::<VersionContract>().is_ok_and(|c| c.at_least(12));
    if multi {
        format!("apiVersion: v1alpha1\nkind: HostnameConfig\nauto: \"off\"\nhostname: {name}\n")
    } else {
        format!("machine:\n  network:\n    hostname: {name}\n")
    }
}

/// Everything one node's configuration is rendered from.
#[derive(Debug, Clone)]
pub struct Inputs<'a> {
    /// The resource's configuration.
    pub config: &'a Value,
    /// The contract (`v1.13`).
    pub contract: String,
    /// The installer image with its tag.
    pub installer: String,
    /// The Kubernetes version to render.
    pub kubernetes_version: String,
}

/// Renders `m`'s machine configuration (the data source's machinery), or
/// diagnostics that name the member's block.
pub fn render(inputs: &Inputs<'_>, m: &Member) -> Result<String, Vec<Diagnostic>> {
    let c = inputs.config;
    let mut patches = strings(c.attr("config_patches"));
    patches.extend(strings(c.attr(match m.role {
        Role::ControlPlane => "control_plane_patches",
        Role::Worker => "worker_patches",
    })));
    patches.push(hostname_patch(&inputs.contract, &m.name));
    patches.extend(m.patches.iter().cloned());
    let ds = Value::object([
        ("cluster_name", c.attr("cluster_name").clone()),
        ("cluster_endpoint", c.attr("cluster_endpoint").clone()),
        ("machine_type", Value::string(m.role.as_str())),
        ("machine_secrets", c.attr("machine_secrets").clone()),
        ("talos_version", Value::string(inputs.contract.clone())),
        ("kubernetes_version", Value::string(inputs.kubernetes_version.clone())),
        ("install_disk", Value::string(m.install_disk.clone())),
        ("install_image", Value::string(inputs.installer.clone())),
        ("config_patches", Value::List(patches.into_iter().map(Value::string).collect())),
    ]);
    let mut diags = Diagnostics::default();
    let rendered = crate::resources::machine_configuration::render(&ds, &mut diags);
    match rendered {
        Some(mc) if !diags.has_errors() => Ok(mc.to_yaml()),
        _ => Err(diags
            .into_iter()
            .filter(|d| d.severity == crate::plugin::diag::Severity::Error)
            .map(|d| {
                let detail = format!("Node {:?}: {}", m.name, d.detail);
                Diagnostic::error(d.summary, detail).at(m.path("config_patches"))
            })
            .collect()),
    }
}

/// What a node's active configuration says ([`super::ops::observe`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Active {
    /// Its SHA-256.
    pub hash: String,
    /// Its kubelet version (`v1.33.1`).
    pub kubelet: String,
    /// Its installer repository (`machine.install.image` without the tag).
    pub installer: String,
}

impl Active {
    /// From a configuration's text.
    pub fn of(text: &str) -> Active {
        Active { hash: config_hash(text), kubelet: kubelet_of(text), installer: install_repository_of(text) }
    }
}

/// One entry of `nodes`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Status {
    /// `controlplane` or `worker`.
    pub role: String,
    /// Its address.
    pub address: String,
    /// The Talos version it runs.
    pub talos_version: String,
    /// The kubelet version of its configuration (`v1.33.1`).
    pub kubernetes_version: String,
    /// The hash of its active configuration.
    pub config_hash: String,
    /// The installer repository it was installed from (`machine.install.image`
    /// without its tag; the Image Factory's carries the schematic). Empty
    /// in states written before it was recorded: unknown.
    pub installer: String,
}

impl Status {
    /// The status a node has once it runs `text` at `version`.
    pub fn of(m: &Member, version: &str, text: &str) -> Status {
        Status {
            role: m.role.as_str().to_string(),
            address: m.address.clone(),
            talos_version: version.to_string(),
            kubernetes_version: kubelet_of(text),
            config_hash: config_hash(text),
            installer: install_repository_of(text),
        }
    }

    /// Takes what a node reports ([`super::ops::observe`]): its version
    /// and, when it has one, its active configuration's hash, kubelet and
    /// installer repository.
    pub fn observed(&mut self, version: String, active: Option<Active>) {
        let a = active.unwrap_or_default();
        self.talos_version = version;
        self.config_hash = a.hash;
        self.kubernetes_version = a.kubelet;
        self.installer = a.installer;
    }

    /// As a value of `nodes`.
    pub fn to_value(&self) -> Value {
        Value::object([
            ("role", Value::string(self.role.clone())),
            ("address", Value::string(self.address.clone())),
            ("talos_version", Value::string(self.talos_version.clone())),
            ("kubernetes_version", Value::string(self.kubernetes_version.clone())),
            ("config_hash", Value::string(self.config_hash.clone())),
            ("installer", Value::string(self.installer.clone())),
        ])
    }

    fn from_value(v: &Value) -> Status {
        let s = |k: &str| v.attr(k).as_str().unwrap_or_default().to_string();
        Status {
            role: s("role"),
            address: s("address"),
            talos_version: s("talos_version"),
            kubernetes_version: s("kubernetes_version"),
            config_hash: s("config_hash"),
            installer: s("installer"),
        }
    }
}

/// An image reference without its tag or digest
/// (`factory.talos.dev/installer/<id>:v1.13.9` → `factory.talos.dev/installer/<id>`;
/// a registry port stays).
pub fn repository(image: &str) -> &str {
    let image = image.split('@').next().unwrap_or(image);
    match image.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => repo,
        _ => image,
    }
}

/// The installer repository a configuration names (`machine.install.image`),
/// empty when it names none.
pub fn install_repository_of(text: &str) -> String {
    let Ok(docs) = crate::talos::yaml::parse_documents(text) else { return String::new() };
    docs.iter()
        .find_map(|d| {
            d.get("machine").and_then(|m| m.get("install")).and_then(|i| i.get("image")).and_then(|v| v.as_str())
        })
        .map(|i| repository(i).to_string())
        .unwrap_or_default()
}

/// The kubelet version of a configuration, `v1.33.1` (empty when none).
pub fn kubelet_of(text: &str) -> String {
    crate::resources::machine_configuration_apply::kubelet_version(text)
        .map(|v| if v.starts_with('v') { v } else { format!("v{v}") })
        .unwrap_or_default()
}

/// `nodes` of a state (empty when null).
pub fn statuses(state: &Value) -> BTreeMap<String, Status> {
    state
        .attr("nodes")
        .as_map()
        .map(|m| m.iter().map(|(k, v)| (k.clone(), Status::from_value(v))).collect())
        .unwrap_or_default()
}

/// `nodes` as a value.
pub fn statuses_value(all: &BTreeMap<String, Status>) -> Value {
    Value::Map(all.iter().map(|(k, s)| (k.clone(), s.to_value())).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names() {
        for ok in ["cp-1", "w0", "a"] {
            assert!(hostname_ok(ok), "{ok}");
        }
        for bad in ["", "-a", "a-", "CP1", "a.b", &"x".repeat(64)] {
            assert!(!hostname_ok(bad), "{bad}");
        }
    }

    #[test]
    fn repositories_drop_the_tag_not_the_port() {
        assert_eq!(repository("factory.talos.dev/installer/abc:v1.13.9"), "factory.talos.dev/installer/abc");
        assert_eq!(repository("127.0.0.1:5000/installer:v1.13.9"), "127.0.0.1:5000/installer");
        assert_eq!(repository("127.0.0.1:5000/installer"), "127.0.0.1:5000/installer");
        assert_eq!(repository("ghcr.io/siderolabs/installer:v1.13.9@sha256:00"), "ghcr.io/siderolabs/installer");
        let text = "version: v1alpha1\nmachine:\n  install:\n    image: ghcr.io/siderolabs/installer:v1.13.9\n";
        assert_eq!(install_repository_of(text), "ghcr.io/siderolabs/installer");
    }

    #[test]
    fn installers_and_contracts() {
        let c = Value::object([("talos_version", Value::string("v1.14.2"))]);
        assert_eq!(installer(&c, "v1.14.2").unwrap(), "ghcr.io/siderolabs/installer:v1.14.2");
        let f = Value::object([("schematic_id", Value::string("abc"))]);
        assert_eq!(installer(&f, "v1.14.2").unwrap(), "factory.talos.dev/installer/abc:v1.14.2");
        assert_eq!(contract(&c, &Value::Null).unwrap(), "v1.14");
        let prior = Value::object([("config_contract", Value::string("v1.13"))]);
        assert_eq!(contract(&c, &prior).unwrap(), "v1.13", "an upgrade keeps the contract");
        assert!(release("v1.14.2") && !release("1.14.2") && !release("v1.14") && !release("v1.14.2-rc1"));
        assert!(version_key("v1.14.10") > version_key("v1.14.9"));
    }

    #[test]
    fn hostname_patches_follow_the_contract() {
        assert!(hostname_patch("v1.13", "cp-1").contains("kind: HostnameConfig"));
        assert!(
            hostname_patch("v1.11", "cp-1").contains("hostname: cp-1")
                && !hostname_patch("v1.11", "x").contains("kind")
        );
    }
}
