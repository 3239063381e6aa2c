//! Crash tests through the in-memory disk: after a crash at any point, recovery yields
//! exactly a prefix of what was written that contains everything acknowledged (synced).

use super::*;
use crate::io::{MemoryDisk, MemoryDiskOptions};
use proptest::prelude::*;

fn dir() -> &'static Path {
    Path::new("/data/wal")
}

fn entry_payloads(records: &[Record]) -> Vec<Vec<u8>> {
    records
        .iter()
        .filter(|record| record.kind == RecordKind::Entry)
        .map(|record| record.payload.clone())
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    #[test]
    fn recovery_yields_the_acknowledged_prefix(
        batches in proptest::collection::vec(proptest::collection::vec(1usize..300, 1..6), 1..20),
        unsynced in proptest::collection::vec(1usize..300, 0..5),
        seed in any::<u64>(),
        segment_bytes_max in 200u64..3000,
    ) {
        let disk = MemoryDisk::default();
        let (mut wal, records) = Wal::open(Arc::new(disk.clone()), dir(), segment_bytes_max).unwrap();
        prop_assert!(records.is_empty());
        let mut written: Vec<Vec<u8>> = Vec::new();
        let mut next = 0u32;
        let mut payload = |size: usize| { next += 1; let mut bytes = next.to_le_bytes().to_vec(); bytes.resize(size.max(4), next as u8); bytes };
        for batch in &batches {
            for size in batch {
                let bytes = payload(*size);
                wal.append(RecordKind::Entry, &bytes).unwrap();
                written.push(bytes);
            }
            wal.sync().unwrap();
            if wal.should_cut() {
                wal.cut(written.len() as u64, &[(RecordKind::Vote, vec![9])]).unwrap();
            }
        }
        let acknowledged = written.len();
        for size in &unsynced {
            let bytes = payload(*size);
            wal.append(RecordKind::Entry, &bytes).unwrap();
            written.push(bytes);
        }
        // Write the last group without its fsync, then lose power.
        let pending = std::mem::take(&mut wal.pending);
        wal.active.append(&pending).unwrap();
        drop(wal);
        disk.crash(seed);
        let (_, records) = Wal::open(Arc::new(disk.clone()), dir(), segment_bytes_max).unwrap();
        let recovered = entry_payloads(&records);
        prop_assert!(recovered.len() >= acknowledged, "lost acknowledged records: {} < {}", recovered.len(), acknowledged);
        prop_assert_eq!(&recovered[..], &written[..recovered.len()]);
        // Recovery repaired the tail: the log opens again with the same contents.
        let (_, again) = Wal::open(Arc::new(disk), dir(), segment_bytes_max).unwrap();
        prop_assert_eq!(entry_payloads(&again), recovered);
    }
}

#[test]
fn corruption_mid_log_names_file_and_offset() {
    let disk = MemoryDisk::default();
    let (mut wal, _) = Wal::open(Arc::new(disk.clone()), dir(), 1 << 20).unwrap();
    for index in 0..10u8 {
        wal.append(RecordKind::Entry, &[index; 20]).unwrap();
    }
    wal.sync().unwrap();
    drop(wal);
    let path = dir().join(segment_name(0, 0));
    // Header record is 8 + 1 + 4 bytes; each entry record 8 + 1 + 20. Damage entry 3.
    let entry_offset = 13 + 3 * 29;
    disk.corrupt(&path, entry_offset + 12);
    let error = Wal::open(Arc::new(disk), dir(), 1 << 20)
        .err()
        .expect("corruption must stop recovery")
        .to_string();
    assert!(error.contains(&path.display().to_string()), "{error}");
    assert!(error.contains(&format!("offset {entry_offset}")), "{error}");
}

#[test]
fn disk_full_rolls_back_and_the_retry_writes_the_same_records_once_space_returns() {
    let disk = MemoryDisk::new(MemoryDiskOptions {
        capacity_bytes: Some(200),
        ..MemoryDiskOptions::default()
    });
    let (mut wal, _) = Wal::open(Arc::new(disk.clone()), dir(), 1 << 20).unwrap();
    wal.append(RecordKind::Entry, &[1; 50]).unwrap();
    wal.sync().unwrap();
    wal.append(RecordKind::Entry, &[2; 500]).unwrap();
    let error = wal.sync().unwrap_err();
    assert!(error.is_disk_full(), "{error}");
    let error = wal.sync().unwrap_err();
    assert!(error.is_disk_full(), "still full: {error}");
    // A crash now finds the log as the last good sync left it.
    let crashed = disk.clone();
    crashed.crash(1);
    let (_, records) = Wal::open(Arc::new(crashed), dir(), 1 << 20).unwrap();
    assert_eq!(entry_payloads(&records), vec![vec![1; 50]]);

    let disk = MemoryDisk::new(MemoryDiskOptions {
        capacity_bytes: Some(200),
        ..MemoryDiskOptions::default()
    });
    let (mut wal, _) = Wal::open(Arc::new(disk.clone()), dir(), 1 << 20).unwrap();
    wal.append(RecordKind::Entry, &[1; 50]).unwrap();
    wal.sync().unwrap();
    wal.append(RecordKind::Entry, &[2; 500]).unwrap();
    assert!(wal.sync().unwrap_err().is_disk_full());
    disk.set_options(MemoryDiskOptions::default());
    wal.sync().unwrap();
    wal.append(RecordKind::Entry, &[3; 50]).unwrap();
    wal.sync().unwrap();
    drop(wal);
    disk.crash(1);
    let (_, records) = Wal::open(Arc::new(disk), dir(), 1 << 20).unwrap();
    assert_eq!(
        entry_payloads(&records),
        vec![vec![1; 50], vec![2; 500], vec![3; 50]],
        "the refused records are written once, in order, when the disk has room"
    );
}

