//! `/cluster`, `/version` and `/nodes`: VMID hints, the resource listing,
//! the API version and the node list.

use serde::Deserialize;

use super::lenient;
use super::request::Request;

/// `GET /cluster/nextid[?vmid=N]`: a hint, never a reservation.
pub fn nextid(vmid: Option<u32>) -> Request {
    Request::get("/cluster/nextid").opt_param("vmid", vmid)
}

/// `GET /cluster/resources?type=vm`.
pub fn vm_resources() -> Request {
    Request::get("/cluster/resources").param("type", "vm")
}

/// `GET /cluster/resources?type=...` unfiltered: nodes (`maxmem`, `mem`,
/// `status`), VMs (`maxmem`, `status`, `tags`) and storages in one call.
pub fn resources() -> Request {
    Request::get("/cluster/resources")
}

/// One VM in the cluster listing.
#[derive(Clone, Debug, Deserialize)]
pub struct VmResource {
    /// The VMID.
    #[serde(deserialize_with = "lenient::u32")]
    pub vmid: u32,
    /// The node.
    #[serde(default)]
    pub node: String,
    /// Name.
    #[serde(default)]
    pub name: Option<String>,
    /// `qemu` or `lxc`.
    #[serde(default, rename = "type")]
    pub kind: String,
    /// Tags as PVE keeps them: `;`-separated (`,` and spaces also occur).
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub tags: Option<String>,
    /// The pool the VM is in (absent when none).
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub pool: Option<String>,
    /// `1` for a template (a number, or text on some versions).
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub template: Option<String>,
}

impl VmResource {
    /// The tags as PVE compares them (split, lower case, sorted).
    pub fn tag_list(&self) -> Vec<String> {
        super::propstring::normalize_tags(self.tags.as_deref())
    }

    /// A template, not a VM that runs.
    pub fn is_template(&self) -> bool {
        self.template.as_deref().is_some_and(|t| t == "1" || t == "true")
    }
}

/// `GET /version`: any authenticated user may read it (the connection check).
pub fn version() -> Request {
    Request::get("/version")
}

/// `GET /nodes`: the cluster's nodes.
pub fn nodes() -> Request {
    Request::get("/nodes")
}

/// `GET /nodes/{node}/network?type=any_bridge`: the node's bridges
/// (Linux and OVS). Real PVE asks for `Sys.Audit` on the node.
pub fn bridges(node: &str) -> Request {
    Request::get(format!("/nodes/{}/network", super::request::segment(node))).param("type", "any_bridge")
}

/// One interface of [`bridges`].
#[derive(Clone, Debug, Deserialize)]
pub struct Interface {
    /// `vmbr0`.
    pub iface: String,
    /// `bridge`, `OVSBridge`, `eth`, ...
    #[serde(default, rename = "type")]
    pub kind: String,
}

/// The answer of [`version`].
#[derive(Clone, Debug, Deserialize)]
pub struct PveVersion {
    /// `9.0.10`.
    pub version: String,
}

impl PveVersion {
    /// `(major, minor)`, e.g. `(9, 0)`.
    pub fn major_minor(&self) -> Option<(u32, u32)> {
        let mut it = self.version.split(['.', '-']);
        Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
    }
}

/// One node of [`nodes`].
#[derive(Clone, Debug, Deserialize)]
pub struct NodeInfo {
    /// The node's name.
    pub node: String,
    /// `online`, `offline`, `unknown`.
    #[serde(default)]
    pub status: String,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn version_parts() {
        let v = |s: &str| PveVersion { version: s.into() }.major_minor();
        assert_eq!(v("9.0.10"), Some((9, 0)));
        assert_eq!(v("8.4-1"), Some((8, 4)));
        assert_eq!(v("nine"), None);
    }
}
