//! Talos's JSON schemas, embedded per contract: key order for re-encoding
//! (Go encodes struct fields in declaration order, which the schema's
//! `properties` keep, and map keys sorted), validation, and the deprecated
//! fields a config sets.
//!
//! The files under `schemas/` are upstream's (`shared/specs/talos/schemas/`)
//! with the annotation keywords `description`, `markdownDescription`,
//! `x-intellij-html-description` and `title` removed; the v1.14 file is the
//! `main` branch schema (no v1.14 tag existed when it was taken), and v1.15
//! uses the same file (upstream's `website/content/v1.15/schemas/` is
//! identical to it). Upstream leaves `docgen:nodoc` fields out of its
//! schema although Talos decodes them; [`nodoc`] adds them back from
//! `schemas/nodoc.json` at load time (see `schemas/README.md`), and
//! [`conflicts`] refuses the ones Talos refuses next to a typed document.
//! `build.rs` embeds the files compressed; a contract's file is inflated and
//! parsed once, the first time that contract is validated.

use std::collections::HashMap;
use std::sync::OnceLock;

use serde_yaml_ng::{Mapping, Value};

use super::version::VersionContract;

mod check;
mod conflicts;
mod nodoc;
mod worker_rules;

pub use nodoc::Deprecation;

/// A schema problem: the embedded schema is unusable or a document fails it.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    /// The embedded schema could not be loaded (a build problem).
    #[error("embedded schema for {contract} is unusable: {message}")]
    Embedded {
        /// Contract.
        contract: VersionContract,
        /// Details.
        message: String,
    },
    /// A document is neither `version: v1alpha1` nor a kind the schema knows.
    #[error("document {document} is not a Talos {contract} document: {message}")]
    UnknownDocument {
        /// Zero-based document index.
        document: usize,
        /// Contract.
        contract: VersionContract,
        /// Why.
        message: String,
    },
    /// A document violates the schema.
    #[error("document {document} ({kind}){}: {message}", if path.is_empty() { String::new() } else { format!(" at {path}") })]
    Invalid {
        /// Zero-based document index.
        document: usize,
        /// Document kind (`v1alpha1` for the legacy document).
        kind: String,
        /// JSON pointer of the offending value inside the document.
        path: String,
        /// The validator's message.
        message: String,
    },
    /// A typed document Talos refuses next to a v1alpha1 setting it replaces.
    #[error(
        "document {document} ({kind}) conflicts with the v1alpha1 document: {message} (Talos refuses both; \
keep one: move the setting into the {kind} document, or remove the document with `$patch: delete`)"
    )]
    Conflict {
        /// Zero-based index of the typed document.
        document: usize,
        /// Its kind.
        kind: String,
        /// Talos's message.
        message: String,
    },
}

/// The raw-DEFLATE compressed schema text build.rs made of `schemas/<name>.json`.
macro_rules! compressed {
    ($name:literal) => {
        include_bytes!(concat!(env!("OUT_DIR"), "/schemas/", $name, ".json.deflate"))
    };
}

fn source(contract: VersionContract) -> Result<String, String> {
    inflate(match contract {
        VersionContract::V1_10 => compressed!("v1.10"),
        VersionContract::V1_11 => compressed!("v1.11"),
        VersionContract::V1_12 => compressed!("v1.12"),
        VersionContract::V1_13 => compressed!("v1.13"),
        VersionContract::V1_14 | VersionContract::V1_15 => compressed!("v1.14"),
    })
}

/// The overlay of fields upstream's schema leaves out (`schemas/nodoc.json`).
pub(crate) fn nodoc_source() -> Result<String, String> {
    inflate(compressed!("nodoc"))
}

fn inflate(bytes: &[u8]) -> Result<String, String> {
    use std::io::Read;
    let mut text = String::new();
    flate2::read::DeflateDecoder::new(bytes)
        .read_to_string(&mut text)
        .map_err(|e| format!("embedded schema does not inflate: {e}"))?;
    Ok(text)
}

/// One contract's schema, loaded once.
struct Loaded {
    /// Order-preserving tree (for key order).
    ordered: Value,
    /// `kind` → `$defs` name.
    kinds: HashMap<String, String>,
    /// The validator over `json`'s `$defs`.
    checker: check::Checker,
}

