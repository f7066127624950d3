//! The simulated apid: `machine.MachineService` and `storage.StorageService`
//! handlers with routing (`node` header, behaviour.md §3), the two
//! maintenance implementations (api.md §4) and RBAC by role (api.md §3).

use std::sync::Arc;

use tokio_stream::StreamExt as _;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use super::boot::{Image, ImageFault};
use super::listener::{ConnInfo, SimConn};
use super::node::Node;
use super::{Phase, Platform, config, kubeconfig};
use crate::talos::api::proto::common;
use crate::talos::api::proto::cosi;
use crate::talos::api::proto::cosi::state_server::{State, StateServer};
use crate::talos::api::proto::machine::apply_configuration_request::Mode;
use crate::talos::api::proto::machine::image_service_server::ImageServiceServer;
use crate::talos::api::proto::machine::lifecycle_service_server::LifecycleServiceServer;
use crate::talos::api::proto::machine::machine_service_server::{MachineService, MachineServiceServer};
use crate::talos::api::proto::machine::*;
use crate::talos::api::proto::storage::storage_service_server::{StorageService, StorageServiceServer};
use crate::talos::api::proto::storage::{self, Disk, DisksResponse};
use crate::talos::version::VersionContract;

pub(super) const ADMIN: &[&str] = &["os:admin"];
pub(super) const OPERATOR: &[&str] = &["os:admin", "os:operator"];
const READER: &[&str] = &["os:admin", "os:operator", "os:reader"];
const ETCD_READER: &[&str] = &["os:admin", "os:operator", "os:reader", "os:etcd:backup"];

/// Serves the node's API on the connections its listener hands over.
pub async fn serve(node: Arc<Node>, rx: tokio::sync::mpsc::Receiver<SimConn>, root: CancellationToken) {
    let shared = node.shared.clone();
    let api = Api { node };
    let incoming = tokio_stream::wrappers::ReceiverStream::new(rx).map(Ok::<_, std::io::Error>);
    let result = tonic::transport::Server::builder()
        // Called once per request with its path: the cluster's call counters.
        .trace_fn(move |req| {
            if let Some(shared) = shared.upgrade() {
                shared.count_call(req.uri().path());
            }
            tracing::Span::none()
        })
        .add_service(MachineServiceServer::new(api.clone()))
        .add_service(StorageServiceServer::new(api.clone()))
        .add_service(LifecycleServiceServer::new(api.clone()))
        .add_service(ImageServiceServer::new(api.clone()))
        .add_service(StateServer::new(api))
        .serve_with_incoming_shutdown(incoming, root.cancelled_owned())
        .await;
    if let Err(e) = result {
        tracing::warn!(error = %e, "simulated node server ended");
    }
}

#[derive(Clone)]
pub(super) struct Api {
    node: Arc<Node>,
}

/// Who is calling: roles and whether over the maintenance listener.
pub(super) struct Caller {
    maintenance: bool,
    roles: Vec<String>,
}

impl Api {
    /// Resolves the caller and the target node (the `node` header proxies
    /// in normal mode; maintenance ignores it).
    pub(super) fn route<T>(&self, req: &Request<T>) -> Result<(Arc<Node>, Caller), Status> {
        let info = req.extensions().get::<ConnInfo>().cloned().ok_or_else(|| Status::internal("no connection info"))?;
        if info.maintenance {
            return Ok((self.node.clone(), Caller { maintenance: true, roles: vec!["os:reader".to_string()] }));
        }
        let roles = info.peer_cert.as_deref().map(super::tls::organizations).unwrap_or_default();
        let caller = Caller { maintenance: false, roles };
        let values: Vec<_> = req.metadata().get_all("node").iter().collect();
        if values.len() > 1 {
            return Err(Status::invalid_argument("node metadata must be single-valued"));
        }
        let Some(target) = values.first().and_then(|v| v.to_str().ok()) else {
            return Ok((self.node.clone(), caller));
        };
        if target.split(',').count() > 1 {
            return Err(Status::invalid_argument("node metadata must be single-valued"));
        }
        let shared = self.node.shared.upgrade().ok_or_else(|| Status::unavailable("simulator stopped"))?;
        let Some(other) = shared.find(target) else {
            return Err(Status::unavailable(format!("connection error: dial tcp {target}:50000: no route to host")));
        };
        if Arc::ptr_eq(&other, &self.node) {
            return Ok((other, caller));
        }
        let mine = self.node.state().config.as_ref().and_then(|c| c.os_ca.as_ref().map(|c| c.crt.clone()));
        let (phase, theirs) = {
            let st = other.state();
            (st.phase, st.config.as_ref().and_then(|c| c.os_ca.as_ref().map(|c| c.crt.clone())))
        };
        match phase {
            Phase::Booting | Phase::Running if mine == theirs => Ok((other, caller)),
            // A maintenance node's certificate is self-signed: the proxying
            // apid cannot verify it (provider-anchor §5 item 10).
            Phase::Maintenance | Phase::Booting | Phase::Running => Err(Status::unavailable(format!(
                "connection error: desc = \"transport: authentication handshake failed: tls: failed to verify certificate: x509: certificate signed by unknown authority\" (proxying to {target})"
            ))),
            _ => Err(Status::unavailable(format!(
                "connection error: dial tcp {target}:50000: connect: connection refused"
            ))),
        }
    }
}

