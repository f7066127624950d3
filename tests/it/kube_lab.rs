//! The lab's Kubernetes API (issue 13 §3) driven by the real kubectl 1.37:
//! the kubeconfig a control plane mints works as it is (TLS from the
//! cluster's Kubernetes CA, x509 client authentication), `get nodes` shows
//! the simulated nodes Ready at the configured kubelet version, `drain`
//! evicts through the eviction API and respects the PodDisruptionBudget,
//! `cordon`/`uncordon` patch `spec.unschedulable`. Each behaviour's
//! upstream source is in `src/talos/sim/README.md` ("Kubernetes API").

use std::net::IpAddr;
use std::time::Duration;

use proxtalos::talos::config::{ConfigInput, MachineType, generate};
use proxtalos::talos::sim::{ImageFault, NodeSpec, SimCluster, SimOptions};
use proxtalos::talos::version::VersionContract;

use crate::support::kubectl::{Kubectl, kubectl};
use crate::support::wait::until;
use crate::talos_api::{addr, bootstrap, bundle, configure};

fn config(cp_ip: IpAddr, control_plane: bool) -> Vec<u8> {
    let t = if control_plane { MachineType::Controlplane } else { MachineType::Worker };
    let mut input = ConfigInput::new("lab", format!("https://{cp_ip}:6443"), t, VersionContract::V1_13, "1.33.1");
    input.install_disk = Some("/dev/sda".to_string());
    generate(&input, bundle(0)).unwrap().to_yaml().into_bytes()
}

/// One control plane and two workers, configured and bootstrapped, and
/// kubectl with the admin kubeconfig the control plane mints.
async fn cluster() -> Option<(SimCluster, Kubectl, [String; 3])> {
    let bin = kubectl()?;
    let ips = [addr(), addr(), addr()];
    let c = SimCluster::start(SimOptions::fast("v1.13.9"), ips.iter().map(|ip| NodeSpec::metal(*ip)).collect())
        .await
        .unwrap();
    let cp = configure(&c, 0, config(ips[0], true)).await;
    for i in 1..3 {
        configure(&c, i, config(ips[0], false)).await;
    }
    bootstrap(&c, 0).await;
    let kc = cp.kubeconfig().await.unwrap();
    assert!(kc.contains(&format!("server: https://{}:6443", ips[0])), "{kc}");
    let names = ips.map(|ip| format!("talos-{ip}").replace('.', "-"));
    Some((c, Kubectl::new(bin, &kc), names))
}

