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
//! * faults: a client certificate from another cluster, a CA from another
//!   cluster (waited out until a short timeout), Bootstrap on a worker, a
//!   node that never leaves maintenance mode (v1.13+), a configuration the
//!   node rejects: each names the node and the stage, and the state keeps
//!   what was done.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::IpAddr;
use std::time::Duration;

use proxtalos::talos::VersionContract;
use proxtalos::talos::api::{ApplyMode, ApplyRequest, NodeClient, Timeouts};
use proxtalos::talos::client_config::ClientConfiguration;
use proxtalos::talos::sim::{NodeSpec, Phase, SimCluster, SimOptions};
use support::terraform::{Terraform, Workspace, build_provider, terraforms};

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

/// Simulated nodes on their own runtime (Terraform runs block this thread).
struct Sim {
    rt: tokio::runtime::Runtime,
    cluster: Option<SimCluster>,
    ips: Vec<String>,
}

impl Sim {
    fn start(version: &str, slot: u8, n: usize) -> Sim {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let base = 200 + (std::process::id() % 50) as u8;
        let addrs: Vec<IpAddr> = (0..n).map(|i| IpAddr::from([127, base, slot, i as u8 + 1])).collect();
        let cluster = rt
            .block_on(SimCluster::start(SimOptions::fast(version), addrs.iter().map(|a| NodeSpec::metal(*a)).collect()))
            .unwrap();
        Sim { rt, cluster: Some(cluster), ips: addrs.iter().map(ToString::to_string).collect() }
    }

    fn c(&self) -> &SimCluster {
        self.cluster.as_ref().unwrap()
    }

    fn phases(&self) -> Vec<Phase> {
        (0..self.ips.len()).map(|i| self.c().phase(i).unwrap()).collect()
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _guard = self.rt.enter();
        self.cluster.take();
    }
}

fn contract(version: &str) -> String {
    version.rsplit_once('.').unwrap().0.to_string()
}

