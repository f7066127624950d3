//! `/cluster/ha/resources`: a VM under the HA manager (pve-ha-manager
//! `PVE/API2/HA/Resources.pm`). Once a VM is a resource, its power is the
//! manager's: a start or stop of the VM becomes a request the manager
//! carries out a moment later (the task is `hastart`/`hastop`), and the
//! resource's `state` says what it keeps the VM in.

use serde_json::Value as Json;

use super::propstring::parse_bool;
use super::request::{Effect, Request, segment};

/// The service id of VM `vmid` (`vm:100`).
pub fn sid(vmid: u32) -> String {
    format!("vm:{vmid}")
}

/// `GET /cluster/ha/resources?type=vm`: every VM resource with its options.
pub fn list() -> Request {
    Request::get("/cluster/ha/resources").param("type", "vm")
}

/// `POST /cluster/ha/resources`.
pub fn create(r: &HaResource) -> Request {
    let req = Request::post("/cluster/ha/resources").effect(Effect::Once).param("sid", sid(r.vmid)).param("type", "vm");
    with_options(req, r)
}

/// `PUT /cluster/ha/resources/{sid}`: every option, and `delete` for what
/// `current` (PVE's) has set and `r` no longer does; `digest` guards
/// against a concurrent change. Only keys PVE has are deleted: PVE refuses
/// a `delete` of a key it does not know ("no such option"), and PVE 8 has
/// no `failback`.
pub fn update(r: &HaResource, current: &HaResource, digest: Option<&str>) -> Request {
    let req = Request::put(format!("/cluster/ha/resources/{}", segment(&sid(r.vmid)))).effect(Effect::Idempotent);
    let req = with_options(req, r);
    let mut delete = Vec::new();
    if r.comment.is_none() && current.comment.is_some() {
        delete.push("comment");
    }
    if r.failback && !current.failback {
        // Back to the default.
        delete.push("failback");
    }
    req.opt_param("delete", (!delete.is_empty()).then(|| delete.join(","))).opt_param("digest", digest)
}

/// `DELETE /cluster/ha/resources/{sid}`: the VM leaves the HA manager and
/// keeps running as it is.
pub fn delete(vmid: u32) -> Request {
    Request::delete(format!("/cluster/ha/resources/{}", segment(&sid(vmid))))
}

/// `failback` is sent only when off: PVE 9 added it (default on), and an
/// older PVE refuses a parameter it does not know.
fn with_options(mut req: Request, r: &HaResource) -> Request {
    req = req.param("state", &r.state).param("max_restart", r.max_restart).param("max_relocate", r.max_relocate);
    if !r.failback {
        req = req.flag("failback", false);
    }
    req.opt_param("comment", r.comment.as_ref())
}

/// A VM's HA resource.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HaResource {
    /// The VM.
    pub vmid: u32,
    /// `started`, `stopped`, `disabled` or `ignored` (`enabled` is an alias
    /// of `started`).
    pub state: String,
    /// Restarts on the same node before relocating (PVE default 1).
    pub max_restart: i64,
    /// Relocations to other nodes before giving up (PVE default 1).
    pub max_relocate: i64,
    /// Back to the preferred node when it returns (PVE 9; default on).
    pub failback: bool,
    /// The comment.
    pub comment: Option<String>,
}

impl HaResource {
    /// From an item of [`list`]'s answer; `None` for one that is not a VM.
    pub fn from_json(v: &Json) -> Option<HaResource> {
        let sid = v["sid"].as_str()?;
        let vmid = sid.strip_prefix("vm:").unwrap_or(sid).parse().ok()?;
        let num = |k: &str, d: i64| super::lenient::text(&v[k]).and_then(|t| t.parse().ok()).unwrap_or(d);
        Some(HaResource {
            vmid,
            state: v["state"].as_str().unwrap_or("started").to_string(),
            max_restart: num("max_restart", 1),
            max_relocate: num("max_relocate", 1),
            failback: super::lenient::text(&v["failback"]).and_then(|t| parse_bool(&t)).unwrap_or(true),
            comment: v["comment"].as_str().filter(|c| !c.is_empty()).map(str::to_string),
        })
    }
}

/// VM `vmid`'s resource and the config's digest in a [`list`] answer.
pub fn find(list: &Json, vmid: u32) -> Option<(HaResource, Option<String>)> {
    list.as_array()?.iter().find_map(|i| {
        let r = HaResource::from_json(i).filter(|r| r.vmid == vmid)?;
        Some((r, i["digest"].as_str().map(str::to_string)))
    })
}

/// The HA states PVE takes.
pub const STATES: &[&str] = &["started", "stopped", "disabled", "ignored", "enabled"];

/// Whether the VM should be running in `state` (`None`: the manager
/// leaves it alone).
pub fn runs_in(state: &str) -> Option<bool> {
    match state {
        "started" | "enabled" => Some(true),
        "stopped" | "disabled" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn r() -> HaResource {
        HaResource {
            vmid: 100,
            state: "started".into(),
            max_restart: 1,
            max_relocate: 2,
            failback: true,
            comment: None,
        }
    }

    #[test]
    fn requests_send_failback_only_when_off() {
        assert_eq!(create(&r()).body().unwrap(), "sid=vm%3A100&type=vm&state=started&max_restart=1&max_relocate=2");
        let u = update(&HaResource { failback: false, comment: Some("cp".into()), ..r() }, &r(), Some("d"));
        assert_eq!(u.path, "/cluster/ha/resources/vm%3A100");
        assert_eq!(u.body().unwrap(), "state=started&max_restart=1&max_relocate=2&failback=0&comment=cp&digest=d");
        // Only what PVE has is deleted (PVE 8 knows no failback).
        assert!(!update(&r(), &r(), None).body().unwrap().contains("delete"));
        let had = HaResource { failback: false, comment: Some("cp".into()), ..r() };
        assert!(update(&r(), &had, None).body().unwrap().ends_with("&delete=comment%2Cfailback"));
    }

    #[test]
    fn listings_decode_with_pves_defaults() {
        let list = serde_json::json!([{"sid": "vm:100", "type": "vm", "state": "stopped", "digest": "x",
            "max_relocate": 2}, {"sid": "ct:200", "type": "ct"}]);
        let (got, digest) = find(&list, 100).unwrap();
        assert_eq!(got, HaResource { state: "stopped".into(), ..r() });
        assert_eq!(digest.as_deref(), Some("x"));
        assert!(find(&list, 200).is_none());
        assert_eq!((runs_in("enabled"), runs_in("disabled"), runs_in("ignored")), (Some(true), Some(false), None));
    }
}
