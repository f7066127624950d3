//! YAML for Talos documents: parsing multi-document streams into an
//! order-preserving tree, and emitting them the way Talos (Go `yaml.v3`,
//! 4-space indentation, comments off) does, so generated configs can be
//! byte-identical to upstream's.
//!
//! Parsing uses `serde_yaml_ng` (its [`Value`] keeps mapping order). Emission
//! is our own: no Rust crate reproduces `yaml.v3`'s indentation rule (nested
//! nodes are indented to the next multiple of 4, except directly inside a
//! `- ` sequence item, where they sit 2 columns in) or its scalar quoting.

use serde::Deserialize;
pub use serde_yaml_ng::{Mapping, Value};

/// Indentation step, as Talos configures its encoder.
const INDENT: usize = 4;

/// A YAML stream could not be parsed.
#[derive(Debug, thiserror::Error)]
#[error("invalid YAML in document {document}: {message}")]
pub struct ParseError {
    /// Zero-based index of the document that failed.
    pub document: usize,
    /// What is wrong and where, without the text's values ([`safe_error`]).
    pub message: String,
}

/// A YAML error as a path, a kind and a position, never the offending
/// value: serde's messages quote scalars (`invalid type: string "…"`) and
/// unknown keys, and the text may be key material (a `secrets.yaml`, a
/// machine configuration, a kubeconfig). The parser's own error is not
/// kept as a source either, so the cause chain that reaches `TF_LOG` holds
/// no value.
pub fn safe_error(e: &serde_yaml_ng::Error) -> String {
    let text = e.to_string();
    // `path: message at line L column C[, while …]`
    let (path, rest) = match text.split_once(": ") {
        Some((p, r)) if !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || "._[]-".contains(c)) => {
            (Some(p), r)
        }
        _ => (None, text.as_str()),
    };
    let name = |s: &str| -> Option<String> {
        let n = s.split('`').nth(1)?;
        (n.len() <= 40 && n.chars().all(|c| c.is_ascii_alphanumeric() || "_-".contains(c))).then(|| format!("`{n}`"))
    };
    // The last `, expected` is serde's: a quoted value may hold the words.
    let expected = |s: &str| {
        let s = s.rsplit_once(" at line ").map_or(s, |(head, _)| head);
        s.rsplit_once(", expected ").map(|(_, x)| x.trim().to_string())
    };
    let kind = if let Some(r) = rest.strip_prefix("invalid type: ").or_else(|| rest.strip_prefix("invalid value: ")) {
        let found = r.split([' ', ',']).next().filter(|w| w.chars().all(|c| c.is_ascii_lowercase())).unwrap_or("value");
        match expected(r) {
            Some(x) => format!("a {found} where {x} was expected"),
            None => format!("an unexpected {found}"),
        }
    } else if rest.starts_with("unknown field") {
        // The unknown name is the text's, not ours: it is not shown (a
        // pasted key can land in key position); the names we know are.
        match expected(rest) {
            Some(x) => format!("an unknown field (expected {x})"),
            None => "an unknown field".to_string(),
        }
    } else if rest.starts_with("missing field") || rest.starts_with("duplicate field") {
        let what = if rest.starts_with("missing") { "missing" } else { "duplicate" };
        format!("{what} field {}", name(rest).unwrap_or_else(|| "(name not shown)".into()))
    } else if rest.starts_with("unknown variant") {
        "a value that is not one of the allowed ones".to_string()
    } else {
        "malformed YAML".to_string()
    };
    let at = e.location().map(|l| format!(" at line {} column {}", l.line(), l.column())).unwrap_or_default();
    match path {
        Some(p) => format!("{p}: {kind}{at}"),
        None => format!("{kind}{at}"),
    }
}

/// Parses a (possibly multi-document) YAML stream; empty documents are skipped.
pub fn parse_documents(input: &str) -> Result<Vec<Value>, ParseError> {
    let mut docs = Vec::new();
    for (document, de) in serde_yaml_ng::Deserializer::from_str(input).enumerate() {
        let value = Value::deserialize(de).map_err(|e| ParseError { document, message: safe_error(&e) })?;
        if !value.is_null() {
            docs.push(value);
        }
    }
    Ok(docs)
}

/// Emits documents joined with `---` lines, each in yaml.v3 4-space style.
pub fn emit_documents(docs: &[Value]) -> String {
    let mut out = String::new();
    for (i, doc) in docs.iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        out.push_str(&emit_document(doc));
    }
    out
}

