//! `/cluster`: VMID hints and the resource listing.

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
}
