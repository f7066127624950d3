//! Dialling a node: TCP, then our own rustls handshake, then a tonic
//! channel over that stream. Doing the handshake ourselves gives clear
//! errors (refused vs untrusted vs rejected) and lets maintenance mode use a
//! verifier tonic's TLS settings cannot express.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tonic::transport::{Channel, Endpoint};

use super::error::{ApiError, At};

/// The Talos API port (apid, behaviour.md §1).
pub const APID_PORT: u16 = 50000;

/// Largest message accepted: apid's own limit (32 MiB, api.md §1).
pub const MAX_MESSAGE: usize = 32 << 20;

/// A `host[:port]` (IPv6 as `[addr]:port`) with the default port 50000.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    /// Host name or IP literal (no brackets).
    pub host: String,
    /// Port.
    pub port: u16,
}

impl Address {
    /// Parses `10.0.0.2`, `10.0.0.2:50001`, `[fd00::2]:50000`, `fd00::2`, `node1`.
    pub fn parse(s: &str) -> Result<Address, String> {
        let s = s.trim();
        if s.is_empty() {
            return Err("empty address".to_string());
        }
        if let Ok(sa) = s.parse::<SocketAddr>() {
            return Ok(Address { host: sa.ip().to_string(), port: sa.port() });
        }
        if let Ok(ip) = s.parse::<IpAddr>() {
            return Ok(Address { host: ip.to_string(), port: APID_PORT });
        }
        let (host, port) = match s.rsplit_once(':') {
            Some((h, p)) if !h.contains(':') => (h, p.parse::<u16>().map_err(|_| format!("bad port in {s:?}"))?),
            Some(_) => return Err(format!("bad address {s:?}")),
            None => (s, APID_PORT),
        };
        // A name the TLS connection could never be made to (spaces, empty
        // labels, ...) is refused here, so it fails once, not on every retry.
        if host.parse::<IpAddr>().is_err() && ServerName::try_from(host.to_string()).is_err() {
            return Err(format!("{host:?} is neither an IP address nor a DNS name"));
        }
        Ok(Address { host: host.to_string(), port })
    }

    /// `host:port` for dialling (IPv6 bracketed).
    pub fn authority(&self) -> String {
        match self.host.parse::<IpAddr>() {
            Ok(IpAddr::V6(v6)) => format!("[{v6}]:{}", self.port),
            _ => format!("{}:{}", self.host, self.port),
        }
    }

    fn server_name(&self) -> Result<ServerName<'static>, String> {
        match self.host.parse::<IpAddr>() {
            Ok(ip) => Ok(ServerName::IpAddress(ip.into())),
            Err(_) => ServerName::try_from(self.host.clone()).map_err(|e| format!("bad host name: {e}")),
        }
    }
}

/// Everything needed to (re)dial one endpoint.
#[derive(Clone)]
pub(crate) struct Dialer {
    pub(crate) address: Address,
    tls: Arc<rustls::ClientConfig>,
    connect_timeout: Duration,
}

type Stream = TokioIo<TlsStream<TcpStream>>;

impl Dialer {
    pub(crate) fn new(address: Address, tls: Arc<rustls::ClientConfig>, connect_timeout: Duration) -> Dialer {
        Dialer { address, tls, connect_timeout }
    }

    /// TCP connect and TLS handshake within the connect timeout.
    async fn dial_io(&self) -> std::io::Result<Stream> {
        let authority = self.address.authority();
        let name = self.address.server_name().map_err(std::io::Error::other)?;
        let tls = self.tls.clone();
        let fut = async move {
            let tcp = TcpStream::connect(&authority).await?;
            tcp.set_nodelay(true)?;
            let stream = tokio_rustls::TlsConnector::from(tls).connect(name, tcp).await?;
            Ok::<_, std::io::Error>(TokioIo::new(stream))
        };
        tokio::time::timeout(self.connect_timeout, fut)
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"))?
    }

    /// Dials once (classifying failures against `at`), then builds a channel
    /// that uses this stream first and redials on reconnect.
    pub(crate) async fn channel(&self, at: &At) -> Result<Channel, ApiError> {
        let endpoint_str = self.address.authority();
        let first = self.dial_io().await.map_err(|e| match e.kind() {
            std::io::ErrorKind::TimedOut if e.get_ref().is_none_or(|i| i.downcast_ref::<rustls::Error>().is_none()) => {
                ApiError::Deadline { at: at.clone(), after: self.connect_timeout }
            }
            _ => ApiError::from_io(at.clone(), &endpoint_str, e),
        })?;
        let first = Arc::new(Mutex::new(Some(first)));
        let dialer = self.clone();
        let connector = tower::service_fn(move |_uri: tonic::codegen::http::Uri| {
            let first = first.lock().ok().and_then(|mut f| f.take());
            let dialer = dialer.clone();
            async move {
                match first {
                    Some(s) => Ok::<_, std::io::Error>(s),
                    None => dialer.dial_io().await,
                }
            }
        });
        let uri = format!("http://{endpoint_str}");
        let endpoint = Endpoint::from_shared(uri)
            .map_err(|e| ApiError::Protocol { at: at.clone(), message: format!("bad endpoint {endpoint_str}: {e}") })?;
        endpoint
            .connect_with_connector(connector)
            .await
            .map_err(|e| ApiError::from_status(at.clone(), &endpoint_str, tonic::Status::from_error(Box::new(e))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse_and_names_that_cannot_be_dialled_do_not() {
        for (s, host, port) in [
            ("10.0.0.2", "10.0.0.2", APID_PORT),
            ("10.0.0.2:50001", "10.0.0.2", 50001),
            ("[fd00::2]:50000", "fd00::2", 50000),
            ("fd00::2", "fd00::2", APID_PORT),
            ("node1", "node1", APID_PORT),
            ("cp-1.lab.example:50000", "cp-1.lab.example", 50000),
        ] {
            let a = Address::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"));
            assert_eq!((a.host.as_str(), a.port), (host, port), "{s}");
        }
        for s in ["", "not an address at all", "10.0.0.2:http", ":50000", "a..b", "[fd00::2"] {
            assert!(Address::parse(s).is_err(), "{s:?} parsed");
        }
    }
}
