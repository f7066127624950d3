//! What the lab reads from a VM's config, as a hypervisor integration
//! would: whether a Talos boot medium is attached, the Talos version it
//! carries, and the address the guest will have.
//!
//! # The "Talos medium" rule
//!
//! A drive key (`ide0`–`ide3`, `sata0`–`sata5`, `scsi0`–`scsi30`,
//! `virtio0`–`virtio15`) carries Talos when the **file name** of its volume
//! (after the storage prefix and the last `/`: `local:iso/talos-amd64.iso` →
//! `talos-amd64.iso`), or for a disk the file name of its `import-from=`
//! source, lowercased:
//! - contains `talos`, or
//! - starts with `metal-` or `nocloud-` (Image Factory's file names, e.g.
//!   `metal-amd64.iso`, `nocloud-amd64.raw`).
//!
//! A disk (not `media=cdrom`) with such a name is a **disk image**: the
//! node is already installed (platform `nocloud`, no install on apply). A
//! CD-ROM (`media=cdrom`) with such a name is an **ISO**: the node boots
//! to maintenance and installs to disk on the first complete config
//! (platform `metal`). When both are attached the disk image wins (PVE's
//! default boot order tries disks first).
//!
//! The node's Talos version is the first `vX.Y.Z` in that file name
//! (`talos-v1.12.4-metal-amd64.iso` → `v1.12.4`), else the lab default.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

/// How the Talos medium is attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediumKind {
    /// A CD-ROM with a Talos ISO: maintenance, then install on apply.
    Iso,
    /// A disk with a Talos disk image: already installed.
    DiskImage,
}

/// A Talos medium found in a VM config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TalosMedium {
    /// ISO or disk image.
    pub kind: MediumKind,
    /// The drive key (`ide2`, `scsi0`).
    pub drive: String,
    /// The file name that matched.
    pub file: String,
    /// The `vX.Y.Z` in the file name, if any.
    pub version: Option<String>,
}

/// Whether a key names a drive.
fn is_drive_key(k: &str) -> bool {
    let (bus, max) = if let Some(n) = k.strip_prefix("ide") {
        (n, 3)
    } else if let Some(n) = k.strip_prefix("sata") {
        (n, 5)
    } else if let Some(n) = k.strip_prefix("scsi") {
        (n, 30)
    } else if let Some(n) = k.strip_prefix("virtio") {
        (n, 15)
    } else {
        return false;
    };
    !bus.is_empty() && bus.bytes().all(|b| b.is_ascii_digit()) && bus.parse::<u32>().is_ok_and(|n| n <= max)
}

/// The file name of a volume id: `local:iso/x.iso` → `x.iso`,
/// `/mnt/x.iso` → `x.iso`.
pub fn file_name(volume: &str) -> &str {
    let after_storage = volume.split_once(':').map_or(volume, |(_, p)| p);
    after_storage.rsplit('/').next().unwrap_or(after_storage)
}

/// Whether a file name marks Talos (see the module rule).
pub fn is_talos_name(file: &str) -> bool {
    let f = file.to_ascii_lowercase();
    f.contains("talos") || f.starts_with("metal-") || f.starts_with("nocloud-")
}

/// The first `vX.Y.Z` in a file name (not preceded by a letter or digit).
pub fn version_in(name: &str) -> Option<String> {
    let b = name.as_bytes();
    for i in 0..b.len() {
        if b[i] != b'v' || (i > 0 && b[i - 1].is_ascii_alphanumeric()) {
            continue;
        }
        let mut j = i + 1;
        let mut parts = 0;
        loop {
            let start = j;
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            if j == start {
                break;
            }
            parts += 1;
            if parts == 3 || j >= b.len() || b[j] != b'.' {
                break;
            }
            j += 1;
        }
        if parts == 3 {
            return name.get(i..j).map(str::to_string);
        }
    }
    None
}

/// Splits a drive value into its volume and options.
fn drive_parts(value: &str) -> (&str, BTreeMap<&str, &str>) {
    let mut volume = "";
    let mut opts = BTreeMap::new();
    for (i, part) in value.split(',').enumerate() {
        match part.split_once('=') {
            Some(("file", v)) => volume = v,
            Some((k, v)) => {
                opts.insert(k, v);
            }
            None if i == 0 => volume = part,
            None => {}
        }
    }
    (volume, opts)
}

/// Finds the Talos medium of a VM config (see the module rule).
pub fn detect(config: &BTreeMap<String, String>) -> Option<TalosMedium> {
    let mut iso = None;
    let mut disk = None;
    for (key, value) in config.iter().filter(|(k, _)| is_drive_key(k)) {
        let (volume, opts) = drive_parts(value);
        let cdrom = opts.get("media") == Some(&"cdrom");
        let mut names = vec![file_name(volume)];
        if !cdrom && let Some(src) = opts.get("import-from") {
            names.push(file_name(src));
        }
        let Some(file) = names.into_iter().find(|n| is_talos_name(n)) else { continue };
        let found = TalosMedium {
            kind: if cdrom { MediumKind::Iso } else { MediumKind::DiskImage },
            drive: key.clone(),
            file: file.to_string(),
            version: version_in(file),
        };
        let slot = if cdrom { &mut iso } else { &mut disk };
        if slot.is_none() {
            *slot = Some(found);
        }
    }
    disk.or(iso)
}

