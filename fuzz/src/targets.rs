//! The fuzz targets: every decoder of bytes that reach Cairn from disk or from the network,
//! and the txn path from etcd's message to the state machine. Each must end in a value or
//! an error, never a panic, a hang or an allocation beyond its input's size.

use cairn::api::convert;
use cairn::api::pb::etcdserverpb as pb;
use cairn::apply::{validate_txn, Command, PutRequest, ReadOnlyTxn, StateMachine};
use cairn::base::{Bytes, Limits};
use cairn::io::{Disk, MemoryDisk};
use cairn::raft::{inspect, PeerRequest, PeerResponse};
use cairn::storage::codec;
use cairn::storage::snapshot::SnapshotStore;
use cairn::storage::wal::{RecordKind, Wal};
use std::path::Path;
use std::sync::Arc;

/// WAL recovery of arbitrary segment contents: the first byte chooses where the input is cut
/// into two segments (0: one segment); every entry recovered is decoded as a log entry.
pub fn wal_recovery(data: &[u8]) {
    let Some((&cut, contents)) = data.split_first() else {
        return;
    };
    let disk = Arc::new(MemoryDisk::default());
    let dir = Path::new("/data/member/wal");
    disk.create_dir_all(dir).unwrap();
    let cut = if cut == 0 {
        contents.len()
    } else {
        contents.len() * usize::from(cut) / 256
    };
    let (first, second) = contents.split_at(cut);
    disk.write_synced(&dir.join(segment(0, 0)), first).unwrap();
    if !second.is_empty() {
        disk.write_synced(&dir.join(segment(1, 8)), second).unwrap();
    }
    if let Ok((_wal, records)) = Wal::open(disk, dir, 64 * 1024) {
        for record in records
            .iter()
            .filter(|record| record.kind == RecordKind::Entry)
        {
            let _ = inspect::log_entry(&record.payload);
        }
    }
}

fn segment(sequence: u64, first_index: u64) -> String {
    format!("{sequence:016x}-{first_index:016x}.wal")
}

/// A snapshot file with arbitrary contents, loaded as a member loads one at startup.
pub fn snapshot_load(data: &[u8]) {
    let disk: Arc<dyn Disk> = Arc::new(MemoryDisk::default());
    let dir = Path::new("/data/member/snap");
    disk.create_dir_all(dir).unwrap();
    let path = dir.join(format!("{:016x}-{:016x}.snap", 5, 1));
    disk.write_synced(&path, data).unwrap();
    let snapshots = SnapshotStore::open(disk, dir).unwrap();
    let _ = inspect::snapshot(&snapshots, &path);
}

/// Bytes from a peer, decoded as a request (what a member serves) and as a response (what
/// a member reads back).
pub fn peer_message(data: &[u8]) {
    let _ = codec::decode::<PeerRequest>("peer request", data);
    let _ = codec::decode::<PeerResponse>("peer response", data);
}

/// etcd's TxnRequest bytes through conversion, validation and apply, on a store with a few
/// keys. A read-only txn must answer the same through `read_txn` as through apply, and
/// apply must be deterministic (two copies reach the same state).
pub fn txn_apply(data: &[u8]) {
    let Ok(request) = <pb::TxnRequest as prost::Message>::decode(data) else {
        return;
    };
    let Ok(txn) = convert::txn_request(request) else {
        return;
    };
    let limits = Limits::default();
    if validate_txn(&txn, &limits).is_err() {
        return;
    }
    let mut machine = StateMachine::new(5, 1 << 20);
    for (index, key) in ["a", "b", "c"].into_iter().enumerate() {
        machine.apply(
            index as u64 + 1,
            &Command::Put(PutRequest {
                key: Bytes::copy_from_slice(key.as_bytes()),
                value: Bytes::copy_from_slice(b"v"),
                ..PutRequest::default()
            }),
        );
    }
    let mut copy = machine.clone();
    let applied = machine.apply(10, &Command::Txn(txn.clone()));
    assert_eq!(
        applied,
        copy.apply(10, &Command::Txn(txn.clone())),
        "apply is deterministic"
    );
    assert_eq!(machine, copy, "apply is deterministic");
    if let Ok(read_only) = ReadOnlyTxn::new(txn) {
        let before = copy.clone();
        let read = copy.read_txn(&read_only);
        assert_eq!(copy, before, "a read-only txn changes nothing");
        let applied = applied.result.map(|outcome| match outcome {
            cairn::apply::Outcome::Txn(response) => response,
            other => panic!("a txn applied as {other:?}"),
        });
        assert_eq!(read, applied, "read_txn answers as apply does");
    }
}

/// A bbolt database read as an etcd snapshot (`cairnutl snapshot status` and `restore`).
/// The meta pages' checksums are made right first, so inputs reach the page tree instead of
/// stopping at the checksum.
pub fn etcd_database(data: &[u8]) {
    let mut data = data.to_vec();
    for meta in [16usize, 4096 + 16] {
        if data.len() >= meta + 64 {
            let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
            for byte in &data[meta..meta + 56] {
                hash ^= u64::from(*byte);
                hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
            }
            data[meta + 56..meta + 64].copy_from_slice(&hash.to_le_bytes());
        }
    }
    let disk = MemoryDisk::default();
    let path = Path::new("/snapshot.db");
    disk.write_synced(path, &data).unwrap();
    let _ = cairn::backup::status(&disk, path);
    let _ = cairn::backup::read_database(&disk, path, &mut |_, _| {});
}
