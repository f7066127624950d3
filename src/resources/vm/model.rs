//! The `proxtalos_vm` model: Terraform values ↔ [`VmSpec`] ↔ PVE config
//! keys. Pure functions, unit-tested without a network.

use std::collections::BTreeMap;

use crate::plugin::Value;
use crate::proxmox::propstring::{
    DiskSlot, Drive, IpConfig, NetDevice, PropertyString, normalize_tags, parse_bool, parse_memory,
};
use crate::proxmox::qemu::{PendingEntry, VmConfig};

const GIB: u64 = 1 << 30;

/// One disk.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DiskSpec {
    /// `scsi0`
    pub interface: String,
    /// Storage id.
    pub storage: String,
    /// GiB (None = unknown / from the image).
    pub size: Option<i64>,
    /// Import source (never read back).
    pub import_from: Option<String>,
    /// SSD emulation.
    pub ssd: bool,
    /// discard=on.
    pub discard: bool,
    /// iothread=1.
    pub iothread: bool,
    /// Cache mode.
    pub cache: Option<String>,
    /// `backup=0`: left out of vzdump backups (PVE's default: included).
    pub no_backup: bool,
    /// `replicate=0`: left out of storage replication (default: included).
    pub no_replicate: bool,
}

/// PVE's `startup` property: where the VM goes in the node's boot order,
/// and the seconds to wait after it starts and before it is stopped.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Startup {
    /// `order`.
    pub order: Option<i64>,
    /// `up` (seconds).
    pub up: Option<i64>,
    /// `down` (seconds).
    pub down: Option<i64>,
}

impl Startup {
    /// PVE's text, or `None` when nothing is set (then the key is not sent:
    /// setting it needs `Sys.Modify` on `/`, which least-privilege tokens
    /// lack).
    pub fn to_config(&self) -> Option<String> {
        let parts: Vec<String> = [("order", self.order), ("up", self.up), ("down", self.down)]
            .iter()
            .filter_map(|(k, v)| v.map(|v| format!("{k}={v}")))
            .collect();
        (!parts.is_empty()).then(|| parts.join(","))
    }

    /// Reads PVE's text (a bare number is the order).
    pub fn from_config(text: Option<&str>) -> Startup {
        let Some(text) = text else { return Startup::default() };
        let ps = PropertyString::parse("startup", text).unwrap_or_default();
        let num = |k: &str| ps.get(k).and_then(|v| v.parse().ok());
        Startup {
            order: ps.head.as_deref().and_then(|h| h.parse().ok()).or_else(|| num("order")),
            up: num("up"),
            down: num("down"),
        }
    }
}

/// A drive option PVE stores as `0`/`off`/`no` when turned off.
fn off(v: Option<&str>) -> bool {
    matches!(v, Some("0" | "off" | "no" | "false"))
}

/// One NIC.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NicSpec {
    /// Bridge.
    pub bridge: String,
    /// Model.
    pub model: String,
    /// MAC (None = let PVE generate).
    pub mac: Option<String>,
    /// VLAN.
    pub vlan: Option<i64>,
    /// Firewall.
    pub firewall: bool,
    /// MTU.
    pub mtu: Option<i64>,
    /// Multiqueue packet queues.
    pub queues: Option<i64>,
}

/// Cloud-init per-NIC addresses.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct IpSpec {
    /// `dhcp` or CIDR.
    pub ipv4: Option<String>,
    /// Gateway.
    pub ipv4_gateway: Option<String>,
    /// `dhcp`, `auto` or CIDR.
    pub ipv6: Option<String>,
    /// Gateway.
    pub ipv6_gateway: Option<String>,
}

/// Cloud-init settings.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CloudInitSpec {
    /// Storage of the drive.
    pub storage: String,
    /// Slot of the drive.
    pub interface: String,
    /// Name servers.
    pub dns_servers: Option<Vec<String>>,
    /// Search domain.
    pub dns_domain: Option<String>,
    /// Per NIC.
    pub ip_configs: Option<Vec<IpSpec>>,
}

/// Everything PVE stores that the resource manages.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct VmSpec {
    /// Name.
    pub name: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// Tags as configured (None = unset).
    pub tags: Option<Vec<String>>,
    /// Cores.
    pub cores: i64,
    /// Sockets.
    pub sockets: i64,
    /// CPU type.
    pub cpu_type: String,
    /// MiB.
    pub memory: i64,
    /// Balloon.
    pub memory_floating: Option<i64>,
    /// `q35` / `i440fx` / versioned.
    pub machine: String,
    /// `seabios` / `ovmf`.
    pub bios: String,
    /// EFI disk storage.
    pub efi_disk_storage: Option<String>,
    /// The EFI disk holds the distribution and Microsoft keys (PVE's
    /// `pre-enrolled-keys=1`), so secure boot is on from the start; off:
    /// the firmware starts in setup mode, where Talos enrolls its own.
    pub efi_pre_enrolled_keys: bool,
    /// TPM state storage (`tpmstate0`, TPM 2.0).
    pub tpm_state_storage: Option<String>,
    /// SCSI controller.
    pub scsi_hardware: String,
    /// Disks.
    pub disks: Option<Vec<DiskSpec>>,
    /// NICs.
    pub nics: Option<Vec<NicSpec>>,
    /// CD-ROM (interface, file).
    pub cdrom: Option<(String, String)>,
    /// Cloud-init.
    pub cloud_init: Option<CloudInitSpec>,
    /// Agent.
    pub agent: bool,
    /// serial0 socket.
    pub serial_console: bool,
    /// onboot.
    pub on_boot: bool,
    /// `protection=1`: PVE refuses to remove the VM or its disks.
    pub protection: bool,
    /// `numa=1`: the guest sees NUMA nodes.
    pub numa: bool,
    /// `hugepages`: `2`, `1024` or `any` (needs NUMA).
    pub hugepages: Option<String>,
    /// `startup`: boot order and delays (`order=1,up=30,down=60`).
    pub startup: Startup,
    /// PCI passthrough (`hostpci0`...).
    pub pci: Option<Vec<super::pci::PciSpec>>,
}

