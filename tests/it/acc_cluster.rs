//! `proxtalos_cluster` with real Terraform and the real provider binary
//! against five simulated nodes (issue 14's stories):
//!
//! * create 3 control planes + 2 workers on Talos v1.13.9 (install,
//!   bootstrap, health, kubeconfig), the endpoint on the control planes'
//!   shared VIP (`Layer2VIPConfig`); the re-plan is empty;
//! * `talos_version` v1.13.9 → v1.14.0: the plan lists the rollout in order
//!   (an etcd snapshot, cp-1, cp-2, cp-3, w-1, w-2); the apply upgrades every
//!   node, and the simulator's event log shows control planes one at a
//!   time, never two down, then the workers; the VIP is never held by a
//!   node that is down and moves on when its holder is upgraded; the
//!   snapshot file is 0600;
//!   the re-plan is empty;
//! * an image whose kubelet never becomes healthy (`ImageFault::
//!   KubeletUnhealthy`, from the second control plane on): cp-1 upgrades,
//!   cp-2 fails its health gate and is rolled back to its previous image,
//!   the apply fails naming cp-2, state records cp-1 on the new version and
//!   the others on the old; after the version is changed to a good image,
//!   the next apply finishes the rollout;
//! * scaling the workers 2 → 1 removes w-2 (reset, Node deleted);
//! * a downgrade is refused at plan time on `talos_version`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::IpAddr;

use crate::support::sim_nodes::Sim;
use crate::support::terraform::{Terraform, Workspace, build_provider, terraforms};
use proxtalos::talos::sim::{ImageFault, Phase};

fn tf() -> Terraform {
    let all = terraforms();
    all.iter().find(|t| t.version_string() == "1.15.5").or_else(|| all.first()).cloned().expect("a Terraform")
}

const NAMES: [&str; 5] = ["cp-1", "cp-2", "cp-3", "w-1", "w-2"];

/// One `control_plane` or `worker` block.
fn member(kind: &str, name: &str, address: &str) -> String {
    format!("  {kind} {{\n    name    = \"{name}\"\n    address = \"{address}\"\n  }}\n")
}

/// Secrets and a `proxtalos_cluster` named `cluster` with `members`
/// (blocks), the endpoint on `endpoint` (a node's address or a VIP),
/// `extra` attribute lines and `rollout` (the block's body).
fn cluster_hcl(
    cluster: &str,
    endpoint: &str,
    extra: &str,
    members: &str,
    (talos, kubernetes): (&str, &str),
    rollout: &str,
) -> String {
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
  cluster_name         = "{cluster}"
  cluster_endpoint     = "https://{endpoint}:6443"
  machine_secrets      = proxtalos_machine_secrets.this.machine_secrets
  client_configuration = proxtalos_machine_secrets.this.client_configuration
  talos_version        = "{talos}"
  kubernetes_version   = "{kubernetes}"
{extra}{members}
  rollout {{
{rollout}  }}
  timeouts {{
    create = "3m"
    update = "6m"
  }}
}}
"#
    )
}

fn config(ips: &[String], version: &str, workers: usize, snapshots: &str) -> String {
    let cps: String = (0..3).map(|i| member("control_plane", NAMES[i], &ips[i])).collect();
    let ws: String = (3..3 + workers).map(|i| member("worker", NAMES[i], &ips[i])).collect();
    let rollout = format!(
        "    health_timeout    = \"20s\"\n    drain_timeout     = \"1m\"\n    etcd_snapshot_dir = \"{snapshots}\"\n"
    );
    // The endpoint is the control planes' shared VIP.
    let vip = format!("  control_plane_patches = [<<-EOT\n{}EOT\n  ]\n", layer2(&vip_of(ips)));
    cluster_hcl("rolling", &vip_of(ips), &vip, &format!("{cps}{ws}"), (version, "1.33.1"), &rollout)
}

/// The VIP of a story's nodes: `.100` of their /24.
fn vip_of(ips: &[String]) -> String {
    let (net, _) = ips[0].rsplit_once('.').unwrap();
    format!("{net}.100")
}

