//! The reconciler: desired state = running VMs with a Talos medium (read
//! through the PVE API), actual state = simulated Talos nodes. One
//! `/cluster/resources` listing per poll; a VM's config only when its power
//! state changes.
//!
//! A reboot or reset through PVE leaves a VM running, and `uptime` has
//! whole-second resolution, so neither listing shows it. What does, as for
//! any hypervisor integration, is the node's task list: one
//! `/nodes/{node}/tasks` page per poll for each PVE node with a running VM,
//! and a `qmreboot`/`qmreset` (or a `qmstart`: stopped and started between
//! two polls) that ended well since the last poll, for a VM whose node is
//! on, reboots (power-cycles) that node. Tasks are told apart by UPID.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::harness::Commander;
use super::medium::{self, MediumKind, TalosMedium};
use super::{LabEvent, LabNode, LabOptions, Shared};
use crate::proxmox::tasks::{self, TaskEntry};
use crate::proxmox::{Client, cluster, lenient, qemu};
use crate::talos::sim::{NodeSpec, Phase, SimCluster};

/// A VM the lab made a node for.
pub(crate) struct Tracked {
    pub vmid: u32,
    pub identity: String,
    pub address: IpAddr,
    pub leased: bool,
    pub medium: TalosMedium,
    pub powered: bool,
    /// The agent answer failed to be set (its prefix): tried again each poll.
    pub agent_due: Option<u8>,
}

impl Tracked {
    pub fn view(&self) -> LabNode {
        LabNode {
            vmid: self.vmid,
            address: self.address,
            leased: self.leased,
            medium: self.medium.clone(),
            powered: self.powered,
        }
    }
}

/// One VM in the listing.
struct Listed {
    node: String,
    running: bool,
    template: bool,
}

/// Tasks asked for per PVE node and poll (PVE's own default page).
const TASK_PAGE: u32 = 50;

/// What a VM's new tasks say happened to it behind the lab's back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Cycled {
    /// Rebooted or reset: the guest reboots.
    Rebooted,
    /// Stopped and started again: the guest lost power.
    PowerCycled,
}

pub(crate) struct Reconciler {
    pub client: Client,
    pub sim: Arc<SimCluster>,
    pub shared: Arc<Shared>,
    pub harness_cmd: Commander,
    pub options: LabOptions,
    pub stop: CancellationToken,
    /// Running VMs already looked at and found without a usable medium
    /// (looked at again once they stop and start).
    pub ignored: BTreeMap<u32, ()>,
    /// Per PVE node: the UPIDs of ended tasks in its last task list (the
    /// first list of a node is only remembered).
    pub seen_tasks: BTreeMap<String, BTreeSet<String>>,
}

pub(crate) async fn run(mut r: Reconciler) {
    let mut last_warning = String::new();
    let stop = r.stop.clone();
    loop {
        let result = tokio::select! {
            _ = stop.cancelled() => return,
            res = r.poll_once() => res,
        };
        if let Err(w) = result {
            // The same failure every poll is said once.
            if w != last_warning {
                r.shared.emit(LabEvent::Warning(w.clone()));
                last_warning = w;
            }
        } else {
            last_warning.clear();
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(r.options.poll) => {}
        }
    }
}

fn text(v: &Value) -> String {
    lenient::text(v).unwrap_or_default()
}

impl Reconciler {
    fn tracked<T>(&self, vmid: u32, f: impl FnOnce(&mut Tracked) -> T) -> Option<T> {
        let mut nodes = self.shared.nodes.lock().unwrap_or_else(|e| e.into_inner());
        nodes.get_mut(&vmid).map(f)
    }

    async fn poll_once(&mut self) -> Result<(), String> {
        let list = self.client.execute(&cluster::vm_resources()).await.map_err(|e| format!("listing VMs: {e}"))?;
        let mut listed = BTreeMap::new();
        for item in list.as_array().map(Vec::as_slice).unwrap_or_default() {
            if item.get("type").map(text).is_some_and(|t| t != "qemu") {
                continue;
            }
            let Some(vmid) = item.get("vmid").map(text).and_then(|s| s.parse::<u32>().ok()) else { continue };
            listed.insert(
                vmid,
                Listed {
                    node: item.get("node").map(text).unwrap_or_default(),
                    running: item.get("status").map(text).as_deref() == Some("running"),
                    template: item.get("template").map(text).is_some_and(|t| t == "1" || t == "true"),
                },
            );
        }
        let known: Vec<u32> = self.shared.nodes.lock().unwrap_or_else(|e| e.into_inner()).keys().copied().collect();
        for vmid in known.into_iter().filter(|v| !listed.contains_key(v)) {
            self.remove(vmid);
        }
        self.ignored.retain(|v, _| listed.get(v).is_some_and(|l| l.running));
        // After the VM listing: a reboot that ends between the two requests
        // is seen now (the VM running) or its stop was (handled as one).
        let cycled = self.new_tasks(&listed).await;
        for (vmid, vm) in &listed {
            if vm.template {
                continue;
            }
            if let Err(w) = self.reconcile_vm(*vmid, vm, cycled.get(vmid).copied()).await {
                self.shared.emit(LabEvent::Warning(format!("VM {vmid}: {w}")));
            }
        }
        Ok(())
    }

