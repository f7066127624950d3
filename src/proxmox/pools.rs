//! `/pools`: resource pools and their guest members (pve-manager's
//! `PVE/API2/Pool.pm`; the PVE 8.1+ forms that take `poolid` as a
//! parameter, not the deprecated `/pools/{poolid}` paths).
//!
//! A guest is in at most one pool. Its config does not say which: the
//! cluster listing does (`pool` on a `/cluster/resources` item).

use serde::Deserialize;

use super::request::{Effect, Request};

/// `GET /pools?poolid=ID`: one pool, with its members.
pub fn get(poolid: &str) -> Request {
    Request::get("/pools").param("poolid", poolid)
}

/// `POST /pools`: a new, empty pool.
pub fn create(poolid: &str, comment: Option<&str>) -> Request {
    Request::post("/pools").effect(Effect::Once).param("poolid", poolid).opt_param("comment", comment)
}

/// `PUT /pools`: a pool's comment (PVE keeps an empty one as none).
pub fn set_comment(poolid: &str, comment: &str) -> Request {
    Request::put("/pools").effect(Effect::Idempotent).param("poolid", poolid).param("comment", comment)
}

/// `PUT /pools` with `vms`: VM `vmid` joins the pool, leaving the one it
/// was in (`allow-move`; without it PVE refuses a VM in another pool).
pub fn add_vm(poolid: &str, vmid: u32) -> Request {
    Request::put("/pools").effect(Effect::Once).param("poolid", poolid).param("vms", vmid).flag("allow-move", true)
}

/// `PUT /pools` with `vms` and `delete`: VM `vmid` leaves the pool.
pub fn remove_vm(poolid: &str, vmid: u32) -> Request {
    Request::put("/pools").effect(Effect::Once).param("poolid", poolid).param("vms", vmid).flag("delete", true)
}

/// `DELETE /pools?poolid=ID`: PVE refuses a pool that still has members.
pub fn delete(poolid: &str) -> Request {
    Request::delete("/pools").effect(Effect::Idempotent).param("poolid", poolid)
}

/// A pool as `GET /pools?poolid=` answers it (a one-item list).
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Pool {
    /// The id.
    pub poolid: String,
    /// The comment, absent when none.
    #[serde(default)]
    pub comment: Option<String>,
    /// Guests and storages in it.
    #[serde(default)]
    pub members: Vec<Member>,
}

/// One member of a pool.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Member {
    /// `qemu`, `lxc` or `storage`.
    #[serde(default, rename = "type")]
    pub kind: String,
    /// The guest's VMID (guests only).
    #[serde(default)]
    pub vmid: Option<u32>,
}

/// Why `id` is not a pool id PVE accepts (its `pve-poolid` format: at
/// most three `/`-separated levels of letters, digits, `.`, `-` and `_`),
/// or `None`. PVE's own words, as the API answers them.
pub fn id_problem(id: &str) -> Option<String> {
    let parts: Vec<&str> = id.split('/').collect();
    if parts.len() > 3 {
        return Some(format!("pool name '{id}' nested too deeply (max levels = 3)"));
    }
    let ok = |p: &&str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if !parts.iter().all(ok) {
        return Some(format!("pool name '{id}' contains invalid characters"));
    }
    None
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn requests_use_the_poolid_forms() {
        let r = add_vm("talos", 120);
        assert_eq!(r.path, "/pools");
        assert_eq!(r.body().as_deref(), Some("poolid=talos&vms=120&allow-move=1"));
        assert_eq!(remove_vm("talos", 120).body().as_deref(), Some("poolid=talos&vms=120&delete=1"));
        assert_eq!(get("a/b").path_and_query(), "/pools?poolid=a%2Fb");
        assert_eq!(create("talos", None).body().as_deref(), Some("poolid=talos"));
        assert_eq!(delete("talos").path_and_query(), "/pools?poolid=talos");
    }

    #[test]
    fn pool_ids_as_pve_checks_them() {
        for ok in ["talos", "lab/talos", "a/b/c", "k8s_prod-1.x"] {
            assert_eq!(id_problem(ok), None, "{ok}");
        }
        assert!(id_problem("a/b/c/d").unwrap().contains("nested too deeply"));
        for bad in ["", "a//b", "has space", "ümlaut", "a/"] {
            assert!(id_problem(bad).unwrap().contains("invalid characters"), "{bad}");
        }
    }

    #[test]
    fn a_pool_decodes() {
        let p: Vec<Pool> = serde_json::from_str(
            r#"[{"poolid":"talos","comment":"k8s","members":[{"id":"qemu/100","type":"qemu","vmid":100,"node":"pve1"},{"id":"storage/pve1/local","type":"storage"}]}]"#,
        )
        .unwrap();
        assert_eq!(p[0].comment.as_deref(), Some("k8s"));
        assert_eq!(p[0].members.iter().filter_map(|m| m.vmid).collect::<Vec<_>>(), vec![100]);
    }
}
