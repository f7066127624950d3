//! Plan-time checks against PVE for objects about to be created: the node,
//! the storages and the bridge they name exist and can hold what is asked.
//! A wrong name is an error on its attribute at `plan` (Terraform shows the
//! line, `storage = var.vm_storage`), not a failed task half-way through an
//! apply.
//!
//! Each listing is read once per provider process ([`ProxtalosData::lookup`]).
//! When a listing cannot be read (no `Sys.Audit` for the bridges, say),
//! the check is skipped: it never blocks what PVE itself would allow.

use crate::data::ProxtalosData;
use crate::plugin::{AttributePath, Diagnostics};
use crate::proxmox::storage::{self, StorageInfo};
use crate::proxmox::{Client, cluster};

/// Reads a listing, or says why the check is skipped.
async fn listing<T: serde::de::DeserializeOwned>(
    data: &ProxtalosData,
    c: &Client,
    req: &crate::proxmox::Request,
) -> Option<Vec<T>> {
    match data.lookup(c, req).await {
        Ok(v) => match serde_json::from_value::<Vec<T>>(v.as_ref().clone()) {
            Ok(list) => Some(list),
            Err(e) => {
                tracing::debug!(request = %req.describe(), error = %e, "plan-time check skipped: unreadable listing");
                None
            }
        },
        Err(e) => {
            tracing::debug!(request = %req.describe(), error = %e, "plan-time check skipped");
            None
        }
    }
}

/// The node exists. False (with an error on `path`) when the cluster's
/// node list does not have it; true when it does or cannot be read.
pub async fn node(data: &ProxtalosData, c: &Client, node: &str, path: AttributePath, diags: &mut Diagnostics) -> bool {
    match node_problem(data, c, node).await {
        None => true,
        Some(why) => {
            diags.error_at(path, "Unknown Proxmox node", why);
            false
        }
    }
}

/// Why `node` is not a node of the cluster (naming the ones it has), or
/// `None` when it is or the node list cannot be read.
pub async fn node_problem(data: &ProxtalosData, c: &Client, node: &str) -> Option<String> {
    let nodes = listing::<cluster::NodeInfo>(data, c, &cluster::nodes()).await?;
    if nodes.iter().any(|n| n.node == node) {
        return None;
    }
    let names: Vec<&str> = nodes.iter().map(|n| n.node.as_str()).collect();
    Some(format!("The cluster has no node {node:?}. Its nodes: {}.", names.join(", ")))
}

/// The node a VMID lives on, from the cluster's VM listing (`None` when it
/// is not there or the listing cannot be read).
pub async fn vm_node(c: &Client, vmid: u32) -> Option<String> {
    let v = c.execute(&cluster::vm_resources()).await.ok()?;
    let vms: Vec<cluster::VmResource> = serde_json::from_value(v).ok()?;
    vms.into_iter().find(|r| r.vmid == vmid).map(|r| r.node)
}

/// The storage exists on the node and has `content` enabled. Returns it
/// when found.
pub async fn storage(
    data: &ProxtalosData,
    c: &Client,
    node: &str,
    name: &str,
    content: &str,
    path: AttributePath,
    diags: &mut Diagnostics,
) -> Option<StorageInfo> {
    let stores = listing::<StorageInfo>(data, c, &storage::list(node)).await?;
    let Some(s) = stores.iter().find(|s| s.storage == name) else {
        let names: Vec<&str> = stores.iter().map(|s| s.storage.as_str()).collect();
        diags.error_at(
            path,
            "Unknown storage",
            format!(
                "Node {node} has no storage {name:?} (or the token cannot see it: it needs Datastore.Audit on /storage/{name}). Storages it has: {}.",
                names.join(", ")
            ),
        );
        return None;
    };
    if !s.content.split(',').any(|x| x.trim() == content) {
        diags.error_at(
            path,
            "Content type not enabled",
            format!(
                "Storage {name:?} is not configured for content-type {content:?} (it has `{}`). Pick a storage with `{content}`, or add it (Datacenter → Storage → Edit, or `pvesm set {name} --content {},{content}`).",
                s.content, s.content
            ),
        );
    }
    Some(s.clone())
}

/// The bridge exists on the node.
pub async fn bridge(
    data: &ProxtalosData,
    c: &Client,
    node: &str,
    name: &str,
    path: AttributePath,
    diags: &mut Diagnostics,
) {
    let Some(ifaces) = listing::<cluster::Interface>(data, c, &cluster::bridges(node)).await else { return };
    let bridges: Vec<&str> =
        ifaces.iter().filter(|i| i.kind.to_ascii_lowercase().contains("bridge")).map(|i| i.iface.as_str()).collect();
    if bridges.is_empty() || bridges.contains(&name) {
        return;
    }
    // An SDN VNet is no interface of the node's network config: look there
    // too, and say nothing when the VNets cannot be read.
    let vnets = crate::proxmox::Request::get("/cluster/sdn/vnets");
    let Some(vnets) = listing::<serde_json::Value>(data, c, &vnets).await else { return };
    if vnets.iter().any(|v| v.get("vnet").and_then(serde_json::Value::as_str) == Some(name)) {
        return;
    }
    diags.error_at(
        path,
        "Unknown bridge",
        format!("Node {node} has no bridge {name:?}. Its bridges: {}.", bridges.join(", ")),
    );
}

/// An ISO volume (`local:iso/talos.iso`) that a cdrom names exists on its
/// storage. `none`, `cdrom` (the host's drive) and volumes of a storage
/// that cannot be listed pass.
///
/// Read afresh each time, not through [`ProxtalosData::lookup`]: an image
/// downloaded earlier in the same apply must be seen. Used at apply time
/// (see `vm.rs`).
pub async fn iso(c: &Client, node: &str, volid: &str, path: AttributePath, diags: &mut Diagnostics) {
    let Some((store, _)) = volid.split_once(':') else { return };
    if store.is_empty() {
        return;
    }
    let req = storage::content(node, store, Some("iso"));
    let vols: Vec<storage::Volume> = match c.execute_as(&req).await {
        Ok(v) => v,
        Err(e) => {
            tracing::debug!(request = %req.describe(), error = %e, "plan-time ISO check skipped");
            return;
        }
    };
    if vols.iter().any(|v| v.volid == volid) {
        return;
    }
    let mut isos: Vec<&str> = vols.iter().map(|v| v.volid.as_str()).collect();
    isos.truncate(10);
    let have = if isos.is_empty() { "none".to_string() } else { isos.join(", ") };
    diags.error_at(
        path,
        "ISO not found",
        format!(
            "Storage {store:?} on node {node} has no ISO {volid:?} (ISOs there: {have}). Upload or download it first, \
or reference the `proxtalos_image` that downloads it (`file = proxtalos_image.talos.id`), so the VM waits for it."
        ),
    );
}
