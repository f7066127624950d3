//! The provider process as Terraform sees it (go-plugin rules,
//! shared/specs/tfplugin6.md §2 and §6.1): launch checks, the handshake
//! line, the socket (abstract on Linux, a private directory under
//! `PLUGIN_UNIX_SOCKET_DIR`) and who may connect to it, SIGINT ignored,
//! Shutdown and SIGTERM ending the process promptly, and log lines in
//! hclog's JSON shape.

use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use proxtalos::plugin::proto::plugin as ctl;
use proxtalos::plugin::proto::tfplugin6 as pb;

const BIN: &str = env!("CARGO_BIN_EXE_terraform-provider-proxtalos");
const COOKIE: &str = "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2";

fn launch(extra: &[(&str, &str)]) -> (Child, String) {
    let mut cmd = Command::new(BIN);
    cmd.env_clear()
        .env("TF_PLUGIN_MAGIC_COOKIE", COOKIE)
        .env("PLUGIN_PROTOCOL_VERSIONS", "5,6")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in extra {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn provider");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    (child, line.trim().to_string())
}

/// Where the handshake line says to connect: `@name` (Linux's abstract
/// namespace, as Go's `net` package reads it) or a path.
#[derive(Clone, Debug)]
enum Socket {
    Abstract(String),
    Path(PathBuf),
}

fn socket_of(line: &str) -> Socket {
    let parts: Vec<&str> = line.split('|').collect();
    assert_eq!(&parts[..3], &["1", "6", "unix"], "{line}");
    assert_eq!(parts[4], "grpc");
    match parts[3].strip_prefix('@') {
        Some(name) => Socket::Abstract(name.to_string()),
        None => Socket::Path(PathBuf::from(parts[3])),
    }
}

/// A blocking connection to `socket`.
fn connect_std(socket: &Socket) -> std::io::Result<std::os::unix::net::UnixStream> {
    match socket {
        Socket::Abstract(name) => {
            use std::os::linux::net::SocketAddrExt;
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
            std::os::unix::net::UnixStream::connect_addr(&addr)
        }
        Socket::Path(path) => std::os::unix::net::UnixStream::connect(path),
    }
}

fn wait_exit(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Some(s) = child.try_wait().unwrap() {
            return Some(s);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    None
}

/// Sends `sig` to the provider with kill(2) (not the `kill` command: see
/// `ctrl_c` in e2e_protocol.rs for what procps `kill` does to some arguments).
fn signal(child: &Child, sig: rustix::process::Signal) {
    rustix::process::kill_process(rustix::process::Pid::from_child(child), sig).expect("kill(2)");
}

async fn channel(socket: Socket) -> tonic::transport::Channel {
    tonic::transport::Endpoint::try_from("http://localhost")
        .unwrap()
        .connect_with_connector(tower::service_fn(move |_| {
            let socket = socket.clone();
            async move {
                let stream = connect_std(&socket)?;
                stream.set_nonblocking(true)?;
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(tokio::net::UnixStream::from_std(stream)?))
            }
        }))
        .await
        .expect("connect to the plugin socket")
}

#[test]
fn refuses_to_run_without_terraform() {
    let out = Command::new(BIN).env_clear().output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not meant to be run directly"));
    assert!(out.stdout.is_empty(), "nothing on stdout: it is the handshake channel");

    let out = Command::new(BIN)
        .env_clear()
        .env("TF_PLUGIN_MAGIC_COOKIE", COOKIE)
        .env("PLUGIN_PROTOCOL_VERSIONS", "4,5")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("protocol 6"));
}

#[tokio::test]
async fn serves_ignores_sigint_and_exits_on_shutdown() {
    let (mut child, line) = launch(&[("TF_LOG", "debug")]);
    let socket = socket_of(&line);
    assert!(line.ends_with("|grpc|"), "no TLS without PLUGIN_CLIENT_CERT: {line}");
    let Socket::Abstract(name) = &socket else { panic!("an abstract socket on Linux: {line}") };
    assert!(name.starts_with("proxtalos-plugin-") && name.len() == 17 + 32, "128 random bits: {name}");

    // Ctrl-C reaches the whole process group; the provider must survive it.
    signal(&child, rustix::process::Signal::INT);
    assert!(wait_exit(&mut child, Duration::from_millis(300)).is_none(), "SIGINT must not end the provider");

    let ch = channel(socket.clone()).await;
    let mut provider = pb::provider_client::ProviderClient::new(ch.clone());
    let schema = provider.get_provider_schema(pb::get_provider_schema::Request {}).await.unwrap().into_inner();
    assert!(schema.server_capabilities.unwrap().get_provider_schema_optional);

    let mut controller = ctl::grpc_controller_client::GrpcControllerClient::new(ch);
    let asked = Instant::now();
    controller.shutdown(ctl::Empty {}).await.unwrap();
    let status = wait_exit(&mut child, Duration::from_secs(2)).expect("exits within go-plugin's 2 s after Shutdown");
    assert!(status.success());
    eprintln!("exited {:?} after Shutdown", asked.elapsed());
    assert!(connect_std(&socket).is_err(), "the abstract socket is gone with the process");

    // stderr: one hclog-shaped JSON object per line
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    let lines: Vec<serde_json::Value> =
        err.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect();
    assert!(lines.iter().all(|l| l["@level"].is_string() && l["@message"].is_string() && l["@timestamp"].is_string()));
    assert!(lines.iter().any(|l| l["@message"] == "Shutdown requested by Terraform"), "{err}");
    assert!(
        lines
            .iter()
            .any(|l| l["rpc"] == "GetProviderSchema" || l["@message"].as_str().unwrap_or("").contains("SIGINT")),
        "{err}"
    );
}

