//! Property strings (`virtio=BC:24:11:00:00:01,bridge=vmbr0,tag=5`) and
//! indexed keys (`scsi0`, `net1`, `ipconfig0`) as types, each printing back
//! exactly what it parsed (round-trip tests below). PVE rewrites values in
//! its own key order, so compare parsed values, never strings.

use std::fmt;
use std::str::FromStr;

use super::error::ParseError;

/// A generic property string: an optional leading bare value (the default
/// key's value) and `key=value` pairs in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PropertyString {
    /// The leading bare value, if any (`local-lvm:vm-100-disk-0`).
    pub head: Option<String>,
    /// `key=value` pairs in their order.
    pub pairs: Vec<(String, String)>,
}

impl PropertyString {
    /// Parses `head,k=v,k=v`. A bare value is allowed only first.
    pub fn parse(what: &'static str, s: &str) -> Result<PropertyString, ParseError> {
        let mut out = PropertyString::default();
        for (i, item) in s.split(',').enumerate() {
            match item.split_once('=') {
                Some((k, v))
                    if !k.is_empty() && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') =>
                {
                    out.pairs.push((k.to_string(), v.to_string()))
                }
                _ if i == 0 && !item.is_empty() => out.head = Some(item.to_string()),
                _ => return Err(ParseError::new(what, s, format!("cannot read {item:?}"))),
            }
        }
        Ok(out)
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// Sets `key` (replacing it in place, or appending).
    pub fn set(&mut self, key: &str, v: impl Into<String>) {
        let v = v.into();
        match self.pairs.iter_mut().find(|(k, _)| k == key) {
            Some(p) => p.1 = v,
            None => self.pairs.push((key.to_string(), v)),
        }
    }

    /// Removes `key`, returning its value.
    pub fn take(&mut self, key: &str) -> Option<String> {
        let i = self.pairs.iter().position(|(k, _)| k == key)?;
        Some(self.pairs.remove(i).1)
    }
}

impl fmt::Display for PropertyString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        if let Some(h) = &self.head {
            f.write_str(h)?;
            first = false;
        }
        for (k, v) in &self.pairs {
            if !first {
                f.write_str(",")?;
            }
            write!(f, "{k}={v}")?;
            first = false;
        }
        Ok(())
    }
}

/// PVE booleans: `1`/`0`, `on`/`off`, `true`/`false`, `yes`/`no`.
pub fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "on" | "true" | "yes" => Some(true),
        "0" | "off" | "false" | "no" => Some(false),
        _ => None,
    }
}

/// The NIC models PVE knows.
pub const NIC_MODELS: &[&str] = &[
    "virtio",
    "e1000",
    "e1000e",
    "rtl8139",
    "vmxnet3",
    "ne2k_pci",
    "pcnet",
    "i82551",
    "i82557b",
    "i82559er",
    "ne2k_isa",
    "e1000-82540em",
    "e1000-82544gc",
    "e1000-82545em",
];

/// A `netN` value: `MODEL[=MAC],bridge=..,tag=..,firewall=..,mtu=..`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetDevice {
    /// `virtio`, `e1000`, ...
    pub model: String,
    /// Upper-case MAC, if set.
    pub mac: Option<String>,
    /// Bridge (`vmbr0`).
    pub bridge: Option<String>,
    /// VLAN tag.
    pub tag: Option<u16>,
    /// Firewall on this NIC.
    pub firewall: bool,
    /// MTU (`1` = the bridge's).
    pub mtu: Option<u16>,
    /// Multiqueue: packet queues (virtio), usually the vCPU count.
    pub queues: Option<u8>,
    /// Keys we do not model, kept for the round trip.
    pub extra: Vec<(String, String)>,
}

impl FromStr for NetDevice {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<NetDevice, ParseError> {
        let ps = PropertyString::parse("netN", s)?;
        let bad = |why: String| ParseError::new("netN", s, why);
        let mut nic = NetDevice {
            model: String::new(),
            mac: None,
            bridge: None,
            tag: None,
            firewall: false,
            mtu: None,
            queues: None,
            extra: Vec::new(),
        };
        if let Some(h) = &ps.head {
            nic.model = h.clone();
        }
        for (k, v) in ps.pairs {
            match k.as_str() {
                m if nic.model.is_empty() && NIC_MODELS.contains(&m) => {
                    nic.model = k.clone();
                    nic.mac = Some(v.to_ascii_uppercase());
                }
                "model" => nic.model = v,
                "macaddr" => nic.mac = Some(v.to_ascii_uppercase()),
                "bridge" => nic.bridge = Some(v),
                "tag" => nic.tag = Some(v.parse().map_err(|_| bad(format!("tag {v:?}")))?),
                "firewall" => nic.firewall = parse_bool(&v).ok_or_else(|| bad(format!("firewall {v:?}")))?,
                "mtu" => nic.mtu = Some(v.parse().map_err(|_| bad(format!("mtu {v:?}")))?),
                "queues" => nic.queues = Some(v.parse().map_err(|_| bad(format!("queues {v:?}")))?),
                _ => nic.extra.push((k, v)),
            }
        }
        if nic.model.is_empty() {
            return Err(bad("no model".into()));
        }
        Ok(nic)
    }
}