fn s(v: &Value) -> Option<String> {
    v.as_str().map(str::to_string)
}

fn opt_str(v: Option<&String>) -> Value {
    v.map(|s| Value::string(s.clone())).unwrap_or(Value::Null)
}

fn opt_int(v: Option<i64>) -> Value {
    v.map(Value::int).unwrap_or(Value::Null)
}

impl VmSpec {
    /// Reads the managed settings from a (fully known) config or plan value.
    pub fn from_value(v: &Value) -> VmSpec {
        let disks = v.attr("disks").as_elements().map(|d| {
            d.iter()
                .map(|d| DiskSpec {
                    interface: s(d.attr("interface")).unwrap_or_default(),
                    storage: s(d.attr("storage")).unwrap_or_default(),
                    size: d.attr("size").as_i64(),
                    import_from: s(d.attr("import_from")),
                    ssd: d.attr("ssd").as_bool().unwrap_or(false),
                    discard: d.attr("discard").as_bool().unwrap_or(false),
                    iothread: d.attr("iothread").as_bool().unwrap_or(false),
                    cache: s(d.attr("cache")),
                    no_backup: d.attr("backup").as_bool() == Some(false),
                    no_replicate: d.attr("replicate").as_bool() == Some(false),
                })
                .collect()
        });
        let nics = v.attr("network_devices").as_elements().map(|n| {
            n.iter()
                .map(|n| NicSpec {
                    bridge: s(n.attr("bridge")).unwrap_or_else(|| "vmbr0".into()),
                    model: s(n.attr("model")).unwrap_or_else(|| "virtio".into()),
                    mac: s(n.attr("mac_address")).map(|m| m.to_ascii_uppercase()),
                    vlan: n.attr("vlan_id").as_i64(),
                    firewall: n.attr("firewall").as_bool().unwrap_or(false),
                    mtu: n.attr("mtu").as_i64(),
                    queues: n.attr("queues").as_i64(),
                })
                .collect()
        });
        let cdrom = match v.attr("cdrom") {
            c @ Value::Object(_) => {
                Some((s(c.attr("interface")).unwrap_or_else(|| "ide2".into()), s(c.attr("file")).unwrap_or_default()))
            }
            _ => None,
        };
        let cloud_init = match v.attr("cloud_init") {
            c @ Value::Object(_) => Some(CloudInitSpec {
                storage: s(c.attr("storage")).unwrap_or_default(),
                interface: s(c.attr("interface")).unwrap_or_else(|| "ide0".into()),
                dns_servers: c.attr("dns_servers").as_elements().map(|e| e.iter().filter_map(s).collect()),
                dns_domain: s(c.attr("dns_domain")),
                ip_configs: c.attr("ip_configs").as_elements().map(|e| {
                    e.iter()
                        .map(|i| IpSpec {
                            ipv4: s(i.attr("ipv4")),
                            ipv4_gateway: s(i.attr("ipv4_gateway")),
                            ipv6: s(i.attr("ipv6")),
                            ipv6_gateway: s(i.attr("ipv6_gateway")),
                        })
                        .collect()
                }),
            }),
            _ => None,
        };
        VmSpec {
            name: s(v.attr("name")),
            description: s(v.attr("description")),
            tags: v.attr("tags").as_elements().map(|e| e.iter().filter_map(s).collect()),
            cores: v.attr("cores").as_i64().unwrap_or(1),
            sockets: v.attr("sockets").as_i64().unwrap_or(1),
            cpu_type: s(v.attr("cpu_type")).unwrap_or_else(|| "x86-64-v2-AES".into()),
            memory: v.attr("memory").as_i64().unwrap_or(2048),
            memory_floating: v.attr("memory_floating").as_i64(),
            machine: s(v.attr("machine")).unwrap_or_else(|| "q35".into()),
            bios: s(v.attr("bios")).unwrap_or_else(|| "seabios".into()),
            efi_disk_storage: s(v.attr("efi_disk_storage")),
            efi_pre_enrolled_keys: v.attr("efi_pre_enrolled_keys").as_bool() == Some(true),
            tpm_state_storage: s(v.attr("tpm_state_storage")),
            scsi_hardware: s(v.attr("scsi_hardware")).unwrap_or_else(|| "virtio-scsi-single".into()),
            disks,
            nics,
            cdrom,
            cloud_init,
            agent: v.attr("agent").as_bool().unwrap_or(false),
            serial_console: v.attr("serial_console").as_bool().unwrap_or(true),
            on_boot: v.attr("on_boot").as_bool().unwrap_or(false),
            protection: v.attr("protection").as_bool().unwrap_or(false),
            numa: v.attr("numa").as_bool().unwrap_or(false),
            hugepages: s(v.attr("hugepages")),
            startup: Startup {
                order: v.attr("startup_order").as_i64(),
                up: v.attr("startup_up_delay").as_i64(),
                down: v.attr("startup_down_delay").as_i64(),
            },
            pci: super::pci::from_value(v),
        }
    }

