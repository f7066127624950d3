//! The controllers' rules, each against the upstream behaviour it copies
//! (sources in `src/talos/sim/README.md`, "Kubernetes API").

use std::time::{Duration, Instant, SystemTime};

use super::*;

fn machine(name: &str, octet: u8, control_plane: bool) -> Machine {
    Machine::for_test(name, octet, control_plane)
}

fn lab() -> (Cluster, Vec<Machine>, Instant) {
    let machines = vec![machine("cp-1", 11, true), machine("w-1", 21, false), machine("w-2", 22, false)];
    let mut c = Cluster::new(Duration::from_secs(5), 7);
    let t0 = Instant::now();
    c.sync(&machines, t0, SystemTime::now());
    (c, machines, t0)
}

fn web_pods(c: &Cluster) -> Vec<(String, Option<String>)> {
    c.pods.values().filter(|p| p.workload == 1).map(|p| (p.name.clone(), p.node.clone())).collect()
}

#[test]
fn kubelets_register_and_workloads_spread_over_the_nodes_that_tolerate_them() {
    let (c, _, _) = lab();
    assert_eq!(c.nodes.keys().collect::<Vec<_>>(), ["cp-1", "w-1", "w-2"]);
    // The web app avoids the tainted control plane and spreads (one per worker).
    let mut nodes: Vec<_> = web_pods(&c).into_iter().filter_map(|(_, n)| n).collect();
    nodes.sort();
    assert_eq!(nodes, ["w-1", "w-2"]);
    // CoreDNS tolerates control planes.
    assert_eq!(c.pods.values().filter(|p| p.workload == 0).count(), 2);
    for p in c.pods.values() {
        assert!(
            p.name.starts_with(&format!("{}-{}-", WORKLOADS[p.workload].name, WORKLOADS[p.workload].template_hash))
        );
        assert!(p.name.rsplit('-').next().is_some_and(|s| s.len() == 5 && s.bytes().all(|b| ALPHABET.contains(&b))));
    }
}

#[test]
fn nothing_registers_before_an_api_server_serves() {
    let mut machines = vec![machine("cp-1", 11, true), machine("w-1", 21, false)];
    machines[0].serving = false;
    let mut c = Cluster::new(Duration::from_secs(5), 7);
    c.sync(&machines, Instant::now(), SystemTime::now());
    assert!(c.nodes.is_empty());
    assert!(c.pods.is_empty());
}

#[test]
fn the_budget_refuses_an_eviction_until_the_replacement_is_ready() {
    // kubernetes pkg/registry/core/pod/storage/eviction.go: an eviction is
    // allowed while the PDB's disruptionsAllowed > 0 (healthy − minAvailable),
    // else 429; the ReplicaSet replaces the evicted pod.
    let (mut c, machines, t0) = lab();
    let ready = t0 + Duration::from_secs(6);
    c.set_unschedulable("w-1", true);
    let on_w1 = web_pods(&c).into_iter().find(|(_, n)| n.as_deref() == Some("w-1")).map(|(p, _)| p);
    let on_w2 = web_pods(&c).into_iter().find(|(_, n)| n.as_deref() == Some("w-2")).map(|(p, _)| p);
    let (Some(on_w1), Some(on_w2)) = (on_w1, on_w2) else { panic!("web pods not spread: {:?}", web_pods(&c)) };
    // Not ready yet: 0 healthy, so even the first eviction is refused.
    assert_eq!(c.evict("default", &on_w1, &machines, t0), Err(EvictError::Budget { pdb: "web".to_string() }));
    assert_eq!(c.evict("default", &on_w1, &machines, ready), Ok(()));
    // One healthy left = minAvailable: the second pod cannot go.
    assert!(matches!(c.evict("default", &on_w2, &machines, ready), Err(EvictError::Budget { .. })));
    // The replacement lands on w-2 (w-1 is cordoned) and becomes ready.
    c.sync(&machines, ready, SystemTime::now());
    let pods = web_pods(&c);
    assert_eq!(pods.len(), 2);
    assert!(pods.iter().all(|(_, n)| n.as_deref() == Some("w-2")), "{pods:?}");
    assert!(matches!(c.evict("default", &on_w2, &machines, ready), Err(EvictError::Budget { .. })));
    assert_eq!(c.evict("default", &on_w2, &machines, ready + Duration::from_secs(6)), Ok(()));
    assert_eq!(c.evict("default", "nope", &machines, ready), Err(EvictError::NotFound));
}

