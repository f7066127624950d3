//! Plan-time validation of `proxtalos_vm`: every problem names its
//! attribute path. Unknown values are skipped (checked at apply).

use crate::plugin::timeouts;
use crate::plugin::{AttributePath, Diagnostics, Value};
use crate::proxmox::propstring::{DiskSlot, NIC_MODELS, valid_tag};
use crate::proxmox::qemu::{VMID_MAX, VMID_MIN};

fn p(name: &str) -> AttributePath {
    AttributePath::attr(name)
}

/// PVE node names: letters, digits, `-` and `.`, not empty.
pub fn valid_node(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// A VMID PVE accepts.
pub fn valid_vmid(n: i64) -> bool {
    (i64::from(VMID_MIN)..=i64::from(VMID_MAX)).contains(&n)
}

/// PVE storage ids: `[a-z][a-z0-9_.-]*`.
pub fn valid_storage(s: &str) -> bool {
    let mut b = s.bytes();
    matches!(b.next(), Some(c) if c.is_ascii_alphabetic())
        && b.all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

/// Linux bridge names: 1–15 characters, a letter first, then `[A-Za-z0-9_.-]`.
pub fn valid_bridge(s: &str) -> bool {
    s.len() <= 15 && valid_storage(s)
}

fn valid_mac(s: &str) -> bool {
    let parts: Vec<&str> = s.split(':').collect();
    parts.len() == 6 && parts.iter().all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn valid_cidr(s: &str, v6: bool) -> bool {
    let Some((addr, prefix)) = s.split_once('/') else { return false };
    let max = if v6 { 128 } else { 32 };
    let ok_addr =
        if v6 { addr.parse::<std::net::Ipv6Addr>().is_ok() } else { addr.parse::<std::net::Ipv4Addr>().is_ok() };
    ok_addr && prefix.parse::<u8>().is_ok_and(|n| n <= max)
}

/// Checks the VMID in attribute `name` of `c`, if set (for the resource,
/// the list resource and the power action alike).
pub fn check_vmid(c: &Value, name: &str, d: &mut Diagnostics) {
    if let Some(id) = c.attr(name).as_number()
        && !id.as_i64().is_some_and(valid_vmid)
    {
        d.error_at(p(name), "Invalid VMID", format!("A VMID is an integer from {VMID_MIN} to {VMID_MAX}; got {id}."));
    }
}

/// Checks the PVE node name in attribute `name` of `c`, if set.
pub fn check_node(c: &Value, name: &str, d: &mut Diagnostics) {
    if let Some(n) = c.attr(name).as_str()
        && !valid_node(n)
    {
        d.error_at(p(name), "Invalid node name", format!("{n:?} is not a PVE node name."));
    }
}

/// `hugepages`: a size PVE knows, NUMA on (qemu-server refuses to start
/// the VM otherwise: "numa need to be enabled to use hugepages"), and
/// memory a multiple of the page size (`PVE::QemuServer::Memory`).
fn check_hugepages(c: &Value, d: &mut Diagnostics) {
    let Some(h) = c.attr("hugepages").as_str() else { return };
    let page = match h {
        "2" => Some(2),
        "1024" => Some(1024),
        "any" => None,
        _ => {
            return d.error_at(p("hugepages"), "Invalid hugepages", format!("`2`, `1024` or `any`; got {h:?}."));
        }
    };
    if !c.attr("numa").is_unknown()
        && c.attr("numa").as_bool() != Some(true)
        && c.attr("started").as_bool() != Some(false)
    {
        d.error_at(
            p("hugepages"),
            "Huge pages need NUMA",
            "PVE refuses to start a VM with `hugepages` and no NUMA (\"numa need to be enabled to use hugepages\"): set `numa = true`.",
        );
    }
    if let (Some(page), Some(m)) = (page, c.attr("memory").as_i64())
        && m % page != 0
    {
        d.error_at(
            p("memory"),
            "Memory is not a multiple of the huge page",
            format!("With {page} MiB huge pages, `memory` must be a multiple of {page}; got {m}."),
        );
    }
}

/// Talos's secure-boot images (the Image Factory's `*-secureboot.iso`,
/// `*-secureboot.qcow2`) boot only with UEFI: such a `cdrom.file` or
/// `import_from` on a VM whose planned `bios` is not `ovmf` is an error
/// naming it (checked on the plan, where an image's id is known).
pub fn check_secure_boot(plan: &Value, d: &mut Diagnostics) {
    let Some(bios) = plan.attr("bios").as_str() else { return };
    let is_sb = |v: &Value| {
        v.as_str().is_some_and(|f| f.rsplit(['/', ':']).next().unwrap_or(f).to_ascii_lowercase().contains("secureboot"))
    };
    let mut at = Vec::new();
    if is_sb(plan.attr("cdrom").attr("file")) {
        at.push(p("cdrom").and_attr("file"));
    }
    for (i, disk) in plan.attr("disks").as_elements().unwrap_or_default().iter().enumerate() {
        if is_sb(disk.attr("import_from")) {
            at.push(p("disks").and_index(i as i64).and_attr("import_from"));
        }
    }
    if bios == "ovmf" {
        // Talos's secure-boot images are signed with Sidero Labs' key, which
        // the firmware learns only in setup mode (talos.dev, "SecureBoot":
        // the VM's UEFI without pre-enrolled keys, so the ISO enrolls them).
        if !at.is_empty() && plan.attr("efi_pre_enrolled_keys").as_bool() == Some(true) {
            d.warning_at(
                p("efi_pre_enrolled_keys"),
                "The firmware will not be in setup mode",
                "With the Microsoft keys pre-enrolled, secure boot is on before Talos can enroll its own keys, so \
Talos's secure-boot image does not boot until Sidero Labs' key is enrolled by hand. For Talos, leave \
`efi_pre_enrolled_keys` off.",
            );
        }
        return;
    }
    for path in at {
        d.error_at(
            path.clone(),
            "A secure-boot image needs UEFI",
            format!(
                "{path}: Talos's secure-boot images boot only with UEFI firmware: set `bios = \"ovmf\"` and \
`efi_disk_storage` (its keys not pre-enrolled, as proxtalos creates it: Talos enrolls its own in the firmware's \
setup mode), or use the image without `secureboot`."
            ),
        );
    }
}

/// Checks a `proxtalos_vm` configuration.
pub fn validate(c: &Value, d: &mut Diagnostics) {
    if c.attr("efi_pre_enrolled_keys").as_bool() == Some(true) && c.attr("efi_disk_storage").is_null() {
        d.error_at(
            p("efi_pre_enrolled_keys"),
            "Pre-enrolled keys need an EFI disk",
            "The keys live on the EFI vars disk: set `bios = \"ovmf\"` and `efi_disk_storage`.",
        );
    }
    if let Some(why) = c.attr("pool").as_str().filter(|p| !p.is_empty()).and_then(crate::proxmox::pools::id_problem) {
        d.error_at(AttributePath::attr("pool"), "Invalid pool", format!("{why}, as PVE would refuse it."));
    }
    timeouts::validate(c, d);
    super::pci::validate(c, d);
    check_vmid(c, "vm_id", d);
    check_node(c, "node", d);
    super::placement::validate(c, d);
    check_hugepages(c, d);
    if let Some(n) = c.attr("name").as_str() {
        let ok = !n.is_empty()
            && n.split('.').all(|l| {
                !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') && !l.starts_with('-')
            });
        if !ok {
            d.error_at(
                p("name"),
                "Invalid VM name",
                format!("{n:?} is not a DNS name (letters, digits, `-`, dots between labels)."),
            );
        }
    }
    for (attr, lo, hi) in [
        ("cores", 1, 1024),
        ("sockets", 1, 16),
        ("memory", 16, 16 * 1024 * 1024),
        ("memory_floating", 0, 16 * 1024 * 1024),
        ("startup_order", 0, i64::from(u32::MAX)),
        ("startup_up_delay", 0, i64::from(u32::MAX)),
        ("startup_down_delay", 0, i64::from(u32::MAX)),
    ] {
        if let Some(n) = c.attr(attr).as_number()
            && !n.as_i64().is_some_and(|v| (lo..=hi).contains(&v))
        {
            let why = if attr == "memory" {
                format!("PVE needs at least {lo} MiB; got {n}.")
            } else {
                format!("Must be an integer from {lo} to {hi}; got {n}.")
            };
            d.error_at(p(attr), format!("Invalid {attr}"), why);
        }
    }
    if let (Some(f), Some(m)) = (c.attr("memory_floating").as_i64(), c.attr("memory").as_i64())
        && f > m
    {
        d.error_at(
            p("memory_floating"),
            "Invalid memory_floating",
            format!("The balloon minimum ({f} MiB) cannot exceed `memory` ({m} MiB)."),
        );
    }
    if let Some(b) = c.attr("bios").as_str() {
        if !matches!(b, "seabios" | "ovmf") {
            d.error_at(p("bios"), "Invalid bios", format!("Use `seabios` or `ovmf`; got {b:?}."));
        }
        if b == "ovmf" && c.attr("efi_disk_storage").is_null() {
            d.error_at(
                p("efi_disk_storage"),
                "Missing EFI disk",
                "`bios = \"ovmf\"` needs `efi_disk_storage` for the EFI vars disk.",
            );
        }
    }
    if let Some(m) = c.attr("machine").as_str()
        && !(matches!(m, "q35" | "i440fx") || m.starts_with("pc-q35-") || m.starts_with("pc-i440fx-"))
    {
        d.error_at(
            p("machine"),
            "Invalid machine",
            format!("Use `q35`, `i440fx` or a versioned `pc-q35-…`; got {m:?}."),
        );
    }
    if let Some(h) = c.attr("scsi_hardware").as_str()
        && !matches!(h, "virtio-scsi-single" | "virtio-scsi-pci" | "lsi" | "lsi53c810" | "megasas" | "pvscsi")
    {
        d.error_at(p("scsi_hardware"), "Invalid SCSI controller", format!("{h:?} is not one PVE knows."));
    }
    for (attr, v) in
        [("efi_disk_storage", c.attr("efi_disk_storage")), ("tpm_state_storage", c.attr("tpm_state_storage"))]
    {
        if let Some(s) = v.as_str()
            && !valid_storage(s)
        {
            d.error_at(p(attr), "Invalid storage id", format!("{s:?} is not a storage id (e.g. `local-lvm`)."));
        }
    }
    if let Some(tags) = c.attr("tags").as_elements() {
        for t in tags.iter().filter_map(Value::as_str) {
            if !valid_tag(t) {
                d.error_at(
                    p("tags"),
                    "Invalid tag",
                    format!("{t:?}: tags are letters, digits and `_ - + .`, not starting with `-`, `+` or `.`."),
                );
            }
        }
    }
    if let Some(w) = c.attr("agent_wait").as_str()
        && let Err(e) = timeouts::parse_duration(w)
    {
        d.error_at(p("agent_wait"), "Invalid duration", e);
    }
    let mut slots: Vec<(String, AttributePath)> = Vec::new();
    let mut claim = |slot: &str, path: AttributePath, d: &mut Diagnostics| {
        if let Some((_, other)) = slots.iter().find(|(s, _)| s == slot) {
            d.error_at(path.clone(), "Drive slot used twice", format!("`{slot}` is already used by {other}."));
        } else {
            slots.push((slot.to_string(), path));
        }
    };
    for (i, disk) in c.attr("disks").as_elements().unwrap_or_default().iter().enumerate() {
        let base = p("disks").and_index(i as i64);
        if let Some(iface) = disk.attr("interface").as_str() {
            match iface.parse::<DiskSlot>() {
                Ok(_) => claim(iface, base.and_attr("interface"), d),
                Err(e) => d.error_at(base.and_attr("interface"), "Invalid disk interface", e.why),
            }
        }
        if let Some(s) = disk.attr("storage").as_str()
            && !valid_storage(s)
        {
            d.error_at(
                base.and_attr("storage"),
                "Invalid storage id",
                format!("{s:?} is not a storage id (e.g. `local-lvm`)."),
            );
        }
        if let Some(n) = disk.attr("size").as_number()
            && !n.as_i64().is_some_and(|v| (1..=131_072).contains(&v))
        {
            d.error_at(
                base.and_attr("size"),
                "Invalid disk size",
                format!("A size is a whole number of GiB from 1; got {n}."),
            );
        }
        if let Some(src) = disk.attr("import_from").as_str()
            && (src.starts_with('/') || !src.contains(':'))
        {
            d.error_at(base.and_attr("import_from"), "Invalid import source", format!("{src:?}: give a volume id like `local:import/talos.raw` (absolute paths need root, which an API token is not)."));
        }
        if let Some(cache) = disk.attr("cache").as_str()
            && !matches!(cache, "none" | "writethrough" | "writeback" | "unsafe" | "directsync")
        {
            d.error_at(base.and_attr("cache"), "Invalid cache mode", format!("{cache:?} is not a PVE cache mode."));
        }
    }
    if let Some(cd) = c.attr("cdrom").as_map() {
        let base = p("cdrom");
        if let Some(iface) = cd.get("interface").and_then(Value::as_str) {
            match iface.parse::<DiskSlot>() {
                Ok(s)
                    if matches!(
                        s.bus,
                        crate::proxmox::propstring::Bus::Ide
                            | crate::proxmox::propstring::Bus::Sata
                            | crate::proxmox::propstring::Bus::Scsi
                    ) =>
                {
                    claim(iface, base.and_attr("interface"), d)
                }
                Ok(_) => d.error_at(
                    base.and_attr("interface"),
                    "Invalid CD-ROM interface",
                    "A CD-ROM sits on ide, sata or scsi.",
                ),
                Err(e) => d.error_at(base.and_attr("interface"), "Invalid CD-ROM interface", e.why),
            }
        }
        if let Some(f) = cd.get("file").and_then(Value::as_str)
            && f != "none"
            && !(f.contains(":iso/") && valid_storage(f.split(':').next().unwrap_or("")))
        {
            d.error_at(
                base.and_attr("file"),
                "Invalid ISO volume",
                format!("{f:?}: use an ISO volume like `local:iso/talos.iso`, or `none`."),
            );
        }
    }
    if let Some(ci) = c.attr("cloud_init").as_map() {
        let base = p("cloud_init");
        if let Some(iface) = ci.get("interface").and_then(Value::as_str) {
            match iface.parse::<DiskSlot>() {
                Ok(_) => claim(iface, base.and_attr("interface"), d),
                Err(e) => d.error_at(base.and_attr("interface"), "Invalid cloud-init interface", e.why),
            }
        }
        if let Some(s) = ci.get("storage").and_then(Value::as_str)
            && !valid_storage(s)
        {
            d.error_at(base.and_attr("storage"), "Invalid storage id", format!("{s:?} is not a storage id."));
        }
        let nics = c.attr("network_devices").as_elements().map(<[Value]>::len);
        for (i, ip) in ci.get("ip_configs").and_then(Value::as_elements).unwrap_or_default().iter().enumerate() {
            let ib = base.and_attr("ip_configs").and_index(i as i64);
            if nics.is_some_and(|n| i >= n) {
                d.error_at(
                    ib.clone(),
                    "No NIC for this ip_config",
                    format!("ip_configs[{i}] configures net{i}, which `network_devices` does not have."),
                );
            }
            for (k, v6) in [("ipv4", false), ("ipv6", true)] {
                if let Some(a) = ip.attr(k).as_str() {
                    let ok = a == "dhcp" || (v6 && a == "auto") || valid_cidr(a, v6);
                    if !ok {
                        d.error_at(
                            ib.and_attr(k),
                            "Invalid address",
                            format!("{a:?}: use `dhcp`{} or an address with prefix.", if v6 { ", `auto`" } else { "" }),
                        );
                    }
                }
            }
            for (k, v6, addr) in [("ipv4_gateway", false, "ipv4"), ("ipv6_gateway", true, "ipv6")] {
                if let Some(g) = ip.attr(k).as_str() {
                    let ok = if v6 {
                        g.parse::<std::net::Ipv6Addr>().is_ok()
                    } else {
                        g.parse::<std::net::Ipv4Addr>().is_ok()
                    };
                    if !ok {
                        d.error_at(ib.and_attr(k), "Invalid gateway", format!("{g:?} is not an IP address."));
                    } else if matches!(ip.attr(addr).as_str(), Some("dhcp" | "auto")) {
                        d.error_at(
                            ib.and_attr(k),
                            "Gateway with DHCP",
                            format!("`{k}` only goes with a static `{addr}`."),
                        );
                    }
                }
            }
        }
    }
    for (i, nic) in c.attr("network_devices").as_elements().unwrap_or_default().iter().enumerate() {
        let base = p("network_devices").and_index(i as i64);
        if let Some(b) = nic.attr("bridge").as_str()
            && !valid_bridge(b)
        {
            d.error_at(
                base.and_attr("bridge"),
                "Invalid bridge",
                format!("{b:?} is not a bridge name (e.g. `vmbr0`, at most 15 characters)."),
            );
        }
        if let Some(m) = nic.attr("model").as_str()
            && !NIC_MODELS.contains(&m)
        {
            d.error_at(
                base.and_attr("model"),
                "Invalid NIC model",
                format!("{m:?}; use `virtio`, `e1000`, `e1000e`, `rtl8139` or `vmxnet3`."),
            );
        }
        if let Some(m) = nic.attr("mac_address").as_str()
            && !valid_mac(m)
        {
            d.error_at(
                base.and_attr("mac_address"),
                "Invalid MAC address",
                format!("{m:?}; write it as `BC:24:11:00:00:01`."),
            );
        }
        if let Some(n) = nic.attr("vlan_id").as_number()
            && !n.as_i64().is_some_and(|v| (1..=4094).contains(&v))
        {
            d.error_at(base.and_attr("vlan_id"), "Invalid VLAN", format!("A VLAN id is 1–4094; got {n}."));
        }
        if let Some(n) = nic.attr("queues").as_number()
            && !n.as_i64().is_some_and(|v| (0..=64).contains(&v))
        {
            d.error_at(base.and_attr("queues"), "Invalid queues", format!("PVE takes 0–64 queues; got {n}."));
        }
        if let Some(n) = nic.attr("mtu").as_number()
            && !n.as_i64().is_some_and(|v| v == 1 || (576..=65520).contains(&v))
        {
            d.error_at(
                base.and_attr("mtu"),
                "Invalid MTU",
                format!("An MTU is 576–65520, or 1 for the bridge's; got {n}."),
            );
        }
    }
    if let Some(cl) = c.attr("clone").as_map() {
        if let Some(n) = cl.get("source_vm_id").and_then(Value::as_number)
            && !n.as_i64().is_some_and(valid_vmid)
        {
            d.error_at(
                p("clone").and_attr("source_vm_id"),
                "Invalid VMID",
                format!("A VMID is {VMID_MIN}–{VMID_MAX}; got {n}."),
            );
        }
        if cl.get("full").and_then(Value::as_bool) == Some(false) && cl.get("storage").is_some_and(|s| !s.is_null()) {
            d.error_at(
                p("clone").and_attr("storage"),
                "Storage with a linked clone",
                "PVE allows `storage` only for full clones.",
            );
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn check(v: Value) -> Vec<String> {
        let mut d = Diagnostics::new();
        validate(&v, &mut d);
        d.0.iter().map(|x| x.path.as_ref().map(ToString::to_string).unwrap_or_default()).collect()
    }

    #[test]
    fn bad_input_names_its_path() {
        let cases: Vec<(Value, &str)> = vec![
            (Value::object([("vm_id", Value::int(99))]), "vm_id"),
            (Value::object([("vm_id", Value::int(1_000_000_000))]), "vm_id"),
            (Value::object([("memory", Value::int(8))]), "memory"),
            (
                Value::object([
                    ("hugepages", "1024".into()),
                    ("numa", Value::Bool(true)),
                    ("memory", Value::int(3000)),
                ]),
                "memory",
            ),
            (Value::object([("hugepages", "2".into())]), "hugepages"),
            (Value::object([("hugepages", "4".into()), ("numa", Value::Bool(true))]), "hugepages"),
            (
                Value::object([("network_devices", Value::List(vec![Value::object([("queues", Value::int(65))])]))]),
                "network_devices[0].queues",
            ),
            (Value::object([("bios", "ovmf".into())]), "efi_disk_storage"),
            (Value::object([("tags", Value::Set(vec!["-bad".into()]))]), "tags"),
            (
                Value::object([("disks", Value::List(vec![Value::object([("interface", "nvme0".into())])]))]),
                "disks[0].interface",
            ),
            (
                Value::object([(
                    "disks",
                    Value::List(vec![Value::object([("interface", "scsi0".into()), ("storage", "Local LVM".into())])]),
                )]),
                "disks[0].storage",
            ),
            (
                Value::object([(
                    "network_devices",
                    Value::List(vec![Value::object([("bridge", "vmbr0 extra".into())])]),
                )]),
                "network_devices[0].bridge",
            ),
            (
                Value::object([("network_devices", Value::List(vec![Value::object([("vlan_id", Value::int(5000))])]))]),
                "network_devices[0].vlan_id",
            ),
            (
                Value::object([
                    ("disks", Value::List(vec![Value::object([("interface", "ide2".into())])])),
                    ("cdrom", Value::object([("interface", "ide2".into()), ("file", "local:iso/t.iso".into())])),
                ]),
                "cdrom.interface",
            ),
            (Value::object([("cdrom", Value::object([("file", "talos.iso".into())]))]), "cdrom.file"),
            (Value::object([("timeouts", Value::object([("create", "soon".into())]))]), "timeouts.create"),
        ];
        for (v, want) in cases {
            let got = check(v.clone());
            assert!(got.contains(&want.to_string()), "{want}: got {got:?} for {v:?}");
        }
    }

    #[test]
    fn a_secure_boot_image_needs_ovmf() {
        let plan = |bios: &str| {
            Value::object([
                ("bios", bios.into()),
                (
                    "cdrom",
                    Value::object([("file", "local:iso/talos-v1.13.9-nocloud-amd64-secureboot-37656798.iso".into())]),
                ),
                (
                    "disks",
                    Value::List(vec![Value::object([(
                        "import_from",
                        "local:import/nocloud-amd64-secureboot.qcow2".into(),
                    )])]),
                ),
            ])
        };
        let mut d = Diagnostics::new();
        check_secure_boot(&plan("seabios"), &mut d);
        let at: Vec<String> = d.0.iter().filter_map(|x| x.path.as_ref().map(ToString::to_string)).collect();
        assert_eq!(at, ["cdrom.file", "disks[0].import_from"]);
        let mut d = Diagnostics::new();
        check_secure_boot(&plan("ovmf"), &mut d);
        assert!(d.is_empty());
    }

    #[test]
    fn good_input_passes_and_unknowns_are_skipped() {
        let v = Value::object([
            ("vm_id", Value::int(100)),
            ("node", Value::Unknown),
            ("memory", Value::Unknown),
            ("tags", Value::Set(vec!["Talos".into(), "cp".into()])),
            (
                "disks",
                Value::List(vec![Value::object([
                    ("interface", "scsi0".into()),
                    ("storage", "local-lvm".into()),
                    ("size", Value::int(8)),
                ])]),
            ),
            (
                "cloud_init",
                Value::object([
                    ("storage", "local-lvm".into()),
                    ("interface", "ide0".into()),
                    (
                        "ip_configs",
                        Value::List(vec![Value::object([
                            ("ipv4", "10.0.0.5/24".into()),
                            ("ipv4_gateway", "10.0.0.1".into()),
                        ])]),
                    ),
                ]),
            ),
        ]);
        assert!(check(v).is_empty());
    }
}
