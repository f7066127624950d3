//! Wire encodings of [`Value`]: msgpack `DynamicValue`s and JSON raw state.
//!
//! Facts (shared/specs/tfplugin6.md §2, §6.1): unknown is any msgpack
//! extension (type 0, or 12 with refinements); null is nil; numbers arrive as
//! int, float64 or a decimal string; a `dynamic` value is a 2-array of
//! `[type JSON as bytes, value]`; objects are maps keyed by attribute name.
//!
//! The rules are cty's (`cty/msgpack` and `cty/json`), as Terraform uses them:
//!
//! - **Numbers** decode without loss into [`Number`]: msgpack ints become
//!   `Int` (or `UInt` above `i64::MAX`), floats become `Float`, decimal
//!   strings go through [`Number::parse_decimal`]. Encoding writes `Int`/`UInt`
//!   as the smallest msgpack int, an integral `Float` that fits `i64` as an int
//!   (so `Float(3.0)` comes back as `Int(3)`, which compares equal), other
//!   floats (±infinity included) as float64 and `Big` as its decimal text. NaN
//!   is refused both ways.
//! - **Objects** decode with every attribute of the type: attributes missing
//!   on the wire are null, attributes the type lacks are an error. Encoding
//!   writes every attribute of the type in sorted order (null if the value
//!   lacks it), as cty does.
//! - **Dynamic**: a known value travels as `[type JSON, value]` (msgpack) or
//!   `{"value": ..., "type": ...}` (JSON) and decodes into
//!   [`Value::Dynamic`]; null and unknown travel bare. Encoding a plain value
//!   for a dynamic type infers its type where that is unambiguous.
//! - **Sets** keep wire order; duplicates are not removed.
//! - Malformed input (truncated, trailing bytes, lengths beyond the input,
//!   nesting deeper than [`MAX_DEPTH`]) is an error, never a panic, and
//!   allocations are bounded by the input size.

use std::collections::BTreeMap;

mod json;
mod msgpack;
#[cfg(test)]
mod tests;

use json::{JsonDecoder, JsonEncoder, JsonParser};
use msgpack::{MsgpackDecoder, MsgpackEncoder};

use super::diag::{AttributePath, PathStep};
use super::value::{Number, Type, Value};

/// How deeply collections, objects and dynamic wrappers may nest.
pub const MAX_DEPTH: usize = 64;

/// Why a value could not be decoded or encoded, and where.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}{message}", if path.is_root() { String::new() } else { format!("{path}: ") })]
pub struct CodecError {
    /// Where in the value the problem is.
    pub path: AttributePath,
    /// What is wrong.
    pub message: String,
}

/// Decodes a msgpack value of type `ty`.
pub fn decode_msgpack(bytes: &[u8], ty: &Type) -> Result<Value, CodecError> {
    let mut d = MsgpackDecoder { input: bytes, walk: Walk::default() };
    let v = d.value(ty)?;
    if !d.input.is_empty() {
        return Err(d.walk.err(format!("{} unexpected bytes after the value", d.input.len())));
    }
    Ok(v)
}

/// Encodes `v` as msgpack for type `ty`.
pub fn encode_msgpack(v: &Value, ty: &Type) -> Result<Vec<u8>, CodecError> {
    let mut e = MsgpackEncoder { out: Vec::new(), walk: Walk::default() };
    e.value(v, ty)?;
    Ok(e.out)
}

/// Decodes Terraform's JSON state encoding of a value of type `ty`.
/// With `ignore_undefined_attributes`, object attributes the type does not
/// have are dropped (raw state after an attribute was removed); otherwise
/// they are an error. Attributes missing from the JSON decode as null.
pub fn decode_json(bytes: &[u8], ty: &Type, ignore_undefined_attributes: bool) -> Result<Value, CodecError> {
    let root = |message: String| CodecError { path: AttributePath::root(), message };
    let text = std::str::from_utf8(bytes).map_err(|e| root(format!("invalid UTF-8 in JSON: {e}")))?;
    let tree = JsonParser { text, pos: 0, depth: 0 }.document().map_err(root)?;
    JsonDecoder { ignore_undefined_attributes, walk: Walk::default() }.value(&tree, ty)
}

/// Encodes `v` of type `ty` in Terraform's JSON state encoding (cty JSON):
/// objects with every attribute of the type in sorted order, dynamic values
/// as `{"value":...,"type":...}`, numbers as exact decimal text. Unknown
/// values and infinities have no JSON form and are an error.
pub fn encode_json(v: &Value, ty: &Type) -> Result<Vec<u8>, CodecError> {
    let mut e = JsonEncoder { out: String::new(), walk: Walk::default() };
    e.value(v, ty)?;
    Ok(e.out.into_bytes())
}

// ---------------------------------------------------------------------------
// Shared: where we are in the value, and type/value names for messages.

/// The current path and depth while walking a value; the path is only turned
/// into an [`AttributePath`] when an error is built.
#[derive(Default)]
struct Walk {
    path: Vec<PathStep>,
    depth: usize,
}

impl Walk {
    fn err(&self, message: impl Into<String>) -> CodecError {
        CodecError { path: AttributePath(self.path.clone()), message: message.into() }
    }

    /// Enters one level of nesting.
    fn enter(&mut self) -> Result<(), CodecError> {
        if self.depth >= MAX_DEPTH {
            return Err(self.err(format!("value nested deeper than {MAX_DEPTH} levels")));
        }
        self.depth += 1;
        Ok(())
    }

    fn leave(&mut self) {
        self.depth -= 1;
    }

    /// Runs `f` with `step` pushed on the path.
    fn at<T>(&mut self, step: PathStep, f: impl FnOnce(&mut Walk) -> T) -> T {
        self.path.push(step);
        let r = f(self);
        self.path.pop();
        r
    }
}