/// The RBAC and maintenance gate for `method` (api.md §3, §4).
pub(super) fn authorize(
    node: &Node,
    caller: &Caller,
    method: &str,
    allowed: &[&str],
    maintenance_ok: bool,
) -> Result<(), Status> {
    if caller.maintenance && node.minor() <= 12 {
        // ≤ v1.12: a separate maintenance server with a few methods.
        if maintenance_ok {
            return Ok(());
        }
        return Err(match method {
            "Version" | "Upgrade" | "Reset" => Status::unimplemented("API is not implemented in maintenance mode"),
            _ => Status::unimplemented(format!("method {method} not implemented")),
        });
    }
    if caller.maintenance && maintenance_ok {
        return Ok(());
    }
    if caller.roles.iter().any(|r| allowed.contains(&r.as_str())) {
        Ok(())
    } else {
        Err(Status::permission_denied("not authorized"))
    }
}

/// The Talos tag of an installer reference (`…/installer:v1.14.0` →
/// `v1.14.0`); None when it does not end in a Talos tag.
pub(super) fn installer_tag(image: &str) -> Option<String> {
    let tag = image.rsplit_once(':').map(|(_, t)| t.to_string())?;
    (tag.starts_with('v') && super::node::minor_of(&tag) != 0).then_some(tag)
}

fn contract(node: &Node) -> VersionContract {
    let tag = node.state().version.clone();
    tag.parse().unwrap_or(VersionContract::V1_14)
}

/// A running Talos refuses a configuration whose kubelet is of a
/// Kubernetes version it does not support (`ValidateKubernetesImageTag`,
/// from the config's `Validate` on the node; `day2::compat`).
fn kubernetes_supported(node: &Node, facts: &config::Facts) -> Result<(), Status> {
    let kubelet = facts.kube.kubelet_version();
    if kubelet.is_empty() {
        return Ok(());
    }
    let running = node.state().version.clone();
    crate::day2::compat::kubernetes_supported(kubelet, &running).map_err(|e| {
        // Upstream wraps it in go-multierror lists; the innermost text is kept.
        Status::invalid_argument(format!("kubelet image is not valid: {e}"))
    })
}

fn meta() -> Option<common::Metadata> {
    None
}

fn control_plane(node: &Node) -> bool {
    node.state().config.as_ref().is_some_and(|c| c.control_plane)
}

#[tonic::async_trait]
impl MachineService for Api {
    async fn apply_configuration(
        &self,
        req: Request<ApplyConfigurationRequest>,
    ) -> Result<Response<ApplyConfigurationResponse>, Status> {
        let (node, caller) = self.route(&req)?;
        let in_maintenance = caller.maintenance;
        authorize(&node, &caller, "ApplyConfiguration", ADMIN, in_maintenance)?;
        let r = req.into_inner();
        let item = if in_maintenance { apply_maintenance(&node, r)? } else { apply_normal(&node, r)? };
        Ok(Response::new(ApplyConfigurationResponse { messages: vec![item] }))
    }

    async fn bootstrap(&self, req: Request<BootstrapRequest>) -> Result<Response<BootstrapResponse>, Status> {
        let (node, caller) = self.route(&req)?;
        authorize(&node, &caller, "Bootstrap", ADMIN, false)?;
        let minor = node.minor();
        let shared = node.shared.upgrade().ok_or_else(|| Status::unavailable("simulator stopped"))?;
        {
            let st = node.state();
            if !st.cri_up {
                return Err(Status::failed_precondition("bootstrap is not available yet"));
            }
            let cfg =
                st.config.as_ref().ok_or_else(|| Status::failed_precondition("bootstrap is not available yet"))?;
            if !cfg.control_plane {
                return Err(if minor >= 13 {
                    Status::unimplemented("bootstrap is only available on control plane nodes")
                } else {
                    Status::failed_precondition("bootstrap can only be performed on a control plane node")
                });
            }
            if minor >= 14 && !cfg.etcd_ca {
                return Err(Status::invalid_argument("etcd is not configured, bootstrap is not possible"));
            }
            if st.etcd_data {
                return Err(Status::already_exists("etcd data directory is not empty"));
            }
        }
        let boot_id = {
            let mut st = node.state();
            st.etcd_data = true;
            st.boot_id
        };
        if shared.real.is_some() {
            // etcd starts after the reply, as on Talos; the service shows it.
            let (n, s) = (node.clone(), shared.clone());
            tokio::spawn(async move {
                if let Some(real) = s.real.as_ref() {
                    super::real::bootstrap(real, n, boot_id).await;
                }
            });
        } else {
            shared.add_member(&node);
        }
        shared.bootstrapped.send_replace(true);
        Ok(Response::new(BootstrapResponse { messages: vec![Bootstrap { metadata: meta() }] }))
    }

    async fn etcd_member_list(
        &self,
        req: Request<EtcdMemberListRequest>,
    ) -> Result<Response<EtcdMemberListResponse>, Status> {
        let (node, caller) = self.route(&req)?;
        authorize(&node, &caller, "EtcdMemberList", ETCD_READER, false)?;
        etcd_gate(&node, "member list")?;
        let shared = node.shared.upgrade().ok_or_else(|| Status::unavailable("simulator stopped"))?;
        let members = if shared.real.is_some() { super::real::members(&node).await? } else { shared.members() };
        Ok(Response::new(EtcdMemberListResponse {
            messages: vec![EtcdMembers { metadata: meta(), legacy_members: Vec::new(), members }],
        }))
    }

