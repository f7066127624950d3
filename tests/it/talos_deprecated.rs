//! Deprecated v1alpha1 fields: upstream's JSON schema leaves out every
//! `docgen:nodoc` field, but Talos decodes them (siderolabs/talos
//! `pkg/machinery/config/types/v1alpha1/v1alpha1_types.go`; the decoder,
//! `pkg/machinery/config/configloader/internal/decoder/decoder.go`, rejects
//! unknown keys only). So they are accepted, with a warning naming the
//! replacement the Go field's `Deprecated:` comment (or Talos's own
//! `Validate` warning, `v1alpha1_validation.go`) names; unknown keys are
//! still refused, and so is a deprecated field next to the typed document
//! that replaces it (`V1Alpha1ConflictValidate`, run by
//! `pkg/machinery/config/container/validate.go`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use proxtalos::talos::VersionContract;
use proxtalos::talos::config::{self, ConfigError, ConfigInput, MachineConfig, MachineType};
use proxtalos::talos::schema::SchemaError;
use proxtalos::talos::secrets::SecretsBundle;

const SECRETS: &str = include_str!("../fixtures/talos/golden/secrets.yaml");
const NEW: [VersionContract; 2] = [VersionContract::V1_14, VersionContract::V1_15];

fn generate(contract: VersionContract, patches: &[&str]) -> Result<MachineConfig, ConfigError> {
    let mut i = ConfigInput::new("c1", "https://10.0.0.1:6443", MachineType::Controlplane, contract, "1.32.0");
    i.config_patches = patches.iter().map(|p| p.to_string()).collect();
    config::generate(&i, &SecretsBundle::from_yaml(SECRETS).unwrap())
}

/// `(path, message)` of every deprecation the patched config has.
fn warnings(contract: VersionContract, patches: &[&str]) -> Vec<(String, String)> {
    let c = generate(contract, patches).unwrap_or_else(|e| panic!("{contract}: {e}"));
    c.deprecations().unwrap().into_iter().map(|d| (d.path, d.message)).collect()
}

fn assert_warns(patches: &[&str], path: &str, names: &str) {
    for contract in NEW {
        let w = warnings(contract, patches);
        assert!(w.iter().any(|(p, m)| p == path && m.contains(names)), "{contract}: want {path} → {names}, got {w:?}");
    }
}

fn conflict(contract: VersionContract, patches: &[&str]) -> (String, String) {
    match generate(contract, patches) {
        Err(ConfigError::Schema(SchemaError::Conflict { kind, message, .. })) => (kind, message),
        other => panic!("{contract}: expected a conflict, got {other:?}"),
    }
}

const DELETE_KUBELET: &str = "apiVersion: v1alpha1\nkind: KubeletConfig\n$patch: delete\n";
const DELETE_RESOLVER: &str = "apiVersion: v1alpha1\nkind: ResolverConfig\n$patch: delete\n";
const DELETE_HOSTNAME: &str = "apiVersion: v1alpha1\nkind: HostnameConfig\n$patch: delete\n";

/// `machine.kubelet.extraMounts` (Longhorn): `MachineConfig.MachineKubelet`,
/// "Deprecated: Use `KubeletConfig` instead". Next to the generated
/// `KubeletConfig` document Talos refuses it (k8s/kubelet.go); with that
/// document removed it is accepted, with the warning.
#[test]
fn kubelet_extra_mounts() {
    let mounts = "machine:\n  kubelet:\n    extraMounts:\n      - destination: /var/lib/longhorn\n        type: bind\n        source: /var/lib/longhorn\n        options: [bind, rshared, rw]\n";
    for contract in NEW {
        let (kind, message) = conflict(contract, &[mounts]);
        assert_eq!(kind, "KubeletConfig");
        assert!(message.contains(".machine.kubelet"), "{message}");
    }
    assert_warns(&[DELETE_KUBELET, mounts], "machine.kubelet", "KubeletConfig");
    // Before v1.14 the field is documented and not deprecated.
    assert!(warnings(VersionContract::V1_13, &[mounts]).is_empty());
}

