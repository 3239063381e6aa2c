//! Reads an etcd backend database (written by etcd 3.4, 3.5, 3.6 or by Cairn) into Cairn's
//! state: keys with their whole kept history, leases with their keys, users and roles.

use super::records::{self, *};
use crate::apply::StateMachine;
use crate::auth::{Access, AuthStore, Permission as GrantedPermission, Role as AuthRole};
use crate::base::{KeyRange, Revision};
use crate::io::Disk;
use crate::lease::{Lease as CairnLease, LeaseTable};
use crate::mvcc::{KeyValue as Version, StoreBuilder};
use crate::storage::bolt::{BoltReader, BucketRoot};
use crate::storage::StorageError;
use prost::Message;
use std::collections::BTreeMap;
use std::path::Path;

/// The state read from a database, and what etcd kept beside it.
pub struct Imported {
    pub machine: StateMachine,
    pub consistent_index: u64,
    pub term: u64,
    /// Versions read from the `key` bucket.
    pub versions: u64,
}

/// Reads `path`; `progress` hears the bytes of pages read so far and the versions decoded,
/// every few thousand versions.
pub fn read_database(
    disk: &dyn Disk,
    path: &Path,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Imported, StorageError> {
    let reader = BoltReader::open(disk, path)?;
    let buckets: BTreeMap<Vec<u8>, BucketRoot> = reader.buckets()?.into_iter().collect();
    let corrupt = |what: &'static str, offset: u64, reason: String| StorageError::Corrupt {
        what,
        path: path.to_path_buf(),
        offset,
        reason,
    };
    let pairs = |name: &[u8]| -> Result<Vec<Element>, StorageError> {
        let mut pairs = Vec::new();
        if let Some(root) = buckets.get(name) {
            reader.visit(root, &mut |offset, key, value| {
                pairs.push((offset, key.to_vec(), value.to_vec()));
                Ok(())
            })?;
        }
        Ok(pairs)
    };
    let meta: BTreeMap<Vec<u8>, Vec<u8>> = pairs(META_BUCKET)?
        .into_iter()
        .map(|(_, key, value)| (key, value))
        .collect();
    let number = |key: &[u8]| -> Result<u64, StorageError> {
        match meta.get(key) {
            None => Ok(0),
            Some(value) => value
                .as_slice()
                .try_into()
                .map(u64::from_be_bytes)
                .map_err(|_| {
                    corrupt(
                        "etcd meta bucket",
                        0,
                        format!(
                            "{} is {} bytes, not 8",
                            String::from_utf8_lossy(key),
                            value.len()
                        ),
                    )
                }),
        }
    };
    let revision_of = |key: &[u8]| -> Result<Revision, StorageError> {
        match meta.get(key) {
            None => Ok(0),
            Some(value) => records::parse_revision_key(value)
                .map(|(main, _, _)| main)
                .ok_or_else(|| {
                    corrupt(
                        "etcd meta bucket",
                        0,
                        format!("{} is not a revision", String::from_utf8_lossy(key)),
                    )
                }),
        }
    };
    // An interrupted compaction is finished here, as etcd finishes it on start.
    let compact_revision =
        revision_of(SCHEDULED_COMPACT_REVISION)?.max(revision_of(FINISHED_COMPACT_REVISION)?);

    let mut builder = StoreBuilder::new();
    let mut versions = 0u64;
    if let Some(root) = buckets.get(KEY_BUCKET) {
        reader.visit(root, &mut |offset, key, value| {
            let bad = |reason: String| corrupt("etcd key bucket record", offset, reason);
            let (main, sub, tombstone) = records::parse_revision_key(key)
                .ok_or_else(|| bad(format!("key of {} bytes is not a revision", key.len())))?;
            if value.is_empty() {
                // `etcdutl snapshot restore --bump-revision` leaves an empty marker at the
                // bumped revision.
                builder.advance_to(main);
                return Ok(());
            }
            let record = records::KeyValue::decode(value)
                .map_err(|error| bad(format!("not an mvccpb.KeyValue: {error}")))?;
            let version = if tombstone {
                Version {
                    key: record.key.into(),
                    create_revision: 0,
                    mod_revision: main,
                    version: 0,
                    value: Default::default(),
                    lease: 0,
                }
            } else {
                if record.version < 1 || record.create_revision < 1 {
                    return Err(bad(format!(
                        "a live version with version {} and create_revision {}",
                        record.version, record.create_revision
                    )));
                }
                Version {
                    key: record.key.into(),
                    create_revision: record.create_revision,
                    mod_revision: record.mod_revision,
                    version: record.version,
                    value: record.value.into(),
                    lease: record.lease,
                }
            };
            if version.key.is_empty() {
                return Err(bad("a version of the empty key".to_string()));
            }
            builder.push(main, sub, version).map_err(bad)?;
            versions += 1;
            if versions % 4096 == 0 {
                progress(offset, versions);
            }
            Ok(())
        })?;
    }
    progress(reader.size_bytes(), versions);
    let store = builder
        .finish(compact_revision)
        .map_err(|error| corrupt("etcd meta bucket", 0, format!("compaction point: {error}")))?;

    let mut leases = LeaseTable::default();
    for (offset, _, value) in pairs(LEASE_BUCKET)? {
        let record = records::Lease::decode(value.as_slice()).map_err(|error| {
            corrupt(
                "etcd lease bucket record",
                offset,
                format!("not a leasepb.Lease: {error}"),
            )
        })?;
        leases.restore(CairnLease {
            id: record.id,
            ttl_seconds: record.ttl,
            remaining_ttl_seconds: record.remaining_ttl,
            keys: Default::default(),
        });
    }
    // Keys name their lease; a lease lists its keys. A key whose lease is gone keeps the ID,
    // as in etcd.
    store.visit_range(
        &KeyRange::new(vec![0u8], vec![0u8]),
        store.current_revision(),
        |kv| {
            if kv.lease != 0 && leases.contains(kv.lease) {
                leases.attach(kv.lease, kv.key.clone());
            }
            true
        },
    );

    let auth = read_auth(&pairs, &corrupt)?;
    Ok(Imported {
        // Alarms name the old cluster's members; a restored cluster starts without them.
        machine: StateMachine::from_parts(store, leases, auth, Default::default()),
        consistent_index: number(CONSISTENT_INDEX)?,
        term: number(TERM)?,
        versions,
    })
}