    async fn etcd_remove_member_by_id(
        &self,
        req: Request<EtcdRemoveMemberByIdRequest>,
    ) -> Result<Response<EtcdRemoveMemberByIdResponse>, Status> {
        let (node, caller) = self.route(&req)?;
        authorize(&node, &caller, "EtcdRemoveMemberByID", ADMIN, false)?;
        etcd_gate(&node, "member removal")?;
        let shared = node.shared.upgrade().ok_or_else(|| Status::unavailable("simulator stopped"))?;
        let id = req.get_ref().member_id;
        if shared.real.is_some() {
            super::real::remove_by_id(&node, id).await?;
            return Ok(Response::new(EtcdRemoveMemberByIdResponse {
                messages: vec![EtcdRemoveMemberById { metadata: meta() }],
            }));
        }
        let Some(m) = shared.members().into_iter().find(|m| m.id == id) else {
            return Err(Status::not_found(format!("member {id:x} not found")));
        };
        shared.remove_member(&m.hostname);
        if let Some(n) = shared.nodes().into_iter().find(|n| n.hostname() == m.hostname) {
            n.state().etcd_data = false;
        }
        Ok(Response::new(EtcdRemoveMemberByIdResponse { messages: vec![EtcdRemoveMemberById { metadata: meta() }] }))
    }

    async fn etcd_leave_cluster(
        &self,
        req: Request<EtcdLeaveClusterRequest>,
    ) -> Result<Response<EtcdLeaveClusterResponse>, Status> {
        let (node, caller) = self.route(&req)?;
        authorize(&node, &caller, "EtcdLeaveCluster", ADMIN, false)?;
        etcd_gate(&node, "leaving the cluster")?;
        let shared = node.shared.upgrade().ok_or_else(|| Status::unavailable("simulator stopped"))?;
        match shared.real.as_ref() {
            Some(real) => super::real::leave(real, &node).await?,
            None => shared.remove_member(&node.hostname()),
        }
        node.state().etcd_data = false;
        Ok(Response::new(EtcdLeaveClusterResponse { messages: vec![EtcdLeaveCluster { metadata: meta() }] }))
    }

    async fn etcd_forfeit_leadership(
        &self,
        req: Request<EtcdForfeitLeadershipRequest>,
    ) -> Result<Response<EtcdForfeitLeadershipResponse>, Status> {
        let (node, caller) = self.route(&req)?;
        authorize(&node, &caller, "EtcdForfeitLeadership", OPERATOR, false)?;
        etcd_gate(&node, "forfeiting leadership")?;
        let shared = node.shared.upgrade().ok_or_else(|| Status::unavailable("simulator stopped"))?;
        let member = if shared.real.is_some() {
            super::real::forfeit(&node).await?
        } else {
            super::etcd::forfeit_leadership(&shared, &node)?
        };
        Ok(Response::new(EtcdForfeitLeadershipResponse {
            messages: vec![EtcdForfeitLeadership { metadata: meta(), member }],
        }))
    }

    async fn etcd_alarm_list(&self, req: Request<()>) -> Result<Response<EtcdAlarmListResponse>, Status> {
        let (node, caller) = self.route(&req)?;
        authorize(&node, &caller, "EtcdAlarmList", ETCD_READER, false)?;
        etcd_gate(&node, "alarm list")?;
        let real = node.shared.upgrade().is_some_and(|s| s.real.is_some());
        let member_alarms = if real { super::real::alarms(&node).await? } else { super::etcd::alarms() };
        Ok(Response::new(EtcdAlarmListResponse { messages: vec![EtcdAlarm { metadata: meta(), member_alarms }] }))
    }

    async fn etcd_status(&self, req: Request<()>) -> Result<Response<EtcdStatusResponse>, Status> {
        let (node, caller) = self.route(&req)?;
        authorize(&node, &caller, "EtcdStatus", ETCD_READER, false)?;
        etcd_gate(&node, "status")?;
        let shared = node.shared.upgrade().ok_or_else(|| Status::unavailable("simulator stopped"))?;
        let member_status = Some(if shared.real.is_some() {
            super::real::status(&node).await?
        } else {
            super::etcd::status(&shared, &node)?
        });
        Ok(Response::new(EtcdStatusResponse { messages: vec![EtcdStatus { metadata: meta(), member_status }] }))
    }

    type EtcdSnapshotStream = tokio_stream::Iter<std::vec::IntoIter<Result<common::Data, Status>>>;

    async fn etcd_snapshot(
        &self,
        req: Request<EtcdSnapshotRequest>,
    ) -> Result<Response<Self::EtcdSnapshotStream>, Status> {
        let (node, caller) = self.route(&req)?;
        authorize(&node, &caller, "EtcdSnapshot", ETCD_READER, false)?;
        etcd_gate(&node, "snapshot")?;
        let real = node.shared.upgrade().is_some_and(|s| s.real.is_some());
        if !real {
            // A simulator limit, not Talos's: only a real member has a
            // snapshot to give.
            return Err(Status::failed_precondition("simulator: EtcdSnapshot needs real etcd (SimOptions::etcd_bin)"));
        }
        let bytes = super::real::snapshot(&node).await?;
        // Chunks as the stream of common.Data (talosctl concatenates them).
        let chunks: Vec<_> =
            bytes.chunks(1 << 20).map(|c| Ok(common::Data { metadata: meta(), bytes: c.to_vec() })).collect();
        Ok(Response::new(tokio_stream::iter(chunks)))
    }

