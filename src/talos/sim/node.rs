//! One simulated node: its phase, configuration, version and etcd state,
//! and the lifecycle steps (install, reboot, boot, power off) with the
//! cluster's scaled delays (behaviour.md §4, §6, §8).

use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::boot::{Image, ImageFault, Slots};
use super::config::Facts;
use super::tls::{self, Identity};
use super::{NodeSpec, Phase, Platform, Shared};

/// Mutable node state.
pub(crate) struct State {
    pub phase: Phase,
    /// Running Talos tag, e.g. `v1.13.9`.
    pub version: String,
    /// The boot loader's A/B slots (meaningful while `installed`).
    pub slots: Slots,
    /// How the running image behaves (a fault of the image booted).
    pub running_fault: ImageFault,
    /// A Talos installation is on disk (META exists).
    pub installed: bool,
    /// A LifecycleService install or upgrade runs (one at a time).
    pub installing: bool,
    /// Images in the system containerd (ImageService.Pull).
    pub pulled: std::collections::BTreeSet<String>,
    /// A sequence that changes the machine's stage runs (upgrading,
    /// resetting, rebooting); cleared at boot.
    pub busy: Option<crate::talos::api::MachineStage>,
    /// Active configuration.
    pub config: Option<Facts>,
    /// Configuration staged for the next boot (STAGED mode).
    pub staged: Option<Facts>,
    /// Partial documents applied in maintenance (v1.13+).
    pub partial: Vec<String>,
    /// `/var/lib/etcd` is not empty.
    pub etcd_data: bool,
    /// Why the real etcd member would not start this boot (etcd's words).
    pub etcd_failure: Option<String>,
    /// The kubelet spec last rendered: image and resource version.
    pub kubelet_spec: Option<(String, u64)>,
    /// CRI is up (Bootstrap possible).
    pub cri_up: bool,
    /// Changes on every boot.
    pub boot_id: u64,
    /// An apply is being processed (v1.13+ rejects a second one).
    pub applying: bool,
    /// An apply triggered a reboot that has not happened yet.
    pub reboot_pending: bool,
    /// Bumped by every apply; a TRY rollback only fires if unchanged.
    pub apply_generation: u64,
    /// Fault: the next maintenance-mode apply is carried out but its reply
    /// is lost (the client sees Unavailable).
    pub lose_apply_reply: bool,
    /// Fault: the next Reset is carried out but its reply is lost.
    pub lose_reset_reply: bool,
    pub maintenance_identity: Option<Arc<Identity>>,
    /// The API server's TLS config this boot (control planes, `kube/`).
    pub kube_identity: Option<Arc<rustls::ServerConfig>>,
    /// A shutdown sequence tore the kubelet lifecycle down this boot: the
    /// node resigned its VIP campaigns and holds no VIP (`vip.rs`).
    pub resigned: bool,
    pub normal_identity: Option<Arc<Identity>>,
    pub next_actor: u64,
}

/// Each machine's boot ids start in a range of their own: a machine
/// that replaces another at the same address (a VM destroyed and made
/// again) never repeats its boot ids, as Linux's random
/// `/proc/sys/kernel/random/boot_id` never does. Boots add one.
fn first_boot_id() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1 << 20, std::sync::atomic::Ordering::Relaxed)
}

impl State {
    /// A boot: what is on disk becomes active (the default boot slot's
    /// image, a staged configuration) and the boot id changes. False when
    /// the image booted fails to boot (`ImageFault::NeverBoots`).
    fn boot_from_disk(&mut self) -> bool {
        self.boot_id += 1;
        if let Some(image) = self.installed.then(|| self.slots.boot()).flatten() {
            self.version = image.version;
            self.running_fault = image.fault;
        }
        if self.running_fault == ImageFault::NeverBoots {
            return false;
        }
        if let Some(staged) = self.staged.take() {
            self.config = Some(staged);
        }
        true
    }

