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

/// What `talosctl upgrade-k8s` does last on Talos ≥ 1.13: list the
/// bootstrap manifests from a control plane (COSI `State/List`) and apply
/// every object server-side as field manager `talos` with `force`
/// (siderolabs/talos `pkg/cluster/kubernetes/talos_managed.go`,
/// go-kubernetes `kubernetes/ssa`). kube-proxy stays at its bootstrap image
/// after a configuration change until the sync; a person's apply of a
/// field `talos` owns is refused with the API server's conflict, as real
/// kubectl shows it, until forced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bootstrap_manifests_sync_by_server_side_apply() {
    use proxtalos::kubernetes::{Client, Kubeconfig, Timeouts};
    use proxtalos::talos::api::{ApplyMode, ApplyRequest};

    let Some((c, k, [cp, _, _])) = cluster().await else { return };
    nodes_are(&k, &[(&cp, "Ready")]).await;
    let node = crate::talos_api::target(&c, 0).connect().await.unwrap();
    let kc = node.kubeconfig().await.unwrap();
    let kube = Client::new(&Kubeconfig::parse(&kc).unwrap(), Timeouts::default()).unwrap();
    let proxy_images = || async {
        let out = k
            .ok(&[
                "get",
                "pods",
                "-n",
                "kube-system",
                "-l",
                "k8s-app=kube-proxy",
                "-o",
                "jsonpath={.items[*].spec.containers[0].image}",
            ])
            .await;
        let mut images: Vec<String> = out.split_whitespace().map(str::to_string).collect();
        images.dedup();
        images
    };
    assert_eq!(proxy_images().await, ["registry.k8s.io/kube-proxy:v1.33.1"]);

    // A configuration change alone does not roll kube-proxy.
    let ip: IpAddr = c.endpoint(0).rsplit_once(':').unwrap().0.trim_matches(['[', ']']).parse().unwrap();
    let newer = String::from_utf8(config(ip, true)).unwrap().replace("kube-proxy:v1.33.1", "kube-proxy:v1.34.0");
    assert!(newer.contains("kube-proxy:v1.34.0"), "the config names kube-proxy's image");
    let req = ApplyRequest { config: newer.into_bytes(), mode: ApplyMode::NoReboot, dry_run: false, try_timeout: None };
    node.apply_configuration(&req).await.unwrap();
    let manifests = node.manifests().await.unwrap();
    let ids: Vec<&str> = manifests.iter().map(|m| m.id.as_str()).collect();
    assert!(ids.contains(&"10-kube-proxy") && ids.contains(&"11-core-dns"), "{ids:?}");
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "sorted as Talos applies them: {ids:?}");
    assert_eq!(proxy_images().await, ["registry.k8s.io/kube-proxy:v1.33.1"]);
    assert!(
        crate::talos_api::target(&c, 1).connect().await.unwrap().manifests().await.unwrap().is_empty(),
        "a worker renders none"
    );

    // The sync: every object, in order, as `talos`, forced.
    for m in &manifests {
        for obj in &m.objects {
            kube.apply(obj, "talos", true).await.unwrap_or_else(|e| panic!("{}: {e}", m.id));
        }
    }
    until("kube-proxy rolled to v1.34.0", Duration::from_secs(30), || async {
        proxy_images().await == ["registry.k8s.io/kube-proxy:v1.34.0"]
    })
    .await;
    let listed = k.ok(&["get", "serviceaccounts,configmaps,services", "-n", "kube-system", "--no-headers"]).await;
    for name in [
        "serviceaccount/kube-proxy",
        "serviceaccount/coredns",
        "configmap/coredns",
        "configmap/kubeconfig-in-cluster",
        "service/kube-dns",
    ] {
        assert!(listed.contains(name.split('/').nth(1).unwrap()), "{name} missing:\n{listed}");
    }
    let managers = k
        .ok(&[
            "get",
            "ds",
            "kube-proxy",
            "-n",
            "kube-system",
            "--show-managed-fields",
            "-o",
            "jsonpath={.metadata.managedFields[*].manager}",
        ])
        .await;
    assert_eq!(managers.trim(), "talos");

    // A person's server-side apply of the image `talos` owns: kubectl's
    // conflict error, then the forced apply wins.
    let person = "apiVersion: apps/v1\nkind: DaemonSet\nmetadata:\n  name: kube-proxy\n  namespace: kube-system\nspec:\n  template:\n    spec:\n      containers:\n      - name: kube-proxy\n        image: registry.k8s.io/kube-proxy:v1.34.1\n";
    let file = std::env::temp_dir().join(format!("kube-proxy-{}.yaml", std::process::id()));
    std::fs::write(&file, person).unwrap();
    let path = file.to_str().unwrap();
    let out = k.run(&["apply", "--server-side", "--field-manager=person", "--validate=false", "-f", path]).await;
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "the conflict was not refused");
    assert!(
        err.contains("conflict with \"talos\"")
            && err.contains(".spec.template.spec.containers[name=\"kube-proxy\"].image"),
        "{err}"
    );
    k.ok(&["apply", "--server-side", "--field-manager=person", "--force-conflicts", "--validate=false", "-f", path])
        .await;
    std::fs::remove_file(&file).unwrap();
    until("kube-proxy runs the person's image", Duration::from_secs(30), || async {
        proxy_images().await == ["registry.k8s.io/kube-proxy:v1.34.1"]
    })
    .await;
    // Talos's next sync without force is refused (the field is the
    // person's now), and with force takes it back.
    let ds = manifests
        .iter()
        .find(|m| m.id == "10-kube-proxy")
        .unwrap()
        .objects
        .iter()
        .find(|o| o["kind"] == "DaemonSet")
        .unwrap();
    let refused = kube.apply(ds, "talos", false).await.unwrap_err();
    assert!(refused.is_conflict(), "{refused}");
    assert!(refused.to_string().contains("Apply failed with 1 conflict: conflict with \"person\""), "{refused}");
    kube.apply(ds, "talos", true).await.unwrap();
    until("kube-proxy back at v1.34.0", Duration::from_secs(30), || async {
        proxy_images().await == ["registry.k8s.io/kube-proxy:v1.34.0"]
    })
    .await;
}

