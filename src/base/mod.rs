//! Identifiers, key ranges, limits and the error enum shared by every layer. std only.

mod error;
pub mod identity;
mod range;

pub use error::EtcdError;
pub use range::{prefix_end, KeyRange};

/// A revision of the MVCC store; etcd's `int64 revision`. A fresh store is at revision 1.
pub type Revision = i64;
/// A lease ID as etcd gives it to clients (`int64 ID`); 0 means "no lease".
pub type LeaseId = i64;
/// A member ID, also the raft node ID.
pub type MemberId = u64;
/// Keys and values share bytes with the request that carried them.
pub type Bytes = bytes::Bytes;

/// The lease ID clients send to mean "no lease".
pub const NO_LEASE: LeaseId = 0;

/// etcd's ceiling on a lease TTL (`MaxLeaseTTL`), in seconds.
pub const LEASE_TTL_SECONDS_MAX: i64 = 9_000_000_000;

/// Limits a member enforces; every one has a flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// `--max-request-bytes`: largest request a client may send.
    pub request_bytes_max: usize,
    /// `--max-txn-ops`: most operations in one branch of a txn.
    pub txn_operations_max: usize,
    /// `--quota-backend-bytes`: writes that would grow the store past this fail with NOSPACE.
    pub backend_bytes_quota: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            request_bytes_max: 1_572_864,
            txn_operations_max: 128,
            backend_bytes_quota: 2 * 1024 * 1024 * 1024,
        }
    }
}
