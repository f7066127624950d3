//! In-place OS upgrades of `proxtalos_machine_configuration_apply` (issue
//! 14, "the granular path gets in-place upgrades too"): when the
//! configuration's installer image (`machine.install.image`, or
//! `UnattendedInstallConfig.installer.image`) carries a Talos version other
//! than the one the node runs, the update upgrades the node after applying
//! the configuration (`day2::node_upgrade`), instead of leaving it on the old
//! OS while the plan says done. `talos_version` shows the change in the
//! plan and reads drift back. Only `proxtalos_cluster` orders nodes (control
//! planes first, health gates between them); here each node upgrades when
//! its resource updates, and the nodes of one cluster take turns within the
//! provider.

use std::time::Duration;

use crate::day2::node_upgrade::{self, Done, Drain, NodeUpgrade, UpgradeError};
use crate::plugin::timeouts::parse_duration;
use crate::plugin::{ApplyResponse, AttributePath, Diagnostic, Diagnostics, Value};
use crate::resources::shared::talos_node::{NodeArgs, attempt_timeouts};
use crate::talos::api::RebootMode;
use crate::talos::api::wait::Until;

/// The installer image a configuration names and the Talos version in its
/// tag (`ghcr.io/siderolabs/installer:v1.14.2` → `v1.14.2`; a digest after
/// the tag is kept in the image and left out of the version). None when the
/// configuration names none (Talos installs its own version) or the tag is
/// not a release version.
pub fn installer_of(text: &str) -> Option<(String, String)> {
    let docs = crate::talos::yaml::parse_documents(text).ok()?;
    let image = docs.iter().find_map(|d| {
        let legacy = d.get("machine").and_then(|m| m.get("install")).and_then(|i| i.get("image"));
        let typed = (d.get("kind").and_then(|k| k.as_str()) == Some("UnattendedInstallConfig"))
            .then(|| d.get("installer").and_then(|i| i.get("image")))
            .flatten();
        legacy.or(typed).and_then(|v| v.as_str()).map(str::to_string)
    })?;
    let without_digest = image.split('@').next().unwrap_or_default();
    let (_, tag) = without_digest.rsplit_once(':')?;
    let mut parts = tag.strip_prefix('v')?.split('.');
    let release = parts.by_ref().take(3).filter(|p| p.parse::<u32>().is_ok()).count() == 3 && parts.next().is_none();
    release.then(|| (image.clone(), tag.to_string()))
}

/// Whether the configuration is a control plane's (`machine.type`).
pub fn control_plane(text: &str) -> bool {
    crate::talos::yaml::parse_documents(text).ok().is_some_and(|docs| {
        docs.iter().any(|d| {
            matches!(
                d.get("machine").and_then(|m| m.get("type")).and_then(|t| t.as_str()),
                Some("controlplane" | "init")
            )
        })
    })
}

/// The minor of a `vX.Y.Z` tag.
fn minor(tag: &str) -> u32 {
    tag.trim_start_matches('v').split('.').nth(1).and_then(|m| m.parse().ok()).unwrap_or(0)
}

/// Whether `a` is a later release than `b` (`v1.14.2` > `v1.14.0`).
fn newer(a: &str, b: &str) -> bool {
    let parse =
        |t: &str| -> Vec<u32> { t.trim_start_matches('v').split('.').map(|p| p.parse().unwrap_or(0)).collect() };
    parse(a) > parse(b)
}

/// The `upgrade` block's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Cordon and drain before the reboot (v1.13+; older Talos drains itself).
    pub drain: bool,
    /// How long the drain may take.
    pub drain_timeout: Duration,
    /// DaemonSet and emptyDir pods.
    pub drain_options: crate::kubernetes::DrainOptions,
    /// `default` (kexec) or `powercycle`.
    pub reboot_mode: RebootMode,
}

