use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("{operation} {path}: {source}")]
    Io {
        operation: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("corrupt {what} in {path} at offset {offset}: {reason}")]
    Corrupt {
        what: &'static str,
        path: PathBuf,
        offset: u64,
        reason: String,
    },
    #[error("refusing to write a WAL record of {size_bytes} bytes to {path}: records are at most {size_bytes_max} bytes")]
    RecordTooLarge {
        path: PathBuf,
        size_bytes: usize,
        size_bytes_max: usize,
    },
    #[error("cannot decode {what}: {reason}")]
    Decode { what: &'static str, reason: String },
}

impl StorageError {
    pub fn io(
        operation: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> StorageError {
        let path = path.into();
        move |source| StorageError::Io {
            operation,
            path,
            source,
        }
    }

    /// True when the disk is full; the member refuses writes instead of failing hard.
    pub fn is_disk_full(&self) -> bool {
        matches!(self, StorageError::Io { source, .. } if source.kind() == std::io::ErrorKind::StorageFull)
    }
}
