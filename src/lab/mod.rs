//! The local lab (feature `sim`; never in the provider build): fakepve plus
//! the Talos node simulator on loopback, coupled the way real hardware is.
//!
//! - [`Lab::start`] runs fakepve (the pinned PyPI package, installed by
//!   `scripts/install-fakepve.sh`) through a tiny harness of ours
//!   (`harness.py`, shared with the integration tests: the lab uses it to
//!   register API tokens, set guest-agent answers and read the request
//!   log, what the PVE API cannot do on fakepve), then a reconciler that
//!   **observes the PVE API like a hypervisor integration**: every
//!   [`LabOptions::poll`] it lists the VMs (`/cluster/resources`) and the
//!   newest tasks of each PVE node with a running VM (`/nodes/{node}/tasks`),
//!   and reads a VM's config when its power state changes. It authenticates
//!   with its own token (`<user>!lab-reconciler`), so [`Lab::pve_requests`]
//!   tells its polling apart from what the lab's users send.
//! - Desired state = running VMs with a Talos medium ([`medium`] has the
//!   rule); actual state = simulated Talos nodes. A VM that starts with a
//!   Talos ISO or disk image gets a maintenance-mode node at its address; a
//!   VM that stops loses power (its node goes away and comes back with its
//!   disk on the next start); a destroyed VM's node is removed with its
//!   state. A reboot or reset through PVE (a new `qmreboot`/`qmreset`
//!   task) reboots the node. A guest that powers itself off (Talos reset without reboot)
//!   gets its VM stopped through the API.
//! - The address is `ipconfig0`'s `ip=` (cloud-init), else a lease from
//!   [`LabOptions::dhcp_pool`], kept for the VM's life. Every Talos VM with
//!   the guest agent enabled (`agent: 1`) gets an agent answer listing
//!   `lo` and `eth0` with that address (only while it runs, as fakepve
//!   answers the agent only then).
//!
//! The `lab` example is the command (`scripts/lab.sh` wraps it).

pub mod factory;
pub mod medium;

mod harness;
mod reconcile;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::proxmox::{Client, ClientOptions, Credentials, ReqwestTransport, RetryPolicy, Secret, TlsSettings};
use crate::talos::sim::{SimCluster, SimError, SimOptions};
use harness::{Harness, HarnessStart};
pub use medium::{MediumKind, TalosMedium};

