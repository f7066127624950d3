//! Image Factory schematics and their ids, computed locally.
//!
//! The factory (siderolabs/image-factory `pkg/schematic/schematic.go`)
//! decodes a schematic strictly (unknown fields are errors) into its Go
//! struct, and the id is the SHA-256 of that struct marshalled again by
//! go-yaml (`yaml.Marshal`: 4-space indentation, fields in struct order,
//! `omitempty` fields left out when empty). So the same document written
//! differently (JSON or YAML, `extraKernelArgs: []`, another key order)
//! has one id. Upstream's own test vectors are in the tests below.
//!
//! The rendering is the one the machine configurations use
//! (`talos::yaml::emit_document`, go-yaml v3's 4-space style and scalar
//! quoting, literal blocks for multi-line values). Refused with an error
//! rather than guessed: overlay `options` whose names are not plain
//! letters (go-yaml sorts a map's keys in an order of its own) or that
//! hold fractional numbers.

use serde_yaml_ng::{Mapping, Value};
use sha2::{Digest, Sha256};

/// Why a schematic has no local id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchematicError {
    /// Not YAML (or JSON).
    #[error("the schematic is not YAML: {0}")]
    Syntax(String),
    /// A field the factory does not know, or a value of the wrong type
    /// (`path` names it, e.g. `customization.meta[0].key`).
    #[error("{path}: {message}")]
    Invalid {
        /// Where.
        path: String,
        /// What.
        message: String,
    },
    /// A value this module cannot render as the factory does.
    #[error("{path}: {message} (register the schematic with the Image Factory to get its id)")]
    Unsupported {
        /// Where.
        path: String,
        /// What.
        message: String,
    },
}

/// Whether `s` has the form of a schematic id (64 hex digits).
pub fn valid_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The factory's id of `document` (YAML or JSON).
pub fn id(document: &str) -> Result<String, SchematicError> {
    Ok(id_of_canonical(&canonical(document)?))
}

