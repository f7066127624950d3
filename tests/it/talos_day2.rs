//! Day-2 Talos API, client ↔ simulator (issue 13 §1): A/B boot slots,
//! `Rollback`, the v1.13+ `ImageService.Pull` + `LifecycleService.Upgrade`
//! path and the legacy `Upgrade`, and the faults an upgrade meets. Each
//! test names the upstream source (siderolabs/talos) of what it checks;
//! the facts are collected in `src/talos/sim/README.md`.

use std::time::Duration;

use proxtalos::talos::api::wait::{conditions, poll_until};
use proxtalos::talos::api::{
    ApiError, ApplyMode, ApplyRequest, MachineStage, NodeClient, OsUpgrade, RebootMode, UpgradeRequest, lifecycle_api,
};
use proxtalos::talos::sim::{ImageFault, SimCluster};

use crate::support::wait::until;
use crate::talos_api::{TICK, bootstrap, config, configure, metal, target, until_soon};

const V1_14: &str = "ghcr.io/siderolabs/installer:v1.14.0";

async fn wait_version(c: &SimCluster, i: usize, tag: &str) {
    let tg = target(c, i);
    poll_until(&tg.node, conditions::VERSION, &until_soon(), TICK, || conditions::version_is(&tg, tag)).await.unwrap();
}

async fn wait_rebooted(c: &SimCluster, i: usize, before: &str) {
    let tg = target(c, i);
    poll_until(&tg.node, conditions::REBOOTED, &until_soon(), TICK, || conditions::rebooted(&tg, before))
        .await
        .unwrap();
}

async fn fresh(c: &SimCluster, i: usize) -> NodeClient {
    target(c, i).connect().await.unwrap()
}

#[tokio::test]
async fn rollback_boots_the_previous_image_and_needs_one() {
    // bootloader/grub/revert.go `Revert`: with one slot written it fails
    // with upstream's message; boot_label.go `SelectUpgradeTarget`: the
    // upgrade keeps the booted slot, so Rollback returns to it.
    let c = metal("v1.12.6", 1).await;
    let n = configure(&c, 0, config("v1.12", true)).await;
    let e = n.rollback().await.unwrap_err();
    assert!(e.to_string().contains("cannot rollback to \"\", label does not exist"), "{e}");
    assert_eq!(c.previous_version(0).unwrap(), None);

    // `force`: a control plane without etcd skips the etcd checks.
    let req =
        UpgradeRequest { image: "ghcr.io/siderolabs/installer:v1.13.9".into(), force: true, ..Default::default() };
    n.upgrade(&req).await.unwrap();
    wait_version(&c, 0, "v1.13.9").await;
    assert_eq!(c.previous_version(0).unwrap().as_deref(), Some("v1.12.6"));

    let n = fresh(&c, 0).await;
    let before = n.boot_id().await.unwrap();
    n.rollback().await.unwrap();
    wait_rebooted(&c, 0, &before).await;
    wait_version(&c, 0, "v1.12.6").await;
    assert_eq!(c.version(0).unwrap(), "v1.12.6", "the version follows what booted");
}

#[tokio::test]
async fn staged_legacy_upgrade_reboots_too() {
    // v1alpha1_sequencer.go `StageUpgrade` ends in a reboot, like `Upgrade`.
    let c = metal("v1.12.6", 1).await;
    let n = configure(&c, 0, config("v1.12", true)).await;
    let before = n.boot_id().await.unwrap();
    let req = UpgradeRequest {
        image: "ghcr.io/siderolabs/installer:v1.13.9".into(),
        stage: true,
        force: true,
        ..Default::default()
    };
    n.upgrade(&req).await.unwrap();
    wait_rebooted(&c, 0, &before).await;
    wait_version(&c, 0, "v1.13.9").await;
}

#[tokio::test]
async fn lifecycle_upgrade_installs_without_a_reboot_and_the_reboot_boots_it() {
    // talosctl upgrade.go (v1.13+): Pull, LifecycleService.Upgrade (installs,
    // does not reboot), then Reboot; lifecycle.go streams progress, then
    // exit code 0.
    let c = metal("v1.13.9", 1).await;
    let n = configure(&c, 0, config("v1.13", true)).await;
    let before = n.boot_id().await.unwrap();
    let name = n.pull_image(V1_14).await.unwrap();
    assert_eq!(name, V1_14);
    let report = n.install_upgrade(&name, Duration::from_secs(30)).await.unwrap();
    assert!(!report.messages.is_empty());
    assert_eq!(n.boot_id().await.unwrap(), before, "installed, not rebooted");
    assert_eq!(n.version_tag().await.unwrap(), "v1.13.9");
    assert_eq!(c.previous_version(0).unwrap().as_deref(), Some("v1.14.0"), "the new image waits in the other slot");

    n.reboot(RebootMode::Default).await.unwrap();
    wait_rebooted(&c, 0, &before).await;
    wait_version(&c, 0, "v1.14.0").await;
    assert_eq!(c.previous_version(0).unwrap().as_deref(), Some("v1.13.9"));
}

