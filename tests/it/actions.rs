//! Actions with real Terraform 1.15.5 (issue 15): `terraform apply
//! -invoke=action.proxtalos_etcd_snapshot.<name>` against a simulated
//! control plane running real etcd. The progress lines show while it
//! runs; the file is 0600, `etcdutl snapshot status` reads it, and only
//! the newest `keep` stay. A node that is no control plane fails the
//! action with the node's words, and no file is left.
//!
//! `proxtalos_node_reboot` and `proxtalos_node_rollback` against a
//! simulated node: a new boot id each time, a rollback refused before any
//! upgrade (Talos's words), then after an upgrade the previous release
//! running again and `proxtalos_cluster` showing it as drift; bad input
//! refused at plan time naming the attribute.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::sim_nodes::Sim;
use crate::support::terraform::{Workspace, build_provider, terraform};

fn config(ip: &str, dir: &str, node: &str) -> String {
    // The second simulated node (addresses end in .1, .2).
    let worker = format!("{}.2", ip.rsplit_once('.').unwrap().0);
    format!(
        r#"terraform {{
  required_providers {{
    proxtalos = {{ source = "proxtalos/proxtalos" }}
  }}
}}

provider "proxtalos" {{}}

resource "proxtalos_machine_secrets" "this" {{
  talos_version = "v1.13"
}}

resource "proxtalos_cluster" "this" {{
  cluster_name         = "snap"
  cluster_endpoint     = "https://{ip}:6443"
  machine_secrets      = proxtalos_machine_secrets.this.machine_secrets
  client_configuration = proxtalos_machine_secrets.this.client_configuration
  talos_version        = "v1.13.9"
  kubernetes_version   = "1.33.1"
  control_plane {{
    name    = "cp-1"
    address = "{ip}"
  }}
  worker {{
    name    = "w-1"
    address = "{worker}"
  }}
}}

action "proxtalos_etcd_snapshot" "backup" {{
  config {{
    node                 = "{node}"
    client_configuration = proxtalos_machine_secrets.this.client_configuration
    directory            = "{dir}"
    prefix               = "snap"
    keep                 = 2
  }}
}}
"#
    )
}