    /// Writes the managed settings into `state` (other attributes untouched).
    pub fn write(&self, state: &mut Value) {
        let set = |state: &mut Value, k: &str, v: Value| state.set_attr(k, v);
        set(state, "name", opt_str(self.name.as_ref()));
        set(state, "description", opt_str(self.description.as_ref()));
        set(
            state,
            "tags",
            self.tags
                .as_ref()
                .map(|t| Value::Set(t.iter().map(|x| Value::string(x.clone())).collect()))
                .unwrap_or(Value::Null),
        );
        set(state, "cores", Value::int(self.cores));
        set(state, "sockets", Value::int(self.sockets));
        set(state, "cpu_type", Value::string(&self.cpu_type));
        set(state, "memory", Value::int(self.memory));
        set(state, "memory_floating", opt_int(self.memory_floating));
        set(state, "machine", Value::string(&self.machine));
        set(state, "bios", Value::string(&self.bios));
        set(state, "efi_disk_storage", opt_str(self.efi_disk_storage.as_ref()));
        set(state, "efi_pre_enrolled_keys", Value::Bool(self.efi_pre_enrolled_keys));
        set(state, "tpm_state_storage", opt_str(self.tpm_state_storage.as_ref()));
        set(state, "pci_devices", super::pci::to_value(self.pci.as_ref()));
        set(state, "scsi_hardware", Value::string(&self.scsi_hardware));
        let disks = self.disks.as_ref().map(|d| {
            Value::List(
                d.iter()
                    .map(|d| {
                        Value::object([
                            ("interface", Value::string(&d.interface)),
                            ("storage", Value::string(&d.storage)),
                            ("size", opt_int(d.size)),
                            ("import_from", opt_str(d.import_from.as_ref())),
                            ("ssd", Value::Bool(d.ssd)),
                            ("discard", Value::Bool(d.discard)),
                            ("iothread", Value::Bool(d.iothread)),
                            ("cache", opt_str(d.cache.as_ref())),
                            ("backup", Value::Bool(!d.no_backup)),
                            ("replicate", Value::Bool(!d.no_replicate)),
                        ])
                    })
                    .collect(),
            )
        });
        set(state, "disks", disks.unwrap_or(Value::Null));
        let nics = self.nics.as_ref().map(|n| {
            Value::List(
                n.iter()
                    .map(|n| {
                        Value::object([
                            ("bridge", Value::string(&n.bridge)),
                            ("model", Value::string(&n.model)),
                            ("mac_address", opt_str(n.mac.as_ref())),
                            ("vlan_id", opt_int(n.vlan)),
                            ("firewall", Value::Bool(n.firewall)),
                            ("mtu", opt_int(n.mtu)),
                            ("queues", opt_int(n.queues)),
                        ])
                    })
                    .collect(),
            )
        });
        set(state, "network_devices", nics.unwrap_or(Value::Null));
        let cdrom = self
            .cdrom
            .as_ref()
            .map(|(i, f)| Value::object([("interface", Value::string(i)), ("file", Value::string(f))]))
            .unwrap_or(Value::Null);
        set(state, "cdrom", cdrom);
        let ci = self.cloud_init.as_ref().map(|c| {
            Value::object([
                ("storage", Value::string(&c.storage)),
                ("interface", Value::string(&c.interface)),
                (
                    "dns_servers",
                    c.dns_servers
                        .as_ref()
                        .map(|d| Value::List(d.iter().map(|x| Value::string(x.clone())).collect()))
                        .unwrap_or(Value::Null),
                ),
                ("dns_domain", opt_str(c.dns_domain.as_ref())),
                (
                    "ip_configs",
                    c.ip_configs
                        .as_ref()
                        .map(|ips| {
                            Value::List(
                                ips.iter()
                                    .map(|i| {
                                        Value::object([
                                            ("ipv4", opt_str(i.ipv4.as_ref())),
                                            ("ipv4_gateway", opt_str(i.ipv4_gateway.as_ref())),
                                            ("ipv6", opt_str(i.ipv6.as_ref())),
                                            ("ipv6_gateway", opt_str(i.ipv6_gateway.as_ref())),
                                        ])
                                    })
                                    .collect(),
                            )
                        })
                        .unwrap_or(Value::Null),
                ),
            ])
        });
        set(state, "cloud_init", ci.unwrap_or(Value::Null));
        set(state, "agent", Value::Bool(self.agent));
        set(state, "serial_console", Value::Bool(self.serial_console));
        set(state, "on_boot", Value::Bool(self.on_boot));
        set(state, "protection", Value::Bool(self.protection));
        set(state, "numa", Value::Bool(self.numa));
        set(state, "hugepages", opt_str(self.hugepages.as_ref()));
        set(state, "startup_order", opt_int(self.startup.order));
        set(state, "startup_up_delay", opt_int(self.startup.up));
        set(state, "startup_down_delay", opt_int(self.startup.down));
        let macs = self.nics.iter().flatten().map(|n| opt_str(n.mac.as_ref())).collect();
        set(state, "mac_addresses", Value::List(macs));
    }

