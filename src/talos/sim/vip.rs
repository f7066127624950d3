//! The control planes' shared virtual IP (Layer 2 VIP): the address a
//! cluster endpoint can name so that it survives the reboot of any one
//! control plane. One control plane holds it at a time; the lab's
//! Kubernetes API answers on `vip:kube_port` from the holder.
//!
//! Upstream (siderolabs/talos
//! `internal/app/machined/pkg/controllers/network/operator/vip.go`):
//! - a control plane campaigns once its etcd runs and is healthy and its
//!   kubelet lifecycle is up, in an etcd election (key
//!   `talos:vip:election:<ip>`, a FIFO queue by create revision) with a
//!   session lease (etcd's `concurrency` default TTL, 60 s);
//! - the winner puts the address on its link; it resigns (and the next
//!   campaigner wins at once) when its kubelet lifecycle is torn down
//!   (every graceful shutdown, reboot, upgrade or reset), when its etcd
//!   stops, or when its kube-apiserver static pod goes;
//! - a holder that dies without resigning keeps the key until its lease
//!   expires: the others wait out the TTL;
//! - a node that finds itself leader of a previous election resigns
//!   before it campaigns again.
//!
//! Simulator choices, not upstream facts: the election is modelled here
//! rather than run on (real) etcd, and it does not check etcd quorum; the
//! TTL is scaled like every delay; the cluster looks at its nodes every
//! [`TICK`]; the API server on the VIP is the holder's, TLS and all (its
//! serving certificate names the endpoint's host); apid does not answer
//! on the VIP (Talos's docs advise against it as a talosconfig endpoint).

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::node::Node;
use super::{Phase, Shared};

/// How often the cluster looks at its control planes.
const TICK: Duration = Duration::from_millis(25);

/// etcd's `concurrency` session TTL, before scaling.
pub const LEASE_TTL: Duration = Duration::from_secs(60);

/// The VIPs of one simulated cluster.
#[derive(Default)]
pub(crate) struct Vips {
    held: Mutex<BTreeMap<IpAddr, Held>>,
    /// Every change of holder, in order: (VIP, new holder or none).
    events: Mutex<Vec<(IpAddr, Option<IpAddr>)>>,
}

#[derive(Default)]
struct Held {
    holder: Option<IpAddr>,
    /// Campaigners in the order they started (the election's queue).
    queue: Vec<IpAddr>,
    /// When the holder vanished without resigning (its lease runs out).
    lost_at: Option<Instant>,
    /// Ends the holder's term: the listener on the VIP and its connections.
    term: CancellationToken,
}

impl Vips {
    /// The node that holds `vip` now.
    pub fn holder(&self, vip: IpAddr) -> Option<IpAddr> {
        self.held.lock().ok().and_then(|h| h.get(&vip).and_then(|h| h.holder))
    }

    /// Every change of holder so far.
    pub fn events(&self) -> Vec<(IpAddr, Option<IpAddr>)> {
        self.events.lock().map(|e| e.clone()).unwrap_or_default()
    }

    /// The node at `node` gives up every VIP it holds (its kubelet
    /// lifecycle is being torn down); the next campaigner takes each at the
    /// next look.
    pub fn resign(&self, node: IpAddr) {
        let Ok(mut held) = self.held.lock() else { return };
        for (vip, h) in held.iter_mut().filter(|(_, h)| h.holder == Some(node)) {
            h.term.cancel();
            h.holder = None;
            h.lost_at = None;
            h.queue.retain(|ip| *ip != node);
            self.event(*vip, None);
        }
    }

    fn event(&self, vip: IpAddr, holder: Option<IpAddr>) {
        tracing::debug!(%vip, holder = ?holder, "simulated VIP changes hands");
        if let Ok(mut e) = self.events.lock() {
            e.push((vip, holder));
        }
    }
}

/// What one node does about the VIPs now.
struct Seen {
    node: Arc<Node>,
    /// The VIPs it campaigns for.
    campaigns: Vec<IpAddr>,
    /// Down without a shutdown sequence (a power cut, a forced reboot):
    /// it could not resign.
    crashed: bool,
}

