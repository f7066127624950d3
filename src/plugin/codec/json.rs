//! JSON: Terraform's state encoding (raw state in UpgradeResourceState).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::*;

// ---------------------------------------------------------------------------
// JSON: a small parser that keeps number text exact, then typed decoding.

/// A parsed JSON document; numbers keep their text.
pub(super) enum Json {
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

pub(super) struct JsonParser<'a> {
    pub(super) text: &'a str,
    pub(super) pos: usize,
    pub(super) depth: usize,
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

    pub(super) fn document(mut self) -> Result<Json, String> {
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

    pub(super) fn value(&mut self) -> Result<Json, String> {
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

pub(super) struct JsonDecoder {
    pub(super) ignore_undefined_attributes: bool,
    pub(super) walk: Walk,
}

impl JsonDecoder {
    pub(super) fn value(&mut self, j: &Json, ty: &Type) -> Result<Value, CodecError> {
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

pub(super) struct JsonEncoder {
    pub(super) out: String,
    pub(super) walk: Walk,
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

    pub(super) fn value(&mut self, v: &Value, ty: &Type) -> Result<(), CodecError> {
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