fn kubernetes(version: &str) -> String {
    let c: VersionContract = contract(version).parse().unwrap();
    format!("1.{}.0", c.min_kubernetes_minor())
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
/// kubeconfig and health.
fn story_config(version: &str, ips: &[String], map_count: &str, cp_mode: &str) -> String {
    // v1.14 moved sysctls out of the v1alpha1 document.
    let doc = if contract(version) == "v1.14" {
        format!(
            r#"{{ apiVersion = "v1alpha1", kind = "SysctlConfig", params = {{ "vm.max_map_count" = "{map_count}" }} }}"#
        )
    } else {
        format!(r#"{{ machine = {{ sysctls = {{ "vm.max_map_count" = "{map_count}" }} }} }}"#)
    };
    let patch = format!(
        r#"install_disk = "/dev/sda"
  config_patches = [yamlencode({doc})]"#
    );
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
  on_destroy            = {{ reset = true, graceful = false, reboot = true }}
  timeouts {{
    create = "2m"
  }}
}}

resource "proxtalos_machine_configuration_apply" "worker" {{
  for_each                         = toset(local.workers)
  node                             = each.key
  client_configuration             = proxtalos_machine_secrets.this.client_configuration
  machine_configuration_wo         = data.proxtalos_machine_configuration.worker.machine_configuration
  machine_configuration_wo_version = "1"
  on_destroy                       = {{ reset = true, graceful = false, reboot = true }}
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
    let pem = |k: &str| proxtalos::resources::common::unb64(c[k].as_str().unwrap()).unwrap();
    ClientConfiguration { ca: pem("ca_certificate"), crt: pem("client_certificate"), key: pem("client_key") }
}

fn story(version: &str, slot: u8) {
    let started = std::time::Instant::now();
    let sim = Sim::start(version, slot, 5);
    let ips = sim.ips.clone();
    let ws = workspace(&tf());
    ws.write_config(&story_config(version, &ips, "262144", "no_reboot"));
    ws.init();

    // 1. maintenance mode → installed, bootstrapped, healthy
    let out = ws.apply();
    assert!(out.contains("Apply complete! Resources: 8 added"), "{out}");
    assert_eq!(sim.phases(), vec![Phase::Running; 5]);
    assert_eq!(sim.c().etcd_members().len(), 3);
    let stages = ws.ok(&["output", "-json", "stages"]);
    assert!(stages.contains("\"apid\"") && stages.contains("\"etcd\"") && stages.contains("\"services\""), "{stages}");
    assert_eq!(ws.ok(&["output", "-raw", "host"]), "https://127.0.0.1:6443");
    let cp0 = ws.resource(&format!("proxtalos_machine_configuration_apply.cp[\"{}\"]", ips[0])).unwrap();
    assert!(cp0["machine_configuration_redacted"].as_str().unwrap().contains("vm.max_map_count: \"262144\""));
    let worker = ws.resource(&format!("proxtalos_machine_configuration_apply.worker[\"{}\"]", ips[3])).unwrap();
    assert!(worker["machine_configuration"].is_null(), "write-only input kept out of state");
    assert!(worker["machine_configuration_wo"].is_null(), "write-only value not stored");
    assert_eq!(worker["machine_configuration_hash"].as_str().unwrap().len(), 64);

    // 2. re-plan empty
    ws.plan_exit(0);

    // 3. a patch change with no_reboot: the plan shows the redacted line
    //    and the node's dry run; the node runs it afterwards
    ws.write_config(&story_config(version, &ips, "524288", "no_reboot"));
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
    ws.write_config(&story_config(version, &ips, "1048576", "try"));
    ws.apply();
    std::thread::sleep(Duration::from_millis(600));
    assert!(sim.c().active_config(0).unwrap().unwrap().contains("524288"), "rolled back");
    let plan = ws.plan_exit(2);
    assert!(plan.contains(r#"+ vm.max_map_count: "1048576""#) || plan.contains("1048576"), "{plan}");
    ws.write_config(&story_config(version, &ips, "1048576", "no_reboot"));
    ws.apply();
    ws.plan_exit(0);
    assert!(sim.c().active_config(1).unwrap().unwrap().contains("1048576"));

    // 5. drift behind the provider's back on a control plane and a worker
    let creds = creds_of(&ws);
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

    // 7. destroy resets every node back to maintenance mode
    let out = ws.ok(&["destroy", "-no-color", "-auto-approve"]);
    assert!(out.contains("Destroy complete!"), "{out}");
    assert_eq!(sim.phases(), vec![Phase::Maintenance; 5]);
    assert!(sim.c().etcd_members().is_empty());
    eprintln!("story {version}: {:?}", started.elapsed());
}

#[test]
fn story_v1_12() {
    story("v1.12.0", 10);
}

#[test]
fn story_v1_13() {
    story("v1.13.9", 11);
}

#[test]
fn story_v1_14() {
    story("v1.14.0", 12);
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
{cp}{worker}
resource "proxtalos_machine_configuration_apply" "cp" {{
  node                  = "{a}"
  client_configuration  = proxtalos_machine_secrets.this.client_configuration
  machine_configuration = data.proxtalos_machine_configuration.cp.machine_configuration
}}

resource "proxtalos_machine_configuration_apply" "worker" {{
  node                  = "{b}"
  client_configuration  = proxtalos_machine_secrets.this.client_configuration
  machine_configuration = data.proxtalos_machine_configuration.worker.machine_configuration
  depends_on            = [proxtalos_machine_configuration_apply.cp]
}}

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
    create = "3s"
  }}
}}
"#,
        contract = contract(version),
        cp = config_ds("cp", version, "controlplane", disk),
        worker = config_ds("worker", version, "worker", disk),
        a = ips[0],
        b = ips[1],
    );
    if with_stuck {
        // Only a HostnameConfig document: v1.13+ keeps it and stays in
        // maintenance mode, waiting for the rest.
        s += &format!(
            r#"
resource "proxtalos_machine_configuration_apply" "stuck" {{
  node                  = "{c}"
  client_configuration  = proxtalos_machine_secrets.this.client_configuration
  machine_configuration = "apiVersion: v1alpha1\nkind: HostnameConfig\nauto: stable\n"
  timeouts {{
    create = "3s"
  }}
}}
"#,
            c = ips[2]
        );
    }
    if with_rejected {
        s += &config_ds("nodisk", version, "controlplane", "");
        s += &format!(
            r#"
resource "proxtalos_machine_configuration_apply" "rejected" {{
  node                  = "{d}"
  client_configuration  = proxtalos_machine_secrets.this.client_configuration
  machine_configuration = data.proxtalos_machine_configuration.nodisk.machine_configuration
}}
"#,
            d = ips[3]
        );
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