#[tokio::test]
async fn lifecycle_refusals_follow_upstream() {
    // lifecycle.go: an image not in containerd fails the installer
    // (Internal "upgrade failed: …"); an empty name is InvalidArgument.
    // Before v1.13 the services do not exist (grpc-go: Unimplemented).
    let c = metal("v1.13.9", 1).await;
    let n = configure(&c, 0, config("v1.13", true)).await;
    let e = n.install_upgrade(V1_14, Duration::from_secs(5)).await.unwrap_err();
    assert_eq!(e.code(), Some(tonic::Code::Internal), "{e}");
    assert!(e.to_string().contains("upgrade failed"), "{e}");
    let e = n.install_upgrade("", Duration::from_secs(5)).await.unwrap_err();
    assert_eq!(e.code(), Some(tonic::Code::InvalidArgument), "{e}");

    let old = metal("v1.12.6", 1).await;
    let n = configure(&old, 0, config("v1.12", true)).await;
    let e = n.pull_image(V1_14).await.unwrap_err();
    assert_eq!(e.code(), Some(tonic::Code::Unimplemented), "{e}");
    assert!(matches!(e, ApiError::Unimplemented { .. }), "{e:?}");
}

#[tokio::test]
async fn a_missing_image_fails_the_pull_naming_node_and_image_and_changes_nothing() {
    // Issue 13 "bad input": a pull that fails changes nothing on the node.
    let c = metal("v1.13.9", 1).await;
    let n = configure(&c, 0, config("v1.13", true)).await;
    let missing = "ghcr.io/siderolabs/installer:v1.14.99";
    c.missing_image(missing);
    let e = n.pull_image(missing).await.unwrap_err();
    let text = e.to_string();
    assert!(text.contains(&c.endpoint(0)) && text.contains(missing) && text.contains("not found"), "{text}");
    assert_eq!(c.previous_version(0).unwrap(), None);
    assert_eq!(n.version_tag().await.unwrap(), "v1.13.9");
}

#[tokio::test]
async fn an_image_that_never_boots_falls_back_to_the_previous_one_by_itself() {
    // machined revert.go `revertBootloader`: a failed boot with META's
    // `Upgrade` tag set reverts to the previous slot and reboots; the
    // version reported is what booted.
    let c = metal("v1.13.9", 1).await;
    let n = configure(&c, 0, config("v1.13", true)).await;
    c.fail_image(V1_14, ImageFault::NeverBoots);
    let before = n.boot_id().await.unwrap();
    let name = n.pull_image(V1_14).await.unwrap();
    n.install_upgrade(&name, Duration::from_secs(30)).await.unwrap();
    n.reboot(RebootMode::Default).await.unwrap();
    wait_rebooted(&c, 0, &before).await;
    assert_eq!(fresh(&c, 0).await.version_tag().await.unwrap(), "v1.13.9");
    assert_eq!(c.version(0).unwrap(), "v1.13.9");
    assert_eq!(c.previous_version(0).unwrap().as_deref(), Some("v1.14.0"), "the failed image stays in the other slot");
}

#[tokio::test]
async fn an_image_whose_kubelet_never_gets_healthy_boots_and_stays() {
    // No automatic fallback once the machine runs (drop_upgrade_fallback.go):
    // the health gate of a client has to notice and roll back.
    let c = metal("v1.13.9", 1).await;
    let n = configure(&c, 0, config("v1.13", true)).await;
    c.fail_image(V1_14, ImageFault::KubeletUnhealthy);
    let before = n.boot_id().await.unwrap();
    let name = n.pull_image(V1_14).await.unwrap();
    n.install_upgrade(&name, Duration::from_secs(30)).await.unwrap();
    n.reboot(RebootMode::Default).await.unwrap();
    wait_rebooted(&c, 0, &before).await;
    wait_version(&c, 0, "v1.14.0").await;
    let tg = target(&c, 0);
    poll_until(&tg.node, conditions::SERVICE_RUNNING, &until_soon(), TICK, || conditions::service_running(&tg, "cri"))
        .await
        .unwrap();
    let kubelet = fresh(&c, 0).await.services().await.unwrap().into_iter().find(|s| s.id == "kubelet").unwrap();
    assert_eq!(kubelet.state, "Running");
    assert!(!kubelet.health.unwrap().healthy);
    // Rollback is the way back.
    let n = fresh(&c, 0).await;
    let before = n.boot_id().await.unwrap();
    n.rollback().await.unwrap();
    wait_rebooted(&c, 0, &before).await;
    wait_version(&c, 0, "v1.13.9").await;
}