/// The id of a document already in its [`canonical`] form.
pub fn id_of_canonical(canonical: &str) -> String {
    Sha256::digest(canonical.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// The document as the factory marshals it (what [`id`] hashes).
pub fn canonical(document: &str) -> Result<String, SchematicError> {
    let root: Value = if document.trim().is_empty() {
        Value::Mapping(Mapping::new())
    } else {
        serde_yaml_ng::from_str(document).map_err(|e| SchematicError::Syntax(e.to_string()))?
    };
    let root = fields(&root, "", "schematic.Schematic", &["owner", "overlay", "customization"])?;
    let mut out = Mapping::new();
    if let Some(owner) = root.get("owner").map(|v| string(v, "owner")).transpose()?.filter(|o| !o.is_empty()) {
        out.insert("owner".into(), Value::String(owner));
    }
    if let Some(overlay) = root.get("overlay") {
        let o = fields(overlay, "overlay", "schematic.Overlay", &["image", "name", "options"])?;
        let image = o.get("image").map(|v| string(v, "overlay.image")).transpose()?.unwrap_or_default();
        let name = o.get("name").map(|v| string(v, "overlay.name")).transpose()?.unwrap_or_default();
        let options = o.get("options").map(|v| options(v, "overlay.options")).transpose()?.filter(|m| !m.is_empty());
        // Overlay's own image and name have no omitempty.
        if !image.is_empty() || !name.is_empty() || options.is_some() {
            let mut m = Mapping::new();
            m.insert("image".into(), Value::String(image));
            m.insert("name".into(), Value::String(name));
            if let Some(opts) = options {
                m.insert("options".into(), Value::Mapping(opts));
            }
            out.insert("overlay".into(), Value::Mapping(m));
        }
    }
    let c = root.get("customization").cloned().unwrap_or(Value::Null);
    out.insert("customization".into(), Value::Mapping(customization(&c)?));
    Ok(crate::talos::yaml::emit_document(&Value::Mapping(out)))
}

/// The official extensions `document` asks for
/// (`customization.systemExtensions.officialExtensions`), as written.
/// Unlike [`canonical`], this works for every document the factory
/// accepts, overlay options of any shape included.
pub fn official_extensions(document: &str) -> Result<Vec<String>, SchematicError> {
    if document.trim().is_empty() {
        return Ok(Vec::new());
    }
    let root: Value = serde_yaml_ng::from_str(document).map_err(|e| SchematicError::Syntax(e.to_string()))?;
    let path = "customization.systemExtensions.officialExtensions";
    let list =
        root.get("customization").and_then(|c| c.get("systemExtensions")).and_then(|s| s.get("officialExtensions"));
    match strings(list, path)? {
        Some(Value::Sequence(items)) => Ok(items.iter().filter_map(|v| v.as_str().map(str::to_string)).collect()),
        _ => Ok(Vec::new()),
    }
}

/// `Customization`'s fields, in struct order, all `omitempty`.
fn customization(c: &Value) -> Result<Mapping, SchematicError> {
    let c = fields(
        c,
        "customization",
        "schematic.Customization",
        &[
            "embeddedMachineConfiguration",
            "extraKernelArgs",
            "meta",
            "systemExtensions",
            "bootloader",
            "secureboot",
            "diskImage",
        ],
    )?;
    let mut out = Mapping::new();
    let mut put = |k: &str, v: Value| {
        out.insert(k.into(), v);
    };
    if let Some(s) = text(&c, "embeddedMachineConfiguration", "customization")? {
        put("embeddedMachineConfiguration", Value::String(s));
    }
    if let Some(list) = strings(c.get("extraKernelArgs"), "customization.extraKernelArgs")? {
        put("extraKernelArgs", list);
    }
    if let Some(v) = c.get("meta").filter(|v| !is_empty(v)) {
        let Value::Sequence(items) = v else {
            return Err(invalid("customization.meta", "must be a list of {key, value}"));
        };
        let mut list = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let path = format!("customization.meta[{i}]");
            let m = fields(item, &path, "schematic.MetaValue", &["key", "value"])?;
            let key = match m.get("key") {
                None | Some(Value::Null) => 0,
                Some(Value::Number(n)) => n
                    .as_u64()
                    .filter(|k| *k <= 255)
                    .ok_or_else(|| invalid(&format!("{path}.key"), "must be a whole number from 0 to 255"))?,
                Some(_) => return Err(invalid(&format!("{path}.key"), "must be a whole number from 0 to 255")),
            };
            let value = m.get("value").map(|v| string(v, &format!("{path}.value"))).transpose()?.unwrap_or_default();
            // MetaValue's fields have no omitempty.
            let mut entry = Mapping::new();
            entry.insert("key".into(), Value::Number(key.into()));
            entry.insert("value".into(), Value::String(value));
            list.push(Value::Mapping(entry));
        }
        put("meta", Value::Sequence(list));
    }
    if let Some(v) = c.get("systemExtensions") {
        let path = "customization.systemExtensions";
        let m = fields(v, path, "schematic.SystemExtensions", &["officialExtensions"])?;
        if let Some(list) = strings(m.get("officialExtensions"), &format!("{path}.officialExtensions"))? {
            let mut inner = Mapping::new();
            inner.insert("officialExtensions".into(), list);
            put("systemExtensions", Value::Mapping(inner));
        }
    }
    if let Some(s) = text(&c, "bootloader", "customization")? {
        put("bootloader", Value::String(s));
    }
    if let Some(v) = c.get("secureboot") {
        let path = "customization.secureboot";
        let m = fields(v, path, "schematic.SecureBootCustomization", &["enrollKeys", "includeWellKnownCertificates"])?;
        let mut inner = Mapping::new();
        if let Some(s) = text(&m, "enrollKeys", path)? {
            inner.insert("enrollKeys".into(), Value::String(s));
        }
        match m.get("includeWellKnownCertificates") {
            None | Some(Value::Null) | Some(Value::Bool(false)) => {}
            Some(Value::Bool(true)) => {
                inner.insert("includeWellKnownCertificates".into(), Value::Bool(true));
            }
            Some(_) => return Err(invalid(&format!("{path}.includeWellKnownCertificates"), "must be true or false")),
        }
        if !inner.is_empty() {
            put("secureboot", Value::Mapping(inner));
        }
    }
    if let Some(v) = c.get("diskImage") {
        let path = "customization.diskImage";
        let m = fields(v, path, "schematic.DiskImageCustomization", &["sectorSize"])?;
        match m.get("sectorSize") {
            None | Some(Value::Null) => {}
            Some(Value::Number(n)) => match n.as_u64() {
                Some(0) => {}
                Some(size) => {
                    let mut inner = Mapping::new();
                    inner.insert("sectorSize".into(), Value::Number(size.into()));
                    put("diskImage", Value::Mapping(inner));
                }
                None => return Err(invalid(&format!("{path}.sectorSize"), "must be a whole number")),
            },
            Some(_) => return Err(invalid(&format!("{path}.sectorSize"), "must be a whole number")),
        }
    }
    Ok(out)
}

/// A mapping's fields by name, refusing names outside `known` as the
/// factory's strict decoder does.
fn fields(
    v: &Value,
    path: &str,
    go_type: &str,
    known: &[&str],
) -> Result<std::collections::BTreeMap<String, Value>, SchematicError> {
    let m = match v {
        Value::Null => return Ok(Default::default()),
        Value::Mapping(m) => m,
        _ => {
            return Err(invalid(
                if path.is_empty() { "schematic" } else { path },
                &format!("must be a {go_type} mapping"),
            ));
        }
    };
    let mut out = std::collections::BTreeMap::new();
    for (k, v) in m {
        let Value::String(k) = k else {
            return Err(invalid(path, &format!("{go_type} keys are field names")));
        };
        if !known.contains(&k.as_str()) {
            return Err(SchematicError::Invalid {
                path: if path.is_empty() { k.clone() } else { format!("{path}.{k}") },
                message: format!("field {k} not found in type {go_type}"),
            });
        }
        out.insert(k.clone(), v.clone());
    }
    Ok(out)
}

/// An `omitempty` string field: None when empty.
fn text(
    m: &std::collections::BTreeMap<String, Value>,
    key: &str,
    path: &str,
) -> Result<Option<String>, SchematicError> {
    let Some(v) = m.get(key) else { return Ok(None) };
    let s = string(v, &format!("{path}.{key}"))?;
    Ok((!s.is_empty()).then_some(s))
}

/// An `omitempty` list of strings: None when empty.
fn strings(v: Option<&Value>, path: &str) -> Result<Option<Value>, SchematicError> {
    let items = match v {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Sequence(items)) => items,
        Some(_) => return Err(invalid(path, "must be a list of strings")),
    };
    if items.is_empty() {
        return Ok(None);
    }
    let list = items
        .iter()
        .enumerate()
        .map(|(i, item)| string(item, &format!("{path}[{i}]")).map(Value::String))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(Value::Sequence(list)))
}

