//! The lab: fakepve + the Talos simulator coupled like real hardware,
//! driven only through the PVE API (our client) and the Talos API (our
//! client). Loopback only, fast time scale; every lab a test starts is
//! stopped by it.

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use crate::support::talos_fixture::TalosFixture;
use proxtalos::lab::{Lab, LabError, LabOptions, MediumKind};
use proxtalos::proxmox::qemu::{self, Power};
use proxtalos::proxmox::{Client, storage};
use proxtalos::talos::api::wait::{Target, conditions, poll_until};
use proxtalos::talos::api::{ApplyMode, ApplyRequest, Mode, NodeClient, Timeouts};
use proxtalos::talos::client_config::ClientConfiguration;
use tokio::time::Instant;

// ---- helpers ----

/// 127.B.sub.host with B unique to this test process (200–249), away from
/// the ranges other test binaries use.
fn ip(sub: u8, host: u8) -> IpAddr {
    IpAddr::from([127, 200 + (std::process::id() % 50) as u8, sub, host])
}

fn options() -> LabOptions {
    let mut o = LabOptions::fast(crate::support::fakepve::launcher());
    o.dhcp_pool = (v4(ip(99, 10)), v4(ip(99, 20)));
    o
}

fn v4(a: IpAddr) -> std::net::Ipv4Addr {
    match a {
        IpAddr::V4(v) => v,
        IpAddr::V6(_) => unreachable!(),
    }
}

fn fixture() -> &'static TalosFixture {
    static F: OnceLock<TalosFixture> = OnceLock::new();
    F.get_or_init(|| TalosFixture::new(21, "lab"))
}

fn admin() -> ClientConfiguration {
    fixture().admin()
}

fn machine_config() -> Vec<u8> {
    fixture().controlplane_config()
}

fn t() -> Timeouts {
    Timeouts { connect: Duration::from_secs(2), call: Duration::from_secs(5) }
}

const TICK: Duration = Duration::from_millis(25);

fn soon() -> Instant {
    Instant::now() + Duration::from_secs(30)
}

fn until_soon() -> proxtalos::talos::api::wait::Until {
    proxtalos::talos::api::wait::Until::after(Duration::from_secs(30), &proxtalos::wait::Stop::never())
}

/// Polls `f` until it holds (or fails the test after 30 s).
async fn until<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    crate::support::wait::until(what, Duration::from_secs(30), &mut f).await;
}

/// The maintenance API answers at `addr` (a node fresh from its medium).
async fn maintenance_up(addr: IpAddr) -> bool {
    match NodeClient::maintenance(&addr.to_string(), None, t()).await {
        Ok(c) => c.disks().await.is_ok(),
        Err(_) => false,
    }
}

/// The configured node answers with mutual TLS at `addr`.
async fn secure_up(addr: IpAddr) -> bool {
    let tg = Target { node: addr.to_string(), endpoint: None, mode: Mode::Normal(admin()), timeouts: t() };
    matches!(conditions::secure_api_up(&tg).await, Ok(proxtalos::talos::api::wait::Probe::Ready(_)))
}

/// Nothing answers at `addr:50000` (connection refused).
async fn gone(addr: IpAddr) -> bool {
    tokio::net::TcpStream::connect((addr, 50000)).await.is_err()
}

async fn download(c: &Client, content: &str, filename: &str) {
    let d = storage::Download {
        url: format!("https://factory.talos.dev/image/x/{filename}"),
        content: content.into(),
        filename: filename.into(),
        ..Default::default()
    };
    c.run_task(&storage::download_url("pve1", "local", &d), Duration::from_secs(30)).await.unwrap();
}

async fn create(c: &Client, vmid: u32, params: &[(&str, &str)]) {
    let params: Vec<(String, String)> = params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    c.run_task(&qemu::create("pve1", vmid, &params), Duration::from_secs(30)).await.unwrap();
}

async fn power(c: &Client, vmid: u32, p: Power) {
    c.vm_power("pve1", vmid, p, Duration::from_secs(30)).await.unwrap();
}

async fn destroy(c: &Client, vmid: u32) {
    c.run_task(&qemu::destroy("pve1", vmid), Duration::from_secs(30)).await.unwrap();
}

fn alive(pid: u32) -> bool {
    // A zombie (exited, not yet reaped) counts as gone.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| s.rsplit(')').next().map(|r| r.trim_start().chars().next()) != Some(Some('Z')))
        .unwrap_or(false)
}