    /// The PVE config keys this spec sets (create and update).
    /// `allocate` renders new disks as `STORAGE:SIZE` (create); existing
    /// disks keep their volume (`existing` holds the current drives).
    pub fn to_params(&self, existing: &BTreeMap<String, String>) -> BTreeMap<String, String> {
        let mut p = BTreeMap::new();
        let mut put = |k: &str, v: String| {
            p.insert(k.to_string(), v);
        };
        if let Some(n) = &self.name {
            put("name", n.clone());
        }
        if let Some(d) = &self.description {
            put("description", d.clone());
        }
        if let Some(t) = &self.tags {
            put("tags", normalize_tags(t.iter().map(String::as_str)).join(";"));
        }
        put("cores", self.cores.to_string());
        put("sockets", self.sockets.to_string());
        put("cpu", self.cpu_type.clone());
        put("memory", self.memory.to_string());
        if let Some(b) = self.memory_floating {
            put("balloon", b.to_string());
        }
        put("machine", if self.machine == "i440fx" { "pc".into() } else { self.machine.clone() });
        put("bios", self.bios.clone());
        if let Some(st) = &self.efi_disk_storage
            && !existing.contains_key("efidisk0")
        {
            let keys = u8::from(self.efi_pre_enrolled_keys);
            put("efidisk0", format!("{st}:1,efitype=4m,pre-enrolled-keys={keys}"));
        }
        if let Some(st) = &self.tpm_state_storage
            && !existing.contains_key("tpmstate0")
        {
            put("tpmstate0", format!("{st}:1,version=v2.0"));
        }
        put("scsihw", self.scsi_hardware.clone());
        put("ostype", "l26".into());
        for d in self.disks.iter().flatten() {
            let mut drive = match existing.get(&d.interface).and_then(|s| s.parse::<Drive>().ok()) {
                Some(cur) => Drive { file: cur.file, opts: PropertyString::default() },
                None => match &d.import_from {
                    Some(src) => Drive::new(format!("{}:0", d.storage)).with("import-from", src.clone()),
                    None => Drive::new(format!("{}:{}", d.storage, d.size.unwrap_or(8))),
                },
            };
            if d.discard {
                drive.opts.set("discard", "on");
            }
            if d.ssd && !d.interface.starts_with("virtio") {
                drive.opts.set("ssd", "1");
            }
            if d.iothread {
                drive.opts.set("iothread", "1");
            }
            if let Some(c) = &d.cache {
                drive.opts.set("cache", c.clone());
            }
            if d.no_backup {
                drive.opts.set("backup", "0");
            }
            if d.no_replicate {
                drive.opts.set("replicate", "0");
            }
            if let Some(cur) = existing.get(&d.interface).and_then(|s| s.parse::<Drive>().ok())
                && let Some(size) = cur.get("size")
            {
                drive.opts.set("size", size);
            }
            put(&d.interface, drive.to_string());
        }
        for (i, n) in self.nics.iter().flatten().enumerate() {
            let nic = NetDevice {
                model: n.model.clone(),
                mac: n.mac.clone().or_else(|| existing_mac(existing, i)),
                bridge: Some(n.bridge.clone()),
                tag: n.vlan.and_then(|v| u16::try_from(v).ok()),
                firewall: n.firewall,
                mtu: n.mtu.and_then(|v| u16::try_from(v).ok()),
                queues: n.queues.and_then(|v| u8::try_from(v).ok()),
                extra: Vec::new(),
            };
            put(&format!("net{i}"), nic.to_string());
        }
        if let Some((iface, file)) = &self.cdrom {
            put(iface, format!("{file},media=cdrom"));
        }
        if let Some(ci) = &self.cloud_init {
            if !existing.get(&ci.interface).is_some_and(|d| d.contains("cloudinit")) {
                put(&ci.interface, format!("{}:cloudinit", ci.storage));
            }
            if let Some(d) = &ci.dns_servers {
                put("nameserver", d.join(" "));
            }
            if let Some(d) = &ci.dns_domain {
                put("searchdomain", d.clone());
            }
            for (i, ip) in ci.ip_configs.iter().flatten().enumerate() {
                let c = IpConfig {
                    ip: ip.ipv4.clone(),
                    gw: ip.ipv4_gateway.clone(),
                    ip6: ip.ipv6.clone(),
                    gw6: ip.ipv6_gateway.clone(),
                };
                put(&format!("ipconfig{i}"), c.to_string());
            }
        }
        put("agent", if self.agent { "enabled=1" } else { "enabled=0" }.into());
        if self.serial_console {
            put("serial0", "socket".into());
        }
        put("onboot", if self.on_boot { "1" } else { "0" }.into());
        if self.protection {
            put("protection", "1".into());
        }
        if self.numa {
            put("numa", "1".into());
        }
        if let Some(h) = &self.hugepages {
            put("hugepages", h.clone());
        }
        if let Some(st) = self.startup.to_config() {
            put("startup", st);
        }
        for (i, dev) in self.pci.iter().flatten().enumerate() {
            put(&format!("hostpci{i}"), dev.to_config());
        }
        if let Some(first) = self.disks.as_ref().and_then(|d| d.first()) {
            put("boot", format!("order={}", first.interface));
        }
        p
    }

