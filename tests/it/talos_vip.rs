//! The control planes' shared virtual IP in the simulator (issue 14, "the
//! endpoint survives a control-plane reboot"): one control plane holds it,
//! the lab's Kubernetes API answers on it, and it changes hands as upstream
//! does. Upstream: siderolabs/talos
//! `internal/app/machined/pkg/controllers/network/operator/vip.go` (the
//! election, resigning on a graceful shutdown, the lease of a dead holder),
//! `pkg/machinery/config/types/network/layer2_vip.go` (the v1.12+
//! document), `pkg/machinery/config/types/v1alpha1` `Device.DeviceVIPConfig`
//! (the interface's `vip` before). Facts: `src/talos/sim/README.md`.

use std::net::IpAddr;
use std::time::Duration;

use proxtalos::kubernetes::{Client, Kubeconfig, Timeouts};
use proxtalos::talos::api::RebootMode;
use proxtalos::talos::sim::{NodeSpec, SimCluster, SimOptions};

use crate::support::wait::until;
use crate::talos_api::{addr, bootstrap, config_at, configure, target};

/// 0.05: the lease of a dead holder (60 s) lasts 3 s, a reboot 1.5 s, so a
/// resignation and an expired lease tell apart.
const SCALE: f64 = 0.05;

fn layer2(vip: IpAddr, link: &str) -> String {
    format!("apiVersion: v1alpha1\nkind: Layer2VIPConfig\nname: {vip}\nlink: {link}\n")
}

/// Three control planes sharing `vip` (endpoint `https://vip:6443`),
/// configured with `patch`, bootstrapped, all members.
async fn three(version: &str, contract: &str, vip: IpAddr, patch: &str) -> SimCluster {
    let opts = SimOptions { time_scale: SCALE, ..SimOptions::new(version) };
    let c = SimCluster::start(opts, (0..3).map(|_| NodeSpec::metal(addr())).collect()).await.unwrap();
    let endpoint = format!("https://{vip}:6443");
    let cfg = config_at(&endpoint, contract, true, true, &[patch], 0);
    futures_util::future::join_all((0..3).map(|i| configure(&c, i, cfg.clone()))).await;
    bootstrap(&c, 0).await;
    until("3 etcd members", Duration::from_secs(60), || async { c.etcd_members().len() == 3 }).await;
    c
}

fn ip(c: &SimCluster, i: usize) -> IpAddr {
    c.endpoint(i).rsplit_once(':').unwrap().0.parse().unwrap()
}

/// `GET /version` on the VIP with the cluster's admin kubeconfig (whose
/// server is the endpoint): the API server's answer, or why not.
async fn api_on_vip(kubeconfig: &str) -> Result<String, String> {
    let kc = Kubeconfig::parse(kubeconfig).unwrap();
    let t = Timeouts { connect: Duration::from_millis(500), call: Duration::from_secs(2) };
    let client = Client::new(&kc, t).unwrap();
    let v: serde_json::Value =
        client.send(http::Request::get("/version").body(Vec::new()).unwrap()).await.map_err(|e| e.to_string())?;
    Ok(v["gitVersion"].as_str().unwrap_or_default().to_string())
}

async fn holder_is(c: &SimCluster, vip: IpAddr, want: impl Fn(Option<IpAddr>) -> bool, limit: Duration) {
    until("the VIP's holder", limit, || async { want(c.vip_holder(vip)) }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_vip_moves_at_once_on_a_graceful_reboot_and_after_the_lease_on_a_crash() {
    let vip = addr();
    let c = three("v1.13.9", "v1.13", vip, &layer2(vip, "ens18")).await;
    holder_is(&c, vip, |h| h.is_some(), Duration::from_secs(30)).await;
    let first = c.vip_holder(vip).unwrap();
    let i = (0..3).find(|i| ip(&c, *i) == first).unwrap();
    let kubeconfig = target(&c, i).connect().await.unwrap().kubeconfig().await.unwrap();
    assert!(kubeconfig.contains(&format!("https://{vip}:6443")), "the kubeconfig names the endpoint");
    until("the API on the VIP", Duration::from_secs(30), || async { api_on_vip(&kubeconfig).await.is_ok() }).await;

    // A graceful reboot: the holder resigns as its kubelet lifecycle is
    // torn down, and the next campaigner takes over long before a lease
    // (3 s here) would have run out; the old holder is not it.
    target(&c, i).connect().await.unwrap().reboot(RebootMode::Default).await.unwrap();
    let t0 = tokio::time::Instant::now();
    holder_is(&c, vip, |h| h.is_some_and(|h| h != first), Duration::from_secs(10)).await;
    assert!(t0.elapsed() < Duration::from_millis(2500), "handed over in {:?}", t0.elapsed());
    let second = c.vip_holder(vip).unwrap();
    until("the API on the VIP from the new holder", Duration::from_secs(2), || async {
        api_on_vip(&kubeconfig).await.is_ok()
    })
    .await;
    // The rebooted node campaigns again, at the end of the queue: the VIP stays.
    until("the first holder back", Duration::from_secs(30), || async {
        c.phase(i).unwrap() == proxtalos::talos::sim::Phase::Running
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(c.vip_holder(vip), Some(second), "a node that comes back does not take the VIP back");

    // A crash (power cut): the dead holder's key stays until its lease
    // expires, so nobody answers on the VIP meanwhile.
    let j = (0..3).find(|j| ip(&c, *j) == second).unwrap();
    c.power_off(j).unwrap();
    let t1 = tokio::time::Instant::now();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(c.vip_holder(vip), Some(second), "the lease has not run out yet");
    assert!(api_on_vip(&kubeconfig).await.is_err(), "nobody answers on the VIP of a dead holder");
    holder_is(&c, vip, |h| h.is_some_and(|h| h != second), Duration::from_secs(10)).await;
    assert!(t1.elapsed() >= Duration::from_millis(2900), "taken over after the lease: {:?}", t1.elapsed());
    until("the API on the VIP again", Duration::from_secs(10), || async { api_on_vip(&kubeconfig).await.is_ok() })
        .await;
    let events = c.vip_events();
    assert_eq!(events.first(), Some(&(vip, Some(first))), "{events:?}");
    assert!(events.contains(&(vip, None)), "each handover releases first: {events:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_interface_vip_of_older_contracts_works_and_a_missing_link_holds_nothing() {
    // Before v1.12: `machine.network.interfaces[].vip.ip`, on a named
    // interface or one picked by a device selector.
    let vip = addr();
    let patch = format!(
        "machine:\n  network:\n    interfaces:\n      - deviceSelector:\n          busPath: \"0*\"\n        dhcp: true\n        vip:\n          ip: {vip}\n"
    );
    let c = three("v1.11.5", "v1.11", vip, &patch).await;
    holder_is(&c, vip, |h| h.is_some(), Duration::from_secs(30)).await;
    drop(c);

    // A link the machine does not have: Talos cannot put the address
    // anywhere, so nobody holds it (the endpoint never answers).
    let vip = addr();
    let c = three("v1.13.9", "v1.13", vip, &layer2(vip, "eth0")).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(c.vip_holder(vip), None);
}
