//! Serving a router on an address, over TLS when a certificate is given.

use std::net::SocketAddr;
use std::path::PathBuf;

use axum::Router;

/// A certificate chain and its key, both PEM.
#[derive(Debug, Clone)]
pub struct Tls {
    /// Certificate chain (PEM).
    pub cert: PathBuf,
    /// Private key (PEM).
    pub key: PathBuf,
}

/// Serves `router` on `addr` until the process is stopped (Ctrl-C or SIGTERM end it cleanly).
pub async fn serve(router: Router, addr: SocketAddr, tls: Option<Tls>) -> std::io::Result<()> {
    let handle = axum_server::Handle::new();
    let h = handle.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        h.graceful_shutdown(Some(std::time::Duration::from_secs(5)));
    });
    let app = router.into_make_service();
    match tls {
        Some(tls) => {
            let config =
                axum_server::tls_rustls::RustlsConfig::from_pem_file(&tls.cert, &tls.key).await.map_err(|e| {
                    std::io::Error::other(format!(
                        "cannot load the TLS certificate {} and key {}: {e}",
                        tls.cert.display(),
                        tls.key.display()
                    ))
                })?;
            axum_server::bind_rustls(addr, config).handle(handle).serve(app).await
        }
        None => axum_server::bind(addr).handle(handle).serve(app).await,
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
