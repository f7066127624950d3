//! The bootstrap manifests a control plane renders (COSI `State/List` of
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
    /// The bootstrap manifests this control plane renders, sorted by id
    /// (none on a worker). Sensitive in Talos (they hold the bootstrap
    /// token): `os:admin` only.
    pub async fn manifests(&self) -> Result<Vec<Manifest>, ApiError> {
        let what = "Manifests";
        let msg =
            cosi::ListRequest { namespace: "controlplane".to_string(), r#type: MANIFESTS.to_string(), options: None };
        let mut client = StateClient::new(self.channel()).max_decoding_message_size(MAX_MESSAGE);
        let req = self.request(msg);
        let fut = async move {
            let mut stream = client.list(req).await?.into_inner();
            let mut out = Vec::new();
            while let Some(item) = stream.message().await? {
                out.push(item);
            }
            Ok(tonic::Response::new(out))
        };
        let items = self.call(what, fut).await?;
        let mut out = Vec::new();
        for r in items.into_iter().filter_map(|i| i.resource) {
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
