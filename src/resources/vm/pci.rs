//! PCI passthrough of `proxtalos_vm` (`hostpci0`…`hostpci15`), for GPU
//! workers (issue 16): a raw host device (`0000:01:00.0`) or a cluster
//! resource mapping (`mapping=gpu0`), with `pcie`, `rombar`, `x-vga` and
//! `mdev`. Facts from qemu-server (`PVE/QemuServer/PCI.pm`, `PVE/API2/
//! Qemu.pm` `check_vm_modify_config_perm`, shared/specs/proxmox/api.md §2):
//!
//! - only `root@pam` with a password login may set a raw (unmapped) host
//!   device — "only root can set 'hostpci0' config for real/non-mapped
//!   devices"; an API token, even root@pam's, may not. A mapped device
//!   needs `Mapping.Use` on `/mapping/pci/<name>`, which a token can hold;
//! - `pcie=1` needs the q35 machine ("q35 machine model is not enabled");
//! - a device is given as `[[domain:]bus:]dev[.func]`, several functions
//!   of one device as `01:00` (all of them) or joined with `;`;
//! - a VM with a passed-through device cannot be live-migrated, and its
//!   memory is pinned, so a balloon does nothing (PVE accepts both and
//!   fails or ignores them later: a warning here, never an error).

use crate::plugin::{Attribute, AttributePath, Diagnostics, Nesting, Value};
use crate::proxmox::propstring::PropertyString;

/// How many `hostpciN` keys PVE has.
pub const MAX: usize = 16;

/// One passed-through device, as configured.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PciSpec {
    /// A raw host device id (`0000:01:00.0`, `01:00`, `01:00.0;01:00.1`).
    pub device: Option<String>,
    /// A cluster resource mapping's name (`/cluster/mapping/pci`).
    pub mapping: Option<String>,
    /// A PCI Express port (q35 only).
    pub pcie: bool,
    /// The device's ROM visible to the guest (PVE's default: on).
    pub rombar: bool,
    /// The guest's primary GPU.
    pub x_vga: bool,
    /// A mediated device type (vGPU), e.g. `nvidia-63`.
    pub mdev: Option<String>,
}

/// The nested attributes of `pci_devices`.
pub fn attrs() -> Vec<Attribute> {
    vec![
        Attribute::string("device").optional().description(
            "Raw host device: `0000:01:00.0` (one function), `01:00` (all functions of a device) or several joined \
with `;`. PVE lets only `root@pam` with a password set one; with an API token use `mapping`. Exactly one of \
`device` and `mapping`. In place (pending until reboot).",
        ),
        Attribute::string("mapping").optional().description(
            "Name of a PCI resource mapping (Datacenter → Resource Mappings, `/cluster/mapping/pci`), which maps the \
device on each node; needs `Mapping.Use` on it, which an API token can hold. The plan checks that it maps a device \
on the VM's node; with `placement`, list in `placement.nodes` only nodes it covers. In place (pending until reboot).",
        ),
        Attribute::bool("pcie").optional().default(false).description(
            "Attach as PCI Express (needs `machine = \"q35\"`; GPUs usually want it). In place (pending until reboot).",
        ),
        Attribute::bool("rombar").optional().default(true).description(
            "Make the device's ROM visible to the guest (PVE's default). In place (pending until reboot).",
        ),
        Attribute::bool("x_vga")
            .optional()
            .default(false)
            .description("The guest's primary display adapter (PVE's `x-vga`). In place (pending until reboot)."),
        Attribute::string("mdev").optional().description(
            "Mediated device type for a vGPU (`nvidia-63`, an Intel GVT-g type). In place (pending until reboot).",
        ),
    ]
}

/// The `pci_devices` attribute.
pub fn attribute() -> Attribute {
    Attribute::nested("pci_devices", Nesting::List, attrs()).optional().description(
        "PCI devices passed through to the VM (`hostpci0`, `hostpci1`, ... in order; at most 16): a GPU for a \
worker, say. Such a VM cannot be live-migrated and its memory cannot balloon. In place (pending until reboot).",
    )
}

