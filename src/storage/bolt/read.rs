//! Reads a bbolt file page by page through the `Disk`: one page per tree level is held at a
//! time, so a database of many GiB is read in bounded memory. Every offset, size and page ID
//! is checked against the page and the file before use: a damaged file is an error naming
//! the file and the offset, never a panic, a loop or a huge allocation.

use super::*;
use crate::io::Disk;
use crate::storage::StorageError;
use std::path::{Path, PathBuf};

/// Called with each pair of a bucket and the file offset of its element.
pub type PairVisitor<'v> = dyn FnMut(u64, &[u8], &[u8]) -> Result<(), StorageError> + 'v;
/// Called with each leaf element: its offset, flags, key and value.
type ElementVisitor<'v> = dyn FnMut(u64, u32, &[u8], &[u8]) -> Result<(), StorageError> + 'v;

/// Deepest B+tree accepted (bbolt's trees of a few TiB are under 10 levels).
const DEPTH_MAX: usize = 32;

/// Where a top-level bucket's pairs are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BucketRoot {
    /// A tree rooted at this page.
    Pages(u64),
    /// An inline bucket: its leaf page's bytes, and the file offset they were read from.
    Inline { page: Vec<u8>, offset: u64 },
}

pub struct BoltReader<'a> {
    disk: &'a dyn Disk,
    path: PathBuf,
    page_bytes: u64,
    meta: Meta,
}

