//! The executor: sends the `http::Request`s kube-core builds to the API
//! server of a [`Kubeconfig`], over rustls (ring) with its CA as the only
//! root and its client certificate, and decodes the answer or the error
//! `Status`.

use std::time::Duration;

use serde::de::DeserializeOwned;

use super::{Error, Kubeconfig};
use crate::talos::api::tls::{certificates, private_key, provider};

/// Deadlines of one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// TCP and TLS connect.
    pub connect: Duration,
    /// The whole request, answer included.
    pub call: Duration,
}

impl Default for Timeouts {
    /// 10 s to connect, 30 s a call.
    fn default() -> Self {
        Timeouts { connect: Duration::from_secs(10), call: Duration::from_secs(30) }
    }
}

/// A client for one API server.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    server: String,
}

impl Client {
    /// A client for the kubeconfig's server, trusting only its CA and
    /// authenticating with its client certificate.
    pub fn new(kubeconfig: &Kubeconfig, timeouts: Timeouts) -> Result<Client, Error> {
        let mut roots = rustls::RootCertStore::empty();
        for ca in certificates(&kubeconfig.ca_pem).map_err(|e| Error::Tls(format!("CA: {e}")))? {
            roots.add(ca).map_err(|e| Error::Tls(format!("CA: {e}")))?;
        }
        let chain = certificates(&kubeconfig.client_certificate_pem)
            .map_err(|e| Error::Tls(format!("client certificate: {e}")))?;
        let key =
            private_key(kubeconfig.client_key_pem.expose()).map_err(|e| Error::Tls(format!("client key: {e}")))?;
        let mut tls = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Tls(e.to_string()))?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)
            .map_err(|e| Error::Tls(format!("client certificate and key: {e}")))?;
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .connect_timeout(timeouts.connect)
            .timeout(timeouts.call)
            .no_proxy()
            .build()
            .map_err(|e| Error::Tls(format!("HTTP client: {e}")))?;
        Ok(Client { http, server: kubeconfig.server.trim_end_matches('/').to_string() })
    }

    /// The API server URL.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// The API server's version (`GET /version`, `gitVersion`): the
    /// cheapest proof that the server behind this client's URL answers.
    pub async fn version(&self) -> Result<String, Error> {
        #[derive(serde::Deserialize)]
        struct Info {
            #[serde(rename = "gitVersion", default)]
            git_version: String,
        }
        let mut req = http::Request::new(Vec::new());
        *req.uri_mut() = http::Uri::from_static("/version");
        let info: Info = self.send(req).await?;
        Ok(info.git_version)
    }

    /// Sends a request kube-core built and decodes the answer as `T`.
    pub async fn send<T: DeserializeOwned>(&self, req: http::Request<Vec<u8>>) -> Result<T, Error> {
        let (parts, body) = req.into_parts();
        let path = parts.uri.path_and_query().map_or("/", |p| p.as_str()).to_string();
        let request = format!("{} {}", parts.method, parts.uri.path());
        let transport = |source| Error::Transport { request: request.clone(), source };
        let answer = self
            .http
            .request(parts.method, format!("{}{path}", self.server))
            .headers(parts.headers)
            .header(http::header::ACCEPT, "application/json")
            .body(body)
            .send()
            .await
            .map_err(transport)?;
        let code = answer.status();
        let bytes = answer.bytes().await.map_err(transport)?;
        if !code.is_success() {
            let status: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
            let text = |k: &str| status.get(k).and_then(|v| v.as_str()).unwrap_or_default().to_string();
            let reason = Some(text("reason"))
                .filter(|r| !r.is_empty())
                .unwrap_or_else(|| code.canonical_reason().unwrap_or("").to_string());
            return Err(Error::Api { request, code: code.as_u16(), reason, message: text("message") });
        }
        serde_json::from_slice(&bytes).map_err(|source| Error::Decode { request, source })
    }
}
