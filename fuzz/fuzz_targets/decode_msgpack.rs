//! Decodes arbitrary bytes as msgpack against a few fixed types. Decoding
//! must never panic, and whatever decodes must encode again and decode to
//! the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use proxtalos::plugin::Type;
use proxtalos::plugin::codec::{decode_msgpack, encode_msgpack};

fn types() -> Vec<Type> {
    vec![
        Type::Dynamic,
        Type::Number,
        Type::String,
        Type::list(Type::Dynamic),
        Type::object([
            ("name", Type::String),
            ("disk", Type::list(Type::object([("size", Type::Number), ("tags", Type::set(Type::String))]))),
            ("meta", Type::map(Type::Dynamic)),
            ("pair", Type::Tuple(vec![Type::Bool, Type::Number])),
        ]),
    ]
}

fuzz_target!(|data: &[u8]| {
    for ty in types() {
        if let Ok(v) = decode_msgpack(data, &ty) {
            let bytes = encode_msgpack(&v, &ty).expect("a decoded value encodes");
            let again = decode_msgpack(&bytes, &ty).expect("an encoded value decodes");
            assert!(again.semantically_equal(&v), "{v:?} -> {bytes:02x?} -> {again:?}");
        }
    }
});