    /// What the first install writes to slot A: the installer image of the
    /// configuration (`machine.install.image`), whose version the node then
    /// boots, as Talos installs from it in maintenance mode
    /// (`internal/app/machined/pkg/runtime/v1alpha1/v1alpha1_sequencer_tasks.go`
    /// `Install`); without one, Talos's default: the running version.
    /// `fault` says how an image behaves (a test's `fail_image`).
    pub fn install_running(&mut self, fault: impl Fn(&str) -> ImageFault) {
        let configured = self.config.as_ref().and_then(|c| c.install_image.clone());
        let (reference, version) =
            match configured.as_deref().and_then(|r| super::machine::installer_tag(r).map(|t| (r, t))) {
                Some((reference, version)) => (reference.to_string(), version),
                None => (format!("ghcr.io/siderolabs/installer:{}", self.version), self.version.clone()),
            };
        let image = Image { fault: fault(&reference), reference, version };
        self.slots.install(image);
        self.installed = true;
    }
}

/// A simulated node.
pub(crate) struct Node {
    pub spec: NodeSpec,
    pub shared: Weak<Shared>,
    state: Mutex<State>,
    root: CancellationToken,
    conns: Mutex<CancellationToken>,
    up: watch::Sender<bool>,
    /// Drawn once per node: its boot ids differ from every other node's,
    /// a node destroyed and made again at the same address included.
    boot_nonce: u64,
    /// The real etcd member while it runs (real etcd only).
    etcd: Mutex<Option<super::etcd_member::EtcdMember>>,
}

impl Node {
    pub fn new(spec: NodeSpec, shared: Weak<Shared>, version: String, root: CancellationToken) -> Node {
        let installed = spec.platform == Platform::Nocloud;
        let mut slots = Slots::default();
        if installed {
            // A disk image carries the installed system in slot A.
            slots.install(Image {
                reference: format!("ghcr.io/siderolabs/installer:{version}"),
                version: version.clone(),
                fault: ImageFault::None,
            });
        }
        let conns = root.child_token();
        Node {
            spec,
            shared,
            state: Mutex::new(State {
                phase: Phase::Maintenance,
                version,
                slots,
                running_fault: ImageFault::None,
                installed,
                installing: false,
                pulled: Default::default(),
                busy: None,
                config: None,
                staged: None,
                partial: Vec::new(),
                etcd_data: false,
                etcd_failure: None,
                kubelet_spec: None,
                cri_up: false,
                boot_id: first_boot_id(),
                applying: false,
                reboot_pending: false,
                apply_generation: 0,
                lose_apply_reply: false,
                lose_reset_reply: false,
                maintenance_identity: None,
                kube_identity: None,
                resigned: false,
                normal_identity: None,
                next_actor: 1,
            }),
            root,
            conns: Mutex::new(conns),
            up: watch::channel(true).0,
            etcd: Mutex::new(None),
            boot_nonce: getrandom::u64().unwrap_or_else(|_| {
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
            }),
        }
    }

    /// The boot id as Linux shows it in `/proc/sys/kernel/random/boot_id`:
    /// a version-4 UUID, new at every boot (behaviour.md §6: talosctl reads
    /// it before and after a reboot).
    pub fn boot_uuid(&self) -> String {
        let boot = self.state().boot_id;
        let hi = splitmix64(self.boot_nonce ^ boot);
        uuid_v4(hi, splitmix64(hi ^ boot.rotate_left(17)))
    }

    /// Keeps (or, with None, stops: the process is killed on drop) the
    /// node's real etcd member.
    pub fn set_etcd(&self, member: Option<super::etcd_member::EtcdMember>) {
        let old = std::mem::replace(&mut *self.etcd.lock().unwrap_or_else(|e| e.into_inner()), member);
        drop(old);
    }

    /// A client for the node's running real etcd member.
    pub fn etcd_client(&self) -> Option<super::etcd_member::EtcdClient> {
        self.etcd.lock().unwrap_or_else(|e| e.into_inner()).as_ref().and_then(|m| m.client().ok())
    }