/// The lab could not start or stop.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// The PVE port is taken.
    #[error(
        "port {addr} is already in use (another lab? stop it with `scripts/lab.sh stop`, or pick a port with --port)"
    )]
    PortInUse {
        /// The address.
        addr: SocketAddr,
    },
    /// fakepve's Python is not there.
    #[error(
        "no Python at {path}: install fakepve with `scripts/install-fakepve.sh` (needs python3 >= 3.10 with venv), or point PROXTALOS_FAKEPVE at its launcher"
    )]
    NoPython {
        /// The path tried.
        path: PathBuf,
    },
    /// fakepve did not start.
    #[error("fakepve failed to start: {message}{}", if log.is_empty() { String::new() } else { format!("\n--- fakepve log (last lines) ---\n{log}") })]
    FakePve {
        /// What happened.
        message: String,
        /// The end of its log.
        log: String,
    },
    /// A harness command failed.
    #[error("fakepve harness: {0}")]
    Harness(String),
    /// A file operation failed.
    #[error("{what} {path}: {source}")]
    Io {
        /// The operation.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The PVE API answered with an error.
    #[error("PVE API: {0}")]
    Api(#[from] crate::proxmox::Error),
    /// The simulator failed.
    #[error("Talos simulator: {0}")]
    Sim(#[from] SimError),
    /// Bad options.
    #[error("{0}")]
    Options(String),
}

impl LabError {
    fn io(what: &'static str, path: &Path, source: std::io::Error) -> LabError {
        LabError::Io { what, path: path.to_path_buf(), source }
    }
}

/// Lab settings.
#[derive(Debug, Clone)]
pub struct LabOptions {
    /// fakepve's launcher (`.../venv-fakepve/bin/fakepve`); its sibling
    /// `python` runs the harness.
    pub fakepve: PathBuf,
    /// Where the CA, the harness and fakepve's log go; `None`: a temporary
    /// directory removed when the lab stops.
    pub state_dir: Option<PathBuf>,
    /// PVE API address (loopback).
    pub host: Ipv4Addr,
    /// PVE API port; 0 picks a free one.
    pub port: u16,
    /// Real seconds per simulated second, for fakepve's tasks and the Talos
    /// nodes' install, reboot and service delays (1.0 is real time).
    pub time_scale: f64,
    /// How often the reconciler looks at the PVE API.
    pub poll: Duration,
    /// Talos version of a node whose medium name carries none.
    pub talos_version: String,
    /// First and last address leased to VMs without a static `ipconfig0`.
    pub dhcp_pool: (Ipv4Addr, Ipv4Addr),
    /// Port of every simulated apid.
    pub talos_port: u16,
    /// The simulator's guard against mixing clusters (see
    /// [`SimOptions::strict_cluster_identity`]).
    pub strict_cluster_identity: bool,
    /// Real etcd binaries for the control planes ([`SimOptions::etcd_bin`]);
    /// None runs the simulator's member model.
    pub etcd_bin: Option<PathBuf>,
    /// PVE nodes: `pve1` always, more for placement stories
    /// (`pve2`, `pve3`, ... added with fakepve's `add_node`).
    pub pve_nodes: Vec<String>,
    /// The one password login.
    pub user: String,
    /// Token id (`user@realm!name`).
    pub token_id: String,
}

impl LabOptions {
    /// Demo settings: port 8006, time scale 0.1 (a 60 s install takes 6 s),
    /// poll 250 ms, leases 127.0.10.200–254.
    pub fn new(fakepve: PathBuf) -> LabOptions {
        LabOptions {
            fakepve,
            state_dir: None,
            host: Ipv4Addr::LOCALHOST,
            port: 8006,
            time_scale: 0.1,
            poll: Duration::from_millis(250),
            talos_version: "v1.13.9".to_string(),
            dhcp_pool: (Ipv4Addr::new(127, 0, 10, 200), Ipv4Addr::new(127, 0, 10, 254)),
            talos_port: crate::talos::api::APID_PORT,
            strict_cluster_identity: true,
            etcd_bin: None,
            pve_nodes: vec!["pve1".to_string()],
            user: "root@pam".to_string(),
            token_id: "root@pam!lab".to_string(),
        }
    }

    /// Test settings: any free port, time scale 0.01, poll 50 ms.
    pub fn fast(fakepve: PathBuf) -> LabOptions {
        LabOptions { port: 0, time_scale: 0.01, poll: Duration::from_millis(50), ..LabOptions::new(fakepve) }
    }

    /// The Python that runs the harness (next to the launcher).
    pub fn python(&self) -> PathBuf {
        self.fakepve.with_file_name("python")
    }
}

/// Something the lab did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LabEvent {
    /// A Talos node appeared for a started VM (first time or after a destroy).
    NodeCreated {
        /// The VM.
        vmid: u32,
        /// `address:port`.
        endpoint: String,
        /// Talos tag.
        version: String,
        /// ISO or disk image.
        medium: MediumKind,
    },
    /// A stopped VM started again; its node boots from what is on its disk.
    NodePoweredOn {
        /// The VM.
        vmid: u32,
        /// `address:port`.
        endpoint: String,
    },
    /// The VM stopped; its node is off.
    NodePoweredOff {
        /// The VM.
        vmid: u32,
    },
    /// The VM was destroyed; its node and state are gone.
    NodeRemoved {
        /// The VM.
        vmid: u32,
    },
    /// The guest powered itself off; the lab stopped the VM.
    GuestPoweredOff {
        /// The VM.
        vmid: u32,
    },
    /// A VM started without a Talos medium (nothing to simulate).
    Ignored {
        /// The VM.
        vmid: u32,
    },
    /// Something went wrong for one VM or one poll (the lab keeps going).
    Warning(String),
}

impl std::fmt::Display for LabEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LabEvent::NodeCreated { vmid, endpoint, version, medium } => {
                let m = if *medium == MediumKind::Iso { "ISO, maintenance" } else { "disk image, installed" };
                write!(f, "VM {vmid} started: Talos {version} node at {endpoint} ({m})")
            }
            LabEvent::NodePoweredOn { vmid, endpoint } => write!(f, "VM {vmid} started: node at {endpoint} powered on"),
            LabEvent::NodePoweredOff { vmid } => write!(f, "VM {vmid} stopped: node powered off (disk kept)"),
            LabEvent::NodeRemoved { vmid } => write!(f, "VM {vmid} destroyed: node and its state removed"),
            LabEvent::GuestPoweredOff { vmid } => write!(f, "VM {vmid}: guest powered off, VM stopped"),
            LabEvent::Ignored { vmid } => write!(f, "VM {vmid} started without a Talos medium: no node"),
            LabEvent::Warning(w) => write!(f, "warning: {w}"),
        }
    }
}