/// Waits until `kubectl get nodes` shows every line of `want` (name, status).
async fn nodes_are(k: &Kubectl, want: &[(&str, &str)]) {
    let what = format!("kubectl get nodes shows {want:?}");
    until(&what, Duration::from_secs(30), || async {
        let out = k.run(&["get", "nodes", "--no-headers"]).await;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        out.status.success()
            && want.iter().all(|(name, status)| {
                text.lines().any(|l| {
                    let cols: Vec<&str> = l.split_whitespace().collect();
                    cols.first() == Some(name) && cols.get(1) == Some(status)
                })
            })
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_gets_nodes_and_drains_a_worker_within_its_disruption_budget() {
    let Some((c, k, [cp, w1, w2])) = cluster().await else { return };
    nodes_are(&k, &[(&cp, "Ready"), (&w1, "Ready"), (&w2, "Ready")]).await;
    let wide = k.ok(&["get", "nodes", "-o", "wide"]).await;
    let header: Vec<&str> = wide.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header[..5], ["NAME", "STATUS", "ROLES", "AGE", "VERSION"], "{wide}");
    let cp_line = wide.lines().find(|l| l.starts_with(&cp)).unwrap();
    assert!(
        cp_line.contains("control-plane") && cp_line.contains("v1.33.1") && cp_line.contains("Talos (v1.13.9)"),
        "{wide}"
    );
    // Two web pods (PDB minAvailable 1), one per worker, once they run.
    until("the web pods run", Duration::from_secs(30), || async {
        let pods = k.ok(&["get", "pods", "-n", "default", "--no-headers"]).await;
        pods.lines().filter(|l| l.starts_with("web-") && l.contains("1/1") && l.contains("Running")).count() == 2
    })
    .await;

    // Drain the worker that has a web pod (the scheduler may have put both
    // on the worker that registered first).
    let (w1, w2) = if web_nodes(&k).await.contains(&w1) { (w1, w2) } else { (w2, w1) };

    // A budget that allows no disruption: the drain cordons, then kubectl
    // retries the refused eviction until its timeout.
    c.block_evictions(true);
    let out = k.run(&["drain", &w1, "--ignore-daemonsets", "--timeout=3s"]).await;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "drain passed a blocking budget: {err}");
    assert!(err.contains("Cannot evict pod as it would violate the pod's disruption budget."), "{err}");
    nodes_are(&k, &[(&w1, "Ready,SchedulingDisabled")]).await;

    // The budget allows one at a time: the drain evicts w1's pods (the
    // DaemonSet's stays), the ReplicaSet's replacements land on w2 (w1 is
    // cordoned).
    c.block_evictions(false);
    let drained = k.ok(&["drain", &w1, "--ignore-daemonsets", "--timeout=60s"]).await;
    assert!(drained.contains("evicting pod default/web-"), "{drained}");
    assert!(drained.contains(&format!("node/{w1} drained")), "{drained}");
    let left = k.ok(&["get", "pods", "-A", "--no-headers", "--field-selector", &format!("spec.nodeName={w1}")]).await;
    let names: Vec<&str> = left.lines().filter_map(|l| l.split_whitespace().nth(1)).collect();
    assert!(names.iter().all(|n| n.starts_with("kube-proxy-")), "{left}");
    assert_eq!(web_nodes(&k).await, [w2.clone(), w2.clone()]);

    k.ok(&["uncordon", &w1]).await;
    nodes_are(&k, &[(&w1, "Ready")]).await;
    // Draining w2 now moves both web pods to w1, one at a time as the
    // budget allows.
    let drained = k.ok(&["drain", &w2, "--ignore-daemonsets", "--timeout=60s"]).await;
    assert!(drained.contains(&format!("node/{w2} drained")), "{drained}");
    assert_eq!(web_nodes(&k).await, [w1.clone(), w1.clone()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kubelet_that_fails_its_health_check_shows_not_ready() {
    // ImageFault::KubeletUnhealthy: the kubelet runs but fails its health
    // check, and the Node's Ready condition follows it.
    let Some((c, k, [cp, w1, _])) = cluster().await else { return };
    nodes_are(&k, &[(&cp, "Ready"), (&w1, "Ready")]).await;
    let image = "ghcr.io/siderolabs/installer:v1.14.0";
    c.fail_image(image, ImageFault::KubeletUnhealthy);
    let target = crate::talos_api::target(&c, 1);
    let client = target.connect().await.unwrap();
    client
        .upgrade(&proxtalos::talos::api::UpgradeRequest { image: image.to_string(), ..Default::default() })
        .await
        .unwrap();
    nodes_are(&k, &[(&w1, "NotReady")]).await;
    // Without a client certificate of the cluster CA (here a bearer token
    // the lab does not know) the API server answers 401, as kube-apiserver
    // does for credentials no authenticator accepts.
    let anonymous: String = std::fs::read_to_string(k.kubeconfig())
        .unwrap()
        .lines()
        .filter(|l| !l.contains("client-key-data"))
        .map(|l| {
            if l.contains("client-certificate-data") {
                "        token: not-a-token\n".to_string()
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    let out = Kubectl::new(kubectl().unwrap(), &anonymous).run(&["get", "nodes"]).await;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("You must be logged in to the server"), "{err}");
}

/// The web pods' nodes, from kubectl.
async fn web_nodes(k: &Kubectl) -> Vec<String> {
    let out = k.ok(&["get", "pods", "-n", "default", "-o", "wide", "--no-headers"]).await;
    out.lines()
        .filter(|l| l.starts_with("web-"))
        .filter_map(|l| l.split_whitespace().nth(6).map(str::to_string))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_legacy_upgrade_drains_the_node_and_uncordons_it_after_the_reboot() {
    // siderolabs/talos v1alpha1_sequencer.go Upgrade: the drain phase
    // (CordonAndDrainNode) runs before the install; node_cordoned_spec.go
    // uncordons the Node Talos cordoned once the machine runs again.
    let Some((c, k, [_, w1, w2])) = cluster().await else { return };
    nodes_are(&k, &[(&w1, "Ready"), (&w2, "Ready")]).await;
    until("both web pods run", Duration::from_secs(30), || async { web_nodes(&k).await.len() == 2 }).await;
    // The worker that has a web pod is upgraded first (index 1 or 2).
    let (host, other, i, j) = if web_nodes(&k).await.contains(&w1) { (&w1, &w2, 1, 2) } else { (&w2, &w1, 2, 1) };
    let upgrade = proxtalos::talos::api::UpgradeRequest {
        image: "ghcr.io/siderolabs/installer:v1.14.0".into(),
        ..Default::default()
    };
    let upgraded = |n: usize, boot: u64| {
        let c = &c;
        move || async move { c.boot_id(n).unwrap() > boot && c.version(n).unwrap() == "v1.14.0" }
    };
    let boot = c.boot_id(i).unwrap();
    crate::talos_api::target(&c, i).connect().await.unwrap().upgrade(&upgrade).await.unwrap();
    // Drained: its web pods were evicted and replaced on the other worker
    // (the upgraded one is cordoned meanwhile).
    until("the web pods moved off the upgraded worker", Duration::from_secs(30), || async {
        web_nodes(&k).await == [other.clone(), other.clone()]
    })
    .await;
    until("the worker rebooted into v1.14.0", Duration::from_secs(30), upgraded(i, boot)).await;
    // Running again: Talos uncordons what it cordoned.
    nodes_are(&k, &[(host, "Ready")]).await;

    // A budget that never allows the eviction: Talos gives up after its
    // drain timeout (5 min, scaled) and upgrades anyway, the pods still there.
    c.block_evictions(true);
    let boot = c.boot_id(j).unwrap();
    crate::talos_api::target(&c, j).connect().await.unwrap().upgrade(&upgrade).await.unwrap();
    until("the other worker rebooted into v1.14.0", Duration::from_secs(30), upgraded(j, boot)).await;
    assert_eq!(web_nodes(&k).await, [other.clone(), other.clone()], "the budget held: nothing was evicted");
    nodes_are(&k, &[(other, "Ready")]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_wait_and_get_watch_follow_changes() {
    // apimachinery watch: kubectl wait gets the Node, then watches it from
    // that resourceVersion; kubectl get -w lists, then prints every change.
    use tokio::io::AsyncBufReadExt as _;
    let Some((c, k, [_, w1, w2])) = cluster().await else { return };
    nodes_are(&k, &[(&w1, "Ready"), (&w2, "Ready")]).await;
    let node = format!("node/{w1}");
    let waiting =
        k.command(&["wait", "--for=jsonpath={.spec.unschedulable}=true", &node, "--timeout=60s"]).spawn().unwrap();
    let mut watch = k.command(&["get", "nodes", "-w", "--no-headers"]).spawn().unwrap();
    let mut lines = tokio::io::BufReader::new(watch.stdout.take().unwrap()).lines();
    // The list first: one line per node.
    for _ in 0..3 {
        lines.next_line().await.unwrap().unwrap();
    }
    k.ok(&["cordon", &w1]).await;
    let out = waiting.wait_with_output().await.unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("condition met"));
    let next = async {
        loop {
            let l = lines.next_line().await.unwrap().unwrap();
            if l.starts_with(&w1) {
                return l;
            }
        }
    };
    let line = tokio::time::timeout(Duration::from_secs(30), next).await.expect("kubectl get -w printed the change");
    assert!(line.contains("Ready,SchedulingDisabled"), "{line}");
    // A node whose kubelet goes away turns NotReady in the watch too.
    c.power_off(2).unwrap();
    let next = async {
        loop {
            let l = lines.next_line().await.unwrap().unwrap();
            if l.starts_with(&w2) && l.contains("NotReady") {
                return l;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), next).await.expect("kubectl get -w showed the node NotReady");
    let _ = watch.kill().await;
}
