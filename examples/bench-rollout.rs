//! The rollout figures benchmark (issue 14; needs the `sim` feature;
//! `scripts/bench-rollout.sh` builds the provider in release mode and runs
//! this). A benchmark that prints its figures, never a timed test.
//!
//! ```text
//! cargo run --example bench-rollout --features sim -- [--time-scale 0.25]
//!     [--provider-dir target/release] [--network 127.0.43] [--big 50]
//! ```
//! 1. A 3 + 2 `proxtalos_cluster` on simulated nodes (Talos v1.13.9) is
//!    created, then `talos_version = "v1.14.0"` is applied and timed. The
//!    wall time is printed next to the critical path of the simulated
//!    durations (per node, one after another: install, graceful shutdown,
//!    reboot, services; the drains' evictions and the health gates have no
//!    simulated duration of their own), with the ratio against the 1.10
//!    target, and the Talos calls per node upgraded.
//! 2. A 3 + (big − 3) cluster is created at a tiny time scale and re-planned
//!    (`plan -detailed-exitcode` must exit 0): Talos calls per node during
//!    the re-plan (target ≤ 2) and the provider's peak RSS in that plan
//!    (target ≤ 20 MB; `/usr/bin/time -v` wraps the provider).
//!
//! Exit 1 when a figure misses its target.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

use proxtalos::talos::sim::{Delays, NodeSpec, SimCluster, SimOptions};

const USAGE: &str = "usage: bench-rollout [--time-scale S] [--provider-dir DIR] [--network A.B.C] [--big N]";

struct Args {
    time_scale: f64,
    provider_dir: PathBuf,
    network: String,
    big: usize,
}

fn parse_args() -> Result<Args, String> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut a =
        Args { time_scale: 0.25, provider_dir: root.join("target/release"), network: "127.0.43".into(), big: 50 };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let mut v = || it.next().ok_or_else(|| format!("{k} needs a value\n{USAGE}"));
        match k.as_str() {
            "--time-scale" => a.time_scale = v()?.parse().map_err(|e| format!("--time-scale: {e}"))?,
            "--provider-dir" => a.provider_dir = PathBuf::from(v()?),
            "--network" => a.network = v()?,
            "--big" => a.big = v()?.parse().map_err(|e| format!("--big: {e}"))?,
            "-h" | "--help" => return Err(USAGE.to_string()),
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    Ok(a)
}

#[path = "support/terraform.rs"]
mod support;
use support::terraform;

fn config(ips: &[String], cps: usize, version: &str) -> String {
    let block =
        |kind: &str, i: usize| format!("  {kind} {{\n    name    = \"n-{i}\"\n    address = \"{}\"\n  }}\n", ips[i]);
    let c: String = (0..cps).map(|i| block("control_plane", i)).collect();
    let w: String = (cps..ips.len()).map(|i| block("worker", i)).collect();
    // The endpoint is the control planes' shared VIP, the address before
    // the first node's, as in examples/cluster.
    let (net, last) = ips[0].rsplit_once('.').unwrap_or(("127.0.0", "1"));
    let vip = format!("{net}.{}", last.parse::<u8>().unwrap_or(1).saturating_sub(1));
    let vip_patch = format!(
        "  control_plane_patches = [yamlencode({{ apiVersion = \"v1alpha1\", kind = \"Layer2VIPConfig\", name = \"{vip}\", link = \"ens18\" }})]\n"
    );
    format!(
        "terraform {{\n  required_providers {{\n    proxtalos = {{ source = \"proxtalos/proxtalos\" }}\n  }}\n}}\n\n\
resource \"proxtalos_machine_secrets\" \"this\" {{\n  talos_version = \"v1.13\"\n}}\n\n\
resource \"proxtalos_cluster\" \"this\" {{\n  cluster_name         = \"bench\"\n  cluster_endpoint     = \"https://{}:6443\"\n  \
machine_secrets      = proxtalos_machine_secrets.this.machine_secrets\n  client_configuration = proxtalos_machine_secrets.this.client_configuration\n  \
talos_version        = \"{version}\"\n  kubernetes_version   = \"1.33.1\"\n{vip_patch}{c}{w}\n  timeouts {{\n    create = \"30m\"\n    update = \"60m\"\n  }}\n}}\n",
        vip
    )
}

