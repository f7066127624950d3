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
use std::fmt::Write as _;

use rmp::Marker;

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

// ---------------------------------------------------------------------------
// msgpack decoding

/// One msgpack item: scalars with their data, containers with their length.
enum Item<'a> {
    Nil,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(&'a [u8]),
    Bin(&'a [u8]),
    Array(usize),
    Map(usize),
    Ext,
}

impl Item<'_> {
    fn kind(&self) -> &'static str {
        match self {
            Item::Nil => "null",
            Item::Bool(_) => "bool",
            Item::Int(_) | Item::UInt(_) | Item::Float(_) => "number",
            Item::Str(_) => "string",
            Item::Bin(_) => "binary",
            Item::Array(_) => "array",
            Item::Map(_) => "map",
            Item::Ext => "unknown",
        }
    }
}

struct MsgpackDecoder<'a> {
    input: &'a [u8],
    walk: Walk,
}

impl<'a> MsgpackDecoder<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], CodecError> {
        if n > self.input.len() {
            return Err(self.walk.err(format!("unexpected end of input: {n} bytes needed, {} left", self.input.len())));
        }
        let (head, tail) = self.input.split_at(n);
        self.input = tail;
        Ok(head)
    }

    fn be<const N: usize>(&mut self) -> Result<[u8; N], CodecError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn len8(&mut self) -> Result<usize, CodecError> {
        Ok(usize::from(self.be::<1>()?[0]))
    }

    fn len16(&mut self) -> Result<usize, CodecError> {
        Ok(usize::from(u16::from_be_bytes(self.be()?)))
    }

    fn len32(&mut self) -> Result<usize, CodecError> {
        let n = u32::from_be_bytes(self.be()?);
        usize::try_from(n).map_err(|_| self.walk.err("length too large"))
    }

    /// Skips an extension's type byte and `len` bytes of payload.
    fn ext(&mut self, len: usize) -> Result<Item<'a>, CodecError> {
        self.take(1)?;
        self.take(len)?;
        Ok(Item::Ext)
    }

    /// A container of `len` entries, each at least `min_bytes` long, must fit
    /// in what is left.
    fn container_len(&self, len: usize, min_bytes: usize, what: &str) -> Result<usize, CodecError> {
        if len.saturating_mul(min_bytes) > self.input.len() {
            return Err(self
                .walk
                .err(format!("{what} of {len} entries is longer than the remaining {} bytes", self.input.len())));
        }
        Ok(len)
    }

    fn item(&mut self) -> Result<Item<'a>, CodecError> {
        let marker = rmp::decode::read_marker(&mut self.input).map_err(|_| self.walk.err("unexpected end of input"))?;
        Ok(match marker {
            Marker::Null => Item::Nil,
            Marker::True => Item::Bool(true),
            Marker::False => Item::Bool(false),
            Marker::FixPos(n) => Item::Int(i64::from(n)),
            Marker::FixNeg(n) => Item::Int(i64::from(n)),
            Marker::U8 => Item::Int(i64::from(self.be::<1>()?[0])),
            Marker::U16 => Item::Int(i64::from(u16::from_be_bytes(self.be()?))),
            Marker::U32 => Item::Int(i64::from(u32::from_be_bytes(self.be()?))),
            Marker::U64 => {
                let u = u64::from_be_bytes(self.be()?);
                i64::try_from(u).map_or(Item::UInt(u), Item::Int)
            }
            Marker::I8 => Item::Int(i64::from(i8::from_be_bytes(self.be()?))),
            Marker::I16 => Item::Int(i64::from(i16::from_be_bytes(self.be()?))),
            Marker::I32 => Item::Int(i64::from(i32::from_be_bytes(self.be()?))),
            Marker::I64 => Item::Int(i64::from_be_bytes(self.be()?)),
            Marker::F32 => Item::Float(f64::from(f32::from_be_bytes(self.be()?))),
            Marker::F64 => Item::Float(f64::from_be_bytes(self.be()?)),
            Marker::FixStr(n) => Item::Str(self.take(usize::from(n))?),
            Marker::Str8 => {
                let n = self.len8()?;
                Item::Str(self.take(n)?)
            }
            Marker::Str16 => {
                let n = self.len16()?;
                Item::Str(self.take(n)?)
            }
            Marker::Str32 => {
                let n = self.len32()?;
                Item::Str(self.take(n)?)
            }
            Marker::Bin8 => {
                let n = self.len8()?;
                Item::Bin(self.take(n)?)
            }
            Marker::Bin16 => {
                let n = self.len16()?;
                Item::Bin(self.take(n)?)
            }
            Marker::Bin32 => {
                let n = self.len32()?;
                Item::Bin(self.take(n)?)
            }
            Marker::FixArray(n) => Item::Array(self.container_len(usize::from(n), 1, "array")?),
            Marker::Array16 => {
                let n = self.len16()?;
                Item::Array(self.container_len(n, 1, "array")?)
            }
            Marker::Array32 => {
                let n = self.len32()?;
                Item::Array(self.container_len(n, 1, "array")?)
            }
            Marker::FixMap(n) => Item::Map(self.container_len(usize::from(n), 2, "map")?),
            Marker::Map16 => {
                let n = self.len16()?;
                Item::Map(self.container_len(n, 2, "map")?)
            }
            Marker::Map32 => {
                let n = self.len32()?;
                Item::Map(self.container_len(n, 2, "map")?)
            }
            Marker::FixExt1 => self.ext(1)?,
            Marker::FixExt2 => self.ext(2)?,
            Marker::FixExt4 => self.ext(4)?,
            Marker::FixExt8 => self.ext(8)?,
            Marker::FixExt16 => self.ext(16)?,
            Marker::Ext8 => {
                let n = self.len8()?;
                self.ext(n)?
            }
            Marker::Ext16 => {
                let n = self.len16()?;
                self.ext(n)?
            }
            Marker::Ext32 => {
                let n = self.len32()?;
                self.ext(n)?
            }
            Marker::Reserved => return Err(self.walk.err("invalid msgpack marker 0xc1")),
        })
    }

    fn utf8(&self, bytes: &[u8]) -> Result<String, CodecError> {
        std::str::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|e| self.walk.err(format!("invalid UTF-8 in string: {e}")))
    }

    /// A map key: a string (or UTF-8 binary).
    fn key(&mut self) -> Result<String, CodecError> {
        match self.item()? {
            Item::Str(b) | Item::Bin(b) => self.utf8(b),
            other => Err(self.walk.err(format!("map key must be a string, got {}", other.kind()))),
        }
    }

    fn value(&mut self, ty: &Type) -> Result<Value, CodecError> {
        let item = self.item()?;
        match (&item, ty) {
            (Item::Nil, _) => Ok(Value::Null),
            (Item::Ext, _) => Ok(Value::Unknown),
            (Item::Bool(b), Type::Bool) => Ok(Value::Bool(*b)),
            (Item::Int(i), Type::Number) => Ok(Value::Number(Number::Int(*i))),
            (Item::UInt(u), Type::Number) => Ok(Value::Number(Number::UInt(*u))),
            (Item::Float(f), Type::Number) if f.is_nan() => Err(self.walk.err("NaN is not a number")),
            (Item::Float(f), Type::Number) => Ok(Value::Number(Number::Float(*f))),
            (Item::Str(b), Type::Number) => {
                let s = self.utf8(b)?;
                Ok(Value::Number(normalize_big(&self.walk, &s)?))
            }
            (Item::Str(b) | Item::Bin(b), Type::String) => Ok(Value::String(self.utf8(b)?)),
            (Item::Array(n), Type::List(e) | Type::Set(e)) => {
                let xs = self.elements(*n, |d, _| d.value(e))?;
                Ok(if matches!(ty, Type::List(_)) { Value::List(xs) } else { Value::Set(xs) })
            }
            (Item::Array(n), Type::Tuple(ts)) => {
                if *n != ts.len() {
                    return Err(self.walk.err(format!("expected tuple of {} elements, got {n}", ts.len())));
                }
                Ok(Value::Tuple(self.elements(*n, |d, i| d.value(&ts[i]))?))
            }
            (Item::Map(n), Type::Map(e)) => {
                self.walk.enter()?;
                let mut m = BTreeMap::new();
                for _ in 0..*n {
                    let k = self.key()?;
                    if m.contains_key(&k) {
                        return Err(self.walk.err(format!("duplicate map key {k:?}")));
                    }
                    let v = self.at(PathStep::Key(k.clone()), |d| d.value(e))?;
                    m.insert(k, v);
                }
                self.walk.leave();
                Ok(Value::Map(m))
            }
            (Item::Map(n), Type::Object(attrs)) => {
                self.walk.enter()?;
                let mut m = BTreeMap::new();
                for _ in 0..*n {
                    let k = self.key()?;
                    let Some(aty) = attrs.get(&k) else {
                        return Err(self.walk.err(format!("unsupported attribute {k:?}")));
                    };
                    if m.contains_key(&k) {
                        return Err(self.walk.err(format!("duplicate attribute {k:?}")));
                    }
                    let v = self.at(PathStep::Attr(k.clone()), |d| d.value(aty))?;
                    m.insert(k, v);
                }
                for k in attrs.keys() {
                    if !m.contains_key(k) {
                        m.insert(k.clone(), Value::Null);
                    }
                }
                self.walk.leave();
                Ok(Value::Object(m))
            }
            (Item::Array(n), Type::Dynamic) => {
                if *n != 2 {
                    return Err(self.walk.err(format!("expected dynamic value as [type, value], got array of {n}")));
                }
                let t = match self.item()? {
                    Item::Str(b) | Item::Bin(b) => parse_type_json(&self.walk, b)?,
                    other => {
                        return Err(self
                            .walk
                            .err(format!("expected type JSON in dynamic value, got {}", other.kind())));
                    }
                };
                self.walk.enter()?;
                let v = self.value(&t)?;
                self.walk.leave();
                Ok(Value::Dynamic(Box::new(t), Box::new(v)))
            }
            (other, Type::Dynamic) => {
                Err(self.walk.err(format!("expected dynamic value as [type, value], got {}", other.kind())))
            }
            (other, _) => Err(mismatch(&self.walk, ty, other.kind())),
        }
    }

    /// Runs `f` with `step` pushed on the path.
    fn at<T>(&mut self, step: PathStep, f: impl FnOnce(&mut Self) -> T) -> T {
        self.walk.path.push(step);
        let r = f(self);
        self.walk.path.pop();
        r
    }

    /// Decodes `n` array elements, each with its index on the path.
    fn elements(
        &mut self,
        n: usize,
        mut f: impl FnMut(&mut Self, usize) -> Result<Value, CodecError>,
    ) -> Result<Vec<Value>, CodecError> {
        self.walk.enter()?;
        // `n` is already bounded by the remaining input; cap the up-front
        // allocation anyway and let the vector grow.
        let mut xs = Vec::with_capacity(n.min(1024));
        for i in 0..n {
            xs.push(self.at(index_step(i), |d| f(d, i))?);
        }
        self.walk.leave();
        Ok(xs)
    }
}

