//! `/cluster/mapping/pci`: cluster resource mappings of PCI devices
//! (pve-manager `PVE/API2/Cluster/Mapping/PCI.pm` over pve-guest-common's
//! `PVE/Mapping/PCI.pm`). A mapping names a device once for the cluster,
//! with one `map` entry per node (`node=pve1,path=0000:01:00.0,id=10de:2204`);
//! a VM's `hostpciN: mapping=<id>` then works on any node the mapping
//! covers, and an API token needs only `Mapping.Use` on it.

use serde_json::Value as Json;

use super::propstring::{PropertyString, parse_bool};
use super::request::{Effect, Request, segment};

/// `GET /cluster/mapping/pci`: every mapping (`id`, `description`, `map`).
pub fn list() -> Request {
    Request::get("/cluster/mapping/pci")
}

/// `GET /cluster/mapping/pci/{id}`: one mapping with `mdev`,
/// `live-migration-capable` and its `digest`.
pub fn get(id: &str) -> Request {
    Request::get(format!("/cluster/mapping/pci/{}", segment(id)))
}

/// `POST /cluster/mapping/pci`.
pub fn create(m: &PciMapping) -> Request {
    let mut r = Request::post("/cluster/mapping/pci").effect(Effect::Once).param("id", &m.id);
    r = with_fields(r, m);
    r
}

/// `PUT /cluster/mapping/pci/{id}`: the whole map and the flags, and
/// `delete` for what `current` (PVE's) has set and `m` no longer does;
/// `digest` guards against a concurrent change. Only keys PVE has are
/// deleted: PVE refuses a `delete` of a key it does not know, and
/// `live-migration-capable` is PVE 8.3+.
pub fn update(m: &PciMapping, current: &PciMapping, digest: Option<&str>) -> Request {
    let mut r = Request::put(format!("/cluster/mapping/pci/{}", segment(&m.id))).effect(Effect::Idempotent);
    r = with_fields(r, m);
    let mut delete = Vec::new();
    if m.description.is_none() && current.description.is_some() {
        delete.push("description");
    }
    if !m.mdev && current.mdev {
        delete.push("mdev");
    }
    if !m.live_migration_capable && current.live_migration_capable {
        delete.push("live-migration-capable");
    }
    r.opt_param("delete", (!delete.is_empty()).then(|| delete.join(","))).opt_param("digest", digest)
}

/// `DELETE /cluster/mapping/pci/{id}`.
pub fn delete(id: &str) -> Request {
    Request::delete(format!("/cluster/mapping/pci/{}", segment(id)))
}

/// Flags are sent only when set: `live-migration-capable` is PVE 8.3+, and
/// an older PVE refuses a parameter it does not know.
fn with_fields(mut r: Request, m: &PciMapping) -> Request {
    for e in &m.map {
        r = r.param("map", e.to_string());
    }
    r = r.opt_param("description", m.description.as_ref());
    if m.mdev {
        r = r.flag("mdev", true);
    }
    if m.live_migration_capable {
        r = r.flag("live-migration-capable", true);
    }
    r
}

/// One node's device in a mapping.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MapEntry {
    /// The PVE node.
    pub node: String,
    /// The device's address(es) on it (`0000:01:00.0`; several joined by `;`).
    pub path: String,
    /// `vendor:device` (`10de:2204`).
    pub id: String,
    /// `vendor:device` of the subsystem.
    pub subsystem_id: Option<String>,
    /// The IOMMU group PVE checks the device against.
    pub iommu_group: Option<i64>,
}

impl MapEntry {
    /// Parses an entry as PVE stores it; `None` for one without a node,
    /// path or id.
    pub fn parse(text: &str) -> Option<MapEntry> {
        let ps = PropertyString::parse("map", text).ok()?;
        Some(MapEntry {
            node: ps.get("node")?.to_string(),
            path: ps.get("path")?.to_string(),
            id: ps.get("id")?.to_string(),
            subsystem_id: ps.get("subsystem-id").map(str::to_string),
            iommu_group: ps.get("iommugroup").and_then(|g| g.parse().ok()),
        })
    }
}

impl std::fmt::Display for MapEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "node={},path={},id={}", self.node, self.path, self.id)?;
        if let Some(s) = &self.subsystem_id {
            write!(f, ",subsystem-id={s}")?;
        }
        if let Some(g) = self.iommu_group {
            write!(f, ",iommugroup={g}")?;
        }
        Ok(())
    }
}

/// A PCI mapping.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PciMapping {
    /// Its id (what a VM's `mapping=` names).
    pub id: String,
    /// The comment.
    pub description: Option<String>,
    /// The devices, one entry per node (several for one node: PVE takes a
    /// free one).
    pub map: Vec<MapEntry>,
    /// Mediated devices (vGPU types) are used from it.
    pub mdev: bool,
    /// VMs using it may live-migrate (PVE 8.3+).
    pub live_migration_capable: bool,
}

