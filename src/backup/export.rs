//! Cairn's state as etcd's backend database: the buckets and encodings etcd 3.5 writes, so
//! that `etcdctl snapshot restore` and etcd itself take a Cairn snapshot as their own.

use super::records::{self, *};
use crate::apply::StateMachine;
use crate::mvcc::Versions;
use crate::raft::MemberInfo;
use crate::storage::bolt::{BoltWriter, BucketSource, NamedBucket, Pairs};
use prost::Message;

/// What a snapshot holds besides the state machine.
pub struct ExportMeta {
    /// The raft index the state is at (etcd's consistent index).
    pub consistent_index: u64,
    pub term: u64,
    pub members: Vec<MemberInfo>,
    /// etcd's cluster version, as `clusterVersion` records it ("3.5.0").
    pub cluster_version: String,
}

/// The database file of `machine`, ready to stream. Lays the file out first (a pass over
/// every version: run it off the async executor).
pub fn database(machine: &StateMachine, meta: &ExportMeta) -> BoltWriter {
    let store = machine.store();
    let mut meta_pairs = vec![
        (
            CONSISTENT_INDEX.to_vec(),
            meta.consistent_index.to_be_bytes().to_vec(),
        ),
        (TERM.to_vec(), meta.term.to_be_bytes().to_vec()),
    ];
    if store.compact_revision() >= 1 {
        let compacted = records::revision_key(store.compact_revision(), 0, false);
        meta_pairs.push((FINISHED_COMPACT_REVISION.to_vec(), compacted.clone()));
        meta_pairs.push((SCHEDULED_COMPACT_REVISION.to_vec(), compacted));
    }
    let leases = machine
        .leases()
        .iter()
        .map(|lease| {
            let record = records::Lease {
                id: lease.id,
                ttl: lease.ttl_seconds,
                remaining_ttl: lease.remaining_ttl_seconds,
            };
            (lease.id.to_be_bytes().to_vec(), record.encode_to_vec())
        })
        .collect();
    let members = meta
        .members
        .iter()
        .map(|member| {
            let mut json = serde_json::json!({
                "id": member.id,
                "peerURLs": member.node.peer_urls,
            });
            if member.is_learner {
                json["isLearner"] = true.into();
            }
            if !member.node.name.is_empty() {
                json["name"] = member.node.name.clone().into();
            }
            if !member.node.client_urls.is_empty() {
                json["clientURLs"] = member.node.client_urls.clone().into();
            }
            (
                format!("{:x}", member.id).into_bytes(),
                json.to_string().into_bytes(),
            )
        })
        .collect();
    let auth = machine.auth();
    let auth_pairs = vec![
        (AUTH_ENABLED.to_vec(), vec![u8::from(auth.is_enabled())]),
        (
            AUTH_REVISION.to_vec(),
            auth.revision().to_be_bytes().to_vec(),
        ),
    ];
    let users = auth
        .user_names()
        .map(|name| {
            let user = auth.user(name).expect("listed user exists");
            let record = records::User {
                name: name.clone().into_bytes(),
                password: user.password_hash.clone().unwrap_or_default().into_bytes(),
                roles: user.roles.iter().cloned().collect(),
                options: Some(UserAddOptions {
                    no_password: user.password_hash.is_none(),
                }),
            };
            (name.clone().into_bytes(), record.encode_to_vec())
        })
        .collect();
    let roles = auth
        .role_names()
        .map(|name| {
            let role = auth.role(name).expect("listed role exists");
            let record = records::Role {
                name: name.clone().into_bytes(),
                key_permission: role
                    .permissions
                    .iter()
                    .map(|permission| Permission {
                        perm_type: permission.access as i32,
                        key: permission.range.start.to_vec(),
                        range_end: permission.range.end.to_vec(),
                    })
                    .collect(),
            };
            (name.clone().into_bytes(), record.encode_to_vec())
        })
        .collect();
    // etcd keys each raised alarm by its AlarmMember, with an empty value.
    let alarms = machine
        .alarms()
        .iter()
        .map(|alarm| {
            let member = AlarmMember {
                member_id: alarm.member_id,
                alarm: alarm.kind.wire(),
            };
            (member.encode_to_vec(), Vec::new())
        })
        .collect();
    let cluster = vec![(
        CLUSTER_VERSION.to_vec(),
        meta.cluster_version.clone().into_bytes(),
    )];
    let buckets = vec![
        named(KEY_BUCKET, KeySource(Versions::new(store.clone()))),
        named(META_BUCKET, Pairs::new(meta_pairs)),
        named(LEASE_BUCKET, Pairs::new(leases)),
        named(ALARM_BUCKET, Pairs::new(alarms)),
        named(CLUSTER_BUCKET, Pairs::new(cluster)),
        named(MEMBERS_BUCKET, Pairs::new(members)),
        named(MEMBERS_REMOVED_BUCKET, Pairs::new(Vec::new())),
        named(AUTH_BUCKET, Pairs::new(auth_pairs)),
        named(AUTH_USERS_BUCKET, Pairs::new(users)),
        named(AUTH_ROLES_BUCKET, Pairs::new(roles)),
    ];
    // bbolt's first transaction on a new file is 1; the number means nothing else.
    BoltWriter::new(buckets, 1)
}

fn named(name: &[u8], source: impl BucketSource + 'static) -> NamedBucket {
    NamedBucket {
        name: name.to_vec(),
        source: Box::new(source),
    }
}

/// The `key` bucket: every version under its revision key.
struct KeySource(Versions);

impl BucketSource for KeySource {
    fn next_pair(&mut self) -> Option<(Vec<u8>, Vec<u8>)> {
        let (revision, sub, kv) = self.0.next_version()?;
        let tombstone = kv.is_tombstone();
        let record = if tombstone {
            // etcd records a delete as the key alone under a tombstone revision.
            records::KeyValue {
                key: kv.key.to_vec(),
                ..Default::default()
            }
        } else {
            records::KeyValue {
                key: kv.key.to_vec(),
                create_revision: kv.create_revision,
                mod_revision: kv.mod_revision,
                version: kv.version,
                value: kv.value.to_vec(),
                lease: kv.lease,
            }
        };
        Some((
            records::revision_key(revision, sub, tombstone),
            record.encode_to_vec(),
        ))
    }

    fn rewind(&mut self) {
        self.0.rewind();
    }
}
