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
//! What this module renders: every field of the schematic, with strings
//! styled as go-yaml's emitter (libyaml's analysis) styles a single-line
//! scalar: plain where allowed, single-quoted where plain is not, double-
//! quoted when the text would read back as another type (`"true"`,
//! `"10"`, `"2024-01-01"`). What it refuses, with an error, rather than
//! guess: multi-line strings (a META value holding YAML, an embedded
//! machine configuration) and overlay `options`, whose go-yaml rendering
//! (block scalars, sorted free-form maps) is not reproduced yet.

use serde_yaml_ng::Value;
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

/// The public Image Factory's host.
pub const FACTORY_HOST: &str = "factory.talos.dev";

/// Whether `s` has the form of a schematic id (64 hex digits).
pub fn valid_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The factory's id of `document` (YAML or JSON).
pub fn id(document: &str) -> Result<String, SchematicError> {
    let canonical = canonical(document)?;
    Ok(Sha256::digest(canonical.as_bytes()).iter().map(|b| format!("{b:02x}")).collect())
}

/// The document as the factory marshals it (what [`id`] hashes).
pub fn canonical(document: &str) -> Result<String, SchematicError> {
    let root: Value = if document.trim().is_empty() {
        Value::Mapping(Default::default())
    } else {
        serde_yaml_ng::from_str(document).map_err(|e| SchematicError::Syntax(e.to_string()))?
    };
    let root = mapping(&root, "", "schematic.Schematic")?;
    let mut out = Out::default();
    for (key, value) in &root {
        match key.as_str() {
            "owner" => out.field(0, "owner", value, Kind::Str)?,
            "overlay" | "customization" => {}
            other => return Err(unknown(other, "", "schematic.Schematic")),
        }
    }
    if let Some(overlay) = root.iter().find(|(k, _)| k == "overlay").map(|(_, v)| v) {
        let o = mapping(overlay, "overlay", "schematic.Overlay")?;
        let mut inner = Out { lines: Vec::new() };
        for (k, v) in &o {
            match k.as_str() {
                "image" | "name" => {}
                "options" if is_empty(v) => {}
                "options" => {
                    return Err(SchematicError::Unsupported {
                        path: "overlay.options".into(),
                        message: "overlay options are not rendered locally yet".into(),
                    });
                }
                other => return Err(unknown(other, "overlay", "schematic.Overlay")),
            }
        }
        // Overlay's own fields have no omitempty: both are written.
        for key in ["image", "name"] {
            let v = o.iter().find(|(k, _)| k == key).map(|(_, v)| v).unwrap_or(&Value::Null);
            inner.scalar(1, key, v, Kind::Str, &format!("overlay.{key}"), true)?;
        }
        if o.iter().any(|(k, v)| matches!(k.as_str(), "image" | "name") && !is_empty(v)) {
            out.lines.push("overlay:".into());
            out.lines.extend(inner.lines);
        }
    }
    let empty = Value::Mapping(Default::default());
    let c = root.iter().find(|(k, _)| k == "customization").map(|(_, v)| v).unwrap_or(&empty);
    let c = if c.is_null() { &empty } else { c };
    let c = mapping(c, "customization", "schematic.Customization")?;
    let mut inner = Out::default();
    customization(&c, &mut inner)?;
    if inner.lines.is_empty() {
        out.lines.push("customization: {}".into());
    } else {
        out.lines.push("customization:".into());
        out.lines.extend(inner.lines);
    }
    Ok(out.lines.iter().map(|l| format!("{l}\n")).collect())
}

