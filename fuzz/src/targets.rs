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

/// The state a reference model keeps per key: value, create and mod revisions, version.
type ModelKey = (Vec<u8>, i64, i64, i64);

/// A store as simply as it can be written: a full copy of every key per revision.
struct Model {
    revisions: Vec<std::collections::BTreeMap<Vec<u8>, ModelKey>>,
    compacted: i64,
}

impl Model {
    fn current(&self) -> i64 {
        self.revisions.len() as i64
    }

    fn at(&self, revision: i64) -> &std::collections::BTreeMap<Vec<u8>, ModelKey> {
        &self.revisions[revision as usize - 1]
    }
}

const MODEL_KEYS: [&[u8]; 6] = [b"a", b"b", b"ba", b"c", b"k/1", b"k/2"];

/// Puts, deletes, ranges, compactions and compare-and-swap txns from the input, each sent as etcd's protobuf
/// through conversion, validation and apply, against a reference model of MVCC that keeps a
/// copy of the whole store per revision: every answer, and every key at every revision
/// still readable, must agree.
pub fn kv_model(data: &[u8]) {
    use cairn::apply::{validate_operation, Outcome, RequestOp};
    let mut machine = StateMachine::new(5, 1 << 30);
    let mut model = Model {
        revisions: vec![Default::default()],
        compacted: -1,
    };
    let limits = Limits::default();
    for (index, chunk) in data.chunks(3).enumerate() {
        let [kind, first, second] = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let key = MODEL_KEYS[first as usize % MODEL_KEYS.len()].to_vec();
        let log_index = index as u64 + 1;
        match kind % 5 {
            4 => {
                // if value(key) == [second] then put other = [second] else delete other:
                // one revision either way (the delete's only if it removes something).
                let other = MODEL_KEYS[(first as usize + 2) % MODEL_KEYS.len()].to_vec();
                let txn = convert::txn_request(pb::TxnRequest {
                    compare: vec![pb::Compare {
                        result: 0,
                        target: 3,
                        key: key.clone().into(),
                        target_union: Some(pb::compare::TargetUnion::Value(vec![second].into())),
                        ..Default::default()
                    }],
                    success: vec![pb::RequestOp {
                        request: Some(pb::request_op::Request::RequestPut(pb::PutRequest {
                            key: other.clone().into(),
                            value: vec![second].into(),
                            ..Default::default()
                        })),
                    }],
                    failure: vec![pb::RequestOp {
                        request: Some(pb::request_op::Request::RequestDeleteRange(
                            pb::DeleteRangeRequest {
                                key: other.clone().into(),
                                ..Default::default()
                            },
                        )),
                    }],
                })
                .unwrap();
                validate_txn(&txn, &limits).unwrap();
                let applied = machine.apply(log_index, &Command::Txn(txn));
                let current = model.at(model.current()).clone();
                let equal = current
                    .get(&key)
                    .is_some_and(|(value, ..)| *value == [second]);
                match applied.result {
                    Ok(Outcome::Txn(response)) => assert_eq!(response.succeeded, equal),
                    other => panic!("a txn answered {other:?}"),
                }
                let mut next = current.clone();
                if equal {
                    let revision = model.current() + 1;
                    let (create, version) = next
                        .get(&other)
                        .map_or((revision, 1), |(_, create, _, version)| {
                            (*create, version + 1)
                        });
                    next.insert(other, (vec![second], create, revision, version));
                    model.revisions.push(next);
                } else if next.remove(&other).is_some() {
                    model.revisions.push(next);
                }
            }
            0 => {
                let value = vec![second; usize::from(second % 4)];
                let put = convert::put_request(pb::PutRequest {
                    key: key.clone().into(),
                    value: value.clone().into(),
                    ..Default::default()
                });
                validate_operation(&RequestOp::Put(put.clone()), &limits).unwrap();
                let applied = machine.apply(log_index, &Command::Put(put));
                assert!(matches!(applied.result, Ok(Outcome::Put(_))), "{applied:?}");
                let revision = model.current() + 1;
                let mut next = model.at(model.current()).clone();
                let (create, version) = next
                    .get(&key)
                    .map_or((revision, 1), |(_, create, _, version)| {
                        (*create, version + 1)
                    });
                next.insert(key, (value, create, revision, version));
                model.revisions.push(next);
            }
            1 => {
                // A single key, or the range from it to the next key of the set.
                let end = if second % 2 == 0 {
                    Vec::new()
                } else {
                    MODEL_KEYS[(first as usize + 1) % MODEL_KEYS.len()].to_vec()
                };
                let delete = convert::delete_request(pb::DeleteRangeRequest {
                    key: key.clone().into(),
                    range_end: end.clone().into(),
                    prev_kv: true,
                });
                let applied = machine.apply(log_index, &Command::Delete(delete));
                let current = model.at(model.current()).clone();
                let doomed: Vec<Vec<u8>> = current
                    .keys()
                    .filter(|candidate| {
                        if end.is_empty() {
                            **candidate == key
                        } else {
                            candidate.as_slice() >= key.as_slice()
                                && candidate.as_slice() < end.as_slice()
                        }
                    })
                    .cloned()
                    .collect();
                match applied.result {
                    Ok(Outcome::Delete(response)) => {
                        assert_eq!(response.deleted as usize, doomed.len())
                    }
                    other => panic!("a delete answered {other:?}"),
                }
                if !doomed.is_empty() {
                    let mut next = current;
                    for gone in doomed {
                        next.remove(&gone);
                    }
                    model.revisions.push(next);
                }
            }
            2 => {
                let revision = i64::from(second) % (model.current() + 2);
                let applied = machine.apply(log_index, &Command::Compact { revision });
                if revision > model.current() {
                    assert!(applied.result.is_err(), "compacting the future is refused");
                } else if revision <= model.compacted {
                    assert!(applied.result.is_err(), "compacting again is refused");
                } else {
                    assert!(applied.result.is_ok(), "{applied:?}");
                    model.compacted = revision;
                }
            }
            _ => {
                let revision = i64::from(second) % (model.current() + 2);
                let query = convert::range_query(pb::RangeRequest {
                    key: key.clone().into(),
                    range_end: b"\0".to_vec().into(),
                    revision,
                    ..Default::default()
                })
                .unwrap();
                let answer = machine.store().range(&query);
                let readable =
                    revision <= 0 || (revision <= model.current() && revision >= model.compacted);
                match answer {
                    Ok(result) => {
                        assert!(readable, "revision {revision} answered");
                        let at = if revision <= 0 {
                            model.current()
                        } else {
                            revision
                        };
                        let expected: Vec<(Vec<u8>, ModelKey)> = model
                            .at(at)
                            .range(key.clone()..)
                            .map(|(key, state)| (key.clone(), state.clone()))
                            .collect();
                        let actual: Vec<(Vec<u8>, ModelKey)> = result
                            .kvs
                            .iter()
                            .map(|kv| {
                                (
                                    kv.key.to_vec(),
                                    (
                                        kv.value.to_vec(),
                                        kv.create_revision,
                                        kv.mod_revision,
                                        kv.version,
                                    ),
                                )
                            })
                            .collect();
                        assert_eq!(actual, expected, "range from {key:?} at {revision}");
                    }
                    Err(_) => assert!(!readable, "revision {revision} refused"),
                }
            }
        }
        assert_eq!(machine.store().current_revision(), model.current());
    }
}

