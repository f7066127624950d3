//! Patch, redaction and validation tests (behaviour.md §9–§12).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use proxtalos::talos::VersionContract;
use proxtalos::talos::config::{self, ConfigError, ConfigInput, MachineConfig, MachineType};
use proxtalos::talos::patch::{self, PatchError};
use proxtalos::talos::redact::REDACTED;
use proxtalos::talos::secrets::SecretsBundle;
use proxtalos::talos::yaml::{self, Value};

const SECRETS: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/talos/golden/secrets.yaml"));

fn docs(text: &str) -> Vec<Value> {
    yaml::parse_documents(text).unwrap()
}

fn input(contract: VersionContract) -> ConfigInput {
    ConfigInput::new("c1", "https://10.0.0.1:6443", MachineType::Controlplane, contract, "1.32.0")
}

fn secrets() -> SecretsBundle {
    SecretsBundle::from_yaml(SECRETS).unwrap()
}

/// §12: maps merge, lists append, subnets replace, interfaces merge by key, `$patch: delete`.
#[test]
fn strategic_merge_nested_lists_and_maps() {
    let mut d = docs(
        "version: v1alpha1\nmachine:\n    certSANs:\n        - a\n    network:\n        interfaces:\n            - interface: eth0\n              mtu: 1500\n              vlans:\n                  - vlanId: 5\n                    mtu: 1000\n    sysctls:\n        x: \"1\"\n        y: \"2\"\ncluster:\n    network:\n        podSubnets:\n            - 10.244.0.0/16\n",
    );
    let p = "machine:\n    certSANs:\n        - b\n    network:\n        interfaces:\n            - interface: eth0\n              dhcp: true\n              vlans:\n                  - vlanId: 5\n                    mtu: 1400\n            - interface: eth1\n    sysctls:\n        y:\n            $patch: delete\n        z: \"3\"\ncluster:\n    network:\n        podSubnets:\n            - 10.0.0.0/8\n";
    patch::apply_patches(&mut d, &[p.to_string()]).unwrap();
    let m = &d[0]["machine"];
    assert_eq!(m["certSANs"], docs("[a, b]")[0]);
    let ifaces = m["network"]["interfaces"].as_sequence().unwrap();
    assert_eq!(ifaces.len(), 2);
    assert_eq!(ifaces[0]["dhcp"], Value::Bool(true));
    assert_eq!(ifaces[0]["mtu"], docs("1500")[0]);
    assert_eq!(ifaces[0]["vlans"].as_sequence().unwrap().len(), 1);
    assert_eq!(ifaces[0]["vlans"][0]["mtu"], docs("1400")[0]);
    assert!(m["sysctls"].get("y").is_none());
    assert_eq!(m["sysctls"]["z"], Value::from("3"));
    assert_eq!(d[0]["cluster"]["network"]["podSubnets"], docs("[10.0.0.0/8]")[0]);
}

/// §12: multi-document patches merge by (apiVersion, kind, name), append unknown, delete documents.
#[test]
fn strategic_merge_multi_document() {
    let mut d = docs("version: v1alpha1\n---\napiVersion: v1alpha1\nkind: HostnameConfig\nauto: stable\n");
    let p = "apiVersion: v1alpha1\nkind: HostnameConfig\n$patch: delete\n---\napiVersion: v1alpha1\nkind: SysctlConfig\nparams:\n    a: b\n";
    patch::apply_patches(&mut d, &[p.to_string()]).unwrap();
    assert_eq!(d.len(), 2);
    assert_eq!(d[1]["kind"], Value::from("SysctlConfig"));
    let del_legacy = "machine:\n    a: 1\n---\n$patch: delete\nversion: v1alpha1\n";
    assert!(patch::apply_patches(&mut d, &[del_legacy.to_string()]).is_err());
}

/// §12: RFC 6902 add/replace/remove/test on a single-document config.
#[test]
fn json_patch_operations() {
    let mut d = docs("version: v1alpha1\nmachine:\n    certSANs: [a]\n    type: worker\n");
    let p = r#"[{"op":"test","path":"/machine/type","value":"worker"},
               {"op":"add","path":"/machine/certSANs/-","value":"b"},
               {"op":"replace","path":"/machine/type","value":"controlplane"},
               {"op":"copy","from":"/machine/type","path":"/machine/role"},
               {"op":"move","from":"/machine/role","path":"/machine/moved"},
               {"op":"remove","path":"/machine/moved"}]"#;
    patch::apply_patches(&mut d, &[p.to_string()]).unwrap();
    assert_eq!(d[0]["machine"]["certSANs"], docs("[a, b]")[0]);
    assert_eq!(d[0]["machine"]["type"], Value::from("controlplane"));
    assert!(d[0]["machine"].get("moved").is_none());

    let failing = "- op: test\n  path: /machine/type\n  value: worker\n";
    match patch::apply_patches(&mut d, &["[]".into(), failing.to_string()]) {
        Err(PatchError::JsonPatchOp { patch, op, path, .. }) => {
            assert_eq!((patch, op, path.as_str()), (1, 0, "/machine/type"))
        }
        other => panic!("unexpected {other:?}"),
    }
    let missing = r#"[{"op":"replace","path":"/machine/nope","value":1}]"#;
    assert!(patch::apply_patches(&mut d, &[missing.to_string()]).is_err());
}

