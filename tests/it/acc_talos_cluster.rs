//! Acceptance tests of the node-touching Talos objects with real Terraform
//! and the real provider binary against simulated nodes started here
//! (loopback addresses `127.X.Y.Z`, port 50000, fast time scale), for the
//! v1.12, v1.13 and v1.14 simulator behaviour:
//!
//! * story: 3 control planes + 2 workers from maintenance mode to
//!   bootstrapped and healthy (workers through `machine_configuration_wo`),
//!   empty re-plan, a patch applied with `no_reboot` and then with `try`
//!   (whose rollback shows as drift), drift made behind the provider's back
//!   shows in plan and is repaired, bootstrap re-run after an interrupted
//!   apply (state lost) and after import, destroy with reset back to
//!   maintenance mode;
//! * the story on Terraform 1.0.3 for v1.13 (workers through
//!   `machine_configuration`): apply to healthy, empty re-plan, destroy;
//! * faults: a client certificate from another cluster, a CA from another
//!   cluster (waited out until a short timeout), Bootstrap on a worker, a
//!   node that never leaves maintenance mode (v1.13+), a configuration the
//!   node rejects: each names the node and the stage, and the state keeps
//!   what was done;
//! * a node that reboots in the middle of an apply: one power-cycled while
//!   the provider waits for it after the install (waited out, completes),
//!   one rebooted during its install (back in maintenance mode: fails at the
//!   timeout naming the node and the stage, state keeps it tainted);
//! * a maintenance-mode apply whose reply is lost: the node is looked at,
//!   found configured, and the apply recorded with a warning.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use crate::support::sim_nodes::Sim;
use crate::support::terraform::{Terraform, Workspace, build_provider, terraforms};
use proxtalos::talos::api::{ApplyMode, ApplyRequest, NodeClient, Timeouts};
use proxtalos::talos::client_config::ClientConfiguration;
use proxtalos::talos::sim::Delays;
use proxtalos::talos::sim::{Phase, SimOptions};

/// Terraform ≥ 1.11 (write-only attributes), preferring 1.15.5.
fn tf() -> Terraform {
    let all = terraforms();
    all.iter()
        .find(|t| t.version_string() == "1.15.5")
        .or_else(|| all.iter().find(|t| t.at_least(1, 11)))
        .cloned()
        .expect("a Terraform >= 1.11")
}

fn workspace(tf: &Terraform) -> Workspace {
    let bin = build_provider("bin", "terraform-provider-proxtalos");
    Workspace::new(tf, "registry.terraform.io/proxtalos/proxtalos", &bin)
}

fn contract(version: &str) -> String {
    version.rsplit_once('.').unwrap().0.to_string()
}

/// The oldest Kubernetes the node's Talos runs (a node refuses older ones).
fn kubernetes(version: &str) -> String {
    proxtalos::day2::compat::oldest_kubernetes(version).unwrap()
}

fn list(ips: &[String]) -> String {
    format!("[{}]", ips.iter().map(|i| format!("\"{i}\"")).collect::<Vec<_>>().join(", "))
}

const HEADER: &str = r#"terraform {
  required_providers {
    proxtalos = { source = "proxtalos/proxtalos" }
  }
}

provider "proxtalos" {}
"#;

fn config_ds(name: &str, version: &str, machine_type: &str, extra: &str) -> String {
    format!(
        r#"
data "proxtalos_machine_configuration" "{name}" {{
  cluster_name       = "acc"
  cluster_endpoint   = "https://127.0.0.1:6443"
  machine_type       = "{machine_type}"
  machine_secrets    = proxtalos_machine_secrets.this.machine_secrets
  talos_version      = "{contract}"
  kubernetes_version = "{k8s}"
  {extra}
}}
"#,
        contract = contract(version),
        k8s = kubernetes(version),
    )
}

