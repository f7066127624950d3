//! `proxtalos_vm_power`: a power operation on a Proxmox VE VM (`POST
//! /nodes/{node}/qemu/{vmid}/status/{start|shutdown|stop|reboot|reset}`),
//! waited for as a PVE task. The VM's state is read first, so starting a
//! running VM or stopping a stopped one says so and changes nothing.

use std::time::Duration;

use async_trait::async_trait;

use crate::data::ProxtalosData;
use crate::plugin::timeouts::{format_duration, parse_duration};
use crate::plugin::{Action, Attribute, AttributePath, Diagnostics, Progress, Schema, StopSignal, Value};
use crate::proxmox::qemu::{self, Power};
use crate::resources::vm::validate::{check_node, check_vmid};

/// The action type.
pub struct VmPower;

const DESCRIPTION: &str = "Runs a power operation on a Proxmox VE VM and waits for its PVE task: `start`, \
`shutdown` (the guest agent or ACPI asks the guest; Talos shuts down gracefully), `stop` (power off at once), \
`reboot` (a shutdown and a start, which applies pending hardware changes) or `reset` (the reset button). The VM's \
state is read first: starting a running VM, or shutting down or stopping a stopped one, reports that and does \
nothing. A VM that `proxtalos_vm` manages keeps its `started` setting: the next apply starts a VM this action \
stopped if the resource says `started = true`. Run it with `terraform apply \
-invoke=action.proxtalos_vm_power.<name>`; it stops waiting on Ctrl-C (PVE's task goes on).";

const OPERATIONS: [&str; 5] = ["start", "shutdown", "stop", "reboot", "reset"];

/// How long the guest may take to shut down, when `timeout` is not set.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

fn schema() -> Schema {
    Schema::new(
        DESCRIPTION,
        vec![
            Attribute::string("node").required().description("PVE node that runs the VM (`pve1`)."),
            Attribute::number("vm_id").required().description("The VM's VMID."),
            Attribute::string("operation")
                .required()
                .description("`\"start\"`, `\"shutdown\"`, `\"stop\"`, `\"reboot\"` or `\"reset\"`."),
            Attribute::string("timeout").optional().description(format!(
                "How long the guest may take to go down for `shutdown` and `reboot` (PVE's `timeout`), and how long \
any operation's task may take after that (a Go-style duration). Not set: `\"{}\"`.",
                format_duration(DEFAULT_TIMEOUT)
            )),
            Attribute::bool("force_stop").optional().description(
                "For `shutdown`: power the VM off when the guest has not gone down within `timeout` (PVE's \
`forceStop`). `false`: the operation fails then, with PVE's `got timeout`, and the VM keeps running. Not set: `false`.",
            ),
        ],
    )
}

fn power_of(s: &str) -> Option<Power> {
    match s {
        "start" => Some(Power::Start),
        "shutdown" => Some(Power::Shutdown),
        "stop" => Some(Power::Stop),
        "reboot" => Some(Power::Reboot),
        "reset" => Some(Power::Reset),
        _ => None,
    }
}

/// What to do given the VM's state: `Ok(None)` when there is nothing to
/// do (the message says why), an error when the operation needs a running
/// VM that is stopped.
fn decide(op: Power, running: bool) -> Result<Option<Power>, &'static str> {
    match (op, running) {
        (Power::Start, true) => Ok(None),
        (Power::Shutdown | Power::Stop, false) => Ok(None),
        (Power::Reboot | Power::Reset, false) => Err("the VM is stopped; use `operation = \"start\"`"),
        (op, _) => Ok(Some(op)),
    }
}

