//! Discovery documents, as kube-apiserver serves them without aggregated
//! discovery (kubectl asks for `apidiscovery.k8s.io/v2` first and falls
//! back to these when the reply is plain JSON): `/api`, `/apis`, and the
//! resource lists of `v1`, `apps/v1` and `policy/v1`, with `pods/eviction`
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

/// The discovery document at `path`, if it is one.
pub fn document(path: &str, _accept: &str) -> Option<Response> {
    let doc = match path {
        "/api" => json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []}),
        "/apis" => {
            let group = |g: &str| {
                json!({"name": g, "versions": [{"groupVersion": format!("{g}/v1"), "version": "v1"}],
                    "preferredVersion": {"groupVersion": format!("{g}/v1"), "version": "v1"}})
            };
            json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": [group("apps"), group("policy")]})
        }
        "/api/v1" => resource_list(
            "v1",
            vec![
                resource("namespaces", "Namespace", false, &["ns"]),
                resource("nodes", "Node", false, &["no"]),
                sub("nodes/status", "Node", false, &["get", "patch", "update"]),
                resource("pods", "Pod", true, &["po"]),
                json!({"name": "pods/eviction", "singularName": "", "namespaced": true, "group": "policy",
                    "version": "v1", "kind": "Eviction", "verbs": ["create"]}),
                sub("pods/status", "Pod", true, &["get", "patch", "update"]),
            ],
        ),
        "/apis/apps/v1" => resource_list(
            "apps/v1",
            vec![
                resource("daemonsets", "DaemonSet", true, &["ds"]),
                resource("deployments", "Deployment", true, &["deploy"]),
                resource("replicasets", "ReplicaSet", true, &["rs"]),
            ],
        ),
        "/apis/policy/v1" => {
            resource_list("policy/v1", vec![resource("poddisruptionbudgets", "PodDisruptionBudget", true, &["pdb"])])
        }
        _ => return None,
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