// ---------------------------------------------------------------------------
// msgpack encoding

struct MsgpackEncoder {
    out: Vec<u8>,
    walk: Walk,
}

impl MsgpackEncoder {
    /// Writing to a `Vec` cannot fail; this only turns the `Result` into ours.
    fn w<T, E: std::fmt::Display>(&self, r: Result<T, E>) -> Result<(), CodecError> {
        r.map(|_| ()).map_err(|e| self.walk.err(format!("msgpack write failed: {e}")))
    }

    fn len(&self, n: usize) -> Result<u32, CodecError> {
        u32::try_from(n).map_err(|_| self.walk.err(format!("{n} elements are more than msgpack can hold")))
    }

    fn array_len(&mut self, n: usize) -> Result<(), CodecError> {
        let n = self.len(n)?;
        let r = rmp::encode::write_array_len(&mut self.out, n);
        self.w(r)
    }

    fn map_len(&mut self, n: usize) -> Result<(), CodecError> {
        let n = self.len(n)?;
        let r = rmp::encode::write_map_len(&mut self.out, n);
        self.w(r)
    }

    fn str(&mut self, s: &str) -> Result<(), CodecError> {
        self.len(s.len())?;
        let r = rmp::encode::write_str(&mut self.out, s);
        self.w(r)
    }

    fn number(&mut self, n: &Number) -> Result<(), CodecError> {
        match n {
            Number::Int(i) => {
                let r = rmp::encode::write_sint(&mut self.out, *i);
                self.w(r)
            }
            Number::UInt(u) => {
                let r = rmp::encode::write_uint(&mut self.out, *u);
                self.w(r)
            }
            Number::Float(f) if f.is_nan() => Err(self.walk.err("NaN is not a number")),
            Number::Float(f) => match n.as_i64() {
                Some(i) => {
                    let r = rmp::encode::write_sint(&mut self.out, i);
                    self.w(r)
                }
                None => {
                    let r = rmp::encode::write_f64(&mut self.out, *f);
                    self.w(r)
                }
            },
            Number::Big(s) => match normalize_big(&self.walk, s)? {
                Number::Big(canonical) => self.str(&canonical),
                exact => self.number(&exact),
            },
        }
    }

