//! The end-to-end test's real-Proxmox mode (docs/guides/real-proxmox-lab.md).
//!
//! With `TF_ACC` set, [`target`] reads the `PROXMOX_VE_*` variables into a
//! [`Target`] (a missing or malformed one is an error naming it; there is no
//! fallback to the embedded lab), and [`run_quickstart`] runs
//! examples/quickstart against it with Terraform: apply, an empty re-plan,
//! the outputs, then destroy — always, also when a step fails — and a check
//! through the PVE API that the VMs are gone. Every lookup goes through a
//! function, so the parser is tested from a map and the embedded lab can be
//! driven through exactly this path.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::fmt;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Output;

use super::terraform::{self, Terraform, Workspace};

/// Runs the test against a real Proxmox when set (and not empty or `0`).
pub const TF_ACC: &str = "TF_ACC";
/// Every variable [`target`] reads, with whether it must be set.
pub const VARIABLES: &[(&str, bool)] = &[
    (TF_ACC, false),
    ("PROXMOX_VE_ENDPOINT", true),
    ("PROXMOX_VE_API_TOKEN", true),
    ("PROXMOX_VE_INSECURE", false),
    ("PROXMOX_VE_ACC_CA_CERTIFICATE_FILE", false),
    ("PROXMOX_VE_ACC_NODE_NAME", true),
    ("PROXMOX_VE_ACC_VM_STORAGE", true),
    ("PROXMOX_VE_ACC_IMAGE_STORAGE", true),
    ("PROXMOX_VE_ACC_BRIDGE", true),
    ("PROXMOX_VE_ACC_NODE_ADDRESSES", true),
    ("PROXMOX_VE_ACC_NODE_PREFIX_LENGTH", true),
    ("PROXMOX_VE_ACC_NODE_GATEWAY", true),
    ("PROXMOX_VE_ACC_NODE_NAMESERVER", false),
];

/// Nodes examples/quickstart creates: 3 control planes, then 2 workers.
pub const NODES: u32 = 5;

/// A variable that is missing or does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VarError {
    /// The variable.
    pub name: &'static str,
    /// What is wrong with it.
    pub problem: String,
}

impl fmt::Display for VarError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "TF_ACC is set, so the end-to-end test runs against a real Proxmox, but {} {} \
             (see docs/guides/real-proxmox-lab.md)",
            self.name, self.problem
        )
    }
}

/// Where the real-lab run goes.
#[derive(Clone, PartialEq, Eq)]
pub struct Target {
    pub endpoint: String,
    pub api_token: String,
    pub insecure: bool,
    pub ca_certificate_file: Option<PathBuf>,
    pub node: String,
    pub vm_storage: String,
    pub image_storage: String,
    pub bridge: String,
    /// First and last node address, inclusive.
    pub addresses: (Ipv4Addr, Ipv4Addr),
    pub prefix_length: u8,
    pub gateway: Ipv4Addr,
    pub nameserver: Ipv4Addr,
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Target")
            .field("endpoint", &self.endpoint)
            .field("api_token", &"<redacted>")
            .field("node", &self.node)
            .field("addresses", &self.addresses)
            .finish_non_exhaustive()
    }
}

fn bad(name: &'static str, problem: impl Into<String>) -> VarError {
    VarError { name, problem: problem.into() }
}

