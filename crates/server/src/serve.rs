//! Serving a router on an address, over TLS when a certificate is given, within limits: a
//! connection that does not send its request's headers in time, or its body, is closed, and
//! at most so many connections are served at once (the others wait in the kernel's accept
//! queue, holding no file descriptor of ours), so half-open connections cannot keep
//! `/health` or a job's start from being answered.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum_server::{AddrListener, Address};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// A certificate chain and its key, both PEM.
#[derive(Debug, Clone)]
pub struct Tls {
    /// Certificate chain (PEM).
    pub cert: PathBuf,
    /// Private key (PEM).
    pub key: PathBuf,
}

/// What one connection may take.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Time for a request's headers to arrive (also how long an idle connection stays open).
    pub header_timeout: Duration,
    /// Time for a request's body to arrive.
    pub body_timeout: Duration,
    /// Connections served at once.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits { header_timeout: Duration::from_secs(10), body_timeout: Duration::from_secs(30), max_connections: 512 }
    }
}

/// File descriptors kept free of connections: the job database, agents' calls, repositories.
const SPARE_FDS: u64 = 128;

impl Limits {
    /// The connection limit, lowered to stay below the process's open-file limit (`ulimit -n`)
    /// with room for everything else: past it, accepting fails and nothing is answered.
    pub fn connections(&self) -> usize {
        let mut rl = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        // SAFETY: getrlimit writes the limits into the struct it is given.
        let nofile = if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) } == 0 { rl.rlim_cur } else { 1024 };
        let room = nofile.saturating_sub(SPARE_FDS).max(16) as usize;
        self.max_connections.clamp(1, room)
    }
}

/// Serves `router` on `addr` until the process is stopped (Ctrl-C or SIGTERM end it cleanly).
pub async fn serve(router: Router, addr: SocketAddr, tls: Option<Tls>, limits: Limits) -> io::Result<()> {
    let max = limits.connections();
    if max < limits.max_connections {
        tracing::warn!(
            asked = limits.max_connections,
            max,
            "the connection limit is lowered to stay below the open-file limit (ulimit -n)"
        );
    }
    let listener = Limited { inner: Arc::new(TcpListener::bind(addr).await?), permits: Arc::new(Semaphore::new(max)) };
    let handle = axum_server::Handle::<Peer>::new();
    let h = handle.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        h.graceful_shutdown(Some(Duration::from_secs(5)));
    });
    let router = router.layer(tower_http::timeout::RequestBodyTimeoutLayer::new(limits.body_timeout));
    let app = router.into_make_service();
    let mut server = axum_server::Server::<Peer>::from_listener(listener)
        .handle(handle)
        // A connection that never sends a whole first request (HTTP/1 or HTTP/2) is closed.
        .first_request_timeout(limits.header_timeout);
    server.http_builder().http1().header_read_timeout(limits.header_timeout);
    server.http_builder().http2().keep_alive_interval(limits.header_timeout).keep_alive_timeout(limits.header_timeout);
    match tls {
        Some(tls) => {
            let config =
                axum_server::tls_rustls::RustlsConfig::from_pem_file(&tls.cert, &tls.key).await.map_err(|e| {
                    io::Error::other(format!(
                        "cannot load the TLS certificate {} and key {}: {e}",
                        tls.cert.display(),
                        tls.key.display()
                    ))
                })?;
            let acceptor =
                axum_server::tls_rustls::RustlsAcceptor::new(config).handshake_timeout(limits.header_timeout);
            server.acceptor(acceptor).serve(app).await
        }
        None => server.serve(app).await,
    }
}

/// The peer of a connection; the listener's address type.
#[derive(Clone, Debug)]
pub struct Peer(SocketAddr);

impl Address for Peer {
    type Stream = Counted;
    type Listener = Limited;
}

/// A TCP listener that accepts a connection only when fewer than its limit are open.
pub struct Limited {
    inner: Arc<TcpListener>,
    permits: Arc<Semaphore>,
}

impl AddrListener<Counted, Peer> for Limited {
    async fn bind_to(addr: Peer) -> io::Result<Self> {
        Ok(Limited { inner: Arc::new(TcpListener::bind(addr.0).await?), permits: Arc::new(Semaphore::new(512)) })
    }

    async fn accept_stream(&self) -> io::Result<(Counted, Peer)> {
        let permit = self.permits.clone().acquire_owned().await.expect("the semaphore is never closed");
        let (stream, peer) = self.inner.accept().await?;
        Ok((Counted { stream, _permit: permit }, Peer(peer)))
    }

    fn get_local_addr(&self) -> io::Result<Peer> {
        self.inner.local_addr().map(Peer)
    }
}

/// A connection, holding its place under the limit until it is closed.
pub struct Counted {
    stream: TcpStream,
    _permit: OwnedSemaphorePermit,
}

impl AsyncRead for Counted {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counted {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = ctrl_c => {},
        _ = term.recv() => {},
    }
}
