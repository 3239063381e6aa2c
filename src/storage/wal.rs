//! The write-ahead log.
//!
//! On-disk format (`FORMAT_VERSION` 1), documented here beside the code that writes it:
//! - Files `wal/<sequence>-<first index>.wal`, both 16 hex digits. A new segment is cut once
//!   the active one passes `segment_bytes_max`; the name's first index is the next log index
//!   at the cut, so every entry in a segment is below the next segment's first index.
//! - Record: `length u32 LE | crc32 u32 LE | kind u8 | payload`, where `length` counts kind +
//!   payload and the CRC (crc32fast, IEEE) covers kind + payload.
//! - Every segment starts with a `Header` record (payload: format version, u32 LE), then the
//!   state records the caller carries over at the cut (vote, purge point), so older segments
//!   can be removed without losing that state.
//!
//! Recovery reads all segments in order. In the last segment, a bad record with no valid
//! record anywhere after it is a torn write from a crash and is cut off; any other bad record
//! is corruption, and opening fails with the file and offset.
//!
//! Writes are buffered and written + fsynced together (group commit). A failed write is
//! rolled back to the last good length; a failed fsync poisons the log (after a failed fsync
//! the kernel's view of the file is unknown, so nothing more may be acknowledged).

/// The format version this code writes and reads (in every segment's header record). Bumped
/// on any change to the record framing or to a record payload's layout (the payloads are
/// the raft layer's `raft::persisted` types).
pub const FORMAT_VERSION: u32 = 1;
use super::StorageError;
use crate::base::metrics::Metrics;
use crate::io::{clock, Disk, DiskFile};
use std::path::{Path, PathBuf};
use std::sync::Arc;

const RECORD_HEADER_BYTES: usize = 8;
/// No record is larger (see `base::limits`: every entry fits); a length past this is
/// garbage, not a record, and a record this large is refused when written.
const RECORD_BYTES_MAX: usize = crate::base::limits::WAL_RECORD_BYTES_MAX;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum RecordKind {
    Header = 0,
    Entry = 1,
    Vote = 2,
    Truncate = 3,
    Purge = 4,
    Committed = 5,
}