#[test]
fn the_etcd_snapshot_action_writes_verified_private_files_and_keeps_the_newest() {
    let Some(etcd) = crate::etcd_real::etcd() else {
        eprintln!("skipped: no etcd binary (scripts/setup.sh installs it)");
        return;
    };
    let tf = terraform("1.15.5").expect("Terraform 1.15.5");
    let mut options = proxtalos::talos::sim::SimOptions::fast("v1.13.9");
    options.etcd_bin = Some(etcd.clone());
    let sim = Sim::start_with(options, 86, 2);
    let bin = build_provider("bin", "terraform-provider-proxtalos");
    let ws = Workspace::new(&tf, "registry.terraform.io/proxtalos/proxtalos", &bin);
    let dir = ws.work().join("backups");
    let dir_s = dir.to_str().unwrap();
    ws.write_config(&config(&sim.ips[0], dir_s, &sim.ips[0]));
    ws.init();
    ws.apply();

    let invoke = ["apply", "-invoke=action.proxtalos_etcd_snapshot.backup", "-auto-approve", "-no-color"];
    let out = ws.ok(&invoke);
    for line in [&format!("streaming the snapshot from {}", sim.ips[0]), "SHA-256 verified", "(mode 0600)"] {
        assert!(out.contains(line), "progress {line:?} shown:\n{out}");
    }
    let files = || {
        let mut f: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
        f.sort();
        f
    };
    let first = files();
    assert_eq!(first.len(), 1, "{first:?}");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&first[0]).unwrap().permissions().mode() & 0o777, 0o600);
    let status = crate::etcd_real::etcdutl_status(&etcd, &first[0]);
    assert!(status["totalKey"].as_i64().unwrap_or(0) > 0, "etcdutl reads it: {status}");

    // Two more: the oldest goes (keep = 2); names are per second.
    for _ in 0..2 {
        std::thread::sleep(std::time::Duration::from_millis(1100));
        ws.ok(&invoke);
    }
    let now = files();
    assert_eq!(now.len(), 2, "{now:?}");
    assert!(!now.contains(&first[0]), "the oldest was removed: {now:?}");
    assert!(ws.plan_exit(0).contains("No changes"), "an action changes no state");

    // From the cluster's `action_trigger` (the day-2 guide's setup): an
    // update of the cluster takes a snapshot first; a plan without an
    // update takes none.
    let triggered = config(&sim.ips[0], dir_s, &sim.ips[0])
        .replace(
            "  control_plane {",
            "  lifecycle {\n    action_trigger {\n      events  = [before_update]\n      actions = [action.proxtalos_etcd_snapshot.backup]\n    }\n  }\n  control_plane {",
        )
        .replace("keep                 = 2", "keep                 = 3");
    ws.write_config(&triggered);
    assert!(ws.plan_exit(0).contains("No changes"), "no update, no snapshot");
    let before = files();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    ws.write_config(&triggered.replace("1.33.1", "1.33.2"));
    let out = ws.apply();
    assert!(out.contains("Apply complete!"), "{out}");
    let after = files();
    assert_eq!(after.len(), before.len() + 1, "one snapshot before the update: {before:?} → {after:?}");
    ws.write_config(&config(&sim.ips[0], dir_s, &sim.ips[0]).replace("1.33.1", "1.33.2"));

    // A node that answers but runs no etcd: the action fails, no file.
    ws.write_config(&config(&sim.ips[0], &format!("{dir_s}-bad"), "127.0.0.1:1").replace("1.33.1", "1.33.2"));
    let out = ws.expect(1, &invoke);
    assert!(out.contains("etcd snapshot from 127.0.0.1:1 failed"), "{out}");
    assert!(!std::path::Path::new(&format!("{dir_s}-bad")).exists());

    // A worker runs no etcd: Talos's words, and the attribute to change.
    let cfg = |dir: &str, node: &str| config(&sim.ips[0], dir, node).replace("1.33.1", "1.33.2");
    ws.write_config(&cfg(&format!("{dir_s}-worker"), &sim.ips[1]));
    let out = ws.expect(1, &invoke);
    assert!(out.contains("only available on control plane nodes") && out.contains("aim `node` at one"), "{out}");
    assert!(!std::path::Path::new(&format!("{dir_s}-worker")).exists(), "no file, no directory");

    // A directory that cannot be made (its parent is a file): named, and
    // nothing partial is left.
    let file = ws.work().join("not-a-dir");
    std::fs::write(&file, "x").unwrap();
    ws.write_config(&cfg(&format!("{}/backups", file.display()), &sim.ips[0]));
    let out = ws.expect(1, &invoke);
    assert!(out.contains("etcd snapshot from") && out.contains("directory"), "{out}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "x");

    ws.write_config(&cfg(dir_s, &sim.ips[0]));
    ws.ok(&["destroy", "-auto-approve", "-no-color"]);
}

fn node_config(ip: &str, version: &str, actions: &str) -> String {
    format!(
        r#"terraform {{
  required_providers {{
    proxtalos = {{ source = "proxtalos/proxtalos" }}
  }}
}}

provider "proxtalos" {{}}

resource "proxtalos_machine_secrets" "this" {{
  talos_version = "v1.12"
}}

resource "proxtalos_cluster" "this" {{
  cluster_name         = "ops"
  cluster_endpoint     = "https://{ip}:6443"
  machine_secrets      = proxtalos_machine_secrets.this.machine_secrets
  client_configuration = proxtalos_machine_secrets.this.client_configuration
  talos_version        = "{version}"
  kubernetes_version   = "1.33.1"
  control_plane {{
    name    = "cp-1"
    address = "{ip}"
  }}
}}
{actions}
"#
    )
}

fn node_actions(ip: &str, mode: &str, expect: &str) -> String {
    format!(
        r#"
action "proxtalos_node_reboot" "cp" {{
  config {{
    node                 = "{ip}"
    client_configuration = proxtalos_machine_secrets.this.client_configuration
    mode                 = "{mode}"
  }}
}}

action "proxtalos_node_rollback" "cp" {{
  config {{
    node                 = "{ip}"
    client_configuration = proxtalos_machine_secrets.this.client_configuration
    expect_version       = "{expect}"
  }}
}}
"#
    )
}