/// A pair read from a bucket with the file offset of its element.
type Element = (u64, Vec<u8>, Vec<u8>);
type PairsOf<'a> = dyn Fn(&[u8]) -> Result<Vec<Element>, StorageError> + 'a;
type Corrupt<'a> = dyn Fn(&'static str, u64, String) -> StorageError + 'a;

fn read_auth(pairs: &PairsOf, corrupt: &Corrupt) -> Result<AuthStore, StorageError> {
    let auth: BTreeMap<Vec<u8>, Vec<u8>> = pairs(AUTH_BUCKET)?
        .into_iter()
        .map(|(_, key, value)| (key, value))
        .collect();
    let enabled = auth.get(AUTH_ENABLED).is_some_and(|value| value == &[1]);
    let revision = auth
        .get(AUTH_REVISION)
        .and_then(|value| value.as_slice().try_into().ok())
        .map_or(0, u64::from_be_bytes);
    let mut users = Vec::new();
    for (offset, _, value) in pairs(AUTH_USERS_BUCKET)? {
        let record = records::User::decode(value.as_slice()).map_err(|error| {
            corrupt(
                "etcd authUsers record",
                offset,
                format!("not an authpb.User: {error}"),
            )
        })?;
        let no_password = record.options.is_some_and(|options| options.no_password);
        let password_hash = (!no_password && !record.password.is_empty())
            .then(|| String::from_utf8_lossy(&record.password).into_owned());
        users.push((
            String::from_utf8_lossy(&record.name).into_owned(),
            crate::auth::User {
                password_hash,
                roles: record.roles.into_iter().collect(),
            },
        ));
    }
    let mut roles = Vec::new();
    for (offset, _, value) in pairs(AUTH_ROLES_BUCKET)? {
        let record = records::Role::decode(value.as_slice()).map_err(|error| {
            corrupt(
                "etcd authRoles record",
                offset,
                format!("not an authpb.Role: {error}"),
            )
        })?;
        let mut permissions = Vec::new();
        for permission in record.key_permission {
            let access = Access::from_wire(permission.perm_type).ok_or_else(|| {
                corrupt(
                    "etcd authRoles record",
                    offset,
                    format!("permission type {}", permission.perm_type),
                )
            })?;
            permissions.push(GrantedPermission {
                access,
                range: KeyRange::new(permission.key, permission.range_end),
            });
        }
        permissions.sort_by(|a, b| a.range.start.cmp(&b.range.start));
        roles.push((
            String::from_utf8_lossy(&record.name).into_owned(),
            AuthRole { permissions },
        ));
    }
    Ok(AuthStore::from_parts(enabled, revision, users, roles))
}
