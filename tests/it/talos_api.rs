//! Client ↔ simulator tests, in process, loopback only. Each test names the
//! behaviour.md / api.md section it reproduces. Every SimCluster is dropped
//! (and so stopped) at the end of its test.

use std::net::IpAddr;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime};

use proxtalos::talos::api::wait::{Probe, Target, conditions, poll_until};
use proxtalos::talos::api::{
    ApiError, ApplyMode, ApplyRequest, Mode, NodeClient, RebootMode, ResetRequest, Timeouts, UpgradeRequest,
};
use proxtalos::talos::client_config::ClientConfiguration;
use proxtalos::talos::config::{ConfigInput, MachineType, generate};
use proxtalos::talos::secrets::SecretsBundle;
use proxtalos::talos::sim::{NodeSpec, Phase, SimCluster, SimOptions};
use proxtalos::talos::version::VersionContract;
use rand_chacha::rand_core::SeedableRng;

use crate::support::wait::until;

// ---- helpers ----

pub(crate) fn addr() -> IpAddr {
    static NEXT: AtomicU32 = AtomicU32::new(1);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let base = 100 + (std::process::id() % 100) as u8;
    IpAddr::from([127, base, (n / 250) as u8 + 10, (n % 250) as u8 + 1])
}

pub(crate) fn bundle(which: usize) -> &'static SecretsBundle {
    static B: [OnceLock<SecretsBundle>; 2] = [OnceLock::new(), OnceLock::new()];
    B[which].get_or_init(|| {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(which as u64 + 7);
        SecretsBundle::generate(VersionContract::V1_13, &mut rng, SystemTime::now()).unwrap()
    })
}

fn creds_with(which: usize, roles: &[&str]) -> ClientConfiguration {
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(99);
    ClientConfiguration::generate(
        &bundle(which).certs.os,
        roles,
        Duration::from_secs(3600),
        &mut rng,
        SystemTime::now(),
    )
    .unwrap()
}

fn admin() -> ClientConfiguration {
    creds_with(0, &["os:admin"])
}

pub(crate) fn config_with(version: &str, cp: bool, disk: bool, patches: &[&str], which: usize) -> Vec<u8> {
    config_at("https://127.0.0.1:6443", version, cp, disk, patches, which)
}

/// [`config_with`] for the cluster endpoint `endpoint`.
pub(crate) fn config_at(
    endpoint: &str,
    version: &str,
    cp: bool,
    disk: bool,
    patches: &[&str],
    which: usize,
) -> Vec<u8> {
    let contract: VersionContract = version.parse().unwrap();
    let t = if cp { MachineType::Controlplane } else { MachineType::Worker };
    let mut input = ConfigInput::new("sim", endpoint, t, contract, "1.33.1");
    if disk {
        input.install_disk = Some("/dev/sda".to_string());
    }
    input.config_patches = patches.iter().map(|p| p.to_string()).collect();
    generate(&input, bundle(which)).unwrap().to_yaml().into_bytes()
}

pub(crate) fn config(version: &str, cp: bool) -> Vec<u8> {
    config_with(version, cp, true, &[], 0)
}

fn t() -> Timeouts {
    Timeouts { connect: Duration::from_secs(2), call: Duration::from_secs(5) }
}

fn apply(config: Vec<u8>, mode: ApplyMode) -> ApplyRequest {
    ApplyRequest { config, mode, dry_run: false, try_timeout: None }
}

async fn start(version: &str, specs: Vec<NodeSpec>) -> SimCluster {
    SimCluster::start(SimOptions::fast(version), specs).await.unwrap()
}

pub(crate) async fn metal(version: &str, n: usize) -> SimCluster {
    start(version, (0..n).map(|_| NodeSpec::metal(addr())).collect()).await
}

async fn maint(c: &SimCluster, i: usize) -> NodeClient {
    NodeClient::maintenance(&c.endpoint(i), None, t()).await.unwrap()
}

pub(crate) fn target(c: &SimCluster, i: usize) -> Target {
    Target { node: c.endpoint(i), endpoint: None, mode: Mode::Normal(admin()), timeouts: t() }
}

pub(crate) fn until_soon() -> proxtalos::talos::api::wait::Until {
    proxtalos::talos::api::wait::Until::after(Duration::from_secs(30), &proxtalos::wait::Stop::never())
}

pub(crate) const TICK: Duration = Duration::from_millis(20);

/// Applies a config in maintenance mode and waits until the node answers
/// with mTLS (through install and reboot on metal).
pub(crate) async fn configure(c: &SimCluster, i: usize, cfg: Vec<u8>) -> NodeClient {
    maint(c, i).await.apply_configuration(&apply(cfg, ApplyMode::Auto)).await.unwrap();
    let tg = target(c, i);
    poll_until(&tg.node, conditions::SECURE_API, &until_soon(), TICK, || conditions::secure_api_up(&tg)).await.unwrap();
    tg.connect().await.unwrap()
}

