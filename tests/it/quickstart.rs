//! README command 1 end to end.
//!
//! Without `TF_ACC`: `scripts/quickstart.sh` (build, lab, apply of
//! examples/quickstart, outputs, empty re-plan) and then
//! `scripts/quickstart.sh destroy` (destroy, every VM gone from fakepve,
//! lab stopped). Its own lab directory, PVE port and loopback network, so it
//! runs next to a developer's lab and other tests. About 10 s with a warm
//! build.
//!
//! With `TF_ACC` set: the same quickstart against the real Proxmox the
//! `PROXMOX_VE_*` variables name (docs/guides/real-proxmox-lab.md), driven by
//! `crate::support::real_lab`. That path also runs on every test run against an
//! in-process embedded lab, configured through the same variable names.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::real_lab::{self, Target, VarError};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn run(dir: &Path, args: &[&str]) -> (bool, String) {
    run_on(dir, args, 10)
}

/// [`run`] with the nodes on `127.<id>.<octet>.0/24` (tests that run at the
/// same time need networks of their own).
fn run_on(dir: &Path, args: &[&str], octet: u8) -> (bool, String) {
    run_with(dir, args, octet, &[])
}

/// [`run_on`] with more environment for the script.
fn run_with(dir: &Path, args: &[&str], octet: u8, env: &[(&str, &str)]) -> (bool, String) {
    let id = std::process::id();
    let mut cmd = Command::new("bash");
    cmd.envs(env.iter().copied());
    // quickstart.sh runs `cargo build`
    crate::support::without_test_cargo_env(&mut cmd);
    cmd.arg(root().join("scripts/quickstart.sh"))
        .args(args)
        .env("QUICKSTART_DIR", dir.join("work"))
        .env("PROXTALOS_LAB_DIR", dir.join("lab"))
        .env("QUICKSTART_PORT", "0") // any free port; the endpoint comes from lab.env
        .env("QUICKSTART_NETWORK", format!("127.{}.{octet}.0/24", 150 + id % 50))
        .env("PROXTALOS_FAKEPVE", crate::support::fakepve::launcher());
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
    let env = |k: &str| std::env::var(k).ok();
    match real_lab::target(&env) {
        Err(e) => panic!("{e}"),
        Ok(Some(target)) => {
            let provider = crate::support::terraform::build_provider("bin", "terraform-provider-proxtalos");
            real_lab::run_quickstart(&target, &provider);
        }
        Ok(None) => embedded_quickstart_then_destroy(),
    }
}

fn embedded_quickstart_then_destroy() {
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
    real_etcd_under_the_control_planes(&talosconfig);
    kubectl_lists_five_ready_nodes(&out, &tmp.path().join("work/kubeconfig"));

    let (ok, out) = run(tmp.path(), &["destroy"]);
    assert!(ok, "destroy failed:\n{out}");
    assert!(out.contains("Destroy complete! Resources: 14 destroyed."), "{out}");
    assert!(out.contains("VMs left on the lab's PVE: none"), "every VM gone from fakepve:\n{out}");
    assert!(out.contains("lab: stopped"), "{out}");
    assert!(!tmp.path().join("work/kubeconfig").exists(), "credentials removed on destroy");
}

