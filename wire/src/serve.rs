//! The one serving loop of Fleet's HTTP services (`fleet-edge` and
//! `fleet-status`): HTTP/1.1 with hyper's own connection, optionally over
//! TLS (rustls), graceful on SIGTERM or Ctrl-C.
//!
//! hyper's HTTP/1 connection directly, rather than `axum::serve`: that one
//! first reads a few bytes to tell HTTP/1 from HTTP/2 and hands them back
//! through a rewinding reader, and the request head then arrives in two
//! reads, which makes the connection's read buffer grow from 8 to 16 KiB.
//! A held long-poll keeps that buffer for a minute, 10,000 times over on a
//! busy status replica (heaptrack; docs/BENCHMARKS.md, distribution). The
//! services' clients (reconcilers, registers, browsers, load balancers,
//! Prometheus) all speak HTTP/1.1. Each connection shares the router (an
//! `Arc`); the route table is never rebuilt per connection.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tracing::{info, warn};

/// Why a TLS identity could not be made from its files.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("reading the certificate {path}: {message}")]
    Certificate { path: PathBuf, message: String },
    #[error("the certificate {path} holds no CERTIFICATE block")]
    NoCertificate { path: PathBuf },
    #[error("reading the private key {path}: {message}")]
    Key { path: PathBuf, message: String },
    #[error("the certificate and key do not make a TLS identity: {0}")]
    Identity(String),
}

/// A TLS server configuration from a PEM certificate chain and its PEM
/// private key (PKCS#8, PKCS#1 or SEC1).
pub fn tls_config(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let cert_err = |e: &dyn std::fmt::Display| TlsError::Certificate {
        path: cert.to_path_buf(),
        message: e.to_string(),
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| cert_err(&e))?
        .collect::<Result<_, _>>()
        .map_err(|e| cert_err(&e))?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            path: cert.to_path_buf(),
        });
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| TlsError::Key {
        path: key.to_path_buf(),
        message: e.to_string(),
    })?;
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| TlsError::Identity(e.to_string()))?;
    Ok(Arc::new(config))
}

/// Serve `app` over HTTP/1.1 on `listener` (over TLS with `tls`) until
/// `shutdown` completes, then let the requests in progress finish. A failed
/// accept (out of file descriptors, say) is logged and retried, never the
/// end of the service; a failed TLS handshake ends only its connection.
pub async fn serve_http1(
    listener: TcpListener,
    app: axum::Router,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(hyper_util::rt::TokioTimer::new());
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(c) => c,
                Err(e) => {
                    // Out of file descriptors, say: wait rather than spin.
                    warn!(error = %e, "Cannot accept a connection; retrying in a moment.");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let service = hyper_util::service::TowerToHyperService::new(app.clone());
        match &acceptor {
            None => {
                let conn = graceful
                    .watch(http.serve_connection(hyper_util::rt::TokioIo::new(stream), service));
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!(error = %e, "Connection ended with an error.");
                    }
                });
            }
            Some(acceptor) => {
                // The handshake runs in the connection's task, so a slow or
                // broken client does not hold up the accept loop.
                let (acceptor, http, watcher) =
                    (acceptor.clone(), http.clone(), graceful.watcher());
                tokio::spawn(async move {
                    let stream = match tokio::time::timeout(
                        Duration::from_secs(10),
                        acceptor.accept(stream),
                    )
                    .await
                    {
                        Ok(Ok(s)) => s,
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, error = %e, "TLS handshake failed.");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!(%peer, "TLS handshake timed out.");
                            return;
                        }
                    };
                    let conn = watcher.watch(
                        http.serve_connection(hyper_util::rt::TokioIo::new(stream), service),
                    );
                    if let Err(e) = conn.await {
                        tracing::debug!(error = %e, "Connection ended with an error.");
                    }
                });
            }
        }
    }
    drop(listener);
    graceful.shutdown().await;
}

/// Resolves on SIGTERM (what `systemctl stop` sends) or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            warn!(error = %e, "Cannot listen for Ctrl-C.");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                warn!(error = %e, "Cannot listen for SIGTERM.");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    info!("Shutdown requested: finishing requests in flight.");
}
