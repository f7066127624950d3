//! Strategic merge (behaviour.md §12): maps merge with patch values winning,
//! lists append except where Talos replaces or merges by key, `$patch:
//! delete` removes keys, list items or whole typed documents.

use serde_yaml_ng::{Mapping, Value};

use super::PatchError;

const PATCH_KEY: &str = "$patch";

/// Identity of a document: (apiVersion, kind, name); the legacy document
/// (no `kind`) is `None`.
fn identity(doc: &Value) -> Option<(String, String, String)> {
    let m = doc.as_mapping()?;
    let kind = m.get("kind")?.as_str()?.to_string();
    let text = |k: &str| m.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
    Some((text("apiVersion"), kind, text("name")))
}

fn is_delete(v: &Value) -> bool {
    v.as_mapping().and_then(|m| m.get(PATCH_KEY)).and_then(Value::as_str) == Some("delete")
}

fn doc_label(id: &Option<(String, String, String)>) -> String {
    match id {
        None => "v1alpha1".to_string(),
        Some((_, kind, name)) if name.is_empty() => kind.clone(),
        Some((_, kind, name)) => format!("{kind}[{name}]"),
    }
}

/// Merges the documents of patch `index` into `docs`.
pub fn merge_documents(index: usize, docs: &mut Vec<Value>, patch_docs: &[Value]) -> Result<(), PatchError> {
    let mut seen = Vec::new();
    for p in patch_docs {
        let id = identity(p);
        let label = doc_label(&id);
        if seen.contains(&id) {
            return Err(PatchError::Strategic {
                patch: index,
                path: label,
                message: "the patch touches the same document twice".to_string(),
            });
        }
        seen.push(id.clone());
        let pos = docs.iter().position(|d| identity(d) == id);
        if is_delete(p) {
            match (pos, &id) {
                (_, None) => {
                    return Err(PatchError::Strategic {
                        patch: index,
                        path: label,
                        message: "the v1alpha1 document cannot be deleted".to_string(),
                    });
                }
                (Some(pos), Some(_)) => {
                    docs.remove(pos);
                }
                (None, Some(_)) => {}
            }
            continue;
        }
        match pos {
            Some(pos) => {
                let kind = id.as_ref().map(|(_, k, _)| k.as_str()).unwrap_or("v1alpha1");
                let mut path = Vec::new();
                merge(&mut docs[pos], p, kind, &mut path).map_err(|(path, message)| PatchError::Strategic {
                    patch: index,
                    path: format!("{label}{path}"),
                    message,
                })?;
            }
            None => {
                let mut fresh = p.clone();
                strip_directives(&mut fresh);
                docs.push(fresh);
            }
        }
    }
    Ok(())
}

fn strip_directives(v: &mut Value) {
    match v {
        Value::Mapping(m) => {
            m.remove(PATCH_KEY);
            m.retain(|_, v| !is_delete(v));
            for (_, v) in m.iter_mut() {
                strip_directives(v);
            }
        }
        Value::Sequence(s) => {
            s.retain(|v| !is_delete(v));
            for v in s {
                strip_directives(v);
            }
        }
        _ => {}
    }
}

/// How a list at a path merges.
enum ListRule {
    Append,
    Replace,
    ByKey(&'static [&'static str]),
}

fn list_rule(kind: &str, path: &[String]) -> ListRule {
    let p: Vec<&str> = path.iter().map(String::as_str).collect();
    match (kind, p.as_slice()) {
        ("v1alpha1", ["cluster", "network", "podSubnets" | "serviceSubnets"]) => ListRule::Replace,
        ("KubeNetworkConfig", ["podSubnets" | "serviceSubnets"]) => ListRule::Replace,
        ("v1alpha1", ["machine", "network", "interfaces"]) => ListRule::ByKey(&["interface", "deviceSelector"]),
        ("v1alpha1", ["machine", "network", "interfaces", "vlans"]) => ListRule::ByKey(&["vlanId"]),
        ("ExtensionServiceConfig", ["configFiles"]) => ListRule::ByKey(&["mountPath"]),
        _ => ListRule::Append,
    }
}