/// The seeds' examples (issue 16), each applied in its own lab with
/// `scripts/quickstart.sh --example NAME` (outputs, kubectl, empty
/// re-plan), then a day-2 step, then destroyed with no VM left.
///
/// - `longhorn`: a larger data disk grows the workers' scsi1 in place
///   (the lab's harness models PVE's resize, fakepve.md G9) and touches
///   nothing else (a fixed user-volume minimum: no configuration rollout);
///   a smaller one is refused at plan time.
/// - `gpu-worker`: another vendor is another schematic: a new ISO, and
///   every node reinstalled from the new installer at the same Talos
///   version, one at a time (a configuration change alone would keep the
///   old extensions running).
/// - `cilium`: no kube-proxy pods (the lab's control planes, like Talos's
///   manifest controller, deploy none with `cluster.proxy.disabled`).
#[test]
fn the_seed_examples_apply_in_the_lab() {
    let tmp = tempfile::tempdir().unwrap();
    let _guard = LabGuard(tmp.path().to_path_buf());
    let kubectl = crate::support::kubectl::kubectl();

    let (ok, out) = run_on(tmp.path(), &["--example", "gpu-worker"], 13);
    assert!(ok, "gpu-worker failed:\n{out}");
    assert!(out.contains("No changes. Your infrastructure matches the configuration."), "{out}");
    let (ok, out) = run_on(tmp.path(), &["--example", "gpu-worker", "--", "-var", "gpu_vendor=amd"], 13);
    assert!(ok, "switching the GPU vendor failed:\n{out}");
    for n in ["cp-1", "cp-2", "cp-3", "worker-1", "worker-2"] {
        assert!(out.contains(&format!("quickstart-{n}: Talos v1.13.9 from the new installer")), "{n}:\n{out}");
    }
    assert!(out.contains("No changes. Your infrastructure matches the configuration."), "{out}");
    let (ok, out) = run_on(tmp.path(), &["destroy"], 13);
    assert!(ok && out.contains("VMs left on the lab's PVE: none"), "{out}");

    let (ok, out) = run_on(tmp.path(), &["--example", "cilium"], 13);
    assert!(ok, "cilium failed:\n{out}");
    assert!(out.contains("No changes. Your infrastructure matches the configuration."), "{out}");
    if let Some(bin) = &kubectl {
        let pods = Command::new(bin)
            .args(["--kubeconfig", tmp.path().join("work/kubeconfig").to_str().unwrap(), "get", "pods", "-A"])
            .output()
            .unwrap();
        let pods = String::from_utf8_lossy(&pods.stdout);
        assert!(pods.contains("kube-apiserver") && !pods.contains("kube-proxy"), "{pods}");
    }
    let (ok, out) = run_on(tmp.path(), &["destroy"], 13);
    assert!(ok && out.contains("VMs left on the lab's PVE: none"), "{out}");

    let (ok, out) = run_on(tmp.path(), &["--example", "longhorn"], 13);
    assert!(ok, "longhorn failed:\n{out}");
    assert!(out.contains("No changes. Your infrastructure matches the configuration."), "{out}");
    let (ok, out) = run_on(tmp.path(), &["--example", "longhorn", "--", "-var", "longhorn_disk_gb=60"], 13);
    assert!(ok, "growing the Longhorn disks failed:\n{out}");
    assert!(out.contains("Apply complete! Resources: 0 added, 2 changed, 0 destroyed."), "{out}");
    let (ok, out) = run_on(tmp.path(), &["--example", "longhorn", "--", "-var", "longhorn_disk_gb=40"], 13);
    assert!(!ok && out.contains("Disks cannot shrink") && out.contains("disks[1].size"), "{out}");
    // Destroy remembers the arguments of the last apply that succeeded.
    let (ok, out) = run_on(tmp.path(), &["destroy"], 13);
    assert!(ok, "destroy failed:\n{out}");
    assert!(out.contains("VMs left on the lab's PVE: none"), "{out}");
}

/// The quickstart on a three-node PVE (`QUICKSTART_PVE_NODES=3`, issue
/// 16): `placement` puts the three control planes on three nodes and the
/// two workers on two, within one apply; the re-plan is empty (the choice
/// is kept), and destroy leaves no VM.
#[test]
fn the_quickstart_spreads_its_control_planes_over_three_pve_nodes() {
    let tmp = tempfile::tempdir().unwrap();
    let _guard = LabGuard(tmp.path().to_path_buf());
    let (ok, out) = run_with(tmp.path(), &[], 12, &[("QUICKSTART_PVE_NODES", "3")]);
    assert!(ok, "quickstart failed:\n{out}");
    assert!(out.contains("Apply complete! Resources: 14 added, 0 changed, 0 destroyed."), "{out}");
    assert!(out.contains("No changes. Your infrastructure matches the configuration."), "{out}");
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(tmp.path().join("work/terraform.tfstate")).unwrap()).unwrap();
    let mut by_type: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in state["resources"].as_array().unwrap().iter().filter(|r| r["type"] == "proxtalos_vm") {
        for i in r["instances"].as_array().unwrap() {
            let a = &i["attributes"];
            let kind = if a["tags"].as_array().unwrap().iter().any(|t| t == "controlplane") { "cp" } else { "worker" };
            by_type.entry(kind.into()).or_default().push(a["node"].as_str().unwrap().to_string());
        }
    }
    let mut cps = by_type["cp"].clone();
    cps.sort();
    assert_eq!(cps, ["pve1", "pve2", "pve3"], "three control planes on three PVE nodes: {by_type:?}");
    let workers = &by_type["worker"];
    assert!(workers.len() == 2 && workers[0] != workers[1], "two workers on two nodes: {by_type:?}");
    let (ok, out) = run_on(tmp.path(), &["destroy"], 12);
    assert!(ok, "destroy failed:\n{out}");
    assert!(out.contains("VMs left on the lab's PVE: none"), "{out}");
}