    /// Reads a spec from PVE's config. `prior` supplies what PVE does not
    /// keep (`import_from`) and how the user wrote tags (kept when they
    /// normalise to what PVE stores).
    pub fn from_config(cfg: &VmConfig, prior: &VmSpec) -> VmSpec {
        let get = |k: &str| cfg.get(k).map(str::to_string);
        let tags = match (get("tags"), &prior.tags) {
            (None, _) => None,
            (Some(remote), Some(mine))
                if normalize_tags([remote.as_str()]) == normalize_tags(mine.iter().map(String::as_str)) =>
            {
                Some(mine.clone())
            }
            (Some(remote), _) => Some(normalize_tags([remote.as_str()])),
        };
        let tags = tags.filter(|t| !t.is_empty() || prior.tags.is_some());
        let cpu_type = get("cpu")
            .map(|c| {
                let ps = PropertyString::parse("cpu", &c).unwrap_or_default();
                ps.head.clone().or_else(|| ps.get("cputype").map(str::to_string)).unwrap_or(c)
            })
            .unwrap_or_else(|| "kvm64".into());
        let machine = match get("machine").as_deref() {
            None | Some("pc") => "i440fx".to_string(),
            Some(m) => m.split(',').next().unwrap_or(m).to_string(),
        };
        // Disks: the prior's slots first (in its order), then any others.
        let mut slots: Vec<String> = prior.disks.iter().flatten().map(|d| d.interface.clone()).collect();
        let mut others: Vec<DiskSlot> = cfg
            .values
            .keys()
            .filter_map(|k| k.parse::<DiskSlot>().ok())
            .filter(|k| !slots.contains(&k.to_string()))
            .collect();
        others.sort();
        slots.extend(others.iter().map(ToString::to_string));
        let mut disks = Vec::new();
        for slot in &slots {
            let Some(drive) = cfg.get(slot).and_then(|s| s.parse::<Drive>().ok()) else { continue };
            if drive.is_cdrom() || drive.is_cloudinit() {
                continue;
            }
            let prior_disk = prior.disks.iter().flatten().find(|d| &d.interface == slot);
            disks.push(DiskSpec {
                interface: slot.clone(),
                storage: drive.storage().unwrap_or_default().to_string(),
                size: drive.size_bytes().map(|b| b.div_ceil(GIB) as i64),
                import_from: prior_disk.and_then(|d| d.import_from.clone()),
                ssd: drive.flag("ssd"),
                discard: drive.get("discard") == Some("on"),
                iothread: drive.flag("iothread"),
                cache: drive.get("cache").map(str::to_string),
                no_backup: off(drive.get("backup")),
                no_replicate: off(drive.get("replicate")),
            });
        }
        let mut nics = Vec::new();
        for i in 0..32 {
            let Some(n) = cfg.get(&format!("net{i}")).and_then(|s| s.parse::<NetDevice>().ok()) else { break };
            nics.push(NicSpec {
                bridge: n.bridge.unwrap_or_default(),
                model: n.model,
                mac: n.mac,
                vlan: n.tag.map(i64::from),
                firewall: n.firewall,
                mtu: n.mtu.map(i64::from),
                queues: n.queues.map(i64::from),
            });
        }
        let cdrom = ["ide0", "ide1", "ide2", "ide3", "sata0", "sata1", "sata2", "sata3", "sata4", "sata5"]
            .iter()
            .find_map(|k| {
                let d = cfg.get(k)?.parse::<Drive>().ok()?;
                (d.is_cdrom() && !d.is_cloudinit()).then(|| (k.to_string(), d.file))
            });
        let ci_slot = cfg.values.iter().find_map(|(k, v)| {
            let d = v.parse::<Drive>().ok()?;
            (k.parse::<DiskSlot>().is_ok() && d.is_cloudinit()).then(|| (k.clone(), d))
        });
        let cloud_init = ci_slot.map(|(slot, d)| {
            let prior_ci = prior.cloud_init.as_ref();
            let mut ips = Vec::new();
            for i in 0..32 {
                match get(&format!("ipconfig{i}")).and_then(|s| s.parse::<IpConfig>().ok()) {
                    Some(c) => ips.push(IpSpec { ipv4: c.ip, ipv4_gateway: c.gw, ipv6: c.ip6, ipv6_gateway: c.gw6 }),
                    None if i < prior_ci.and_then(|c| c.ip_configs.as_ref()).map_or(0, Vec::len) => {
                        ips.push(IpSpec::default())
                    }
                    None => break,
                }
            }
            CloudInitSpec {
                storage: d.storage().unwrap_or_default().to_string(),
                interface: slot,
                dns_servers: get("nameserver").map(|n| n.split_whitespace().map(str::to_string).collect()),
                dns_domain: get("searchdomain"),
                ip_configs: if ips.is_empty() && prior_ci.is_none_or(|c| c.ip_configs.is_none()) {
                    None
                } else {
                    Some(ips)
                },
            }
        });
        let agent = get("agent")
            .map(|a| {
                let ps = PropertyString::parse("agent", &a).unwrap_or_default();
                ps.head.as_deref().or(ps.get("enabled")).and_then(parse_bool).unwrap_or(false)
            })
            .unwrap_or(false);
        VmSpec {
            name: get("name"),
            description: get("description").map(|d| d.trim_end_matches('\n').to_string()),
            tags,
            cores: get("cores").and_then(|c| c.parse().ok()).unwrap_or(1),
            sockets: get("sockets").and_then(|c| c.parse().ok()).unwrap_or(1),
            cpu_type,
            memory: get("memory").and_then(|m| parse_memory(&m)).map(|m| m as i64).unwrap_or(512),
            memory_floating: get("balloon").and_then(|b| b.parse().ok()),
            machine,
            bios: get("bios").unwrap_or_else(|| "seabios".into()),
            efi_disk_storage: get("efidisk0")
                .and_then(|d| d.parse::<Drive>().ok())
                .and_then(|d| d.storage().map(str::to_string)),
            efi_pre_enrolled_keys: get("efidisk0")
                .and_then(|d| d.parse::<Drive>().ok())
                .is_some_and(|d| d.flag("pre-enrolled-keys")),
            tpm_state_storage: get("tpmstate0")
                .and_then(|d| d.parse::<Drive>().ok())
                .and_then(|d| d.storage().map(str::to_string)),
            scsi_hardware: get("scsihw").unwrap_or_else(|| "lsi".into()),
            disks: if disks.is_empty() && prior.disks.is_none() { None } else { Some(disks) },
            nics: if nics.is_empty() && prior.nics.is_none() { None } else { Some(nics) },
            cdrom,
            cloud_init,
            agent,
            serial_console: get("serial0").as_deref() == Some("socket"),
            on_boot: get("onboot").and_then(|o| parse_bool(&o)).unwrap_or(false),
            protection: get("protection").and_then(|o| parse_bool(&o)).unwrap_or(false),
            numa: get("numa").and_then(|o| parse_bool(&o)).unwrap_or(false),
            hugepages: get("hugepages"),
            startup: Startup::from_config(get("startup").as_deref()),
            pci: super::pci::from_config(get, prior.pci.is_some()),
        }
    }

