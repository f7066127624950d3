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

/// The apply request for `obj` by field manager `manager`; `force` takes
/// over fields other managers own (as `upgrade-k8s` does).
pub fn apply_request(obj: &Value, manager: &str, force: bool) -> Result<http::Request<Vec<u8>>, Error> {
    let text = |v: &Value| v.as_str().filter(|s| !s.is_empty()).map(str::to_string);
    let invalid = |what: &str| Error::InvalidObject(format!("the object has no {what}"));
    let api_version = text(&obj["apiVersion"]).ok_or_else(|| invalid("apiVersion"))?;
    let kind = text(&obj["kind"]).ok_or_else(|| invalid("kind"))?;
    let name = text(&obj["metadata"]["name"]).ok_or_else(|| invalid("metadata.name"))?;
    let (group, version) = api_version.split_once('/').unwrap_or(("", &api_version));
    let ar = ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, &kind));
    let namespace = if CLUSTER_SCOPED.contains(&kind.as_str()) {
        None
    } else {
        Some(text(&obj["metadata"]["namespace"]).unwrap_or_else(|| "default".to_string()))
    };
    let base = if group.is_empty() { format!("/api/{version}") } else { format!("/apis/{group}/{version}") };
    let path = match &namespace {
        Some(ns) => format!("{base}/namespaces/{ns}/{}", ar.plural),
        None => format!("{base}/{}", ar.plural),
    };
    let mut params = PatchParams::apply(manager);
    if force {
        params = params.force();
    }
    kube_core::Request::new(path).patch(&name, &params, &Patch::Apply(obj)).map_err(Error::Build)
}

impl Client {
    /// Applies `obj` server-side as `manager` (`force`: take fields over);
    /// answers the object as the server now has it.
    pub async fn apply(&self, obj: &Value, manager: &str, force: bool) -> Result<Value, Error> {
        self.send(apply_request(obj, manager, force)?).await
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// Paths, query and media type as kube-apiserver expects an apply.
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
