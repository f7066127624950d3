//! The lab's Kubernetes API, sans-IO: a request in, a response out, over
//! the [`Cluster`] and the machines of the moment. It serves what kubectl
//! and a day-2 client use (discovery, get/list of Nodes, Pods, DaemonSets,
//! Deployments, ReplicaSets and PodDisruptionBudgets with label and field
//! selectors, server-side Tables for `kubectl get`, cordon by patch, the
//! eviction API, delete of a Node or Pod), each as kube-apiserver answers
//! it (sources in `src/talos/sim/README.md`, "Kubernetes API"). Everything
//! else is a 404 `Status`, as the real server answers an unknown path.

use std::time::{Instant, SystemTime};

use serde_json::{Value, json};

use super::discovery;
use super::model::{Cluster, EvictError, Machine, WORKLOADS};
use super::render::{PodObj, View, timestamp};
use super::table;

/// The authenticated caller (x509 client certificate: CN and O).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// The user name (CN).
    pub name: String,
    /// Its groups (O).
    pub groups: Vec<String>,
}

/// One HTTP request, already read.
#[derive(Debug)]
pub struct Request<'a> {
    /// `GET`, `PATCH`, ...
    pub method: &'a str,
    /// The path (`/api/v1/nodes`).
    pub path: &'a str,
    /// The raw query string.
    pub query: &'a str,
    /// The `Accept` header.
    pub accept: &'a str,
    /// The `Content-Type` header.
    pub content_type: &'a str,
    /// The body.
    pub body: &'a [u8],
    /// The caller, if it presented a client certificate of the cluster CA.
    pub user: Option<&'a User>,
}

/// One HTTP response.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    /// Status code.
    pub code: u16,
    /// `Content-Type`.
    pub content_type: String,
    /// Body.
    pub body: Vec<u8>,
}

impl Response {
    /// A JSON body.
    pub fn json(code: u16, v: &Value) -> Response {
        Response { code, content_type: "application/json".to_string(), body: v.to_string().into_bytes() }
    }

    /// A failure `Status` (`metav1.Status`) as kube-apiserver writes it.
    pub fn status(code: u16, reason: &str, message: &str) -> Response {
        Response::json(code, &status(code, reason, message, None))
    }
}

fn status(code: u16, reason: &str, message: &str, details: Option<Value>) -> Value {
    let mut s = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "code": code});
    if let Some(d) = details {
        s["details"] = d;
    }
    s
}

fn not_found(resource: &str, group: &str, name: &str) -> Response {
    let qualified = if group.is_empty() { resource.to_string() } else { format!("{resource}.{group}") };
    let details = json!({"name": name, "group": group, "kind": resource});
    Response::json(404, &status(404, "NotFound", &format!("{qualified} \"{name}\" not found"), Some(details)))
}

fn no_route() -> Response {
    Response::status(404, "NotFound", "the server could not find the requested resource")
}

/// A query parameter's decoded value.
fn param(query: &str, key: &str) -> Option<String> {
    form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == key).map(|(_, v)| v.into_owned())
}

/// Handles one request against the cluster (already synced to `machines`).
pub fn handle(cluster: &mut Cluster, machines: &[Machine], now: Instant, req: &Request<'_>) -> Response {
    let path = req.path.trim_end_matches('/');
    if let Some(refused) = authenticate(req) {
        return refused;
    }
    match path {
        "/version" => {
            return Response::json(200, &discovery::version(&View { cluster, machines, now }.server_version()));
        }
        "/healthz" | "/livez" | "/readyz" => {
            return Response { code: 200, content_type: "text/plain; charset=utf-8".to_string(), body: b"ok".to_vec() };
        }
        _ => {}
    }
    if let Some(doc) = discovery::document(path, req.accept) {
        return doc;
    }
    if let Some(refused) = authorize(req) {
        return refused;
    }
    let Some(target) = Target::parse(path) else {
        return no_route();
    };
    let view = View { cluster, machines, now };
    let table = req.accept.contains("as=Table");
    match (req.method, &target.name, target.sub.as_deref()) {
        ("GET", None, None) => {
            if is_watch(req) {
                // The server streams watches (watch.rs); one that reaches
                // here has no stream to go to.
                return Response::status(405, "MethodNotAllowed", "a watch needs a streaming connection");
            }
            match list(&view, &target, req.query) {
                Some(items) => respond_list(&view, &target, items, table, req.query),
                None => no_route(),
            }
        }
        ("GET", Some(name), None) => match list(&view, &target, "").and_then(|items| find(items, name)) {
            Some(obj) if table => Response::json(200, &table::table(&target.resource, &[obj], &view, req.query)),
            Some(obj) => Response::json(200, &obj),
            None => not_found(&target.resource, target.group, name),
        },
        ("PATCH", Some(name), None) if req.content_type.starts_with(ssa::APPLY_PATCH) => {
            ssa::apply(cluster, machines, now, &target, name, req)
        }
        ("PATCH", Some(name), None) if target.resource == "nodes" => patch_node(cluster, machines, now, name, req),
        ("DELETE", Some(name), None) if target.resource == "nodes" => {
            let obj = list(&view, &target, "").and_then(|items| find(items, name));
            match obj {
                Some(obj) => {
                    cluster.delete_node(name);
                    Response::json(200, &obj)
                }
                None => not_found("nodes", "", name),
            }
        }
        ("DELETE", Some(name), None) if target.resource == "pods" => delete_pod(cluster, machines, now, &target, name),
        ("DELETE", Some(name), None) if !modelled(cluster, &target, name) => {
            ssa::delete(cluster, &target, name).unwrap_or_else(|| not_found(&target.resource, target.group, name))
        }
        ("POST", Some(name), Some("eviction")) if target.resource == "pods" => {
            evict(cluster, machines, now, &target, name)
        }
        (_, _, Some(_)) => no_route(),
        _ => Response::status(
            405,
            "MethodNotAllowed",
            &format!("the lab's API server does not allow {} here", req.method),
        ),
    }
}