    /// Static cloud-init addresses (without prefix), v4 and v6.
    pub fn static_addresses(&self) -> (Vec<String>, Vec<String>) {
        let (mut v4, mut v6) = (Vec::new(), Vec::new());
        for ip in self.cloud_init.iter().flat_map(|c| c.ip_configs.iter().flatten()) {
            if let Some(a) = ip.ipv4.as_deref().filter(|a| a.contains('/')) {
                v4.push(a.split('/').next().unwrap_or(a).to_string());
            }
            if let Some(a) = ip.ipv6.as_deref().filter(|a| a.contains('/')) {
                v6.push(a.split('/').next().unwrap_or(a).to_string());
            }
        }
        (v4, v6)
    }
}

fn existing_mac(existing: &BTreeMap<String, String>, i: usize) -> Option<String> {
    existing.get(&format!("net{i}")).and_then(|s| s.parse::<NetDevice>().ok()).and_then(|n| n.mac)
}

/// What PVE assumes when a key is absent.
fn pve_default(k: &str) -> Option<&'static str> {
    match k {
        "bios" => Some("seabios"),
        "onboot" => Some("0"),
        "agent" => Some("enabled=0"),
        "sockets" | "cores" => Some("1"),
        _ => None,
    }
}

fn agent_enabled(v: &str) -> bool {
    let ps = PropertyString::parse("agent", v).unwrap_or_default();
    ps.head.as_deref().or(ps.get("enabled")).and_then(parse_bool).unwrap_or(false)
}

/// Keys PVE changes only at the next boot of a running VM.
pub const PENDING_KEYS: &[&str] =
    &["cores", "sockets", "cpu", "memory", "machine", "bios", "scsihw", "efidisk0", "tpmstate0", "numa", "hugepages"];

/// Whether a change of `key` on a running VM waits for a reboot (PCI
/// devices cannot be hot-plugged).
pub fn is_pending_key(key: &str) -> bool {
    PENDING_KEYS.contains(&key) || key.starts_with("hostpci")
}