impl Policy {
    /// From the configuration (defaults where unset).
    pub fn of(v: &Value) -> Policy {
        let u = v.attr("upgrade");
        Policy {
            drain: u.attr("drain").as_bool().unwrap_or(true),
            drain_timeout: u
                .attr("drain_timeout")
                .as_str()
                .and_then(|s| parse_duration(s).ok())
                .unwrap_or(Duration::from_secs(300)),
            drain_options: crate::resources::shared::talos_node::drain_options(u),
            reboot_mode: match u.attr("reboot_mode").as_str() {
                Some("powercycle") => RebootMode::Powercycle,
                _ => RebootMode::Default,
            },
        }
    }
}

/// The reboot modes users may choose.
pub const REBOOT_MODES: &[&str] = &["default", "powercycle"];

/// Validate-time checks of the `upgrade` block.
pub fn validate(config: &Value, diags: &mut Diagnostics) {
    let u = config.attr("upgrade");
    if let Some(s) = u.attr("drain_timeout").as_str()
        && let Err(e) = parse_duration(s)
    {
        diags.error_at(
            AttributePath::attr("upgrade").and_attr("drain_timeout"),
            "Invalid duration",
            format!("{s:?} is not a duration such as \"5m\" or \"1h\": {e}"),
        );
    }
    if let Some(m) = u.attr("reboot_mode").as_str()
        && !REBOOT_MODES.contains(&m)
    {
        diags.error_at(
            AttributePath::attr("upgrade").and_attr("reboot_mode"),
            "Unknown reboot mode",
            format!("{m:?} is not one of \"default\", \"powercycle\"."),
        );
    }
}

/// The installer `text` names when it is another installer (repository)
/// of the same Talos version than `before` (the prior configuration):
/// another Image Factory schematic, so other extensions, which only an
/// upgrade installs (`talosctl upgrade --image`).
pub fn reinstall(before: Option<&str>, text: &str) -> Option<String> {
    let (old, old_v) = installer_of(before?)?;
    let (new, new_v) = installer_of(text)?;
    let repo = crate::resources::cluster::model::repository;
    (old_v == new_v && repo(&old) != repo(&new)).then_some(new)
}

