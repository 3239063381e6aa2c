//! What a request needs its user to be allowed, as etcd's auth applier checks it: READ on
//! every range read or compared, WRITE on every key written, READ too where a write returns
//! the previous value, and WRITE on every key of a lease that a put attaches to or a revoke
//! deletes. The api layer checks reads with it; apply checks writes (`Command::Guarded`).

use super::command::{Command, RequestOp, TxnRequest};
use crate::auth::{Access, AuthStore};
use crate::base::{EtcdError, KeyRange, LeaseId};
use crate::lease::LeaseTable;

/// Checks every permission `command` needs for `user` against `auth` (which is on).
pub fn check_command(
    auth: &AuthStore,
    leases: &LeaseTable,
    user: &str,
    command: &Command,
) -> Result<(), EtcdError> {
    let mut needs = Vec::new();
    match command {
        Command::Put(put) => add_op(&RequestOp::Put(put.clone()), leases, &mut needs),
        Command::Delete(delete) => add_op(&RequestOp::Delete(delete.clone()), leases, &mut needs),
        Command::Txn(txn) => add_txn(txn, leases, &mut needs),
        Command::LeaseRevoke { id } => add_lease_keys(*id, leases, &mut needs),
        _ => {}
    }
    check(auth, user, &needs)
}

/// Checks what a txn needs (for a read-only txn served without a log entry).
pub fn check_txn(
    auth: &AuthStore,
    leases: &LeaseTable,
    user: &str,
    txn: &TxnRequest,
) -> Result<(), EtcdError> {
    let mut needs = Vec::new();
    add_txn(txn, leases, &mut needs);
    check(auth, user, &needs)
}

/// READ on every key of lease `id` (etcd's LeaseTimeToLive check with auth on).
pub fn check_lease_read(
    auth: &AuthStore,
    leases: &LeaseTable,
    user: &str,
    id: LeaseId,
) -> Result<(), EtcdError> {
    let mut needs = Vec::new();
    add_lease_keys(id, leases, &mut needs);
    for need in &mut needs {
        need.1 = Access::Read;
    }
    check(auth, user, &needs)
}

fn check(auth: &AuthStore, user: &str, needs: &[(KeyRange, Access)]) -> Result<(), EtcdError> {
    if needs
        .iter()
        .all(|(range, access)| auth.permits(user, range, *access))
    {
        Ok(())
    } else {
        Err(EtcdError::PermissionDenied)
    }
}

fn add_txn(txn: &TxnRequest, leases: &LeaseTable, needs: &mut Vec<(KeyRange, Access)>) {
    for compare in &txn.compares {
        needs.push((compare.range.clone(), Access::Read));
    }
    for op in txn.success.iter().chain(&txn.failure) {
        add_op(op, leases, needs);
    }
}

fn add_op(op: &RequestOp, leases: &LeaseTable, needs: &mut Vec<(KeyRange, Access)>) {
    match op {
        RequestOp::Range(query) => needs.push((query.range.clone(), Access::Read)),
        RequestOp::Put(put) => {
            let key = KeyRange::single(put.key.clone());
            if put.prev_kv {
                needs.push((key.clone(), Access::Read));
            }
            needs.push((key, Access::Write));
            if put.lease != 0 {
                add_lease_keys(put.lease, leases, needs);
            }
        }
        RequestOp::Delete(delete) => {
            if delete.prev_kv {
                needs.push((delete.range.clone(), Access::Read));
            }
            needs.push((delete.range.clone(), Access::Write));
        }
        RequestOp::Txn(nested) => add_txn(nested, leases, needs),
    }
}

fn add_lease_keys(id: LeaseId, leases: &LeaseTable, needs: &mut Vec<(KeyRange, Access)>) {
    if let Some(lease) = leases.get(id) {
        for key in lease.keys.iter() {
            needs.push((KeyRange::single(key.clone()), Access::Write));
        }
    }
}
