//! [`NodeClient`]: one node, one connection mode, one call at a time with a
//! deadline. Replies are unwrapped from the `messages` envelope (api.md §2);
//! an item carrying `metadata.error` becomes an error.

use std::time::Duration;

use tonic::metadata::MetadataValue;
use tonic::transport::Channel;

use super::archive;
use super::connect::{Address, Dialer, MAX_MESSAGE};
use super::error::{ApiError, At};
use super::proto::common;
use super::proto::cosi::{self, state_client::StateClient};
use super::proto::machine::{self, machine_service_client::MachineServiceClient};
use super::proto::storage::{self, storage_service_client::StorageServiceClient};
use super::tls;
use crate::talos::client_config::ClientConfiguration;

pub use super::proto::machine::apply_configuration_request::Mode as ApplyMode;
pub use super::proto::machine::reboot_request::Mode as RebootMode;
pub use super::proto::machine::reset_request::WipeMode;
pub use super::proto::machine::{EtcdMember, ServiceInfo, Version};
pub use super::proto::storage::Disk;

/// How long to wait for TCP + TLS, and for each call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// TCP connect plus TLS handshake.
    pub connect: Duration,
    /// One RPC (the whole stream for Kubeconfig).
    pub call: Duration,
}

impl Default for Timeouts {
    /// 10 s to connect, 60 s per call.
    fn default() -> Self {
        Timeouts { connect: Duration::from_secs(10), call: Duration::from_secs(60) }
    }
}

/// How to reach the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// Maintenance mode: dialled directly, no client certificate, no CA
    /// check, optional pin of the node's SPKI fingerprint (behaviour.md §2).
    Maintenance {
        /// Standard base64 SHA-256 of the leaf's SubjectPublicKeyInfo.
        fingerprint: Option<String>,
    },
    /// Normal mode: mutual TLS with the OS CA and the client certificate.
    Normal(ClientConfiguration),
}

/// An ApplyConfiguration request (api.md §3.1). `Debug` shows the size of
/// the configuration, never its content (it holds CA keys and tokens).
#[derive(Clone, PartialEq)]
pub struct ApplyRequest {
    /// The whole machine configuration (YAML, one or more documents).
    pub config: Vec<u8>,
    /// Apply mode (proto3 default REBOOT is never implied: say what you mean).
    pub mode: ApplyMode,
    /// Validate and return the diff only.
    pub dry_run: bool,
    /// TRY only: roll back after this long (node default 1 min).
    pub try_timeout: Option<Duration>,
}

impl std::fmt::Debug for ApplyRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApplyRequest")
            .field("config", &format_args!("<{} bytes redacted>", self.config.len()))
            .field("mode", &self.mode)
            .field("dry_run", &self.dry_run)
            .field("try_timeout", &self.try_timeout)
            .finish()
    }
}

/// What the node said about an apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplyOutcome {
    /// The mode actually used (AUTO resolved; 0 = REBOOT in ≤ v1.12 maintenance replies).
    pub mode: ApplyMode,
    /// Human text; for dry runs `Dry run summary:` and a diff.
    pub details: String,
    /// Validation warnings.
    pub warnings: Vec<String>,
}

/// Options of Reset (api.md §3.5).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ResetRequest {
    /// Cordon, drain and leave etcd first.
    pub graceful: bool,
    /// Reboot afterwards (true) or power off.
    pub reboot: bool,
    /// System volume labels to wipe (`STATE`, `EPHEMERAL`…); empty with
    /// [`WipeMode::All`] wipes the whole system disk.
    pub system_partitions: Vec<String>,
    /// Extra device paths to wipe.
    pub user_disks: Vec<String>,
    /// What to wipe.
    pub mode: WipeMode,
}

impl ResetRequest {
    /// The safe reset a provider wants on destroy: wipe STATE and EPHEMERAL
    /// (config and data, keep the boot partitions) and reboot, so a
    /// disk-installed node comes back in maintenance mode (behaviour.md §6).
    pub fn to_maintenance(graceful: bool) -> ResetRequest {
        ResetRequest {
            graceful,
            reboot: true,
            system_partitions: vec!["STATE".to_string(), "EPHEMERAL".to_string()],
            user_disks: Vec::new(),
            mode: WipeMode::All,
        }
    }
}

