//! Every example under `examples/*/*/` that can run on this machine is
//! **applied** with real Terraform 1.15.5 (issue 11 §4: `validate` let a
//! documented example that fails at apply go unnoticed), re-planned (must
//! be empty) and destroyed:
//!
//! - examples that need no server: as they are;
//! - examples for Proxmox objects: against fakepve, with a provider block
//!   for it added (the docs show these after the provider example), and
//!   schematics against the lab's Image Factory double;
//! - `proxtalos_machine_configuration_apply`: against simulated Talos nodes
//!   in maintenance mode, its `10.0.0.x` addresses moved to loopback.
//!
//! The others say in their own header why no test applies them (a line
//! `# Not applied by the tests: ...`), and the test fails for an example
//! that does neither. `examples/quickstart` is applied by tests/it/quickstart.rs
//! and tests/it/change_stories.rs, `examples/cluster` by tests/it/quickstart.rs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::IpAddr;
use std::path::Path;

use crate::support::fakepve::FakePve;
use crate::support::terraform::{Workspace, build_provider, example_dirs, repo_root, terraform};
use proxtalos::talos::sim::{NodeSpec, SimCluster, SimOptions};
use serde_json::json;

/// The header line of an example that no test applies.
const NOT_APPLIED: &str = "# Not applied by the tests:";

/// What an applied example needs.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Needs {
    Nothing,
    Pve,
    TalosNodes,
}

/// The examples this file applies.
const APPLIED: &[(&str, Needs)] = &[
    ("data-sources/proxtalos_client_configuration", Needs::Nothing),
    ("data-sources/proxtalos_machine_configuration", Needs::Nothing),
    ("ephemeral-resources/proxtalos_machine_configuration", Needs::Nothing),
    ("ephemeral-resources/proxtalos_machine_secrets", Needs::Nothing),
    ("resources/proxtalos_machine_secrets", Needs::Nothing),
    ("functions/schematic_id", Needs::Nothing),
    ("functions/installer_image", Needs::Nothing),
    ("functions/image_url", Needs::Nothing),
    ("provider", Needs::Pve),
    ("resources/proxtalos_image", Needs::Pve),
    ("resources/proxtalos_image_factory_schematic", Needs::Pve),
    ("resources/proxtalos_vm", Needs::Pve),
    ("resources/proxtalos_pool", Needs::Pve),
    ("resources/proxtalos_pci_mapping", Needs::Pve),
    ("resources/proxtalos_ha_resource", Needs::Pve),
    ("resources/proxtalos_machine_configuration_apply", Needs::TalosNodes),
    ("resources/proxtalos_machine_bootstrap", Needs::TalosNodes),
    ("resources/proxtalos_cluster", Needs::TalosNodes),
    ("actions/proxtalos_etcd_snapshot", Needs::TalosNodes),
    ("actions/proxtalos_node_reboot", Needs::TalosNodes),
    ("actions/proxtalos_node_rollback", Needs::TalosNodes),
    ("actions/proxtalos_vm_power", Needs::Pve),
    ("list-resources/proxtalos_vm", Needs::Pve),
];

/// The line of an example whose actions the test does not invoke (and why).
const NOT_INVOKED: &str = "# Not invoked by the example test:";

/// `TYPE.NAME` of each `action "TYPE" "NAME"` block in `text`.
fn actions_in(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("action \""))
        .filter_map(|rest| {
            let mut parts = rest.split('"');
            let ty = parts.next()?;
            let name = parts.nth(1)?;
            Some(format!("{ty}.{name}"))
        })
        .collect()
}

fn name_of(dir: &Path) -> String {
    dir.strip_prefix(repo_root().join("examples")).unwrap().display().to_string()
}

fn tf_text(dir: &Path) -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|f| f.unwrap().path())
        .filter(|p| crate::support::terraform::is_config(p))
        .map(|p| (p.file_name().unwrap().to_string_lossy().to_string(), std::fs::read_to_string(&p).unwrap()))
        .collect();
    files.sort();
    files
}

#[test]
fn every_example_is_applied_or_says_why_not() {
    for dir in example_dirs() {
        let name = name_of(&dir);
        let applied = APPLIED.iter().any(|(n, _)| *n == name);
        let says_why = tf_text(&dir).iter().any(|(_, t)| t.lines().any(|l| l.starts_with(NOT_APPLIED)));
        assert!(
            applied != says_why,
            "examples/{name}: {}",
            if applied {
                "is applied here, so drop its `Not applied` line"
            } else {
                "add it to APPLIED, or a `# Not applied by the tests: <why>` line"
            }
        );
    }
}

