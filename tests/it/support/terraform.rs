//! Real-Terraform harness for end-to-end tests.
//!
//! Finds (or installs, with `scripts/install-terraform.sh`) the
//! Terraform builds to test against: 1.15.5 (the shim), 1.0.3, and a
//! `tofu`/`terraform` found on PATH when it is another version. Each test
//! gets a [`Workspace`]: a temporary directory with its own CLI config
//! (`dev_overrides` pointing at the provider binary; `TF_CLI_CONFIG_FILE`
//! always set by us) and helpers to run commands and read state.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

/// One Terraform (or OpenTofu) build.
#[derive(Clone, Debug)]
pub struct Terraform {
    /// Executable.
    pub bin: PathBuf,
    /// `(major, minor, patch)`.
    pub version: (u32, u32, u32),
    /// OpenTofu rather than Terraform.
    pub tofu: bool,
}

impl Terraform {
    /// Whether this build is at least `major.minor`.
    pub fn at_least(&self, major: u32, minor: u32) -> bool {
        (self.version.0, self.version.1) >= (major, minor)
    }

    /// `1.15.5` and the like.
    pub fn version_string(&self) -> String {
        format!("{}.{}.{}", self.version.0, self.version.1, self.version.2)
    }

    /// Before 1.15, `init` still asks the registry about dev-overridden
    /// providers and fails offline (seen with 1.0.3 and 1.11.4); plan and
    /// apply work without it. 1.15 skips overridden providers in `init`.
    pub fn needs_init(&self) -> bool {
        self.tofu || self.at_least(1, 15)
    }
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn parse_version(bin: &Path) -> Option<((u32, u32, u32), bool)> {
    let out = Command::new(bin)
        .arg("version")
        .env("TF_CLI_CONFIG_FILE", "/dev/null")
        .env("CHECKPOINT_DISABLE", "1")
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let first = text.lines().next()?;
    let tofu = first.starts_with("OpenTofu");
    let v = first.split_whitespace().find(|w| w.starts_with('v'))?.trim_start_matches('v');
    let mut parts = v.split('.').map(|p| p.split('-').next().unwrap_or("0").parse::<u32>().unwrap_or(0));
    Some(((parts.next()?, parts.next()?, parts.next().unwrap_or(0)), tofu))
}

fn install(with_103: bool) -> Option<PathBuf> {
    let tools = repo_root().join(".tools");
    let mut cmd = Command::new("bash");
    cmd.arg(repo_root().join("scripts/install-terraform.sh")).arg(&tools).stderr(Stdio::inherit());
    if with_103 {
        cmd.env("WITH_TF_1_0_3", "1");
    }
    let out = cmd.output().ok()?;
    if !out.status.success() {
        eprintln!("install-terraform.sh failed: {}", String::from_utf8_lossy(&out.stdout));
        return None;
    }
    Some(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

/// Every Terraform to test against, installed on first use. Set
/// `PROXTALOS_TF` / `PROXTALOS_TF_1_0_3` to use existing builds, or
/// `PROXTALOS_SKIP_TF_1_0_3=1` to leave 1.0.3 out.
pub fn terraforms() -> &'static [Terraform] {
    static ALL: OnceLock<Vec<Terraform>> = OnceLock::new();
    ALL.get_or_init(|| {
        let skip_103 = std::env::var("PROXTALOS_SKIP_TF_1_0_3").is_ok_and(|v| v == "1");
        let mut bins: Vec<PathBuf> = Vec::new();
        let main = std::env::var_os("PROXTALOS_TF").map(PathBuf::from).or_else(|| install(!skip_103));
        bins.extend(main);
        if !skip_103 {
            let b103 = std::env::var_os("PROXTALOS_TF_1_0_3")
                .map(PathBuf::from)
                .unwrap_or_else(|| repo_root().join(".tools/bin/terraform-1.0.3"));
            if b103.exists() {
                bins.push(b103);
            }
        }
        for name in ["tofu", "terraform"] {
            if let Ok(out) = Command::new("sh").arg("-c").arg(format!("command -v {name}")).output() {
                let p = String::from_utf8_lossy(&out.stdout).trim().to_string();
                if !p.is_empty() {
                    bins.push(PathBuf::from(p));
                }
            }
        }
        let mut seen = Vec::new();
        let mut all = Vec::new();
        for bin in bins {
            if let Some((version, tofu)) = parse_version(&bin)
                && !seen.contains(&(version, tofu))
            {
                seen.push((version, tofu));
                all.push(Terraform { bin, version, tofu });
            }
        }
        assert!(!all.is_empty(), "no Terraform found or installed; run the README's test command");
        all
    })
}

/// The Terraform with this exact version, if installed.
pub fn terraform(version: &str) -> Option<Terraform> {
    terraforms().iter().find(|t| t.version_string() == version && !t.tofu).cloned()
}

/// Builds a provider binary (a `[[bin]]` or an `[[example]]` of this
/// package, debug profile) once and returns its path.
pub fn build_provider(kind: &str, name: &str) -> PathBuf {
    super::cargo_build(&[&format!("--{kind}"), name]);
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| repo_root().join("target"));
    let sub = if kind == "example" { "debug/examples" } else { "debug" };
    target.join(sub).join(name)
}

/// A Terraform working directory with its own CLI config.
pub struct Workspace {
    pub dir: tempfile::TempDir,
    pub tf: Terraform,
    cli_config: PathBuf,
    env: Vec<(String, String)>,
}

impl Workspace {
    /// A workspace whose CLI config overrides `source` (e.g.
    /// `proxtalos/tftest`) with the binary `provider_bin`.
    pub fn new(tf: &Terraform, source: &str, provider_bin: &Path) -> Workspace {
        let dir = tempfile::Builder::new().prefix("proxtalos-e2e").tempdir().expect("tempdir");
        let plugin_dir = dir.path().join("plugins");
        std::fs::create_dir_all(&plugin_dir).expect("plugins dir");
        let file_name = provider_bin.file_name().expect("binary name");
        std::os::unix::fs::symlink(provider_bin, plugin_dir.join(file_name)).expect("symlink provider");
        let cli_config = dir.path().join("cli.tfrc");
        std::fs::write(
            &cli_config,
            format!(
                "provider_installation {{\n  dev_overrides {{\n    \"{source}\" = \"{}\"\n  }}\n  direct {{}}\n}}\n",
                plugin_dir.display()
            ),
        )
        .expect("cli config");
        std::fs::create_dir_all(dir.path().join("work")).expect("work dir");
        Workspace { dir, tf: tf.clone(), cli_config, env: Vec::new() }
    }