/// Options of the legacy Upgrade RPC (api.md §3.6).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UpgradeRequest {
    /// Installer image reference, e.g. `ghcr.io/siderolabs/installer:v1.13.9`.
    pub image: String,
    /// Stage: the install runs at the start of the next boot (the call
    /// still reboots, v1alpha1_sequencer.go `StageUpgrade`).
    pub stage: bool,
    /// Skip the etcd checks of a control plane.
    pub force: bool,
    /// Keep data (and allow a single-member etcd to upgrade).
    pub preserve: bool,
    /// Reboot mode after the install.
    pub reboot_mode: UpgradeRebootMode,
}

pub use super::proto::machine::upgrade_request::RebootMode as UpgradeRebootMode;

/// A client for one node. Maintenance-mode nodes are always dialled
/// directly; in normal mode an `endpoint` other than the node proxies the
/// call with the `node` header (behaviour.md §3).
#[derive(Clone)]
pub struct NodeClient {
    node: String,
    endpoint: String,
    proxied: bool,
    call_timeout: Duration,
    channel: Channel,
}

impl std::fmt::Debug for NodeClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeClient").field("node", &self.node).field("endpoint", &self.endpoint).finish()
    }
}

impl NodeClient {
    /// Connects to a maintenance-mode node at `node` (`host[:port]`).
    pub async fn maintenance(node: &str, fingerprint: Option<&str>, timeouts: Timeouts) -> Result<Self, ApiError> {
        Self::connect(node, None, &Mode::Maintenance { fingerprint: fingerprint.map(str::to_string) }, timeouts).await
    }

    /// Connects with mutual TLS to `node`, through `endpoint` when given
    /// and different (the call then carries `node: <node>`).
    pub async fn normal(
        node: &str,
        endpoint: Option<&str>,
        creds: &ClientConfiguration,
        timeouts: Timeouts,
    ) -> Result<Self, ApiError> {
        Self::connect(node, endpoint, &Mode::Normal(creds.clone()), timeouts).await
    }

    /// Connects in `mode`. `endpoint` is ignored in maintenance mode (a
    /// proxying apid cannot verify a maintenance certificate,
    /// provider-anchor §5 item 10).
    pub async fn connect(
        node: &str,
        endpoint: Option<&str>,
        mode: &Mode,
        timeouts: Timeouts,
    ) -> Result<Self, ApiError> {
        let at = At { node: node.to_string(), call: "connect" };
        let bad = |message: String| ApiError::Credentials { at: at.clone(), message };
        let (tls, dial_to) = match mode {
            Mode::Maintenance { fingerprint } => (tls::maintenance_config(fingerprint.as_deref()).map_err(bad)?, node),
            Mode::Normal(creds) => (tls::normal_config(creds).map_err(bad)?, endpoint.unwrap_or(node)),
        };
        let node_addr = Address::parse(node).map_err(|m| ApiError::Protocol { at: at.clone(), message: m })?;
        let address = Address::parse(dial_to).map_err(|m| ApiError::Protocol { at: at.clone(), message: m })?;
        let proxied = address != node_addr;
        let dialer = Dialer::new(address.clone(), tls, timeouts.connect);
        let channel = dialer.channel(&at).await?;
        Ok(NodeClient {
            node: if proxied { node_addr.host.clone() } else { node.to_string() },
            endpoint: address.authority(),
            proxied,
            call_timeout: timeouts.call,
            channel,
        })
    }

    /// The node this client targets.
    pub fn node(&self) -> &str {
        &self.node
    }

    pub(super) fn at(&self, call: &'static str) -> At {
        At { node: self.node.clone(), call }
    }

    pub(super) fn request<T>(&self, msg: T) -> tonic::Request<T> {
        let mut req = tonic::Request::new(msg);
        req.set_timeout(self.call_timeout);
        if let Some(v) = self.proxied.then(|| MetadataValue::try_from(self.node.as_str()).ok()).flatten() {
            req.metadata_mut().insert("node", v);
        }
        req
    }

    pub(super) fn channel(&self) -> Channel {
        self.channel.clone()
    }

