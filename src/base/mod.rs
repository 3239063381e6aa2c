//! Identifiers, key ranges, limits and the error enum shared by every layer (std, serde,
//! and serde for im's collections).

mod error;
pub mod identity;
pub mod limits;
pub mod metrics;
mod range;
pub mod serde_im;

pub use error::EtcdError;
pub use limits::Limits;
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
