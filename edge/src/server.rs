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
    /// Serve HTTPS with this PEM certificate chain and private key.
    pub tls: Option<(PathBuf, PathBuf)>,
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
    #[error("TLS: {0}")]
    Tls(#[from] wire::serve::TlsError),
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
    // A bad certificate stops the start, before the database is touched.
    let tls = match &opts.tls {
        None => None,
        Some((cert, key)) => Some(wire::serve::tls_config(cert, key)?),
    };
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
    let scheme = if tls.is_some() { "https" } else { "http" };
    info!(%addr, scheme, "fleet-edge listening on {addr} ({scheme}).");
    let app = api::router(db.clone(), token);
    wire::serve::serve_http1(listener, app, tls, wire::serve::shutdown_signal()).await;
    db.close().await;
    info!("fleet-edge stopped.");
    Ok(())
}
