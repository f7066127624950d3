//! One error type for the PVE client.
//!
//! The split that matters for retries (after proxmox-client): a
//! [`Error::Connect`] means the request never reached PVE, so any call may
//! be sent again; a [`Error::Transport`] means it may have, so only safe or
//! idempotent calls are. [`Error::Api`] is PVE's own answer, classified by
//! [`ApiError::kind`] the way api.md §15 recommends.

use std::collections::BTreeMap;
use std::fmt;

use super::upid::Upid;

/// Everything the client can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The connection could not be made; nothing was sent.
    #[error("cannot connect to the Proxmox VE API")]
    Connect(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The request may have been sent, but no complete answer came back.
    #[error("the connection to the Proxmox VE API failed during the request")]
    Transport(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// PVE answered with an error status.
    #[error("{0}")]
    Api(ApiError),
    /// PVE answered 200 with a body we cannot read.
    #[error("unexpected answer from {path}: {message}")]
    Decode {
        /// The request path.
        path: String,
        /// What was wrong.
        message: String,
    },
    /// A worker task ended with an error.
    #[error("task {upid} failed: {exitstatus}{}", log_suffix(.log_tail))]
    Task {
        /// The task.
        upid: Box<Upid>,
        /// Its exit status (the error text).
        exitstatus: String,
        /// The last lines of its log.
        log_tail: Vec<String>,
    },
    /// A wait ran past its deadline.
    #[error("timed out after {secs}s waiting for {what}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// How long we waited.
        secs: u64,
    },
    /// Terraform asked the provider to stop while this waited.
    #[error("stopped after {secs}s waiting for {what} (Terraform asked the provider to stop)")]
    Stopped {
        /// What was awaited.
        what: String,
        /// How long we waited.
        secs: u64,
    },
    /// A request that creates a VM may or may not have been carried out:
    /// it was sent, but the connection broke or a proxy answered 59x. The
    /// caller must look (does VM `vmid` exist?) before it forgets or retries.
    #[error("no clear answer to the request that creates VM {vmid}")]
    MaybeApplied {
        /// The VMID the request used.
        vmid: u32,
        /// What went wrong.
        #[source]
        source: Box<Error>,
    },
    /// The client settings cannot work (a bad endpoint, a TLS setup).
    #[error("invalid Proxmox client settings: {0}")]
    Settings(String),
    /// The CA certificate to trust is not usable.
    #[error("invalid Proxmox client settings: ca_certificate: {0}")]
    CaCertificate(String),
    /// A value does not parse (property string, UPID, VMID).
    #[error(transparent)]
    Parse(#[from] ParseError),
}

impl Error {
    /// A [`crate::wait::until`] that did not succeed, as a client error.
    pub fn from_wait(what: &str, e: crate::wait::Ended<Error>) -> Error {
        use crate::wait::Ended;
        match e {
            Ended::Failed(e) => e,
            Ended::TimedOut(r) => Error::Timeout { what: what.to_string(), secs: r.after.as_secs() },
            Ended::Stopped(r) => Error::Stopped { what: what.to_string(), secs: r.after.as_secs() },
        }
    }

    /// True when the error is Terraform's stop request, not a failure.
    pub fn is_stopped(&self) -> bool {
        match self {
            Error::Stopped { .. } => true,
            Error::MaybeApplied { source, .. } => source.is_stopped(),
            _ => false,
        }
    }
}

fn log_suffix(lines: &[String]) -> String {
    if lines.is_empty() { String::new() } else { format!("\ntask log (last lines):\n  {}", lines.join("\n  ")) }
}

/// A value PVE or the user gave that does not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what} {value:?}: {why}")]
pub struct ParseError {
    /// What kind of value (`net0`, `UPID`, `VMID`, ...).
    pub what: &'static str,
    /// The text.
    pub value: String,
    /// Why it is wrong.
    pub why: String,
}

impl ParseError {
    /// A parse error.
    pub fn new(what: &'static str, value: impl Into<String>, why: impl Into<String>) -> ParseError {
        ParseError { what, value: value.into(), why: why.into() }
    }
}

/// An error status from PVE with its message and per-field errors.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    /// `GET /nodes/...` — what was asked.
    pub request: String,
    /// The HTTP status (including the 59x proxy pseudo-statuses).
    pub status: u16,
    /// The message: body `message`, else the reason phrase (trimmed).
    pub message: String,
    /// Per-parameter errors (400 `errors`).
    pub errors: BTreeMap<String, String>,
}

