//! `placement`: the PVE node of a VM whose `node` is left to the provider,
//! chosen once at create and then kept (the state records it; a later
//! plan keeps it however the numbers change, and only an explicit `node`
//! that differs replaces the VM).
//!
//! From one `GET /cluster/resources` (nodes and VMs) plus the VMs this
//! provider process placed and PVE may not list yet (count = 3 creates in
//! parallel), a candidate is an online node, among `placement.nodes` when
//! given, whose free memory now (`maxmem` less `mem`) holds the VM's: no
//! stricter, since PVE itself lets memory be overcommitted. Candidates are
//! ranked by room: `maxmem` less the larger of `mem` and the memory of the
//! node's running VMs (what PVE's static-load scheduler counts), less what
//! this process placed there. Strategies:
//!
//! - `most_free_memory`: the candidate with the most room;
//! - `spread` (with `spread_tag`): the candidate with the fewest VMs
//!   carrying that tag, then the most room, so no two such VMs share a
//!   node while another node has room.
//!
//! Ties go to the node name, in order, so a placement is reproducible.

use std::collections::BTreeMap;

use serde_json::Value as Json;

use crate::plugin::{AttributePath, Diagnostics, Value};

const MIB: u64 = 1024 * 1024;

/// How to choose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// The most room.
    MostFreeMemory,
    /// The fewest VMs with the spread tag, then the most room.
    Spread,
}

/// What `placement` asks for a VM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    /// Candidate nodes; empty: every online node.
    pub nodes: Vec<String>,
    /// The strategy.
    pub strategy: Strategy,
    /// The tag that spreads (lower case, as PVE compares tags).
    pub spread_tag: Option<String>,
    /// The VM's memory in MiB.
    pub memory_mib: u64,
}

/// A VM this process placed (it may not be listed by PVE yet).
pub use crate::data::PlacedVm as Placed;

/// One node as the decision sees it.
#[derive(Debug, Clone, PartialEq)]
struct Load {
    online: bool,
    free: i128,
    room: i128,
    tagged: usize,
}

fn num(v: &Json, k: &str) -> u64 {
    match &v[k] {
        Json::Number(n) => n.as_u64().or_else(|| n.as_f64().map(|f| f.max(0.0) as u64)).unwrap_or(0),
        Json::String(s) => s.parse().unwrap_or(0),
        _ => 0,
    }
}

fn tags_of(v: &Json) -> Vec<String> {
    crate::proxmox::propstring::normalize_tags(v["tags"].as_str())
}

fn loads(resources: &Json, wanted: &Wanted, placed: &[Placed]) -> BTreeMap<String, Load> {
    let items = resources.as_array().map(Vec::as_slice).unwrap_or_default();
    let mut out = BTreeMap::new();
    for n in items.iter().filter(|i| i["type"] == "node") {
        let Some(name) = n["node"].as_str() else { continue };
        out.insert(name.to_string(), (n["status"] == "online", num(n, "maxmem"), num(n, "mem"), 0u64, 0usize));
    }
    // The VMs this process placed count as it recorded them, listed or
    // not: PVE may list a VM before its config carries its tags or memory
    // (seen: two control planes placed on one node while the first was
    // listed without its tags).
    let mine: Vec<u32> = placed.iter().filter_map(|p| p.vmid).collect();
    let is_mine =
        |vm: &Json| vm["vmid"].as_u64().and_then(|v| u32::try_from(v).ok()).is_some_and(|v| mine.contains(&v));
    let tag = wanted.spread_tag.as_deref();
    for vm in items.iter().filter(|i| (i["type"] == "qemu" || i["type"] == "lxc") && !is_mine(i)) {
        let Some(e) = vm["node"].as_str().and_then(|n| out.get_mut(n)) else { continue };
        if vm["status"] == "running" {
            e.3 += num(vm, "maxmem");
        }
        if tag.is_some_and(|t| tags_of(vm).iter().any(|x| x == t)) {
            e.4 += 1;
        }
    }
    let mut pending: BTreeMap<&str, (u64, usize)> = BTreeMap::new();
    for p in placed {
        let e = pending.entry(p.node.as_str()).or_default();
        e.0 += p.memory_mib * MIB;
        e.1 += usize::from(tag.is_some_and(|t| p.tags.iter().any(|x| x == t)));
    }
    out.into_iter()
        .map(|(name, (online, maxmem, mem, committed, tagged))| {
            let (pm, pt) = pending.get(name.as_str()).copied().unwrap_or_default();
            let free = i128::from(maxmem) - i128::from(mem);
            let room = i128::from(maxmem) - i128::from(mem.max(committed)) - i128::from(pm);
            (name, Load { online, free, room, tagged: tagged + pt })
        })
        .collect()
}

