//! `terraform query` with real Terraform 1.15.5 (issue 15): `list
//! "proxtalos_vm"` against fakepve, whose VMs were made by hand (as the
//! PVE web UI or bpg/proxmox leaves them: tags, UEFI, cloud-init, a
//! template, another node). The filters pick what they should from one `/cluster/resources`
//! call; `-generate-config-out` writes `proxtalos_vm` blocks and `import`
//! blocks by identity, which plan as imports with no change, apply, and
//! re-plan empty. A bad regex is refused naming `name_regex`.
//!
//! What fakepve cannot show: real PVE's permission filtering of
//! `/cluster/resources` (a token sees only the VMs it may audit).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::json;

use crate::support::fakepve::FakePve;
use crate::support::terraform::{Workspace, build_provider, terraform};

fn query(filters: &str, include: bool) -> String {
    format!(
        r#"list "proxtalos_vm" "talos" {{
  provider         = proxtalos
  include_resource = {include}
  config {{
{filters}
  }}
}}
"#
    )
}

/// VMs as the PVE web UI makes them (the config keys and forms PVE stores).
fn hand_made(pve: &FakePve) {
    let vm = |vmid: u32, node: &str, name: &str, tags: &str, template: bool| {
        pve.cmd(json!({"op": "add_vm", "vmid": vmid, "node": node, "name": name, "template": template,
            "status": if template { "stopped" } else { "running" }, "config": {
            "name": name, "cores": 2, "sockets": 1, "memory": 4096, "cpu": "x86-64-v2-AES",
            "scsihw": "virtio-scsi-single", "ostype": "l26", "tags": tags,
            "scsi0": format!("local-lvm:vm-{vmid}-disk-0,iothread=1,size=20G"),
            "net0": format!("virtio=BC:24:11:00:{:02X}:01,bridge=vmbr0,firewall=1", vmid % 256),
            "boot": "order=scsi0;net0", "onboot": "1"}}));
    };
    vm(101, "pve1", "talos-cp-1", "control-plane;talos", false);
    vm(102, "pve1", "talos-w-1", "talos;worker", false);
    vm(103, "pve1", "pihole", "dns", false);
    vm(104, "pve2", "talos-cp-2", "control-plane;talos", false);
    vm(9000, "pve1", "talos-template", "talos", true);
    // As bpg/proxmox leaves a Talos worker: UEFI, q35, cloud-init, agent,
    // serial console, the keys PVE adds itself (meta, smbios1, vmgenid).
    pve.cmd(json!({"op": "add_vm", "vmid": 105, "node": "pve1", "name": "talos-w-2", "status": "running", "config": {
        "name": "talos-w-2", "agent": "enabled=1", "bios": "ovmf", "boot": "order=scsi0;net0", "cores": 2,
        "cpu": "x86-64-v2-AES", "machine": "q35", "memory": 4096, "numa": 0, "ostype": "l26", "sockets": 1,
        "efidisk0": "local-lvm:vm-105-disk-0,efitype=4m,pre-enrolled-keys=0,size=4M",
        "ide2": "local-lvm:vm-105-cloudinit,media=cdrom", "ipconfig0": "ip=10.0.0.15/24,gw=10.0.0.1",
        "nameserver": "1.1.1.1", "net0": "virtio=BC:24:11:00:69:01,bridge=vmbr0,firewall=0",
        "scsi0": "local-lvm:vm-105-disk-1,iothread=1,size=20G,ssd=1,discard=on",
        "scsihw": "virtio-scsi-single", "serial0": "socket", "tags": "talos",
        "meta": "creation-qemu=9.0.2,ctime=1733400000", "smbios1": "uuid=6f9b1c1e-4a4b-4f5e-9e7a-3c2d1b0a9f8e",
        "vmgenid": "0c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f"}}));
}

