//! `proxtalos_image` with real Terraform 1.15.5 against fakepve 0.5.0: PVE's
//! limits at plan time (content type not enabled, xz), download from the
//! Image Factory, a VM importing it, replacement on a source change, import,
//! destroy. fakepve gaps: G12 (`compression` crashes the fake, so it is only
//! validated here), G13 (no checksum verification or overwrite refusal:
//! reuse-by-checksum is not asserted), G10 (`import-from` not modelled: the
//! VM disk keeps size 0 on the fake).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::fakepve::FakePve;
use crate::support::terraform::{Workspace, build_provider, terraform};
use proxtalos::proxmox::storage::{self, Volume};
use proxtalos::proxmox::{ClientOptions, Credentials, Secret};
use serde_json::json;

const SOURCE: &str = "proxtalos/proxtalos";
const SCHEMATIC: &str = "376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba";

fn header(pve: &FakePve, token: &str) -> String {
    pve.provider_header(SOURCE, &format!("api_token      = \"{token}\""))
}

fn config(version: &str) -> String {
    format!(
        r#"
resource "proxtalos_image" "talos" {{
  node          = "pve1"
  storage       = "local"
  content       = "import"
  schematic_id  = "{SCHEMATIC}"
  talos_version = "{version}"
}}

resource "proxtalos_vm" "node" {{
  node  = "pve1"
  name  = "talos-1"
  disks = [{{ interface = "scsi0", storage = "local-lvm", import_from = proxtalos_image.talos.id }}]
  network_devices = [{{}}]
}}
"#
    )
}

fn volumes(pve: &FakePve, token: &str) -> Vec<String> {
    let c = pve.client(Credentials::ApiToken(Secret::new(token)), ClientOptions::default());
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let v: Vec<Volume> = c.execute_as(&storage::content("pve1", "local", Some("import"))).await.unwrap();
        v.into_iter().map(|v| v.volid).collect()
    })
}

#[test]
fn image_story() {
    let tf = terraform("1.15.5").expect("Terraform 1.15.5");
    let pve = FakePve::start();
    let token = pve.token("root@pam!tf", "0c7d4d2a-0000-4000-8000-00000000a1a1");
    let ws = Workspace::new(
        &tf,
        &format!("registry.terraform.io/{SOURCE}"),
        &build_provider("bin", "terraform-provider-proxtalos"),
    );
    std::fs::write(ws.work().join("ca.pem"), &pve.ca_pem).unwrap();
    let head = header(&pve, &token);

    // `local` has no `import` content on a fresh PVE: said at plan time.
    ws.write_config(&(head.clone() + &config("v1.11.2")));
    ws.init();
    let out = ws.expect(1, &["plan", "-no-color"]);
    assert!(out.contains("Content type not enabled") && out.contains("pvesm set local"), "{out}");

    // xz is refused at plan time, naming the attribute.
    ws.write_config(&(head.clone() + "resource \"proxtalos_image\" \"x\" {\n  node = \"pve1\"\n  storage = \"local\"\n  content = \"import\"\n  url = \"https://factory.talos.dev/image/x/v1.11.2/nocloud-amd64.raw.xz\"\n}\n"));
    let out = ws.expect(1, &["plan", "-no-color"]);
    assert!(out.contains("xz is not supported by PVE") && out.contains("url"), "{out}");

    pve.cmd(json!({"op": "storage_content", "storage": "local", "content": "iso,vztmpl,backup,import"}));
    ws.write_config(&(head.clone() + &config("v1.11.2")));
    let out = ws.apply();
    assert!(out.contains("2 added"), "{out}");
    let img = ws.resource("proxtalos_image.talos").unwrap();
    let id = img["id"].as_str().unwrap().to_string();
    assert_eq!(id, "local:import/talos-v1.11.2-nocloud-amd64-37656798.qcow2");
    assert_eq!(img["url"], format!("https://factory.talos.dev/image/{SCHEMATIC}/v1.11.2/nocloud-amd64.qcow2"));
    assert_eq!(volumes(&pve, &token), vec![id.clone()]);
    let vmid = ws.resource("proxtalos_vm.node").unwrap()["vm_id"].as_u64().unwrap();
    let cfg = pve.cmd(json!({"op": "vm_config", "vmid": vmid}));
    assert!(cfg["scsi0"].as_str().unwrap().contains(&format!("import-from={id}")), "{cfg}");
    ws.plan_exit(0);

    // Import the image by node/volid: no replacement, one in-place fill-in.
    ws.ok(&["state", "rm", "-no-color", "proxtalos_image.talos"]);
    let out = ws.ok(&["import", "-no-color", "proxtalos_image.talos", &format!("pve1/{id}")]);
    assert!(out.contains("Import successful"), "{out}");
    let plan = ws.plan_exit(2);
    assert!(!plan.contains("must be replaced") && plan.contains("updated in-place"), "{plan}");
    ws.apply();
    ws.plan_exit(0);

    // A new Talos version replaces the image, and the VM importing it.
    ws.write_config(&(head.clone() + &config("v1.11.3")));
    let plan = ws.plan_exit(2);
    assert!(plan.contains("proxtalos_image.talos must be replaced"), "{plan}");
    ws.apply();
    ws.plan_exit(0);
    assert_eq!(volumes(&pve, &token), vec!["local:import/talos-v1.11.3-nocloud-amd64-37656798.qcow2".to_string()]);

    ws.ok(&["destroy", "-no-color", "-auto-approve"]);
    assert!(volumes(&pve, &token).is_empty());
    assert!(pve.vmids().is_empty());
}

/// The documented example applies against fakepve, re-plans empty, imports
/// with the command from import.sh, and destroys.
#[test]
fn example_applies_imports_and_destroys() {
    let tf = terraform("1.15.5").expect("Terraform 1.15.5");
    let pve = FakePve::start();
    let token = pve.token("root@pam!tf", "0c7d4d2a-0000-4000-8000-00000000a1a2");
    pve.cmd(json!({"op": "storage_content", "storage": "local", "content": "iso,vztmpl,backup,import"}));
    let ws = Workspace::new(
        &tf,
        &format!("registry.terraform.io/{SOURCE}"),
        &build_provider("bin", "terraform-provider-proxtalos"),
    );
    std::fs::write(ws.work().join("ca.pem"), &pve.ca_pem).unwrap();
    let dir = crate::support::terraform::repo_root().join("examples/resources/proxtalos_image");
    ws.write_config(&(header(&pve, &token) + &std::fs::read_to_string(dir.join("resource.tf")).unwrap()));
    ws.init();
    ws.apply();
    ws.plan_exit(0);
    let import = std::fs::read_to_string(dir.join("import.sh")).unwrap();
    let line = import.lines().find(|l| l.starts_with("terraform import")).unwrap();
    let args: Vec<&str> = line.split_whitespace().skip(2).collect();
    ws.ok(&["state", "rm", "-no-color", args[0]]);
    ws.ok(&["import", "-no-color", args[0], args[1]]);
    ws.apply();
    ws.plan_exit(0);
    ws.ok(&["destroy", "-no-color", "-auto-approve"]);
    assert!(volumes(&pve, &token).is_empty());
}
