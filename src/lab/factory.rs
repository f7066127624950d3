//! The lab's Image Factory double, on loopback over plain HTTP: the routes
//! `proxtalos_image_factory_schematic` and `proxtalos_image` use, with the
//! factory's status codes and error texts (siderolabs/image-factory
//! `internal/frontend/http/http.go`, `configuration.go`, `meta.go`,
//! `internal/profile/profile.go`):
//!
//! - `POST /schematics`: `201 {"id", "schematic"}`; a document the
//!   factory's strict decoder refuses is `400` with the decoder's words
//!   (the id and the decoding are `talos::schematic`'s, whose own tests hold
//!   them to upstream's vectors; a document that module cannot render is
//!   `500` here, where the real factory would answer).
//! - `GET /schematics/{id}`: the normalised YAML, or `404 schematic not
//!   found`.
//! - `GET /version/{v}/extensions/official`: [`OFFICIAL_EXTENSIONS`] for
//!   every version.
//! - `GET /image/{id}/{v}/{file}`: a small placeholder for a known
//!   schematic, `400 official extension "…" is not available for Talos
//!   version …` for one whose extensions are not listed, else `404`.
//!   fakepve's `download-url` does not fetch its URL (fakepve.md G13), so
//!   this route serves people poking at the lab, not PVE.
//!
//! What it does not do: build images, serve installers as a registry,
//! PXE, secure-boot signing, authentication.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::talos::schematic;

/// The official extensions the double lists, for every Talos version: the
/// ones the seeds' clusters use and their neighbours, a subset of
/// siderolabs/extensions' list for Talos v1.11 (names as the factory's
/// `/version/{v}/extensions/official` writes them).
pub const OFFICIAL_EXTENSIONS: &[&str] = &[
    "siderolabs/amd-ucode",
    "siderolabs/amdgpu",
    "siderolabs/btrfs",
    "siderolabs/drbd",
    "siderolabs/i915",
    "siderolabs/intel-ucode",
    "siderolabs/iscsi-tools",
    "siderolabs/nonfree-kmod-nvidia-lts",
    "siderolabs/nonfree-kmod-nvidia-production",
    "siderolabs/nvidia-container-toolkit-lts",
    "siderolabs/nvidia-container-toolkit-production",
    "siderolabs/nvidia-open-gpu-kernel-modules-lts",
    "siderolabs/nvidia-open-gpu-kernel-modules-production",
    "siderolabs/qemu-guest-agent",
    "siderolabs/tailscale",
    "siderolabs/util-linux-tools",
    "siderolabs/v4l-uvc-drivers",
    "siderolabs/zfs",
];

/// The largest schematic the double reads.
const MAX_BODY: usize = 1024 * 1024;

/// What the double holds: schematics by id, and every request as
/// `METHOD path`, for tests.
#[derive(Debug, Default)]
pub struct FactoryState {
    /// Registered schematics: id → normalised document.
    pub schematics: BTreeMap<String, String>,
    /// `POST /schematics`, `GET /schematics/…`, in order.
    pub requests: Vec<String>,
}

/// A running double. Dropping it stops it.
#[derive(Debug)]
pub struct FactoryDouble {
    url: String,
    state: Arc<Mutex<FactoryState>>,
    stop: CancellationToken,
}

impl Drop for FactoryDouble {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// An answer: status, content type, body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// `Content-Type`.
    pub content_type: &'static str,
    /// The body.
    pub body: String,
}

fn answer(status: u16, content_type: &'static str, body: impl Into<String>) -> Answer {
    Answer { status, content_type, body: body.into() }
}

fn text(status: u16, body: &str) -> Answer {
    // Go's http.Error: text/plain and a trailing newline.
    answer(status, "text/plain; charset=utf-8", format!("{body}\n"))
}

