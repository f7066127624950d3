//! Terraform's value model (cty), as the provider sees it.
//!
//! A [`Value`] is always read and written together with its [`Type`]: the wire
//! formats (msgpack in [`super::codec`], JSON for raw state) carry no type
//! information except for `dynamic` values, whose concrete type travels with
//! them and is kept in [`Value::Dynamic`].

use std::collections::BTreeMap;
use std::fmt;

/// A cty type.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Type {
    /// `bool`
    Bool,
    /// `number`: arbitrary precision decimal.
    Number,
    /// `string`
    String,
    /// `dynamic` (DynamicPseudoType): the concrete type travels with the value.
    Dynamic,
    /// `list(T)`
    List(Box<Type>),
    /// `set(T)`
    Set(Box<Type>),
    /// `map(T)`
    Map(Box<Type>),
    /// `object({...})`
    Object(BTreeMap<String, Type>),
    /// `tuple([...])`
    Tuple(Vec<Type>),
}

impl Type {
    /// `list(elem)`
    pub fn list(elem: Type) -> Type {
        Type::List(Box::new(elem))
    }
    /// `set(elem)`
    pub fn set(elem: Type) -> Type {
        Type::Set(Box::new(elem))
    }
    /// `map(elem)`
    pub fn map(elem: Type) -> Type {
        Type::Map(Box::new(elem))
    }
    /// `object({...})` from `(name, type)` pairs.
    pub fn object<I, S>(attrs: I) -> Type
    where
        I: IntoIterator<Item = (S, Type)>,
        S: Into<String>,
    {
        Type::Object(attrs.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    /// The JSON type constraint Terraform uses in schemas and dynamic values:
    /// `"string"`, `["list","string"]`, `["object",{"a":"number"}]`, ...
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match self {
            Type::Bool => J::from("bool"),
            Type::Number => J::from("number"),
            Type::String => J::from("string"),
            Type::Dynamic => J::from("dynamic"),
            Type::List(e) => J::Array(vec![J::from("list"), e.to_json()]),
            Type::Set(e) => J::Array(vec![J::from("set"), e.to_json()]),
            Type::Map(e) => J::Array(vec![J::from("map"), e.to_json()]),
            Type::Object(attrs) => J::Array(vec![
                J::from("object"),
                J::Object(attrs.iter().map(|(k, t)| (k.clone(), t.to_json())).collect()),
            ]),
            Type::Tuple(elems) => J::Array(vec![J::from("tuple"), J::Array(elems.iter().map(Type::to_json).collect())]),
        }
    }

    /// The JSON type constraint as bytes, as `Schema.Attribute.type` wants it.
    pub fn to_json_bytes(&self) -> Vec<u8> {
        self.to_json().to_string().into_bytes()
    }

    /// Parses a JSON type constraint. Optional-attribute markers (the third
    /// element of an object type) are accepted and ignored.
    pub fn from_json(v: &serde_json::Value) -> Result<Type, String> {
        use serde_json::Value as J;
        match v {
            J::String(s) => match s.as_str() {
                "bool" => Ok(Type::Bool),
                "number" => Ok(Type::Number),
                "string" => Ok(Type::String),
                "dynamic" => Ok(Type::Dynamic),
                other => Err(format!("unknown primitive type {other:?}")),
            },
            J::Array(items) if !items.is_empty() => {
                let kind = items[0].as_str().ok_or("type kind must be a string")?;
                let arg = items.get(1).ok_or_else(|| format!("{kind} type needs an argument"))?;
                match kind {
                    "list" => Ok(Type::list(Type::from_json(arg)?)),
                    "set" => Ok(Type::set(Type::from_json(arg)?)),
                    "map" => Ok(Type::map(Type::from_json(arg)?)),
                    "object" => {
                        let attrs = arg.as_object().ok_or("object type needs a JSON object")?;
                        let mut out = BTreeMap::new();
                        for (k, t) in attrs {
                            out.insert(k.clone(), Type::from_json(t)?);
                        }
                        Ok(Type::Object(out))
                    }
                    "tuple" => {
                        let elems = arg.as_array().ok_or("tuple type needs a JSON array")?;
                        Ok(Type::Tuple(elems.iter().map(Type::from_json).collect::<Result<_, _>>()?))
                    }
                    other => Err(format!("unknown type kind {other:?}")),
                }
            }
            other => Err(format!("invalid type constraint {other}")),
        }
    }
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Type::Bool => f.write_str("bool"),
            Type::Number => f.write_str("number"),
            Type::String => f.write_str("string"),
            Type::Dynamic => f.write_str("dynamic"),
            Type::List(e) => write!(f, "list({e})"),
            Type::Set(e) => write!(f, "set({e})"),
            Type::Map(e) => write!(f, "map({e})"),
            Type::Object(attrs) => {
                f.write_str("object({")?;
                for (i, (k, t)) in attrs.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{k}={t}")?;
                }
                f.write_str("})")
            }
            Type::Tuple(elems) => {
                f.write_str("tuple([")?;
                for (i, t) in elems.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{t}")?;
                }
                f.write_str("])")
            }
        }
    }
}

