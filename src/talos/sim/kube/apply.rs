//! Server-side apply's field management, sans-IO: which manager owns which
//! field, conflicts, removal of fields a manager stops applying, the merge,
//! and `managedFields` as the API server writes them. The rules follow
//! sigs.k8s.io/structured-merge-diff (`merge/update.go`, `merge/conflict.go`,
//! `fieldpath/serialize.go`) and kube-apiserver's field manager
//! (`staging/src/k8s.io/apiserver/pkg/endpoints/handlers/fieldmanager`);
//! facts and sources in `src/talos/sim/README.md`, "Server-side apply".
//!
//! Lab simplifications: lists whose items are objects keyed by `name`
//! (containers, env, volumes, …) or by `mountPath` (volumeMounts) are
//! associative, every other list is atomic (the real schema keys container
//! and service ports by port and protocol); only apply operations are
//! tracked (no `Update` entries for patches by other managers).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use serde_json::{Map, Value, json};

/// One step of a field path.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Step {
    /// A field of a map.
    Field(String),
    /// The item of an associative list whose merge key (`.0`) has the
    /// value `.1`.
    Key(String, String),
}

/// A field path (`.spec.template.spec.containers[name="kube-proxy"].image`).
pub type FieldPath = Vec<Step>;

/// Renders a path as the API server's conflict messages do.
pub fn display(path: &[Step]) -> String {
    let mut s = String::new();
    for step in path {
        match step {
            Step::Field(f) => {
                let _ = write!(s, ".{f}");
            }
            Step::Key(k, v) => {
                let _ = write!(s, "[{k}={}]", Value::String(v.clone()));
            }
        }
    }
    s
}

/// The merge key of the list in field `field`, if it is associative here.
fn merge_key(field: &str) -> Option<&'static str> {
    match field {
        "containers" | "initContainers" | "ephemeralContainers" | "env" | "volumes" | "imagePullSecrets" => {
            Some("name")
        }
        "volumeMounts" => Some("mountPath"),
        _ => None,
    }
}

/// The key value of each item, if every item is an object carrying the key
/// as a string.
fn keyed<'a>(items: &'a [Value], key: &str) -> Option<Vec<(&'a str, &'a Value)>> {
    items.iter().map(|i| i.get(key).and_then(Value::as_str).map(|k| (k, i))).collect()
}

/// What a manager owns of an object: one entry per applied manager.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Managed {
    /// The `apiVersion` the manager applied with.
    pub api_version: String,
    /// When it last applied (RFC 3339).
    pub time: String,
    /// The fields it owns.
    pub fields: BTreeSet<FieldPath>,
}

/// Fields the API server owns itself and never lists (the field manager's
/// strip set): identity and server-set metadata, and `status`.
fn stripped(path: &[Step]) -> bool {
    let f = |i: usize| match path.get(i) {
        Some(Step::Field(f)) => Some(f.as_str()),
        _ => None,
    };
    matches!(
        (f(0), f(1)),
        (Some("apiVersion" | "kind" | "status"), _)
            | (
                Some("metadata"),
                Some(
                    "name"
                        | "namespace"
                        | "uid"
                        | "resourceVersion"
                        | "generation"
                        | "creationTimestamp"
                        | "managedFields"
                        | "selfLink"
                )
            )
    )
}

/// The leaf fields `cfg` sets (maps recurse; an associative list's items
/// are owned as items and field by field; any other value is a leaf).
pub fn fields_of(cfg: &Value) -> BTreeSet<FieldPath> {
    let mut out = BTreeSet::new();
    walk(cfg, &mut Vec::new(), &mut out);
    out.retain(|p| !stripped(p));
    out
}

fn walk(v: &Value, at: &mut FieldPath, out: &mut BTreeSet<FieldPath>) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, child) in m {
                at.push(Step::Field(k.clone()));
                walk_field(k, child, at, out);
                at.pop();
            }
        }
        _ => {
            out.insert(at.clone());
        }
    }
}

