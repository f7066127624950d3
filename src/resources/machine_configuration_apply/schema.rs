//! The schema of `proxtalos_machine_configuration_apply`.

use std::time::Duration;

use crate::plugin::timeouts::{self, Operation};
use crate::plugin::{Attribute, NestedBlock, Nesting, Schema};
use crate::resources::shared::talos_node::{client_attr, drain_option_attrs, endpoint_attr, node_attr};

/// Default create timeout: install and reboot included.
pub const CREATE_TIMEOUT: Duration = Duration::from_secs(20 * 60);
/// Default update timeout.
pub const UPDATE_TIMEOUT: Duration = Duration::from_secs(20 * 60);
/// Default delete timeout (reset and the wait for maintenance mode).
pub const DELETE_TIMEOUT: Duration = Duration::from_secs(10 * 60);

/// The apply modes users may choose.
pub const APPLY_MODES: &[&str] = &["auto", "reboot", "no_reboot", "staged", "try"];

const DESCRIPTION: &str = "Applies a machine configuration to one Talos node and **waits** until the node runs it. \
A node in maintenance mode (fresh from the ISO) is dialled directly, gets the configuration, installs, reboots and \
is done when it answers with mutual TLS and reports the applied configuration as active. A configured node gets \
changes in `apply_mode`. At plan time a reachable node is asked for a dry run: its answer (with the redacted \
diff) shows as a warning, and a configuration the node rejects fails the plan. Every refresh reads the node's active configuration back, so a change made behind Terraform's back \
shows in the next plan as a diff of `machine_configuration_redacted` (an unreachable node only gives a warning). \
Destroy can reset the node back to maintenance mode (`on_destroy`).";

/// The schema.
pub fn schema() -> Schema {
    Schema::new(DESCRIPTION, attributes()).blocks(vec![
        timeouts::block(&[
            (Operation::Create, CREATE_TIMEOUT),
            (Operation::Update, UPDATE_TIMEOUT),
            (Operation::Delete, DELETE_TIMEOUT),
        ]),
        upgrade_block(),
        on_destroy_block(),
    ])
}

/// `on_destroy { … }`: a block for the same reason as `upgrade` (Terraform
/// 1.0.0–1.0.4 crash on a null single nested attribute, fixed in 1.0.5 by
/// hashicorp/terraform#29411).
fn on_destroy_block() -> NestedBlock {
    NestedBlock::new(
        "on_destroy",
        Nesting::Single,
        "What destroy does to the node. Changes take effect after an apply (they live in state).",
        vec![
            Attribute::bool("reset").optional().description(
                "Reset the node on destroy: wipe the `STATE` and `EPHEMERAL` volumes (configuration and data, never \
the whole disk). Not set: `false`, destroy only forgets the node.",
            ),
            Attribute::bool("graceful").optional().description(
                "Cordon, drain and leave etcd before the reset. Not set: `true`. The last etcd member cannot leave: \
set `false` when destroying a whole cluster.",
            ),
            Attribute::bool("reboot").optional().description(
                "Reboot after the reset, so the node comes back in maintenance mode (the destroy waits for it); \
otherwise it powers off. Not set: `false`.",
            ),
        ],
    )
}

/// `upgrade { … }`: a block, not a nested attribute: Terraform 1.0.0–1.0.4
/// crash planning an update of a resource whose single nested attribute is
/// null in the configuration (`objchange.proposedNewNestedType`; fixed in
/// 1.0.5, hashicorp/terraform#29411), and 1.0.3 is a version we support.
fn upgrade_block() -> NestedBlock {
    NestedBlock::new(
        "upgrade",
        Nesting::Single,
        "How an in-place upgrade (see `talos_version`) treats the node.",
        [
            Attribute::bool("drain").optional().description(
                "Cordon and drain the Node before rebooting it into the new version (Talos ≥ v1.13, where the \
client drains; older Talos drains itself). The Kubernetes credentials come from the node when it is a control \
plane, else from `endpoint`. Not set: `true`.",
            ),
            Attribute::string("drain_timeout").optional().description(
                "How long the evictions may take (PodDisruptionBudgets are respected); the upgrade fails, with the \
Node uncordoned, when they do not finish. Not set: `\"5m\"`, as talosctl.",
            ),
            Attribute::string("reboot_mode").optional().description(
                "`\"default\"` (kexec where the platform allows it) or `\"powercycle\"`. Not set: `\"default\"`.",
            ),
        ]
        .into_iter()
        .chain(drain_option_attrs())
        .collect(),
    )
}