/// The name of the reconciler's own API token (`<user>!lab-reconciler`).
pub const RECONCILER_TOKEN_NAME: &str = "lab-reconciler";

/// One request fakepve received (from its log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PveRequest {
    /// `GET`, `POST`, ...
    pub method: String,
    /// `/api2/json/nodes/pve1/qemu/100/config`
    pub path: String,
    /// The client's `User-Agent` header.
    pub user_agent: String,
    /// The API token id it authenticated with (`root@pam!lab`); empty for
    /// ticket logins and unauthenticated requests.
    pub token_id: String,
}

/// A VM's simulated node, as the lab sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabNode {
    /// The VM.
    pub vmid: u32,
    /// The node's address.
    pub address: IpAddr,
    /// Whether it came from the lease pool (no static `ipconfig0`).
    pub leased: bool,
    /// The medium found when it was created.
    pub medium: TalosMedium,
    /// Powered (the VM runs).
    pub powered: bool,
}

/// State shared with the reconciler.
pub(crate) struct Shared {
    pub nodes: Mutex<BTreeMap<u32, reconcile::Tracked>>,
    pub events: broadcast::Sender<LabEvent>,
}

impl Shared {
    fn emit(&self, e: LabEvent) {
        match &e {
            LabEvent::Warning(w) => tracing::warn!("{w}"),
            other => tracing::info!("{other}"),
        }
        let _ = self.events.send(e);
    }
}

/// A running lab. Stop it with [`Lab::stop`]; dropping it also kills
/// fakepve and every simulated node (without waiting).
pub struct Lab {
    harness: Harness,
    sim: Arc<SimCluster>,
    shared: Arc<Shared>,
    stop: CancellationToken,
    reconciler: Option<tokio::task::JoinHandle<()>>,
    endpoint: String,
    api_token: String,
    token_id: String,
    password: String,
    user: String,
    ca_pem: String,
    ca_file: PathBuf,
    state_dir: PathBuf,
    factory: factory::FactoryDouble,
    _temp: Option<tempfile::TempDir>,
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.stop.cancel();
        self.sim.shutdown();
        // The harness child is killed on drop (kill_on_drop).
    }
}

/// A random secret shaped like PVE's token values (a UUID).
fn random_uuid() -> Result<String, LabError> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).map_err(|e| LabError::Options(format!("no randomness: {e}")))?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    Ok(format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32]))
}

