//! Server-side apply of arbitrary objects (the bootstrap manifests that
//! `upgrade-k8s` syncs): a sans-IO request builder over kube-core
//! (`PATCH …/{name}?fieldManager=…&force=…` with
//! `application/apply-patch+yaml`) and its call on [`Client`].
//!
//! The object's collection comes from its apiVersion and kind: the plural
//! is kube-core's guess (right for every kind Talos's manifests hold), and
//! the kinds below are cluster-scoped; any other kind is namespaced, in
//! `metadata.namespace` or `default`.

use kube_core::discovery::ApiResource;
use kube_core::gvk::GroupVersionKind;
use kube_core::params::{Patch, PatchParams};
use serde_json::Value;

use super::{Client, Error};

/// Built-in kinds that live outside namespaces.
const CLUSTER_SCOPED: [&str; 16] = [
    "APIService",
    "CSIDriver",
    "CSINode",
    "ClusterRole",
    "ClusterRoleBinding",
    "CustomResourceDefinition",
    "IngressClass",
    "MutatingWebhookConfiguration",
    "Namespace",
    "Node",
    "PersistentVolume",
    "PriorityClass",
    "RuntimeClass",
    "StorageClass",
    "ValidatingAdmissionPolicy",
    "ValidatingWebhookConfiguration",
];

/// Where a kind's objects live: its plural and whether it is namespaced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// The resource (plural) name, e.g. `daemonsets`.
    pub plural: String,
    /// Namespaced (else cluster-scoped).
    pub namespaced: bool,
}

/// The placement of `kind` from a group version's discovery document (an
/// `APIResourceList`): the top-level resource of that kind.
pub fn placement_in(list: &Value, kind: &str) -> Option<Placement> {
    list["resources"].as_array()?.iter().find_map(|r| {
        let name = r["name"].as_str()?;
        (r["kind"] == kind && !name.contains('/'))
            .then(|| Placement { plural: name.to_string(), namespaced: r["namespaced"].as_bool().unwrap_or(true) })
    })
}

/// kube-core's guess of a kind's plural, and the built-in cluster-scoped
/// kinds above: right for Talos's own manifests, used when discovery does
/// not answer.
pub fn guessed_placement(api_version: &str, kind: &str) -> Placement {
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let ar = ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, kind));
    Placement { plural: ar.plural, namespaced: !CLUSTER_SCOPED.contains(&kind) }
}

/// The discovery document's path for `api_version` (`/api/v1`,
/// `/apis/apps/v1`).
pub fn discovery_path(api_version: &str) -> String {
    match api_version.split_once('/') {
        Some((group, version)) => format!("/apis/{group}/{version}"),
        None => format!("/api/{api_version}"),
    }
}

/// The apply request for `obj` by field manager `manager`, its kind placed
/// by kube-core's guess; `force` takes over fields other managers own (as
/// `upgrade-k8s` does).
pub fn apply_request(obj: &Value, manager: &str, force: bool) -> Result<http::Request<Vec<u8>>, Error> {
    let (api_version, kind, _) = identity(obj)?;
    apply_request_at(obj, &guessed_placement(&api_version, &kind), manager, force)
}

fn identity(obj: &Value) -> Result<(String, String, String), Error> {
    let text = |v: &Value| v.as_str().filter(|s| !s.is_empty()).map(str::to_string);
    let invalid = |what: &str| Error::InvalidObject(format!("the object has no {what}"));
    let api_version = text(&obj["apiVersion"]).ok_or_else(|| invalid("apiVersion"))?;
    let kind = text(&obj["kind"]).ok_or_else(|| invalid("kind"))?;
    let name = text(&obj["metadata"]["name"]).ok_or_else(|| invalid("metadata.name"))?;
    Ok((api_version, kind, name))
}

/// The apply request for `obj` at `placement`.
pub fn apply_request_at(
    obj: &Value,
    placement: &Placement,
    manager: &str,
    force: bool,
) -> Result<http::Request<Vec<u8>>, Error> {
    let (api_version, _, name) = identity(obj)?;
    let base = discovery_path(&api_version);
    let path = if placement.namespaced {
        let ns = obj["metadata"]["namespace"].as_str().filter(|s| !s.is_empty()).unwrap_or("default");
        format!("{base}/namespaces/{ns}/{}", placement.plural)
    } else {
        format!("{base}/{}", placement.plural)
    };
    let mut params = PatchParams::apply(manager);
    if force {
        params = params.force();
    }
    kube_core::Request::new(path).patch(&name, &params, &Patch::Apply(obj)).map_err(Error::Build)
}