    pub(super) fn machine(&self) -> MachineServiceClient<Channel> {
        MachineServiceClient::new(self.channel.clone())
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE)
    }

    /// Runs `fut` under the call deadline and maps its status.
    pub(super) async fn call<T>(
        &self,
        call: &'static str,
        fut: impl std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    ) -> Result<T, ApiError> {
        self.call_within(call, self.call_timeout, fut).await
    }

    /// [`NodeClient::call`] with its own deadline (a long stream).
    pub(super) async fn call_within<T>(
        &self,
        call: &'static str,
        limit: Duration,
        fut: impl std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    ) -> Result<T, ApiError> {
        match tokio::time::timeout(limit, fut).await {
            Err(_) => Err(ApiError::Deadline { at: self.at(call), after: limit }),
            Ok(Err(status)) if status.code() == tonic::Code::DeadlineExceeded => {
                Err(ApiError::Deadline { at: self.at(call), after: limit })
            }
            Ok(Err(status)) => Err(ApiError::from_status(self.at(call), &self.endpoint, status)),
            Ok(Ok(resp)) => Ok(resp.into_inner()),
        }
    }

    /// Takes the one envelope item, turning `metadata.error` into an error.
    pub(super) fn item<T>(
        &self,
        call: &'static str,
        messages: Vec<T>,
        meta: impl Fn(&T) -> Option<&common::Metadata>,
    ) -> Result<T, ApiError> {
        let Some(item) = messages.into_iter().next() else {
            return Err(ApiError::Protocol { at: self.at(call), message: "empty reply envelope".to_string() });
        };
        if let Some(m) = meta(&item).filter(|m| !m.error.is_empty()) {
            let code = m.status.as_ref().map(|s| tonic::Code::from(s.code)).unwrap_or(tonic::Code::Unknown);
            return Err(ApiError::from_status(
                self.at(call),
                &self.endpoint,
                tonic::Status::new(code, m.error.clone()),
            ));
        }
        Ok(item)
    }

    /// ApplyConfiguration (api.md §3.1).
    pub async fn apply_configuration(&self, req: &ApplyRequest) -> Result<ApplyOutcome, ApiError> {
        let msg = machine::ApplyConfigurationRequest {
            data: req.config.clone(),
            mode: req.mode as i32,
            dry_run: req.dry_run,
            try_mode_timeout: req.try_timeout.and_then(|d| prost_types::Duration::try_from(d).ok()),
        };
        let r = self.call("ApplyConfiguration", self.machine().apply_configuration(self.request(msg))).await?;
        let item = self.item("ApplyConfiguration", r.messages, |i| i.metadata.as_ref())?;
        // A mode we do not know is not guessed at: waiting for a reboot
        // that never comes (or not waiting for one that does) is worse.
        let mode = ApplyMode::try_from(item.mode).map_err(|_| ApiError::Protocol {
            at: self.at("ApplyConfiguration"),
            message: format!("the node applied in mode {}, which this provider does not know", item.mode),
        })?;
        Ok(ApplyOutcome { mode, details: item.mode_details, warnings: item.warnings })
    }

    /// Bootstrap (api.md §3.2): `AlreadyExists` means done,
    /// `FailedPrecondition` means not yet.
    pub async fn bootstrap(&self) -> Result<(), ApiError> {
        let r = self
            .call("Bootstrap", self.machine().bootstrap(self.request(machine::BootstrapRequest::default())))
            .await?;
        self.item("Bootstrap", r.messages, |i| i.metadata.as_ref()).map(|_| ())
    }

    /// Version (api.md §3.3).
    pub async fn version(&self) -> Result<Version, ApiError> {
        let r = self.call("Version", self.machine().version(self.request(()))).await?;
        self.item("Version", r.messages, |i| i.metadata.as_ref())
    }

    /// The running Talos tag, e.g. `v1.13.9`.
    pub async fn version_tag(&self) -> Result<String, ApiError> {
        let v = self.version().await?;
        v.version.map(|v| v.tag).filter(|t| !t.is_empty()).ok_or_else(|| ApiError::Protocol {
            at: self.at("Version"),
            message: "the reply has no version tag".to_string(),
        })
    }

    /// Kubeconfig (api.md §3.4): the `kubeconfig` file from the streamed
    /// gzip tar, within one call deadline.
    pub async fn kubeconfig(&self) -> Result<String, ApiError> {
        let at = self.at("Kubeconfig");
        let fut = async { collect_data(self.machine().kubeconfig(self.request(())).await?.into_inner()).await };
        let gz = self.call("Kubeconfig", fut).await?;
        let file = archive::extract_kubeconfig(&gz)
            .map_err(|e| ApiError::Protocol { at: at.clone(), message: e.to_string() })?;
        String::from_utf8(file).map_err(|_| ApiError::Protocol { at, message: "kubeconfig is not UTF-8".to_string() })
    }

    /// Read (api.md §3.13): the raw bytes of a file on the node, within one
    /// call deadline.
    pub async fn read(&self, path: &str) -> Result<Vec<u8>, ApiError> {
        let req = self.request(machine::ReadRequest { path: path.to_string() });
        self.call("Read", async { collect_data(self.machine().read(req).await?.into_inner()).await }).await
    }

    /// The node's boot id, new at every boot: what talosctl reads before and
    /// after a reboot to know that it happened (behaviour.md §6).
    pub async fn boot_id(&self) -> Result<String, ApiError> {
        let bytes = self.read(BOOT_ID_PATH).await?;
        match String::from_utf8(bytes) {
            Ok(text) if !text.trim().is_empty() => Ok(text.trim().to_string()),
            _ => {
                Err(ApiError::Protocol { at: self.at("Read"), message: format!("{BOOT_ID_PATH} is empty or not text") })
            }
        }
    }

    /// Reset (api.md §3.5). Returns the actor id; the node goes down after.
    pub async fn reset(&self, req: &ResetRequest) -> Result<String, ApiError> {
        let msg = machine::ResetRequest {
            graceful: req.graceful,
            reboot: req.reboot,
            system_partitions_to_wipe: req
                .system_partitions
                .iter()
                .map(|l| machine::ResetPartitionSpec { label: l.clone(), wipe: true })
                .collect(),
            user_disks_to_wipe: req.user_disks.clone(),
            mode: req.mode as i32,
        };
        let r = self.call("Reset", self.machine().reset(self.request(msg))).await?;
        self.item("Reset", r.messages, |i| i.metadata.as_ref()).map(|i| i.actor_id)
    }

    /// Legacy Upgrade (api.md §3.6). Returns the ack text.
    pub async fn upgrade(&self, req: &UpgradeRequest) -> Result<String, ApiError> {
        self.upgrade_within(req, self.call_timeout).await
    }

    /// [`NodeClient::upgrade`] within `limit` (it pulls the image before
    /// it answers).
    pub async fn upgrade_within(&self, req: &UpgradeRequest, limit: Duration) -> Result<String, ApiError> {
        let msg = machine::UpgradeRequest {
            image: req.image.clone(),
            preserve: req.preserve,
            stage: req.stage,
            force: req.force,
            reboot_mode: req.reboot_mode as i32,
        };
        let mut request = self.request(msg);
        request.set_timeout(limit);
        let r = self.call_within("Upgrade", limit, self.machine().upgrade(request)).await?;
        self.item("Upgrade", r.messages, |i| i.metadata.as_ref()).map(|i| i.ack)
    }

    /// The per-call deadline of this client.
    pub(super) fn call_timeout(&self) -> Duration {
        self.call_timeout
    }

    /// Reboot (api.md §3.7). Returns the actor id.
    pub async fn reboot(&self, mode: RebootMode) -> Result<String, ApiError> {
        let r = self
            .call("Reboot", self.machine().reboot(self.request(machine::RebootRequest { mode: mode as i32 })))
            .await?;
        self.item("Reboot", r.messages, |i| i.metadata.as_ref()).map(|i| i.actor_id)
    }

    /// EtcdMemberList (api.md §3.8).
    pub async fn etcd_members(&self, query_local: bool) -> Result<Vec<EtcdMember>, ApiError> {
        let msg = machine::EtcdMemberListRequest { query_local };
        let r = self.call("EtcdMemberList", self.machine().etcd_member_list(self.request(msg))).await?;
        self.item("EtcdMemberList", r.messages, |i| i.metadata.as_ref()).map(|i| i.members)
    }

    /// EtcdRemoveMemberByID (api.md §3.8): `NotFound` for an unknown id.
    pub async fn etcd_remove_member(&self, member_id: u64) -> Result<(), ApiError> {
        let msg = machine::EtcdRemoveMemberByIdRequest { member_id };
        let r = self.call("EtcdRemoveMemberByID", self.machine().etcd_remove_member_by_id(self.request(msg))).await?;
        self.item("EtcdRemoveMemberByID", r.messages, |i| i.metadata.as_ref()).map(|_| ())
    }

    /// EtcdLeaveCluster (api.md §3.8): the node removes itself.
    pub async fn etcd_leave_cluster(&self) -> Result<(), ApiError> {
        let msg = machine::EtcdLeaveClusterRequest {};
        let r = self.call("EtcdLeaveCluster", self.machine().etcd_leave_cluster(self.request(msg))).await?;
        self.item("EtcdLeaveCluster", r.messages, |i| i.metadata.as_ref()).map(|_| ())
    }

    /// ServiceList (api.md §3.9).
    pub async fn services(&self) -> Result<Vec<ServiceInfo>, ApiError> {
        let r = self.call("ServiceList", self.machine().service_list(self.request(()))).await?;
        self.item("ServiceList", r.messages, |i| i.metadata.as_ref()).map(|i| i.services)
    }

    /// The active machine configuration as the node holds it: COSI
    /// `Get` of `MachineConfigs.config.talos.dev` `config/v1alpha1`
    /// (api.md §3.11; sensitive, so os:admin only). `None` when the node
    /// has no active configuration (`NotFound`).
    pub async fn machine_config(&self) -> Result<Option<String>, ApiError> {
        let mut client = StateClient::new(self.channel.clone()).max_decoding_message_size(MAX_MESSAGE);
        let msg = cosi::GetRequest {
            namespace: "config".to_string(),
            r#type: "MachineConfigs.config.talos.dev".to_string(),
            id: "v1alpha1".to_string(),
            options: None,
        };
        let at = self.at("MachineConfig");
        let r = match self.call("MachineConfig", client.get(self.request(msg))).await {
            Ok(r) => r,
            Err(ApiError::Status { code: tonic::Code::NotFound, .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        // No resource in a successful reply is not "an empty configuration"
        // (that would read as drift and re-apply): it is not an answer.
        let Some(spec) = r.resource.and_then(|r| r.spec) else {
            return Err(ApiError::Protocol { at, message: "the reply holds no MachineConfig resource".to_string() });
        };
        let text = if spec.proto_spec.is_empty() {
            spec.yaml_spec.into_bytes()
        } else {
            <cosi::MachineConfigSpec as prost::Message>::decode(spec.proto_spec.as_slice())
                .map_err(|e| ApiError::Protocol { at: at.clone(), message: format!("MachineConfigSpec: {e}") })?
                .yaml_marshalled
        };
        String::from_utf8(text)
            .map(Some)
            .map_err(|_| ApiError::Protocol { at, message: "machine configuration is not UTF-8".to_string() })
    }

    /// `storage.StorageService/Disks` (api.md §3.10); answered in
    /// maintenance mode too.
    pub async fn disks(&self) -> Result<Vec<Disk>, ApiError> {
        let client = StorageServiceClient::new(self.channel.clone()).max_decoding_message_size(MAX_MESSAGE);
        let mut client = client;
        let r = self.call("Disks", client.disks(self.request(()))).await?;
        self.item("Disks", r.messages, |i: &storage::Disks| i.metadata.as_ref()).map(|i| i.disks)
    }
}

/// Where Linux keeps the boot id (a UUID and a newline).
pub const BOOT_ID_PATH: &str = "/proc/sys/kernel/random/boot_id";

/// The bytes of a `common.Data` stream, in order; an item whose metadata
/// carries an error ends it with that error (api.md §2).
async fn collect_data(mut stream: tonic::Streaming<common::Data>) -> Result<tonic::Response<Vec<u8>>, tonic::Status> {
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.message().await? {
        if let Some(m) = chunk.metadata.as_ref().filter(|m| !m.error.is_empty()) {
            return Err(tonic::Status::unknown(m.error.clone()));
        }
        bytes.extend_from_slice(&chunk.bytes);
    }
    Ok(tonic::Response::new(bytes))
}