type Slot = OnceLock<Result<Loaded, String>>;
static SLOTS: [Slot; VersionContract::ALL.len()] = [const { OnceLock::new() }; VersionContract::ALL.len()];

fn load(contract: VersionContract) -> Result<&'static Loaded, SchemaError> {
    let idx = VersionContract::ALL.iter().position(|c| *c == contract).unwrap_or(0);
    SLOTS[idx]
        .get_or_init(|| {
            let text = source(contract)?;
            let mut ordered: Value = serde_yaml_ng::from_str(&text).map_err(|e| e.to_string())?;
            nodoc::merge(contract, &mut ordered)?;
            let json = serde_json::to_value(&ordered).map_err(|e| e.to_string())?;
            let mut kinds = HashMap::new();
            if let Some(defs) = json.get("$defs").and_then(|d| d.as_object()) {
                for (name, def) in defs {
                    let kind = def.pointer("/properties/kind/enum/0").and_then(|k| k.as_str());
                    if let Some(kind) = kind {
                        kinds.insert(kind.to_string(), name.clone());
                    }
                }
            }
            let checker = check::Checker::new(json)?;
            Ok(Loaded { ordered, kinds, checker })
        })
        .as_ref()
        .map_err(|message| SchemaError::Embedded { contract, message: message.clone() })
}

/// `kind` of a document (`v1alpha1` for the legacy one), if it is a Talos document.
pub fn document_kind(doc: &Value) -> Option<String> {
    let m = doc.as_mapping()?;
    if let Some(kind) = m.get("kind").and_then(Value::as_str) {
        return Some(kind.to_string());
    }
    (m.get("version").and_then(Value::as_str) == Some("v1alpha1")).then(|| "v1alpha1".to_string())
}

/// Kinds renamed between the embedded v1.14 (`main`) schema and the
/// generator the goldens come from: `(emitted kind, schema kind)`.
const KIND_ALIASES: &[(&str, &str)] = &[("UnattendedInstallConfig", "UnattendedInstall")];

fn schema_kind(kind: &str) -> &str {
    KIND_ALIASES.iter().find(|(k, _)| *k == kind).map_or(kind, |(_, s)| s)
}

fn def_name(loaded: &Loaded, kind: &str) -> Option<String> {
    if kind == "v1alpha1" {
        return Some("v1alpha1.Config".to_string());
    }
    loaded.kinds.get(schema_kind(kind)).cloned()
}

/// Puts every mapping in `doc` in the order Talos's encoder would write it:
/// struct fields in schema order (unknown keys after, as they were), maps
/// and untyped objects sorted by key. Unknown documents are left alone.
pub fn canonicalize(contract: VersionContract, doc: &mut Value) -> Result<(), SchemaError> {
    let loaded = load(contract)?;
    let Some(kind) = document_kind(doc) else {
        return Ok(());
    };
    let Some(name) = def_name(loaded, &kind) else {
        return Ok(());
    };
    let defs = loaded.ordered.get("$defs");
    let node = defs.and_then(|d| d.get(name.as_str()));
    order(doc, node, defs);
    Ok(())
}

fn resolve<'a>(mut node: Option<&'a Value>, defs: Option<&'a Value>) -> Option<&'a Value> {
    for _ in 0..16 {
        let r = node?.get("$ref").and_then(Value::as_str);
        match r.and_then(|r| r.strip_prefix("#/$defs/")) {
            Some(name) => node = defs?.get(name),
            None => return node,
        }
    }
    node
}

/// Picks the alternative of a `oneOf`/`anyOf` that fits `value`'s shape.
fn alternative<'a>(node: &'a Value, value: &Value, defs: Option<&'a Value>) -> Option<&'a Value> {
    let alts = node.get("oneOf").or_else(|| node.get("anyOf"))?.as_sequence()?;
    alts.iter().map(|a| resolve(Some(a), defs)).find_map(|a| {
        let a = a?;
        let fits = match value {
            Value::Mapping(_) => {
                a.get("properties").is_some()
                    || a.get("patternProperties").is_some()
                    || a.get("additionalProperties").is_some_and(Value::is_mapping)
            }
            Value::Sequence(_) => a.get("items").is_some(),
            _ => false,
        };
        fits.then_some(a)
    })
}