impl fmt::Display for NetDevice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.model)?;
        if let Some(mac) = &self.mac {
            write!(f, "={mac}")?;
        }
        if let Some(b) = &self.bridge {
            write!(f, ",bridge={b}")?;
        }
        if self.firewall {
            f.write_str(",firewall=1")?;
        }
        if let Some(t) = self.tag {
            write!(f, ",tag={t}")?;
        }
        if let Some(m) = self.mtu {
            write!(f, ",mtu={m}")?;
        }
        if let Some(q) = self.queues {
            write!(f, ",queues={q}")?;
        }
        for (k, v) in &self.extra {
            write!(f, ",{k}={v}")?;
        }
        Ok(())
    }
}

/// A drive value (`scsi0`, `ide2`, `efidisk0`): the volume (or
/// `STORAGE:SIZE` to allocate, `none`, `cdrom`) and options.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Drive {
    /// `local-lvm:vm-100-disk-0`, `local-lvm:20`, `local:iso/x.iso`, `none`.
    pub file: String,
    /// Options in order (`size=20G`, `ssd=1`, `media=cdrom`, ...).
    pub opts: PropertyString,
}

impl Drive {
    /// A drive for `file` with no options.
    pub fn new(file: impl Into<String>) -> Drive {
        Drive { file: file.into(), opts: PropertyString::default() }
    }

    /// Sets an option.
    pub fn with(mut self, k: &str, v: impl Into<String>) -> Drive {
        self.opts.set(k, v);
        self
    }

    /// An option's value.
    pub fn get(&self, k: &str) -> Option<&str> {
        self.opts.get(k)
    }

    /// A boolean option (false when absent).
    pub fn flag(&self, k: &str) -> bool {
        self.get(k).and_then(parse_bool).unwrap_or(false)
    }

    /// Whether this is a CD-ROM (`media=cdrom`), including a cloud-init drive.
    pub fn is_cdrom(&self) -> bool {
        self.get("media") == Some("cdrom")
    }

    /// Whether this is the cloud-init drive.
    pub fn is_cloudinit(&self) -> bool {
        self.file.ends_with(":cloudinit") || self.file.contains("-cloudinit")
    }

    /// The storage id part of `file` (`local-lvm`), if any.
    pub fn storage(&self) -> Option<&str> {
        self.file.split_once(':').map(|(s, _)| s)
    }

    /// The `size=` option in bytes.
    pub fn size_bytes(&self) -> Option<u64> {
        self.get("size").and_then(parse_size)
    }
}

impl FromStr for Drive {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Drive, ParseError> {
        let mut ps = PropertyString::parse("drive", s)?;
        let file = match ps.head.take() {
            Some(h) => h,
            None => ps.take("file").ok_or_else(|| ParseError::new("drive", s, "no volume"))?,
        };
        Ok(Drive { file, opts: ps })
    }
}

impl fmt::Display for Drive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file)?;
        if !self.opts.pairs.is_empty() {
            write!(f, ",{}", self.opts)?;
        }
        Ok(())
    }
}

/// Parses a PVE size (`20G`, `528K`, `1.5T`, bare bytes) into bytes.
pub fn parse_size(s: &str) -> Option<u64> {
    let (num, mult) = match s.as_bytes().last()? {
        b'K' | b'k' => (&s[..s.len() - 1], 1u64 << 10),
        b'M' | b'm' => (&s[..s.len() - 1], 1 << 20),
        b'G' | b'g' => (&s[..s.len() - 1], 1 << 30),
        b'T' | b't' => (&s[..s.len() - 1], 1 << 40),
        _ => (s, 1),
    };
    let n: f64 = num.parse().ok()?;
    if !(n.is_finite() && n >= 0.0) {
        return None;
    }
    Some((n * mult as f64).round() as u64)
}