pub(crate) async fn bootstrap(c: &SimCluster, i: usize) {
    let tg = target(c, i);
    poll_until(&tg.node, conditions::BOOTSTRAPPED, &until_soon(), TICK, || conditions::bootstrapped(&tg))
        .await
        .unwrap();
}

// ---- maintenance mode ----

#[tokio::test]
async fn maintenance_v113_reader_role_answers_reader_calls_and_denies_admin_calls() {
    // behaviour.md §2 / api.md §4 (v1.13+): reader RPCs work, admin RPCs PermissionDenied.
    let c = metal("v1.13.9", 1).await;
    let m = maint(&c, 0).await;
    assert_eq!(m.version_tag().await.unwrap(), "v1.13.9");
    assert_eq!(m.disks().await.unwrap()[0].name, "sda");
    assert!(m.services().await.unwrap().iter().any(|s| s.id == "apid"));
    for e in [m.bootstrap().await.unwrap_err(), m.kubeconfig().await.unwrap_err(), m.boot_id().await.unwrap_err()] {
        assert!(matches!(e, ApiError::PermissionDenied { ref message, .. } if message == "not authorized"), "{e}");
    }
    assert!(matches!(m.reset(&ResetRequest::to_maintenance(false)).await, Err(ApiError::PermissionDenied { .. })));
    assert!(matches!(m.reboot(RebootMode::Default).await, Err(ApiError::PermissionDenied { .. })));
    assert!(matches!(
        m.upgrade(&UpgradeRequest { image: "x:v1.14.0".into(), ..Default::default() }).await,
        Err(ApiError::PermissionDenied { .. })
    ));
}

#[tokio::test]
async fn maintenance_v112_separate_server_answers_unimplemented() {
    // behaviour.md §2 / api.md §4 (≤ v1.12): Version/Reset/Upgrade "API is not implemented
    // in maintenance mode"; other methods "method X not implemented"; Disks works.
    let c = metal("v1.12.0", 1).await;
    let m = maint(&c, 0).await;
    assert!(!m.disks().await.unwrap().is_empty());
    let e = m.version().await.unwrap_err();
    assert!(
        matches!(&e, ApiError::Unimplemented { message, .. } if message == "API is not implemented in maintenance mode")
    );
    let e = m.bootstrap().await.unwrap_err();
    assert!(matches!(&e, ApiError::Unimplemented { message, .. } if message == "method Bootstrap not implemented"));
    assert!(e.to_string().starts_with("Bootstrap on node 127."), "{e}");
    assert!(matches!(m.services().await, Err(ApiError::Unimplemented { .. })));
    let e = m.boot_id().await.unwrap_err();
    assert!(matches!(&e, ApiError::Unimplemented { message, .. } if message == "method Read not implemented"), "{e}");
    assert!(matches!(m.reset(&ResetRequest::default()).await, Err(ApiError::Unimplemented { .. })));
}

#[tokio::test]
async fn maintenance_v112_apply_accepts_try_reboot_auto_only_and_reports_mode_zero() {
    // api.md §4 (≤ v1.12): NO_REBOOT/STAGED Unimplemented; reply mode unset (REBOOT);
    // dry run says the node has no config yet.
    let c = metal("v1.12.0", 1).await;
    let m = maint(&c, 0).await;
    for mode in [ApplyMode::NoReboot, ApplyMode::Staged] {
        let e = m.apply_configuration(&apply(config("v1.12", true), mode)).await.unwrap_err();
        assert!(
            matches!(&e, ApiError::Unimplemented { message, .. } if message.contains("not supported in maintenance mode")),
            "{e}"
        );
    }
    let dry = ApplyRequest { dry_run: true, ..apply(config("v1.12", true), ApplyMode::Auto) };
    let out = m.apply_configuration(&dry).await.unwrap();
    assert_eq!(out.mode, ApplyMode::Reboot);
    assert!(out.details.contains("does not have a config yet"));
    assert_eq!(c.phase(0).unwrap(), Phase::Maintenance);
    let out = m.apply_configuration(&apply(config("v1.12", true), ApplyMode::Try)).await.unwrap();
    assert_eq!(out.mode, ApplyMode::Reboot);
}

#[tokio::test]
async fn maintenance_v113_apply_accepts_every_mode_reboot_becomes_no_reboot() {
    // api.md §4 (v1.13+): all modes accepted, REBOOT converted to NO_REBOOT.
    let c = metal("v1.13.9", 1).await;
    let out = maint(&c, 0).await.apply_configuration(&apply(config("v1.13", true), ApplyMode::Reboot)).await.unwrap();
    assert_eq!(out.mode, ApplyMode::NoReboot);
}

