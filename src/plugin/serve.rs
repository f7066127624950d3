//! Process hygiene for a provider started by Terraform (go-plugin rules,
//! shared/specs/tfplugin6.md §2 and §6.1):
//!
//! 1. Check the magic cookie and that protocol 6 is offered; otherwise say
//!    what this binary is on stderr and exit non-zero.
//! 2. Listen on a unix socket (no Nagle on unix sockets, no port range):
//!    on Linux an abstract one (no file to make or leave behind), elsewhere
//!    or under go-plugin's `PLUGIN_UNIX_SOCKET_DIR` one in a private 0700
//!    temporary directory, removed on exit, including after SIGTERM. Only
//!    connections from our own user are served.
//! 3. TLS as go-plugin's AutoMTLS expects when `PLUGIN_CLIENT_CERT` is set:
//!    a fresh self-signed ECDSA P-256 server certificate per process, sent
//!    in the handshake line. **What is and is not verified about the
//!    client:** Terraform's client certificate is ECDSA P-521 and CA:TRUE;
//!    rustls with the ring provider cannot verify P-521 and webpki rejects a
//!    CA used as an end entity, so we do *not* request or verify a client
//!    certificate. The channel is still encrypted and the client verifies
//!    us by the pinned certificate; who may connect is limited to our own
//!    user (the peer's credentials, checked on every connection).
//! 4. Print the handshake line only after the socket is bound, and before
//!    the async runtime starts (start-up time, issue 12 §5).
//! 5. Ignore SIGINT (from before the handshake line on): Ctrl-C reaches the whole process group, and Terraform
//!    itself decides (StopProvider) how an in-flight apply ends, so a create
//!    that is under way finishes and is recorded.
//! 6. `plugin.GRPCController/Shutdown` ends the process promptly (go-plugin
//!    kills it 2 s later otherwise).

use std::process::ExitCode;
use std::time::Duration;

use base64::Engine;
use tokio::sync::watch;
use tonic::transport::{Identity, Server, ServerTlsConfig};

use super::proto::plugin as ctl;
use super::proto::tfplugin6::provider_server::ProviderServer as ProviderService;
use super::resource::Provider;
use super::server::ProviderServer;

/// go-plugin's handshake cookie for Terraform providers.
pub const MAGIC_COOKIE_KEY: &str = "TF_PLUGIN_MAGIC_COOKIE";
/// Its expected value.
pub const MAGIC_COOKIE_VALUE: &str = "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2";

/// How long connections may drain after Shutdown before the process exits.
const SHUTDOWN_DRAIN: Duration = Duration::from_millis(100);

/// How long connections may drain after SIGTERM, or once Terraform is gone,
/// before the process exits.
const TERMINATE_DRAIN: Duration = Duration::from_secs(2);

/// Largest message accepted or sent (large states and configs).
const MAX_MESSAGE: usize = 256 << 20;