/// A VM with a Talos ISO and a static cloud-init address.
async fn iso_vm(c: &Client, vmid: u32, iso: &str, addr: IpAddr) {
    let ide2 = format!("local:iso/{iso},media=cdrom");
    let ipc = format!("ip={addr}/24,gw={}", ip(1, 1));
    create(
        c,
        vmid,
        &[
            ("name", "talos-cp-1"),
            ("ide2", &ide2),
            ("ipconfig0", &ipc),
            ("net0", "virtio,bridge=vmbr0"),
            ("scsi0", "local-lvm:10"),
            ("agent", "enabled=1"),
        ],
    )
    .await
}

// ---- the coupling ----

#[tokio::test]
async fn iso_vm_with_static_address_start_stop_start_destroy() {
    let lab = Lab::start(options()).await.unwrap();
    let c = lab.client().unwrap();
    let addr = ip(1, 5);
    let iso = "talos-v1.13.2-metal-amd64.iso";
    download(&c, "iso", iso).await;
    iso_vm(&c, 100, iso, addr).await;
    assert!(gone(addr).await, "no node before the VM starts");

    // Start: a maintenance node at the cloud-init address, version from the ISO name.
    power(&c, 100, Power::Start).await;
    until("the maintenance API answers", || maintenance_up(addr)).await;
    let m = NodeClient::maintenance(&addr.to_string(), None, t()).await.unwrap();
    assert_eq!(m.version_tag().await.unwrap(), "v1.13.2");
    until("the lab tracks VM 100", || async { lab.node(100).is_some() }).await;
    let node = lab.node(100).unwrap();
    assert_eq!((node.address, node.leased, node.medium.kind), (addr, false, MediumKind::Iso));
    // The agent reports the same address (set just after the node appears).
    until("the agent reports the address", || async {
        let ifs = c.vm_agent_interfaces("pve1", 100).await.unwrap_or_default();
        ifs.iter().any(|i| i.name == "eth0" && i.addresses.iter().any(|a| a.ip == addr.to_string()))
    })
    .await;

    // Apply a config: install + reboot into mutual TLS.
    m.apply_configuration(&ApplyRequest {
        config: machine_config(),
        mode: ApplyMode::Auto,
        dry_run: false,
        try_timeout: None,
    })
    .await
    .unwrap();
    poll_until(&addr.to_string(), conditions::SECURE_API, &until_soon(), TICK, || async {
        let tg = Target { node: addr.to_string(), endpoint: None, mode: Mode::Normal(admin()), timeouts: t() };
        conditions::secure_api_up(&tg).await
    })
    .await
    .unwrap();

    // Stop: gone. Start: back, installed and configured (not maintenance).
    power(&c, 100, Power::Stop).await;
    until("the node is gone", || gone(addr)).await;
    assert!(!lab.node(100).unwrap().powered);
    power(&c, 100, Power::Start).await;
    until("the configured node is back", || secure_up(addr)).await;
    let i = lab.sim().index_of(addr).unwrap();
    assert!(lab.sim().installed(i).unwrap());
    assert!(lab.sim().active_config(i).unwrap().is_some());

    // Destroy: gone with its state; a new VM at the same address is blank.
    power(&c, 100, Power::Stop).await;
    destroy(&c, 100).await;
    until("the lab forgets VM 100", || async { lab.node(100).is_none() }).await;
    assert_eq!(lab.sim().index_of(addr), None);
    until("nothing answers at the address", || gone(addr)).await;
    iso_vm(&c, 100, iso, addr).await;
    power(&c, 100, Power::Start).await;
    until("a fresh maintenance node answers", || maintenance_up(addr)).await;
    let i = lab.sim().index_of(addr).unwrap();
    assert!(!lab.sim().installed(i).unwrap());
    power(&c, 100, Power::Stop).await;
    destroy(&c, 100).await;

    // The request log tells what the lab's users sent from the lab's own
    // polling (its own token); the simulator counted the one apply.
    let log = lab.pve_requests().await.unwrap();
    let reconciler = format!("root@pam!{}", proxtalos::lab::RECONCILER_TOKEN_NAME);
    assert!(log.iter().any(|r| r.token_id == lab.api_token_id() && r.path.ends_with("/status/start")));
    assert!(log.iter().any(|r| r.token_id == reconciler && r.path.ends_with("/cluster/resources")));
    assert!(log.iter().all(|r| r.token_id == lab.api_token_id() || r.token_id == reconciler), "{log:?}");
    assert_eq!(lab.sim().calls().get("machine.MachineService/ApplyConfiguration"), Some(&1));
    lab.clear_pve_requests().await.unwrap();
    assert!(lab.pve_requests().await.unwrap().iter().all(|r| r.token_id == reconciler));
    lab.stop().await;
}