fn attributes() -> Vec<Attribute> {
    vec![
        Attribute::string("id").computed().use_state_for_unknown().description("The node address."),
        node_attr("to configure"),
        endpoint_attr(),
        client_attr(),
        Attribute::string("machine_configuration").optional().sensitive().description(
            "The machine configuration YAML to apply, usually \
`data.proxtalos_machine_configuration.<name>.machine_configuration`. Stored in state (sensitive). Exactly one of \
this and `machine_configuration_wo` must be set.",
        ),
        Attribute::string("machine_configuration_wo").optional().sensitive().write_only().description(
            "Write-only variant of `machine_configuration` (Terraform ≥ 1.11): never stored in plan or state, \
e.g. from the ephemeral `proxtalos_machine_configuration`. Changes are still detected through \
`machine_configuration_hash`; bump `machine_configuration_wo_version` to force a re-apply.",
        ),
        Attribute::string("machine_configuration_wo_version").optional().description(
            "Any string; changing it re-applies `machine_configuration_wo` (in-place update). Only needed when \
the hash cannot see a change, e.g. after a refresh could not reach the node.",
        ),
        Attribute::string("machine_configuration_hash").computed().description(
            "SHA-256 (hex) of the configuration in canonical form (documents re-emitted). Planned from the \
configuration given; a refresh sets it from the node's active configuration, so drift shows as a change here \
too when the configuration is write-only.",
        ),
        Attribute::string("machine_configuration_redacted").computed().description(
            "The configuration with every secret replaced by `******` (not sensitive): planned from the \
configuration given, read back from the node on refresh, so a plan shows drift and changes line by line.",
        ),
        Attribute::string("apply_mode").optional().default("auto").description(
            "How changes to a configured node are applied: `\"auto\"` (the node decides; Talos ≤ v1.13 reboots \
when the change needs it, v1.14 never reboots), `\"reboot\"` (apply and reboot; on v1.14, which dropped that \
mode, the provider applies without a reboot and then calls Reboot), `\"no_reboot\"` (fails if the change needs a \
reboot), `\"staged\"` (written for the next boot; drift is not reported while staged), `\"try\"` (applied now and \
rolled back by the node after `try_timeout`; the next plan shows the rollback as drift, so follow up with \
`\"no_reboot\"` to keep the change). The first apply to a node in maintenance mode always installs (`auto`). \
An apply that reboots the node is done only once the node has booted again (a new boot id, as talosctl checks) \
and runs the configuration.",
        ),
        Attribute::string("try_timeout").optional().default("1m").description(
            "With `apply_mode = \"try\"`: how long the node keeps the configuration before rolling back, as a \
duration such as `\"1m\"` (the Talos default) or `\"10m\"`.",
        ),
        Attribute::string("talos_version").computed().description(
            "The Talos version the node runs (`v1.14.2`), read on every refresh. When the configuration's installer \
image (`machine.install.image`, e.g. from `install_image` of `proxtalos_machine_configuration`) carries another \
version, the plan shows that version here and an update **upgrades the node in place** after applying the \
configuration: Talos ≥ v1.13 pulls and installs the image, the node is cordoned and drained (`upgrade`), \
rebooted and uncordoned once it runs the new version; older Talos upgrades itself with the legacy call. A node \
that boots its old version again (the new image did not boot) fails the apply, and this attribute keeps what \
the node runs, so the next plan shows the upgrade again. The nodes of one cluster upgrade one at a time within an \
apply (never two control planes down, never two nodes drained at once), in the order Terraform reaches them; \
`proxtalos_cluster` orders them (control planes first, health gates between nodes).",
        ),
        Attribute::string("resolved_apply_mode")
            .computed()
            .description("The mode the node reported for the last apply (`auto` resolved to `reboot` or `no_reboot`)."),
    ]
}
