//! Wire encodings of [`Value`]: msgpack `DynamicValue`s and JSON raw state.
//!
//! Facts (shared/specs/tfplugin6.md §2, §6.1): unknown is any msgpack
//! extension (type 0, or 12 with refinements); null is nil; numbers arrive as
//! int, float64 or a decimal string; a `dynamic` value is a 2-array of
//! `[type JSON as bytes, value]`; objects are maps keyed by attribute name.

use super::diag::AttributePath;
use super::value::{Type, Value};

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
    let _ = (bytes, ty);
    Err(CodecError { path: AttributePath::root(), message: "not implemented".into() })
}

/// Encodes `v` as msgpack for type `ty`.
pub fn encode_msgpack(v: &Value, ty: &Type) -> Result<Vec<u8>, CodecError> {
    let _ = (v, ty);
    Err(CodecError { path: AttributePath::root(), message: "not implemented".into() })
}

/// Decodes Terraform's JSON state encoding of a value of type `ty`.
/// With `ignore_undefined_attributes`, object attributes the type does not
/// have are dropped (raw state after an attribute was removed); otherwise
/// they are an error. Attributes missing from the JSON decode as null.
pub fn decode_json(bytes: &[u8], ty: &Type, ignore_undefined_attributes: bool) -> Result<Value, CodecError> {
    let _ = (bytes, ty, ignore_undefined_attributes);
    Err(CodecError { path: AttributePath::root(), message: "not implemented".into() })
}
