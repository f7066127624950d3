//! One apid listener per node on `address:port` (behaviour.md §1): the
//! socket is bound while the node is up and closed while it reboots or is
//! off (clients see refused connections); each accepted connection gets the
//! TLS personality of the node's current phase, and every connection dies
//! when the node reboots or changes personality.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::server::TlsStream;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};
use tonic::transport::server::Connected;

use super::node::Node;

/// What a handler learns about its connection.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    /// Accepted with the maintenance personality (no client certificate).
    pub maintenance: bool,
    /// The client's leaf certificate (normal mode).
    pub peer_cert: Option<Vec<u8>>,
}

/// A TLS connection that fails as soon as its node reboots.
pub struct SimConn {
    inner: TlsStream<TcpStream>,
    killed: Pin<Box<WaitForCancellationFutureOwned>>,
    info: ConnInfo,
}

impl SimConn {
    fn dead(&mut self, cx: &mut Context<'_>) -> bool {
        self.killed.as_mut().poll(cx).is_ready()
    }
}

fn reset() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::ConnectionReset, "node rebooting")
}

impl AsyncRead for SimConn {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if this.dead(cx) {
            return Poll::Ready(Err(reset()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for SimConn {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        if this.dead(cx) {
            return Poll::Ready(Err(reset()));
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

impl Connected for SimConn {
    type ConnectInfo = ConnInfo;
    fn connect_info(&self) -> ConnInfo {
        self.info.clone()
    }
}

use std::future::Future as _;

/// Runs the node's listener until `root` is cancelled, feeding TLS
/// connections to `out` (the node's tonic server).
/// `first` is the socket bound at start, so the node answers as soon as
/// the cluster is started.
pub async fn run(
    node: Arc<Node>,
    addr: SocketAddr,
    first: TcpListener,
    root: CancellationToken,
    out: tokio::sync::mpsc::Sender<SimConn>,
) {
    let n = node.clone();
    accept_while_up(&node, addr, Some(first), &root, move |tcp| {
        tokio::spawn(handshake(n.clone(), tcp, out.clone()));
    })
    .await;
}

/// Accepts on `addr` while the node is up: the socket is bound when the
/// node comes up (or is `first`) and closed when it goes down, so clients
/// see refused connections meanwhile; each accepted connection goes to
/// `accept`. Ends when `root` is cancelled.
pub(crate) async fn accept_while_up(
    node: &Node,
    addr: SocketAddr,
    mut first: Option<TcpListener>,
    root: &CancellationToken,
    accept: impl Fn(TcpStream),
) {
    let mut up = node.up_receiver();
    loop {
        tokio::select! {
            _ = root.cancelled() => return,
            r = up.wait_for(|u| *u) => if r.is_err() { return },
        }
        let bound = match first.take() {
            Some(l) => Some(l),
            None => bind(addr).await,
        };
        let Some(listener) = bound else {
            tracing::warn!(%addr, "simulated node cannot bind its listener");
            return;
        };
        loop {
            tokio::select! {
                _ = root.cancelled() => return,
                r = up.wait_for(|u| !*u) => { if r.is_err() { return } break }
                accepted = listener.accept() => {
                    if let Ok((tcp, _)) = accepted {
                        accept(tcp);
                    }
                }
            }
        }
        drop(listener);
    }
}

/// Binds `addr`, retrying for a second while the previous socket of a
/// rebooted node is still being released.
pub(crate) async fn bind(addr: SocketAddr) -> Option<TcpListener> {
    for _ in 0..50 {
        if let Ok(l) = TcpListener::bind(addr).await {
            return Some(l);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

async fn handshake(node: Arc<Node>, tcp: TcpStream, out: tokio::sync::mpsc::Sender<SimConn>) {
    // No personality right now (installing, a worker without trustd): the
    // connection is dropped, as a node whose apid is not serving would.
    let Some((identity, maintenance, token)) = node.personality() else {
        return;
    };
    let _ = tcp.set_nodelay(true);
    let acceptor = tokio_rustls::TlsAcceptor::from(identity.config.clone());
    let Ok(Ok(tls)) = tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await else {
        return;
    };
    let peer_cert = tls.get_ref().1.peer_certificates().and_then(|c| c.first()).map(|c| c.to_vec());
    let conn =
        SimConn { inner: tls, killed: Box::pin(token.cancelled_owned()), info: ConnInfo { maintenance, peer_cert } };
    let _ = out.send(conn).await;
}