impl<'a> BoltReader<'a> {
    /// Opens `path`, choosing the valid meta page with the larger transaction ID.
    pub fn open(disk: &'a dyn Disk, path: &Path) -> Result<BoltReader<'a>, StorageError> {
        let file_bytes = disk.len(path).map_err(StorageError::io("reading", path))?;
        let read_meta = |offset: u64| -> Result<Meta, String> {
            let bytes = disk
                .read_at(path, offset, PAGE_HEADER_BYTES + META_BYTES)
                .map_err(|error| error.to_string())?;
            if bytes.len() < PAGE_HEADER_BYTES + META_BYTES {
                return Err("file too short for a meta page".to_string());
            }
            Meta::decode(&bytes[PAGE_HEADER_BYTES..])
        };
        let first = read_meta(0);
        // The second meta is one page further; the first tells the page size, and without
        // it bbolt's default (4096) is tried.
        let page_bytes = first
            .as_ref()
            .map_or(PAGE_BYTES as u64, |meta| u64::from(meta.page_size));
        let second = read_meta(page_bytes);
        let meta = match (first, second) {
            (Ok(a), Ok(b)) => {
                if b.txid > a.txid {
                    b
                } else {
                    a
                }
            }
            (Ok(meta), Err(_)) | (Err(_), Ok(meta)) => meta,
            (Err(reason), Err(_)) => {
                return Err(corrupt(path, 0, format!("no valid meta page: {reason}")))
            }
        };
        let page_bytes = u64::from(meta.page_size);
        if !(512..=1 << 20).contains(&page_bytes) || !page_bytes.is_power_of_two() {
            return Err(corrupt(
                path,
                0,
                format!("page size {page_bytes} is not a power of two from 512 to 1 MiB"),
            ));
        }
        let needed = meta.high_water_pgid.checked_mul(page_bytes);
        if needed.is_none_or(|needed| needed > file_bytes) {
            return Err(corrupt(
                path,
                file_bytes,
                format!(
                    "the meta page counts {} pages of {page_bytes} bytes but the file has {file_bytes} bytes (truncated?)",
                    meta.high_water_pgid
                ),
            ));
        }
        if meta.root_pgid < 2 || meta.root_pgid >= meta.high_water_pgid {
            return Err(corrupt(
                path,
                0,
                format!(
                    "root bucket page {} outside the database's {} pages",
                    meta.root_pgid, meta.high_water_pgid
                ),
            ));
        }
        Ok(BoltReader {
            disk,
            path: path.to_path_buf(),
            page_bytes,
            meta,
        })
    }

    /// Bytes of the database (pages in use times page size), as bbolt's `Tx.Size`.
    pub fn size_bytes(&self) -> u64 {
        self.meta.high_water_pgid * self.page_bytes
    }

    /// The top-level buckets in name order.
    pub fn buckets(&self) -> Result<Vec<(Vec<u8>, BucketRoot)>, StorageError> {
        let mut buckets = Vec::new();
        let mut visited = 0;
        let root = BucketRoot::Pages(self.meta.root_pgid);
        self.walk(&root, &mut visited, &mut |offset, flags, key, value| {
            if flags & BUCKET_ELEMENT == 0 {
                return Err(corrupt(
                    &self.path,
                    offset,
                    format!(
                        "top-level key {:?} is not a bucket",
                        String::from_utf8_lossy(key)
                    ),
                ));
            }
            buckets.push((key.to_vec(), self.bucket_root(offset, value)?));
            Ok(())
        })?;
        Ok(buckets)
    }

    /// Visits every pair of a top-level bucket in key order, with the file offset of its
    /// element (for errors about its contents).
    pub fn visit(&self, bucket: &BucketRoot, visit: &mut PairVisitor) -> Result<(), StorageError> {
        let mut visited = 0;
        self.walk(bucket, &mut visited, &mut |offset, flags, key, value| {
            if flags & BUCKET_ELEMENT != 0 {
                return Err(corrupt(
                    &self.path,
                    offset,
                    format!(
                        "nested bucket {:?}: etcd's buckets hold none",
                        String::from_utf8_lossy(key)
                    ),
                ));
            }
            visit(offset, key, value)
        })
    }

    fn bucket_root(&self, offset: u64, value: &[u8]) -> Result<BucketRoot, StorageError> {
        if value.len() < 16 {
            return Err(corrupt(
                &self.path,
                offset,
                format!("bucket header of {} bytes, expected 16", value.len()),
            ));
        }
        match u64_at(value, 0) {
            0 => Ok(BucketRoot::Inline {
                page: value[16..].to_vec(),
                offset: offset + 16,
            }),
            pgid => Ok(BucketRoot::Pages(pgid)),
        }
    }

    /// Walks a tree's leaves in order, checking that keys strictly increase.
    fn walk(
        &self,
        root: &BucketRoot,
        visited: &mut u64,
        visit: &mut ElementVisitor,
    ) -> Result<(), StorageError> {
        let mut last_key: Option<Vec<u8>> = None;
        let mut checked = |offset: u64, flags: u32, key: &[u8], value: &[u8]| {
            if last_key.as_deref().is_some_and(|last| last >= key) {
                return Err(corrupt(&self.path, offset, "keys out of order".to_string()));
            }
            last_key = Some(key.to_vec());
            visit(offset, flags, key, value)
        };
        match root {
            BucketRoot::Pages(pgid) => self.walk_page(*pgid, 0, visited, &mut checked),
            BucketRoot::Inline { page, offset } => {
                if page.len() < PAGE_HEADER_BYTES {
                    return Err(corrupt(
                        &self.path,
                        *offset,
                        "inline bucket too short".into(),
                    ));
                }
                let header = PageHeader::decode(page);
                if header.flags != LEAF_PAGE {
                    return Err(corrupt(
                        &self.path,
                        *offset,
                        format!(
                            "inline bucket page has flags {:#x}, not a leaf",
                            header.flags
                        ),
                    ));
                }
                self.visit_leaf(page, header.count, *offset, &mut checked)
            }
        }
    }

    fn walk_page(
        &self,
        pgid: u64,
        depth: usize,
        visited: &mut u64,
        visit: &mut ElementVisitor,
    ) -> Result<(), StorageError> {
        let offset = pgid.saturating_mul(self.page_bytes);
        // A valid tree visits each page once: more visits than pages means a cycle or a
        // page shared between parents.
        *visited += 1;
        if depth > DEPTH_MAX || *visited > self.meta.high_water_pgid {
            return Err(corrupt(
                &self.path,
                offset,
                "page references loop or are shared".to_string(),
            ));
        }
        let (header, page) = self.read_page(pgid)?;
        match header.flags {
            LEAF_PAGE => self.visit_leaf(&page, header.count, offset, visit),
            BRANCH_PAGE => {
                for index in 0..usize::from(header.count) {
                    let element = PAGE_HEADER_BYTES + index * ELEMENT_BYTES;
                    let child = u64_at(&page, element + 8);
                    // The key itself is only a routing hint for searches: the walk checks the
                    // leaves' order instead, but the element must point inside the page.
                    self.slice(
                        &page,
                        offset,
                        element,
                        u32_at(&page, element),
                        u32_at(&page, element + 4),
                    )?;
                    self.walk_page(child, depth + 1, visited, visit)?;
                }
                Ok(())
            }
            flags => Err(corrupt(
                &self.path,
                offset,
                format!("page {pgid} has flags {flags:#x}: not a branch or leaf page"),
            )),
        }
    }

    fn visit_leaf(
        &self,
        page: &[u8],
        count: u16,
        offset: u64,
        visit: &mut ElementVisitor,
    ) -> Result<(), StorageError> {
        let elements_end = PAGE_HEADER_BYTES + usize::from(count) * ELEMENT_BYTES;
        if elements_end > page.len() {
            return Err(corrupt(
                &self.path,
                offset,
                format!("{count} elements do not fit a page of {} bytes", page.len()),
            ));
        }
        for index in 0..usize::from(count) {
            let element = PAGE_HEADER_BYTES + index * ELEMENT_BYTES;
            let flags = u32_at(page, element);
            let position = u32_at(page, element + 4);
            let key_bytes = u32_at(page, element + 8);
            let value_bytes = u32_at(page, element + 12);
            let key = self.slice(page, offset, element, position, key_bytes)?;
            if key.is_empty() {
                return Err(corrupt(
                    &self.path,
                    offset + element as u64,
                    "empty key".into(),
                ));
            }
            let value_position = u64::from(position) + u64::from(key_bytes);
            let value_position = u32::try_from(value_position).map_err(|_| {
                corrupt(
                    &self.path,
                    offset + element as u64,
                    "value offset overflows".into(),
                )
            })?;
            let value = self.slice(page, offset, element, value_position, value_bytes)?;
            visit(offset + element as u64, flags, key, value)?;
        }
        Ok(())
    }

    /// `length` bytes at `position` past the element at `element`, inside the page.
    fn slice<'p>(
        &self,
        page: &'p [u8],
        offset: u64,
        element: usize,
        position: u32,
        length: u32,
    ) -> Result<&'p [u8], StorageError> {
        let start = element as u64 + u64::from(position);
        let end = start + u64::from(length);
        if end > page.len() as u64 {
            return Err(corrupt(
                &self.path,
                offset + element as u64,
                format!(
                    "element data at {start}..{end} runs past its page of {} bytes",
                    page.len()
                ),
            ));
        }
        Ok(&page[start as usize..end as usize])
    }

    /// Reads page `pgid` with its overflow pages.
    fn read_page(&self, pgid: u64) -> Result<(PageHeader, Vec<u8>), StorageError> {
        let offset = pgid.saturating_mul(self.page_bytes);
        if pgid < 2 || pgid >= self.meta.high_water_pgid {
            return Err(corrupt(
                &self.path,
                offset,
                format!(
                    "reference to page {pgid}, outside the data pages 2..{}",
                    self.meta.high_water_pgid
                ),
            ));
        }
        let head = self.read_at(offset, PAGE_HEADER_BYTES)?;
        let header = PageHeader::decode(&head);
        if header.id != pgid {
            return Err(corrupt(
                &self.path,
                offset,
                format!("page {pgid} calls itself page {}", header.id),
            ));
        }
        let last = pgid.checked_add(u64::from(header.overflow));
        if last.is_none_or(|last| last >= self.meta.high_water_pgid) {
            return Err(corrupt(
                &self.path,
                offset,
                format!(
                    "page {pgid} with {} overflow pages runs past the database's {} pages",
                    header.overflow, self.meta.high_water_pgid
                ),
            ));
        }
        let bytes = (u64::from(header.overflow) + 1) * self.page_bytes;
        let page = self.read_at(offset, bytes as usize)?;
        Ok((header, page))
    }

    fn read_at(&self, offset: u64, length: usize) -> Result<Vec<u8>, StorageError> {
        let bytes = self
            .disk
            .read_at(&self.path, offset, length)
            .map_err(StorageError::io("reading", &self.path))?;
        if bytes.len() < length {
            return Err(corrupt(
                &self.path,
                offset,
                "file ends inside a page".into(),
            ));
        }
        Ok(bytes)
    }
}

fn corrupt(path: &Path, offset: u64, reason: String) -> StorageError {
    StorageError::Corrupt {
        what: "bbolt database",
        path: path.to_path_buf(),
        offset,
        reason,
    }
}