/// Why the process could not serve.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Started by hand rather than by Terraform.
    #[error(
        "This binary is a Terraform provider plugin. It is not meant to be run directly: \
         Terraform or OpenTofu starts it when a configuration uses the provider."
    )]
    NotLaunchedByTerraform,
    /// Terraform does not offer protocol 6.
    #[error(
        "This provider speaks plugin protocol 6, but the caller offered {offered:?}. \
         Use Terraform 1.0 or later, or OpenTofu."
    )]
    UnsupportedProtocol {
        /// `PLUGIN_PROTOCOL_VERSIONS` as given.
        offered: String,
    },
    /// Socket, runtime or I/O set-up failed.
    #[error("cannot start the plugin server: {0}")]
    Io(#[from] std::io::Error),
    /// The TLS certificate could not be made.
    #[error("cannot create the TLS certificate")]
    Certificate(#[source] rcgen::Error),
    /// The gRPC server failed.
    #[error("the gRPC server failed")]
    Transport(#[source] tonic::transport::Error),
}

/// Checks the environment Terraform launches plugins with.
pub fn check_launch_env(cookie: Option<&str>, versions: Option<&str>) -> Result<(), ServeError> {
    if cookie != Some(MAGIC_COOKIE_VALUE) {
        return Err(ServeError::NotLaunchedByTerraform);
    }
    let offered = versions.unwrap_or("");
    if !offered.split(',').any(|v| v.trim() == "6") {
        return Err(ServeError::UnsupportedProtocol { offered: offered.to_string() });
    }
    Ok(())
}

/// The binary's `main`: serve `provider` the way Terraform expects, and map
/// every failure to a message on stderr and a non-zero exit.
pub fn main<P: Provider>(provider: P) -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--version" || a == "-version") {
        println!("terraform-provider-{} {}", provider.type_name(), crate::VERSION);
        return ExitCode::SUCCESS;
    }
    let env = |k: &str| std::env::var(k).ok();
    if let Err(e) = check_launch_env(env(MAGIC_COOKIE_KEY).as_deref(), env("PLUGIN_PROTOCOL_VERSIONS").as_deref()) {
        eprintln!("{e}");
        return ExitCode::from(1);
    }
    super::log::init(provider.type_name(), super::log::level_from_env(provider.type_name()));
    // Everything the handshake line needs (SIGINT ignored, socket bound,
    // certificate made), then the line, and only then the async runtime and
    // its threads: Terraform waits for the line on every start, and connects
    // while the runtime comes up.
    let tls = env("PLUGIN_CLIENT_CERT").is_some_and(|c| !c.is_empty());
    let ready = match handshake(tls) {
        Ok(ready) => ready,
        Err(e) => {
            eprintln!("{}", crate::plugin::diag::error_chain(&e));
            return ExitCode::from(1);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{}", ServeError::Io(e));
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(serve(provider, ready)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %crate::plugin::diag::error_chain(&e), "plugin server failed");
            eprintln!("{}", crate::plugin::diag::error_chain(&e));
            ExitCode::from(1)
        }
    }
}

/// What [`handshake`] set up: the bound listener and the TLS identity.
pub struct Ready {
    listener: platform::Listener,
    tls: Option<Identity>,
    early: platform::EarlySignals,
}

/// Catches SIGINT and SIGTERM, binds the socket, makes the certificate when `tls`, and
/// prints the go-plugin handshake line. Needs no async runtime.
pub fn handshake(tls: bool) -> Result<Ready, ServeError> {
    let early = platform::early_signals()?;
    let listener = platform::listen()?;
    let (identity, cert_der) = if tls {
        let (cert_pem, key_pem, der) = server_certificate().map_err(ServeError::Certificate)?;
        (Some(Identity::from_pem(cert_pem, key_pem)), Some(der))
    } else {
        (None, None)
    };
    {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        writeln!(out, "{}", handshake_line(listener.network, &listener.addr, cert_der.as_deref()))?;
        out.flush()?;
    }
    Ok(Ready { listener, tls: identity, early })
}

/// A self-signed server certificate as go-plugin's AutoMTLS client accepts
/// it: SAN/CN localhost, CA:TRUE, the key usages and EKUs Go expects.
/// Returns (cert PEM, key PEM, cert DER).
pub fn server_certificate() -> Result<(String, String, Vec<u8>), rcgen::Error> {
    use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose};
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let mut params = CertificateParams::new(vec!["localhost".to_string()])?;
    params.distinguished_name.push(DnType::CommonName, "localhost");
    params.distinguished_name.push(DnType::OrganizationName, "proxtalos");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
        KeyUsagePurpose::KeyAgreement,
        KeyUsagePurpose::KeyCertSign,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::seconds(30);
    params.not_after = now + time::Duration::days(365);
    let cert = params.self_signed(&key)?;
    Ok((cert.pem(), key.serialize_pem(), cert.der().to_vec()))
}

/// The go-plugin handshake line: `CORE|APP|NETWORK|ADDR|PROTOCOL|CERT`.
pub fn handshake_line(network: &str, addr: &str, cert_der: Option<&[u8]>) -> String {
    let cert = cert_der.map(|d| base64::engine::general_purpose::STANDARD_NO_PAD.encode(d)).unwrap_or_default();
    format!("1|6|{network}|{addr}|grpc|{cert}")
}

/// Where the provider listens and how it hears signals, per platform.
#[cfg(unix)]
mod platform {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use tokio::signal::unix::{Signal, SignalKind, signal};
    use tokio_stream::wrappers::UnixListenerStream;

