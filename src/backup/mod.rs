//! Backups in etcd's own snapshot format: Cairn's state written as etcd's backend database
//! (`export`), an etcd database read back into Cairn's state (`import`), the SHA-256 trailer
//! of a snapshot file and etcd's `snapshot status` figures. Above the state layers and
//! below `api` (the Snapshot RPC) and `server` (restore): it knows etcd's buckets, not raft.

mod export;
mod import;
pub mod records;

pub use export::{database, ExportMeta};
pub use import::{read_database, Imported};

use crate::io::Disk;
use crate::storage::bolt::{BoltReader, HASH_BYTES};
use crate::storage::StorageError;
use sha2::{Digest, Sha256};
use std::path::Path;

/// etcd's `snapshot status`: a CRC-32C of every bucket name, key and value, the newest
/// revision, the number of pairs and the database's size.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Status {
    pub hash: u32,
    pub revision: i64,
    #[serde(rename = "totalKey")]
    pub total_keys: u64,
    #[serde(rename = "totalSize")]
    pub total_bytes: u64,
}

pub fn status(disk: &dyn Disk, path: &Path) -> Result<Status, StorageError> {
    let reader = BoltReader::open(disk, path)?;
    let mut crc = Crc32c::default();
    let mut status = Status {
        hash: 0,
        revision: 0,
        total_keys: 0,
        total_bytes: reader.size_bytes(),
    };
    for (name, root) in reader.buckets()? {
        crc.update(&name);
        let is_key_bucket = name == records::KEY_BUCKET;
        reader.visit(&root, &mut |_, key, value| {
            crc.update(key);
            crc.update(value);
            if is_key_bucket {
                if let Some((main, _, _)) = records::parse_revision_key(key) {
                    status.revision = main;
                }
            }
            status.total_keys += 1;
            Ok(())
        })?;
    }
    status.hash = crc.finish();
    Ok(status)
}

/// Whether a snapshot file of `file_bytes` ends with a SHA-256 (etcd's rule: the database
/// is a whole number of 512-byte sectors, so a 32-byte remainder is the hash).
pub fn has_hash(file_bytes: u64) -> bool {
    file_bytes % 512 == HASH_BYTES
}

/// Checks a snapshot file's SHA-256 trailer against the database before it, reading in
/// pieces. Err names the file when the hash is missing or wrong.
pub fn verify_hash(
    disk: &dyn Disk,
    path: &Path,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<(), StorageError> {
    let file_bytes = disk.len(path).map_err(StorageError::io("reading", path))?;
    let corrupt = |offset, reason: String| StorageError::Corrupt {
        what: "snapshot",
        path: path.to_path_buf(),
        offset,
        reason,
    };
    if !has_hash(file_bytes) {
        return Err(corrupt(
            file_bytes,
            "snapshot missing hash but --skip-hash-check=false".to_string(),
        ));
    }
    let database_bytes = file_bytes - HASH_BYTES;
    let mut hasher = Sha256::new();
    let mut offset = 0;
    while offset < database_bytes {
        let length = (database_bytes - offset).min(1 << 20) as usize;
        let piece = disk
            .read_at(path, offset, length)
            .map_err(StorageError::io("reading", path))?;
        if piece.is_empty() {
            return Err(corrupt(offset, "file shrank while being read".to_string()));
        }
        hasher.update(&piece);
        offset += piece.len() as u64;
        progress(offset, database_bytes);
    }
    let stored = disk
        .read_at(path, database_bytes, HASH_BYTES as usize)
        .map_err(StorageError::io("reading", path))?;
    if hasher.finalize().as_slice() != stored.as_slice() {
        return Err(corrupt(
            database_bytes,
            "expected sha256 does not match the snapshot's contents".to_string(),
        ));
    }
    Ok(())
}

/// A running SHA-256, for the trailer a snapshot stream ends with.
#[derive(Default)]
pub struct StreamHash(Sha256);

impl StreamHash {
    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    pub fn finish(self) -> Vec<u8> {
        self.0.finalize().to_vec()
    }
}

/// CRC-32C (Castagnoli), the checksum etcd's `snapshot status` prints.
struct Crc32c {
    table: [u32; 256],
    crc: u32,
}

impl Default for Crc32c {
    fn default() -> Self {
        let mut table = [0u32; 256];
        for (index, entry) in table.iter_mut().enumerate() {
            let mut crc = index as u32;
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ 0x82F6_3B78
                } else {
                    crc >> 1
                };
            }
            *entry = crc;
        }
        Crc32c {
            table,
            crc: 0xFFFF_FFFF,
        }
    }
}

impl Crc32c {
    fn update(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.crc =
                self.table[((self.crc ^ u32::from(*byte)) & 0xFF) as usize] ^ (self.crc >> 8);
        }
    }

    fn finish(&self) -> u32 {
        !self.crc
    }
}

#[cfg(test)]
mod tests;