    fn value(&mut self, v: &Value, ty: &Type) -> Result<(), CodecError> {
        match (v, ty) {
            (Value::Null, _) => {
                rmp::encode::write_nil(&mut self.out).map_err(|e| self.walk.err(e.to_string()))?;
                Ok(())
            }
            (Value::Unknown, _) => {
                // What cty writes for an unknown: fixext1, type 0, payload 0.
                let r = rmp::encode::write_ext_meta(&mut self.out, 1, 0);
                self.w(r)?;
                self.out.push(0);
                Ok(())
            }
            (_, Type::Dynamic) => {
                let (t, inner) = dynamic_parts(&mut self.walk, v)?;
                self.walk.enter()?;
                self.array_len(2)?;
                let r = rmp::encode::write_bin(&mut self.out, &t.to_json_bytes());
                self.w(r)?;
                self.value(inner, &t)?;
                self.walk.leave();
                Ok(())
            }
            (Value::Dynamic(t, inner), _) if **t == *ty => self.value(inner, ty),
            (Value::Dynamic(t, _), _) => {
                Err(self.walk.err(format!("expected {}, got dynamic value of type {t}", type_kind(ty))))
            }
            (Value::Bool(b), Type::Bool) => {
                rmp::encode::write_bool(&mut self.out, *b).map_err(|e| self.walk.err(e.to_string()))?;
                Ok(())
            }
            (Value::Number(n), Type::Number) => self.number(n),
            (Value::String(s), Type::String) => self.str(s),
            (Value::List(xs), Type::List(e)) | (Value::Set(xs), Type::Set(e)) => {
                self.walk.enter()?;
                self.array_len(xs.len())?;
                for (i, x) in xs.iter().enumerate() {
                    self.walk.path.push(index_step(i));
                    self.value(x, e)?;
                    self.walk.path.pop();
                }
                self.walk.leave();
                Ok(())
            }
            (Value::Tuple(xs), Type::Tuple(ts)) => {
                if xs.len() != ts.len() {
                    return Err(self.walk.err(format!("expected tuple of {} elements, got {}", ts.len(), xs.len())));
                }
                self.walk.enter()?;
                self.array_len(xs.len())?;
                for (i, (x, t)) in xs.iter().zip(ts).enumerate() {
                    self.walk.path.push(index_step(i));
                    self.value(x, t)?;
                    self.walk.path.pop();
                }
                self.walk.leave();
                Ok(())
            }
            (Value::Map(m), Type::Map(e)) => {
                self.walk.enter()?;
                self.map_len(m.len())?;
                for (k, x) in m {
                    self.str(k)?;
                    self.walk.path.push(PathStep::Key(k.clone()));
                    self.value(x, e)?;
                    self.walk.path.pop();
                }
                self.walk.leave();
                Ok(())
            }
            (Value::Object(m), Type::Object(attrs)) => {
                check_object_attrs(&self.walk, attrs, m)?;
                self.walk.enter()?;
                self.map_len(attrs.len())?;
                for (k, t) in attrs {
                    self.str(k)?;
                    self.walk.path.push(PathStep::Attr(k.clone()));
                    self.value(m.get(k).unwrap_or(&Value::Null), t)?;
                    self.walk.path.pop();
                }
                self.walk.leave();
                Ok(())
            }
            (other, _) => Err(mismatch(&self.walk, ty, value_kind(other))),
        }
    }
}

// ---------------------------------------------------------------------------
// JSON: a small parser that keeps number text exact, then typed decoding.

/// A parsed JSON document; numbers keep their text.
enum Json {
    Null,
    Bool(bool),
    Number(String),
    String(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl Json {
    fn kind(&self) -> &'static str {
        match self {
            Json::Null => "null",
            Json::Bool(_) => "bool",
            Json::Number(_) => "number",
            Json::String(_) => "string",
            Json::Array(_) => "array",
            Json::Object(_) => "object",
        }
    }

    /// As a `serde_json::Value`, for [`Type::from_json`].
    fn to_serde(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match self {
            Json::Null => J::Null,
            Json::Bool(b) => J::Bool(*b),
            Json::Number(n) => n.parse::<serde_json::Number>().map_or(J::Null, J::Number),
            Json::String(s) => J::String(s.clone()),
            Json::Array(xs) => J::Array(xs.iter().map(Json::to_serde).collect()),
            Json::Object(kv) => J::Object(kv.iter().map(|(k, v)| (k.clone(), v.to_serde())).collect()),
        }
    }
}

/// JSON documents may nest deeper than values: a dynamic value's type JSON
/// nests inside it.
const MAX_JSON_DEPTH: usize = 2 * MAX_DEPTH + 8;

struct JsonParser<'a> {
    text: &'a str,
    pos: usize,
    depth: usize,
}

impl JsonParser<'_> {
    fn err(&self, what: &str) -> String {
        format!("invalid JSON at byte {}: {what}", self.pos)
    }

    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn expect(&mut self, c: u8) -> Result<(), String> {
        if self.peek() == Some(c) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.err(&format!("expected '{}'", c as char)))
        }
    }

    fn document(mut self) -> Result<Json, String> {
        let v = self.value()?;
        self.ws();
        if self.pos != self.text.len() {
            return Err(self.err("unexpected data after the value"));
        }
        Ok(v)
    }

    fn literal(&mut self, word: &str, v: Json) -> Result<Json, String> {
        if self.text[self.pos..].starts_with(word) {
            self.pos += word.len();
            Ok(v)
        } else {
            Err(self.err("unexpected character"))
        }
    }

    fn value(&mut self) -> Result<Json, String> {
        self.ws();
        match self.peek() {
            None => Err(self.err("unexpected end of input")),
            Some(b'n') => self.literal("null", Json::Null),
            Some(b't') => self.literal("true", Json::Bool(true)),
            Some(b'f') => self.literal("false", Json::Bool(false)),
            Some(b'"') => Ok(Json::String(self.string()?)),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(b'[') => {
                self.nest()?;
                self.pos += 1;
                let mut xs = Vec::new();
                self.ws();
                if self.peek() == Some(b']') {
                    self.pos += 1;
                } else {
                    loop {
                        xs.push(self.value()?);
                        self.ws();
                        match self.peek() {
                            Some(b',') => self.pos += 1,
                            Some(b']') => {
                                self.pos += 1;
                                break;
                            }
                            _ => return Err(self.err("expected ',' or ']'")),
                        }
                    }
                }
                self.depth -= 1;
                Ok(Json::Array(xs))
            }
            Some(b'{') => {
                self.nest()?;
                self.pos += 1;
                let mut kv = Vec::new();
                self.ws();
                if self.peek() == Some(b'}') {
                    self.pos += 1;
                } else {
                    loop {
                        self.ws();
                        let k = self.string()?;
                        self.ws();
                        self.expect(b':')?;
                        kv.push((k, self.value()?));
                        self.ws();
                        match self.peek() {
                            Some(b',') => self.pos += 1,
                            Some(b'}') => {
                                self.pos += 1;
                                break;
                            }
                            _ => return Err(self.err("expected ',' or '}'")),
                        }
                    }
                }
                self.depth -= 1;
                Ok(Json::Object(kv))
            }
            Some(_) => Err(self.err("unexpected character")),
        }
    }

    fn nest(&mut self) -> Result<(), String> {
        if self.depth >= MAX_JSON_DEPTH {
            return Err(self.err(&format!("nested deeper than {MAX_JSON_DEPTH} levels")));
        }
        self.depth += 1;
        Ok(())
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.pos += 1;
        }
        self.pos - start
    }

    /// A number token per RFC 8259, kept as text.
    fn number(&mut self) -> Result<Json, String> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        let int_start = self.pos;
        let n = self.digits();
        if n == 0 || (n > 1 && self.text.as_bytes()[int_start] == b'0') {
            return Err(self.err("invalid number"));
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if self.digits() == 0 {
                return Err(self.err("invalid number"));
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            if self.digits() == 0 {
                return Err(self.err("invalid number"));
            }
        }
        Ok(Json::Number(self.text[start..self.pos].to_string()))
    }

    fn hex4(&mut self) -> Result<u32, String> {
        let hex = self.text.get(self.pos..self.pos + 4).ok_or_else(|| self.err("truncated \\u escape"))?;
        let v = u32::from_str_radix(hex, 16).map_err(|_| self.err("invalid \\u escape"))?;
        if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(self.err("invalid \\u escape"));
        }
        self.pos += 4;
        Ok(v)
    }

    fn string(&mut self) -> Result<String, String> {
        self.expect(b'"')?;
        let mut out = String::new();
        loop {
            let start = self.pos;
            while let Some(c) = self.peek() {
                if c == b'"' || c == b'\\' || c < 0x20 {
                    break;
                }
                self.pos += 1;
            }
            // Stops only at ASCII bytes, so the slice is on char boundaries.
            out.push_str(&self.text[start..self.pos]);
            match self.peek() {
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.pos += 1;
                    let c = self.peek().ok_or_else(|| self.err("truncated escape"))?;
                    self.pos += 1;
                    match c {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => {
                            let hi = self.hex4()?;
                            let cp = if (0xd800..0xdc00).contains(&hi) {
                                if !self.text[self.pos..].starts_with("\\u") {
                                    return Err(self.err("unpaired surrogate in \\u escape"));
                                }
                                self.pos += 2;
                                let lo = self.hex4()?;
                                if !(0xdc00..0xe000).contains(&lo) {
                                    return Err(self.err("unpaired surrogate in \\u escape"));
                                }
                                0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00)
                            } else {
                                hi
                            };
                            out.push(char::from_u32(cp).ok_or_else(|| self.err("unpaired surrogate in \\u escape"))?);
                        }
                        _ => return Err(self.err("invalid escape")),
                    }
                }
                Some(_) => return Err(self.err("control character in string")),
                None => return Err(self.err("unterminated string")),
            }
        }
    }
}