/// Placements found by discovery, one document per group version, kept for
/// the objects of one sync.
#[derive(Debug, Default)]
pub struct Discovered(std::collections::HashMap<String, Value>);

impl Client {
    /// Applies `obj` server-side as `manager` (`force`: take fields over),
    /// its kind placed by kube-core's guess; answers the object as the
    /// server now has it.
    pub async fn apply(&self, obj: &Value, manager: &str, force: bool) -> Result<Value, Error> {
        self.send(apply_request(obj, manager, force)?).await
    }

    /// [`Client::apply`] with the kind placed by the API server's discovery
    /// (custom resources, kinds the guess does not know), cached in `seen`;
    /// the guess where discovery has no answer.
    pub async fn apply_discovered(
        &self,
        seen: &mut Discovered,
        obj: &Value,
        manager: &str,
        force: bool,
    ) -> Result<Value, Error> {
        let (api_version, kind, _) = identity(obj)?;
        if !seen.0.contains_key(&api_version) {
            let req = http::Request::get(discovery_path(&api_version))
                .body(Vec::new())
                .map_err(|e| Error::Build(kube_core::request::Error::BuildRequest(e)))?;
            let doc = match self.send::<Value>(req).await {
                Ok(d) => d,
                Err(e) if e.is_not_found() => Value::Null,
                Err(e) => return Err(e),
            };
            seen.0.insert(api_version.clone(), doc);
        }
        let placement = seen
            .0
            .get(&api_version)
            .and_then(|d| placement_in(d, &kind))
            .unwrap_or_else(|| guessed_placement(&api_version, &kind));
        self.send(apply_request_at(obj, &placement, manager, force)?).await
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// Paths, query and media type as kube-apiserver expects an apply.
    /// Discovery places a kind the guess gets wrong (a cluster-scoped
    /// custom resource with an irregular plural).
    #[test]
    fn discovery_places_kinds() {
        let list = json!({"kind": "APIResourceList", "groupVersion": "example.com/v1", "resources": [
            {"name": "octopodes", "kind": "Octopus", "namespaced": false},
            {"name": "octopodes/status", "kind": "Octopus", "namespaced": false}]});
        let p = placement_in(&list, "Octopus").unwrap();
        assert_eq!(p, Placement { plural: "octopodes".into(), namespaced: false });
        let obj = json!({"apiVersion": "example.com/v1", "kind": "Octopus", "metadata": {"name": "paul"}});
        let r = apply_request_at(&obj, &p, "talos", true).unwrap();
        assert!(r.uri().to_string().starts_with("/apis/example.com/v1/octopodes/paul?"), "{}", r.uri());
        assert_eq!(guessed_placement("example.com/v1", "Octopus").plural, "octopuses");
        assert_eq!(discovery_path("v1"), "/api/v1");
    }

    #[test]
    fn requests_go_to_the_object_path_with_the_apply_media_type() {
        let ds = json!({"apiVersion": "apps/v1", "kind": "DaemonSet",
            "metadata": {"name": "kube-proxy", "namespace": "kube-system"}});
        let r = apply_request(&ds, "talos", true).unwrap();
        assert_eq!(r.method(), http::Method::PATCH);
        assert_eq!(
            r.uri().to_string(),
            "/apis/apps/v1/namespaces/kube-system/daemonsets/kube-proxy?&force=true&fieldManager=talos"
        );
        assert_eq!(r.headers()[http::header::CONTENT_TYPE], "application/apply-patch+yaml");
        let crb = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": "kube-proxy"}});
        let r = apply_request(&crb, "talos", false).unwrap();
        assert_eq!(
            r.uri().to_string(),
            "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/kube-proxy?&fieldManager=talos"
        );
        let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "kube-dns"}});
        let r = apply_request(&svc, "talos", true).unwrap();
        assert!(r.uri().to_string().starts_with("/api/v1/namespaces/default/services/kube-dns?"), "{}", r.uri());
        let policy = json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "x", "namespace": "a"}});
        assert!(apply_request(&policy, "talos", true).unwrap().uri().path().ends_with("/poddisruptionbudgets/x"));
        let err = apply_request(&json!({"kind": "Service"}), "talos", true).unwrap_err();
        assert_eq!(err.to_string(), "the object to apply is not valid: the object has no apiVersion");
    }
}