    type KubeconfigStream = tokio_stream::Iter<std::vec::IntoIter<Result<common::Data, Status>>>;

    async fn kubeconfig(&self, req: Request<()>) -> Result<Response<Self::KubeconfigStream>, Status> {
        let (node, caller) = self.route(&req)?;
        authorize(&node, &caller, "Kubeconfig", ADMIN, false)?;
        let facts = node.state().config.clone().ok_or_else(|| Status::failed_precondition("no config"))?;
        if !facts.control_plane {
            return Err(Status::unimplemented("kubeconfig is only available on control plane nodes"));
        }
        let yaml = kubeconfig::mint(&facts).map_err(Status::internal)?;
        let mtime =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default();
        let gz = crate::talos::api::archive::kubeconfig_archive(yaml.as_bytes(), mtime)
            .map_err(|e| Status::internal(e.to_string()))?;
        // Several chunks, as a real stream may deliver them.
        let chunks: Vec<_> = gz.chunks(256).map(|c| Ok(common::Data { metadata: meta(), bytes: c.to_vec() })).collect();
        Ok(Response::new(tokio_stream::iter(chunks)))
    }

    type ReadStream = tokio_stream::Iter<std::vec::IntoIter<Result<common::Data, Status>>>;

    /// Read (api.md §3.13). The simulator has one file, the boot id; other
    /// paths fail the way Go's `os.Stat` does.
    async fn read(&self, req: Request<ReadRequest>) -> Result<Response<Self::ReadStream>, Status> {
        let (node, caller) = self.route(&req)?;
        authorize(&node, &caller, "Read", ADMIN, false)?;
        let path = req.into_inner().path;
        if path != crate::talos::api::BOOT_ID_PATH {
            return Err(Status::unknown(format!("stat {path}: no such file or directory")));
        }
        let bytes = format!("{}\n", node.boot_uuid()).into_bytes();
        Ok(Response::new(tokio_stream::iter(vec![Ok(common::Data { metadata: meta(), bytes })])))
    }

    async fn reboot(&self, req: Request<RebootRequest>) -> Result<Response<RebootResponse>, Status> {
        let (node, caller) = self.route(&req)?;
        authorize(&node, &caller, "Reboot", OPERATOR, false)?;
        // FORCE (v1.12+) skips the graceful stop (behaviour.md §6).
        let graceful = req.into_inner().mode != reboot_request::Mode::Force as i32;
        let actor_id = node.next_actor();
        let n = node.clone();
        n.state().busy = Some(crate::talos::api::MachineStage::Rebooting);
        tokio::spawn(async move {
            if graceful {
                n.stop_gracefully().await;
            } else {
                n.after_reply().await;
            }
            n.reboot().await;
        });
        Ok(Response::new(RebootResponse { messages: vec![Reboot { metadata: meta(), actor_id }] }))
    }

    async fn reset(&self, req: Request<ResetRequest>) -> Result<Response<ResetResponse>, Status> {
        let (node, caller) = self.route(&req)?;
        authorize(&node, &caller, "Reset", ADMIN, false)?;
        let r = req.into_inner();
        let real = node.shared.upgrade().is_some_and(|s| s.real.is_some());
        if real && r.graceful && control_plane(&node) && node.state().etcd_data {
            // The same refusal as the model's (reset_plan), on the real list.
            if super::real::members(&node).await.map(|m| m.len()).unwrap_or(0) <= 1 {
                return Err(Status::failed_precondition(
                    "failed to leave etcd: this is the last member of the cluster, use a non-graceful reset",
                ));
            }
        }
        let plan = reset_plan(&node, &r, !real)?;
        let actor_id = node.next_actor();
        let n = node.clone();
        tokio::spawn(async move {
            n.after_reply().await;
            apply_reset(&n, plan, r.reboot).await;
        });
        if std::mem::take(&mut node.state().lose_reset_reply) {
            // The fault of SimCluster::lose_next_reset_reply.
            return Err(Status::unavailable("simulator: connection reset while the node began to reset"));
        }
        Ok(Response::new(ResetResponse { messages: vec![Reset { metadata: meta(), actor_id }] }))
    }

    async fn rollback(&self, req: Request<RollbackRequest>) -> Result<Response<RollbackResponse>, Status> {
        let (node, caller) = self.route(&req)?;
        authorize(&node, &caller, "Rollback", ADMIN, false)?;
        // v1alpha1_server.go `Rollback`: no system disk is FailedPrecondition;
        // the boot loader's `Revert` error comes back as it is; then a
        // reboot sequence (graceful) runs.
        {
            let mut st = node.state();
            if !st.installed {
                return Err(Status::failed_precondition("system disk not found"));
            }
            st.slots.revert().map_err(Status::unknown)?;
        }
        let n = node.clone();
        tokio::spawn(async move {
            n.stop_gracefully().await;
            n.reboot().await;
        });
        Ok(Response::new(RollbackResponse { messages: vec![Rollback { metadata: meta() }] }))
    }

    async fn service_list(&self, req: Request<()>) -> Result<Response<ServiceListResponse>, Status> {
        let (node, caller) = self.route(&req)?;
        authorize(&node, &caller, "ServiceList", READER, false)?;
        let services = services(&node);
        Ok(Response::new(ServiceListResponse { messages: vec![ServiceList { metadata: meta(), services }] }))
    }