    /// The directory Terraform runs in.
    pub fn work(&self) -> PathBuf {
        self.dir.path().join("work")
    }

    /// Adds an environment variable for every command.
    pub fn env(&mut self, k: &str, v: &str) {
        self.env.push((k.to_string(), v.to_string()));
    }

    /// Writes `main.tf`.
    pub fn write_config(&self, hcl: &str) {
        std::fs::write(self.work().join("main.tf"), hcl).expect("write main.tf");
    }

    /// A command ready to run in the workspace.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.tf.bin);
        c.args(args)
            .current_dir(self.work())
            .env("TF_CLI_CONFIG_FILE", &self.cli_config)
            .env("TF_IN_AUTOMATION", "1")
            .env("TF_INPUT", "0")
            .env("CHECKPOINT_DISABLE", "1")
            .env_remove("TF_LOG")
            .stdin(Stdio::null());
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c
    }

    /// Runs a command and returns its output.
    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run terraform")
    }

    /// Runs a command with `input` on its stdin (`terraform console`);
    /// returns stdout+stderr.
    pub fn run_with_stdin(&self, args: &[&str], input: &str) -> String {
        use std::io::Write as _;
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run terraform");
        child.stdin.take().expect("stdin").write_all(input.as_bytes()).expect("write stdin");
        let out = child.wait_with_output().expect("terraform output");
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
    }

    /// Runs a command that must exit with `code`; returns stdout+stderr.
    pub fn expect(&self, code: i32, args: &[&str]) -> String {
        let out = self.run(args);
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert_eq!(
            out.status.code(),
            Some(code),
            "terraform {} {} exited {:?}, wanted {code}:\n{text}",
            self.tf.version_string(),
            args.join(" "),
            out.status.code()
        );
        text
    }

    /// Runs a command that must succeed.
    pub fn ok(&self, args: &[&str]) -> String {
        self.expect(0, args)
    }

    /// `init` where this Terraform needs and supports it.
    pub fn init(&self) {
        if self.tf.needs_init() {
            self.ok(&["init", "-no-color"]);
        }
    }

    /// `plan -detailed-exitcode`: 0 = no changes, 2 = changes.
    pub fn plan_exit(&self, want: i32) -> String {
        self.expect(want, &["plan", "-no-color", "-detailed-exitcode"])
    }

    /// `apply -auto-approve`.
    pub fn apply(&self) -> String {
        self.ok(&["apply", "-no-color", "-auto-approve"])
    }

    /// `terraform show -json` of the state.
    pub fn state(&self) -> serde_json::Value {
        let out = self.ok(&["show", "-json", "-no-color"]);
        let start = out.find('{').unwrap_or(0);
        serde_json::from_str(&out[start..]).unwrap_or_else(|e| panic!("show -json: {e}\n{out}"))
    }

    /// The raw state file (local backend).
    pub fn state_file(&self) -> String {
        std::fs::read_to_string(self.work().join("terraform.tfstate")).unwrap_or_default()
    }

    /// The values of resource `address` from `terraform show -json`.
    pub fn resource(&self, address: &str) -> Option<serde_json::Value> {
        let state = self.state();
        state["values"]["root_module"]["resources"]
            .as_array()?
            .iter()
            .find(|r| r["address"] == address)
            .map(|r| r["values"].clone())
    }
}

