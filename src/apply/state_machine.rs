//! The replicated state and the one function that changes it.

use super::command::*;
use super::txn::choose_path;
use crate::base::{Bytes, EtcdError, KeyRange, LeaseId};
use crate::lease::LeaseTable;
use crate::mvcc::{Store, WriteTxn};
use serde::{Deserialize, Serialize};

/// MVCC store plus lease table. Cloning is O(1) (both are `im` maps), which is how readers,
/// watchers and snapshots get a consistent view without blocking apply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateMachine {
    store: Store,
    leases: LeaseTable,
    /// etcd's minimum lease TTL, from the election timeout (the same flag on every member).
    lease_ttl_seconds_min: i64,
    /// `--quota-backend-bytes`: puts that would grow the store past it fail with NOSPACE.
    backend_bytes_quota: u64,
}

impl StateMachine {
    pub fn new(lease_ttl_seconds_min: i64, backend_bytes_quota: u64) -> Self {
        StateMachine {
            store: Store::new(),
            leases: LeaseTable::default(),
            lease_ttl_seconds_min,
            backend_bytes_quota,
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn leases(&self) -> &LeaseTable {
        &self.leases
    }

    /// Replaces limits that come from local flags after loading a snapshot.
    pub fn set_limits(&mut self, lease_ttl_seconds_min: i64, backend_bytes_quota: u64) {
        self.lease_ttl_seconds_min = lease_ttl_seconds_min;
        self.backend_bytes_quota = backend_bytes_quota;
    }

    /// etcd's Maintenance.Hash: everything replicated, keys and leases.
    pub fn hash(&self) -> u32 {
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(
            &self
                .store
                .hash_kv(self.store.current_revision())
                .to_be_bytes(),
        );
        for lease in self.leases.iter() {
            hasher.update(&lease.id.to_be_bytes());
            hasher.update(&lease.ttl_seconds.to_be_bytes());
            for key in lease.keys.iter() {
                hasher.update(&(key.len() as u64).to_be_bytes());
                hasher.update(key);
            }
        }
        hasher.finalize()
    }

    /// Applies the command of log entry `index`.
    pub fn apply(&mut self, index: u64, command: &Command) -> Applied {
        let result = match command {
            Command::Put(put) => {
                self.apply_txn(&single(RequestOp::Put(put.clone())))
                    .map(|mut response| match response.responses.pop() {
                        Some(ResponseOp::Put { prev_kv }) => Outcome::Put { prev_kv },
                        other => unreachable!("a put answers with a put response, not {other:?}"),
                    })
            }
            Command::Delete(delete) => self
                .apply_txn(&single(RequestOp::Delete(delete.clone())))
                .map(|mut response| match response.responses.pop() {
                    Some(ResponseOp::Delete { deleted, prev_kvs }) => {
                        Outcome::Delete { deleted, prev_kvs }
                    }
                    other => unreachable!("a delete answers with a delete response, not {other:?}"),
                }),
            Command::Txn(txn) => self.apply_txn(txn).map(Outcome::Txn),
            Command::Compact { revision } => {
                self.store.compact(*revision).map(|()| Outcome::Compacted)
            }
            Command::LeaseGrant { id, ttl_seconds } => {
                let id = if *id == 0 {
                    self.choose_lease_id(index)
                } else {
                    *id
                };
                self.leases
                    .grant(id, *ttl_seconds, self.lease_ttl_seconds_min)
                    .map(|lease| Outcome::LeaseGranted {
                        id,
                        ttl_seconds: lease.ttl_seconds,
                    })
            }
            Command::LeaseRevoke { id } => self.revoke(*id).map(|()| Outcome::LeaseRevoked),
            Command::Batch(commands) => Ok(Outcome::Batch(
                commands
                    .iter()
                    .map(|command| self.apply(index, command))
                    .collect(),
            )),
            Command::LeaseCheckpoint { checkpoints } => {
                for checkpoint in checkpoints {
                    self.leases
                        .checkpoint(checkpoint.id, checkpoint.remaining_ttl_seconds);
                }
                Ok(Outcome::LeaseCheckpointed)
            }
        };
        Applied {
            revision: self.store.current_revision(),
            result,
        }
    }

    /// A server-chosen lease ID: derived from the log index so every member picks the same
    /// one, spread over the positive int64 range like etcd's IDs, never 0 or taken.
    fn choose_lease_id(&self, index: u64) -> LeaseId {
        let mut id = (index.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 1) as LeaseId;
        while id == 0 || self.leases.contains(id) {
            id = id.wrapping_add(1) & LeaseId::MAX;
        }
        id
    }

    /// Revokes a lease and deletes its keys, all in one revision.
    fn revoke(&mut self, id: LeaseId) -> Result<(), EtcdError> {
        let keys = self.leases.revoke(id)?;
        let mut write = self.store.write();
        for key in keys {
            write.delete_range(&KeyRange::single(key));
        }
        write.commit();
        Ok(())
    }

    fn apply_txn(&mut self, txn: &TxnRequest) -> Result<TxnResponse, EtcdError> {
        let revision = self.store.current_revision();
        let mut path = Vec::new();
        choose_path(&self.store, revision, txn, &mut path);
        let mut puts_bytes = 0u64;
        self.check_path(txn, &path, &mut 0, &mut puts_bytes)?;
        if puts_bytes > 0 && self.store.size_bytes() + puts_bytes > self.backend_bytes_quota {
            return Err(EtcdError::NoSpace);
        }
        let mut write = self.store.write();
        let response = execute(&mut write, &mut self.leases, txn, &path, &mut 0);
        write.commit();
        Ok(response)
    }

    /// etcd's `checkRequests` on the chosen path: leases exist, ignore_* keys exist, range
    /// revisions readable. Nothing is changed unless the whole path passes.
    fn check_path(
        &self,
        txn: &TxnRequest,
        path: &[bool],
        step: &mut usize,
        puts_bytes: &mut u64,
    ) -> Result<(), EtcdError> {
        let branch = if path[*step] {
            &txn.success
        } else {
            &txn.failure
        };
        *step += 1;
        for operation in branch {
            match operation {
                RequestOp::Put(put) => {
                    let needs_existing = put.ignore_value || put.ignore_lease;
                    if needs_existing
                        && self
                            .store
                            .get(&put.key, self.store.current_revision())
                            .is_none()
                    {
                        return Err(EtcdError::KeyNotFound);
                    }
                    if put.lease != 0 && !self.leases.contains(put.lease) {
                        return Err(EtcdError::LeaseNotFound);
                    }
                    *puts_bytes += (put.key.len() + put.value.len()) as u64;
                }
                RequestOp::Range(query) => {
                    self.store.readable_revision(query.revision)?;
                }
                RequestOp::Delete(_) => {}
                RequestOp::Txn(nested) => self.check_path(nested, path, step, puts_bytes)?,
            }
        }
        Ok(())
    }
}

fn single(operation: RequestOp) -> TxnRequest {
    TxnRequest {
        compares: Vec::new(),
        success: vec![operation],
        failure: Vec::new(),
    }
}

fn execute(
    write: &mut WriteTxn<'_>,
    leases: &mut LeaseTable,
    txn: &TxnRequest,
    path: &[bool],
    step: &mut usize,
) -> TxnResponse {
    let succeeded = path[*step];
    *step += 1;
    let branch = if succeeded {
        &txn.success
    } else {
        &txn.failure
    };
    let mut responses = Vec::with_capacity(branch.len());
    for operation in branch {
        let response = match operation {
            RequestOp::Range(query) => {
                let (view, current) = write.view();
                let result = view
                    .range_at(query, current)
                    .expect("range revisions were checked before the txn ran");
                ResponseOp::Range(result)
            }
            RequestOp::Put(put) => {
                let current = write.view().0.get(&put.key, write.revision());
                let value = match (&current, put.ignore_value) {
                    (Some(kv), true) => kv.value.clone(),
                    _ => put.value.clone(),
                };
                let lease = match (&current, put.ignore_lease) {
                    (Some(kv), true) => kv.lease,
                    _ => put.lease,
                };
                let previous = write.put(put.key.clone(), value, lease);
                move_lease(
                    leases,
                    &put.key,
                    previous.as_ref().map_or(0, |kv| kv.lease),
                    lease,
                );
                ResponseOp::Put {
                    prev_kv: previous.filter(|_| put.prev_kv),
                }
            }
            RequestOp::Delete(delete) => {
                let deleted = write.delete_range(&delete.range);
                for kv in &deleted {
                    move_lease(leases, &kv.key, kv.lease, 0);
                }
                let count = deleted.len() as i64;
                ResponseOp::Delete {
                    deleted: count,
                    prev_kvs: if delete.prev_kv { deleted } else { Vec::new() },
                }
            }
            RequestOp::Txn(nested) => ResponseOp::Txn(execute(write, leases, nested, path, step)),
        };
        responses.push(response);
    }
    TxnResponse {
        succeeded,
        responses,
    }
}

fn move_lease(leases: &mut LeaseTable, key: &Bytes, from: LeaseId, to: LeaseId) {
    if from == to {
        return;
    }
    if from != 0 {
        leases.detach(from, key);
    }
    if to != 0 {
        leases.attach(to, key.clone());
    }
}

#[cfg(test)]
#[path = "state_machine/tests.rs"]
mod tests;