/// `Customization`'s fields, in struct order, all `omitempty`.
fn customization(c: &[(String, Value)], out: &mut Out) -> Result<(), SchematicError> {
    const KNOWN: [&str; 7] = [
        "embeddedMachineConfiguration",
        "extraKernelArgs",
        "meta",
        "systemExtensions",
        "bootloader",
        "secureboot",
        "diskImage",
    ];
    if let Some((k, _)) = c.iter().find(|(k, _)| !KNOWN.contains(&k.as_str())) {
        return Err(unknown(k, "customization", "schematic.Customization"));
    }
    let get = |k: &str| c.iter().find(|(key, _)| key == k).map(|(_, v)| v);
    if let Some(v) = get("embeddedMachineConfiguration") {
        out.field(1, "embeddedMachineConfiguration", v, Kind::Str)?;
    }
    if let Some(v) = get("extraKernelArgs") {
        out.strings(1, "extraKernelArgs", v, "customization.extraKernelArgs")?;
    }
    if let Some(v) = get("meta").filter(|v| !is_empty(v)) {
        let Value::Sequence(items) = v else {
            return Err(invalid("customization.meta", "must be a list of {key, value}"));
        };
        out.lines.push(format!("{}meta:", indent(1)));
        for (i, item) in items.iter().enumerate() {
            let path = format!("customization.meta[{i}]");
            let m = mapping(item, &path, "schematic.MetaValue")?;
            if let Some((k, _)) = m.iter().find(|(k, _)| k != "key" && k != "value") {
                return Err(unknown(k, &path, "schematic.MetaValue"));
            }
            let key = m.iter().find(|(k, _)| k == "key").map(|(_, v)| v).unwrap_or(&Value::Null);
            let value = m.iter().find(|(k, _)| k == "value").map(|(_, v)| v).unwrap_or(&Value::Null);
            let key = match key {
                Value::Null => 0,
                Value::Number(n) => n
                    .as_u64()
                    .filter(|k| *k <= 255)
                    .ok_or_else(|| invalid(&format!("{path}.key"), "must be a whole number from 0 to 255"))?,
                _ => return Err(invalid(&format!("{path}.key"), "must be a whole number from 0 to 255")),
            };
            // A sequence item's mapping: `- key: …` then `  value: …`.
            out.lines.push(format!("{}- key: {key}", indent(2)));
            let text = string(value, &format!("{path}.value"))?;
            out.lines.push(format!("{}  value: {}", indent(2), render(&text, &format!("{path}.value"))?));
        }
    }
    if let Some(v) = get("systemExtensions") {
        let m = mapping(v, "customization.systemExtensions", "schematic.SystemExtensions")?;
        if let Some((k, _)) = m.iter().find(|(k, _)| k != "officialExtensions") {
            return Err(unknown(k, "customization.systemExtensions", "schematic.SystemExtensions"));
        }
        let mut inner = Out::default();
        if let Some((_, list)) = m.first() {
            inner.strings(2, "officialExtensions", list, "customization.systemExtensions.officialExtensions")?;
        }
        if !inner.lines.is_empty() {
            out.lines.push(format!("{}systemExtensions:", indent(1)));
            out.lines.extend(inner.lines);
        }
    }
    if let Some(v) = get("bootloader") {
        out.field(1, "bootloader", v, Kind::Str)?;
    }
    if let Some(v) = get("secureboot") {
        let m = mapping(v, "customization.secureboot", "schematic.SecureBootCustomization")?;
        let mut inner = Out::default();
        for (k, v) in &m {
            if k != "enrollKeys" && k != "includeWellKnownCertificates" {
                return Err(unknown(k, "customization.secureboot", "schematic.SecureBootCustomization"));
            }
            let _ = v;
        }
        for (k, kind) in [("enrollKeys", Kind::Str), ("includeWellKnownCertificates", Kind::Bool)] {
            if let Some((_, v)) = m.iter().find(|(key, _)| key == k) {
                inner.field_at(2, k, v, kind, &format!("customization.secureboot.{k}"))?;
            }
        }
        if !inner.lines.is_empty() {
            out.lines.push(format!("{}secureboot:", indent(1)));
            out.lines.extend(inner.lines);
        }
    }
    if let Some(v) = get("diskImage") {
        let m = mapping(v, "customization.diskImage", "schematic.DiskImageCustomization")?;
        if let Some((k, _)) = m.iter().find(|(k, _)| k != "sectorSize") {
            return Err(unknown(k, "customization.diskImage", "schematic.DiskImageCustomization"));
        }
        let mut inner = Out::default();
        if let Some((_, v)) = m.first() {
            inner.field_at(2, "sectorSize", v, Kind::Uint, "customization.diskImage.sectorSize")?;
        }
        if !inner.lines.is_empty() {
            out.lines.push(format!("{}diskImage:", indent(1)));
            out.lines.extend(inner.lines);
        }
    }
    Ok(())
}

/// The Go type of a leaf field.
#[derive(Clone, Copy)]
enum Kind {
    Str,
    Bool,
    Uint,
}

/// Output lines under construction.
#[derive(Default)]
struct Out {
    lines: Vec<String>,
}

impl Out {
    /// An `omitempty` leaf at the top of a struct at `level`.
    fn field(&mut self, level: usize, key: &str, v: &Value, kind: Kind) -> Result<(), SchematicError> {
        let path = if level == 0 { key.to_string() } else { format!("customization.{key}") };
        self.field_at(level, key, v, kind, &path)
    }

    fn field_at(&mut self, level: usize, key: &str, v: &Value, kind: Kind, path: &str) -> Result<(), SchematicError> {
        self.scalar(level, key, v, kind, path, false)
    }