/// Why no node was chosen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlacementError {
    /// A named candidate is not a node of the cluster.
    #[error("the cluster has no node {name:?} (its nodes: {known})")]
    UnknownNode {
        /// Index in `placement.nodes`.
        index: usize,
        /// The name.
        name: String,
        /// The cluster's nodes.
        known: String,
    },
    /// No online candidate has the memory free.
    #[error("no candidate node has {need} MiB free: {seen}")]
    NoRoom {
        /// The VM's memory.
        need: u64,
        /// Each candidate's room or state.
        seen: String,
    },
}

/// Chooses the node for `wanted` from `resources` (`/cluster/resources`)
/// and what this process already `placed`.
pub fn choose(resources: &Json, wanted: &Wanted, placed: &[Placed]) -> Result<String, PlacementError> {
    let loads = loads(resources, wanted, placed);
    for (index, name) in wanted.nodes.iter().enumerate() {
        if !loads.contains_key(name) {
            let known = loads.keys().cloned().collect::<Vec<_>>().join(", ");
            return Err(PlacementError::UnknownNode { index, name: name.clone(), known });
        }
    }
    let candidates: Vec<(&String, &Load)> =
        loads.iter().filter(|(n, _)| wanted.nodes.is_empty() || wanted.nodes.contains(n)).collect();
    let need = i128::from(wanted.memory_mib * MIB);
    let fits: Vec<&(&String, &Load)> = candidates.iter().filter(|(_, l)| l.online && l.free >= need).collect();
    let best = match wanted.strategy {
        Strategy::MostFreeMemory => fits.iter().max_by(|a, b| a.1.room.cmp(&b.1.room).then(b.0.cmp(a.0))),
        Strategy::Spread => {
            fits.iter().min_by(|a, b| a.1.tagged.cmp(&b.1.tagged).then(b.1.room.cmp(&a.1.room)).then(a.0.cmp(b.0)))
        }
    };
    match best {
        Some((name, _)) => Ok((*name).clone()),
        None => {
            let seen = candidates
                .iter()
                .map(|(n, l)| {
                    if l.online {
                        format!("{n} has {} MiB free", (l.free.max(0) as u64) / MIB)
                    } else {
                        format!("{n} is offline")
                    }
                })
                .collect::<Vec<_>>()
                .join(", ");
            Err(PlacementError::NoRoom { need: wanted.memory_mib, seen })
        }
    }
}

/// The `placement` of a planned VM (None when `node` is given or a part
/// is unknown).
pub fn wanted(v: &Value) -> Option<Wanted> {
    let p = v.attr("placement");
    if p.is_null() || p.is_unknown() || !v.attr("node").is_unknown() {
        return None;
    }
    let nodes = match p.attr("nodes") {
        Value::Null => Vec::new(),
        n => n.as_elements()?.iter().map(|e| e.as_str().map(str::to_string)).collect::<Option<Vec<_>>>()?,
    };
    let spread_tag = p.attr("spread_tag").as_str().map(|t| t.to_ascii_lowercase());
    let strategy = match p.attr("strategy").as_str() {
        Some("most_free_memory") => Strategy::MostFreeMemory,
        Some(_) => Strategy::Spread,
        None if spread_tag.is_some() => Strategy::Spread,
        None => Strategy::MostFreeMemory,
    };
    let memory_mib = u64::try_from(v.attr("memory").as_i64()?).ok()?;
    Some(Wanted { nodes, strategy, spread_tag, memory_mib })
}

