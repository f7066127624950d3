//! The embedded validator against the `jsonschema` crate (the reference,
//! a dev-dependency only): the same verdict on every upstream golden
//! document and on thousands of mutations of them, for every contract.

use serde_json::{Value, json};

use super::super::{VersionContract, def_name, document_kind, load, schema_kind};
use super::*;

fn checker(defs: Value) -> Checker {
    Checker::new(json!({ "$defs": defs })).unwrap()
}

#[test]
fn every_embedded_schema_uses_only_supported_keywords() {
    for c in VersionContract::ALL.iter().copied() {
        assert!(load(c).is_ok(), "{c}");
    }
}

#[test]
fn an_unsupported_keyword_is_refused_at_load() {
    let err = Checker::new(json!({ "$defs": { "A": { "properties": { "x": { "minLength": 1 } } } } })).err().unwrap();
    assert!(err.contains("\"minLength\"") && err.contains("/$defs/A/properties/x"), "{err}");
    let err = Checker::new(json!({ "$defs": { "A": { "$ref": "https://example.com/x" } } })).err().unwrap();
    assert!(err.contains("local"), "{err}");
}

#[test]
fn rules_paths_and_messages() {
    let c = checker(json!({
        "A": {
            "type": "object",
            "properties": {
                "port": { "type": "integer", "minimum": 1, "maximum": 10 },
                "mode": { "type": "string", "enum": ["a", "b"] },
                "url": { "type": "string", "pattern": "^https://" },
                "list": { "type": "array", "minItems": 1, "items": { "$ref": "#/$defs/B" } },
                "either": { "oneOf": [{ "type": "integer" }, { "type": "string" }] },
                "map": { "type": "object", "patternProperties": { ".*": { "type": "boolean" } } }
            },
            "required": ["mode"],
            "additionalProperties": false
        },
        "B": { "type": "object", "properties": { "key/x~": { "type": "string" } }, "additionalProperties": false }
    }));
    let v = |doc: Value| c.first_violation("A", &doc).map(|v| (v.path, v.message));
    assert_eq!(v(json!({ "mode": "a" })), None);
    assert_eq!(v(json!({ "mode": "a", "port": 1.0 })), None, "1.0 is an integer in draft 2020-12");
    let table: &[(Value, &str, &str)] = &[
        (json!({}), "", "\"mode\" is a required property"),
        (json!({ "mode": "c" }), "/mode", "value is not one of \"a\", \"b\""),
        (json!({ "mode": 1 }), "/mode", "value is not of type \"string\""),
        (json!({ "mode": "a", "port": 0 }), "/port", "value is less than the minimum of 1"),
        (json!({ "mode": "a", "port": 11 }), "/port", "value is greater than the maximum of 10"),
        (json!({ "mode": "a", "port": 1.5 }), "/port", "value is not of type \"integer\""),
        (json!({ "mode": "a", "url": "http://x" }), "/url", "value does not match the pattern \"^https://\""),
        (json!({ "mode": "a", "list": [] }), "/list", "array has fewer than 1 item(s)"),
        (json!({ "mode": "a", "list": [{ "key/x~": 1 }] }), "/list/0/key~1x~0", "value is not of type \"string\""),
        (json!({ "mode": "a", "either": true }), "/either", "value matches none of the 2 allowed shapes"),
        (json!({ "mode": "a", "map": { "k": "no" } }), "/map/k", "value is not of type \"boolean\""),
        (json!({ "mode": "a", "extra": 1 }), "", "unknown key \"extra\": this object does not allow it"),
    ];
    for (doc, path, message) in table {
        assert_eq!(v(doc.clone()), Some((path.to_string(), message.to_string())), "{doc}");
    }
}

#[test]
fn a_message_never_holds_the_value() {
    let c = checker(json!({ "A": { "properties": { "ca": { "type": "object" }, "u": { "pattern": "^x" } } } }));
    for doc in [json!({ "ca": "SECRET-KEY-MATERIAL" }), json!({ "u": "SECRET-KEY-MATERIAL" })] {
        let v = c.first_violation("A", &doc).unwrap();
        assert!(!v.message.contains("SECRET") && !v.path.contains("SECRET"), "{v:?}");
    }
}