impl PciMapping {
    /// From a `GET` answer (a list item or the single object); entries PVE
    /// would not store are skipped.
    pub fn from_json(id: &str, v: &Json) -> PciMapping {
        let flag = |k: &str| super::lenient::text(&v[k]).and_then(|t| parse_bool(&t)).unwrap_or(false);
        PciMapping {
            id: id.to_string(),
            description: v["description"].as_str().filter(|d| !d.is_empty()).map(str::to_string),
            map: v["map"]
                .as_array()
                .map(|a| a.iter().filter_map(|e| e.as_str().and_then(MapEntry::parse)).collect())
                .unwrap_or_default(),
            mdev: flag("mdev"),
            live_migration_capable: flag("live-migration-capable"),
        }
    }
}

/// The `map` entries of mapping `id` in a `GET /cluster/mapping/pci`
/// answer; `None` when there is no such mapping.
pub fn entries_of(list: &Json, id: &str) -> Option<Vec<MapEntry>> {
    let item = list.as_array()?.iter().find(|m| m["id"].as_str() == Some(id))?;
    Some(PciMapping::from_json(id, item).map)
}

/// Why `id` is not a mapping id PVE accepts (`pve-configid`: a letter,
/// then letters, digits, `_` and `-`, two characters at least).
pub fn id_problem(id: &str) -> Option<String> {
    let b = id.as_bytes();
    let ok = b.len() >= 2
        && b[0].is_ascii_alphabetic()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b'-');
    (!ok).then(|| format!("invalid configuration ID '{id}'"))
}

/// `vendor:device` as PVE's schema wants it (four hex digits each).
pub fn valid_device_id(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 9 && b[4] == b':' && b.iter().enumerate().all(|(i, c)| i == 4 || c.is_ascii_hexdigit())
}

/// A `path` as PVE's schema wants it: `dddd:bb:dd[.f]` in lower-case hex,
/// several joined by `;` (the schema's own pattern, anchored as PVE's
/// JSONSchema anchors it; its unescaped `.` takes any separator).
pub fn valid_path(s: &str) -> bool {
    const ONE: &str = "[a-f0-9]{4,}:[a-f0-9]{2}:[a-f0-9]{2}(?:.[a-f0-9])?";
    regex_lite::Regex::new(&format!("^(?:{ONE};)*{ONE}$")).is_ok_and(|re| re.is_match(s))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn gpu() -> PciMapping {
        PciMapping {
            id: "gpu0".into(),
            description: Some("RTX".into()),
            map: vec![MapEntry {
                node: "pve1".into(),
                path: "0000:01:00.0".into(),
                id: "10de:2204".into(),
                subsystem_id: None,
                iommu_group: Some(12),
            }],
            mdev: false,
            live_migration_capable: false,
        }
    }

    #[test]
    fn requests_carry_the_map_and_delete_what_is_unset() {
        let c = create(&gpu());
        assert_eq!(
            c.body().unwrap(),
            "id=gpu0&map=node%3Dpve1%2Cpath%3D0000%3A01%3A00.0%2Cid%3D10de%3A2204%2Ciommugroup%3D12&description=RTX"
        );
        let had = PciMapping { mdev: true, live_migration_capable: true, ..gpu() };
        let u = update(&PciMapping { description: None, ..gpu() }, &had, Some("abc"));
        assert_eq!(u.path, "/cluster/mapping/pci/gpu0");
        assert!(u.body().unwrap().ends_with("&delete=description%2Cmdev%2Clive-migration-capable&digest=abc"));
        // Only what PVE has is deleted (PVE before 8.3 knows no live-migration-capable).
        assert!(!update(&gpu(), &gpu(), None).body().unwrap().contains("delete"));
    }

    #[test]
    fn answers_decode_and_entries_round_trip() {
        let v = serde_json::json!({"map": ["node=pve1,path=0000:01:00.0,id=10de:2204,iommugroup=12"],
            "description": "RTX", "mdev": 1, "type": "pci", "digest": "x"});
        let m = PciMapping::from_json("gpu0", &v);
        assert!(m.mdev && !m.live_migration_capable);
        assert_eq!(m.map, gpu().map);
        assert_eq!(m.map[0].to_string(), "node=pve1,path=0000:01:00.0,id=10de:2204,iommugroup=12");
        let list = serde_json::json!([{"id": "gpu0", "map": ["node=pve2,path=0000:02:00.0,id=10de:2204"]}]);
        assert_eq!(entries_of(&list, "gpu0").unwrap()[0].node, "pve2");
        assert!(entries_of(&list, "gpu1").is_none());
    }

    #[test]
    fn formats_as_pve_checks_them() {
        assert!(id_problem("gpu0").is_none() && id_problem("nvidia_rtx-4090").is_none());
        for bad in ["g", "0gpu", "gpu 0", "gpu.0"] {
            assert!(id_problem(bad).is_some(), "{bad}");
        }
        assert!(valid_device_id("10de:2204") && !valid_device_id("10de2204") && !valid_device_id("10de:22g4"));
        for ok in ["0000:01:00.0", "0000:01:00", "0000:01:00.0;0000:01:00.1"] {
            assert!(valid_path(ok), "{ok}");
        }
        for bad in ["01:00.0", "0000:01:00.0;", "0000:1:00.0", "0000:01:00.A"] {
            assert!(!valid_path(bad), "{bad}");
        }
    }
}
