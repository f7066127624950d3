//! Fields Talos decodes but leaves out of its published JSON schema.
//!
//! Upstream generates the schema from the Go types and skips every field
//! marked `docgen:nodoc`, which from v1.12 on is most deprecated v1alpha1
//! field (`machine.kubelet`, `machine.network`, `machine.install`,
//! `machine.files`, `machine.disks`, …). The decoder still reads them, and
//! strictly: it rejects unknown keys only (siderolabs/talos
//! `pkg/machinery/config/configloader/internal/decoder/decoder.go`,
//! `KnownFields(true)`; the fields in
//! `pkg/machinery/config/types/v1alpha1/v1alpha1_types.go`).
//!
//! `schemas/nodoc.json` lists those fields with their definitions (taken
//! from the newest published schema that still documented them, or
//! written from the Go types where none did; see `schemas/README.md`).
//! [`merge`] adds them to a contract's schema, in Go declaration order (the
//! order Talos encodes them in), each marked with [`MARK`] when the
//! contract's Talos deprecates it; [`deprecations`] reports the marked
//! fields a document sets.

use std::collections::HashMap;

use serde::Deserialize;
use serde_yaml_ng::{Mapping, Value};

use super::VersionContract;

/// Keyword carrying the deprecation note on a merged property schema
/// (an annotation: validators ignore unknown keywords).
pub(super) const MARK: &str = "x-proxtalos-deprecated";

#[derive(Deserialize)]
struct Overlay {
    /// Definition name → every field key in Go declaration order.
    order: HashMap<String, Vec<String>>,
    fields: Vec<Field>,
    #[serde(rename = "$defs")]
    defs: Mapping,
}

#[derive(Deserialize)]
struct Field {
    def: String,
    key: String,
    schema: Value,
    /// Talos's own warning text (`v1alpha1_validation.go`), used verbatim.
    warning: Option<String>,
    /// The `Deprecated:` comment of the Go field.
    deprecated: Option<String>,
    /// First contract whose Talos deprecates the field.
    since: Option<String>,
}

/// A deprecated field a document sets.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Deprecation {
    /// Zero-based document index.
    pub document: usize,
    /// Document kind (`v1alpha1` for the legacy document).
    pub kind: String,
    /// Dotted path of the field, e.g. `machine.kubelet`.
    pub path: String,
    /// What Talos says: the replacement document, where it names one.
    pub message: String,
}

impl std::fmt::Display for Deprecation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// Adds the hidden fields (and the definitions they need) to `schema`.
pub(super) fn merge(contract: VersionContract, schema: &mut Value) -> Result<(), String> {
    let overlay: Overlay = serde_json::from_str(&super::nodoc_source()?).map_err(|e| e.to_string())?;
    let defs = schema.get_mut("$defs").and_then(Value::as_mapping_mut).ok_or("schema has no $defs")?;
    for (name, def) in overlay.defs {
        if !defs.contains_key(&name) {
            defs.insert(name, def);
        }
    }
    let mut by_def: HashMap<&str, Vec<&Field>> = HashMap::new();
    for f in &overlay.fields {
        by_def.entry(f.def.as_str()).or_default().push(f);
    }
    for (def, fields) in by_def {
        let Some(node) = defs.get_mut(def).and_then(Value::as_mapping_mut) else { continue };
        let old = match node.remove("properties") {
            Some(Value::Mapping(m)) => m,
            _ => Mapping::new(),
        };
        let mut added: HashMap<&str, Value> = fields
            .iter()
            .filter(|f| !old.contains_key(f.key.as_str()))
            .map(|f| (f.key.as_str(), marked(contract, f)))
            .collect();
        let mut props = Mapping::new();
        let mut rest = old;
        for key in overlay.order.get(def).into_iter().flatten() {
            if let Some(v) = rest.remove(key.as_str()) {
                props.insert(key.as_str().into(), v);
            } else if let Some(v) = added.remove(key.as_str()) {
                props.insert(key.as_str().into(), v);
            }
        }
        props.extend(rest);
        node.insert("properties".into(), Value::Mapping(props));
    }
    Ok(())
}

/// The field's schema, with the deprecation note when `contract` has it.
fn marked(contract: VersionContract, f: &Field) -> Value {
    let mut schema = f.schema.clone();
    let since = f.since.as_deref().and_then(|s| s.parse::<VersionContract>().ok());
    let note = match (&f.warning, &f.deprecated, since) {
        (_, _, Some(since)) if since > contract => None,
        (Some(w), _, _) => Some(w.clone()),
        (None, Some(d), Some(since)) => Some(format!("is deprecated since Talos {since}: {d}")),
        _ => None,
    };
    if let (Some(note), Some(m)) = (note, schema.as_mapping_mut()) {
        m.insert(MARK.into(), note.into());
    }
    schema
}

/// Every marked field set in `doc` (outermost only: a deprecated field's
/// own fields are not reported again). `node` is the document's schema.
pub(super) fn deprecations(
    document: usize,
    kind: &str,
    doc: &Value,
    node: Option<&Value>,
    defs: Option<&Value>,
) -> Vec<Deprecation> {
    let mut out = Vec::new();
    walk(doc, node, defs, &mut Vec::new(), &mut |path, note| {
        let path = path.join(".");
        // Talos's own wording names the path itself; a comment does not.
        let message = if note.starts_with('.') || note.contains(" is deprecated,") {
            note.to_string()
        } else {
            format!("`{path}` {note}")
        };
        out.push(Deprecation { document, kind: kind.to_string(), path, message });
    });
    out
}

fn walk(
    value: &Value,
    node: Option<&Value>,
    defs: Option<&Value>,
    path: &mut Vec<String>,
    hit: &mut dyn FnMut(&[String], &str),
) {
    let node = super::shape(value, node, defs);
    match value {
        Value::Mapping(m) => {
            let props = node.and_then(|n| n.get("properties")).and_then(Value::as_mapping);
            for (k, v) in m {
                let Some(prop) = props.and_then(|p| p.get(k)) else { continue };
                path.push(super::key_text(k));
                match prop.get(MARK).and_then(Value::as_str) {
                    Some(note) => hit(path, note),
                    None => walk(v, Some(prop), defs, path, hit),
                }
                path.pop();
            }
        }
        Value::Sequence(items) => {
            for (i, item) in items.iter().enumerate() {
                path.push(i.to_string());
                walk(item, node.and_then(|n| n.get("items")), defs, path, hit);
                path.pop();
            }
        }
        _ => {}
    }
}