/// The bus of a disk slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Bus {
    /// `ide0..3`
    Ide,
    /// `sata0..5`
    Sata,
    /// `scsi0..30`
    Scsi,
    /// `virtio0..15`
    Virtio,
}

impl Bus {
    /// The key prefix.
    pub fn name(self) -> &'static str {
        match self {
            Bus::Ide => "ide",
            Bus::Sata => "sata",
            Bus::Scsi => "scsi",
            Bus::Virtio => "virtio",
        }
    }

    /// The highest index on this bus.
    pub fn max_index(self) -> u8 {
        match self {
            Bus::Ide => 3,
            Bus::Sata => 5,
            Bus::Scsi => 30,
            Bus::Virtio => 15,
        }
    }
}

/// An indexed drive key: `scsi0`, `virtio3`, `ide2`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DiskSlot {
    /// The bus.
    pub bus: Bus,
    /// The index on it.
    pub index: u8,
}

impl FromStr for DiskSlot {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<DiskSlot, ParseError> {
        let bad = || {
            ParseError::new("disk interface", s, "expected ide0–ide3, sata0–sata5, scsi0–scsi30 or virtio0–virtio15")
        };
        let digits = s.find(|c: char| c.is_ascii_digit()).ok_or_else(bad)?;
        let bus = match &s[..digits] {
            "ide" => Bus::Ide,
            "sata" => Bus::Sata,
            "scsi" => Bus::Scsi,
            "virtio" => Bus::Virtio,
            _ => return Err(bad()),
        };
        let idx = &s[digits..];
        if idx.len() > 1 && idx.starts_with('0') {
            return Err(bad());
        }
        let index: u8 = idx.parse().map_err(|_| bad())?;
        if index > bus.max_index() {
            return Err(bad());
        }
        Ok(DiskSlot { bus, index })
    }
}

impl fmt::Display for DiskSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.bus.name(), self.index)
    }
}

/// An `ipconfigN` value: `ip=dhcp|CIDR,gw=..,ip6=dhcp|auto|CIDR,gw6=..`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IpConfig {
    /// `dhcp` or `10.0.0.5/24`.
    pub ip: Option<String>,
    /// IPv4 gateway.
    pub gw: Option<String>,
    /// `dhcp`, `auto` or `fd00::5/64`.
    pub ip6: Option<String>,
    /// IPv6 gateway.
    pub gw6: Option<String>,
}

impl FromStr for IpConfig {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<IpConfig, ParseError> {
        let ps = PropertyString::parse("ipconfigN", s)?;
        if ps.head.is_some() {
            return Err(ParseError::new("ipconfigN", s, "every item must be key=value"));
        }
        let mut c = IpConfig::default();
        for (k, v) in ps.pairs {
            match k.as_str() {
                "ip" => c.ip = Some(v),
                "gw" => c.gw = Some(v),
                "ip6" => c.ip6 = Some(v),
                "gw6" => c.gw6 = Some(v),
                _ => return Err(ParseError::new("ipconfigN", s, format!("unknown key {k:?}"))),
            }
        }
        Ok(c)
    }
}

impl fmt::Display for IpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        for (k, v) in [("ip", &self.ip), ("gw", &self.gw), ("ip6", &self.ip6), ("gw6", &self.gw6)] {
            if let Some(v) = v {
                parts.push(format!("{k}={v}"));
            }
        }
        f.write_str(&parts.join(","))
    }
}

/// Tags the way PVE stores them: lower-case, sorted, deduplicated, joined
/// by `;` (input may be separated by `;`, `,` or spaces).
pub fn normalize_tags<'a>(tags: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut out: Vec<String> = tags
        .into_iter()
        .flat_map(|t| t.split([';', ',', ' ']))
        .filter(|t| !t.is_empty())
        .map(str::to_ascii_lowercase)
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Whether `t` is a valid PVE tag (`[a-z0-9_][a-z0-9_+.-]*`, any case).
pub fn valid_tag(t: &str) -> bool {
    let mut b = t.bytes();
    matches!(b.next(), Some(c) if c.is_ascii_alphanumeric() || c == b'_')
        && b.all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'+' | b'.'))
}

