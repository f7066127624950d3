//! The OS upgrade calls (shared/specs/talos/day2.md §2): v1.13+ pulls the
//! installer with `ImageService.Pull` and installs it with
//! `LifecycleService.Upgrade` (no reboot; the client reboots), older Talos
//! has only the legacy `MachineService.Upgrade` ([`NodeClient::upgrade`]).
//! `Rollback` boots the previous A/B image.

use std::time::Duration;

use super::client::NodeClient;
use super::error::ApiError;
use super::proto::common::{ContainerDriver, ContainerdInstance, ContainerdNamespace};
use super::proto::machine::image_service_client::ImageServiceClient;
use super::proto::machine::image_service_pull_response::Response as Pulled;
use super::proto::machine::lifecycle_service_client::LifecycleServiceClient;
use super::proto::machine::lifecycle_service_install_progress::Response as Progress;
use super::proto::machine::{
    ImageServicePullRequest, InstallArtifactsSource, LifecycleServiceUpgradeRequest, RollbackRequest,
};

/// The system containerd, where talosctl pulls installer images
/// (`cmd/talosctl/cmd/talos/upgrade.go`).
fn system_containerd() -> Option<ContainerdInstance> {
    Some(ContainerdInstance {
        driver: ContainerDriver::Containerd as i32,
        namespace: ContainerdNamespace::NsSystem as i32,
    })
}

/// What an install left behind: its progress messages (exit code 0).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InstallReport {
    /// The installer's progress messages, in order.
    pub messages: Vec<String>,
}

impl NodeClient {
    /// `ImageService.Pull` (v1.13+) of `reference` into the system
    /// containerd, within the call deadline. Returns the pulled image name
    /// that [`NodeClient::install_upgrade`] takes.
    pub async fn pull_image(&self, reference: &str) -> Result<String, ApiError> {
        let msg = ImageServicePullRequest { containerd: system_containerd(), image_ref: reference.to_string() };
        let mut client = ImageServiceClient::new(self.channel());
        let req = self.request(msg);
        let fut = async move {
            let mut stream = client.pull(req).await?.into_inner();
            let mut name = None;
            while let Some(item) = stream.message().await? {
                if let Some(Pulled::Name(n)) = item.response {
                    name = Some(n);
                }
            }
            Ok(tonic::Response::new(name))
        };
        self.call("ImageService.Pull", fut).await?.ok_or_else(|| ApiError::Protocol {
            at: self.at("ImageService.Pull"),
            message: "the pull ended without an image name".to_string(),
        })
    }

    /// `LifecycleService.Upgrade` (v1.13+): installs the pulled image
    /// `image_name` to the boot slot not booted, without a reboot; the
    /// stream may run as long as the install (`limit`). A non-zero exit
    /// code is [`ApiError::InstallFailed`]; a stream that ends without one
    /// is a protocol error.
    pub async fn install_upgrade(&self, image_name: &str, limit: Duration) -> Result<InstallReport, ApiError> {
        let msg = LifecycleServiceUpgradeRequest {
            containerd: system_containerd(),
            source: Some(InstallArtifactsSource { image_name: image_name.to_string() }),
        };
        let mut client = LifecycleServiceClient::new(self.channel());
        let mut req = self.request(msg);
        req.set_timeout(limit);
        let fut = async move {
            let mut stream = client.upgrade(req).await?.into_inner();
            let mut messages = Vec::new();
            let mut exit = None;
            while let Some(item) = stream.message().await? {
                match item.progress.and_then(|p| p.response) {
                    Some(Progress::Message(m)) => messages.push(m),
                    Some(Progress::ExitCode(c)) => exit = Some(c),
                    None => {}
                }
            }
            Ok(tonic::Response::new((messages, exit)))
        };
        let (messages, exit) = self.call_within("LifecycleService.Upgrade", limit, fut).await?;
        match exit {
            Some(0) => Ok(InstallReport { messages }),
            Some(exit_code) => Err(ApiError::InstallFailed {
                at: self.at("LifecycleService.Upgrade"),
                exit_code,
                last: messages.last().cloned().unwrap_or_default(),
            }),
            None => Err(ApiError::Protocol {
                at: self.at("LifecycleService.Upgrade"),
                message: "the install stream ended without an exit code".to_string(),
            }),
        }
    }

    /// `Rollback`: the previous A/B image becomes the default and the node
    /// reboots into it (asynchronously; wait for the boot id to change).
    pub async fn rollback(&self) -> Result<(), ApiError> {
        let r = self.call("Rollback", self.machine().rollback(self.request(RollbackRequest {}))).await?;
        self.item("Rollback", r.messages, |i| i.metadata.as_ref()).map(|_| ())
    }
}
