//! Task ids: `UPID:<node>:<pid>:<pstart>:<starttime>:<type>:<id>:<user>:`.

use std::fmt;
use std::str::FromStr;

use super::error::ParseError;

/// A parsed UPID (pve-common `PVE::UPID`). Displays as the original text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Upid {
    /// The node that runs the task: always poll this one.
    pub node: String,
    /// Worker pid.
    pub pid: u32,
    /// Process start (8 or 9 hex digits).
    pub pstart: u64,
    /// Start time (epoch seconds).
    pub starttime: u64,
    /// Worker type (`qmcreate`, `qmclone`, `download`, ...).
    pub worker_type: String,
    /// Worker id (the vmid, the source vmid for clones, a filename...).
    pub id: String,
    /// Who started it (`root@pam`, `user@pve!token`).
    pub user: String,
    raw: String,
}

impl FromStr for Upid {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Upid, ParseError> {
        let bad = |why: &str| ParseError::new("UPID", s, why);
        let rest = s.strip_prefix("UPID:").ok_or_else(|| bad("does not start with UPID:"))?;
        let rest = rest.strip_suffix(':').ok_or_else(|| bad("does not end with ':'"))?;
        let parts: Vec<&str> = rest.split(':').collect();
        if parts.len() != 7 {
            return Err(bad("expected 7 fields"));
        }
        let hex = |t: &str, max: usize| -> Result<u64, ParseError> {
            if t.is_empty() || t.len() > max {
                return Err(bad("bad hex field"));
            }
            u64::from_str_radix(t, 16).map_err(|_| bad("bad hex field"))
        };
        if parts[0].is_empty() || parts[4].is_empty() || parts[6].is_empty() {
            return Err(bad("empty node, type or user"));
        }
        Ok(Upid {
            node: parts[0].to_string(),
            pid: u32::try_from(hex(parts[1], 8)?).map_err(|_| bad("pid"))?,
            pstart: hex(parts[2], 9)?,
            starttime: hex(parts[3], 8)?,
            worker_type: parts[4].to_string(),
            id: parts[5].to_string(),
            user: parts[6].to_string(),
            raw: s.to_string(),
        })
    }
}

impl fmt::Display for Upid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

/// Whether a task exit status means success: exactly `OK` or `WARNINGS: n`.
pub fn exit_ok(exitstatus: &str) -> bool {
    exitstatus == "OK"
        || exitstatus.strip_prefix("WARNINGS: ").is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        let s = "UPID:pve1:000003E8:00001B58:6B02108D:qmcreate:100:root@pam!tf:";
        let u: Upid = s.parse().unwrap();
        assert_eq!(u.node, "pve1");
        assert_eq!(u.pid, 1000);
        assert_eq!(u.pstart, 7000);
        assert_eq!(u.worker_type, "qmcreate");
        assert_eq!(u.id, "100");
        assert_eq!(u.user, "root@pam!tf");
        assert_eq!(u.to_string(), s);
        // 9-digit pstart (hosts up > 497 days) and an empty id
        let u: Upid = "UPID:n:0000000A:1000000AB:6B02108D:download::root@pam:".parse().unwrap();
        assert_eq!(u.pstart, 0x1000000AB);
        assert_eq!(u.id, "");
    }

    #[test]
    fn rejects_garbage() {
        for s in ["", "UPID:", "UPID:pve1:x:1:1:t:1:u:", "UPID:pve1:1:1:1:t:1:u", "XUPID:pve1:1:1:1:t:1:u:"] {
            assert!(s.parse::<Upid>().is_err(), "{s}");
        }
    }

    #[test]
    fn exit_status() {
        assert!(exit_ok("OK"));
        assert!(exit_ok("WARNINGS: 3"));
        assert!(!exit_ok("WARNINGS: "));
        assert!(!exit_ok("unexpected status"));
        assert!(!exit_ok("unable to create VM 100 - volume local:iso/x.iso does not exist"));
    }
}
