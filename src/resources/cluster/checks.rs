//! Plan-time checks of `proxtalos_cluster` against what the nodes run:
//! errors for what Talos would refuse or the rollout cannot do, warnings
//! for what the apply does that the user may not expect.

use std::collections::BTreeMap;

use crate::plugin::{AttributePath, Diagnostics};

use super::Desired;
use super::model::{self, Member, Role, Status};
use super::plan::Step;

/// The versions the plan asks for go together, as Talos decides
/// (`day2::compat`): the Kubernetes version runs on the Talos version; a
/// Talos upgrade, which runs before the Kubernetes one, also runs the
/// Kubernetes version the nodes have now; and every node's installer
/// takes the host version it upgrades.
pub(super) fn versions_go_together(d: &Desired, prior: &BTreeMap<String, Status>, diags: &mut Diagnostics) {
    use crate::day2::compat;
    let (from, to) = &d.kubernetes;
    let range = || compat::kubernetes_range(&d.talos_version).map(|r| format!(" ({r})")).unwrap_or_default();
    if let Err(e) = compat::kubernetes_supported(to, &d.talos_version) {
        diags.error_at(
            AttributePath::attr("kubernetes_version"),
            "Kubernetes version not supported by Talos",
            format!("{e}{}: Talos refuses a configuration with it.", range()),
        );
        return;
    }
    let upgrading: Vec<(&String, &Status)> =
        prior.iter().filter(|(_, s)| !s.talos_version.is_empty() && s.talos_version != d.talos_version).collect();
    if upgrading.is_empty() {
        return;
    }
    if from != to
        && let Err(e) = compat::kubernetes_supported(from, &d.talos_version)
    {
        diags.error_at(
            AttributePath::attr("talos_version"),
            "Talos upgrade before the Kubernetes upgrade not possible",
            format!(
                "The rollout upgrades Talos first, with the Kubernetes version the nodes run now, then Kubernetes: \
{e}{}. Upgrade Kubernetes first (one apply with the current talos_version), then Talos.",
                range()
            ),
        );
        return;
    }
    for (name, s) in upgrading {
        if let Err(e) = compat::upgradeable_from(&s.talos_version, &d.talos_version) {
            diags.error_at(
                AttributePath::attr("talos_version"),
                "Talos upgrade path not supported",
                format!("Node {name}: {e}."),
            );
            return;
        }
    }
}

/// Plan-time checks against what runs: no downgrade, a supported
/// Kubernetes path.
pub(super) fn against_prior(d: &Desired, prior: &BTreeMap<String, Status>, diags: &mut Diagnostics) {
    for (name, s) in prior {
        if !s.talos_version.is_empty() && model::version_key(&s.talos_version) > model::version_key(&d.talos_version) {
            diags.error_at(
                AttributePath::attr("talos_version"),
                "Talos downgrade",
                format!(
                    "Node {name} runs Talos {}, later than {}. Downgrades are not rolled out; to go back on one node \
after a failed upgrade use `talosctl rollback`. (`terraform destroy` plans with the configuration too: run it \
with the version the nodes run, or with `-refresh=false`.)",
                    s.talos_version, d.talos_version
                ),
            );
            return;
        }
    }
    let (from, to) = &d.kubernetes;
    if from != to && !crate::day2::kubernetes_upgrade::supported_path(from, to) {
        diags.error_at(
            AttributePath::attr("kubernetes_version"),
            "Unsupported Kubernetes upgrade",
            format!(
                "Kubernetes {from} → {to} is not a supported upgrade path: only the same minor or the next one (upgrade \
one minor per apply)."
            ),
        );
    }
}

/// A node this cluster configured that now answers in maintenance mode
/// (reset behind Terraform's back, or something else at its address) is
/// installed again, which sends its configuration, secrets included, to a
/// peer maintenance mode cannot authenticate: the plan says so on its
/// address.
pub(super) fn warn_rejoins(
    steps: &[Step],
    prior: &BTreeMap<String, Status>,
    members: &[Member],
    diags: &mut Diagnostics,
) {
    for s in steps {
        let Step::Join { name, .. } = s else { continue };
        let (Some(was), Some(m)) = (prior.get(name), members.iter().find(|m| &m.name == name)) else { continue };
        if was.talos_version.is_empty() {
            continue;
        }
        diags.warning_at(
            m.path("address"),
            format!("Node {name} answers in maintenance mode"),
            format!(
                "This cluster configured node {name} (Talos {}), and it now answers at {} in maintenance mode, \
whose identity cannot be verified. The apply installs it again, sending its configuration with the cluster's \
secrets. If the node was not reset on purpose, check what answers at that address before applying.",
                was.talos_version, m.address
            ),
        );
    }
}

/// A plan that removes the control plane whose own address is the
/// cluster endpoint takes the API away from the kubeconfig and from every
/// client of the endpoint: the plan says so on `cluster_endpoint`.
pub(super) fn warn_endpoint_removed(
    steps: &[Step],
    prior: &BTreeMap<String, Status>,
    endpoint: &str,
    diags: &mut Diagnostics,
) {
    let Some(host) = model::endpoint_host(endpoint) else { return };
    for s in steps {
        let Step::Remove { name, role: Role::ControlPlane } = s else { continue };
        let Some(was) = prior.get(name) else { continue };
        let own = model::host_of(&was.address);
        if own != host {
            continue;
        }
        diags.warning_at(
            AttributePath::attr("cluster_endpoint"),
            format!("The cluster endpoint is on control plane {name}, which this plan removes"),
            format!(
                "{endpoint} is {name}'s own address: once {name} leaves, the kubeconfig and every client of the \
endpoint lose the Kubernetes API. Put the endpoint on the control planes' shared VIP (a Layer2VIPConfig in \
control_plane_patches), a load balancer, or a control plane that stays, and apply that first."
            ),
        );
    }
}

/// A create whose nodes already run this cluster (they answer with its
/// credentials) follows a create that stopped part-way: Terraform marked
/// that one tainted and plans to replace it, and with `on_destroy.reset`
/// the replacement's destroy resets every node before the create starts
/// again from blank disks. The plan says so, with the way to continue
/// instead. (Without reset, the replacement only forgets the old object
/// and the create adopts the nodes.)
pub(super) async fn warn_tainted_reset(
    creds: &crate::talos::client_config::ClientConfiguration,
    members: &[Member],
    cluster: &str,
    diags: &mut Diagnostics,
) {
    let answers = futures_util::future::join_all(members.iter().map(|m| async move {
        let a = super::ops::args(creds, &m.address);
        let seen = tokio::time::timeout(std::time::Duration::from_secs(5), super::ops::observe(&a)).await;
        matches!(seen, Ok(Ok((_, Some(_))))).then(|| m.name.clone())
    }))
    .await;
    let ours: Vec<String> = answers.into_iter().flatten().collect();
    if ours.is_empty() {
        return;
    }
    diags.warning_at(
        AttributePath::attr("on_destroy").and_attr("reset"),
        format!("Nodes of cluster {cluster} already run it"),
        format!(
            "{} already answer with this cluster's credentials and run a configuration: an earlier create probably \
stopped part-way, and Terraform replaces that (tainted) object. With on_destroy.reset the replacement first resets \
every node, wiping it, and the create starts over. To continue the earlier create instead, run `terraform untaint` \
on this resource and apply again.",
            ours.join(", ")
        ),
    );
}