/// A cty number without loss: integers stay integers, floats stay `f64`, and
/// anything else (huge integers, decimals that are not exact `f64`s) keeps
/// its decimal text.
///
/// Equality is numeric across representations where that is exact:
/// `Int(1) == Float(1.0)`; `Big` values compare by their canonical text.
#[derive(Clone, Debug)]
pub enum Number {
    /// An integer that fits in `i64`.
    Int(i64),
    /// An unsigned integer above `i64::MAX`.
    UInt(u64),
    /// A binary float: finite or ±infinity (cty has infinities), never NaN.
    Float(f64),
    /// A decimal number kept as canonical text, for values neither integer
    /// type nor `f64` holds exactly. Canonical (what [`Number::parse_decimal`]
    /// produces): no leading `+` or redundant zeros, plain notation unless
    /// that needs more than 330 padding zeros (`1e400`, `-1.25e-399`).
    Big(String),
}

impl Number {
    /// The value as `i64`, if it is an integer in range.
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            Number::Int(i) => Some(i),
            Number::UInt(u) => i64::try_from(u).ok(),
            Number::Float(f) if f.fract() == 0.0 && f >= i64::MIN as f64 && f < i64::MAX as f64 => Some(f as i64),
            _ => None,
        }
    }

    /// The value as `f64` (possibly rounded for `Big`).
    pub fn as_f64(&self) -> f64 {
        match self {
            Number::Int(i) => *i as f64,
            Number::UInt(u) => *u as f64,
            Number::Float(f) => *f,
            Number::Big(s) => s.parse().unwrap_or(f64::NAN),
        }
    }

    /// Parses decimal text (`-12`, `1.5`, `1e400`, `+.5`, `0.1`) without loss:
    /// integers that fit become [`Number::Int`] or [`Number::UInt`], values an
    /// `f64` holds exactly become [`Number::Float`], anything else
    /// [`Number::Big`] with canonical text. `None` if the text is not a
    /// decimal number or its magnitude is beyond 10^±1000000000.
    pub fn parse_decimal(text: &str) -> Option<Number> {
        Decimal::parse(text).map(|d| d.into_number())
    }

    /// Decimal text of the number, as Terraform would print it.
    pub fn to_decimal_string(&self) -> String {
        match self {
            Number::Int(i) => i.to_string(),
            Number::UInt(u) => u.to_string(),
            Number::Float(f) => {
                if f.fract() == 0.0 && f.abs() < 1e21 {
                    format!("{f:.0}")
                } else {
                    format!("{f}")
                }
            }
            Number::Big(s) => s.clone(),
        }
    }
}

/// A decimal number as `(-1)^neg × digits × 10^exp`, normalised: `digits`
/// has no leading or trailing zeros, and zero is empty digits with `neg`
/// false.
#[derive(Debug, PartialEq, Eq)]
struct Decimal {
    neg: bool,
    digits: String,
    exp: i64,
}

/// Exponents beyond this are refused: no real value needs them, and they
/// keep the arithmetic below far from overflow.
const MAX_DECIMAL_EXP: i64 = 1_000_000_000;

/// Canonical text writes padding zeros up to this many, then switches to
/// exponent notation; every finite `f64` fits, so `Big` text lines up with
/// [`Number::to_decimal_string`] of a `Float`.
const MAX_PLAIN_ZEROS: i64 = 330;

