//! The PVE client against fakepve 0.5.0 on loopback, TLS verified against
//! the fake's certificate. Gaps of the fake are named where they limit a
//! test (fakepve.md §6).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use crate::support::fakepve::FakePve;
use proxtalos::proxmox::{ApiErrorKind, Client, ClientOptions, Credentials, Error, RetryPolicy, Secret, qemu};
use serde_json::json;

fn client(pve: &FakePve, creds: Credentials) -> Client {
    let opts = ClientOptions {
        retry: RetryPolicy { attempts: 5, base: Duration::from_millis(50), max: Duration::from_millis(400) },
        ..ClientOptions::default()
    };
    pve.client(creds, opts)
}

fn token_client(pve: &FakePve) -> Client {
    client(pve, Credentials::ApiToken(Secret::new(pve.token("root@pam!tf", "6a3c2f1e-0000-4000-8000-000000000001"))))
}

fn password_client(pve: &FakePve) -> Client {
    client(pve, Credentials::Password { username: "root@pam".into(), password: Secret::new("secret") })
}

fn params(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

const T: Duration = Duration::from_secs(30);

#[tokio::test]
async fn lifecycle_with_token_and_digest() {
    let pve = FakePve::start();
    let c = token_client(&pve);
    let p = params(&[
        ("name", "talos-cp-1"),
        ("cores", "2"),
        ("memory", "2048"),
        ("scsihw", "virtio-scsi-single"),
        ("scsi0", "local-lvm:8,discard=on,ssd=1"),
        ("net0", "virtio,bridge=vmbr0"),
        ("tags", "talos;CP"),
    ]);
    let (vmid, upid) = c.create_with_vmid(None, |id| qemu::create("pve1", id, &p)).await.unwrap();
    assert_eq!(upid.worker_type, "qmcreate");
    assert!(upid.user.contains("!tf"), "token in UPID: {upid}");
    c.wait_task(&upid, T).await.unwrap();
    let cfg = c.vm_config("pve1", vmid).await.unwrap();
    assert_eq!(cfg.get("tags"), Some("cp;talos"), "PVE lower-cases and sorts tags");
    let net: proxtalos::proxmox::propstring::NetDevice = cfg.get("net0").unwrap().parse().unwrap();
    assert!(net.mac.as_deref().unwrap().starts_with("BC:24:11"), "generated MAC {net:?}");

    // Update with the digest; a stale digest is refused.
    let digest = cfg.digest().unwrap().to_string();
    c.run_task(&qemu::update("pve1", vmid, &params(&[("cores", "4")]), &[], Some(&digest)), T).await.unwrap();
    let e =
        c.run_task(&qemu::update("pve1", vmid, &params(&[("cores", "3")]), &[], Some(&digest)), T).await.unwrap_err();
    assert!(e.api_kind() == Some(ApiErrorKind::DigestMismatch) || e.to_string().contains("checksum mismatch"), "{e}");

    c.vm_power("pve1", vmid, qemu::Power::Start, T).await.unwrap();
    assert_eq!(c.vm_status("pve1", vmid).await.unwrap().status, "running");
    c.vm_power("pve1", vmid, qemu::Power::Stop, T).await.unwrap();
    c.run_task(&qemu::destroy("pve1", vmid), T).await.unwrap();
    assert!(c.vm_config("pve1", vmid).await.unwrap_err().is_not_found());

    // The harness logs who made each request: our User-Agent and the token
    // id (never its secret).
    let log = pve.requests_by();
    assert!(!log.is_empty());
    let ua = proxtalos::proxmox::transport::user_agent();
    for [method, path, agent, token] in &log {
        assert_eq!((agent.as_str(), token.as_str()), (ua.as_str(), "root@pam!tf"), "{method} {path}");
    }
    pve.clear_requests();
    assert!(pve.requests_by().is_empty());
}

#[tokio::test]
async fn field_errors_and_task_errors() {
    let pve = FakePve::start();
    let c = token_client(&pve);
    let e = c.execute(&qemu::create("pve1", 300, &params(&[("cores", "abc")]))).await.unwrap_err();
    let fields = e.field_errors();
    assert!(fields.iter().any(|(k, v)| k == "cores" && v.contains("integer")), "{e}");

    // A missing ISO is a TASK ERROR; the error carries the log's last lines.
    let p = params(&[("ide2", "local:iso/missing.iso,media=cdrom")]);
    let upid = c.execute_task(&qemu::create("pve1", 301, &p)).await.unwrap();
    let e = c.wait_task(&upid, T).await.unwrap_err();
    let text = e.to_string();
    assert!(matches!(e, Error::Task { .. }), "{text}");
    assert!(text.contains("does not exist") && text.contains("TASK ERROR"), "{text}");
    assert!(c.vm_config("pve1", 301).await.unwrap_err().is_not_found(), "no VM left behind");
}

#[tokio::test]
async fn parallel_creates_from_two_clients_never_collide() {
    let pve = FakePve::start();
    // Two clients stand for two provider processes: their in-process
    // allocation does not see each other, so "already exists" must be met.
    let a = token_client(&pve);
    let b = password_client(&pve);
    let mut jobs = Vec::new();
    for i in 0..12 {
        let c = if i % 2 == 0 { a.clone() } else { b.clone() };
        jobs.push(tokio::spawn(async move {
            let p = params(&[("name", &format!("vm{i}")), ("memory", "512")]);
            let (id, upid) = c.create_with_vmid(None, |id| qemu::create("pve1", id, &p)).await?;
            c.wait_task(&upid, T).await?;
            Ok::<_, Error>(id)
        }));
    }
    let mut ids = Vec::new();
    for j in jobs {
        ids.push(j.await.unwrap().unwrap());
    }
    ids.sort();
    let n = ids.len();
    ids.dedup();
    assert_eq!(ids.len(), n, "VMID collision: {ids:?}");
    assert_eq!(pve.vmids().len(), 12);
}

#[tokio::test]
async fn faults_596_lock_timeout_and_expired_ticket() {
    let pve = FakePve::start();
    let c = password_client(&pve);
    // 596 on a GET is retried.
    pve.fail("GET", "/cluster/resources", Some(596), Some("Broken pipe"), None, 2);
    let r = c.execute(&proxtalos::proxmox::cluster::vm_resources()).await.unwrap();
    assert!(r.is_array());

    // A config lock held by another task: PUT/POST waits, then retries.
    let (vmid, upid) =
        c.create_with_vmid(None, |id| qemu::create("pve1", id, &params(&[("memory", "512")]))).await.unwrap();
    c.wait_task(&upid, T).await.unwrap();
    pve.cmd(json!({"op": "hold_config_lock", "vmid": vmid, "secs": 50}));
    // lock_wait is 10 PVE s = 0.1 s at time scale 0.01; the lock lasts 0.5 s,
    // well inside this client's retry budget (5 attempts, 50–400 ms apart,
    // about 1.2 s in all).
    let digest = c.vm_config("pve1", vmid).await.unwrap().digest().map(str::to_string);
    c.run_task(&qemu::update("pve1", vmid, &params(&[("cores", "2")]), &[], digest.as_deref()), T).await.unwrap();

    // An expired ticket: the client logs in again.
    pve.cmd(json!({"op": "ticket_ttl", "secs": 0.5}));
    c.vm_status("pve1", vmid).await.unwrap();
    tokio::time::sleep(Duration::from_millis(800)).await;
    c.vm_status("pve1", vmid).await.unwrap();
}

#[tokio::test]
async fn guest_agent_interfaces() {
    let pve = FakePve::start();
    let c = token_client(&pve);
    let (vmid, upid) =
        c.create_with_vmid(Some(400), |id| qemu::create("pve1", id, &params(&[("agent", "enabled=1")]))).await.unwrap();
    c.wait_task(&upid, T).await.unwrap();
    pve.cmd(json!({"op": "vm_set", "vmid": vmid, "attrs": {"agent": {"interfaces": [
        {"name": "eth0", "hardware-address": "bc:24:11:00:04:00",
         "ip-addresses": [{"ip-address": "10.5.0.40", "ip-address-type": "ipv4", "prefix": 24}]}]}}}));
    assert!(c.vm_agent_interfaces("pve1", vmid).await.is_err(), "stopped: no agent");
    c.vm_power("pve1", vmid, qemu::Power::Start, T).await.unwrap();
    let ifs = c.vm_agent_interfaces("pve1", vmid).await.unwrap();
    assert_eq!(ifs[0].addresses[0].ip, "10.5.0.40");
    // Pinned id taken: refused, never adopted.
    let e = c.create_with_vmid(Some(400), |id| qemu::create("pve1", id, &[])).await.unwrap_err();
    assert!(e.is_conflict(), "{e}");
}
