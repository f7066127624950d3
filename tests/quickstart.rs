//! README command 1 end to end: `scripts/quickstart.sh` (build, lab, apply
//! of examples/quickstart, outputs, empty re-plan) and then
//! `scripts/quickstart.sh destroy` (destroy, every VM gone from fakepve,
//! lab stopped). Its own lab directory, PVE port and loopback network, so it
//! runs next to a developer's lab and other tests. About 10 s with a warm
//! build.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn run(dir: &Path, args: &[&str]) -> (bool, String) {
    let id = std::process::id();
    let mut cmd = Command::new("bash");
    cmd.arg(root().join("scripts/quickstart.sh"))
        .args(args)
        .env("QUICKSTART_DIR", dir.join("work"))
        .env("PROXTALOS_LAB_DIR", dir.join("lab"))
        .env("QUICKSTART_PORT", (20000 + id % 20000).to_string())
        .env("QUICKSTART_NETWORK", format!("127.{}.10.0/24", 150 + id % 50))
        .env("PROXTALOS_FAKEPVE", support::fakepve::launcher());
    if let Some(tf) = std::env::var_os("PROXTALOS_TF") {
        cmd.env("PROXTALOS_TF", tf);
    }
    let out = cmd.output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

/// Stops the lab if the test fails half way.
struct LabGuard(PathBuf);

impl Drop for LabGuard {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(root().join("scripts/lab.sh"))
            .arg("stop")
            .env("PROXTALOS_LAB_DIR", self.0.join("lab"))
            .output();
    }
}

#[test]
fn quickstart_then_destroy() {
    let tmp = tempfile::tempdir().unwrap();
    let _guard = LabGuard(tmp.path().to_path_buf());

    let (ok, out) = run(tmp.path(), &[]);
    assert!(ok, "quickstart failed:\n{out}");
    assert!(out.contains("Apply complete! Resources: 14 added, 0 changed, 0 destroyed."), "{out}");
    assert!(out.contains("No changes. Your infrastructure matches the configuration."), "{out}");
    assert!(out.contains("\"apid\",") && out.contains("\"services\","), "health stages printed:\n{out}");
    for f in ["talosconfig", "kubeconfig"] {
        let p = tmp.path().join("work").join(f);
        let meta = std::fs::metadata(&p).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(meta.permissions().mode() & 0o777, 0o600, "{f}");
        assert!(meta.len() > 100, "{f} written");
    }
    let kubeconfig = std::fs::read_to_string(tmp.path().join("work/kubeconfig")).unwrap();
    assert!(kubeconfig.contains("server: https://127."), "{kubeconfig}");
    let talosconfig = std::fs::read_to_string(tmp.path().join("work/talosconfig")).unwrap();
    assert!(talosconfig.contains("context: quickstart"), "{talosconfig}");

    let (ok, out) = run(tmp.path(), &["destroy"]);
    assert!(ok, "destroy failed:\n{out}");
    assert!(out.contains("Destroy complete! Resources: 14 destroyed."), "{out}");
    assert!(out.contains("VMs left on the lab's PVE: none"), "every VM gone from fakepve:\n{out}");
    assert!(out.contains("lab: stopped"), "{out}");
    assert!(!tmp.path().join("work/kubeconfig").exists(), "credentials removed on destroy");
}

/// The figures benchmark's smoke run (scripts/bench-quickstart.sh runs the
/// real one): at a tiny time scale, with the debug provider, it prints every
/// figure line and the re-plan is empty. Nothing about timing is asserted
/// (at this scale the ratio is meaningless, so exit 1 is fine).
#[test]
fn bench_quickstart_prints_every_figure() {
    // The provider cargo built for this test (no second build with other
    // features), and the example (same features as the tests: up to date).
    let provider = PathBuf::from(env!("CARGO_BIN_EXE_terraform-provider-proxtalos"));
    let mut build = Command::new(env!("CARGO"));
    build.current_dir(root()).args(["build", "--quiet", "--example", "bench-quickstart", "--features", "sim"]);
    // What cargo set for this test would make build scripts rerun and the
    // next `cargo test` rebuild half the tree.
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy();
        if k == "OUT_DIR" || (k.starts_with("CARGO_") && k != "CARGO_HOME" && k != "CARGO_TARGET_DIR") {
            build.env_remove(&*k);
        }
    }
    let s = build.status().unwrap();
    assert!(s.success(), "cargo build --example bench-quickstart");
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root().join("target"));
    let id = std::process::id();
    let mut cmd = Command::new(target.join("debug/examples/bench-quickstart"));
    cmd.args(["--time-scale", "0.01", "--provider-dir"])
        .arg(provider.parent().unwrap())
        .args(["--network", &format!("127.{}.42.0/24", 150 + id % 50)])
        .env("PROXTALOS_FAKEPVE", support::fakepve::launcher())
        .env_remove("TF_CLI_CONFIG_FILE");
    let out = cmd.output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(matches!(out.status.code(), Some(0 | 1)), "bench-quickstart failed:\n{text}");
    for line in [
        "critical path (simulated s -> real s at this scale):",
        "  total ",
        "apply wall time: ",
        "ratio: ",
        "PVE requests during apply: ",
        "  POST /nodes/pve1/qemu/{vmid}/status/start",
        "Talos calls during apply: ",
        "  machine.MachineService/Bootstrap",
        "re-plan: exit 0 (no changes: PASS)",
        "PVE requests during re-plan: ",
        "Talos calls during re-plan: ",
        "destroy: ",
    ] {
        assert!(text.contains(line), "no {line:?} in:\n{text}");
    }
}