/// `None` without `TF_ACC` (the embedded lab), else the target the
/// variables name, or the first variable that is missing or malformed.
pub fn target(get: &dyn Fn(&str) -> Option<String>) -> Result<Option<Target>, VarError> {
    match get(TF_ACC).as_deref().map(str::trim) {
        None | Some("") | Some("0") => return Ok(None),
        Some(_) => {}
    }
    let required = |name: &'static str| -> Result<String, VarError> {
        get(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty()).ok_or_else(|| bad(name, "is not set"))
    };
    let optional = |name: &'static str| get(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
    let ident = |name: &'static str| -> Result<String, VarError> {
        let v = required(name)?;
        if v.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')) {
            Ok(v)
        } else {
            Err(bad(name, format!("is {v:?}: a name of letters, digits, '-', '_' and '.' was expected")))
        }
    };
    let ipv4 = |name: &'static str, v: &str| -> Result<Ipv4Addr, VarError> {
        v.trim().parse().map_err(|_| bad(name, format!("is {v:?}: an IPv4 address was expected")))
    };

    let endpoint = required("PROXMOX_VE_ENDPOINT")?;
    let rest = endpoint.strip_prefix("https://").unwrap_or_default();
    if rest.is_empty() || rest.starts_with('/') || rest.contains(char::is_whitespace) {
        return Err(bad("PROXMOX_VE_ENDPOINT", format!("is {endpoint:?}: an https:// URL was expected")));
    }
    let api_token = required("PROXMOX_VE_API_TOKEN")?;
    let well_formed = api_token.split_once('!').and_then(|(user, rest)| {
        let (id, secret) = rest.split_once('=')?;
        (user.contains('@') && !id.is_empty() && !secret.is_empty()).then_some(())
    });
    if well_formed.is_none() {
        // Never echo the token: it is a secret.
        return Err(bad("PROXMOX_VE_API_TOKEN", "is not of the form USER@REALM!TOKENID=SECRET"));
    }
    let insecure = match optional("PROXMOX_VE_INSECURE").map(|v| v.to_ascii_lowercase()).as_deref() {
        None | Some("0" | "false" | "no") => false,
        Some("1" | "true" | "yes") => true,
        Some(v) => return Err(bad("PROXMOX_VE_INSECURE", format!("is {v:?}: true or false was expected"))),
    };
    let ca_certificate_file = match optional("PROXMOX_VE_ACC_CA_CERTIFICATE_FILE") {
        None => None,
        Some(p) => {
            let pem = std::fs::read_to_string(&p).map_err(|e| {
                bad("PROXMOX_VE_ACC_CA_CERTIFICATE_FILE", format!("is {p:?}, which cannot be read: {e}"))
            })?;
            if !pem.contains("-----BEGIN CERTIFICATE-----") {
                return Err(bad(
                    "PROXMOX_VE_ACC_CA_CERTIFICATE_FILE",
                    format!("is {p:?}, which holds no PEM certificate"),
                ));
            }
            Some(PathBuf::from(p))
        }
    };
    let node = ident("PROXMOX_VE_ACC_NODE_NAME")?;
    let vm_storage = ident("PROXMOX_VE_ACC_VM_STORAGE")?;
    let image_storage = ident("PROXMOX_VE_ACC_IMAGE_STORAGE")?;
    let bridge = ident("PROXMOX_VE_ACC_BRIDGE")?;

    const RANGE: &str = "PROXMOX_VE_ACC_NODE_ADDRESSES";
    let range = required(RANGE)?;
    let Some((a, b)) = range.split_once('-') else {
        return Err(bad(RANGE, format!("is {range:?}: FIRST-LAST was expected, e.g. 192.168.10.200-192.168.10.209")));
    };
    let (first, last) = (ipv4(RANGE, a)?, ipv4(RANGE, b)?);
    if u32::from(last) < u32::from(first) {
        return Err(bad(RANGE, format!("is {range:?}: the last address comes before the first")));
    }
    if u32::from(last) - u32::from(first) + 1 < NODES {
        return Err(bad(RANGE, format!("is {range:?}: it must hold at least {NODES} addresses, one per node")));
    }

    const PREFIX: &str = "PROXMOX_VE_ACC_NODE_PREFIX_LENGTH";
    let p = required(PREFIX)?;
    let prefix_length = p
        .parse::<u8>()
        .ok()
        .filter(|n| (8..=30).contains(n))
        .ok_or_else(|| bad(PREFIX, format!("is {p:?}: a prefix length from 8 to 30 was expected")))?;
    let net = |ip: Ipv4Addr| u32::from(ip) & (u32::MAX << (32 - prefix_length));
    let network = net(first);
    let broadcast = network | !(u32::MAX << (32 - prefix_length));
    if net(last) != network {
        return Err(bad(RANGE, format!("is {range:?}: first and last are not in the same /{prefix_length} network")));
    }
    let used = (u32::from(first), u32::from(first) + NODES - 1);
    if used.0 == network || used.1 >= broadcast {
        return Err(bad(
            RANGE,
            format!("is {range:?}: it holds the network or broadcast address of its /{prefix_length}"),
        ));
    }

    const GATEWAY: &str = "PROXMOX_VE_ACC_NODE_GATEWAY";
    let gateway = ipv4(GATEWAY, &required(GATEWAY)?)?;
    if net(gateway) != network {
        return Err(bad(
            GATEWAY,
            format!("is {gateway}, outside the nodes' network {}/{prefix_length}", Ipv4Addr::from(network)),
        ));
    }
    if (used.0..=used.1).contains(&u32::from(gateway)) {
        return Err(bad(GATEWAY, format!("is {gateway}, one of the node addresses")));
    }
    const NAMESERVER: &str = "PROXMOX_VE_ACC_NODE_NAMESERVER";
    let nameserver = match optional(NAMESERVER) {
        Some(v) => ipv4(NAMESERVER, &v)?,
        None => gateway,
    };

    Ok(Some(Target {
        endpoint,
        api_token,
        insecure,
        ca_certificate_file,
        node,
        vm_storage,
        image_storage,
        bridge,
        addresses: (first, last),
        prefix_length,
        gateway,
        nameserver,
    }))
}

