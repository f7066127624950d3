//! fakepve on loopback for integration tests.
//!
//! [`FakePve::start`] runs `src/lab/harness.py` (our own code, the lab's harness)
//! with the Python of the fakepve venv (`$PROXTALOS_FAKEPVE`, else installed
//! by `scripts/install-fakepve.sh`). The fake listens on 127.0.0.1 with a
//! free port and a certificate the client verifies as its CA. Commands go
//! over the harness's stdin (JSON lines) for fault injection and state.
//! Dropping the value kills the process: tests stop what they start.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use proxtalos::proxmox::{Client, ClientOptions, Credentials, ReqwestTransport, TlsSettings};

use serde_json::{Value, json};

/// The fakepve launcher (`.../bin/fakepve`), installed on first use.
pub fn launcher() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(p) = std::env::var_os("PROXTALOS_FAKEPVE") {
            return PathBuf::from(p);
        }
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let out = Command::new("bash")
            .arg(root.join("scripts/install-fakepve.sh"))
            .stderr(Stdio::inherit())
            .output()
            .expect("run scripts/install-fakepve.sh");
        assert!(out.status.success(), "install-fakepve.sh failed");
        PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
    })
    .clone()
}

/// A running fake.
pub struct FakePve {
    child: Child,
    io: Mutex<(ChildStdin, BufReader<ChildStdout>)>,
    /// `https://127.0.0.1:PORT`
    pub url: String,
    /// The certificate (PEM) to trust.
    pub ca_pem: String,
    _dir: tempfile::TempDir,
}

impl FakePve {
    /// A PVE client that trusts this fake's certificate.
    pub fn client(&self, creds: Credentials, options: ClientOptions) -> Client {
        let t = ReqwestTransport::new(&TlsSettings {
            endpoint: self.url.clone(),
            insecure: false,
            ca_pem: Some(self.ca_pem.clone()),
            timeout: Duration::from_secs(30),
        })
        .unwrap();
        Client::new(Box::new(t), creds, options)
    }

    /// The `terraform` block and a `provider "proxtalos"` block for this
    /// fake: `source` is the provider's source address, `auth` the
    /// credentials line(s) (`api_token = "..."`, or username and password),
    /// and the CA is read from `ca.pem` beside the configuration.
    pub fn provider_header(&self, source: &str, auth: &str) -> String {
        format!(
            r#"terraform {{
  required_providers {{
    proxtalos = {{ source = "{source}" }}
  }}
}}

provider "proxtalos" {{
  proxmox {{
    endpoint       = "{url}"
    {auth}
    ca_certificate = file("${{path.module}}/ca.pem")
  }}
}}
"#,
            url = self.url
        )
    }

    /// Starts a fake with `time_scale` 0.01 (tasks pass through `running`).
    pub fn start() -> FakePve {
        FakePve::start_with(0.01)
    }

    /// Starts a fake with the given time scale.
    pub fn start_with(time_scale: f64) -> FakePve {
        let bin = launcher();
        let python = bin.with_file_name("python");
        let harness = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/lab/harness.py");
        let dir = tempfile::Builder::new().prefix("fakepve").tempdir().expect("tempdir");
        let mut child = Command::new(python)
            .arg(harness)
            .arg("--host")
            .arg("127.0.0.1")
            .arg("--port")
            .arg("0")
            .arg("--certdir")
            .arg(dir.path())
            .arg("--time-scale")
            .arg(time_scale.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start fakepve harness");
        let stdin = child.stdin.take().expect("stdin");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        stdout.read_line(&mut line).expect("read READY");
        let mut parts = line.split_whitespace();
        assert_eq!(parts.next(), Some("READY"), "fakepve did not start: {line:?}");
        let url = parts.next().expect("url").to_string();
        let ca_pem = std::fs::read_to_string(parts.next().expect("ca file")).expect("read ca");
        FakePve { child, io: Mutex::new((stdin, stdout)), url, ca_pem, _dir: dir }
    }

    /// Sends a harness command and returns its result (panics on error).
    pub fn cmd(&self, cmd: Value) -> Value {
        let mut io = self.io.lock().unwrap();
        writeln!(io.0, "{cmd}").expect("write command");
        io.0.flush().expect("flush");
        let mut line = String::new();
        io.1.read_line(&mut line).expect("read answer");
        let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("bad answer {line:?}: {e}"));
        assert_eq!(v["ok"], true, "fakepve command {cmd} failed: {v}");
        v["result"].clone()
    }

    /// A workspace for the provider binary against this fake, with `ca.pem`
    /// beside the configuration and an API token `token_id` (a fixed
    /// secret). Returns the workspace, the token and the `terraform` and
    /// `provider` blocks that use it.
    pub fn workspace(
        &self,
        tf: &super::terraform::Terraform,
        token_id: &str,
    ) -> (super::terraform::Workspace, String, String) {
        let bin = super::terraform::build_provider("bin", "terraform-provider-proxtalos");
        let ws = super::terraform::Workspace::new(tf, "registry.terraform.io/proxtalos/proxtalos", &bin);
        std::fs::write(ws.work().join("ca.pem"), &self.ca_pem).unwrap();
        let token = self.token(token_id, "3b0f2a1c-0000-4000-8000-0000000f1e1d");
        let header = self.provider_header("proxtalos/proxtalos", &format!("api_token = {token:?}"));
        (ws, token, header)
    }

    /// The `terraform` and `provider` blocks for root@pam with its password
    /// (what PVE keeps some settings for).
    pub fn root_header(&self) -> String {
        self.provider_header("proxtalos/proxtalos", "username = \"root@pam\"\n    password = \"secret\"")
    }

    /// Adds an API token; returns `USER@REALM!ID=SECRET`.
    pub fn token(&self, id: &str, secret: &str) -> String {
        self.cmd(json!({"op": "token", "id": id, "secret": secret}));
        format!("{id}={secret}")
    }

    /// Injects a failure (`pve.fail(method, suffix, status, message, times=)`).
    pub fn fail(
        &self,
        method: &str,
        suffix: &str,
        status: Option<u16>,
        message: Option<&str>,
        error: Option<&str>,
        times: u32,
    ) {
        self.cmd(json!({"op": "fail", "method": method, "suffix": suffix, "status": status, "message": message, "error": error, "times": times}));
    }

    /// Every request so far as `(method, path)` (the harness also returns
    /// each one's User-Agent and token id: [`FakePve::requests_by`]).
    pub fn requests(&self) -> Vec<(String, String)> {
        let v = self.cmd(json!({"op": "requests"}));
        v.as_array()
            .map(|a| {
                a.iter()
                    .map(|r| (r[0].as_str().unwrap_or("").to_string(), r[1].as_str().unwrap_or("").to_string()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Every request so far as `(method, path, user agent, token id)`.
    pub fn requests_by(&self) -> Vec<[String; 4]> {
        let v = self.cmd(json!({"op": "requests"}));
        let s = |r: &Value, i: usize| r[i].as_str().unwrap_or("").to_string();
        v.as_array().map(|a| a.iter().map(|r| [s(r, 0), s(r, 1), s(r, 2), s(r, 3)]).collect()).unwrap_or_default()
    }

    /// Forgets the recorded requests.
    pub fn clear_requests(&self) {
        self.cmd(json!({"op": "clear_requests"}));
    }

    /// Every VMID the fake holds.
    pub fn vmids(&self) -> Vec<u64> {
        self.cmd(json!({"op": "vmids"}))
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_u64).collect())
            .unwrap_or_default()
    }
}

impl Drop for FakePve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
