//! Diagnostics and attribute paths: how every problem reaches the user.
//!
//! Providers report problems the user can act on as diagnostics in the RPC
//! response (summary, detail, and the attribute path Terraform underlines),
//! never as gRPC errors. The cause chain of an internal error goes to
//! `tracing`; the user sees the summary and a detail that names the cause.

use std::fmt;

/// One step of an [`AttributePath`].
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PathStep {
    /// An object attribute or nested block by name.
    Attr(String),
    /// A map element by key.
    Key(String),
    /// A list or tuple element by index.
    Index(i64),
}

/// Where in a configuration or state a value lives, e.g. `disk[0].size`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AttributePath(pub Vec<PathStep>);

impl AttributePath {
    /// The empty path (the whole object).
    pub fn root() -> AttributePath {
        AttributePath(Vec::new())
    }

    /// A path to the top-level attribute `name`.
    pub fn attr(name: impl Into<String>) -> AttributePath {
        AttributePath(vec![PathStep::Attr(name.into())])
    }

    /// This path extended by an attribute step.
    pub fn and_attr(&self, name: impl Into<String>) -> AttributePath {
        let mut p = self.clone();
        p.0.push(PathStep::Attr(name.into()));
        p
    }

    /// This path extended by a list index step.
    pub fn and_index(&self, i: i64) -> AttributePath {
        let mut p = self.clone();
        p.0.push(PathStep::Index(i));
        p
    }

    /// This path extended by a map key step.
    pub fn and_key(&self, k: impl Into<String>) -> AttributePath {
        let mut p = self.clone();
        p.0.push(PathStep::Key(k.into()));
        p
    }

    /// Whether the path has no steps.
    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for AttributePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, step) in self.0.iter().enumerate() {
            match step {
                PathStep::Attr(a) if i == 0 => f.write_str(a)?,
                PathStep::Attr(a) => write!(f, ".{a}")?,
                PathStep::Key(k) => write!(f, "[{k:?}]")?,
                PathStep::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// Error or warning.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    /// The operation failed.
    Error,
    /// The operation went on; the user should know.
    Warning,
}

/// A problem reported to the user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// One line saying what is wrong.
    pub summary: String,
    /// What to do about it, and the cause.
    pub detail: String,
    /// The attribute it concerns, if any.
    pub path: Option<AttributePath>,
}

impl Diagnostic {
    /// An error diagnostic.
    pub fn error(summary: impl Into<String>, detail: impl Into<String>) -> Diagnostic {
        Diagnostic { severity: Severity::Error, summary: summary.into(), detail: detail.into(), path: None }
    }

    /// A warning diagnostic.
    pub fn warning(summary: impl Into<String>, detail: impl Into<String>) -> Diagnostic {
        Diagnostic { severity: Severity::Warning, summary: summary.into(), detail: detail.into(), path: None }
    }

    /// The same diagnostic, attached to `path`.
    ///
    /// A path below the top level also leads the detail (`network_devices[1].vlan_id: …`)
    /// unless the detail names it already: Terraform shows no path, and for
    /// a nested attribute highlights at best the list element holding it
    /// (1.15.5: the whole `{ bridge = …, vlan_id = … }` line), or the block
    /// header, so with several NICs the text is what tells which one.
    pub fn at(mut self, path: AttributePath) -> Diagnostic {
        let named = path.to_string();
        if path.0.len() > 1 && !self.detail.contains(&named) {
            self.detail = format!("{named}: {}", self.detail);
        }
        self.path = Some(path);
        self
    }

    /// An error from anything that implements `std::error::Error`: the summary
    /// is given, the detail is the error and its `source()` chain.
    pub fn from_error(summary: impl Into<String>, err: &(dyn std::error::Error + 'static)) -> Diagnostic {
        Diagnostic::error(summary, error_chain(err))
    }
}

/// `err: cause: cause` on one line, the way users read an error chain.
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut cur = err.source();
    while let Some(e) = cur {
        let s = e.to_string();
        if !out.ends_with(&s) {
            out.push_str(": ");
            out.push_str(&s);
        }
        cur = e.source();
    }
    out
}

/// A list of diagnostics, with helpers to add and inspect them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    /// Runs synchronous, possibly CPU-heavy work (a machine configuration
    /// rendered and checked against its JSON schema) on the blocking pool, so
    /// the async workers keep serving other RPCs. Its diagnostics join these;
    /// `None` (with an error) if it did not complete.
    pub async fn off_thread<T: Send + 'static>(
        &mut self,
        f: impl FnOnce(&mut Diagnostics) -> T + Send + 'static,
    ) -> Option<T> {
        let run = tokio::task::spawn_blocking(move || {
            let mut d = Diagnostics::new();
            let out = f(&mut d);
            (out, d)
        });
        match run.await {
            Ok((out, d)) => {
                self.extend(d);
                Some(out)
            }
            Err(e) => {
                self.error("Internal error", format!("A check did not complete: {e}"));
                None
            }
        }
    }

    /// No diagnostics.
    pub fn new() -> Diagnostics {
        Diagnostics(Vec::new())
    }

    /// Adds a diagnostic.
    pub fn push(&mut self, d: Diagnostic) {
        self.0.push(d);
    }

    /// Adds an error.
    pub fn error(&mut self, summary: impl Into<String>, detail: impl Into<String>) {
        self.push(Diagnostic::error(summary, detail));
    }

    /// Adds an error attached to an attribute.
    pub fn error_at(&mut self, path: AttributePath, summary: impl Into<String>, detail: impl Into<String>) {
        self.push(Diagnostic::error(summary, detail).at(path));
    }

    /// Adds a warning.
    pub fn warning(&mut self, summary: impl Into<String>, detail: impl Into<String>) {
        self.push(Diagnostic::warning(summary, detail));
    }

    /// Adds a warning attached to an attribute.
    pub fn warning_at(&mut self, path: AttributePath, summary: impl Into<String>, detail: impl Into<String>) {
        self.push(Diagnostic::warning(summary, detail).at(path));
    }

    /// Appends all of `other`.
    pub fn extend(&mut self, other: Diagnostics) {
        self.0.extend(other.0);
    }

    /// Whether any diagnostic is an error.
    pub fn has_errors(&self) -> bool {
        self.0.iter().any(|d| d.severity == Severity::Error)
    }

    /// Whether there are no diagnostics at all.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<Diagnostic> for Diagnostics {
    fn from(d: Diagnostic) -> Diagnostics {
        Diagnostics(vec![d])
    }
}

impl IntoIterator for Diagnostics {
    type Item = Diagnostic;
    type IntoIter = std::vec::IntoIter<Diagnostic>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_display() {
        let p = AttributePath::attr("disk").and_index(0).and_attr("size").and_key("k");
        assert_eq!(p.to_string(), r#"disk[0].size["k"]"#);
    }

    #[test]
    fn error_chain_joins_sources() {
        #[derive(Debug, thiserror::Error)]
        #[error("outer")]
        struct Outer(#[source] std::io::Error);
        let e = Outer(std::io::Error::other("inner"));
        assert_eq!(error_chain(&e), "outer: inner");
    }
}