impl Target {
    /// examples/quickstart's `network_cidr`: the nodes' network.
    pub fn network_cidr(&self) -> String {
        let mask = u32::MAX << (32 - self.prefix_length);
        format!("{}/{}", Ipv4Addr::from(u32::from(self.addresses.0) & mask), self.prefix_length)
    }

    /// examples/quickstart's `first_host`: the first address's host number.
    pub fn first_host(&self) -> u32 {
        u32::from(self.addresses.0) & !(u32::MAX << (32 - self.prefix_length))
    }

    /// The addresses the quickstart gives its nodes, in order.
    pub fn node_addresses(&self) -> Vec<String> {
        (0..NODES).map(|i| Ipv4Addr::from(u32::from(self.addresses.0) + i).to_string()).collect()
    }

    /// examples/quickstart's variables, but the token (which goes in the
    /// environment, never in a file).
    pub fn tfvars(&self) -> String {
        let mut v = format!(
            "proxmox_endpoint = {:?}\nproxmox_insecure = {}\nproxmox_node     = {:?}\n\
             vm_storage       = {:?}\niso_storage      = {:?}\nbridge           = {:?}\n\
             network_cidr     = {:?}\nfirst_host       = {}\ngateway          = {:?}\n\
             dns_servers      = [{:?}]\ncluster_name     = {:?}\n",
            self.endpoint,
            self.insecure,
            self.node,
            self.vm_storage,
            self.image_storage,
            self.bridge,
            self.network_cidr(),
            self.first_host(),
            self.gateway.to_string(),
            self.nameserver.to_string(),
            CLUSTER,
        );
        if let Some(ca) = &self.ca_certificate_file {
            v.push_str(&format!("proxmox_ca_certificate_file = {:?}\n", ca.display().to_string()));
        }
        v
    }

    /// A PVE client with the target's endpoint, token and TLS settings.
    pub fn client(&self) -> proxtalos::proxmox::Client {
        use proxtalos::proxmox::{Client, ClientOptions, Credentials, ReqwestTransport, Secret, TlsSettings};
        let ca_pem = self.ca_certificate_file.as_ref().map(|p| std::fs::read_to_string(p).unwrap());
        let tls = TlsSettings {
            endpoint: self.endpoint.clone(),
            insecure: self.insecure,
            ca_pem,
            timeout: std::time::Duration::from_secs(60),
        };
        let transport = ReqwestTransport::new(&tls).unwrap();
        Client::new(
            Box::new(transport),
            Credentials::ApiToken(Secret::new(self.api_token.clone())),
            ClientOptions::default(),
        )
    }
}

/// The quickstart's `cluster_name` in a test run (VM names start with it).
pub const CLUSTER: &str = "proxtalos-e2e";

/// What a run saw (for the caller's own checks).
#[derive(Debug)]
pub struct Report {
    /// The VMIDs the quickstart created (all gone afterwards).
    pub vm_ids: Vec<u32>,
}

