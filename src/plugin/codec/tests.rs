//! Codec unit tests: exact bytes, every error path.
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
    assert_eq!(dec_err("c9 ff ff ff ff 00", &Type::Number), "unexpected end of input: 4294967295 bytes needed, 0 left");
    assert_eq!(dec_err("db ff ff ff ff", &Type::String), "unexpected end of input: 4294967295 bytes needed, 0 left");
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
    let v =
        dj(r#" {"b": 1, "a": "x\n\u00e9\ud83d\ude00", "c": [true, null], "d": {"k": -2.5}, "e": ["s", 1e2]} "#, &ty)
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
