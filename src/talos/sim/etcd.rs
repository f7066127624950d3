//! The etcd calls beyond membership, over the simulator's member model
//! (issue 13 §2 puts real etcd behind them later). Upstream (siderolabs/talos):
//!
//! - `internal/pkg/etcd/etcd.go` `ValidateForUpgrade` (the legacy `Upgrade`
//!   on a control plane, unless `force`): one member without `preserve`,
//!   exactly two members, a member not started or not healthy are refused,
//!   wrapped by `v1alpha1_server.go` as "error validating etcd for upgrade:
//!   …"; the upgrade lock (`failed to acquire upgrade lock`) needs a
//!   reachable etcd.
//! - `EtcdForfeitLeadership` answers the member that leads afterwards (the
//!   same one when this node did not lead); `EtcdStatus` the local member's
//!   status with the leader's id; `EtcdAlarmList` the alarms of the cluster.

use tonic::Status;

use super::Shared;
use super::node::Node;
use crate::talos::api::proto::machine::{EtcdMember, EtcdMemberAlarm, EtcdMemberStatus};

/// The etcd protocol version the simulated members report.
const PROTOCOL_VERSION: &str = "3.5.21";

fn member_of<'a>(members: &'a [EtcdMember], node: &Node) -> Option<&'a EtcdMember> {
    let hostname = node.hostname();
    members.iter().find(|m| m.hostname == hostname)
}

/// `ValidateForUpgrade` for a control plane (`preserve` keeps a
/// single-member cluster upgradable).
pub(super) fn validate_for_upgrade(
    shared: &Shared,
    members: Vec<(EtcdMember, bool)>,
    preserve: bool,
) -> Result<(), Status> {
    let refuse = |m: String| Err(Status::unknown(format!("error validating etcd for upgrade: {m}")));
    if members.is_empty() {
        // No etcd answers: the lock cannot be taken.
        return Err(Status::unknown("failed to acquire upgrade lock: context deadline exceeded"));
    }
    if !preserve && members.len() == 1 {
        return refuse(
            "only 1 etcd member found; assuming this is not an HA setup and refusing to upgrade; if this is a single-node cluster, use --preserve to upgrade"
                .to_string(),
        );
    }
    if members.len() == 2 {
        return refuse(format!(
            "etcd member count({}) is insufficient to maintain quorum if upgrade commences",
            members.len()
        ));
    }
    for (m, answers) in &members {
        if m.hostname.is_empty() {
            return refuse(format!(
                "etcd member {:016x} is not started, all members must be running to perform an upgrade",
                m.id
            ));
        }
        if !answers || shared.member_unhealthy(&m.hostname) {
            return refuse(format!(
                "etcd member {:016x} is not healthy; all members must be healthy to perform an upgrade: context deadline exceeded",
                m.id
            ));
        }
    }
    Ok(())
}

/// `EtcdForfeitLeadership` on `node`: leadership moves to the next healthy
/// member when `node` leads; answers the leader's name.
pub(super) fn forfeit_leadership(shared: &Shared, node: &Node) -> Result<String, Status> {
    let members = shared.members();
    let me = member_of(&members, node).ok_or_else(|| Status::unavailable("etcd is not running on this node yet"))?;
    let leader = shared.leader(&members);
    if leader != Some(me.id) {
        return Ok(members.iter().find(|m| Some(m.id) == leader).map(|m| m.hostname.clone()).unwrap_or_default());
    }
    let next = members.iter().find(|m| m.id != me.id && !shared.member_unhealthy(&m.hostname));
    match next {
        Some(n) => {
            shared.set_leader(n.id);
            Ok(n.hostname.clone())
        }
        None => Ok(me.hostname.clone()),
    }
}

/// `EtcdStatus` of `node`'s member.
pub(super) fn status(shared: &Shared, node: &Node) -> Result<EtcdMemberStatus, Status> {
    let members = shared.members();
    let me = member_of(&members, node).ok_or_else(|| Status::unavailable("etcd is not running on this node yet"))?;
    let errors =
        if shared.member_unhealthy(&me.hostname) { vec!["etcdserver: no leader".to_string()] } else { Vec::new() };
    Ok(EtcdMemberStatus {
        member_id: me.id,
        protocol_version: PROTOCOL_VERSION.to_string(),
        db_size: 20 << 20,
        db_size_in_use: 8 << 20,
        leader: shared.leader(&members).unwrap_or_default(),
        raft_index: 1000 + members.len() as u64,
        raft_term: 2,
        raft_applied_index: 1000 + members.len() as u64,
        errors,
        is_learner: me.is_learner,
    })
}

/// `EtcdAlarmList`: the simulator raises none.
pub(super) fn alarms() -> Vec<EtcdMemberAlarm> {
    Vec::new()
}