// ---- etcd (internal/pkg/etcd/etcd.go, v1alpha1_server.go) ----

async fn wait_members(c: &SimCluster, i: usize, count: usize) {
    let tg = target(c, i);
    poll_until(&tg.node, conditions::ETCD_MEMBERS, &until_soon(), TICK, || {
        conditions::etcd_members_at_least(&tg, count)
    })
    .await
    .unwrap();
}

/// The etcd member name of node `i` (its host name), read from the list.
async fn member_name(c: &SimCluster, i: usize) -> String {
    let ip = c.endpoint(i).rsplit_once(':').map(|(h, _)| h.to_string()).unwrap();
    let members = fresh(c, 0).await.etcd_members(false).await.unwrap();
    members.into_iter().find(|m| m.client_urls.iter().any(|u| u.contains(&format!("//{ip}:")))).unwrap().hostname
}

#[tokio::test]
async fn etcd_checks_gate_the_legacy_upgrade_of_a_control_plane() {
    // etcd.go `ValidateForUpgrade`, wrapped "error validating etcd for upgrade".
    let c = metal("v1.12.6", 3).await;
    let n = configure(&c, 0, config("v1.12", true)).await;
    bootstrap(&c, 0).await;
    let image = "ghcr.io/siderolabs/installer:v1.13.9";
    let up =
        |preserve: bool, force: bool| UpgradeRequest { image: image.into(), preserve, force, ..Default::default() };

    let e = n.upgrade(&up(false, false)).await.unwrap_err().to_string();
    assert!(e.contains("error validating etcd for upgrade: only 1 etcd member found"), "{e}");

    configure(&c, 1, config("v1.12", true)).await;
    wait_members(&c, 0, 2).await;
    let e = n.upgrade(&up(true, false)).await.unwrap_err().to_string();
    assert!(e.contains("etcd member count(2) is insufficient to maintain quorum"), "`preserve` does not lift it: {e}");

    configure(&c, 2, config("v1.12", true)).await;
    wait_members(&c, 0, 3).await;
    let sick = member_name(&c, 2).await;
    c.unhealthy_member(&sick);
    let e = n.upgrade(&up(false, false)).await.unwrap_err().to_string();
    assert!(e.contains("is not healthy; all members must be healthy to perform an upgrade"), "{e}");

    // `force` skips the etcd checks (v1alpha1_server.go `Upgrade`).
    assert!(!n.upgrade(&up(false, true)).await.unwrap().is_empty());
    assert_eq!(c.version(0).unwrap(), "v1.12.6", "the upgrade runs after the reply");
}

#[tokio::test]
async fn forfeit_leadership_moves_the_leader_and_status_shows_it() {
    // day2.md §4 / Omni: EtcdForfeitLeadership before a control plane
    // reboots; EtcdStatus names the leader; the answer is the leader after.
    let c = metal("v1.13.9", 3).await;
    let n0 = configure(&c, 0, config("v1.13", true)).await;
    bootstrap(&c, 0).await;
    configure(&c, 1, config("v1.13", true)).await;
    configure(&c, 2, config("v1.13", true)).await;
    wait_members(&c, 0, 3).await;
    let s0 = n0.etcd_status().await.unwrap();
    assert_eq!(s0.leader, s0.member_id, "the bootstrap node leads");
    assert!(s0.errors.is_empty());
    assert!(n0.etcd_alarms().await.unwrap().is_empty());

    let me = member_name(&c, 0).await;
    let new_leader = n0.etcd_forfeit_leadership().await.unwrap();
    assert_ne!(new_leader, me);
    let s0 = n0.etcd_status().await.unwrap();
    assert_ne!(s0.leader, s0.member_id);
    // Not the leader: nothing moves, the answer is the leader.
    assert_eq!(n0.etcd_forfeit_leadership().await.unwrap(), new_leader);

    c.unhealthy_member(&me);
    assert!(!n0.etcd_status().await.unwrap().errors.is_empty(), "an unhealthy member reports errors");
}

