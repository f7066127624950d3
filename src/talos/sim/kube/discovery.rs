//! Discovery documents, as kube-apiserver serves them without aggregated
//! discovery (kubectl asks for `apidiscovery.k8s.io/v2` first and falls
//! back to these when the reply is plain JSON): `/api`, `/apis`, and the
//! resource lists of `v1`, `apps/v1`, `policy/v1` and
//! `rbac.authorization.k8s.io/v1`, with `pods/eviction`
//! listed (kubectl drain checks for it before it evicts), and `/version`.

use serde_json::{Value, json};

use super::api::Response;

const RW: [&str; 8] = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"];

fn resource(name: &str, kind: &str, namespaced: bool, short: &[&str]) -> Value {
    json!({"name": name, "singularName": kind.to_lowercase(), "namespaced": namespaced, "kind": kind,
        "verbs": RW, "shortNames": short})
}

fn sub(name: &str, kind: &str, namespaced: bool, verbs: &[&str]) -> Value {
    json!({"name": name, "singularName": "", "namespaced": namespaced, "kind": kind, "verbs": verbs})
}

fn resource_list(group_version: &str, resources: Vec<Value>) -> Value {
    json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": resources})
}

/// The resources the lab serves: (group, resource, kind, cluster-scoped,
/// short names), each at version `v1`.
pub const RESOURCES: [(&str, &str, &str, bool, &[&str]); 15] = [
    ("", "namespaces", "Namespace", true, &["ns"]),
    ("", "nodes", "Node", true, &["no"]),
    ("", "pods", "Pod", false, &["po"]),
    ("", "serviceaccounts", "ServiceAccount", false, &["sa"]),
    ("", "configmaps", "ConfigMap", false, &["cm"]),
    ("", "secrets", "Secret", false, &[]),
    ("", "services", "Service", false, &["svc"]),
    ("apps", "daemonsets", "DaemonSet", false, &["ds"]),
    ("apps", "deployments", "Deployment", false, &["deploy"]),
    ("apps", "replicasets", "ReplicaSet", false, &["rs"]),
    ("policy", "poddisruptionbudgets", "PodDisruptionBudget", false, &["pdb"]),
    ("rbac.authorization.k8s.io", "clusterroles", "ClusterRole", true, &[]),
    ("rbac.authorization.k8s.io", "clusterrolebindings", "ClusterRoleBinding", true, &[]),
    ("rbac.authorization.k8s.io", "roles", "Role", false, &[]),
    ("rbac.authorization.k8s.io", "rolebindings", "RoleBinding", false, &[]),
];

const GROUPS: [&str; 3] = ["apps", "policy", "rbac.authorization.k8s.io"];

fn resources_of(group: &str) -> Vec<Value> {
    RESOURCES
        .iter()
        .filter(|r| r.0 == group)
        .map(|(_, name, kind, cluster, short)| resource(name, kind, !cluster, short))
        .collect()
}

/// The discovery document at `path`, if it is one.
pub fn document(path: &str, _accept: &str) -> Option<Response> {
    let doc = match path {
        "/api" => json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []}),
        "/apis" => {
            let group = |g: &str| {
                json!({"name": g, "versions": [{"groupVersion": format!("{g}/v1"), "version": "v1"}],
                    "preferredVersion": {"groupVersion": format!("{g}/v1"), "version": "v1"}})
            };
            json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": GROUPS.map(group)})
        }
        "/api/v1" => {
            let mut r = resources_of("");
            r.push(sub("nodes/status", "Node", false, &["get", "patch", "update"]));
            r.push(json!({"name": "pods/eviction", "singularName": "", "namespaced": true, "group": "policy",
                "version": "v1", "kind": "Eviction", "verbs": ["create"]}));
            r.push(sub("pods/status", "Pod", true, &["get", "patch", "update"]));
            resource_list("v1", r)
        }
        p => {
            let g = GROUPS.into_iter().find(|g| p == format!("/apis/{g}/v1"))?;
            resource_list(&format!("{g}/v1"), resources_of(g))
        }
    };
    Some(Response::json(200, &doc))
}

/// `/version` for an API server running `git_version` (`v1.33.1`).
pub fn version(git_version: &str) -> Value {
    let mut parts = git_version.trim_start_matches('v').split('.');
    let major = parts.next().unwrap_or_default();
    let minor = parts.next().unwrap_or_default();
    json!({"major": major, "minor": minor, "gitVersion": git_version,
        "gitCommit": "0000000000000000000000000000000000000000", "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.24.4", "compiler": "gc", "platform": "linux/amd64"})
}