    /// The socket Terraform connects to. On Linux an abstract socket
    /// (`@name`: no file, nothing left behind even after SIGKILL, and no
    /// inode to allocate on every start, which on an ext4 `/tmp` was the
    /// largest part of our start-up: issue 12 §5); elsewhere, or when
    /// go-plugin's `PLUGIN_UNIX_SOCKET_DIR` names a directory, a socket in a
    /// private 0700 directory, removed when dropped. Either way only
    /// connections from our own user are served ([`Listener::incoming`]).
    pub struct Listener {
        pub network: &'static str,
        pub addr: String,
        listener: std::os::unix::net::UnixListener,
        dir: Option<tempfile::TempDir>,
    }

    /// Binds the socket (blocking std calls: no runtime exists yet).
    pub fn listen() -> std::io::Result<Listener> {
        let parent = std::env::var_os("PLUGIN_UNIX_SOCKET_DIR").filter(|d| !d.is_empty());
        #[cfg(target_os = "linux")]
        if parent.is_none() {
            return listen_abstract();
        }
        listen_in_dir(parent.map(std::path::PathBuf::from))
    }

    /// An abstract socket with 128 random bits in its name. Go's `net`
    /// package reads a leading `@` as the abstract namespace, so
    /// go-plugin's client dials it as it is.
    #[cfg(target_os = "linux")]
    fn listen_abstract() -> std::io::Result<Listener> {
        use std::os::linux::net::SocketAddrExt;
        let mut random = [0u8; 16];
        getrandom::fill(&mut random).map_err(std::io::Error::other)?;
        let name: String =
            std::iter::once("proxtalos-plugin-".to_string()).chain(random.iter().map(|b| format!("{b:02x}"))).collect();
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
        let listener = std::os::unix::net::UnixListener::bind_addr(&addr)?;
        listener.set_nonblocking(true)?;
        Ok(Listener { network: "unix", addr: format!("@{name}"), listener, dir: None })
    }

    fn listen_in_dir(parent: Option<std::path::PathBuf>) -> std::io::Result<Listener> {
        let mut builder = tempfile::Builder::new();
        builder.prefix("proxtalos-plugin").permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700));
        let dir = match parent {
            Some(parent) => builder.tempdir_in(parent)?,
            None => builder.tempdir()?,
        };
        let socket = dir.path().join("provider.sock");
        let listener = std::os::unix::net::UnixListener::bind(&socket)?;
        listener.set_nonblocking(true)?;
        Ok(Listener { network: "unix", addr: socket.display().to_string(), listener, dir: Some(dir) })
    }

    impl Listener {
        /// The accept stream on the current runtime (connections from
        /// other users are closed at once and logged), and what must live
        /// as long as it (the socket's directory, if any).
        pub fn incoming(
            self,
        ) -> std::io::Result<(
            impl tokio_stream::Stream<Item = std::io::Result<tokio::net::UnixStream>>,
            Option<tempfile::TempDir>,
        )> {
            use tokio_stream::StreamExt;
            let listener = tokio::net::UnixListener::from_std(self.listener)?;
            // Only our own user's connections, as a 0700 directory allows:
            // an abstract socket has no permissions of its own, and the
            // TLS go-plugin sets up does not authenticate the client.
            let ours = rustix::process::geteuid().as_raw();
            let incoming = UnixListenerStream::new(listener).filter(move |conn| match conn {
                Err(_) => true,
                Ok(stream) => match stream.peer_cred() {
                    Ok(cred) if cred.uid() == ours => true,
                    Ok(cred) => {
                        tracing::warn!(peer_uid = cred.uid(), "connection from another user refused");
                        false
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "connection refused: its peer credentials are unreadable");
                        false
                    }
                },
            });
            Ok((incoming, self.dir))
        }
    }

    /// SIGINT and SIGTERM caught from before the handshake line, when no
    /// runtime exists yet: SIGINT's default action (terminate) is replaced,
    /// since Ctrl-C reaches the whole process group and Terraform decides
    /// how an apply ends (StopProvider); a SIGTERM that arrives this early is
    /// remembered and ends the server as soon as it runs. Unregistered when
    /// dropped (the runtime's handlers have taken over by then).
    pub struct EarlySignals {
        interrupted: Arc<AtomicBool>,
        terminated: Arc<AtomicBool>,
        ids: [signal_hook::SigId; 2],
    }

    impl Drop for EarlySignals {
        fn drop(&mut self) {
            for id in self.ids {
                signal_hook::low_level::unregister(id);
            }
        }
    }

    pub fn early_signals() -> std::io::Result<EarlySignals> {
        let interrupted = Arc::new(AtomicBool::new(false));
        let terminated = Arc::new(AtomicBool::new(false));
        let ids = [
            signal_hook::flag::register(signal_hook::consts::SIGINT, interrupted.clone())?,
            signal_hook::flag::register(signal_hook::consts::SIGTERM, terminated.clone())?,
        ];
        Ok(EarlySignals { interrupted, terminated, ids })
    }

    /// SIGINT logged (it is ignored); SIGTERM ends the process.
    pub struct Signals {
        term: Signal,
        early_term: bool,
    }

    /// Completes once the process that started us is gone (its children
    /// are re-parented): Terraform that crashed or was killed never sends
    /// Shutdown, and a provider left behind would hold its stdout and
    /// stderr pipes open (and whatever it was doing) forever.
    pub fn orphaned() -> impl std::future::Future<Output = ()> + Send + 'static {
        let parent = std::os::unix::process::parent_id();
        async move {
            let mut every = tokio::time::interval(std::time::Duration::from_secs(1));
            loop {
                every.tick().await;
                if std::os::unix::process::parent_id() != parent {
                    return;
                }
            }
        }
    }

    /// The runtime's handlers, then what arrived before them.
    pub fn signals(early: &EarlySignals) -> std::io::Result<Signals> {
        let mut sigint = signal(SignalKind::interrupt())?;
        let term = signal(SignalKind::terminate())?;
        if early.interrupted.load(Ordering::SeqCst) {
            tracing::info!("SIGINT ignored: Terraform decides how to stop (StopProvider)");
        }
        tokio::spawn(async move {
            while sigint.recv().await.is_some() {
                tracing::info!("SIGINT ignored: Terraform decides how to stop (StopProvider)");
            }
        });
        Ok(Signals { term, early_term: early.terminated.load(Ordering::SeqCst) })
    }

    impl Signals {
        pub async fn terminated(&mut self) {
            if !self.early_term {
                self.term.recv().await;
            }
            tracing::info!("SIGTERM: shutting down");
        }
    }
}