/// `machine.network.nameservers`/`hostname`/`interfaces` (`NetworkConfig`,
/// "All fields within NetworkConfig are deprecated"): one warning per field,
/// naming `ResolverConfig`, `HostnameConfig`, the multi-doc network config.
/// Next to the generated `ResolverConfig`/`HostnameConfig` Talos refuses
/// nameservers and hostname (network/resolver.go, network/hostname.go).
#[test]
fn network_fields() {
    let dns = "machine:\n  network:\n    nameservers: [10.0.0.1]\n";
    let host = "machine:\n  network:\n    hostname: cp1\n";
    let ifaces = "machine:\n  network:\n    interfaces:\n      - interface: eth0\n        dhcp: true\n        cidr: 10.0.0.5/24\n";
    for contract in NEW {
        assert_eq!(conflict(contract, &[dns]).0, "ResolverConfig");
        assert_eq!(conflict(contract, &[host]).0, "HostnameConfig");
    }
    assert_warns(&[DELETE_RESOLVER, dns], "machine.network.nameservers", "ResolverConfig");
    assert_warns(&[DELETE_HOSTNAME, host], "machine.network.hostname", "HostnameConfig");
    assert_warns(&[ifaces], "machine.network.interfaces", "multi-doc network config");
    // v1.13 rejected `machine.network` before (not in its schema); Talos v1.13 decodes it.
    assert!(generate(VersionContract::V1_13, &[ifaces]).is_ok());
}

/// `machine.install` ("Use the 'UnattendedInstall' multi-document config"):
/// accepted without an install disk; refused next to the
/// `UnattendedInstallConfig` an install disk generates (runtime/unattended_install.go).
#[test]
fn install() {
    let install = "machine:\n  install:\n    disk: /dev/sda\n    wipe: false\n";
    assert_warns(&[install], "machine.install", "UnattendedInstall");
    let with_disk = "apiVersion: v1alpha1\nkind: UnattendedInstallConfig\nprovisioning:\n  diskSelector:\n    match: disk.dev_path == \"/dev/sda\"\n";
    for contract in NEW {
        assert_eq!(conflict(contract, &[with_disk, install]).0, "UnattendedInstallConfig");
    }
}

/// `machine.files`: Talos's own warning (v1alpha1_validation.go).
#[test]
fn files() {
    let files =
        "machine:\n  files:\n    - path: /var/etc/x\n      op: create\n      permissions: 0o644\n      content: x\n";
    assert_warns(&[files], "machine.files", "use dedicated configuration documents");
}

/// `machine.disks` ("Use 'UserVolumeConfig' instead"): never in a published
/// schema; the definition follows `MachineDisk`/`DiskPartition`.
#[test]
fn disks() {
    let disks = "machine:\n  disks:\n    - device: /dev/sdb\n      partitions:\n        - mountpoint: /var/mnt/extra\n          size: 10GB\n";
    assert_warns(&[disks], "machine.disks", "UserVolumeConfig");
}

/// Other families: `machine.sysctls` → `SysctlConfig`, `machine.time` →
/// `TimeSyncConfig`, `cluster.extraManifests` → `KubeExternalManifestConfig`.
#[test]
fn other_families() {
    assert_warns(&["machine:\n  sysctls:\n    a: b\n"], "machine.sysctls", "SysctlConfig");
    assert_warns(&["machine:\n  time:\n    servers: [pool.ntp.org]\n"], "machine.time", "TimeSyncConfig");
    assert_warns(
        &["cluster:\n  extraManifests: [https://x/y.yaml]\n"],
        "cluster.extraManifests",
        "KubeExternalManifestConfig",
    );
}

/// Keys Talos does not decode are still refused, inside deprecated fields too.
#[test]
fn unknown_keys_still_rejected() {
    for contract in NEW {
        for patch in [
            "machine:\n  nosuchfield: 1\n",
            "machine:\n  network:\n    nameserverz: [10.0.0.1]\n",
            "machine:\n  disks:\n    - device: /dev/sdb\n      sizee: 1\n",
            &format!("{DELETE_KUBELET}---\nmachine:\n  kubelet:\n    extraMountz: []\n"),
        ] {
            match generate(contract, &[patch]) {
                Err(ConfigError::Schema(SchemaError::Invalid { .. })) => {}
                other => panic!("{contract}: {patch:?} gave {other:?}"),
            }
        }
    }
}

/// The generated configs themselves carry no deprecation.
#[test]
fn generated_configs_have_none() {
    for contract in VersionContract::ALL {
        assert!(warnings(contract, &[]).is_empty(), "{contract}");
    }
}
