//! Acceptance tests of the Talos objects with real Terraform and the real
//! provider binary: `proxtalos_machine_secrets` (create, empty re-plan,
//! in-place contract change and certificate re-issue, import of a talosctl
//! `secrets.yaml`, destroy), `proxtalos_machine_configuration` (a patch
//! change shows as a line diff of the redacted rendering and nothing else;
//! the golden file is reproduced end to end; bad patches fail at plan with
//! their index), `proxtalos_client_configuration`, and on Terraform ≥ 1.10
//! the ephemeral twins. Against 1.15.5 and 1.0.3.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::silent::SilentPort;
use crate::support::terraform::{Terraform, Workspace, build_provider, terraform, terraforms};

const GOLDEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/talos/golden");

fn workspace(tf: &Terraform) -> Workspace {
    let bin = build_provider("bin", "terraform-provider-proxtalos");
    let ws = Workspace::new(tf, "registry.terraform.io/proxtalos/proxtalos", &bin);
    std::fs::copy(format!("{GOLDEN}/secrets.yaml"), ws.work().join("secrets.yaml")).unwrap();
    ws
}

const HEADER: &str = r#"terraform {
  required_providers {
    proxtalos = { source = "proxtalos/proxtalos" }
  }
}

provider "proxtalos" {}
"#;

/// Secrets, a controlplane configuration with one sysctl patch, a
/// talosconfig, and the redacted rendering as an output.
fn main_config(talos_version: &str, ttl: &str, map_count: &str) -> String {
    main_config_with_window(talos_version, ttl, map_count, "720h")
}

fn main_config_with_window(talos_version: &str, ttl: &str, map_count: &str, window: &str) -> String {
    format!(
        r#"{HEADER}
resource "proxtalos_machine_secrets" "this" {{
  talos_version                     = "{talos_version}"
  client_certificate_ttl            = "{ttl}"
  client_certificate_renewal_window = "{window}"
}}

data "proxtalos_machine_configuration" "cp" {{
  cluster_name       = "acc"
  cluster_endpoint   = "https://10.0.0.10:6443"
  machine_type       = "controlplane"
  machine_secrets    = proxtalos_machine_secrets.this.machine_secrets
  talos_version      = "v1.13"
  kubernetes_version = "1.33.1"
  install_disk       = "/dev/sda"
  config_patches = [
    yamlencode({{ machine = {{ sysctls = {{ "vm.max_map_count" = "{map_count}" }} }} }}),
  ]
}}

data "proxtalos_client_configuration" "this" {{
  cluster_name         = "acc"
  client_configuration = proxtalos_machine_secrets.this.client_configuration
  endpoints            = ["10.0.0.11"]
}}

output "cp_redacted" {{
  value = data.proxtalos_machine_configuration.cp.machine_configuration_redacted
}}

output "talosconfig" {{
  value     = data.proxtalos_client_configuration.this.talos_config
  sensitive = true
}}
"#
    )
}

fn adopted(with_golden_config: bool) -> String {
    let mut s = "\nresource \"proxtalos_machine_secrets\" \"adopted\" {}\n".to_string();
    if with_golden_config {
        s += r#"
data "proxtalos_machine_configuration" "golden" {
  cluster_name       = "base"
  cluster_endpoint   = "https://base:6443"
  machine_type       = "worker"
  machine_secrets    = proxtalos_machine_secrets.adopted.machine_secrets
  talos_version      = "v1.13"
  kubernetes_version = "1.28.0"
}

output "golden" {
  value     = data.proxtalos_machine_configuration.golden.machine_configuration
  sensitive = true
}
"#;
    }
    s
}

