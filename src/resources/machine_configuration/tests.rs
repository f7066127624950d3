#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use super::*;
use crate::resources::machine_secrets::tests::ctx;
use crate::resources::shared::common::null_object;
use crate::resources::shared::talos_model::bundle_to_value;

const GOLDEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/talos/golden");

fn golden(rel: &str) -> String {
    std::fs::read_to_string(format!("{GOLDEN}/{rel}")).unwrap()
}

fn secrets() -> SecretsBundle {
    SecretsBundle::from_yaml(&golden("secrets.yaml")).unwrap()
}

/// The golden README's base inputs for `contract`.
fn config(contract: &str, machine: &str) -> Value {
    let mut c = null_object(&MachineConfiguration.schema().value_type());
    c.set_attr("cluster_name", "base".into());
    c.set_attr("cluster_endpoint", "https://base:6443".into());
    c.set_attr("machine_type", machine.into());
    c.set_attr("talos_version", contract.into());
    c.set_attr("kubernetes_version", "1.28.0".into());
    c.set_attr("machine_secrets", bundle_to_value(&secrets()));
    c
}

/// [`config`] with a Kubernetes version every contract's Talos runs (the
/// goldens' 1.28.0 is older than Talos v1.11+ runs: a plan warning).
fn current(contract: &str, machine: &str) -> Value {
    let mut c = config(contract, machine);
    c.set_attr("kubernetes_version", "1.33.1".into());
    c
}

fn list(items: &[&str]) -> Value {
    Value::List(items.iter().map(|s| Value::from(*s)).collect())
}

fn patches(items: &[&str]) -> Value {
    list(items)
}

async fn read(c: Value) -> ReadDataResponse {
    let mut resp = ReadDataResponse { state: c.clone(), diags: Diagnostics::new() };
    MachineConfiguration.read(&ctx(), ReadDataRequest { config: c }, &mut resp).await;
    resp
}

fn first_path(d: &Diagnostics) -> Option<String> {
    d.0.first().and_then(|d| d.path.as_ref()).map(ToString::to_string)
}

#[test]
fn schema_is_consistent() {
    assert!(MachineConfiguration.schema().check().is_empty(), "{:?}", MachineConfiguration.schema().check());
    let s = MachineConfiguration.schema();
    assert!(s.block.attribute("machine_configuration").unwrap().sensitive);
    assert!(!s.block.attribute("machine_configuration_redacted").unwrap().sensitive);
}

#[tokio::test]
async fn golden_base_files_are_reproduced() {
    for (contract, machine) in [("v1.10", "worker"), ("v1.13", "controlplane"), ("v1.14", "controlplane")] {
        let resp = read(config(contract, machine)).await;
        assert!(resp.diags.is_empty(), "{:?}", resp.diags);
        let got = resp.state.attr("machine_configuration").as_str().unwrap();
        assert_eq!(got, golden(&format!("{contract}/base-{machine}.yaml")), "{contract} {machine}");
    }
}

#[tokio::test]
async fn golden_overrides_are_reproduced() {
    let mut c = config("v1.12", "controlplane");
    c.set_attr("extra_cert_sans", list(&["foo", "bar"]));
    c.set_attr("allow_scheduling_on_control_planes", true.into());
    c.set_attr("dns_domain", "example.com".into());
    c.set_attr("install_disk", "/dev/vda".into());
    c.set_attr("kernel_args", list(&["foo=bar", "bar=baz"]));
    c.set_attr("local_api_server_port", Value::int(5443));
    c.set_attr("sysctls", Value::Map(BTreeMap::from([("foo".to_string(), Value::from("bar"))])));
    c.set_attr("cni_urls", list(&["https://example.com/cni.yaml"]));
    c.set_attr(
        "registry_mirrors",
        Value::Map(BTreeMap::from([("ghcr.io".to_string(), list(&["https://ghcr.io.my-mirror.com"]))])),
    );
    c.set_attr("config_patches", Value::List(vec![Value::string(golden("patch-pre14.yaml"))]));
    let resp = read(c).await;
    assert!(resp.diags.is_empty(), "{:?}", resp.diags);
    assert_eq!(resp.state.attr("machine_configuration").as_str().unwrap(), golden("v1.12/overrides-controlplane.yaml"));
}

#[tokio::test]
async fn redacted_output_has_no_secret() {
    let s = secrets();
    for contract in ["v1.11", "v1.14"] {
        let resp = read(config(contract, "controlplane")).await;
        let red = resp.state.attr("machine_configuration_redacted").as_str().unwrap();
        let full = resp.state.attr("machine_configuration").as_str().unwrap();
        assert_ne!(red, full);
        let b64 = |t: &str| crate::resources::shared::common::b64(t);
        let mut secrets = vec![
            s.cluster.secret.clone(),
            s.secrets.bootstrap_token.clone(),
            s.trustd_info.token.clone(),
            s.secrets.secretbox_encryption_secret.clone().unwrap(),
            b64(&s.certs.os.key),
            b64(s.certs.k8s_service_account_key.as_ref().unwrap()),
        ];
        for p in [&s.certs.etcd, &s.certs.k8s, &s.certs.k8s_aggregator] {
            secrets.push(b64(&p.as_ref().unwrap().key));
        }
        let mut present = 0;
        for secret in secrets.iter().filter(|s| full.contains(s.as_str())) {
            present += 1;
            assert!(!red.contains(secret.as_str()), "{contract}: redacted config leaks a secret");
        }
        assert!(present >= 6, "{contract}: only {present} secrets found in the full config");
    }
}