    /// A leaf; `always` writes it even when empty (no `omitempty`).
    fn scalar(
        &mut self,
        level: usize,
        key: &str,
        v: &Value,
        kind: Kind,
        path: &str,
        always: bool,
    ) -> Result<(), SchematicError> {
        let text = match kind {
            Kind::Str => {
                let s = string(v, path)?;
                if s.is_empty() && !always {
                    return Ok(());
                }
                render(&s, path)?
            }
            Kind::Bool => match v {
                Value::Null | Value::Bool(false) => return Ok(()),
                Value::Bool(true) => "true".to_string(),
                _ => return Err(invalid(path, "must be true or false")),
            },
            Kind::Uint => match v {
                Value::Null => return Ok(()),
                Value::Number(n) => match n.as_u64() {
                    Some(0) => return Ok(()),
                    Some(n) => n.to_string(),
                    None => return Err(invalid(path, "must be a whole number")),
                },
                _ => return Err(invalid(path, "must be a whole number")),
            },
        };
        self.lines.push(format!("{}{key}: {text}", indent(level)));
        Ok(())
    }

    /// An `omitempty` list of strings.
    fn strings(&mut self, level: usize, key: &str, v: &Value, path: &str) -> Result<(), SchematicError> {
        let items = match v {
            Value::Null => return Ok(()),
            Value::Sequence(items) => items,
            _ => return Err(invalid(path, "must be a list of strings")),
        };
        if items.is_empty() {
            return Ok(());
        }
        self.lines.push(format!("{}{key}:", indent(level)));
        for (i, item) in items.iter().enumerate() {
            let p = format!("{path}[{i}]");
            let s = string(item, &p)?;
            self.lines.push(format!("{}- {}", indent(level + 1), render(&s, &p)?));
        }
        Ok(())
    }
}