impl Lab {
    /// Starts fakepve, the simulator and the reconciler. Fails with a
    /// clear [`LabError`] (port taken, no Python, fakepve not starting)
    /// and leaves no process behind.
    pub async fn start(options: LabOptions) -> Result<Lab, LabError> {
        if !options.host.is_loopback() {
            return Err(LabError::Options(format!("the lab binds loopback only, not {}", options.host)));
        }
        if !(options.time_scale > 0.0 && options.time_scale.is_finite()) {
            return Err(LabError::Options("time scale must be > 0".into()));
        }
        if u32::from(options.dhcp_pool.0) > u32::from(options.dhcp_pool.1) || !options.dhcp_pool.0.is_loopback() {
            return Err(LabError::Options("the lease pool must be a loopback range, first <= last".into()));
        }
        let python = options.python();
        if !python.exists() {
            return Err(LabError::NoPython { path: python });
        }
        if options.port != 0 {
            let addr = SocketAddr::new(IpAddr::V4(options.host), options.port);
            match std::net::TcpListener::bind(addr) {
                Ok(l) => drop(l),
                Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => return Err(LabError::PortInUse { addr }),
                Err(e) => return Err(LabError::io("bind", Path::new(&addr.to_string()), e)),
            }
        }
        let (temp, state_dir) = match &options.state_dir {
            Some(d) => {
                std::fs::create_dir_all(d).map_err(|e| LabError::io("create", d, e))?;
                (None, d.clone())
            }
            None => {
                let t = tempfile::Builder::new()
                    .prefix("proxtalos-lab")
                    .tempdir()
                    .map_err(|e| LabError::io("create", Path::new("temporary directory"), e))?;
                let p = t.path().to_path_buf();
                (Some(t), p)
            }
        };
        let password = random_uuid()?;
        let secret = random_uuid()?;
        let host = options.host.to_string();
        let mut harness = Harness::start(HarnessStart {
            python: &python,
            state_dir: &state_dir,
            host: &host,
            port: options.port,
            time_scale: options.time_scale,
            user: &options.user,
            password: &password,
            token_id: &options.token_id,
            token_secret: &secret,
        })
        .await
        .map_err(|e| match e {
            LabError::FakePve { message, .. } if message.contains("address already in use") => {
                LabError::PortInUse { addr: SocketAddr::new(IpAddr::V4(options.host), options.port) }
            }
            e => e,
        })?;
        let ca_pem = match std::fs::read_to_string(&harness.ca_file) {
            Ok(p) => p,
            Err(e) => {
                harness.stop().await;
                return Err(LabError::io("read", &harness.ca_file, e));
            }
        };
        let mut sim_options = SimOptions::new(&options.talos_version);
        sim_options.time_scale = options.time_scale;
        sim_options.port = options.talos_port;
        sim_options.strict_cluster_identity = options.strict_cluster_identity;
        sim_options.etcd_bin = options.etcd_bin.clone();
        let sim = match SimCluster::start(sim_options, Vec::new()).await {
            Ok(s) => Arc::new(s),
            Err(e) => {
                harness.stop().await;
                return Err(e.into());
            }
        };
        let endpoint = format!("{}/", harness.url);
        let api_token = format!("{}={secret}", options.token_id);
        // The reconciler has a token of its own, so the request log tells
        // its polling apart from what the lab's users (Terraform) send.
        let user = options.token_id.split('!').next().unwrap_or(&options.user);
        let (id, sec) = (format!("{user}!{RECONCILER_TOKEN_NAME}"), random_uuid()?);
        let reconciler_token = format!("{id}={sec}");
        if let Err(e) = harness.commander().command(serde_json::json!({"op": "token", "id": id, "secret": sec})).await {
            harness.stop().await;
            return Err(e);
        }
        for node in options.pve_nodes.iter().filter(|n| n.as_str() != "pve1") {
            if let Err(e) = harness.commander().command(serde_json::json!({"op": "add_node", "name": node})).await {
                harness.stop().await;
                return Err(e);
            }
        }
        // A GPU mapped on every node, as docs/guides/gpu-workers.md has
        // users map theirs in PVE (`examples/gpu-worker` names it). The lab
        // has no GPU: the mapping is a name and an address only.
        let map: Vec<String> =
            options.pve_nodes.iter().map(|n| format!("node={n},path=0000:01:00.0,id=10de:2204")).collect();
        let gpu = serde_json::json!({"op": "pci_mapping_set", "id": "gpu0",
            "entry": {"map": map, "description": "lab GPU (a name only: the lab has no device)"}});
        if let Err(e) = harness.commander().command(gpu).await {
            harness.stop().await;
            return Err(e);
        }
        let client = match api_client(&endpoint, &reconciler_token, &ca_pem, true) {
            Ok(c) => c,
            Err(e) => {
                harness.stop().await;
                return Err(e);
            }
        };
        // `import` content on `local`, as fakepve.md §4.4 recommends, so
        // disk images can be downloaded (a fresh PVE lacks it too; the lab
        // is set up the way the quickstart expects).
        let enable_import = crate::proxmox::Request::put("/storage/local").param("content", "iso,vztmpl,backup,import");
        if let Err(e) = client.execute(&enable_import).await {
            harness.stop().await;
            return Err(e.into());
        }
        let factory = match factory::FactoryDouble::start().await {
            Ok(f) => f,
            Err(e) => {
                harness.stop().await;
                return Err(LabError::io("start the Image Factory double on", Path::new("127.0.0.1"), e));
            }
        };
        let shared = Arc::new(Shared { nodes: Mutex::new(BTreeMap::new()), events: broadcast::channel(1024).0 });
        let stop = CancellationToken::new();
        let reconciler = tokio::spawn(reconcile::run(reconcile::Reconciler {
            client,
            sim: sim.clone(),
            shared: shared.clone(),
            harness_cmd: harness.commander(),
            options: options.clone(),
            stop: stop.clone(),
            ignored: BTreeMap::new(),
            seen_tasks: BTreeMap::new(),
        }));
        Ok(Lab {
            ca_file: harness.ca_file.clone(),
            harness,
            sim,
            shared,
            stop,
            reconciler: Some(reconciler),
            endpoint,
            api_token,
            token_id: options.token_id.clone(),
            password,
            user: options.user.clone(),
            ca_pem,
            state_dir,
            factory,
            _temp: temp,
        })
    }

    /// The PVE API endpoint, `https://127.0.0.1:PORT/`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The API token, `root@pam!lab=SECRET`.
    pub fn api_token(&self) -> &str {
        &self.api_token
    }