    async fn upgrade(&self, req: Request<UpgradeRequest>) -> Result<Response<UpgradeResponse>, Status> {
        let (node, caller) = self.route(&req)?;
        authorize(&node, &caller, "Upgrade", ADMIN, false)?;
        let r = req.into_inner();
        let Some(tag) = installer_tag(&r.image) else {
            return Err(Status::invalid_argument(format!(
                "error validating installer image {:?}: not a Talos installer reference",
                r.image
            )));
        };
        // The image is pulled before anything else (v1alpha1_server.go
        // `Upgrade`: install.PullAndValidateInstallerImage), so a tag the
        // registry lacks fails the call and changes nothing.
        if node.shared.upgrade().is_some_and(|sh| sh.image_missing(&r.image)) {
            let reference = &r.image;
            return Err(Status::unknown(format!(
                "error validating installer image {reference:?}: failed to resolve reference {reference:?}: {reference}: not found"
            )));
        }
        if control_plane(&node) && !r.force {
            let shared = node.shared.upgrade().ok_or_else(|| Status::unavailable("simulator stopped"))?;
            let members = if shared.real.is_some() {
                super::real::members_with_health(&node).await?
            } else {
                shared.members().into_iter().map(|m| (m, true)).collect()
            };
            super::etcd::validate_for_upgrade(&shared, members, r.preserve)?;
        }
        let fault = node.shared.upgrade().map(|sh| sh.image_fault(&r.image)).unwrap_or_default();
        let image = Image { version: tag, reference: r.image.clone(), fault };
        let actor_id = node.next_actor();
        // Both the upgrade and the staged upgrade end in a reboot
        // (v1alpha1_sequencer.go `Upgrade`, `StageUpgrade`); the staged one
        // installs at the start of the next boot, which the simulator folds
        // into the same down time.
        tokio::spawn(node.clone().upgrade_and_reboot(image));
        Ok(Response::new(UpgradeResponse {
            messages: vec![Upgrade { metadata: meta(), ack: "Upgrade request received".to_string(), actor_id }],
        }))
    }

    async fn version(&self, req: Request<()>) -> Result<Response<VersionResponse>, Status> {
        let (node, caller) = self.route(&req)?;
        authorize(&node, &caller, "Version", READER, false)?;
        let st = node.state();
        let platform = match node.spec.platform {
            Platform::Metal => "metal",
            Platform::Nocloud => "nocloud",
        };
        let item = Version {
            metadata: meta(),
            version: Some(VersionInfo {
                tag: st.version.clone(),
                sha: "simulated".to_string(),
                built: String::new(),
                go_version: "go1.24".to_string(),
                os: "linux".to_string(),
                arch: "amd64".to_string(),
            }),
            platform: Some(PlatformInfo {
                name: platform.to_string(),
                mode: if platform == "metal" { "metal" } else { "cloud" }.to_string(),
            }),
            features: st.config.as_ref().map(|_| FeaturesInfo { rbac: true }),
        };
        Ok(Response::new(VersionResponse { messages: vec![item] }))
    }
}

#[tonic::async_trait]
impl StorageService for Api {
    async fn disks(&self, req: Request<()>) -> Result<Response<DisksResponse>, Status> {
        let (node, caller) = self.route(&req)?;
        authorize(&node, &caller, "Disks", READER, true)?;
        let installed = node.state().installed;
        let disk = Disk {
            size: 10 << 30,
            model: "QEMU HARDDISK".to_string(),
            device_name: "/dev/sda".to_string(),
            name: "sda".to_string(),
            serial: String::new(),
            modalias: String::new(),
            uuid: String::new(),
            wwid: String::new(),
            r#type: storage::disk::DiskType::Hdd as i32,
            bus_path: "/pci0000:00/0000:00:05.0/virtio2/host2/target2:0:0/2:0:0:0".to_string(),
            system_disk: installed,
            subsystem: "/sys/class/block".to_string(),
            readonly: false,
        };
        Ok(Response::new(DisksResponse { messages: vec![storage::Disks { metadata: meta(), disks: vec![disk] }] }))
    }
}

const MACHINE_CONFIGS: &str = "MachineConfigs.config.talos.dev";
const MACHINE_STATUSES: &str = "MachineStatuses.runtime.talos.dev";

