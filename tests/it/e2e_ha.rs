//! `proxtalos_ha_resource` with real Terraform 1.15.5 against fakepve
//! (issue 16: HA registration). fakepve models an HA-managed VM (its power
//! actions become `hastart`/`hastop` requests the manager carries out a
//! moment later) but answers `/cluster/ha/resources` from the schema only;
//! our harness stores the resources over that model, as pve-ha-manager's
//! Resources.pm does. Shown: a VM and its HA resource in one apply, the
//! apply ending once the manager runs the VM; an empty re-plan; stopping the
//! VM through `proxtalos_vm` and the resource together, each waiting for
//! the manager; a state changed by hand is drift the next apply undoes;
//! import by `vm:N`; a bad state is a plan error naming it, nothing sent;
//! destroy hands the VM back before deleting it.
//!
//! What fakepve cannot show: a node failing and the VM recovered elsewhere,
//! HA rules (PVE 9's replacement of groups), fencing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};

use crate::support::fakepve::FakePve;
use crate::support::terraform::terraform;

fn config(header: &str, started: bool, state: &str) -> String {
    format!(
        r#"{header}
resource "proxtalos_vm" "cp" {{
  node    = "pve1"
  name    = "talos-cp-1"
  memory  = 2048
  started = {started}
  disks   = [{{ interface = "scsi0", storage = "local-lvm", size = 4 }}]
}}

resource "proxtalos_ha_resource" "cp" {{
  vm_id        = proxtalos_vm.cp.vm_id
  state        = "{state}"
  max_relocate = 2
  comment      = "talos control plane"
}}
"#
    )
}

fn ha(pve: &FakePve) -> Vec<Value> {
    pve.cmd(json!({"op": "ha_resources"})).as_array().cloned().unwrap_or_default()
}

fn status(pve: &FakePve, vmid: u64) -> String {
    pve.cmd(json!({"op": "vm_status", "vmid": vmid})).as_str().unwrap_or_default().to_string()
}

#[test]
fn ha_resources_hold_a_vm_and_apply_waits_for_the_manager() {
    let tf = terraform("1.15.5").expect("Terraform 1.15.5");
    let pve = FakePve::start();
    let (ws, _token, header) = pve.workspace(&tf, "root@pam!ha");

    ws.write_config(&config(&header, true, "started"));
    ws.init();
    ws.apply();
    let vmid = pve.vmids()[0];
    let res = ha(&pve);
    assert_eq!(res.len(), 1, "{res:?}");
    assert_eq!(res[0]["sid"], format!("vm:{vmid}"));
    assert_eq!((&res[0]["state"], &res[0]["max_relocate"]), (&json!("started"), &json!(2)), "{res:?}");
    assert_eq!(status(&pve, vmid), "running", "the apply ends once the manager runs the VM");
    assert!(ws.plan_exit(0).contains("No changes"), "re-plans empty");

    // Stopped, through the VM and the resource: the VM's shutdown becomes a
    // request to the manager, and both wait until it is carried out.
    ws.write_config(&config(&header, false, "stopped"));
    pve.clear_requests();
    ws.apply();
    assert!(pve.requests().iter().any(|(m, p)| m == "POST" && p.ends_with("/status/shutdown")), "{:?}", pve.requests());
    assert_eq!(status(&pve, vmid), "stopped");
    assert_eq!(ha(&pve)[0]["state"], "stopped");
    assert!(ws.plan_exit(0).contains("No changes"), "the VM is stopped once the apply ends");

    // A state changed by hand is drift.
    pve.cmd(json!({"op": "ha_state", "vmid": vmid, "state": "ignored"}));
    let plan = ws.plan_exit(2);
    assert!(plan.contains(r#"~ state        = "ignored" -> "stopped""#), "{plan}");
    ws.apply();
    assert_eq!(ha(&pve)[0]["state"], "stopped");

    // Import by service id.
    ws.ok(&["state", "rm", "proxtalos_ha_resource.cp"]);
    ws.ok(&["import", "-no-color", "proxtalos_ha_resource.cp", &format!("vm:{vmid}")]);
    assert!(ws.plan_exit(0).contains("No changes"), "import re-plans empty");

    // Started again.
    ws.write_config(&config(&header, true, "started"));
    ws.apply();
    assert_eq!(status(&pve, vmid), "running");
    assert!(ws.plan_exit(0).contains("No changes"));

    // A bad state: a plan error naming it, nothing sent.
    pve.clear_requests();
    ws.write_config(&config(&header, true, "running"));
    let out = ws.expect(1, &["plan", "-no-color"]).split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(out.contains("Invalid HA state") && out.contains(r#""running" is not an HA state"#), "{out}");
    assert!(!pve.requests().iter().any(|(m, _)| m != "GET"), "nothing sent: {:?}", pve.requests());

    ws.write_config(&config(&header, true, "started"));
    ws.ok(&["destroy", "-auto-approve", "-no-color"]);
    assert!(ha(&pve).is_empty());
    assert!(pve.vmids().is_empty());
}