/// On Windows go-plugin speaks TCP on loopback; Nagle is turned off on
/// every accepted connection (43 ms stalls otherwise, tfplugin6.md §3.2).
#[cfg(windows)]
mod platform {
    /// Never: Windows does not re-parent processes, so there is nothing to
    /// watch here.
    pub fn orphaned() -> impl std::future::Future<Output = ()> + Send + 'static {
        std::future::pending()
    }

    use tonic::transport::server::TcpIncoming;

    pub struct Listener {
        pub network: &'static str,
        pub addr: String,
        listener: std::net::TcpListener,
    }

    pub fn listen() -> std::io::Result<Listener> {
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?.to_string();
        Ok(Listener { network: "tcp", addr, listener })
    }

    impl Listener {
        /// The accept stream on the current runtime.
        pub fn incoming(self) -> std::io::Result<(TcpIncoming, ())> {
            let listener = tokio::net::TcpListener::from_std(self.listener)?;
            Ok((TcpIncoming::from(listener).with_nodelay(Some(true)), ()))
        }
    }

    /// On Windows the runtime's Ctrl-C handler (below) does this.
    pub struct EarlySignals;

    pub fn early_signals() -> std::io::Result<EarlySignals> {
        Ok(EarlySignals)
    }

    /// Ctrl-C ignored (Terraform decides how to stop); there is no SIGTERM.
    pub struct Signals;

    pub fn signals(_early: &EarlySignals) -> std::io::Result<Signals> {
        tokio::spawn(async {
            while tokio::signal::ctrl_c().await.is_ok() {
                tracing::info!("Ctrl-C ignored: Terraform decides how to stop (StopProvider)");
            }
        });
        Ok(Signals)
    }

    impl Signals {
        pub async fn terminated(&mut self) {
            std::future::pending::<()>().await
        }
    }
}

/// go-plugin's controller: `Shutdown` asks the process to exit.
struct Controller(watch::Sender<bool>);

#[tonic::async_trait]
impl ctl::grpc_controller_server::GrpcController for Controller {
    async fn shutdown(&self, _r: tonic::Request<ctl::Empty>) -> Result<tonic::Response<ctl::Empty>, tonic::Status> {
        tracing::debug!("Shutdown requested by Terraform");
        self.0.send_replace(true);
        Ok(tonic::Response::new(ctl::Empty {}))
    }
}