/// A `Layer2VIPConfig` document (v1.12+) for `vip` on the simulated
/// machine's NIC (Proxmox's `net0`, `ens18` to Talos).
fn layer2(vip: &str) -> String {
    format!("    apiVersion: v1alpha1\n    kind: Layer2VIPConfig\n    name: {vip}\n    link: ens18\n")
}

fn node_versions(ws: &Workspace) -> Vec<(String, String)> {
    let r = ws.resource("proxtalos_cluster.this").unwrap();
    let nodes = r["nodes"].as_object().unwrap();
    nodes.iter().map(|(k, v)| (k.clone(), v["talos_version"].as_str().unwrap().to_string())).collect()
}

/// Control planes down at once, at most, over the event log; and the
/// order in which nodes first went down.
fn down_order(events: &[(IpAddr, Phase)], cps: &[IpAddr]) -> (usize, Vec<IpAddr>) {
    let mut down = std::collections::BTreeSet::new();
    let mut most = 0;
    let mut order = Vec::new();
    for (ip, phase) in events {
        if matches!(phase, Phase::Running) {
            down.remove(ip);
        } else {
            if cps.contains(ip) {
                down.insert(*ip);
            }
            if !order.contains(ip) {
                order.push(*ip);
            }
        }
        most = most.max(down.len());
    }
    (most, order)
}

