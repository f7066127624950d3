//! Sans-IO requests: what to send, built without sending it (kube-core's
//! `request.rs` shape). Each API area has a module of builder functions
//! returning [`Request`]; the [`Client`](super::Client) executes them.

use std::fmt;

/// An HTTP method PVE uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// GET
    Get,
    /// POST
    Post,
    /// PUT
    Put,
    /// DELETE
    Delete,
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
        })
    }
}

/// Whether sending a request twice can do harm, which decides retries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Reads only.
    Safe,
    /// Sending it twice leaves the same result (power actions, config
    /// values, deletes).
    Idempotent,
    /// Sending it twice may do the work twice (create, clone, download).
    Once,
}

/// One API call: method, path under `/api2/json`, query and form body.
/// Its `Debug` names the form parameters but shows none of their values
/// (a login's password, a VM's `cipassword`, a download URL's token).
#[derive(Clone, PartialEq, Eq)]
pub struct Request {
    /// The method.
    pub method: Method,
    /// The path under `/api2/json`, already percent-encoded per segment.
    pub path: String,
    /// Query parameters (GET/DELETE).
    pub query: Vec<(String, String)>,
    /// Form parameters (POST/PUT).
    pub form: Vec<(String, String)>,
    /// What sending it twice would do.
    pub effect: Effect,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names = |kv: &[(String, String)]| kv.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>();
        f.debug_struct("Request")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("query", &names(&self.query))
            .field("form", &names(&self.form))
            .field("effect", &self.effect)
            .finish()
    }
}

/// Characters escaped inside one path segment: everything but unreserved.
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.');

/// Percent-encodes one path segment (a node, a UPID, a volume id).
pub fn segment(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, SEGMENT).to_string()
}

impl Request {
    fn new(method: Method, path: String, effect: Effect) -> Request {
        Request { method, path, query: Vec::new(), form: Vec::new(), effect }
    }

    /// A GET.
    pub fn get(path: impl Into<String>) -> Request {
        Request::new(Method::Get, path.into(), Effect::Safe)
    }

    /// A POST that must not be sent twice blindly.
    pub fn post(path: impl Into<String>) -> Request {
        Request::new(Method::Post, path.into(), Effect::Once)
    }

    /// A PUT (idempotent).
    pub fn put(path: impl Into<String>) -> Request {
        Request::new(Method::Put, path.into(), Effect::Idempotent)
    }

    /// A DELETE (idempotent).
    pub fn delete(path: impl Into<String>) -> Request {
        Request::new(Method::Delete, path.into(), Effect::Idempotent)
    }

    /// Overrides the effect.
    pub fn effect(mut self, e: Effect) -> Request {
        self.effect = e;
        self
    }

    /// Adds a parameter: to the query for GET/DELETE, else to the form.
    pub fn param(mut self, k: impl Into<String>, v: impl ToString) -> Request {
        let pair = (k.into(), v.to_string());
        match self.method {
            Method::Get | Method::Delete => self.query.push(pair),
            Method::Post | Method::Put => self.form.push(pair),
        }
        self
    }

    /// Adds a parameter when `v` is `Some`.
    pub fn opt_param(self, k: impl Into<String>, v: Option<impl ToString>) -> Request {
        match v {
            Some(v) => self.param(k, v),
            None => self,
        }
    }

    /// Adds a `0`/`1` parameter.
    pub fn flag(self, k: impl Into<String>, v: bool) -> Request {
        self.param(k, if v { "1" } else { "0" })
    }

    /// The path with its encoded query string.
    pub fn path_and_query(&self) -> String {
        if self.query.is_empty() {
            return self.path.clone();
        }
        let q = form_urlencoded::Serializer::new(String::new()).extend_pairs(&self.query).finish();
        format!("{}?{q}", self.path)
    }

    /// The `application/x-www-form-urlencoded` body (`+` encoded as `%2B`),
    /// or `None` when there are no form parameters.
    pub fn body(&self) -> Option<String> {
        if self.form.is_empty() {
            return None;
        }
        Some(form_urlencoded::Serializer::new(String::new()).extend_pairs(&self.form).finish())
    }

    /// `POST /nodes/pve1/qemu`, for messages and logs (no parameters, so
    /// never a secret).
    pub fn describe(&self) -> String {
        format!("{} {}", self.method, self.path)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn encoding() {
        let r = Request::put("/nodes/pve1/qemu/100/resize").param("disk", "scsi0").param("size", "+10G");
        assert_eq!(r.body().as_deref(), Some("disk=scsi0&size=%2B10G"));
        let r = Request::post("/x").param("net0", "virtio=BC:24:11:00:00:01,bridge=vmbr0,tag=5");
        assert_eq!(r.body().as_deref(), Some("net0=virtio%3DBC%3A24%3A11%3A00%3A00%3A01%2Cbridge%3Dvmbr0%2Ctag%3D5"));
        let r = Request::delete("/nodes/pve1/qemu/100").flag("purge", true).flag("destroy-unreferenced-disks", true);
        assert_eq!(r.path_and_query(), "/nodes/pve1/qemu/100?purge=1&destroy-unreferenced-disks=1");
        assert_eq!(r.body(), None);
        assert_eq!(
            segment("UPID:pve1:0A:0B:0C:qmcreate:100:root@pam!tf:"),
            "UPID%3Apve1%3A0A%3A0B%3A0C%3Aqmcreate%3A100%3Aroot%40pam%21tf%3A"
        );
        assert_eq!(segment("local:iso/talos.iso"), "local%3Aiso%2Ftalos.iso");
    }
}