#[tokio::test]
async fn upgrade_os_picks_the_calls_the_node_version_has() {
    // Issue 13 "bad input": the client reads the version and uses the API
    // that version has: v1.13+ ImageService.Pull + LifecycleService.Upgrade
    // (no reboot), v1.12 the legacy MachineService.Upgrade (reboots).
    let req = |image: &str| UpgradeRequest { image: image.to_string(), ..Default::default() };
    let limit = Duration::from_secs(30);
    // Workers: a control plane issues their API certificates (trustd).
    let new = metal("v1.13.9", 2).await;
    configure(&new, 0, config("v1.13", true)).await;
    let n = configure(&new, 1, config("v1.13", false)).await;
    let boot = n.boot_id().await.unwrap();
    let out = n.upgrade_os(&req("ghcr.io/siderolabs/installer:v1.14.0"), limit).await.unwrap();
    assert!(matches!(out, OsUpgrade::Installed(_)), "{out:?}");
    assert_eq!(n.version_tag().await.unwrap(), "v1.13.9", "installed, not booted");
    assert_eq!(n.boot_id().await.unwrap(), boot);

    let old = metal("v1.12.0", 2).await;
    configure(&old, 0, config("v1.12", true)).await;
    let n = configure(&old, 1, config("v1.12", false)).await;
    let boot = n.boot_id().await.unwrap();
    let out = n.upgrade_os(&req("ghcr.io/siderolabs/installer:v1.12.6"), limit).await.unwrap();
    assert!(matches!(out, OsUpgrade::Rebooting { .. }), "{out:?}");
    wait_rebooted(&old, 1, &boot).await;
    wait_version(&old, 1, "v1.12.6").await;
}

#[tokio::test]
async fn an_image_the_registry_lacks_fails_on_both_paths_naming_node_and_image_and_changes_nothing() {
    // v1alpha1_server.go `Upgrade`: PullAndValidateInstallerImage before
    // anything else, "error validating installer image %q: %w".
    let missing = "ghcr.io/siderolabs/installer:v1.99.0";
    for (version, contract) in [("v1.12.0", "v1.12"), ("v1.13.9", "v1.13")] {
        let c = metal(version, 2).await;
        c.missing_image(missing);
        configure(&c, 0, config(contract, true)).await;
        let n = configure(&c, 1, config(contract, false)).await;
        let boot = n.boot_id().await.unwrap();
        let req = UpgradeRequest { image: missing.to_string(), ..Default::default() };
        let e = n.upgrade_os(&req, Duration::from_secs(30)).await.unwrap_err().to_string();
        assert!(e.contains(&c.endpoint(1)) && e.contains(missing) && e.contains("not found"), "{version}: {e}");
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(n.version_tag().await.unwrap(), version);
        assert_eq!(n.boot_id().await.unwrap(), boot, "{version}: no reboot");
        assert_eq!(c.previous_version(1).unwrap(), None, "{version}: nothing installed");
    }
}

#[test]
fn the_lifecycle_api_starts_at_v1_13() {
    for (tag, has) in [("v1.12.9", false), ("v1.13.0", true), ("v1.14.2", true), ("v2.0.0", true), ("latest", false)] {
        assert_eq!(lifecycle_api(tag), has, "{tag}");
    }
}

// ---- what health gates read over COSI ----

#[tokio::test]
async fn machine_status_follows_the_stage_running_upgrading_running() {
    // pkg/machinery/resources/runtime/machine_status.go and
    // machine_status.go's controller: the stage follows the sequence that
    // runs (Upgrade -> upgrading), ready once running with services up.
    let c = metal("v1.13.9", 2).await;
    let cp = configure(&c, 0, config("v1.13", true)).await;
    bootstrap(&c, 0).await;
    let w = configure(&c, 1, config("v1.13", false)).await;
    until("both running and ready", Duration::from_secs(30), || async {
        let s = (cp.machine_status().await, w.machine_status().await);
        matches!(s, (Ok(a), Ok(b)) if a.stage == MachineStage::Running && a.ready && b.stage == MachineStage::Running && b.ready)
    })
    .await;
    // Evictions never allowed: the drain holds the upgrade for the drain
    // timeout (5 min scaled), long enough to see the stage.
    c.block_evictions(true);
    let boot = w.boot_id().await.unwrap();
    w.upgrade(&UpgradeRequest { image: V1_14.to_string(), ..Default::default() }).await.unwrap();
    // The open connection answers until the machine goes down: a poll on
    // it takes a millisecond, well inside the (scaled) drain time.
    until("the worker reports upgrading", Duration::from_secs(30), || async {
        w.machine_status().await.is_ok_and(|s| s.stage == MachineStage::Upgrading && !s.ready)
    })
    .await;
    wait_rebooted(&c, 1, &boot).await;
    until("running again", Duration::from_secs(30), || async {
        fresh(&c, 1).await.machine_status().await.is_ok_and(|s| s.stage == MachineStage::Running && s.ready)
    })
    .await;
}