fn s(v: &Value) -> Option<String> {
    v.as_str().map(str::to_string)
}

/// The devices of a configuration or plan value (`None` when unset).
pub fn from_value(v: &Value) -> Option<Vec<PciSpec>> {
    v.attr("pci_devices").as_elements().map(|items| {
        items
            .iter()
            .map(|d| PciSpec {
                device: s(d.attr("device")),
                mapping: s(d.attr("mapping")),
                pcie: d.attr("pcie").as_bool().unwrap_or(false),
                rombar: d.attr("rombar").as_bool().unwrap_or(true),
                x_vga: d.attr("x_vga").as_bool().unwrap_or(false),
                mdev: s(d.attr("mdev")),
            })
            .collect()
    })
}

/// The state value of `devices`.
pub fn to_value(devices: Option<&Vec<PciSpec>>) -> Value {
    let Some(devices) = devices else { return Value::Null };
    let opt = |v: &Option<String>| v.as_ref().map(Value::string).unwrap_or(Value::Null);
    Value::List(
        devices
            .iter()
            .map(|d| {
                Value::object([
                    ("device", opt(&d.device)),
                    ("mapping", opt(&d.mapping)),
                    ("pcie", Value::Bool(d.pcie)),
                    ("rombar", Value::Bool(d.rombar)),
                    ("x_vga", Value::Bool(d.x_vga)),
                    ("mdev", opt(&d.mdev)),
                ])
            })
            .collect(),
    )
}

impl PciSpec {
    /// The `hostpciN` value PVE stores (the `host` key as the positional
    /// head, as the PVE UI writes it).
    pub fn to_config(&self) -> String {
        let mut parts: Vec<String> = Vec::new();
        match (&self.device, &self.mapping) {
            (Some(d), _) => parts.push(d.clone()),
            (None, Some(m)) => parts.push(format!("mapping={m}")),
            (None, None) => {}
        }
        if let Some(m) = &self.mdev {
            parts.push(format!("mdev={m}"));
        }
        if self.pcie {
            parts.push("pcie=1".into());
        }
        if !self.rombar {
            parts.push("rombar=0".into());
        }
        if self.x_vga {
            parts.push("x-vga=1".into());
        }
        parts.join(",")
    }

    /// Reads a `hostpciN` value (`0000:01:00.0,pcie=1`, `host=01:00`,
    /// `mapping=gpu0,x-vga=1`).
    pub fn from_config(text: &str) -> PciSpec {
        let ps = PropertyString::parse("hostpci", text).unwrap_or_default();
        let on = |k: &str, default: bool| ps.get(k).map_or(default, |v| matches!(v, "1" | "on" | "yes" | "true"));
        PciSpec {
            device: ps.head.clone().or_else(|| ps.get("host").map(str::to_string)),
            mapping: ps.get("mapping").map(str::to_string),
            pcie: on("pcie", false),
            rombar: on("rombar", true),
            x_vga: on("x-vga", false),
            mdev: ps.get("mdev").map(str::to_string),
        }
    }
}

/// The devices PVE has (`hostpci0`…`hostpci15`, in order), or `None` when
/// there are none and the prior value was unset.
pub fn from_config(get: impl Fn(&str) -> Option<String>, prior_set: bool) -> Option<Vec<PciSpec>> {
    let found: Vec<PciSpec> =
        (0..MAX).filter_map(|i| get(&format!("hostpci{i}"))).map(|t| PciSpec::from_config(&t)).collect();
    if found.is_empty() && !prior_set { None } else { Some(found) }
}

/// One PCI id as PVE's schema takes it: `[[domain:]bus:]dev[.func]`, hex.
fn valid_id(id: &str) -> bool {
    let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    let (rest, func) = match id.rsplit_once('.') {
        Some((r, f)) => (r, Some(f)),
        None => (id, None),
    };
    if func.is_some_and(|f| !hex(f, 1)) {
        return false;
    }
    let parts: Vec<&str> = rest.split(':').collect();
    match parts.as_slice() {
        [bus, dev] => hex(bus, 2) && hex(dev, 2),
        [domain, bus, dev] => domain.len() >= 4 && hex(domain, domain.len()) && hex(bus, 2) && hex(dev, 2),
        _ => false,
    }
}

