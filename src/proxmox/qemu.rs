//! `/nodes/{node}/qemu`: create, clone, config, power, resize, delete,
//! guest agent. Builders are sans-IO; [`Client`] methods execute them.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use super::client::Client;
use super::cluster;
use super::error::{Error, Result};
use super::lenient;
use super::request::{Effect, Request, segment};
use super::upid::Upid;

/// Lowest and highest VMID PVE accepts.
pub const VMID_MIN: u32 = 100;
/// Highest VMID PVE accepts.
pub const VMID_MAX: u32 = 999_999_999;

fn vm_path(node: &str, vmid: u32) -> String {
    format!("/nodes/{}/qemu/{vmid}", segment(node))
}

/// `POST /nodes/{node}/qemu` with `vmid` and config parameters.
pub fn create(node: &str, vmid: u32, params: &[(String, String)]) -> Request {
    let mut r = Request::post(format!("/nodes/{}/qemu", segment(node))).param("vmid", vmid);
    for (k, v) in params {
        r = r.param(k.clone(), v);
    }
    r
}

/// Clone options.
#[derive(Clone, Debug, Default)]
pub struct CloneOptions {
    /// Name of the new VM.
    pub name: Option<String>,
    /// Full copy (else linked; linked needs a template).
    pub full: Option<bool>,
    /// Target storage (full clones only).
    pub storage: Option<String>,
    /// Target node.
    pub target: Option<String>,
    /// The pool the new VM joins.
    pub pool: Option<String>,
}

/// `POST /nodes/{node}/qemu/{src}/clone`.
pub fn clone(node: &str, src: u32, newid: u32, o: &CloneOptions) -> Request {
    let mut r = Request::post(format!("{}/clone", vm_path(node, src)))
        .param("newid", newid)
        .opt_param("name", o.name.as_ref())
        .opt_param("storage", o.storage.as_ref())
        .opt_param("target", o.target.as_ref())
        .opt_param("pool", o.pool.as_ref());
    if let Some(f) = o.full {
        r = r.flag("full", f);
    }
    r
}

/// `GET .../config`.
pub fn config(node: &str, vmid: u32) -> Request {
    Request::get(format!("{}/config", vm_path(node, vmid)))
}

/// `GET .../pending`: every key with its current value and any pending
/// change (real PVE's `GET config` folds pending values in by default;
/// fakepve's does not, so this is the one form that means the same on both).
pub fn pending(node: &str, vmid: u32) -> Request {
    Request::get(format!("{}/pending", vm_path(node, vmid)))
}

/// One `/pending` entry.
#[derive(Clone, Debug, Deserialize)]
pub struct PendingEntry {
    /// The key.
    pub key: String,
    /// The current value.
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub value: Option<String>,
    /// The value after the next boot.
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub pending: Option<String>,
    /// Deleted at the next boot.
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub delete: Option<String>,
}

/// The config as it will be after pending changes apply, and whether any
/// change is pending.
pub fn effective_config(entries: Vec<PendingEntry>) -> (VmConfig, bool) {
    let mut values = BTreeMap::new();
    let mut any_pending = false;
    for e in entries {
        if e.delete.as_deref().is_some_and(|d| d != "0") {
            any_pending = true;
            continue;
        }
        if let Some(p) = e.pending {
            any_pending = true;
            values.insert(e.key, p);
        } else if let Some(v) = e.value {
            values.insert(e.key, v);
        }
    }
    (VmConfig { values }, any_pending)
}

/// `POST .../config` (async, a `qmconfig` task) with `digest` and
/// `delete`. Not blindly re-sent: the digest makes a second send fail.
pub fn update(node: &str, vmid: u32, set: &[(String, String)], delete: &[String], digest: Option<&str>) -> Request {
    let mut r = Request::post(format!("{}/config", vm_path(node, vmid)));
    for (k, v) in set {
        r = r.param(k.clone(), v);
    }
    if !delete.is_empty() {
        r = r.param("delete", delete.join(","));
    }
    r.opt_param("digest", digest)
}

/// `GET .../status/current`.
pub fn status(node: &str, vmid: u32) -> Request {
    Request::get(format!("{}/status/current", vm_path(node, vmid)))
}

/// A power action.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Power {
    /// `start`
    Start,
    /// `stop` (hard)
    Stop,
    /// `shutdown` (ACPI or agent)
    Shutdown,
    /// `reboot` (applies pending changes)
    Reboot,
    /// `reset` (a hard reset, as the reset button)
    Reset,
}

/// `POST .../status/{action}`. `timeout` in seconds; `force_stop` for
/// shutdown.
pub fn power(node: &str, vmid: u32, action: Power, timeout: Option<u64>, force_stop: bool) -> Request {
    let name = match action {
        Power::Start => "start",
        Power::Stop => "stop",
        Power::Shutdown => "shutdown",
        Power::Reboot => "reboot",
        Power::Reset => "reset",
    };
    let mut r = Request::post(format!("{}/status/{name}", vm_path(node, vmid)))
        .effect(Effect::Idempotent)
        .opt_param("timeout", timeout);
    if force_stop {
        r = r.flag("forceStop", true);
    }
    r
}

