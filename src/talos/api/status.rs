//! What health gates and a Kubernetes upgrade read over COSI `State/Get`
//! (shared/specs/talos/day2.md): the machine's stage and readiness
//! (`MachineStatuses.runtime.talos.dev` `runtime/machine`) and the version
//! of a control-plane component's rendered config
//! (`APIServerConfigs.kubernetes.talos.dev` and its siblings in namespace
//! `controlplane`), which the component's static pod carries as
//! `talos.dev/config-version` once it runs that config (siderolabs/talos
//! `control_plane_static_pod.go`; talosctl `upgrade-k8s` waits for it), and
//! the kubelet's spec (`KubeletSpecs.kubernetes.talos.dev` `k8s/kubelet`:
//! the image the node runs the kubelet from).

use super::client::NodeClient;
use super::connect::MAX_MESSAGE;
use super::error::ApiError;
use super::proto::cosi::{self, state_client::StateClient};

/// The machine's stage (talos `runtime.MachineStage`, same numbers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MachineStage {
    /// 0.
    Unknown,
    /// 1: booting.
    Booting,
    /// 2: installing.
    Installing,
    /// 3: maintenance mode.
    Maintenance,
    /// 4: running.
    Running,
    /// 5: rebooting.
    Rebooting,
    /// 6: shutting down.
    ShuttingDown,
    /// 7: resetting.
    Resetting,
    /// 8: upgrading.
    Upgrading,
}

impl MachineStage {
    /// From the wire number (unknown numbers are `Unknown`).
    pub fn from_i32(n: i32) -> MachineStage {
        use MachineStage::*;
        [Unknown, Booting, Installing, Maintenance, Running, Rebooting, ShuttingDown, Resetting, Upgrading]
            .get(usize::try_from(n).unwrap_or(0))
            .copied()
            .unwrap_or(Unknown)
    }

    /// The wire number.
    pub fn as_i32(self) -> i32 {
        self as i32
    }

    /// As talosctl prints it (`running`, `shutting down`).
    pub fn name(self) -> &'static str {
        use MachineStage::*;
        match self {
            Unknown => "unknown",
            Booting => "booting",
            Installing => "installing",
            Maintenance => "maintenance",
            Running => "running",
            Rebooting => "rebooting",
            ShuttingDown => "shutting down",
            Resetting => "resetting",
            Upgrading => "upgrading",
        }
    }
}

/// A node's `MachineStatus`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MachineStatus {
    /// Its stage.
    pub stage: MachineStage,
    /// Ready at that stage.
    pub ready: bool,
    /// What keeps it from being ready: (condition, reason).
    pub unmet: Vec<(String, String)>,
}

/// A node's `KubeletSpec`: what its kubelet runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubeletSpec {
    /// The kubelet image (`ghcr.io/siderolabs/kubelet:v1.33.1`).
    pub image: String,
    /// The Node name the kubelet registers (may be empty).
    pub expected_nodename: String,
    /// The resource version (goes up when the spec changes).
    pub version: u64,
}

/// The COSI type of a control-plane component's config, by component.
pub fn component_config_type(component: &str) -> Option<&'static str> {
    match component {
        "kube-apiserver" => Some("APIServerConfigs.kubernetes.talos.dev"),
        "kube-controller-manager" => Some("ControllerManagerConfigs.kubernetes.talos.dev"),
        "kube-scheduler" => Some("SchedulerConfigs.kubernetes.talos.dev"),
        _ => None,
    }
}