struct JsonDecoder {
    ignore_undefined_attributes: bool,
    walk: Walk,
}

impl JsonDecoder {
    fn value(&mut self, j: &Json, ty: &Type) -> Result<Value, CodecError> {
        match (j, ty) {
            (Json::Null, _) => Ok(Value::Null),
            (Json::Bool(b), Type::Bool) => Ok(Value::Bool(*b)),
            // cty converts these strings to bools.
            (Json::String(s), Type::Bool) if s == "true" || s == "false" => Ok(Value::Bool(s == "true")),
            (Json::Number(s) | Json::String(s), Type::Number) => Ok(Value::Number(normalize_big(&self.walk, s)?)),
            (Json::String(s), Type::String) => Ok(Value::String(s.clone())),
            // cty takes numbers and bools where a string is wanted, as text.
            (Json::Number(s), Type::String) => Ok(Value::String(s.clone())),
            (Json::Bool(b), Type::String) => Ok(Value::String(b.to_string())),
            (Json::Array(xs), Type::List(e) | Type::Set(e)) => {
                let vs = self.elements(xs, |_| e)?;
                Ok(if matches!(ty, Type::List(_)) { Value::List(vs) } else { Value::Set(vs) })
            }
            (Json::Array(xs), Type::Tuple(ts)) => {
                if xs.len() != ts.len() {
                    return Err(self.walk.err(format!("expected tuple of {} elements, got {}", ts.len(), xs.len())));
                }
                Ok(Value::Tuple(self.elements(xs, |i| &ts[i])?))
            }
            (Json::Object(kv), Type::Map(e)) => {
                self.walk.enter()?;
                let mut m = BTreeMap::new();
                for (k, x) in kv {
                    if m.contains_key(k) {
                        return Err(self.walk.err(format!("duplicate map key {k:?}")));
                    }
                    let v = self.at(PathStep::Key(k.clone()), |d| d.value(x, e))?;
                    m.insert(k.clone(), v);
                }
                self.walk.leave();
                Ok(Value::Map(m))
            }
            (Json::Object(kv), Type::Object(attrs)) => {
                self.walk.enter()?;
                let mut m = BTreeMap::new();
                for (k, x) in kv {
                    let Some(aty) = attrs.get(k) else {
                        if self.ignore_undefined_attributes {
                            continue;
                        }
                        return Err(self.walk.err(format!("unsupported attribute {k:?}")));
                    };
                    if m.contains_key(k) {
                        return Err(self.walk.err(format!("duplicate attribute {k:?}")));
                    }
                    let v = self.at(PathStep::Attr(k.clone()), |d| d.value(x, aty))?;
                    m.insert(k.clone(), v);
                }
                for k in attrs.keys() {
                    if !m.contains_key(k) {
                        m.insert(k.clone(), Value::Null);
                    }
                }
                self.walk.leave();
                Ok(Value::Object(m))
            }
            (Json::Object(kv), Type::Dynamic) => {
                let (mut value, mut type_json) = (None, None);
                for (k, x) in kv {
                    match k.as_str() {
                        "value" => value = Some(x),
                        "type" => type_json = Some(x),
                        other => {
                            return Err(self.walk.err(format!("invalid key {other:?} in dynamically-typed value")));
                        }
                    }
                }
                let type_json = type_json.ok_or_else(|| self.walk.err("missing type in dynamically-typed value"))?;
                let value = value.ok_or_else(|| self.walk.err("missing value in dynamically-typed value"))?;
                let t = Type::from_json(&type_json.to_serde())
                    .map_err(|e| self.walk.err(format!("invalid type in dynamic value: {e}")))?;
                self.walk.enter()?;
                let v = self.value(value, &t)?;
                self.walk.leave();
                Ok(Value::Dynamic(Box::new(t), Box::new(v)))
            }
            (other, Type::Dynamic) => Err(self
                .walk
                .err(format!("expected dynamic value as {{\"value\": ..., \"type\": ...}}, got {}", other.kind()))),
            (other, _) => Err(mismatch(&self.walk, ty, other.kind())),
        }
    }

    fn at<T>(&mut self, step: PathStep, f: impl FnOnce(&mut Self) -> T) -> T {
        self.walk.path.push(step);
        let r = f(self);
        self.walk.path.pop();
        r
    }

    fn elements<'t>(&mut self, xs: &[Json], ty_of: impl Fn(usize) -> &'t Type) -> Result<Vec<Value>, CodecError> {
        self.walk.enter()?;
        let vs = xs
            .iter()
            .enumerate()
            .map(|(i, x)| self.at(index_step(i), |d| d.value(x, ty_of(i))))
            .collect::<Result<Vec<_>, _>>()?;
        self.walk.leave();
        Ok(vs)
    }
}

struct JsonEncoder {
    out: String,
    walk: Walk,
}

impl JsonEncoder {
    fn str(&mut self, s: &str) -> Result<(), CodecError> {
        let quoted = serde_json::to_string(s).map_err(|e| self.walk.err(format!("JSON write failed: {e}")))?;
        self.out.push_str(&quoted);
        Ok(())
    }

    fn number(&mut self, n: &Number) -> Result<(), CodecError> {
        match n {
            Number::Float(f) if !f.is_finite() => Err(self.walk.err(format!("{f} cannot be written as JSON"))),
            Number::Big(s) => {
                let n = normalize_big(&self.walk, s)?;
                self.out.push_str(&n.to_decimal_string());
                Ok(())
            }
            _ => {
                // As in msgpack, an integral float that fits i64 is written as
                // an integer (so -0.0 is written as 0).
                match n.as_i64() {
                    Some(i) => self.out.push_str(&i.to_string()),
                    None => self.out.push_str(&n.to_decimal_string()),
                }
                Ok(())
            }
        }
    }