/// `talosctl upgrade-k8s`'s order, run by `day2::kubernetes_upgrade`
/// against the lab (siderolabs/talos `pkg/cluster/kubernetes/
/// talos_managed.go`): the API server, controller manager and scheduler on
/// the control plane (each waited for at its new config version, Ready),
/// kube-proxy's image, the kubelets (control plane first), then the
/// bootstrap manifests server-side; real kubectl then shows every Node at
/// the new version and kube-proxy rolled. Two minors at once are refused
/// before anything changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kubernetes_upgrade_follows_upgrade_k8s_order() {
    use proxtalos::day2::kubernetes_upgrade::{KubernetesUpgrade, KubernetesUpgradeError, upgrade};
    use proxtalos::kubernetes::{Client, Kubeconfig, Timeouts};
    use proxtalos::talos::api::wait::Until;
    use proxtalos::wait::Stop;

    let Some((c, k, [cp, w1, w2])) = cluster().await else { return };
    nodes_are(&k, &[(&cp, "Ready"), (&w1, "Ready"), (&w2, "Ready")]).await;
    let kc = crate::talos_api::target(&c, 0).connect().await.unwrap().kubeconfig().await.unwrap();
    let kube = Client::new(&Kubeconfig::parse(&kc).unwrap(), Timeouts::default()).unwrap();
    let targets = |i: usize| crate::talos_api::target(&c, i);
    let plan = |to: &str| KubernetesUpgrade {
        control_planes: vec![targets(0)],
        workers: vec![targets(1), targets(2)],
        to: to.to_string(),
        kube: kube.clone(),
    };
    let until = Until::after(Duration::from_secs(120), &Stop::never());

    let refused = upgrade(&plan("1.35.0"), &until).await.unwrap_err();
    assert!(matches!(refused, KubernetesUpgradeError::Path { .. }), "{refused}");
    assert!(refused.to_string().contains("1.33.1 → 1.35.0 is not a supported upgrade path"), "{refused}");

    let log = upgrade(&plan("1.34.0"), &until).await.unwrap();
    let order: Vec<&str> = log.iter().map(String::as_str).collect();
    assert!(order[0].contains("kube-apiserver → v1.34.0"), "{order:?}");
    assert!(order[1].contains("kube-controller-manager → v1.34.0"), "{order:?}");
    assert!(order[2].contains("kube-scheduler → v1.34.0"), "{order:?}");
    assert!(order[3].contains("kube-proxy image → v1.34.0"), "{order:?}");
    assert!(order[4..7].iter().all(|l| l.contains("kubelet → v1.34.0")), "{order:?}");
    assert!(order[7].starts_with("bootstrap manifests:"), "{order:?}");
    let wide = k.ok(&["get", "nodes", "--no-headers"]).await;
    assert_eq!(wide.lines().filter(|l| l.contains("v1.34.0")).count(), 3, "{wide}");
    let images =
        k.ok(&["get", "pods", "-n", "kube-system", "-o", "jsonpath={.items[*].spec.containers[0].image}"]).await;
    for image in
        ["kube-apiserver:v1.34.0", "kube-controller-manager:v1.34.0", "kube-scheduler:v1.34.0", "kube-proxy:v1.34.0"]
    {
        assert!(images.contains(image), "{image} missing: {images}");
    }
    assert!(!images.contains("v1.33.1"), "{images}");
    // Again: every step is skipped but the manifests.
    let again = upgrade(&plan("1.34.0"), &until).await.unwrap();
    assert_eq!(again.len(), 1, "{again:?}");
}