#[tokio::test]
async fn dhcp_vm_with_disk_image_gets_its_address_from_the_agent() {
    let lab = Lab::start(options()).await.unwrap();
    let c = lab.client().unwrap();
    download(&c, "import", "nocloud-amd64.raw").await;
    // A VM without a medium is left alone.
    create(&c, 201, &[("name", "plain"), ("net0", "virtio,bridge=vmbr0"), ("agent", "1")]).await;
    power(&c, 201, Power::Start).await;
    create(
        &c,
        200,
        &[
            ("name", "talos-w-1"),
            ("scsi0", "local-lvm:0,import-from=local:import/nocloud-amd64.raw"),
            ("ipconfig0", "ip=dhcp"),
            ("net0", "virtio,bridge=vmbr0"),
            ("agent", "1"),
        ],
    )
    .await;
    power(&c, 200, Power::Start).await;
    // What a provider does: ask the agent until it reports an address.
    let deadline = soon();
    let found = loop {
        if let Ok(ifs) = c.vm_agent_interfaces("pve1", 200).await
            && let Some(a) = ifs.iter().filter(|i| i.name != "lo").flat_map(|i| i.addresses.iter()).next()
        {
            break a.ip.parse::<IpAddr>().unwrap();
        }
        assert!(Instant::now() < deadline, "the agent never reported an address");
        tokio::time::sleep(TICK).await;
    };
    assert_eq!(found, ip(99, 10), "the first lease of the pool");
    until("the maintenance API answers at the lease", || maintenance_up(found)).await;
    let node = lab.node(200).unwrap();
    assert!(node.leased);
    assert_eq!(node.medium.kind, MediumKind::DiskImage);
    let i = lab.sim().index_of(found).unwrap();
    assert!(lab.sim().installed(i).unwrap(), "a disk image is installed already");
    assert_eq!(lab.sim().version(i).unwrap(), "v1.13.9", "the lab default when the name has no version");
    assert!(lab.node(201).is_none());
    // The lease stays across a power cycle.
    power(&c, 200, Power::Stop).await;
    until("the node is gone", || gone(found)).await;
    assert!(c.vm_agent_interfaces("pve1", 200).await.is_err(), "no agent on a stopped VM");
    power(&c, 200, Power::Start).await;
    until("the node is back at its lease", || maintenance_up(found)).await;
    lab.stop().await;
}

/// The VM's uptime in the PVE listing (whole seconds).
async fn uptime(c: &Client, vmid: u32) -> u64 {
    let list = c.execute(&proxtalos::proxmox::cluster::vm_resources()).await.unwrap();
    let vm = list.as_array().unwrap().iter().find(|v| v["vmid"].as_u64() == Some(u64::from(vmid))).cloned();
    vm.and_then(|v| v["uptime"].as_u64()).unwrap_or(0)
}