    fn value(&mut self, v: &Value, ty: &Type) -> Result<(), CodecError> {
        match (v, ty) {
            (Value::Null, _) => {
                self.out.push_str("null");
                Ok(())
            }
            (Value::Unknown, _) => Err(self.walk.err("unknown values cannot be written as JSON")),
            (_, Type::Dynamic) => {
                let (t, inner) = dynamic_parts(&mut self.walk, v)?;
                self.walk.enter()?;
                self.out.push_str("{\"value\":");
                self.value(inner, &t)?;
                let _ = write!(self.out, ",\"type\":{}}}", t.to_json());
                self.walk.leave();
                Ok(())
            }
            (Value::Dynamic(t, inner), _) if **t == *ty => self.value(inner, ty),
            (Value::Dynamic(t, _), _) => {
                Err(self.walk.err(format!("expected {}, got dynamic value of type {t}", type_kind(ty))))
            }
            (Value::Bool(b), Type::Bool) => {
                self.out.push_str(if *b { "true" } else { "false" });
                Ok(())
            }
            (Value::Number(n), Type::Number) => self.number(n),
            (Value::String(s), Type::String) => self.str(s),
            (Value::List(xs), Type::List(e)) | (Value::Set(xs), Type::Set(e)) => {
                self.array(xs.iter().map(|x| (x, &**e)))
            }
            (Value::Tuple(xs), Type::Tuple(ts)) => {
                if xs.len() != ts.len() {
                    return Err(self.walk.err(format!("expected tuple of {} elements, got {}", ts.len(), xs.len())));
                }
                self.array(xs.iter().zip(ts))
            }
            (Value::Map(m), Type::Map(e)) => self.object(m.iter().map(|(k, x)| (PathStep::Key(k.clone()), k, x, &**e))),
            (Value::Object(m), Type::Object(attrs)) => {
                check_object_attrs(&self.walk, attrs, m)?;
                self.object(
                    attrs.iter().map(|(k, t)| (PathStep::Attr(k.clone()), k, m.get(k).unwrap_or(&Value::Null), t)),
                )
            }
            (other, _) => Err(mismatch(&self.walk, ty, value_kind(other))),
        }
    }