#[test]
fn a_cluster_rolls_upgrades_one_node_at_a_time_and_rolls_back_a_failed_one() {
    let tf = tf();
    // Real etcd under the control planes: the snapshot is etcd's own.
    let Some(etcd) = crate::etcd_real::etcd() else {
        eprintln!("skipped: no etcd binary (scripts/setup.sh installs it)");
        return;
    };
    let mut options = proxtalos::talos::sim::SimOptions::fast("v1.13.9");
    options.etcd_bin = Some(etcd.clone());
    let sim = Sim::start_with(options, 81, 5);
    let bin = build_provider("bin", "terraform-provider-proxtalos");
    let ws = Workspace::new(&tf, "registry.terraform.io/proxtalos/proxtalos", &bin);
    let snaps = ws.work().join("snapshots");
    let snaps = snaps.to_str().unwrap();
    let ips: Vec<IpAddr> = sim.ips.iter().map(|i| i.parse().unwrap()).collect();

    ws.write_config(&config(&sim.ips, "v1.13.9", 2, snaps));
    ws.init();
    ws.apply();
    assert!(node_versions(&ws).iter().all(|(_, v)| v == "v1.13.9"), "{:?}", node_versions(&ws));
    let r = ws.resource("proxtalos_cluster.this").unwrap();
    assert!(r["kubeconfig"].as_str().unwrap().contains("client-certificate-data"));
    assert!(r["talosconfig"].as_str().unwrap().contains("rolling"));
    let vip: IpAddr = vip_of(&sim.ips).parse().unwrap();
    assert!(r["kubeconfig"].as_str().unwrap().contains(&format!("https://{vip}:6443")), "the endpoint is the VIP");
    assert!(sim.c().vip_holder(vip).is_some_and(|h| ips[..3].contains(&h)), "a control plane holds the VIP");
    ws.plan_exit(0);

    // The plan lists the rollout in order.
    ws.write_config(&config(&sim.ips, "v1.14.0", 2, snaps));
    let plan = ws.plan_exit(2);
    assert!(plan.contains("Plan: 0 to add, 1 to change, 0 to destroy."), "{plan}");
    let order =
        ["1. etcd snapshot to", "2. cp-1: Talos v1.13.9 → v1.14.0", "3. cp-2:", "4. cp-3:", "5. w-1:", "6. w-2:"];
    let at: Vec<usize> = order.iter().map(|s| plan.find(s).unwrap_or_else(|| panic!("{s} in {plan}"))).collect();
    assert!(at.windows(2).all(|w| w[0] < w[1]), "{plan}");

    // Without drain_ignore_daemonsets, cp-1's drain refuses as kubectl
    // does (kube-proxy runs on every node), before evicting anything: the
    // apply fails naming the pods, nothing rebooted, cp-1 uncordoned.
    let strict = config(&sim.ips, "v1.14.0", 2, snaps).replace(
        "    drain_timeout     = \"1m\"\n",
        "    drain_timeout     = \"1m\"\n    drain_ignore_daemonsets = false\n",
    );
    ws.write_config(&strict);
    let boots: Vec<u64> = (0..5).map(|i| sim.c().boot_id(i).unwrap()).collect();
    let out = ws.expect(1, &["apply", "-no-color", "-auto-approve"]);
    let words = out.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        words.contains(
            "cannot delete DaemonSet-managed Pods (set drain_ignore_daemonsets to ignore): kube-system/kube-proxy-"
        ),
        "{out}"
    );
    assert!(words.contains("stopped at node cp-1"), "{out}");
    assert_eq!((0..5).map(|i| sim.c().boot_id(i).unwrap()).collect::<Vec<_>>(), boots, "nothing rebooted");
    assert!(!sim.c().unschedulable(0).unwrap(), "cp-1 uncordoned");
    assert!(node_versions(&ws).iter().all(|(_, v)| v == "v1.13.9"));
    ws.write_config(&config(&sim.ips, "v1.14.0", 2, snaps));

    let before = sim.c().events().len();
    let vip_before = sim.c().vip_events().len();
    let (held_by_down, longest_free) = while_applying(&ws, &sim, vip);
    assert!(held_by_down.is_empty(), "the VIP is never held by a node that is down: {held_by_down:?}");
    assert!(longest_free < std::time::Duration::from_secs(1), "the VIP is free for {longest_free:?} at most");
    let moves = sim.c().vip_events()[vip_before..].iter().filter(|(_, h)| h.is_some()).count();
    assert!(moves >= 1, "the VIP moved away from its holder when that was upgraded");
    for (i, name) in NAMES.iter().enumerate() {
        assert_eq!(sim.c().version(i).unwrap(), "v1.14.0", "{name}");
        assert!(!sim.c().unschedulable(i).unwrap(), "{name} uncordoned");
    }
    let events = sim.c().events()[before..].to_vec();
    let (most, went_down) = down_order(&events, &ips[..3]);
    assert_eq!(most, 1, "never two control planes down: {events:?}");
    assert_eq!(went_down, ips, "control planes first, in order, then the workers: {events:?}");
    assert!(node_versions(&ws).iter().all(|(_, v)| v == "v1.14.0"));
    let mut files: Vec<_> = std::fs::read_dir(snaps).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    assert_eq!(files.len(), 2, "one snapshot per apply that restarts a control plane: {files:?}");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&files[0]).unwrap().permissions().mode() & 0o777, 0o600);
    let status = crate::etcd_real::etcdutl_status(&etcd, &files[1]);
    assert!(status["totalKey"].as_i64().unwrap_or(0) > 0, "etcdutl reads the snapshot: {status}");
    ws.plan_exit(0);

    // A bad image from the second control plane on: cp-2 fails its gate
    // and is rolled back; state says cp-1 is on v1.14.1, the rest not.
    let bad = "ghcr.io/siderolabs/installer:v1.14.1";
    ws.write_config(&config(&sim.ips, "v1.14.1", 2, snaps));
    let c = sim.c();
    let (faulted, out) = std::thread::scope(|s| {
        let watcher = s.spawn(|| {
            for _ in 0..4800 {
                if c.version(0).unwrap_or_default() == "v1.14.1" {
                    c.fail_image(bad, ImageFault::KubeletUnhealthy);
                    return true;
                }
                std::thread::sleep(std::time::Duration::from_millis(25));
            }
            false
        });
        let out = ws.expect(1, &["apply", "-no-color", "-auto-approve"]);
        (watcher.join().unwrap(), out)
    });
    assert!(faulted, "cp-1 reached v1.14.1");
    // Terraform wraps the detail where the words fall: compare words.
    let words = out.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(words.contains("Rollout of cluster rolling stopped at node cp-2: rolled back"), "{out}");
    assert!(words.contains("the node was rolled back to v1.14.0"), "{out}");
    assert_eq!(sim.c().version(1).unwrap(), "v1.14.0", "cp-2 runs its previous image again");
    let versions = node_versions(&ws);
    let want: Vec<(String, String)> = NAMES
        .iter()
        .enumerate()
        .map(|(i, n)| (n.to_string(), if i == 0 { "v1.14.1" } else { "v1.14.0" }.to_string()))
        .collect();
    assert_eq!(versions, want);
    let again = ws.plan_exit(2);
    let steps = &again[again.find("The apply takes these steps").expect("the rollout note")..];
    assert!(
        steps.contains("1. etcd snapshot") && steps.contains("2. cp-2: Talos v1.14.0 → v1.14.1 (upgrade"),
        "{again}"
    );
    assert!(!steps.contains("cp-1: Talos"), "cp-1 is done: {again}");

    // A good image: the next apply finishes (cp-1 goes on to v1.14.2 too).
    ws.write_config(&config(&sim.ips, "v1.14.2", 2, snaps));
    ws.apply();
    assert!(node_versions(&ws).iter().all(|(_, v)| v == "v1.14.2"), "{:?}", node_versions(&ws));
    ws.plan_exit(0);

    // A downgrade is refused on talos_version.
    ws.write_config(&config(&sim.ips, "v1.14.0", 2, snaps));
    let refused = ws.expect(1, &["plan", "-no-color"]);
    assert!(refused.contains("Talos downgrade") && refused.contains("talos_version"), "{refused}");

    // Scale the workers 2 → 1: w-2 leaves.
    ws.write_config(&config(&sim.ips, "v1.14.2", 1, snaps));
    let plan = ws.plan_exit(2);
    assert!(plan.contains("w-2: remove"), "{plan}");
    ws.apply();
    assert_eq!(sim.c().phase(4).unwrap(), Phase::Off, "w-2 was reset and powered off");
    let names: Vec<String> = node_versions(&ws).into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["cp-1", "cp-2", "cp-3", "w-1"]);
    ws.plan_exit(0);
    ws.ok(&["destroy", "-auto-approve", "-no-color"]);
}

