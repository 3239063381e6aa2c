use super::*;
use crate::apply::{Command, DeleteRequest, PutRequest, StateMachine};
use crate::auth::{Access, AuthCommand, Permission};
use crate::base::{Bytes, KeyRange};
use crate::io::MemoryDisk;
use crate::raft::{MemberInfo, MemberNode};

fn put(key: &str, value: &str, lease: i64) -> Command {
    Command::Put(PutRequest {
        key: Bytes::copy_from_slice(key.as_bytes()),
        value: Bytes::copy_from_slice(value.as_bytes()),
        lease,
        ..PutRequest::default()
    })
}

/// A state with history, tombstones, a compaction, leases and auth.
fn sample() -> StateMachine {
    let mut machine = StateMachine::new(1, u64::MAX);
    let mut index = 0;
    let mut apply = |machine: &mut StateMachine, command: Command| {
        index += 1;
        machine.apply(index, &command);
    };
    apply(
        &mut machine,
        Command::LeaseGrant {
            id: 7,
            ttl_seconds: 60,
        },
    );
    for round in 0..30 {
        apply(
            &mut machine,
            put(&format!("k{}", round % 7), &format!("v{round}"), 0),
        );
    }
    apply(&mut machine, put("leased", "x", 7));
    apply(
        &mut machine,
        Command::Delete(DeleteRequest {
            range: KeyRange::single(Bytes::from_static(b"k3")),
            prev_kv: false,
        }),
    );
    apply(&mut machine, Command::Compact { revision: 20 });
    apply(&mut machine, put("k1", "after compaction", 0));
    let auth = [
        AuthCommand::UserAdd {
            name: "root".into(),
            password_hash: Some("$2a$04$hash".into()),
        },
        AuthCommand::RoleAdd {
            name: "root".into(),
        },
        AuthCommand::UserGrantRole {
            name: "root".into(),
            role: "root".into(),
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
                range: KeyRange::prefix(b"k"),
            },
        },
        AuthCommand::UserGrantRole {
            name: "cn-user".into(),
            role: "reader".into(),
        },
        AuthCommand::Enable,
    ];
    for command in auth {
        apply(&mut machine, Command::Auth(command));
    }
    machine
}

fn export(machine: &StateMachine) -> Vec<u8> {
    let meta = ExportMeta {
        consistent_index: 42,
        term: 3,
        members: vec![MemberInfo {
            id: 0xabc,
            node: MemberNode {
                name: "m1".into(),
                peer_urls: vec!["http://127.0.0.1:2380".into()],
                client_urls: vec!["http://127.0.0.1:2379".into()],
            },
            is_learner: false,
        }],
        cluster_version: "3.5.0".into(),
    };
    let mut writer = database(machine, &meta);
    let mut file = Vec::new();
    loop {
        let chunk = writer.next_chunk(32 * 1024);
        if chunk.is_empty() {
            break;
        }
        file.extend_from_slice(&chunk);
    }
    file
}

#[test]
fn a_state_exported_and_imported_is_the_same_state() {
    let machine = sample();
    let disk = MemoryDisk::default();
    let path = std::path::Path::new("/snapshot.db");
    disk.write_synced(path, &export(&machine)).unwrap();
    let imported = read_database(&disk, path, &mut |_, _| {}).unwrap();
    assert_eq!(
        imported.machine.store(),
        machine.store(),
        "keys, history, compaction"
    );
    assert_eq!(imported.machine.leases(), machine.leases());
    assert_eq!(imported.machine.auth(), machine.auth());
    assert_eq!((imported.consistent_index, imported.term), (42, 3));
    assert_eq!(imported.machine.hash(), machine.hash());
}

#[test]
fn status_counts_pairs_and_the_newest_revision_and_the_hash_trailer_checks() {
    let machine = sample();
    let disk = MemoryDisk::default();
    let path = std::path::Path::new("/snapshot.db");
    let mut file = export(&machine);
    let status = {
        disk.write_synced(path, &file).unwrap();
        super::status(&disk, path).unwrap()
    };
    assert_eq!(status.revision, machine.store().current_revision());
    assert_eq!(status.total_bytes, file.len() as u64);
    assert!(status.total_keys > 10);
    assert!(
        verify_hash(&disk, path, &mut |_, _| {}).is_err(),
        "no trailer"
    );
    let mut hash = StreamHash::default();
    hash.update(&file);
    file.extend_from_slice(&hash.finish());
    disk.write_synced(path, &file).unwrap();
    verify_hash(&disk, path, &mut |_, _| {}).unwrap();
    assert_eq!(
        super::status(&disk, path).unwrap().hash,
        status.hash,
        "the trailer is not read"
    );
    file[5000] ^= 1;
    disk.write_synced(path, &file).unwrap();
    let error = verify_hash(&disk, path, &mut |_, _| {})
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("/snapshot.db") && error.contains("sha256"),
        "{error}"
    );
}

#[test]
fn crc32c_matches_the_standard_check_value() {
    let mut crc = Crc32c::default();
    crc.update(b"123456789");
    assert_eq!(crc.finish(), 0xE306_9283);
}
