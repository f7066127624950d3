//! Property tests for the msgpack and JSON value codecs: random types, random
//! values of those types (null and unknown at any level, numbers in every
//! representation, dynamic values), and random bytes.
//!
//! Round trips compare with [`Value::semantically_equal`]; the one documented
//! normalisation is that an integral `Float` that fits `i64` comes back as an
//! `Int` (which `Number` equality already treats as equal), and that a `Float`
//! written as JSON text may come back as the `Big` of that text.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use proptest::strategy::Union;
use proxtalos::plugin::codec::{decode_json, decode_msgpack, encode_json, encode_msgpack};
use proxtalos::plugin::{Number, Type, Value};

/// What a value strategy may produce.
#[derive(Clone, Copy)]
struct Cfg {
    /// Unknown values (msgpack only).
    unknown: bool,
    /// ±infinity (msgpack only).
    infinity: bool,
}

const MSGPACK: Cfg = Cfg { unknown: true, infinity: true };
const JSON: Cfg = Cfg { unknown: false, infinity: false };

/// A random type, nested at most 4 levels; `dynamic` leaves only if asked.
fn arb_type(dynamic: bool) -> BoxedStrategy<Type> {
    let leaf = if dynamic {
        prop_oneof![Just(Type::Bool), Just(Type::Number), Just(Type::String), Just(Type::Dynamic)].boxed()
    } else {
        prop_oneof![Just(Type::Bool), Just(Type::Number), Just(Type::String)].boxed()
    };
    leaf.prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            inner.clone().prop_map(Type::list),
            inner.clone().prop_map(Type::set),
            inner.clone().prop_map(Type::map),
            btree_map("[a-z_]{1,6}", inner.clone(), 0..4).prop_map(Type::Object),
            vec(inner, 0..4).prop_map(Type::Tuple),
        ]
    })
    .boxed()
}

fn arb_float(cfg: Cfg) -> BoxedStrategy<f64> {
    use proptest::num::f64 as f;
    let finite = f::POSITIVE | f::NEGATIVE | f::NORMAL | f::SUBNORMAL | f::ZERO;
    if cfg.infinity { (finite | f::INFINITE).boxed() } else { finite.boxed() }
}

/// Numbers in every representation. Decimal text goes through
/// `Number::parse_decimal`, so `Big` values carry canonical text.
fn arb_number(cfg: Cfg) -> BoxedStrategy<Number> {
    prop_oneof![
        any::<i64>().prop_map(Number::Int),
        ((i64::MAX as u64 + 1)..=u64::MAX).prop_map(Number::UInt),
        arb_float(cfg).prop_map(Number::Float),
        (-3.0e15f64..3.0e15).prop_map(|f| Number::Float(f.trunc())),
        (any::<bool>(), "[0-9]{1,40}", -400i64..400).prop_map(|(neg, digits, exp)| {
            let text = format!("{}{digits}e{exp}", if neg { "-" } else { "" });
            Number::parse_decimal(&text).expect("generated decimal text parses")
        }),
    ]
    .boxed()
}

/// A random value of type `ty`: null, unknown (if `cfg` allows) or known,
/// at every level. `dyn_depth` bounds dynamic values nested in dynamic values.
fn arb_value(ty: &Type, cfg: Cfg, dyn_depth: u32) -> BoxedStrategy<Value> {
    let known: BoxedStrategy<Value> = match ty {
        Type::Bool => any::<bool>().prop_map(Value::Bool).boxed(),
        Type::Number => arb_number(cfg).prop_map(Value::Number).boxed(),
        Type::String => any::<String>().prop_map(Value::String).boxed(),
        Type::List(e) => vec(arb_value(e, cfg, dyn_depth), 0..4).prop_map(Value::List).boxed(),
        Type::Set(e) => vec(arb_value(e, cfg, dyn_depth), 0..4).prop_map(Value::Set).boxed(),
        Type::Map(e) => btree_map(".{0,4}", arb_value(e, cfg, dyn_depth), 0..4).prop_map(Value::Map).boxed(),
        Type::Object(attrs) => attrs
            .iter()
            .map(|(k, t)| {
                let k = k.clone();
                arb_value(t, cfg, dyn_depth).prop_map(move |v| (k.clone(), v))
            })
            .collect::<Vec<_>>()
            .prop_map(|kv| Value::Object(kv.into_iter().collect()))
            .boxed(),
        Type::Tuple(ts) => {
            ts.iter().map(|t| arb_value(t, cfg, dyn_depth)).collect::<Vec<_>>().prop_map(Value::Tuple).boxed()
        }
        Type::Dynamic => arb_type(dyn_depth > 0)
            .prop_flat_map(move |t| {
                arb_value(&t, cfg, dyn_depth.saturating_sub(1))
                    .prop_map(move |v| Value::Dynamic(Box::new(t.clone()), Box::new(v)))
            })
            .boxed(),
    };
    let mut choices = vec![(1, Just(Value::Null).boxed()), (6, known)];
    if cfg.unknown {
        choices.push((1, Just(Value::Unknown).boxed()));
    }
    Union::new_weighted(choices).boxed()
}