/// Values replaced wholesale instead of merged.
fn replaces(kind: &str, path: &[String]) -> bool {
    let p: Vec<&str> = path.iter().map(String::as_str).collect();
    matches!(
        (kind, p.as_slice()),
        ("v1alpha1", ["cluster", "apiServer", "auditPolicy"])
            | (
                "KubeAuditPolicyConfig" | "KubeAuthenticationConfig" | "KubeCredentialProviderConfig",
                ["configuration"]
            )
            | ("KubeStaticPodConfig", ["pod"])
    )
}

type MergeResult = Result<(), (String, String)>;

fn merge(dst: &mut Value, patch: &Value, kind: &str, path: &mut Vec<String>) -> MergeResult {
    match (dst, patch) {
        (Value::Mapping(d), Value::Mapping(p)) => merge_map(d, p, kind, path),
        (Value::Sequence(d), Value::Sequence(p)) => merge_list(d, p, kind, path),
        (d, p) => {
            let mut p = p.clone();
            strip_directives(&mut p);
            *d = p;
            Ok(())
        }
    }
}

fn merge_map(d: &mut Mapping, p: &Mapping, kind: &str, path: &mut Vec<String>) -> MergeResult {
    for (k, pv) in p {
        if k.as_str() == Some(PATCH_KEY) {
            continue;
        }
        let key = k.as_str().map(str::to_string).unwrap_or_else(|| format!("{k:?}"));
        if is_delete(pv) {
            d.remove(k);
            continue;
        }
        path.push(key);
        if replaces(kind, path) || !d.contains_key(k) {
            let mut v = pv.clone();
            strip_directives(&mut v);
            d.insert(k.clone(), v);
        } else if let Some(dv) = d.get_mut(k) {
            merge(dv, pv, kind, path)?;
        }
        path.pop();
    }
    Ok(())
}

fn item_key<'a>(item: &'a Value, keys: &[&str]) -> Option<(&'static str, &'a Value)> {
    let m = item.as_mapping()?;
    for k in ["interface", "deviceSelector", "vlanId", "mountPath"] {
        if let Some(v) = m.get(k).filter(|_| keys.contains(&k)) {
            return Some((k, v));
        }
    }
    None
}

fn without_directive(v: &Value) -> Value {
    let mut v = v.clone();
    if let Value::Mapping(m) = &mut v {
        m.remove(PATCH_KEY);
    }
    v
}

fn merge_list(d: &mut Vec<Value>, p: &[Value], kind: &str, path: &mut Vec<String>) -> MergeResult {
    match list_rule(kind, path) {
        ListRule::Replace => {
            let mut v = Value::Sequence(p.to_vec());
            strip_directives(&mut v);
            if let Value::Sequence(s) = v {
                *d = s;
            }
        }
        ListRule::Append => {
            for item in p {
                if is_delete(item) {
                    let target = without_directive(item);
                    d.retain(|x| *x != target);
                } else {
                    let mut v = item.clone();
                    strip_directives(&mut v);
                    d.push(v);
                }
            }
        }
        ListRule::ByKey(keys) => {
            for item in p {
                let found = item_key(item, keys)
                    .and_then(|(k, kv)| d.iter().position(|x| x.as_mapping().and_then(|m| m.get(k)) == Some(kv)));
                match (found, is_delete(item)) {
                    (Some(pos), true) => {
                        d.remove(pos);
                    }
                    (None, true) => {}
                    (Some(pos), false) => {
                        // List positions are not part of the rule path.
                        merge(&mut d[pos], item, kind, path)?;
                    }
                    (None, false) => {
                        let mut v = item.clone();
                        strip_directives(&mut v);
                        d.push(v);
                    }
                }
            }
        }
    }
    Ok(())
}
