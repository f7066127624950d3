//! In-place OS upgrades through `proxtalos_machine_configuration_apply`
//! (issue 14, "the granular path gets in-place upgrades too"), with real
//! Terraform and the real provider binary against simulated nodes:
//!
//! * a control plane and a worker on v1.13.9 (the v1.13+ path: pull,
//!   install, client-side cordon and drain, reboot, uncordon); changing the
//!   configurations' installer to v1.14.0 plans only `talos_version` (and the
//!   configuration) of the two, with a warning naming each node's upgrade;
//!   the apply leaves both on v1.14.0 with their Nodes schedulable, and the
//!   re-plan is empty;
//! * an installer whose image never boots: the node falls back by itself
//!   (siderolabs/talos boot loader, `src/talos/sim/README.md` "Boot slots"),
//!   the apply fails naming the node and both versions, state keeps the
//!   version the node runs, and the next plan shows the upgrade again;
//! * a worker without `endpoint` whose upgrade needs a drain: a plan error
//!   on `endpoint` (Talos ≥ v1.13 leaves the drain to the client).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::sim_nodes::Sim;
use crate::support::terraform::{Terraform, Workspace, build_provider, terraforms};
use proxtalos::talos::sim::ImageFault;

fn tf() -> Terraform {
    let all = terraforms();
    all.iter().find(|t| t.version_string() == "1.15.5").or_else(|| all.first()).cloned().expect("a Terraform")
}

/// A control plane and two workers, each with its own configuration so
/// that each can name its own installer (`installers[i]`, None: Talos's
/// default); the workers reach the Kubernetes credentials through
/// `endpoint` (the control plane) unless `worker_endpoint` is false.
fn config(ips: &[String], installers: [Option<&str>; 3], worker_endpoint: bool) -> String {
    let cp = &ips[0];
    let ds = |name: &str, t: &str, installer: Option<&str>| {
        let install = installer.map(|i| format!("install_image = \"{i}\"")).unwrap_or_default();
        format!(
            r#"
data "proxtalos_machine_configuration" "{name}" {{
  cluster_name       = "inplace"
  cluster_endpoint   = "https://{cp}:6443"
  machine_type       = "{t}"
  machine_secrets    = proxtalos_machine_secrets.this.machine_secrets
  talos_version      = "v1.13"
  kubernetes_version = "1.33.1"
  install_disk       = "/dev/sda"
  {install}
}}
"#
        )
    };
    let endpoint = if worker_endpoint { format!("endpoint = \"{cp}\"") } else { String::new() };
    let worker = |i: usize| {
        let w = &ips[i];
        format!(
            r#"
resource "proxtalos_machine_configuration_apply" "w{i}" {{
  node                  = "{w}"
  {endpoint}
  client_configuration  = proxtalos_machine_secrets.this.client_configuration
  machine_configuration = data.proxtalos_machine_configuration.w{i}.machine_configuration
  upgrade {{
    drain_timeout = "1m"
  }}
  timeouts {{
    create = "2m"
    update = "4m"
  }}
  depends_on = [proxtalos_machine_bootstrap.this]
}}
"#
        )
    };
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
{cp_ds}{w1_ds}{w2_ds}
resource "proxtalos_machine_configuration_apply" "cp" {{
  node                  = "{cp}"
  client_configuration  = proxtalos_machine_secrets.this.client_configuration
  machine_configuration = data.proxtalos_machine_configuration.cp.machine_configuration
  timeouts {{
    create = "2m"
    update = "4m"
  }}
}}

resource "proxtalos_machine_bootstrap" "this" {{
  node                 = "{cp}"
  client_configuration = proxtalos_machine_secrets.this.client_configuration
  depends_on           = [proxtalos_machine_configuration_apply.cp]
}}
{w1}{w2}"#,
        cp_ds = ds("cp", "controlplane", installers[0]),
        w1_ds = ds("w1", "worker", installers[1]),
        w2_ds = ds("w2", "worker", installers[2]),
        w1 = worker(1),
        w2 = worker(2),
    )
}

fn version_in_state(ws: &Workspace, address: &str) -> String {
    ws.resource(address).unwrap()["talos_version"].as_str().unwrap_or_default().to_string()
}

