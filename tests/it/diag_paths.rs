//! Bad input points at its attribute (issue 11 §6), as real Terraform 1.15.5
//! shows it: `terraform validate -json` over one configuration with one bad
//! value per resource. For a top-level attribute the highlighted source is
//! its line; below the top level (inside `disks`, `network_devices`,
//! `cloud_init`, `client_configuration`, ...) Terraform highlights at best
//! the enclosing element and names no path, so the detail must name the
//! full path (`network_devices[1].vlan_id: ...`).
//!
//! Then what needs a server: a malformed `ca_certificate` in the provider
//! block, and import ids naming a node that does not exist, against fakepve.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::fakepve::FakePve;
use crate::support::terraform::{Workspace, build_provider, terraform};
use serde_json::Value;

const HEADER: &str = r#"terraform {
  required_providers {
    proxtalos = { source = "proxtalos/proxtalos" }
  }
}
"#;

const CLIENT_GARBAGE: &str = r#"client_configuration = {
    ca_certificate     = "bm90IGEgUEVN"
    client_certificate = "not base64 at all!"
    client_key         = "bm90IGEgUEVN"
  }"#;

/// (resource type, body, path the error is on, text the detail holds).
fn cases() -> Vec<(&'static str, String, &'static str, &'static str)> {
    let vm = |body: &str| format!("  node = \"pve\"\n{body}");
    let nics = |nic: &str| vm(&format!("  network_devices = [\n    {{ bridge = \"vmbr0\" }},\n    {{ {nic} }},\n  ]"));
    let disks = |disk: &str| {
        vm(&format!(
            "  disks = [\n    {{ interface = \"scsi0\", storage = \"local-lvm\", size = 8 }},\n    {{ {disk} }},\n  ]"
        ))
    };
    let ci =
        |inner: &str| vm(&format!("  network_devices = [{{ bridge = \"vmbr0\" }}]\n  cloud_init {{\n{inner}\n  }}"));
    let talos = |extra: &str| {
        format!(
            "  node = \"10.0.0.11\"\n  client_configuration = proxtalos_machine_secrets.s.client_configuration\n{extra}"
        )
    };
    vec![
        ("proxtalos_vm", vm("  vm_id = 99"), "vm_id", "A VMID"),
        ("proxtalos_vm", vm("  memory = 8"), "memory", "at least 16"),
        ("proxtalos_vm", "  node = \"bad node\"".into(), "node", "not a PVE node name"),
        ("proxtalos_vm", vm("  name = \"bad_name\""), "name", "not a DNS name"),
        ("proxtalos_vm", vm("  tags = [\"-x\"]"), "tags", "tags are letters"),
        ("proxtalos_vm", vm("  agent_wait = \"soon\""), "agent_wait", ""),
        ("proxtalos_vm", disks("interface = \"nvme0\", storage = \"local-lvm\", size = 8"), "disks[1].interface", ""),
        ("proxtalos_vm", disks("interface = \"scsi1\", storage = \"Local LVM\", size = 8"), "disks[1].storage", "storage id"),
        ("proxtalos_vm", disks("interface = \"scsi1\", storage = \"local-lvm\", size = 0"), "disks[1].size", "GiB"),
        ("proxtalos_vm", disks("interface = \"scsi1\", storage = \"local-lvm\", cache = \"fast\""), "disks[1].cache", "cache mode"),
        ("proxtalos_vm", disks("interface = \"scsi0\", storage = \"local-lvm\", size = 8"), "disks[1].interface", "already used"),
        (
            "proxtalos_vm",
            disks("interface = \"scsi1\", storage = \"local-lvm\", import_from = \"/tmp/t.raw\""),
            "disks[1].import_from",
            "volume id",
        ),
        ("proxtalos_vm", nics("bridge = \"vmbr0 extra\""), "network_devices[1].bridge", "bridge name"),
        ("proxtalos_vm", nics("model = \"rtl\""), "network_devices[1].model", "virtio"),
        ("proxtalos_vm", nics("mac_address = \"zz\""), "network_devices[1].mac_address", "BC:24:11"),
        ("proxtalos_vm", nics("vlan_id = 5000"), "network_devices[1].vlan_id", "1–4094"),
        ("proxtalos_vm", nics("mtu = 9"), "network_devices[1].mtu", "576–65520"),
        ("proxtalos_vm", vm("  cdrom {\n    file = \"talos.iso\"\n  }"), "cdrom.file", "ISO volume"),
        ("proxtalos_vm", vm("  cdrom {\n    interface = \"virtio0\"\n    file = \"none\"\n  }"), "cdrom.interface", "ide, sata or scsi"),
        ("proxtalos_vm", ci("    storage = \"Bad St\""), "cloud_init.storage", "storage id"),
        (
            "proxtalos_vm",
            ci("    storage = \"local-lvm\"\n    ip_configs = [{ ipv4 = \"10.0.0.5\" }]"),
            "cloud_init.ip_configs[0].ipv4",
            "prefix",
        ),
        (
            "proxtalos_vm",
            ci("    storage = \"local-lvm\"\n    ip_configs = [{ ipv4 = \"10.0.0.5/24\", ipv4_gateway = \"gw\" }]"),
            "cloud_init.ip_configs[0].ipv4_gateway",
            "not an IP address",
        ),
        (
            "proxtalos_vm",
            ci("    storage = \"local-lvm\"\n    ip_configs = [{ ipv4 = \"dhcp\" }, { ipv4 = \"dhcp\" }]"),
            "cloud_init.ip_configs[1]",
            "net1",
        ),
        ("proxtalos_vm", vm("  clone {\n    source_vm_id = 5\n  }"), "clone.source_vm_id", "A VMID"),
        ("proxtalos_vm", vm("  timeouts {\n    create = \"soon\"\n  }"), "timeouts.create", ""),
        (
            "proxtalos_machine_bootstrap",
            "  node = \"not an address at all\"\n  client_configuration = proxtalos_machine_secrets.s.client_configuration".into(),
            "node",
            "neither an IP address nor a DNS name",
        ),
        ("proxtalos_machine_bootstrap", talos("  endpoint = \"https://10.0.0.11\""), "endpoint", "no scheme"),
        (
            "proxtalos_machine_bootstrap",
            format!("  node = \"10.0.0.11\"\n  {CLIENT_GARBAGE}"),
            "client_configuration.client_certificate",
            "base64",
        ),
        (
            "proxtalos_machine_configuration_apply",
            format!("  node = \"10.0.0.11\"\n  machine_configuration = \"x\"\n  {CLIENT_GARBAGE}"),
            "client_configuration.ca_certificate",
            "no PEM certificate",
        ),
        (
            "proxtalos_machine_configuration_apply",
            format!("  node = \"10.0.0.11\"\n  machine_configuration = \"x\"\n  {CLIENT_GARBAGE}"),
            "client_configuration.client_key",
            "private key",
        ),
        (
            "proxtalos_cluster_kubeconfig",
            "  node = \"a b\"\n  client_configuration = proxtalos_machine_secrets.s.client_configuration".into(),
            "node",
            "DNS name",
        ),
    ]
}