/// Plan: `talos_version` is what the node will run. For a configured node
/// whose configuration names an installer of another version than the one
/// it runs (as last read), the plan says so (the version, and a warning
/// with the steps); otherwise the version stays. A worker that Talos
/// ≥ v1.13 leaves to the client to drain needs a control plane to ask for
/// the Kubernetes credentials: without `endpoint` that is a plan error.
pub fn plan(prior: &Value, config: &Value, plan: &mut Value, text: Option<&str>, diags: &mut Diagnostics) {
    if prior.is_null() {
        plan.set_attr("talos_version", Value::Unknown);
        return;
    }
    let running = prior.attr("talos_version").clone();
    let node = config.attr("node").as_str().unwrap_or("?").to_string();
    // The configuration is known only at apply: so is whether it upgrades.
    let Some(text) = text else {
        plan.set_attr("talos_version", Value::Unknown);
        return;
    };
    let Some((image, wanted)) = installer_of(text) else {
        plan.set_attr("talos_version", running);
        return;
    };
    let Some(from) = running.as_str() else {
        // Not read yet (a refresh that could not reach the node, or state
        // from before this attribute): the apply reads it and upgrades if
        // it differs.
        plan.set_attr("talos_version", Value::Unknown);
        diags.warning(
            format!("Talos node {node} may be upgraded in place to {wanted}"),
            format!(
                "The version the node runs is not known yet (it was not read back). If it is not {wanted}, the apply \
upgrades it from {image}."
            ),
        );
        return;
    };
    if wanted == from {
        plan.set_attr("talos_version", running.clone());
        if let Some(image) = reinstall(prior.attr("machine_configuration_redacted").as_str(), text) {
            if config.attr("apply_mode").as_str() == Some("try") {
                return diags.error_at(
                    AttributePath::attr("apply_mode"),
                    format!("Talos node {node} cannot be reinstalled with apply_mode \"try\""),
                    "The configuration names another installer of the version the node runs, which the node gets \
by an upgrade, and its reboot would end the trial. Apply the configuration with another mode first.",
                );
            }
            diags.warning(
                format!("Talos node {node} will be reinstalled from another installer of {from}"),
                format!(
                    "The configuration's installer is now {image} (another Image Factory schematic: other \
extensions). Changing `machine.install.image` alone would leave the old ones running, so after the configuration \
is applied the node is upgraded in place to the same version from it: install, drain where Talos leaves it to the \
client, reboot, uncordon."
                ),
            );
        }
        return;
    }
    match config.attr("apply_mode").as_str() {
        Some("try") => {
            diags.error_at(
                AttributePath::attr("apply_mode"),
                format!("Talos node {node} cannot be upgraded with apply_mode \"try\""),
                format!(
                    "The configuration also moves the node from {from} to {wanted}, and the upgrade's reboot would end \
the trial (the node rolls the configuration back). Apply the configuration with another mode first."
                ),
            );
            return;
        }
        Some("staged") => diags.warning(
            format!("Talos node {node}: the upgrade's reboot activates the staged configuration"),
            "The configuration is staged for the next boot, and the in-place upgrade reboots the node, so it is \
active once the upgrade is done.",
        ),
        _ => {}
    }
    // The installer's preflight refuses hosts older than its release takes.
    if newer(&wanted, from)
        && let Err(e) = crate::day2::compat::upgradeable_from(from, &wanted)
    {
        let attr = if config.attr("machine_configuration").is_null() {
            "machine_configuration_wo"
        } else {
            "machine_configuration"
        };
        diags.error_at(
            AttributePath::attr(attr),
            format!("Talos node {node} cannot be upgraded from {from} to {wanted}"),
            format!("The configuration's installer is {image}: {e}."),
        );
        return;
    }
    plan.set_attr("talos_version", Value::string(wanted.clone()));
    let policy = Policy::of(config);
    let client_drains = minor(from) >= 13;
    let cp = control_plane(text);
    if client_drains && policy.drain && !cp && config.attr("endpoint").is_null() {
        diags.error_at(
            AttributePath::attr("endpoint"),
            format!("Talos node {node} cannot be drained for its upgrade"),
            format!(
                "The configuration upgrades the node from {from} to {wanted}. From Talos v1.13 the client drains a node \
before its reboot, with Kubernetes credentials from a control plane, and this worker has none to ask: set `endpoint` \
to a control plane's address, or set `drain = false` in an `upgrade` block to reboot it with its pods."
            ),
        );
        return;
    }
    let steps = match (client_drains, policy.drain) {
        (true, true) => {
            "pull and install the image, cordon and drain the Node, reboot, wait until it runs the new version, uncordon"
        }
        (true, false) => "pull and install the image, reboot (no drain), wait until it runs the new version",
        (false, _) => {
            "Talos's legacy upgrade: the node drains, installs and reboots itself; wait until it runs the new version"
        }
    };
    let extra = if cp {
        " Nodes of one cluster upgrade one at a time within this apply; a control plane forfeits etcd leadership \
before its reboot and is done once etcd runs again on it."
    } else {
        " Nodes of one cluster upgrade one at a time within this apply."
    };
    let verb = if newer(&wanted, from) { "upgraded" } else { "downgraded" };
    diags.warning(
        format!("Talos node {node} will be {verb} in place: {from} → {wanted}"),
        format!("The configuration's installer is {image}. After the configuration is applied: {steps}.{extra}"),
    );
}

/// What the apply knows of `talos_version`: planned, and as it was before.
#[derive(Debug, Clone)]
pub struct Versions {
    /// The planned value (Unknown when the plan could not tell).
    pub planned: Value,
    /// The value before this apply (Null on create).
    pub prior: Value,
    /// This apply creates the resource (a create never upgrades).
    pub create: bool,
    /// The configuration names another installer of the same version
    /// ([`reinstall`]): the node is upgraded to it even so.
    pub reinstall: bool,
}

