//! Shared helpers for integration tests.

#![allow(dead_code)]

pub mod fakepve;
pub mod kubectl;
pub mod real_lab;
pub mod silent;
pub mod sim_nodes;
pub mod talos_fixture;
pub mod terraform;
pub mod wait;

use std::process::Command;

/// Removes from `cmd` what `cargo test` set for the test process itself
/// (`CARGO_PKG_*`, `CARGO_MANIFEST_DIR`, `OUT_DIR`, ...). A `cargo build`
/// started from a test with them inherited reruns build scripts and makes the
/// next `cargo test` rebuild half the tree. `CARGO_HOME` and
/// `CARGO_TARGET_DIR` stay: they say where things are.
pub fn without_test_cargo_env(cmd: &mut Command) -> &mut Command {
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy();
        if k == "OUT_DIR" || (k.starts_with("CARGO_") && k != "CARGO_HOME" && k != "CARGO_TARGET_DIR") {
            cmd.env_remove(&*k);
        }
    }
    cmd
}

/// `cargo build --quiet <args>` in the repository, without the test's cargo
/// variables; panics with the arguments if the build fails.
pub fn cargo_build(args: &[&str]) {
    let mut cmd = Command::new(env!("CARGO"));
    cmd.current_dir(env!("CARGO_MANIFEST_DIR")).args(["build", "--quiet"]).args(args);
    let status = without_test_cargo_env(&mut cmd).status().expect("run cargo");
    assert!(status.success(), "cargo build {} failed", args.join(" "));
}