/// Overlay options (`map[string]any`): go-yaml writes a Go map with its
/// keys sorted. Keys of ASCII letters only sort as bytes do in go-yaml's
/// order too; other keys (digits, punctuation, whose order go-yaml works
/// out its own way) and floats are refused rather than guessed.
fn options(v: &Value, path: &str) -> Result<Mapping, SchematicError> {
    fn value(v: &Value, path: &str) -> Result<Value, SchematicError> {
        match v {
            Value::Mapping(_) => options(v, path).map(Value::Mapping),
            Value::Sequence(items) => items
                .iter()
                .enumerate()
                .map(|(i, item)| value(item, &format!("{path}[{i}]")))
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Sequence),
            Value::Number(n) if n.is_f64() => Err(SchematicError::Unsupported {
                path: path.into(),
                message: "fractional numbers are not rendered locally".into(),
            }),
            Value::Tagged(_) => Err(invalid(path, "tags are not allowed")),
            other => Ok(other.clone()),
        }
    }
    let m = match v {
        Value::Null => return Ok(Mapping::new()),
        Value::Mapping(m) => m,
        _ => return Err(invalid(path, "must be a mapping")),
    };
    let mut entries = Vec::new();
    for (k, v) in m {
        let key = match k {
            Value::String(k) if !k.is_empty() && k.bytes().all(|b| b.is_ascii_alphabetic()) => k.clone(),
            _ => {
                return Err(SchematicError::Unsupported {
                    path: path.into(),
                    message: "option names other than plain letters are not ordered locally yet".into(),
                });
            }
        };
        entries.push((key.clone(), value(v, &format!("{path}.{key}"))?));
    }
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(entries.into_iter().map(|(k, v)| (Value::String(k), v)).collect())
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Sequence(s) => s.is_empty(),
        Value::Mapping(m) => m.is_empty(),
        Value::String(s) => s.is_empty(),
        _ => false,
    }
}

fn invalid(path: &str, message: &str) -> SchematicError {
    SchematicError::Invalid { path: path.to_string(), message: message.to_string() }
}

