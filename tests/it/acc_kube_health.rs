//! `proxtalos_cluster_health` with `kubernetes = true` (issue 13 §3), real
//! Terraform 1.15.5 and the real provider binary against simulated nodes
//! whose control plane serves the lab's Kubernetes API: the stage passes
//! on a healthy 1 + 2 cluster and the re-plan is empty; a cordoned worker
//! (by the real kubectl) and a kubelet version nobody runs each fail the
//! stage at the check `talosctl health` fails them at, naming it; after
//! uncordon it passes again; a Kubernetes API that does not answer while
//! Talos does fails the stage naming the API server; destroy.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::IpAddr;

use crate::support::kubectl::{Kubectl, kubectl};
use crate::support::terraform::{Workspace, build_provider, terraform};

struct Sim {
    rt: tokio::runtime::Runtime,
    cluster: Option<proxtalos::talos::sim::SimCluster>,
    ips: Vec<String>,
}

impl Sim {
    fn start(n: usize) -> Sim {
        use proxtalos::talos::sim::{NodeSpec, SimCluster, SimOptions};
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let base = 200 + (std::process::id() % 50) as u8;
        let addrs: Vec<IpAddr> = (0..n).map(|i| IpAddr::from([127, base, 40, i as u8 + 1])).collect();
        let cluster = rt
            .block_on(SimCluster::start(
                SimOptions::fast("v1.13.9"),
                addrs.iter().map(|a| NodeSpec::metal(*a)).collect(),
            ))
            .unwrap();
        Sim { rt, cluster: Some(cluster), ips: addrs.iter().map(ToString::to_string).collect() }
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _guard = self.rt.enter();
        self.cluster.take();
    }
}

fn config(ips: &[String], health: &str) -> String {
    config_with(ips, health, "proxtalos_cluster_kubeconfig.this.kubeconfig_raw")
}

fn config_with(ips: &[String], health: &str, kubeconfig: &str) -> String {
    format!(
        r#"terraform {{
  required_providers {{
    proxtalos = {{ source = "proxtalos/proxtalos" }}
  }}
}}

provider "proxtalos" {{}}

locals {{
  cp      = "{cp}"
  workers = ["{w1}", "{w2}"]
}}

resource "proxtalos_machine_secrets" "this" {{
  talos_version = "v1.13"
}}

data "proxtalos_machine_configuration" "node" {{
  for_each           = {{ cp = "controlplane", worker = "worker" }}
  cluster_name       = "kube"
  cluster_endpoint   = "https://${{local.cp}}:6443"
  machine_type       = each.value
  machine_secrets    = proxtalos_machine_secrets.this.machine_secrets
  talos_version      = "v1.13"
  kubernetes_version = "1.33.1"
  config_patches     = [yamlencode({{ machine = {{ install = {{ disk = "/dev/sda" }} }} }})]
}}

resource "proxtalos_machine_configuration_apply" "node" {{
  for_each              = merge({{ (local.cp) = "cp" }}, {{ for w in local.workers : w => "worker" }})
  node                  = each.key
  client_configuration  = proxtalos_machine_secrets.this.client_configuration
  machine_configuration = data.proxtalos_machine_configuration.node[each.value].machine_configuration
}}

resource "proxtalos_machine_bootstrap" "this" {{
  node                 = local.cp
  client_configuration = proxtalos_machine_secrets.this.client_configuration
  depends_on           = [proxtalos_machine_configuration_apply.node]
}}

resource "proxtalos_cluster_kubeconfig" "this" {{
  node                 = local.cp
  client_configuration = proxtalos_machine_secrets.this.client_configuration
  depends_on           = [proxtalos_machine_bootstrap.this]
}}

data "proxtalos_cluster_health" "this" {{
  client_configuration = proxtalos_machine_secrets.this.client_configuration
  control_plane_nodes  = [local.cp]
  worker_nodes         = local.workers
  kubernetes           = true
  kubeconfig           = {kubeconfig}
  {health}
  depends_on           = [proxtalos_machine_bootstrap.this]
}}

output "stages" {{
  value = data.proxtalos_cluster_health.this.stages
}}
"#,
        cp = ips[0],
        w1 = ips[1],
        w2 = ips[2],
    )
}

/// Terraform's output with its line wrapping undone.
fn flat(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[test]
fn the_kubernetes_stage_passes_on_a_healthy_cluster_and_names_the_check_that_fails() {
    let Some(kubectl_bin) = kubectl() else { return };
    let tf = terraform("1.15.5").expect("Terraform 1.15.5 (scripts/install-terraform.sh)");
    let sim = Sim::start(3);
    let ws = Workspace::new(
        &tf,
        "registry.terraform.io/proxtalos/proxtalos",
        &build_provider("bin", "terraform-provider-proxtalos"),
    );
    ws.write_config(&config(&sim.ips, "kubernetes_version = \"1.33.1\""));
    ws.init();
    let out = ws.apply();
    assert!(out.contains("Apply complete!"), "{out}");
    let stages = ws.ok(&["output", "-json", "stages"]);
    assert_eq!(stages.trim(), r#"["apid","etcd","services","kubernetes"]"#);
    ws.plan_exit(0);

    // A version no kubelet runs: the stage waits, then names the check.
    ws.write_config(&config(&sim.ips, "kubernetes_version = \"1.34.0\"\n  timeouts { read = \"3s\" }"));
    let out = flat(&ws.expect(1, &["plan", "-no-color"]));
    assert!(out.contains("Cluster health check failed at stage kubernetes"), "{out}");
    assert!(out.contains("all k8s nodes to report the expected kubelet version: want v1.34.0"), "{out}");

    // A worker cordoned behind Terraform's back (the real kubectl): not
    // schedulable, as talosctl health says; uncordoned, healthy again.
    let kc = ws.resource("proxtalos_cluster_kubeconfig.this").unwrap()["kubeconfig_raw"].as_str().unwrap().to_string();
    let k = Kubectl::new(kubectl_bin, &kc);
    let worker = format!("talos-{}", sim.ips[1].replace('.', "-"));
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(k.ok(&["cordon", &worker]));
    ws.write_config(&config(&sim.ips, "timeouts { read = \"3s\" }"));
    let out = flat(&ws.expect(1, &["plan", "-no-color"]));
    assert!(
        out.contains(&format!("all k8s nodes to report schedulable: some nodes are not schedulable: [\"{worker}\"]")),
        "{out}"
    );
    rt.block_on(k.ok(&["uncordon", &worker]));
    ws.plan_exit(0);

    // The Kubernetes API does not answer while Talos does: the stage
    // names itself and the API server it waited for.
    let elsewhere = r#"replace(proxtalos_cluster_kubeconfig.this.kubeconfig_raw, ":6443", ":6444")"#;
    ws.write_config(&config_with(&sim.ips, "timeouts { read = \"3s\" }", elsewhere));
    let out = flat(&ws.expect(1, &["plan", "-no-color"]));
    assert!(out.contains("Cluster health check failed at stage kubernetes"), "{out}");
    assert!(
        out.contains(&format!("at https://{}:6444: GET /api/v1/nodes: no answer from the Kubernetes API", sim.ips[0])),
        "{out}"
    );
    ws.write_config(&config(&sim.ips, ""));
    ws.plan_exit(0);

    let out = ws.ok(&["destroy", "-no-color", "-auto-approve"]);
    assert!(out.contains("Destroy complete!"), "{out}");
}