/// The update to get from `current` to `desired`: keys to set and keys to
/// delete (only keys this resource manages are ever deleted).
pub fn diff(
    current: &VmConfig,
    desired: &BTreeMap<String, String>,
    managed_deletable: &[String],
) -> (Vec<(String, String)>, Vec<String>) {
    let mut set = Vec::new();
    for (k, v) in desired {
        let same = match current.get(k) {
            None => pve_default(k) == Some(v.as_str()),
            Some(cur) if k == "agent" => agent_enabled(cur) == agent_enabled(v),
            Some(cur) if cur == v => true,
            Some(cur) => match (cur.parse::<Drive>(), v.parse::<Drive>()) {
                (Ok(a), Ok(b)) if k.parse::<DiskSlot>().is_ok() => {
                    // PVE drops `import-from` (fakepve keeps it, gap G10): never diff on it.
                    let mut ao: Vec<_> = a.opts.pairs.iter().filter(|(k, _)| k != "import-from").cloned().collect();
                    let mut bo: Vec<_> = b.opts.pairs.clone();
                    ao.sort();
                    bo.sort();
                    a.file == b.file && ao == bo
                }
                _ => match (cur.parse::<NetDevice>(), v.parse::<NetDevice>()) {
                    (Ok(a), Ok(b)) if k.starts_with("net") => a == b,
                    _ => k == "tags" && normalize_tags([cur]) == normalize_tags([v.as_str()]),
                },
            },
        };
        if !same {
            set.push((k.clone(), v.clone()));
        }
    }
    let delete =
        managed_deletable.iter().filter(|k| current.get(k).is_some() && !desired.contains_key(*k)).cloned().collect();
    (set, delete)
}