fn look(node: &Arc<Node>, bootstrapped: bool) -> Seen {
    let st = node.state();
    let ready = bootstrapped
        && st.phase == Phase::Running
        && st.cri_up
        && st.etcd_data
        && st.etcd_failure.is_none()
        && !st.resigned;
    let campaigns = match st.config.as_ref().filter(|c| c.control_plane && ready) {
        Some(c) => c.vips.iter().filter(|v| v.link_found).map(|v| v.ip).collect(),
        None => Vec::new(),
    };
    let crashed = matches!(st.phase, Phase::Rebooting | Phase::Off | Phase::Installing) && !st.resigned;
    Seen { node: node.clone(), campaigns, crashed }
}

/// Runs the cluster's elections until `root` is cancelled.
pub(crate) async fn run(shared: Weak<Shared>, root: CancellationToken) {
    loop {
        tokio::select! {
            _ = root.cancelled() => return,
            _ = tokio::time::sleep(TICK) => {}
        }
        let Some(shared) = shared.upgrade() else { return };
        step(&shared, &root);
    }
}

/// One look at the nodes: campaigns join the queue, a holder that can no
/// longer hold resigns (or, crashed, loses its lease after the TTL), and
/// the first campaigner of a free VIP takes it.
fn step(shared: &Shared, root: &CancellationToken) {
    let bootstrapped = *shared.bootstrapped.borrow();
    let seen: Vec<Seen> = shared.nodes().iter().map(|n| look(n, bootstrapped)).collect();
    let ttl = shared.options.scaled(LEASE_TTL);
    let Ok(mut held) = shared.vips.held.lock() else { return };
    for vip in seen.iter().flat_map(|s| s.campaigns.iter()) {
        held.entry(*vip).or_default();
    }
    let now = Instant::now();
    for (vip, h) in held.iter_mut() {
        let campaigning: Vec<&Seen> = seen.iter().filter(|s| s.campaigns.contains(vip)).collect();
        h.queue.retain(|ip| campaigning.iter().any(|s| s.node.ip() == *ip));
        for s in &campaigning {
            if !h.queue.contains(&s.node.ip()) {
                h.queue.push(s.node.ip());
            }
        }
        if let Some(holder) = h.holder {
            if h.queue.contains(&holder) {
                h.lost_at = None;
                continue;
            }
            let crashed = seen.iter().find(|s| s.node.ip() == holder).is_none_or(|s| s.crashed);
            if crashed && now < *h.lost_at.get_or_insert(now) + ttl {
                continue;
            }
            h.term.cancel();
            h.holder = None;
            h.lost_at = None;
            shared.vips.event(*vip, None);
        }
        let next = h.queue.first().and_then(|ip| campaigning.iter().find(|s| s.node.ip() == *ip));
        if let Some(s) = next {
            h.holder = Some(s.node.ip());
            h.term = root.child_token();
            shared.vips.event(*vip, h.holder);
            let addr = SocketAddr::new(*vip, shared.options.kube_port);
            tokio::spawn(serve(s.node.clone(), addr, h.term.clone()));
        }
    }
}

/// The holder's API server on the VIP for one term.
async fn serve(node: Arc<Node>, addr: SocketAddr, term: CancellationToken) {
    let listener = tokio::select! {
        _ = term.cancelled() => return,
        l = super::listener::bind(addr) => l,
    };
    let Some(listener) = listener else {
        tracing::warn!(%addr, "the simulated VIP's address cannot be bound (is it a node's own address?)");
        return;
    };
    loop {
        tokio::select! {
            _ = term.cancelled() => return,
            accepted = listener.accept() => {
                if let Ok((tcp, _)) = accepted {
                    let (node, term) = (node.clone(), term.clone());
                    tokio::spawn(async move {
                        tokio::select! {
                            _ = term.cancelled() => {}
                            _ = super::kube::server::connection(node, tcp) => {}
                        }
                    });
                }
            }
        }
    }
}
