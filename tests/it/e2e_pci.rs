//! The seeds' workers on `proxtalos_vm` with real Terraform 1.15.5
//! against fakepve (issue 16): a Longhorn data disk (below), and PCI
//! passthrough for GPU workers: a mapped device (what an API token may
//! set) lands as PVE's `hostpci0`, re-plans empty and reads back; a raw
//! host device with a token is a plan-time error naming the attribute, and
//! nothing is sent; root@pam with a password may set one; removing a
//! device deletes its key; bad input (no device, bad id, `pcie` on i440fx)
//! is refused at plan time naming the entry. The same VM has UEFI and a
//! TPM 2.0 state disk (`tpmstate0`), as Talos's secure-boot images and
//! TPM-sealed disk encryption want.
//!
//! `proxtalos_pci_mapping` (below): a mapping and a VM that uses it by
//! `id` in one apply; drift by hand undone; changes in place; import; a VM
//! on a node the mapping does not cover, or naming a mapping PVE does not
//! have, is a plan error on `pci_devices[i].mapping`.
//!
//! What fakepve cannot show: the device itself (IOMMU groups, a GPU
//! answering in the guest) and `Mapping.Use` (real PVE checks it at the
//! update). fakepve 0.5.0 stores no PCI mappings: our harness does, as
//! pve-manager's API2/Cluster/Mapping/PCI.pm (src/lab/harness.py).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::json;

use crate::support::fakepve::FakePve;
use crate::support::terraform::terraform;
use proxtalos::proxmox::{ClientOptions, Credentials, Secret};

fn vm(pci: &str, machine: &str) -> String {
    format!(
        r#"
resource "proxtalos_vm" "gpu" {{
  node    = "pve1"
  name    = "talos-gpu-1"
  memory  = 4096
  machine = "{machine}"
  bios    = "ovmf"
  efi_disk_storage  = "local-lvm"
  tpm_state_storage = "local-lvm"
  disks   = [{{ interface = "scsi0", storage = "local-lvm", size = 4 }}]
  numa      = true
  hugepages = "1024"
  network_devices = [{{ bridge = "vmbr0", queues = 4 }}]
  pci_devices = [{pci}]
}}
"#
    )
}