/// A Terraform working directory with a dev_overrides CLI config.
struct Ws {
    tf: PathBuf,
    dir: tempfile::TempDir,
}

impl Ws {
    fn new(tf: &Path, provider_dir: &Path) -> Result<Ws, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let rc = dir.path().join("cli.tfrc");
        let text = format!(
            "provider_installation {{\n  dev_overrides {{\n    \"registry.terraform.io/proxtalos/proxtalos\" = \"{}\"\n  }}\n  direct {{}}\n}}\n",
            provider_dir.display()
        );
        std::fs::write(rc, text).map_err(|e| e.to_string())?;
        Ok(Ws { tf: tf.to_path_buf(), dir })
    }

    fn run(&self, args: &[&str]) -> (i32, String) {
        let out = Command::new(&self.tf)
            .arg(format!("-chdir={}", self.dir.path().display()))
            .args(args)
            .env("TF_CLI_CONFIG_FILE", self.dir.path().join("cli.tfrc"))
            .env("TF_IN_AUTOMATION", "1")
            .env("TF_INPUT", "0")
            .output();
        match out {
            Ok(o) => (
                o.status.code().unwrap_or(-1),
                format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr)),
            ),
            Err(e) => (-1, e.to_string()),
        }
    }

    fn must(&self, args: &[&str], want: i32) -> Result<String, String> {
        let (code, out) = self.run(args);
        if code == want { Ok(out) } else { Err(format!("terraform {args:?} exited {code}:\n{out}")) }
    }

    fn write(&self, hcl: &str) -> Result<(), String> {
        std::fs::write(self.dir.path().join("main.tf"), hcl).map_err(|e| e.to_string())
    }
}

fn start(
    rt: &tokio::runtime::Runtime,
    options: SimOptions,
    net: &str,
    n: usize,
    first: u8,
) -> Result<(SimCluster, Vec<String>), String> {
    let ips: Vec<String> = (0..n).map(|i| format!("{net}.{}", first as usize + i)).collect();
    let specs = ips
        .iter()
        .map(|i| i.parse().map(NodeSpec::metal).map_err(|e| format!("{i}: {e}")))
        .collect::<Result<Vec<_>, String>>()?;
    let c = rt.block_on(SimCluster::start(options, specs)).map_err(|e| e.to_string())?;
    Ok((c, ips))
}

fn calls(c: &SimCluster) -> u64 {
    c.calls().values().sum()
}

fn main() -> ExitCode {
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("bench-rollout: {e}");
            ExitCode::from(2)
        }
    }
}

