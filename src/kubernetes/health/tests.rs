//! The checks against `talosctl health`'s assertions (siderolabs/talos
//! `pkg/cluster/check/kubernetes.go`, v1.13): one healthy cluster, then
//! one fault per row, each failing the check upstream fails it at.

#![allow(clippy::unwrap_used)]

use serde_json::json;

use super::*;

fn node(name: &str, ip: &str, cp: bool, ready: &str) -> Node {
    let mut labels = json!({"kubernetes.io/hostname": name});
    if cp {
        labels["node-role.kubernetes.io/control-plane"] = json!("");
    }
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": labels},
        "spec": {},
        "status": {
            "conditions": [{"type": "Ready", "status": ready}],
            "addresses": [{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": name}],
            "nodeInfo": {"kubeletVersion": "v1.33.1", "machineID": "", "systemUUID": "", "bootID": "", "kernelVersion": "",
                "osImage": "", "containerRuntimeVersion": "", "kubeProxyVersion": "", "operatingSystem": "linux", "architecture": "amd64"},
        },
    }))
    .unwrap()
}

fn pod(name: &str, ready: &str) -> Pod {
    serde_json::from_value(json!({"metadata": {"name": name}, "status": {"phase": "Running",
        "conditions": [{"type": "Ready", "status": ready}]}}))
    .unwrap()
}

fn healthy() -> (Snapshot, Expected) {
    let nodes = vec![node("cp-1", "10.0.0.11", true, "True"), node("w-1", "10.0.0.21", false, "True")];
    let components = COMPONENTS.iter().map(|c| vec![pod(&format!("{c}-cp-1"), "True")]).collect();
    let s = Snapshot {
        nodes,
        components,
        kube_proxy: Some((2, vec![pod("kube-proxy-a", "True"), pod("kube-proxy-b", "True")])),
        coredns: Some((2, vec![pod("coredns-a", "True"), pod("coredns-b", "True")])),
    };
    let e =
        Expected { control_planes: vec!["10.0.0.11".into()], workers: vec!["10.0.0.21".into()], kubelet_version: None };
    (s, e)
}

#[test]
fn a_healthy_cluster_passes_and_each_fault_fails_its_check() {
    let (s, e) = healthy();
    assert_eq!(check(&s, &e), Ok(()));
    type Fault = fn(&mut Snapshot, &mut Expected);
    let rows: [(&str, Fault, &str); 10] = [
        (
            "a worker that never registered",
            |_, e| e.workers.push("10.0.0.22".into()),
            "can't find expected node with IPs [\"10.0.0.22\"]",
        ),
        (
            "a node nobody expects",
            |s, _| s.nodes.push(node("stray", "10.0.0.99", false, "True")),
            "unexpected nodes [\"stray\"]",
        ),
        (
            "a scheduler missing",
            |s, _| s.components[2].clear(),
            "expected number of pods for kube-scheduler to be 1, got 0",
        ),
        (
            "an API server not ready",
            |s, _| s.components[0] = vec![pod("kube-apiserver-cp-1", "False")],
            "some pods are not ready for kube-apiserver: [\"kube-apiserver-cp-1\"]",
        ),
        (
            "a NotReady node",
            |s, _| s.nodes[1] = node("w-1", "10.0.0.21", false, "Unknown"),
            "some nodes are not ready: [\"w-1\"]",
        ),
        (
            "another kubelet version",
            |_, e| e.kubelet_version = Some("v1.34.0".into()),
            "want v1.34.0; nodes with another kubelet version: cp-1 (v1.33.1), w-1 (v1.33.1)",
        ),
        (
            "a kube-proxy pod short",
            |s, _| s.kube_proxy = Some((3, s.kube_proxy.clone().unwrap().1)),
            "expected 3 ready pods, got 2",
        ),
        (
            "a CoreDNS pod not ready",
            |s, _| s.coredns = Some((2, vec![pod("coredns-a", "True"), pod("coredns-b", "False")])),
            "some pods are not ready: [\"coredns-b\"]",
        ),
        (
            "a cordoned node",
            |s, _| s.nodes[1].spec.unschedulable = Some(true),
            "some nodes are not schedulable: [\"w-1\"]",
        ),
        (
            "a control plane without its label",
            |s, _| s.nodes[0].metadata.labels.clear(),
            "can't find expected node with IPs [\"10.0.0.11\"]",
        ),
    ];
    let want_check = [0, 0, 1, 1, 2, 3, 4, 5, 6, 1];
    for ((what, fault, detail), i) in rows.into_iter().zip(want_check) {
        let (mut s, mut e) = healthy();
        fault(&mut s, &mut e);
        let got = check(&s, &e).unwrap_err();
        assert_eq!((got.check, got.detail.as_str()), (CHECKS[i], detail), "{what}");
    }
}

#[test]
fn no_kube_proxy_or_coredns_deployment_skips_those_checks() {
    // upstream: DaemonSetPresent / DeploymentPresent false => SKIP.
    let (mut s, e) = healthy();
    s.kube_proxy = None;
    s.coredns = None;
    assert_eq!(check(&s, &e), Ok(()));
}

#[test]
fn coredns_scaled_to_zero_passes_and_finished_pods_do_not_count() {
    let (mut s, e) = healthy();
    s.coredns = Some((0, Vec::new()));
    let mut done = pod("kube-proxy-old", "False");
    done.status.phase = Some("Succeeded".into());
    s.kube_proxy.as_mut().unwrap().1.push(done);
    assert_eq!(check(&s, &e), Ok(()));
}
