use super::*;

fn ds(image: &str) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": "kube-proxy", "namespace": "kube-system", "labels": {"k8s-app": "kube-proxy"}},
        "spec": {"template": {"spec": {"containers": [{"name": "kube-proxy", "image": image}]}}}})
}

const T: &str = "2026-12-06T00:00:00Z";

/// The field set leaves out identity and server-owned fields, and keys
/// containers by name (structured-merge-diff; the field manager's strip set).
#[test]
fn fields_are_leaves_with_containers_keyed_by_name() {
    let f = fields_of(&ds("a:1"));
    let shown: Vec<String> = f.iter().map(|p| display(p)).collect();
    assert_eq!(
        shown,
        [
            ".metadata.labels.k8s-app",
            ".spec.template.spec.containers[name=\"kube-proxy\"]",
            ".spec.template.spec.containers[name=\"kube-proxy\"].image",
            ".spec.template.spec.containers[name=\"kube-proxy\"].name",
        ]
    );
}

/// FieldsV1 as kube-apiserver writes it (`fieldpath/serialize.go`).
#[test]
fn fields_v1_marks_keyed_items() {
    let v = fields_v1(&fields_of(&ds("a:1")));
    assert_eq!(
        v,
        json!({"f:metadata": {"f:labels": {"f:k8s-app": {}}},
            "f:spec": {"f:template": {"f:spec": {"f:containers": {"k:{\"name\":\"kube-proxy\"}": {
                ".": {}, "f:image": {}, "f:name": {}}}}}}})
    );
}

/// Another manager's field with another value is a conflict (409, upstream
/// message) unless forced; forcing takes the field over.
#[test]
fn a_conflict_is_refused_unless_forced() {
    let (mut obj, mut m) = (json!({}), BTreeMap::new());
    apply(&mut obj, &mut m, "person", false, &ds("a:1"), T).unwrap();
    let err = apply(&mut obj.clone(), &mut m.clone(), "talos", false, &ds("a:2"), T).unwrap_err();
    assert_eq!(
        conflict_message(&err),
        "Apply failed with 1 conflict: conflict with \"person\": \
         .spec.template.spec.containers[name=\"kube-proxy\"].image"
    );
    // The same value is no conflict: both own it then.
    apply(&mut obj, &mut m, "talos", false, &ds("a:1"), T).unwrap();
    assert!(m["person"].fields.len() == 4 && m["talos"].fields.len() == 4);
    apply(&mut obj, &mut m, "talos", true, &ds("a:2"), T).unwrap();
    assert_eq!(obj["spec"]["template"]["spec"]["containers"][0]["image"], "a:2");
    let image = fields_of(&ds("x")).into_iter().find(|p| display(p).ends_with(".image")).unwrap();
    assert!(!m["person"].fields.contains(&image) && m["talos"].fields.contains(&image));
}

/// Two conflicts: the plural message, grouped by manager.
#[test]
fn several_conflicts_are_listed() {
    let (mut obj, mut m) = (json!({}), BTreeMap::new());
    let mut a = ds("a:1");
    a["metadata"]["labels"]["k8s-app"] = json!("x");
    apply(&mut obj, &mut m, "person", false, &a, T).unwrap();
    let err = apply(&mut obj, &mut m, "talos", false, &ds("a:2"), T).unwrap_err();
    assert_eq!(
        conflict_message(&err),
        "Apply failed with 2 conflicts: conflicts with \"person\":\n\
         - .metadata.labels.k8s-app\n\
         - .spec.template.spec.containers[name=\"kube-proxy\"].image"
    );
}

/// A field the manager stops applying is removed, unless another manager
/// owns it too (`merge/update.go` prune of the previous applied set).
#[test]
fn fields_no_longer_applied_are_removed_unless_shared() {
    let (mut obj, mut m) = (json!({}), BTreeMap::new());
    let mut with = ds("a:1");
    with["metadata"]["labels"]["extra"] = json!("1");
    with["metadata"]["annotations"] = json!({"shared": "1"});
    apply(&mut obj, &mut m, "talos", false, &with, T).unwrap();
    let other = json!({"apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": "kube-proxy", "annotations": {"shared": "1"}}});
    apply(&mut obj, &mut m, "person", false, &other, T).unwrap();
    apply(&mut obj, &mut m, "talos", false, &ds("a:1"), T).unwrap();
    assert!(obj["metadata"]["labels"].get("extra").is_none(), "{obj}");
    assert_eq!(obj["metadata"]["annotations"]["shared"], "1", "{obj}");
}

/// Containers merge by name: a container another manager added stays.
#[test]
fn keyed_lists_merge_item_by_item() {
    let (mut obj, mut m) = (json!({}), BTreeMap::new());
    apply(&mut obj, &mut m, "talos", false, &ds("a:1"), T).unwrap();
    let sidecar = json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "kube-proxy"},
        "spec": {"template": {"spec": {"containers": [{"name": "sidecar", "image": "s:1"}]}}}});
    apply(&mut obj, &mut m, "person", false, &sidecar, T).unwrap();
    apply(&mut obj, &mut m, "talos", false, &ds("a:2"), T).unwrap();
    let names: Vec<&str> = obj["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["kube-proxy", "sidecar"]);
}

/// The managedFields entry of an apply.
#[test]
fn managed_fields_entries() {
    let (mut obj, mut m) = (json!({}), BTreeMap::new());
    apply(&mut obj, &mut m, "talos", false, &ds("a:1"), T).unwrap();
    let mf = managed_fields(&m);
    assert_eq!(mf[0]["manager"], "talos");
    assert_eq!(mf[0]["operation"], "Apply");
    assert_eq!(mf[0]["apiVersion"], "apps/v1");
    assert_eq!(mf[0]["fieldsType"], "FieldsV1");
    assert_eq!(mf[0]["time"], T);
}