/// The MiB of a `memory` value (`4096` or `current=4096`).
pub fn parse_memory(s: &str) -> Option<u64> {
    s.strip_prefix("current=").unwrap_or(s).split(',').next()?.parse().ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn net_round_trip() {
        for s in [
            "virtio=BC:24:11:AA:BB:01,bridge=vmbr0",
            "virtio=BC:24:11:AA:BB:01,bridge=vmbr0,firewall=1,tag=10,mtu=1450",
            "e1000,bridge=vmbr1",
            "virtio=BC:24:11:AA:BB:01,bridge=vmbr0,queues=4,rate=10",
        ] {
            let n: NetDevice = s.parse().unwrap();
            assert_eq!(n.to_string(), s);
            assert_eq!(n.to_string().parse::<NetDevice>().unwrap(), n);
        }
        let n: NetDevice = "bridge=vmbr0,virtio=bc:24:11:aa:bb:01,tag=5,firewall=0".parse().unwrap();
        assert_eq!(n.model, "virtio");
        assert_eq!(n.mac.as_deref(), Some("BC:24:11:AA:BB:01"));
        assert_eq!(n.tag, Some(5));
        assert!(!n.firewall);
        assert!("bridge=vmbr0".parse::<NetDevice>().is_err());
        assert!("virtio,tag=x".parse::<NetDevice>().is_err());
    }

    #[test]
    fn drive_round_trip() {
        for s in [
            "local-lvm:vm-100-disk-0,discard=on,iothread=1,size=20G,ssd=1",
            "local:iso/talos.iso,media=cdrom,size=1M",
            "local-lvm:0,import-from=local:import/talos.raw",
            "none,media=cdrom",
            "local-lvm:20",
        ] {
            let d: Drive = s.parse().unwrap();
            assert_eq!(d.to_string(), s);
        }
        let d: Drive = "local-lvm:vm-100-disk-0,size=20G,ssd=1".parse().unwrap();
        assert_eq!(d.storage(), Some("local-lvm"));
        assert_eq!(d.size_bytes(), Some(20 << 30));
        assert!(d.flag("ssd"));
        assert!(!d.flag("iothread"));
        let ci: Drive = "local-lvm:vm-100-cloudinit,media=cdrom".parse().unwrap();
        assert!(ci.is_cloudinit() && ci.is_cdrom());
        assert!("".parse::<Drive>().is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("528K"), Some(528 << 10));
        assert_eq!(parse_size("1.5G"), Some(3 << 29));
        assert_eq!(parse_size("4096"), Some(4096));
        assert_eq!(parse_size("x"), None);
        assert_eq!(parse_size("-1G"), None);
    }

    #[test]
    fn slots() {
        for s in ["ide0", "ide3", "sata5", "scsi0", "scsi30", "virtio15"] {
            assert_eq!(s.parse::<DiskSlot>().unwrap().to_string(), s);
        }
        for s in ["ide4", "sata6", "scsi31", "virtio16", "nvme0", "scsi", "scsi01", "scsi-1", ""] {
            assert!(s.parse::<DiskSlot>().is_err(), "{s}");
        }
    }

    #[test]
    fn ipconfig_round_trip() {
        for s in [
            "ip=dhcp",
            "ip=10.0.0.5/24,gw=10.0.0.1",
            "ip=10.0.0.5/24,gw=10.0.0.1,ip6=fd00::5/64,gw6=fd00::1",
            "ip6=auto",
        ] {
            let c: IpConfig = s.parse().unwrap();
            assert_eq!(c.to_string(), s);
        }
        assert!("dhcp".parse::<IpConfig>().is_err());
        assert!("ip=dhcp,foo=1".parse::<IpConfig>().is_err());
    }

    #[test]
    fn tags_and_memory() {
        assert_eq!(normalize_tags(["Talos", "cp", "talos"]), vec!["cp", "talos"]);
        assert_eq!(normalize_tags(["b;A", "c,d e"]), vec!["a", "b", "c", "d", "e"]);
        assert!(valid_tag("k8s-cp_1.2+x"));
        assert!(!valid_tag("-x") && !valid_tag("a b") && !valid_tag(""));
        assert_eq!(parse_memory("4096"), Some(4096));
        assert_eq!(parse_memory("current=2048"), Some(2048));
        assert_eq!(parse_memory("x"), None);
    }

    #[test]
    fn generic_property_string() {
        let mut p = PropertyString::parse("x", "enabled=1,fstrim_cloned_disks=0").unwrap();
        assert_eq!(p.get("enabled"), Some("1"));
        p.set("enabled", "0");
        assert_eq!(p.to_string(), "enabled=0,fstrim_cloned_disks=0");
        assert_eq!(PropertyString::parse("x", "1").unwrap().head.as_deref(), Some("1"));
        assert!(PropertyString::parse("x", "a=1,b").is_err());
    }
}
