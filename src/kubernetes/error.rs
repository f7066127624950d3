//! The Kubernetes client's one error type.

/// A Kubernetes API call failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The kubeconfig's certificates or key are not usable for TLS.
    #[error("the kubeconfig's TLS material: {0}")]
    Tls(String),
    /// The request never got an answer (connect, TLS, timeout).
    #[error("{request}: no answer from the Kubernetes API")]
    Transport {
        /// `GET /api/v1/nodes`.
        request: String,
        /// What the transport said.
        #[source]
        source: reqwest::Error,
    },
    /// The API server answered with an error `Status`.
    #[error("{request}: {code} {reason}: {message}")]
    Api {
        /// `GET /api/v1/nodes`.
        request: String,
        /// HTTP status code.
        code: u16,
        /// The Status reason (`Unauthorized`, `NotFound`, ...).
        reason: String,
        /// The Status message.
        message: String,
    },
    /// A 2xx answer that is not the object asked for.
    #[error("{request}: the answer is not the expected object")]
    Decode {
        /// `GET /api/v1/nodes`.
        request: String,
        /// What the decoder said.
        #[source]
        source: serde_json::Error,
    },
    /// A drain ran out of time with pods left.
    #[error("node {node} was not drained within {}: {left}", crate::wait::format(*after))]
    Drain {
        /// The Node.
        node: String,
        /// How long it tried.
        after: std::time::Duration,
        /// The pods left and why (a budget's refusal, terminating).
        left: String,
    },
    /// The Node runs pods the drain's options do not let it move
    /// (kubectl's refusals, before anything was evicted).
    #[error("node {node} cannot be drained: {reasons}")]
    DrainRefused {
        /// The Node.
        node: String,
        /// kubectl's words, `; `-separated.
        reasons: String,
    },
    /// Terraform asked the provider to stop during a wait.
    #[error("stopped during {what} after {} (Terraform asked the provider to stop)", crate::wait::format(*after))]
    Stopped {
        /// What was under way.
        what: String,
        /// How long it had run.
        after: std::time::Duration,
    },
    /// An object to apply lacks what names it (apiVersion, kind, name).
    #[error("the object to apply is not valid: {0}")]
    InvalidObject(String),
    /// kube-core refused to build the request (a bad parameter).
    #[error("building a Kubernetes request")]
    Build(#[source] kube_core::request::Error),
}

impl Error {
    /// The caller's credentials were refused (401) or lack a permission
    /// (403): waiting will not help.
    pub fn is_auth(&self) -> bool {
        matches!(self, Error::Api { code: 401 | 403, .. })
    }

    /// Server-side apply refused: another field manager owns a field
    /// (409 Conflict; the message lists them).
    pub fn is_conflict(&self) -> bool {
        matches!(self, Error::Api { code: 409, .. })
    }

    /// The object does not exist (404).
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::Api { code: 404, .. })
    }
}
