//! Golden bytes of every persisted format. A test here fails when a persisted layout changes:
//! then bump the format version (`storage::wal::FORMAT_VERSION` or
//! `storage::snapshot::FORMAT_VERSION`), keep a reader for the old layout (as
//! `SnapshotFileV1`), and record the new bytes under the new version.

use super::*;
use crate::apply::{
    Compare, CompareResult, CompareTarget, DeleteRequest, LeaseCheckpoint, PutRequest, RequestOp,
    TxnRequest,
};
use crate::base::{Bytes, KeyRange};
use crate::mvcc::RangeQuery;
use crate::storage::{codec, snapshot, wal};
use openraft::SnapshotMeta;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn assert_golden(what: &str, version: u32, bytes: &[u8], golden: &[(u32, &str)]) {
    let expected = golden
        .iter()
        .find(|(golden_version, _)| *golden_version == version)
        .map(|(_, hex)| *hex)
        .unwrap_or_else(|| panic!("no golden bytes of {what} for format version {version}"));
    assert_eq!(
        hex(bytes),
        expected,
        "the persisted layout of {what} changed without a format version bump: bump the \
         version, keep a reader for the old layout, and record the new bytes"
    );
}

fn log_id(term: u64, node_id: u64, index: u64) -> LogId<u64> {
    LogId {
        leader_id: LeaderId { term, node_id },
        index,
    }
}

fn bytes(text: &str) -> Bytes {
    Bytes::copy_from_slice(text.as_bytes())
}

fn node(name: &str, port: u16) -> MemberNode {
    MemberNode {
        name: name.to_string(),
        peer_urls: vec![format!("http://127.0.0.1:{port}")],
        client_urls: vec![format!("http://127.0.0.1:{}", port - 1)],
    }
}

fn joint_membership() -> Membership<u64, MemberNode> {
    Membership::new(
        vec![BTreeSet::from([1, 2]), BTreeSet::from([2, 3])],
        BTreeMap::from([
            (1, node("a", 2380)),
            (2, node("b", 2382)),
            (3, node("c", 2384)),
        ]),
    )
}

fn sample_command() -> Command {
    Command::Batch(vec![
        Command::Put(PutRequest {
            key: bytes("k"),
            value: bytes("v"),
            lease: 7,
            prev_kv: true,
            ignore_value: false,
            ignore_lease: false,
        }),
        Command::Txn(TxnRequest {
            compares: vec![Compare {
                range: KeyRange::single(bytes("k")),
                result: CompareResult::Greater,
                target: CompareTarget::Mod(3),
            }],
            success: vec![RequestOp::Delete(DeleteRequest {
                range: KeyRange::single(bytes("d")),
                prev_kv: false,
            })],
            failure: vec![RequestOp::Range(RangeQuery {
                range: KeyRange::single(bytes("r")),
                limit: 2,
                ..RangeQuery::default()
            })],
        }),
        Command::LeaseGrant {
            id: 0,
            ttl_seconds: 10,
        },
        Command::LeaseCheckpoint {
            checkpoints: vec![LeaseCheckpoint {
                id: 5,
                remaining_ttl_seconds: 4,
            }],
        },
        Command::Compact { revision: 2 },
        Command::LeaseRevoke { id: 5 },
    ])
}

fn sample_entries() -> Vec<Entry<TypeConfig>> {
    vec![
        Entry {
            log_id: log_id(2, 1, 5),
            payload: EntryPayload::Blank,
        },
        Entry {
            log_id: log_id(2, 1, 6),
            payload: EntryPayload::Normal(sample_command()),
        },
        Entry {
            log_id: log_id(3, 2, 7),
            payload: EntryPayload::Membership(joint_membership()),
        },
    ]
}

const ENTRY_GOLDEN: [&[(u32, &str)]; 3] = [
    &[(1, "02000000000000000100000000000000050000000000000000000000")],
    &[(1, "020000000000000001000000000000000600000000000000010000000700000006000000000000000000000001000000000000006b010000000000000076070000000000000001000002000000010000000000000001000000000000006b0000000000000000010000000200000003000000000000000100000000000000020000000100000000000000640000000000000000000100000000000000000000000100000000000000720000000000000000020000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000400000000000000000000000a0000000000000006000000010000000000000005000000000000000400000000000000030000000200000000000000050000000500000000000000")],
    &[(1, "0300000000000000020000000000000007000000000000000200000002000000000000000200000000000000010000000000000002000000000000000200000000000000020000000000000003000000000000000300000000000000010000000000000001000000000000006101000000000000001500000000000000687474703a2f2f3132372e302e302e313a3233383001000000000000001500000000000000687474703a2f2f3132372e302e302e313a32333739020000000000000001000000000000006201000000000000001500000000000000687474703a2f2f3132372e302e302e313a3233383201000000000000001500000000000000687474703a2f2f3132372e302e302e313a32333831030000000000000001000000000000006301000000000000001500000000000000687474703a2f2f3132372e302e302e313a3233383401000000000000001500000000000000687474703a2f2f3132372e302e302e313a32333833")],
];