#[async_trait]
impl Action<ProxtalosData> for VmPower {
    fn type_name(&self) -> &'static str {
        "proxtalos_vm_power"
    }

    fn schema(&self) -> Schema {
        schema()
    }

    fn validate_config(&self, config: &Value, diags: &mut Diagnostics) {
        check_node(config, "node", diags);
        check_vmid(config, "vm_id", diags);
        let op = config.attr("operation").as_str();
        if let Some(o) = op
            && power_of(o).is_none()
        {
            diags.error_at(
                AttributePath::attr("operation"),
                "Invalid operation",
                format!("`operation` is one of {}; got {o:?}.", OPERATIONS.map(|o| format!("\"{o}\"")).join(", ")),
            );
        }
        if let Some(t) = config.attr("timeout").as_str() {
            match parse_duration(t) {
                Err(e) => diags.error_at(AttributePath::attr("timeout"), "Invalid timeout", e),
                Ok(d) if d < Duration::from_secs(1) => diags.error_at(
                    AttributePath::attr("timeout"),
                    "Invalid timeout",
                    "PVE counts the timeout in whole seconds: at least `1s`.",
                ),
                Ok(_) => {}
            }
        }
        if config.attr("force_stop").as_bool() == Some(true) && op.is_some_and(|o| o != "shutdown") {
            diags.error_at(
                AttributePath::attr("force_stop"),
                "force_stop applies to shutdown only",
                "`force_stop` is PVE's `forceStop` of a shutdown; remove it, or use `operation = \"shutdown\"`.",
            );
        }
    }

    async fn invoke(
        &self,
        data: Option<&ProxtalosData>,
        config: &Value,
        stop: &StopSignal,
        progress: &Progress,
        diags: &mut Diagnostics,
    ) {
        let node = config.attr("node").as_str().unwrap_or_default().to_string();
        let vmid = config.attr("vm_id").as_i64().and_then(|n| u32::try_from(n).ok()).unwrap_or_default();
        let op_name = config.attr("operation").as_str().unwrap_or_default().to_string();
        let Some(op) = power_of(&op_name) else { return };
        let timeout = config.attr("timeout").as_str().and_then(|t| parse_duration(t).ok()).unwrap_or(DEFAULT_TIMEOUT);
        let force_stop = config.attr("force_stop").as_bool().unwrap_or(false);
        let summary = format!("{op_name} of VM {vmid} on {node} failed");
        let client = match data.map(ProxtalosData::pve) {
            Some(Ok(c)) => c.stopping_on(stop),
            Some(Err(e)) => return diags.error("Proxmox not configured", e.to_string()),
            None => return diags.error("Proxmox not configured", "Terraform did not configure the provider."),
        };
        let running = match client.vm_status(&node, vmid).await {
            Ok(s) => s.status == "running",
            Err(e) if e.is_not_found() => {
                return diags.error_at(
                    AttributePath::attr("vm_id"),
                    summary,
                    format!("There is no VM {vmid} on node {node}: {e}"),
                );
            }
            Err(e) => return diags.error(summary, crate::plugin::diag::error_chain(&e)),
        };
        progress.say(format!("VM {vmid} on {node} is {}", if running { "running" } else { "stopped" })).await;
        let op = match decide(op, running) {
            Ok(Some(op)) => op,
            Ok(None) => {
                return progress
                    .say(format!("nothing to do: VM {vmid} is {}", if running { "running" } else { "stopped" }))
                    .await;
            }
            Err(why) => return diags.error_at(AttributePath::attr("operation"), summary, format!("VM {vmid}: {why}.")),
        };
        let guest = matches!(op, Power::Shutdown | Power::Reboot).then(|| timeout.as_secs().max(1));
        let req = qemu::power(&node, vmid, op, guest, force_stop && op == Power::Shutdown);
        progress.say(format!("{op_name}: waiting for PVE's task")).await;
        match client.run_task(&req, timeout + Duration::from_secs(30)).await {
            Ok(_) => progress.say(format!("{op_name} of VM {vmid} done")).await,
            Err(e) if e.is_stopped() => diags.error(
                summary,
                format!(
                    "Terraform asked the provider to stop while PVE's task ran; the task goes on in PVE (its log \
is under the node's Tasks). {}",
                    crate::plugin::diag::error_chain(&e)
                ),
            ),
            Err(e) => diags.error(summary, crate::plugin::diag::error_chain(&e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_each_state_needs() {
        assert_eq!(decide(Power::Start, true), Ok(None));
        assert_eq!(decide(Power::Start, false), Ok(Some(Power::Start)));
        assert_eq!(decide(Power::Shutdown, false), Ok(None));
        assert_eq!(decide(Power::Stop, false), Ok(None));
        assert_eq!(decide(Power::Stop, true), Ok(Some(Power::Stop)));
        assert!(decide(Power::Reboot, false).is_err());
        assert!(decide(Power::Reset, false).is_err());
        assert_eq!(decide(Power::Reset, true), Ok(Some(Power::Reset)));
        for o in OPERATIONS {
            assert!(power_of(o).is_some(), "{o}");
        }
    }
}
