//! The lab's kube-apiserver endpoint on a control plane (`address:6443`):
//! TLS with a serving certificate issued from the cluster's Kubernetes CA
//! (as Talos's `secrets` controllers issue kube-apiserver's), client
//! certificates checked against the same CA (x509 client authentication;
//! the user is the certificate's CN, its groups the Organizations), HTTP/1.1
//! into the sans-IO handler ([`super::api::handle`]). The socket is bound
//! while the machine is up; a connection is dropped at once while this
//! control plane does not serve the API (booting, no etcd yet), and every
//! connection dies with the machine.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt as _, Full, Limited, StreamBody};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use super::api::{self, Request, User};
use crate::talos::api::tls::{certificates, private_key, provider};
use crate::talos::pki::{self, CertTemplate, San, SigningKey};
use crate::talos::secrets::CertAndKey;
use crate::talos::sim::node::Node;
use crate::talos::sim::{Shared, SimError, tls};

/// The largest request body the lab reads (patches and evictions are small).
const MAX_BODY: usize = 3 * 1024 * 1024;

/// The TLS config of a control plane's API server: a serving certificate
/// from the Kubernetes CA for the node's address, the cluster endpoint's
/// host and the in-cluster names, optional client certificates verified
/// against the same CA.
pub fn server_config(ca: &CertAndKey, node: &Node, endpoint_host: &str) -> Result<Arc<rustls::ServerConfig>, SimError> {
    let err = |what: &'static str| move |e: pki::PkiError| SimError::Tls(format!("{what}: {e}"));
    let ca_cert = pki::parse_certificate(&ca.crt).map_err(err("Kubernetes CA"))?;
    let ca_key = SigningKey::from_pem(&ca.key).map_err(err("Kubernetes CA key"))?;
    let mut rng = rand_core::UnwrapErr(getrandom::SysRng);
    let key = match ca_key.algorithm() {
        pki::KeyAlgorithm::Ed25519 => SigningKey::generate_ed25519(&mut rng),
        _ => SigningKey::generate_p256(&mut rng),
    };
    let now = SystemTime::now();
    let template = CertTemplate {
        subject: "CN=kube-apiserver".to_string(),
        is_ca: false,
        not_before: now - Duration::from_secs(10),
        not_after: now + Duration::from_secs(24 * 3600),
    };
    let mut sans = vec![San::Ip(node.ip()), San::Ip([127, 0, 0, 1].into())];
    for dns in ["kubernetes", "kubernetes.default", "kubernetes.default.svc", "localhost"] {
        sans.push(San::Dns(dns.to_string()));
    }
    match endpoint_host.parse() {
        Ok(ip) if ip != node.ip() => sans.push(San::Ip(ip)),
        Ok(_) => {}
        Err(_) if !endpoint_host.is_empty() => sans.push(San::Dns(endpoint_host.to_string())),
        Err(_) => {}
    }
    let crt = pki::issue_server_leaf(&mut rng, &template, &sans, &key, &ca_cert, &ca_key).map_err(err("issue"))?;
    let mut roots = rustls::RootCertStore::empty();
    for c in certificates(&ca.crt).map_err(SimError::Tls)? {
        roots.add(c).map_err(|e| SimError::Tls(e.to_string()))?;
    }
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
        .allow_unauthenticated()
        .build()
        .map_err(|e| SimError::Tls(e.to_string()))?;
    let chain = certificates(&crt).map_err(SimError::Tls)?;
    let key = private_key(&key.to_pem().map_err(err("key"))?).map_err(SimError::Tls)?;
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| SimError::Tls(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|e| SimError::Tls(e.to_string()))?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// Runs the node's API server socket until `root` is cancelled.
pub async fn run(node: Arc<Node>, addr: SocketAddr, root: CancellationToken) {
    let n = node.clone();
    crate::talos::sim::listener::accept_while_up(&node, addr, None, &root, move |tcp| {
        tokio::spawn(connection(n.clone(), tcp));
    })
    .await;
}

/// Serves one accepted connection as `node`'s API server (also on the
/// VIP it holds, `vip.rs`).
pub(crate) async fn connection(node: Arc<Node>, tcp: TcpStream) {
    let Some((config, token)) = node.kube_identity() else {
        return;
    };
    let _ = tcp.set_nodelay(true);
    let Ok(Ok(stream)) =
        tokio::time::timeout(Duration::from_secs(10), tokio_rustls::TlsAcceptor::from(config).accept(tcp)).await
    else {
        return;
    };
    let user = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|der| User { name: tls::common_name(der), groups: tls::organizations(der) });
    let shared = node.shared.clone();
    let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        let (shared, user) = (shared.clone(), user.clone());
        async move { Ok::<_, std::convert::Infallible>(respond(shared, user, req).await) }
    });
    let conn = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service);
    tokio::select! {
        _ = token.cancelled() => {}
        _ = conn => {}
    }
}