/// The lines of a plan's change list that add or remove something: a `+`
/// or `-` marker at most 6 columns in (deeper ones are YAML list items
/// inside a heredoc), after the plan's first heading.
fn changed_lines(plan: &str) -> Vec<String> {
    let start = ["Terraform will perform the following actions:", "Changes to Outputs:"]
        .iter()
        .filter_map(|h| plan.find(h))
        .min()
        .unwrap_or(plan.len());
    plan[start..]
        .lines()
        .filter(|l| {
            let t = l.trim_start();
            (t.starts_with("+ ") || t.starts_with("- ")) && l.len() - t.len() <= 6
        })
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

fn secret_of(ws: &Workspace, address: &str) -> serde_json::Value {
    ws.resource(address).unwrap()["machine_secrets"]["cluster"]["secret"].clone()
}

fn story(tf: &Terraform) {
    let ws = workspace(tf);
    ws.write_config(&main_config("v1.13", "8760h", "262144"));
    ws.init();

    // create → re-plan empty
    let plan = ws.plan_exit(2);
    assert!(plan.contains("1 to add"), "{plan}");
    ws.apply();
    ws.plan_exit(0);
    let state = ws.resource("proxtalos_machine_secrets.this").unwrap();
    assert_eq!(state["talos_version"], "v1.13");
    assert!(state["client_certificate_expires_at"].as_str().unwrap().ends_with('Z'));
    let secret = secret_of(&ws, "proxtalos_machine_secrets.this");
    let talosconfig = ws.ok(&["output", "-raw", "talosconfig"]);
    assert!(talosconfig.contains("context: acc"), "{talosconfig}");

    // a patch change: the plan shows exactly that line of the redacted config
    ws.write_config(&main_config("v1.13", "8760h", "524288"));
    let plan = ws.plan_exit(2);
    let changed = changed_lines(&plan);
    assert_eq!(
        changed,
        vec![r#"- vm.max_map_count: "262144""#.to_string(), r#"+ vm.max_map_count: "524288""#.to_string()],
        "{plan}"
    );
    assert!(!plan.contains("will be updated") && !plan.contains("must be replaced"), "{plan}");
    assert!(!plan.contains("will be read during apply"), "{plan}");
    ws.apply();
    ws.plan_exit(0);

    // a new contract is recorded in place: no new secrets
    ws.write_config(&main_config("v1.14", "8760h", "524288"));
    let plan = ws.plan_exit(2);
    assert!(plan.contains("1 to change") && plan.contains("0 to add"), "{plan}");
    assert!(!plan.contains("must be replaced"), "{plan}");
    ws.apply();
    ws.plan_exit(0);
    assert_eq!(secret_of(&ws, "proxtalos_machine_secrets.this"), secret);

    // a new certificate validity re-issues the client certificate, in place
    let before = ws.resource("proxtalos_machine_secrets.this").unwrap()["client_certificate_expires_at"].clone();
    ws.write_config(&main_config("v1.14", "4380h", "524288"));
    let plan = ws.plan_exit(2);
    assert!(plan.contains("client_certificate_expires_at") && plan.contains("known after apply"), "{plan}");
    assert!(plan.contains("1 to change"), "{plan}");
    ws.apply();
    ws.plan_exit(0);
    let after = ws.resource("proxtalos_machine_secrets.this").unwrap();
    assert_ne!(after["client_certificate_expires_at"], before);
    assert_eq!(after["machine_secrets"]["cluster"]["secret"], secret);

    // renewal with the real clock: a 2h certificate with a renewal window of
    // 2h minus 1s is inside the window one second after it was issued
    ws.write_config(&main_config_with_window("v1.14", "2h", "524288", "7199s"));
    ws.apply();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let plan = ws.plan_exit(2);
    assert!(plan.contains("client_certificate_expires_at") && plan.contains("known after apply"), "{plan}");
    assert!(plan.contains("0 to add, 1 to change, 0 to destroy"), "{plan}");
    ws.write_config(&main_config("v1.14", "4380h", "524288"));
    ws.apply();
    ws.plan_exit(0);
    assert_eq!(secret_of(&ws, "proxtalos_machine_secrets.this"), secret);

    // import a talosctl secrets.yaml; the re-plan is empty
    let base = main_config("v1.14", "4380h", "524288");
    ws.write_config(&(base.clone() + &adopted(false)));
    let path = ws.work().join("secrets.yaml");
    let out = ws.ok(&["import", "-no-color", "proxtalos_machine_secrets.adopted", path.to_str().unwrap()]);
    assert!(out.contains("Import successful"), "{out}");
    ws.plan_exit(0);
    let adopted_state = ws.resource("proxtalos_machine_secrets.adopted").unwrap();
    assert_eq!(adopted_state["talos_version"], "v1.13");
    assert_eq!(adopted_state["machine_secrets"]["cluster"]["secret"], "pofHbABZq7VXuObsdLdy/bHmz6hlMHZ3p8+6WKrv1ic=");

    // golden equivalence end to end: imported golden secrets + README inputs
    ws.write_config(&(base.clone() + &adopted(true)));
    ws.apply();
    ws.plan_exit(0);
    let got = ws.ok(&["output", "-raw", "golden"]);
    let want = std::fs::read_to_string(format!("{GOLDEN}/v1.13/base-worker.yaml")).unwrap();
    assert!(got == want, "golden v1.13/base-worker.yaml differs:\n{got}");

    // importing a malformed bundle fails with a clear message
    std::fs::write(ws.work().join("bad.yaml"), "cluster:\n    id: nope\n").unwrap();
    ws.write_config(&(base.clone() + &adopted(true) + "\nresource \"proxtalos_machine_secrets\" \"bad\" {}\n"));
    let bad = ws.work().join("bad.yaml");
    let out = ws.expect(1, &["import", "-no-color", "proxtalos_machine_secrets.bad", bad.to_str().unwrap()]);
    assert!(out.contains("Malformed secrets.yaml"), "{out}");
    ws.write_config(&(base + &adopted(true)));

    // destroy
    ws.ok(&["destroy", "-no-color", "-auto-approve"]);
    let state = ws.state();
    assert!(state["values"]["root_module"]["resources"].as_array().is_none_or(|r| r.is_empty()), "{state}");
}

/// Plan-time diagnostics name the attribute and the patch index.
fn bad_input(tf: &Terraform) {
    let ws = workspace(tf);
    let config = |patch: &str, endpoint: &str| {
        format!(
            r#"{HEADER}
resource "proxtalos_machine_secrets" "this" {{}}

data "proxtalos_machine_configuration" "w" {{
  cluster_name       = "acc"
  cluster_endpoint   = "{endpoint}"
  machine_type       = "worker"
  machine_secrets    = proxtalos_machine_secrets.this.machine_secrets
  talos_version      = "v1.13"
  kubernetes_version = "1.33.1"
  config_patches     = ["machine: {{}}", {patch:?}]
}}
"#
        )
    };
    ws.write_config(&config("machine:\n  kubelet:\n    imagee: x\n", "https://10.0.0.10:6443"));
    ws.init();
    // The secrets do not exist yet: the patch is still checked at plan time.
    let out = ws.expect(1, &["plan", "-no-color"]);
    assert!(out.contains("Invalid config patch") && out.contains("config_patches[1]"), "{out}");
    assert!(out.contains("/machine/kubelet"), "{out}");
    ws.write_config(&config("machine: {}", "10.0.0.10:6443"));
    let out = ws.expect(1, &["plan", "-no-color"]);
    assert!(out.contains("cluster_endpoint") && out.contains("https://"), "{out}");
}

/// Ephemeral twins (Terraform ≥ 1.10): opened at plan, nothing in state.
fn ephemeral_story(tf: &Terraform) {
    let ws = workspace(tf);
    let config = |patch: &str| {
        format!(
            r#"{HEADER}
ephemeral "proxtalos_machine_secrets" "e" {{
  secrets_yaml = file("${{path.module}}/secrets.yaml")
}}

ephemeral "proxtalos_machine_secrets" "fresh" {{}}

ephemeral "proxtalos_machine_configuration" "e" {{
  cluster_name       = "acc"
  cluster_endpoint   = "https://10.0.0.10:6443"
  machine_type       = "worker"
  machine_secrets    = ephemeral.proxtalos_machine_secrets.e.machine_secrets
  talos_version      = ephemeral.proxtalos_machine_secrets.e.talos_version
  kubernetes_version = "1.33.1"
  config_patches     = [{patch:?}]
}}

resource "proxtalos_machine_secrets" "keep" {{}}
"#
        )
    };
    ws.write_config(&config("machine:\n  sysctls:\n    a.b: \"1\"\n"));
    ws.init();
    let out = ws.apply();
    assert!(out.contains("ephemeral.proxtalos_machine_configuration.e: Opening"), "{out}");
    ws.plan_exit(0);
    let state = ws.state_file();
    assert!(!state.contains("ephemeral"), "ephemeral values in state");
    assert!(!state.contains("pofHbABZq7VXuObsdLdy"), "the adopted bundle leaked into state");
    // A broken patch on the ephemeral twin fails at plan with its index.
    ws.write_config(&config(r#"[{"op": "add", "path": "/machine/x", "value": 1}]"#));
    let out = ws.expect(1, &["plan", "-no-color"]);
    assert!(out.contains("config_patches[0]") && out.contains("multi-document"), "{out}");
    ws.write_config(&config("machine: {}"));
    ws.ok(&["destroy", "-no-color", "-auto-approve"]);
}

#[test]
fn talos_objects_terraform_1_15() {
    let tf = terraform("1.15.5").expect("Terraform 1.15.5 (set PROXTALOS_TF)");
    story(&tf);
    bad_input(&tf);
    ephemeral_story(&tf);
}

#[test]
fn talos_objects_terraform_1_0() {
    let Some(tf) = crate::support::terraform::terraform_1_0_3() else { return };
    story(&tf);
    bad_input(&tf);
}

/// Any other Terraform/OpenTofu found on PATH runs the core story too.
#[test]
fn talos_objects_other_terraforms() {
    for tf in terraforms() {
        let v = tf.version_string();
        if !tf.tofu && (v == "1.15.5" || v == "1.0.3") {
            continue;
        }
        story(tf);
    }
}

/// Ctrl-C while every Talos wait is under way (issue 12 §2): an apply, a
/// bootstrap, a kubeconfig and a health check against nodes whose port
/// accepts and never answers (a machine that is up while its API is not:
/// every probe waits for its own timeout, so Ctrl-C lands inside a probe).
/// The signal goes once each node has seen a connection, i.e. once every
/// wait has started; no sleep. Terraform exits within 5 s of the signal;
/// what exists (the secrets) is in state, and the interrupted objects made
/// nothing to keep.
#[test]
fn ctrl_c_during_talos_waits_returns_within_5_s() {
    let tf = terraform("1.15.5").expect("Terraform 1.15.5 (set PROXTALOS_TF)");
    let ws = workspace(&tf);
    let nodes: Vec<SilentPort> = (0..4).map(|_| SilentPort::start()).collect();
    let (a, b, c, d) = (nodes[0].addr(), nodes[1].addr(), nodes[2].addr(), nodes[3].addr());
    ws.write_config(&format!(
        r#"{HEADER}
resource "proxtalos_machine_secrets" "this" {{}}

data "proxtalos_machine_configuration" "cp" {{
  cluster_name       = "stop"
  cluster_endpoint   = "https://10.0.0.10:6443"
  machine_type       = "controlplane"
  machine_secrets    = proxtalos_machine_secrets.this.machine_secrets
  talos_version      = "v1.13"
  kubernetes_version = "1.33.1"
  install_disk       = "/dev/sda"
}}

resource "proxtalos_machine_configuration_apply" "cp" {{
  node                  = "{a}"
  client_configuration  = proxtalos_machine_secrets.this.client_configuration
  machine_configuration = data.proxtalos_machine_configuration.cp.machine_configuration
}}

resource "proxtalos_machine_bootstrap" "cp" {{
  node                 = "{b}"
  client_configuration = proxtalos_machine_secrets.this.client_configuration
}}

resource "proxtalos_cluster_kubeconfig" "cp" {{
  node                 = "{c}"
  client_configuration = proxtalos_machine_secrets.this.client_configuration
}}

data "proxtalos_cluster_health" "cp" {{
  client_configuration = proxtalos_machine_secrets.this.client_configuration
  control_plane_nodes  = ["{d}"]
  timeouts {{
    read = "3m"
  }}
}}
"#
    ));
    ws.init();
    let waiting = [
        "machine_configuration_apply.cp: Creating",
        "machine_bootstrap.cp: Creating",
        "cluster_kubeconfig.cp: Creating",
        "cluster_health.cp: Reading",
    ];
    let text = crate::support::terraform::interrupt(&ws, &["apply", "-no-color", "-auto-approve"], &|out| {
        waiting.iter().all(|w| out.contains(w)) && nodes.iter().all(|n| n.accepted() > 0)
    });
    assert_eq!(text.matches("Interrupted: Terraform asked the provider to stop").count(), 4, "{text}");
    assert!(ws.resource("proxtalos_machine_secrets.this").is_some(), "the secrets are in state");
    let interrupted = [
        "proxtalos_machine_configuration_apply.cp",
        "proxtalos_machine_bootstrap.cp",
        "proxtalos_cluster_kubeconfig.cp",
    ];
    for r in interrupted {
        assert!(ws.resource(r).is_none(), "{r} reached no node, so nothing of it is in state");
    }
    // Destroy reads data sources again: without them, nothing waits.
    ws.write_config(&format!("{HEADER}\nresource \"proxtalos_machine_secrets\" \"this\" {{}}\n"));
    ws.ok(&["destroy", "-no-color", "-auto-approve"]);
}
