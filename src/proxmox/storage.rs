//! `/nodes/{node}/storage`: download-url, content listing, volume delete.

use serde::Deserialize;

use super::lenient;
use super::request::{Request, segment};

/// `download-url` parameters (the API names are exact: `compression`, not
/// `decompression-algorithm`).
#[derive(Clone, Debug, Default)]
pub struct Download {
    /// `https?://...`
    pub url: String,
    /// `iso`, `import` or `vztmpl`.
    pub content: String,
    /// Target file name.
    pub filename: String,
    /// Expected checksum.
    pub checksum: Option<String>,
    /// `sha256`, `sha512`, ...
    pub checksum_algorithm: Option<String>,
    /// `gz`, `lzo`, `zst`, `bz2` (iso only).
    pub compression: Option<String>,
    /// Verify the source's TLS certificate (default on).
    pub verify_certificates: Option<bool>,
}

/// `POST /nodes/{node}/storage/{storage}/download-url`.
pub fn download_url(node: &str, storage: &str, d: &Download) -> Request {
    let mut r = Request::post(format!("/nodes/{}/storage/{}/download-url", segment(node), segment(storage)))
        .param("url", &d.url)
        .param("content", &d.content)
        .param("filename", &d.filename)
        .opt_param("checksum", d.checksum.as_ref())
        .opt_param("checksum-algorithm", d.checksum_algorithm.as_ref())
        .opt_param("compression", d.compression.as_ref());
    if let Some(v) = d.verify_certificates {
        r = r.flag("verify-certificates", v);
    }
    r
}

/// `GET /nodes/{node}/storage/{storage}/content[?content=..]`.
pub fn content(node: &str, storage: &str, content: Option<&str>) -> Request {
    Request::get(format!("/nodes/{}/storage/{}/content", segment(node), segment(storage))).opt_param("content", content)
}

/// `DELETE /nodes/{node}/storage/{storage}/content/{volid}`.
pub fn delete_volume(node: &str, storage: &str, volid: &str) -> Request {
    Request::delete(format!("/nodes/{}/storage/{}/content/{}", segment(node), segment(storage), segment(volid)))
}

/// `GET /nodes/{node}/storage`: the node's storages and their content types.
pub fn list(node: &str) -> Request {
    Request::get(format!("/nodes/{}/storage", segment(node)))
}

/// One volume.
#[derive(Clone, Debug, Deserialize)]
pub struct Volume {
    /// `local:iso/talos.iso`
    pub volid: String,
    /// Content type.
    #[serde(default)]
    pub content: String,
    /// Bytes.
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub size: Option<String>,
}

/// One storage of a node.
#[derive(Clone, Debug, Deserialize)]
pub struct StorageInfo {
    /// Storage id.
    pub storage: String,
    /// `dir`, `lvmthin`, ...
    #[serde(default, rename = "type")]
    pub kind: String,
    /// Comma-separated content types.
    #[serde(default)]
    pub content: String,
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn builders() {
        let d = Download {
            url: "https://factory.talos.dev/image/x/v1.11.0/nocloud-amd64.raw".into(),
            content: "import".into(),
            filename: "talos.raw".into(),
            checksum: Some("ab".into()),
            checksum_algorithm: Some("sha256".into()),
            ..Download::default()
        };
        let r = download_url("pve1", "local", &d);
        assert_eq!(r.path, "/nodes/pve1/storage/local/download-url");
        assert!(r.body().unwrap().contains("checksum-algorithm=sha256"));
        assert_eq!(
            delete_volume("pve1", "local", "local:iso/t.iso").path,
            "/nodes/pve1/storage/local/content/local%3Aiso%2Ft.iso"
        );
    }
}