#[test]
fn a_cut_the_disk_has_no_room_for_keeps_the_old_segment_active() {
    let disk = MemoryDisk::default();
    let (mut wal, _) = Wal::open(Arc::new(disk.clone()), dir(), 64).unwrap();
    wal.append(RecordKind::Entry, &[1; 100]).unwrap();
    wal.sync().unwrap();
    assert!(wal.should_cut());
    disk.set_options(MemoryDiskOptions {
        capacity_bytes: Some(disk.used_bytes_total()),
        ..MemoryDiskOptions::default()
    });
    let error = wal.cut(1, &[]).unwrap_err();
    assert!(error.is_disk_full(), "{error}");
    assert_eq!(wal.segment_count(), 1, "the failed cut left no segment");
    disk.set_options(MemoryDiskOptions::default());
    wal.append(RecordKind::Entry, &[2; 10]).unwrap();
    wal.sync().unwrap();
    wal.cut(2, &[]).unwrap();
    assert_eq!(wal.segment_count(), 2);
    wal.append(RecordKind::Entry, &[3; 10]).unwrap();
    wal.sync().unwrap();
    drop(wal);
    disk.crash(1);
    let (_, records) = Wal::open(Arc::new(disk), dir(), 64).unwrap();
    assert_eq!(
        entry_payloads(&records),
        vec![vec![1; 100], vec![2; 10], vec![3; 10]]
    );
}

#[test]
fn failed_fsync_poisons_the_log() {
    let disk = MemoryDisk::new(MemoryDiskOptions {
        failing_syncs: 1,
        ..MemoryDiskOptions::default()
    });
    assert!(
        Wal::open(Arc::new(disk.clone()), dir(), 1 << 20).is_err(),
        "the first header sync fails"
    );
    disk.set_options(MemoryDiskOptions::default());
    let (mut wal, _) = Wal::open(Arc::new(disk.clone()), dir(), 1 << 20).unwrap();
    disk.set_options(MemoryDiskOptions {
        failing_syncs: 1,
        ..MemoryDiskOptions::default()
    });
    wal.append(RecordKind::Entry, &[1]).unwrap();
    assert!(wal.sync().is_err());
    wal.append(RecordKind::Entry, &[2]).unwrap();
    assert!(
        wal.sync().is_err(),
        "nothing is acknowledged after a failed fsync"
    );
}

#[test]
fn segments_below_purge_point_are_removed() {
    let disk = MemoryDisk::default();
    let (mut wal, _) = Wal::open(Arc::new(disk.clone()), dir(), 100).unwrap();
    for index in 0..20u64 {
        wal.append(RecordKind::Entry, &index.to_le_bytes()).unwrap();
        wal.sync().unwrap();
        if wal.should_cut() {
            wal.cut(index + 1, &[]).unwrap();
        }
    }
    let before = wal.segment_count();
    assert!(before > 3);
    let removed = wal.remove_segments_through(9).unwrap();
    assert!(removed > 0 && wal.segment_count() == before - removed);
    drop(wal);
    let (_, records) = Wal::open(Arc::new(disk), dir(), 100).unwrap();
    let first = u64::from_le_bytes(entry_payloads(&records)[0].clone().try_into().unwrap());
    assert!(
        first <= 10,
        "entries after the purge point are kept (first kept {first})"
    );
}

#[test]
fn a_record_larger_than_recovery_accepts_is_refused_when_written() {
    let disk = MemoryDisk::new(MemoryDiskOptions::default());
    let (mut wal, _) = Wal::open(Arc::new(disk.clone()), dir(), 1 << 30).unwrap();
    let largest = vec![7u8; crate::base::limits::WAL_RECORD_BYTES_MAX - 1];
    wal.append(RecordKind::Entry, &largest).unwrap();
    let error = wal
        .append(
            RecordKind::Entry,
            &[7u8; 1].repeat(crate::base::limits::WAL_RECORD_BYTES_MAX),
        )
        .unwrap_err();
    assert!(
        error.to_string().contains("refusing to write a WAL record"),
        "{error}"
    );
    wal.sync().unwrap();
    drop(wal);
    let (_, records) = Wal::open(Arc::new(disk), dir(), 1 << 30).unwrap();
    assert_eq!(
        entry_payloads(&records),
        vec![largest],
        "the largest record written is read back"
    );
}