/// Simulated Talos nodes in maintenance mode, on their own runtime. The
/// examples' addresses (`10.0.0.11`, …) map to the same loopback ones, so
/// one test at a time holds them (`_turn`, released after the nodes stop).
struct Nodes {
    rt: tokio::runtime::Runtime,
    cluster: Option<SimCluster>,
    _turn: std::sync::MutexGuard<'static, ()>,
}

/// Whose turn it is to run simulated nodes at the examples' addresses.
static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());

impl Drop for Nodes {
    fn drop(&mut self) {
        let _guard = self.rt.enter();
        self.cluster.take();
    }
}

/// `10.0.0.` of the examples → this loopback /24.
fn loopback_net() -> String {
    format!("127.{}.77.", 200 + std::process::id() % 50)
}

fn start_nodes(hosts: &[u8]) -> Nodes {
    // A test that failed while holding the turn poisons it; the next one
    // still runs.
    let turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let net = loopback_net();
    let addrs: Vec<IpAddr> = hosts.iter().map(|h| format!("{net}{h}").parse().unwrap()).collect();
    let specs = addrs.iter().map(|a| NodeSpec::metal(*a)).collect();
    let cluster = rt.block_on(SimCluster::start(SimOptions::fast("v1.14.0"), specs)).unwrap();
    Nodes { rt, cluster: Some(cluster), _turn: turn }
}

fn apply_example(name: &str, needs: Needs, pve: Option<&FakePve>) {
    let tf = terraform("1.15.5").expect("Terraform 1.15.5");
    let bin = build_provider("bin", "terraform-provider-proxtalos");
    let mut ws = Workspace::new(&tf, "registry.terraform.io/proxtalos/proxtalos", &bin);
    let files = tf_text(&repo_root().join("examples").join(name));
    let mut has_terraform_block = false;
    for (file, mut text) in files {
        if needs == Needs::TalosNodes {
            text = text.replace("10.0.0.", &loopback_net());
        }
        has_terraform_block |= text.contains("required_providers");
        std::fs::write(ws.work().join(file), text).unwrap();
    }
    if let Some(pve) = pve {
        std::fs::write(ws.work().join("ca.pem"), &pve.ca_pem).unwrap();
        let token = pve.token("root@pam!examples", "3b0f2a1c-0000-4000-8000-0000000e7a11");
        if name == "provider" {
            // Its own provider block: endpoint and token from the
            // environment would be overridden, so point it at the fake.
            std::fs::write(ws.work().join("pve-root-ca.pem"), &pve.ca_pem).unwrap();
            let p = ws.work().join("provider.tf");
            let text = std::fs::read_to_string(&p).unwrap().replace("https://pve.example.com:8006/", &pve.url);
            std::fs::write(p, text).unwrap();
            ws.env("TF_VAR_proxmox_api_token", &token);
        } else {
            let header = pve.provider_header("proxtalos/proxtalos", &format!("api_token = {token:?}"));
            let header = if has_terraform_block {
                header.split_once("\nprovider ").map(|(_, p)| format!("provider {p}")).unwrap()
            } else {
                header
            };
            std::fs::write(ws.work().join("providers.tf"), header).unwrap();
        }
    } else if !has_terraform_block {
        std::fs::write(
            ws.work().join("providers.tf"),
            "terraform {\n  required_providers {\n    proxtalos = { source = \"proxtalos/proxtalos\" }\n  }\n}\n",
        )
        .unwrap();
    }
    // Schematics register with the lab's Image Factory double (the
    // provider's default factory, from the environment as in the lab).
    let factory_rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let _factory = tf_text(&repo_root().join("examples").join(name))
        .iter()
        .any(|(_, t)| t.contains("proxtalos_image_factory_schematic"))
        .then(|| {
            let f = factory_rt.block_on(proxtalos::lab::factory::FactoryDouble::start()).unwrap();
            ws.env("PROXTALOS_IMAGE_FACTORY_URL", f.url());
            f
        });
    if name == "ephemeral-resources/proxtalos_machine_secrets" {
        let secrets = std::fs::read_to_string(repo_root().join("tests/fixtures/talos/golden/secrets.yaml")).unwrap();
        ws.env("TF_VAR_secrets_yaml", &secrets);
    }
    ws.init();
    if name.starts_with("list-resources/") {
        // A VM made by hand that the example's filters pick, adopted
        // through generated configuration.
        if let Some(pve) = pve {
            pve.cmd(json!({"op": "add_vm", "vmid": 180, "name": "talos-cp-1", "status": "running", "config": {
                "name": "talos-cp-1", "cores": 2, "memory": 4096, "tags": "talos", "scsihw": "virtio-scsi-single",
                "scsi0": "local-lvm:vm-180-disk-0,size=20G", "net0": "virtio=BC:24:11:00:B4:01,bridge=vmbr0"}}));
        }
        let out = ws.ok(&["query", "-no-color"]);
        assert!(out.contains("talos-cp-1 (pve1/180)"), "examples/{name}:\n{out}");
        ws.ok(&["query", "-no-color", "-generate-config-out=adopt.tf"]);
    }
    let out = ws.apply();
    assert!(out.contains("Apply complete!"), "examples/{name}:\n{out}");
    let plan = ws.plan_exit(0);
    assert!(plan.contains("No changes"), "examples/{name}: the re-plan is not empty:\n{plan}");
    // Its actions, in the order written, unless it says why not.
    let texts = tf_text(&repo_root().join("examples").join(name));
    if !texts.iter().any(|(_, t)| t.contains(NOT_INVOKED)) {
        for action in texts.iter().flat_map(|(_, t)| actions_in(t)) {
            let out = ws.ok(&["apply", &format!("-invoke=action.{action}"), "-auto-approve", "-no-color"]);
            assert!(out.contains("Apply complete!"), "examples/{name}: action.{action}:\n{out}");
        }
    }
    let out = ws.ok(&["destroy", "-auto-approve", "-no-color"]);
    assert!(out.contains("Destroy complete!"), "examples/{name}:\n{out}");
}

