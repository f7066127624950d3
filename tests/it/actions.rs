//! Actions with real Terraform 1.15.5 (issue 15): `terraform apply
//! -invoke=action.proxtalos_etcd_snapshot.<name>` against a simulated
//! control plane running real etcd. The progress lines show while it
//! runs; the file is 0600, `etcdutl snapshot status` reads it, and only
//! the newest `keep` stay. A node that is no control plane fails the
//! action with the node's words, and no file is left.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::sim_nodes::Sim;
use crate::support::terraform::{Workspace, build_provider, terraform};

fn config(ip: &str, dir: &str, node: &str) -> String {
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
    let sim = Sim::start_with(options, 86, 1);
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

    // A node that answers but runs no etcd: the action fails, no file.
    ws.write_config(&config(&sim.ips[0], &format!("{dir_s}-bad"), "127.0.0.1:1"));
    let out = ws.expect(1, &invoke);
    assert!(out.contains("etcd snapshot from 127.0.0.1:1 failed"), "{out}");
    assert!(!std::path::Path::new(&format!("{dir_s}-bad")).exists());
    ws.write_config(&config(&sim.ips[0], dir_s, &sim.ips[0]));
    ws.ok(&["destroy", "-auto-approve", "-no-color"]);
}
