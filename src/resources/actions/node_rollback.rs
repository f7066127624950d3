//! `proxtalos_node_rollback`: boots a node's previous A/B image, as
//! `talosctl rollback` does (`MachineService.Rollback`: the boot loader's
//! other entry becomes the default and the node reboots), then waits for a
//! new boot id and the node running and ready, and reports the version it
//! runs now. For the upgrade that went wrong after the fact (a rollout's
//! own failed gate rolls back by itself).

use async_trait::async_trait;

use super::node::{NodeRun, node_action_attrs, validate_node_action};
use crate::data::ProxtalosData;
use crate::plugin::{Action, Attribute, AttributePath, Diagnostics, Progress, Schema, StopSignal, Value};
use crate::resources::shared::talos_node::check_version_tag;

/// The action type.
pub struct NodeRollback;

const DESCRIPTION: &str = "Boots the previous Talos image of a node, as `talosctl rollback` does: Talos keeps the \
image it ran before its last upgrade in the boot loader's other entry (A/B), makes that entry the default and \
reboots. The action waits until the node has a new boot id and is running and ready, and reports the version it \
runs. A node never upgraded has no previous image, and Talos refuses (`cannot rollback to \"\", label does not \
exist`). Afterwards `proxtalos_cluster` shows the node's version as drift: its next apply upgrades the node again \
unless `talos_version` is changed to the version rolled back to. Run it with `terraform apply \
-invoke=action.proxtalos_node_rollback.<name>`; it stops waiting on Ctrl-C.";

fn schema() -> Schema {
    let mut attrs = node_action_attrs("to roll back");
    attrs.push(Attribute::string("expect_version").optional().description(
        "The Talos version (`v1.12.6`) the node must run after the rollback; the action fails when it runs another. \
Not set: any version, reported.",
    ));
    Schema::new(DESCRIPTION, attrs)
}

#[async_trait]
impl Action<ProxtalosData> for NodeRollback {
    fn type_name(&self) -> &'static str {
        "proxtalos_node_rollback"
    }

    fn schema(&self) -> Schema {
        schema()
    }

    fn validate_config(&self, config: &Value, diags: &mut Diagnostics) {
        validate_node_action(config, diags);
        if let Some(v) = config.attr("expect_version").as_str()
            && let Err(e) = check_version_tag(v)
        {
            diags.error_at(AttributePath::attr("expect_version"), "Invalid expect_version", e);
        }
    }

    async fn invoke(
        &self,
        _data: Option<&ProxtalosData>,
        config: &Value,
        stop: &StopSignal,
        progress: &Progress,
        diags: &mut Diagnostics,
    ) {
        let Some(run) = NodeRun::read(config, stop, "rollback", diags) else { return };
        let Some((client, before)) = run.before(progress).await.map_err(|d| diags.push(d)).ok() else { return };
        progress.say(format!("asking {} to boot its previous image", run.args.node)).await;
        if let Err(d) = run.send("the rollback request", client.rollback()).await {
            return diags.push(d);
        }
        let now = match run.back(&before, progress).await {
            Ok(v) => v,
            Err(d) => return diags.push(d),
        };
        progress
            .say(format!("{} rolled back: Talos {} → {now}, running and ready", run.args.node, before.version))
            .await;
        match config.attr("expect_version").as_str() {
            Some(want) if want != now => diags.error_at(
                AttributePath::attr("expect_version"),
                run.summary(),
                format!(
                    "{} runs Talos {now} after the rollback, not {want}: the previous image was another version. \
The node is running and ready.",
                    run.args.node
                ),
            ),
            None if now == before.version => diags.warning(
                format!("{} runs the same Talos version after the rollback", run.args.node),
                format!(
                    "The previous image of {} is also {now} (it was installed again, or upgraded from the same \
release); the node rebooted into it and is running and ready.",
                    run.args.node
                ),
            ),
            _ => {}
        }
    }
}
