//! Server-side apply (`PATCH` with `application/apply-patch+yaml`) and the
//! objects it keeps: what `talosctl upgrade-k8s` (Talos ≥ 1.13) does to
//! sync the bootstrap manifests, field manager `talos`, `force=true`
//! (siderolabs/go-kubernetes `kubernetes/ssa`, fluxcd `ssa/manager_apply.go`).
//! Field ownership, conflicts and the merge are `apply.rs`; requests and
//! errors follow kube-apiserver (`endpoints/handlers/patch.go`,
//! `apimachinery/pkg/api/errors` `NewApplyConflict`); sources in
//! `src/talos/sim/README.md`, "Server-side apply".

use std::time::{Instant, SystemTime};

use serde_json::{Value, json};

use super::super::apply;
use super::super::model::{Cluster, Machine};
use super::super::render::{View, timestamp};
use super::super::store::{ObjKey, Stored};
use super::{NAMESPACES, Request, Response, Target, find, list, param, status};

/// The media type of an apply patch.
pub const APPLY_PATCH: &str = "application/apply-patch+yaml";

/// Resources the lab lets a client apply: those of the bootstrap
/// manifests. Nodes, pods and ReplicaSets belong to the kubelets and
/// controllers the lab models; applying them is refused (405).
fn appliable(resource: &str) -> bool {
    matches!(
        resource,
        "serviceaccounts"
            | "configmaps"
            | "secrets"
            | "services"
            | "daemonsets"
            | "deployments"
            | "clusterroles"
            | "clusterrolebindings"
            | "roles"
            | "rolebindings"
    )
}

fn key_of(t: &Target, name: &str) -> ObjKey {
    ObjKey::new(t.group, &t.resource, t.namespace.as_deref().unwrap_or_default(), name)
}

/// The object as the API serves it: the applied object with the server's
/// metadata (and, over a modelled object, the model's status).
pub(super) fn rendered(key: &ObjKey, s: &Stored, model: Option<&Value>) -> Value {
    let mut o = s.obj.clone();
    let meta = &mut o["metadata"];
    meta["name"] = json!(key.name);
    if !key.namespace.is_empty() {
        meta["namespace"] = json!(key.namespace);
    }
    meta["uid"] = json!(s.uid);
    meta["resourceVersion"] = json!(s.rv.to_string());
    meta["creationTimestamp"] = json!(timestamp(s.created));
    if key.group == "apps" {
        meta["generation"] = json!(s.generation);
    }
    meta["managedFields"] = apply::managed_fields(&s.managers);
    if let Some(status) = model.map(|m| &m["status"]).filter(|v| !v.is_null()) {
        o["status"] = status.clone();
        o["status"]["observedGeneration"] = json!(s.generation);
    }
    o
}

/// `items` of `t` with the applied objects laid over the modelled ones and
/// the applied-only objects added (in `t`'s namespace, if it has one).
pub(super) fn with_stored(cluster: &Cluster, t: &Target, items: Vec<Value>) -> Vec<Value> {
    let ns_of = |o: &Value| o["metadata"]["namespace"].as_str().unwrap_or_default().to_string();
    let mut out: Vec<Value> = items
        .into_iter()
        .map(|o| {
            let key = ObjKey::new(t.group, &t.resource, &ns_of(&o), o["metadata"]["name"].as_str().unwrap_or_default());
            match cluster.stored(&key) {
                Some(s) => rendered(&key, s, Some(&o)),
                None => o,
            }
        })
        .collect();
    for (key, s) in &cluster.objects {
        let here = key.group == t.group
            && key.resource == t.resource
            && t.namespace.as_deref().is_none_or(|n| n == key.namespace);
        let shown = out.iter().any(|o| o["metadata"]["name"] == key.name.as_str() && ns_of(o) == key.namespace);
        if here && !shown {
            out.push(rendered(key, s, None));
        }
    }
    out
}

/// The model's object stripped to what a client could have applied.
fn unmanaged(mut o: Value) -> Value {
    if let Some(m) = o.as_object_mut() {
        m.remove("status");
    }
    if let Some(meta) = o["metadata"].as_object_mut() {
        for k in ["uid", "resourceVersion", "generation", "creationTimestamp", "managedFields"] {
            meta.remove(k);
        }
    }
    o
}

