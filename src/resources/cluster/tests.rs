//! Unit tests of `proxtalos_cluster`'s plan-time logic.

#![allow(clippy::unwrap_used)]

use super::*;

#[test]
fn schema_is_consistent() {
    let s = schema::schema();
    assert!(s.check().is_empty(), "{:?}", s.check());
}

fn member(name: &str, address: &str) -> Value {
    Value::object([
        ("name", Value::string(name)),
        ("address", Value::string(address)),
        ("install_disk", Value::Null),
        ("config_patches", Value::Null),
    ])
}

fn config() -> Value {
    Value::object([
        ("cluster_name", Value::string("c")),
        ("cluster_endpoint", Value::string("https://10.0.0.10:6443")),
        ("talos_version", Value::string("v1.14.2")),
        ("kubernetes_version", Value::string("1.33.1")),
        ("control_plane", Value::List(vec![member("cp-1", "10.0.0.11"), member("cp-2", "10.0.0.11")])),
        ("worker", Value::List(vec![member("w-1", "10.0.0.21")])),
        ("rollout", Value::object([("worker_parallelism", Value::int(2))])),
        ("schematic_id", Value::string("ABC")),
    ])
}

#[test]
fn bad_input_names_the_attribute() {
    let mut d = Diagnostics::default();
    validate(&config(), &mut d);
    let paths: Vec<String> = d.0.iter().map(|d| d.path.as_ref().map(|p| p.to_string()).unwrap_or_default()).collect();
    assert!(paths.iter().any(|p| p.contains("control_plane") && p.contains("address")), "{paths:?}");
    assert!(paths.iter().any(|p| p.contains("worker_parallelism")), "{paths:?}");
    assert!(paths.iter().any(|p| p.contains("schematic_id")), "{paths:?}");
    let texts: Vec<&str> = d.0.iter().map(|d| d.summary.as_str()).collect();
    assert!(texts.contains(&"Two nodes with one address"), "{texts:?}");
}

#[test]
fn the_api_port_is_the_endpoints() {
    assert_eq!(api_port(&config()), 6443);
    let c = Value::object([("cluster_endpoint", Value::string("https://vip.lan:7443"))]);
    assert_eq!(api_port(&c), 7443);
}

#[test]
fn a_configured_node_back_in_maintenance_mode_is_a_warning_on_its_address() {
    let m = model::Member {
        name: "cp-1".into(),
        role: Role::ControlPlane,
        address: "10.0.0.11".into(),
        install_disk: "/dev/sda".into(),
        patches: vec![],
        index: 0,
    };
    let status = |v: &str| Status {
        role: "controlplane".into(),
        address: "10.0.0.11".into(),
        talos_version: v.into(),
        kubernetes_version: String::new(),
        config_hash: String::new(),
    };
    let steps = [Step::Join { name: "cp-1".into(), role: Role::ControlPlane }];
    let mut prior = BTreeMap::new();
    prior.insert("cp-1".to_string(), status("v1.13.9"));
    let mut d = Diagnostics::default();
    warn_rejoins(&steps, &prior, std::slice::from_ref(&m), &mut d);
    assert_eq!(d.0.len(), 1);
    assert!(d.0[0].path.as_ref().unwrap().to_string().contains("address"));
    // Never read (an import that could not reach it): no claim either way.
    prior.insert("cp-1".to_string(), status(""));
    let mut d = Diagnostics::default();
    warn_rejoins(&steps, &prior, std::slice::from_ref(&m), &mut d);
    assert!(d.0.is_empty());
}