/// A Terraform the quickstart supports (>= 1.11, or OpenTofu).
pub fn quickstart_terraform() -> Terraform {
    terraform::terraforms()
        .iter()
        .find(|t| t.tofu || t.at_least(1, 11))
        .cloned()
        .expect("examples/quickstart needs Terraform >= 1.11 or OpenTofu (set PROXTALOS_TF)")
}

/// Destroys what the workspace holds when dropped, unless disarmed: a step
/// that fails (a panicking assertion) still leaves nothing behind.
struct DestroyGuard<'a> {
    ws: &'a Workspace,
    token: &'a str,
    armed: bool,
}

impl Drop for DestroyGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            eprintln!("real lab: a step failed; destroying what was created");
            let out = tf(self.ws, self.token, &["destroy", "-auto-approve", "-no-color"]);
            if !out.status.success() {
                eprintln!("real lab: destroy failed:\n{}", text(&out));
                keep_state(self.ws);
            }
        }
    }
}

/// The workspace dies with the test: its configuration and state go where
/// a later `terraform destroy` (or a person) can find them.
fn keep_state(ws: &Workspace) {
    let keep = std::env::temp_dir().join(format!("proxtalos-e2e-leftover-{}", std::process::id()));
    let copied = std::fs::create_dir_all(&keep).is_ok()
        && std::fs::read_dir(ws.work()).into_iter().flatten().flatten().all(|e| {
            let p = e.path();
            !p.is_file() || std::fs::copy(&p, keep.join(e.file_name())).is_ok()
        });
    if copied {
        eprintln!(
            "real lab: the configuration and state are in {} (with the token in TF_VAR_proxmox_api_token, \
             `terraform destroy` there removes what is left; see the guide's \"Cleaning up\")",
            keep.display()
        );
    } else {
        eprintln!("real lab: could not keep the state; remove the VMs by hand (see the guide's \"Cleaning up\")");
    }
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// Terraform in the workspace: the token in the environment only, and no
/// connection settings of the caller's that could override the target's.
fn tf(ws: &Workspace, token: &str, args: &[&str]) -> Output {
    let mut c = ws.command(args);
    for v in [
        "PROXMOX_VE_ENDPOINT",
        "PROXMOX_VE_API_TOKEN",
        "PROXMOX_VE_USERNAME",
        "PROXMOX_VE_PASSWORD",
        "PROXMOX_VE_INSECURE",
    ] {
        c.env_remove(v);
    }
    c.env("TF_VAR_proxmox_api_token", token).output().expect("run terraform")
}

fn tf_ok(ws: &Workspace, token: &str, args: &[&str]) -> String {
    let out = tf(ws, token, args);
    let t = text(&out);
    assert!(out.status.success(), "terraform {} failed:\n{t}", args.join(" "));
    t
}

/// examples/quickstart against `target` with the provider at
/// `provider_bin`: init (where needed), apply, empty re-plan, outputs,
/// destroy; then the VMs must be gone from the PVE API.
pub fn run_quickstart(target: &Target, provider_bin: &Path) -> Report {
    let tfb = quickstart_terraform();
    let ws = Workspace::new(&tfb, "registry.terraform.io/proxtalos/proxtalos", provider_bin);
    let examples = terraform::repo_root().join("examples/quickstart");
    for e in std::fs::read_dir(&examples).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "tf") {
            std::fs::copy(&p, ws.work().join(p.file_name().unwrap())).unwrap();
        }
    }
    std::fs::write(ws.work().join("terraform.tfvars"), target.tfvars()).unwrap();
    let token = target.api_token.as_str();
    if tfb.needs_init() {
        tf_ok(&ws, token, &["init", "-no-color"]);
    }

    let mut guard = DestroyGuard { ws: &ws, token, armed: true };
    // The apply runs with TF_LOG=trace: Terraform's log and the provider's
    // stderr (which Terraform writes into it) must hold no secret.
    let trace = ws.work().join("trace.log");
    let out = ws
        .command(&["apply", "-auto-approve", "-no-color"])
        .env("TF_LOG", "trace")
        .env("TF_LOG_PATH", &trace)
        .env("TF_VAR_proxmox_api_token", token)
        .env_remove("PROXMOX_VE_API_TOKEN")
        .env_remove("PROXMOX_VE_ENDPOINT")
        .output()
        .expect("run terraform");
    let apply = text(&out);
    assert!(out.status.success(), "terraform apply failed:\n{apply}");
    assert!(apply.contains("Apply complete! Resources: 14 added, 0 changed, 0 destroyed."), "{apply}");
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(ws.work().join("terraform.tfstate")).unwrap()).unwrap();
    let mut secrets = state_secrets(&state);
    if let Some((_, secret)) = token.split_once('=') {
        secrets.insert("the PVE token secret".to_string(), secret.to_string());
    }
    let log = std::fs::read_to_string(&trace).unwrap_or_default();
    let hits: Vec<&String> = secrets
        .iter()
        .filter(|(_, v)| log.contains(v.as_str()) || apply.contains(v.as_str()))
        .map(|(k, _)| k)
        .collect();
    eprintln!(
        "secret scan: {} secret strings from the state, {} lines of TF_LOG=trace, {} hits",
        secrets.len(),
        log.lines().count(),
        hits.len()
    );
    assert!(log.lines().count() > 1000, "the trace log was written");
    assert!(hits.is_empty(), "secrets in the trace log or the output (by where they are in state): {hits:?}");
    let out = tf(&ws, token, &["plan", "-detailed-exitcode", "-no-color"]);
    assert_eq!(out.status.code(), Some(0), "the second plan is not empty:\n{}", text(&out));

    let outputs: serde_json::Value =
        serde_json::from_str(&tf_ok(&ws, token, &["output", "-json", "-no-color"])).expect("terraform output -json");
    let value = |k: &str| outputs[k]["value"].clone();
    let addrs = target.node_addresses();
    assert_eq!(value("control_plane_addresses"), serde_json::json!(addrs[..3]), "{outputs}");
    assert_eq!(value("worker_addresses"), serde_json::json!(addrs[3..]), "{outputs}");
    let endpoint = format!("https://{}:6443", addrs[0]);
    assert_eq!(value("kubernetes_endpoint"), serde_json::json!(endpoint));
    let stages = value("health");
    for stage in ["apid", "services"] {
        assert!(stages.as_array().is_some_and(|s| s.iter().any(|x| x == stage)), "health stage {stage}: {stages}");
    }
    let vm_ids: Vec<u32> = value("vm_ids")
        .as_object()
        .map(|m| m.values().filter_map(|v| v.as_u64()).map(|v| v as u32).collect())
        .unwrap_or_default();
    assert_eq!(vm_ids.len(), NODES as usize, "{outputs}");
    let kubeconfig = value("kubeconfig");
    assert!(kubeconfig.as_str().is_some_and(|k| k.contains(&format!("server: {endpoint}"))), "kubeconfig server");
    let talosconfig = value("talosconfig");
    assert!(talosconfig.as_str().is_some_and(|t| t.contains(&format!("context: {CLUSTER}"))), "talosconfig context");

    let destroy = tf_ok(&ws, token, &["destroy", "-auto-approve", "-no-color"]);
    guard.armed = false;
    assert!(destroy.contains("Destroy complete! Resources: 14 destroyed."), "{destroy}");

    // What the hypervisor shows: none of the quickstart's VMs is left.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let listed = rt
        .block_on(target.client().execute(&proxtalos::proxmox::cluster::vm_resources()))
        .expect("listing the VMs on the PVE API");
    let left: Vec<u64> = listed
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v["vmid"].as_u64().or_else(|| v["vmid"].as_str()?.parse().ok()))
                .filter(|id| vm_ids.contains(&(*id as u32)))
                .collect()
        })
        .unwrap_or_default();
    assert!(left.is_empty(), "VMs left after destroy: {left:?}");
    Report { vm_ids }
}

