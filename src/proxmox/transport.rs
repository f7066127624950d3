//! The one place bytes move: a [`Transport`] sends an authenticated HTTP
//! request and returns status, reason phrase and body. [`ReqwestTransport`]
//! is the real one (rustls, explicit CA or `insecure`); tests use a mock
//! (see `client.rs` tests) or fakepve on loopback.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;

use super::error::{Error, Result};
use super::request::Method;

/// A request as sent: method, path and query under `/api2/json`, headers
/// (which may hold credentials: `Debug` redacts them) and a form body.
#[derive(Clone)]
pub struct HttpRequest {
    /// The method.
    pub method: Method,
    /// Path and query under `/api2/json`.
    pub path_and_query: String,
    /// Headers.
    pub headers: Vec<(&'static str, String)>,
    /// `application/x-www-form-urlencoded` body.
    pub body: Option<String>,
}

impl fmt::Debug for HttpRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: Vec<&str> = self.headers.iter().map(|(k, _)| *k).collect();
        f.debug_struct("HttpRequest")
            .field("method", &self.method)
            .field("path_and_query", &self.path_and_query)
            .field("headers", &headers)
            .field("body", &self.body.as_ref().map(|b| b.len()))
            .finish()
    }
}

/// An answer: status, reason phrase when it is not the standard one, body.
#[derive(Clone, Debug)]
pub struct HttpResponse {
    /// HTTP status (59x included).
    pub status: u16,
    /// A non-standard reason phrase (PVE puts error text there).
    pub reason: Option<String>,
    /// The body.
    pub body: Vec<u8>,
}

/// Sends requests. Errors are [`Error::Connect`] (nothing sent) or
/// [`Error::Transport`] (maybe sent).
#[async_trait]
pub trait Transport: Send + Sync {
    /// Sends one request.
    async fn send(&self, req: HttpRequest) -> Result<HttpResponse>;
}

/// TLS and address settings for [`ReqwestTransport`].
#[derive(Clone)]
pub struct TlsSettings {
    /// `https://host:8006` (with or without a trailing `/` or `/api2/json`).
    pub endpoint: String,
    /// Skip certificate verification.
    pub insecure: bool,
    /// Extra CA certificates (PEM bundle).
    pub ca_pem: Option<String>,
    /// Per-request time limit.
    pub timeout: Duration,
}

impl fmt::Debug for TlsSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsSettings")
            .field("endpoint", &self.endpoint)
            .field("insecure", &self.insecure)
            .field("ca_pem", &self.ca_pem.as_ref().map(|_| "<pem>"))
            .finish()
    }
}

/// The reqwest transport (rustls with ring; no platform verifier).
#[derive(Debug)]
pub struct ReqwestTransport {
    http: reqwest::Client,
    base: String,
}

impl ReqwestTransport {
    /// A transport for these settings. TLS verification is on unless
    /// `insecure`; `ca_pem` is trusted in addition to the built-in roots.
    /// Environment proxies are ignored (PVE is reached directly).
    pub fn new(s: &TlsSettings) -> Result<ReqwestTransport> {
        let mut b = reqwest::Client::builder()
            .user_agent(user_agent())
            .use_rustls_tls()
            .no_proxy()
            .timeout(s.timeout)
            .connect_timeout(Duration::from_secs(15))
            .danger_accept_invalid_certs(s.insecure);
        if let Some(pem) = &s.ca_pem {
            if let Some(problem) = super::ca_pem::problem(pem) {
                return Err(Error::CaCertificate(problem));
            }
            // `problem` found at least one certificate that parses.
            let certs = reqwest::Certificate::from_pem_bundle(pem.as_bytes())
                .map_err(|e| Error::CaCertificate(e.to_string()))?;
            for c in certs {
                b = b.add_root_certificate(c);
            }
        }
        let http = b.build().map_err(|e| Error::Settings(format!("TLS client: {e}")))?;
        Ok(ReqwestTransport { http, base: api_base(&s.endpoint) })
    }
}

/// The `User-Agent` sent to PVE: the provider and its version, so PVE's
/// access log tells which provider build made a change.
pub fn user_agent() -> String {
    format!("terraform-provider-proxtalos/{}", crate::VERSION)
}

/// `https://host:8006/api2/json` from what users write as the endpoint.
pub fn api_base(endpoint: &str) -> String {
    let e = endpoint.trim_end_matches('/');
    let e = e.strip_suffix("/api2/json").unwrap_or(e);
    format!("{e}/api2/json")
}

#[async_trait]
impl Transport for ReqwestTransport {
    async fn send(&self, req: HttpRequest) -> Result<HttpResponse> {
        let method = match req.method {
            Method::Get => reqwest::Method::GET,
            Method::Post => reqwest::Method::POST,
            Method::Put => reqwest::Method::PUT,
            Method::Delete => reqwest::Method::DELETE,
        };
        let mut rb = self.http.request(method, format!("{}{}", self.base, req.path_and_query));
        for (k, v) in &req.headers {
            rb = rb.header(*k, v);
        }
        if let Some(body) = req.body {
            rb = rb.header("Content-Type", "application/x-www-form-urlencoded").body(body);
        }
        let resp = rb.send().await.map_err(classify)?;
        let status = resp.status().as_u16();
        let reason = resp
            .extensions()
            .get::<hyper::ext::ReasonPhrase>()
            .map(|r| String::from_utf8_lossy(r.as_bytes()).trim().to_string());
        let body = resp.bytes().await.map_err(|e| Error::Transport(Box::new(e)))?.to_vec();
        Ok(HttpResponse { status, reason, body })
    }
}

fn classify(e: reqwest::Error) -> Error {
    if e.is_connect() { Error::Connect(Box::new(e)) } else { Error::Transport(Box::new(e)) }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn user_agent_names_the_version() {
        assert_eq!(user_agent(), format!("terraform-provider-proxtalos/{}", crate::VERSION));
    }

    #[test]
    fn base_url_forms() {
        for e in ["https://pve:8006", "https://pve:8006/", "https://pve:8006/api2/json", "https://pve:8006/api2/json/"]
        {
            assert_eq!(api_base(e), "https://pve:8006/api2/json");
        }
    }

    #[test]
    fn debug_redacts_headers() {
        let r = HttpRequest {
            method: Method::Get,
            path_and_query: "/version".into(),
            headers: vec![("Authorization", "PVEAPIToken=a@pam!t=supersecret".into())],
            body: None,
        };
        assert!(!format!("{r:?}").contains("supersecret"));
    }

    #[test]
    fn bad_ca_is_a_ca_certificate_error() {
        let s = TlsSettings {
            endpoint: "https://pve:8006".into(),
            insecure: false,
            ca_pem: Some("not a pem".into()),
            timeout: Duration::from_secs(5),
        };
        assert!(matches!(ReqwestTransport::new(&s), Err(Error::CaCertificate(_))));
    }
}