fn walk_field(name: &str, v: &Value, at: &mut FieldPath, out: &mut BTreeSet<FieldPath>) {
    if let (Value::Array(items), Some(key)) = (v, merge_key(name))
        && let Some(items) = keyed(items, key)
    {
        for (k, item) in items {
            at.push(Step::Key(key.to_string(), k.to_string()));
            out.insert(at.clone());
            walk(item, at, out);
            at.pop();
        }
        return;
    }
    walk(v, at, out);
}

/// The value at `path`, if any.
pub fn value_at<'a>(v: &'a Value, path: &[Step]) -> Option<&'a Value> {
    let mut cur = v;
    for step in path {
        cur = match step {
            Step::Field(f) => cur.get(f)?,
            Step::Key(k, val) => cur.as_array()?.iter().find(|i| i.get(k).and_then(Value::as_str) == Some(val))?,
        };
    }
    Some(cur)
}

fn remove_at(v: &mut Value, path: &[Step]) {
    let Some((last, parent)) = path.split_last() else { return };
    let mut cur = v;
    for step in parent {
        let next = match step {
            Step::Field(f) => cur.get_mut(f),
            Step::Key(k, val) => {
                cur.as_array_mut().and_then(|a| a.iter_mut().find(|i| i.get(k).and_then(Value::as_str) == Some(val)))
            }
        };
        match next {
            Some(n) => cur = n,
            None => return,
        }
    }
    match last {
        Step::Field(f) => {
            if let Some(m) = cur.as_object_mut() {
                m.remove(f);
            }
        }
        Step::Key(k, val) => {
            if let Some(a) = cur.as_array_mut() {
                a.retain(|i| i.get(k).and_then(Value::as_str) != Some(val));
            }
        }
    }
}

/// Merges `cfg` into `obj`: maps field by field, associative lists item by
/// item (the applied items first, in the applied order, then the others),
/// anything else replaced.
pub fn merge(obj: &mut Value, cfg: &Value) {
    match (obj.as_object_mut(), cfg.as_object()) {
        (Some(o), Some(c)) => {
            for (k, cv) in c {
                match o.get_mut(k) {
                    Some(ov) => merge_field(k, ov, cv),
                    None => {
                        o.insert(k.clone(), cv.clone());
                    }
                }
            }
        }
        _ => *obj = cfg.clone(),
    }
}

fn merge_field(name: &str, ov: &mut Value, cv: &Value) {
    if let (Value::Array(old), Value::Array(new), Some(key)) = (&*ov, cv, merge_key(name))
        && let (Some(_), Some(new_keys)) = (keyed(old, key), keyed(new, key))
    {
        let mut merged = Vec::new();
        for (k, item) in &new_keys {
            let mut m =
                old.iter().find(|i| i.get(key).and_then(Value::as_str) == Some(k)).cloned().unwrap_or(json!({}));
            merge(&mut m, item);
            merged.push(m);
        }
        for item in old {
            let k = item.get(key).and_then(Value::as_str);
            if !new_keys.iter().any(|(n, _)| Some(*n) == k) {
                merged.push(item.clone());
            }
        }
        *ov = Value::Array(merged);
        return;
    }
    if ov.is_object() && cv.is_object() {
        merge(ov, cv);
    } else {
        *ov = cv.clone();
    }
}

/// A conflict: another manager owns a field the apply would change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// The owner.
    pub manager: String,
    /// The `apiVersion` it applied with.
    pub api_version: String,
    /// The field.
    pub path: FieldPath,
}

/// kube-apiserver's message for a refused apply (apimachinery
/// `util/managedfields/internal/conflict.go`: managers quoted, sorted; an
/// Apply manager without "using <apiVersion>", which only Update entries
/// print).
pub fn conflict_message(conflicts: &[Conflict]) -> String {
    if let [c] = conflicts {
        return format!("Apply failed with 1 conflict: conflict with {:?}: {}", c.manager, display(&c.path));
    }
    let mut by_manager: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for c in conflicts {
        by_manager.entry(&c.manager).or_default().push(display(&c.path));
    }
    let mut lines = Vec::new();
    for (m, paths) in by_manager {
        lines.push(format!("conflicts with {m:?}:"));
        lines.extend(paths.into_iter().map(|p| format!("- {p}")));
    }
    format!("Apply failed with {} conflicts: {}", conflicts.len(), lines.join("\n"))
}

