//! `/nodes/{node}/tasks`: status and log of worker tasks.

use serde::Deserialize;

use super::request::{Request, segment};
use super::upid::Upid;

/// `GET /nodes/{node}/tasks/{upid}/status` (on the UPID's node).
pub fn status(upid: &Upid) -> Request {
    Request::get(format!("/nodes/{}/tasks/{}/status", segment(&upid.node), segment(&upid.to_string())))
}

/// `GET /nodes/{node}/tasks/{upid}/log?start=..&limit=..`.
pub fn log(upid: &Upid, start: u32, limit: u32) -> Request {
    Request::get(format!("/nodes/{}/tasks/{}/log", segment(&upid.node), segment(&upid.to_string())))
        .param("start", start)
        .param("limit", limit)
}

/// `GET /nodes/{node}/tasks?limit=..`: the node's newest tasks (finished
/// ones, newest first), every type and VM.
pub fn list(node: &str, limit: u32) -> Request {
    Request::get(format!("/nodes/{}/tasks", segment(node))).param("limit", limit)
}

/// One task of a node's task list.
#[derive(Clone, Debug, Deserialize)]
pub struct TaskEntry {
    /// The UPID (unique per task).
    pub upid: String,
    /// `qmstart`, `qmreboot`, ...
    #[serde(rename = "type", default)]
    pub kind: String,
    /// The VMID for VM tasks.
    #[serde(default, deserialize_with = "super::lenient::opt_text")]
    pub id: Option<String>,
    /// In a listing: the exit status once the task ended; absent (or
    /// `running`) while it runs.
    #[serde(default)]
    pub status: Option<String>,
}

impl TaskEntry {
    /// Whether the task has ended (well or not).
    pub fn ended(&self) -> bool {
        self.status.as_deref().is_some_and(|s| !s.is_empty() && s != "running")
    }

    /// Whether the task ended well: `OK` or `WARNINGS: n`.
    pub fn succeeded(&self) -> bool {
        self.status.as_deref().is_some_and(|s| s == "OK" || s.starts_with("WARNINGS: "))
    }
}

/// A task's status.
#[derive(Clone, Debug, Deserialize)]
pub struct TaskStatus {
    /// `running` or `stopped`.
    pub status: String,
    /// Only when stopped.
    #[serde(default)]
    pub exitstatus: Option<String>,
}

/// One log line.
#[derive(Clone, Debug, Deserialize)]
pub struct LogLine {
    /// The text.
    #[serde(default)]
    pub t: String,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn list_asks_one_node_for_a_bounded_page() {
        assert_eq!(list("pve 1", 50).path_and_query(), "/nodes/pve%201/tasks?limit=50");
    }

    #[test]
    fn a_listed_task_ends_with_its_exit_status() {
        let entry = |status: serde_json::Value| -> TaskEntry {
            serde_json::from_value(serde_json::json!({"upid": "UPID:pve1:1:2:3:qmreset:100:root@pam:",
                "type": "qmreset", "id": 100, "status": status}))
            .unwrap()
        };
        let running = entry(serde_json::Value::Null);
        assert_eq!((running.ended(), running.succeeded(), running.id.as_deref()), (false, false, Some("100")));
        assert!(!entry("running".into()).ended());
        let ok = entry("OK".into());
        assert!(ok.ended() && ok.succeeded());
        assert!(entry("WARNINGS: 2".into()).succeeded());
        let failed = entry("VM 100 not running".into());
        assert!(failed.ended() && !failed.succeeded());
    }
}