/// How to undo the pending changes of a running VM that move a key away
/// from what is desired while its current value already is what is
/// desired: a change made behind Terraform's back (more memory, a new NIC)
/// waits in `/pending`, and a refresh shows it as drift.
///
/// The undo sets such a key to its current value (PVE then drops the
/// pending value that equals it, and a pending deletion of a key that is
/// set again) or deletes a key that only exists in pending (only keys we
/// manage). Not `revert=KEY`, PVE's own form: fakepve 0.5.0 takes `revert`
/// for a config key of its own.
pub fn undo_pending(
    entries: &[PendingEntry],
    desired: &BTreeMap<String, String>,
    managed_deletable: &[String],
) -> (Vec<(String, String)>, Vec<String>) {
    let (mut set, mut delete) = (Vec::new(), Vec::new());
    for e in entries {
        let deleting = e.delete.as_deref().is_some_and(|d| d != "0");
        if e.pending.is_none() && !deleting {
            continue;
        }
        match (e.value.as_ref(), desired.get(&e.key)) {
            (Some(cur), Some(want)) => {
                let current = VmConfig { values: BTreeMap::from([(e.key.clone(), cur.clone())]) };
                let one = BTreeMap::from([(e.key.clone(), want.clone())]);
                if diff(&current, &one, &[]).0.is_empty() {
                    set.push((e.key.clone(), cur.clone()));
                }
            }
            // Added while running, and not wanted: only keys we manage.
            (None, None) if !deleting && managed_deletable.contains(&e.key) => delete.push(e.key.clone()),
            _ => {}
        }
    }
    (set, delete)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn cfg(pairs: &[(&str, &str)]) -> VmConfig {
        VmConfig { values: pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect() }
    }

    fn spec() -> VmSpec {
        VmSpec {
            name: Some("cp1".into()),
            tags: Some(vec!["Talos".into(), "cp".into()]),
            cores: 2,
            sockets: 1,
            cpu_type: "host".into(),
            memory: 4096,
            machine: "q35".into(),
            bios: "seabios".into(),
            scsi_hardware: "virtio-scsi-single".into(),
            disks: Some(vec![DiskSpec {
                interface: "scsi0".into(),
                storage: "local-lvm".into(),
                size: Some(20),
                ssd: true,
                discard: true,
                iothread: true,
                ..DiskSpec::default()
            }]),
            nics: Some(vec![NicSpec {
                bridge: "vmbr0".into(),
                model: "virtio".into(),
                vlan: Some(10),
                ..NicSpec::default()
            }]),
            cloud_init: Some(CloudInitSpec {
                storage: "local-lvm".into(),
                interface: "ide0".into(),
                dns_servers: Some(vec!["1.1.1.1".into()]),
                ip_configs: Some(vec![IpSpec {
                    ipv4: Some("10.0.0.5/24".into()),
                    ipv4_gateway: Some("10.0.0.1".into()),
                    ..IpSpec::default()
                }]),
                ..CloudInitSpec::default()
            }),
            agent: true,
            serial_console: true,
            ..VmSpec::default()
        }
    }

    #[test]
    fn create_params() {
        let p = spec().to_params(&BTreeMap::new());
        assert_eq!(p["scsi0"], "local-lvm:20,discard=on,ssd=1,iothread=1");
        assert_eq!(p["net0"], "virtio,bridge=vmbr0,tag=10");
        assert_eq!(p["tags"], "cp;talos");
        assert_eq!(p["ide0"], "local-lvm:cloudinit");
        assert_eq!(p["ipconfig0"], "ip=10.0.0.5/24,gw=10.0.0.1");
        assert_eq!(p["agent"], "enabled=1");
        assert_eq!(p["boot"], "order=scsi0");
        assert_eq!(p["scsihw"], "virtio-scsi-single");
    }

    #[test]
    fn startup_and_protection_round_trip() {
        let st = Startup { order: Some(2), up: Some(30), down: None };
        assert_eq!(st.to_config().as_deref(), Some("order=2,up=30"));
        assert_eq!(Startup::from_config(Some("order=2,up=30")), st);
        assert_eq!(Startup::from_config(Some("3")).order, Some(3));
        assert_eq!(Startup::default().to_config(), None, "not sent unless set (needs Sys.Modify)");
        let mut mine = spec();
        mine.protection = true;
        mine.startup = st;
        let params = mine.to_params(&BTreeMap::new());
        assert_eq!((params["protection"].as_str(), params["startup"].as_str()), ("1", "order=2,up=30"));
        assert!(!spec().to_params(&BTreeMap::new()).contains_key("startup"));
    }

    #[test]
    fn a_data_disk_left_out_of_backups_and_replication_round_trips() {
        let mut mine = spec();
        mine.disks.as_mut().unwrap().push(DiskSpec {
            interface: "scsi1".into(),
            storage: "local-lvm".into(),
            size: Some(100),
            no_backup: true,
            no_replicate: true,
            ..DiskSpec::default()
        });
        let params = mine.to_params(&BTreeMap::new());
        assert_eq!(params["scsi1"], "local-lvm:100,backup=0,replicate=0");
        assert!(!params["scsi0"].contains("backup"), "PVE's default is not written: {}", params["scsi0"]);
        let c = cfg(&[
            ("scsi0", "local-lvm:vm-100-disk-0,size=20G"),
            ("scsi1", "local-lvm:vm-100-disk-1,backup=0,replicate=0,size=100G"),
        ]);
        let got = VmSpec::from_config(&c, &mine);
        let d = &got.disks.as_ref().unwrap()[1];
        assert!(d.no_backup && d.no_replicate, "{d:?}");
        assert!(!got.disks.as_ref().unwrap()[0].no_backup);
    }

    #[test]
    fn round_trip_through_pve_config() {
        let c = cfg(&[
            ("name", "cp1"),
            ("tags", "cp;talos"),
            ("cores", "2"),
            ("sockets", "1"),
            ("cpu", "host"),
            ("memory", "4096"),
            ("machine", "q35"),
            ("scsihw", "virtio-scsi-single"),
            ("scsi0", "local-lvm:vm-100-disk-0,discard=on,iothread=1,size=20G,ssd=1"),
            ("net0", "virtio=BC:24:11:00:00:01,bridge=vmbr0,tag=10"),
            ("ide0", "local-lvm:vm-100-cloudinit,media=cdrom"),
            ("ipconfig0", "ip=10.0.0.5/24,gw=10.0.0.1"),
            ("nameserver", "1.1.1.1"),
            ("agent", "1"),
            ("serial0", "socket"),
            ("boot", "order=scsi0"),
            ("ostype", "l26"),
            ("digest", "x"),
        ]);
        let mine = spec();
        let got = VmSpec::from_config(&c, &mine);
        assert_eq!(got.tags, mine.tags, "tags kept as written when they normalise equal");
        let mut want = mine.clone();
        want.nics.as_mut().unwrap()[0].mac = Some("BC:24:11:00:00:01".into());
        assert_eq!(got, want);
        // And the update from that config to the same spec is empty (MAC kept).
        let (set, del) = diff(&c, &got.to_params(&c.values), &[]);
        assert!(set.is_empty() && del.is_empty(), "{set:?} {del:?}");
    }

    #[test]
    fn out_of_band_changes_show() {
        let mut c = cfg(&[("cores", "2"), ("tags", "other"), ("scsi1", "local-lvm:vm-100-disk-1,size=4G")]);
        c.values.insert("memory".into(), "1024".into());
        let got = VmSpec::from_config(&c, &spec());
        assert_eq!(got.tags, Some(vec!["other".into()]));
        assert_eq!(got.memory, 1024);
        assert_eq!(got.disks.unwrap().iter().map(|d| d.interface.as_str()).collect::<Vec<_>>(), vec!["scsi1"]);
    }

    fn entry(key: &str, value: Option<&str>, pending: Option<&str>, delete: bool) -> PendingEntry {
        PendingEntry {
            key: key.into(),
            value: value.map(Into::into),
            pending: pending.map(Into::into),
            delete: delete.then(|| "1".into()),
        }
    }

    #[test]
    fn pending_drift_is_undone_where_the_current_value_is_wanted() {
        let desired: BTreeMap<String, String> =
            [("memory", "1024"), ("cores", "2"), ("net0", "virtio=BC:24:11:00:00:01,bridge=vmbr0")]
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
        let managed = vec!["net1".to_string(), "description".to_string()];
        let nic1 = "virtio=BC:24:11:00:00:02,bridge=vmbr0";
        let entries = vec![
            entry("memory", Some("1024"), Some("2048"), false), // raised behind our back: undo
            entry("cores", Some("1"), Some("2"), false),        // pending towards the plan: keep
            entry("net1", None, Some(nic1), false),             // added: delete
            entry("net0", Some("bridge=vmbr0,virtio=BC:24:11:00:00:01"), None, true), // deletion pending: set again
            entry("serial1", None, Some("socket"), false),      // not ours: left alone
            entry("description", Some("x"), None, false),       // nothing pending
        ];
        let (set, delete) = undo_pending(&entries, &desired, &managed);
        assert_eq!(
            set,
            [
                ("memory".to_string(), "1024".to_string()),
                ("net0".to_string(), "bridge=vmbr0,virtio=BC:24:11:00:00:01".to_string())
            ]
        );
        assert_eq!(delete, ["net1"]);
    }

    #[test]
    fn static_addresses() {
        assert_eq!(spec().static_addresses(), (vec!["10.0.0.5".to_string()], vec![]));
    }
}