    pub fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn ip(&self) -> IpAddr {
        self.spec.address
    }

    /// The node's host name: the one its active configuration sets, else
    /// its own (what Talos's HostnameStatus holds; the API certificate's CN
    /// and the etcd member name come from it, secrets/api.go and etcd's
    /// `--name`). Takes the state lock: not for callers holding it.
    pub fn hostname(&self) -> String {
        self.state().config.as_ref().and_then(|c| c.hostname.clone()).unwrap_or_else(|| self.spec.hostname.clone())
    }

    pub fn up_receiver(&self) -> watch::Receiver<bool> {
        self.up.subscribe()
    }

    /// Minor version of the running Talos (13 for v1.13.9).
    pub fn minor(&self) -> u32 {
        minor_of(&self.state().version)
    }

    pub fn delay(&self, d: impl Fn(&super::Delays) -> Duration) -> Duration {
        self.shared.upgrade().map(|s| s.options.scaled(d(&s.options.delays))).unwrap_or_default()
    }

    /// Kills every open connection (reboot, personality change).
    pub fn kill_connections(&self) {
        let mut c = self.conns.lock().unwrap_or_else(|e| e.into_inner());
        c.cancel();
        *c = self.root.child_token();
    }

    fn conn_token(&self) -> CancellationToken {
        self.conns.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// TLS identity for a new connection, whether it is the maintenance
    /// one, and the token that kills it; `None` when apid is not serving.
    pub fn personality(self: &Arc<Self>) -> Option<(Arc<Identity>, bool, CancellationToken)> {
        let token = self.conn_token();
        let phase = self.state().phase;
        match phase {
            Phase::Maintenance => self.maintenance_identity().map(|i| (i, true, token)),
            Phase::Booting | Phase::Running => self.normal_identity().map(|i| (i, false, token)),
            _ => None,
        }
    }

    /// The API server's TLS config and the token that kills its
    /// connections, while this node serves the Kubernetes API (`kube/`):
    /// a control plane that runs, with etcd, in a bootstrapped cluster.
    pub fn kube_identity(self: &Arc<Self>) -> Option<(Arc<rustls::ServerConfig>, CancellationToken)> {
        let shared = self.shared.upgrade()?;
        if !*shared.bootstrapped.borrow() {
            return None;
        }
        let token = self.conn_token();
        let mut st = self.state();
        let cfg = st
            .config
            .as_ref()
            .filter(|c| c.control_plane && st.phase == Phase::Running && st.cri_up && st.etcd_data)?;
        if st.kube_identity.is_none() {
            let ca = cfg.k8s_ca.clone().filter(|c| !c.key.trim().is_empty())?;
            let host = endpoint_host(&cfg.endpoint);
            match super::kube::server::server_config(&ca, self, &host) {
                Ok(c) => st.kube_identity = Some(c),
                Err(e) => {
                    tracing::warn!(node = %self.ip(), error = %e, "simulated API server has no TLS identity");
                    return None;
                }
            }
        }
        st.kube_identity.clone().map(|c| (c, token))
    }

    /// The per-boot maintenance identity (made on first use).
    pub fn maintenance_identity(&self) -> Option<Arc<Identity>> {
        let mut st = self.state();
        if st.maintenance_identity.is_none() {
            st.maintenance_identity = tls::maintenance_identity(self.ip()).ok().map(Arc::new);
        }
        st.maintenance_identity.clone()
    }

    /// The mTLS identity: issued from the config's OS CA, or for a worker
    /// from a control plane's (trustd, behaviour.md §1).
    fn normal_identity(self: &Arc<Self>) -> Option<Arc<Identity>> {
        let (existing, os_ca) = {
            let st = self.state();
            (st.normal_identity.clone(), st.config.as_ref().and_then(|c| c.os_ca.clone()))
        };
        if existing.is_some() {
            return existing;
        }
        let os_ca = os_ca?;
        let issuing =
            if os_ca.key.trim().is_empty() { self.shared.upgrade()?.trustd(&os_ca.crt)? } else { os_ca.clone() };
        let identity = Arc::new(tls::normal_identity(self.ip(), &self.hostname(), &issuing, &os_ca.crt).ok()?);
        self.state().normal_identity = Some(identity.clone());
        Some(identity)
    }

    pub fn next_actor(&self) -> String {
        let mut st = self.state();
        st.next_actor += 1;
        format!("{}-{}", self.ip(), st.next_actor)
    }

    /// Listener down, connections dead, phase set. A machine whose power
    /// was cut (while a reboot or install waited for its reply to go out)
    /// stays off: false, and nothing changes.
    fn go_down(&self, phase: Phase) -> bool {
        {
            let mut st = self.state();
            if st.phase == Phase::Off && phase != Phase::Off {
                return false;
            }
            st.phase = phase;
        }
        if let Some(shared) = self.shared.upgrade() {
            shared.event(self.ip(), phase);
        }
        // The machine is down: so is its etcd (the data stays).
        self.set_etcd(None);
        self.up.send_replace(false);
        self.kill_connections();
        true
    }

    /// Powered off (Reset with reboot=false, or the machine's power cut):
    /// unreachable until [`Node::power_on`]. A pending apply is dropped.
    pub fn power_off(&self) {
        {
            let mut st = self.state();
            st.applying = false;
            st.reboot_pending = false;
        }
        self.go_down(Phase::Off);
    }

    /// The machine is gone: every listener, server and timer of this node
    /// stops for good.
    pub fn destroy(&self) {
        self.go_down(Phase::Off);
        self.root.cancel();
    }

    /// Reboot: down for the reboot delay, then the default boot slot's
    /// image and a staged config become active, the boot id changes, and
    /// the machine boots.
    pub async fn reboot(self: Arc<Self>) {
        if !self.go_down(Phase::Rebooting) {
            return;
        }
        self.come_back().await;
    }

    /// The rest of a reboot for a machine that is down: the reboot delay,
    /// then a boot from disk, or a failed boot.
    async fn come_back(self: Arc<Self>) {
        tokio::select! {
            _ = self.root.cancelled() => return,
            _ = tokio::time::sleep(self.delay(|d| d.reboot)) => {}
        }
        let booted = {
            let mut st = self.state();
            // Powered off meanwhile: stays off.
            if st.phase != Phase::Rebooting {
                return;
            }
            st.reboot_pending = false;
            st.boot_from_disk()
        };
        if booted {
            self.boot();
        } else {
            self.failed_boot().await;
        }
    }

    /// The image booted fails before the machine runs: the API never comes
    /// up; after the time a boot takes, machined reverts to the previous
    /// slot if the `Upgrade` tag names one and reboots (boot.rs). Without
    /// the tag the machine stays down. (The tag is gone after one revert,
    /// so this recurses at most once.)
    async fn failed_boot(self: Arc<Self>) {
        tokio::select! {
            _ = self.root.cancelled() => return,
            _ = tokio::time::sleep(self.delay(|d| d.services)) => {}
        }
        let reverted = {
            let mut st = self.state();
            if st.phase != Phase::Rebooting {
                return;
            }
            st.slots.boot_failed()
        };
        if reverted {
            Box::pin(self.come_back()).await;
        }
    }

    /// Powers on a node that was off.
    /// What is on disk becomes active at any boot (a staged config, an
    /// upgraded version), as after a reboot.
    pub fn power_on(self: &Arc<Self>) {
        let booted = {
            let mut st = self.state();
            if st.phase != Phase::Off {
                return;
            }
            st.phase = Phase::Rebooting;
            st.boot_from_disk()
        };
        if booted {
            self.boot();
        } else {
            tokio::spawn(self.clone().failed_boot());
        }
    }

    /// Boot: with a config on an installed disk → normal mode, services
    /// start (CRI after a delay); otherwise maintenance mode with a fresh
    /// per-boot CA (behaviour.md §2, §4).
    pub fn boot(self: &Arc<Self>) {
        {
            let mut st = self.state();
            st.maintenance_identity = None;
            st.normal_identity = None;
            st.kube_identity = None;
            st.resigned = false;
            st.busy = None;
            st.etcd_failure = None;
            st.cri_up = false;
            st.applying = false;
            let configured = st.installed && st.config.is_some();
            st.phase = if configured { Phase::Booting } else { Phase::Maintenance };
            if !configured {
                st.config = None;
            }
        }
        self.kill_connections();
        self.up.send_replace(true);
        if self.state().phase == Phase::Booting {
            self.start_services();
        }
    }

    /// Enters normal mode without a reboot (a config applied to a disk
    /// image, platform nocloud: behaviour.md §4).
    pub fn enter_normal_mode(self: &Arc<Self>) {
        {
            let mut st = self.state();
            st.phase = Phase::Booting;
            st.normal_identity = None;
        }
        self.kill_connections();
        self.start_services();
    }

    fn start_services(self: &Arc<Self>) {
        let node = self.clone();
        let boot_id = self.state().boot_id;
        tokio::spawn(async move {
            tokio::select! {
                _ = node.root.cancelled() => return,
                _ = tokio::time::sleep(node.delay(|d| d.services)) => {}
            }
            {
                let mut st = node.state();
                if st.boot_id != boot_id || st.phase != Phase::Booting {
                    return;
                }
                st.cri_up = true;
                st.phase = Phase::Running;
                st.slots.boot_succeeded();
            }
            if let Some(shared) = node.shared.upgrade() {
                shared.event(node.ip(), Phase::Running);
            }
            // Running again: Talos uncordons the Node it cordoned.
            if let Some(shared) = node.shared.upgrade() {
                super::kube::drain::uncordon(&shared, &node.hostname());
            }
            node.clone().etcd_join_loop(boot_id).await;
        });
    }

    /// A control plane that is not a member waits for the cluster to be
    /// bootstrapped, then joins after the join delay (behaviour.md §5).
    async fn etcd_join_loop(self: Arc<Self>, boot_id: u64) {
        let Some(shared) = self.shared.upgrade() else { return };
        let mut bootstrapped = shared.bootstrapped.subscribe();
        drop(shared);
        let cp = self.state().config.as_ref().is_some_and(|c| c.control_plane);
        if !cp {
            return;
        }
        if self.state().etcd_data {
            // A member that booted again: real etcd restarts from its data.
            if let Some(shared) = self.shared.upgrade()
                && let Some(real) = shared.real.as_ref()
            {
                tokio::select! {
                    _ = self.root.cancelled() => {}
                    _ = super::real::restart(real, self.clone(), boot_id) => {}
                }
            }
            return;
        }
        tokio::select! {
            _ = self.root.cancelled() => return,
            r = bootstrapped.wait_for(|b| *b) => if r.is_err() { return },
        }
        tokio::select! {
            _ = self.root.cancelled() => return,
            _ = tokio::time::sleep(self.delay(|d| d.etcd_join)) => {}
        }
        let join = {
            let st = self.state();
            if st.boot_id != boot_id || st.phase != Phase::Running {
                return;
            }
            !st.etcd_data
        };
        if !join {
            return;
        }
        let Some(shared) = self.shared.upgrade() else { return };
        match shared.real.as_ref() {
            Some(real) => {
                let joined = tokio::select! {
                    _ = self.root.cancelled() => false,
                    j = super::real::join(real, &shared, self.clone(), boot_id) => j,
                };
                if joined {
                    self.state().etcd_data = true;
                }
            }
            None => {
                shared.add_member(&self);
                self.state().etcd_data = true;
            }
        }
    }

    /// After a complete config in maintenance mode on `metal`: the
    /// maintenance listener shuts down, install runs, then the node reboots
    /// into the installed system (behaviour.md §4).
    pub async fn install_and_reboot(self: Arc<Self>) {
        if !self.go_down(Phase::Installing) {
            return;
        }
        tokio::select! {
            _ = self.root.cancelled() => return,
            _ = tokio::time::sleep(self.delay(|d| d.install)) => {}
        }
        {
            let shared = self.shared.upgrade();
            let fault = |reference: &str| shared.as_ref().map(|s| s.image_fault(reference)).unwrap_or_default();
            let mut st = self.state();
            // Powered off meanwhile: the install never finished.
            if st.phase != Phase::Installing {
                return;
            }
            st.install_running(fault);
        }
        self.reboot().await;
    }

    /// An OS upgrade (legacy `Upgrade`, also with `stage`): after the
    /// graceful stop the machine goes down, the installer writes the slot
    /// not booted, then the machine reboots into it (v1alpha1_sequencer.go
    /// `Upgrade` and `StageUpgrade`, both end in a reboot).
    pub async fn upgrade_and_reboot(self: Arc<Self>, image: Image) {
        self.state().busy = Some(crate::talos::api::MachineStage::Upgrading);
        self.after_reply().await;
        self.cordon_and_drain().await;
        self.stop_gracefully().await;
        if !self.go_down(Phase::Installing) {
            return;
        }
        tokio::select! {
            _ = self.root.cancelled() => return,
            _ = tokio::time::sleep(self.delay(|d| d.install)) => {}
        }
        {
            let mut st = self.state();
            if st.phase != Phase::Installing {
                return;
            }
            st.slots.upgrade(image);
        }
        self.reboot().await;
    }

    /// Talos's drain phase (upgrade, shutdown, graceful reset): cordon the
    /// Node and evict its pods within their budgets (`kube/drain.rs`).
    pub async fn cordon_and_drain(&self) {
        if let Some(shared) = self.shared.upgrade() {
            super::kube::drain::cordon_and_drain(&shared, &self.hostname(), &self.root).await;
        }
    }

    /// Short pause between a reply and the action it triggers (so the reply
    /// reaches the client first).
    pub async fn after_reply(&self) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    /// After the reply, the graceful part of a requested reboot: services
    /// stop while the API still answers (`Delays::shutdown`).
    pub async fn stop_gracefully(&self) {
        self.after_reply().await;
        self.resign();
        tokio::select! {
            _ = self.root.cancelled() => {}
            _ = tokio::time::sleep(self.delay(|d| d.shutdown)) => {}
        }
    }
}

impl Node {
    /// The kubelet lifecycle is torn down (a graceful shutdown, reboot,
    /// upgrade or reset): the node gives up the VIPs it holds at once
    /// (`vip.rs`).
    pub fn resign(&self) {
        self.state().resigned = true;
        if let Some(shared) = self.shared.upgrade() {
            shared.vips.resign(self.ip());
        }
    }
}

/// The host of an endpoint URL (`https://10.0.0.10:6443` → `10.0.0.10`).
fn endpoint_host(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or_default();
    match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default().to_string(),
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h).to_string(),
    }
}

/// Minor version of a tag (`v1.13.9` → 13); 0 if unparsable.
pub fn minor_of(tag: &str) -> u32 {
    tag.trim_start_matches('v').split('.').nth(1).and_then(|m| m.parse().ok()).unwrap_or(0)
}

/// A version-4 UUID's text from 128 bits (`hi`, `lo`), the version and
/// variant bits set (boot ids, Kubernetes uids: not secrets).
pub(crate) fn uuid_v4(hi: u64, lo: u64) -> String {
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        hi >> 32,
        (hi >> 16) & 0xffff,
        hi & 0x0fff,
        0x8000 | ((lo >> 48) & 0x3fff),
        lo & 0xffff_ffff_ffff
    )
}

/// One step of SplitMix64: spreads the bits of `x` (boot ids only, not a
/// secret).
pub(crate) fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