/// Apply: upgrades the node when the plan said so (or, when the plan could
/// not tell, when the configuration's installer carries another version
/// than it runs), and records the version the node runs at the end in
/// `state`; a known planned value is what a successful apply records.
pub async fn run(args: &NodeArgs, config: &Value, text: &str, v: &Versions, until: &Until, resp: &mut ApplyResponse) {
    let target = args.target(attempt_timeouts());
    let running = running_version(args).await;
    let record = |resp: &mut ApplyResponse, value: Value| resp.state.set_attr("talos_version", value);
    let known = |value: Option<String>| value.map_or(Value::Null, Value::string);
    let installer = installer_of(text);
    let wanted = match (&v.planned, &installer) {
        // A create never upgrades: a node installed now runs its
        // installer's version; one that was configured already is
        // recorded as it is (the next plan shows any upgrade).
        _ if v.create => None,
        (Value::String(p), Some((image, w))) if v.reinstall && p == w => Some((image.clone(), w.clone())),
        (Value::String(p), _) if Some(p.as_str()) == v.prior.as_str() => None,
        (Value::String(p), Some((image, w))) if p == w => Some((image.clone(), w.clone())),
        (Value::Unknown, Some((image, w))) => Some((image.clone(), w.clone())),
        _ => None,
    };
    let Some((image, wanted)) = wanted else {
        let value = match &v.planned {
            Value::String(_) => v.planned.clone(),
            _ => known(running),
        };
        return record(resp, value);
    };
    let Some(from) = running.clone() else {
        record(resp, v.prior.clone());
        return resp.diags.error(
            format!("Cannot upgrade Talos node {} to {wanted}", args.node),
            "The configuration is applied, but the version the node runs could not be read, so the upgrade did not \
start (it decides whether and how the node is drained). Run apply again once the node answers.",
        );
    };
    if from == wanted && !v.reinstall {
        return record(resp, Value::string(wanted));
    }
    let policy = Policy::of(config);
    let cp = control_plane(text);
    let drain = match (policy.drain, minor(&from) >= 13) {
        (true, true) => match kube_client(args, cp).await {
            Ok(kube) => Some(Drain { kube, timeout: policy.drain_timeout, options: policy.drain_options }),
            Err(d) => {
                record(resp, Value::string(from));
                return resp.diags.push(d);
            }
        },
        _ => None,
    };
    let u = NodeUpgrade {
        target,
        image,
        version: wanted.clone(),
        reinstall: v.reinstall,
        cluster: args.creds.ca.clone(),
        control_plane: cp,
        drain,
        reboot_mode: policy.reboot_mode,
        settle: None,
    };
    match node_upgrade::upgrade(&u, until).await {
        Ok(Done::AlreadyThere) | Ok(Done::Upgraded { .. }) => record(resp, Value::string(wanted)),
        Err(e) => {
            // State says what the node runs now, so the next plan shows
            // the upgrade again if it did not happen.
            let now = running_version(args).await;
            record(resp, known(now.or(Some(from))));
            resp.diags.push(upgrade_diag(&args.node, &wanted, &e));
        }
    }
}

/// The Talos version the node runs, if it answers.
async fn running_version(args: &NodeArgs) -> Option<String> {
    args.target(attempt_timeouts()).connect().await.ok()?.version_tag().await.ok()
}

fn upgrade_diag(node: &str, wanted: &str, e: &UpgradeError) -> Diagnostic {
    tracing::warn!(node = %node, error = %crate::plugin::diag::error_chain(e), "in-place upgrade failed");
    let summary = if e.is_stopped() {
        format!("Upgrade of Talos node {node} to {wanted} interrupted")
    } else {
        format!("Cannot upgrade Talos node {node} to {wanted}")
    };
    let next = if e.is_stopped() {
        " Terraform asked the provider to stop. The configuration is applied; run apply again to finish the upgrade."
    } else {
        " The configuration is applied and `talos_version` records what the node runs, so the next plan shows the \
upgrade again; after fixing the cause, run apply again (or roll the node back with `talosctl rollback`)."
    };
    Diagnostic::error(summary, format!("{e}.{next}"))
}

