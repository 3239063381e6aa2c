//! The records etcd keeps in its buckets, field for field: protobuf messages from etcd's
//! `mvccpb`, `leasepb`, `authpb` and `etcdserverpb.AlarmMember`, and the revision keys.

/// `mvccpb.KeyValue`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct KeyValue {
    #[prost(bytes = "vec", tag = "1")]
    pub key: Vec<u8>,
    #[prost(int64, tag = "2")]
    pub create_revision: i64,
    #[prost(int64, tag = "3")]
    pub mod_revision: i64,
    #[prost(int64, tag = "4")]
    pub version: i64,
    #[prost(bytes = "vec", tag = "5")]
    pub value: Vec<u8>,
    #[prost(int64, tag = "6")]
    pub lease: i64,
}

/// `leasepb.Lease`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Lease {
    #[prost(int64, tag = "1")]
    pub id: i64,
    #[prost(int64, tag = "2")]
    pub ttl: i64,
    #[prost(int64, tag = "3")]
    pub remaining_ttl: i64,
}

/// `authpb.UserAddOptions`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct UserAddOptions {
    #[prost(bool, tag = "1")]
    pub no_password: bool,
}

/// `authpb.User`; `password` holds the bcrypt hash.
#[derive(Clone, PartialEq, prost::Message)]
pub struct User {
    #[prost(bytes = "vec", tag = "1")]
    pub name: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    pub password: Vec<u8>,
    #[prost(string, repeated, tag = "3")]
    pub roles: Vec<String>,
    #[prost(message, optional, tag = "4")]
    pub options: Option<UserAddOptions>,
}

/// `authpb.Permission`; `perm_type` READ 0, WRITE 1, READWRITE 2.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Permission {
    #[prost(int32, tag = "1")]
    pub perm_type: i32,
    #[prost(bytes = "vec", tag = "2")]
    pub key: Vec<u8>,
    #[prost(bytes = "vec", tag = "3")]
    pub range_end: Vec<u8>,
}

/// `authpb.Role`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Role {
    #[prost(bytes = "vec", tag = "1")]
    pub name: Vec<u8>,
    #[prost(message, repeated, tag = "2")]
    pub key_permission: Vec<Permission>,
}

/// `etcdserverpb.AlarmMember`: the key of an `alarm` bucket entry (the value is empty).
#[derive(Clone, PartialEq, prost::Message)]
pub struct AlarmMember {
    #[prost(uint64, tag = "1")]
    pub member_id: u64,
    #[prost(int32, tag = "2")]
    pub alarm: i32,
}

/// A `key` bucket key: `main u64 BE | '_' | sub u64 BE`, and a trailing `'t'` for a
/// tombstone (etcd's `revToBytes` and `appendMarkTombstone`).
pub fn revision_key(main: i64, sub: i64, tombstone: bool) -> Vec<u8> {
    let mut key = Vec::with_capacity(18);
    key.extend_from_slice(&main.to_be_bytes());
    key.push(b'_');
    key.extend_from_slice(&sub.to_be_bytes());
    if tombstone {
        key.push(b't');
    }
    key
}

/// The revision in a `key` bucket key, and whether it marks a tombstone.
pub fn parse_revision_key(key: &[u8]) -> Option<(i64, i64, bool)> {
    let tombstone = match key.len() {
        17 => false,
        18 if key[17] == b't' => true,
        _ => return None,
    };
    if key[8] != b'_' {
        return None;
    }
    let main = i64::from_be_bytes(key[..8].try_into().ok()?);
    let sub = i64::from_be_bytes(key[9..17].try_into().ok()?);
    Some((main, sub, tombstone))
}

pub const KEY_BUCKET: &[u8] = b"key";
pub const META_BUCKET: &[u8] = b"meta";
pub const LEASE_BUCKET: &[u8] = b"lease";
pub const ALARM_BUCKET: &[u8] = b"alarm";
pub const CLUSTER_BUCKET: &[u8] = b"cluster";
pub const MEMBERS_BUCKET: &[u8] = b"members";
pub const MEMBERS_REMOVED_BUCKET: &[u8] = b"members_removed";
pub const AUTH_BUCKET: &[u8] = b"auth";
pub const AUTH_USERS_BUCKET: &[u8] = b"authUsers";
pub const AUTH_ROLES_BUCKET: &[u8] = b"authRoles";

pub const CONSISTENT_INDEX: &[u8] = b"consistent_index";
pub const TERM: &[u8] = b"term";
pub const FINISHED_COMPACT_REVISION: &[u8] = b"finishedCompactRev";
pub const SCHEDULED_COMPACT_REVISION: &[u8] = b"scheduledCompactRev";
pub const CLUSTER_VERSION: &[u8] = b"clusterVersion";
pub const AUTH_ENABLED: &[u8] = b"enabled";
pub const AUTH_REVISION: &[u8] = b"authRevision";
