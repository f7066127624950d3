//! The Talos Image Factory's HTTP API, the part a schematic needs
//! (siderolabs/image-factory `internal/frontend/http/http.go` routes,
//! `configuration.go` and `meta.go` handlers):
//!
//! - `POST /schematics` with the document as the body answers `201` and
//!   `{"id": …, "schematic": …}` (the normalised document); a document the
//!   factory's strict decoder refuses is `400` with Go's error text.
//! - `GET /schematics/{id}` answers the normalised YAML, or `404`
//!   `schematic not found`.
//! - `GET /version/{v}/extensions/official` answers a JSON list of
//!   `{name, ref, digest, author, description}`; an image of that version
//!   with an official extension not in the list is refused with `400`
//!   `official extension "…" is not available for Talos version v…`
//!   (`internal/profile/profile.go`, which also tries the two aliases of
//!   [`ALIASES`]).
//!
//! Sans-IO request builders and decoders, and a thin [`Client`] that sends
//! them (rustls, built-in roots: TLS verification is always on for an
//! `https://` factory).

use std::time::Duration;

use serde::Deserialize;

use crate::wait::Stop;

/// The public factory's host (also its registry of installers).
pub const PUBLIC_HOST: &str = "factory.talos.dev";

/// The public factory.
pub const PUBLIC_URL: &str = "https://factory.talos.dev";

/// The installer repository of schematic `id` at a factory's registry
/// `host` (`factory.talos.dev/installer/<id>`, `installer-secureboot` for
/// the secure-boot one); the tag is the Talos version.
pub fn installer_repository(host: &str, id: &str, secureboot: bool) -> String {
    let kind = if secureboot { "installer-secureboot" } else { "installer" };
    format!("{host}/{kind}/{id}")
}

/// A boot image's URL at the factory `base`:
/// `<base>/image/<id>/<version>/<platform>-<arch>[-secureboot].<ext>`.
pub fn image_url(
    base: &str,
    id: &str,
    version: &str,
    platform: &str,
    arch: &str,
    secureboot: bool,
    ext: &str,
) -> String {
    let sb = if secureboot { "-secureboot" } else { "" };
    format!("{}/image/{id}/{version}/{platform}-{arch}{sb}.{ext}", base.trim_end_matches('/'))
}

/// Extension names the factory also accepts for another name
/// (`ExtensionNameAlias` in siderolabs/image-factory
/// `internal/profile/profile.go`: wrong names in the extension manifest).
pub const ALIASES: &[(&str, &str)] =
    &[("siderolabs/v4l-uvc", "siderolabs/v4l-uvc-drivers"), ("siderolabs/usb-modem", "siderolabs/usb-modem-drivers")];

/// Why a factory call failed.
#[derive(Debug, thiserror::Error)]
pub enum FactoryError {
    /// The base URL is not an `http(s)://` URL.
    #[error("invalid Image Factory URL {url:?}: {why}")]
    Url {
        /// As given.
        url: String,
        /// What is wrong.
        why: String,
    },
    /// Nothing usable came back (connection, TLS, timeout).
    #[error("{what}: no answer from the Image Factory at {base}")]
    Transport {
        /// The request.
        what: String,
        /// The factory's URL.
        base: String,
        /// The cause.
        #[source]
        source: reqwest::Error,
    },
    /// The factory answered with an error status.
    #[error("{what}: the Image Factory answered {status}: {message}")]
    Refused {
        /// The request.
        what: String,
        /// HTTP status.
        status: u16,
        /// The factory's error text.
        message: String,
    },
    /// A success status whose body is not what the request asks for (a
    /// proxy's or captive portal's page, say).
    #[error("{what}: the answer is not the Image Factory's ({why})")]
    Decode {
        /// The request.
        what: String,
        /// What was wrong with it.
        why: String,
    },
    /// Terraform asked the provider to stop.
    #[error("{what}: stopped, as Terraform asked")]
    Stopped {
        /// The request.
        what: String,
    },
}

/// A request as the factory is asked it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// `true` for POST, else GET.
    pub post: bool,
    /// Path under the factory's URL.
    pub path: String,
    /// The body (a POST's schematic document).
    pub body: Option<String>,
    /// What it is for, in errors ("register the schematic").
    pub what: &'static str,
}

/// An answer: status and body.
#[derive(Debug, Clone)]
pub struct Response {
    /// HTTP status.
    pub status: u16,
    /// The body.
    pub body: Vec<u8>,
}

/// `POST /schematics` with `document`.
pub fn register(document: &str) -> Request {
    Request { post: true, path: "/schematics".into(), body: Some(document.to_string()), what: "register the schematic" }
}

