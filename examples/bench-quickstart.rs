//! The quickstart figures benchmark (needs the `sim` feature;
//! `scripts/bench-quickstart.sh` builds the provider in release mode and
//! runs this). A benchmark that prints its figures, never a timed test.
//!
//! ```text
//! cargo run --example bench-quickstart --features sim -- [--time-scale 0.25]
//!     [--provider-dir target/release] [--poll-ms 250] [--network 127.0.42.0/24]
//!     [--fakepve PATH] [--keep DIR]
//! ```
//! It starts the lab in-process, writes a copy of `examples/quickstart`
//! (endpoint, token and CA through the environment, as
//! `scripts/quickstart.sh` does) with a `dev_overrides` CLI config, runs
//! `terraform init` when the Terraform version needs it, then times
//! `terraform apply -auto-approve` alone. It prints that wall time next to
//! the critical path of the simulated durations in use (fakepve's tasks and
//! the simulator's [`Delays`] × time scale, summed along the quickstart's
//! longest dependency chain), their ratio against the 1.15 target, and the
//! PVE requests (the provider's token only: the lab's reconciler polls with
//! a token of its own) and Talos calls made during the apply and during an
//! empty re-plan (`plan -detailed-exitcode` must exit 0). Then it destroys
//! and stops the lab. Exit 1 when a figure misses its target.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

use proxtalos::lab::{Lab, LabOptions, PveRequest};
use proxtalos::talos::sim::Delays;
use tokio::process::Command;

const USAGE: &str = "usage: bench-quickstart [--time-scale S] [--provider-dir DIR] [--poll-ms N] \
[--network CIDR] [--fakepve PATH] [--keep DIR]";

/// The target: apply wall time ≤ 1.15 × the critical path.
const TARGET: f64 = 1.15;
/// fakepve 0.5.0's download-url task: `pause(5)` PVE seconds
/// (`fakepve/storage.py`, `_download_url`), whatever the size.
const FAKEPVE_DOWNLOAD_SECS: f64 = 5.0;
/// fakepve 0.5.0's VM create has no pause; start pauses `FakeVm.start_secs`,
/// 0 by default (`fakepve/model.py`).
const FAKEPVE_CREATE_START_SECS: f64 = 0.0;

