//! Real etcd 3.5 on loopback (issue 13 §2), driven through the lab's etcd
//! client: membership only through MemberAdd/MemberRemove (a stopped member
//! stays and still counts for quorum), learners promoted after they catch
//! up, leadership moved, and a snapshot that etcd's own `etcdutl snapshot
//! status` reads and from which a restored member starts with the data.
//! Needs scripts/install-etcd.sh (scripts/test.sh runs it); without etcd a
//! test fails unless PROXTALOS_SKIP_ETCD=1.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use proxtalos::talos::sim::etcd_member::{EtcdClient, EtcdMember, MemberSpec, bin_dir, url};

use crate::support::wait::until;

const START: Duration = Duration::from_secs(20);

fn ip() -> IpAddr {
    static NEXT: AtomicU32 = AtomicU32::new(1);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    IpAddr::from([127, 77, (std::process::id() % 200) as u8 + 20, n as u8 + 10])
}

/// The etcd binaries, or None when PROXTALOS_SKIP_ETCD=1 says to leave
/// these tests out; missing etcd otherwise fails the test.
pub(crate) fn etcd() -> Option<PathBuf> {
    match bin_dir(Path::new(env!("CARGO_MANIFEST_DIR"))) {
        Ok(d) => Some(d),
        Err(_) if std::env::var("PROXTALOS_SKIP_ETCD").is_ok_and(|v| v == "1") => {
            eprintln!("real etcd left out (PROXTALOS_SKIP_ETCD=1): skipped");
            None
        }
        Err(e) => panic!("{e}"),
    }
}

/// The member names etcd's own `etcdctl` lists at `ip`, sorted.
pub(crate) fn etcdctl_member_names(bin: &Path, ip: &str) -> Vec<String> {
    let out = std::process::Command::new(bin.join("etcdctl"))
        .args(["--endpoints", &format!("http://{ip}:2379"), "member", "list", "-w", "json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "etcdctl: {}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut names: Vec<String> =
        v["members"].as_array().unwrap().iter().map(|m| m["name"].as_str().unwrap_or("").to_string()).collect();
    names.sort();
    names
}

/// `etcdutl snapshot status` of `file`, as JSON.
pub(crate) fn etcdutl_status(bin: &Path, file: &Path) -> serde_json::Value {
    let out = std::process::Command::new(bin.join("etcdutl"))
        .args(["snapshot", "status", "-w", "json"])
        .arg(file)
        .output()
        .unwrap();
    assert!(out.status.success(), "etcdutl: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn spec(dir: &Path, name: &str, ip: IpAddr, cluster: &[(String, String)], new: bool) -> MemberSpec {
    MemberSpec {
        name: name.to_string(),
        ip,
        data_dir: dir.join(name),
        initial_cluster: cluster.to_vec(),
        new_cluster: new,
    }
}

fn peer(name: &str, ip: IpAddr) -> (String, String) {
    (name.to_string(), url(ip, 2380))
}

/// A learner joins as Talos joins a control plane: MemberAdd as learner,
/// start with the existing cluster, promote once it has caught up.
async fn join(
    bin: &Path,
    dir: &Path,
    leader: &EtcdClient,
    name: &str,
    ip: IpAddr,
    voting: &[(String, String)],
) -> EtcdMember {
    let added = leader.member_add(&url(ip, 2380), true).await.unwrap();
    assert!(added.is_learner && added.name.is_empty(), "not started yet: no name");
    let mut cluster = voting.to_vec();
    cluster.push(peer(name, ip));
    let m = EtcdMember::start(bin, &spec(dir, name, ip, &cluster, false), START).await.unwrap();
    until("learner promoted", Duration::from_secs(20), || async { leader.member_promote(added.id).await.is_ok() })
        .await;
    m
}

#[tokio::test]
async fn membership_changes_only_by_the_api_and_a_stopped_member_still_counts() {
    let Some(bin) = etcd() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (ip1, ip2) = (ip(), ip());
    let m1 = EtcdMember::start(&bin, &spec(dir.path(), "cp-1", ip1, &[peer("cp-1", ip1)], true), START).await.unwrap();
    let c1 = m1.client().unwrap();
    c1.put("/k/a", "1").await.unwrap();
    let mut m2 = join(&bin, dir.path(), &c1, "cp-2", ip2, &[peer("cp-1", ip1)]).await;

    let members = c1.member_list().await.unwrap();
    let names: Vec<_> = members.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names.len(), 2);
    assert!(names.contains(&"cp-1") && names.contains(&"cp-2"), "{names:?}");
    assert!(members.iter().all(|m| !m.is_learner));

    // Leadership moves to the other voting member.
    let leader = c1.status().await.unwrap().leader;
    let s1 = c1.status().await.unwrap();
    let other = members.iter().find(|m| m.id != leader).unwrap().id;
    let leader_client = if leader == s1.header.as_ref().unwrap().member_id { c1.clone() } else { m2.client().unwrap() };
    leader_client.move_leader(other).await.unwrap();
    until("leader moved", Duration::from_secs(10), || async { c1.status().await.is_ok_and(|s| s.leader == other) })
        .await;

    // Stopping a member does not remove it, and with 1 of 2 up there is no
    // quorum: a write cannot commit (removing the wrong member of a
    // two-member cluster breaks it).
    m2.stop().await;
    assert_eq!(c1.member_list().await.map(|m| m.len()).unwrap_or(2), 2, "still listed (or no quorum to list)");
    let e = tokio::time::timeout(Duration::from_secs(5), c1.put("/k/b", "2")).await;
    assert!(!matches!(e, Ok(Ok(()))), "a write committed without quorum");
    drop(m1);
}

#[tokio::test]
async fn a_snapshot_is_read_by_etcdutl_and_restores_a_working_member() {
    let Some(bin) = etcd() else { return };
    let dir = tempfile::tempdir().unwrap();
    let ip1 = ip();
    let m1 = EtcdMember::start(&bin, &spec(dir.path(), "cp-1", ip1, &[peer("cp-1", ip1)], true), START).await.unwrap();
    let c1 = m1.client().unwrap();
    for i in 0..5 {
        c1.put(&format!("/data/{i}"), "v").await.unwrap();
    }
    assert!(c1.alarms().await.unwrap().is_empty());
    let snap = c1.snapshot().await.unwrap();
    let file = dir.path().join("etcd.snapshot");
    std::fs::write(&file, &snap).unwrap();

    let status = etcdutl_status(&bin, &file);
    assert!(status["totalKey"].as_i64().unwrap() >= 5, "{status}");
    assert!(status["revision"].as_i64().unwrap() >= 6, "{status}");
    drop(m1);

    // Restore into a fresh data directory and start a member from it.
    let ip2 = ip();
    let restored = dir.path().join("restored");
    let out = std::process::Command::new(bin.join("etcdutl"))
        .args(["snapshot", "restore"])
        .arg(&file)
        .arg("--data-dir")
        .arg(&restored)
        .args(["--name", "restored", "--initial-cluster", &format!("restored={}", url(ip2, 2380))])
        .args(["--initial-advertise-peer-urls", &url(ip2, 2380)])
        .output()
        .unwrap();
    assert!(out.status.success(), "restore: {}", String::from_utf8_lossy(&out.stderr));
    let m = EtcdMember::start(
        &bin,
        &MemberSpec {
            name: "restored".into(),
            ip: ip2,
            data_dir: restored,
            initial_cluster: vec![peer("restored", ip2)],
            new_cluster: true,
        },
        START,
    )
    .await
    .unwrap();
    assert_eq!(m.client().unwrap().count_prefix("/data/").await.unwrap(), 5);
}