/// `GET /schematics/{id}`.
pub fn get_schematic(id: &str) -> Request {
    Request { post: false, path: format!("/schematics/{id}"), body: None, what: "read the schematic" }
}

/// `GET /version/{version}/extensions/official`.
pub fn official_extensions(version: &str) -> Request {
    Request {
        post: false,
        path: format!("/version/{version}/extensions/official"),
        body: None,
        what: "list the official extensions",
    }
}

/// What `POST /schematics` answered.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Registered {
    /// The schematic id.
    pub id: String,
    /// The document as the factory normalised it (older factories omit it).
    #[serde(default)]
    pub schematic: String,
}

fn refused(req: &Request, resp: &Response) -> FactoryError {
    let text = String::from_utf8_lossy(&resp.body);
    let mut message = text.trim().chars().take(500).collect::<String>();
    if message.is_empty() {
        message = "(no message)".into();
    }
    FactoryError::Refused { what: req.what.into(), status: resp.status, message }
}

fn decode<T: serde::de::DeserializeOwned>(req: &Request, resp: &Response) -> Result<T, FactoryError> {
    serde_json::from_slice(&resp.body).map_err(|e| FactoryError::Decode { what: req.what.into(), why: e.to_string() })
}

/// Decodes the answer to [`register`].
pub fn decode_registered(req: &Request, resp: &Response) -> Result<Registered, FactoryError> {
    if !(200..300).contains(&resp.status) {
        return Err(refused(req, resp));
    }
    let r: Registered = decode(req, resp)?;
    if !crate::talos::schematic::valid_id(&r.id) {
        return Err(FactoryError::Decode { what: req.what.into(), why: format!("{:?} is not a schematic id", r.id) });
    }
    Ok(Registered { id: r.id.to_ascii_lowercase(), ..r })
}

/// Decodes the answer to [`get_schematic`]: the document, or `None` when
/// the factory does not know the id.
pub fn decode_schematic(req: &Request, resp: &Response) -> Result<Option<String>, FactoryError> {
    match resp.status {
        404 => Ok(None),
        200..=299 => String::from_utf8(resp.body.clone())
            .map(Some)
            .map_err(|_| FactoryError::Decode { what: req.what.into(), why: "not UTF-8 text".into() }),
        _ => Err(refused(req, resp)),
    }
}

/// Decodes the answer to [`official_extensions`]: the extension names.
pub fn decode_extensions(req: &Request, resp: &Response) -> Result<Vec<String>, FactoryError> {
    #[derive(Deserialize)]
    struct Info {
        name: String,
    }
    if !(200..300).contains(&resp.status) {
        return Err(refused(req, resp));
    }
    let list: Vec<Info> = decode(req, resp)?;
    Ok(list.into_iter().map(|i| i.name).collect())
}

/// The names in `requested` that the factory would refuse for a version
/// offering `available` (exact names, then [`ALIASES`]), in order.
pub fn unavailable<'r>(requested: &'r [String], available: &[String]) -> Vec<&'r str> {
    let has = |n: &str| available.iter().any(|a| a == n);
    requested
        .iter()
        .map(String::as_str)
        .filter(|n| !has(n) && !ALIASES.iter().any(|(from, to)| from == n && has(to)))
        .collect()
}

/// Checks a factory base URL (`http(s)://host[:port][/prefix]`) and
/// returns it without a trailing `/`.
pub fn base_url(url: &str) -> Result<String, FactoryError> {
    let bad = |why: &str| FactoryError::Url { url: url.to_string(), why: why.to_string() };
    let parsed = reqwest::Url::parse(url).map_err(|e| bad(&e.to_string()))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(bad("the factory is reached over http:// or https://"));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(bad("no host"));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(bad("no query or fragment"));
    }
    Ok(url.trim_end_matches('/').to_string())
}

/// `host[:port]` of a factory URL: where it serves installer images as a
/// registry (`factory.talos.dev/installer/<id>:<version>`).
pub fn registry_host(base: &str) -> Option<String> {
    let u = reqwest::Url::parse(base).ok()?;
    let host = u.host_str()?;
    Some(match u.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_string(),
    })
}