/// How an API error should be handled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApiErrorKind {
    /// 59x, `no quorum`, `unable to parse worker upid`: retry with backoff.
    Transient,
    /// `can't lock file ... got timeout` or `VM is locked`: another task
    /// holds the config lock; nothing happened, retry with backoff.
    Locked,
    /// `already exists` / `config file already exists`.
    Conflict,
    /// `does not exist`, 404.
    NotFound,
    /// `checksum mismatch`: the config changed since it was read.
    DigestMismatch,
    /// 401.
    Unauthorized,
    /// 403.
    Forbidden,
    /// 400 or anything else.
    Invalid,
}

impl ApiError {
    /// The classification of this error.
    pub fn kind(&self) -> ApiErrorKind {
        let m = self.full_text().to_ascii_lowercase();
        match self.status {
            401 => return ApiErrorKind::Unauthorized,
            403 => return ApiErrorKind::Forbidden,
            404 => return ApiErrorKind::NotFound,
            595 | 596 | 599 => return ApiErrorKind::Transient,
            _ => {}
        }
        if m.contains("got timeout") && m.contains("lock") || m.contains("vm is locked") {
            ApiErrorKind::Locked
        } else if m.contains("no quorum") || m.contains("unable to parse worker upid") || m.contains("got timeout") {
            ApiErrorKind::Transient
        } else if m.contains("already exists") {
            ApiErrorKind::Conflict
        } else if m.contains("checksum mismatch") {
            ApiErrorKind::DigestMismatch
        } else if m.contains("does not exist") || m.contains("no such resource") {
            ApiErrorKind::NotFound
        } else {
            ApiErrorKind::Invalid
        }
    }

    /// The message plus every field error, for classification.
    fn full_text(&self) -> String {
        let mut s = self.message.clone();
        for (k, v) in &self.errors {
            s.push_str(&format!("; {k}: {v}"));
        }
        s
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} → {}", self.request, self.status)?;
        if !self.message.is_empty() {
            write!(f, " {}", self.message)?;
        }
        for (k, v) in &self.errors {
            write!(f, "\n  {k}: {v}")?;
        }
        Ok(())
    }
}

impl Error {
    /// The API error, if PVE answered with one.
    pub fn api(&self) -> Option<&ApiError> {
        match self {
            Error::Api(e) => Some(e),
            _ => None,
        }
    }

    /// The API error's kind, if PVE answered with one.
    pub fn api_kind(&self) -> Option<ApiErrorKind> {
        self.api().map(ApiError::kind)
    }

    /// A missing object (a VM config that does not exist).
    pub fn is_not_found(&self) -> bool {
        self.api_kind() == Some(ApiErrorKind::NotFound)
    }

    /// Sent, but with no clear outcome: the connection broke during the
    /// request, or a 59x other than 595 (pveproxy could not reach the node
    /// and says so before sending) came back.
    pub fn is_ambiguous(&self) -> bool {
        match self {
            Error::Transport(_) | Error::MaybeApplied { .. } => true,
            Error::Api(e) => e.kind() == ApiErrorKind::Transient && e.status != 595,
            _ => false,
        }
    }

    /// An "already exists" conflict.
    pub fn is_conflict(&self) -> bool {
        self.api_kind() == Some(ApiErrorKind::Conflict)
    }

    /// Per-field errors PVE named (400 `errors`), empty otherwise.
    pub fn field_errors(&self) -> Vec<(String, String)> {
        match self {
            Error::Api(e) => e.errors.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            _ => Vec::new(),
        }
    }
}

/// `Result` with this module's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn api(status: u16, msg: &str) -> ApiError {
        ApiError { request: "GET /x".into(), status, message: msg.into(), errors: BTreeMap::new() }
    }

    #[test]
    fn classification() {
        use ApiErrorKind::*;
        let cases = [
            (596, "Broken pipe", Transient),
            (595, "No route to host", Transient),
            (599, "Too many redirections", Transient),
            (500, "can't lock file '/var/lock/qemu-server/lock-100.conf' - got timeout", Locked),
            (500, "VM is locked (backup)", Locked),
            (500, "cluster not ready - no quorum?", Transient),
            (500, "unable to create VM 100 - VM 100 already exists on node 'pve1'", Conflict),
            (500, "unable to create VM 100: config file already exists", Conflict),
            (500, "Configuration file 'nodes/pve1/qemu-server/100.conf' does not exist", NotFound),
            (500, "checksum mismatch (file change by other user?)", DigestMismatch),
            (401, "authentication failure", Unauthorized),
            (403, "Permission check failed (/vms/100, VM.Allocate)", Forbidden),
            (400, "Parameter verification failed.", Invalid),
        ];
        for (status, msg, kind) in cases {
            assert_eq!(api(status, msg).kind(), kind, "{status} {msg}");
        }
        let mut e = api(400, "Parameter verification failed.");
        e.errors.insert("vmid".into(), "VM 218 already exists".into());
        assert_eq!(e.kind(), Conflict);
        assert!(e.to_string().contains("vmid: VM 218 already exists"));
    }
}
