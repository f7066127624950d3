//! The handler against kube-apiserver's answers (sources in
//! `src/talos/sim/README.md`, "Kubernetes API").

use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;

use super::*;

fn machine(name: &str, octet: u8, control_plane: bool) -> Machine {
    Machine::for_test(name, octet, control_plane)
}

struct Lab {
    cluster: Cluster,
    machines: Vec<Machine>,
    now: Instant,
    admin: User,
}

impl Lab {
    fn new() -> Lab {
        let machines = vec![machine("cp-1", 11, true), machine("w-1", 21, false), machine("w-2", 22, false)];
        let mut cluster = Cluster::new(Duration::from_secs(5), 3);
        let now = Instant::now();
        cluster.sync(&machines, now, SystemTime::now());
        let admin = User { name: "admin".to_string(), groups: vec!["system:masters".to_string()] };
        Lab { cluster, machines, now: now + Duration::from_secs(10), admin }
    }

    fn call(
        &mut self,
        method: &str,
        path_and_query: &str,
        accept: &str,
        content_type: &str,
        body: &str,
    ) -> (u16, Value) {
        let (path, query) = path_and_query.split_once('?').unwrap_or((path_and_query, ""));
        let req = Request { method, path, query, accept, content_type, body: body.as_bytes(), user: Some(&self.admin) };
        self.cluster.sync(&self.machines, self.now, SystemTime::now());
        let r = handle(&mut self.cluster, &self.machines, self.now, &req);
        (r.code, serde_json::from_slice(&r.body).unwrap_or(Value::Null))
    }

    fn get(&mut self, path: &str) -> (u16, Value) {
        self.call("GET", path, "application/json", "", "")
    }
}

fn names(list: &Value) -> Vec<String> {
    list["items"].as_array().unwrap().iter().map(|o| o["metadata"]["name"].as_str().unwrap().to_string()).collect()
}

#[test]
fn without_a_client_certificate_the_answer_is_401_and_other_groups_get_403() {
    let mut lab = Lab::new();
    let req = Request {
        method: "GET",
        path: "/api/v1/nodes",
        query: "",
        accept: "",
        content_type: "",
        body: b"",
        user: None,
    };
    let r = handle(&mut lab.cluster, &lab.machines, lab.now, &req);
    assert_eq!(r.code, 401);
    let v: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!((v["kind"].as_str(), v["reason"].as_str()), (Some("Status"), Some("Unauthorized")));
    let someone = User { name: "dev".to_string(), groups: vec!["devs".to_string()] };
    let r = handle(&mut lab.cluster, &lab.machines, lab.now, &Request { user: Some(&someone), ..req });
    assert_eq!(r.code, 403);
}

#[test]
fn nodes_list_with_talos_facts_and_selectors_filter_them() {
    let mut lab = Lab::new();
    let (code, list) = lab.get("/api/v1/nodes");
    assert_eq!(code, 200);
    assert_eq!(list["kind"], "NodeList");
    assert_eq!(names(&list), ["cp-1", "w-1", "w-2"]);
    let cp = &list["items"][0];
    assert_eq!(cp["status"]["nodeInfo"]["kubeletVersion"], "v1.33.1");
    assert_eq!(cp["status"]["nodeInfo"]["osImage"], "Talos (v1.13.9)");
    assert_eq!(cp["status"]["addresses"][0], serde_json::json!({"type": "InternalIP", "address": "127.0.9.11"}));
    assert_eq!(cp["spec"]["taints"][0]["key"], "node-role.kubernetes.io/control-plane");
    let (_, cps) = lab.get("/api/v1/nodes?labelSelector=node-role.kubernetes.io%2Fcontrol-plane");
    assert_eq!(names(&cps), ["cp-1"]);
    let (_, workers) = lab.get("/api/v1/nodes?labelSelector=%21node-role.kubernetes.io%2Fcontrol-plane");
    assert_eq!(names(&workers), ["w-1", "w-2"]);
    let (code, missing) = lab.get("/api/v1/nodes/nope");
    assert_eq!(code, 404);
    assert_eq!(missing["message"], "nodes \"nope\" not found");
}