#[test]
fn an_installer_change_upgrades_each_node_in_place() {
    let tf = tf();
    let sim = Sim::start("v1.13.9", 77, 3);
    let bin = build_provider("bin", "terraform-provider-proxtalos");
    let ws = Workspace::new(&tf, "registry.terraform.io/proxtalos/proxtalos", &bin);
    let addresses = [
        "proxtalos_machine_configuration_apply.cp",
        "proxtalos_machine_configuration_apply.w1",
        "proxtalos_machine_configuration_apply.w2",
    ];
    ws.write_config(&config(&sim.ips, [None, None, None], true));
    ws.init();
    ws.apply();
    for a in addresses {
        assert_eq!(version_in_state(&ws, a), "v1.13.9", "{a}");
    }
    ws.plan_exit(0);

    // The plan says what apply will do: the three nodes change in place,
    // each with its upgrade named.
    let to = "ghcr.io/siderolabs/installer:v1.14.0";
    ws.write_config(&config(&sim.ips, [Some(to), Some(to), Some(to)], true));
    let plan = ws.plan_exit(2);
    assert!(plan.contains("Plan: 0 to add, 3 to change, 0 to destroy."), "{plan}");
    assert_eq!(plan.matches("~ talos_version").count(), 3, "{plan}");
    assert!(plan.contains(r#""v1.13.9" -> "v1.14.0""#), "{plan}");
    for ip in &sim.ips {
        assert!(plan.contains(&format!("Talos node {ip} will be upgraded in place: v1.13.9 → v1.14.0")), "{plan}");
    }
    ws.apply();
    for (i, a) in addresses.iter().enumerate() {
        assert_eq!(sim.c().version(i).unwrap(), "v1.14.0", "{a}");
        assert_eq!(version_in_state(&ws, a), "v1.14.0", "{a}");
        assert!(!sim.c().unschedulable(i).unwrap(), "{a}: the Node was uncordoned after its upgrade");
    }
    ws.plan_exit(0);

    // An image that never boots: the worker falls back to v1.14.0; the
    // apply fails naming it, and the upgrade stays planned.
    let bad = "ghcr.io/siderolabs/installer:v1.14.1";
    sim.c().fail_image(bad, ImageFault::NeverBoots);
    ws.write_config(&config(&sim.ips, [Some(to), Some(to), Some(bad)], true));
    let out = ws.expect(1, &["apply", "-no-color", "-auto-approve"]);
    let w = &sim.ips[2];
    assert!(out.contains(&format!("Cannot upgrade Talos node {w} to v1.14.1")), "{out}");
    assert!(out.contains("booted v1.14.0 again instead of v1.14.1"), "{out}");
    assert_eq!(sim.c().version(2).unwrap(), "v1.14.0");
    assert_eq!(version_in_state(&ws, addresses[2]), "v1.14.0");
    assert!(!sim.c().unschedulable(2).unwrap(), "uncordoned after the fallback");
    let again = ws.plan_exit(2);
    assert!(again.contains(r#""v1.14.0" -> "v1.14.1""#), "{again}");

    // A Kubernetes version change: the plan says what this resource does
    // (the node's configuration) and what it does not (the manifests, the
    // order across nodes).
    let k8s = config(&sim.ips, [Some(to), Some(to), Some(to)], true).replace("\"1.33.1\"", "\"1.34.0\"");
    ws.write_config(&k8s);
    let plan = ws.plan_exit(2);
    for ip in &sim.ips {
        assert!(plan.contains(&format!("Kubernetes v1.33.1 → v1.34.0 on Talos node {ip}")), "{plan}");
    }
    assert!(plan.contains("bootstrap manifests"), "{plan}");

    // Without `endpoint` a worker cannot be drained: a plan error there.
    let next = "ghcr.io/siderolabs/installer:v1.14.2";
    ws.write_config(&config(&sim.ips, [Some(to), Some(next), Some(to)], false));
    let refused = ws.expect(1, &["plan", "-no-color"]);
    let w1 = &sim.ips[1];
    assert!(refused.contains(&format!("Talos node {w1} cannot be drained for its upgrade")), "{refused}");
    assert!(refused.contains("endpoint"), "{refused}");

    // Another installer of the same version (an Image Factory schematic:
    // other extensions): a configuration change alone would keep the old
    // extensions running, so the plan says the node is reinstalled and the
    // apply upgrades it to the same version (a new boot).
    let factory =
        "factory.talos.dev/installer/376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba:v1.14.0";
    ws.write_config(&config(&sim.ips, [Some(to), Some(factory), Some(to)], true));
    let plan = ws.plan_exit(2).split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(plan.contains(&format!("Talos node {w1} will be reinstalled from another installer of v1.14.0")), "{plan}");
    let boot = sim.c().boot_id(1).unwrap();
    ws.apply();
    assert_ne!(sim.c().boot_id(1).unwrap(), boot, "reinstalled: a new boot");
    assert_eq!(sim.c().version(1).unwrap(), "v1.14.0");
    assert_eq!(version_in_state(&ws, addresses[1]), "v1.14.0");
    ws.plan_exit(0);
}

/// Talos ≤ v1.12 has only the legacy `MachineService.Upgrade`: the node
/// checks etcd, drains, installs and reboots by itself (siderolabs/talos
/// `v1alpha1_server.go` `Upgrade`); the provider calls it with `preserve`
/// (a one-member etcd is allowed then, `ValidateForUpgrade`) and waits for
/// the new boot and version. No `endpoint` is needed for the worker: the
/// node drains itself. On Terraform 1.0.3, the oldest we support (an
/// `upgrade` block, never set here, must not trip its planner).
#[test]
fn talos_1_12_nodes_upgrade_with_the_legacy_call_on_terraform_1_0_3() {
    let Some(tf) = crate::support::terraform::terraform_1_0_3() else { return };
    let sim = Sim::start("v1.12.6", 78, 3);
    let bin = build_provider("bin", "terraform-provider-proxtalos");
    let ws = Workspace::new(&tf, "registry.terraform.io/proxtalos/proxtalos", &bin);
    let v12 = |s: String| s.replace("\"v1.13\"", "\"v1.12\"").replace("\"1.33.1\"", "\"1.32.3\"");
    // Terraform 1.0.3 has no write-only attributes or ephemeral resources;
    // the configuration here uses neither.
    ws.write_config(&v12(config(&sim.ips, [None, None, None], false)));
    ws.init();
    ws.apply();
    assert_eq!(version_in_state(&ws, "proxtalos_machine_configuration_apply.w1"), "v1.12.6");
    let to = "ghcr.io/siderolabs/installer:v1.13.0";
    ws.write_config(&v12(config(&sim.ips, [Some(to), Some(to), Some(to)], false)));
    let plan = ws.plan_exit(2);
    assert!(plan.contains("Talos's legacy upgrade"), "{plan}");
    ws.apply();
    for i in 0..3 {
        assert_eq!(sim.c().version(i).unwrap(), "v1.13.0");
        assert!(!sim.c().unschedulable(i).unwrap(), "node {i}: Talos uncordons what it cordoned");
    }
    ws.plan_exit(0);
}