/// The schema node `value` is checked against: `node` with `$ref`s
/// followed and, for a `oneOf`/`anyOf`, the alternative of `value`'s shape.
fn shape<'a>(value: &Value, node: Option<&'a Value>, defs: Option<&'a Value>) -> Option<&'a Value> {
    let node = resolve(node, defs);
    match node.filter(|n| n.get("properties").is_none() && n.get("items").is_none()) {
        Some(n) => alternative(n, value, defs).or(node),
        None => node,
    }
}

fn order(value: &mut Value, node: Option<&Value>, defs: Option<&Value>) {
    let node = shape(value, node, defs);
    match value {
        Value::Mapping(m) => {
            let props = node.and_then(|n| n.get("properties")).and_then(Value::as_mapping);
            let map_schema = node.and_then(|n| {
                n.get("patternProperties")
                    .and_then(Value::as_mapping)
                    .and_then(|p| p.values().next())
                    .or_else(|| n.get("additionalProperties").filter(|a| a.is_mapping()))
            });
            let old = std::mem::take(m);
            let mut entries: Vec<(Value, Value)> = old.into_iter().collect();
            match props {
                Some(props) => {
                    let rank = |k: &Value| props.keys().position(|p| p == k).unwrap_or(usize::MAX);
                    entries.sort_by_key(|(k, _)| rank(k));
                    for (k, v) in entries.iter_mut() {
                        order(v, props.get(&*k), defs);
                    }
                }
                None => {
                    entries.sort_by_key(|(k, _)| key_text(k));
                    for (_, v) in entries.iter_mut() {
                        order(v, map_schema, defs);
                    }
                }
            }
            *m = entries.into_iter().collect::<Mapping>();
        }
        Value::Sequence(items) => {
            let item_schema = node.and_then(|n| n.get("items"));
            for item in items {
                order(item, item_schema, defs);
            }
        }
        _ => {}
    }
}

fn key_text(k: &Value) -> String {
    match k {
        Value::String(s) => s.clone(),
        other => serde_yaml_ng::to_string(other).unwrap_or_default(),
    }
}

/// Validates documents against the contract's schema. Every document must
/// be a Talos document the schema knows.
pub fn validate(contract: VersionContract, docs: &[Value]) -> Result<(), SchemaError> {
    let loaded = load(contract)?;
    for (document, doc) in docs.iter().enumerate() {
        let unknown = |message: String| SchemaError::UnknownDocument { document, contract, message };
        let kind = document_kind(doc)
            .ok_or_else(|| unknown("expected `version: v1alpha1` or `apiVersion`/`kind` keys".to_string()))?;
        let name = def_name(loaded, &kind).ok_or_else(|| unknown(format!("unknown kind {kind:?}")))?;
        let mut json = serde_json::to_value(doc).map_err(|e| unknown(e.to_string()))?;
        if kind != "v1alpha1"
            && let Some(obj) = json.as_object_mut()
        {
            obj.insert("kind".to_string(), schema_kind(&kind).into());
        }
        // The message names the path and the rule only: the failing value
        // may be key material (a CA under `/machine/ca`).
        if let Some(err) = loaded.checker.first_violation(&name, &json) {
            return Err(SchemaError::Invalid { document, kind, path: err.path, message: err.message });
        }
    }
    if let Some(c) = conflicts::first(contract, docs) {
        return Err(SchemaError::Conflict { document: c.document, kind: c.kind, message: c.message });
    }
    if let Some((document, path)) = worker_rules::worker_vip(docs) {
        let (kind, message) = ("v1alpha1".to_string(), worker_rules::WORKER_VIP.to_string());
        return Err(SchemaError::Invalid { document, kind, path, message });
    }
    Ok(())
}

/// The deprecated fields `docs` set, with Talos's note on each (the
/// replacement document where Talos names one). Documents the schema does
/// not know are skipped (validation reports them).
pub fn deprecations(contract: VersionContract, docs: &[Value]) -> Result<Vec<Deprecation>, SchemaError> {
    let loaded = load(contract)?;
    let defs = loaded.ordered.get("$defs");
    let mut out = Vec::new();
    for (document, doc) in docs.iter().enumerate() {
        let Some(kind) = document_kind(doc) else { continue };
        let Some(name) = def_name(loaded, &kind) else { continue };
        let node = defs.and_then(|d| d.get(name.as_str()));
        out.extend(nodoc::deprecations(document, &kind, doc, node, defs));
    }
    Ok(out)
}