#[tokio::test]
async fn a_component_config_version_goes_up_with_its_image() {
    // talosctl get apiserverconfig: controlplane/kube-apiserver, its version
    // bumped by a changed image (what upgrade-k8s patches, then waits for in
    // the static pod's talos.dev/config-version); none on a worker.
    let c = metal("v1.13.9", 2).await;
    let cp = configure(&c, 0, config("v1.13", true)).await;
    bootstrap(&c, 0).await;
    let w = configure(&c, 1, config("v1.13", false)).await;
    until("kube-apiserver config 1", Duration::from_secs(30), || async {
        cp.component_config_version("kube-apiserver").await.is_ok_and(|v| v == Some(1))
    })
    .await;
    assert_eq!(w.component_config_version("kube-apiserver").await.unwrap(), None);
    let patch = "cluster:\n  apiServer:\n    image: registry.k8s.io/kube-apiserver:v1.32.9\n";
    let newer = crate::talos_api::config_with("v1.13", true, true, &[patch], 0);
    let req = ApplyRequest { config: newer, mode: ApplyMode::NoReboot, dry_run: false, try_timeout: None };
    cp.apply_configuration(&req).await.unwrap();
    assert_eq!(cp.component_config_version("kube-apiserver").await.unwrap(), Some(2));
    assert_eq!(cp.component_config_version("kube-scheduler").await.unwrap(), Some(1), "only the patched component");
}

#[tokio::test]
async fn the_kubelet_spec_follows_the_kubelet_image() {
    // pkg/machinery/resources/k8s/kubelet_spec.go: k8s/kubelet holds the
    // image the kubelet runs (what a kubelet upgrade patches), its version
    // going up when it changes.
    let c = metal("v1.13.9", 2).await;
    configure(&c, 0, config("v1.13", true)).await;
    let w = configure(&c, 1, config("v1.13", false)).await;
    let spec = w.kubelet_spec().await.unwrap().unwrap();
    assert_eq!((spec.image.as_str(), spec.version), ("ghcr.io/siderolabs/kubelet:v1.33.1", 1));
    assert!(spec.expected_nodename.starts_with("talos-"), "{spec:?}");
    let patch = "machine:\n  kubelet:\n    image: ghcr.io/siderolabs/kubelet:v1.34.2\n";
    let newer = crate::talos_api::config_with("v1.13", false, true, &[patch], 0);
    let req = ApplyRequest { config: newer, mode: ApplyMode::NoReboot, dry_run: false, try_timeout: None };
    w.apply_configuration(&req).await.unwrap();
    let spec = w.kubelet_spec().await.unwrap().unwrap();
    assert_eq!((spec.image.as_str(), spec.version), ("ghcr.io/siderolabs/kubelet:v1.34.2", 2));
}

#[tokio::test]
async fn static_pod_statuses_list_the_control_plane_pods_ready() {
    // talosctl health K8sControlPlaneStaticPods (siderolabs/talos
    // pkg/cluster/check/kubernetes.go): per control plane, COSI List of
    // StaticPodStatuses (namespace k8s, ids kube-system/<pod>) must hold
    // kube-apiserver, kube-controller-manager and kube-scheduler; the
    // statuses are the kubelet's (kubelet_static_pod.go). A worker has none.
    let c = metal("v1.13.9", 2).await;
    let cp = configure(&c, 0, config("v1.13", true)).await;
    bootstrap(&c, 0).await;
    let w = configure(&c, 1, config("v1.13", false)).await;
    until("three static pods Running and Ready", Duration::from_secs(30), || async {
        cp.static_pod_statuses().await.is_ok_and(|s| s.len() == 3 && s.iter().all(|p| p.ready && p.phase == "Running"))
    })
    .await;
    let ids: Vec<String> = cp.static_pod_statuses().await.unwrap().into_iter().map(|s| s.id).collect();
    for (id, component) in ids.iter().zip(["kube-apiserver", "kube-controller-manager", "kube-scheduler"]) {
        assert!(id.starts_with(&format!("kube-system/{component}-")), "{ids:?}");
    }
    assert!(w.static_pod_statuses().await.unwrap().is_empty());
}