#[test]
fn node_reboot_and_rollback_actions_reboot_and_boot_the_previous_release() {
    let tf = terraform("1.15.5").expect("Terraform 1.15.5");
    let sim = Sim::start("v1.12.6", 87, 1);
    let ip = &sim.ips[0];
    let bin = build_provider("bin", "terraform-provider-proxtalos");
    let ws = Workspace::new(&tf, "registry.terraform.io/proxtalos/proxtalos", &bin);
    ws.write_config(&node_config(ip, "v1.12.6", &node_actions(ip, "default", "v1.12.6")));
    ws.init();
    ws.apply();

    // Reboot: a new boot id, and the node running and ready again.
    let boot = sim.c().boot_id(0).unwrap();
    let out = ws.ok(&["apply", "-invoke=action.proxtalos_node_reboot.cp", "-auto-approve", "-no-color"]);
    for line in [&format!("asking {ip} to reboot (mode default)"), "a new boot id, Talos v1.12.6 running and ready"] {
        assert!(out.contains(line), "progress {line:?} shown:\n{out}");
    }
    assert_ne!(sim.c().boot_id(0).unwrap(), boot, "the node rebooted");
    assert!(ws.plan_exit(0).contains("No changes"), "a reboot is no drift");

    // Never upgraded: nothing to roll back to, in Talos's words; no reboot.
    let boot = sim.c().boot_id(0).unwrap();
    let invoke = ["apply", "-invoke=action.proxtalos_node_rollback.cp", "-auto-approve", "-no-color"];
    let out = ws.expect(1, &invoke);
    assert!(out.contains("label does not exist") && out.contains("Talos node rollback on"), "{out}");
    assert!(out.contains("Nothing was asked of the node") || out.contains("rollback request"), "{out}");
    assert_eq!(sim.c().boot_id(0).unwrap(), boot, "no reboot");

    // Upgrade through the cluster, then roll back: v1.12.6 again, and the
    // cluster's plan shows the node's version as drift back to v1.13.9.
    ws.write_config(&node_config(ip, "v1.13.9", &node_actions(ip, "default", "v1.12.6")));
    ws.apply();
    assert_eq!(sim.c().version(0).unwrap(), "v1.13.9");
    let out = ws.ok(&invoke);
    assert!(out.contains("rolled back: Talos v1.13.9 → v1.12.6, running and ready"), "{out}");
    assert_eq!(sim.c().version(0).unwrap(), "v1.12.6");
    let plan = ws.plan_exit(2);
    assert!(plan.contains("v1.12.6") && plan.contains("v1.13.9"), "the rollback shows as drift:\n{plan}");

    // A rollback whose result is not what was expected fails naming
    // `expect_version` (the previous image is v1.13.9 now).
    ws.write_config(&node_config(ip, "v1.13.9", &node_actions(ip, "default", "v1.12.6")));
    let out = ws.expect(1, &invoke);
    assert!(
        out.contains("runs Talos v1.13.9 after the rollback, not v1.12.6") && out.contains("expect_version"),
        "{out}"
    );

    // Bad input, at plan time, naming the attribute; nothing reboots.
    let boot = sim.c().boot_id(0).unwrap();
    ws.write_config(&node_config(ip, "v1.13.9", &node_actions(ip, "hard", "1.12")));
    let out = ws.expect(1, &["apply", "-invoke=action.proxtalos_node_reboot.cp", "-auto-approve", "-no-color"]);
    assert!(out.contains("Invalid reboot mode") && out.contains("mode"), "{out}");
    let out = ws.expect(1, &invoke);
    assert!(out.contains("Invalid expect_version"), "{out}");
    assert_eq!(sim.c().boot_id(0).unwrap(), boot, "nothing rebooted");

    ws.write_config(&node_config(ip, "v1.13.9", ""));
    ws.ok(&["destroy", "-auto-approve", "-no-color"]);
}

fn vm_config(header: &str, operation: &str, vm_id: &str) -> String {
    format!(
        r#"{header}
resource "proxtalos_vm" "w" {{
  node    = "pve1"
  name    = "w1"
  memory  = 1024
  started = true
  disks   = [{{ interface = "scsi0", storage = "local-lvm", size = 4 }}]
}}

action "proxtalos_vm_power" "op" {{
  config {{
    node      = "pve1"
    vm_id     = {vm_id}
    operation = "{operation}"
  }}
}}
"#
    )
}

