//! The fields of the Kubernetes objects the provider reads, and nothing
//! else: decoding whole `k8s-openapi` objects (a Pod's spec alone is
//! dozens of nested types) cost 0.6 MB of the release binary for fields
//! no check looks at. Paths still come from the `k8s-openapi` types
//! ([`Kind`]), so a typo cannot make a wrong endpoint; unknown fields are
//! ignored, absent ones default, as the API allows.

use std::collections::BTreeMap;

use serde::Deserialize;

/// Object metadata the checks read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Meta {
    /// `metadata.name`.
    pub name: String,
    /// `metadata.labels`.
    pub labels: BTreeMap<String, String>,
    /// `metadata.deletionTimestamp`: the object is going away.
    pub deletion_timestamp: Option<String>,
}

/// A status condition (`type`, `status`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Condition {
    /// `type`: `Ready`, ...
    #[serde(rename = "type")]
    pub kind: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
}

/// A Node.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Node {
    /// Metadata.
    pub metadata: Meta,
    /// Spec.
    pub spec: NodeSpec,
    /// Status.
    pub status: NodeStatus,
}

/// `Node.spec`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct NodeSpec {
    /// Cordoned.
    pub unschedulable: Option<bool>,
}

/// `Node.status`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct NodeStatus {
    /// Conditions (`Ready`).
    pub conditions: Vec<Condition>,
    /// Addresses (`InternalIP`, `ExternalIP`, `Hostname`).
    pub addresses: Vec<NodeAddress>,
    /// What the kubelet reports of itself.
    pub node_info: NodeInfo,
}

/// One `Node.status.addresses` entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct NodeAddress {
    /// `InternalIP`, ...
    #[serde(rename = "type")]
    pub kind: String,
    /// The address.
    pub address: String,
}

/// `Node.status.nodeInfo`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct NodeInfo {
    /// `v1.33.1`.
    pub kubelet_version: String,
}

/// A Pod.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Pod {
    /// Metadata.
    pub metadata: Meta,
    /// Status.
    pub status: PodStatus,
}

/// `Pod.status`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct PodStatus {
    /// `Running`, `Failed`, ...
    pub phase: Option<String>,
    /// Conditions (`Ready`).
    pub conditions: Vec<Condition>,
}

/// A DaemonSet: how many pods it wants.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct DaemonSet {
    /// Metadata.
    pub metadata: Meta,
    /// Status.
    pub status: DaemonSetStatus,
}

/// `DaemonSet.status`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct DaemonSetStatus {
    /// Nodes that should run its pod.
    pub desired_number_scheduled: i32,
}

/// A Deployment: how many replicas it wants.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Deployment {
    /// Metadata.
    pub metadata: Meta,
    /// Spec.
    pub spec: DeploymentSpec,
}

/// `Deployment.spec`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct DeploymentSpec {
    /// Desired replicas (the API's default is 1).
    pub replicas: Option<i32>,
}

/// A list answer.
#[derive(Debug, Clone, Deserialize)]
pub struct List<T> {
    /// The objects.
    #[serde(default = "Vec::new")]
    pub items: Vec<T>,
}

/// A view and the `k8s-openapi` type whose API path it is read from.
pub trait Kind: serde::de::DeserializeOwned {
    /// The API type (path, group, version).
    type Api: kube_core::Resource<DynamicType = ()>;
}

impl Kind for Node {
    type Api = k8s_openapi::api::core::v1::Node;
}
impl Kind for Pod {
    type Api = k8s_openapi::api::core::v1::Pod;
}
impl Kind for DaemonSet {
    type Api = k8s_openapi::api::apps::v1::DaemonSet;
}
impl Kind for Deployment {
    type Api = k8s_openapi::api::apps::v1::Deployment;
}

impl Condition {
    /// The condition `kind` of `conditions` is `True` (None: not there).
    pub fn of(conditions: &[Condition], kind: &str) -> Option<bool> {
        conditions.iter().find(|c| c.kind == kind).map(|c| c.status == "True")
    }
}