#[test]
fn examples_without_a_server_apply() {
    for (name, needs) in APPLIED {
        if *needs == Needs::Nothing {
            apply_example(name, *needs, None);
        }
    }
}

#[test]
fn proxmox_examples_apply_against_fakepve() {
    let pve = FakePve::start();
    // The VM example boots an ISO it expects on the storage.
    pve.cmd(json!({"op": "store_file", "storage": "local", "name": "talos-nocloud-amd64.iso", "size": 104857600, "content": "iso"}));
    // The image example downloads `import` content, which PVE 8.4+ allows
    // once the storage lists it (the example's header says so).
    pve.cmd(json!({"op": "storage_content", "storage": "local", "content": "iso,vztmpl,backup,import"}));
    // The VM example passes through a GPU mapping it expects in PVE, as it
    // expects the ISO (the proxtalos_pci_mapping example makes its own).
    pve.cmd(json!({"op": "pci_mapping_set", "id": "gpu0",
        "entry": {"map": ["node=pve1,path=0000:01:00.0,id=10de:2204"]}}));
    for (name, needs) in APPLIED {
        if *needs == Needs::Pve {
            apply_example(name, *needs, Some(&pve));
        }
    }
    assert!(pve.vmids().is_empty(), "destroy left {:?}", pve.vmids());
}

#[test]
fn machine_configuration_apply_example_applies_to_simulated_nodes() {
    // The example's three control planes (.11-.13) and two workers (.21, .22).
    let _nodes = start_nodes(&[11, 12, 13, 21, 22]);
    apply_example("resources/proxtalos_machine_configuration_apply", Needs::TalosNodes, None);
}

/// The plain apply creates its cluster; tests/it/actions.rs invokes the
/// action itself.
#[test]
fn etcd_snapshot_action_example_applies_to_a_simulated_node() {
    let _nodes = start_nodes(&[11]);
    apply_example("actions/proxtalos_etcd_snapshot", Needs::TalosNodes, None);
}

/// The plain apply creates the cluster, then the action reboots its node.
#[test]
fn node_reboot_action_example_reboots_a_simulated_node() {
    let _nodes = start_nodes(&[11]);
    apply_example("actions/proxtalos_node_reboot", Needs::TalosNodes, None);
}

/// The plain apply creates its cluster; tests/it/actions.rs upgrades a
/// node and rolls it back.
#[test]
fn node_rollback_action_example_applies_to_a_simulated_node() {
    let _nodes = start_nodes(&[11]);
    apply_example("actions/proxtalos_node_rollback", Needs::TalosNodes, None);
}

#[test]
fn cluster_example_creates_a_cluster_of_simulated_nodes() {
    let _nodes = start_nodes(&[11, 12, 13, 21, 22]);
    apply_example("resources/proxtalos_cluster", Needs::TalosNodes, None);
}

#[test]
fn machine_bootstrap_example_bootstraps_a_simulated_node() {
    let _nodes = start_nodes(&[11]);
    apply_example("resources/proxtalos_machine_bootstrap", Needs::TalosNodes, None);
}