/// Applies while watching the VIP every 10 ms: the holders seen while
/// they were down, and the longest time nobody held it.
fn while_applying(ws: &Workspace, sim: &Sim, vip: IpAddr) -> (Vec<(IpAddr, Phase)>, std::time::Duration) {
    use std::sync::atomic::{AtomicBool, Ordering};
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        let watcher = s.spawn(|| {
            let (mut bad, mut longest, mut free_since) = (Vec::new(), std::time::Duration::ZERO, None);
            while !done.load(Ordering::Relaxed) {
                let c = sim.c();
                match c.vip_holder(vip) {
                    Some(h) => {
                        if let Some(t) = free_since.take() {
                            longest = longest.max(std::time::Instant::elapsed(&t));
                        }
                        let phase = c.index_of(h).and_then(|i| c.phase(i).ok());
                        if let Some(p @ (Phase::Rebooting | Phase::Off | Phase::Installing)) = phase {
                            bad.push((h, p));
                        }
                    }
                    None => {
                        free_since.get_or_insert_with(std::time::Instant::now);
                    }
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            (bad, longest)
        });
        ws.apply();
        done.store(true, Ordering::Relaxed);
        watcher.join().unwrap()
    })
}

/// A node client with the credentials Terraform holds in state.
fn client_of(ws: &Workspace, address: &str) -> proxtalos::talos::api::wait::Target {
    use base64::Engine;
    let r = ws.resource("proxtalos_cluster.this").unwrap();
    let cc = &r["client_configuration"];
    let pem = |k: &str| {
        String::from_utf8(base64::engine::general_purpose::STANDARD.decode(cc[k].as_str().unwrap()).unwrap()).unwrap()
    };
    let creds = proxtalos::talos::client_config::ClientConfiguration {
        ca: pem("ca_certificate"),
        crt: pem("client_certificate"),
        key: pem("client_key"),
    };
    proxtalos::talos::api::wait::Target {
        node: address.to_string(),
        endpoint: None,
        mode: proxtalos::talos::api::Mode::Normal(creds),
        timeouts: proxtalos::talos::api::Timeouts {
            connect: std::time::Duration::from_secs(5),
            call: std::time::Duration::from_secs(30),
        },
    }
}