/// Emits one document in yaml.v3 4-space style (always ends with a newline).
pub fn emit_document(doc: &Value) -> String {
    let mut out = String::new();
    match doc {
        Value::Mapping(m) if !m.is_empty() => emit_mapping(&mut out, m, 0, true),
        Value::Sequence(s) if !s.is_empty() => emit_sequence(&mut out, s, 0, true),
        other => {
            out.push_str(&inline_or_block(other, 0));
            out.push('\n');
        }
    }
    out
}

/// Indentation of a node nested in a mapping value at `indent`.
fn nested(indent: usize) -> usize {
    INDENT * ((indent + INDENT) / INDENT)
}

fn pad(out: &mut String, n: usize) {
    out.extend(std::iter::repeat_n(' ', n));
}

/// Writes a block mapping whose keys sit at `indent`. When `first_inline`
/// is false the first key continues the current line (after `- `).
fn emit_mapping(out: &mut String, m: &Mapping, indent: usize, first_on_new_line: bool) {
    for (i, (k, v)) in m.iter().enumerate() {
        if i > 0 || first_on_new_line {
            pad(out, indent);
        }
        out.push_str(&scalar_text(k, indent));
        out.push(':');
        emit_value_after_key(out, v, indent);
    }
}

fn emit_value_after_key(out: &mut String, v: &Value, indent: usize) {
    match v {
        Value::Mapping(m) if !m.is_empty() => {
            out.push('\n');
            emit_mapping(out, m, nested(indent), true);
        }
        Value::Sequence(s) if !s.is_empty() => {
            out.push('\n');
            emit_sequence(out, s, nested(indent), true);
        }
        Value::Tagged(t) => emit_value_after_key(out, &t.value, indent),
        other => {
            out.push(' ');
            out.push_str(&inline_or_block(other, nested(indent)));
            out.push('\n');
        }
    }
}

fn emit_sequence(out: &mut String, s: &[Value], indent: usize, first_on_new_line: bool) {
    for (i, item) in s.iter().enumerate() {
        if i > 0 || first_on_new_line {
            pad(out, indent);
        }
        out.push_str("- ");
        emit_item(out, item, indent + 2);
    }
}

fn emit_item(out: &mut String, item: &Value, inner: usize) {
    match item {
        Value::Mapping(m) if !m.is_empty() => emit_mapping(out, m, inner, false),
        Value::Sequence(s) if !s.is_empty() => emit_sequence(out, s, inner, false),
        Value::Tagged(t) => emit_item(out, &t.value, inner),
        other => {
            out.push_str(&inline_or_block(other, inner));
            out.push('\n');
        }
    }
}

/// A scalar or empty collection; multi-line strings become literal blocks
/// whose lines are indented to `block_indent`.
fn inline_or_block(v: &Value, block_indent: usize) -> String {
    match v {
        Value::Mapping(_) => "{}".to_string(),
        Value::Sequence(_) => "[]".to_string(),
        Value::String(s) if s.contains('\n') => literal_block(s, block_indent),
        other => scalar_text(other, block_indent),
    }
}

fn literal_block(s: &str, indent: usize) -> String {
    let trailing = s.len() - s.trim_end_matches('\n').len();
    let mut head = String::from("|");
    if s.starts_with(' ') {
        head.push_str(&INDENT.to_string());
    }
    match trailing {
        0 => head.push('-'),
        1 => {}
        _ => head.push('+'),
    }
    let body = s.strip_suffix('\n').unwrap_or(s);
    let mut out = head;
    for line in body.split('\n') {
        out.push('\n');
        if !line.is_empty() {
            out.push_str(&" ".repeat(indent));
            out.push_str(line);
        }
    }
    out
}

fn scalar_text(v: &Value, indent: usize) -> String {
    match v {
        Value::Null => "null".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => number_text(n),
        Value::String(s) => string_text(s),
        Value::Tagged(t) => scalar_text(&t.value, indent),
        Value::Mapping(_) | Value::Sequence(_) => inline_or_block(v, indent),
    }
}

fn number_text(n: &serde_yaml_ng::Number) -> String {
    if let Some(f) = n.as_f64().filter(|_| n.is_f64()) {
        if f.is_nan() {
            return ".nan".to_string();
        }
        if f.is_infinite() {
            return if f > 0.0 { ".inf" } else { "-.inf" }.to_string();
        }
    }
    n.to_string()
}

/// Quotes a string the way yaml.v3 would in block context.
fn string_text(s: &str) -> String {
    if s.is_empty() || resolves_to_non_string(s) {
        return double_quoted(s);
    }
    if plain_allowed(s) {
        return s.to_string();
    }
    if s.chars().all(|c| !c.is_control() || c == '\t') {
        return format!("'{}'", s.replace('\'', "''"));
    }
    double_quoted(s)
}