/// Checks `pci_devices` (paths name the entry and attribute).
pub fn validate(c: &Value, d: &mut Diagnostics) {
    let Some(items) = c.attr("pci_devices").as_elements() else { return };
    let base = AttributePath::attr("pci_devices");
    if items.len() > MAX {
        d.error_at(
            base.clone(),
            "Too many PCI devices",
            format!("PVE has {MAX} slots (`hostpci0`–`hostpci15`); got {}.", items.len()),
        );
    }
    let q35 = c.attr("machine").as_str().is_none_or(|m| m == "q35" || m.starts_with("pc-q35-"));
    for (i, item) in items.iter().enumerate() {
        let at = base.and_index(i as i64);
        let (device, mapping) = (item.attr("device"), item.attr("mapping"));
        if device.is_null() && mapping.is_null() || device.as_str().is_some() && mapping.as_str().is_some() {
            d.error_at(
                at.clone(),
                "Give a device or a mapping",
                "Each PCI device is either a raw host `device` or a resource `mapping`, exactly one of them.",
            );
        }
        if let Some(dev) = device.as_str()
            && !dev.split(';').all(valid_id)
        {
            d.error_at(
                at.and_attr("device"),
                "Invalid PCI device id",
                format!("{dev:?}: a PCI id is `[[domain:]bus:]dev[.func]` in hex, e.g. `0000:01:00.0` or `01:00`, several joined with `;`."),
            );
        }
        if let Some(m) = mapping.as_str()
            && !(m.starts_with(|c: char| c.is_ascii_alphabetic())
                && m.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.'))
        {
            d.error_at(
                at.and_attr("mapping"),
                "Invalid mapping name",
                format!("{m:?} is not a resource mapping name."),
            );
        }
        if item.attr("pcie").as_bool() == Some(true) && !q35 {
            d.error_at(
                at.and_attr("pcie"),
                "PCI Express needs q35",
                "PVE refuses `pcie=1` on the i440fx machine (\"q35 machine model is not enabled\"): set `machine = \"q35\"`, or `pcie = false`.",
            );
        }
    }
    if !items.is_empty()
        && let Some(b) = c.attr("memory_floating").as_i64()
        && b > 0
    {
        d.warning_at(
            AttributePath::attr("memory_floating"),
            "Ballooning does nothing with PCI passthrough",
            "A passed-through device pins all of the VM's memory, so the balloon cannot take any back. PVE accepts \
the setting; `memory_floating = 0` says what happens.",
        );
    }
}

/// A plan-time error when the plan sets a raw device (new, or changed from
/// `prior`'s entry at the same slot) and the credentials are not a
/// `root@pam` password login: PVE would refuse the create or update.
/// Unchanged entries are not sent, so they pass.
pub fn check_credentials(prior: &Value, plan: &Value, auth: Option<&crate::data::ProxmoxAuth>, d: &mut Diagnostics) {
    let root = matches!(auth, Some(crate::data::ProxmoxAuth::Password { username, .. }) if username == "root@pam");
    if root {
        return;
    }
    let before = prior.attr("pci_devices").as_elements().unwrap_or_default();
    for (i, item) in plan.attr("pci_devices").as_elements().unwrap_or_default().iter().enumerate() {
        let unchanged = before.get(i).is_some_and(|b| b.semantically_equal(item));
        if item.attr("device").as_str().is_some() && !unchanged {
            let who = match auth {
                Some(crate::data::ProxmoxAuth::ApiToken(_)) => "an API token (even root@pam's)",
                _ => "a user other than root@pam",
            };
            d.error_at(
                AttributePath::attr("pci_devices").and_index(i as i64).and_attr("device"),
                "A raw PCI device needs root@pam",
                format!(
                    "PVE lets only root@pam, logged in with a password, set a raw host device (\"only root can set \
'hostpci{i}' config for real/non-mapped devices\"), and these credentials are {who}. Map the device \
(Datacenter → Resource Mappings) and use `mapping`, which needs `Mapping.Use`, or use root@pam's password."
                ),
            );
        }
    }
}

/// Why a mapped device of the plan cannot work, by `pci_devices` index:
/// its mapping is not in `listing` (`GET /cluster/mapping/pci`), or has no
/// device on `node` (PVE finds a mapped device on the VM's node when it
/// starts the VM, and fails the start otherwise). Only entries new or
/// changed from `prior`'s at the same slot, or all on a change of node; a
/// mapping whose name is unknown (a `proxtalos_pci_mapping`'s `id` made in
/// the same apply) is not checked.
pub fn mapping_problems(prior: &Value, plan: &Value, listing: &serde_json::Value) -> Vec<(usize, String)> {
    let node = plan.attr("node").as_str();
    let moved = prior.attr("node").as_str() != node;
    let before = prior.attr("pci_devices").as_elements().unwrap_or_default();
    let mut out = Vec::new();
    for (i, item) in plan.attr("pci_devices").as_elements().unwrap_or_default().iter().enumerate() {
        let Some(name) = item.attr("mapping").as_str() else { continue };
        let unchanged = before.get(i).is_some_and(|b| b.semantically_equal(item));
        if unchanged && !moved {
            continue;
        }
        match crate::proxmox::mapping::entries_of(listing, name) {
            None => out.push((
                i,
                format!(
                    "PVE has no PCI resource mapping {name:?} (Datacenter → Resource Mappings), or these \
credentials may not see it (`Mapping.Audit` or `Mapping.Use` on `/mapping/pci/{name}`). If a \
`proxtalos_pci_mapping` in this configuration makes it, reference its `id` so the VM is planned after it."
                ),
            )),
            Some(entries) => {
                if let Some(node) = node
                    && !entries.iter().any(|e| e.node == node)
                {
                    let on: Vec<&str> = entries.iter().map(|e| e.node.as_str()).collect();
                    out.push((
                        i,
                        format!(
                            "PCI mapping {name:?} has no device on node {node} (it maps one on: {}), so PVE \
would fail to start the VM there. Add the node's device to the mapping, or put the VM on one of those nodes.",
                            if on.is_empty() { "none".to_string() } else { on.join(", ") }
                        ),
                    ));
                }
            }
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn mapped_devices_must_exist_on_the_vms_node() {
        let vm = |node: &str, mappings: &[&str]| {
            Value::object([
                ("node", Value::string(node)),
                (
                    "pci_devices",
                    Value::List(mappings.iter().map(|m| Value::object([("mapping", Value::string(*m))])).collect()),
                ),
            ])
        };
        let listing = serde_json::json!([{"id": "gpu0", "map": ["node=pve1,path=0000:01:00.0,id=10de:2204"]}]);
        let new = mapping_problems(&Value::Null, &vm("pve1", &["gpu0", "gpu9"]), &listing);
        assert_eq!(new.len(), 1);
        assert!(new[0].0 == 1 && new[0].1.contains("no PCI resource mapping \"gpu9\""), "{new:?}");
        let elsewhere = mapping_problems(&Value::Null, &vm("pve2", &["gpu0"]), &listing);
        assert!(elsewhere[0].1.contains("no device on node pve2 (it maps one on: pve1)"), "{elsewhere:?}");
        // Unchanged entries on the same node are not checked again.
        assert!(mapping_problems(&vm("pve2", &["gpu0"]), &vm("pve2", &["gpu0"]), &listing).is_empty());
        // A name not known yet is left to apply.
        let unknown = Value::object([
            ("node", Value::string("pve1")),
            ("pci_devices", Value::List(vec![Value::object([("mapping", Value::Unknown)])])),
        ]);
        assert!(mapping_problems(&Value::Null, &unknown, &listing).is_empty());
    }

    #[test]
    fn config_round_trip() {
        let gpu = PciSpec { device: Some("0000:01:00.0".into()), pcie: true, x_vga: true, ..PciSpec::default() };
        let gpu = PciSpec { rombar: true, ..gpu };
        assert_eq!(gpu.to_config(), "0000:01:00.0,pcie=1,x-vga=1");
        assert_eq!(PciSpec::from_config(&gpu.to_config()), gpu);
        let mapped = PciSpec {
            mapping: Some("gpu0".into()),
            rombar: false,
            mdev: Some("nvidia-63".into()),
            ..PciSpec::default()
        };
        assert_eq!(mapped.to_config(), "mapping=gpu0,mdev=nvidia-63,rombar=0");
        assert_eq!(PciSpec::from_config(&mapped.to_config()), mapped);
        // The `host=` form PVE also stores.
        assert_eq!(PciSpec::from_config("host=01:00,pcie=1").device.as_deref(), Some("01:00"));
    }

    #[test]
    fn ids_as_pve_takes_them() {
        for ok in ["0000:01:00.0", "01:00", "01:00.1", "10000:af:00.0"] {
            assert!(valid_id(ok), "{ok}");
        }
        for bad in ["1:00.0", "01:00.10", "gpu0", "0000:01:00:00", ""] {
            assert!(!valid_id(bad), "{bad}");
        }
    }

    fn config(devices: Vec<Value>, machine: &str) -> Value {
        Value::object([
            ("pci_devices", Value::List(devices)),
            ("machine", Value::string(machine)),
            ("memory_floating", Value::int(1024)),
        ])
    }

    fn dev(device: Option<&str>, mapping: Option<&str>, pcie: bool) -> Value {
        let opt = |v: Option<&str>| v.map(Value::string).unwrap_or(Value::Null);
        Value::object([("device", opt(device)), ("mapping", opt(mapping)), ("pcie", Value::Bool(pcie))])
    }

    #[test]
    fn checks_name_the_entry() {
        let mut d = Diagnostics::new();
        validate(
            &config(
                vec![
                    dev(Some("01:00"), Some("gpu0"), false),
                    dev(Some("1:0"), None, false),
                    dev(None, Some("gpu 0"), true),
                ],
                "i440fx",
            ),
            &mut d,
        );
        let paths: Vec<String> = d.into_iter().filter_map(|x| x.path.map(|p| format!("{p:?}"))).collect();
        assert_eq!(paths.len(), 5, "{paths:?}");
        let mut d = Diagnostics::new();
        validate(&config(vec![dev(None, Some("gpu0"), true)], "q35"), &mut d);
        assert!(!d.has_errors());
        assert_eq!(d.into_iter().count(), 1, "the balloon warning");
    }

    #[test]
    fn raw_devices_need_root_password() {
        let plan = Value::object([("pci_devices", Value::List(vec![dev(Some("01:00"), None, false)]))]);
        let token = crate::data::ProxmoxAuth::ApiToken("root@pam!tf=x".into());
        let mut d = Diagnostics::new();
        check_credentials(&Value::Null, &plan, Some(&token), &mut d);
        assert!(d.has_errors());
        let mut d = Diagnostics::new();
        check_credentials(&plan, &plan, Some(&token), &mut d);
        assert!(d.is_empty(), "an unchanged device is not sent");
        let root = crate::data::ProxmoxAuth::Password { username: "root@pam".into(), password: "x".into() };
        let mut d = Diagnostics::new();
        check_credentials(&Value::Null, &plan, Some(&root), &mut d);
        assert!(d.is_empty());
        let mapped = Value::object([("pci_devices", Value::List(vec![dev(None, Some("gpu0"), false)]))]);
        let mut d = Diagnostics::new();
        check_credentials(&Value::Null, &mapped, Some(&token), &mut d);
        assert!(d.is_empty());
    }
}
