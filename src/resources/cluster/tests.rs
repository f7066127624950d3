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
        installer: String::new(),
    };
    let steps = [Step::Join { name: "cp-1".into(), role: Role::ControlPlane }];
    let mut prior = BTreeMap::new();
    prior.insert("cp-1".to_string(), status("v1.13.9"));
    let mut d = Diagnostics::default();
    checks::warn_rejoins(&steps, &prior, std::slice::from_ref(&m), &mut d);
    assert_eq!(d.0.len(), 1);
    assert!(d.0[0].path.as_ref().unwrap().to_string().contains("address"));
    // Never read (an import that could not reach it): no claim either way.
    prior.insert("cp-1".to_string(), status(""));
    let mut d = Diagnostics::default();
    checks::warn_rejoins(&steps, &prior, std::slice::from_ref(&m), &mut d);
    assert!(d.0.is_empty());
}

#[test]
fn removing_the_control_plane_the_endpoint_names_is_a_warning_on_cluster_endpoint() {
    let status = |address: &str| Status { role: "controlplane".into(), address: address.into(), ..Status::default() };
    let prior: BTreeMap<String, Status> =
        [("cp-1".to_string(), status("10.0.0.11")), ("cp-3".to_string(), status("10.0.0.13"))].into();
    let remove = |name: &str| Step::Remove { name: name.into(), role: Role::ControlPlane };
    let mut d = Diagnostics::default();
    checks::warn_endpoint_removed(&[remove("cp-3")], &prior, "https://10.0.0.11:6443", &mut d);
    assert!(d.0.is_empty(), "another control plane leaves");
    checks::warn_endpoint_removed(&[remove("cp-1")], &prior, "https://10.0.0.10:6443", &mut d);
    assert!(d.0.is_empty(), "the endpoint is a VIP");
    checks::warn_endpoint_removed(&[remove("cp-1")], &prior, "https://10.0.0.11:6443", &mut d);
    assert_eq!(d.0.len(), 1);
    assert_eq!(d.0[0].path.as_ref().map(|p| p.to_string()).as_deref(), Some("cluster_endpoint"));
    assert!(d.0[0].summary.contains("cp-1"), "{:?}", d.0[0]);
}

fn desired(talos: &str, kubernetes: (&str, &str)) -> Desired {
    Desired {
        members: Vec::new(),
        contract: "v1.13".into(),
        installer: String::new(),
        talos_version: talos.into(),
        kubernetes: (kubernetes.0.into(), kubernetes.1.into()),
        now_texts: BTreeMap::new(),
        final_texts: BTreeMap::new(),
        planned: BTreeMap::new(),
        unchanged: BTreeMap::new(),
    }
}

/// Errors (path, summary) of the version checks for `d` over nodes that
/// run `running`.
fn version_errors(d: &Desired, running: &str) -> Vec<(String, String)> {
    let s = Status { role: "controlplane".into(), talos_version: running.into(), ..Status::default() };
    let prior: BTreeMap<String, Status> = [("cp-1".to_string(), s)].into();
    let mut diags = Diagnostics::default();
    checks::versions_go_together(d, &prior, &mut diags);
    diags.0.iter().map(|d| (d.path.as_ref().map(|p| p.to_string()).unwrap_or_default(), d.summary.clone())).collect()
}

#[test]
fn versions_that_talos_would_refuse_together_are_plan_errors() {
    // pkg/machinery/compatibility: Talos 1.13 runs Kubernetes 1.31.0–1.36.x,
    // Talos 1.14 1.32.0–1.37.x and upgrades hosts from 1.12.0 on.
    assert!(version_errors(&desired("v1.13.9", ("1.34.1", "1.35.0")), "v1.13.9").is_empty());
    let e = version_errors(&desired("v1.13.9", ("1.36.2", "1.37.0")), "v1.13.9");
    assert_eq!(e, [("kubernetes_version".to_string(), "Kubernetes version not supported by Talos".to_string())]);
    // Talos goes first, with the Kubernetes the nodes run now.
    let e = version_errors(&desired("v1.14.2", ("1.31.4", "1.32.0")), "v1.13.9");
    assert_eq!(e[0].0, "talos_version", "{e:?}");
    assert!(e[0].1.contains("before the Kubernetes upgrade"), "{e:?}");
    let e = version_errors(&desired("v1.14.2", ("1.34.1", "1.34.1")), "v1.11.6");
    assert_eq!(e, [("talos_version".to_string(), "Talos upgrade path not supported".to_string())]);
    assert!(version_errors(&desired("v1.14.2", ("1.34.1", "1.34.1")), "v1.12.0").is_empty());
}