impl RecordKind {
    fn from_byte(byte: u8) -> Option<RecordKind> {
        Some(match byte {
            0 => RecordKind::Header,
            1 => RecordKind::Entry,
            2 => RecordKind::Vote,
            3 => RecordKind::Truncate,
            4 => RecordKind::Purge,
            5 => RecordKind::Committed,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub kind: RecordKind,
    pub payload: Vec<u8>,
}

#[derive(Debug, Clone)]
struct Segment {
    sequence: u64,
    first_index: u64,
    path: PathBuf,
}

pub struct Wal {
    disk: Arc<dyn Disk>,
    dir: PathBuf,
    segment_bytes_max: u64,
    segments: Vec<Segment>,
    active: Box<dyn DiskFile>,
    /// Length of the active segment known to hold only whole records.
    good_len: u64,
    /// Encoded records not yet written.
    pending: Vec<u8>,
    /// Set after a failed fsync: nothing more may be written or acknowledged.
    poisoned: bool,
    /// Where each fsync's duration is recorded, once the member's metrics exist.
    metrics: Option<Arc<Metrics>>,
}

fn encode_record(kind: RecordKind, payload: &[u8], into: &mut Vec<u8>) {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&[kind as u8]);
    hasher.update(payload);
    into.extend_from_slice(&((payload.len() + 1) as u32).to_le_bytes());
    into.extend_from_slice(&hasher.finalize().to_le_bytes());
    into.push(kind as u8);
    into.extend_from_slice(payload);
}

/// Parses the record at `offset`; returns it and the offset after it.
fn parse_record(data: &[u8], offset: usize) -> Result<(Record, usize), String> {
    let header = data
        .get(offset..offset + RECORD_HEADER_BYTES)
        .ok_or("record header cut short")?;
    let length = u32::from_le_bytes(header[0..4].try_into().unwrap()) as usize;
    let crc = u32::from_le_bytes(header[4..8].try_into().unwrap());
    if length == 0 || length > RECORD_BYTES_MAX {
        return Err(format!("impossible record length {length}"));
    }
    let body = data
        .get(offset + RECORD_HEADER_BYTES..offset + RECORD_HEADER_BYTES + length)
        .ok_or("record cut short")?;
    if crc32fast::hash(body) != crc {
        return Err("CRC mismatch".to_string());
    }
    let kind =
        RecordKind::from_byte(body[0]).ok_or_else(|| format!("unknown record kind {}", body[0]))?;
    Ok((
        Record {
            kind,
            payload: body[1..].to_vec(),
        },
        offset + RECORD_HEADER_BYTES + length,
    ))
}

fn segment_name(sequence: u64, first_index: u64) -> String {
    format!("{sequence:016x}-{first_index:016x}.wal")
}

fn parse_segment_name(name: &str) -> Option<(u64, u64)> {
    let stem = name.strip_suffix(".wal")?;
    let (sequence, first_index) = stem.split_once('-')?;
    Some((
        u64::from_str_radix(sequence, 16).ok()?,
        u64::from_str_radix(first_index, 16).ok()?,
    ))
}

impl Wal {
    /// Opens (or creates) the log in `dir`; returns it and every record, oldest first.
    pub fn open(
        disk: Arc<dyn Disk>,
        dir: &Path,
        segment_bytes_max: u64,
    ) -> Result<(Wal, Vec<Record>), StorageError> {
        disk.create_dir_all(dir)
            .map_err(StorageError::io("create directory", dir))?;
        let mut segments: Vec<Segment> = disk
            .list(dir)
            .map_err(StorageError::io("list", dir))?
            .iter()
            .filter_map(|name| {
                let (sequence, first_index) = parse_segment_name(name)?;
                Some(Segment {
                    sequence,
                    first_index,
                    path: dir.join(name),
                })
            })
            .collect();
        segments.sort_by_key(|segment| segment.sequence);
        let mut records = Vec::new();
        for (position, segment) in segments.iter().enumerate() {
            let is_last = position + 1 == segments.len();
            read_segment(disk.as_ref(), segment, is_last, &mut records)?;
        }
        let wal = match segments.last().cloned() {
            None => Wal::create_first(disk, dir, segment_bytes_max)?,
            Some(last) => {
                let mut wal = Wal::with_active(disk, dir, segment_bytes_max, segments, &last.path)?;
                if wal.good_len == 0 {
                    // The last segment lost even its header in a crash: write it again.
                    wal.append_small(RecordKind::Header, &FORMAT_VERSION.to_le_bytes());
                    wal.sync()?;
                }
                wal
            }
        };
        Ok((wal, records))
    }

    /// A log appending to `active_path` (the last of `segments`), created if missing.
    fn with_active(
        disk: Arc<dyn Disk>,
        dir: &Path,
        segment_bytes_max: u64,
        segments: Vec<Segment>,
        active_path: &Path,
    ) -> Result<Wal, StorageError> {
        let active = disk
            .open_append(active_path)
            .map_err(StorageError::io("open", active_path))?;
        let good_len = active.size_bytes();
        Ok(Wal {
            disk,
            dir: dir.to_path_buf(),
            segment_bytes_max,
            segments,
            active,
            good_len,
            pending: Vec::new(),
            poisoned: false,
            metrics: None,
        })
    }

    fn create_first(
        disk: Arc<dyn Disk>,
        dir: &Path,
        segment_bytes_max: u64,
    ) -> Result<Wal, StorageError> {
        let path = dir.join(segment_name(0, 0));
        let segments = vec![Segment {
            sequence: 0,
            first_index: 0,
            path: path.clone(),
        }];
        let mut wal = Wal::with_active(disk, dir, segment_bytes_max, segments, &path)?;
        wal.append_small(RecordKind::Header, &FORMAT_VERSION.to_le_bytes());
        wal.sync()?;
        wal.disk
            .sync_dir(dir)
            .map_err(StorageError::io("sync directory", dir))?;
        Ok(wal)
    }

    /// Buffers a record; it is durable after the next successful `sync`.
    /// Buffers one record for the next `sync`. A record larger than recovery accepts is
    /// refused here, when written, never discovered at the next start.
    pub fn append(&mut self, kind: RecordKind, payload: &[u8]) -> Result<(), StorageError> {
        if payload.len() + 1 > RECORD_BYTES_MAX {
            return Err(StorageError::RecordTooLarge {
                path: self.active.path(),
                size_bytes: payload.len() + 1,
                size_bytes_max: RECORD_BYTES_MAX,
            });
        }
        encode_record(kind, payload, &mut self.pending);
        Ok(())
    }

    /// Buffers a record known to be small (headers, carried state).
    fn append_small(&mut self, kind: RecordKind, payload: &[u8]) {
        self.append(kind, payload)
            .expect("headers and carried state are far below the record limit");
    }

    /// Writes every buffered record and fsyncs: one fsync for the whole group.
    pub fn sync(&mut self) -> Result<(), StorageError> {
        let path = self.active.path();
        if self.poisoned {
            return Err(StorageError::Io {
                operation: "write (log poisoned by an earlier failed fsync)",
                path,
                source: std::io::Error::other("WAL is poisoned"),
            });
        }
        if let Err(source) = self.active.append(&self.pending) {
            // Roll back the partial write so the file again ends at a record boundary; the
            // records stay buffered, so a later `sync` (once the disk has room) writes them.
            if self.disk.set_len(&path, self.good_len).is_err() {
                self.poisoned = true;
            }
            return Err(StorageError::Io {
                operation: "write",
                path,
                source,
            });
        }
        let started = clock::now();
        let synced = self.active.sync();
        if let Some(metrics) = &self.metrics {
            metrics
                .wal_fsync_seconds
                .observe(started.elapsed().as_secs_f64());
        }
        if let Err(source) = synced {
            self.poisoned = true;
            return Err(StorageError::Io {
                operation: "fsync",
                path,
                source,
            });
        }
        self.pending.clear();
        self.good_len = self.active.size_bytes();
        Ok(())
    }

    /// Records the duration of every fsync from now on in `metrics`.
    pub fn record_fsyncs(&mut self, metrics: Arc<Metrics>) {
        self.metrics = Some(metrics);
    }

    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    pub fn should_cut(&self) -> bool {
        self.good_len >= self.segment_bytes_max
    }

    /// Starts a new segment whose entries begin at `first_index`, carrying `state` records.
    pub fn cut(
        &mut self,
        first_index: u64,
        state: &[(RecordKind, Vec<u8>)],
    ) -> Result<(), StorageError> {
        self.sync()?;
        let sequence = self
            .segments
            .last()
            .map_or(0, |segment| segment.sequence + 1);
        let path = self.dir.join(segment_name(sequence, first_index));
        let mut start = Vec::new();
        encode_record(
            RecordKind::Header,
            &FORMAT_VERSION.to_le_bytes(),
            &mut start,
        );
        for (kind, payload) in state {
            encode_record(*kind, payload, &mut start);
        }
        // The new segment becomes the active one only once its start is durable and named
        // in the directory; until then the old one stays active, so a cut the disk has no
        // room for leaves the log as it was and can be tried again.
        let written = self.disk.open_append(&path).and_then(|mut file| {
            file.append(&start)?;
            file.sync()?;
            self.disk.sync_dir(&self.dir)?;
            Ok(file)
        });
        let file = match written {
            Ok(file) => file,
            Err(source) => {
                let _ = self.disk.remove(&path);
                return Err(StorageError::Io {
                    operation: "start segment",
                    path,
                    source,
                });
            }
        };
        self.good_len = file.size_bytes();
        self.active = file;
        self.segments.push(Segment {
            sequence,
            first_index,
            path,
        });
        Ok(())
    }

    /// Removes the oldest segments whose entries are all at or below `purged_index`.
    pub fn remove_segments_through(&mut self, purged_index: u64) -> Result<usize, StorageError> {
        let mut removed = 0;
        while self.segments.len() > 1
            && self.segments[1].first_index <= purged_index.saturating_add(1)
        {
            let segment = self.segments.remove(0);
            self.disk
                .remove(&segment.path)
                .map_err(StorageError::io("remove", &segment.path))?;
            removed += 1;
        }
        if removed > 0 {
            self.disk
                .sync_dir(&self.dir)
                .map_err(StorageError::io("sync directory", &self.dir))?;
        }
        Ok(removed)
    }

    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }
}

fn read_segment(
    disk: &dyn Disk,
    segment: &Segment,
    is_last: bool,
    records: &mut Vec<Record>,
) -> Result<(), StorageError> {
    let data = disk
        .read(&segment.path)
        .map_err(StorageError::io("read", &segment.path))?;
    let mut offset = 0;
    let mut first = true;
    while offset < data.len() {
        match parse_record(&data, offset) {
            Ok((record, next)) => {
                if first {
                    check_header(&record, segment, offset)?;
                    first = false;
                } else {
                    records.push(record);
                }
                offset = next;
            }
            Err(reason) => {
                let torn_tail = is_last
                    && !(offset + 1..data.len()).any(|later| parse_record(&data, later).is_ok());
                if !torn_tail {
                    return Err(StorageError::Corrupt {
                        what: "WAL record",
                        path: segment.path.clone(),
                        offset: offset as u64,
                        reason,
                    });
                }
                tracing::warn!(file = %segment.path.display(), offset, %reason, "repairing torn WAL tail");
                disk.set_len(&segment.path, offset as u64)
                    .map_err(StorageError::io("truncate", &segment.path))?;
                return Ok(());
            }
        }
    }
    Ok(())
}

fn check_header(record: &Record, segment: &Segment, offset: usize) -> Result<(), StorageError> {
    let version = record
        .payload
        .get(..4)
        .map(|bytes| u32::from_le_bytes(bytes.try_into().unwrap()));
    if record.kind != RecordKind::Header || version != Some(FORMAT_VERSION) {
        return Err(StorageError::Corrupt {
            what: "WAL segment header",
            path: segment.path.clone(),
            offset: offset as u64,
            reason: format!(
                "expected a format {FORMAT_VERSION} header, found {:?} {:?}",
                record.kind, version
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
#[path = "wal/tests.rs"]
mod tests;
