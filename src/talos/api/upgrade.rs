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

/// Whether a node running `tag` (`v1.13.9`) has `ImageService` and
/// `LifecycleService` (added in v1.13; older nodes answer `Unimplemented`).
/// An unparsable tag is taken as the legacy API.
pub fn lifecycle_api(tag: &str) -> bool {
    let mut parts = tag.trim_start_matches('v').split('.').map(|p| p.parse::<u32>().ok());
    match (parts.next().flatten(), parts.next().flatten()) {
        (Some(major), Some(minor)) => (major, minor) >= (1, 13),
        _ => false,
    }
}

/// The system containerd, where talosctl pulls installer images
/// (`cmd/talosctl/cmd/talos/upgrade.go`).
fn system_containerd() -> Option<ContainerdInstance> {
    Some(ContainerdInstance {
        driver: ContainerDriver::Containerd as i32,
        namespace: ContainerdNamespace::NsSystem as i32,
    })
}

/// How [`NodeClient::upgrade_os`] went about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OsUpgrade {
    /// v1.13+: pulled and installed to the boot slot not booted; the node
    /// still runs the old image until the caller reboots it.
    Installed(InstallReport),
    /// ≤ v1.12: the legacy `Upgrade` was accepted; the node drains,
    /// installs and reboots by itself (wait for a new boot id).
    Rebooting {
        /// The node's ack.
        ack: String,
    },
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
        self.pull_image_within(reference, self.call_timeout()).await
    }

    /// [`NodeClient::pull_image`] within `limit` (an installer image is
    /// hundreds of MB: an upgrade gives the pull the time it has left).
    pub async fn pull_image_within(&self, reference: &str, limit: Duration) -> Result<String, ApiError> {
        let msg = ImageServicePullRequest { containerd: system_containerd(), image_ref: reference.to_string() };
        let mut client = ImageServiceClient::new(self.channel());
        let mut req = self.request(msg);
        req.set_timeout(limit);
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
        self.call_within("ImageService.Pull", limit, fut).await?.ok_or_else(|| ApiError::Protocol {
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

    /// Upgrades the node's OS to `req.image` with the calls its Talos
    /// version has, read first (never guessed): v1.13+ pulls the image into
    /// the system containerd and installs it with `LifecycleService.Upgrade`
    /// (no reboot: [`OsUpgrade::Installed`]); older Talos gets the legacy
    /// `MachineService.Upgrade` with `req`'s options, which validates
    /// (pulls) the image before it answers and then reboots by itself
    /// ([`OsUpgrade::Rebooting`]). An image the registry lacks fails either
    /// way before anything changes, with an error naming node and image.
    pub async fn upgrade_os(&self, req: &super::UpgradeRequest, limit: Duration) -> Result<OsUpgrade, ApiError> {
        let tag = self.version_tag().await?;
        let started = tokio::time::Instant::now();
        if lifecycle_api(&tag) {
            let name = self.pull_image_within(&req.image, limit).await?;
            let left = limit.saturating_sub(started.elapsed()).max(Duration::from_secs(1));
            Ok(OsUpgrade::Installed(self.install_upgrade(&name, left).await?))
        } else {
            // The legacy call pulls and validates the image before it
            // answers.
            Ok(OsUpgrade::Rebooting { ack: self.upgrade_within(req, limit).await? })
        }
    }

    /// `Rollback`: the previous A/B image becomes the default and the node
    /// reboots into it (asynchronously; wait for the boot id to change).
    pub async fn rollback(&self) -> Result<(), ApiError> {
        let r = self.call("Rollback", self.machine().rollback(self.request(RollbackRequest {}))).await?;
        self.item("Rollback", r.messages, |i| i.metadata.as_ref()).map(|_| ())
    }
}