/// Data sources: (type, body, path, detail text).
fn data_cases() -> Vec<(&'static str, String, &'static str, &'static str)> {
    let mc = |patch: &str| {
        format!(
            "  cluster_name = \"c\"\n  cluster_endpoint = \"https://10.0.0.10:6443\"\n  machine_type = \"worker\"\n  talos_version = \"v1.14\"\n  kubernetes_version = \"1.33.1\"\n  machine_secrets = proxtalos_machine_secrets.s.machine_secrets\n  config_patches = [{patch}]"
        )
    };
    vec![
        (
            "proxtalos_cluster_health",
            "  client_configuration = proxtalos_machine_secrets.s.client_configuration\n  control_plane_nodes = [\"10.0.0.11\", \"x y\"]".into(),
            "control_plane_nodes[1]",
            "DNS name",
        ),
        (
            "proxtalos_client_configuration",
            format!("  cluster_name = \"c\"\n  {CLIENT_GARBAGE}"),
            "client_configuration.client_certificate",
            "base64",
        ),
        ("proxtalos_machine_configuration", mc("\"just a string\""), "config_patches[0]", "not a patch"),
    ]
}

fn diagnostics(out: &str) -> Vec<Value> {
    let start = out.find('{').expect("validate -json output");
    let v: Value = serde_json::from_str(&out[start..]).unwrap_or_else(|e| panic!("{e}: {out}"));
    v["diagnostics"].as_array().cloned().unwrap_or_default()
}

fn workspace() -> Workspace {
    let tf = terraform("1.15.5").expect("Terraform 1.15.5");
    let bin = build_provider("bin", "terraform-provider-proxtalos");
    Workspace::new(&tf, "registry.terraform.io/proxtalos/proxtalos", &bin)
}