/// §12: JSON patches are refused for multi-document configs (v1.12+ generates HostnameConfig).
#[test]
fn json_patch_on_multi_document_config_is_refused() {
    let mut i = input(VersionContract::V1_12);
    i.config_patches = vec![r#"[{"op":"add","path":"/machine/certSANs/-","value":"x"}]"#.into()];
    let err = config::generate(&i, &secrets()).unwrap_err();
    assert!(matches!(err, ConfigError::Patch(PatchError::JsonPatchMultiDocument { patch: 0, documents: 2 })), "{err}");
    assert!(err.to_string().contains("JSON6902 patches are not supported for multi-document"));
    // Single-document (v1.11) configs accept them.
    let mut i = input(VersionContract::V1_11);
    i.config_patches = vec![r#"[{"op":"add","path":"/machine/certSANs/-","value":"x"}]"#.into()];
    let c = config::generate(&i, &secrets()).unwrap();
    assert_eq!(c.documents()[0]["machine"]["certSANs"], docs("[x]")[0]);
}

/// Redaction hides every secret and keeps certificates and structure.
#[test]
fn redacted_rendering_hides_secrets() {
    let s = secrets();
    for contract in VersionContract::ALL {
        let c = config::generate(&input(contract), &s).unwrap();
        let red = c.to_redacted_yaml();
        for secret in [
            s.cluster.secret.as_str(),
            s.secrets.bootstrap_token.as_str(),
            s.trustd_info.token.as_str(),
            s.secrets.secretbox_encryption_secret.as_deref().unwrap(),
            "MHcCAQEEIEYlYh75SQ6zUBEMFzzniS6nUX7CeqCMwKy4E6GTEE0c", // k8s CA key (PEM body)
            "LS0tLS1CRUdJTiBFRDI1NTE5IFBSSVZBVEUgS0VZ",             // OS CA key (base64 PEM)
        ] {
            assert!(!red.contains(secret), "{contract}: leaked {secret}");
        }
        assert!(red.contains(REDACTED));
        assert!(red.contains(&s.cluster.id), "cluster id is public");
        assert_eq!(yaml::parse_documents(&red).unwrap().len(), c.documents().len());
    }
}

/// Input errors name the attribute.
#[test]
fn bad_inputs_name_the_field() {
    let s = secrets();
    let field = |i: &ConfigInput| match config::generate(i, &s) {
        Err(ConfigError::Input { field, .. }) => field,
        other => panic!("unexpected {other:?}"),
    };
    let mut i = input(VersionContract::V1_13);
    i.endpoint = "10.0.0.1:6443".into();
    assert_eq!(field(&i), "endpoint");
    i.endpoint = "https://10.0.0.1".into();
    assert_eq!(field(&i), "endpoint");
    let mut i = input(VersionContract::V1_13);
    i.kubernetes_version = "1.20.0".into();
    assert_eq!(field(&i), "kubernetes_version");
    assert!("v1.9".parse::<VersionContract>().unwrap_err().to_string().contains("v1.9"));
    let mut i = input(VersionContract::V1_13);
    i.config_patches = vec!["- just\n- a list\n".into()];
    assert!(matches!(config::generate(&i, &s), Err(ConfigError::Patch(_))));
    let mut i = input(VersionContract::V1_13);
    i.config_patches = vec!["machine: [unclosed".into()];
    assert!(matches!(config::generate(&i, &s), Err(ConfigError::Patch(PatchError::Parse { patch: 0, .. }))));
}

/// Schema validation: unknown kinds, non-Talos YAML and typos are rejected with a path.
#[test]
fn schema_validation() {
    let s = secrets();
    let c = config::generate(&input(VersionContract::V1_14), &s).unwrap();
    MachineConfig::parse(VersionContract::V1_14, &c.to_yaml()).unwrap();
    assert!(MachineConfig::parse(VersionContract::V1_13, "hello: world\n").is_err());
    assert!(MachineConfig::parse(VersionContract::V1_13, "apiVersion: v1alpha1\nkind: NoSuchConfig\n").is_err());
    let mut i = input(VersionContract::V1_13);
    i.config_patches = vec!["machine:\n    kubelet:\n        imagee: x\n".into()];
    match config::generate(&i, &s) {
        Err(ConfigError::Schema(e)) => assert!(e.to_string().contains("/machine/kubelet"), "{e}"),
        other => panic!("unexpected {other:?}"),
    }
}