/// The whole cluster: secrets, configurations, 3+2 applies, bootstrap,
/// kubeconfig and health. `write_only`: the workers get their configuration
/// through `machine_configuration_wo` (Terraform ≥ 1.11), else through
/// `machine_configuration`.
/// The data source arguments: install disk and a patch setting the sysctl
/// `vm.max_map_count` (v1.14 moved sysctls out of the v1alpha1 document).
fn sysctl_patch(version: &str, map_count: &str) -> String {
    let doc = if contract(version) == "v1.14" {
        format!(
            r#"{{ apiVersion = "v1alpha1", kind = "SysctlConfig", params = {{ "vm.max_map_count" = "{map_count}" }} }}"#
        )
    } else {
        format!(r#"{{ machine = {{ sysctls = {{ "vm.max_map_count" = "{map_count}" }} }} }}"#)
    };
    format!(
        r#"install_disk = "/dev/sda"
  config_patches = [yamlencode({doc})]"#
    )
}

fn story_config(version: &str, ips: &[String], map_count: &str, cp_mode: &str, write_only: bool) -> String {
    let patch = sysctl_patch(version, map_count);
    format!(
        r#"{HEADER}
locals {{
  cps     = {cps}
  workers = {workers}
}}

resource "proxtalos_machine_secrets" "this" {{
  talos_version = "{contract}"
}}
{cp_ds}{worker_ds}
resource "proxtalos_machine_configuration_apply" "cp" {{
  for_each              = toset(local.cps)
  node                  = each.key
  client_configuration  = proxtalos_machine_secrets.this.client_configuration
  machine_configuration = data.proxtalos_machine_configuration.cp.machine_configuration
  apply_mode            = "{cp_mode}"
  on_destroy {{
    reset    = true
    graceful = false
    reboot   = true
  }}
  timeouts {{
    create = "2m"
  }}
}}

resource "proxtalos_machine_configuration_apply" "worker" {{
  for_each                         = toset(local.workers)
  node                             = each.key
  client_configuration             = proxtalos_machine_secrets.this.client_configuration
  {worker_config}
  on_destroy {{
    reset    = true
    graceful = false
    reboot   = true
  }}
  depends_on                       = [proxtalos_machine_configuration_apply.cp]
}}

resource "proxtalos_machine_bootstrap" "this" {{
  node                 = local.cps[0]
  client_configuration = proxtalos_machine_secrets.this.client_configuration
  depends_on           = [proxtalos_machine_configuration_apply.cp]
}}

resource "proxtalos_cluster_kubeconfig" "this" {{
  node                 = local.cps[0]
  client_configuration = proxtalos_machine_secrets.this.client_configuration
  depends_on           = [proxtalos_machine_bootstrap.this]
}}

data "proxtalos_cluster_health" "this" {{
  client_configuration = proxtalos_machine_secrets.this.client_configuration
  control_plane_nodes  = local.cps
  worker_nodes         = local.workers
  depends_on           = [proxtalos_machine_bootstrap.this, proxtalos_machine_configuration_apply.worker]
  timeouts {{
    read = "2m"
  }}
}}

{ephemeral}
output "stages" {{
  value = data.proxtalos_cluster_health.this.stages
}}

output "host" {{
  value     = proxtalos_cluster_kubeconfig.this.kubernetes_client_configuration.host
  sensitive = true
}}
"#,
        cps = list(&ips[..3]),
        workers = list(&ips[3..]),
        contract = contract(version),
        cp_ds = config_ds("cp", version, "controlplane", &patch),
        worker_ds = config_ds("worker", version, "worker", &patch),
        // The ephemeral kubeconfig (Terraform >= 1.10), opened once the
        // cluster is bootstrapped, as its documented example shows it.
        ephemeral = if write_only {
            "ephemeral \"proxtalos_cluster_kubeconfig\" \"this\" {\n  node                 = local.cps[0]\n  \
             client_configuration = proxtalos_machine_secrets.this.client_configuration\n  timeout              = \"1m\"\n  \
             depends_on           = [proxtalos_machine_bootstrap.this]\n}\n"
        } else {
            ""
        },
        worker_config = if write_only {
            "machine_configuration_wo         = data.proxtalos_machine_configuration.worker.machine_configuration\n  \
             machine_configuration_wo_version = \"1\""
        } else {
            "machine_configuration            = data.proxtalos_machine_configuration.worker.machine_configuration"
        },
    )
}

/// Lines of a plan that add or remove something.
fn changed_lines(plan: &str) -> Vec<String> {
    plan.lines()
        .map(str::trim_start)
        .filter(|t| t.starts_with("+ ") || t.starts_with("- "))
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

fn creds_of(ws: &Workspace) -> ClientConfiguration {
    let c = &ws.resource("proxtalos_machine_secrets.this").unwrap()["client_configuration"];
    let pem = |k: &str| proxtalos::resources::shared::common::unb64(c[k].as_str().unwrap()).unwrap();
    ClientConfiguration { ca: pem("ca_certificate"), crt: pem("client_certificate"), key: pem("client_key") }
}

/// The story on `tf`. Before Terraform 1.11 (no write-only attributes) the
/// workers use `machine_configuration`, and only apply → healthy, empty
/// re-plan and destroy with reset run.
fn story(version: &str, slot: u8, tf: &Terraform) {
    let started = std::time::Instant::now();
    let sim = Sim::start(version, slot, 5);
    let ips = sim.ips.clone();
    let ws = workspace(tf);
    let wo = tf.at_least(1, 11);
    ws.write_config(&story_config(version, &ips, "262144", "no_reboot", wo));
    ws.init();

    // 1. maintenance mode → installed, bootstrapped, healthy
    let out = ws.apply();
    assert!(out.contains("Apply complete! Resources: 8 added"), "{out}");
    if wo {
        assert!(out.contains("ephemeral.proxtalos_cluster_kubeconfig.this: Opening complete"), "{out}");
    }
    assert_eq!(sim.phases(), vec![Phase::Running; 5]);
    assert_eq!(sim.c().etcd_members().len(), 3);
    let stages = ws.ok(&["output", "-json", "stages"]);
    assert!(stages.contains("\"apid\"") && stages.contains("\"etcd\"") && stages.contains("\"services\""), "{stages}");
    assert_eq!(ws.ok(&["output", "-raw", "host"]), "https://127.0.0.1:6443");
    let cp0 = ws.resource(&format!("proxtalos_machine_configuration_apply.cp[\"{}\"]", ips[0])).unwrap();
    assert!(cp0["machine_configuration_redacted"].as_str().unwrap().contains("vm.max_map_count: \"262144\""));
    let worker = ws.resource(&format!("proxtalos_machine_configuration_apply.worker[\"{}\"]", ips[3])).unwrap();
    assert_eq!(worker["machine_configuration"].is_null(), wo, "write-only input kept out of state");
    assert!(worker["machine_configuration_wo"].is_null(), "write-only value not stored");
    assert_eq!(worker["machine_configuration_hash"].as_str().unwrap().len(), 64);

    // 2. re-plan empty
    ws.plan_exit(0);
    if wo {
        story_changes(version, &sim, &ws);
    }

    // 7. destroy resets every node back to maintenance mode
    let out = ws.ok(&["destroy", "-no-color", "-auto-approve"]);
    assert!(out.contains("Destroy complete!"), "{out}");
    assert_eq!(sim.phases(), vec![Phase::Maintenance; 5]);
    assert!(sim.c().etcd_members().is_empty());
    eprintln!("story {version} on Terraform {}: {:?}", tf.version_string(), started.elapsed());
}

/// Steps 3 to 6 of the story (Terraform ≥ 1.11): patch changes with
/// `no_reboot` and `try`, drift behind the provider's back, bootstrap after
/// an interrupted apply and after import.
fn story_changes(version: &str, sim: &Sim, ws: &Workspace) {
    let ips = &sim.ips;

    // 3. a patch change with no_reboot: the plan shows the redacted line
    //    and the node's dry run; the node runs it afterwards
    ws.write_config(&story_config(version, ips, "524288", "no_reboot", true));
    let plan = ws.plan_exit(2);
    let changed = changed_lines(&plan);
    assert!(changed.iter().any(|l| l == r#"+ vm.max_map_count: "524288""#), "{plan}");
    assert!(changed.iter().any(|l| l == r#"- vm.max_map_count: "262144""#), "{plan}");
    assert!(plan.contains("Dry run summary"), "{plan}");
    ws.apply();
    for i in 0..5 {
        assert!(sim.c().active_config(i).unwrap().unwrap().contains("524288"), "node {i}");
    }
    ws.plan_exit(0);

    // 4. the same with try: applied, then rolled back by the node after
    //    try_timeout (1m scaled to 60 ms), which the next plan shows as drift
    ws.write_config(&story_config(version, ips, "1048576", "try", true));
    ws.apply();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !sim.c().active_config(0).unwrap().unwrap().contains("524288") {
        assert!(std::time::Instant::now() < deadline, "never rolled back");
        std::thread::sleep(Duration::from_millis(20));
    }
    let plan = ws.plan_exit(2);
    assert!(plan.contains(r#"+ vm.max_map_count: "1048576""#) || plan.contains("1048576"), "{plan}");
    ws.write_config(&story_config(version, ips, "1048576", "no_reboot", true));
    ws.apply();
    ws.plan_exit(0);
    assert!(sim.c().active_config(1).unwrap().unwrap().contains("1048576"));

    // 5. drift behind the provider's back on a control plane and a worker
    let creds = creds_of(ws);
    for i in [1usize, 4] {
        let text = sim.c().active_config(i).unwrap().unwrap().replace("1048576", "65530");
        let node = ips[i].clone();
        let creds = creds.clone();
        sim.rt.block_on(async move {
            let t = Timeouts { connect: Duration::from_secs(5), call: Duration::from_secs(10) };
            let c = NodeClient::normal(&node, None, &creds, t).await.unwrap();
            let req = ApplyRequest {
                config: text.into_bytes(),
                mode: ApplyMode::NoReboot,
                dry_run: false,
                try_timeout: None,
            };
            c.apply_configuration(&req).await.unwrap();
        });
    }
    let plan = ws.plan_exit(2);
    assert!(plan.contains("2 to change"), "{plan}");
    assert!(changed_lines(&plan).iter().any(|l| l == r#"- vm.max_map_count: "65530""#), "{plan}");
    assert!(
        plan.contains(&format!("proxtalos_machine_configuration_apply.worker[\"{}\"] will be updated", ips[4])),
        "{plan}"
    );
    ws.apply();
    ws.plan_exit(0);
    assert!(sim.c().active_config(4).unwrap().unwrap().contains("1048576"));

    // 5b. a change with apply_mode = "reboot" (on v1.14 a NO_REBOOT apply
    //     and a Reboot call, v1.14 has no REBOOT mode): done only once each
    //     control plane has rebooted, i.e. shows a new boot id
    //     (behaviour.md §6, talosctl's check), and runs the change
    let boots: Vec<u64> = (0..3).map(|i| sim.c().boot_id(i).unwrap()).collect();
    ws.write_config(&story_config(version, ips, "786432", "reboot", true));
    let out = ws.apply();
    for (i, boot) in boots.iter().enumerate() {
        assert!(sim.c().boot_id(i).unwrap() > *boot, "control plane {i} rebooted before the apply ended:\n{out}");
        assert!(sim.c().active_config(i).unwrap().unwrap().contains("786432"), "node {i}");
    }
    ws.plan_exit(0);

    // 6. bootstrap after an interrupted apply (the call went through, the
    //    state was lost): AlreadyExists counts as done
    ws.ok(&["state", "rm", "proxtalos_machine_bootstrap.this"]);
    let out = ws.apply();
    assert!(out.contains("proxtalos_machine_bootstrap.this: Creation complete"), "{out}");
    ws.plan_exit(0);
    //    …and import marks it bootstrapped
    ws.ok(&["state", "rm", "proxtalos_machine_bootstrap.this"]);
    let out = ws.ok(&["import", "-no-color", "proxtalos_machine_bootstrap.this", &ips[0]]);
    assert!(out.contains("Import successful"), "{out}");
    ws.apply();
    ws.plan_exit(0);
    assert_eq!(sim.c().etcd_members().len(), 3);
}

#[test]
fn story_v1_12() {
    story("v1.12.0", 10, &tf());
}

#[test]
fn story_v1_13() {
    story("v1.13.9", 11, &tf());
}

#[test]
fn story_v1_14() {
    story("v1.14.0", 12, &tf());
}

/// The story on Terraform 1.0.3 (no write-only attributes, no ephemeral
/// resources): 3+2 to healthy, empty re-plan, destroy with reset.
#[test]
fn story_v1_13_terraform_1_0_3() {
    let Some(tf) = crate::support::terraform::terraform_1_0_3() else { return };
    story("v1.13.9", 13, &tf);
}

/// A `proxtalos_machine_configuration_apply` of `config` (an HCL
/// expression) to `node` with this cluster's client configuration, and
/// `extra` lines (arguments, blocks) at its end.
fn apply_resource(name: &str, node: &str, config: &str, extra: &str) -> String {
    format!(
        r#"
resource "proxtalos_machine_configuration_apply" "{name}" {{
  node                  = "{node}"
  client_configuration  = proxtalos_machine_secrets.this.client_configuration
  machine_configuration = {config}
{extra}}}
"#
    )
}

/// The rendered configuration of the `proxtalos_machine_configuration`
/// data source `name`.
fn config_of(name: &str) -> String {
    format!("data.proxtalos_machine_configuration.{name}.machine_configuration")
}

/// A `timeouts` block with a create timeout.
fn create_timeout(create: &str) -> String {
    format!("  timeouts {{\n    create = \"{create}\"\n  }}\n")
}

fn fault_config(version: &str, ips: &[String], with_stuck: bool, with_rejected: bool) -> String {
    let disk = r#"install_disk = "/dev/sda""#;
    let mut s = format!(
        r#"{HEADER}
resource "proxtalos_machine_secrets" "this" {{
  talos_version = "{contract}"
}}

resource "proxtalos_machine_secrets" "other" {{
  talos_version = "{contract}"
}}
{cp}{worker}{cp_apply}{worker_apply}
resource "proxtalos_machine_bootstrap" "worker" {{
  node                 = "{b}"
  client_configuration = proxtalos_machine_secrets.this.client_configuration
  depends_on           = [proxtalos_machine_configuration_apply.worker]
}}

resource "proxtalos_cluster_kubeconfig" "wrong_cert" {{
  node = "{a}"
  client_configuration = {{
    ca_certificate     = proxtalos_machine_secrets.this.client_configuration.ca_certificate
    client_certificate = proxtalos_machine_secrets.other.client_configuration.client_certificate
    client_key         = proxtalos_machine_secrets.other.client_configuration.client_key
  }}
  depends_on = [proxtalos_machine_configuration_apply.cp]
}}

resource "proxtalos_cluster_kubeconfig" "wrong_ca" {{
  node                 = "{a}"
  client_configuration = proxtalos_machine_secrets.other.client_configuration
  depends_on           = [proxtalos_machine_configuration_apply.cp]
  timeouts {{
    create = "10s"
  }}
}}
"#,
        contract = contract(version),
        cp = config_ds("cp", version, "controlplane", disk),
        worker = config_ds("worker", version, "worker", disk),
        cp_apply = apply_resource("cp", &ips[0], &config_of("cp"), ""),
        worker_apply = apply_resource(
            "worker",
            &ips[1],
            &config_of("worker"),
            "  depends_on            = [proxtalos_machine_configuration_apply.cp]\n"
        ),
        a = ips[0],
        b = ips[1],
    );
    if with_stuck {
        // Only a HostnameConfig document: v1.13+ keeps it and stays in
        // maintenance mode, waiting for the rest.
        s += &apply_resource(
            "stuck",
            &ips[2],
            r#""apiVersion: v1alpha1\nkind: HostnameConfig\nauto: stable\n""#,
            &create_timeout("10s"),
        );
    }
    if with_rejected {
        s += &config_ds("nodisk", version, "controlplane", "");
        s += &apply_resource("rejected", &ips[3], &config_of("nodisk"), "");
    }
    s
}

fn faults(version: &str, slot: u8) {
    let started = std::time::Instant::now();
    let sim = Sim::start(version, slot, 4);
    let ips = sim.ips.clone();
    let ws = workspace(&tf());
    let stuck = !version.starts_with("v1.12");
    ws.write_config(&fault_config(version, &ips, stuck, false));
    ws.init();
    let out = ws.expect(1, &["apply", "-no-color", "-auto-approve"]);
    let flat = out.split_whitespace().collect::<Vec<_>>().join(" ");
    // Bootstrap on a worker: at once, naming the node and the stage
    assert!(flat.contains(&format!("Talos node {} cannot be bootstrapped", ips[1])), "{out}");
    assert!(flat.contains(&format!("Node {}, stage: bootstrap", ips[1])), "{out}");
    assert!(flat.contains("control-plane node only"), "{out}");
    // A client certificate from another cluster: at once
    assert!(flat.contains(&format!("Node {}, stage: kubeconfig", ips[0])), "{out}");
    assert!(flat.contains("rejected the client certificate"), "{out}");
    // A CA from another cluster: waited out until the (short) timeout
    assert!(flat.contains("timed out after"), "{out}");
    assert!(flat.contains("TLS certificate is not trusted"), "{out}");
    if stuck {
        // A node that never leaves maintenance mode
        assert!(flat.contains(&format!("Cannot configure Talos node {}", ips[2])), "{out}");
        assert!(flat.contains("stage: wait for install, reboot and mutual TLS"), "{out}");
    }
    // State keeps what was done (the stuck node got its configuration).
    let list = ws.ok(&["state", "list"]);
    assert!(list.contains("proxtalos_machine_configuration_apply.cp"), "{list}");
    assert!(list.contains("proxtalos_machine_configuration_apply.worker"), "{list}");
    assert_eq!(list.contains("proxtalos_machine_configuration_apply.stuck"), stuck, "{list}");
    assert!(!list.contains("proxtalos_machine_bootstrap.worker") && !list.contains("kubeconfig"), "{list}");
    if stuck {
        assert_eq!(sim.c().phase(2).unwrap(), Phase::Maintenance);
    }

    // A configuration the node rejects (no install disk on metal): the plan's
    // dry run already fails, naming the node.
    ws.write_config(&fault_config(version, &ips, false, true));
    let out = ws.expect(1, &["plan", "-no-color"]);
    let flat = out.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(flat.contains(&format!("Talos node {} rejects the configuration", ips[3])), "{out}");
    assert!(flat.contains("install instructions are required"), "{out}");
    assert_eq!(sim.c().phase(3).unwrap(), Phase::Maintenance);
    eprintln!("faults {version}: {:?}", started.elapsed());
}

#[test]
fn faults_v1_12() {
    faults("v1.12.0", 20);
}

#[test]
fn faults_v1_13() {
    faults("v1.13.9", 21);
}

#[test]
fn faults_v1_14() {
    faults("v1.14.0", 22);
}

/// Real-time delays, short enough for a test, long enough to act between:
/// reboot 300 ms, services 200 ms, etcd join 100 ms, and the given install
/// and graceful-shutdown times (ms).
fn real_time(version: &str, install: u64, shutdown: u64) -> SimOptions {
    SimOptions {
        time_scale: 1.0,
        delays: Delays {
            install: Duration::from_millis(install),
            reboot: Duration::from_millis(300),
            services: Duration::from_millis(200),
            etcd_join: Duration::from_millis(100),
            shutdown: Duration::from_millis(shutdown),
        },
        ..SimOptions::new(version)
    }
}

/// Secrets and a control-plane configuration with `extra` arguments.
/// Control planes only: a worker gets its certificate from a control
/// plane's trustd, and there is none in these configurations.
fn secrets_and_cp_config(version: &str, extra: &str) -> String {
    format!(
        r#"{HEADER}
resource "proxtalos_machine_secrets" "this" {{
  talos_version = "{contract}"
}}
{cp}"#,
        contract = contract(version),
        cp = config_ds("cp", version, "controlplane", extra)
    )
}

fn reboot_config(version: &str, ips: &[String]) -> String {
    let mut s = secrets_and_cp_config(version, r#"install_disk = "/dev/sda""#);
    for (name, ip, create) in [("cycled", &ips[0], "1m"), ("cut", &ips[1], "8s")] {
        s += &apply_resource(name, ip, &config_of("cp"), &create_timeout(create));
    }
    s
}

/// One control plane, its configuration applied with `apply_mode = "reboot"`.
fn reboot_mode_config(version: &str, ip: &str, map_count: &str) -> String {
    let mut s = secrets_and_cp_config(version, &sysctl_patch(version, map_count));
    s += &apply_resource("cp", ip, &config_of("cp"), "  apply_mode            = \"reboot\"\n");
    s
}

/// `apply_mode = "reboot"` on a configured node (behaviour.md §6): the node
/// keeps answering while its services stop (1.5 s here), and on v1.14 (an
/// apply without reboot, then Reboot) it reports the new configuration as
/// active all that time. Only a new boot id says the reboot happened, and
/// the apply ends after it.
fn reboot_mode_waits_for_the_new_boot(version: &str, slot: u8) {
    let sim = Sim::start_with(real_time(version, 300, 1500), slot, 1);
    let ws = workspace(&tf());
    ws.write_config(&reboot_mode_config(version, &sim.ips[0], "262144"));
    ws.init();
    ws.apply();
    let boot = sim.c().boot_id(0).unwrap();
    ws.write_config(&reboot_mode_config(version, &sim.ips[0], "524288"));
    let out = ws.apply();
    assert_eq!(sim.c().boot_id(0).unwrap(), boot + 1, "the apply ended before the node rebooted:\n{out}");
    assert!(sim.c().active_config(0).unwrap().unwrap().contains("524288"));
    let state = ws.resource("proxtalos_machine_configuration_apply.cp").unwrap();
    assert_eq!(state["resolved_apply_mode"], "reboot");
    ws.plan_exit(0);
}

#[test]
fn reboot_mode_waits_for_the_new_boot_v1_13() {
    reboot_mode_waits_for_the_new_boot("v1.13.9", 24);
}

#[test]
fn reboot_mode_waits_for_the_new_boot_v1_14() {
    reboot_mode_waits_for_the_new_boot("v1.14.0", 25);
}

/// A node that reboots in the middle of an apply (issue 5's fault list;
/// behaviour.md §4 "From maintenance to installed" and §6 "Reset, reboot,
/// upgrade"): real-time delays long enough to act while the provider waits.
///
/// * node 0 finishes installing and, while rebooting into the installed
///   system, loses power for 2.5 s: the provider waits the Unavailable node
///   out and the apply of that node completes;
/// * node 1 is rebooted while installing: the install never finishes, the
///   node comes back in maintenance mode without a configuration (§4: not
///   installed ⇒ maintenance), so the wait ends at the resource's timeout
///   with a diagnostic naming the node and the stage, and the state keeps
///   the resource (tainted: the node got the configuration once).
fn reboot_mid_apply(version: &str, slot: u8) {
    let started = std::time::Instant::now();
    let mut options = real_time(version, 1500, 100);
    // Rebooting long enough for the loop below to see it on a loaded machine.
    options.delays.reboot = Duration::from_millis(1500);
    let sim = Sim::start_with(options, slot, 2);
    let ips = sim.ips.clone();
    let ws = workspace(&tf());
    ws.write_config(&reboot_config(version, &ips));
    ws.init();
    let boot0 = sim.c().boot_id(0).unwrap();
    let out = std::thread::scope(|s| {
        let apply = s.spawn(|| ws.expect(1, &["apply", "-no-color", "-auto-approve"]));
        let _rt = sim.rt.enter();
        let (mut cycled, mut cut) = (false, false);
        let deadline = std::time::Instant::now() + Duration::from_secs(90);
        while !((cycled && cut) || apply.is_finished()) && std::time::Instant::now() < deadline {
            if !cycled && sim.c().installed(0).unwrap() && sim.c().phase(0).unwrap() == Phase::Rebooting {
                sim.c().power_off(0).unwrap();
                std::thread::sleep(Duration::from_millis(2500));
                assert_eq!(sim.c().phase(0).unwrap(), Phase::Off);
                sim.c().power_on(0).unwrap();
                cycled = true;
            }
            if !cut && sim.c().phase(1).unwrap() == Phase::Installing {
                sim.c().reboot(1).unwrap();
                cut = true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(cycled && cut, "faults injected: cycled={cycled} cut={cut}");
        apply.join().unwrap()
    });
    let flat = out.split_whitespace().collect::<Vec<_>>().join(" ");
    // node 0: waited out, created
    assert!(flat.contains("proxtalos_machine_configuration_apply.cycled: Creation complete"), "{out}");
    assert_eq!(sim.c().phase(0).unwrap(), Phase::Running);
    assert!(sim.c().boot_id(0).unwrap() > boot0, "node 0 booted again");
    assert!(sim.c().active_config(0).unwrap().is_some());
    // node 1: a clear diagnostic naming the node and the stage
    assert!(flat.contains(&format!("Cannot configure Talos node {}", ips[1])), "{out}");
    assert!(flat.contains(&format!("Node {}, stage: wait for install, reboot and mutual TLS", ips[1])), "{out}");
    assert!(flat.contains("timed out after"), "{out}");
    assert!(!flat.contains(&format!("Cannot configure Talos node {}", ips[0])), "{out}");
    assert_eq!(sim.c().phase(1).unwrap(), Phase::Maintenance);
    assert!(!sim.c().installed(1).unwrap());
    // state keeps what was done: both, the interrupted one tainted
    let list = ws.ok(&["state", "list"]);
    assert!(list.contains("proxtalos_machine_configuration_apply.cycled"), "{list}");
    assert!(list.contains("proxtalos_machine_configuration_apply.cut"), "{list}");
    let plan = ws.plan_exit(2);
    assert!(plan.contains("proxtalos_machine_configuration_apply.cut is tainted, so must be replaced"), "{plan}");
    assert!(!plan.contains("proxtalos_machine_configuration_apply.cycled will"), "{plan}");
    assert!(plan.contains("1 to add, 0 to change, 1 to destroy"), "{plan}");
    eprintln!("reboot mid-apply {version}: {:?}", started.elapsed());
}

#[test]
fn reboot_mid_apply_v1_12() {
    reboot_mid_apply("v1.12.0", 30);
}

#[test]
fn reboot_mid_apply_v1_13() {
    reboot_mid_apply("v1.13.9", 31);
}

#[test]
fn reboot_mid_apply_v1_14() {
    reboot_mid_apply("v1.14.0", 32);
}

/// A maintenance-mode apply whose reply is lost (the connection breaks
/// after the node took the configuration; `SimCluster::lose_next_apply_reply`):
/// the provider does not guess. It waits for the node to come up over
/// mutual TLS with this configuration, records the apply with a warning,
/// and the re-plan is empty. Then a destroy whose Reset reply is lost
/// (`lose_next_reset_reply`) completes once the node is back in maintenance.
#[test]
fn reply_lost_in_maintenance_v1_13() {
    let version = "v1.13.9";
    let sim = Sim::start(version, 33, 1);
    let ips = sim.ips.clone();
    let ws = workspace(&tf());
    // That configuration's first node only (its second is cut off).
    let mut config = reboot_config(version, &[ips[0].clone(), ips[0].clone()]);
    config.truncate(config.find("resource \"proxtalos_machine_configuration_apply\" \"cut\"").unwrap());
    let config = config.replace(
        "  timeouts {",
        "  on_destroy {\n    reset    = true\n    graceful = false\n    reboot   = true\n  }\n  timeouts {",
    );
    ws.write_config(&config);
    ws.init();
    sim.c().lose_next_apply_reply(0).unwrap();
    let out = ws.apply();
    let flat = out.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(flat.contains(&format!("Talos node {} did not answer the apply", ips[0])), "{out}");
    assert!(flat.contains("proxtalos_machine_configuration_apply.cycled: Creation complete"), "{out}");
    assert!(sim.c().installed(0).unwrap() && sim.c().active_config(0).unwrap().is_some());
    let state = ws.resource("proxtalos_machine_configuration_apply.cycled").unwrap();
    assert_eq!(state["resolved_apply_mode"], "no_reboot", "what a v1.13 install reports");
    ws.plan_exit(0);
    // The Reset reply is lost too: the node coming back in maintenance mode
    // says the reset happened, and destroy completes.
    sim.c().lose_next_reset_reply(0).unwrap();
    let out = ws.ok(&["destroy", "-no-color", "-auto-approve"]);
    assert!(out.contains("Destroy complete!"), "{out}");
    assert_eq!(sim.phases(), vec![Phase::Maintenance]);
}