/// Every secret string of a state file (format 4), named by where it is
/// (`address.attribute#n`, never by value): the string leaves of each
/// sensitive attribute, each PEM block's body lines, the PEM text inside a
/// base64 leaf, and the long tokens of multi-line text (a kubeconfig's
/// embedded keys, a `secrets.yaml`). URLs are left out: a kubeconfig's
/// server address sits in a sensitive attribute but is no secret.
pub fn state_secrets(state: &serde_json::Value) -> std::collections::BTreeMap<String, String> {
    use base64::Engine as _;
    fn leaves<'a>(v: &'a serde_json::Value, out: &mut Vec<&'a str>) {
        match v {
            serde_json::Value::String(s) => out.push(s),
            serde_json::Value::Array(a) => a.iter().for_each(|x| leaves(x, out)),
            serde_json::Value::Object(m) => m.values().for_each(|x| leaves(x, out)),
            _ => {}
        }
    }
    let mut found = std::collections::BTreeMap::new();
    for r in state["resources"].as_array().into_iter().flatten() {
        let address = format!("{}.{}", r["type"].as_str().unwrap_or(""), r["name"].as_str().unwrap_or(""));
        for inst in r["instances"].as_array().into_iter().flatten() {
            let attrs = &inst["attributes"];
            let sensitive: std::collections::BTreeSet<&str> = inst["sensitive_attributes"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|p| p.as_array()?.first()?["value"].as_str())
                .collect();
            for name in sensitive {
                let mut strings = Vec::new();
                leaves(&attrs[name], &mut strings);
                let mut forms: Vec<String> = Vec::new();
                for s in strings {
                    forms.push(s.to_string());
                    let decoded = base64::engine::general_purpose::STANDARD
                        .decode(s.trim())
                        .ok()
                        .and_then(|b| String::from_utf8(b).ok());
                    for text in [Some(s.to_string()), decoded].into_iter().flatten() {
                        for piece in text.split(|c: char| c.is_whitespace() || c == '"' || c == ':') {
                            if piece.len() >= 24 && !piece.starts_with("-----") && !piece.contains("://") {
                                forms.push(piece.to_string());
                            }
                        }
                    }
                }
                // Addresses (a kubeconfig's `host`) are not secrets.
                for (i, f) in forms.into_iter().filter(|f| f.len() >= 16 && !f.contains("://")).enumerate() {
                    found.entry(format!("{address}.{name}#{i}")).or_insert(f);
                }
            }
        }
    }
    found
}