#[test]
fn terraform_query_lists_vms_and_generated_config_adopts_them_with_an_empty_plan() {
    let tf = terraform("1.15.5").expect("Terraform 1.15.5");
    let pve = FakePve::start();
    hand_made(&pve);
    let (ws, _, header) = pve.workspace(&tf, "root@pam!query");
    ws.write_config(&header);
    let write_query = |text: &str| std::fs::write(ws.work().join("vms.tfquery.hcl"), text).unwrap();
    ws.init();

    // Every VM but the template; containers never.
    write_query(&query("", false));
    let out = ws.ok(&["query", "-no-color"]);
    for name in ["talos-cp-1 (pve1/101)", "talos-w-1 (pve1/102)", "pihole (pve1/103)", "talos-cp-2 (pve2/104)"] {
        assert!(out.contains(name), "{name} listed:\n{out}");
    }
    assert!(!out.contains("talos-template"), "no template unless asked:\n{out}");
    write_query(&query("    include_templates = true", false));
    assert!(ws.ok(&["query", "-no-color"]).contains("talos-template (pve1/9000)"));

    // Filters combine: the control planes on pve1 only.
    write_query(&query(
        "    node = \"pve1\"\n    tags = [\"talos\", \"control-plane\"]\n    name_regex = \"^talos-\"",
        false,
    ));
    pve.clear_requests();
    let out = ws.ok(&["query", "-no-color"]);
    assert!(out.contains("talos-cp-1 (pve1/101)"), "{out}");
    for other in ["talos-w-1", "pihole", "talos-cp-2", "talos-template"] {
        assert!(!out.contains(other), "{other} filtered out:\n{out}");
    }
    // One listing for the whole cluster, no per-VM reads (no `include_resource`).
    let gets: Vec<String> = pve.requests().into_iter().filter(|(m, _)| m == "GET").map(|(_, p)| p).collect();
    assert_eq!(gets.iter().filter(|p| p.contains("/cluster/resources")).count(), 1, "{gets:?}");
    assert!(!gets.iter().any(|p| p.contains("/qemu/")), "{gets:?}");

    // Adopt the Talos VMs on pve1: generated config, imports by identity.
    write_query(&query("    node = \"pve1\"\n    tags = [\"talos\"]", true));
    ws.ok(&["query", "-no-color", "-generate-config-out=adopt.tf"]);
    let adopt = std::fs::read_to_string(ws.work().join("adopt.tf")).unwrap();
    assert_eq!(adopt.matches("resource \"proxtalos_vm\"").count(), 3, "{adopt}");
    assert_eq!(adopt.matches("import {").count(), 3, "{adopt}");
    assert!(adopt.contains("identity = {") && adopt.contains("vm_id = 101"), "imports by identity:\n{adopt}");
    let plan = ws.plan_exit(2);
    assert!(plan.contains("Plan: 3 to import, 0 to add, 0 to change, 0 to destroy."), "{plan}\n{adopt}");
    let out = ws.apply();
    assert!(out.contains("3 imported, 0 added, 0 changed, 0 destroyed"), "{out}");
    assert!(ws.plan_exit(0).contains("No changes"), "adopted VMs re-plan empty");

    // Bad input names the attribute; nothing is listed.
    write_query(&query("    name_regex = \"talos-(\"", false));
    let out = ws.expect(1, &["query", "-no-color"]);
    assert!(out.contains("Invalid regular expression") && out.contains("name_regex"), "{out}");
    write_query(&query("    vm_id_min = 300\n    vm_id_max = 200", false));
    let out = ws.expect(1, &["query", "-no-color"]);
    assert!(out.contains("Empty VMID range"), "{out}");
}

/// `terraform providers schema -json` shows what 6.10 adds, each with its
/// schema: the actions, the list resource and the functions; Terraform
/// 1.0.3 reads the same provider and shows the rest as before.
#[test]
fn providers_schema_json_lists_actions_list_resources_and_functions() {
    let bin = build_provider("bin", "terraform-provider-proxtalos");
    let header = "terraform {\n  required_providers {\n    proxtalos = { source = \"proxtalos/proxtalos\" }\n  }\n}\n";
    let tf = terraform("1.15.5").expect("Terraform 1.15.5");
    let ws = Workspace::new(&tf, "registry.terraform.io/proxtalos/proxtalos", &bin);
    ws.write_config(header);
    ws.init();
    let out = ws.ok(&["providers", "schema", "-json"]);
    let v: serde_json::Value = serde_json::from_str(&out[out.find('{').unwrap()..]).unwrap();
    let p = &v["provider_schemas"]["registry.terraform.io/proxtalos/proxtalos"];
    let keys = |k: &str| -> Vec<String> { p[k].as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default() };
    assert_eq!(
        keys("action_schemas"),
        ["proxtalos_etcd_snapshot", "proxtalos_node_reboot", "proxtalos_node_rollback", "proxtalos_vm_power"]
    );
    assert_eq!(keys("list_resource_schemas"), ["proxtalos_vm"]);
    assert_eq!(keys("functions"), ["image_url", "installer_image", "schematic_id"]);
    let list = &p["list_resource_schemas"]["proxtalos_vm"]["block"];
    assert!(list["attributes"]["name_regex"].is_object(), "{list}");
    assert!(p["resource_schemas"]["proxtalos_vm"].is_object());

    if let Some(old) = crate::support::terraform::terraform_1_0_3() {
        let ws = Workspace::new(&old, "registry.terraform.io/proxtalos/proxtalos", &bin);
        ws.write_config(header);
        ws.init();
        let out = ws.ok(&["providers", "schema", "-json"]);
        let v: serde_json::Value = serde_json::from_str(&out[out.find('{').unwrap()..]).unwrap();
        let p = &v["provider_schemas"]["registry.terraform.io/proxtalos/proxtalos"];
        assert!(p["resource_schemas"]["proxtalos_vm"].is_object(), "{p}");
        assert!(p.get("list_resource_schemas").is_none() && p.get("action_schemas").is_none());
    }
}
