//! The simulator's etcd on real members (`SimOptions::etcd_bin` set): each
//! control plane runs one [`EtcdMember`] at its own address while its
//! machine is up; its data directory lives in the cluster's temporary
//! directory and is wiped on reset. Talos's steps (siderolabs/talos
//! `internal/app/machined/pkg/system/services/etcd.go`): bootstrap starts a
//! new one-member cluster; a later control plane is added as a learner
//! through a running member, starts with the existing cluster, and is
//! promoted once it has caught up; `EtcdLeaveCluster` and a graceful reset
//! remove the node's own member; a destroyed or non-gracefully reset node's
//! member stays until someone removes it by id.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tonic::Status;

use super::Shared;
use super::etcd_member::{EtcdClient, EtcdError, EtcdMember, MemberSpec, pb, url};
use super::node::Node;
use crate::talos::api::proto::machine::{EtcdMember as TalosMember, EtcdMemberAlarm, EtcdMemberStatus};

/// How long a member may take to start (a joining one catches up first).
const START: Duration = Duration::from_secs(30);

/// Where the binaries are and where members keep their data.
pub(crate) struct RealEtcd {
    pub bin: PathBuf,
    pub dir: tempfile::TempDir,
}

impl RealEtcd {
    fn data_dir(&self, node: &Node) -> PathBuf {
        self.dir.path().join(node.ip().to_string().replace([':', '.'], "-"))
    }
}

fn to_status(e: EtcdError) -> Status {
    match e {
        EtcdError::Call { status, .. } => Status::new(status.code(), format!("etcd: {}", status.message())),
        other => Status::unavailable(other.to_string()),
    }
}

fn spec(real: &RealEtcd, node: &Node, cluster: Vec<(String, String)>, new: bool) -> MemberSpec {
    MemberSpec {
        name: node.hostname(),
        ip: node.ip(),
        data_dir: real.data_dir(node),
        initial_cluster: cluster,
        new_cluster: new,
    }
}

/// Starts `spec` and keeps the member if the node is still on the same
/// boot; logs etcd's own error otherwise.
async fn start_and_keep(real: &RealEtcd, node: &Arc<Node>, spec: MemberSpec, boot_id: u64) -> bool {
    match EtcdMember::start(&real.bin, &spec, START).await {
        Ok(m) if node.state().boot_id == boot_id => {
            node.set_etcd(Some(m));
            true
        }
        Ok(_) => false,
        Err(e) => {
            tracing::warn!(node = %node.ip(), error = %e, "simulated node: etcd did not start");
            let mut st = node.state();
            if st.boot_id == boot_id {
                st.etcd_failure = Some(e.to_string());
            }
            false
        }
    }
}

/// Bootstrap: a new one-member cluster.
pub(super) async fn bootstrap(real: &RealEtcd, node: Arc<Node>, boot_id: u64) {
    let me = (node.hostname(), url(node.ip(), super::etcd_member::PEER_PORT));
    let spec = spec(real, &node, vec![me], true);
    start_and_keep(real, &node, spec, boot_id).await;
}

/// A node with etcd data boots: its member starts from its data.
pub(super) async fn restart(real: &RealEtcd, node: Arc<Node>, boot_id: u64) {
    let me = (node.hostname(), url(node.ip(), super::etcd_member::PEER_PORT));
    let spec = spec(real, &node, vec![me], false);
    start_and_keep(real, &node, spec, boot_id).await;
}

/// A running member's client on another node of the cluster.
fn donor(shared: &Shared, node: &Node) -> Option<EtcdClient> {
    shared.nodes().into_iter().filter(|n| n.ip() != node.ip()).find_map(|n| n.etcd_client())
}

