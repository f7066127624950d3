//! Talos API client (machine and storage services over gRPC, api.md §3),
//! built on tonic and rustls with ring. Knows nothing of Terraform.
//!
//! # Use
//!
//! ```no_run
//! # async fn f(creds: proxtalos::talos::client_config::ClientConfiguration) -> Result<(), proxtalos::talos::api::ApiError> {
//! use proxtalos::talos::api::{ApplyMode, ApplyRequest, NodeClient, Timeouts};
//! // A node fresh from the ISO: maintenance mode, dialled directly.
//! let c = NodeClient::maintenance("10.0.0.2", None, Timeouts::default()).await?;
//! c.apply_configuration(&ApplyRequest { config: b"...".to_vec(), mode: ApplyMode::Auto, dry_run: false, try_timeout: None }).await?;
//! // Later, configured: mutual TLS with the OS CA and an os:admin certificate.
//! let c = NodeClient::normal("10.0.0.2", None, &creds, Timeouts::default()).await?;
//! c.bootstrap().await?;
//! # Ok(()) }
//! ```
//!
//! Waits use [`wait::poll_until`] with a named condition from
//! [`wait::conditions`] and the caller's deadline.

pub mod archive;
mod client;
mod connect;
pub mod error;
pub mod etcd;
pub mod manifests;
pub mod proto;
mod status;
pub mod tls;
mod upgrade;
pub mod wait;

pub use client::{
    ApplyMode, ApplyOutcome, ApplyRequest, BOOT_ID_PATH, Disk, EtcdMember, Mode, NodeClient, RebootMode, ResetRequest,
    ServiceInfo, Timeouts, UpgradeRebootMode, UpgradeRequest, Version, WipeMode,
};
pub use connect::{APID_PORT, Address, MAX_MESSAGE};
pub use error::{ApiError, At};
pub use status::{KubeletSpec, MachineStage, MachineStatus, component_config_type};
pub use upgrade::{InstallReport, OsUpgrade, lifecycle_api};