/// The double's routes, sans-IO.
pub fn handle(state: &Mutex<FactoryState>, method: &str, path: &str, body: &[u8]) -> Answer {
    let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
    st.requests.push(format!("{method} {path}"));
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (method, parts.as_slice()) {
        ("POST", ["schematics"]) => {
            let doc = String::from_utf8_lossy(body);
            let normal = match schematic::canonical(&doc) {
                Ok(normal) => normal,
                Err(e @ schematic::SchematicError::Unsupported { .. }) => {
                    return text(500, &format!("the lab's factory double cannot normalise this schematic: {e}"));
                }
                Err(e) => return text(400, &format!("yaml: unmarshal errors:\n  {e}")),
            };
            let id = schematic::id_of_canonical(&normal);
            st.schematics.insert(id.clone(), normal.clone());
            answer(201, "application/json", serde_json::json!({ "id": id, "schematic": normal }).to_string() + "\n")
        }
        ("GET", ["schematics", id]) => match st.schematics.get(*id) {
            Some(doc) => answer(200, "application/yaml", doc.clone()),
            None => text(404, "schematic not found"),
        },
        ("GET", ["version", _, "extensions", "official"]) => {
            let list: Vec<_> = OFFICIAL_EXTENSIONS
                .iter()
                .map(|n| serde_json::json!({ "name": n, "ref": format!("ghcr.io/{n}:lab"), "digest": "", "author": "Sidero Labs", "description": "" }))
                .collect();
            answer(200, "application/json", serde_json::Value::Array(list).to_string() + "\n")
        }
        ("GET", ["image", id, version, _file]) => {
            let Some(doc) = st.schematics.get(*id) else { return text(404, "schematic not found") };
            let wanted = schematic::official_extensions(doc).unwrap_or_default();
            let listed: Vec<String> = OFFICIAL_EXTENSIONS.iter().map(|s| s.to_string()).collect();
            if let Some(name) = crate::image_factory::unavailable(&wanted, &listed).first() {
                return text(400, &format!("official extension {name:?} is not available for Talos version {version}"));
            }
            answer(200, "application/octet-stream", format!("talos lab image {id} {version}\n"))
        }
        _ => text(404, "404 page not found"),
    }
}

impl FactoryDouble {
    /// Starts the double on `127.0.0.1` at a free port.
    pub async fn start() -> std::io::Result<FactoryDouble> {
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let url = format!("http://{}", listener.local_addr()?);
        let state = Arc::new(Mutex::new(FactoryState::default()));
        let stop = CancellationToken::new();
        let (st, token) = (state.clone(), stop.clone());
        tokio::spawn(async move {
            loop {
                let tcp = tokio::select! {
                    _ = token.cancelled() => return,
                    r = listener.accept() => match r { Ok((tcp, _)) => tcp, Err(_) => continue },
                };
                let (st, token) = (st.clone(), token.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
                        let st = st.clone();
                        async move { Ok::<_, std::convert::Infallible>(respond(&st, req).await) }
                    });
                    let conn = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(tcp), service);
                    tokio::select! {
                        _ = token.cancelled() => {}
                        _ = conn => {}
                    }
                });
            }
        });
        Ok(FactoryDouble { url, state, stop })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The requests so far, as `METHOD path`.
    pub fn requests(&self) -> Vec<String> {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).requests.clone()
    }

    /// Forgets every schematic (a self-hosted factory whose storage was
    /// reset).
    pub fn forget_all(&self) {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).schematics.clear();
    }
}

async fn respond(state: &Mutex<FactoryState>, req: hyper::Request<Incoming>) -> hyper::Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let a = match Limited::new(body, MAX_BODY).collect().await {
        Ok(b) => handle(state, parts.method.as_str(), parts.uri.path(), &b.to_bytes()),
        Err(_) => text(413, "request body too large"),
    };
    let mut resp = hyper::Response::new(Full::new(Bytes::from(a.body)));
    *resp.status_mut() = hyper::StatusCode::from_u16(a.status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    if let Ok(v) = hyper::header::HeaderValue::from_str(a.content_type) {
        resp.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    resp
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const EMPTY: &str = "376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba";

    #[test]
    fn routes_answer_as_the_factory_does() {
        let st = Mutex::new(FactoryState::default());
        assert_eq!(handle(&st, "GET", &format!("/schematics/{EMPTY}"), b"").status, 404);
        let a = handle(&st, "POST", "/schematics", b"{\"customization\": {}}");
        assert_eq!(a.status, 201);
        let v: serde_json::Value = serde_json::from_str(&a.body).unwrap();
        assert_eq!(v["id"], EMPTY);
        assert_eq!(handle(&st, "GET", &format!("/schematics/{EMPTY}"), b"").body, "customization: {}\n");
        let bad = handle(&st, "POST", "/schematics", b"customization: {foo: 1}");
        assert_eq!(bad.status, 400);
        assert!(bad.body.contains("customization.foo"), "{}", bad.body);
        let ext = handle(&st, "GET", "/version/v1.11.5/extensions/official", b"");
        assert!(ext.body.contains("\"siderolabs/iscsi-tools\""));
        assert_eq!(handle(&st, "GET", &format!("/image/{EMPTY}/v1.11.5/nocloud-amd64.iso"), b"").status, 200);
        let odd = "customization:\n  systemExtensions:\n    officialExtensions: [siderolabs/nope]\n";
        let id = serde_json::from_str::<serde_json::Value>(&handle(&st, "POST", "/schematics", odd.as_bytes()).body)
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string();
        let refused = handle(&st, "GET", &format!("/image/{id}/v1.11.5/nocloud-amd64.iso"), b"");
        assert_eq!(refused.status, 400);
        assert!(refused.body.contains("official extension \"siderolabs/nope\" is not available"), "{}", refused.body);
        assert_eq!(st.lock().unwrap().requests.len(), 8);
    }
}