/// An `f64` has at most 767 significant decimal digits.
const F64_MAX_SIG_DIGITS: usize = 767;

impl Decimal {
    /// Parses `[+-]digits[.digits][(e|E)[+-]digits]` (digits may be empty on
    /// one side of the point, not both).
    fn parse(text: &str) -> Option<Decimal> {
        let b = text.as_bytes();
        let mut i = 0;
        let mut neg = false;
        if let Some(&c) = b.first()
            && (c == b'+' || c == b'-')
        {
            neg = c == b'-';
            i = 1;
        }
        let mut mantissa = String::new();
        let mut frac_len: i64 = 0;
        let mut seen_digit = false;
        while i < b.len() && b[i].is_ascii_digit() {
            mantissa.push(b[i] as char);
            seen_digit = true;
            i += 1;
        }
        if i < b.len() && b[i] == b'.' {
            i += 1;
            while i < b.len() && b[i].is_ascii_digit() {
                mantissa.push(b[i] as char);
                frac_len += 1;
                seen_digit = true;
                i += 1;
            }
        }
        if !seen_digit {
            return None;
        }
        let mut exp: i64 = 0;
        if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
            i += 1;
            let mut exp_neg = false;
            if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
                exp_neg = b[i] == b'-';
                i += 1;
            }
            let start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                exp = exp.saturating_mul(10).saturating_add(i64::from(b[i] - b'0'));
                i += 1;
            }
            if i == start || exp > MAX_DECIMAL_EXP {
                return None;
            }
            if exp_neg {
                exp = -exp;
            }
        }
        if i != b.len() {
            return None;
        }
        let trimmed = mantissa.trim_start_matches('0');
        let digits = trimmed.trim_end_matches('0');
        let trailing = i64::try_from(trimmed.len() - digits.len()).ok()?;
        let exp = exp.checked_sub(frac_len)?.checked_add(trailing)?;
        if digits.is_empty() {
            return Some(Decimal { neg: false, digits: String::new(), exp: 0 });
        }
        // Bound the exponent of the canonical (scientific) form, so that the
        // canonical text of every number parses again.
        let sci_exp = exp.checked_add(i64::try_from(digits.len()).ok()?)?.checked_sub(1)?;
        if sci_exp.abs() > MAX_DECIMAL_EXP {
            return None;
        }
        Some(Decimal { neg, digits: digits.to_string(), exp })
    }

    /// The narrowest exact [`Number`] for this decimal.
    fn into_number(self) -> Number {
        if self.digits.is_empty() {
            return Number::Int(0);
        }
        let len = i64::try_from(self.digits.len()).unwrap_or(i64::MAX);
        if self.exp >= 0 && len.saturating_add(self.exp) <= 20 {
            let mut mag: u128 = 0;
            for c in self.digits.bytes() {
                mag = mag * 10 + u128::from(c - b'0');
            }
            for _ in 0..self.exp {
                mag *= 10;
            }
            if self.neg {
                if let Ok(i) = i64::try_from(-(mag as i128)) {
                    return Number::Int(i);
                }
            } else if let Ok(i) = i64::try_from(mag) {
                return Number::Int(i);
            } else if let Ok(u) = u64::try_from(mag) {
                return Number::UInt(u);
            }
        }
        let text = self.canonical();
        if self.digits.len() <= F64_MAX_SIG_DIGITS
            && let Ok(f) = text.parse::<f64>()
            && f.is_finite()
            && f != 0.0
            && Decimal::parse(&format!("{:.*e}", F64_MAX_SIG_DIGITS + 1, f)).as_ref() == Some(&self)
        {
            return Number::Float(f);
        }
        Number::Big(text)
    }

    /// Canonical text: plain notation unless that needs more than
    /// [`MAX_PLAIN_ZEROS`] padding zeros, else `d.ddde±N` (no `+`).
    fn canonical(&self) -> String {
        if self.digits.is_empty() {
            return "0".to_string();
        }
        let mut out = String::new();
        if self.neg {
            out.push('-');
        }
        let len = i64::try_from(self.digits.len()).unwrap_or(i64::MAX);
        // Position of the decimal point counted from the first digit.
        let point = len.saturating_add(self.exp);
        if self.exp >= 0 && self.exp <= MAX_PLAIN_ZEROS {
            out.push_str(&self.digits);
            out.extend(std::iter::repeat_n('0', self.exp as usize));
        } else if self.exp < 0 && point > 0 {
            let (int, frac) = self.digits.split_at(point as usize);
            out.push_str(int);
            out.push('.');
            out.push_str(frac);
        } else if self.exp < 0 && -point <= MAX_PLAIN_ZEROS {
            out.push_str("0.");
            out.extend(std::iter::repeat_n('0', (-point) as usize));
            out.push_str(&self.digits);
        } else {
            let (first, rest) = self.digits.split_at(1);
            out.push_str(first);
            if !rest.is_empty() {
                out.push('.');
                out.push_str(rest);
            }
            out.push('e');
            out.push_str(&(point - 1).to_string());
        }
        out
    }
}

