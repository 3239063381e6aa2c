//! The replicated state and the one function that changes it.

use super::command::*;
use super::txn::{self, ReadOnlyTxn};
use crate::auth::AuthStore;
use crate::base::{EtcdError, KeyRange, LeaseId};
use crate::io::planted::{planted, PlantedBug};
use crate::lease::LeaseTable;
use crate::mvcc::{Store, WriteTxn};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// MVCC store plus lease table. Cloning is O(1) (both are `im` maps), which is how readers,
/// watchers and snapshots get a consistent view without blocking apply. Persisted in
/// snapshots (`raft::persisted::SnapshotFile`): only the replicated fields are serialized.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateMachine {
    store: Store,
    leases: LeaseTable,
    auth: AuthStore,
    /// Raised alarms, in `(member, kind)` order. Persisted in snapshots (format 4 on).
    alarms: BTreeSet<Alarm>,
    /// etcd's minimum lease TTL, from the election timeout (the same flag on every member).
    /// A local flag: not serialized, set again by `set_limits` on every start.
    #[serde(skip)]
    lease_ttl_seconds_min: i64,
    /// `--quota-backend-bytes`: puts that would grow the store past it fail with NOSPACE.
    /// A local flag, like the one above.
    #[serde(skip)]
    backend_bytes_quota: u64,
}

impl StateMachine {
    pub fn new(lease_ttl_seconds_min: i64, backend_bytes_quota: u64) -> Self {
        StateMachine {
            store: Store::new(),
            leases: LeaseTable::default(),
            auth: AuthStore::default(),
            alarms: BTreeSet::new(),
            lease_ttl_seconds_min,
            backend_bytes_quota,
        }
    }