struct Args {
    time_scale: f64,
    provider_dir: PathBuf,
    poll: Duration,
    network: String,
    fakepve: PathBuf,
    keep: Option<PathBuf>,
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        time_scale: 0.25,
        provider_dir: repo_root().join("target/release"),
        poll: LabOptions::new(PathBuf::new()).poll,
        network: "127.0.42.0/24".to_string(),
        fakepve: std::env::var_os("PROXTALOS_FAKEPVE")
            .map(PathBuf::from)
            .unwrap_or_else(|| repo_root().join(".tools/venv-fakepve/bin/fakepve")),
        keep: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value\n{USAGE}"));
        match flag.as_str() {
            "--time-scale" => {
                let v = value()?;
                a.time_scale = v.parse().map_err(|_| format!("--time-scale: not a number: {v:?}"))?;
            }
            "--provider-dir" => a.provider_dir = PathBuf::from(value()?),
            "--poll-ms" => {
                let v = value()?;
                a.poll = Duration::from_millis(v.parse().map_err(|_| format!("--poll-ms: not a number: {v:?}"))?);
            }
            "--network" => a.network = value()?,
            "--fakepve" => a.fakepve = PathBuf::from(value()?),
            "--keep" => a.keep = Some(PathBuf::from(value()?)),
            "-h" | "--help" => return Err(USAGE.to_string()),
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    Ok(a)
}

#[path = "support/terraform.rs"]
mod support;
use support::terraform;

/// One step of the critical path: what, simulated seconds.
struct Step(&'static str, f64);

/// The quickstart's longest dependency chain, from the durations in use:
/// image download → VM create/start → apply (install + reboot) → services
/// up (bootstrap possible) → bootstrap → the other control planes join
/// etcd → health. Everything else (secrets, configs, workers) runs beside it.
fn critical_path(d: &Delays) -> Vec<Step> {
    vec![
        Step("image download (fakepve download-url task)", FAKEPVE_DOWNLOAD_SECS),
        Step("VM create + start (fakepve tasks)", FAKEPVE_CREATE_START_SECS),
        Step("config apply: install (metal ISO)", d.install.as_secs_f64()),
        Step("config apply: reboot", d.reboot.as_secs_f64()),
        Step("services up (bootstrap possible)", d.services.as_secs_f64()),
        Step("bootstrap, then etcd join of cp-2/cp-3 (health)", d.etcd_join.as_secs_f64()),
    ]
}

/// `/api2/json/nodes/pve1/qemu/104/status/current` →
/// `/nodes/pve1/qemu/{vmid}/status/current`; UPIDs and volume ids too.
fn template(path: &str) -> String {
    let p = path.strip_prefix("/api2/json").unwrap_or(path);
    let mut out = Vec::new();
    let mut prev = "";
    for seg in p.split('/').skip(1) {
        if prev == "content" {
            out.push("{volume}");
            break;
        }
        out.push(if seg.starts_with("UPID:") {
            "{upid}"
        } else if !seg.is_empty() && seg.bytes().all(|b| b.is_ascii_digit()) {
            "{vmid}"
        } else {
            seg
        });
        prev = seg;
    }
    format!("/{}", out.join("/"))
}

/// Counts of the provider's requests by `METHOD template`, and how many
/// requests of others (the reconciler) were left out.
fn pve_counts(log: &[PveRequest], token_id: &str) -> (BTreeMap<String, u64>, usize) {
    let mut counts = BTreeMap::new();
    let mut others = 0;
    for r in log {
        if r.token_id == token_id {
            *counts.entry(format!("{} {}", r.method, template(&r.path))).or_default() += 1;
        } else {
            others += 1;
        }
    }
    (counts, others)
}

fn print_counts(title: &str, counts: &BTreeMap<String, u64>, note: &str) {
    let total: u64 = counts.values().sum();
    println!("{title}: {total}{note}");
    for (k, n) in counts {
        println!("  {n:>5}  {k}");
    }
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

/// Runs Terraform in `dir`, output to `dir/<log>.log`; its wall time.
async fn tf(
    bin: &Path,
    dir: &Path,
    env: &[(String, String)],
    args: &[&str],
    log: &str,
) -> Result<(Duration, i32), String> {
    let log_path = dir.join(format!("{log}.log"));
    let out = std::fs::File::create(&log_path).map_err(|e| format!("{}: {e}", log_path.display()))?;
    let err = out.try_clone().map_err(|e| e.to_string())?;
    let mut cmd = Command::new(bin);
    cmd.arg(format!("-chdir={}", dir.display()))
        .args(args)
        .env_remove("TF_LOG")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .kill_on_drop(true);
    let t0 = Instant::now();
    let status = cmd.status().await.map_err(|e| format!("{}: {e}", bin.display()))?;
    Ok((t0.elapsed(), status.code().unwrap_or(-1)))
}

fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

/// Whether this Terraform needs `init` under dev_overrides (as
/// `scripts/quickstart.sh`: Terraform 1.11–1.14 neither needs nor wants
/// it; 1.15+ and OpenTofu do).
fn needs_init(version_line: &str) -> Result<bool, String> {
    let Some(rest) = version_line.strip_prefix("Terraform v1.") else { return Ok(true) };
    let minor: u32 = rest.split('.').next().and_then(|m| m.parse().ok()).unwrap_or(99);
    if minor < 11 {
        return Err(format!("{version_line} is too old: the quickstart needs Terraform >= 1.11"));
    }
    Ok(minor >= 15)
}

async fn run(a: Args) -> Result<bool, String> {
    let tf_bin = terraform()?;
    // dev_overrides wants an absolute directory.
    let provider_dir = std::path::absolute(&a.provider_dir).map_err(|e| e.to_string())?;
    let provider = provider_dir.join("terraform-provider-proxtalos");
    if !provider.is_file() {
        return Err(format!(
            "no provider at {} (scripts/bench-quickstart.sh builds it: cargo build --release)",
            provider.display()
        ));
    }
    let version = std::process::Command::new(&tf_bin)
        .arg("version")
        .output()
        .map_err(|e| format!("{}: {e}", tf_bin.display()))?;
    let version = String::from_utf8_lossy(&version.stdout).lines().next().unwrap_or("").to_string();
    let init = needs_init(&version)?;

    let temp = tempfile::Builder::new().prefix("bench-quickstart").tempdir().map_err(|e| e.to_string())?;
    let work = match &a.keep {
        Some(d) => {
            std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
            d.clone()
        }
        None => temp.path().to_path_buf(),
    };
    let example = repo_root().join("examples/quickstart");
    for f in ["main.tf", "variables.tf", "outputs.tf"] {
        std::fs::copy(example.join(f), work.join(f)).map_err(|e| format!("copy {f}: {e}"))?;
    }
    std::fs::write(
        work.join("terraform.tfvars"),
        format!(
            "# The lab: node pve1, storages local (iso) and local-lvm, bridge vmbr0.\nnetwork_cidr = \"{}\"\nfirst_host   = 11\n",
            a.network
        ),
    )
    .map_err(|e| e.to_string())?;
    let rc = work.join("terraform.tfrc");
    std::fs::write(
        &rc,
        format!(
            "provider_installation {{\n  dev_overrides {{\n    \"registry.terraform.io/proxtalos/proxtalos\" = \"{}\"\n  }}\n  direct {{}}\n}}\n",
            provider_dir.display()
        ),
    )
    .map_err(|e| e.to_string())?;

    let mut o = LabOptions::new(a.fakepve.clone());
    o.port = 0;
    o.time_scale = a.time_scale;
    o.poll = a.poll;
    let load_before = loadavg();
    let lab = Lab::start(o).await.map_err(|e| e.to_string())?;
    let env: Vec<(String, String)> = vec![
        ("TF_CLI_CONFIG_FILE".into(), rc.display().to_string()),
        ("TF_IN_AUTOMATION".into(), "1".into()),
        ("TF_INPUT".into(), "0".into()),
        ("PROXMOX_VE_ENDPOINT".into(), lab.endpoint().to_string()),
        ("PROXMOX_VE_API_TOKEN".into(), lab.api_token().to_string()),
        ("TF_VAR_proxmox_ca_certificate_file".into(), lab.ca_file().display().to_string()),
    ];
    let result = measure(&lab, &tf_bin, &work, &env, init, &a, &version, &load_before).await;

    // Clean up whatever happened: destroy, then stop the lab.
    if work.join("terraform.tfstate").exists() {
        match tf(&tf_bin, &work, &env, &["destroy", "-auto-approve", "-no-color"], "destroy").await {
            Ok((t, 0)) => println!("destroy: {:.2} s", t.as_secs_f64()),
            Ok((_, code)) => eprintln!("destroy failed (exit {code}):\n{}", tail(&work.join("destroy.log"))),
            Err(e) => eprintln!("destroy: {e}"),
        }
    }
    lab.stop().await;
    if a.keep.is_some() {
        println!("work directory kept: {}", work.display());
    }
    result
}

#[allow(clippy::too_many_arguments)]
async fn measure(
    lab: &Lab,
    tf_bin: &Path,
    work: &Path,
    env: &[(String, String)],
    init: bool,
    a: &Args,
    version: &str,
    load_before: &str,
) -> Result<bool, String> {
    if init {
        let (_, code) = tf(tf_bin, work, env, &["init", "-no-color"], "init").await?;
        if code != 0 {
            return Err(format!("terraform init failed:\n{}", tail(&work.join("init.log"))));
        }
    }
    // Only the apply is timed: the lab's setup requests are not its work.
    lab.clear_pve_requests().await.map_err(|e| e.to_string())?;
    lab.sim().reset_calls();
    let (apply, code) = tf(tf_bin, work, env, &["apply", "-auto-approve", "-no-color"], "apply").await?;
    if code != 0 {
        return Err(format!("terraform apply failed (exit {code}):\n{}", tail(&work.join("apply.log"))));
    }
    let load_after = loadavg();
    let apply_log = lab.pve_requests().await.map_err(|e| e.to_string())?;
    let apply_calls = lab.sim().calls();
    lab.clear_pve_requests().await.map_err(|e| e.to_string())?;
    lab.sim().reset_calls();

    let (plan, plan_code) = tf(tf_bin, work, env, &["plan", "-detailed-exitcode", "-no-color"], "replan").await?;
    let plan_log = lab.pve_requests().await.map_err(|e| e.to_string())?;
    let plan_calls = lab.sim().calls();

    let sim = lab.sim().options();
    let scale = sim.time_scale;
    let steps = critical_path(&sim.delays);
    let sim_total: f64 = steps.iter().map(|s| s.1).sum();
    let critical = sim_total * scale;
    let ratio = apply.as_secs_f64() / critical;
    let pass = ratio <= TARGET;

    println!("quickstart apply in the lab ({version}; provider {})", a.provider_dir.display());
    println!(
        "time scale {scale} (real s per simulated s), lab poll {} ms; load average {load_before} before, {load_after} after the apply ({} cores)",
        a.poll.as_millis(),
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0)
    );
    println!("critical path (simulated s -> real s at this scale):");
    for Step(what, secs) in &steps {
        println!("  {what:<50} {secs:>6.1} s -> {:>7.2} s", secs * scale);
    }
    println!("  {:<50} {sim_total:>6.1} s -> {critical:>7.2} s", "total");
    println!("apply wall time: {:.2} s", apply.as_secs_f64());
    println!(
        "ratio: {ratio:.3} (target <= {TARGET}): {}; overhead {:.2} s",
        if pass { "PASS" } else { "FAIL" },
        apply.as_secs_f64() - critical
    );
    let token = lab.api_token_id();
    let (apply_pve, apply_other) = pve_counts(&apply_log, token);
    let (plan_pve, plan_other) = pve_counts(&plan_log, token);
    print_counts(
        "PVE requests during apply",
        &apply_pve,
        &format!(" (the provider's token; {apply_other} lab reconciler requests left out)"),
    );
    print_counts("Talos calls during apply", &apply_calls, "");
    let plan_ok = plan_code == 0;
    println!(
        "re-plan: exit {plan_code} ({}) in {:.2} s",
        if plan_ok { "no changes: PASS" } else { "FAIL: not empty" },
        plan.as_secs_f64()
    );
    print_counts(
        "PVE requests during re-plan",
        &plan_pve,
        &format!(" (the provider's token; {plan_other} lab reconciler requests left out)"),
    );
    print_counts("Talos calls during re-plan", &plan_calls, "");
    if !plan_ok {
        eprintln!("{}", tail(&work.join("replan.log")));
    }
    Ok(pass && plan_ok)
}

#[tokio::main]
async fn main() -> ExitCode {
    let a = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    if !(a.time_scale > 0.0 && a.time_scale.is_finite()) {
        eprintln!("--time-scale must be > 0");
        return ExitCode::from(2);
    }
    match run(a).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("bench-quickstart: {e}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_become_templates() {
        assert_eq!(template("/api2/json/nodes/pve1/qemu/104/status/current"), "/nodes/pve1/qemu/{vmid}/status/current");
        assert_eq!(
            template("/api2/json/nodes/pve1/tasks/UPID:pve1:0000:0001:6000:qmcreate:104:root@pam!lab:/status"),
            "/nodes/pve1/tasks/{upid}/status"
        );
        assert_eq!(
            template("/api2/json/nodes/pve1/storage/local/content/local:iso/t.iso"),
            "/nodes/pve1/storage/local/content/{volume}"
        );
        assert_eq!(template("/api2/json/cluster/resources"), "/cluster/resources");
    }

    #[test]
    fn the_critical_path_is_145_simulated_seconds_by_default() {
        let total: f64 = critical_path(&Delays::default()).iter().map(|s| s.1).sum();
        assert_eq!(total, 145.0);
    }
}
