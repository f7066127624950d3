//! Conversions between our model and the generated tfplugin6 messages
//! (like the framework's fromproto6/toproto6).

use super::codec::{self, CodecError};
use super::diag::{AttributePath, Diagnostic, Diagnostics, PathStep, Severity};
use super::proto::tfplugin6 as pb;
use super::schema::{Attribute, AttributeType, Block, IdentitySchema, NestedBlock, Nesting, Schema};
use super::value::{Type, Value};

/// A diagnostic to the wire.
pub fn diagnostic(d: &Diagnostic) -> pb::Diagnostic {
    pb::Diagnostic {
        severity: match d.severity {
            Severity::Error => pb::diagnostic::Severity::Error as i32,
            Severity::Warning => pb::diagnostic::Severity::Warning as i32,
        },
        summary: d.summary.clone(),
        detail: d.detail.clone(),
        attribute: d.path.as_ref().filter(|p| !p.is_root()).map(attribute_path),
    }
}

/// Diagnostics to the wire; each is also logged by severity, summary and
/// path. Not the detail: it may quote what the user wrote (a patch, an
/// import id holding a `secrets.yaml`), and Terraform shows it anyway.
pub fn diagnostics(ds: &Diagnostics) -> Vec<pb::Diagnostic> {
    ds.0.iter()
        .map(|d| {
            tracing::debug!(severity = ?d.severity, summary = %d.summary, path = ?d.path.as_ref().map(ToString::to_string), "diagnostic");
            diagnostic(d)
        })
        .collect()
}

/// An attribute path to the wire.
pub fn attribute_path(p: &AttributePath) -> pb::AttributePath {
    use pb::attribute_path::step::Selector;
    pb::AttributePath {
        steps: p
            .0
            .iter()
            .map(|s| pb::attribute_path::Step {
                selector: Some(match s {
                    PathStep::Attr(a) => Selector::AttributeName(a.clone()),
                    PathStep::Key(k) => Selector::ElementKeyString(k.clone()),
                    PathStep::Index(i) => Selector::ElementKeyInt(*i),
                }),
            })
            .collect(),
    }
}

/// A codec error as a diagnostic on the attribute it concerns.
pub fn codec_diagnostic(what: &str, e: &CodecError) -> Diagnostic {
    Diagnostic::error(format!("Invalid {what}"), format!("The provider could not decode the {what}: {e}."))
        .at(e.path.clone())
}

/// Decodes an optional DynamicValue (msgpack, or JSON when only that is
/// set). An absent value decodes as Null.
pub fn decode(dv: Option<&pb::DynamicValue>, ty: &Type, what: &str, diags: &mut Diagnostics) -> Option<Value> {
    let Some(dv) = dv else { return Some(Value::Null) };
    let res = if !dv.msgpack.is_empty() {
        codec::decode_msgpack(&dv.msgpack, ty)
    } else if !dv.json.is_empty() {
        codec::decode_json(&dv.json, ty, false)
    } else {
        Ok(Value::Null)
    };
    match res {
        Ok(v) => Some(v),
        Err(e) => {
            diags.push(codec_diagnostic(what, &e));
            None
        }
    }
}

/// Encodes a value as a msgpack DynamicValue.
pub fn encode(v: &Value, ty: &Type, what: &str, diags: &mut Diagnostics) -> Option<pb::DynamicValue> {
    match codec::encode_msgpack(v, ty) {
        Ok(msgpack) => Some(pb::DynamicValue { msgpack, json: Vec::new() }),
        Err(e) => {
            diags.push(
                Diagnostic::error(
                    format!("Provider produced an invalid {what}"),
                    format!("This is a bug in the provider; please report it. Encoding failed: {e}."),
                )
                .at(e.path.clone()),
            );
            None
        }
    }
}

/// A provider function's signature.
pub fn function(f: &dyn super::Function) -> pb::Function {
    let param = |p: super::Param| pb::function::Parameter {
        name: p.name.to_string(),
        r#type: p.ty.to_json_bytes(),
        allow_null_value: false,
        allow_unknown_values: false,
        description: p.description.to_string(),
        description_kind: pb::StringKind::Markdown as i32,
    };
    pb::Function {
        parameters: f.params().into_iter().map(param).collect(),
        variadic_parameter: None,
        r#return: Some(pb::function::Return { r#type: f.returns().to_json_bytes() }),
        summary: f.summary().to_string(),
        description: f.description().to_string(),
        description_kind: pb::StringKind::Markdown as i32,
        deprecation_message: String::new(),
    }
}