/// The static address of `ipconfig0` (`ip=127.0.10.5/24,gw=...` →
/// 127.0.10.5 and its prefix length); `None` for `ip=dhcp` or no
/// `ipconfig0` (the guest then gets a lease).
pub fn static_address(config: &BTreeMap<String, String>) -> Option<(IpAddr, u8)> {
    let ipc = config.get("ipconfig0")?;
    let ip = ipc.split(',').find_map(|p| p.strip_prefix("ip="))?;
    let (addr, prefix) = ip.split_once('/').unwrap_or((ip, "32"));
    let addr: Ipv4Addr = addr.parse().ok()?;
    Some((IpAddr::V4(addr), prefix.parse().unwrap_or(32)))
}

/// The MAC of `net0` (`virtio=BC:24:11:..,bridge=vmbr0`).
pub fn mac(config: &BTreeMap<String, String>) -> Option<String> {
    let first = config.get("net0")?.split(',').next()?;
    let (_, mac) = first.split_once('=')?;
    (mac.len() == 17).then(|| mac.to_ascii_lowercase())
}

/// Whether the guest agent is enabled (`agent: 1` or `enabled=1,...`).
pub fn agent_enabled(config: &BTreeMap<String, String>) -> bool {
    config.get("agent").is_some_and(|a| a.split(',').any(|p| matches!(p, "1" | "enabled=1" | "true")))
}

/// What identifies one VM across its life (a VMID can be reused after a
/// destroy): the SMBIOS UUID and the creation time.
pub fn identity(config: &BTreeMap<String, String>) -> String {
    let uuid = config.get("smbios1").and_then(|s| s.split(',').find_map(|p| p.strip_prefix("uuid="))).unwrap_or("");
    let ctime = config.get("meta").and_then(|s| s.split(',').find_map(|p| p.strip_prefix("ctime="))).unwrap_or("");
    format!("{uuid}/{ctime}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn iso_on_a_cdrom() {
        let c = cfg(&[
            ("ide2", "local:iso/talos-v1.12.4-metal-amd64.iso,media=cdrom,size=100M"),
            ("scsi0", "local-lvm:vm-100-disk-0,size=10G"),
        ]);
        let m = detect(&c).unwrap();
        assert_eq!(m.kind, MediumKind::Iso);
        assert_eq!(m.drive, "ide2");
        assert_eq!(m.version.as_deref(), Some("v1.12.4"));
        let c = cfg(&[("sata1", "file=local:iso/metal-amd64.iso,media=cdrom")]);
        assert_eq!(detect(&c).unwrap().version, None);
    }

    #[test]
    fn disk_image_by_import_from_or_name_wins_over_iso() {
        let c = cfg(&[
            ("ide2", "local:iso/talos.iso,media=cdrom"),
            ("scsi0", "local-lvm:0,import-from=local:import/nocloud-amd64-v1.13.0.raw,discard=on"),
        ]);
        let m = detect(&c).unwrap();
        assert_eq!((m.kind, m.drive.as_str(), m.version.as_deref()), (MediumKind::DiskImage, "scsi0", Some("v1.13.0")));
        let c = cfg(&[("virtio0", "local-lvm:vm-100-talos-disk,size=4G")]);
        assert_eq!(detect(&c).unwrap().kind, MediumKind::DiskImage);
    }

    #[test]
    fn no_medium() {
        for c in [
            cfg(&[("ide2", "none,media=cdrom"), ("scsi0", "local-lvm:vm-100-disk-0")]),
            cfg(&[("ide2", "local:iso/debian-13.iso,media=cdrom")]),
            cfg(&[("ide0", "local-lvm:vm-100-cloudinit,media=cdrom")]),
            // Not drive keys.
            cfg(&[("description", "talos node"), ("tags", "talos"), ("ide4", "local:iso/talos.iso,media=cdrom")]),
        ] {
            assert_eq!(detect(&c), None, "{c:?}");
        }
        // The cloud-init drive named by fakepve: no marker, not a medium.
        assert!(!is_talos_name("vm-100-disk-0"));
    }

    #[test]
    fn names_and_versions() {
        assert_eq!(file_name("local:iso/a/b.iso"), "b.iso");
        assert_eq!(file_name("b.iso"), "b.iso");
        assert!(is_talos_name("TALOS.iso") && is_talos_name("nocloud-arm64.raw") && !is_talos_name("my-metal-x.iso"));
        assert_eq!(version_in("talos-v1.2.3.iso").as_deref(), Some("v1.2.3"));
        assert_eq!(version_in("dev1.2.3-v1.10.0").as_deref(), Some("v1.10.0"));
        assert_eq!(version_in("v1.2.iso"), None);
    }

    #[test]
    fn addresses_mac_agent_identity() {
        let c = cfg(&[
            ("ipconfig0", "ip=127.0.10.5/24,gw=127.0.10.1"),
            ("net0", "virtio=BC:24:11:F5:D1:ED,bridge=vmbr0"),
            ("agent", "enabled=1,fstrim_cloned_disks=1"),
            ("smbios1", "uuid=abc"),
            ("meta", "creation-qemu=10.0.2,ctime=17"),
        ]);
        assert_eq!(static_address(&c), Some(("127.0.10.5".parse().unwrap(), 24)));
        assert_eq!(mac(&c).as_deref(), Some("bc:24:11:f5:d1:ed"));
        assert!(agent_enabled(&c));
        assert_eq!(identity(&c), "abc/17");
        let c = cfg(&[("ipconfig0", "ip=dhcp"), ("agent", "0")]);
        assert_eq!(static_address(&c), None);
        assert!(!agent_enabled(&c));
        assert_eq!(static_address(&cfg(&[])), None);
    }
}
