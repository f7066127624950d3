//! `machine.ImageService/Pull` and `machine.LifecycleService/Upgrade`
//! (v1.13+): the installer image is pulled into the system containerd, then
//! installed to the boot slot not booted, without a reboot. Upstream
//! (siderolabs/talos): `internal/app/lifecycle/lifecycle.go` (one install
//! or upgrade at a time, FailedPrecondition "another installation/upgrade
//! is already in progress"; "machine is not installed"; InvalidArgument
//! "installer image name is required"; installer failures are Internal
//! "upgrade failed: …"; progress messages, then an exit code in the
//! stream); `cmd/talosctl/cmd/talos/upgrade.go` (Pull, then Upgrade with the
//! pulled name, then Reboot). On ≤ v1.12 the services do not exist: grpc-go
//! answers Unimplemented "unknown service …".

use std::sync::Arc;

use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::boot::Image;
use super::machine::{ADMIN, Api, OPERATOR, authorize, installer_tag};
use super::node::Node;
use crate::talos::api::proto::machine::image_service_pull_response::Response as Pulled;
use crate::talos::api::proto::machine::image_service_server::ImageService;
use crate::talos::api::proto::machine::lifecycle_service_install_progress::Response as Progress;
use crate::talos::api::proto::machine::lifecycle_service_server::LifecycleService;
use crate::talos::api::proto::machine::{
    ImageServicePullRequest, ImageServicePullResponse, LifecycleServiceInstallProgress, LifecycleServiceUpgradeRequest,
    LifecycleServiceUpgradeResponse,
};

fn since_v1_13(node: &Node, service: &str) -> Result<(), Status> {
    if node.minor() <= 12 {
        return Err(Status::unimplemented(format!("unknown service {service}")));
    }
    Ok(())
}

#[tonic::async_trait]
impl ImageService for Api {
    type PullStream = tokio_stream::Iter<std::vec::IntoIter<Result<ImageServicePullResponse, Status>>>;

    async fn pull(&self, req: Request<ImageServicePullRequest>) -> Result<Response<Self::PullStream>, Status> {
        let (node, caller) = self.route(&req)?;
        since_v1_13(&node, "machine.ImageService")?;
        authorize(&node, &caller, "Pull", OPERATOR, false)?;
        let reference = req.into_inner().image_ref;
        let missing = node.shared.upgrade().is_some_and(|s| s.image_missing(&reference));
        if reference.is_empty() || missing || installer_tag(&reference).is_none() {
            // containerd's resolver (remotes/docker/resolver.go) for a tag
            // the registry does not have.
            return Err(Status::unknown(format!(
                "failed to pull image {reference:?}: failed to resolve reference {reference:?}: {reference}: not found"
            )));
        }
        node.state().pulled.insert(reference.clone());
        let done = ImageServicePullResponse { response: Some(Pulled::Name(reference)) };
        Ok(Response::new(tokio_stream::iter(vec![Ok(done)])))
    }
}

#[tonic::async_trait]
impl LifecycleService for Api {
    type UpgradeStream = ReceiverStream<Result<LifecycleServiceUpgradeResponse, Status>>;

    async fn upgrade(
        &self,
        req: Request<LifecycleServiceUpgradeRequest>,
    ) -> Result<Response<Self::UpgradeStream>, Status> {
        let (node, caller) = self.route(&req)?;
        since_v1_13(&node, "machine.LifecycleService")?;
        authorize(&node, &caller, "Upgrade", ADMIN, false)?;
        let name = req.into_inner().source.map(|s| s.image_name).unwrap_or_default();
        {
            let mut st = node.state();
            if st.installing {
                return Err(Status::failed_precondition("another installation/upgrade is already in progress"));
            }
            if !st.installed {
                return Err(Status::failed_precondition("machine is not installed"));
            }
            if name.is_empty() {
                return Err(Status::invalid_argument("installer image name is required"));
            }
            if !st.pulled.contains(&name) {
                return Err(Status::internal(format!("upgrade failed: image {name:?}: not found")));
            }
            st.installing = true;
        }
        let (tx, rx) = tokio::sync::mpsc::channel(8);
        tokio::spawn(install(node, name, tx));
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}

/// The installer run: progress, the install delay, the slot written, exit
/// code 0. A node that goes down meanwhile never finishes (the stream
/// breaks with the connection).
async fn install(
    node: Arc<Node>,
    name: String,
    tx: tokio::sync::mpsc::Sender<Result<LifecycleServiceUpgradeResponse, Status>>,
) {
    let send = |p: Progress| {
        let tx = tx.clone();
        async move {
            let msg = LifecycleServiceUpgradeResponse {
                progress: Some(LifecycleServiceInstallProgress { response: Some(p) }),
            };
            tx.send(Ok(msg)).await.is_ok()
        }
    };
    let boot_id = node.state().boot_id;
    send(Progress::Message(format!("upgrading with installer image {name}"))).await;
    tokio::time::sleep(node.delay(|d| d.install)).await;
    let fault = node.shared.upgrade().map(|s| s.image_fault(&name)).unwrap_or_default();
    let done = {
        let mut st = node.state();
        st.installing = false;
        if st.boot_id != boot_id || st.phase != super::Phase::Running {
            false
        } else {
            let version = installer_tag(&name).unwrap_or_default();
            st.slots.upgrade(Image { version, reference: name.clone(), fault });
            true
        }
    };
    if done {
        send(Progress::Message("upgrade successful".to_string())).await;
        send(Progress::ExitCode(0)).await;
    }
}
