//! COSI `Get` of what health gates and Kubernetes upgrades read
//! (`talos::api` status.rs has the sources): the machine's stage and
//! readiness, and the version of each control-plane component's rendered
//! config, the same number its static pod carries as
//! `talos.dev/config-version` (`kube/model.rs` `StaticPod`).
//!
//! Stage: maintenance, booting, running as the phase says; upgrading,
//! resetting or rebooting while such a sequence runs (`State::busy`);
//! ready when running with its services up. Unmet conditions are not
//! modelled (always empty): a simulator simplification.

use tonic::Status;

use super::node::Node;
use super::{Phase, kube};
use crate::talos::api::MachineStage;
use crate::talos::api::proto::cosi;

/// The component whose config has this COSI type, if any.
pub fn component_of(ty: &str) -> Option<&'static str> {
    kube::model::COMPONENTS.into_iter().find(|c| crate::talos::api::component_config_type(c) == Some(ty))
}

/// The stage and readiness of `node` now.
pub fn stage(node: &Node) -> (MachineStage, bool) {
    let st = node.state();
    let stage = match (st.phase, st.busy) {
        (Phase::Maintenance, _) => MachineStage::Maintenance,
        (Phase::Installing, _) => MachineStage::Installing,
        (_, Some(busy)) => busy,
        (Phase::Booting, _) => MachineStage::Booting,
        (Phase::Running, _) => MachineStage::Running,
        (Phase::Rebooting | Phase::Off, _) => MachineStage::Rebooting,
    };
    (stage, stage == MachineStage::Running && st.cri_up)
}

fn resource(namespace: String, ty: String, id: String, version: u64, spec: cosi::Spec) -> cosi::GetResponse {
    cosi::GetResponse {
        resource: Some(cosi::Resource {
            metadata: Some(cosi::Metadata {
                namespace,
                r#type: ty,
                id,
                version: version.to_string(),
                phase: "running".to_string(),
                ..Default::default()
            }),
            spec: Some(spec),
        }),
    }
}