#[test]
fn wal_entries_keep_their_layout() {
    for (entry, golden) in sample_entries().iter().zip(ENTRY_GOLDEN) {
        let encoded = encode_entry(entry);
        // Written by openraft's own types before Cairn had its own: the same bytes.
        assert_eq!(
            encoded,
            codec::encode(entry),
            "differs from version 1 as written"
        );
        assert_golden("a WAL entry", wal::FORMAT_VERSION, &encoded, golden);
        let decoded = decode_entry(&encoded).unwrap();
        assert_eq!(decoded.log_id, entry.log_id);
        assert_eq!(codec::encode(&decoded), codec::encode(entry));
    }
}

#[test]
fn wal_votes_and_positions_keep_their_layout() {
    let vote = Vote {
        leader_id: LeaderId {
            term: 4,
            node_id: 9,
        },
        committed: true,
    };
    let disk_vote = DiskVote::from(&vote);
    assert_eq!(codec::encode(&disk_vote), codec::encode(&vote));
    assert_golden(
        "a WAL vote",
        wal::FORMAT_VERSION,
        &codec::encode(&disk_vote),
        &[(1, "0400000000000000090000000000000001")],
    );
    assert_eq!(Vote::from(disk_vote), vote);

    let committed = Some(log_id(4, 9, 11));
    let disk_committed = committed.map(DiskLogId::from);
    assert_eq!(codec::encode(&disk_committed), codec::encode(&committed));
    assert_golden(
        "a WAL commit point",
        wal::FORMAT_VERSION,
        &codec::encode(&disk_committed),
        &[(1, "01040000000000000009000000000000000b00000000000000")],
    );
    assert_eq!(disk_committed.map(LogId::from), committed);
}

fn sample_machine() -> StateMachine {
    let mut machine = StateMachine::new(5, 1 << 30);
    machine.apply(1, &sample_command());
    machine.apply(
        2,
        &Command::Put(PutRequest {
            key: bytes("k2"),
            value: bytes("v2"),
            ..PutRequest::default()
        }),
    );
    machine
}

fn sample_snapshot(machine: StateMachine) -> SnapshotFile {
    let stored = DiskStoredMembership::from(&StoredMembership::new(
        Some(log_id(3, 2, 7)),
        joint_membership(),
    ));
    SnapshotFile {
        meta: DiskSnapshotMeta {
            last_log_id: Some(log_id(3, 2, 8).into()),
            last_membership: stored.clone(),
            snapshot_id: "3-8-1".to_string(),
        },
        machine,
        last_applied: Some(log_id(3, 2, 8).into()),
        membership: stored,
    }
}

/// The sample machine with users, roles and a grant: the auth store's layout.
fn sample_machine_with_auth() -> StateMachine {
    use crate::auth::{Access, AuthCommand, Permission};
    let mut machine = sample_machine();
    for command in [
        AuthCommand::UserAdd {
            name: "root".into(),
            password_hash: Some("$2b$10$hash".into()),
        },
        AuthCommand::UserAdd {
            name: "cn-user".into(),
            password_hash: None,
        },
        AuthCommand::RoleAdd {
            name: "reader".into(),
        },
        AuthCommand::RoleGrantPermission {
            name: "reader".into(),
            permission: Permission {
                access: Access::Read,
                range: KeyRange::prefix(b"app/"),
            },
        },
        AuthCommand::UserGrantRole {
            name: "root".into(),
            role: "root".into(),
        },
        AuthCommand::UserGrantRole {
            name: "cn-user".into(),
            role: "reader".into(),
        },
        AuthCommand::Enable,
    ] {
        let applied = machine.apply(3, &Command::Auth(command));
        assert!(applied.result.is_ok(), "{applied:?}");
    }
    machine
}