fn kubelets(ws: &Workspace) -> Vec<String> {
    let r = ws.resource("proxtalos_cluster.this").unwrap();
    r["nodes"].as_object().unwrap().values().map(|v| v["kubernetes_version"].as_str().unwrap().to_string()).collect()
}

fn scaled(ips: &[String], cps: usize, workers: &[usize], kubernetes: &str) -> String {
    let c: String = (0..cps).map(|i| member("control_plane", &format!("n-{i}"), &ips[i])).collect();
    let w: String = workers.iter().map(|i| member("worker", &format!("n-{i}"), &ips[*i])).collect();
    let rollout = format!("    health_timeout     = \"30s\"\n    worker_parallelism = {}\n", workers.len().clamp(1, 2));
    cluster_hcl("scaling", &ips[0], "", &format!("{c}{w}"), ("v1.13.9", kubernetes), &rollout)
}

/// Kubernetes 1.33 → 1.34 in `upgrade-k8s` order; drift of a node's
/// configuration made behind Terraform's back shows in the plan and the
/// apply puts it back; workers 2 → 4 join two at a time; control planes
/// 3 → 1 and workers 4 → 1 in one apply leave etcd with one member per
/// control plane. Every apply re-plans empty.
#[test]
fn a_cluster_upgrades_kubernetes_and_scales_with_etcd_in_step() {
    let tf = tf();
    let sim = Sim::start("v1.13.9", 82, 7);
    let bin = build_provider("bin", "terraform-provider-proxtalos");
    let ws = Workspace::new(&tf, "registry.terraform.io/proxtalos/proxtalos", &bin);
    ws.write_config(&scaled(&sim.ips, 3, &[3, 4], "1.33.1"));
    ws.init();
    ws.apply();
    ws.plan_exit(0);

    ws.write_config(&scaled(&sim.ips, 3, &[3, 4], "1.34.0"));
    let plan = ws.plan_exit(2);
    assert!(plan.contains("1. Kubernetes v1.33.1 → v1.34.0 (upgrade-k8s"), "{plan}");
    ws.apply();
    assert!(kubelets(&ws).iter().all(|v| v == "v1.34.0"), "{:?}", kubelets(&ws));
    ws.plan_exit(0);

    // Drift: a sysctl added on n-3 behind Terraform's back.
    let t = client_of(&ws, &sim.ips[3]);
    sim.rt.block_on(async {
        let c = t.connect().await.unwrap();
        let text = c.machine_config().await.unwrap().unwrap();
        let changed = text.replacen(
            "\n    kubelet:\n",
            "\n    sysctls:\n        vm.max_map_count: \"262144\"\n    kubelet:\n",
            1,
        );
        assert_ne!(changed, text);
        let req = proxtalos::talos::api::ApplyRequest {
            config: changed.into_bytes(),
            mode: proxtalos::talos::api::ApplyMode::NoReboot,
            dry_run: false,
            try_timeout: None,
        };
        c.apply_configuration(&req).await.unwrap();
    });
    let drift = ws.plan_exit(2);
    assert!(drift.contains("1. n-3: configuration change"), "{drift}");
    ws.apply();
    ws.plan_exit(0);

    ws.write_config(&scaled(&sim.ips, 3, &[3, 4, 5, 6], "1.34.0"));
    let plan = ws.plan_exit(2);
    assert!(plan.contains("n-5: join as a worker") && plan.contains("n-6: join as a worker"), "{plan}");
    ws.apply();
    assert_eq!(ws.resource("proxtalos_cluster.this").unwrap()["nodes"].as_object().unwrap().len(), 7);
    ws.plan_exit(0);

    ws.write_config(&scaled(&sim.ips, 1, &[3], "1.34.0"));
    let plan = ws.plan_exit(2);
    for n in ["n-4", "n-5", "n-6"] {
        assert!(plan.contains(&format!("{n}: remove (drain, reset")), "{plan}");
    }
    for n in ["n-1", "n-2"] {
        assert!(plan.contains(&format!("{n}: remove (leave etcd")), "{plan}");
    }
    ws.apply();
    let members = sim.c().etcd_members();
    assert_eq!(members, ["n-0"], "one etcd member per control plane");
    ws.plan_exit(0);

    // Back to three control planes (their machines powered on again, in
    // maintenance mode after the reset): each joins etcd before the next.
    sim.c().power_on(1).unwrap();
    sim.c().power_on(2).unwrap();
    ws.write_config(&scaled(&sim.ips, 3, &[3], "1.34.0"));
    let plan = ws.plan_exit(2);
    assert!(
        plan.contains("1. n-1: join as a control plane") && plan.contains("2. n-2: join as a control plane"),
        "{plan}"
    );
    ws.apply();
    let mut members = sim.c().etcd_members();
    members.sort();
    assert_eq!(members, ["n-0", "n-1", "n-2"]);
    ws.plan_exit(0);
    ws.ok(&["destroy", "-auto-approve", "-no-color"]);
}

