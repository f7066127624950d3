//! etcd leadership, status and alarms (shared/specs/talos/day2.md §4): what
//! a rolling upgrade reads before and moves before a control plane reboots.
//! Membership calls are in `client.rs`.

use super::client::NodeClient;
use super::error::ApiError;
use super::proto::machine::EtcdForfeitLeadershipRequest;

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

    /// `EtcdAlarmList`: the cluster's alarms (NOSPACE, CORRUPT), by member.
    pub async fn etcd_alarms(&self) -> Result<Vec<EtcdMemberAlarm>, ApiError> {
        let r = self.call("EtcdAlarmList", self.machine().etcd_alarm_list(self.request(()))).await?;
        self.item("EtcdAlarmList", r.messages, |i| i.metadata.as_ref()).map(|i| i.member_alarms)
    }
}