/// `PATCH …/{name}` with an apply patch.
pub(super) fn apply(
    cluster: &mut Cluster,
    machines: &[Machine],
    now: Instant,
    t: &Target,
    name: &str,
    req: &Request<'_>,
) -> Response {
    let Some(manager) = param(req.query, "fieldManager").filter(|m| !m.is_empty()) else {
        return Response::status(
            422,
            "Invalid",
            "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch",
        );
    };
    if !appliable(&t.resource) {
        return Response::status(
            405,
            "MethodNotAllowed",
            &format!("the lab's API server does not apply {} (its kubelets and controllers own them)", t.resource),
        );
    }
    let force = param(req.query, "force").is_some_and(|f| f == "true" || f == "1");
    let dry_run = param(req.query, "dryRun").is_some_and(|d| d == "All");
    let cfg: Value = match serde_yaml_ng::from_slice(req.body) {
        Ok(v @ Value::Object(_)) => v,
        Ok(_) => return Response::status(400, "BadRequest", "the apply patch is not an object"),
        Err(e) => return Response::status(400, "BadRequest", &format!("error decoding YAML: {e}")),
    };
    let (kind, api_version) = t.kind();
    if cfg["apiVersion"] != api_version.as_str() {
        let got = cfg["apiVersion"].as_str().unwrap_or_default();
        let message =
            format!("the API version in the data ({got}) does not match the expected API version ({api_version})");
        return Response::status(400, "BadRequest", &message);
    }
    if cfg["kind"] != kind {
        let got = cfg["kind"].as_str().unwrap_or_default();
        return Response::status(
            400,
            "BadRequest",
            &format!("the kind in the data ({got}) does not match the expected kind ({kind})"),
        );
    }
    if cfg["metadata"]["name"] != name {
        let got = cfg["metadata"]["name"].as_str().unwrap_or_default();
        let message = format!("the name of the object ({got}) does not match the name on the URL ({name})");
        return Response::status(400, "BadRequest", &message);
    }
    if let (Some(ns), Some(got)) = (&t.namespace, cfg["metadata"]["namespace"].as_str())
        && got != ns
    {
        return Response::status(
            400,
            "BadRequest",
            "the namespace of the provided object does not match the namespace sent on the request",
        );
    }
    if let Some(ns) = &t.namespace
        && !NAMESPACES.contains(&ns.as_str())
    {
        return super::not_found("namespaces", "", ns);
    }
    let key = key_of(t, name);
    let model = {
        let view = View { cluster, machines, now };
        list(&view, &Target { name: None, ..t.clone() }, "").and_then(|items| find(items, name))
    };
    let (mut obj, mut managers, existed) = match (cluster.stored(&key), &model) {
        (Some(s), _) => (s.obj.clone(), s.managers.clone(), true),
        (None, Some(m)) => (unmanaged(m.clone()), Default::default(), true),
        (None, None) => (json!({}), Default::default(), false),
    };
    let before_spec = obj["spec"].clone();
    let time = timestamp(SystemTime::now());
    if let Err(conflicts) = apply::apply(&mut obj, &mut managers, &manager, force, &cfg, &time) {
        let details = json!({"causes": apply::conflict_causes(&conflicts)});
        return Response::json(409, &status(409, "Conflict", &apply::conflict_message(&conflicts), Some(details)));
    }
    let previous = cluster.stored(&key).cloned();
    let (uid, created, generation) = match (&previous, &model) {
        (Some(p), _) => (p.uid.clone(), p.created, p.generation),
        (None, Some(m)) => (
            m["metadata"]["uid"].as_str().unwrap_or_default().to_string(),
            SystemTime::now(),
            m["metadata"]["generation"].as_u64().unwrap_or(1),
        ),
        (None, None) => (cluster.uid(), SystemTime::now(), 1),
    };
    let generation = if existed && obj["spec"] != before_spec { generation + 1 } else { generation };
    let stored = Stored { obj, managers, uid, created, rv: cluster.rv + 1, generation };
    let code = if existed { 200 } else { 201 };
    if dry_run {
        return Response::json(code, &rendered(&key, &stored, model.as_ref()));
    }
    cluster.bump();
    cluster.objects.insert(key.clone(), stored);
    cluster.sync(machines, now, SystemTime::now());
    let view = View { cluster, machines, now };
    let out = list(&view, &Target { name: None, ..t.clone() }, "").and_then(|items| find(items, name));
    match out {
        Some(o) => Response::json(code, &o),
        None => Response::status(500, "InternalError", "the applied object vanished"),
    }
}

/// `DELETE` of an applied-only object (a ServiceAccount, a ConfigMap, …);
/// None when `t`/`name` is not one.
pub(super) fn delete(cluster: &mut Cluster, t: &Target, name: &str) -> Option<Response> {
    let key = key_of(t, name);
    let s = cluster.objects.remove(&key)?;
    cluster.bump();
    Some(Response::json(200, &rendered(&key, &s, None)))
}