/// The oldest Terraform we support plans and applies the cluster too:
/// create one control plane and two workers (the lab's workload has a
/// budget of one pod that a single worker's drain could never honour),
/// upgrade all three, upgrade Kubernetes, remove a worker, import the
/// cluster again; every apply re-plans empty.
#[test]
fn a_cluster_upgrades_on_terraform_1_0_3() {
    let Some(tf) = crate::support::terraform::terraform_1_0_3() else { return };
    let sim = Sim::start("v1.13.9", 83, 3);
    let bin = build_provider("bin", "terraform-provider-proxtalos");
    let ws = Workspace::new(&tf, "registry.terraform.io/proxtalos/proxtalos", &bin);
    let hcl = |v: &str| scaled(&sim.ips, 1, &[1, 2], "1.33.1").replace("\"v1.13.9\"", &format!("\"{v}\""));
    ws.write_config(&hcl("v1.13.9"));
    ws.init();
    ws.apply();
    ws.plan_exit(0);
    ws.write_config(&hcl("v1.14.0"));
    let plan = ws.plan_exit(2);
    assert!(
        plan.contains("1. n-0: Talos v1.13.9 → v1.14.0") && plan.contains("3. n-2: Talos v1.13.9 → v1.14.0"),
        "{plan}"
    );
    ws.apply();
    for i in 0..3 {
        assert_eq!(sim.c().version(i).unwrap(), "v1.14.0");
    }
    ws.plan_exit(0);

    let v14 = |workers: &[usize], k8s: &str| scaled(&sim.ips, 1, workers, k8s).replace("\"v1.13.9\"", "\"v1.14.0\"");
    ws.write_config(&v14(&[1, 2], "1.34.0"));
    assert!(ws.plan_exit(2).contains("1. Kubernetes v1.33.1 → v1.34.0 (upgrade-k8s"));
    ws.apply();
    assert!(kubelets(&ws).iter().all(|v| v == "v1.34.0"), "{:?}", kubelets(&ws));
    ws.plan_exit(0);

    ws.write_config(&v14(&[1], "1.34.0"));
    assert!(ws.plan_exit(2).contains("n-2: remove"));
    ws.apply();
    assert_eq!(sim.c().phase(2).unwrap(), Phase::Off, "n-2 was reset and powered off");
    ws.plan_exit(0);

    ws.ok(&["state", "rm", "proxtalos_cluster.this"]);
    let id = format!("scaling/n-0={}/n-1={}", sim.ips[0], sim.ips[1]);
    ws.ok(&["import", "-no-color", "proxtalos_cluster.this", &id]);
    ws.apply();
    ws.plan_exit(0);
    ws.ok(&["destroy", "-auto-approve", "-no-color"]);
}