fn index_step(i: usize) -> PathStep {
    PathStep::Index(i64::try_from(i).unwrap_or(i64::MAX))
}

/// The short name of a type's kind, as error messages use it.
fn type_kind(ty: &Type) -> &'static str {
    match ty {
        Type::Bool => "bool",
        Type::Number => "number",
        Type::String => "string",
        Type::Dynamic => "dynamic",
        Type::List(_) => "list",
        Type::Set(_) => "set",
        Type::Map(_) => "map",
        Type::Object(_) => "object",
        Type::Tuple(_) => "tuple",
    }
}

/// The short name of a value's kind, as error messages use it.
fn value_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Unknown => "unknown",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::List(_) => "list",
        Value::Set(_) => "set",
        Value::Map(_) => "map",
        Value::Object(_) => "object",
        Value::Tuple(_) => "tuple",
        Value::Dynamic(..) => "dynamic value",
    }
}

fn mismatch(walk: &Walk, ty: &Type, got: &str) -> CodecError {
    walk.err(format!("expected {}, got {got}", type_kind(ty)))
}

/// Parses the type JSON of a dynamic value.
fn parse_type_json(walk: &Walk, bytes: &[u8]) -> Result<Type, CodecError> {
    let j: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| walk.err(format!("invalid type in dynamic value: {e}")))?;
    Type::from_json(&j).map_err(|e| walk.err(format!("invalid type in dynamic value: {e}")))
}

/// Checks a `Big` number's text and returns it in its narrowest exact
/// representation (a `Big` with canonical text, or an `Int`/`UInt`/`Float`).
fn normalize_big(walk: &Walk, s: &str) -> Result<Number, CodecError> {
    Number::parse_decimal(s).ok_or_else(|| walk.err(format!("invalid number {s:?}")))
}

/// The type of a plain value written where the type is `dynamic`: what cty
/// would call the value's own type. Errors where the value does not say
/// (null or unknown without a type, empty collections, mixed elements).
fn infer_type(walk: &mut Walk, v: &Value) -> Result<Type, CodecError> {
    match v {
        Value::Bool(_) => Ok(Type::Bool),
        Value::Number(_) => Ok(Type::Number),
        Value::String(_) => Ok(Type::String),
        Value::Dynamic(t, _) => Ok((**t).clone()),
        Value::Null | Value::Unknown => Err(walk.err(format!(
            "cannot infer the type of a {} inside a dynamic value; wrap it in Value::Dynamic",
            value_kind(v)
        ))),
        Value::List(xs) => {
            Ok(Type::list(infer_element_type(walk, xs.iter().enumerate().map(|(i, x)| (index_step(i), x)), "list")?))
        }
        Value::Set(xs) => {
            Ok(Type::set(infer_element_type(walk, xs.iter().enumerate().map(|(i, x)| (index_step(i), x)), "set")?))
        }
        Value::Map(m) => {
            Ok(Type::map(infer_element_type(walk, m.iter().map(|(k, x)| (PathStep::Key(k.clone()), x)), "map")?))
        }
        Value::Tuple(xs) => {
            walk.enter()?;
            let mut ts = Vec::with_capacity(xs.len());
            for (i, x) in xs.iter().enumerate() {
                ts.push(walk.at(index_step(i), |w| infer_type(w, x))?);
            }
            walk.leave();
            Ok(Type::Tuple(ts))
        }
        Value::Object(m) => {
            walk.enter()?;
            let mut attrs = BTreeMap::new();
            for (k, x) in m {
                attrs.insert(k.clone(), walk.at(PathStep::Attr(k.clone()), |w| infer_type(w, x))?);
            }
            walk.leave();
            Ok(Type::Object(attrs))
        }
    }
}

/// The one element type of a collection's known, non-null elements. (On
/// error the walk is abandoned, so its depth need not be restored.)
fn infer_element_type<'v>(
    walk: &mut Walk,
    elems: impl Iterator<Item = (PathStep, &'v Value)>,
    kind: &str,
) -> Result<Type, CodecError> {
    walk.enter()?;
    let mut found: Option<Type> = None;
    for (step, x) in elems {
        if x.is_null() || x.is_unknown() {
            continue;
        }
        let t = walk.at(step, |w| infer_type(w, x))?;
        match &found {
            None => found = Some(t),
            Some(f) if *f == t => {}
            Some(f) => {
                return Err(walk.err(format!(
                    "cannot infer the type of a {kind} in a dynamic value: elements of types {f} and {t}"
                )));
            }
        }
    }
    walk.leave();
    found.ok_or_else(|| {
        walk.err(format!(
            "cannot infer the element type of a {kind} without known elements in a dynamic value; wrap it in Value::Dynamic"
        ))
    })
}

/// For a value written where the type is `dynamic`: its concrete type and
/// the value itself (unwrapping [`Value::Dynamic`]).
fn dynamic_parts<'v>(walk: &mut Walk, v: &'v Value) -> Result<(Type, &'v Value), CodecError> {
    match v {
        Value::Dynamic(t, inner) => Ok(((**t).clone(), inner)),
        other => Ok((infer_type(walk, other)?, other)),
    }
}

/// Checks that an object value has no attribute outside its type.
fn check_object_attrs(
    walk: &Walk,
    attrs: &BTreeMap<String, Type>,
    m: &BTreeMap<String, Value>,
) -> Result<(), CodecError> {
    match m.keys().find(|k| !attrs.contains_key(*k)) {
        Some(k) => Err(walk.err(format!("unsupported attribute {k:?}"))),
        None => Ok(()),
    }
}
