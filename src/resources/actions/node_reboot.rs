//! `proxtalos_node_reboot`: a Talos reboot as `talosctl reboot --wait`
//! does it (`MachineService.Reboot` with its mode), then the waits: a new
//! boot id (the node really went down and came back), and the machine
//! stage `running` and ready. The runbook step after a change that needs
//! a reboot, or to clear a wedged node.

use async_trait::async_trait;

use super::node::{NodeRun, node_action_attrs, validate_node_action};
use crate::data::ProxtalosData;
use crate::plugin::{Action, Attribute, AttributePath, Diagnostics, Progress, Schema, StopSignal, Value};
use crate::talos::api::RebootMode;

/// The action type.
pub struct NodeReboot;

const DESCRIPTION: &str = "Reboots a Talos node, as `talosctl reboot --wait` does: Talos stops its services \
gracefully (a control plane leaves nothing half-written in etcd), reboots, and the action waits until the node \
has a new boot id and is running and ready again. Reboot one control plane at a time: etcd keeps quorum only while \
a majority of its members run. Run it with `terraform apply -invoke=action.proxtalos_node_reboot.<name>`; it \
reports each step while it runs and stops waiting on Ctrl-C (the reboot itself, once Talos accepted it, goes on).";

const MODES: [&str; 3] = ["default", "powercycle", "force"];

fn schema() -> Schema {
    let mut attrs = node_action_attrs("to reboot");
    attrs.extend([
        Attribute::string("mode").optional().description(
            "How Talos reboots: `\"default\"` (stop services gracefully, then reboot through kexec where the \
machine allows it), `\"powercycle\"` (a full power cycle instead of kexec), `\"force\"` (Talos 1.12+: skip the \
graceful stop, for a node whose services hang; older Talos treats it as `\"default\"`). Not set: `\"default\"`.",
        ),
        Attribute::bool("wait").optional().description(
            "Wait until the node is back (a new boot id, running and ready). `false`: return once Talos accepted \
the reboot. Not set: `true`.",
        ),
    ]);
    Schema::new(DESCRIPTION, attrs)
}

fn mode_of(s: &str) -> Option<RebootMode> {
    match s {
        "default" => Some(RebootMode::Default),
        "powercycle" => Some(RebootMode::Powercycle),
        "force" => Some(RebootMode::Force),
        _ => None,
    }
}

#[async_trait]
impl Action<ProxtalosData> for NodeReboot {
    fn type_name(&self) -> &'static str {
        "proxtalos_node_reboot"
    }

    fn schema(&self) -> Schema {
        schema()
    }

    fn validate_config(&self, config: &Value, diags: &mut Diagnostics) {
        validate_node_action(config, diags);
        if let Some(m) = config.attr("mode").as_str()
            && mode_of(m).is_none()
        {
            diags.error_at(
                AttributePath::attr("mode"),
                "Invalid reboot mode",
                format!("`mode` is one of {}; got {m:?}.", MODES.map(|m| format!("\"{m}\"")).join(", ")),
            );
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
        let Some(run) = NodeRun::read(config, stop, "reboot", diags) else { return };
        let mode_name = config.attr("mode").as_str().unwrap_or("default");
        let mode = mode_of(mode_name).unwrap_or(RebootMode::Default);
        let Some((client, before)) = run.before(progress).await.map_err(|d| diags.push(d)).ok() else { return };
        progress.say(format!("asking {} to reboot (mode {mode_name})", run.args.node)).await;
        if let Err(d) = run.send("the reboot request", async { client.reboot(mode).await.map(|_| ()) }).await {
            return diags.push(d);
        }
        if !config.attr("wait").as_bool().unwrap_or(true) {
            return progress.say(format!("{} accepted the reboot; not waiting (wait = false)", run.args.node)).await;
        }
        match run.back(&before, progress).await {
            Ok(version) => {
                progress
                    .say(format!("{} rebooted: a new boot id, Talos {version} running and ready", run.args.node))
                    .await
            }
            Err(d) => diags.push(d),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn modes_are_talos_modes() {
        assert_eq!(mode_of("default"), Some(RebootMode::Default));
        assert_eq!(mode_of("powercycle"), Some(RebootMode::Powercycle));
        assert_eq!(mode_of("force"), Some(RebootMode::Force));
        assert_eq!(mode_of("hard"), None);
    }
}
