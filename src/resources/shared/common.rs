//! Small helpers shared by the resource files: reading attributes out of
//! config values, building values, randomness, the clock and time stamps.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use crate::plugin::{AttributePath, Diagnostic, Diagnostics, Type, Value};

/// The current time; injected so tests can move the clock.
pub type Clock = Arc<dyn Fn() -> SystemTime + Send + Sync>;

/// The system clock.
pub fn system_clock() -> Clock {
    Arc::new(SystemTime::now)
}

/// A CSPRNG seeded from the operating system. Fails (instead of panicking)
/// when the OS has no randomness to give.
pub fn os_rng() -> Result<ChaCha20Rng, String> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| format!("the operating system gave no randomness: {e}"))?;
    Ok(ChaCha20Rng::from_seed(seed))
}

/// A known string attribute.
pub fn str_attr<'v>(v: &'v Value, name: &str) -> Option<&'v str> {
    v.attr(name).as_str()
}

/// The known strings of a list/set value (unknown or null elements skipped).
pub fn strings(v: &Value) -> Vec<String> {
    v.as_elements().unwrap_or_default().iter().filter_map(|e| e.as_str().map(str::to_string)).collect()
}

/// A `map(string)` value as a map (unknown or null values skipped).
pub fn string_map(v: &Value) -> BTreeMap<String, String> {
    v.as_map()
        .map(|m| m.iter().filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string()))).collect())
        .unwrap_or_default()
}

/// A `map(list(string))` value as a map.
pub fn string_list_map(v: &Value) -> BTreeMap<String, Vec<String>> {
    v.as_map().map(|m| m.iter().map(|(k, v)| (k.clone(), strings(v))).collect()).unwrap_or_default()
}

/// A `list(string)` value.
pub fn string_list(items: &[String]) -> Value {
    Value::List(items.iter().map(|s| Value::string(s.as_str())).collect())
}

/// An object of type `ty` with every attribute null.
pub fn null_object(ty: &Type) -> Value {
    match ty {
        Type::Object(attrs) => Value::Object(attrs.keys().map(|k| (k.clone(), Value::Null)).collect()),
        _ => Value::Null,
    }
}

/// Standard base64 of a text (how Talos stores PEM in bundles and talosconfig).
pub fn b64(text: &str) -> String {
    STANDARD.encode(text.as_bytes())
}

/// Decodes standard base64 into UTF-8 text.
pub fn unb64(text: &str) -> Result<String, String> {
    let bytes = STANDARD.decode(text.trim()).map_err(|e| format!("not standard base64: {e}"))?;
    String::from_utf8(bytes).map_err(|_| "the decoded value is not text (PEM expected)".to_string())
}

/// RFC 3339 UTC time stamp, seconds precision (`2026-01-02T03:04:05Z`).
pub fn rfc3339(t: SystemTime) -> String {
    let secs = t.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let secs = i64::try_from(secs).unwrap_or(i64::MAX);
    match time::OffsetDateTime::from_unix_timestamp(secs) {
        Ok(dt) => dt
            .format(&time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z"))
            .unwrap_or_default(),
        Err(_) => String::new(),
    }
}

/// Reads a Go-style duration attribute (`"720h"`), reporting a bad value at
/// its path. Null or unknown gives `None` without a diagnostic.
pub fn duration_attr(v: &Value, name: &str, diags: &mut Diagnostics) -> Option<Duration> {
    let s = v.attr(name).as_str()?;
    match crate::plugin::timeouts::parse_duration(s) {
        Ok(d) => Some(d),
        Err(e) => {
            diags.error_at(
                AttributePath::attr(name),
                "Invalid duration",
                format!("{s:?} is not a duration such as \"720h\" or \"8760h\": {e}"),
            );
            None
        }
    }
}

/// The summary of every diagnostic for work cut short by Terraform's stop
/// request (`StopProvider`, after Ctrl-C).
pub const INTERRUPTED: &str = "Interrupted: Terraform asked the provider to stop";

/// The error for work cut short by Terraform's stop request: what was cut
/// short and what the wait saw (`what`, a sentence), and what to run next.
pub fn interrupted(what: &str, next: &str) -> Diagnostic {
    Diagnostic::error(INTERRUPTED, format!("{what} {next}"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn helpers() {
        assert_eq!(rfc3339(SystemTime::UNIX_EPOCH + Duration::from_secs(86_400 + 61)), "1970-01-02T00:01:01Z");
        assert_eq!(unb64(&b64("pem")).unwrap(), "pem");
        assert!(unb64("***").is_err());
        let l = Value::List(vec!["a".into(), Value::Unknown, "b".into()]);
        assert_eq!(strings(&l), vec!["a", "b"]);
        let m = Value::Map(BTreeMap::from([("k".to_string(), l)]));
        assert_eq!(string_list_map(&m)["k"], vec!["a", "b"]);
        let mut d = Diagnostics::new();
        let v = Value::object([("w", "soon".into())]);
        assert_eq!(duration_attr(&v, "w", &mut d), None);
        assert_eq!(d.0[0].path.as_ref().map(ToString::to_string).as_deref(), Some("w"));
        assert!(os_rng().is_ok());
    }
}