    /// The API token's id, `root@pam!lab` (what [`PveRequest::token_id`]
    /// shows for requests made with [`Lab::api_token`]).
    pub fn api_token_id(&self) -> &str {
        &self.token_id
    }

    /// Every request fakepve received since the start or the last
    /// [`Lab::clear_pve_requests`], oldest first. The lab's own polling
    /// carries the token `<user>!lab-reconciler`.
    pub async fn pve_requests(&self) -> Result<Vec<PveRequest>, LabError> {
        let v = self.harness.commander().command(serde_json::json!({"op": "requests"})).await?;
        let s = |r: &serde_json::Value, i: usize| r[i].as_str().unwrap_or_default().to_string();
        let rows = v.as_array().map(Vec::as_slice).unwrap_or_default();
        Ok(rows
            .iter()
            .map(|r| PveRequest { method: s(r, 0), path: s(r, 1), user_agent: s(r, 2), token_id: s(r, 3) })
            .collect())
    }

    /// Forgets the requests logged so far.
    pub async fn clear_pve_requests(&self) -> Result<(), LabError> {
        self.harness.commander().command(serde_json::json!({"op": "clear_requests"})).await.map(drop)
    }

    /// The password login (`root@pam`, a random password).
    pub fn login(&self) -> (&str, &str) {
        (&self.user, &self.password)
    }

    /// The CA certificate (PEM) of the API's TLS certificate.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The CA certificate file.
    pub fn ca_file(&self) -> &Path {
        &self.ca_file
    }

    /// The state directory.
    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// fakepve's process id.
    pub fn fakepve_pid(&self) -> Option<u32> {
        self.harness.pid()
    }

    /// A PVE client with the lab's token, verifying the lab's CA.
    pub fn client(&self) -> Result<Client, LabError> {
        api_client(&self.endpoint, &self.api_token, &self.ca_pem, false)
    }

    /// The simulator (for inspection: phases, versions, installed state).
    pub fn sim(&self) -> &SimCluster {
        &self.sim
    }

    /// The node of a VM, if the lab made one.
    pub fn node(&self, vmid: u32) -> Option<LabNode> {
        let nodes = self.shared.nodes.lock().unwrap_or_else(|e| e.into_inner());
        nodes.get(&vmid).map(|t| t.view())
    }

    /// Every node the lab made, by VMID.
    pub fn nodes(&self) -> Vec<LabNode> {
        let nodes = self.shared.nodes.lock().unwrap_or_else(|e| e.into_inner());
        nodes.values().map(reconcile::Tracked::view).collect()
    }

    /// What the lab does, as it happens.
    pub fn subscribe(&self) -> broadcast::Receiver<LabEvent> {
        self.shared.events.subscribe()
    }

    /// The lab's Image Factory double, `http://127.0.0.1:PORT`.
    pub fn factory_url(&self) -> &str {
        self.factory.url()
    }

    /// The Image Factory double (its request log, for tests).
    pub fn factory(&self) -> &factory::FactoryDouble {
        &self.factory
    }

    /// A ready-made provider block for this lab.
    pub fn provider_block(&self) -> String {
        format!(
            "provider \"proxtalos\" {{\n  image_factory_url = \"{}\"\n  proxmox {{\n    endpoint       = \"{}\"\n    api_token      = \"{}\"\n    ca_certificate = file(\"{}\")\n  }}\n}}\n",
            self.factory.url(),
            self.endpoint,
            self.api_token,
            self.ca_file.display()
        )
    }

    /// Stops the reconciler, every simulated node and fakepve, and waits
    /// for fakepve to exit.
    pub async fn stop(mut self) {
        self.stop.cancel();
        if let Some(r) = self.reconciler.take() {
            let _ = r.await;
        }
        self.sim.shutdown();
        self.harness.stop().await;
    }
}

/// A PVE client for the lab (the reconciler's retries are short so a poll
/// never blocks shutdown for long).
fn api_client(endpoint: &str, token: &str, ca_pem: &str, reconciler: bool) -> Result<Client, LabError> {
    let transport = ReqwestTransport::new(&TlsSettings {
        endpoint: endpoint.to_string(),
        insecure: false,
        ca_pem: Some(ca_pem.to_string()),
        timeout: Duration::from_secs(if reconciler { 10 } else { 60 }),
    })?;
    let mut options = ClientOptions::default();
    if reconciler {
        options.retry = RetryPolicy { attempts: 2, base: Duration::from_millis(100), max: Duration::from_millis(200) };
    }
    Ok(Client::new(Box::new(transport), Credentials::ApiToken(Secret::new(token)), options))
}