/// `PUT .../resize` to an absolute size (`32G`): a second send is harmless.
pub fn resize(node: &str, vmid: u32, disk: &str, size: &str) -> Request {
    Request::put(format!("{}/resize", vm_path(node, vmid))).param("disk", disk).param("size", size)
}

/// `DELETE /nodes/{node}/qemu/{vmid}?purge=1&destroy-unreferenced-disks=1`.
pub fn destroy(node: &str, vmid: u32) -> Request {
    Request::delete(vm_path(node, vmid)).flag("purge", true).flag("destroy-unreferenced-disks", true)
}

/// `GET .../agent/network-get-interfaces` (needs only `VM.GuestAgent.Audit`).
pub fn agent_interfaces(node: &str, vmid: u32) -> Request {
    Request::get(format!("{}/agent/network-get-interfaces", vm_path(node, vmid)))
}

/// A VM config: every key as text, plus the `digest`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VmConfig {
    /// All keys (numbers and booleans as text).
    pub values: BTreeMap<String, String>,
}

impl<'de> Deserialize<'de> for VmConfig {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<VmConfig, D::Error> {
        lenient::text_map(d).map(|values| VmConfig { values })
    }
}

impl VmConfig {
    /// A key's value.
    pub fn get(&self, k: &str) -> Option<&str> {
        self.values.get(k).map(String::as_str)
    }

    /// The digest for optimistic concurrency.
    pub fn digest(&self) -> Option<&str> {
        self.get("digest")
    }
}

/// `status/current`.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct VmStatus {
    /// `running` or `stopped`.
    #[serde(default)]
    pub status: String,
    /// A config lock, if held.
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub lock: Option<String>,
    /// The name.
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub name: Option<String>,
}

/// One guest interface from the agent.
#[derive(Clone, Debug, Deserialize)]
pub struct GuestInterface {
    /// `eth0`
    #[serde(default)]
    pub name: String,
    /// MAC.
    #[serde(default, rename = "hardware-address")]
    pub mac: Option<String>,
    /// Addresses.
    #[serde(default, rename = "ip-addresses")]
    pub addresses: Vec<GuestAddress>,
}

/// One guest address.
#[derive(Clone, Debug, Deserialize)]
pub struct GuestAddress {
    /// The address.
    #[serde(rename = "ip-address")]
    pub ip: String,
    /// `ipv4` / `ipv6`.
    #[serde(default, rename = "ip-address-type")]
    pub kind: String,
}

#[derive(Deserialize)]
struct AgentResult<T> {
    result: T,
}

impl Client {
    /// A VM's config (one request).
    pub async fn vm_config(&self, node: &str, vmid: u32) -> Result<VmConfig> {
        self.execute_as(&config(node, vmid)).await
    }

    /// A VM's config with pending changes applied (one request, `/pending`),
    /// and whether changes are pending.
    pub async fn vm_effective_config(&self, node: &str, vmid: u32) -> Result<(VmConfig, bool)> {
        let entries: Vec<PendingEntry> = self.execute_as(&pending(node, vmid)).await?;
        Ok(effective_config(entries))
    }

    /// A VM's `/pending` entries: each key's current value and pending change.
    pub async fn vm_pending(&self, node: &str, vmid: u32) -> Result<Vec<PendingEntry>> {
        self.execute_as(&pending(node, vmid)).await
    }

    /// A VM's status (one request).
    pub async fn vm_status(&self, node: &str, vmid: u32) -> Result<VmStatus> {
        self.execute_as(&status(node, vmid)).await
    }

    /// The guest agent's interfaces.
    pub async fn vm_agent_interfaces(&self, node: &str, vmid: u32) -> Result<Vec<GuestInterface>> {
        let r: AgentResult<Vec<GuestInterface>> = self.execute_as(&agent_interfaces(node, vmid)).await?;
        Ok(r.result)
    }

    /// Sends a request built for a VMID, allocating the VMID when `fixed` is
    /// `None`: candidates start at `/cluster/nextid` (a hint only) and skip
    /// every id this process has used; on "already exists" the next
    /// candidate is tried. Allocation is serialised within the process. A
    /// fixed id that exists is an error: a VM this apply did not create is
    /// never adopted. A request with no clear outcome comes back as
    /// [`Error::MaybeApplied`] with its VMID, so the caller can look.
    pub async fn create_with_vmid(&self, fixed: Option<u32>, build: impl Fn(u32) -> Request) -> Result<(u32, Upid)> {
        let maybe = |vmid: u32, e: Error| {
            if e.is_ambiguous() { Error::MaybeApplied { vmid, source: Box::new(e) } } else { e }
        };
        if let Some(id) = fixed {
            let upid = self.execute_task(&build(id)).await.map_err(|e| maybe(id, e))?;
            self.vmids().await.insert(id);
            return Ok((id, upid));
        }
        let (lo, hi) = self.options().vmid_range;
        let mut used = self.vmids().await;
        let hint = match self.execute(&cluster::nextid(None)).await {
            Ok(v) => lenient::text(&v).and_then(|s| s.parse::<u32>().ok()).unwrap_or(lo),
            Err(e) => return Err(e),
        };
        let mut cand = hint.max(lo);
        for _ in 0..100 {
            while used.contains(&cand) {
                cand += 1;
            }
            if cand > hi {
                break;
            }
            match self.execute_task(&build(cand)).await {
                Ok(upid) => {
                    used.insert(cand);
                    return Ok((cand, upid));
                }
                Err(e) if e.is_conflict() => {
                    tracing::debug!(vmid = cand, "VMID taken; trying the next");
                    used.insert(cand);
                }
                Err(e) => {
                    // Never offered again in this process, whatever became of it.
                    used.insert(cand);
                    return Err(maybe(cand, e));
                }
            }
        }
        Err(Error::Settings(format!("no free VMID found in {lo}–{hi}")))
    }