#[tonic::async_trait]
impl State for Api {
    /// COSI Get (api.md §3.11): only the active machine configuration,
    /// which is sensitive (os:admin; maintenance peers are readers).
    async fn get(&self, req: Request<cosi::GetRequest>) -> Result<Response<cosi::GetResponse>, Status> {
        let (node, caller) = self.route(&req)?;
        let r = req.into_inner();
        if r.r#type == MACHINE_STATUSES
            || r.r#type == super::status::KUBELET_SPECS
            || r.r#type == super::status::NODENAMES
            || super::status::component_of(&r.r#type).is_some()
        {
            return super::status::get(&node, caller.maintenance, r).map(Response::new);
        }
        if r.r#type != MACHINE_CONFIGS {
            return Err(Status::permission_denied(format!("resource type {:?} is not supported", r.r#type)));
        }
        if caller.maintenance || !caller.roles.iter().any(|x| x == "os:admin") {
            return Err(Status::permission_denied("not authorized"));
        }
        let text = node.state().config.as_ref().map(|c| c.text.clone());
        let Some(text) = text.filter(|_| r.namespace == "config" && r.id == "v1alpha1") else {
            return Err(Status::not_found(format!(
                "resource {MACHINE_CONFIGS}({}/{}@undefined) doesn't exist",
                r.namespace, r.id
            )));
        };
        let spec = cosi::MachineConfigSpec { yaml_marshalled: text.into_bytes() };
        Ok(Response::new(cosi::GetResponse {
            resource: Some(cosi::Resource {
                metadata: Some(cosi::Metadata {
                    namespace: r.namespace,
                    r#type: r.r#type,
                    id: r.id,
                    version: "1".to_string(),
                    phase: "running".to_string(),
                    ..Default::default()
                }),
                spec: Some(cosi::Spec { proto_spec: prost::Message::encode_to_vec(&spec), yaml_spec: String::new() }),
            }),
        }))
    }

    type ListStream = tokio_stream::Iter<std::vec::IntoIter<Result<cosi::ListResponse, Status>>>;

    /// COSI List: the bootstrap manifests of a configured control plane
    /// (`manifests.rs`; none on a worker). Sensitive in Talos, as the
    /// machine configuration is: os:admin only.
    async fn list(&self, req: Request<cosi::ListRequest>) -> Result<Response<Self::ListStream>, Status> {
        let (node, caller) = self.route(&req)?;
        let r = req.into_inner();
        if r.r#type != crate::talos::api::manifests::MANIFESTS {
            let found = super::status::list(&node, caller.maintenance, &r)?;
            let out: Vec<Result<cosi::ListResponse, Status>> =
                found.into_iter().map(|resource| Ok(cosi::ListResponse { resource: Some(resource) })).collect();
            return Ok(Response::new(tokio_stream::iter(out)));
        }
        if caller.maintenance || !caller.roles.iter().any(|x| x == "os:admin") {
            return Err(Status::permission_denied("not authorized"));
        }
        let kube = node.state().config.as_ref().filter(|c| c.complete && c.control_plane).map(|c| c.kube.clone());
        let items = match kube.filter(|_| r.namespace == "controlplane") {
            Some(kube) => super::manifests::render(&kube),
            None => Vec::new(),
        };
        let out: Vec<Result<cosi::ListResponse, Status>> = items
            .into_iter()
            .map(|(id, objects)| {
                let spec = cosi::ManifestSpec {
                    items: objects
                        .iter()
                        .filter_map(|o| o.as_object())
                        .map(|o| cosi::SingleManifest { object: Some(crate::talos::api::manifests::to_struct(o)) })
                        .collect(),
                };
                Ok(cosi::ListResponse {
                    resource: Some(cosi::Resource {
                        metadata: Some(cosi::Metadata {
                            namespace: r.namespace.clone(),
                            r#type: r.r#type.clone(),
                            id,
                            version: "1".to_string(),
                            phase: "running".to_string(),
                            ..Default::default()
                        }),
                        spec: Some(cosi::Spec {
                            proto_spec: prost::Message::encode_to_vec(&spec),
                            yaml_spec: String::new(),
                        }),
                    }),
                })
            })
            .collect();
        Ok(Response::new(tokio_stream::iter(out)))
    }
}

/// etcd calls need a control plane whose etcd runs.
fn etcd_gate(node: &Node, what: &str) -> Result<(), Status> {
    if !control_plane(node) {
        return Err(Status::unimplemented(format!("{what} is only available on control plane nodes")));
    }
    if !node.state().etcd_data {
        return Err(Status::unavailable("etcd is not running on this node yet"));
    }
    Ok(())
}

/// ApplyConfiguration in maintenance mode (api.md §4, behaviour.md §4).
fn apply_maintenance(node: &Arc<Node>, r: ApplyConfigurationRequest) -> Result<ApplyConfiguration, Status> {
    let minor = node.minor();
    let mode = Mode::try_from(r.mode).unwrap_or(Mode::Reboot);
    if minor <= 12 && matches!(mode, Mode::NoReboot | Mode::Staged) {
        let name = if mode == Mode::NoReboot { "no-reboot" } else { "staged" };
        return Err(Status::unimplemented(format!(
            "apply configuration --mode='{name}' is not supported in maintenance mode"
        )));
    }
    let text = String::from_utf8(r.data).map_err(|_| Status::invalid_argument("config is not UTF-8"))?;
    let facts = config::read(contract(node), &text).map_err(Status::invalid_argument)?;
    kubernetes_supported(node, &facts)?;
    if !facts.complete && minor <= 12 {
        return Err(Status::invalid_argument("the config doesn't contain v1alpha1 config"));
    }
    if facts.complete && node.spec.platform == Platform::Metal && !facts.install {
        return Err(Status::invalid_argument("install instructions are required in \"metal\" mode"));
    }
    if let Some(conflict) = node.shared.upgrade().and_then(|s| s.identity_conflict(node.ip(), &facts)) {
        return Err(Status::invalid_argument(format!("simulator: {conflict}")));
    }
    // ≤ v1.12 leaves the reply's mode unset (0 = REBOOT); v1.13+ turns REBOOT into NO_REBOOT.
    let reply_mode = if minor <= 12 {
        Mode::Reboot
    } else if matches!(mode, Mode::Reboot | Mode::Auto) {
        Mode::NoReboot
    } else {
        mode
    };
    if r.dry_run {
        return Ok(ApplyConfiguration {
            metadata: meta(),
            warnings: Vec::new(),
            mode: reply_mode as i32,
            mode_details: "Dry run summary:\nNode is running in maintenance mode and does not have a config yet."
                .to_string(),
        });
    }
    if !facts.complete {
        // v1.13+: a partial config is kept; the node stays in maintenance.
        node.state().partial.push(text);
        return Ok(ApplyConfiguration {
            metadata: meta(),
            warnings: Vec::new(),
            mode: reply_mode as i32,
            mode_details: "Applied partial configuration, waiting for the complete configuration".to_string(),
        });
    }
    {
        let mut st = node.state();
        st.config = Some(facts);
        st.apply_generation += 1;
    }
    let n = node.clone();
    if node.state().installed {
        tokio::spawn(async move {
            n.after_reply().await;
            n.enter_normal_mode();
        });
    } else {
        tokio::spawn(async move {
            n.after_reply().await;
            n.install_and_reboot().await;
        });
    }
    if std::mem::take(&mut node.state().lose_apply_reply) {
        // The fault of SimCluster::lose_next_apply_reply: done, but the
        // client never hears so.
        return Err(Status::unavailable("simulator: connection reset after the configuration was applied"));
    }
    Ok(ApplyConfiguration {
        metadata: meta(),
        warnings: Vec::new(),
        mode: reply_mode as i32,
        mode_details: String::new(),
    })
}

/// ApplyConfiguration on a configured node (api.md §3.1).
fn apply_normal(node: &Arc<Node>, r: ApplyConfigurationRequest) -> Result<ApplyConfiguration, Status> {
    let minor = node.minor();
    let mode = Mode::try_from(r.mode).unwrap_or(Mode::Reboot);
    {
        let st = node.state();
        if minor >= 13 && st.reboot_pending {
            return Err(Status::failed_precondition("apply configuration failed: node is rebooting"));
        }
        if minor >= 13 && st.applying {
            return Err(Status::failed_precondition("another apply configuration is already in progress"));
        }
    }
    if minor >= 14 && mode == Mode::Reboot {
        return Err(Status::unimplemented(
            "the REBOOT mode is not supported, use AUTO or NO_REBOOT and reboot explicitly",
        ));
    }
    let text = String::from_utf8(r.data).map_err(|_| Status::invalid_argument("config is not UTF-8"))?;
    let facts = config::read(contract(node), &text).map_err(Status::invalid_argument)?;
    kubernetes_supported(node, &facts)?;
    if !facts.complete {
        return Err(Status::invalid_argument(
            "the config doesn't contain v1alpha1 config, did you mean to patch the machine config or apply a partial config?",
        ));
    }
    if let Some(conflict) = node.shared.upgrade().and_then(|s| s.identity_conflict(node.ip(), &facts)) {
        return Err(Status::invalid_argument(format!("simulator: {conflict}")));
    }
    let old = node.state().config.as_ref().map(|c| c.text.clone()).unwrap_or_default();
    let needs_reboot = minor <= 13 && config::needs_reboot(&old, &text);
    let resolved = match mode {
        Mode::Auto if needs_reboot => Mode::Reboot,
        Mode::Auto => Mode::NoReboot,
        m => m,
    };
    if needs_reboot && matches!(resolved, Mode::NoReboot | Mode::Try) {
        return Err(Status::invalid_argument("apply configuration failed: the configuration changes require a reboot"));
    }
    if r.dry_run {
        let mut details = format!("Dry run summary:\nApplied configuration in {} mode\n", mode_name(resolved));
        details.push_str(&config::diff(&old, &text));
        return Ok(ApplyConfiguration {
            metadata: meta(),
            warnings: Vec::new(),
            mode: resolved as i32,
            mode_details: details,
        });
    }
    let generation = {
        let mut st = node.state();
        st.apply_generation += 1;
        st.apply_generation
    };
    let details = match resolved {
        Mode::Staged => {
            node.state().staged = Some(facts);
            "Staged configuration to be applied after the next reboot".to_string()
        }
        Mode::Reboot => {
            {
                let mut st = node.state();
                st.staged = Some(facts);
                st.reboot_pending = true;
            }
            let n = node.clone();
            tokio::spawn(async move {
                n.stop_gracefully().await;
                n.reboot().await;
            });
            "Applied configuration with a reboot".to_string()
        }
        Mode::Try => {
            let previous = node.state().config.replace(facts);
            let timeout = r
                .try_mode_timeout
                .and_then(|d| std::time::Duration::try_from(d).ok())
                .unwrap_or(std::time::Duration::from_secs(60));
            let wait = node.shared.upgrade().map(|s| s.options.scaled(timeout)).unwrap_or(timeout);
            let n = node.clone();
            tokio::spawn(async move {
                tokio::time::sleep(wait).await;
                let mut st = n.state();
                if st.apply_generation == generation {
                    st.config = previous;
                }
            });
            format!("Applied configuration in try mode, rolling back in {timeout:?} unless confirmed")
        }
        _ => {
            node.state().config = Some(facts);
            "Applied configuration without a reboot".to_string()
        }
    };
    Ok(ApplyConfiguration { metadata: meta(), warnings: Vec::new(), mode: resolved as i32, mode_details: details })
}

fn mode_name(m: Mode) -> &'static str {
    match m {
        Mode::Reboot => "reboot",
        Mode::Auto => "auto",
        Mode::NoReboot => "no_reboot",
        Mode::Staged => "staged",
        Mode::Try => "try",
    }
}

/// What a Reset will wipe.
struct ResetPlan {
    state: bool,
    whole_disk: bool,
    /// Leaves etcd first (a graceful reset of a control plane).
    graceful: bool,
    /// Cordons and drains the Node first (any graceful reset).
    drain: bool,
}

/// Validates a Reset request (api.md §3.5, behaviour.md §6).
fn reset_plan(node: &Node, r: &ResetRequest, model: bool) -> Result<ResetPlan, Status> {
    use reset_request::WipeMode;
    let mode = WipeMode::try_from(r.mode).unwrap_or(WipeMode::All);
    if mode == WipeMode::SystemDisk && !r.user_disks_to_wipe.is_empty() {
        return Err(Status::unknown("user disks can't be wiped in SYSTEM_DISK mode"));
    }
    if mode == WipeMode::UserDisks && !r.system_partitions_to_wipe.is_empty() {
        return Err(Status::unknown("system partitions can't be wiped in USER_DISKS mode"));
    }
    for p in &r.system_partitions_to_wipe {
        if !["STATE", "EPHEMERAL", "META"].contains(&p.label.as_str()) {
            return Err(Status::unknown(format!("failed to find volume with label {:?}", p.label)));
        }
    }
    // The simulated machine has one disk, the system disk.
    if let Some(d) = r.user_disks_to_wipe.first() {
        return Err(if d.trim_start_matches("/dev/") == "sda" {
            Status::unknown(format!("{d} is a system disk"))
        } else {
            Status::unknown(format!("failed to find device {d}"))
        });
    }
    if model && r.graceful && control_plane(node) && node.state().etcd_data {
        let members = node.shared.upgrade().map(|s| s.members().len()).unwrap_or(0);
        if members <= 1 {
            return Err(Status::failed_precondition(
                "failed to leave etcd: this is the last member of the cluster, use a non-graceful reset",
            ));
        }
    }
    let wipes_system = mode != WipeMode::UserDisks;
    let whole_disk = wipes_system && r.system_partitions_to_wipe.is_empty();
    let state = whole_disk || r.system_partitions_to_wipe.iter().any(|p| p.label == "STATE");
    Ok(ResetPlan { state, whole_disk, graceful: r.graceful && control_plane(node), drain: r.graceful })
}

async fn apply_reset(node: &Arc<Node>, plan: ResetPlan, reboot: bool) {
    node.state().busy = Some(crate::talos::api::MachineStage::Resetting);
    node.resign();
    if plan.drain {
        node.cordon_and_drain().await;
    }
    if plan.state {
        if let Some(shared) = node.shared.upgrade() {
            match shared.real.as_ref() {
                // Graceful: the member leaves (reset sequence `LeaveEtcd`);
                // otherwise it stays in the cluster with its data gone.
                Some(real) => {
                    if plan.graceful
                        && let Err(e) = super::real::leave(real, node).await
                    {
                        tracing::warn!(node = %node.ip(), error = %e, "simulated reset: leaving etcd failed");
                    }
                    super::real::wipe(real, node);
                }
                None => shared.remove_member(&node.hostname()),
            }
        }
        let mut st = node.state();
        st.config = None;
        st.staged = None;
        st.partial.clear();
        st.etcd_data = false;
        if plan.whole_disk {
            st.installed = false;
            st.slots = Default::default();
        }
    }
    if reboot {
        node.clone().reboot().await;
    } else {
        node.power_off();
    }
}

/// Service states (api.md §3.9) for the node's phase and role.
fn services(node: &Node) -> Vec<ServiceInfo> {
    let st = node.state();
    let running = |id: &str| svc(id, "Running", true);
    let mut out = vec![running("apid"), running("machined"), running("udevd")];
    if st.phase == Phase::Maintenance {
        return out;
    }
    out.push(running("containerd"));
    out.push(if st.cri_up { running("cri") } else { svc("cri", "Starting", false) });
    out.push(running("syslogd"));
    out.push(running("auditd"));
    if st.config.as_ref().is_some_and(|c| c.control_plane) {
        out.push(running("trustd"));
        // Real etcd: running once the member answers; the model: with data.
        let real = node.shared.upgrade().is_some_and(|s| s.real.is_some());
        let up = if real { node.etcd_client().is_some() } else { st.etcd_data };
        out.push(match (&st.etcd_failure, up) {
            (_, true) => running("etcd"),
            // The service failed: its health carries etcd's own error (the
            // simulator's stand-in for the service's last event).
            (Some(why), false) => {
                let mut s = svc("etcd", "Failed", false);
                if let Some(h) = s.health.as_mut() {
                    h.last_message = why.clone();
                }
                s
            }
            (None, false) => svc("etcd", "Preparing", false),
        });
    }
    out.push(match (st.cri_up, st.running_fault) {
        // ImageFault::KubeletUnhealthy: the service runs, its health check fails.
        (true, ImageFault::KubeletUnhealthy) => svc("kubelet", "Running", false),
        (true, _) => running("kubelet"),
        (false, _) => svc("kubelet", "Waiting", false),
    });
    out
}

fn svc(id: &str, state: &str, healthy: bool) -> ServiceInfo {
    ServiceInfo {
        id: id.to_string(),
        state: state.to_string(),
        events: None,
        health: Some(ServiceHealth { unknown: !healthy, healthy, last_message: String::new(), last_change: None }),
    }
}