/// `proxtalos_vm_power` against fakepve (which validates each request
/// against PVE's schema): each operation posts PVE's own call and waits for
/// its task; the VM's state is read first, so a second stop does nothing
/// and a reboot of a stopped VM is refused naming `operation`; a VMID that
/// does not exist is refused naming `vm_id`. What fakepve cannot show: a
/// real guest answering ACPI.
#[test]
fn the_vm_power_action_runs_pve_power_operations() {
    use crate::support::fakepve::FakePve;
    let tf = terraform("1.15.5").expect("Terraform 1.15.5");
    let pve = FakePve::start();
    let (ws, _, header) = pve.workspace(&tf, "root@pam!actions");
    let vm = "proxtalos_vm.w.vm_id";
    ws.write_config(&vm_config(&header, "stop", vm));
    ws.init();
    ws.apply();
    let vmid = pve.vmids()[0];
    let invoke = ["apply", "-invoke=action.proxtalos_vm_power.op", "-auto-approve", "-no-color"];
    let posts = |what: &str| {
        pve.requests()
            .iter()
            .filter(|(m, p)| m == "POST" && p.ends_with(&format!("/qemu/{vmid}/status/{what}")))
            .count()
    };

    let out = ws.ok(&invoke);
    assert!(out.contains(&format!("VM {vmid} on pve1 is running")) && out.contains("stop of VM"), "{out}");
    assert_eq!(posts("stop"), 1);
    let out = ws.ok(&invoke);
    assert!(out.contains(&format!("nothing to do: VM {vmid} is stopped")), "{out}");
    assert_eq!(posts("stop"), 1, "a stopped VM is not stopped again");

    ws.write_config(&vm_config(&header, "reboot", vm));
    let out = ws.expect(1, &invoke);
    assert!(out.contains("the VM is stopped; use `operation = \"start\"`") && out.contains("operation"), "{out}");
    assert_eq!(posts("reboot"), 0);

    for op in ["start", "reset", "shutdown"] {
        ws.write_config(&vm_config(&header, op, vm));
        let before = posts(op);
        ws.ok(&invoke);
        assert_eq!(posts(op), before + 1, "{op}");
    }

    ws.write_config(&vm_config(&header, "start", "999999"));
    let out = ws.expect(1, &invoke);
    assert!(out.contains("There is no VM 999999 on node pve1") && out.contains("vm_id"), "{out}");
    ws.write_config(&vm_config(&header, "restart", vm));
    let out = ws.expect(1, &invoke);
    assert!(out.contains("Invalid operation"), "{out}");

    ws.write_config(&vm_config(&header, "start", vm));
    ws.ok(&["destroy", "-auto-approve", "-no-color"]);
    assert!(pve.vmids().is_empty());
}

/// Ctrl-C while `proxtalos_vm_power` waits for PVE's task (a guest that
/// takes a day to shut down, so the shutdown runs to its 10-minute timeout;
/// fakepve in real time): Terraform sends StopProvider, the action stops waiting and
/// says what goes on without it, and Terraform exits within 5 s.
#[test]
fn ctrl_c_ends_an_action_s_wait_within_5_s() {
    use crate::support::fakepve::FakePve;
    let tf = terraform("1.15.5").expect("Terraform 1.15.5");
    let pve = FakePve::start_with(1.0);
    pve.cmd(serde_json::json!({"op": "add_vm", "vmid": 150, "name": "deaf", "status": "running",
        "config": {"name": "deaf", "memory": 1024}}));
    pve.cmd(serde_json::json!({"op": "vm_set", "vmid": 150, "attrs": {"shutdown_secs": 100000}}));
    let (ws, _, header) = pve.workspace(&tf, "root@pam!stop");
    ws.write_config(&format!(
        r#"{header}
action "proxtalos_vm_power" "off" {{
  config {{
    node      = "pve1"
    vm_id     = 150
    operation = "shutdown"
    timeout   = "10m"
  }}
}}
"#
    ));
    ws.init();
    let out = crate::support::terraform::interrupt(
        &ws,
        &["apply", "-invoke=action.proxtalos_vm_power.off", "-auto-approve", "-no-color"],
        &|out| out.contains("waiting for PVE's task"),
    );
    assert!(out.contains("Terraform asked the provider to stop while PVE's task ran"), "{out}");
}