#[tokio::test]
async fn a_reboot_or_reset_within_the_first_second_reboots_the_node_and_nothing_else() {
    let lab = Lab::start(options()).await.unwrap();
    let c = lab.client().unwrap();
    let iso = "talos-v1.13.2-metal-amd64.iso";
    download(&c, "iso", iso).await;
    let (a, b) = (ip(3, 5), ip(3, 6));
    iso_vm(&c, 300, iso, a).await;
    iso_vm(&c, 301, iso, b).await;
    power(&c, 301, Power::Start).await;
    power(&c, 300, Power::Start).await;
    until("both nodes exist", || async { lab.node(300).is_some() && lab.node(301).is_some() }).await;
    let sim = lab.sim();
    let (ia, ib) = (sim.index_of(a).unwrap(), sim.index_of(b).unwrap());
    let (boot_a, boot_b) = (sim.boot_id(ia).unwrap(), sim.boot_id(ib).unwrap());

    // PVE's reboot (no shutdown delay in fakepve) and reset keep the VM
    // running and its uptime at 0: only the task list shows them.
    power(&c, 300, Power::Reboot).await;
    let first_second = uptime(&c, 300).await == 0;
    until("VM 300's node rebooted", || async { sim.boot_id(ia).unwrap() == boot_a + 1 }).await;
    until("VM 300's node answers again", || maintenance_up(a)).await;
    let reset = proxtalos::proxmox::Request::post("/nodes/pve1/qemu/300/status/reset");
    c.run_task(&reset, Duration::from_secs(30)).await.unwrap();
    until("VM 300's node rebooted again", || async { sim.boot_id(ia).unwrap() == boot_a + 2 }).await;
    until("VM 300's node answers again", || maintenance_up(a)).await;

    // Once each: more polls change nothing, and VM 301 was left alone.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(sim.boot_id(ia).unwrap(), boot_a + 2, "one guest reboot per PVE reboot or reset");
    assert_eq!(sim.boot_id(ib).unwrap(), boot_b, "a plain running VM is not rebooted");
    assert_eq!(sim.phase(ib).unwrap(), proxtalos::talos::sim::Phase::Maintenance);
    assert!(maintenance_up(b).await);
    eprintln!("the reboot landed within the VM's first second of uptime: {first_second}");

    // Stopped and started between two polls: the node lost power.
    power(&c, 301, Power::Stop).await;
    power(&c, 301, Power::Start).await;
    until("VM 301's node power-cycled", || async { sim.boot_id(ib).unwrap() > boot_b }).await;
    until("VM 301's node answers again", || maintenance_up(b)).await;
    lab.stop().await;
}

// ---- start, stop, bad input ----

#[tokio::test]
async fn stop_leaves_no_process_and_no_listener() {
    let lab = Lab::start(options()).await.unwrap();
    let pid = lab.fakepve_pid().unwrap();
    let state = lab.state_dir().to_path_buf();
    let port: u16 = lab.endpoint().trim_end_matches('/').rsplit(':').next().unwrap().parse().unwrap();
    assert!(alive(pid));
    assert!(lab.provider_block().contains(&format!("endpoint       = \"{}\"", lab.endpoint())));
    lab.stop().await;
    assert!(!alive(pid), "fakepve (pid {pid}) still runs");
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err(), "the PVE port still answers");
    assert!(!state.exists(), "the temporary state directory is removed");

    // Dropped without stop (a panicking test): fakepve is killed too.
    let lab = Lab::start(options()).await.unwrap();
    let pid = lab.fakepve_pid().unwrap();
    drop(lab);
    until("a dropped lab's fakepve is gone", || async { !alive(pid) }).await;
}

#[tokio::test]
async fn a_taken_port_is_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut o = options();
    o.port = taken.local_addr().unwrap().port();
    let e = Lab::start(o).await.err().expect("the lab must not start");
    assert!(matches!(e, LabError::PortInUse { .. }), "{e:?}");
    assert!(e.to_string().contains("already in use"), "{e}");
}

#[tokio::test]
async fn a_missing_python_or_a_failing_fakepve_is_a_clear_error() {
    let mut o = options();
    o.fakepve = PathBuf::from("/nonexistent/venv/bin/fakepve");
    let e = Lab::start(o).await.err().expect("no python");
    assert!(matches!(e, LabError::NoPython { .. }), "{e:?}");
    assert!(e.to_string().contains("install-fakepve.sh"), "{e}");

    // A "python" that dies at once, and one that says nothing useful.
    let dir = tempfile::tempdir().unwrap();
    for (body, expect) in [
        ("echo 'ModuleNotFoundError: No module named fakepve' >&2; exit 3", "No module named fakepve"),
        ("echo hello; sleep 30", "unexpected first line"),
    ] {
        let bin = dir.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let py = bin.join("python");
        std::fs::write(&py, format!("#!/bin/sh\n{body}\n")).unwrap();
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&py, std::fs::Permissions::from_mode(0o755)).unwrap();
        let mut o = options();
        o.fakepve = bin.join("fakepve");
        let e = Lab::start(o).await.err().expect("fakepve fails");
        assert!(matches!(e, LabError::FakePve { .. }), "{e:?}");
        assert!(e.to_string().contains("fakepve failed to start") && e.to_string().contains(expect), "{e}");
    }
    // No stray process: nothing runs our fake python any more.
    let out = Command::new("pgrep").arg("-f").arg(dir.path()).output().unwrap();
    assert!(out.stdout.is_empty(), "stray processes: {}", String::from_utf8_lossy(&out.stdout));
}

// ---- the command ----

fn lab_binary() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    crate::support::cargo_build(&["--example", "lab", "--features", "sim"]);
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root.join("target"));
    target.join("debug/examples/lab")
}

