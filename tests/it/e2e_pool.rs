//! `proxtalos_pool` and `proxtalos_vm`'s `pool` with real Terraform 1.15.5
//! against fakepve, which models pools as pve-manager's `Pool.pm` does
//! (issue 16): a pool and a VM in it in one apply (the VM joins at create),
//! an empty re-plan; an unrelated change (memory) touches only the VM and
//! leaves its pool alone; a VM taken out of its pool by hand, or a comment
//! changed by hand, is drift the next plan shows and the apply undoes; a
//! move to another pool is in place; leaving `pool` unset keeps the VM where
//! it is, `""` takes it out; both resources import to an empty plan; a
//! pool with a VM put there by hand cannot be destroyed, and the error
//! names the VM; bad ids are plan errors naming the attribute, with
//! nothing sent.
//!
//! What fakepve cannot show: a token's pool permissions on real PVE
//! (`Pool.Allocate` is checked here as fakepve's root token has it), and
//! pools' storage members (not managed by proxtalos).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};

use crate::support::fakepve::FakePve;
use crate::support::terraform::terraform;

fn config(header: &str, vm_pool: &str, memory: u32, comment: &str) -> String {
    format!(
        r#"{header}
resource "proxtalos_pool" "talos" {{
  pool_id = "talos"
  comment = "{comment}"
}}

resource "proxtalos_pool" "other" {{
  pool_id = "lab/other"
  depends_on = [proxtalos_pool.lab]
}}

resource "proxtalos_pool" "lab" {{
  pool_id = "lab"
}}

resource "proxtalos_vm" "w" {{
  node    = "pve1"
  name    = "talos-w"
  memory  = {memory}
  started = false
  disks   = [{{ interface = "scsi0", storage = "local-lvm", size = 4 }}]
  {vm_pool}
}}
output "vmid" {{ value = proxtalos_vm.w.vm_id }}
"#
    )
}

fn pools(pve: &FakePve) -> Value {
    pve.cmd(json!({"op": "pools"}))
}

fn members(pve: &FakePve, pool: &str) -> Vec<u64> {
    pools(pve)[pool]["vms"].as_array().map(|a| a.iter().filter_map(Value::as_u64).collect()).unwrap_or_default()
}

/// A plan line that changes a `pool` attribute.
fn changes_pool(plan: &str) -> bool {
    plan.lines().map(str::trim_start).any(|l| ["~ pool ", "+ pool ", "- pool "].iter().any(|p| l.starts_with(p)))
}