    /// A state machine of replicated state read from disk; `set_limits` must follow.
    pub fn from_parts(
        store: Store,
        leases: LeaseTable,
        auth: AuthStore,
        alarms: BTreeSet<Alarm>,
    ) -> Self {
        StateMachine {
            store,
            leases,
            auth,
            alarms,
            lease_ttl_seconds_min: 0,
            backend_bytes_quota: 0,
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn leases(&self) -> &LeaseTable {
        &self.leases
    }

    pub fn auth(&self) -> &AuthStore {
        &self.auth
    }

    pub fn alarms(&self) -> &BTreeSet<Alarm> {
        &self.alarms
    }

    /// Whether an alarm of `kind` is raised by any member.
    pub fn has_alarm(&self, kind: AlarmKind) -> bool {
        self.alarms.iter().any(|alarm| alarm.kind == kind)
    }

    /// A restore's revision bump (see `Store::bump_revision`).
    pub fn bump_revision(&mut self, amount: i64, mark_compacted: bool) {
        self.store.bump_revision(amount, mark_compacted);
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
        self.auth.hash_into(&mut hasher);
        for alarm in &self.alarms {
            hasher.update(&alarm.member_id.to_be_bytes());
            hasher.update(&alarm.kind.wire().to_be_bytes());
        }
        hasher.finalize()
    }

    /// Applies the command of log entry `index`.
    pub fn apply(&mut self, index: u64, command: &Command) -> Applied {
        if let Err(error) = self.check_alarms(command) {
            return Applied {
                revision: self.store.current_revision(),
                result: Err(error),
            };
        }
        let result = match command {
            // A lone put or delete is checked as a txn of one operation, as etcd does, but
            // a lone put's lease is looked up first (etcd's `applierV3backend.Put` does so
            // before the ignore_value/ignore_lease check; inside a txn it comes after), once
            // NOSPACE, which etcd's capped applier checks before anything, is not raised.
            Command::Put(put)
                if put.lease != 0
                    && !self.has_alarm(AlarmKind::NoSpace)
                    && !self.leases.contains(put.lease) =>
            {
                Err(EtcdError::LeaseNotFound)
            }
            Command::Put(put) => self.apply_txn(
                &txn::single(RequestOp::Put(put.clone())),
                |write, leases, _| Outcome::Put(txn::execute_put(write, leases, put)),
            ),
            Command::Delete(delete) => self.apply_txn(
                &txn::single(RequestOp::Delete(delete.clone())),
                |write, leases, _| Outcome::Delete(txn::execute_delete(write, leases, delete)),
            ),
            Command::Txn(request) => self.apply_txn(request, |write, leases, path| {
                Outcome::Txn(txn::execute(write, leases, request, path))
            }),
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
            Command::Auth(change) => self.auth.apply(change).map(|()| Outcome::AuthChanged),
            Command::Guarded {
                user,
                auth_revision,
                command,
            } => match self.check_guard(user, *auth_revision, command) {
                Ok(()) => return self.apply(index, command),
                Err(error) => Err(error),
            },
            Command::Alarm { activate, alarm } => {
                // etcd answers an activation with the alarm, raised now or before
                // (`AlarmStore.Activate` returns the one it holds), and a deactivation with
                // the alarm only if there was one to clear.
                let answered = if *activate {
                    self.alarms.insert(*alarm);
                    true
                } else {
                    self.alarms.remove(alarm)
                };
                Ok(Outcome::Alarms(if answered {
                    vec![*alarm]
                } else {
                    Vec::new()
                }))
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

    /// etcd's auth applier: with auth on, each command gets the check `auth_check` names,
    /// against the state it applies to.
    fn check_guard(
        &self,
        user: &str,
        auth_revision: u64,
        command: &Command,
    ) -> Result<(), EtcdError> {
        let check = command.auth_check();
        if !self.auth.is_enabled() || check == AuthCheck::Nothing {
            return Ok(());
        }
        if user.is_empty() {
            return Err(EtcdError::UserEmpty);
        }
        if check == AuthCheck::Admin {
            return self.auth.is_admin(user);
        }
        if auth_revision == 0 {
            return Err(EtcdError::UserEmpty);
        }
        if auth_revision < self.auth.revision() {
            return Err(EtcdError::AuthOldRevision);
        }
        super::access::check_command(&self.auth, &self.leases, user, command)
    }

    /// What the raised alarms refuse, as etcd's capped and corrupt appliers: with CORRUPT
    /// every KV and lease change; with NOSPACE lease grants (puts are refused in
    /// `apply_txn`, where a txn's path tells whether it writes). Alarm changes always pass,
    /// so an alarm can be cleared.
    fn check_alarms(&self, command: &Command) -> Result<(), EtcdError> {
        let command = match command {
            Command::Guarded { command, .. } => command.as_ref(),
            other => other,
        };
        match command {
            Command::Alarm { .. } | Command::Auth(_) | Command::Batch(_) => Ok(()),
            _ if self.has_alarm(AlarmKind::Corrupt) => Err(EtcdError::Corrupt),
            Command::LeaseGrant { .. } if self.has_alarm(AlarmKind::NoSpace) => {
                Err(EtcdError::NoSpace)
            }
            _ => Ok(()),
        }
    }

    /// Revokes a lease and deletes its keys, all in one revision.
    fn revoke(&mut self, id: LeaseId) -> Result<(), EtcdError> {
        let mut keys = self.leases.revoke(id)?;
        if planted(PlantedBug::RevokeSkipsLastKey) {
            keys.remove_max();
        }
        let mut write = self.store.write();
        for key in keys {
            write.delete_range(&KeyRange::single(key));
        }
        write.commit();
        Ok(())
    }

    /// A txn that writes: compares on the pre-txn state choose the path, the path is
    /// checked, the quota too, and only then does `execute` change anything, in one
    /// revision.
    fn apply_txn(
        &mut self,
        txn: &TxnRequest,
        execute: impl FnOnce(&mut WriteTxn<'_>, &mut LeaseTable, &[bool]) -> Outcome,
    ) -> Result<Outcome, EtcdError> {
        // With NOSPACE raised, etcd's capped applier refuses a txn with a put on either
        // path before it looks at anything else (`applierV3Capped.Txn`; its cost counts the
        // top level only). Puts in nested txns are refused below if the path runs them.
        let puts_at_top = txn
            .success
            .iter()
            .chain(&txn.failure)
            .any(|operation| matches!(operation, RequestOp::Put(_)));
        if self.has_alarm(AlarmKind::NoSpace) && puts_at_top {
            return Err(EtcdError::NoSpace);
        }
        let path = txn::choose_path(&self.store, txn);
        let puts_bytes = txn::check_path(&self.store, &self.leases, txn, &path)?;
        // A write that adds data is refused while NOSPACE is raised, as etcd's capped
        // applier, and when it would pass the quota (the api then raises NOSPACE).
        if puts_bytes > 0
            && (self.has_alarm(AlarmKind::NoSpace)
                || self.store.size_bytes() + puts_bytes > self.backend_bytes_quota)
        {
            return Err(EtcdError::NoSpace);
        }
        let mut write = self.store.write();
        let outcome = execute(&mut write, &mut self.leases, &path);
        write.commit();
        Ok(outcome)
    }

    /// A txn that only reads, answered from this state without changing it (etcd serves
    /// these without a log entry): the same path choice and checks as `apply_txn`.
    pub fn read_txn(&self, txn: &ReadOnlyTxn) -> Result<TxnResponse, EtcdError> {
        let txn = txn.request();
        let path = txn::choose_path(&self.store, txn);
        txn::check_path(&self.store, &self.leases, txn, &path)?;
        // Execution goes through a write transaction, on O(1) copies of the store and the
        // lease table; a txn with no put or delete changes nothing through it, and it is
        // dropped uncommitted.
        let (mut store, mut leases) = (self.store.clone(), self.leases.clone());
        let mut write = store.write();
        Ok(txn::execute(&mut write, &mut leases, txn, &path))
    }
}

#[cfg(test)]
#[path = "state_machine/tests.rs"]
mod tests;