async fn respond(
    shared: std::sync::Weak<Shared>,
    user: Option<User>,
    req: hyper::Request<Incoming>,
) -> hyper::Response<Body> {
    let (parts, body) = req.into_parts();
    let body = match Limited::new(body, MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return reply(api::Response::status(413, "RequestEntityTooLarge", "request body too large")),
    };
    let header = |name: hyper::header::HeaderName| {
        parts.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string()
    };
    let request = Request {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query().unwrap_or_default(),
        accept: &header(hyper::header::ACCEPT),
        content_type: &header(hyper::header::CONTENT_TYPE),
        body: &body,
        user: user.as_ref(),
    };
    let Some(strong) = shared.upgrade() else {
        return reply(api::Response::status(503, "ServiceUnavailable", "the lab stopped"));
    };
    if api::is_watch(&request) {
        let timeout = form_urlencoded::parse(request.query.as_bytes())
            .find(|(k, _)| k == "timeoutSeconds")
            .and_then(|(_, v)| v.parse::<u64>().ok())
            .unwrap_or(1800);
        return match super::watch_start(&strong, &request) {
            Ok((watch, first)) => stream(shared, watch, first, Duration::from_secs(timeout)),
            Err(r) => reply(r),
        };
    }
    reply(super::serve(&strong, &request))
}

/// Every response body: whole, or a watch's stream.
type Body = BoxBody<Bytes, std::convert::Infallible>;

/// How often an open watch looks for changes.
const WATCH_POLL: Duration = Duration::from_millis(100);

/// A watch's response: its events as JSON lines, as they happen, until
/// `timeout` (`timeoutSeconds`), the client goes, or the lab stops.
fn stream(
    shared: std::sync::Weak<Shared>,
    mut watch: api::watch::Watch,
    first: Vec<serde_json::Value>,
    timeout: Duration,
) -> hyper::Response<Body> {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<hyper::body::Frame<Bytes>, std::convert::Infallible>>(64);
    tokio::spawn(async move {
        let line = |e: &serde_json::Value| Ok(hyper::body::Frame::data(Bytes::from(format!("{e}\n"))));
        let end = tokio::time::Instant::now() + timeout;
        let mut events = first;
        loop {
            for e in &events {
                if tx.send(line(e)).await.is_err() {
                    return;
                }
            }
            tokio::select! {
                _ = tx.closed() => return,
                _ = tokio::time::sleep_until(end) => return,
                _ = tokio::time::sleep(WATCH_POLL) => {}
            }
            let Some(shared) = shared.upgrade() else { return };
            events = super::watch_poll(&shared, &mut watch);
        }
    });
    let body = StreamBody::new(tokio_stream::wrappers::ReceiverStream::new(rx));
    let mut out = hyper::Response::new(BoxBody::new(body));
    out.headers_mut().insert(hyper::header::CONTENT_TYPE, hyper::header::HeaderValue::from_static("application/json"));
    out
}

fn reply(r: api::Response) -> hyper::Response<Body> {
    let mut out = hyper::Response::new(Full::new(Bytes::from(r.body)).boxed());
    *out.status_mut() = hyper::StatusCode::from_u16(r.code).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    if let Ok(v) = hyper::header::HeaderValue::from_str(&r.content_type) {
        out.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    out
}