impl PartialEq for Number {
    fn eq(&self, other: &Number) -> bool {
        match (self, other) {
            (Number::Int(a), Number::Int(b)) => a == b,
            (Number::UInt(a), Number::UInt(b)) => a == b,
            (Number::Float(a), Number::Float(b)) => a == b,
            (Number::Big(a), Number::Big(b)) => a == b,
            (Number::Int(i), Number::Float(f)) | (Number::Float(f), Number::Int(i)) => {
                Number::Float(*f).as_i64() == Some(*i)
            }
            (Number::UInt(u), Number::Float(f)) | (Number::Float(f), Number::UInt(u)) => {
                f.fract() == 0.0 && *f >= 0.0 && (*f as u64) == *u && (*u as f64) == *f
            }
            _ => self.to_decimal_string() == other.to_decimal_string(),
        }
    }
}

impl From<i64> for Number {
    fn from(i: i64) -> Number {
        Number::Int(i)
    }
}

impl From<f64> for Number {
    fn from(f: f64) -> Number {
        Number::Float(f)
    }
}

impl fmt::Display for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_decimal_string())
    }
}

/// A Terraform value. Collections hold values of their element type; an
/// object holds exactly the attributes of its object type.
#[derive(Clone, Debug, PartialEq, Default)]
pub enum Value {
    /// null of any type.
    #[default]
    Null,
    /// Not known until apply (any msgpack extension on the wire, including
    /// refined unknowns; refinements are not kept).
    Unknown,
    /// `bool`
    Bool(bool),
    /// `number`
    Number(Number),
    /// `string`
    String(String),
    /// `list(T)` elements in order.
    List(Vec<Value>),
    /// `set(T)` elements (order is not meaningful; equality ignores it).
    Set(Vec<Value>),
    /// `map(T)`
    Map(BTreeMap<String, Value>),
    /// `object({...})`
    Object(BTreeMap<String, Value>),
    /// `tuple([...])`
    Tuple(Vec<Value>),
    /// A value of a `dynamic` attribute together with its concrete type. Null
    /// and unknown dynamic values are plain [`Value::Null`] / [`Value::Unknown`];
    /// a *typed* null or unknown (cty's `[type, nil]` on the wire) is kept as
    /// `Dynamic(type, Null)` / `Dynamic(type, Unknown)`.
    Dynamic(Box<Type>, Box<Value>),
}

/// A [`Value`]'s structure for logs: attribute names, element counts and
/// leaf types, never a leaf's content (sensitive and write-only values
/// travel in the same values as the rest). See [`Value::shape`].
pub struct Shape<'a>(&'a Value);

impl fmt::Debug for Shape<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Value::Null => f.write_str("null"),
            Value::Unknown => f.write_str("unknown"),
            Value::Bool(_) => f.write_str("bool"),
            Value::Number(_) => f.write_str("number"),
            Value::String(s) => write!(f, "string({} bytes)", s.len()),
            Value::List(v) | Value::Set(v) | Value::Tuple(v) => f.debug_list().entries(v.iter().map(Shape)).finish(),
            Value::Map(m) | Value::Object(m) => f.debug_map().entries(m.iter().map(|(k, v)| (k, Shape(v)))).finish(),
            Value::Dynamic(_, v) => write!(f, "dynamic({:?})", Shape(v)),
        }
    }
}