/// Import of a running cluster from its name and nodes: the plan reads
/// each node with the configuration's credentials and plans no step for a
/// node that already runs what the configuration renders; the apply only
/// records the kubeconfig (no node reboots); the next plan is empty. A bad
/// id says what an id is.
#[test]
fn a_running_cluster_is_imported_from_its_nodes() {
    let tf = tf();
    let sim = Sim::start("v1.13.9", 84, 2);
    let bin = build_provider("bin", "terraform-provider-proxtalos");
    let ws = Workspace::new(&tf, "registry.terraform.io/proxtalos/proxtalos", &bin);
    ws.write_config(&scaled(&sim.ips, 1, &[1], "1.33.1"));
    ws.init();
    ws.apply();
    ws.ok(&["state", "rm", "proxtalos_cluster.this"]);
    let bad = ws.expect(1, &["import", "-no-color", "proxtalos_cluster.this", "scaling"]);
    assert!(
        bad.contains("Invalid import id")
            && bad.contains("`homelab/cp-1=10.0.0.11,cp-2=10.0.0.12,cp-3=10.0.0.13/worker-1=10.0.0.21`"),
        "{bad}"
    );
    let id = format!("scaling/n-0={}/n-1={}", sim.ips[0], sim.ips[1]);
    ws.ok(&["import", "-no-color", "proxtalos_cluster.this", &id]);
    let plan = ws.plan_exit(2);
    assert!(!plan.contains("The apply takes these steps"), "no node changes: {plan}");
    let boots: Vec<u64> = (0..2).map(|i| sim.c().boot_id(i).unwrap()).collect();
    ws.apply();
    let r = ws.resource("proxtalos_cluster.this").unwrap();
    assert!(r["kubeconfig"].as_str().unwrap().contains("client-certificate-data"));
    assert!(node_versions(&ws).iter().all(|(_, v)| v == "v1.13.9"));
    let after: Vec<u64> = (0..2).map(|i| sim.c().boot_id(i).unwrap()).collect();
    assert_eq!(boots, after, "the import rebooted nothing");
    ws.plan_exit(0);
}

/// A create that stops part-way (the kubelet of the installed image never
/// gets healthy, so the first gate times out) leaves the object tainted;
/// with `on_destroy.reset` the replacement would reset every node, and the
/// plan says so on `on_destroy.reset`. After `terraform untaint` the nodes
/// are the cluster's again and nothing is replaced or reset.
#[test]
fn a_create_that_stopped_part_way_is_not_reset_silently() {
    let tf = tf();
    let sim = Sim::start("v1.13.9", 85, 2);
    let bin = build_provider("bin", "terraform-provider-proxtalos");
    let ws = Workspace::new(&tf, "registry.terraform.io/proxtalos/proxtalos", &bin);
    let hcl = scaled(&sim.ips, 1, &[1], "1.33.1")
        .replace("    health_timeout     = \"30s\"\n", "    health_timeout     = \"3s\"\n")
        .replace(
            "  timeouts {\n    create = \"3m\"",
            "  on_destroy {\n    reset = true\n  }\n  timeouts {\n    create = \"20s\"",
        );
    assert!(hcl.contains("reset = true") && hcl.contains("\"3s\""), "{hcl}");
    ws.write_config(&hcl);
    ws.init();
    sim.c().fail_image("ghcr.io/siderolabs/installer:v1.13.9", ImageFault::KubeletUnhealthy);
    ws.expect(1, &["apply", "-no-color", "-auto-approve"]);
    sim.c().fail_image("ghcr.io/siderolabs/installer:v1.13.9", ImageFault::None);
    let boots: Vec<u64> = (0..2).map(|i| sim.c().boot_id(i).unwrap()).collect();

    let plan = ws.plan_exit(2);
    let words = plan.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(words.contains("tainted"), "{plan}");
    assert!(words.contains("Nodes of cluster scaling already run it"), "{plan}");
    assert!(words.contains("terraform untaint"), "{plan}");

    ws.ok(&["untaint", "proxtalos_cluster.this"]);
    let plan = ws.run(&["plan", "-no-color", "-detailed-exitcode"]);
    let text = String::from_utf8_lossy(&plan.stdout);
    assert!(!text.contains("must be replaced"), "{text}");
    assert_eq!((0..2).map(|i| sim.c().boot_id(i).unwrap()).collect::<Vec<_>>(), boots, "no node was reset");
    ws.ok(&["destroy", "-auto-approve", "-no-color"]);
}
