//! Why a member could not start, as the operator reads it on stderr.

use crate::io::SocketAddr;
use crate::storage::StorageError;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A flag's value is malformed or contradicts another flag.
    #[error("{0}")]
    Flag(String),
    /// The member cannot join or bootstrap the cluster its flags name.
    #[error("{0}")]
    Bootstrap(String),
    #[error("{what} {}: {source}", path.display())]
    DataDir {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("starting member {name:?} in {}: {source}", data_dir.display())]
    Raft {
        name: String,
        data_dir: PathBuf,
        source: Box<crate::raft::StartError>,
    },
    #[error("listening for {what} on {address}: {source}")]
    Listen {
        what: &'static str,
        address: SocketAddr,
        source: std::io::Error,
    },
}

/// Why a running member stopped serving.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("a listener task ended abnormally: {0}")]
    Task(String),
    #[error("a listener failed: {0}")]
    Listener(String),
}