/// Values that exercise every type, enum and pattern of the schemas.
fn replacements() -> Vec<Value> {
    let mut out = vec![
        json!(null),
        json!(true),
        json!(0),
        json!(1),
        json!(-1),
        json!(33),
        json!(129),
        json!(1.5),
        json!(2.0),
        json!([]),
        json!(["a"]),
        json!([1]),
        json!({}),
        json!({ "zz": 1 }),
    ];
    for s in [
        "",
        "x",
        "none",
        "true",
        "1s",
        "1.5m",
        "-3h0.5us",
        "10µs",
        "5 s",
        "0",
        "http://h",
        "https://h",
        "grpc://h",
        "tcp://h:1",
        "udp://h",
        "ftp://h",
        "10.0.0.1",
        "fd00::1",
        "10.0.0.0/24",
        "10.0.0.0/1234",
        "[fd00::1]:50000",
        "10.0.0.1:6443",
        "10.0.0.1:123456",
        "aa:bb:cc:dd:ee:ff",
        "aa:bb",
        "AA:B",
        "metal",
        "controlplane",
        "worker",
        "init",
    ] {
        out.push(json!(s));
    }
    out
}

fn pointers(v: &Value, at: String, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                pointers(x, format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")), out);
            }
        }
        Value::Array(xs) => {
            for (i, x) in xs.iter().enumerate() {
                pointers(x, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
    out.push(at);
}

/// The golden document and its mutations: every value replaced by each of
/// [`replacements`], every key removed, an unknown key added to every
/// object.
fn mutations(doc: &Value) -> Vec<Value> {
    let mut ptrs = Vec::new();
    pointers(doc, String::new(), &mut ptrs);
    let reps = replacements();
    let mut out = vec![doc.clone()];
    for p in ptrs.iter().filter(|p| !p.is_empty()) {
        for r in &reps {
            let mut d = doc.clone();
            if let Some(slot) = d.pointer_mut(p) {
                *slot = r.clone();
                out.push(d);
            }
        }
        let (parent, last) = p.rsplit_once('/').unwrap_or_default();
        let mut d = doc.clone();
        if let Some(Value::Object(m)) = d.pointer_mut(parent) {
            m.remove(&last.replace("~1", "/").replace("~0", "~"));
            out.push(d);
        }
    }
    for p in ptrs {
        let mut d = doc.clone();
        if let Some(Value::Object(m)) = d.pointer_mut(&p) {
            m.insert("zzUnknownKey".to_string(), json!("v"));
            out.push(d);
        }
    }
    out
}

#[test]
fn same_verdict_as_the_jsonschema_crate_on_goldens_and_their_mutations() {
    let golden = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/talos/golden");
    let mut compared = 0usize;
    let mut invalid = 0usize;
    for contract in VersionContract::ALL.iter().copied() {
        let loaded = load(contract).unwrap();
        let all = serde_json::to_value(&loaded.ordered).unwrap();
        let dir = golden.join(contract.to_string());
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        let mut files: Vec<_> = entries.map(|e| e.unwrap().path()).collect();
        files.sort();
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            for doc in serde_yaml_ng::Deserializer::from_str(&text) {
                let doc: serde_yaml_ng::Value = serde::Deserialize::deserialize(doc).unwrap();
                let Some(kind) = document_kind(&doc) else { continue };
                let Some(name) = def_name(loaded, &kind) else { continue };
                let mut base = serde_json::to_value(&doc).unwrap();
                if kind != "v1alpha1" {
                    base["kind"] = schema_kind(&kind).into();
                }
                let reference = jsonschema::validator_for(&json!({
                    "$schema": all.get("$schema"),
                    "$defs": all.get("$defs"),
                    "$ref": format!("#/$defs/{name}"),
                }))
                .unwrap();
                assert!(reference.is_valid(&base), "{}: {kind} golden is valid", file.display());
                for m in mutations(&base) {
                    let ours = loaded.checker.first_violation(&name, &m);
                    let theirs = reference.is_valid(&m);
                    assert_eq!(ours.is_none(), theirs, "{contract} {kind} ({}): ours {ours:?}\n{m:#}", file.display());
                    compared += 1;
                    invalid += usize::from(!theirs);
                }
            }
        }
    }
    assert!(compared > 10_000 && invalid > compared / 2, "compared {compared}, invalid {invalid}");
    eprintln!("compared {compared} documents, {invalid} invalid");
}