fn double_quoted(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Would an unquoted `s` be read back as null, bool, number or timestamp
/// (YAML 1.1 booleans and sexagesimal numbers included, as yaml.v3 checks)?
fn resolves_to_non_string(s: &str) -> bool {
    const WORDS: &[&str] = &[
        "~", "null", "Null", "NULL", "true", "True", "TRUE", "false", "False", "FALSE", "y", "Y", "yes", "Yes", "YES",
        "n", "N", "no", "No", "NO", "on", "On", "ON", "off", "Off", "OFF", ".inf", ".Inf", ".INF", "+.inf", "+.Inf",
        "+.INF", "-.inf", "-.Inf", "-.INF", ".nan", ".NaN", ".NAN", "<<",
    ];
    if WORDS.contains(&s) {
        return true;
    }
    let first = s.as_bytes()[0];
    if !(first.is_ascii_digit() || matches!(first, b'+' | b'-' | b'.')) {
        return false;
    }
    let plain: String = s.chars().filter(|c| *c != '_').collect();
    let unsigned = plain.trim_start_matches(['+', '-']);
    let is_int = (!unsigned.is_empty() && unsigned.bytes().all(|b| b.is_ascii_digit()))
        || [("0x", 16), ("0o", 8), ("0b", 2)].iter().any(|(p, radix)| {
            unsigned.strip_prefix(p).is_some_and(|d| !d.is_empty() && u64::from_str_radix(d, *radix).is_ok())
        });
    let is_float = plain.parse::<f64>().is_ok()
        && !plain.to_ascii_lowercase().contains("inf")
        && !plain.to_ascii_lowercase().contains("nan");
    let is_base60 = plain.contains(':')
        && plain
            .trim_start_matches(['+', '-'])
            .split(':')
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit() || b == b'.'));
    let is_timestamp = plain.len() >= 10
        && plain.as_bytes()[4] == b'-'
        && plain.as_bytes()[7] == b'-'
        && plain[..4].bytes().all(|b| b.is_ascii_digit());
    is_int || is_float || is_base60 || is_timestamp
}

/// yaml.v3's "plain scalar allowed in block context" analysis.
fn plain_allowed(s: &str) -> bool {
    if s.starts_with("---") || s.starts_with("...") {
        return false;
    }
    if s.starts_with(' ') || s.ends_with(' ') || s.starts_with('\t') || s.ends_with('\t') {
        return false;
    }
    let chars: Vec<char> = s.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        let next = chars.get(i + 1).copied();
        let followed_by_blank = next.is_none_or(|n| n == ' ' || n == '\t');
        if c.is_control() && c != '\t' {
            return false;
        }
        if i == 0 {
            match c {
                '#' | ',' | '[' | ']' | '{' | '}' | '&' | '*' | '!' | '|' | '>' | '\'' | '"' | '%' | '@' | '`' => {
                    return false;
                }
                '?' | ':' | '-' if followed_by_blank => return false,
                _ => {}
            }
        } else {
            if c == ':' && followed_by_blank {
                return false;
            }
            if c == '#' && matches!(chars[i - 1], ' ' | '\t') {
                return false;
            }
        }
    }
    true
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn roundtrip(src: &str) {
        let docs = parse_documents(src).unwrap();
        assert_eq!(emit_documents(&docs), src);
    }

    #[test]
    fn yaml_v3_indentation() {
        roundtrip(
            "a:\n    b:\n        - x\n        - k: v\n          l:\n            - 1\n          m:\n            p: o\n    e: {}\n    f: []\n---\nkind: X\n",
        );
    }

    #[test]
    fn quoting() {
        roundtrip("a: \"\"\nb: \"true\"\nc: \"7445\"\nd: 'x: y'\ne: https://x:6443\nf: a==\ng: \"yes\"\n");
    }

    #[test]
    fn literal_blocks() {
        roundtrip("a:\n    cert: |\n        line1\n        line2\n    k: |-\n        x\n        y\n");
    }

    /// serde quotes the offending scalar; a scalar may even hold serde's
    /// own words. Nothing of it reaches the message.
    #[test]
    fn safe_error_never_echoes_a_value() {
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct Doc {
            id: std::collections::BTreeMap<String, String>,
        }
        for text in ["id: \"my passphrase, expected hunter2\"", "id: [hunter2, x]", "id:\n  a: [hunter2"] {
            let e = serde_yaml_ng::from_str::<Doc>(text).unwrap_err();
            let m = safe_error(&e);
            assert!(!m.contains("hunter2") && !m.contains("passphrase"), "{m}");
        }
        let e = serde_yaml_ng::from_str::<Doc>("id: \"my passphrase, expected hunter2\"").unwrap_err();
        assert_eq!(safe_error(&e), "id: a string where a map was expected at line 1 column 5");
    }
}