impl NodeClient {
    async fn cosi_get(
        &self,
        what: &'static str,
        namespace: &str,
        ty: &str,
        id: &str,
    ) -> Result<Option<cosi::Resource>, ApiError> {
        let mut client = StateClient::new(self.channel()).max_decoding_message_size(MAX_MESSAGE);
        let msg = cosi::GetRequest {
            namespace: namespace.to_string(),
            r#type: ty.to_string(),
            id: id.to_string(),
            options: None,
        };
        match self.call(what, client.get(self.request(msg))).await {
            Ok(r) => r.resource.map(Some).ok_or_else(|| ApiError::Protocol {
                at: self.at(what),
                message: format!("the reply holds no {ty} resource"),
            }),
            Err(ApiError::Status { code: tonic::Code::NotFound, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The node's stage and readiness (COSI `runtime/machine`).
    pub async fn machine_status(&self) -> Result<MachineStatus, ApiError> {
        let what = "MachineStatus";
        let r = self.cosi_get(what, "runtime", "MachineStatuses.runtime.talos.dev", "machine").await?;
        let spec = r.and_then(|r| r.spec).filter(|s| !s.proto_spec.is_empty()).ok_or_else(|| ApiError::Protocol {
            at: self.at(what),
            message: "the node has no machine status".to_string(),
        })?;
        let s = <cosi::MachineStatusSpec as prost::Message>::decode(spec.proto_spec.as_slice())
            .map_err(|e| ApiError::Protocol { at: self.at(what), message: format!("MachineStatusSpec: {e}") })?;
        let status = s.status.unwrap_or_default();
        Ok(MachineStatus {
            stage: MachineStage::from_i32(s.stage),
            ready: status.ready,
            unmet: status.unmet_conditions.into_iter().map(|c| (c.name, c.reason)).collect(),
        })
    }

    /// The node's kubelet spec; None before Talos rendered one (no
    /// configuration yet).
    pub async fn kubelet_spec(&self) -> Result<Option<KubeletSpec>, ApiError> {
        let what = "KubeletSpec";
        let Some(r) = self.cosi_get(what, "k8s", "KubeletSpecs.kubernetes.talos.dev", "kubelet").await? else {
            return Ok(None);
        };
        let version = r.metadata.map(|m| m.version).unwrap_or_default();
        let spec = r.spec.filter(|s| !s.proto_spec.is_empty()).ok_or_else(|| ApiError::Protocol {
            at: self.at(what),
            message: "the KubeletSpec has no spec".to_string(),
        })?;
        let s = <cosi::KubeletSpecSpec as prost::Message>::decode(spec.proto_spec.as_slice())
            .map_err(|e| ApiError::Protocol { at: self.at(what), message: format!("KubeletSpecSpec: {e}") })?;
        Ok(Some(KubeletSpec {
            image: s.image,
            expected_nodename: s.expected_nodename,
            version: version.parse().map_err(|_| ApiError::Protocol {
                at: self.at(what),
                message: format!("KubeletSpec has version {version:?}, not a number"),
            })?,
        }))
    }

    /// The version of `component`'s rendered config on this control plane
    /// (`kube-apiserver`, `kube-controller-manager`, `kube-scheduler`);
    /// None where there is none (a worker, or not rendered yet).
    pub async fn component_config_version(&self, component: &str) -> Result<Option<u64>, ApiError> {
        let what = "ComponentConfig";
        let ty = component_config_type(component).ok_or_else(|| ApiError::Protocol {
            at: self.at(what),
            message: format!("{component:?} is not a control-plane component"),
        })?;
        let Some(r) = self.cosi_get(what, "controlplane", ty, component).await? else { return Ok(None) };
        let version = r.metadata.map(|m| m.version).unwrap_or_default();
        version.parse().map(Some).map_err(|_| ApiError::Protocol {
            at: self.at(what),
            message: format!("{ty} has version {version:?}, not a number"),
        })
    }

    /// The node's Kubernetes Node name (COSI `k8s/nodename`), what talosctl
    /// cordons and drains by (`cmd/talosctl/pkg/talos/nodedrain`
    /// `GetKubernetesNodeName`); None before the node is configured.
    pub async fn nodename(&self) -> Result<Option<String>, ApiError> {
        let what = "Nodename";
        let Some(r) = self.cosi_get(what, "k8s", "Nodenames.kubernetes.talos.dev", "nodename").await? else {
            return Ok(None);
        };
        let spec = r
            .spec
            .filter(|s| !s.proto_spec.is_empty())
            .ok_or_else(|| ApiError::Protocol { at: self.at(what), message: "the Nodename has no spec".to_string() })?;
        let s = <cosi::NodenameSpec as prost::Message>::decode(spec.proto_spec.as_slice())
            .map_err(|e| ApiError::Protocol { at: self.at(what), message: format!("NodenameSpec: {e}") })?;
        Ok(Some(s.nodename).filter(|n| !n.is_empty()))
    }
}