fn validate_errors(c: &Value) -> Diagnostics {
    let mut d = Diagnostics::new();
    MachineConfiguration.validate_config(&ValidateRequest { config: c.clone() }, &mut d);
    d
}

#[test]
fn bad_input_names_the_attribute_at_validate() {
    let with = |contract: &str, k: &str, v: Value| {
        let mut c = current(contract, "controlplane");
        c.set_attr(k, v);
        c
    };
    let cases = [
        (with("v1.13", "talos_version", "v1.9".into()), "talos_version", "v1.9"),
        (with("v1.13", "machine_type", "boss".into()), "machine_type", "boss"),
        (with("v1.13", "cluster_endpoint", "10.0.0.1:6443".into()), "cluster_endpoint", "https://"),
        (with("v1.13", "cluster_endpoint", "https://10.0.0.1".into()), "cluster_endpoint", "port"),
        (with("v1.13", "kubernetes_version", "1.20.3".into()), "kubernetes_version", "older"),
        (with("v1.13", "cni", "custom".into()), "cni_urls", "URL"),
        (with("v1.13", "cni", "calico".into()), "cni", "calico"),
        (with("v1.13", "config_patches", patches(&["machine: {}", "machine: [unclosed"])), "config_patches[1]", "YAML"),
        (
            with("v1.10", "config_patches", patches(&[r#"[{"op": "remove", "path": "/machine/nosuch"}]"#])),
            "config_patches[0]",
            "/machine/nosuch",
        ),
        (
            with("v1.13", "config_patches", patches(&[r#"[{"op": "add", "path": "/machine/x", "value": 1}]"#])),
            "config_patches[0]",
            "multi-document",
        ),
        (
            with("v1.13", "config_patches", patches(&["machine: {}", "apiVersion: v1alpha1\nkind: NoSuchConfig\n"])),
            "config_patches[1]",
            "NoSuchConfig",
        ),
        (
            with("v1.13", "config_patches", patches(&["machine:\n    kubelet:\n        imagee: x\n"])),
            "config_patches[0]",
            "/machine/kubelet",
        ),
    ];
    for (c, path, needle) in cases {
        let d = validate_errors(&c);
        assert!(d.has_errors(), "{path}: no error");
        assert_eq!(first_path(&d).as_deref(), Some(path), "{:?}", d);
        let text = format!("{} {}", d.0[0].summary, d.0[0].detail);
        assert!(text.contains(needle), "{path}: {text:?} lacks {needle:?}");
    }
}

#[test]
fn unknown_values_do_not_fail_validation_but_known_patches_are_checked() {
    let mut c = current("v1.13", "controlplane");
    c.set_attr("machine_secrets", Value::Unknown);
    c.set_attr("cluster_endpoint", Value::Unknown);
    assert!(validate_errors(&c).is_empty());
    c.set_attr("config_patches", patches(&["machine:\n    network:\n        nosuchfield: 1\n"]));
    assert_eq!(first_path(&validate_errors(&c)).as_deref(), Some("config_patches[0]"));
    c.set_attr("config_patches", Value::List(vec![Value::Unknown, "machine: [".into()]));
    assert_eq!(first_path(&validate_errors(&c)).as_deref(), Some("config_patches[1]"));
    // An unknown contract: v1.13-only fields must not fail against a guessed contract.
    c.set_attr("talos_version", Value::Unknown);
    c.set_attr("config_patches", patches(&["machine:\n    sysctls:\n        a.b: \"1\"\n"]));
    assert!(validate_errors(&c).is_empty());
    // ... but input errors are still found.
    c.set_attr("cluster_endpoint", "https://10.0.0.1".into());
    assert_eq!(first_path(&validate_errors(&c)).as_deref(), Some("cluster_endpoint"));
}

#[tokio::test]
async fn malformed_secrets_and_patch_changes_at_read() {
    let mut c = config("v1.13", "worker");
    let mut ms = c.attr("machine_secrets").clone();
    ms.set_attr("trustdinfo", Value::object([("token", "bad".into())]));
    c.set_attr("machine_secrets", ms);
    let resp = read(c).await;
    assert_eq!(first_path(&resp.diags).as_deref(), Some("machine_secrets"));

    // A patch changes exactly the patched lines of the redacted rendering.
    let base = read(config("v1.13", "worker")).await;
    let mut c = config("v1.13", "worker");
    c.set_attr("config_patches", patches(&["machine:\n    sysctls:\n        vm.max_map_count: \"262144\"\n"]));
    let patched = read(c).await;
    let (a, b) = (
        base.state.attr("machine_configuration_redacted").as_str().unwrap(),
        patched.state.attr("machine_configuration_redacted").as_str().unwrap(),
    );
    let added: Vec<&str> = b.lines().filter(|l| !a.lines().any(|x| x == *l)).collect();
    assert!(added.iter().any(|l| l.contains("vm.max_map_count")), "{added:?}");
    assert!(a.lines().all(|l| b.lines().any(|x| x == l)), "nothing removed");
}

#[test]
fn kernel_args_warn_on_v1_14() {
    let mut c = config("v1.14", "worker");
    c.set_attr("kernel_args", list(&["console=ttyS0"]));
    let d = validate_errors(&c);
    assert!(!d.has_errors());
    assert_eq!(first_path(&d).as_deref(), Some("kernel_args"));
}

/// A deprecated field Talos accepts (siderolabs/talos
/// `pkg/machinery/config/types/v1alpha1/v1alpha1_types.go`, `MachineDisks`:
/// "Use 'UserVolumeConfig' instead") is a warning on the patch that sets it,
/// at validate and at read, for v1.14 and v1.15.
#[tokio::test]
async fn deprecated_fields_warn_on_their_patch() {
    let disks = "machine:\n  disks:\n    - device: /dev/sdb\n";
    for contract in ["v1.14", "v1.15"] {
        let mut c = current(contract, "worker");
        c.set_attr("config_patches", patches(&["machine:\n  certSANs: [a]\n", disks]));
        for diags in [validate_errors(&c), read(c.clone()).await.diags] {
            assert!(!diags.has_errors(), "{contract}: {:?}", diags.0);
            let w = diags.0.iter().find(|d| d.severity == crate::plugin::diag::Severity::Warning).expect("a warning");
            assert_eq!(w.path.as_ref().map(ToString::to_string).as_deref(), Some("config_patches[1]"));
            assert!(w.detail.contains("machine.disks") && w.detail.contains("UserVolumeConfig"), "{}", w.detail);
        }
    }
}

/// `machine.network.nameservers` next to the `ResolverConfig` v1.14
/// generates: Talos refuses it (network/resolver.go
/// `V1Alpha1ConflictValidate`), so the error names the patch.
#[test]
fn legacy_nameservers_conflict_with_resolver_config() {
    let mut c = current("v1.14", "controlplane");
    c.set_attr("config_patches", patches(&["machine:\n  network:\n    nameservers: [10.0.0.1]\n"]));
    let d = validate_errors(&c);
    assert!(d.has_errors());
    assert_eq!(first_path(&d).as_deref(), Some("config_patches[0]"));
    assert!(d.0[0].detail.contains(".machine.network.nameservers is already set"), "{}", d.0[0].detail);
}

/// The documented example (examples/data-sources/proxtalos_machine_configuration)
/// renders on the secrets' default contract and on v1.15, with no warning.
#[tokio::test]
async fn documented_example_renders() {
    let patch = "apiVersion: v1alpha1\nkind: ResolverConfig\nnameservers:\n  - address: 10.0.0.1\n";
    let example = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/data-sources/proxtalos_machine_configuration/data-source.tf"
    ));
    assert!(example.contains("kind        = \"ResolverConfig\"") && example.contains("address = \"10.0.0.1\""));
    for contract in ["v1.14", "v1.15"] {
        let mut c = config(contract, "controlplane");
        c.set_attr("cluster_name", "homelab".into());
        c.set_attr("cluster_endpoint", "https://10.0.0.10:6443".into());
        c.set_attr("kubernetes_version", "1.33.1".into());
        c.set_attr("install_disk", "/dev/sda".into());
        c.set_attr("extra_cert_sans", list(&["10.0.0.10", "k8s.example.com"]));
        c.set_attr("cni", "none".into());
        c.set_attr("config_patches", patches(&[patch]));
        let resp = read(c).await;
        assert!(resp.diags.0.is_empty(), "{contract}: {:?}", resp.diags.0);
        let yaml = resp.state.attr("machine_configuration").as_str().unwrap().to_string();
        assert!(yaml.contains("kind: ResolverConfig\nnameservers:\n    - address: 10.0.0.1\nhostDNS:"), "{yaml}");
    }
}

#[test]
fn a_kubernetes_version_the_contracts_talos_does_not_run_is_a_warning() {
    // pkg/machinery/compatibility/talos113: Kubernetes 1.31.0 to 1.36.x;
    // talosctl gen config renders it (local mode), a node refuses it.
    let d = validate_errors(&config("v1.13", "worker"));
    assert!(!d.has_errors(), "{d:?}");
    assert_eq!(first_path(&d).as_deref(), Some("kubernetes_version"), "{d:?}");
    assert!(d.0[0].detail.contains("Talos 1.13 runs Kubernetes 1.31.0 to 1.36.x"), "{d:?}");
    assert!(validate_errors(&current("v1.13", "worker")).0.is_empty());
    assert!(validate_errors(&config("v1.10", "worker")).0.is_empty(), "Talos 1.10 runs 1.28");
}
