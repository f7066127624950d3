//! COSI `State/List` reads: the kubelet's static pod statuses, and the
//! bootstrap manifests a control plane renders (`State/List` of
//! `Manifests.kubernetes.talos.dev` in namespace `controlplane`): what
//! `talosctl upgrade-k8s` syncs last (siderolabs/go-kubernetes
//! `kubernetes/manifests/get.go` lists them from one control plane and
//! flattens every item's object), and how their objects travel
//! (`google.protobuf.Struct`, `api/resource/definitions/k8s/k8s.proto`).

use prost_types::value::Kind;
use serde_json::{Map, Number, Value};

use super::client::NodeClient;
use super::proto::cosi;
use super::proto::cosi::state_client::StateClient;
use super::{ApiError, MAX_MESSAGE};

/// The COSI type of a bootstrap manifest.
pub const MANIFESTS: &str = "Manifests.kubernetes.talos.dev";

/// The COSI type of the kubelet's status of a static pod.
pub const STATIC_POD_STATUSES: &str = "StaticPodStatuses.kubernetes.talos.dev";

/// The kubelet's status of one static pod, as Talos reflects it.
#[derive(Debug, Clone, PartialEq)]
pub struct StaticPodStatus {
    /// `kube-system/kube-apiserver-<node>`.
    pub id: String,
    /// The pod's phase (`Running`).
    pub phase: String,
    /// Its Ready condition is True.
    pub ready: bool,
}

/// One bootstrap manifest (`10-kube-proxy`, `11-core-dns`, …).
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    /// Its id; the list comes sorted by id, the order Talos applies in.
    pub id: String,
    /// Its Kubernetes objects, in order.
    pub objects: Vec<Value>,
}

/// A JSON value as a protobuf `Value` (numbers become doubles, as
/// `structpb` makes them).
pub fn to_proto(v: &Value) -> prost_types::Value {
    let kind = match v {
        Value::Null => Kind::NullValue(0),
        Value::Bool(b) => Kind::BoolValue(*b),
        Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or_default()),
        Value::String(s) => Kind::StringValue(s.clone()),
        Value::Array(a) => Kind::ListValue(prost_types::ListValue { values: a.iter().map(to_proto).collect() }),
        Value::Object(m) => Kind::StructValue(to_struct(m)),
    };
    prost_types::Value { kind: Some(kind) }
}

/// A JSON object as a protobuf `Struct`.
pub fn to_struct(m: &Map<String, Value>) -> prost_types::Struct {
    prost_types::Struct { fields: m.iter().map(|(k, v)| (k.clone(), to_proto(v))).collect() }
}

/// A protobuf `Value` as JSON: a whole double becomes an integer again
/// (Kubernetes objects carry ports and replicas as integers).
pub fn from_proto(v: &prost_types::Value) -> Value {
    match &v.kind {
        None | Some(Kind::NullValue(_)) => Value::Null,
        Some(Kind::BoolValue(b)) => Value::Bool(*b),
        Some(Kind::NumberValue(n)) if n.fract() == 0.0 && n.abs() < 9.0e15 => Value::Number(Number::from(*n as i64)),
        Some(Kind::NumberValue(n)) => Number::from_f64(*n).map_or(Value::Null, Value::Number),
        Some(Kind::StringValue(s)) => Value::String(s.clone()),
        Some(Kind::ListValue(l)) => Value::Array(l.values.iter().map(from_proto).collect()),
        Some(Kind::StructValue(s)) => from_struct(s),
    }
}

/// A protobuf `Struct` as a JSON object.
pub fn from_struct(s: &prost_types::Struct) -> Value {
    Value::Object(s.fields.iter().map(|(k, v)| (k.clone(), from_proto(v))).collect())
}

impl NodeClient {
    /// COSI `State/List` of `ty` in `namespace`: every resource, as sent.
    async fn cosi_list(&self, what: &'static str, namespace: &str, ty: &str) -> Result<Vec<cosi::Resource>, ApiError> {
        let msg = cosi::ListRequest { namespace: namespace.to_string(), r#type: ty.to_string(), options: None };
        let mut client = StateClient::new(self.channel()).max_decoding_message_size(MAX_MESSAGE);
        let req = self.request(msg);
        let fut = async move {
            let mut stream = client.list(req).await?.into_inner();
            let mut out = Vec::new();
            while let Some(item) = stream.message().await? {
                out.extend(item.resource);
            }
            Ok(tonic::Response::new(out))
        };
        self.call(what, fut).await
    }

    /// The kubelet's status of each static pod on this node, sorted by id
    /// (talosctl health's "all control plane static pods are running": per
    /// control plane an id with the prefix `kube-system/kube-apiserver` and
    /// so on; siderolabs/talos `pkg/cluster/check/kubernetes.go`
    /// `K8sControlPlaneStaticPods`).
    pub async fn static_pod_statuses(&self) -> Result<Vec<StaticPodStatus>, ApiError> {
        let what = "StaticPodStatus";
        let mut out = Vec::new();
        for r in self.cosi_list(what, "k8s", STATIC_POD_STATUSES).await? {
            let id = r.metadata.map(|m| m.id).unwrap_or_default();
            let spec = r.spec.filter(|s| !s.proto_spec.is_empty()).ok_or_else(|| ApiError::Protocol {
                at: self.at(what),
                message: format!("static pod status {id} has no spec"),
            })?;
            let s = <cosi::StaticPodStatusSpec as prost::Message>::decode(spec.proto_spec.as_slice()).map_err(|e| {
                ApiError::Protocol { at: self.at(what), message: format!("StaticPodStatusSpec {id}: {e}") }
            })?;
            let status = s.pod_status.as_ref().map(from_struct).unwrap_or_default();
            let ready = status["conditions"]
                .as_array()
                .is_some_and(|c| c.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"));
            let phase = status["phase"].as_str().unwrap_or_default().to_string();
            out.push(StaticPodStatus { id, phase, ready });
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    /// The bootstrap manifests this control plane renders, sorted by id
    /// (none on a worker). Sensitive in Talos (they hold the bootstrap
    /// token): `os:admin` only.
    pub async fn manifests(&self) -> Result<Vec<Manifest>, ApiError> {
        let what = "Manifests";
        let mut out = Vec::new();
        for r in self.cosi_list(what, "controlplane", MANIFESTS).await? {
            let id = r.metadata.map(|m| m.id).unwrap_or_default();
            let spec = r.spec.filter(|s| !s.proto_spec.is_empty()).ok_or_else(|| ApiError::Protocol {
                at: self.at(what),
                message: format!("manifest {id} has no spec"),
            })?;
            let m = <cosi::ManifestSpec as prost::Message>::decode(spec.proto_spec.as_slice())
                .map_err(|e| ApiError::Protocol { at: self.at(what), message: format!("ManifestSpec {id}: {e}") })?;
            let objects = m.items.iter().filter_map(|i| i.object.as_ref()).map(from_struct).collect();
            out.push(Manifest { id, objects });
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Objects survive the Struct round trip, integers included.
    #[test]
    fn objects_round_trip_through_struct() {
        let v = serde_json::json!({"apiVersion": "v1", "kind": "Service",
            "spec": {"ports": [{"port": 53, "protocol": "UDP"}], "clusterIP": "10.96.0.10", "x": 0.5,
                "ok": true, "none": null}});
        let Value::Object(m) = &v else { unreachable!() };
        assert_eq!(from_struct(&to_struct(m)), v);
    }
}
