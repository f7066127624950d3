//! Import of a running cluster (made with talosctl or with the granular
//! resources): the import id names the cluster and its nodes,
//! `<cluster>/<cp name>=<address>,…[/<worker name>=<address>,…]`; the
//! credentials come from the configuration, so the first plan reads each
//! node (version, active configuration) and shows what adopting it changes.

use std::collections::BTreeMap;

use super::model::{Role, Status};
use crate::plugin::Value;

/// The nodes an import id names, or why it is not one.
pub fn parse(id: &str) -> Result<(String, BTreeMap<String, Status>), String> {
    let mut parts = id.trim().split('/');
    let cluster = parts.next().unwrap_or_default().trim().to_string();
    if cluster.is_empty() {
        return Err("the id starts with the cluster name".into());
    }
    let mut nodes = BTreeMap::new();
    for (role, part) in [Role::ControlPlane, Role::Worker].into_iter().zip(parts.by_ref()) {
        for entry in part.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (name, address) = entry.split_once('=').ok_or_else(|| format!("{entry:?} is not NAME=ADDRESS"))?;
            let (name, address) = (name.trim(), address.trim());
            if name.is_empty() || address.is_empty() || crate::talos::api::Address::parse(address).is_err() {
                return Err(format!("{entry:?} is not NAME=ADDRESS"));
            }
            let status = Status {
                role: role.as_str().to_string(),
                address: address.to_string(),
                talos_version: String::new(),
                kubernetes_version: String::new(),
                config_hash: String::new(),
                installer: String::new(),
            };
            if nodes.insert(name.to_string(), status).is_some() {
                return Err(format!("node {name:?} is named twice"));
            }
        }
    }
    if parts.next().is_some() {
        return Err("more than two node lists (control planes / workers)".into());
    }
    if !nodes.values().any(|s| s.role == Role::ControlPlane.as_str()) {
        return Err("no control plane".into());
    }
    Ok((cluster, nodes))
}

/// The statuses an import left unread (no version, no hash): read them now
/// with `creds` (what does not answer stays unread).
pub async fn fill_unread(
    creds: &crate::talos::client_config::ClientConfiguration,
    nodes: &mut BTreeMap<String, Status>,
) {
    let unread: Vec<(String, String)> = nodes
        .iter()
        .filter(|(_, s)| s.talos_version.is_empty() && s.config_hash.is_empty())
        .map(|(n, s)| (n.clone(), s.address.clone()))
        .collect();
    let seen = futures_util::future::join_all(unread.into_iter().map(|(n, address)| async move {
        let a = super::ops::args(creds, &address);
        (n, tokio::time::timeout(std::time::Duration::from_secs(20), super::ops::observe(&a)).await)
    }))
    .await;
    for (n, r) in seen {
        if let (Some(s), Ok(Ok((version, active)))) = (nodes.get_mut(&n), r) {
            s.observed(version, active);
        }
    }
}

/// The state an import records.
pub fn state(ty: &crate::plugin::Type, cluster: &str, nodes: &BTreeMap<String, Status>) -> Value {
    let mut s = crate::resources::shared::common::null_object(ty);
    s.set_attr("id", Value::string(cluster));
    s.set_attr("cluster_name", Value::string(cluster));
    s.set_attr("nodes", super::model::statuses_value(nodes));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_name_the_cluster_and_its_nodes() {
        let (c, n) = parse("homelab/cp-1=10.0.0.11,cp-2=10.0.0.12/w-1=10.0.0.21").unwrap();
        assert_eq!(c, "homelab");
        assert_eq!(n.len(), 3);
        assert_eq!(n["w-1"].role, "worker");
        assert_eq!(n["cp-2"].address, "10.0.0.12");
        assert!(parse("homelab/cp-1=[fd00::11]:50000").is_ok());
        for bad in [
            "",
            "homelab",
            "homelab/cp-1",
            "homelab/=1.2.3.4",
            "h/a=1.2.3.4,a=1.2.3.5",
            "h/a=1.2.3.4/b=1.2.3.5/c=1.2.3.6",
            "h//w=1.2.3.4",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