impl Value {
    /// This value's structure without its contents, for `Debug` output
    /// that may reach a log.
    pub fn shape(&self) -> Shape<'_> {
        Shape(self)
    }

    /// A string value.
    pub fn string(s: impl Into<String>) -> Value {
        Value::String(s.into())
    }

    /// A number value from an integer.
    pub fn int(i: i64) -> Value {
        Value::Number(Number::Int(i))
    }

    /// An object from `(name, value)` pairs.
    pub fn object<I, S>(attrs: I) -> Value
    where
        I: IntoIterator<Item = (S, Value)>,
        S: Into<String>,
    {
        Value::Object(attrs.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    /// Whether the value is null.
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// Whether the value itself is unknown (not looking inside).
    pub fn is_unknown(&self) -> bool {
        matches!(self, Value::Unknown)
    }

    /// Whether the value and everything inside it is known.
    pub fn is_fully_known(&self) -> bool {
        match self {
            Value::Unknown => false,
            Value::List(v) | Value::Set(v) | Value::Tuple(v) => v.iter().all(Value::is_fully_known),
            Value::Map(m) | Value::Object(m) => m.values().all(Value::is_fully_known),
            Value::Dynamic(_, v) => v.is_fully_known(),
            _ => true,
        }
    }

    /// The attribute `name` of an object (Null for a null object or a missing
    /// attribute, Unknown for an unknown object).
    pub fn attr(&self, name: &str) -> &Value {
        static NULL: Value = Value::Null;
        static UNKNOWN: Value = Value::Unknown;
        match self {
            Value::Object(m) => m.get(name).unwrap_or(&NULL),
            Value::Unknown => &UNKNOWN,
            _ => &NULL,
        }
    }

    /// Mutable access to an object's attribute map, if this is an object.
    pub fn attrs_mut(&mut self) -> Option<&mut BTreeMap<String, Value>> {
        match self {
            Value::Object(m) => Some(m),
            _ => None,
        }
    }

    /// Sets an object attribute; does nothing if this is not an object.
    pub fn set_attr(&mut self, name: &str, v: Value) {
        if let Value::Object(m) = self {
            m.insert(name.to_string(), v);
        }
    }

    /// The string, if this is a known string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            Value::Dynamic(_, v) => v.as_str(),
            _ => None,
        }
    }

    /// The boolean, if this is a known bool.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            Value::Dynamic(_, v) => v.as_bool(),
            _ => None,
        }
    }

    /// The number, if this is a known number.
    pub fn as_number(&self) -> Option<&Number> {
        match self {
            Value::Number(n) => Some(n),
            Value::Dynamic(_, v) => v.as_number(),
            _ => None,
        }
    }

    /// The number as `i64`, if this is a known integer in range.
    pub fn as_i64(&self) -> Option<i64> {
        self.as_number().and_then(Number::as_i64)
    }

    /// The elements, if this is a known list, set or tuple.
    pub fn as_elements(&self) -> Option<&[Value]> {
        match self {
            Value::List(v) | Value::Set(v) | Value::Tuple(v) => Some(v),
            Value::Dynamic(_, v) => v.as_elements(),
            _ => None,
        }
    }

    /// The entries, if this is a known map or object.
    pub fn as_map(&self) -> Option<&BTreeMap<String, Value>> {
        match self {
            Value::Map(m) | Value::Object(m) => Some(m),
            Value::Dynamic(_, v) => v.as_map(),
            _ => None,
        }
    }

    /// Semantic equality: like `==`, but sets compare without regard to order.
    pub fn semantically_equal(&self, other: &Value) -> bool {
        match (self, other) {
            (Value::Set(a), Value::Set(b)) => {
                a.len() == b.len()
                    && a.iter().all(|x| b.iter().any(|y| x.semantically_equal(y)))
                    && b.iter().all(|y| a.iter().any(|x| x.semantically_equal(y)))
            }
            (Value::List(a), Value::List(b)) | (Value::Tuple(a), Value::Tuple(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.semantically_equal(y))
            }
            (Value::Map(a), Value::Map(b)) | (Value::Object(a), Value::Object(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|((ka, va), (kb, vb))| ka == kb && va.semantically_equal(vb))
            }
            (Value::Dynamic(ta, va), Value::Dynamic(tb, vb)) => ta == tb && va.semantically_equal(vb),
            _ => self == other,
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::String(s.to_string())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::String(s)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Bool(b)
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Value {
        Value::Number(Number::Int(i))
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(o: Option<T>) -> Value {
        o.map_or(Value::Null, Into::into)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn type_json_round_trip() {
        let t = Type::object([
            ("a", Type::String),
            ("b", Type::list(Type::Number)),
            ("c", Type::Tuple(vec![Type::Bool, Type::Dynamic])),
            ("d", Type::map(Type::set(Type::String))),
        ]);
        let j = t.to_json();
        assert_eq!(Type::from_json(&j).unwrap(), t);
        assert_eq!(Type::list(Type::String).to_json().to_string(), r#"["list","string"]"#);
    }

    #[test]
    fn numbers_compare_across_representations() {
        assert_eq!(Number::Int(3), Number::Float(3.0));
        assert_ne!(Number::Int(3), Number::Float(3.5));
        assert_eq!(Number::UInt(u64::MAX), Number::UInt(u64::MAX));
        assert_eq!(Number::Float(1.5).to_decimal_string(), "1.5");
    }

    #[test]
    fn parse_decimal_is_exact_and_canonical() {
        let p = |s: &str| Number::parse_decimal(s).unwrap();
        assert!(matches!(p("0"), Number::Int(0)));
        assert!(matches!(p("-0.000"), Number::Int(0)));
        assert!(matches!(p("+12"), Number::Int(12)));
        assert!(matches!(p("1.50e1"), Number::Int(15)));
        assert!(matches!(p("9223372036854775807"), Number::Int(i64::MAX)));
        assert!(matches!(p("-9223372036854775808"), Number::Int(i64::MIN)));
        assert!(matches!(p("9223372036854775808"), Number::UInt(u)if u == 1 << 63));
        assert!(matches!(p("18446744073709551615"), Number::UInt(u64::MAX)));
        assert!(matches!(p("-9223372036854775809"), Number::Big(s) if s == "-9223372036854775809"));
        assert!(matches!(p(".5"), Number::Float(f) if f == 0.5));
        assert!(matches!(p("5."), Number::Int(5)));
        assert!(matches!(p("0.1000000000000000055511151231257827021181583404541015625"), Number::Float(f) if f == 0.1));
        assert!(matches!(p("0.1"), Number::Big(s) if s == "0.1"));
        assert!(matches!(p("-9.765625e-4"), Number::Float(f) if f == -0.0009765625));
        assert!(matches!(p("1e400"), Number::Big(s) if s == "1e400"));
        assert!(matches!(p("-12.5e-400"), Number::Big(s) if s == "-1.25e-399"));
        assert!(matches!(p("1e-400"), Number::Big(s) if s == "1e-400"));
        assert!(matches!(p("100.2500"), Number::Float(f) if f == 100.25));
        assert!(matches!(p("100.3"), Number::Big(s) if s == "100.3"));
        assert!(matches!(p("1e308"), Number::Big(s) if s.len() == 309));
        // The bound applies to the normalised exponent, so canonical text
        // always parses again (found by fuzzing).
        assert!(Number::parse_decimal("2222222222222222000000002222222000000000000e0100000000").is_some());
        assert!(matches!(p("1.5e1000000000"), Number::Big(s) if s == "1.5e1000000000"));
        assert!(Number::parse_decimal("15e1000000000").is_none());
        assert!(matches!(p("15e999999999"), Number::Big(s) if s == "1.5e1000000000"));
        assert!(matches!(p("-1e-1000000000"), Number::Big(s) if s == "-1e-1000000000"));
        for bad in ["", "-", ".", "e5", "1e", "1e+", "1x", " 1", "1e1000000001", "Inf", "NaN", "0x10"] {
            assert!(Number::parse_decimal(bad).is_none(), "{bad:?}");
        }
        // Big text lines up with the decimal text of a Float of the same digits.
        assert_eq!(p("0.00000015").to_decimal_string(), Number::Float(1.5e-7).to_decimal_string());
    }

    #[test]
    fn sets_compare_without_order() {
        let a = Value::Set(vec![Value::from("x"), Value::from("y")]);
        let b = Value::Set(vec![Value::from("y"), Value::from("x")]);
        assert!(a.semantically_equal(&b));
        assert_ne!(a, b);
    }
}