    fn array<'v>(&mut self, items: impl Iterator<Item = (&'v Value, &'v Type)>) -> Result<(), CodecError> {
        self.walk.enter()?;
        self.out.push('[');
        for (i, (x, t)) in items.enumerate() {
            if i > 0 {
                self.out.push(',');
            }
            self.walk.path.push(index_step(i));
            self.value(x, t)?;
            self.walk.path.pop();
        }
        self.out.push(']');
        self.walk.leave();
        Ok(())
    }

    fn object<'v>(
        &mut self,
        entries: impl Iterator<Item = (PathStep, &'v String, &'v Value, &'v Type)>,
    ) -> Result<(), CodecError> {
        self.walk.enter()?;
        self.out.push('{');
        for (i, (step, k, x, t)) in entries.enumerate() {
            if i > 0 {
                self.out.push(',');
            }
            self.str(k)?;
            self.out.push(':');
            self.walk.path.push(step);
            self.value(x, t)?;
            self.walk.path.pop();
        }
        self.out.push('}');
        self.walk.leave();
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    fn mp(v: &Value, ty: &Type) -> String {
        encode_msgpack(v, ty).unwrap().iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(" ")
    }

    fn dec(h: &str, ty: &Type) -> Value {
        decode_msgpack(&hex(h), ty).unwrap()
    }

    fn dec_err(h: &str, ty: &Type) -> String {
        decode_msgpack(&hex(h), ty).unwrap_err().to_string()
    }

    fn num(n: Number) -> Value {
        Value::Number(n)
    }

    fn ab_type() -> Type {
        Type::object([("a", Type::String), ("b", Type::Number)])
    }

    // -- msgpack fixtures (bytes as cty writes them)

    #[test]
    fn object_encodes_like_cty() {
        let v = Value::object([("a", Value::from("x")), ("b", Value::int(1))]);
        assert_eq!(mp(&v, &ab_type()), "82 a1 61 a1 78 a1 62 01");
        assert_eq!(dec("82 a1 61 a1 78 a1 62 01", &ab_type()), v);
        // Key order on the wire does not matter when decoding.
        assert_eq!(dec("82 a1 62 01 a1 61 a1 78", &ab_type()), v);
    }

    #[test]
    fn object_writes_every_type_attribute_sorted_and_missing_as_nil() {
        let ty = Type::object([("z", Type::Bool), ("a", Type::String), ("m", Type::Number)]);
        let v = Value::object([("z", Value::from(true))]);
        assert_eq!(mp(&v, &ty), "83 a1 61 c0 a1 6d c0 a1 7a c3");
        // Attributes missing on the wire decode as null.
        let got = dec("81 a1 7a c3", &ty);
        assert_eq!(got, Value::object([("a", Value::Null), ("m", Value::Null), ("z", Value::from(true))]));
    }

    #[test]
    fn unknowns_are_any_extension() {
        assert_eq!(mp(&Value::Unknown, &Type::String), "d4 00 00");
        for h in [
            "d4 00 00",
            "c7 00 00",
            "d5 00 00 00",
            "c8 00 01 00 ff",
            "d8 07 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00",
        ] {
            assert_eq!(dec(h, &Type::Number), Value::Unknown, "{h}");
        }
        // Refined unknown (Terraform >= 1.6): ext 12 with a map of refinements
        // (here {1: false}, "not null", and {2: "ab"}, a string prefix).
        assert_eq!(dec("c7 03 0c 81 01 c2", &Type::String), Value::Unknown);
        assert_eq!(dec("c7 05 0c 81 02 a2 61 62", &Type::String), Value::Unknown);
        let ty = Type::object([("a", Type::list(Type::String))]);
        assert_eq!(dec("81 a1 61 c7 03 0c 81 01 c2", &ty), Value::object([("a", Value::Unknown)]));
        assert_eq!(dec("d4 0c 00", &Type::Dynamic), Value::Unknown);
        assert_eq!(dec("c0", &Type::Dynamic), Value::Null);
    }

    #[test]
    fn dynamic_round_trip() {
        let v = Value::Dynamic(Box::new(Type::String), Box::new(Value::from("hi")));
        // [bin "\"string\"", "hi"]
        let bytes = "92 c4 08 22 73 74 72 69 6e 67 22 a2 68 69";
        assert_eq!(mp(&v, &Type::Dynamic), bytes);
        assert_eq!(dec(bytes, &Type::Dynamic), v);
        // The type may also arrive as a str.
        assert_eq!(dec("92 a8 22 73 74 72 69 6e 67 22 a2 68 69", &Type::Dynamic), v);

        let lt = Type::list(Type::Number);
        let v = Value::Dynamic(Box::new(lt.clone()), Box::new(Value::List(vec![Value::int(1), Value::Unknown])));
        let enc = encode_msgpack(&v, &Type::Dynamic).unwrap();
        assert_eq!(decode_msgpack(&enc, &Type::Dynamic).unwrap(), v);
        // A typed null inside a dynamic value keeps its type.
        let v = Value::Dynamic(Box::new(Type::Bool), Box::new(Value::Null));
        assert_eq!(mp(&v, &Type::Dynamic), "92 c4 06 22 62 6f 6f 6c 22 c0");
        assert_eq!(dec("92 c4 06 22 62 6f 6f 6c 22 c0", &Type::Dynamic), v);
    }

    #[test]
    fn dynamic_infers_plain_values() {
        assert_eq!(mp(&Value::from("hi"), &Type::Dynamic), "92 c4 08 22 73 74 72 69 6e 67 22 a2 68 69");
        let v = Value::object([("n", Value::int(1)), ("l", Value::List(vec![Value::Null, Value::from(true)]))]);
        let got = decode_msgpack(&encode_msgpack(&v, &Type::Dynamic).unwrap(), &Type::Dynamic).unwrap();
        let want_ty = Type::object([("l", Type::list(Type::Bool)), ("n", Type::Number)]);
        assert_eq!(got, Value::Dynamic(Box::new(want_ty), Box::new(v)));
        // Ambiguous values are refused, with the path.
        let err = encode_msgpack(&Value::List(vec![]), &Type::Dynamic).unwrap_err();
        assert!(err.message.contains("cannot infer the element type of a list"), "{err}");
        let ty = Type::object([("d", Type::Dynamic)]);
        let err = encode_msgpack(&Value::object([("d", Value::object([("x", Value::Null)]))]), &ty).unwrap_err();
        assert_eq!(
            err.to_string(),
            "d.x: cannot infer the type of a null inside a dynamic value; wrap it in Value::Dynamic"
        );
        let err = encode_msgpack(&Value::List(vec![Value::int(1), Value::from("a")]), &Type::Dynamic).unwrap_err();
        assert!(err.message.contains("elements of types number and string"), "{err}");
    }

    #[test]
    fn numbers_decode_losslessly() {
        let n = |h| match dec(h, &Type::Number) {
            Value::Number(n) => n,
            other => panic!("{other:?}"),
        };
        assert!(matches!(n("a5 31 65 34 30 30"), Number::Big(s) if s == "1e400"));
        assert!(matches!(n("a3 30 2e 31"), Number::Big(s) if s == "0.1"));
        assert!(matches!(n("a3 31 2e 35"), Number::Float(f) if f == 1.5));
        assert!(matches!(n("a2 31 32"), Number::Int(12)));
        assert!(matches!(n("a4 2d 31 65 33"), Number::Int(-1000)));
        // 2^64 is one more than u64::MAX, and exactly an f64.
        assert!(
            matches!(n("b4 31 38 34 34 36 37 34 34 30 37 33 37 30 39 35 35 31 36 31 36"), Number::Float(f) if f == 18446744073709551616.0)
        );
        // -99999999999999999999999
        assert!(
            matches!(n("b8 2d 39 39 39 39 39 39 39 39 39 39 39 39 39 39 39 39 39 39 39 39 39 39 39"), Number::Big(s) if s == "-99999999999999999999999")
        );
        assert!(matches!(n("cf ff ff ff ff ff ff ff ff"), Number::UInt(u64::MAX)));
        assert!(matches!(n("cf 00 00 00 00 00 00 00 05"), Number::Int(5)));
        assert!(matches!(n("d3 80 00 00 00 00 00 00 00"), Number::Int(i64::MIN)));
        assert!(matches!(n("d0 df"), Number::Int(-33)));
        assert!(matches!(n("ff"), Number::Int(-1)));
        assert!(matches!(n("d1 ff 7f"), Number::Int(-129)));
        assert!(matches!(n("cb 3f f8 00 00 00 00 00 00"), Number::Float(f) if f == 1.5));
        assert!(matches!(n("ca 3f c0 00 00"), Number::Float(f) if f == 1.5));
        assert!(matches!(n("cb 7f f0 00 00 00 00 00 00"), Number::Float(f) if f == f64::INFINITY));
    }

    #[test]
    fn numbers_encode_like_cty() {
        let t = &Type::Number;
        assert_eq!(mp(&num(Number::UInt(u64::MAX)), t), "cf ff ff ff ff ff ff ff ff");
        assert_eq!(mp(&num(Number::UInt(1 << 63)), t), "cf 80 00 00 00 00 00 00 00");
        assert_eq!(mp(&num(Number::Int(i64::MIN)), t), "d3 80 00 00 00 00 00 00 00");
        assert_eq!(mp(&num(Number::Int(-33)), t), "d0 df");
        assert_eq!(mp(&num(Number::Int(-1)), t), "ff");
        assert_eq!(mp(&num(Number::Int(127)), t), "7f");
        assert_eq!(mp(&num(Number::Int(128)), t), "cc 80");
        assert_eq!(mp(&num(Number::Int(70000)), t), "ce 00 01 11 70");
        assert_eq!(mp(&num(Number::Float(1.5)), t), "cb 3f f8 00 00 00 00 00 00");
        // Integral floats that fit i64 are written as ints, as cty does.
        assert_eq!(mp(&num(Number::Float(3.0)), t), "03");
        assert_eq!(mp(&num(Number::Float(-0.0)), t), "00");
        assert_eq!(mp(&num(Number::Float(1e300)), t), "cb 7e 37 e4 3c 88 00 75 9c");
        assert_eq!(mp(&num(Number::Float(f64::NEG_INFINITY)), t), "cb ff f0 00 00 00 00 00 00");
        assert_eq!(mp(&num(Number::Big("1e400".into())), t), "a5 31 65 34 30 30");
        // A Big that is really an int is written as one.
        assert_eq!(mp(&num(Number::Big("12".into())), t), "0c");
        let e = encode_msgpack(&num(Number::Float(f64::NAN)), t).unwrap_err();
        assert_eq!(e.to_string(), "NaN is not a number");
        let e = encode_msgpack(&num(Number::Big("1x".into())), t).unwrap_err();
        assert_eq!(e.to_string(), "invalid number \"1x\"");
    }

    #[test]
    fn collections() {
        let lt = Type::list(Type::String);
        let v = Value::List(vec![Value::from("a"), Value::Null, Value::Unknown]);
        assert_eq!(mp(&v, &lt), "93 a1 61 c0 d4 00 00");
        assert_eq!(dec("93 a1 61 c0 d4 00 00", &lt), v);
        // Sets keep wire order and are not deduplicated.
        let st = Type::set(Type::Number);
        assert_eq!(dec("93 02 01 02", &st), Value::Set(vec![Value::int(2), Value::int(1), Value::int(2)]));
        let mt = Type::map(Type::Bool);
        let m = Value::Map([("b".to_string(), Value::from(true)), ("a".to_string(), Value::from(false))].into());
        assert_eq!(mp(&m, &mt), "82 a1 61 c2 a1 62 c3");
        assert_eq!(dec("82 a1 62 c3 a1 61 c2", &mt), m);
        let tt = Type::Tuple(vec![Type::String, Type::Number]);
        let tv = Value::Tuple(vec![Value::from("x"), Value::int(1)]);
        assert_eq!(mp(&tv, &tt), "92 a1 78 01");
        assert_eq!(dec("92 a1 78 01", &tt), tv);
        // Binary is accepted as UTF-8 text.
        assert_eq!(dec("c4 02 68 69", &Type::String), Value::from("hi"));
        // str8/16/32 and array16/map16 forms.
        assert_eq!(dec("d9 01 61", &Type::String), Value::from("a"));
        assert_eq!(dec("da 00 01 61", &Type::String), Value::from("a"));
        assert_eq!(dec("db 00 00 00 01 61", &Type::String), Value::from("a"));
        assert_eq!(dec("dc 00 01 01", &Type::list(Type::Number)), Value::List(vec![Value::int(1)]));
        assert_eq!(dec("dd 00 00 00 01 01", &Type::list(Type::Number)), Value::List(vec![Value::int(1)]));
        assert_eq!(dec("de 00 01 a1 61 c3", &mt), Value::Map([("a".to_string(), Value::from(true))].into()));
        let long = "x".repeat(40);
        assert!(mp(&Value::from(long.as_str()), &Type::String).starts_with("d9 28 78"));
    }

    // -- msgpack errors

    #[test]
    fn type_mismatch_names_the_path() {
        let ty = Type::object([("disk", Type::list(Type::object([("size", Type::Number)])))]);
        // {"disk": [{"size": "big"}]}
        let h = "81 a4 64 69 73 6b 91 81 a4 73 69 7a 65 a3 62 69 67";
        let e = decode_msgpack(&hex(h), &ty).unwrap_err();
        assert_eq!(e.to_string(), "disk[0].size: invalid number \"big\"");
        let h = "81 a4 64 69 73 6b 91 81 a4 73 69 7a 65 c3";
        assert_eq!(dec_err(h, &ty), "disk[0].size: expected number, got bool");
        let h = "81 a4 64 69 73 6b 91 81 a4 73 69 7a 65 c4 01 31";
        assert_eq!(dec_err(h, &ty), "disk[0].size: expected number, got binary");
        assert_eq!(dec_err("01", &Type::String), "expected string, got number");
        assert_eq!(dec_err("a1 61", &Type::list(Type::String)), "expected list, got string");
        let mt = Type::map(Type::Number);
        assert_eq!(dec_err("81 a1 6b a1 76", &mt), "[\"k\"]: invalid number \"v\"");
        assert_eq!(dec_err("81 a1 6b c2", &mt), "[\"k\"]: expected number, got bool");
        // Encoding checks types the same way.
        let v = Value::object([("disk", Value::List(vec![Value::object([("size", Value::from("big"))])]))]);
        assert_eq!(encode_msgpack(&v, &ty).unwrap_err().to_string(), "disk[0].size: expected number, got string");
        let e = encode_msgpack(&Value::Dynamic(Box::new(Type::Bool), Box::new(Value::from(true))), &Type::String);
        assert_eq!(e.unwrap_err().to_string(), "expected string, got dynamic value of type bool");
    }

    #[test]
    fn unsupported_attributes() {
        assert_eq!(dec_err("81 a1 78 01", &ab_type()), "unsupported attribute \"x\"");
        let ty = Type::object([("o", ab_type())]);
        assert_eq!(dec_err("81 a1 6f 81 a1 78 01", &ty), "o: unsupported attribute \"x\"");
        let v = Value::object([("o", Value::object([("x", Value::int(1))]))]);
        assert_eq!(encode_msgpack(&v, &ty).unwrap_err().to_string(), "o: unsupported attribute \"x\"");
        assert_eq!(dec_err("82 a1 61 a1 78 a1 61 a1 79", &ab_type()), "duplicate attribute \"a\"");
        assert_eq!(dec_err("82 a1 61 c3 a1 61 c3", &Type::map(Type::Bool)), "duplicate map key \"a\"");
        assert_eq!(dec_err("81 01 c3", &Type::map(Type::Bool)), "map key must be a string, got number");
    }

    #[test]
    fn malformed_input() {
        assert_eq!(dec_err("", &Type::String), "unexpected end of input");
        assert_eq!(dec_err("a5 61 62", &Type::String), "unexpected end of input: 5 bytes needed, 2 left");
        assert_eq!(dec_err("cd 01", &Type::Number), "unexpected end of input: 2 bytes needed, 1 left");
        assert_eq!(dec_err("01 02", &Type::Number), "1 unexpected bytes after the value");
        assert_eq!(dec_err("c1", &Type::Number), "invalid msgpack marker 0xc1");
        assert_eq!(
            dec_err("a2 c3 28", &Type::String),
            "invalid UTF-8 in string: invalid utf-8 sequence of 1 bytes from index 0"
        );
        assert_eq!(
            dec_err("dd ff ff ff ff", &Type::list(Type::Number)),
            "array of 4294967295 entries is longer than the remaining 0 bytes"
        );
        assert_eq!(
            dec_err("df 00 00 00 02 a1 61 01", &Type::map(Type::Number)),
            "map of 2 entries is longer than the remaining 3 bytes"
        );
        assert_eq!(
            dec_err("c9 ff ff ff ff 00", &Type::Number),
            "unexpected end of input: 4294967295 bytes needed, 0 left"
        );
        assert_eq!(
            dec_err("db ff ff ff ff", &Type::String),
            "unexpected end of input: 4294967295 bytes needed, 0 left"
        );
        assert_eq!(dec_err("cb 7f f8 00 00 00 00 00 00", &Type::Number), "NaN is not a number");
        let tt = Type::Tuple(vec![Type::Number]);
        assert_eq!(dec_err("92 01 02", &tt), "expected tuple of 1 elements, got 2");
        let e = encode_msgpack(&Value::Tuple(vec![]), &tt).unwrap_err();
        assert_eq!(e.to_string(), "expected tuple of 1 elements, got 0");
        assert_eq!(dec_err("a1 61", &Type::Dynamic), "expected dynamic value as [type, value], got string");
        assert_eq!(dec_err("93 01 02 03", &Type::Dynamic), "expected dynamic value as [type, value], got array of 3");
        assert_eq!(dec_err("92 01 02", &Type::Dynamic), "expected type JSON in dynamic value, got number");
        assert!(
            dec_err("92 a3 22 78 22 01", &Type::Dynamic)
                .starts_with("invalid type in dynamic value: unknown primitive type")
        );
        assert!(dec_err("92 a1 5b 01", &Type::Dynamic).starts_with("invalid type in dynamic value: EOF"));
    }

    #[test]
    fn nesting_is_bounded() {
        let mut ty = Type::Number;
        for _ in 0..100 {
            ty = Type::list(ty);
        }
        // 64 nested arrays are fine; 65 are not.
        let ok = format!("{}01", "91".repeat(64));
        let mut t64 = Type::Number;
        for _ in 0..64 {
            t64 = Type::list(t64);
        }
        assert!(decode_msgpack(&hex(&ok), &t64).is_ok());
        let deep = format!("{}01", "91".repeat(65));
        let e = decode_msgpack(&hex(&deep), &ty).unwrap_err();
        assert_eq!(e.message, "value nested deeper than 64 levels");
        assert_eq!(e.path.0.len(), 64);
        // Encoding is bounded too.
        let mut v = Value::int(1);
        for _ in 0..65 {
            v = Value::List(vec![v]);
        }
        assert_eq!(encode_msgpack(&v, &ty).unwrap_err().message, "value nested deeper than 64 levels");
        // A dynamic value whose type JSON is nested past serde_json's limit.
        let tj = format!("{}\"string\"{}", "[\"list\",".repeat(200), "]".repeat(200));
        let mut bytes = hex("92 da");
        bytes.extend_from_slice(&u16::try_from(tj.len()).unwrap().to_be_bytes());
        bytes.extend_from_slice(tj.as_bytes());
        bytes.push(0x90);
        assert!(decode_msgpack(&bytes, &Type::Dynamic).is_err());
    }

    #[test]
    fn fuzz_regressions() {
        // A decimal string whose canonical exponent once exceeded the parse bound.
        let crash = hex(
            "db 00 00 00 32 32 32 32 32 32 32 32 32 32 32 32 30 30 30 30 30 30 30 30 32 32 32 32 32 32 32 30 30 30 30 30 30 30 30 30 30 30 30 65 30 31 30 30 30 30 30 30 30 30 30",
        );
        for ty in [Type::Number, Type::Dynamic, Type::String] {
            if let Ok(v) = decode_msgpack(&crash, &ty) {
                let again = decode_msgpack(&encode_msgpack(&v, &ty).unwrap(), &ty).unwrap();
                assert!(again.semantically_equal(&v));
            }
        }
    }

    // -- JSON

    fn dj(s: &str, ty: &Type) -> Result<Value, String> {
        decode_json(s.as_bytes(), ty, false).map_err(|e| e.to_string())
    }

    fn ej(v: &Value, ty: &Type) -> String {
        String::from_utf8(encode_json(v, ty).unwrap()).unwrap()
    }

    #[test]
    fn json_values() {
        let ty = Type::object([
            ("a", Type::String),
            ("b", Type::Number),
            ("c", Type::list(Type::Bool)),
            ("d", Type::map(Type::Number)),
            ("e", Type::Tuple(vec![Type::String, Type::Number])),
        ]);
        let v = dj(
            r#" {"b": 1, "a": "x\n\u00e9\ud83d\ude00", "c": [true, null], "d": {"k": -2.5}, "e": ["s", 1e2]} "#,
            &ty,
        )
        .unwrap();
        let want = Value::object([
            ("a", Value::from("x\né😀")),
            ("b", Value::int(1)),
            ("c", Value::List(vec![Value::from(true), Value::Null])),
            ("d", Value::Map([("k".to_string(), num(Number::Float(-2.5)))].into())),
            ("e", Value::Tuple(vec![Value::from("s"), Value::int(100)])),
        ]);
        assert_eq!(v, want);
        assert_eq!(ej(&want, &ty), r#"{"a":"x\né😀","b":1,"c":[true,null],"d":{"k":-2.5},"e":["s",100]}"#);
        // Missing attributes are null; the encoder writes every attribute.
        assert_eq!(dj("{}", &ab_type()).unwrap(), Value::object([("a", Value::Null), ("b", Value::Null)]));
        assert_eq!(ej(&Value::object([("b", Value::int(1))]), &ab_type()), r#"{"a":null,"b":1}"#);
    }

    #[test]
    fn json_numbers_are_exact() {
        let n = |s: &str| match dj(s, &Type::Number).unwrap() {
            Value::Number(n) => n,
            other => panic!("{other:?}"),
        };
        assert!(matches!(n("123456789012345678901234567890"), Number::Big(s) if s == "123456789012345678901234567890"));
        assert!(matches!(n("18446744073709551615"), Number::UInt(u64::MAX)));
        assert!(matches!(n("-9223372036854775808"), Number::Int(i64::MIN)));
        assert!(matches!(n("1e400"), Number::Big(s) if s == "1e400"));
        assert!(matches!(n("0.1"), Number::Big(s) if s == "0.1"));
        assert!(matches!(n("1.5E0"), Number::Float(f) if f == 1.5));
        assert!(matches!(n("\"42\""), Number::Int(42)));
        let big = num(Number::Big("123456789012345678901234567890.5".into()));
        assert_eq!(ej(&big, &Type::Number), "123456789012345678901234567890.5");
        assert_eq!(ej(&num(Number::Float(0.1)), &Type::Number), "0.1");
        assert_eq!(ej(&num(Number::Float(2f64.powi(64))), &Type::Number), "18446744073709551616");
        let e = encode_json(&num(Number::Float(f64::INFINITY)), &Type::Number).unwrap_err();
        assert_eq!(e.to_string(), "inf cannot be written as JSON");
    }

    #[test]
    fn json_dynamic() {
        let v = Value::Dynamic(Box::new(Type::list(Type::Number)), Box::new(Value::List(vec![Value::int(1)])));
        assert_eq!(ej(&v, &Type::Dynamic), r#"{"value":[1],"type":["list","number"]}"#);
        assert_eq!(dj(r#"{"type":["list","number"],"value":[1]}"#, &Type::Dynamic).unwrap(), v);
        assert_eq!(dj("null", &Type::Dynamic).unwrap(), Value::Null);
        assert_eq!(dj(r#"{"value":1}"#, &Type::Dynamic).unwrap_err(), "missing type in dynamically-typed value");
        assert_eq!(dj(r#"{"type":"bool"}"#, &Type::Dynamic).unwrap_err(), "missing value in dynamically-typed value");
        assert_eq!(
            dj(r#"{"type":"bool","value":true,"x":1}"#, &Type::Dynamic).unwrap_err(),
            "invalid key \"x\" in dynamically-typed value"
        );
        assert_eq!(
            dj("[1]", &Type::Dynamic).unwrap_err(),
            "expected dynamic value as {\"value\": ..., \"type\": ...}, got array"
        );
    }

    #[test]
    fn json_extra_attributes() {
        let ty = Type::object([("o", ab_type())]);
        let s = r#"{"o":{"a":"x","gone":1}}"#;
        assert_eq!(dj(s, &ty).unwrap_err(), "o: unsupported attribute \"gone\"");
        let v = decode_json(s.as_bytes(), &ty, true).unwrap();
        assert_eq!(v, Value::object([("o", Value::object([("a", Value::from("x")), ("b", Value::Null)]))]));
    }

    #[test]
    fn json_errors() {
        assert_eq!(
            encode_json(&Value::object([("a", Value::Unknown)]), &ab_type()).unwrap_err().to_string(),
            "a: unknown values cannot be written as JSON"
        );
        let ty = Type::object([("disk", Type::list(Type::object([("size", Type::Number)])))]);
        assert_eq!(dj(r#"{"disk":[{"size":true}]}"#, &ty).unwrap_err(), "disk[0].size: expected number, got bool");
        assert_eq!(dj("[1,]", &Type::list(Type::Number)).unwrap_err(), "invalid JSON at byte 3: unexpected character");
        assert_eq!(dj("01", &Type::Number).unwrap_err(), "invalid JSON at byte 2: invalid number");
        assert_eq!(dj("1 2", &Type::Number).unwrap_err(), "invalid JSON at byte 2: unexpected data after the value");
        assert_eq!(dj("\"a", &Type::String).unwrap_err(), "invalid JSON at byte 2: unterminated string");
        assert_eq!(
            dj("\"\\ud800\"", &Type::String).unwrap_err(),
            "invalid JSON at byte 7: unpaired surrogate in \\u escape"
        );
        assert_eq!(dj("\"\t\"", &Type::String).unwrap_err(), "invalid JSON at byte 1: control character in string");
        assert_eq!(dj("[1]", &Type::Tuple(vec![])).unwrap_err(), "expected tuple of 0 elements, got 1");
        assert_eq!(dj(r#"{"a":1,"a":2}"#, &Type::map(Type::Number)).unwrap_err(), "duplicate map key \"a\"");
        assert!(decode_json(b"\"\xff\"", &Type::String, false).unwrap_err().message.starts_with("invalid UTF-8"));
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        assert_eq!(dj(&deep, &Type::Dynamic).unwrap_err(), "invalid JSON at byte 136: nested deeper than 136 levels");
        // cty's lenient primitive conversions.
        assert_eq!(dj("\"true\"", &Type::Bool).unwrap(), Value::from(true));
        assert_eq!(dj("12", &Type::String).unwrap(), Value::from("12"));
        assert_eq!(dj("false", &Type::String).unwrap(), Value::from("false"));
    }
}