/// Plan-time checks of `placement` (config values; unknowns skipped).
pub fn validate(c: &Value, d: &mut Diagnostics) {
    let p = c.attr("placement");
    let base = AttributePath::attr("placement");
    match (c.attr("node").is_null(), p.is_null()) {
        (true, true) => {
            d.error_at(
                AttributePath::attr("node"),
                "Missing node",
                "Set `node` (the PVE node that runs the VM), or `placement` to let the provider choose one at create.",
            );
            return;
        }
        (false, false) if !c.attr("node").is_unknown() => {
            d.error_at(
                base.clone(),
                "Conflicting node and placement",
                "`placement` chooses `node` at create; set one of them, not both.",
            );
        }
        _ => {}
    }
    if let Some(list) = p.attr("nodes").as_elements() {
        if list.is_empty() {
            d.error_at(
                base.and_attr("nodes"),
                "No candidate nodes",
                "List at least one PVE node, or leave `nodes` unset for every online node.",
            );
        }
        for (i, n) in list.iter().enumerate() {
            if let Some(s) = n.as_str()
                && !super::validate::valid_node(s)
            {
                d.error_at(
                    base.and_attr("nodes").and_index(i as i64),
                    "Invalid node name",
                    format!("PVE node names are letters, digits, `-` and `.`; got {s:?}."),
                );
            }
        }
    }
    let strategy = p.attr("strategy").as_str();
    if let Some(s) = strategy
        && !matches!(s, "most_free_memory" | "spread")
    {
        d.error_at(
            base.and_attr("strategy"),
            "Invalid strategy",
            format!("`most_free_memory` or `spread`; got {s:?}."),
        );
    }
    if strategy == Some("spread") && p.attr("spread_tag").is_null() {
        d.error_at(
            base.and_attr("spread_tag"),
            "Missing spread tag",
            "`spread` needs `spread_tag`: the tag whose VMs it keeps on different nodes.",
        );
    }
    if let Some(t) = p.attr("spread_tag").as_str() {
        let tags = c
            .attr("tags")
            .as_elements()
            .map(|e| e.iter().filter_map(Value::as_str).map(str::to_ascii_lowercase).collect::<Vec<_>>());
        if let Some(tags) = tags
            && !tags.contains(&t.to_ascii_lowercase())
        {
            d.error_at(
                base.and_attr("spread_tag"),
                "Spread tag not on the VM",
                format!("{t:?} must also be one of the VM's `tags`: that is how later VMs see where this one went."),
            );
        } else if c.attr("tags").is_null() {
            d.error_at(
                base.and_attr("spread_tag"),
                "Spread tag not on the VM",
                format!("Add {t:?} to the VM's `tags`: that is how later VMs see where this one went."),
            );
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    const GIB: u64 = 1024 * MIB;

    fn node(name: &str, online: bool, maxmem: u64, mem: u64) -> Json {
        json!({"type": "node", "node": name, "status": if online { "online" } else { "offline" }, "maxmem": maxmem, "mem": mem})
    }

    fn vm(vmid: u32, node: &str, running: bool, maxmem: u64, tags: &str) -> Json {
        json!({"type": "qemu", "vmid": vmid, "node": node, "status": if running { "running" } else { "stopped" }, "maxmem": maxmem, "tags": tags})
    }

    fn want(strategy: Strategy, tag: Option<&str>, mib: u64) -> Wanted {
        Wanted { nodes: vec![], strategy, spread_tag: tag.map(String::from), memory_mib: mib }
    }

    #[test]
    fn most_free_memory_counts_running_vms_and_what_this_process_placed() {
        let r = json!([
            node("pve1", true, 32 * GIB, 4 * GIB),
            node("pve2", true, 32 * GIB, 4 * GIB),
            vm(100, "pve1", true, 16 * GIB, ""),
            vm(101, "pve2", false, 30 * GIB, ""),
        ]);
        let w = want(Strategy::MostFreeMemory, None, 4096);
        assert_eq!(choose(&r, &w, &[]).unwrap(), "pve2", "a stopped VM holds no memory");
        let placed = [Placed { node: "pve2".into(), memory_mib: 20 * 1024, tags: vec![], vmid: None }];
        assert_eq!(choose(&r, &w, &placed).unwrap(), "pve1", "a placement PVE does not list yet counts");
        // Once listed (and running), it is not counted twice.
        let mut listed = r.as_array().unwrap().clone();
        listed.push(vm(102, "pve2", true, 20 * GIB, ""));
        let placed = [Placed { vmid: Some(102), ..placed[0].clone() }];
        assert_eq!(choose(&Json::Array(listed), &w, &placed).unwrap(), "pve1");
    }

    #[test]
    fn a_placed_vm_listed_before_its_tags_still_counts() {
        let r = json!([
            node("pve1", true, 16 * GIB, 2 * GIB),
            node("pve2", true, 16 * GIB, 2 * GIB),
            vm(100, "pve1", false, 0, ""),
        ]);
        let w = want(Strategy::Spread, Some("talos-cp"), 2048);
        let placed = [Placed { node: "pve1".into(), memory_mib: 2048, tags: vec!["talos-cp".into()], vmid: Some(100) }];
        assert_eq!(choose(&r, &w, &placed).unwrap(), "pve2");
    }

    #[test]
    fn spread_keeps_tagged_vms_apart_while_another_node_has_room() {
        let r = json!([
            node("pve1", true, 64 * GIB, 2 * GIB),
            node("pve2", true, 16 * GIB, 2 * GIB),
            node("pve3", true, 16 * GIB, 2 * GIB),
        ]);
        let w = want(Strategy::Spread, Some("talos-cp"), 4096);
        let mut placed = Vec::new();
        for _ in 0..3 {
            let n = choose(&r, &w, &placed).unwrap();
            placed.push(Placed { node: n, memory_mib: 4096, tags: vec!["talos-cp".into()], vmid: None });
        }
        let mut nodes: Vec<_> = placed.iter().map(|p| p.node.clone()).collect();
        nodes.sort();
        assert_eq!(nodes, ["pve1", "pve2", "pve3"], "three control planes on three nodes");
        // A fourth goes where the most room is.
        assert_eq!(choose(&r, &w, &placed).unwrap(), "pve1");
        // Untagged VMs do not count; a full node is skipped.
        let r = json!([
            node("pve1", true, 16 * GIB, 2 * GIB),
            node("pve2", true, 8 * GIB, 2 * GIB),
            vm(100, "pve1", true, 4 * GIB, "talos-cp;prod"),
            vm(101, "pve2", true, 4 * GIB, "other"),
        ]);
        assert_eq!(choose(&r, &w, &[]).unwrap(), "pve2");
        let big = want(Strategy::Spread, Some("talos-cp"), 7 * 1024);
        assert_eq!(choose(&r, &big, &[]).unwrap(), "pve1", "pve2 has not 7 GiB free: share a node");
    }

    #[test]
    fn no_room_and_unknown_nodes_are_errors() {
        let r = json!([node("pve1", true, 8 * GIB, 2 * GIB), node("pve2", false, 0, 0)]);
        let e = choose(&r, &want(Strategy::MostFreeMemory, None, 16 * 1024), &[]).unwrap_err();
        assert_eq!(e.to_string(), "no candidate node has 16384 MiB free: pve1 has 6144 MiB free, pve2 is offline");
        let w = Wanted { nodes: vec!["pve1".into(), "pve9".into()], ..want(Strategy::MostFreeMemory, None, 1) };
        assert!(matches!(choose(&r, &w, &[]), Err(PlacementError::UnknownNode { index: 1, .. })));
    }
}