fn indent(level: usize) -> String {
    " ".repeat(4 * level)
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

fn unknown(field: &str, path: &str, go_type: &str) -> SchematicError {
    SchematicError::Invalid {
        path: if path.is_empty() { field.to_string() } else { format!("{path}.{field}") },
        message: format!("field {field} not found in type {go_type}"),
    }
}

fn invalid(path: &str, message: &str) -> SchematicError {
    SchematicError::Invalid { path: path.to_string(), message: message.to_string() }
}

/// A mapping's string keys and values, in document order.
fn mapping(v: &Value, path: &str, go_type: &str) -> Result<Vec<(String, Value)>, SchematicError> {
    match v {
        Value::Null => Ok(Vec::new()),
        Value::Mapping(m) => m
            .iter()
            .map(|(k, v)| match k {
                Value::String(s) => Ok((s.clone(), v.clone())),
                _ => Err(invalid(path, &format!("{go_type} keys are field names"))),
            })
            .collect(),
        _ => Err(invalid(if path.is_empty() { "schematic" } else { path }, &format!("must be a {go_type} mapping"))),
    }
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

/// A single-line string as go-yaml writes it in block context.
fn render(s: &str, path: &str) -> Result<String, SchematicError> {
    if s.contains(['\n', '\r']) {
        return Err(SchematicError::Unsupported {
            path: path.to_string(),
            message: "multi-line values are not rendered locally yet".into(),
        });
    }
    if !reads_back_as_string(s) {
        return Ok(double_quoted(s));
    }
    if plain_allowed(s) {
        return Ok(s.to_string());
    }
    if s.chars().all(|c| !c.is_control() && c != '\u{feff}') {
        return Ok(format!("'{}'", s.replace('\'', "''")));
    }
    Ok(double_quoted(s))
}

/// Whether a plain scalar `s` reads back as a string in go-yaml, which
/// also quotes YAML 1.1's other booleans (`yes`, `off`) and sexagesimal
/// numbers.
fn reads_back_as_string(s: &str) -> bool {
    const WORDS: [&str; 29] = [
        "", "~", "null", "Null", "NULL", "true", "True", "TRUE", "false", "False", "FALSE", "y", "Y", "yes", "Yes",
        "YES", "n", "N", "no", "No", "NO", "on", "On", "ON", "off", "Off", "OFF", ".inf", ".nan",
    ];
    if WORDS.contains(&s) || matches!(s, "+.inf" | "-.inf" | ".Inf" | "+.Inf" | "-.Inf" | ".INF" | ".NaN" | ".NAN") {
        return false;
    }
    let first = s.chars().next().unwrap_or(' ');
    if !(first.is_ascii_digit() || matches!(first, '+' | '-' | '.')) {
        return true;
    }
    let plain = s.replace('_', "");
    let unsigned = plain.trim_start_matches(['+', '-']);
    let radix = [("0x", 16), ("0X", 16), ("0o", 8), ("0O", 8), ("0b", 2), ("0B", 2)];
    let is_int = unsigned.chars().all(|c| c.is_ascii_digit()) && !unsigned.is_empty()
        || radix.iter().any(|(p, r)| unsigned.strip_prefix(p).is_some_and(|d| u64::from_str_radix(d, *r).is_ok()));
    let is_float = unsigned.chars().any(|c| c.is_ascii_digit())
        && unsigned.chars().all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-'))
        && plain.parse::<f64>().is_ok();
    let base60 = {
        let mut parts = unsigned.split(':');
        let head = parts.next().unwrap_or_default();
        let rest: Vec<&str> = parts.collect();
        !rest.is_empty()
            && !head.is_empty()
            && head.chars().all(|c| c.is_ascii_digit())
            && rest.iter().all(|p| !p.is_empty() && p.len() <= 2 && p.chars().all(|c| c.is_ascii_digit() || c == '.'))
    };
    let date = s.len() >= 8 && {
        let b = s.as_bytes();
        b[..4].iter().all(u8::is_ascii_digit) && b[4] == b'-'
    };
    !(is_int || is_float || base60 || date)
}

/// libyaml's analysis of a single-line scalar: whether it may be written
/// plain in block context.
fn plain_allowed(s: &str) -> bool {
    let chars: Vec<char> = s.chars().collect();
    if chars.is_empty() || chars[0] == ' ' || chars[chars.len() - 1] == ' ' {
        return false;
    }
    if s.starts_with("---") || s.starts_with("...") {
        return false;
    }
    for (i, &c) in chars.iter().enumerate() {
        let next_blank = chars.get(i + 1).is_none_or(|n| *n == ' ' || *n == '\t');
        let prev_blank = i > 0 && (chars[i - 1] == ' ' || chars[i - 1] == '\t');
        if c.is_control() || c == '\u{feff}' || c == '\t' {
            return false;
        }
        if i == 0 {
            match c {
                '#' | ',' | '[' | ']' | '{' | '}' | '&' | '*' | '!' | '|' | '>' | '\'' | '"' | '%' | '@' | '`' => {
                    return false;
                }
                '?' | ':' | '-' if next_blank => return false,
                _ => {}
            }
        } else {
            match c {
                ':' if next_blank => return false,
                '#' if prev_blank => return false,
                _ => {}
            }
        }
    }
    true
}

/// A double-quoted scalar with YAML's escapes.
fn double_quoted(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\0' => out.push_str("\\0"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            '\u{c}' => out.push_str("\\f"),
            '\u{1b}' => out.push_str("\\e"),
            '\u{85}' => out.push_str("\\N"),
            '\u{a0}' => out.push_str("\\_"),
            '\u{2028}' => out.push_str("\\L"),
            '\u{2029}' => out.push_str("\\P"),
            c if c.is_control() || c == '\u{feff}' => {
                let n = c as u32;
                if n <= 0xff {
                    out.push_str(&format!("\\x{n:02X}"));
                } else {
                    out.push_str(&format!("\\u{n:04X}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
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
    fn strings_are_quoted_as_go_yaml_quotes_them() {
        assert_eq!(render("console=ttyS0,115200", "p").unwrap(), "console=ttyS0,115200");
        assert_eq!(render("true", "p").unwrap(), "\"true\"");
        assert_eq!(render("yes", "p").unwrap(), "\"yes\"");
        assert_eq!(render("10", "p").unwrap(), "\"10\"");
        assert_eq!(render("0x1f", "p").unwrap(), "\"0x1f\"");
        assert_eq!(render("2024-01-01", "p").unwrap(), "\"2024-01-01\"");
        assert_eq!(render("- x", "p").unwrap(), "'- x'");
        assert_eq!(render("a: b", "p").unwrap(), "'a: b'");
        assert_eq!(render("#x", "p").unwrap(), "'#x'");
        assert_eq!(render("it's", "p").unwrap(), "it's");
        assert_eq!(render(" lead", "p").unwrap(), "' lead'");
        assert!(matches!(render("a\nb", "p"), Err(SchematicError::Unsupported { .. })));
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
        let e = id("overlay:\n  name: rpi\n  image: x\n  options:\n    a: 1\n").unwrap_err();
        assert!(matches!(e, SchematicError::Unsupported { .. }), "{e}");
    }
}