#[test]
fn every_bad_input_names_its_attribute() {
    let ws = workspace();
    let mut hcl = format!("{HEADER}\nresource \"proxtalos_machine_secrets\" \"s\" {{}}\n");
    let resources = cases();
    for (i, (kind, body, _, _)) in resources.iter().enumerate() {
        hcl.push_str(&format!("\nresource \"{kind}\" \"c{i}\" {{\n{body}\n}}\n"));
    }
    let data = data_cases();
    for (i, (kind, body, _, _)) in data.iter().enumerate() {
        hcl.push_str(&format!("\ndata \"{kind}\" \"d{i}\" {{\n{body}\n}}\n"));
    }
    ws.write_config(&hcl);
    ws.init();
    let out = ws.expect(1, &["validate", "-json", "-no-color"]);
    let diags = diagnostics(&out);
    let all = resources
        .iter()
        .enumerate()
        .map(|(i, (kind, _, path, text))| (format!("resource \"{kind}\" \"c{i}\""), path, text))
        .chain(
            data.iter().enumerate().map(|(i, (kind, _, path, text))| (format!("data \"{kind}\" \"d{i}\""), path, text)),
        );
    let mut failures = Vec::new();
    for (context, path, text) in all {
        let mine: Vec<&Value> =
            diags.iter().filter(|d| d["snippet"]["context"].as_str() == Some(context.as_str())).collect();
        let top_level = !path.contains(['.', '[']);
        let found = mine.iter().any(|d| {
            let detail = d["detail"].as_str().unwrap_or_default();
            let code = d["snippet"]["code"].as_str().unwrap_or_default();
            let located = if top_level { code.contains(*path) } else { detail.contains(*path) };
            d["severity"] == "error" && located && detail.contains(*text)
        });
        if !found {
            let seen: Vec<String> = mine
                .iter()
                .map(|d| format!("{} | {} | code: {}", d["summary"], d["detail"], d["snippet"]["code"]))
                .collect();
            failures.push(format!("{context}: wanted {path} ({text:?}); got {seen:#?}"));
        }
    }
    assert!(failures.is_empty(), "{} of {} inputs:\n{}", failures.len(), diags.len(), failures.join("\n"));
    // A JSON-patch format error says what a patch is, not "at : ...".
    assert!(!out.contains("at : "), "{out}");
}

#[test]
fn a_malformed_provider_ca_certificate_names_the_attribute_and_the_defect() {
    let ws = workspace();
    ws.write_config(&format!(
        r#"{HEADER}
provider "proxtalos" {{
  proxmox {{
    endpoint       = "https://127.0.0.1:1/"
    api_token      = "root@pam!t=3b0f2a1c-0000-4000-8000-000000000001"
    ca_certificate = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
  }}
}}

resource "proxtalos_machine_secrets" "s" {{}}
"#
    ));
    ws.init();
    let out = ws.expect(1, &["validate", "-json", "-no-color"]);
    let diags = diagnostics(&out);
    let d = diags.iter().find(|d| d["summary"] == "Invalid CA certificate").unwrap_or_else(|| panic!("{out}"));
    assert!(d["snippet"]["code"].as_str().unwrap_or_default().contains("ca_certificate"), "{d:#}");
    let detail = d["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("certificate 1: not an X.509 certificate"), "{detail}");
    assert!(!out.contains("builder error"), "{out}");
}

#[test]
fn import_ids_say_what_is_wrong_with_them() {
    let pve = FakePve::start();
    let ws = workspace();
    std::fs::write(ws.work().join("ca.pem"), &pve.ca_pem).unwrap();
    let token = pve.token("root@pam!diag", "3b0f2a1c-0000-4000-8000-0000000d1a90");
    ws.write_config(&format!(
        "{}\nresource \"proxtalos_vm\" \"x\" {{\n  node = \"pve1\"\n}}\n\nresource \"proxtalos_image\" \"i\" {{\n  node = \"pve1\"\n  storage = \"local\"\n  content = \"iso\"\n  file_name = \"t.iso\"\n  url = \"https://factory.talos.dev/image/x/v1.13.9/nocloud-amd64.iso\"\n}}\n",
        pve.provider_header("proxtalos/proxtalos", &format!("api_token = {token:?}"))
    ));
    ws.init();
    for (addr, id, want) in [
        ("proxtalos_vm.x", "nope/150", "The cluster has no node \"nope\". Its nodes: pve1."),
        ("proxtalos_vm.x", "/150", "Invalid import id"),
        ("proxtalos_vm.x", "pve1/5", "not a VMID"),
        ("proxtalos_vm.x", "pve1/150", "VM 150 does not exist on node pve1."),
        ("proxtalos_image.i", "nope/local:iso/t.iso", "The cluster has no node \"nope\""),
        ("proxtalos_image.i", "/local:iso/t.iso", "Invalid import id"),
    ] {
        let out = ws.expect(1, &["import", "-no-color", addr, id]);
        assert!(out.contains(want), "import {addr} {id}: wanted {want:?}:\n{out}");
    }
}
