//! `fleet-edge serve`: read the token, lock and open the database, bind,
//! announce the bound address, serve until SIGTERM or Ctrl-C.

use std::net::SocketAddr;
use std::path::PathBuf;

use tokio::net::TcpListener;
use tracing::info;

use crate::api::{self, BearerToken};
use crate::db::{Db, DbLock, OpenError};

/// What `serve` needs; built by the binary from its flags.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// `host:port`; port 0 picks a free port.
    pub listen: String,
    pub database: PathBuf,
    pub token_file: PathBuf,
}

/// Why the server could not start or stopped on an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("reading token file {path}: {source}")]
    TokenFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("token file {path} is empty: put the bearer token in it")]
    EmptyToken { path: PathBuf },
    #[error(transparent)]
    Database(#[from] OpenError),
    #[error("listening on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("serving HTTP: {0}")]
    Serve(std::io::Error),
}

/// Run the server until a shutdown signal. `on_listening` is called once
/// with the bound address, before the first request is accepted.
pub async fn serve(
    opts: ServeOptions,
    on_listening: impl FnOnce(SocketAddr),
) -> Result<(), ServeError> {
    let content =
        std::fs::read_to_string(&opts.token_file).map_err(|source| ServeError::TokenFile {
            path: opts.token_file.clone(),
            source,
        })?;
    let token = BearerToken::from_file_content(&content).ok_or_else(|| ServeError::EmptyToken {
        path: opts.token_file.clone(),
    })?;
    // Held until the server stops: `restore` refuses while it is.
    let _lock = DbLock::acquire(&opts.database)?;
    let db = Db::open(&opts.database).await?;
    info!(database = %opts.database.display(), "Database open and migrated.");
    let listener = TcpListener::bind(&opts.listen)
        .await
        .map_err(|source| ServeError::Bind {
            addr: opts.listen.clone(),
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| ServeError::Bind {
        addr: opts.listen.clone(),
        source,
    })?;
    on_listening(addr);
    info!(%addr, "fleet-edge listening on {addr}.");
    let app = api::router(db.clone(), token);
    let result = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await
        .map_err(ServeError::Serve);
    db.close().await;
    info!("fleet-edge stopped.");
    result
}

/// Resolves on SIGTERM (systemd stop) or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %e, "Cannot listen for Ctrl-C.");
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
                tracing::warn!(error = %e, "Cannot listen for SIGTERM.");
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