/// A watch stream's requests (each one length byte, then etcd's WatchRequest bytes) against
/// a store with history and a compaction: creates go through `watch_spec` and the stream's
/// bounds, cancels and progress requests through the stream. After each request the stream
/// is polled: every event must be inside its watcher's range, at or below the store's
/// revision, in revision order per watcher, and a compacted watcher must have asked for a
/// revision the compaction removed.
pub fn watch_requests(data: &[u8]) {
    use cairn::watch::{WatchOutput, WatchStream};
    use pb::watch_request::RequestUnion;
    let mut machine = StateMachine::new(5, 1 << 30);
    for (index, key) in ["a", "b", "a", "c", "b", "a"].into_iter().enumerate() {
        machine.apply(
            index as u64 + 1,
            &Command::Put(PutRequest {
                key: Bytes::copy_from_slice(key.as_bytes()),
                value: Bytes::copy_from_slice(&[index as u8]),
                ..PutRequest::default()
            }),
        );
    }
    machine.apply(10, &Command::Compact { revision: 3 });
    let store = machine.store().clone();
    let mut stream = WatchStream::new(8);
    let mut specs = std::collections::BTreeMap::new();
    let mut last_revision = std::collections::BTreeMap::new();
    let mut rest = data;
    while let Some((&length, tail)) = rest.split_first() {
        let length = usize::from(length).min(tail.len());
        let (message, after) = tail.split_at(length);
        rest = after;
        let Ok(request) = <pb::WatchRequest as prost::Message>::decode(message) else {
            continue;
        };
        match request.request_union {
            Some(RequestUnion::CreateRequest(create)) => {
                let watch_id = create.watch_id;
                let Ok(spec) = cairn::api::watch_spec(create) else {
                    continue;
                };
                if let Ok(id) = stream.create(spec.clone(), watch_id, store.current_revision()) {
                    assert!(!specs.contains_key(&id), "watch ID {id} given twice");
                    specs.insert(id, spec);
                }
            }
            Some(RequestUnion::CancelRequest(cancel)) => {
                if stream.cancel(cancel.watch_id) {
                    specs.remove(&cancel.watch_id);
                }
            }
            Some(RequestUnion::ProgressRequest(_)) | None => {}
        }
        assert!(stream.len() <= 8, "the stream's watcher bound holds");
        for output in stream.poll(&store, 4) {
            match output {
                WatchOutput::Events {
                    watch_id,
                    revision,
                    events,
                } => {
                    let spec = &specs[&watch_id];
                    assert!(revision <= store.current_revision());
                    for event in &events {
                        assert!(
                            spec.range.contains(&event.kv.key),
                            "{event:?} outside {spec:?}"
                        );
                        let last = last_revision.entry(watch_id).or_insert(0);
                        assert!(event.kv.mod_revision >= *last, "events in revision order");
                        *last = event.kv.mod_revision;
                    }
                }
                WatchOutput::Compacted {
                    watch_id,
                    compact_revision,
                } => {
                    let spec = specs
                        .remove(&watch_id)
                        .expect("a compacted watcher existed");
                    assert_eq!(compact_revision, store.compact_revision());
                    assert!(spec.start_revision != 0 && spec.start_revision < compact_revision);
                }
            }
        }
    }
}