#[tokio::test]
async fn maintenance_v113_partial_config_keeps_node_in_maintenance() {
    // api.md §4 (v1.13+): a partial config (no v1alpha1 document) is accepted, node stays.
    let c = metal("v1.13.9", 1).await;
    let partial = b"apiVersion: v1alpha1\nkind: HostnameConfig\nauto: stable\n".to_vec();
    maint(&c, 0).await.apply_configuration(&apply(partial.clone(), ApplyMode::Auto)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(c.phase(0).unwrap(), Phase::Maintenance);
    // ≤ v1.12 has no partial configs.
    let old = metal("v1.12.0", 1).await;
    let e = maint(&old, 0).await.apply_configuration(&apply(partial, ApplyMode::Auto)).await.unwrap_err();
    assert!(matches!(e, ApiError::Status { code: tonic::Code::InvalidArgument, .. }), "{e}");
}

#[tokio::test]
async fn maintenance_certificate_fingerprint_pin() {
    // behaviour.md §2: per-boot self-signed certificate; the console fingerprint
    // (base64 SHA-256 of the SPKI) pins it.
    let c = metal("v1.13.9", 1).await;
    let fp = c.maintenance_fingerprint(0).unwrap();
    let ok = NodeClient::maintenance(&c.endpoint(0), Some(&fp), t()).await.unwrap();
    ok.disks().await.unwrap();
    let e = NodeClient::maintenance(&c.endpoint(0), Some("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="), t())
        .await
        .unwrap_err();
    assert!(matches!(e, ApiError::ServerCertUntrusted { .. }), "{e}");
    assert!(format!("{e:?}").contains("FingerprintMismatch"), "{e:?}");
}

#[tokio::test]
async fn maintenance_node_header_is_ignored() {
    // behaviour.md §2: node/nodes headers are ignored in maintenance mode: a
    // maintenance client is always dialled directly, whatever endpoint is given.
    let c = metal("v1.13.9", 1).await;
    let m = NodeClient::connect(&c.endpoint(0), Some("127.0.0.1:1"), &Mode::Maintenance { fingerprint: None }, t())
        .await
        .unwrap();
    m.disks().await.unwrap();
}

// ---- install, reboot, normal mode ----

#[tokio::test]
async fn metal_apply_installs_reboots_and_comes_back_with_mtls() {
    // behaviour.md §4: complete config on metal ⇒ maintenance listener stops, install,
    // reboot, normal mode; §3: the server certificate chains to the applied OS CA
    // (Ed25519) and the client certificate must too. The wait rides out the
    // refused connections while the node installs and reboots.
    let c = metal("v1.13.9", 1).await;
    let boot = c.boot_id(0).unwrap();
    let n = configure(&c, 0, config("v1.13", true)).await;
    assert!(c.boot_id(0).unwrap() > boot);
    let v = n.version().await.unwrap();
    assert_eq!(v.version.unwrap().tag, "v1.13.9");
    assert!(v.features.unwrap().rbac);
    assert_eq!(v.platform.unwrap().name, "metal");
    assert!(n.disks().await.unwrap()[0].system_disk);
    // The maintenance client no longer gets in: the node wants a client certificate.
    let e = async { NodeClient::maintenance(&c.endpoint(0), None, t()).await?.disks().await }.await.unwrap_err();
    assert!(
        matches!(e, ApiError::ClientCertRejected { .. } | ApiError::ServerCertUntrusted { .. } | ApiError::Tls { .. }),
        "{e}"
    );
}

#[tokio::test]
async fn metal_apply_without_install_disk_is_rejected() {
    // behaviour.md §4: on metal the config must carry install instructions.
    let c = metal("v1.13.9", 1).await;
    let e = maint(&c, 0)
        .await
        .apply_configuration(&apply(config_with("v1.13", true, false, &[], 0), ApplyMode::Auto))
        .await;
    assert!(
        matches!(e, Err(ApiError::Status { code: tonic::Code::InvalidArgument, ref message, .. }) if message.contains("install"))
    );
}

#[tokio::test]
async fn nocloud_apply_goes_to_normal_mode_without_reboot() {
    // behaviour.md §4: a disk image already has META: no install, no reboot.
    let c = start("v1.13.9", vec![NodeSpec::nocloud(addr())]).await;
    let boot = c.boot_id(0).unwrap();
    configure(&c, 0, config_with("v1.13", true, false, &[], 0)).await.version().await.unwrap();
    assert_eq!(c.boot_id(0).unwrap(), boot);
}

#[tokio::test]
async fn invalid_configs_are_rejected() {
    // api.md §3.1: parse/validation errors are InvalidArgument; the simulator's
    // cluster identity guard rejects a second cluster's CA.
    let c = metal("v1.13.9", 2).await;
    for bad in [b"not: [yaml".to_vec(), b"version: v1alpha1\nmachine: {type: bogus, nope: 1}\n".to_vec()] {
        let e = maint(&c, 0).await.apply_configuration(&apply(bad, ApplyMode::Auto)).await.unwrap_err();
        assert_eq!(e.code(), Some(tonic::Code::InvalidArgument), "{e}");
    }
    configure(&c, 0, config("v1.13", true)).await;
    let e = maint(&c, 1)
        .await
        .apply_configuration(&apply(config_with("v1.13", false, true, &[], 1), ApplyMode::Auto))
        .await
        .unwrap_err();
    assert!(matches!(&e, ApiError::Status { message, .. } if message.contains("machine.ca differs")), "{e}");
}

// ---- TLS trust and roles ----

#[tokio::test]
async fn wrong_ca_and_wrong_client_certificate_are_told_apart() {
    // behaviour.md §3: mTLS against the OS CA. Trusting another CA fails on our
    // side; a client certificate from another CA is rejected by the node.
    let c = metal("v1.13.9", 1).await;
    configure(&c, 0, config("v1.13", true)).await;
    let other = creds_with(1, &["os:admin"]);
    let e = NodeClient::normal(&c.endpoint(0), None, &other, t()).await.unwrap_err();
    assert!(matches!(e, ApiError::ServerCertUntrusted { .. }), "{e}");
    let mixed = ClientConfiguration { ca: admin().ca, ..other };
    let e = async { NodeClient::normal(&c.endpoint(0), None, &mixed, t()).await?.version().await }.await.unwrap_err();
    assert!(matches!(e, ApiError::ClientCertRejected { .. }), "{e:?}");
    assert!(e.to_string().contains("on node 127."));
}

#[tokio::test]
async fn roles_come_from_the_certificate_organization() {
    // behaviour.md §3: roles = Organization values; unknown ones are ignored;
    // missing role ⇒ PermissionDenied "not authorized".
    let c = metal("v1.13.9", 1).await;
    configure(&c, 0, config("v1.13", true)).await;
    let reader = NodeClient::normal(&c.endpoint(0), None, &creds_with(0, &["os:reader"]), t()).await.unwrap();
    reader.version().await.unwrap();
    reader.services().await.unwrap();
    assert!(matches!(reader.bootstrap().await, Err(ApiError::PermissionDenied { .. })));
    assert!(matches!(reader.reboot(RebootMode::Default).await, Err(ApiError::PermissionDenied { .. })));
    let operator = NodeClient::normal(&c.endpoint(0), None, &creds_with(0, &["os:operator"]), t()).await.unwrap();
    assert!(matches!(operator.kubeconfig().await, Err(ApiError::PermissionDenied { .. })));
    let nobody = NodeClient::normal(&c.endpoint(0), None, &creds_with(0, &["os:nonsense"]), t()).await.unwrap();
    assert!(matches!(nobody.version().await, Err(ApiError::PermissionDenied { .. })));
}

#[tokio::test]
async fn node_header_proxies_to_configured_nodes_but_not_to_maintenance_ones() {
    // behaviour.md §3 node routing; provider-anchor §5 item 10: a maintenance
    // node cannot be reached through another node's apid.
    let c = metal("v1.13.9", 3).await;
    configure(&c, 0, config("v1.13", true)).await;
    configure(&c, 1, config("v1.13", false)).await;
    let host = |i: usize| c.endpoint(i).rsplit_once(':').unwrap().0.to_string();
    let via = NodeClient::normal(&host(1), Some(&c.endpoint(0)), &admin(), t()).await.unwrap();
    let services = via.services().await.unwrap();
    assert!(!services.iter().any(|s| s.id == "etcd"), "the worker answered");
    let to_maint = NodeClient::normal(&host(2), Some(&c.endpoint(0)), &admin(), t()).await.unwrap();
    let e = to_maint.version().await.unwrap_err();
    assert!(matches!(&e, ApiError::Unavailable { message, .. } if message.contains("unknown authority")), "{e}");
}

// ---- bootstrap, etcd, kubeconfig ----

#[tokio::test]
async fn bootstrap_too_early_then_once_then_already_exists() {
    // behaviour.md §5: FailedPrecondition before CRI is up, AlreadyExists after.
    let mut opts = SimOptions::fast("v1.13.9");
    opts.delays.services = Duration::from_secs(3000); // 3 s scaled: still starting at the first call
    let c = SimCluster::start(opts, vec![NodeSpec::metal(addr())]).await.unwrap();
    let n = configure(&c, 0, config("v1.13", true)).await;
    let e = n.bootstrap().await.unwrap_err();
    assert!(
        matches!(&e, ApiError::FailedPrecondition { message, .. } if message == "bootstrap is not available yet"),
        "{e}"
    );
    bootstrap(&c, 0).await;
    let e = n.bootstrap().await.unwrap_err();
    assert!(matches!(&e, ApiError::AlreadyExists { message, .. } if message == "etcd data directory is not empty"));
    assert_eq!(n.etcd_members(false).await.unwrap().len(), 1);
}

#[tokio::test]
async fn control_planes_join_etcd_and_bootstrap_on_a_joined_member_already_exists() {
    // behaviour.md §5: others join after bootstrap; AlreadyExists on joined members
    // too; etcd calls on a worker are Unimplemented (api.md §3.8).
    let c = metal("v1.13.9", 3).await;
    configure(&c, 0, config("v1.13", true)).await;
    configure(&c, 1, config("v1.13", true)).await;
    let w = configure(&c, 2, config("v1.13", false)).await;
    bootstrap(&c, 0).await;
    let tg = target(&c, 0);
    poll_until(&tg.node, conditions::ETCD_MEMBERS, &until_soon(), TICK, || conditions::etcd_members_at_least(&tg, 2))
        .await
        .unwrap();
    let cp2 = target(&c, 1).connect().await.unwrap();
    assert!(matches!(cp2.bootstrap().await, Err(ApiError::AlreadyExists { .. })));
    let tg2 = target(&c, 1);
    poll_until(&tg2.node, conditions::SERVICE_RUNNING, &until_soon(), TICK, || {
        conditions::service_running(&tg2, "etcd")
    })
    .await
    .unwrap();
    assert!(matches!(w.etcd_members(false).await, Err(ApiError::Unimplemented { .. })));
    // Worker bootstrap: v1.13+ Unimplemented (api.md §3.2).
    let e = w.bootstrap().await.unwrap_err();
    assert!(matches!(&e, ApiError::Unimplemented { message, .. } if message.contains("control plane")), "{e}");
    // Remove by unknown id: NotFound; leave: membership shrinks.
    assert_eq!(cp2.etcd_remove_member(42).await.unwrap_err().code(), Some(tonic::Code::NotFound));
    cp2.etcd_leave_cluster().await.unwrap();
    assert_eq!(c.etcd_members().len(), 1);
    let id = tg.connect().await.unwrap().etcd_members(true).await.unwrap()[0].id;
    assert_ne!(id, 0);
}

#[tokio::test]
async fn worker_bootstrap_is_failed_precondition_on_v112() {
    // api.md §3.2: v1.12 answers FailedPrecondition for a worker. The worker's
    // apid needs a control plane's trustd first (behaviour.md §1).
    let c = metal("v1.12.0", 2).await;
    configure(&c, 0, config("v1.12", true)).await;
    let w = configure(&c, 1, config("v1.12", false)).await;
    let tg = target(&c, 1);
    poll_until(&tg.node, conditions::SERVICE_RUNNING, &until_soon(), TICK, || {
        conditions::service_running(&tg, "kubelet")
    })
    .await
    .unwrap();
    let e = w.bootstrap().await.unwrap_err();
    assert!(
        matches!(&e, ApiError::FailedPrecondition { message, .. } if message.contains("control plane node")),
        "{e}"
    );
}

#[tokio::test]
async fn kubeconfig_is_a_gzip_tar_minted_from_the_cluster_ca() {
    // api.md §3.4 / behaviour.md §7: works without etcd; control planes only.
    let c = metal("v1.13.9", 2).await;
    let cp = configure(&c, 0, config("v1.13", true)).await;
    let kc = cp.kubeconfig().await.unwrap();
    assert!(kc.contains("current-context: admin@sim"));
    assert!(kc.contains("server: https://127.0.0.1:6443"));
    let k8s_ca = &bundle(0).certs.k8s.as_ref().unwrap().crt;
    use base64::Engine as _;
    assert!(kc.contains(&base64::engine::general_purpose::STANDARD.encode(k8s_ca)));
    let w = configure(&c, 1, config("v1.13", false)).await;
    assert!(matches!(w.kubeconfig().await, Err(ApiError::Unimplemented { .. })));
}

// ---- apply modes on configured nodes ----

const KERNEL_PATCH: &str = "machine:\n  kernel:\n    modules:\n      - name: br_netfilter\n";

#[tokio::test]
async fn v113_auto_reboots_only_when_needed_and_no_reboot_refuses_such_changes() {
    // api.md §3.1 (≤ v1.13): AUTO → NO_REBOOT if live-applicable, else REBOOT;
    // NO_REBOOT/TRY with a reboot-needing change → InvalidArgument; dry run diff.
    let c = metal("v1.13.9", 1).await;
    let n = configure(&c, 0, config("v1.13", true)).await;
    let same = n.apply_configuration(&apply(config("v1.13", true), ApplyMode::Auto)).await.unwrap();
    assert_eq!(same.mode, ApplyMode::NoReboot);
    let kernel = config_with("v1.13", true, true, &[KERNEL_PATCH], 0);
    let e = n.apply_configuration(&apply(kernel.clone(), ApplyMode::NoReboot)).await.unwrap_err();
    assert_eq!(e.code(), Some(tonic::Code::InvalidArgument));
    let dry =
        n.apply_configuration(&ApplyRequest { dry_run: true, ..apply(kernel.clone(), ApplyMode::Auto) }).await.unwrap();
    assert!(dry.details.starts_with("Dry run summary:"));
    assert!(dry.details.contains("br_netfilter"));
    let boot = c.boot_id(0).unwrap();
    assert_eq!(n.apply_configuration(&apply(kernel, ApplyMode::Auto)).await.unwrap().mode, ApplyMode::Reboot);
    let tg = target(&c, 0);
    poll_until(&tg.node, "reboot", &until_soon(), TICK, || async {
        Ok(if c.boot_id(0).unwrap() > boot && c.phase(0).unwrap() == Phase::Running {
            conditions_ready()
        } else {
            not_yet()
        })
    })
    .await
    .unwrap();
    assert!(c.active_config(0).unwrap().unwrap().contains("br_netfilter"));
}

fn conditions_ready() -> proxtalos::talos::api::wait::Probe<()> {
    proxtalos::talos::api::wait::Probe::Ready(())
}
fn not_yet() -> proxtalos::talos::api::wait::Probe<()> {
    proxtalos::talos::api::wait::Probe::NotYet("waiting".into())
}

#[tokio::test]
async fn v114_reboot_mode_is_gone_and_auto_never_reboots() {
    // api.md §3.1 (v1.14): REBOOT → Unimplemented; AUTO always NO_REBOOT.
    let c = metal("v1.14.0", 1).await;
    let n = configure(&c, 0, config("v1.14", true)).await;
    let e = n.apply_configuration(&apply(config("v1.14", true), ApplyMode::Reboot)).await.unwrap_err();
    assert!(matches!(e, ApiError::Unimplemented { .. }), "{e}");
    let boot = c.boot_id(0).unwrap();
    let out = n.apply_configuration(&apply(config("v1.14", true), ApplyMode::Auto)).await.unwrap();
    assert_eq!(out.mode, ApplyMode::NoReboot);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(c.boot_id(0).unwrap(), boot);
}

#[tokio::test]
async fn boot_id_is_read_by_admins_and_changes_at_every_boot_only() {
    // api.md §3.13 / behaviour.md §6: Read (os:admin) of
    // /proc/sys/kernel/random/boot_id, which talosctl compares before and
    // after a reboot; `rebooted` rides out the reboot and sees the new id.
    let c = metal("v1.14.0", 1).await;
    let n = configure(&c, 0, config("v1.14", true)).await;
    let first = n.boot_id().await.unwrap();
    assert_eq!(first.len(), 36, "a UUID: {first}");
    assert_eq!(first.matches('-').count(), 4, "a UUID: {first}");
    assert_eq!(n.boot_id().await.unwrap(), first, "stable within a boot");
    let tg = target(&c, 0);
    assert!(matches!(conditions::rebooted(&tg, &first).await.unwrap(), Probe::NotYet(_)));
    n.reboot(RebootMode::Default).await.unwrap();
    poll_until(&tg.node, conditions::REBOOTED, &until_soon(), TICK, || conditions::rebooted(&tg, &first))
        .await
        .unwrap();
    let n = tg.connect().await.unwrap();
    let second = n.boot_id().await.unwrap();
    assert_ne!(second, first);
    // Only admins read files; other paths fail as Go's os.Stat does.
    let reader = NodeClient::normal(&c.endpoint(0), None, &creds_with(0, &["os:reader"]), t()).await.unwrap();
    assert!(matches!(reader.boot_id().await, Err(ApiError::PermissionDenied { .. })));
    let e = n.read("/etc/hostname").await.unwrap_err();
    assert_eq!(e.code(), Some(tonic::Code::Unknown), "{e}");
    assert!(e.to_string().contains("no such file or directory"), "{e}");
}

#[tokio::test]
async fn a_node_switched_off_while_stopping_for_a_reboot_stays_off() {
    // behaviour.md §6: services stop before a requested reboot; a power cut
    // in that time (the VM stopped) wins, the node does not boot by itself.
    let mut opts = SimOptions::fast("v1.14.0");
    opts.delays.shutdown = Duration::from_secs(1000); // 1 s scaled
    let c = SimCluster::start(opts, vec![NodeSpec::metal(addr())]).await.unwrap();
    let n = configure(&c, 0, config("v1.14", true)).await;
    n.reboot(RebootMode::Default).await.unwrap();
    c.power_off(0).unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await; // past the stop and the reboot
    assert_eq!(c.phase(0).unwrap(), Phase::Off);
}

#[tokio::test]
async fn staged_applies_at_next_reboot_and_try_rolls_back() {
    // api.md §3.1: STAGED is written for the next boot; TRY rolls back after its timeout.
    let c = metal("v1.13.9", 1).await;
    let n = configure(&c, 0, config("v1.13", true)).await;
    let patched = config_with("v1.13", true, true, &["machine:\n  certSANs:\n    - foo.example.com\n"], 0);
    let out = n.apply_configuration(&apply(patched.clone(), ApplyMode::Staged)).await.unwrap();
    assert_eq!(out.mode, ApplyMode::Staged);
    assert!(!c.active_config(0).unwrap().unwrap().contains("foo.example.com"));
    // 2000 s scaled = 2 s: active when the call returns, rolled back later.
    let try_req =
        ApplyRequest { try_timeout: Some(Duration::from_secs(2000)), ..apply(patched.clone(), ApplyMode::Try) };
    n.apply_configuration(&try_req).await.unwrap();
    assert!(c.active_config(0).unwrap().unwrap().contains("foo.example.com"));
    until("the TRY configuration is rolled back", Duration::from_secs(30), || async {
        !c.active_config(0).unwrap().unwrap().contains("foo.example.com")
    })
    .await;
    // Reboot: the staged config becomes active, boot id changes (behaviour.md §6).
    let boot = c.boot_id(0).unwrap();
    let first = n.boot_id().await.unwrap();
    n.reboot(RebootMode::Default).await.unwrap();
    let tg = target(&c, 0);
    poll_until(&tg.node, conditions::REBOOTED, &until_soon(), TICK, || conditions::rebooted(&tg, &first))
        .await
        .unwrap();
    assert!(c.boot_id(0).unwrap() > boot);
    assert!(c.active_config(0).unwrap().unwrap().contains("foo.example.com"));
}

// ---- reset, upgrade ----

#[tokio::test]
async fn reset_state_and_ephemeral_brings_the_node_back_to_maintenance() {
    // behaviour.md §6: [STATE, EPHEMERAL] + reboot ⇒ maintenance; graceful on the
    // last etcd member fails; api.md §3.5 validation errors are Unknown.
    let c = metal("v1.13.9", 1).await;
    let n = configure(&c, 0, config("v1.13", true)).await;
    bootstrap(&c, 0).await;
    let e = n.reset(&ResetRequest::to_maintenance(true)).await.unwrap_err();
    assert_eq!(e.code(), Some(tonic::Code::FailedPrecondition), "{e}");
    let bad = ResetRequest { system_partitions: vec!["BOGUS".into()], ..ResetRequest::to_maintenance(false) };
    assert_eq!(n.reset(&bad).await.unwrap_err().code(), Some(tonic::Code::Unknown));
    n.reset(&ResetRequest::to_maintenance(false)).await.unwrap();
    let tg = Target { mode: Mode::Maintenance { fingerprint: None }, ..target(&c, 0) };
    poll_until(&tg.node, conditions::MAINTENANCE_API, &until_soon(), TICK, || conditions::api_answers(&tg))
        .await
        .unwrap();
    assert_eq!(c.phase(0).unwrap(), Phase::Maintenance);
    assert!(c.etcd_members().is_empty());
}

#[tokio::test]
async fn reset_without_reboot_powers_off() {
    // behaviour.md §6: reboot=false powers the node off.
    let c = metal("v1.13.9", 1).await;
    let n = configure(&c, 0, config("v1.13", true)).await;
    n.reset(&ResetRequest { reboot: false, ..ResetRequest::to_maintenance(false) }).await.unwrap();
    until("the reset node is off", Duration::from_secs(10), || async { c.phase(0).unwrap() == Phase::Off }).await;
    let e = NodeClient::maintenance(&c.endpoint(0), None, t()).await.unwrap_err();
    assert!(matches!(e, ApiError::Connect { .. }) && e.is_transient(), "{e}");
    c.power_on(0).unwrap();
    let tg = Target { mode: Mode::Maintenance { fingerprint: None }, ..target(&c, 0) };
    poll_until(&tg.node, conditions::MAINTENANCE_API, &until_soon(), TICK, || conditions::api_answers(&tg))
        .await
        .unwrap();
}

#[tokio::test]
async fn upgrade_changes_the_version_after_a_reboot() {
    // behaviour.md §6: Upgrade installs and reboots; the new tag shows afterwards.
    let c = metal("v1.13.9", 1).await;
    let n = configure(&c, 0, config("v1.13", true)).await;
    let bad = n.upgrade(&UpgradeRequest { image: "nonsense".into(), ..Default::default() }).await.unwrap_err();
    assert_eq!(bad.code(), Some(tonic::Code::InvalidArgument));
    let ack = n
        // `force`: a control plane without etcd skips the etcd checks (etcd.go ValidateForUpgrade).
        .upgrade(&UpgradeRequest {
            image: "ghcr.io/siderolabs/installer:v1.14.0".into(),
            force: true,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(!ack.is_empty());
    let tg = target(&c, 0);
    poll_until(&tg.node, conditions::VERSION, &until_soon(), TICK, || conditions::version_is(&tg, "v1.14.0"))
        .await
        .unwrap();
    assert_eq!(c.version(0).unwrap(), "v1.14.0");
}

// ---- faults: refused, timeouts, waits ----

#[tokio::test]
async fn refused_connection_is_a_transient_connect_error() {
    // api.md §5: a down node is refused/unreachable; the client says so, naming node and call.
    let e = NodeClient::maintenance("127.0.0.1:1", None, t()).await.unwrap_err();
    assert!(matches!(e, ApiError::Connect { .. }) && e.is_transient(), "{e}");
    assert!(e.to_string().starts_with("connect on node 127.0.0.1:1"));
}

#[tokio::test]
async fn silent_endpoint_hits_the_deadline() {
    // Deadlines everywhere: a listener that never speaks TLS.
    let l = tokio::net::TcpListener::bind((addr(), 0)).await.unwrap();
    let at = l.local_addr().unwrap().to_string();
    let _hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = l.accept().await {
            held.push(s);
        }
    });
    let quick = Timeouts { connect: Duration::from_millis(200), call: Duration::from_millis(200) };
    let e = NodeClient::maintenance(&at, None, quick).await.unwrap_err();
    assert!(matches!(e, ApiError::Deadline { .. }), "{e}");
    _hold.abort();
}

#[tokio::test]
async fn wait_times_out_naming_the_condition_when_the_node_never_leaves_maintenance() {
    // A node that never leaves maintenance: the secure-API wait ends at the deadline.
    let c = metal("v1.13.9", 1).await;
    let tg = target(&c, 0);
    let never = proxtalos::wait::Stop::never();
    let deadline = proxtalos::talos::api::wait::Until::after(Duration::from_secs(3), &never);
    let e = poll_until(&tg.node, conditions::SECURE_API, &deadline, TICK, || conditions::secure_api_up(&tg))
        .await
        .unwrap_err();
    // Its self-signed certificate is "not yet" for this condition (the node may
    // be about to install); the timeout reports what was seen.
    assert!(matches!(&e, ApiError::WaitTimedOut { last, .. } if last.contains("not trusted")), "{e}");
    let down = Target { node: "127.0.0.1:1".into(), ..tg };
    let soon = proxtalos::talos::api::wait::Until::after(Duration::from_millis(200), &never);
    let e = poll_until(&down.node, conditions::SECURE_API, &soon, TICK, || conditions::secure_api_up(&down))
        .await
        .unwrap_err();
    assert!(matches!(&e, ApiError::WaitTimedOut { condition, .. } if *condition == conditions::SECURE_API), "{e}");
    assert!(e.to_string().contains("waiting for the node to answer with mutual TLS"));
}

#[tokio::test]
async fn call_during_reboot_fails_transiently_and_wait_rides_it_out() {
    // behaviour.md §6 / api.md §5: a node rebooting mid-operation drops the
    // connection; Unavailable/refused are waited out.
    let mut opts = SimOptions::fast("v1.13.9");
    opts.delays.reboot = Duration::from_secs(2000); // 2 s scaled: down well past the 50 ms below
    let c = SimCluster::start(opts, vec![NodeSpec::metal(addr())]).await.unwrap();
    let n = configure(&c, 0, config("v1.13", true)).await;
    c.reboot(0).unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let e = n.version().await.unwrap_err();
    assert!(e.is_transient(), "{e}");
    let tg = target(&c, 0);
    poll_until(&tg.node, conditions::SECURE_API, &until_soon(), TICK, || conditions::secure_api_up(&tg)).await.unwrap();
}

#[tokio::test]
async fn cosi_get_reads_back_the_active_machine_config() {
    // api.md §3.11: MachineConfigs.config.talos.dev config/v1alpha1 holds the
    // config as submitted; sensitive, so os:admin only (readers and
    // maintenance peers get PermissionDenied).
    let c = metal("v1.13.9", 1).await;
    let m = maint(&c, 0).await;
    assert!(matches!(m.machine_config().await, Err(ApiError::PermissionDenied { .. })));
    let cfg = config("v1.13", true);
    let n = configure(&c, 0, cfg.clone()).await;
    assert_eq!(n.machine_config().await.unwrap().unwrap().into_bytes(), cfg);
    assert_eq!(c.active_config(0).unwrap().unwrap().into_bytes(), cfg);
    let reader = NodeClient::normal(&c.endpoint(0), None, &creds_with(0, &["os:reader"]), t()).await.unwrap();
    assert!(matches!(reader.machine_config().await, Err(ApiError::PermissionDenied { .. })));
}

/// The host name comes from the configuration, as on Talos: `HostnameConfig`
/// names the etcd member (etcd's `--name` is the node's host name) and the
/// API certificate (subject `CN=<host name>`, no Organization, the name
/// among the DNS SANs: siderolabs/talos
/// internal/app/machined/pkg/controllers/secrets/api.go); without it, the
/// node's own name.
#[tokio::test]
async fn the_configured_host_name_names_the_etcd_member_and_the_api_certificate() {
    let c = metal("v1.13.9", 2).await;
    let named = "apiVersion: v1alpha1\nkind: HostnameConfig\nauto: off\nhostname: cp-1\n";
    let n = configure(&c, 0, config_with("v1.13", true, true, &[named], 0)).await;
    bootstrap(&c, 0).await;
    let members = n.etcd_members(false).await.unwrap();
    assert_eq!(members.iter().map(|m| m.hostname.as_str()).collect::<Vec<_>>(), ["cp-1"]);
    // The second node sets none: it keeps its own name.
    configure(&c, 1, config("v1.13", true)).await;
    let tg = target(&c, 0);
    poll_until(&tg.node, conditions::ETCD_MEMBERS, &until_soon(), TICK, || conditions::etcd_members_at_least(&tg, 2))
        .await
        .unwrap();
    let mut names: Vec<String> = n.etcd_members(false).await.unwrap().into_iter().map(|m| m.hostname).collect();
    names.sort();
    assert_eq!(names[0], "cp-1");
    assert!(names[1].starts_with("talos-"), "{names:?}");
}