#[test]
fn pci_devices_pass_through_mapped_and_raw_as_pve_allows_beside_a_tpm() {
    let tf = terraform("1.15.5").expect("Terraform 1.15.5");
    let pve = FakePve::start();
    let (ws, token, with_token) = pve.workspace(&tf, "root@pam!gpu");
    let with_root = pve.root_header();
    let mapped = r#"{ mapping = "gpu0", pcie = true, x_vga = true }"#;
    // The mapping, as a user makes it in PVE (Datacenter → Resource Mappings).
    pve.cmd(json!({"op": "pci_mapping_set", "id": "gpu0",
        "entry": {"map": ["node=pve1,path=0000:01:00.0,id=10de:2204"]}}));

    // A mapped GPU with a token.
    ws.write_config(&(with_token.clone() + &vm(mapped, "q35")));
    ws.init();
    ws.apply();
    let vmid = pve.vmids()[0];
    let cfg = pve.cmd(json!({"op": "vm_config", "vmid": vmid}));
    assert_eq!(cfg["hostpci0"], "mapping=gpu0,pcie=1,x-vga=1", "{cfg}");
    let tpm = cfg["tpmstate0"].as_str().unwrap_or_default();
    assert!(tpm.starts_with("local-lvm:") && tpm.contains("version=v2.0"), "a TPM 2.0 state disk: {cfg}");
    // PVE answers booleans as integers.
    let numa = cfg["numa"].as_i64().or_else(|| cfg["numa"].as_str().and_then(|s| s.parse().ok()));
    assert_eq!((numa, cfg["hugepages"].as_str()), (Some(1), Some("1024")), "NUMA and 1 GiB pages: {cfg}");
    assert!(cfg["net0"].as_str().unwrap_or_default().contains("queues=4"), "a multiqueue NIC: {cfg}");
    assert!(ws.plan_exit(0).contains("No changes"), "re-plans empty");

    // A raw device with the token: refused at plan time, nothing sent.
    let raw = format!(r#"{mapped}, {{ device = "0000:02:00.0" }}"#);
    ws.write_config(&(with_token.clone() + &vm(&raw, "q35")));
    pve.clear_requests();
    let out = ws.expect(1, &["plan", "-no-color"]);
    assert!(out.contains("A raw PCI device needs root@pam") && out.contains("pci_devices[1].device"), "{out}");
    assert!(!pve.requests().iter().any(|(m, _)| m == "PUT" || m == "POST"), "nothing sent");

    // root@pam with its password may set it; the running VM takes it at
    // the next boot (a warning says so).
    ws.write_config(&(with_root.clone() + &vm(&raw, "q35")));
    ws.apply();
    let client = pve.client(Credentials::ApiToken(Secret::new(token.clone())), ClientOptions::default());
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let entries = rt.block_on(client.vm_pending("pve1", vmid as u32)).unwrap();
    let slot = entries.iter().find(|e| e.key == "hostpci1").expect("hostpci1");
    assert_eq!(slot.pending.as_deref().or(slot.value.as_deref()), Some("0000:02:00.0"), "{entries:?}");
    assert!(ws.plan_exit(0).contains("No changes"), "re-plans empty");

    // Back to the mapped GPU only: hostpci1 goes.
    ws.write_config(&(with_token.clone() + &vm(mapped, "q35")));
    ws.apply();
    assert!(ws.plan_exit(0).contains("No changes"));

    // Bad input at plan time, naming the entry.
    for (pci, machine, want) in [
        (r#"{ pcie = true }"#, "q35", "Give a device or a mapping"),
        (r#"{ device = "1:0" }"#, "q35", "Invalid PCI device id"),
        (r#"{ mapping = "gpu0", pcie = true }"#, "i440fx", "PCI Express needs q35"),
    ] {
        ws.write_config(&(with_token.clone() + &vm(pci, machine)));
        let out = ws.expect(1, &["plan", "-no-color"]);
        assert!(out.contains(want) && out.contains("pci_devices[0]"), "{want}:\n{out}");
    }

    ws.write_config(&(with_token + &vm(mapped, "q35")));
    ws.ok(&["destroy", "-auto-approve", "-no-color"]);
    assert!(pve.vmids().is_empty());
}

fn mapping_config(header: &str, map: &str, description: &str, vm_node: &str, vm_mapping: &str) -> String {
    format!(
        r#"{header}
resource "proxtalos_pci_mapping" "gpu" {{
  name        = "rtx"
  description = "{description}"
  map         = [{map}]
}}

resource "proxtalos_vm" "gpu" {{
  node    = "{vm_node}"
  name    = "talos-gpu-1"
  memory  = 4096
  machine = "q35"
  started = false
  disks   = [{{ interface = "scsi0", storage = "local-lvm", size = 4 }}]
  pci_devices = [{{ mapping = {vm_mapping}, pcie = true }}]
}}
"#
    )
}

#[test]
fn pci_mappings_are_managed_and_checked_against_the_vms_node() {
    let tf = terraform("1.15.5").expect("Terraform 1.15.5");
    let pve = FakePve::start();
    pve.cmd(json!({"op": "add_node", "name": "pve2"}));
    let (ws, _token, header) = pve.workspace(&tf, "root@pam!mapping");
    let pve1 = r#"{ node = "pve1", path = "0000:01:00.0;0000:01:00.1", device_id = "10de:2204", iommu_group = 12 }"#;
    let by_id = "proxtalos_pci_mapping.gpu.id";

    // The mapping and a VM that uses it, in one apply: the VM waits for it.
    ws.write_config(&mapping_config(&header, pve1, "RTX 3090", "pve1", by_id));
    ws.init();
    ws.apply();
    let stored = &pve.cmd(json!({"op": "pci_mappings"}))["rtx"];
    assert_eq!(stored["map"], json!(["node=pve1,path=0000:01:00.0;0000:01:00.1,id=10de:2204,iommugroup=12"]));
    assert_eq!(stored["description"], "RTX 3090");
    let vmid = pve.vmids()[0];
    assert_eq!(pve.cmd(json!({"op": "vm_config", "vmid": vmid}))["hostpci0"], "mapping=rtx,pcie=1");
    assert!(ws.plan_exit(0).contains("No changes"), "re-plans empty");

    // Drift by hand: another address, the comment gone. Shown and undone.
    pve.cmd(json!({"op": "pci_mapping_set", "id": "rtx",
        "entry": {"map": ["node=pve1,path=0000:02:00.0,id=10de:2204,iommugroup=12"]}}));
    let plan = ws.plan_exit(2);
    assert!(plan.contains(r#""0000:02:00.0" -> "0000:01:00.0;0000:01:00.1""#), "{plan}");
    assert!(plan.contains("0 to add, 1 to change, 0 to destroy"), "{plan}");
    ws.apply();
    assert_eq!(pve.cmd(json!({"op": "pci_mappings"}))["rtx"], *stored);

    // In place: another comment only; the VM is not touched.
    ws.write_config(&mapping_config(&header, pve1, "RTX 3090 (lab)", "pve1", by_id));
    let plan = ws.plan_exit(2);
    assert!(plan.contains("0 to add, 1 to change, 0 to destroy") && !plan.contains("must be replaced"), "{plan}");
    ws.apply();

    // pve2's device added and the VM moved there, in one apply: the map's
    // nodes change, so the VM is checked after the mapping (its `id` is
    // known after apply), not refused against PVE's map of today.
    let both = format!(r#"{pve1}, {{ node = "pve2", path = "0000:81:00.0", device_id = "10de:2204" }}"#);
    ws.write_config(&mapping_config(&header, &both, "RTX 3090 x2", "pve2", by_id));
    let plan = ws.plan_exit(2);
    assert!(plan.contains("1 to add, 1 to change, 1 to destroy"), "the mapping in place, the VM to pve2: {plan}");
    ws.apply();
    assert_eq!(pve.cmd(json!({"op": "pci_mappings"}))["rtx"]["map"].as_array().unwrap().len(), 2);
    assert!(ws.plan_exit(0).contains("No changes"));

    // Import to an empty plan.
    ws.ok(&["state", "rm", "proxtalos_pci_mapping.gpu"]);
    ws.ok(&["import", "-no-color", "proxtalos_pci_mapping.gpu", "rtx"]);
    assert!(ws.plan_exit(0).contains("No changes"), "import re-plans empty");

    // Back to pve1 only: a VM that moves to pve2 now would find no device.
    ws.write_config(&mapping_config(&header, pve1, "RTX 3090", "pve1", by_id));
    ws.apply();
    assert!(ws.plan_exit(0).contains("No changes"));
    pve.clear_requests();
    ws.write_config(&mapping_config(&header, pve1, "RTX 3090", "pve2", r#""rtx""#));
    let out = ws.expect(1, &["plan", "-no-color"]).split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        out.contains("PCI mapping not usable on this node")
            && out.contains("pci_devices[0].mapping")
            && out.contains(r#"PCI mapping "rtx" has no device on node pve2 (it maps one on: pve1)"#),
        "{out}"
    );
    ws.write_config(&mapping_config(&header, pve1, "RTX 3090", "pve1", r#""rtx9""#));
    let out = ws.expect(1, &["plan", "-no-color"]).split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(out.contains(r#"PVE has no PCI resource mapping "rtx9""#), "{out}");
    // Bad entries, before anything is asked of PVE.
    let bad = r#"{ node = "pve1", path = "01:00.0", device_id = "10de-2204" }"#;
    ws.write_config(&mapping_config(&header, bad, "RTX 3090", "pve1", by_id));
    let out = ws.expect(1, &["plan", "-no-color"]).split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        out.contains("Invalid device path") && out.contains("map[0].path") && out.contains("Invalid PCI id"),
        "{out}"
    );
    assert!(!pve.requests().iter().any(|(m, _)| m != "GET"), "nothing sent: {:?}", pve.requests());

    ws.write_config(&mapping_config(&header, pve1, "RTX 3090", "pve1", by_id));
    ws.ok(&["destroy", "-auto-approve", "-no-color"]);
    assert_eq!(pve.cmd(json!({"op": "pci_mappings"})), json!({}));
    assert!(pve.vmids().is_empty());
}

/// A Longhorn worker's data disk (issue 16): its own storage and size, left
/// out of vzdump backups and replication (PVE's `backup=0`, `replicate=0`);
/// re-plans empty, and an unrelated change (a tag) updates only the tag:
/// the data disk's key is not sent.
#[test]
fn a_data_disk_out_of_backups_is_left_alone_by_unrelated_changes() {
    let tf = terraform("1.15.5").expect("Terraform 1.15.5");
    let pve = FakePve::start();
    let (ws, _, header) = pve.workspace(&tf, "root@pam!disk");
    let config = |tag: &str| {
        format!(
            r#"{header}
resource "proxtalos_vm" "storage" {{
  node   = "pve1"
  name   = "talos-storage-1"
  tags   = ["{tag}"]
  memory = 4096
  disks = [
    {{ interface = "scsi0", storage = "local-lvm", size = 10 }},
    {{ interface = "scsi1", storage = "local-lvm", size = 100, backup = false, replicate = false, iothread = true }},
  ]
}}
"#
        )
    };
    ws.write_config(&config("longhorn"));
    ws.init();
    ws.apply();
    let vmid = pve.vmids()[0];
    let cfg = pve.cmd(json!({"op": "vm_config", "vmid": vmid}));
    let data = cfg["scsi1"].as_str().unwrap_or_default();
    assert!(data.contains("backup=0") && data.contains("replicate=0") && data.contains("size=100G"), "{cfg}");
    assert!(!cfg["scsi0"].as_str().unwrap_or_default().contains("backup"), "{cfg}");
    assert!(ws.plan_exit(0).contains("No changes"), "re-plans empty");

    pve.clear_requests();
    ws.write_config(&config("storage"));
    let plan = ws.plan_exit(2);
    assert!(plan.contains("1 to change") && !plan.contains("scsi1") && plan.contains("tags"), "{plan}");
    ws.apply();
    let cfg = pve.cmd(json!({"op": "vm_config", "vmid": vmid}));
    assert_eq!(cfg["scsi1"].as_str().unwrap_or_default(), data, "the data disk untouched");
    assert_eq!(cfg["tags"], "storage");
    ws.ok(&["destroy", "-auto-approve", "-no-color"]);
}

/// Start order and protection (issue 16's "startup order and delay",
/// "protection"): written as PVE's `startup` and `protection`; a destroy of
/// a protected VM fails with PVE's words and the VM stays in state; turned
/// off, the destroy goes through. `startup` is not sent unless set.
#[test]
fn startup_order_and_protection_as_pve_keeps_them() {
    let tf = terraform("1.15.5").expect("Terraform 1.15.5");
    let pve = FakePve::start();
    let (ws, _, _) = pve.workspace(&tf, "root@pam!unused");
    let header = pve.root_header();
    let config = |extra: &str| {
        format!(
            r#"{header}
resource "proxtalos_vm" "cp" {{
  node    = "pve1"
  name    = "talos-cp-1"
  on_boot = true
  disks   = [{{ interface = "scsi0", storage = "local-lvm", size = 4 }}]
{extra}
}}
"#
        )
    };
    ws.write_config(&config(""));
    ws.init();
    ws.apply();
    let vmid = pve.vmids()[0];
    let cfg = pve.cmd(json!({"op": "vm_config", "vmid": vmid}));
    assert!(cfg.get("startup").is_none_or(|v| v.is_null()), "not sent unless set: {cfg}");

    ws.write_config(&config("  protection = true\n  startup_order = 1\n  startup_up_delay = 30"));
    ws.apply();
    let cfg = pve.cmd(json!({"op": "vm_config", "vmid": vmid}));
    assert_eq!(cfg["startup"], "order=1,up=30", "{cfg}");
    assert!(cfg["protection"] == 1 || cfg["protection"] == "1", "{cfg}");
    assert!(ws.plan_exit(0).contains("No changes"), "re-plans empty");

    let out = ws.expect(1, &["destroy", "-auto-approve", "-no-color"]);
    assert!(out.contains("Cannot delete the VM") && out.contains("protection mode"), "{out}");
    assert_eq!(pve.vmids(), vec![vmid], "the VM is still there");
    assert!(ws.resource("proxtalos_vm.cp").is_some(), "and still in state");

    ws.write_config(&config("  startup_order = 1\n  startup_up_delay = 30"));
    ws.apply();
    ws.ok(&["destroy", "-auto-approve", "-no-color"]);
    assert!(pve.vmids().is_empty());
}

/// Talos's secure-boot ISO (`secureboot = true` on `proxtalos_image`: the
/// factory's `nocloud-amd64-secureboot.iso`) on a VM without UEFI is a
/// plan-time error on `cdrom.file`, nothing sent; with OVMF, an EFI disk
/// whose keys are not pre-enrolled (Talos enrolls its own in setup mode) and
/// a TPM 2.0 state disk it applies and re-plans empty.
#[test]
fn a_secure_boot_image_needs_uefi() {
    let tf = terraform("1.15.5").expect("Terraform 1.15.5");
    let pve = FakePve::start();
    let (ws, _token, header) = pve.workspace(&tf, "root@pam!sb");
    let config = |bios: &str| {
        let uefi = if bios == "ovmf" {
            "  efi_disk_storage  = \"local-lvm\"\n  tpm_state_storage = \"local-lvm\"\n"
        } else {
            ""
        };
        format!(
            r#"{header}
resource "proxtalos_image" "sb" {{
  node          = "pve1"
  storage       = "local"
  content       = "iso"
  schematic_id  = "376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba"
  talos_version = "v1.13.9"
  secureboot    = true
}}
resource "proxtalos_vm" "cp" {{
  node    = "pve1"
  name    = "talos-sb-1"
  bios    = "{bios}"
  started = false
{uefi}  disks   = [{{ interface = "scsi0", storage = "local-lvm", size = 4 }}]
  cdrom {{
    file = proxtalos_image.sb.id
  }}
}}
"#
        )
    };
    ws.write_config(&config("seabios"));
    ws.init();
    pve.clear_requests();
    let out = ws.expect(1, &["plan", "-no-color"]).split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(out.contains("A secure-boot image needs UEFI") && out.contains("cdrom.file"), "{out}");
    assert!(!pve.requests().iter().any(|(m, _)| m == "PUT" || m == "POST"), "nothing sent");
    ws.write_config(&config("ovmf"));
    ws.apply();
    let vmid = pve.vmids()[0];
    let cfg = pve.cmd(json!({"op": "vm_config", "vmid": vmid}));
    let efi = cfg["efidisk0"].as_str().unwrap_or_default();
    assert!(efi.contains("pre-enrolled-keys=0"), "Talos enrolls its own keys: {cfg}");
    assert!(cfg["ide2"].as_str().unwrap_or_default().contains("secureboot"), "{cfg}");
    assert!(ws.plan_exit(0).contains("No changes"), "re-plans empty");

    // Pre-enrolled keys: a warning beside a secure-boot image (the firmware
    // is not in setup mode), the key on the EFI disk, and a new VM, since
    // the keys live on that disk.
    let keys = config("ovmf").replace("  efi_disk_storage  =", "  efi_pre_enrolled_keys = true\n  efi_disk_storage  =");
    ws.write_config(&keys);
    let plan = ws.plan_exit(2).split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(plan.contains("The firmware will not be in setup mode") && plan.contains("must be replaced"), "{plan}");
    ws.apply();
    let vmid = pve.vmids()[0];
    let cfg = pve.cmd(json!({"op": "vm_config", "vmid": vmid}));
    assert!(cfg["efidisk0"].as_str().unwrap_or_default().contains("pre-enrolled-keys=1"), "{cfg}");
    assert!(ws.plan_exit(0).contains("No changes"), "re-plans empty");
    // Unset keeps what the disk has (an adopted VM's keys are not a change).
    ws.write_config(&config("ovmf"));
    assert!(ws.plan_exit(0).contains("No changes"), "unset keeps the keys");
    ws.ok(&["destroy", "-auto-approve", "-no-color"]);

    // A clone takes its template's EFI disk (keys on, as PVE's UI makes
    // it): known after apply, and the re-plan is empty.
    pve.cmd(json!({"op": "add_vm", "vmid": 9000, "name": "tpl", "template": true, "config": {"name": "tpl",
        "bios": "ovmf", "efidisk0": "local-lvm:base-9000-disk-1,efitype=4m,pre-enrolled-keys=1,size=528K",
        "scsi0": "local-lvm:base-9000-disk-0,size=4G", "scsihw": "virtio-scsi-single"}}));
    let clone = format!(
        r#"{header}
resource "proxtalos_vm" "c" {{
  node             = "pve1"
  name             = "talos-clone-1"
  bios             = "ovmf"
  efi_disk_storage = "local-lvm"
  started          = false
  disks            = [{{ interface = "scsi0", storage = "local-lvm", size = 4 }}]
  clone {{
    source_vm_id = 9000
  }}
}}
"#
    );
    ws.write_config(&clone);
    let plan = ws.plan_exit(2);
    assert!(plan.contains("efi_pre_enrolled_keys") && plan.contains("(known after apply)"), "{plan}");
    ws.apply();
    assert_eq!(ws.resource("proxtalos_vm.c").unwrap()["efi_pre_enrolled_keys"], true);
    assert!(ws.plan_exit(0).contains("No changes"), "a clone re-plans empty");
    // Keys without an EFI disk: a plan error naming the attribute.
    ws.write_config(&clone.replace("  efi_disk_storage = \"local-lvm\"\n", "  efi_pre_enrolled_keys = true\n"));
    let out = ws.expect(1, &["plan", "-no-color"]);
    assert!(out.contains("Pre-enrolled keys need an EFI disk"), "{out}");
    ws.write_config(&clone);
    ws.ok(&["destroy", "-auto-approve", "-no-color"]);
}