    /// The VMs that PVE tasks ended since the last poll rebooted or
    /// power-cycled: one task list per PVE node with a running VM.
    /// A task list that fails is said and skipped: that node's reboots are
    /// seen at the next poll, and the rest of this poll goes on.
    async fn new_tasks(&mut self, listed: &BTreeMap<u32, Listed>) -> BTreeMap<u32, Cycled> {
        let nodes: BTreeSet<&str> = listed.values().filter(|v| v.running).map(|v| v.node.as_str()).collect();
        let mut cycled = BTreeMap::new();
        for node in nodes {
            let list: Vec<TaskEntry> = match self.client.execute_as(&tasks::list(node, TASK_PAGE)).await {
                Ok(list) => list,
                Err(e) => {
                    self.shared.emit(LabEvent::Warning(format!("listing the tasks of {node}: {e}")));
                    continue;
                }
            };
            let ended: BTreeSet<String> = list.iter().filter(|t| t.ended()).map(|t| t.upid.clone()).collect();
            // A node's first list is history: only what ends after it counts.
            if let Some(seen) = self.seen_tasks.get(node) {
                for t in list.iter().filter(|t| t.ended() && t.succeeded() && !seen.contains(&t.upid)) {
                    let what = match t.kind.as_str() {
                        "qmreboot" | "qmreset" => Cycled::Rebooted,
                        "qmstart" => Cycled::PowerCycled,
                        _ => continue,
                    };
                    if let Some(vmid) = t.id.as_deref().and_then(|i| i.parse::<u32>().ok()) {
                        let e = cycled.entry(vmid).or_insert(what);
                        *e = (*e).max(what);
                    }
                }
            }
            // Older tasks drop off the page for good (it is newest first).
            self.seen_tasks.insert(node.to_string(), ended);
        }
        cycled
    }

    async fn reconcile_vm(&mut self, vmid: u32, vm: &Listed, cycled: Option<Cycled>) -> Result<(), String> {
        let state = self.tracked(vmid, |t| (t.powered, t.address));
        match (vm.running, state) {
            (true, None) if !self.ignored.contains_key(&vmid) => self.create(vmid, &vm.node).await,
            (true, Some((false, _))) => self.restart(vmid, &vm.node).await,
            (true, Some((true, address))) => {
                if let Some(Some(prefix)) = self.tracked(vmid, |t| t.agent_due) {
                    let cfg = self.config(&vm.node, vmid).await?;
                    self.set_agent(vmid, &cfg, address, prefix).await;
                }
                let Some(i) = self.sim.index_of(address) else { return Ok(()) };
                if cycled == Some(Cycled::Rebooted) {
                    // PVE rebooted or reset the VM: the guest reboots.
                    self.sim.reboot(i).map_err(|e| e.to_string())?;
                } else if cycled == Some(Cycled::PowerCycled) {
                    // Stopped and started between two polls: off, then on
                    // (as a new node if its medium or address changed).
                    self.power_off(vmid, address)?;
                    return self.restart(vmid, &vm.node).await;
                } else if self.sim.phase(i).ok() == Some(Phase::Off) {
                    // The guest powered itself off (Talos reset without
                    // reboot): as with real hardware, the VM stops.
                    self.tracked(vmid, |t| t.powered = false);
                    let stop = qemu::power(&vm.node, vmid, qemu::Power::Stop, None, false);
                    self.client.execute_task(&stop).await.map_err(|e| format!("stopping the VM: {e}"))?;
                    self.shared.emit(LabEvent::GuestPoweredOff { vmid });
                }
                Ok(())
            }
            (false, Some((true, address))) => self.power_off(vmid, address),
            _ => Ok(()),
        }
    }

    /// The VM stopped: its node is off (what is on its disk stays).
    fn power_off(&mut self, vmid: u32, address: IpAddr) -> Result<(), String> {
        self.tracked(vmid, |t| t.powered = false);
        if let Some(i) = self.sim.index_of(address) {
            self.sim.power_off(i).map_err(|e| e.to_string())?;
        }
        self.shared.emit(LabEvent::NodePoweredOff { vmid });
        Ok(())
    }

    /// A VM destroyed: its node and state go.
    fn remove(&mut self, vmid: u32) {
        let t = self.shared.nodes.lock().unwrap_or_else(|e| e.into_inner()).remove(&vmid);
        if let Some(t) = t {
            let _ = self.sim.remove_node(t.address);
            self.shared.emit(LabEvent::NodeRemoved { vmid });
        }
    }