/// `scripts/quickstart.sh --example cluster` (issue 14): the quickstart's
/// VMs with `proxtalos_cluster`, applied in the lab like the quickstart;
/// then, with the lab still running, `-- -var talos_version=v1.14.2
/// -var worker_count=3` upgrades every node in place and adds a worker
/// (the re-plan with the same arguments is empty); destroy remembers the
/// arguments (a plan with the defaults would be a downgrade) and leaves no
/// VM.
#[test]
fn the_cluster_example_upgrades_in_the_lab() {
    let tmp = tempfile::tempdir().unwrap();
    let _guard = LabGuard(tmp.path().to_path_buf());
    let (ok, out) = run_on(tmp.path(), &["--example", "cluster"], 11);
    assert!(ok, "quickstart --example cluster failed:\n{out}");
    assert!(out.contains("a copy of examples/cluster"), "{out}");
    assert!(out.contains("No changes. Your infrastructure matches the configuration."), "{out}");
    kubectl_lists_five_ready_nodes(&out, &tmp.path().join("work/kubeconfig"));
    // The endpoint is the control planes' shared VIP (host first_host - 1).
    let kubeconfig = std::fs::read_to_string(tmp.path().join("work/kubeconfig")).unwrap();
    let server = kubeconfig.lines().find_map(|l| l.trim().strip_prefix("server: ")).unwrap_or_default();
    assert!(server.ends_with(".11.10:6443"), "the kubeconfig's server is {server}");

    let (ok, out) = run_on(
        tmp.path(),
        &["--example", "cluster", "--", "-var", "talos_version=v1.14.2", "-var", "worker_count=3"],
        11,
    );
    assert!(ok, "the upgrade failed:\n{out}");
    assert!(!out.contains("starting the lab"), "the running lab is used:\n{out}");
    assert!(out.contains("1. quickstart-cp-1: Talos v1.13.9 → v1.14.2"), "{out}");
    assert!(out.contains("quickstart-worker-3: join as a worker"), "{out}");
    if crate::support::kubectl::kubectl().is_some() {
        assert_eq!(out.matches("Talos (v1.14.2)").count(), 6, "kubectl lists six nodes on v1.14.2:\n{out}");
    }
    assert!(out.contains("No changes. Your infrastructure matches the configuration."), "{out}");

    let (ok, out) = run_on(tmp.path(), &["destroy"], 11);
    assert!(ok, "destroy failed:\n{out}");
    assert!(out.contains("VMs left on the lab's PVE: none"), "{out}");
}

/// Issue 13 §2: the lab runs real etcd under the quickstart's three control
/// planes; etcd's own etcdctl lists three members named after the nodes'
/// host names (the quickstart's HostnameConfig: `quickstart-<key>`).
fn real_etcd_under_the_control_planes(talosconfig: &str) {
    let Some(bin) = crate::etcd_real::etcd() else { return };
    let cp = talosconfig
        .lines()
        .map(str::trim)
        .find_map(|l| l.strip_prefix("- ").filter(|ip| ip.parse::<std::net::IpAddr>().is_ok()))
        .unwrap_or_else(|| panic!("no endpoint in the talosconfig:\n{talosconfig}"));
    let names = crate::etcd_real::etcdctl_member_names(&bin, cp);
    assert_eq!(names.len(), 3, "{names:?}");
    assert!(names.iter().all(|n| n.starts_with("quickstart-")), "{names:?}");
}