#[test]
fn tls_handshake_and_sigterm() {
    let pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
    let (mut child, line) = launch(&[("PLUGIN_CLIENT_CERT", pem)]);
    let socket = socket_of(&line);
    let cert = line.rsplit('|').next().unwrap();
    use base64::Engine;
    let der = base64::engine::general_purpose::STANDARD_NO_PAD.decode(cert).expect("unpadded base64 DER");
    assert_eq!(der[0], 0x30, "a DER certificate");
    signal(&child, rustix::process::Signal::TERM);
    wait_exit(&mut child, Duration::from_secs(10)).expect("SIGTERM ends the provider");
    assert!(connect_std(&socket).is_err(), "the socket is gone after SIGTERM");
}

/// go-plugin's `PLUGIN_UNIX_SOCKET_DIR` (set for plugins whose client is
/// across a container boundary, where an abstract socket is not reachable):
/// the socket is a file in a private directory inside it, served, and
/// removed on exit.
#[tokio::test]
async fn plugin_unix_socket_dir_is_honoured() {
    let parent = tempfile::tempdir().unwrap();
    let (mut child, line) = launch(&[("PLUGIN_UNIX_SOCKET_DIR", parent.path().to_str().unwrap())]);
    let socket = socket_of(&line);
    let Socket::Path(path) = &socket else { panic!("a socket file under PLUGIN_UNIX_SOCKET_DIR: {line}") };
    let dir = path.parent().unwrap().to_path_buf();
    assert_eq!(dir.parent(), Some(parent.path()), "{line}");
    assert_eq!(std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700, "private socket directory");
    let mut provider = pb::provider_client::ProviderClient::new(channel(socket.clone()).await);
    provider.get_provider_schema(pb::get_provider_schema::Request {}).await.unwrap();
    drop(provider);
    signal(&child, rustix::process::Signal::TERM);
    wait_exit(&mut child, Duration::from_secs(10)).expect("SIGTERM ends the provider");
    assert!(!dir.exists(), "socket directory removed after SIGTERM");
}

/// An abstract socket has no permissions of its own, and go-plugin's TLS
/// does not authenticate the client: a connection from another user is
/// closed at once, unserved, while our own user's gets the server's HTTP/2
/// preface. Connecting as another user needs root (CI runs as
/// root); otherwise only the same-user half runs.
#[test]
fn other_users_are_refused() {
    use std::io::Read as _;
    let (mut child, line) = launch(&[]);
    let socket = socket_of(&line);
    let Socket::Abstract(name) = &socket else { panic!("{line}") };
    // Ours: served (the server's HTTP/2 SETTINGS frame arrives).
    let mut mine = connect_std(&socket).unwrap();
    mine.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    assert_eq!(mine.read(&mut [0u8; 1]).expect("our own connection is served"), 1);
    drop(mine);
    if rustix::process::geteuid().is_root() {
        // Theirs: python3 (which the project's setup needs anyway) as nobody.
        use std::os::unix::process::CommandExt;
        let script = format!(
            "import socket\ns=socket.socket(socket.AF_UNIX)\ns.connect('\\0{name}')\ns.settimeout(5)\n\
             print('closed' if s.recv(1)==b'' else 'open')"
        );
        let out = Command::new("python3").arg("-c").arg(&script).uid(65534).gid(65534).output().expect("python3");
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "closed", "{}", String::from_utf8_lossy(&out.stderr));
    } else {
        eprintln!("not root: the other-user half needs root to connect as another user");
    }
    signal(&child, rustix::process::Signal::TERM);
    wait_exit(&mut child, Duration::from_secs(10)).expect("SIGTERM ends the provider");
}

#[test]
fn logs_nothing_without_tf_log() {
    let (mut child, line) = launch(&[]);
    let _ = socket_of(&line);
    signal(&child, rustix::process::Signal::TERM);
    wait_exit(&mut child, Duration::from_secs(10)).unwrap();
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert_eq!(err, "", "Terraform discards provider logs unless TF_LOG is set; write none");
}

/// A Terraform that crashes or is killed never sends Shutdown: the
/// provider notices that its parent is gone (it was re-parented) and ends
/// within a few seconds, so it neither runs on nor holds the pipes of
/// whoever reads its output (seen 2026-12-06: a crashed Terraform 1.0.3
/// left a provider that hung a test reading Terraform's output).
#[test]
fn an_orphaned_provider_exits() {
    // The parent: a shell that starts the provider in the background,
    // prints its pid, and exits at once.
    let script = format!(
        "TF_PLUGIN_MAGIC_COOKIE={COOKIE} PLUGIN_PROTOCOL_VERSIONS=5,6 {BIN} >/dev/null 2>&1 </dev/null & echo $!; sleep 0.3"
    );
    let out = Command::new("sh").arg("-c").arg(&script).env_clear().output().expect("run sh");
    let pid: i32 = String::from_utf8_lossy(&out.stdout).trim().parse().expect("the provider's pid");
    let alive = || {
        std::path::Path::new(&format!("/proc/{pid}")).exists()
            && !std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default().contains(") Z ")
    };
    let started = Instant::now();
    while alive() && started.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!alive(), "the orphaned provider (pid {pid}) still runs {:?} after its parent exited", started.elapsed());
}
