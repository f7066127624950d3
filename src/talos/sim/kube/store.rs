//! Objects made or changed by server-side apply (`api/ssa.rs`): the kinds
//! Talos's bootstrap manifests hold that the lab does not model
//! (ServiceAccounts, ConfigMaps, Secrets, Services, RBAC), and the applied
//! form of the ones it does (the kube-proxy DaemonSet, the CoreDNS
//! Deployment), whose images the modelled pods then run.
//!
//! Bootstrap: the first time the API serves, kube-proxy runs the image of
//! the bootstrapping control plane's configuration, and it stays there
//! until someone applies the DaemonSet again (as `upgrade-k8s` does when it
//! syncs the manifests): a configuration change alone does not roll
//! kube-proxy (siderolabs/talos `internal/app/machined/pkg/controllers/k8s/
//! manifest_apply.go` applies without force, `pkg/cluster/kubernetes/
//! talos_managed.go` syncs the manifests as the last step of an upgrade).

use std::collections::BTreeMap;
use std::time::SystemTime;

use serde_json::Value;

use super::apply::Managed;
use super::model::{Cluster, WORKLOADS};

/// Where an object lives.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ObjKey {
    /// API group (`""` for core).
    pub group: String,
    /// Resource (plural: `configmaps`).
    pub resource: String,
    /// Namespace (`""` when cluster-scoped).
    pub namespace: String,
    /// Name.
    pub name: String,
}

impl ObjKey {
    /// A key.
    pub fn new(group: &str, resource: &str, namespace: &str, name: &str) -> ObjKey {
        ObjKey {
            group: group.to_string(),
            resource: resource.to_string(),
            namespace: namespace.to_string(),
            name: name.to_string(),
        }
    }
}

/// An applied object.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    /// The object as applied and merged (no server-set metadata, no status).
    pub obj: Value,
    /// Its field managers.
    pub managers: BTreeMap<String, Managed>,
    /// `metadata.uid`.
    pub uid: String,
    /// `metadata.creationTimestamp`.
    pub created: SystemTime,
    /// `metadata.resourceVersion`.
    pub rv: u64,
    /// `metadata.generation` (goes up when `spec` changes).
    pub generation: u64,
}

/// The image of the container named `name` (else of the first container)
/// in a pod template's object.
pub fn container_image(obj: &Value, name: &str) -> Option<String> {
    let containers = obj["spec"]["template"]["spec"]["containers"].as_array()?;
    containers
        .iter()
        .find(|c| c["name"] == name)
        .or(containers.first())
        .and_then(|c| c["image"].as_str())
        .map(str::to_string)
}

impl Cluster {
    /// The applied object at `key`, if any.
    pub fn stored(&self, key: &ObjKey) -> Option<&Stored> {
        self.objects.get(key)
    }

    /// The image the kube-proxy DaemonSet runs: as last applied, else as
    /// at bootstrap, else `fallback` (the node's configuration).
    pub fn proxy_image(&self, fallback: &str) -> String {
        self.stored(&ObjKey::new("apps", "daemonsets", "kube-system", "kube-proxy"))
            .and_then(|s| container_image(&s.obj, "kube-proxy"))
            .or_else(|| self.boot_proxy_image.clone())
            .unwrap_or_else(|| fallback.to_string())
    }

    /// The image the pods of [`WORKLOADS`]`[i]` run: as last applied, else
    /// as at bootstrap (CoreDNS: the configuration's `cluster.coreDNS.image`
    /// when set), else the workload's own.
    pub fn workload_image(&self, i: usize) -> String {
        let w = &WORKLOADS[i];
        self.stored(&ObjKey::new("apps", "deployments", w.namespace, w.name))
            .and_then(|s| container_image(&s.obj, w.name))
            .or_else(|| (w.name == "coredns").then(|| self.boot_coredns_image.clone()).flatten())
            .unwrap_or_else(|| w.image.to_string())
    }
}