fn not_found(r: &cosi::GetRequest) -> Status {
    Status::not_found(format!("resource {}({}/{}@undefined) doesn't exist", r.r#type, r.namespace, r.id))
}

/// The COSI type of the node's Kubernetes name.
pub const NODENAMES: &str = "Nodenames.kubernetes.talos.dev";

/// The COSI type of the kubelet's spec.
pub const KUBELET_SPECS: &str = "KubeletSpecs.kubernetes.talos.dev";

/// The kubelet spec of a configured node: the image of its active
/// configuration, the version going up whenever that image changes.
fn kubelet_spec(node: &Node, r: cosi::GetRequest) -> Result<cosi::GetResponse, Status> {
    if r.namespace != "k8s" || r.id != "kubelet" {
        return Err(not_found(&r));
    }
    let hostname = node.hostname();
    let mut st = node.state();
    let Some(image) = st.config.as_ref().filter(|c| c.complete).map(|c| c.kube.kubelet_image.clone()) else {
        return Err(not_found(&r));
    };
    let version = match &mut st.kubelet_spec {
        Some((seen, v)) if *seen == image => *v,
        Some((seen, v)) => {
            *seen = image.clone();
            *v += 1;
            *v
        }
        none => {
            *none = Some((image.clone(), 1));
            1
        }
    };
    drop(st);
    let spec = cosi::KubeletSpecSpec { image: image.clone(), expected_nodename: hostname.clone() };
    let yaml = format!("image: {image}\nexpectedNodename: {hostname}\n");
    let spec = cosi::Spec { proto_spec: prost::Message::encode_to_vec(&spec), yaml_spec: yaml };
    Ok(resource(r.namespace, r.r#type, r.id, version, spec))
}

/// Answers a COSI `Get` of a MachineStatus, a component config, the
/// kubelet spec or the node name.
pub fn get(node: &Node, maintenance: bool, r: cosi::GetRequest) -> Result<cosi::GetResponse, Status> {
    if r.r#type == NODENAMES {
        if maintenance {
            return Err(Status::permission_denied("not authorized"));
        }
        let configured = node.state().config.as_ref().is_some_and(|c| c.complete);
        if r.namespace != "k8s" || r.id != "nodename" || !configured {
            return Err(not_found(&r));
        }
        let spec = cosi::NodenameSpec {
            nodename: node.hostname(),
            hostname_version: "1".to_string(),
            skip_node_registration: false,
        };
        let yaml = format!("nodename: {}\nhostnameVersion: \"1\"\nskipNodeRegistration: false\n", spec.nodename);
        let spec = cosi::Spec { proto_spec: prost::Message::encode_to_vec(&spec), yaml_spec: yaml };
        return Ok(resource(r.namespace, r.r#type, r.id, 1, spec));
    }
    if r.r#type == KUBELET_SPECS {
        if maintenance {
            return Err(Status::permission_denied("not authorized"));
        }
        return kubelet_spec(node, r);
    }
    if let Some(component) = component_of(&r.r#type) {
        if maintenance {
            return Err(Status::permission_denied("not authorized"));
        }
        if r.namespace != "controlplane" || r.id != component {
            return Err(not_found(&r));
        }
        let shared = node.shared.upgrade().ok_or_else(|| Status::unavailable("simulator stopped"))?;
        let key = (node.hostname(), component);
        let Some(sp) = kube::synced(&shared, |cluster, _, _| cluster.static_pods.get(&key).cloned()) else {
            return Err(not_found(&r));
        };
        let yaml = format!("image: {}\n", sp.image);
        let version = sp.version;
        return Ok(resource(
            r.namespace,
            r.r#type,
            r.id,
            version,
            cosi::Spec { proto_spec: Vec::new(), yaml_spec: yaml },
        ));
    }
    if r.namespace != "runtime" || r.id != "machine" {
        return Err(not_found(&r));
    }
    let (stage, ready) = stage(node);
    let spec = cosi::MachineStatusSpec {
        stage: stage.as_i32(),
        status: Some(cosi::MachineStatusStatus { ready, unmet_conditions: Vec::new() }),
    };
    let yaml = format!("stage: {}\nstatus:\n    ready: {ready}\n    unmetConditions: []\n", stage.name());
    let spec = cosi::Spec { proto_spec: prost::Message::encode_to_vec(&spec), yaml_spec: yaml };
    Ok(resource(r.namespace, r.r#type, r.id, 1, spec))
}

/// Answers a COSI `List`: the kubelet's static pod statuses (namespace
/// `k8s`, id `kube-system/<pod>`, the pod's status as a Struct; siderolabs/
/// talos `internal/app/machined/pkg/controllers/k8s/kubelet_static_pod.go`)
/// and the control-plane component configs (namespace `controlplane`, as
/// `get` answers them one by one; talosctl health lists them). Statuses
/// exist once the lab's Kubernetes API has registered the node (the real
/// kubelet runs them before): a simulator simplification.
pub fn list(node: &Node, maintenance: bool, r: &cosi::ListRequest) -> Result<Vec<cosi::Resource>, Status> {
    if maintenance {
        return Err(Status::permission_denied("not authorized"));
    }
    if let Some(component) = component_of(&r.r#type) {
        let one = cosi::GetRequest {
            namespace: r.namespace.clone(),
            r#type: r.r#type.clone(),
            id: component.to_string(),
            options: None,
        };
        return match get(node, false, one) {
            Ok(found) => Ok(found.resource.into_iter().collect()),
            Err(s) if s.code() == tonic::Code::NotFound => Ok(Vec::new()),
            Err(s) => Err(s),
        };
    }
    if r.r#type != crate::talos::api::manifests::STATIC_POD_STATUSES {
        return Err(Status::permission_denied(format!("resource type {:?} is not supported", r.r#type)));
    }
    if r.namespace != "k8s" {
        return Ok(Vec::new());
    }
    let shared = node.shared.upgrade().ok_or_else(|| Status::unavailable("simulator stopped"))?;
    let hostname = node.hostname();
    let pods = kube::synced(&shared, |cluster, machines, now| {
        let view = kube::render::View { cluster, machines, now };
        view.pods()
            .iter()
            .filter(|p| p.node.as_deref() == Some(hostname.as_str()) && p.owner == kube::render::Owner::Node)
            .map(|p| (format!("{}/{}", p.namespace, p.name), view.pod(p)["status"].clone()))
            .collect::<Vec<_>>()
    });
    Ok(pods
        .into_iter()
        .map(|(id, status)| {
            let pod_status = status.as_object().map(crate::talos::api::manifests::to_struct);
            let spec = cosi::StaticPodStatusSpec { pod_status };
            let spec = cosi::Spec { proto_spec: prost::Message::encode_to_vec(&spec), yaml_spec: String::new() };
            let mut res = resource(r.namespace.clone(), r.r#type.clone(), id, 1, spec);
            res.resource.take().unwrap_or_default()
        })
        .collect())
}