fn run() -> Result<bool, String> {
    let a = parse_args()?;
    let tf = terraform()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let mut pass = true;
    let date = Command::new("date")
        .args(["-u", "+%Y-%m-%dT%H:%MZ"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    println!("bench-rollout {date}, time scale {}, {}", a.time_scale, tf.display());

    // 1. The rolling upgrade of 3 + 2.
    let mut o = SimOptions::fast("v1.13.9");
    o.time_scale = a.time_scale;
    o.delays = Delays::default();
    let d = o.delays;
    let (sim, ips) = start(&rt, o, &a.network, 5, 11)?;
    let ws = Ws::new(&tf, &a.provider_dir)?;
    ws.write(&config(&ips, 3, "v1.13.9"))?;
    if !tf.to_string_lossy().contains("tofu") {
        let _ = ws.run(&["init", "-no-color"]);
    }
    ws.must(&["apply", "-auto-approve", "-no-color"], 0)?;
    ws.write(&config(&ips, 3, "v1.14.0"))?;
    let before = calls(&sim);
    let t0 = Instant::now();
    ws.must(&["apply", "-auto-approve", "-no-color"], 0)?;
    let wall = t0.elapsed().as_secs_f64();
    let talos = calls(&sim) - before;
    let per_node = (d.install + d.shutdown + d.reboot + d.services).as_secs_f64();
    let critical = 5.0 * per_node * a.time_scale;
    let ratio = wall / critical;
    println!("1. rolling Talos upgrade v1.13.9 -> v1.14.0 of 3 + 2 nodes");
    println!(
        "   critical path: 5 nodes x (install {} + shutdown {} + reboot {} + services {}) = {:.0} simulated s -> {critical:.2} s",
        d.install.as_secs(),
        d.shutdown.as_secs(),
        d.reboot.as_secs(),
        d.services.as_secs(),
        5.0 * per_node
    );
    println!("   apply wall time: {wall:.2} s");
    let ok = ratio <= 1.10;
    pass &= ok;
    println!("   ratio: {ratio:.3} (target <= 1.10: {})", if ok { "PASS" } else { "FAIL" });
    println!("   Talos calls per node upgraded: {:.1} ({talos} in all)", talos as f64 / 5.0);
    let _ = ws.run(&["destroy", "-auto-approve", "-no-color"]);
    drop(sim);

    // 2. The re-plan of a big cluster.
    let mut o = SimOptions::fast("v1.13.9");
    o.time_scale = 0.001;
    let (sim, ips) = start(&rt, o, &a.network, a.big, 100)?;
    let big = Ws::new(&tf, &a.provider_dir)?;
    big.write(&config(&ips, 3, "v1.13.9"))?;
    if !tf.to_string_lossy().contains("tofu") {
        let _ = big.run(&["init", "-no-color"]);
    }
    big.must(&["apply", "-auto-approve", "-no-color"], 0)?;
    // The provider wrapped in /usr/bin/time -v for its peak RSS.
    let rss_dir = big.dir.path().join("rss");
    let wrap = big.dir.path().join("wrap");
    let wrapped = Path::new("/usr/bin/time").is_file();
    if wrapped {
        std::fs::create_dir_all(&rss_dir).map_err(|e| e.to_string())?;
        std::fs::create_dir_all(&wrap).map_err(|e| e.to_string())?;
        let bin = wrap.join("terraform-provider-proxtalos");
        let real = a.provider_dir.join("terraform-provider-proxtalos");
        let script = format!(
            "#!/bin/sh\nexec /usr/bin/time -v -o \"{}/rss.$$\" \"{}\" \"$@\"\n",
            rss_dir.display(),
            real.display()
        );
        std::fs::write(&bin, script).map_err(|e| e.to_string())?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).map_err(|e| e.to_string())?;
        let rc = big.dir.path().join("cli.tfrc");
        let text = std::fs::read_to_string(&rc)
            .map_err(|e| e.to_string())?
            .replace(&a.provider_dir.display().to_string(), &wrap.display().to_string());
        std::fs::write(rc, text).map_err(|e| e.to_string())?;
    }
    let before = calls(&sim);
    big.must(&["plan", "-detailed-exitcode", "-no-color"], 0)?;
    let per = (calls(&sim) - before) as f64 / a.big as f64;
    println!("2. re-plan of 3 + {} nodes (empty)", a.big - 3);
    let ok = per <= 2.0;
    pass &= ok;
    println!("   Talos calls per node: {per:.2} (target <= 2: {})", if ok { "PASS" } else { "FAIL" });
    if wrapped {
        let mut peak = 0u64;
        for e in std::fs::read_dir(&rss_dir).map_err(|e| e.to_string())?.flatten() {
            let t = std::fs::read_to_string(e.path()).unwrap_or_default();
            if let Some(kb) = t.lines().find_map(|l| l.trim().strip_prefix("Maximum resident set size (kbytes): ")) {
                peak = peak.max(kb.trim().parse().unwrap_or(0));
            }
        }
        let mb = peak as f64 * 1024.0 / 1e6;
        let ok = mb <= 20.0 && peak > 0;
        pass &= ok;
        println!("   provider peak RSS: {mb:.2} MB (target <= 20 MB: {})", if ok { "PASS" } else { "FAIL" });
    } else {
        println!("   provider peak RSS: not measured (no /usr/bin/time)");
    }
    drop(sim);
    Ok(pass)
}
