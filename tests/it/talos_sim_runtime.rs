//! The simulator's runtime machine lifecycle (what the lab drives): nodes
//! added and removed while the cluster runs, power cut and restored with
//! the disk kept. Loopback only; every SimCluster is dropped by its test.

use std::net::IpAddr;
use std::sync::OnceLock;
use std::time::Duration;

use crate::support::talos_fixture::TalosFixture;
use proxtalos::talos::api::wait::{Target, conditions, poll_until};
use proxtalos::talos::api::{ApplyMode, ApplyRequest, Mode, NodeClient, Timeouts};
use proxtalos::talos::client_config::ClientConfiguration;
use proxtalos::talos::sim::{NodeSpec, Phase, SimCluster, SimOptions};
use tokio::time::Instant;

fn addr(n: u8) -> IpAddr {
    let base = 100 + (std::process::id() % 100) as u8;
    IpAddr::from([127, base, 77, n])
}

fn fixture() -> &'static TalosFixture {
    static F: OnceLock<TalosFixture> = OnceLock::new();
    F.get_or_init(|| TalosFixture::new(11, "sim"))
}

fn admin() -> ClientConfiguration {
    fixture().admin()
}

fn config() -> Vec<u8> {
    fixture().controlplane_config()
}

fn t() -> Timeouts {
    Timeouts { connect: Duration::from_secs(2), call: Duration::from_secs(5) }
}

/// Waits until a maintenance connection succeeds (`up`) or fails (`!up`):
/// listeners open and close asynchronously, as a machine boots or dies.
async fn maintenance_is(endpoint: &str, up: bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let ok = match NodeClient::maintenance(endpoint, None, t()).await {
            Ok(c) => c.disks().await.is_ok(),
            Err(_) => false,
        };
        if ok == up {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{endpoint}: maintenance API never became {}",
            if up { "up" } else { "down" }
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn secure_up(c: &SimCluster, i: usize) {
    let tg = Target { node: c.endpoint(i), endpoint: None, mode: Mode::Normal(admin()), timeouts: t() };
    let until = proxtalos::talos::api::wait::Until::after(Duration::from_secs(10), &proxtalos::wait::Stop::never());
    poll_until(&tg.node, conditions::SECURE_API, &until, Duration::from_millis(20), || conditions::secure_api_up(&tg))
        .await
        .unwrap();
}

#[tokio::test]
async fn nodes_come_and_go_at_runtime_and_keep_their_disk_across_power_cycles() {
    let c = SimCluster::start(SimOptions::fast("v1.13.9"), vec![]).await.unwrap();
    assert!(c.is_empty());
    let i = c.add_node(NodeSpec::metal(addr(1)), Some("v1.12.3")).await.unwrap();
    assert_eq!(c.index_of(addr(1)), Some(i));
    assert!(c.add_node(NodeSpec::metal(addr(1)), None).await.is_err(), "one node per address");
    let m = NodeClient::maintenance(&c.endpoint(i), None, t()).await.unwrap();
    assert_eq!(m.version_tag().await.ok().as_deref().unwrap_or("v1.12.3"), "v1.12.3");
    assert_eq!(c.version(i).unwrap(), "v1.12.3");
    let j = c.add_node(NodeSpec::nocloud(addr(2)), None).await.unwrap();
    assert_eq!(c.version(j).unwrap(), "v1.13.9");
    assert!(c.installed(j).unwrap());

    // Power cut before any config: maintenance again after power on.
    c.power_off(i).unwrap();
    assert_eq!(c.phase(i).unwrap(), Phase::Off);
    maintenance_is(&c.endpoint(i), false).await;
    c.power_on(i).unwrap();
    assert_eq!(c.phase(i).unwrap(), Phase::Maintenance);
    maintenance_is(&c.endpoint(i), true).await;

    // Configure (install + reboot), then a power cycle keeps the installation.
    let m = NodeClient::maintenance(&c.endpoint(i), None, t()).await.unwrap();
    m.apply_configuration(&ApplyRequest { config: config(), mode: ApplyMode::Auto, dry_run: false, try_timeout: None })
        .await
        .unwrap();
    secure_up(&c, i).await;
    assert!(c.installed(i).unwrap());
    c.power_off(i).unwrap();
    maintenance_is(&c.endpoint(i), false).await;
    c.power_on(i).unwrap();
    secure_up(&c, i).await;
    assert!(c.active_config(i).unwrap().is_some());

    // Removed: gone; added again at the same address: a blank machine.
    c.remove_node(addr(1)).unwrap();
    assert_eq!(c.index_of(addr(1)), None);
    assert_eq!(c.len(), 1);
    maintenance_is(&addr(1).to_string(), false).await;
    let k = c.add_node(NodeSpec::metal(addr(1)), None).await.unwrap();
    assert!(!c.installed(k).unwrap());
    assert_eq!(c.phase(k).unwrap(), Phase::Maintenance);
    maintenance_is(&c.endpoint(k), true).await;
}

#[tokio::test]
async fn power_cut_during_install_abandons_it() {
    let mut o = SimOptions::fast("v1.13.9");
    o.time_scale = 0.05; // install 3 s: still installing when the power goes
    let c = SimCluster::start(o, vec![NodeSpec::metal(addr(9))]).await.unwrap();
    let m = NodeClient::maintenance(&c.endpoint(0), None, t()).await.unwrap();
    m.apply_configuration(&ApplyRequest { config: config(), mode: ApplyMode::Auto, dry_run: false, try_timeout: None })
        .await
        .unwrap();
    crate::support::wait::until("the node is installing", Duration::from_secs(2), || async {
        c.phase(0).unwrap() == Phase::Installing
    })
    .await;
    c.power_off(0).unwrap();
    tokio::time::sleep(Duration::from_millis(4000)).await; // past the install's end
    assert_eq!(c.phase(0).unwrap(), Phase::Off, "the abandoned install does not reboot the node");
    assert!(!c.installed(0).unwrap());
    c.power_on(0).unwrap();
    assert_eq!(c.phase(0).unwrap(), Phase::Maintenance);
}

#[tokio::test]
async fn every_call_a_node_receives_is_counted_per_method_across_the_cluster() {
    let c = SimCluster::start(SimOptions::fast("v1.13.9"), vec![NodeSpec::metal(addr(31)), NodeSpec::metal(addr(32))])
        .await
        .unwrap();
    let a = NodeClient::maintenance(&c.endpoint(0), None, t()).await.unwrap();
    let b = NodeClient::maintenance(&c.endpoint(1), None, t()).await.unwrap();
    a.disks().await.unwrap();
    a.disks().await.unwrap();
    b.disks().await.unwrap();
    // A call the maintenance API refuses is received, so it counts too.
    assert!(a.bootstrap().await.is_err());
    let calls = c.calls();
    assert_eq!(calls.get("storage.StorageService/Disks"), Some(&3), "{calls:?}");
    assert_eq!(calls.get("machine.MachineService/Bootstrap"), Some(&1), "{calls:?}");

    // A snapshot does not move; a reset starts from zero.
    b.disks().await.unwrap();
    assert_eq!(calls.get("storage.StorageService/Disks"), Some(&3));
    assert_eq!(c.calls().get("storage.StorageService/Disks"), Some(&4));
    c.reset_calls();
    assert!(c.calls().is_empty());
    a.disks().await.unwrap();
    assert_eq!(c.calls().into_iter().collect::<Vec<_>>(), vec![("storage.StorageService/Disks".to_string(), 1)]);
}