/// A Go `string` field's value: a YAML string, or a scalar Go decodes into
/// a string as its text (a number, a bool).
fn string(v: &Value, path: &str) -> Result<String, SchematicError> {
    match v {
        Value::Null => Ok(String::new()),
        Value::String(s) => Ok(s.clone()),
        Value::Bool(b) => Ok(b.to_string()),
        Value::Number(n) => Ok(n.to_string()),
        _ => Err(invalid(path, "must be a string")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// siderolabs/image-factory `pkg/schematic/schematic_test.go`
    /// (`TestID`, `TestUnmarshalID`): documents and the ids the factory
    /// gives them.
    #[test]
    fn upstream_ids() {
        let cases = [
            ("", "376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba"),
            ("{}", "376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba"),
            ("customization: {}", "376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba"),
            (
                r#"customization: {"extraKernelArgs": []}"#,
                "376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba",
            ),
            (
                r#"{"customization": {"extraKernelArgs": ["noapic", "nolapic"]}}"#,
                "9cba8e32753f91a16c1837ab8abf356af021706ef284aef07380780177d9a06c",
            ),
            (
                r#"{"customization": {"extraKernelArgs": ["noapic", "nolapic"], "systemExtensions": {}}}"#,
                "9cba8e32753f91a16c1837ab8abf356af021706ef284aef07380780177d9a06c",
            ),
            (
                r#"{"customization": {"meta": [{"key": 10, "value": "foo"}], "extraKernelArgs": [], "systemExtensions": {}}}"#,
                "d308a2a5ee2277bed5fbaa104fcbc8d59122abfa737df987a95b4ca763459a7f",
            ),
            (
                r#"{"overlay": {"name": "rpi_generic", "image": "siderolabs/sbc-raspberrypi"}}"#,
                "ee21ef4a5ef808a9b7484cc0dda0f25075021691c8c09a276591eedb638ea1f9",
            ),
            (
                r#"{"overlay": {"name": "rpi_generic", "image": "siderolabs/sbc-raspberrypi"},"customization":{}}"#,
                "ee21ef4a5ef808a9b7484cc0dda0f25075021691c8c09a276591eedb638ea1f9",
            ),
            (
                r#"{"customization":{"secureboot": {"includeWellKnownCertificates": true}}}"#,
                "fa8e05f142a851d3ee568eb0a8e5841eaf6b0ebc8df9a63df16ac5ed2c04f3e6",
            ),
            (
                "customization:\n  diskImage:\n    sectorSize: 4096\n",
                "92833e9ddd9bb9e11b2464fa5525429f01866306d52ebd882ee08d7918f6d1ea",
            ),
        ];
        for (doc, want) in cases {
            assert_eq!(id(doc).as_deref(), Ok(want), "{doc}");
        }
    }

    #[test]
    fn the_canonical_form_is_go_yamls() {
        let doc = "customization:\n  systemExtensions:\n    officialExtensions: [siderolabs/qemu-guest-agent, siderolabs/iscsi-tools]\n  extraKernelArgs: [\"net.ifnames=0\", \"-console\", \"talos.dashboard.disabled=1\"]\n";
        assert_eq!(
            canonical(doc).unwrap(),
            "customization:\n    extraKernelArgs:\n        - net.ifnames=0\n        - -console\n        - talos.dashboard.disabled=1\n    systemExtensions:\n        officialExtensions:\n            - siderolabs/qemu-guest-agent\n            - siderolabs/iscsi-tools\n"
        );
    }

    #[test]
    fn values_are_quoted_and_blocked_as_go_yaml_writes_them() {
        let doc = "customization:\n  extraKernelArgs: [\"true\", \"10\", \"a: b\", \"console=ttyS0,115200\"]\n  meta:\n    - key: 10\n      value: \"a: 1\\nb: 2\\n\"\n";
        assert_eq!(
            canonical(doc).unwrap(),
            "customization:\n    extraKernelArgs:\n        - \"true\"\n        - \"10\"\n        - 'a: b'\n        - console=ttyS0,115200\n    meta:\n        - key: 10\n          value: |\n            a: 1\n            b: 2\n"
        );
        let overlay = "overlay:\n  name: rpi_generic\n  image: siderolabs/sbc-raspberrypi\n  options:\n    zeta: 1\n    alpha: x\n";
        assert_eq!(
            canonical(overlay).unwrap(),
            "overlay:\n    image: siderolabs/sbc-raspberrypi\n    name: rpi_generic\n    options:\n        alpha: x\n        zeta: 1\ncustomization: {}\n"
        );
    }

    #[test]
    fn unknown_fields_and_bad_values_name_their_path() {
        let e = id("customization:\n  extensions: [a]\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "customization.extensions: field extensions not found in type schematic.Customization"
        );
        let e = id("customization:\n  meta:\n    - key: 300\n      value: x\n").unwrap_err();
        assert!(e.to_string().starts_with("customization.meta[0].key:"), "{e}");
        assert!(matches!(id("customization: ["), Err(SchematicError::Syntax(_))));
        let e = id("overlay:\n  name: rpi\n  image: x\n  options:\n    a_1: 1\n").unwrap_err();
        assert!(matches!(e, SchematicError::Unsupported { .. }), "{e}");
    }
}