/// Every other command a client's request becomes (lease grants, revokes and checkpoints,
/// users, roles and permissions, auth on and off, alarms, compactions, batches of them and
/// commands guarded by an auth revision), driven by the input and applied to a state
/// machine: each answers a value or etcd's error, apply is deterministic, and a failed
/// command changes nothing.
pub fn commands_apply(data: &[u8]) {
    use cairn::apply::{Alarm, AlarmKind, LeaseCheckpoint};
    use cairn::auth::{Access, AuthCommand, Permission};
    use cairn::base::KeyRange;
    const NAMES: [&str; 3] = ["root", "alice", "reader"];
    let name = |byte: u8| NAMES[usize::from(byte) % NAMES.len()].to_string();
    let command = |bytes: &[u8]| -> Command {
        let [kind, a, b] = [
            bytes[0],
            *bytes.get(1).unwrap_or(&0),
            *bytes.get(2).unwrap_or(&0),
        ];
        let lease = i64::from(a % 4) * 1000;
        match kind % 16 {
            0 => Command::LeaseGrant {
                id: lease,
                ttl_seconds: i64::from(b) - 8,
            },
            1 => Command::LeaseRevoke { id: lease },
            2 => Command::LeaseCheckpoint {
                checkpoints: vec![LeaseCheckpoint {
                    id: lease,
                    remaining_ttl_seconds: i64::from(b) - 8,
                }],
            },
            3 => Command::Auth(AuthCommand::UserAdd {
                name: name(a),
                password_hash: (b % 2 == 0).then(|| "$2b$04$hash".to_string()),
            }),
            4 => Command::Auth(AuthCommand::UserDelete { name: name(a) }),
            5 => Command::Auth(AuthCommand::UserGrantRole {
                name: name(a),
                role: name(b),
            }),
            6 => Command::Auth(AuthCommand::UserRevokeRole {
                name: name(a),
                role: name(b),
            }),
            7 => Command::Auth(AuthCommand::RoleAdd { name: name(a) }),
            8 => Command::Auth(AuthCommand::RoleDelete { name: name(a) }),
            9 => Command::Auth(AuthCommand::RoleGrantPermission {
                name: name(a),
                permission: Permission {
                    access: [Access::Read, Access::Write, Access::ReadWrite][usize::from(b) % 3],
                    range: KeyRange::new(vec![b'a' + b % 3], vec![b'a' + b % 5]),
                },
            }),
            10 => Command::Auth(AuthCommand::RoleRevokePermission {
                name: name(a),
                range: KeyRange::new(vec![b'a' + b % 3], vec![b'a' + b % 5]),
            }),
            11 => Command::Auth(if a % 2 == 0 {
                AuthCommand::Enable
            } else {
                AuthCommand::Disable
            }),
            12 => Command::Alarm {
                activate: a % 2 == 0,
                alarm: Alarm {
                    member_id: u64::from(b % 2) + 1,
                    kind: if b % 3 == 0 {
                        AlarmKind::Corrupt
                    } else {
                        AlarmKind::NoSpace
                    },
                },
            },
            13 => Command::Compact {
                revision: i64::from(a) - 2,
            },
            14 => Command::Put(PutRequest {
                key: Bytes::copy_from_slice(&[b'a' + a % 4]),
                value: Bytes::copy_from_slice(&[b]),
                lease,
                ..PutRequest::default()
            }),
            _ => Command::Guarded {
                user: name(a),
                auth_revision: u64::from(b % 4),
                command: Box::new(Command::Put(PutRequest {
                    key: Bytes::copy_from_slice(b"a"),
                    value: Bytes::copy_from_slice(b"g"),
                    ..PutRequest::default()
                })),
            },
        }
    };
    let mut machine = StateMachine::new(5, 1 << 20);
    let chunks: Vec<&[u8]> = data.chunks(3).collect();
    let mut index = 0;
    let mut position = 0;
    while position < chunks.len() {
        // A chunk whose first byte is 255 starts a batch of the next two commands.
        let next = if chunks[position][0] == 255 && position + 2 < chunks.len() {
            let batch = Command::Batch(vec![
                command(chunks[position + 1]),
                command(chunks[position + 2]),
            ]);
            position += 3;
            batch
        } else {
            position += 1;
            command(chunks[position - 1])
        };
        index += 1;
        let before = machine.clone();
        let mut copy = machine.clone();
        let applied = machine.apply(index, &next);
        assert_eq!(applied, copy.apply(index, &next), "apply is deterministic");
        assert_eq!(machine, copy, "apply is deterministic");
        if applied.result.is_err() && !matches!(next, Command::Batch(_)) {
            assert_eq!(
                machine.store(),
                before.store(),
                "a refused {next:?} changed the store"
            );
        }
    }
}