/// A schema to the wire.
pub fn schema(s: &Schema) -> pb::Schema {
    pb::Schema { version: s.version, block: Some(block(&s.block)) }
}

fn block(b: &Block) -> pb::schema::Block {
    pb::schema::Block {
        version: 0,
        attributes: b.attributes.iter().map(attribute).collect(),
        block_types: b.blocks.iter().map(nested_block).collect(),
        description: b.description.clone(),
        description_kind: pb::StringKind::Markdown as i32,
        deprecated: b.deprecated,
    }
}

fn description_with_deprecation(a: &Attribute) -> String {
    match &a.deprecation {
        Some(msg) => format!("{}\n\n**Deprecated**: {msg}", a.description),
        None => a.description.clone(),
    }
}

fn attribute(a: &Attribute) -> pb::schema::Attribute {
    let (ty, nested_type) = match &a.ty {
        AttributeType::Type(t) => (t.to_json_bytes(), None),
        AttributeType::Nested { nesting, attributes } => (
            Vec::new(),
            Some(pb::schema::Object {
                attributes: attributes.iter().map(attribute).collect(),
                nesting: match nesting {
                    Nesting::Single | Nesting::Group => pb::schema::object::NestingMode::Single,
                    Nesting::List => pb::schema::object::NestingMode::List,
                    Nesting::Set => pb::schema::object::NestingMode::Set,
                    Nesting::Map => pb::schema::object::NestingMode::Map,
                } as i32,
            }),
        ),
    };
    pb::schema::Attribute {
        name: a.name.clone(),
        r#type: ty,
        nested_type,
        description: description_with_deprecation(a),
        required: a.required,
        optional: a.optional,
        computed: a.computed,
        sensitive: a.sensitive,
        description_kind: pb::StringKind::Markdown as i32,
        deprecated: a.deprecation.is_some(),
        write_only: a.write_only,
    }
}

fn nested_block(b: &NestedBlock) -> pb::schema::NestedBlock {
    use pb::schema::nested_block::NestingMode as M;
    pb::schema::NestedBlock {
        type_name: b.type_name.clone(),
        block: Some(block(&b.block)),
        nesting: match b.nesting {
            Nesting::Single => M::Single,
            Nesting::Group => M::Group,
            Nesting::List => M::List,
            Nesting::Set => M::Set,
            Nesting::Map => M::Map,
        } as i32,
        min_items: b.min_items,
        max_items: b.max_items,
    }
}

/// An identity schema to the wire.
pub fn identity_schema(s: &IdentitySchema) -> pb::ResourceIdentitySchema {
    pb::ResourceIdentitySchema {
        version: s.version,
        identity_attributes: s
            .attributes
            .iter()
            .map(|a| pb::resource_identity_schema::IdentityAttribute {
                name: a.name.clone(),
                r#type: a.ty.to_json_bytes(),
                required_for_import: a.required_for_import,
                optional_for_import: a.optional_for_import,
                description: a.description.clone(),
            })
            .collect(),
    }
}

/// Whether a (decoded) config sets any write-only attribute.
pub fn write_only_set(block: &Block, config: &Value) -> Vec<AttributePath> {
    let mut nulled = config.clone();
    super::plan::null_write_only(block, &mut nulled);
    let mut out = Vec::new();
    diff_paths(config, &nulled, &mut Vec::new(), &mut out);
    out
}

fn diff_paths(a: &Value, b: &Value, path: &mut Vec<PathStep>, out: &mut Vec<AttributePath>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for (k, va) in x {
                if let Some(vb) = y.get(k) {
                    path.push(PathStep::Attr(k.clone()));
                    diff_paths(va, vb, path, out);
                    path.pop();
                }
            }
        }
        (Value::List(x), Value::List(y)) | (Value::Set(x), Value::Set(y)) => {
            for (i, (va, vb)) in x.iter().zip(y).enumerate() {
                path.push(PathStep::Index(i as i64));
                diff_paths(va, vb, path, out);
                path.pop();
            }
        }
        (Value::Map(x), Value::Map(y)) => {
            for (k, va) in x {
                if let Some(vb) = y.get(k) {
                    path.push(PathStep::Key(k.clone()));
                    diff_paths(va, vb, path, out);
                    path.pop();
                }
            }
        }
        _ if a != b => out.push(AttributePath(path.clone())),
        _ => {}
    }
}
