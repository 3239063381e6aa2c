//! bbolt's file format (etcd's backend database, `member/snap/db`), written and read here so
//! that a Cairn snapshot is an etcd snapshot: `etcdctl snapshot status` and `restore`, and
//! etcd itself, open what Cairn writes, and `cairnutl snapshot restore` reads what etcd wrote.
//! This module knows pages, buckets and sorted keys, nothing of etcd's bucket contents.
//!
//! Layout (bbolt 1.3 to 1.4; little-endian integers; one page size for the file, 4096 here):
//! - Every page starts with a 16-byte header `id u64 | flags u16 | count u16 | overflow u32`.
//!   Flags: 0x01 branch, 0x02 leaf, 0x04 meta, 0x10 freelist. A page with `overflow` extra
//!   pages spans `(overflow + 1) * page_size` bytes; the pages it covers carry no header.
//! - Pages 0 and 1 are meta pages: after the header `magic u32 0xED0CDAED | version u32 2 |
//!   page_size u32 | flags u32 | root bucket (root pgid u64, sequence u64) | freelist pgid
//!   u64 | high-water pgid u64 (the number of pages in use) | txid u64 | checksum u64`, the
//!   checksum being FNV-1a 64 of the 56 bytes before it. A reader uses the valid meta with
//!   the larger txid (bbolt writes them in turn; Cairn writes both the same).
//! - A freelist page lists free page IDs: `count` of them as u64 after the header (0xFFFF:
//!   the first u64 is the count). Cairn's files have no free pages: every page below the
//!   high-water mark is in use, as `bbolt check` (which `etcdctl snapshot status` runs) wants.
//! - A leaf page holds `count` 16-byte elements `flags u32 | pos u32 | key size u32 | value
//!   size u32`, then the keys and values; `pos` is the distance from the element's own start
//!   to its key, and the value follows the key. Element flag 0x01 marks a nested bucket,
//!   whose value is a bucket header `root pgid u64 | sequence u64`, followed, when the root is
//!   0, by the bucket's single leaf page inline (bbolt inlines buckets under a quarter page).
//! - A branch page holds `count` 16-byte elements `pos u32 | key size u32 | child pgid u64`,
//!   then the keys: each child's first key.
//! - Keys are unique, non-empty and sorted bytewise in every bucket. The meta's root bucket
//!   holds the top-level buckets (etcd's `key`, `meta`, `lease`, ...) as nested buckets.
//! - An etcd snapshot as `etcdctl snapshot save` writes it is this file followed by the
//!   SHA-256 of the file (32 bytes): a file whose size is 32 past a multiple of 512 has one.

mod read;
mod write;

pub use read::{BoltReader, BucketRoot};
pub use write::{BoltWriter, BucketSource, NamedBucket, Pairs};

/// The page size of the files Cairn writes (bbolt's default on Linux).
pub const PAGE_BYTES: usize = 4096;
/// Bytes of the SHA-256 that follows the database in an etcd snapshot file.
pub const HASH_BYTES: u64 = 32;

const MAGIC: u32 = 0xED0C_DAED;
const VERSION: u32 = 2;
const PAGE_HEADER_BYTES: usize = 16;
const ELEMENT_BYTES: usize = 16;
/// Offset of the meta's checksum from the start of the meta (after the page header).
const META_CHECKSUM_OFFSET: usize = 56;
const META_BYTES: usize = META_CHECKSUM_OFFSET + 8;

const BRANCH_PAGE: u16 = 0x01;
const LEAF_PAGE: u16 = 0x02;
const META_PAGE: u16 = 0x04;
const FREELIST_PAGE: u16 = 0x10;
const BUCKET_ELEMENT: u32 = 0x01;

/// A page's 16-byte header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PageHeader {
    id: u64,
    flags: u16,
    count: u16,
    overflow: u32,
}

impl PageHeader {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.id.to_le_bytes());
        out.extend_from_slice(&self.flags.to_le_bytes());
        out.extend_from_slice(&self.count.to_le_bytes());
        out.extend_from_slice(&self.overflow.to_le_bytes());
    }

    fn decode(bytes: &[u8]) -> PageHeader {
        PageHeader {
            id: u64_at(bytes, 0),
            flags: u16::from_le_bytes([bytes[8], bytes[9]]),
            count: u16::from_le_bytes([bytes[10], bytes[11]]),
            overflow: u32_at(bytes, 12),
        }
    }
}

/// The meta page's fields (the checksum is computed, not stored here).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Meta {
    page_size: u32,
    root_pgid: u64,
    freelist_pgid: u64,
    high_water_pgid: u64,
    txid: u64,
}

impl Meta {
    /// The meta's 64 bytes, checksum included.
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(META_BYTES);
        out.extend_from_slice(&MAGIC.to_le_bytes());
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&self.page_size.to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&self.root_pgid.to_le_bytes());
        out.extend_from_slice(&0u64.to_le_bytes());
        out.extend_from_slice(&self.freelist_pgid.to_le_bytes());
        out.extend_from_slice(&self.high_water_pgid.to_le_bytes());
        out.extend_from_slice(&self.txid.to_le_bytes());
        let checksum = fnv1a64(&out);
        out.extend_from_slice(&checksum.to_le_bytes());
        out
    }

    /// Decodes and validates a meta (the bytes after a meta page's header).
    fn decode(bytes: &[u8]) -> Result<Meta, String> {
        if bytes.len() < META_BYTES {
            return Err("file too short for a meta page".to_string());
        }
        if u32_at(bytes, 0) != MAGIC {
            return Err(format!(
                "not a bbolt database: magic {:#010x}, expected {MAGIC:#010x}",
                u32_at(bytes, 0)
            ));
        }
        if u32_at(bytes, 4) != VERSION {
            return Err(format!(
                "bbolt format version {} (only {VERSION} is known)",
                u32_at(bytes, 4)
            ));
        }
        let stored = u64_at(bytes, META_CHECKSUM_OFFSET);
        let computed = fnv1a64(&bytes[..META_CHECKSUM_OFFSET]);
        if stored != computed {
            return Err(format!(
                "meta checksum {stored:#018x} does not match its contents ({computed:#018x})"
            ));
        }
        Ok(Meta {
            page_size: u32_at(bytes, 8),
            root_pgid: u64_at(bytes, 16),
            freelist_pgid: u64_at(bytes, 32),
            high_water_pgid: u64_at(bytes, 40),
            txid: u64_at(bytes, 48),
        })
    }
}

fn u32_at(bytes: &[u8], offset: usize) -> u32 {
    u32::from_le_bytes(bytes[offset..offset + 4].try_into().expect("4 bytes"))
}

fn u64_at(bytes: &[u8], offset: usize) -> u64 {
    u64::from_le_bytes(bytes[offset..offset + 8].try_into().expect("8 bytes"))
}

/// FNV-1a, 64 bits: bbolt's meta checksum.
fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

#[cfg(test)]
mod tests;