/// Sends factory requests.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    /// A client for the factory at `url` (checked by [`base_url`]).
    /// Environment proxies are honoured (the factory is on the internet).
    pub fn new(url: &str, timeout: Duration) -> Result<Client, FactoryError> {
        let base = base_url(url)?;
        let http = reqwest::Client::builder()
            .user_agent(crate::proxmox::transport::user_agent())
            .use_rustls_tls()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(15))
            .build()
            .map_err(|e| FactoryError::Url { url: url.to_string(), why: format!("TLS client: {e}") })?;
        Ok(Client { http, base })
    }

    /// The base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Sends `req`; ends early with [`FactoryError::Stopped`] on `stop`.
    pub async fn send(&self, req: &Request, stop: &Stop) -> Result<Response, FactoryError> {
        let url = format!("{}{}", self.base, req.path);
        let rb = if req.post {
            self.http
                .post(url)
                .header(reqwest::header::CONTENT_TYPE, "application/yaml")
                .body(req.body.clone().unwrap_or_default())
        } else {
            self.http.get(url)
        };
        let transport = |source| FactoryError::Transport { what: req.what.into(), base: self.base.clone(), source };
        let call = async {
            let resp = rb.send().await.map_err(transport)?;
            let status = resp.status().as_u16();
            let body = resp.bytes().await.map_err(transport)?.to_vec();
            Ok(Response { status, body })
        };
        let started = std::time::Instant::now();
        let out = tokio::select! {
            r = call => r,
            () = stop.stopped() => Err(FactoryError::Stopped { what: req.what.into() }),
        };
        tracing::debug!(request = req.what, path = %req.path, status = ?out.as_ref().map(|r| r.status).ok(),
            ms = started.elapsed().as_millis() as u64, "image factory");
        out
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn resp(status: u16, body: &str) -> Response {
        Response { status, body: body.as_bytes().to_vec() }
    }

    const ID: &str = "376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba";

    #[test]
    fn registered_ids_are_checked() {
        let r = register("customization: {}");
        assert_eq!((r.post, r.path.as_str()), (true, "/schematics"));
        let ok =
            decode_registered(&r, &resp(201, &format!("{{\"id\":\"{ID}\",\"schematic\":\"customization: {{}}\\n\"}}")));
        assert_eq!(ok.unwrap().id, ID);
        // A captive portal's 200 is not a registration.
        let e = decode_registered(&r, &resp(200, "<html>login</html>")).unwrap_err();
        assert!(matches!(e, FactoryError::Decode { .. }), "{e}");
        let e = decode_registered(&r, &resp(200, "{\"id\":\"nope\"}")).unwrap_err();
        assert!(e.to_string().contains("not a schematic id"), "{e}");
        // The factory's strict decoder, as Go prints it.
        let e = decode_registered(
            &r,
            &resp(400, "yaml: unmarshal errors:\n  line 1: field foo not found in type schematic.Customization\n"),
        )
        .unwrap_err();
        assert!(e.to_string().contains("400: yaml: unmarshal errors"), "{e}");
    }

    #[test]
    fn a_missing_schematic_is_none() {
        let r = get_schematic(ID);
        assert_eq!(decode_schematic(&r, &resp(404, "schematic not found\n")).unwrap(), None);
        assert_eq!(
            decode_schematic(&r, &resp(200, "customization: {}\n")).unwrap().as_deref(),
            Some("customization: {}\n")
        );
        assert!(decode_schematic(&r, &resp(500, "internal server error")).is_err());
    }

    #[test]
    fn unavailable_extensions_honour_the_factorys_aliases() {
        let r = official_extensions("v1.11.5");
        assert_eq!(r.path, "/version/v1.11.5/extensions/official");
        let list = decode_extensions(
            &r,
            &resp(
                200,
                r#"[{"name":"siderolabs/iscsi-tools","ref":"x","digest":"y"},{"name":"siderolabs/v4l-uvc-drivers"}]"#,
            ),
        )
        .unwrap();
        let asked: Vec<String> =
            ["siderolabs/iscsi-tools", "siderolabs/v4l-uvc", "siderolabs/nvidia-foo"].map(String::from).to_vec();
        assert_eq!(unavailable(&asked, &list), vec!["siderolabs/nvidia-foo"]);
    }

    #[test]
    fn base_urls() {
        assert_eq!(base_url("https://factory.talos.dev/").unwrap(), "https://factory.talos.dev");
        assert_eq!(base_url("http://127.0.0.1:8080/factory").unwrap(), "http://127.0.0.1:8080/factory");
        for bad in ["factory.talos.dev", "ftp://x", "https://x/?a=1", ""] {
            assert!(base_url(bad).is_err(), "{bad}");
        }
        assert_eq!(registry_host("https://factory.talos.dev").as_deref(), Some("factory.talos.dev"));
        assert_eq!(registry_host("http://127.0.0.1:8080").as_deref(), Some("127.0.0.1:8080"));
    }
}