    /// The lowest free address of the lease pool.
    fn lease(&self) -> Option<IpAddr> {
        let used: BTreeSet<IpAddr> =
            self.shared.nodes.lock().unwrap_or_else(|e| e.into_inner()).values().map(|t| t.address).collect();
        let (lo, hi) = (u32::from(self.options.dhcp_pool.0), u32::from(self.options.dhcp_pool.1));
        (lo..=hi).map(|n| IpAddr::V4(Ipv4Addr::from(n))).find(|a| !used.contains(a) && self.sim.index_of(*a).is_none())
    }

    /// The guest agent's answer for a VM: `lo` and `eth0` with its address.
    /// When the harness fails to take it, the next poll tries again.
    async fn set_agent(&self, vmid: u32, cfg: &BTreeMap<String, String>, address: IpAddr, prefix: u8) {
        let agent = medium::agent_enabled(cfg).then(|| {
            let mac = medium::mac(cfg).unwrap_or_else(|| "bc:24:11:00:00:00".to_string());
            json!({"interfaces": [
                {"name": "lo", "hardware-address": "00:00:00:00:00:00", "ip-addresses": [
                    {"ip-address": "127.0.0.1", "ip-address-type": "ipv4", "prefix": 8}]},
                {"name": "eth0", "hardware-address": mac, "ip-addresses": [
                    {"ip-address": address.to_string(), "ip-address-type": "ipv4", "prefix": prefix}]},
            ]})
        });
        let due = match self.harness_cmd.command(json!({"op": "agent", "vmid": vmid, "agent": agent})).await {
            Ok(_) => None,
            Err(e) => {
                self.shared.emit(LabEvent::Warning(format!("VM {vmid}: setting the agent answer: {e}")));
                Some(prefix)
            }
        };
        self.tracked(vmid, |t| t.agent_due = due);
    }

    async fn config(&self, node: &str, vmid: u32) -> Result<BTreeMap<String, String>, String> {
        self.client.vm_config(node, vmid).await.map(|c| c.values).map_err(|e| format!("reading its config: {e}"))
    }

    /// A running VM seen for the first time (or again after its node was
    /// dropped): a Talos medium ⇒ a new node at its address.
    async fn create(&mut self, vmid: u32, node: &str) -> Result<(), String> {
        let cfg = self.config(node, vmid).await?;
        let Some(medium) = medium::detect(&cfg) else {
            self.ignored.insert(vmid, ());
            self.shared.emit(LabEvent::Ignored { vmid });
            return Ok(());
        };
        let (address, prefix, leased) = match medium::static_address(&cfg) {
            Some((a, p)) => (a, p, false),
            None => match self.lease() {
                Some(a) => (a, 24, true),
                None => {
                    self.ignored.insert(vmid, ());
                    return Err("the lease pool is exhausted".into());
                }
            },
        };
        let spec = match medium.kind {
            MediumKind::Iso => NodeSpec::metal(address),
            MediumKind::DiskImage => NodeSpec::nocloud(address),
        };
        if let Err(e) = self.sim.add_node(spec, medium.version.as_deref()).await {
            self.ignored.insert(vmid, ());
            return Err(format!("no Talos node at {address}: {e} (the lab binds loopback addresses only)"));
        }
        // Tracked before the agent reports the address, so whoever finds the
        // node through PVE finds it in `Lab::nodes` too.
        let version = medium.version.clone().unwrap_or_else(|| self.options.talos_version.clone());
        let kind = medium.kind;
        let tracked =
            Tracked { vmid, identity: medium::identity(&cfg), address, leased, medium, powered: true, agent_due: None };
        self.shared.nodes.lock().unwrap_or_else(|e| e.into_inner()).insert(vmid, tracked);
        self.set_agent(vmid, &cfg, address, prefix).await;
        let endpoint = std::net::SocketAddr::new(address, self.options.talos_port).to_string();
        self.shared.emit(LabEvent::NodeCreated { vmid, endpoint, version, medium: kind });
        Ok(())
    }

    /// A stopped VM with a node started again: the node powers on with its
    /// disk, unless the VMID now names another VM or the static address
    /// changed (then it is a new node).
    async fn restart(&mut self, vmid: u32, node: &str) -> Result<(), String> {
        let cfg = self.config(node, vmid).await?;
        let Some((identity, address, leased)) = self.tracked(vmid, |t| (t.identity.clone(), t.address, t.leased))
        else {
            return Ok(());
        };
        let now = medium::static_address(&cfg);
        let same_address = match now {
            Some((a, _)) => !leased && a == address,
            None => leased,
        };
        if medium::identity(&cfg) != identity || !same_address {
            self.remove(vmid);
            return self.create(vmid, node).await;
        }
        let i = self.sim.index_of(address).ok_or_else(|| format!("its node at {address} is gone"))?;
        self.sim.power_on(i).map_err(|e| e.to_string())?;
        self.tracked(vmid, |t| t.powered = true);
        self.set_agent(vmid, &cfg, address, now.map_or(24, |(_, p)| p)).await;
        let endpoint = std::net::SocketAddr::new(address, self.options.talos_port).to_string();
        self.shared.emit(LabEvent::NodePoweredOn { vmid, endpoint });
        Ok(())
    }
}