    /// Power action and wait.
    pub async fn vm_power(&self, node: &str, vmid: u32, action: Power, timeout: Duration) -> Result<()> {
        let secs = matches!(action, Power::Shutdown | Power::Reboot).then(|| timeout.as_secs().max(1));
        let req = power(node, vmid, action, secs, false);
        let done = self.run_task(&req, timeout + Duration::from_secs(30)).await?;
        // A VM under the HA manager: the task only asked the manager
        // (`hastart`/`hastop`), which carries it out a moment later.
        let want = match done.upid.worker_type.as_str() {
            "hastart" => "running",
            "hastop" => "stopped",
            _ => return Ok(()),
        };
        self.vm_status_becomes(node, vmid, want, timeout).await
    }

    /// Waits until VM `vmid` is `want` (`running`, `stopped`), as the HA
    /// manager makes it.
    pub async fn vm_status_becomes(&self, node: &str, vmid: u32, want: &str, timeout: Duration) -> Result<()> {
        let what = format!("VM {vmid} to be {want} (the HA manager carries out the request)");
        let w = crate::wait::Wait::new(&what, timeout, crate::wait::Backoff::task(), self.stop());
        crate::wait::until(&w, || async {
            let s = self.vm_status(node, vmid).await?;
            Ok::<_, Error>(if s.status == want {
                crate::wait::Probe::Ready(())
            } else {
                crate::wait::Probe::NotYet(format!("VM {vmid} is {}", s.status))
            })
        })
        .await
        .map_err(|e| Error::from_wait(&what, e))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn builders() {
        let r = create("pve1", 100, &[("net0".into(), "virtio,bridge=vmbr0".into())]);
        assert_eq!(r.path, "/nodes/pve1/qemu");
        assert_eq!(r.body().as_deref(), Some("vmid=100&net0=virtio%2Cbridge%3Dvmbr0"));
        assert_eq!(r.effect, Effect::Once);
        let r = update(
            "pve1",
            100,
            &[("cores".into(), "4".into())],
            &["serial0".into(), "description".into()],
            Some("abc"),
        );
        assert_eq!(r.body().as_deref(), Some("cores=4&delete=serial0%2Cdescription&digest=abc"));
        let r = clone(
            "pve1",
            9000,
            201,
            &CloneOptions {
                name: Some("w".into()),
                full: Some(true),
                storage: Some("local-lvm".into()),
                target: None,
                pool: None,
            },
        );
        assert_eq!(r.path, "/nodes/pve1/qemu/9000/clone");
        assert_eq!(r.body().as_deref(), Some("newid=201&name=w&storage=local-lvm&full=1"));
        let r = power("pve1", 100, Power::Shutdown, Some(60), true);
        assert_eq!(r.path, "/nodes/pve1/qemu/100/status/shutdown");
        assert_eq!(r.body().as_deref(), Some("timeout=60&forceStop=1"));
        assert_eq!(destroy("pve1", 100).path_and_query(), "/nodes/pve1/qemu/100?purge=1&destroy-unreferenced-disks=1");
        assert_eq!(resize("pve1", 100, "scsi0", "32G").body().as_deref(), Some("disk=scsi0&size=32G"));
    }

    #[test]
    fn pending_folds_in() {
        let entries: Vec<PendingEntry> = serde_json::from_value(serde_json::json!([
            {"key": "cores", "value": 2, "pending": 4},
            {"key": "name", "value": "a"},
            {"key": "serial0", "value": "socket", "delete": 1},
            {"key": "memory", "pending": "2048"}
        ]))
        .unwrap();
        let (c, pending) = effective_config(entries);
        assert!(pending);
        assert_eq!(c.get("cores"), Some("4"));
        assert_eq!(c.get("name"), Some("a"));
        assert_eq!(c.get("serial0"), None);
        assert_eq!(c.get("memory"), Some("2048"));
    }

    #[test]
    fn lenient_config() {
        let c: VmConfig = serde_json::from_value(serde_json::json!({
            "cores": 2, "memory": "4096", "onboot": true, "name": "a", "digest": "d1", "agent": "1"
        }))
        .unwrap();
        assert_eq!(c.get("cores"), Some("2"));
        assert_eq!(c.get("memory"), Some("4096"));
        assert_eq!(c.get("onboot"), Some("1"));
        assert_eq!(c.digest(), Some("d1"));
    }
}