#[test]
fn snapshots_keep_their_layout() {
    let file = sample_snapshot(sample_machine_with_alarm());
    let encoded = codec::encode(&file);
    // Version 1 wrote openraft's own metadata types: the same bytes.
    let openraft_meta = SnapshotMeta {
        last_log_id: Some(log_id(3, 2, 8)),
        last_membership: StoredMembership::new(Some(log_id(3, 2, 7)), joint_membership()),
        snapshot_id: "3-8-1".to_string(),
    };
    assert_eq!(codec::encode(&file.meta), codec::encode(&openraft_meta));
    assert_golden("a snapshot", snapshot::FORMAT_VERSION, &encoded, &[(4, "010300000000000000020000000000000008000000000000000103000000000000000200000000000000070000000000000002000000000000000200000000000000010000000000000002000000000000000200000000000000020000000000000003000000000000000300000000000000010000000000000001000000000000006101000000000000001500000000000000687474703a2f2f3132372e302e302e313a3233383001000000000000001500000000000000687474703a2f2f3132372e302e302e313a32333739020000000000000001000000000000006201000000000000001500000000000000687474703a2f2f3132372e302e302e313a3233383201000000000000001500000000000000687474703a2f2f3132372e302e302e313a32333831030000000000000001000000000000006301000000000000001500000000000000687474703a2f2f3132372e302e302e313a3233383401000000000000001500000000000000687474703a2f2f3132372e302e302e313a323338330500000000000000332d382d31010000000000000002000000000000006b32010000000000000002000000000000006b3202000000000000000200000000000000010000000000000002000000000000007632000000000000000001000000000000000200000000000000010000000000000002000000000000006b320200000000000000020000000000000001000000000000000200000000000000763200000000000000000200000000000000ffffffffffffffff340000000000000001000000000000000a3ea5bfdcbc1b4f0a3ea5bfdcbc1b4f0a000000000000000000000000000000000000000000000001060000000000000002000000000000000700000000000000636e2d7573657200010000000000000006000000000000007265616465720400000000000000726f6f74010b00000000000000243262243130246861736801000000000000000400000000000000726f6f740100000000000000060000000000000072656164657201000000000000000000000004000000000000006170702f0400000000000000617070300100000000000000341200000000000000000000010300000000000000020000000000000008000000000000000103000000000000000200000000000000070000000000000002000000000000000200000000000000010000000000000002000000000000000200000000000000020000000000000003000000000000000300000000000000010000000000000001000000000000006101000000000000001500000000000000687474703a2f2f3132372e302e302e313a3233383001000000000000001500000000000000687474703a2f2f3132372e302e302e313a32333739020000000000000001000000000000006201000000000000001500000000000000687474703a2f2f3132372e302e302e313a3233383201000000000000001500000000000000687474703a2f2f3132372e302e302e313a32333831030000000000000001000000000000006301000000000000001500000000000000687474703a2f2f3132372e302e302e313a3233383401000000000000001500000000000000687474703a2f2f3132372e302e302e313a32333833")]);
    let decoded = decode_snapshot(4, &mut &encoded[..], encoded.len() as u64).unwrap();
    assert_eq!(codec::encode(&decoded), encoded);
    assert_eq!(decoded.machine.hash(), file.machine.hash());
    assert!(decoded.machine.auth().is_enabled());
    assert_eq!(decoded.machine.alarms().len(), 1);
}

/// The sample machine with auth and a raised alarm: the alarm set's layout.
fn sample_machine_with_alarm() -> StateMachine {
    use crate::apply::{Alarm, AlarmKind};
    let mut machine = sample_machine_with_auth();
    let alarm = Alarm {
        member_id: 0x1234,
        kind: AlarmKind::NoSpace,
    };
    let applied = machine.apply(
        4,
        &Command::Alarm {
            activate: true,
            alarm,
        },
    );
    assert!(applied.result.is_ok(), "{applied:?}");
    machine
}