/// Serves `provider` on the listener [`handshake`] bound, until Shutdown
/// or SIGTERM.
pub async fn serve<P: Provider>(provider: P, ready: Ready) -> Result<(), ServeError> {
    let Ready { listener, tls, early } = ready;
    let mut signals = platform::signals(&early)?;
    drop(early);
    let (network, addr, tls_on) = (listener.network, listener.addr.clone(), tls.is_some());
    // `_socket_dir` lives until this function returns.
    let (incoming, _socket_dir) = listener.incoming()?;
    let mut builder = Server::builder();
    if let Some(identity) = tls {
        builder = builder.tls_config(ServerTlsConfig::new().identity(identity)).map_err(ServeError::Transport)?;
    }

    let (shutdown_tx, shutdown) = watch::channel(false);
    let service = ProviderService::new(ProviderServer::new(provider))
        .max_decoding_message_size(MAX_MESSAGE)
        .max_encoding_message_size(MAX_MESSAGE);
    let router = builder
        .add_service(service)
        .add_service(ctl::grpc_controller_server::GrpcControllerServer::new(Controller(shutdown_tx)));

    tracing::debug!(network, %addr, tls = tls_on, "serving");

    // How long connections may drain once the server stops: short after
    // Shutdown (Terraform is done with us), longer after SIGTERM or when
    // orphaned (a request may be finishing), but bounded either way, since a
    // client that never closes its connection would hold the process.
    let (stopping_tx, stopping) = watch::channel(None::<Duration>);
    let mut stop = shutdown;
    let orphaned = platform::orphaned();
    let signal_stop = async move {
        let drain = tokio::select! {
            _ = stop.wait_for(|s| *s) => SHUTDOWN_DRAIN,
            _ = signals.terminated() => TERMINATE_DRAIN,
            _ = orphaned => {
                tracing::warn!("Terraform went away (it crashed or was killed): shutting down");
                TERMINATE_DRAIN
            }
        };
        stopping_tx.send_replace(Some(drain));
    };
    let server = router.serve_with_incoming_shutdown(incoming, signal_stop);
    tokio::pin!(server);
    // Terraform sends Shutdown only when it is done with this process, so
    // after it there is nothing to wait for but the reply itself: give the
    // connections a moment to drain, then exit (go-plugin kills us after 2 s,
    // and some connections never drain, which would stall every plan).
    let result = tokio::select! {
        r = &mut server => r.map_err(ServeError::Transport),
        _ = async {
            let mut rx = stopping;
            if let Ok(drain) = rx.wait_for(Option::is_some).await.map(|d| d.unwrap_or_default()) {
                tokio::time::sleep(drain).await;
            }
        } => Ok(()),
    };
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn launch_env_checks() {
        assert!(matches!(check_launch_env(None, Some("6")), Err(ServeError::NotLaunchedByTerraform)));
        assert!(matches!(check_launch_env(Some("nope"), Some("6")), Err(ServeError::NotLaunchedByTerraform)));
        assert!(matches!(
            check_launch_env(Some(MAGIC_COOKIE_VALUE), Some("5")),
            Err(ServeError::UnsupportedProtocol { .. })
        ));
        assert!(matches!(
            check_launch_env(Some(MAGIC_COOKIE_VALUE), None),
            Err(ServeError::UnsupportedProtocol { .. })
        ));
        assert!(check_launch_env(Some(MAGIC_COOKIE_VALUE), Some("5,6")).is_ok());
        assert!(check_launch_env(Some(MAGIC_COOKIE_VALUE), Some("6, 5")).is_ok());
    }

    #[test]
    fn handshake_line_shape() {
        let line = handshake_line("unix", "/tmp/x/provider.sock", Some(&[1, 2, 3]));
        assert_eq!(line, "1|6|unix|/tmp/x/provider.sock|grpc|AQID");
        assert_eq!(handshake_line("tcp", "127.0.0.1:1234", None), "1|6|tcp|127.0.0.1:1234|grpc|");
    }

    #[test]
    fn certificate_is_self_signed_ca_for_localhost() {
        let (pem, key, der) = server_certificate().unwrap();
        assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(key.contains("PRIVATE KEY"));
        assert!(der.len() > 200);
    }
}