/// Join: MemberAdd as learner through a running member, start with the
/// existing cluster, promote once caught up. True when it joined.
pub(super) async fn join(real: &RealEtcd, shared: &Shared, node: Arc<Node>, boot_id: u64) -> bool {
    let peer = url(node.ip(), super::etcd_member::PEER_PORT);
    let deadline = tokio::time::Instant::now() + START;
    let (client, added, voting) = loop {
        if node.state().boot_id != boot_id {
            return false;
        }
        if let Some(c) = donor(shared, &node)
            && let Ok(members) = c.member_list().await
        {
            let voting: Vec<(String, String)> = members
                .iter()
                .filter(|m| !m.is_learner && !m.name.is_empty())
                .filter_map(|m| m.peer_ur_ls.first().map(|u| (m.name.clone(), u.clone())))
                .collect();
            if let Ok(added) = c.member_add(&peer, true).await {
                break (c, added, voting);
            }
        }
        if tokio::time::Instant::now() > deadline {
            tracing::warn!(node = %node.ip(), "simulated node: no running etcd member to join through");
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let mut cluster = voting;
    cluster.push((node.hostname(), peer));
    if !start_and_keep(real, &node, spec(real, &node, cluster, false), boot_id).await {
        return false;
    }
    while tokio::time::Instant::now() < deadline + START {
        if client.member_promote(added.id).await.is_ok() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tracing::warn!(node = %node.ip(), "simulated node: etcd learner never caught up");
    true
}

/// The node's own member, or Unavailable (etcd not running here).
fn own(node: &Node) -> Result<EtcdClient, Status> {
    node.etcd_client().ok_or_else(|| Status::unavailable("etcd is not running on this node yet"))
}

fn talos_member(m: pb::Member) -> TalosMember {
    TalosMember {
        id: m.id,
        hostname: m.name,
        peer_urls: m.peer_ur_ls,
        client_urls: m.client_ur_ls,
        is_learner: m.is_learner,
    }
}

/// `EtcdMemberList` as the local member sees it.
pub(super) async fn members(node: &Node) -> Result<Vec<TalosMember>, Status> {
    let list = own(node)?.member_list().await.map_err(to_status)?;
    Ok(list.into_iter().map(talos_member).collect())
}

/// `EtcdRemoveMemberByID`.
pub(super) async fn remove_by_id(node: &Node, id: u64) -> Result<(), Status> {
    own(node)?.member_remove(id).await.map_err(to_status)
}

/// The node's own member id.
async fn own_id(c: &EtcdClient) -> Result<u64, Status> {
    let s = c.status().await.map_err(to_status)?;
    Ok(s.header.map(|h| h.member_id).unwrap_or_default())
}

/// `EtcdLeaveCluster` / a graceful reset: remove the own member, stop it,
/// wipe its data.
pub(super) async fn leave(real: &RealEtcd, node: &Node) -> Result<(), Status> {
    let c = own(node)?;
    let id = own_id(&c).await?;
    // Talos retries while etcd refuses (e.g. "etcdserver: unhealthy
    // cluster" from its strict reconfiguration check), up to a minute.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        match c.member_remove(id).await.map_err(to_status) {
            Ok(()) => break,
            Err(s) if s.code() == tonic::Code::Unavailable && tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(s) => return Err(s),
        }
    }
    wipe(real, node);
    Ok(())
}

/// Stops the member and deletes its data directory.
pub(super) fn wipe(real: &RealEtcd, node: &Node) {
    node.set_etcd(None);
    let _ = std::fs::remove_dir_all(real.data_dir(node));
}

/// `EtcdStatus` of the local member.
pub(super) async fn status(node: &Node) -> Result<EtcdMemberStatus, Status> {
    let s = own(node)?.status().await.map_err(to_status)?;
    Ok(EtcdMemberStatus {
        member_id: s.header.as_ref().map(|h| h.member_id).unwrap_or_default(),
        protocol_version: s.version,
        db_size: s.db_size,
        db_size_in_use: s.db_size_in_use,
        leader: s.leader,
        raft_index: s.raft_index,
        raft_term: s.raft_term,
        raft_applied_index: s.raft_applied_index,
        errors: s.errors,
        is_learner: s.is_learner,
    })
}

/// `EtcdForfeitLeadership`: moves leadership to another started voting
/// member when this one leads; answers who leads afterwards.
pub(super) async fn forfeit(node: &Node) -> Result<String, Status> {
    let c = own(node)?;
    let s = c.status().await.map_err(to_status)?;
    let me = s.header.map(|h| h.member_id).unwrap_or_default();
    let list = c.member_list().await.map_err(to_status)?;
    let name_of = |id: u64| list.iter().find(|m| m.id == id).map(|m| m.name.clone()).unwrap_or_default();
    if s.leader != me {
        return Ok(name_of(s.leader));
    }
    let Some(target) = list.iter().find(|m| m.id != me && !m.is_learner && !m.name.is_empty()) else {
        return Ok(name_of(me));
    };
    c.move_leader(target.id).await.map_err(to_status)?;
    Ok(target.name.clone())
}

/// `EtcdSnapshot`: the local member's snapshot (etcd's database with its
/// hash), streamed from etcd's Maintenance.Snapshot.
pub(super) async fn snapshot(node: &Node) -> Result<Vec<u8>, Status> {
    own(node)?.snapshot().await.map_err(to_status)
}

/// `EtcdAlarmList`.
pub(super) async fn alarms(node: &Node) -> Result<Vec<EtcdMemberAlarm>, Status> {
    let list = own(node)?.alarms().await.map_err(to_status)?;
    Ok(list.into_iter().map(|a| EtcdMemberAlarm { member_id: a.member_id, alarm: a.alarm }).collect())
}

/// The members `ValidateForUpgrade` checks: each with whether its own
/// endpoint answers `Status` (etcd.go `validateMemberHealth`).
pub(super) async fn members_with_health(node: &Node) -> Result<Vec<(TalosMember, bool)>, Status> {
    let c = own(node).map_err(|_| Status::unknown("failed to acquire upgrade lock: context deadline exceeded"))?;
    let list = c.member_list().await.map_err(|e| Status::unknown(format!("failed to acquire upgrade lock: {e}")))?;
    let mut out = Vec::new();
    for m in list {
        let healthy = match m.client_ur_ls.first().map(|u| EtcdClient::new(u)) {
            Some(Ok(c)) => c.status().await.is_ok(),
            _ => false,
        };
        out.push((talos_member(m), healthy));
    }
    Ok(out)
}