/// Issue 13 §3/§4: the quickstart lists the nodes with the real kubectl
/// against the lab's Kubernetes API, and kubectl sees all five Ready, the
/// control planes with their role.
fn kubectl_lists_five_ready_nodes(out: &str, kubeconfig: &Path) {
    let Some(bin) = crate::support::kubectl::kubectl() else { return };
    assert!(out.contains("kubectl get nodes (the real kubectl"), "{out}");
    let cache = tempfile::tempdir().unwrap();
    let text = Command::new(bin)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .arg("--cache-dir")
        .arg(cache.path())
        .args(["get", "nodes", "--no-headers"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout).into_owned();
    let rows: Vec<Vec<&str>> = text.lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(rows.len(), 5, "{text}");
    assert!(rows.iter().all(|r| r[0].starts_with("quickstart-") && r[1] == "Ready"), "{text}");
    assert_eq!(rows.iter().filter(|r| r[2] == "control-plane").count(), 3, "{text}");
}

// ---- the real-lab path ----

/// 127.N.20.0/24 with the N of `run` above (its lab uses 127.N.10.0/24).
fn lab_net() -> String {
    format!("127.{}.20", 150 + std::process::id() % 50)
}

/// The real-lab path (TF_ACC), pointed at an embedded lab started here.
#[test]
fn the_real_lab_path_against_the_embedded_lab() {
    let (rt, lab, target) = real_lab::embedded(&lab_net());
    let provider = crate::support::terraform::build_provider("bin", "terraform-provider-proxtalos");
    // Terraform runs on this thread; the lab on the runtime's workers.
    let report = real_lab::run_quickstart(&target, &provider);
    assert_eq!(report.vm_ids.len(), 5);
    let c = lab.client().unwrap();
    let listed = rt.block_on(c.execute(&proxtalos::proxmox::cluster::vm_resources())).unwrap();
    assert_eq!(listed.as_array().map(Vec::len), Some(0), "every VM gone from fakepve: {listed}");
    // The lab notices a destroyed VM at its next poll, after `destroy` ends.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !lab.nodes().is_empty() {
        assert!(std::time::Instant::now() < deadline, "no simulated node left after 30 s: {:?}", lab.nodes());
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    rt.block_on(lab.stop());
}

// ---- the variables ----

fn valid() -> BTreeMap<&'static str, String> {
    [
        ("TF_ACC", "1"),
        ("PROXMOX_VE_ENDPOINT", "https://pve.lan:8006/"),
        ("PROXMOX_VE_API_TOKEN", "proxtalos@pve!terraform=01234567-89ab-cdef-0123-456789abcdef"),
        ("PROXMOX_VE_INSECURE", "true"),
        ("PROXMOX_VE_ACC_NODE_NAME", "pve"),
        ("PROXMOX_VE_ACC_VM_STORAGE", "local-lvm"),
        ("PROXMOX_VE_ACC_IMAGE_STORAGE", "local"),
        ("PROXMOX_VE_ACC_BRIDGE", "vmbr0"),
        ("PROXMOX_VE_ACC_NODE_ADDRESSES", "192.168.10.200-192.168.10.209"),
        ("PROXMOX_VE_ACC_NODE_PREFIX_LENGTH", "24"),
        ("PROXMOX_VE_ACC_NODE_GATEWAY", "192.168.10.1"),
    ]
    .into_iter()
    .map(|(k, v)| (k, v.to_string()))
    .collect()
}

fn parse(vars: &BTreeMap<&'static str, String>) -> Result<Option<Target>, VarError> {
    real_lab::target(&|k| vars.get(k).cloned())
}

fn with(name: &'static str, value: Option<&str>) -> Result<Option<Target>, VarError> {
    let mut vars = valid();
    match value {
        Some(v) => vars.insert(name, v.to_string()),
        None => vars.remove(name),
    };
    parse(&vars)
}

#[test]
fn without_tf_acc_the_embedded_lab_runs_whatever_else_is_set() {
    for acc in [None, Some(""), Some("0")] {
        assert_eq!(with("TF_ACC", acc), Ok(None), "{acc:?}");
    }
    let mut vars = valid();
    vars.remove("TF_ACC");
    vars.insert("PROXMOX_VE_ENDPOINT", "nonsense".into());
    assert_eq!(parse(&vars), Ok(None));
}

