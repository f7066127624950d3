//! Lenient decoding: PVE sends numbers as strings (`"100"`, `memory:
//! "4096"`) and booleans as `0/1` or `true/false`, depending on version and
//! on how a value was written (fakepve gap G6 too).

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer};
use serde_json::Value as Json;

/// Any scalar as its text (`4` → `"4"`, `true` → `"1"`).
pub fn text(v: &Json) -> Option<String> {
    match v {
        Json::String(s) => Some(s.clone()),
        Json::Number(n) => Some(n.to_string()),
        Json::Bool(b) => Some(if *b { "1" } else { "0" }.to_string()),
        _ => None,
    }
}

/// A `u32` from a number or a numeric string.
pub fn u32<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    let v = Json::deserialize(d)?;
    text(&v)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| serde::de::Error::custom(format!("expected an integer, got {v}")))
}

/// An optional string from any scalar.
pub fn opt_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let v = Json::deserialize(d)?;
    Ok(text(&v))
}

/// An object of scalars as text (a VM config).
pub fn text_map<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    let m = BTreeMap::<String, Json>::deserialize(d)?;
    Ok(m.into_iter().filter_map(|(k, v)| text(&v).map(|t| (k, t))).collect())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn scalars() {
        assert_eq!(text(&serde_json::json!(4)).as_deref(), Some("4"));
        assert_eq!(text(&serde_json::json!("4")).as_deref(), Some("4"));
        assert_eq!(text(&serde_json::json!(true)).as_deref(), Some("1"));
        assert_eq!(text(&serde_json::json!(null)), None);
    }
}
