//! The crate's one secret wrapper and the pieces every redacting `Debug`
//! uses, so "what a log may show of a secret" is decided in one place.
//!
//! A [`Secret`] never shows in `Debug` or `Display`; [`Elided`] shows a
//! text only by its length (machine configurations, patches, form bodies);
//! [`REDACTED`] is what a hand-written `Debug` prints for a secret field.

use std::fmt;

/// What a redacting `Debug` prints in place of a secret.
pub const REDACTED: &str = "<redacted>";

/// A secret string whose `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }

    /// The secret itself (only for building the request that needs it).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

/// `Debug` of a text that may hold secrets: its length only.
pub struct Elided<'a>(pub &'a str);

impl fmt::Debug for Elided<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{} bytes redacted>", self.0.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_show() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?} {s}"), "<redacted> <redacted>");
        assert_eq!(format!("{:?}", Elided("hunter2")), "<7 bytes redacted>");
        assert_eq!(s.expose(), "hunter2");
    }
}
