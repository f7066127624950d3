//! The simulator on real etcd (issue 13 §2): every control plane runs a
//! real etcd 3.5 member at its address; the Talos etcd calls are answered
//! by it; membership changes only through etcd (a destroyed node's member
//! stays until removed by id); a rebooted control plane's member restarts
//! from its data; etcd's own `etcdctl` sees the same cluster.

use std::time::Duration;

use proxtalos::talos::api::wait::{conditions, poll_until};
use proxtalos::talos::api::{NodeClient, UpgradeRequest};
use proxtalos::talos::sim::{NodeSpec, SimCluster, SimOptions};

use crate::etcd_real::{etcd, etcdctl_member_names, etcdutl_status};
use crate::support::wait::until;
use crate::talos_api::{TICK, addr, bootstrap, config, configure, target, until_soon};

async fn cluster(n: usize) -> Option<SimCluster> {
    let bin = etcd()?;
    let mut o = SimOptions::fast("v1.13.9");
    o.etcd_bin = Some(bin);
    Some(SimCluster::start(o, (0..n).map(|_| NodeSpec::metal(addr())).collect()).await.unwrap())
}

async fn client(c: &SimCluster, i: usize) -> NodeClient {
    target(c, i).connect().await.unwrap()
}

/// Waits until node `i` lists `n` started voting members.
async fn voting(c: &SimCluster, i: usize, n: usize) {
    until(&format!("{n} started voting etcd members"), Duration::from_secs(60), || async {
        let Ok(cl) = target(c, i).connect().await else { return false };
        cl.etcd_members(false)
            .await
            .is_ok_and(|m| m.len() == n && m.iter().all(|m| !m.is_learner && !m.hostname.is_empty()))
    })
    .await;
}

fn etcdctl_names(c: &SimCluster, i: usize) -> Vec<String> {
    let ip = c.endpoint(i).rsplit_once(':').map(|(h, _)| h.to_string()).unwrap();
    etcdctl_member_names(&etcd().unwrap(), &ip)
}

#[tokio::test]
async fn three_control_planes_run_real_etcd_named_after_their_hosts() {
    let Some(c) = cluster(3).await else { return };
    for i in 0..3 {
        configure(&c, i, config("v1.13", true)).await;
    }
    bootstrap(&c, 0).await;
    voting(&c, 0, 3).await;
    let mut hosts: Vec<String> =
        client(&c, 0).await.etcd_members(false).await.unwrap().into_iter().map(|m| m.hostname).collect();
    hosts.sort();
    assert_eq!(etcdctl_names(&c, 1), hosts, "etcdctl sees the same three members");
    assert!(hosts.iter().all(|h| h.starts_with("talos-")), "{hosts:?}");

    // Status and leadership come from etcd itself.
    let n0 = client(&c, 0).await;
    let s = n0.etcd_status().await.unwrap();
    assert!(s.protocol_version.starts_with("3.5"), "{s:?}");
    let leader_before = s.leader;
    if leader_before == s.member_id {
        let new = n0.etcd_forfeit_leadership().await.unwrap();
        assert!(hosts.contains(&new));
        until("leadership moved", Duration::from_secs(10), || async {
            n0.etcd_status().await.is_ok_and(|s| s.leader != leader_before)
        })
        .await;
    }

    // All three healthy: the legacy upgrade passes the etcd checks; the
    // node reboots and its member comes back from its data.
    let n1 = client(&c, 1).await;
    let before = n1.boot_id().await.unwrap();
    n1.upgrade(&UpgradeRequest { image: "ghcr.io/siderolabs/installer:v1.14.0".into(), ..Default::default() })
        .await
        .unwrap();
    let tg = target(&c, 1);
    poll_until(&tg.node, conditions::REBOOTED, &until_soon(), TICK, || conditions::rebooted(&tg, &before))
        .await
        .unwrap();
    poll_until(&tg.node, conditions::SERVICE_RUNNING, &until_soon(), TICK, || conditions::service_running(&tg, "etcd"))
        .await
        .unwrap();
    voting(&c, 0, 3).await;
}

#[tokio::test]
async fn a_destroyed_control_plane_keeps_its_member_until_removed_by_id() {
    let Some(c) = cluster(3).await else { return };
    for i in 0..3 {
        configure(&c, i, config("v1.13", true)).await;
    }
    bootstrap(&c, 0).await;
    voting(&c, 0, 3).await;
    let gone = c.endpoint(2).rsplit_once(':').map(|(h, _)| h.to_string()).unwrap();
    c.remove_node(gone.parse().unwrap()).unwrap();
    let n0 = client(&c, 0).await;
    let members = n0.etcd_members(false).await.unwrap();
    assert_eq!(members.len(), 3, "real etcd keeps the dead member");
    let dead = members.iter().find(|m| m.client_urls.iter().any(|u| u.contains(&format!("//{gone}:")))).unwrap();

    // With one of three down the legacy upgrade is refused (not healthy).
    let e = n0
        .upgrade(&UpgradeRequest { image: "ghcr.io/siderolabs/installer:v1.14.0".into(), ..Default::default() })
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("is not healthy"), "{e}");

    // etcd refuses a removal (Unavailable "etcdserver: unhealthy cluster")
    // until the members left have been connected for a while (its strict
    // reconfiguration check): a client retries.
    until("the dead member removed", Duration::from_secs(30), || async {
        match n0.etcd_remove_member(dead.id).await {
            Ok(()) => true,
            Err(e) if e.code() == Some(tonic::Code::Unavailable) => false,
            Err(e) => panic!("{e}"),
        }
    })
    .await;
    voting(&c, 0, 2).await;
    assert_eq!(etcdctl_names(&c, 1).len(), 2);
}

#[tokio::test]
async fn a_snapshot_through_the_talos_api_is_a_real_etcd_snapshot() {
    // day2.md §4: EtcdSnapshot streams common.Data chunks of etcd's own
    // snapshot; etcdutl snapshot status (same etcd release) reads it.
    let Some(c) = cluster(1).await else { return };
    configure(&c, 0, config("v1.13", true)).await;
    bootstrap(&c, 0).await;
    voting(&c, 0, 1).await;
    let snap = client(&c, 0).await.etcd_snapshot(Duration::from_secs(30)).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("db.snapshot");
    std::fs::write(&file, &snap).unwrap();
    let v = etcdutl_status(&etcd().unwrap(), &file);
    assert!(v["totalSize"].as_i64().unwrap() > 0, "{v}");
}

#[tokio::test]
async fn an_etcd_member_that_will_not_start_shows_as_failed_with_etcds_own_error() {
    // Issue 13 "bad input": the node's etcd service fails, and what a
    // health check reads (ServiceList) names etcd's own error; here its
    // client port is taken.
    let Some(c) = cluster(1).await else { return };
    configure(&c, 0, config("v1.13", true)).await;
    let ip = c.endpoint(0).rsplit_once(':').map(|(h, _)| h.to_string()).unwrap();
    let _taken = std::net::TcpListener::bind(format!("{ip}:2379")).unwrap();
    bootstrap(&c, 0).await;
    let n = client(&c, 0).await;
    let failed = || async {
        let etcd = n.services().await.unwrap_or_default().into_iter().find(|s| s.id == "etcd");
        etcd.filter(|s| s.state == "Failed").map(|s| s.health.map(|h| h.last_message).unwrap_or_default())
    };
    until("etcd fails", Duration::from_secs(60), || async { failed().await.is_some() }).await;
    let why = failed().await.unwrap_or_default();
    assert!(why.contains("exited") && why.contains("address already in use"), "{why}");
}