#[test]
fn pools_group_vms_and_drift_is_undone() {
    let tf = terraform("1.15.5").expect("Terraform 1.15.5");
    let pve = FakePve::start();
    let (ws, _token, header) = pve.workspace(&tf, "root@pam!pools");
    let in_talos = "pool = proxtalos_pool.talos.pool_id";

    // A pool and a VM that joins it at create; the re-plan is empty.
    ws.write_config(&config(&header, in_talos, 2048, "k8s"));
    ws.init();
    ws.apply();
    let vmid: u64 = ws.ok(&["output", "-raw", "vmid"]).parse().unwrap();
    assert_eq!(members(&pve, "talos"), vec![vmid]);
    assert_eq!(pools(&pve)["talos"]["comment"], "k8s");
    assert!(
        pve.requests().iter().any(|(m, p)| m == "POST" && p.ends_with("/nodes/pve1/qemu")),
        "joined at create: {:?}",
        pve.requests()
    );
    pve.clear_requests();
    assert!(ws.plan_exit(0).contains("No changes"), "re-plans empty");
    // A VM's config does not name its pool: one cluster listing per run
    // reads it (for every VM with a managed pool; VMs without one cost none).
    let listings = pve.requests().iter().filter(|(_, p)| p.contains("/cluster/resources")).count();
    assert_eq!(listings, 1, "{:?}", pve.requests());

    // An unrelated change touches only the VM, and not its pool.
    ws.write_config(&config(&header, in_talos, 3072, "k8s"));
    let plan = ws.plan_exit(2);
    assert!(plan.contains("0 to add, 1 to change, 0 to destroy") && !changes_pool(&plan), "{plan}");
    pve.clear_requests();
    ws.apply();
    assert!(
        !pve.requests().iter().any(|(m, p)| m == "PUT" && p.starts_with("/api2/json/pools")),
        "{:?}",
        pve.requests()
    );
    assert_eq!(members(&pve, "talos"), vec![vmid]);

    // Drift by hand: out of the pool, another comment. The plan shows both,
    // the apply undoes both.
    pve.cmd(json!({"op": "pool_move", "vmid": vmid}));
    pve.cmd(json!({"op": "pool_comment", "pool": "talos", "comment": "changed by hand"}));
    let plan = ws.plan_exit(2).split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(plan.contains(r#"+ pool = "talos""#), "{plan}");
    assert!(plan.contains(r#""changed by hand" -> "k8s""#), "{plan}");
    assert!(plan.contains("0 to add, 2 to change, 0 to destroy"), "{plan}");
    ws.apply();
    assert_eq!(members(&pve, "talos"), vec![vmid]);
    assert_eq!(pools(&pve)["talos"]["comment"], "k8s");
    assert!(ws.plan_exit(0).contains("No changes"));

    // Another pool: in place.
    ws.write_config(&config(&header, "pool = proxtalos_pool.other.pool_id", 3072, "k8s"));
    let plan = ws.plan_exit(2);
    assert!(plan.contains(r#""talos" -> "lab/other""#) && !plan.contains("must be replaced"), "{plan}");
    ws.apply();
    assert_eq!((members(&pve, "talos"), members(&pve, "lab/other")), (vec![], vec![vmid]));

    // Unset keeps it there; "" takes it out.
    ws.write_config(&config(&header, "", 3072, "k8s"));
    assert!(ws.plan_exit(0).contains("No changes"), "unset keeps the pool");
    ws.write_config(&config(&header, r#"pool = """#, 3072, "k8s"));
    ws.plan_exit(2);
    ws.apply();
    assert_eq!(members(&pve, "lab/other"), Vec::<u64>::new());
    assert!(ws.plan_exit(0).contains("No changes"));

    // Import both to an empty plan.
    ws.write_config(&config(&header, in_talos, 3072, "k8s"));
    ws.apply();
    ws.ok(&["state", "rm", "proxtalos_pool.talos", "proxtalos_vm.w"]);
    ws.ok(&["import", "-no-color", "proxtalos_pool.talos", "talos"]);
    ws.ok(&["import", "-no-color", "proxtalos_vm.w", &format!("pve1/{vmid}")]);
    assert_eq!(ws.resource("proxtalos_vm.w").unwrap()["pool"], "talos");
    assert!(ws.plan_exit(0).contains("No changes"), "imports re-plan empty");

    // A VM put in a pool by hand keeps that pool from being destroyed.
    ws.apply();
    pve.cmd(json!({"op": "add_vm", "vmid": 900, "name": "by-hand", "node": "pve1", "config": {"name": "by-hand"}}));
    pve.cmd(json!({"op": "pool_move", "vmid": 900, "pool": "lab/other"}));
    let out = ws.expect(1, &["destroy", "-auto-approve", "-no-color"]).split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(out.contains("Cannot delete the pool") && out.contains("VMs still in the pool: 900"), "{out}");
    pve.cmd(json!({"op": "pool_move", "vmid": 900}));
    ws.ok(&["destroy", "-auto-approve", "-no-color"]);
    assert_eq!(pools(&pve), json!({}), "every pool is gone");
    assert_eq!(pve.vmids(), vec![900]);

    // Bad ids: plan errors naming the attribute; nothing sent.
    pve.clear_requests();
    ws.write_config(&format!(
        r#"{header}
resource "proxtalos_pool" "deep" {{
  pool_id = "a/b/c/d"
}}
resource "proxtalos_vm" "w" {{
  node  = "pve1"
  name  = "talos-w"
  pool  = "has space"
  disks = [{{ interface = "scsi0", storage = "local-lvm", size = 4 }}]
}}
"#
    ));
    let out = ws.expect(1, &["plan", "-no-color"]).split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(out.contains("Invalid pool id") && out.contains("nested too deeply"), "{out}");
    assert!(out.contains("Invalid pool") && out.contains("contains invalid characters"), "{out}");
    assert!(!pve.requests().iter().any(|(m, _)| m == "POST" || m == "PUT"), "nothing sent: {:?}", pve.requests());
}

/// `pool = ""` on a VM whose pool was never managed (null in state) and
/// that someone put in a pool by hand: the apply takes it out (the listing
/// says which pool), not only the next one.
#[test]
fn an_empty_pool_takes_a_vm_out_of_a_pool_it_was_put_in_by_hand() {
    let tf = terraform("1.15.5").expect("Terraform 1.15.5");
    let pve = FakePve::start();
    let (ws, _token, header) = pve.workspace(&tf, "root@pam!pools2");
    let vm = |pool: &str| {
        format!(
            r#"{header}
resource "proxtalos_pool" "x" {{
  pool_id = "x"
}}
resource "proxtalos_vm" "w" {{
  node    = "pve1"
  name    = "talos-w"
  started = false
  disks   = [{{ interface = "scsi0", storage = "local-lvm", size = 4 }}]
  {pool}
}}
output "vmid" {{ value = proxtalos_vm.w.vm_id }}
"#
        )
    };
    ws.write_config(&vm(""));
    ws.init();
    ws.apply();
    let vmid: u64 = ws.ok(&["output", "-raw", "vmid"]).parse().unwrap();
    pve.cmd(json!({"op": "pool_move", "vmid": vmid, "pool": "x"}));
    assert!(ws.plan_exit(0).contains("No changes"), "unset: not managed");
    ws.write_config(&vm(r#"pool = """#));
    ws.apply();
    assert_eq!(members(&pve, "x"), Vec::<u64>::new(), "out of the pool in one apply");
    assert!(ws.plan_exit(0).contains("No changes"));
    ws.ok(&["destroy", "-auto-approve", "-no-color"]);
}