#[test]
fn the_variables_map_onto_the_quickstart() {
    let t = parse(&valid()).unwrap().unwrap();
    assert_eq!(t.network_cidr(), "192.168.10.0/24");
    assert_eq!(t.first_host(), 200);
    assert_eq!(
        t.node_addresses(),
        ["192.168.10.200", "192.168.10.201", "192.168.10.202", "192.168.10.203", "192.168.10.204"]
    );
    assert_eq!(t.nameserver.to_string(), "192.168.10.1", "the gateway when no nameserver is given");
    assert!(t.insecure);
    let vars = t.tfvars();
    for want in [
        "proxmox_endpoint = \"https://pve.lan:8006/\"",
        "proxmox_insecure = true",
        "proxmox_node     = \"pve\"",
        "vm_storage       = \"local-lvm\"",
        "iso_storage      = \"local\"",
        "bridge           = \"vmbr0\"",
        "network_cidr     = \"192.168.10.0/24\"",
        "first_host       = 200",
        "gateway          = \"192.168.10.1\"",
        "dns_servers      = [\"192.168.10.1\"]",
    ] {
        assert!(vars.contains(want), "{want:?} missing from:\n{vars}");
    }
    assert!(!vars.contains("01234567"), "the token never goes into a file");
    assert!(!format!("{t:?}").contains("01234567"), "nor into Debug");

    // A /28 whose range starts mid-network; a nameserver of its own.
    let mut v = valid();
    v.insert("PROXMOX_VE_ACC_NODE_ADDRESSES", "10.1.2.35-10.1.2.39".into());
    v.insert("PROXMOX_VE_ACC_NODE_PREFIX_LENGTH", "28".into());
    v.insert("PROXMOX_VE_ACC_NODE_GATEWAY", "10.1.2.33".into());
    v.insert("PROXMOX_VE_ACC_NODE_NAMESERVER", "9.9.9.9".into());
    v.remove("PROXMOX_VE_INSECURE");
    let t = parse(&v).unwrap().unwrap();
    assert_eq!((t.network_cidr().as_str(), t.first_host()), ("10.1.2.32/28", 3));
    assert!(t.tfvars().contains("dns_servers      = [\"9.9.9.9\"]"));
    assert!(!t.insecure);
}

#[test]
fn a_missing_or_malformed_variable_is_an_error_naming_it() {
    for (name, required) in real_lab::VARIABLES {
        if *required {
            let e = with(name, None).unwrap_err();
            assert_eq!(e.name, *name);
            assert!(e.to_string().contains(name) && e.to_string().contains("is not set"), "{e}");
            assert_eq!(with(name, Some(" ")).unwrap_err().name, *name, "blank counts as missing");
        }
    }
    let cases: &[(&str, &str)] = &[
        ("PROXMOX_VE_ENDPOINT", "pve.lan:8006"),
        ("PROXMOX_VE_ENDPOINT", "http://pve.lan:8006/"),
        ("PROXMOX_VE_API_TOKEN", "proxtalos@pve:terraform:secret"),
        ("PROXMOX_VE_API_TOKEN", "proxtalos@pve!terraform="),
        ("PROXMOX_VE_INSECURE", "maybe"),
        ("PROXMOX_VE_ACC_CA_CERTIFICATE_FILE", "/nonexistent/pve-root-ca.pem"),
        ("PROXMOX_VE_ACC_NODE_NAME", "pve one"),
        ("PROXMOX_VE_ACC_VM_STORAGE", "local/lvm"),
        ("PROXMOX_VE_ACC_IMAGE_STORAGE", "local:iso"),
        ("PROXMOX_VE_ACC_BRIDGE", "vmbr0;"),
        ("PROXMOX_VE_ACC_NODE_ADDRESSES", "192.168.10.200"),
        ("PROXMOX_VE_ACC_NODE_ADDRESSES", "192.168.10.200-192.168.10.203"),
        ("PROXMOX_VE_ACC_NODE_ADDRESSES", "192.168.10.209-192.168.10.200"),
        ("PROXMOX_VE_ACC_NODE_ADDRESSES", "192.168.10.250-192.168.11.9"),
        ("PROXMOX_VE_ACC_NODE_ADDRESSES", "192.168.10.0-192.168.10.9"),
        ("PROXMOX_VE_ACC_NODE_ADDRESSES", "192.168.10.200-192.168.10.x"),
        ("PROXMOX_VE_ACC_NODE_PREFIX_LENGTH", "/24"),
        ("PROXMOX_VE_ACC_NODE_PREFIX_LENGTH", "33"),
        ("PROXMOX_VE_ACC_NODE_GATEWAY", "192.168.11.1"),
        ("PROXMOX_VE_ACC_NODE_GATEWAY", "192.168.10.202"),
        ("PROXMOX_VE_ACC_NODE_GATEWAY", "gw.lan"),
        ("PROXMOX_VE_ACC_NODE_NAMESERVER", "dns.lan"),
    ];
    for (name, value) in cases {
        let e = with(name, Some(value)).unwrap_err();
        assert_eq!(e.name, *name, "{value:?}: {e}");
        assert!(e.to_string().starts_with("TF_ACC is set"), "{e}");
    }
    let e = with("PROXMOX_VE_API_TOKEN", Some("user@pve!tf-secret-abc")).unwrap_err();
    assert!(!e.to_string().contains("secret-abc"), "the token is never echoed: {e}");
}

