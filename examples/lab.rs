//! The local lab as a command (needs the `sim` feature; `scripts/lab.sh`
//! builds and runs it): fakepve plus the Talos node simulator on loopback,
//! until Ctrl-C, SIGTERM or `scripts/lab.sh stop`.
//!
//! ```text
//! cargo run --example lab --features sim -- [--port 8006] [--time-scale 0.1]
//!     [--poll-ms 250] [--talos-version v1.13.9] [--leases 127.0.10.200-127.0.10.254]
//!     [--talos-port 50000] [--state-dir .tools/lab] [--fakepve PATH] [--multi-cluster]
//! ```
//! Writes `lab.pid` and, once ready, `lab.env` (PROXMOX_VE_* exports) into
//! the state directory, and removes them (and its CA files) when it stops.

use std::io::Write as _;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use proxtalos::lab::{Lab, LabOptions};
use tokio::signal::unix::{SignalKind, signal};

const USAGE: &str = "usage: lab [--port N] [--time-scale X] [--poll-ms N] [--talos-version vX.Y.Z] \
[--leases FIRST-LAST] [--talos-port N] [--pve-nodes N] [--state-dir DIR] [--fakepve PATH] [--multi-cluster] [--etcd-bin DIR | --model-etcd]";

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn parse_args() -> Result<LabOptions, String> {
    let fakepve = std::env::var_os("PROXTALOS_FAKEPVE")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".tools/venv-fakepve/bin/fakepve"));
    let mut o = LabOptions::new(fakepve);
    o.state_dir = Some(repo_root().join(".tools/lab"));
    // Real etcd under the control planes when scripts/install-etcd.sh ran.
    o.etcd_bin = proxtalos::talos::sim::etcd_member::bin_dir(&repo_root()).ok();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{a} needs a value\n{USAGE}"));
        let bad = |what: &str, v: &str| format!("{a}: not {what}: {v:?}");
        match a.as_str() {
            "--port" => {
                let v = value()?;
                o.port = v.parse().map_err(|_| bad("a port", &v))?;
            }
            "--time-scale" => {
                let v = value()?;
                o.time_scale = v.parse().map_err(|_| bad("a number", &v))?;
            }
            "--poll-ms" => {
                let v = value()?;
                o.poll = Duration::from_millis(v.parse().map_err(|_| bad("milliseconds", &v))?);
            }
            "--talos-version" => o.talos_version = value()?,
            "--talos-port" => {
                let v = value()?;
                o.talos_port = v.parse().map_err(|_| bad("a port", &v))?;
            }
            "--leases" => {
                let v = value()?;
                let (a, b) = v.split_once('-').ok_or_else(|| bad("FIRST-LAST", &v))?;
                let ip = |s: &str| s.parse::<Ipv4Addr>().map_err(|_| bad("FIRST-LAST", &v));
                o.dhcp_pool = (ip(a)?, ip(b)?);
            }
            "--state-dir" => o.state_dir = Some(PathBuf::from(value()?)),
            "--fakepve" => o.fakepve = PathBuf::from(value()?),
            "--pve-nodes" => {
                let n: u8 = value()?.parse().map_err(|_| "--pve-nodes: a number from 1 to 9".to_string())?;
                if !(1..=9).contains(&n) {
                    return Err("--pve-nodes: a number from 1 to 9".to_string());
                }
                o.pve_nodes = (1..=n).map(|i| format!("pve{i}")).collect();
            }
            "--multi-cluster" => o.strict_cluster_identity = false,
            "--etcd-bin" => o.etcd_bin = Some(PathBuf::from(value()?)),
            "--model-etcd" => o.etcd_bin = None,
            "-h" | "--help" => return Err(USAGE.to_string()),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    Ok(o)
}

/// A pid file naming a live process.
fn running_pid(pid_file: &Path) -> Option<u32> {
    let pid: u32 = std::fs::read_to_string(pid_file).ok()?.trim().parse().ok()?;
    Path::new(&format!("/proc/{pid}")).exists().then_some(pid)
}

/// Files the lab writes into its state directory (the log is kept).
const STATE_FILES: &[&str] =
    &["lab.pid", "lab.env", "lab.tmp", "harness.py", "fakepve.crt", "fakepve.key", "fakepve.pem"];

fn clean(dir: &Path) {
    for f in STATE_FILES {
        let _ = std::fs::remove_file(dir.join(f));
    }
}

fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn banner(lab: &Lab, o: &LabOptions, env_file: &Path) -> String {
    let (user, password) = lab.login();
    let (lo, hi) = o.dhcp_pool;
    format!(
        "proxtalos lab ready: fakepve 0.5.0 + Talos node simulator, time scale {ts} (real s per simulated s)

  PVE API     {ep}
  API token   {tok}
  login       {user} / {password}
  CA          {ca}
  PVE nodes   {pn}; storages local (iso, import; its files seen from every node)
              and local-lvm; bridge vmbr0
  Talos       a VM started with a Talos ISO (cdrom) or disk image (file name containing
              `talos` or starting `metal-`/`nocloud-`) gets a node at :{tp} on its
              static ipconfig0 address (ip=ADDRESS/PREFIX), else on a lease
              {lo}-{hi} (reported by the guest agent);
              version from `vX.Y.Z` in the file name, else {tv}
  Factory     {fu} (an Image Factory double: schematics, extension lists)

{block}
Environment (also in {env}):
  export PROXMOX_VE_ENDPOINT={ep_q}
  export PROXMOX_VE_API_TOKEN={tok_q}
  export PROXTALOS_IMAGE_FACTORY_URL={fu}

Stop: Ctrl-C here, or scripts/lab.sh stop
",
        ts = o.time_scale,
        ep = lab.endpoint(),
        tok = lab.api_token(),
        ep_q = sh_quote(lab.endpoint()),
        // Quoted: `!` in an unquoted token is history expansion in bash.
        tok_q = sh_quote(lab.api_token()),
        ca = lab.ca_file().display(),
        tp = o.talos_port,
        tv = o.talos_version,
        fu = lab.factory_url(),
        pn = o.pve_nodes.join(", "),
        block = lab.provider_block(),
        env = env_file.display(),
    )
}

async fn run(o: LabOptions) -> Result<(), String> {
    let dir = o.state_dir.clone().unwrap_or_else(|| repo_root().join(".tools/lab"));
    std::fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    let pid_file = dir.join("lab.pid");
    if let Some(pid) = running_pid(&pid_file) {
        return Err(format!("a lab is already running (pid {pid}); stop it with scripts/lab.sh stop"));
    }
    std::fs::write(&pid_file, format!("{}\n", std::process::id()))
        .map_err(|e| format!("write {}: {e}", pid_file.display()))?;
    // Signals are caught before anything starts, so a stop during start-up
    // still cleans up.
    let mut term = signal(SignalKind::terminate()).map_err(|e| e.to_string())?;
    let mut int = signal(SignalKind::interrupt()).map_err(|e| e.to_string())?;
    let mut hup = signal(SignalKind::hangup()).map_err(|e| e.to_string())?;
    let lab = tokio::select! {
        r = Lab::start(o.clone()) => match r {
            Ok(lab) => lab,
            Err(e) => {
                clean(&dir);
                return Err(e.to_string());
            }
        },
        _ = term.recv() => { clean(&dir); return Err("stopped during start-up".into()) }
        _ = int.recv() => { clean(&dir); return Err("stopped during start-up".into()) }
    };
    let env_file = dir.join("lab.env");
    let env = format!(
        "export PROXMOX_VE_ENDPOINT={}\nexport PROXMOX_VE_API_TOKEN={}\nexport PROXTALOS_IMAGE_FACTORY_URL={}\nexport PROXTALOS_LAB_CA={}\n",
        sh_quote(lab.endpoint()),
        sh_quote(lab.api_token()),
        sh_quote(lab.factory_url()),
        sh_quote(&lab.ca_file().display().to_string())
    );
    if let Err(e) = write_private(&env_file, &env) {
        lab.stop().await;
        clean(&dir);
        return Err(format!("write {}: {e}", env_file.display()));
    }
    println!("{}", banner(&lab, &o, &env_file));
    let _ = std::io::stdout().flush();
    let mut events = lab.subscribe();
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => break,
            e = events.recv() => match e {
                Ok(e) => {
                    println!("[{}] {e}", clock());
                    let _ = std::io::stdout().flush();
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(_) => break,
            },
        }
    }
    println!("stopping the lab ...");
    lab.stop().await;
    clean(&dir);
    println!("lab stopped");
    Ok(())
}

/// `HH:MM:SS` (UTC) for event lines.
fn clock() -> String {
    let s = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    format!("{:02}:{:02}:{:02}", (s / 3600) % 24, (s / 60) % 60, s % 60)
}

/// Writes `text` to `path`, readable by its owner only (it holds the
/// token), whole or not at all: a reader that sees the file sees all of it
/// (written aside, then renamed into place).
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let aside = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&aside)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&aside, path)
}

#[tokio::main]
async fn main() -> ExitCode {
    let o = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("lab: {e}");
            return ExitCode::from(2);
        }
    };
    match run(o).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lab: error: {e}");
            ExitCode::FAILURE
        }
    }
}