#[test]
fn the_command_prints_what_to_use_and_stops_clean_on_sigterm() {
    command_story(rustix::process::Signal::TERM);
}

/// Ctrl-C in the terminal that runs the lab: the same clean stop.
#[test]
fn the_command_stops_clean_on_ctrl_c() {
    command_story(rustix::process::Signal::INT);
}

/// Starts the lab command, checks what it prints and that a second lab on
/// the same state directory is refused, then stops it with `stop` and
/// checks that nothing is left: no fakepve, no state files.
fn command_story(stop: rustix::process::Signal) {
    let bin = lab_binary();
    let dir = tempfile::tempdir().unwrap();
    let out_file = dir.path().join("out");
    let mut child = Command::new(&bin)
        .args(["--port", "0", "--time-scale", "0.01", "--state-dir"])
        .arg(dir.path())
        .env("PROXTALOS_FAKEPVE", crate::support::fakepve::launcher())
        .stdout(std::fs::File::create(&out_file).unwrap())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    // Ready: lab.env written and the banner (which names it) printed.
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    let out = loop {
        let out = std::fs::read_to_string(&out_file).unwrap();
        if dir.path().join("lab.env").exists() && out.contains("Stop:") {
            break out;
        }
        assert!(child.try_wait().unwrap().is_none(), "the lab exited: {out}");
        assert!(std::time::Instant::now() < deadline, "the lab never became ready: {out}");
        std::thread::sleep(Duration::from_millis(50));
    };
    for want in [
        "PVE API     https://127.0.0.1:",
        "API token   root@pam!lab=",
        "provider \"proxtalos\" {",
        "ca_certificate = file(",
    ] {
        assert!(out.contains(want), "{want:?} missing from:\n{out}");
    }
    let env = std::fs::read_to_string(dir.path().join("lab.env")).unwrap();
    assert!(env.contains("PROXMOX_VE_ENDPOINT=") && env.contains("PROXMOX_VE_API_TOKEN="), "{env}");
    // The banner's exports are single-quoted (a bare `!lab` is history
    // expansion in an interactive bash) and mean what lab.env says.
    let exports: Vec<&str> = out.lines().map(str::trim).filter(|l| l.starts_with("export PROXMOX_VE_")).collect();
    assert_eq!(exports.len(), 2, "{out}");
    assert!(exports.iter().all(|l| l.split_once('=').is_some_and(|(_, v)| v.starts_with('\''))), "{exports:?}");
    let show = "printf '%s|%s' \"$PROXMOX_VE_ENDPOINT\" \"$PROXMOX_VE_API_TOKEN\"";
    let eval = |script: String| {
        let o = Command::new("bash").arg("-c").arg(script).output().unwrap();
        String::from_utf8_lossy(&o.stdout).to_string()
    };
    let from_banner = eval(format!("{}\n{show}", exports.join("\n")));
    assert_eq!(from_banner, eval(format!("{env}\n{show}")), "banner and lab.env agree");
    assert!(from_banner.contains("!lab="), "{from_banner}");
    let pid: u32 = std::fs::read_to_string(dir.path().join("lab.pid")).unwrap().trim().parse().unwrap();
    assert_eq!(pid, child.id());
    // A second lab on the same state directory refuses to start.
    let second = Command::new(&bin)
        .args(["--port", "0", "--state-dir"])
        .arg(dir.path())
        .env("PROXTALOS_FAKEPVE", crate::support::fakepve::launcher())
        .output()
        .unwrap();
    assert!(!second.status.success());
    assert!(String::from_utf8_lossy(&second.stderr).contains("already running"));

    let harness = Command::new("pgrep").arg("-f").arg(dir.path().join("harness.py")).output().unwrap();
    let fakepve: Vec<u32> =
        String::from_utf8_lossy(&harness.stdout).split_whitespace().filter_map(|p| p.parse().ok()).collect();
    assert_eq!(fakepve.len(), 1, "one fakepve");
    rustix::process::kill_process(rustix::process::Pid::from_child(&child), stop).expect("signal to the lab");
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
    assert!(std::fs::read_to_string(&out_file).unwrap().contains("lab stopped"));
    assert!(!alive(fakepve[0]), "fakepve survived the lab");
    for f in ["lab.pid", "lab.env", "harness.py"] {
        assert!(!dir.path().join(f).exists(), "{f} left behind");
    }
}
