//! Leases: the replicated table (which leases exist, their TTLs and attached keys) and the
//! leader-only expiry queue. Time is passed in as milliseconds from the `io` clock; nothing
//! here reads a clock. Expiry is decided by the leader and replicated as a revoke, so the
//! table itself never expires anything.

mod expiry;

pub use expiry::ExpiryQueue;

use crate::base::{Bytes, EtcdError, LeaseId, LEASE_TTL_SECONDS_MAX};
use im::{OrdMap, OrdSet};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    pub id: LeaseId,
    /// The TTL granted (after the minimum-TTL rule), in seconds.
    pub ttl_seconds: i64,
    /// The remaining TTL last checkpointed through raft, in seconds (0 = never). A new leader
    /// gives the lease at least this long, so leader changes never shorten a lease.
    pub remaining_ttl_seconds: i64,
    #[serde(with = "crate::base::serde_im::ord_set")]
    pub keys: OrdSet<Bytes>,
}

/// Every live lease, identical on every member that applied the same log.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseTable {
    #[serde(with = "crate::base::serde_im::ord_map")]
    leases: OrdMap<LeaseId, Lease>,
}

impl LeaseTable {
    /// Creates lease `id` with `ttl_seconds` raised to `ttl_seconds_min` (etcd's rule).
    pub fn grant(
        &mut self,
        id: LeaseId,
        ttl_seconds: i64,
        ttl_seconds_min: i64,
    ) -> Result<&Lease, EtcdError> {
        if ttl_seconds > LEASE_TTL_SECONDS_MAX {
            return Err(EtcdError::LeaseTtlTooLarge);
        }
        if self.leases.contains_key(&id) {
            return Err(EtcdError::LeaseExists);
        }
        let lease = Lease {
            id,
            ttl_seconds: ttl_seconds.max(ttl_seconds_min),
            remaining_ttl_seconds: 0,
            keys: OrdSet::new(),
        };
        self.leases.insert(id, lease);
        Ok(&self.leases[&id])
    }

    /// Removes lease `id`; returns the keys attached to it, which the caller deletes.
    pub fn revoke(&mut self, id: LeaseId) -> Result<OrdSet<Bytes>, EtcdError> {
        self.leases
            .remove(&id)
            .map(|lease| lease.keys)
            .ok_or(EtcdError::LeaseNotFound)
    }

    pub fn get(&self, id: LeaseId) -> Option<&Lease> {
        self.leases.get(&id)
    }

    pub fn contains(&self, id: LeaseId) -> bool {
        self.leases.contains_key(&id)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Lease> {
        self.leases.values()
    }

    pub fn len(&self) -> usize {
        self.leases.len()
    }

    pub fn is_empty(&self) -> bool {
        self.leases.is_empty()
    }

    /// Puts back a lease read from a backup (its keys are attached by the caller).
    pub fn restore(&mut self, lease: Lease) {
        self.leases.insert(lease.id, lease);
    }

    /// Records that `key` now belongs to lease `id` (which must exist).
    pub fn attach(&mut self, id: LeaseId, key: Bytes) {
        let lease = self
            .leases
            .get_mut(&id)
            .expect("attach to a lease the caller checked exists");
        lease.keys.insert(key);
    }

    /// Forgets that `key` belongs to lease `id`, if the lease still exists.
    pub fn detach(&mut self, id: LeaseId, key: &Bytes) {
        if let Some(lease) = self.leases.get_mut(&id) {
            lease.keys.remove(key);
        }
    }

    /// Stores a leader's checkpoint of the remaining TTL. A checkpoint of 0 clears it: the
    /// leader sends one after renewing a checkpointed lease, which again has its whole TTL
    /// (etcd's fix for leases restored shorter than their last renewal).
    pub fn checkpoint(&mut self, id: LeaseId, remaining_ttl_seconds: i64) {
        if let Some(lease) = self.leases.get_mut(&id) {
            lease.remaining_ttl_seconds = remaining_ttl_seconds;
        }
    }
}

/// etcd's minimum lease TTL: 1.5 election timeouts, rounded up to whole seconds.
pub fn ttl_seconds_min(election_timeout_ms: u64) -> i64 {
    let minimum_ms = election_timeout_ms * 3 / 2;
    minimum_ms.div_ceil(1000) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grant_revoke_and_attached_keys() {
        let mut table = LeaseTable::default();
        assert_eq!(
            table.grant(7, 1, 2).unwrap().ttl_seconds,
            2,
            "TTL is raised to the minimum"
        );
        assert_eq!(table.grant(7, 10, 2), Err(EtcdError::LeaseExists));
        assert_eq!(
            table.grant(8, LEASE_TTL_SECONDS_MAX + 1, 2),
            Err(EtcdError::LeaseTtlTooLarge)
        );
        table.attach(7, Bytes::from_static(b"a"));
        table.attach(7, Bytes::from_static(b"b"));
        table.detach(7, &Bytes::from_static(b"a"));
        let keys: Vec<_> = table.revoke(7).unwrap().into_iter().collect();
        assert_eq!(keys, vec![Bytes::from_static(b"b")]);
        assert_eq!(table.revoke(7), Err(EtcdError::LeaseNotFound));
    }

    #[test]
    fn minimum_ttl_follows_election_timeout() {
        assert_eq!(ttl_seconds_min(1000), 2);
        assert_eq!(ttl_seconds_min(100), 1);
        assert_eq!(ttl_seconds_min(5000), 8);
    }
}