#[test]
fn version_3_snapshots_still_read() {
    // Version 3: the state machine without its alarms.
    let file = sample_snapshot(sample_machine_with_auth());
    #[derive(Serialize)]
    struct MachineV3<'a> {
        store: &'a Store,
        leases: &'a LeaseTable,
        auth: &'a crate::auth::AuthStore,
    }
    #[derive(Serialize)]
    struct FileV3<'a> {
        meta: &'a DiskSnapshotMeta,
        machine: MachineV3<'a>,
        last_applied: Option<DiskLogId>,
        membership: &'a DiskStoredMembership,
    }
    let version_3 = codec::encode(&FileV3 {
        meta: &file.meta,
        machine: MachineV3 {
            store: file.machine.store(),
            leases: file.machine.leases(),
            auth: file.machine.auth(),
        },
        last_applied: file.last_applied,
        membership: &file.membership,
    });
    assert_golden("a version 3 snapshot", 3, &version_3, &[(3, "010300000000000000020000000000000008000000000000000103000000000000000200000000000000070000000000000002000000000000000200000000000000010000000000000002000000000000000200000000000000020000000000000003000000000000000300000000000000010000000000000001000000000000006101000000000000001500000000000000687474703a2f2f3132372e302e302e313a3233383001000000000000001500000000000000687474703a2f2f3132372e302e302e313a32333739020000000000000001000000000000006201000000000000001500000000000000687474703a2f2f3132372e302e302e313a3233383201000000000000001500000000000000687474703a2f2f3132372e302e302e313a32333831030000000000000001000000000000006301000000000000001500000000000000687474703a2f2f3132372e302e302e313a3233383401000000000000001500000000000000687474703a2f2f3132372e302e302e313a323338330500000000000000332d382d31010000000000000002000000000000006b32010000000000000002000000000000006b3202000000000000000200000000000000010000000000000002000000000000007632000000000000000001000000000000000200000000000000010000000000000002000000000000006b320200000000000000020000000000000001000000000000000200000000000000763200000000000000000200000000000000ffffffffffffffff340000000000000001000000000000000a3ea5bfdcbc1b4f0a3ea5bfdcbc1b4f0a000000000000000000000000000000000000000000000001060000000000000002000000000000000700000000000000636e2d7573657200010000000000000006000000000000007265616465720400000000000000726f6f74010b00000000000000243262243130246861736801000000000000000400000000000000726f6f740100000000000000060000000000000072656164657201000000000000000000000004000000000000006170702f040000000000000061707030010300000000000000020000000000000008000000000000000103000000000000000200000000000000070000000000000002000000000000000200000000000000010000000000000002000000000000000200000000000000020000000000000003000000000000000300000000000000010000000000000001000000000000006101000000000000001500000000000000687474703a2f2f3132372e302e302e313a3233383001000000000000001500000000000000687474703a2f2f3132372e302e302e313a32333739020000000000000001000000000000006201000000000000001500000000000000687474703a2f2f3132372e302e302e313a3233383201000000000000001500000000000000687474703a2f2f3132372e302e302e313a32333831030000000000000001000000000000006301000000000000001500000000000000687474703a2f2f3132372e302e302e313a3233383401000000000000001500000000000000687474703a2f2f3132372e302e302e313a32333833")]);
    let upgraded = decode_snapshot(3, &mut &version_3[..], version_3.len() as u64).unwrap();
    assert_eq!(
        codec::encode(&upgraded),
        codec::encode(&file),
        "version 3 reads as version 4 writes, with no alarm raised"
    );
}