/// The guide's variable table lists exactly what the parser reads.
#[test]
fn the_guide_lists_exactly_the_variables_the_test_reads() {
    let guide = std::fs::read_to_string(root().join("docs/guides/real-proxmox-lab.md")).unwrap();
    let table = guide.split("## The variables").nth(1).expect("a \"The variables\" section");
    let table = table.split("\n## ").next().unwrap();
    let documented: std::collections::BTreeSet<String> = table
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split('`').next())
        .map(str::to_string)
        .collect();

    // Every name the parser asks for, given a complete set with a CA file.
    let ca = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(ca.path(), "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n").unwrap();
    let mut vars = valid();
    vars.insert("PROXMOX_VE_ACC_CA_CERTIFICATE_FILE", ca.path().display().to_string());
    vars.insert("PROXMOX_VE_ACC_NODE_NAMESERVER", "192.168.10.1".into());
    let asked = std::sync::Mutex::new(std::collections::BTreeSet::new());
    let t = real_lab::target(&|k| {
        asked.lock().unwrap().insert(k.to_string());
        vars.get(k).cloned()
    });
    assert!(t.unwrap().is_some());
    let asked = asked.into_inner().unwrap();
    assert_eq!(documented, asked, "docs/guides/real-proxmox-lab.md's table vs the parser");
    let declared: std::collections::BTreeSet<String> = real_lab::VARIABLES.iter().map(|(n, _)| n.to_string()).collect();
    assert_eq!(declared, asked);
}

/// The figures benchmark's smoke run (scripts/bench-quickstart.sh runs the
/// real one): at a tiny time scale, with the debug provider, it prints every
/// figure line and the re-plan is empty. Nothing about timing is asserted
/// (at this scale the ratio is meaningless, so exit 1 is fine).
#[test]
fn bench_quickstart_prints_every_figure() {
    // The provider cargo built for this test (no second build with other
    // features), copied: the other test's `cargo build` may replace the
    // original while Terraform runs it. The example has the tests' features,
    // so it is up to date.
    let tmp = tempfile::tempdir().unwrap();
    let provider = tmp.path().join("terraform-provider-proxtalos");
    std::fs::copy(env!("CARGO_BIN_EXE_terraform-provider-proxtalos"), &provider).unwrap();
    crate::support::cargo_build(&["--example", "bench-quickstart", "--features", "sim"]);
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root().join("target"));
    let id = std::process::id();
    let mut cmd = Command::new(target.join("debug/examples/bench-quickstart"));
    cmd.args(["--time-scale", "0.01", "--provider-dir"])
        .arg(provider.parent().unwrap())
        .args(["--network", &format!("127.{}.42.0/24", 150 + id % 50)])
        .env("PROXTALOS_FAKEPVE", crate::support::fakepve::launcher())
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