#[test]
fn static_pods_kube_proxy_and_workloads_are_listed_per_node() {
    let mut lab = Lab::new();
    let (_, sys) = lab.get("/api/v1/namespaces/kube-system/pods?labelSelector=tier%3Dcontrol-plane");
    assert_eq!(names(&sys), ["kube-apiserver-cp-1", "kube-controller-manager-cp-1", "kube-scheduler-cp-1"]);
    let apiserver = &sys["items"][0];
    assert!(apiserver["metadata"]["annotations"]["kubernetes.io/config.mirror"].is_string());
    assert_eq!(apiserver["metadata"]["ownerReferences"][0]["kind"], "Node");
    assert_eq!(apiserver["spec"]["containers"][0]["image"], "registry.k8s.io/kube-apiserver:v1.33.1");
    let (_, proxies) = lab.get("/api/v1/namespaces/kube-system/pods?labelSelector=k8s-app%3Dkube-proxy");
    assert_eq!(proxies["items"].as_array().unwrap().len(), 3);
    let (_, on_w1) = lab.get("/api/v1/pods?fieldSelector=spec.nodeName%3Dw-1");
    let kinds: Vec<_> = on_w1["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["metadata"]["ownerReferences"][0]["kind"].clone())
        .collect();
    assert!(kinds.contains(&Value::from("DaemonSet")) && kinds.contains(&Value::from("ReplicaSet")), "{kinds:?}");
    let (code, ds) = lab.get("/apis/apps/v1/namespaces/kube-system/daemonsets/kube-proxy");
    assert_eq!((code, ds["status"]["numberReady"].as_u64()), (200, Some(3)));
    let (_, pdb) = lab.get("/apis/policy/v1/namespaces/default/poddisruptionbudgets/web");
    assert_eq!(pdb["status"]["disruptionsAllowed"], 1);
}

#[test]
fn cordon_is_a_strategic_merge_patch_and_uncordon_its_null() {
    // kubectl/pkg/drain/cordon.go: PATCH with
    // application/strategic-merge-patch+json {"spec":{"unschedulable":true}}.
    let mut lab = Lab::new();
    let smp = "application/strategic-merge-patch+json";
    let (code, node) =
        lab.call("PATCH", "/api/v1/nodes/w-1", "application/json", smp, r#"{"spec":{"unschedulable":true}}"#);
    assert_eq!((code, node["spec"]["unschedulable"].as_bool()), (200, Some(true)));
    assert!(node["spec"]["taints"].as_array().unwrap().iter().any(|t| t["key"] == "node.kubernetes.io/unschedulable"));
    let (_, cordoned) = lab.get("/api/v1/nodes?fieldSelector=spec.unschedulable%3Dtrue");
    assert_eq!(names(&cordoned), ["w-1"]);
    let (_, node) =
        lab.call("PATCH", "/api/v1/nodes/w-1", "application/json", smp, r#"{"spec":{"unschedulable":null}}"#);
    assert!(node["spec"].get("unschedulable").is_none());
    let (code, _) = lab.call("PATCH", "/api/v1/nodes/w-1", "application/json", "text/plain", "{}");
    assert_eq!(code, 415);
}

#[test]
fn an_eviction_the_budget_forbids_is_a_429_naming_the_budget() {
    // kubernetes pkg/registry/core/pod/storage/eviction.go: 429
    // TooManyRequests "Cannot evict pod as it would violate the pod's
    // disruption budget." with a DisruptionBudget cause; 201 when allowed.
    let mut lab = Lab::new();
    let (_, web) = lab.get("/api/v1/namespaces/default/pods?labelSelector=app%3Dweb");
    let pods = names(&web);
    let body = |p: &str| {
        format!(r#"{{"apiVersion":"policy/v1","kind":"Eviction","metadata":{{"name":"{p}","namespace":"default"}}}}"#)
    };
    let path = |p: &str| format!("/api/v1/namespaces/default/pods/{p}/eviction");
    let (code, ok) = lab.call("POST", &path(&pods[0]), "application/json", "application/json", &body(&pods[0]));
    assert_eq!((code, ok["status"].as_str()), (201, Some("Success")));
    let (code, refused) = lab.call("POST", &path(&pods[1]), "application/json", "application/json", &body(&pods[1]));
    assert_eq!(code, 429);
    assert_eq!(refused["reason"], "TooManyRequests");
    assert_eq!(refused["message"], "Cannot evict pod as it would violate the pod's disruption budget.");
    assert_eq!(refused["details"]["causes"][0]["reason"], "DisruptionBudget");
    let (code, _) = lab.call("POST", &path("nope"), "application/json", "application/json", &body("nope"));
    assert_eq!(code, 404);
}

#[test]
fn kubectl_get_gets_a_table_with_the_server_side_columns() {
    // pkg/printers/internalversion/printers.go: NAME STATUS ROLES AGE VERSION.
    let mut lab = Lab::new();
    lab.cluster.set_unschedulable("w-2", true);
    lab.machines[1].kubelet_healthy = false;
    let accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json";
    let (code, t) = lab.call("GET", "/api/v1/nodes?limit=500", accept, "", "");
    assert_eq!((code, t["kind"].as_str()), (200, Some("Table")));
    let cols: Vec<_> = t["columnDefinitions"].as_array().unwrap().iter().map(|c| c["name"].clone()).collect();
    assert_eq!(&cols[..5], ["Name", "Status", "Roles", "Age", "Version"]);
    let rows: Vec<Vec<Value>> =
        t["rows"].as_array().unwrap().iter().map(|r| r["cells"].as_array().unwrap()[..5].to_vec()).collect();
    assert_eq!(rows[0][1..3], [Value::from("Ready"), Value::from("control-plane")]);
    assert_eq!(rows[1][1], "NotReady");
    assert_eq!(rows[2][1..3], [Value::from("Ready,SchedulingDisabled"), Value::from("<none>")]);
    assert_eq!(rows[0][4], "v1.33.1");
    assert_eq!(t["rows"][0]["object"]["kind"], "PartialObjectMetadata");
}

#[test]
fn discovery_lists_the_eviction_subresource_and_unknown_paths_are_404() {
    let mut lab = Lab::new();
    let (_, v1) = lab.get("/api/v1");
    assert!(v1["resources"].as_array().unwrap().iter().any(|r| r["name"] == "pods/eviction" && r["group"] == "policy"));
    let (_, groups) = lab.get("/apis");
    assert_eq!(groups["groups"][1]["preferredVersion"]["groupVersion"], "policy/v1");
    let (_, version) = lab.get("/version");
    assert_eq!((version["major"].as_str(), version["minor"].as_str()), (Some("1"), Some("33")));
    for p in ["/apis/batch/v1/jobs", "/api/v1/persistentvolumes", "/api/v1/namespaces/default/nodes/x"] {
        assert_eq!(lab.get(p).0, 404, "{p}");
    }
}

#[test]
fn a_deleted_node_is_gone_until_its_kubelet_restarts() {
    let mut lab = Lab::new();
    assert_eq!(lab.call("DELETE", "/api/v1/nodes/w-2", "application/json", "", "").0, 200);
    assert_eq!(lab.get("/api/v1/nodes/w-2").0, 404);
    lab.machines[2].boot_id += 1;
    assert_eq!(lab.get("/api/v1/nodes/w-2").0, 200);
}

fn apply(lab: &mut Lab, path: &str, query: &str, body: &str) -> (u16, Value) {
    lab.call("PATCH", &format!("{path}?{query}"), "application/json", "application/apply-patch+yaml", body)
}

const CM: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: coredns\n  namespace: kube-system\ndata:\n  Corefile: \".:53 {}\"\n";

/// Server-side apply of a kind the lab does not model: 201 on create with
/// the manager's managedFields, 200 after; listed, got, deleted
/// (kube-apiserver `endpoints/handlers/patch.go`; structured-merge-diff).
#[test]
fn apply_creates_then_updates_an_object_and_delete_removes_it() {
    let mut lab = Lab::new();
    let path = "/api/v1/namespaces/kube-system/configmaps/coredns";
    let (code, obj) = apply(&mut lab, path, "fieldManager=talos&force=true", CM);
    assert_eq!(code, 201, "{obj}");
    assert_eq!(obj["metadata"]["managedFields"][0]["manager"], "talos");
    assert_eq!(obj["metadata"]["managedFields"][0]["fieldsV1"]["f:data"]["f:Corefile"], serde_json::json!({}));
    assert!(obj["metadata"]["uid"].as_str().is_some_and(|u| u.len() == 36));
    let (code, again) = apply(&mut lab, path, "fieldManager=talos&force=true", &CM.replace("{}", "{ cache 30 }"));
    assert_eq!(code, 200);
    assert_eq!(again["metadata"]["uid"], obj["metadata"]["uid"]);
    assert_eq!(again["data"]["Corefile"], ".:53 { cache 30 }");
    let (_, list) = lab.get("/api/v1/namespaces/kube-system/configmaps");
    assert_eq!(names(&list), ["coredns"]);
    assert_eq!(lab.get(path).0, 200);
    assert_eq!(lab.call("DELETE", path, "application/json", "", "").0, 200);
    assert_eq!(lab.get(path).0, 404);
}

/// The refusals: no fieldManager (422 Invalid), a conflict (409 with the
/// FieldManagerConflict causes), a name that is not the URL's (400), a
/// namespace that does not exist (404), a kind the kubelets own (405, lab).
#[test]
fn apply_refusals_follow_the_api_server() {
    let mut lab = Lab::new();
    let path = "/api/v1/namespaces/kube-system/configmaps/coredns";
    let (code, s) = apply(&mut lab, path, "", CM);
    assert_eq!((code, s["reason"].as_str()), (422, Some("Invalid")));
    assert_eq!(
        s["message"],
        "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch"
    );
    assert_eq!(apply(&mut lab, path, "fieldManager=person", CM).0, 201);
    let other = CM.replace("{}", "{ log }");
    let (code, s) = apply(&mut lab, path, "fieldManager=talos", &other);
    assert_eq!((code, s["reason"].as_str()), (409, Some("Conflict")), "{s}");
    assert_eq!(s["message"], "Apply failed with 1 conflict: conflict with \"person\": .data.Corefile");
    assert_eq!(s["details"]["causes"][0]["type"], "FieldManagerConflict");
    assert_eq!(apply(&mut lab, path, "fieldManager=talos&force=true", &other).0, 200);
    let (code, s) = apply(&mut lab, "/api/v1/namespaces/kube-system/configmaps/other", "fieldManager=talos", CM);
    assert_eq!(code, 400, "{s}");
    let (code, _) = apply(
        &mut lab,
        "/api/v1/namespaces/nowhere/configmaps/coredns",
        "fieldManager=talos",
        &CM.replace("kube-system", "nowhere"),
    );
    assert_eq!(code, 404);
    let node = "apiVersion: v1\nkind: Node\nmetadata:\n  name: w-1\n";
    assert_eq!(apply(&mut lab, "/api/v1/nodes/w-1", "fieldManager=talos", node).0, 405);
}

/// Applying the kube-proxy DaemonSet with a new image rolls its pods to
/// it (new pod names), and the DaemonSet's generation goes up.
#[test]
fn applying_the_kube_proxy_daemonset_rolls_its_pods() {
    let mut lab = Lab::new();
    let proxy_pods = |lab: &mut Lab| {
        let (_, pods) = lab.get("/api/v1/namespaces/kube-system/pods?labelSelector=k8s-app%3Dkube-proxy");
        pods["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p["metadata"]["name"].as_str().unwrap().to_string(),
                    p["spec"]["containers"][0]["image"].as_str().unwrap().to_string(),
                )
            })
            .collect::<Vec<_>>()
    };
    let before = proxy_pods(&mut lab);
    assert!(before.iter().all(|(_, i)| i == "registry.k8s.io/kube-proxy:v1.33.1"), "{before:?}");
    let ds = "apiVersion: apps/v1\nkind: DaemonSet\nmetadata:\n  name: kube-proxy\n  namespace: kube-system\nspec:\n  template:\n    spec:\n      containers:\n      - name: kube-proxy\n        image: registry.k8s.io/kube-proxy:v1.34.0\n";
    let (code, obj) = apply(
        &mut lab,
        "/apis/apps/v1/namespaces/kube-system/daemonsets/kube-proxy",
        "fieldManager=talos&force=true",
        ds,
    );
    assert_eq!(code, 200, "{obj}");
    assert_eq!(obj["metadata"]["generation"], 2);
    assert_eq!(obj["status"]["observedGeneration"], 2);
    let after = proxy_pods(&mut lab);
    assert_eq!(after.len(), before.len());
    assert!(after.iter().all(|(_, i)| i == "registry.k8s.io/kube-proxy:v1.34.0"), "{after:?}");
    assert!(after.iter().all(|(n, _)| !before.iter().any(|(b, _)| b == n)), "new pods: {before:?} {after:?}");
    // The modelled DaemonSet cannot be deleted in the lab.
    assert_eq!(
        lab.call("DELETE", "/apis/apps/v1/namespaces/kube-system/daemonsets/kube-proxy", "application/json", "", "").0,
        405
    );
}