#[test]
fn a_blocked_budget_refuses_every_eviction() {
    let (mut c, machines, t0) = lab();
    c.budgets_blocked = true;
    let later = t0 + Duration::from_secs(60);
    let pod = web_pods(&c)[0].0.clone();
    assert!(matches!(c.evict("default", &pod, &machines, later), Err(EvictError::Budget { .. })));
    assert_eq!(c.disruptions_allowed(1, &machines, later), (2, 0));
}

#[test]
fn a_node_that_goes_away_stays_registered_and_not_ready() {
    // A Node object outlives its kubelet (the node lifecycle controller
    // marks it Unknown); only a delete removes it.
    let (mut c, mut machines, t0) = lab();
    machines.retain(|m| m.name != "w-2");
    c.sync(&machines, t0, SystemTime::now());
    assert!(c.nodes.contains_key("w-2"));
    assert!(!c.node_ready("w-2", &machines));
}

#[test]
fn a_deleted_node_comes_back_only_after_its_kubelet_restarts() {
    let (mut c, mut machines, t0) = lab();
    assert!(c.delete_node("w-1"));
    c.sync(&machines, t0, SystemTime::now());
    assert!(!c.nodes.contains_key("w-1"));
    // Its pods were collected and replaced elsewhere.
    assert!(web_pods(&c).iter().all(|(_, n)| n.as_deref() != Some("w-1")));
    machines[1].boot_id = 2;
    c.sync(&machines, t0, SystemTime::now());
    assert!(c.nodes.contains_key("w-1"));
}

#[test]
fn an_unhealthy_kubelet_makes_its_node_not_ready_and_no_pods_go_there() {
    let (mut c, mut machines, t0) = lab();
    machines[2].kubelet_healthy = false;
    for p in c.pods.values_mut() {
        p.node = None;
    }
    c.sync(&machines, t0, SystemTime::now());
    assert!(!c.node_ready("w-2", &machines));
    assert!(web_pods(&c).iter().all(|(_, n)| n.as_deref() == Some("w-1")));
}

#[test]
fn talos_uncordons_only_what_it_cordoned() {
    // siderolabs/talos node_cordoned_spec.go: the uncordon at Running needs
    // the talos.dev/cordoned annotation Talos set; a person's cordon stays.
    let (mut c, _, _) = lab();
    assert!(c.cordon_by_talos("w-1"));
    assert!(c.set_unschedulable("w-2", true));
    // Talos's own cordon of a Node already cordoned by a person adds no mark.
    assert!(c.cordon_by_talos("w-2"));
    c.uncordon_by_talos("w-1");
    c.uncordon_by_talos("w-2");
    assert!(!c.nodes["w-1"].unschedulable);
    assert!(c.nodes["w-2"].unschedulable);
    assert!(!c.cordon_by_talos("not-registered"));
}

#[test]
fn a_new_component_image_is_a_new_config_version_and_a_restart() {
    // siderolabs/talos control_plane_static_pod.go: talos.dev/config-version
    // is the COSI version of the component's config, which a patched image
    // bumps; upgrade-k8s waits for that version and Ready.
    let (mut c, mut machines, t0) = lab();
    let later = t0 + Duration::from_secs(10);
    assert!(c.static_pod_ready("cp-1", "kube-apiserver", &machines, later));
    assert_eq!(c.static_pods[&("cp-1".to_string(), "kube-apiserver")].version, 1);
    machines[0].kube.apiserver_image = "registry.k8s.io/kube-apiserver:v1.34.0".to_string();
    c.sync(&machines, later, SystemTime::now());
    let sp = &c.static_pods[&("cp-1".to_string(), "kube-apiserver")];
    assert_eq!((sp.version, sp.image.as_str()), (2, "registry.k8s.io/kube-apiserver:v1.34.0"));
    assert_eq!(c.static_pods[&("cp-1".to_string(), "kube-scheduler")].version, 1, "only the patched component");
    assert!(!c.static_pod_ready("cp-1", "kube-apiserver", &machines, later), "restarting");
    assert!(c.static_pod_ready("cp-1", "kube-apiserver", &machines, later + Duration::from_secs(5)));
}