#[test]
fn version_1_and_2_snapshots_still_read() {
    let file = sample_snapshot(sample_machine());
    let encoded = codec::encode(&file);
    // Version 2: the state machine without its auth store.
    #[derive(Serialize)]
    struct MachineV2<'a> {
        store: &'a Store,
        leases: &'a LeaseTable,
    }
    #[derive(Serialize)]
    struct FileV2<'a> {
        meta: &'a DiskSnapshotMeta,
        machine: MachineV2<'a>,
        last_applied: Option<DiskLogId>,
        membership: &'a DiskStoredMembership,
    }
    let version_2 = codec::encode(&FileV2 {
        meta: &file.meta,
        machine: MachineV2 {
            store: file.machine.store(),
            leases: file.machine.leases(),
        },
        last_applied: file.last_applied,
        membership: &file.membership,
    });
    assert_golden("a version 2 snapshot", 2, &version_2, &[(2, "010300000000000000020000000000000008000000000000000103000000000000000200000000000000070000000000000002000000000000000200000000000000010000000000000002000000000000000200000000000000020000000000000003000000000000000300000000000000010000000000000001000000000000006101000000000000001500000000000000687474703a2f2f3132372e302e302e313a3233383001000000000000001500000000000000687474703a2f2f3132372e302e302e313a32333739020000000000000001000000000000006201000000000000001500000000000000687474703a2f2f3132372e302e302e313a3233383201000000000000001500000000000000687474703a2f2f3132372e302e302e313a32333831030000000000000001000000000000006301000000000000001500000000000000687474703a2f2f3132372e302e302e313a3233383401000000000000001500000000000000687474703a2f2f3132372e302e302e313a323338330500000000000000332d382d31010000000000000002000000000000006b32010000000000000002000000000000006b3202000000000000000200000000000000010000000000000002000000000000007632000000000000000001000000000000000200000000000000010000000000000002000000000000006b320200000000000000020000000000000001000000000000000200000000000000763200000000000000000200000000000000ffffffffffffffff340000000000000001000000000000000a3ea5bfdcbc1b4f0a3ea5bfdcbc1b4f0a0000000000000000000000000000000000000000000000010300000000000000020000000000000008000000000000000103000000000000000200000000000000070000000000000002000000000000000200000000000000010000000000000002000000000000000200000000000000020000000000000003000000000000000300000000000000010000000000000001000000000000006101000000000000001500000000000000687474703a2f2f3132372e302e302e313a3233383001000000000000001500000000000000687474703a2f2f3132372e302e302e313a32333739020000000000000001000000000000006201000000000000001500000000000000687474703a2f2f3132372e302e302e313a3233383201000000000000001500000000000000687474703a2f2f3132372e302e302e313a32333831030000000000000001000000000000006301000000000000001500000000000000687474703a2f2f3132372e302e302e313a3233383401000000000000001500000000000000687474703a2f2f3132372e302e302e313a32333833")]);
    let upgraded = decode_snapshot(2, &mut &version_2[..], version_2.len() as u64).unwrap();
    assert_eq!(
        codec::encode(&upgraded),
        encoded,
        "version 2 reads as version 3 writes, with auth off"
    );

    // Version 1: the version 2 payload with the two local flags after the lease table.
    #[derive(Serialize)]
    struct MachineV1<'a> {
        store: &'a Store,
        leases: &'a LeaseTable,
        lease_ttl_seconds_min: i64,
        backend_bytes_quota: u64,
    }
    #[derive(Serialize)]
    struct FileV1<'a> {
        meta: &'a DiskSnapshotMeta,
        machine: MachineV1<'a>,
        last_applied: Option<DiskLogId>,
        membership: &'a DiskStoredMembership,
    }
    let version_1 = codec::encode(&FileV1 {
        meta: &file.meta,
        machine: MachineV1 {
            store: file.machine.store(),
            leases: file.machine.leases(),
            lease_ttl_seconds_min: 5,
            backend_bytes_quota: 1 << 30,
        },
        last_applied: file.last_applied,
        membership: &file.membership,
    });
    assert_golden("a version 1 snapshot", 1, &version_1, &[(1, "010300000000000000020000000000000008000000000000000103000000000000000200000000000000070000000000000002000000000000000200000000000000010000000000000002000000000000000200000000000000020000000000000003000000000000000300000000000000010000000000000001000000000000006101000000000000001500000000000000687474703a2f2f3132372e302e302e313a3233383001000000000000001500000000000000687474703a2f2f3132372e302e302e313a32333739020000000000000001000000000000006201000000000000001500000000000000687474703a2f2f3132372e302e302e313a3233383201000000000000001500000000000000687474703a2f2f3132372e302e302e313a32333831030000000000000001000000000000006301000000000000001500000000000000687474703a2f2f3132372e302e302e313a3233383401000000000000001500000000000000687474703a2f2f3132372e302e302e313a323338330500000000000000332d382d31010000000000000002000000000000006b32010000000000000002000000000000006b3202000000000000000200000000000000010000000000000002000000000000007632000000000000000001000000000000000200000000000000010000000000000002000000000000006b320200000000000000020000000000000001000000000000000200000000000000763200000000000000000200000000000000ffffffffffffffff340000000000000001000000000000000a3ea5bfdcbc1b4f0a3ea5bfdcbc1b4f0a000000000000000000000000000000000000000000000005000000000000000000004000000000010300000000000000020000000000000008000000000000000103000000000000000200000000000000070000000000000002000000000000000200000000000000010000000000000002000000000000000200000000000000020000000000000003000000000000000300000000000000010000000000000001000000000000006101000000000000001500000000000000687474703a2f2f3132372e302e302e313a3233383001000000000000001500000000000000687474703a2f2f3132372e302e302e313a32333739020000000000000001000000000000006201000000000000001500000000000000687474703a2f2f3132372e302e302e313a3233383201000000000000001500000000000000687474703a2f2f3132372e302e302e313a32333831030000000000000001000000000000006301000000000000001500000000000000687474703a2f2f3132372e302e302e313a3233383401000000000000001500000000000000687474703a2f2f3132372e302e302e313a32333833")]);
    let upgraded = decode_snapshot(1, &mut &version_1[..], version_1.len() as u64).unwrap();
    assert_eq!(
        codec::encode(&upgraded),
        encoded,
        "version 1 reads as version 3 writes"
    );
}

#[test]
#[should_panic(expected = "changed without a format version bump")]
fn a_changed_layout_fails() {
    assert_golden("a planted change", 1, &[1, 2], &[(1, "0102ff")]);
}
