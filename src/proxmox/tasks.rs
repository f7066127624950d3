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