/// An embedded lab on `net` (three octets, e.g. `127.20.31`; DHCP from
/// `.200`, node addresses `.21`–`.30`, gateway `.1`), started on its own
/// runtime, and the [`Target`] the real-lab variables would name for it: the
/// real-lab path driven against the embedded lab.
pub fn embedded(net: &str) -> (tokio::runtime::Runtime, proxtalos::lab::Lab, Target) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let mut options = proxtalos::lab::LabOptions::fast(super::fakepve::launcher());
    options.dhcp_pool = (format!("{net}.200").parse().unwrap(), format!("{net}.210").parse().unwrap());
    let lab = rt.block_on(proxtalos::lab::Lab::start(options)).unwrap();
    let vars: std::collections::BTreeMap<&str, String> = std::collections::BTreeMap::from([
        (TF_ACC, "1".to_string()),
        ("PROXMOX_VE_ENDPOINT", lab.endpoint().to_string()),
        ("PROXMOX_VE_API_TOKEN", lab.api_token().to_string()),
        ("PROXMOX_VE_ACC_CA_CERTIFICATE_FILE", lab.ca_file().display().to_string()),
        ("PROXMOX_VE_ACC_NODE_NAME", "pve1".to_string()),
        ("PROXMOX_VE_ACC_VM_STORAGE", "local-lvm".to_string()),
        ("PROXMOX_VE_ACC_IMAGE_STORAGE", "local".to_string()),
        ("PROXMOX_VE_ACC_BRIDGE", "vmbr0".to_string()),
        ("PROXMOX_VE_ACC_NODE_ADDRESSES", format!("{net}.21-{net}.30")),
        ("PROXMOX_VE_ACC_NODE_PREFIX_LENGTH", "24".to_string()),
        ("PROXMOX_VE_ACC_NODE_GATEWAY", format!("{net}.1")),
    ]);
    let target = target(&|k| vars.get(k).cloned()).unwrap().expect("TF_ACC is set");
    (rt, lab, target)
}