/// The lab models `name` of `t` itself (a Node, a pod, the kube-proxy
/// DaemonSet, a workload's Deployment, …), as opposed to an applied-only
/// object.
fn modelled(cluster: &Cluster, t: &Target, name: &str) -> bool {
    let ns = t.namespace.as_deref().unwrap_or_default();
    let workload = |f: fn(&super::model::Workload) -> String| {
        cluster.seeded && WORKLOADS.iter().any(|w| w.namespace == ns && f(w) == name)
    };
    match t.resource.as_str() {
        "nodes" | "pods" | "namespaces" => true,
        "daemonsets" => {
            ns == "kube-system" && name == "kube-proxy" && !cluster.nodes.is_empty() && !cluster.proxy_disabled
        }
        "deployments" | "poddisruptionbudgets" => workload(|w| w.name.to_string()),
        "replicasets" => workload(|w| format!("{}-{}", w.name, w.template_hash)),
        _ => false,
    }
}

/// x509 authentication: a request without a client certificate of the
/// cluster CA is refused (401).
fn authenticate(req: &Request<'_>) -> Option<Response> {
    req.user.is_none().then(|| Response::status(401, "Unauthorized", "Unauthorized"))
}

/// RBAC: `system:masters` may do anything; the lab knows no other
/// bindings (403).
fn authorize(req: &Request<'_>) -> Option<Response> {
    let user = req.user?;
    if user.groups.iter().any(|g| g == "system:masters") {
        return None;
    }
    let message =
        format!("forbidden: User \"{}\" cannot {} path \"{}\"", user.name, req.method.to_lowercase(), req.path);
    Some(Response::status(403, "Forbidden", &message))
}

/// A list request with `watch=true` (or `1`).
pub fn is_watch(req: &Request<'_>) -> bool {
    req.method == "GET" && param(req.query, "watch").is_some_and(|w| w == "true" || w == "1")
}

/// What a resource path names.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Target {
    group: &'static str,
    resource: String,
    namespace: Option<String>,
    name: Option<String>,
    sub: Option<String>,
}

impl Target {
    /// The kind of the resource's objects and their apiVersion.
    fn kind(&self) -> (&'static str, String) {
        let kind =
            discovery::RESOURCES.iter().find(|r| r.0 == self.group && r.1 == self.resource).map_or("Unknown", |r| r.2);
        (kind, if self.group.is_empty() { "v1".to_string() } else { format!("{}/v1", self.group) })
    }

    fn parse(path: &str) -> Option<Target> {
        let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let (group, rest) = match parts.as_slice() {
            ["api", "v1", rest @ ..] => ("", rest),
            ["apis", g, "v1", rest @ ..] => {
                (discovery::RESOURCES.iter().map(|r| r.0).find(|known| !known.is_empty() && known == g)?, rest)
            }
            _ => return None,
        };
        let (namespace, rest) = match rest {
            ["namespaces", ns, rest @ ..] if !rest.is_empty() => (Some(ns.to_string()), rest),
            _ => (None, rest),
        };
        let (resource, name, sub) = match rest {
            [r] => (r, None, None),
            [r, n] => (r, Some(n.to_string()), None),
            [r, n, s] => (r, Some(n.to_string()), Some(s.to_string())),
            _ => return None,
        };
        let known = discovery::RESOURCES.iter().find(|r| r.0 == group && r.1 == *resource)?;
        let cluster_scoped = known.3;
        // A cluster-scoped resource under a namespace, or a namespaced get
        // without one, is no route.
        if (cluster_scoped && namespace.is_some()) || (!cluster_scoped && name.is_some() && namespace.is_none()) {
            return None;
        }
        Some(Target { group, resource: resource.to_string(), namespace, name, sub })
    }
}