/// An admin client of the cluster's Kubernetes API, with the kubeconfig a
/// control plane mints: the node itself when it is one, else `endpoint`.
async fn kube_client(args: &NodeArgs, control_plane: bool) -> Result<crate::kubernetes::Client, Diagnostic> {
    let source = if control_plane { args.node.clone() } else { args.endpoint.clone().unwrap_or_default() };
    let from = NodeArgs { node: source.clone(), endpoint: None, creds: args.creds.clone() };
    let fail = |why: String| {
        Diagnostic::error(
            format!("Cannot drain Talos node {} for its upgrade", args.node),
            format!(
                "The Kubernetes credentials come from control plane {source}: {why}. Set `endpoint` to a reachable \
control plane, or set `drain = false` in an `upgrade` block."
            ),
        )
        .at(AttributePath::attr("endpoint"))
    };
    let text = async { from.target(attempt_timeouts()).connect().await?.kubeconfig().await }
        .await
        .map_err(|e| fail(crate::talos::api::error::chain(&e)))?;
    let kc = crate::kubernetes::Kubeconfig::parse(&text).map_err(|e| fail(e.to_string()))?;
    crate::kubernetes::Client::new(&kc, crate::kubernetes::Timeouts::default()).map_err(|e| fail(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::plan as plan_upgrade;
    use super::*;

    #[test]
    fn another_installer_of_the_same_version_is_a_reinstall() {
        let text = |image: &str| format!("version: v1alpha1\nmachine:\n  install:\n    image: {image}\n");
        let ghcr = text("ghcr.io/siderolabs/installer:v1.14.0");
        let factory = text("factory.talos.dev/installer/abc:v1.14.0");
        assert_eq!(reinstall(Some(&ghcr), &factory).as_deref(), Some("factory.talos.dev/installer/abc:v1.14.0"));
        assert_eq!(reinstall(Some(&ghcr), &ghcr), None, "the same installer");
        assert_eq!(reinstall(Some(&ghcr), &text("factory.talos.dev/installer/abc:v1.14.2")), None, "an upgrade");
        assert_eq!(reinstall(None, &factory), None, "nothing recorded");
    }

    #[test]
    fn installer_versions() {
        let legacy = "version: v1alpha1\nmachine:\n  type: worker\n  install:\n    image: ghcr.io/siderolabs/installer:v1.14.2\n";
        assert_eq!(installer_of(legacy), Some(("ghcr.io/siderolabs/installer:v1.14.2".into(), "v1.14.2".into())));
        assert!(!control_plane(legacy));
        let typed = "version: v1alpha1\nmachine:\n  type: controlplane\n---\napiVersion: v1alpha1\nkind: UnattendedInstallConfig\ninstaller:\n  image: factory.talos.dev/installer/abc:v1.15.0@sha256:0123\n";
        assert_eq!(
            installer_of(typed),
            Some(("factory.talos.dev/installer/abc:v1.15.0@sha256:0123".into(), "v1.15.0".into()))
        );
        assert!(control_plane(typed));
        for none in [
            "version: v1alpha1\nmachine:\n  install:\n    disk: /dev/sda\n",
            "version: v1alpha1\nmachine:\n  install:\n    image: my/installer:latest\n",
            "version: v1alpha1\nmachine:\n  install:\n    image: my/installer:v1.14.2-rc1\n",
        ] {
            assert_eq!(installer_of(none), None, "{none}");
        }
    }

    #[test]
    fn an_installer_that_does_not_take_the_host_is_a_plan_error() {
        // pkg/machinery/compatibility/talos113: hosts from 1.11.0 on.
        let text = "version: v1alpha1\nmachine:\n  type: worker\n  install:\n    image: ghcr.io/siderolabs/installer:v1.13.9\n";
        let prior = Value::object([("talos_version", Value::string("v1.10.7"))]);
        let config = Value::object([
            ("node", Value::string("10.0.0.21")),
            ("machine_configuration", Value::string(text)),
            ("endpoint", Value::string("10.0.0.11")),
        ]);
        let mut plan = config.clone();
        let mut diags = Diagnostics::default();
        plan_upgrade(&prior, &config, &mut plan, Some(text), &mut diags);
        assert_eq!(diags.0.len(), 1, "{:?}", diags.0);
        assert_eq!(diags.0[0].path.as_ref().map(|p| p.to_string()).as_deref(), Some("machine_configuration"));
        assert!(
            diags.0[0].detail.contains("host version 1.10.7 is too old to upgrade to Talos 1.13.9"),
            "{:?}",
            diags.0
        );
        let prior = Value::object([("talos_version", Value::string("v1.11.6"))]);
        let mut diags = Diagnostics::default();
        plan_upgrade(&prior, &config, &mut plan, Some(text), &mut diags);
        assert!(!diags.has_errors(), "{:?}", diags.0);
    }
}

/// The kubelet image's tag of a configuration (`machine.kubelet.image`, or
/// v1.15's `KubeletConfig.image`): the Kubernetes version the node runs.
pub fn kubelet_version(text: &str) -> Option<String> {
    let docs = crate::talos::yaml::parse_documents(text).ok()?;
    let image = docs.iter().find_map(|d| {
        let legacy = d.get("machine").and_then(|m| m.get("kubelet")).and_then(|k| k.get("image"));
        let typed = (d.get("kind").and_then(|k| k.as_str()) == Some("KubeletConfig")).then(|| d.get("image")).flatten();
        legacy.or(typed).and_then(|v| v.as_str()).map(str::to_string)
    })?;
    image.split('@').next()?.rsplit_once(':').map(|(_, t)| t.to_string())
}

/// Plan note for a Kubernetes version change: what this resource does (the
/// configuration: kubelet, and on a control plane its static pods) and
/// what it does not (the bootstrap manifests, the order across nodes), so
/// the plan does not promise a cluster upgrade it will not finish.
pub fn kubernetes_note(prior: &Value, config: &Value, text: Option<&str>, diags: &mut Diagnostics) {
    let (Some(text), Some(before)) = (text, prior.attr("machine_configuration_redacted").as_str()) else { return };
    let (Some(from), Some(to)) = (kubelet_version(before), kubelet_version(text)) else { return };
    if from == to {
        return;
    }
    let node = config.attr("node").as_str().unwrap_or("?");
    let what = if control_plane(text) {
        "the kubelet and the control-plane static pods (API server, controller manager, scheduler)"
    } else {
        "the kubelet"
    };
    diags.warning(
        format!("Kubernetes {from} → {to} on Talos node {node}"),
        format!(
            "Applying the configuration moves {what} of this node to {to}. It does not sync the bootstrap manifests \
(kube-proxy, CoreDNS), and each node changes when Terraform reaches it, not in the order `talosctl upgrade-k8s` \
keeps (every API server first, kubelets last). Run `talosctl upgrade-k8s --to {to}` instead, or afterwards for the \
manifests."
        ),
    );
}

#[cfg(test)]
mod kubelet_tests {
    use super::*;

    #[test]
    fn kubelet_versions() {
        assert_eq!(
            kubelet_version("machine:\n  kubelet:\n    image: ghcr.io/siderolabs/kubelet:v1.33.1\n").as_deref(),
            Some("v1.33.1")
        );
        assert_eq!(
            kubelet_version("version: v1alpha1\n---\nkind: KubeletConfig\nimage: ghcr.io/siderolabs/kubelet:v1.35.0\n")
                .as_deref(),
            Some("v1.35.0")
        );
        assert_eq!(kubelet_version("machine:\n  type: worker\n"), None);
    }
}
