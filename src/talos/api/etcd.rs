//! etcd leadership, status and alarms (shared/specs/talos/day2.md §4): what
//! a rolling upgrade reads before and moves before a control plane reboots.
//! Membership calls are in `client.rs`.

use super::client::NodeClient;
use super::error::ApiError;
use std::time::Duration;

use super::proto::common;
use super::proto::machine::{EtcdForfeitLeadershipRequest, EtcdSnapshotRequest};

pub use super::proto::machine::{EtcdMemberAlarm, EtcdMemberStatus};

impl NodeClient {
    /// `EtcdStatus`: this node's member, the leader's id, and the errors
    /// etcd reports for it.
    pub async fn etcd_status(&self) -> Result<EtcdMemberStatus, ApiError> {
        let r = self.call("EtcdStatus", self.machine().etcd_status(self.request(()))).await?;
        let item = self.item("EtcdStatus", r.messages, |i| i.metadata.as_ref())?;
        item.member_status.ok_or_else(|| ApiError::Protocol {
            at: self.at("EtcdStatus"),
            message: "no member status in the reply".to_string(),
        })
    }

    /// `EtcdForfeitLeadership`: moves leadership away from this node if it
    /// leads; returns the name of the member that leads afterwards.
    pub async fn etcd_forfeit_leadership(&self) -> Result<String, ApiError> {
        let req = self.request(EtcdForfeitLeadershipRequest {});
        let r = self.call("EtcdForfeitLeadership", self.machine().etcd_forfeit_leadership(req)).await?;
        self.item("EtcdForfeitLeadership", r.messages, |i| i.metadata.as_ref()).map(|i| i.member)
    }

    /// `EtcdSnapshot`: the local member's snapshot as the stream of
    /// `common.Data` chunks delivers it (a real etcd snapshot: database plus
    /// hash, readable by `etcdutl snapshot status`), within `limit`. The
    /// caller writes it (talosctl: to `<path>.part`, then renames).
    pub async fn etcd_snapshot(&self, limit: Duration) -> Result<Vec<u8>, ApiError> {
        let mut req = self.request(EtcdSnapshotRequest {});
        req.set_timeout(limit);
        let mut client = self.machine();
        let fut = async move {
            let mut stream = client.etcd_snapshot(req).await?.into_inner();
            let mut bytes = Vec::new();
            while let Some(chunk) = stream.message().await? {
                if let Some(m) = chunk.metadata.as_ref().filter(|m: &&common::Metadata| !m.error.is_empty()) {
                    return Err(tonic::Status::unknown(m.error.clone()));
                }
                bytes.extend_from_slice(&chunk.bytes);
            }
            Ok(tonic::Response::new(bytes))
        };
        self.call_within("EtcdSnapshot", limit, fut).await
    }

    /// `EtcdAlarmList`: the cluster's alarms (NOSPACE, CORRUPT), by member.
    pub async fn etcd_alarms(&self) -> Result<Vec<EtcdMemberAlarm>, ApiError> {
        let r = self.call("EtcdAlarmList", self.machine().etcd_alarm_list(self.request(()))).await?;
        self.item("EtcdAlarmList", r.messages, |i| i.metadata.as_ref()).map(|i| i.member_alarms)
    }
}