const NAMESPACES: [&str; 4] = ["default", "kube-node-lease", "kube-public", "kube-system"];

/// The objects of a target's resource in its namespace, filtered by the
/// query's selectors.
fn list(view: &View<'_>, t: &Target, query: &str) -> Option<Vec<Value>> {
    let in_ns = |ns: &str| t.namespace.as_deref().is_none_or(|n| n == ns);
    let items: Vec<Value> = match t.resource.as_str() {
        "nodes" => view.cluster.nodes.iter().map(|(n, r)| view.node(n, r)).collect(),
        "namespaces" => NAMESPACES
            .iter()
            .map(|n| json!({"kind": "Namespace", "apiVersion": "v1",
                "metadata": {"name": n, "uid": format!("ns-{n}"), "resourceVersion": "1", "creationTimestamp": first_seen(view),
                    "labels": {"kubernetes.io/metadata.name": n}},
                "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}))
            .collect(),
        "pods" => view.pods().iter().filter(|p| in_ns(&p.namespace)).map(|p| view.pod(p)).collect(),
        "daemonsets" if in_ns("kube-system") && !view.cluster.nodes.is_empty() && !view.cluster.proxy_disabled => vec![view.daemonset()],
        "daemonsets" => Vec::new(),
        "deployments" | "replicasets" | "poddisruptionbudgets" => (0..WORKLOADS.len())
            .filter(|i| view.cluster.seeded && in_ns(WORKLOADS[*i].namespace))
            .filter_map(|i| match t.resource.as_str() {
                "deployments" => Some(view.deployment(i)),
                "replicasets" => Some(view.replicaset(i)),
                _ => view.pdb(i),
            })
            .collect(),
        // Kinds only server-side apply makes (ssa.rs).
        _ => Vec::new(),
    };
    let items = ssa::with_stored(view.cluster, t, items);
    let labels = param(query, "labelSelector").unwrap_or_default();
    let fields = param(query, "fieldSelector").unwrap_or_default();
    Some(items.into_iter().filter(|o| selects(&labels, o, labels_of) && selects(&fields, o, field_of)).collect())
}

fn first_seen(view: &View<'_>) -> String {
    timestamp(view.cluster.nodes.values().map(|r| r.created).min().unwrap_or_else(SystemTime::now))
}

fn find(items: Vec<Value>, name: &str) -> Option<Value> {
    items.into_iter().find(|o| o["metadata"]["name"] == name)
}

fn labels_of(o: &Value, key: &str) -> Option<String> {
    o["metadata"]["labels"].get(key).and_then(Value::as_str).map(str::to_string)
}

fn field_of(o: &Value, key: &str) -> Option<String> {
    let v = match key {
        "metadata.name" => &o["metadata"]["name"],
        "metadata.namespace" => &o["metadata"]["namespace"],
        "spec.nodeName" => &o["spec"]["nodeName"],
        "status.phase" => &o["status"]["phase"],
        "spec.unschedulable" => return Some(o["spec"]["unschedulable"].as_bool().unwrap_or(false).to_string()),
        _ => return None,
    };
    Some(v.as_str().unwrap_or_default().to_string())
}

/// Equality-based selectors (`k=v`, `k==v`, `k!=v`, `k`, `!k`), as label
/// and field selectors use them.
fn selects(selector: &str, o: &Value, get: fn(&Value, &str) -> Option<String>) -> bool {
    selector.split(',').map(str::trim).filter(|t| !t.is_empty()).all(|term| {
        if let Some((k, v)) = term.split_once("!=") {
            get(o, k.trim()).as_deref() != Some(v.trim())
        } else if let Some((k, v)) = term.split_once('=') {
            get(o, k.trim()).as_deref() == Some(v.trim_start_matches('=').trim())
        } else if let Some(k) = term.strip_prefix('!') {
            get(o, k).is_none()
        } else {
            get(o, term).is_some()
        }
    })
}

fn respond_list(view: &View<'_>, t: &Target, items: Vec<Value>, table: bool, query: &str) -> Response {
    if table {
        return Response::json(200, &table::table(&t.resource, &items, view, query));
    }
    let (kind, api_version) = t.kind();
    Response::json(
        200,
        &json!({"kind": format!("{kind}List"), "apiVersion": api_version, "metadata": {"resourceVersion": view.cluster.rv.to_string()}, "items": items}),
    )
}

/// Cordon and uncordon: a strategic-merge or merge patch of
/// `spec.unschedulable` (kubectl's cordon helper), or a JSON patch of it.
fn patch_node(cluster: &mut Cluster, machines: &[Machine], now: Instant, name: &str, req: &Request<'_>) -> Response {
    if !cluster.nodes.contains_key(name) {
        return not_found("nodes", "", name);
    }
    let Ok(patch) = serde_json::from_slice::<Value>(req.body) else {
        return Response::status(400, "BadRequest", "the patch is not valid JSON");
    };
    let unschedulable = if req.content_type.starts_with("application/json-patch+json") {
        patch.as_array().and_then(|ops| {
            ops.iter().rev().find(|op| op["path"] == "/spec/unschedulable").map(|op| match op["op"].as_str() {
                Some("remove") => Some(false),
                _ => op["value"].as_bool(),
            })
        })
    } else if req.content_type.starts_with("application/strategic-merge-patch+json")
        || req.content_type.starts_with("application/merge-patch+json")
    {
        patch
            .get("spec")
            .and_then(|s| s.get("unschedulable"))
            .map(|v| if v.is_null() { Some(false) } else { v.as_bool() })
    } else {
        return Response::status(
            415,
            "UnsupportedMediaType",
            &format!(
                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json (got {:?})",
                req.content_type
            ),
        );
    };
    match unschedulable {
        Some(Some(v)) => {
            cluster.set_unschedulable(name, v);
        }
        Some(None) => return Response::status(422, "Invalid", "spec.unschedulable: Invalid value: must be a boolean"),
        // Anything else of a Node is the kubelet's and Talos's to set: the
        // lab keeps it and answers with the object unchanged.
        None => {}
    }
    let view = View { cluster, machines, now };
    match cluster.nodes.get(name) {
        Some(rec) => Response::json(200, &view.node(name, rec)),
        None => not_found("nodes", "", name),
    }
}

fn pod_named<'a>(pods: &'a [PodObj], ns: &str, name: &str) -> Option<&'a PodObj> {
    pods.iter().find(|p| p.namespace == ns && p.name == name)
}

/// Deleting a pod: a workload pod goes (its ReplicaSet replaces it); a
/// mirror or DaemonSet pod is made again at once by its kubelet or
/// controller, so the lab answers and keeps it.
fn delete_pod(cluster: &mut Cluster, machines: &[Machine], now: Instant, t: &Target, name: &str) -> Response {
    let ns = t.namespace.clone().unwrap_or_default();
    let view = View { cluster, machines, now };
    let pods = view.pods();
    let Some(p) = pod_named(&pods, &ns, name) else {
        return not_found("pods", "", name);
    };
    let obj = view.pod(p);
    cluster.pods.remove(&(ns, name.to_string()));
    cluster.bump();
    Response::json(200, &obj)
}

/// `POST …/pods/{name}/eviction` (policy/v1 Eviction): 201 with a Success
/// Status, or 429 while the PodDisruptionBudget forbids it. Pods no
/// budget covers (mirror, DaemonSet) are deleted as their delete is.
fn evict(cluster: &mut Cluster, machines: &[Machine], now: Instant, t: &Target, name: &str) -> Response {
    let ns = t.namespace.clone().unwrap_or_default();
    let pods = View { cluster, machines, now }.pods();
    if pod_named(&pods, &ns, name).is_none() {
        return not_found("pods", "", name);
    }
    match cluster.evict(&ns, name, machines, now) {
        Ok(()) | Err(EvictError::NotFound) => Response::json(
            201,
            &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
        ),
        Err(EvictError::Budget { pdb }) => {
            let w = WORKLOADS.iter().position(|w| w.name == pdb).unwrap_or(0);
            let (healthy, _) = cluster.disruptions_allowed(w, machines, now);
            let min = WORKLOADS[w].pdb_min_available.unwrap_or(0);
            let cause = format!("The disruption budget {pdb} needs {min} healthy pods and has {healthy} currently");
            let details = json!({"causes": [{"reason": "DisruptionBudget", "message": cause}]});
            Response::json(
                429,
                &status(
                    429,
                    "TooManyRequests",
                    "Cannot evict pod as it would violate the pod's disruption budget.",
                    Some(details),
                ),
            )
        }
    }
}

mod ssa;
pub mod watch;

#[cfg(test)]
mod tests;