/// Every example directory: `examples/provider` and each
/// `examples/<kind>/<name>/` (the quickstart has tests of its own).
/// A Terraform configuration file: `.tf`, or a query file (`.tfquery.hcl`).
pub fn is_config(p: &std::path::Path) -> bool {
    p.extension().is_some_and(|e| e == "tf") || p.to_string_lossy().ends_with(".tfquery.hcl")
}

/// The whole-cluster examples, applied in the lab by tests/it/quickstart.rs
/// (`scripts/quickstart.sh --example NAME`).
pub const LAB_EXAMPLES: &[&str] = &["quickstart", "cluster", "longhorn", "gpu-worker", "cilium"];

pub fn example_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    for kind in std::fs::read_dir(repo_root().join("examples")).unwrap() {
        let kind = kind.unwrap().path();
        // The lab examples are applied by tests/it/quickstart.rs.
        if !kind.is_dir() || LAB_EXAMPLES.iter().any(|e| kind.ends_with(e)) {
            continue;
        }
        let tf_here = std::fs::read_dir(&kind).unwrap().any(|f| is_config(&f.unwrap().path()));
        if tf_here {
            dirs.push(kind.clone());
        }
        for ex in std::fs::read_dir(&kind).unwrap() {
            let ex = ex.unwrap().path();
            if ex.is_dir() {
                dirs.push(ex);
            }
        }
    }
    dirs.sort();
    dirs
}

/// Terraform 1.0.3 for the compatibility tests. Missing, it is a failure,
/// not a silent pass: only `PROXTALOS_SKIP_TF_1_0_3=1` leaves it out (then
/// None, and the caller says it skipped).
pub fn terraform_1_0_3() -> Option<Terraform> {
    let skip = std::env::var("PROXTALOS_SKIP_TF_1_0_3").is_ok_and(|v| v == "1");
    match terraform("1.0.3") {
        Some(tf) => Some(tf),
        None if skip => {
            eprintln!("Terraform 1.0.3 left out (PROXTALOS_SKIP_TF_1_0_3=1): skipped");
            None
        }
        None => panic!(
            "Terraform 1.0.3 is missing: the README's test command installs it \
             (scripts/install-terraform.sh); set PROXTALOS_SKIP_TF_1_0_3=1 to leave it out"
        ),
    }
}

/// Starts `terraform <args>` in `ws` in a process group of its own (its
/// output to a file, so a long run never blocks on a full pipe), waits until
/// `ready(output so far)` holds (at most 120 s; a condition, never a
/// sleep: what shows the provider is inside its wait), presses Ctrl-C ([`ctrl_c`]) and waits for it to exit. Asserts
/// the exit came within 5 s of the signal and that the provider neither
/// crashed nor stopped answering; returns the output. A Terraform that runs
/// on is killed before the test fails, so it never outlives the test.
#[cfg(unix)]
pub fn interrupt(ws: &Workspace, args: &[&str], ready: &dyn Fn(&str) -> bool) -> String {
    use std::time::{Duration, Instant};
    let log = ws.work().join(format!("{}-interrupted.log", args[0]));
    let file = std::fs::File::create(&log).expect("log file");
    let mut cmd = ws.command(args);
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let mut child = cmd.stdout(file.try_clone().expect("log file")).stderr(file).spawn().expect("run terraform");
    let read = || std::fs::read_to_string(&log).unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !ready(&read()) {
        if child.try_wait().expect("terraform status").is_some() || Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the provider never got to its wait:\n{}", read());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let pressed = Instant::now();
    ctrl_c(&child);
    let status = loop {
        if let Some(s) = child.try_wait().expect("terraform status") {
            break s;
        }
        if pressed.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("terraform still running 30 s after Ctrl-C:\n{}", read());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let took = pressed.elapsed();
    let text = read();
    eprintln!("terraform {} exited {:?} {took:?} after Ctrl-C", args[0], status.code());
    assert!(took < Duration::from_secs(5), "terraform took {took:?} to exit after Ctrl-C:\n{text}");
    assert!(!text.contains("Plugin did not respond") && !text.contains("plugin crashed"), "{text}");
    text
}

/// What a terminal's Ctrl-C does: SIGINT to the foreground process group
/// of `child` (started with `process_group(0)`), with killpg(2) itself. Not
/// `kill -INT -<pgid>`: procps `kill` reads `-1234` as `-1`, every process
/// of the user, which ended a CI run (the runner included) when the group's
/// id began with a 1. And only after checking that the group is
/// Terraform's own, not the test's.
#[cfg(unix)]
pub fn ctrl_c(child: &std::process::Child) {
    use rustix::process::{Pid, Signal, getpgid, getpgrp, kill_process_group};
    let pid = Pid::from_child(child);
    let group = getpgid(Some(pid)).expect("Terraform's process group");
    assert_eq!(group, pid, "Terraform leads a process group of its own");
    assert_ne!(group, getpgrp(), "Terraform's group is not the test's");
    kill_process_group(group, Signal::INT).expect("SIGINT to Terraform's process group");
}