/// The Status `details.causes` of a refused apply (`NewApplyConflict`).
pub fn conflict_causes(conflicts: &[Conflict]) -> Value {
    Value::Array(
        conflicts
            .iter()
            .map(|c| {
                json!({"type": "FieldManagerConflict", "message": format!("conflict with {:?}", c.manager),
                "field": display(&c.path)})
            })
            .collect(),
    )
}

/// One apply by `manager` of `cfg` over `obj` (the stored object, `{}` if
/// new) whose fields `managers` own. Returns the conflicts (and changes
/// nothing) unless `force`, which takes the fields over.
pub fn apply(
    obj: &mut Value,
    managers: &mut BTreeMap<String, Managed>,
    manager: &str,
    force: bool,
    cfg: &Value,
    time: &str,
) -> Result<(), Vec<Conflict>> {
    let applied = fields_of(cfg);
    let mut conflicts = Vec::new();
    for (other, m) in managers.iter() {
        if other == manager {
            continue;
        }
        for p in applied.intersection(&m.fields) {
            let leaf = value_at(cfg, p).is_some_and(|v| !v.is_object());
            if leaf && value_at(obj, p) != value_at(cfg, p) {
                conflicts.push(Conflict {
                    manager: other.clone(),
                    api_version: m.api_version.clone(),
                    path: p.clone(),
                });
            }
        }
    }
    if !conflicts.is_empty() && !force {
        return Err(conflicts);
    }
    for c in &conflicts {
        if let Some(m) = managers.get_mut(&c.manager) {
            m.fields.remove(&c.path);
        }
    }
    managers.retain(|_, m| !m.fields.is_empty());
    // Fields this manager applied before and no longer does, that nobody
    // else owns, go (deepest first, so a removed item takes its fields).
    if let Some(before) = managers.get(manager) {
        let mut dropped: Vec<&FieldPath> = before
            .fields
            .difference(&applied)
            .filter(|p| !managers.iter().any(|(o, m)| o != manager && m.fields.contains(*p)))
            .collect();
        dropped.sort_by_key(|p| std::cmp::Reverse(p.len()));
        let dropped: Vec<FieldPath> = dropped.into_iter().cloned().collect();
        for p in dropped {
            remove_at(obj, &p);
        }
    }
    merge(obj, cfg);
    let api_version = cfg["apiVersion"].as_str().unwrap_or_default().to_string();
    managers.insert(manager.to_string(), Managed { api_version, time: time.to_string(), fields: applied });
    Ok(())
}

/// `metadata.managedFields` for `managers`, in FieldsV1 form.
pub fn managed_fields(managers: &BTreeMap<String, Managed>) -> Value {
    Value::Array(
        managers
            .iter()
            .map(|(name, m)| {
                json!({"manager": name, "operation": "Apply", "apiVersion": m.api_version, "time": m.time,
                    "fieldsType": "FieldsV1", "fieldsV1": fields_v1(&m.fields)})
            })
            .collect(),
    )
}

/// A field set as FieldsV1 (`fieldpath/serialize.go`): `f:<name>` for a
/// field, `k:{"<key>":"<value>"}` for a keyed item with `.` marking the
/// item itself.
pub fn fields_v1(fields: &BTreeSet<FieldPath>) -> Value {
    let mut root = Map::new();
    for path in fields {
        insert_path(&mut root, path);
    }
    Value::Object(root)
}

fn insert_path(map: &mut Map<String, Value>, path: &[Step]) {
    let Some((step, rest)) = path.split_first() else { return };
    let key = match step {
        Step::Field(f) => format!("f:{f}"),
        Step::Key(k, v) => format!("k:{}", json!({ k: v })),
    };
    let entry = map.entry(key).or_insert_with(|| json!({}));
    if let Some(child) = entry.as_object_mut() {
        if rest.is_empty() && matches!(step, Step::Key(..)) {
            child.insert(".".to_string(), json!({}));
        }
        insert_path(child, rest);
    }
}

#[cfg(test)]
mod tests;