fn typed_value(cfg: Cfg) -> impl Strategy<Value = (Type, Value)> {
    arb_type(true).prop_flat_map(move |t| (Just(t.clone()), arb_value(&t, cfg, 1)))
}

/// Fixed types that random bytes are decoded against, plus random ones.
fn fixed_types() -> Vec<Type> {
    vec![
        Type::Dynamic,
        Type::Number,
        Type::String,
        Type::object([
            ("name", Type::String),
            ("disk", Type::list(Type::object([("size", Type::Number), ("tags", Type::set(Type::String))]))),
            ("meta", Type::map(Type::Dynamic)),
            ("pair", Type::Tuple(vec![Type::Bool, Type::Number])),
        ]),
    ]
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(512)
}

proptest! {
    // 512 cases by default; PROPTEST_CASES=N for a longer run.
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn msgpack_round_trip((ty, v) in typed_value(MSGPACK)) {
        let bytes = encode_msgpack(&v, &ty).unwrap();
        let back = decode_msgpack(&bytes, &ty).unwrap();
        prop_assert!(back.semantically_equal(&v), "{v:?}\n -> {bytes:02x?}\n -> {back:?}");
        // Encoding is canonical: the decoded value encodes to the same bytes.
        prop_assert_eq!(encode_msgpack(&back, &ty).unwrap(), bytes);
    }

    #[test]
    fn json_round_trip((ty, v) in typed_value(JSON)) {
        let bytes = encode_json(&v, &ty).unwrap();
        let text = String::from_utf8(bytes.clone()).unwrap();
        let back = decode_json(&bytes, &ty, false).unwrap();
        prop_assert!(back.semantically_equal(&v), "{v:?}\n -> {text}\n -> {back:?}");
        prop_assert_eq!(&String::from_utf8(encode_json(&back, &ty).unwrap()).unwrap(), &text);
        // Our JSON is JSON.
        prop_assert!(serde_json::from_slice::<serde::de::IgnoredAny>(&bytes).is_ok(), "{}", text);
    }

    #[test]
    fn json_and_msgpack_agree((ty, v) in typed_value(JSON)) {
        let via_json = decode_json(&encode_json(&v, &ty).unwrap(), &ty, false).unwrap();
        let via_msgpack = decode_msgpack(&encode_msgpack(&v, &ty).unwrap(), &ty).unwrap();
        prop_assert!(via_json.semantically_equal(&via_msgpack), "{via_json:?}\n != {via_msgpack:?}");
    }

    #[test]
    fn random_bytes_never_panic(bytes in vec(any::<u8>(), 0..256), ty in arb_type(true)) {
        for t in fixed_types().iter().chain([&ty]) {
            if let Ok(v) = decode_msgpack(&bytes, t) {
                // Whatever decodes, encodes again.
                encode_msgpack(&v, t).unwrap();
            }
            if let Ok(v) = decode_json(&bytes, t, true) {
                encode_json(&v, t).unwrap();
            }
        }
    }

    #[test]
    fn damaged_encodings_never_panic(
        (ty, v) in typed_value(MSGPACK),
        edits in vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut bytes = encode_msgpack(&v, &ty).unwrap();
        // msgpack is self-delimiting: no strict prefix of a value decodes.
        let short = &bytes[..cut.index(bytes.len())];
        prop_assert!(decode_msgpack(short, &ty).is_err());
        for (at, b) in edits {
            let i = at.index(bytes.len());
            bytes[i] = b;
        }
        if let Ok(v) = decode_msgpack(&bytes, &ty) {
            encode_msgpack(&v, &ty).unwrap();
        }
    }

    #[test]
    fn damaged_json_never_panics(
        (ty, v) in typed_value(JSON),
        edits in vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
    ) {
        let mut bytes = encode_json(&v, &ty).unwrap();
        for (at, b) in edits {
            let i = at.index(bytes.len());
            bytes[i] = b;
        }
        if let Ok(v) = decode_json(&bytes, &ty, false) {
            encode_json(&v, &ty).unwrap();
        }
    }

    #[test]
    fn decimal_text_round_trips(neg in any::<bool>(), digits in "[0-9]{1,60}", frac in "[0-9]{0,30}", exp in -500i64..500) {
        let text = format!("{}{digits}.{frac}e{exp}", if neg { "-" } else { "" });
        let n = Number::parse_decimal(&text).unwrap();
        // The canonical text parses to the same number.
        let again = Number::parse_decimal(&n.to_decimal_string()).unwrap();
        prop_assert_eq!(&again, &n);
        prop_assert_eq!(again.to_decimal_string(), n.to_decimal_string());
    }
}
