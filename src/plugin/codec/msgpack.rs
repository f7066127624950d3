//! msgpack: cty's wire rules for `DynamicValue.msgpack`.

use std::collections::BTreeMap;

use rmp::Marker;

use super::*;

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

pub(super) struct MsgpackDecoder<'a> {
    pub(super) input: &'a [u8],
    pub(super) walk: Walk,
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

    pub(super) fn value(&mut self, ty: &Type) -> Result<Value, CodecError> {
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

pub(super) struct MsgpackEncoder {
    pub(super) out: Vec<u8>,
    pub(super) walk: Walk,
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

    pub(super) fn value(&mut self, v: &Value, ty: &Type) -> Result<(), CodecError> {
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
