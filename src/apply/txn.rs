//! A txn from request to response, in etcd's order: validate before raft (operation count,
//! empty keys, flags, duplicate keys across nested txns), tell a read-only txn from one that
//! writes (served without a log entry), choose the branch path on the pre-txn state
//! (`compareToPath`), check the chosen path (`checkRequests`), execute it.
//!
//! Whether a txn is serializable is decided on etcd's request at the api edge: that flag is
//! a local read option, not part of the replicated command, so it is not in `TxnRequest`.

use super::command::{
    Compare, CompareResult, CompareTarget, DeleteRequest, DeleteResponse, PutRequest, PutResponse,
    RequestOp, ResponseOp, TxnRequest, TxnResponse,
};
use crate::base::{Bytes, EtcdError, KeyRange, LeaseId, Limits, Revision};
use crate::io::planted::{planted, PlantedBug};
use crate::lease::LeaseTable;
use crate::mvcc::{KeyValue, Store, WriteTxn};
use std::collections::BTreeSet;

/// A txn with no put or delete anywhere in it (nested txns included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadOnlyTxn(TxnRequest);

impl ReadOnlyTxn {
    /// The txn as read-only, or back unchanged if it writes.
    pub fn new(txn: TxnRequest) -> Result<ReadOnlyTxn, TxnRequest> {
        if is_read_only(&txn) {
            Ok(ReadOnlyTxn(txn))
        } else {
            Err(txn)
        }
    }

    pub fn request(&self) -> &TxnRequest {
        &self.0
    }
}

fn is_read_only(txn: &TxnRequest) -> bool {
    txn.success
        .iter()
        .chain(&txn.failure)
        .all(|operation| match operation {
            RequestOp::Range(_) => true,
            RequestOp::Txn(nested) => is_read_only(nested),
            RequestOp::Put(_) | RequestOp::Delete(_) => false,
        })
}

/// A txn of one unconditional operation (how a lone put or delete is checked).
pub fn single(operation: RequestOp) -> TxnRequest {
    TxnRequest {
        compares: Vec::new(),
        success: vec![operation],
        failure: Vec::new(),
    }
}

/// Checks a request operation the way etcd does before proposing it.
pub fn validate_operation(operation: &RequestOp, limits: &Limits) -> Result<(), EtcdError> {
    match operation {
        RequestOp::Range(query) if query.range.start.is_empty() => Err(EtcdError::EmptyKey),
        RequestOp::Range(_) => Ok(()),
        RequestOp::Put(put) => {
            if put.key.is_empty() {
                return Err(EtcdError::EmptyKey);
            }
            if put.ignore_value && !put.value.is_empty() {
                return Err(EtcdError::ValueProvided);
            }
            if put.ignore_lease && put.lease != 0 {
                return Err(EtcdError::LeaseProvided);
            }
            Ok(())
        }
        RequestOp::Delete(delete) if delete.range.start.is_empty() => Err(EtcdError::EmptyKey),
        RequestOp::Delete(_) => Ok(()),
        RequestOp::Txn(txn) => validate_txn(txn, limits),
    }
}

/// etcd's `checkTxnRequest` and `checkIntervals`.
pub fn validate_txn(txn: &TxnRequest, limits: &Limits) -> Result<(), EtcdError> {
    let operations_max = limits.txn_operations_max;
    if txn.compares.len() > operations_max
        || txn.success.len() > operations_max
        || txn.failure.len() > operations_max
    {
        return Err(EtcdError::TooManyOperations);
    }
    for operation in txn.success.iter().chain(&txn.failure) {
        validate_operation(operation, limits)?;
    }
    check_intervals(&txn.success)?;
    check_intervals(&txn.failure)?;
    Ok(())
}

/// The keys a branch puts and the ranges it deletes, refusing any key written twice.
/// The two branches of a nested txn are exclusive, so they may write the same key.
fn check_intervals(
    operations: &[RequestOp],
) -> Result<(BTreeSet<Bytes>, Vec<KeyRange>), EtcdError> {
    let mut deletes: Vec<KeyRange> = operations
        .iter()
        .filter_map(|operation| match operation {
            RequestOp::Delete(delete) => Some(delete.range.clone()),
            _ => None,
        })
        .collect();
    // As etcd's interval tree sees a delete: one key, or the literal interval [start, end),
    // so an end of "\0" (every key from start on, when the delete runs) covers no key here
    // and etcd accepts a txn that puts a key such a delete then removes.
    let deleted = |deletes: &[KeyRange], key: &Bytes| {
        deletes.iter().any(|range| {
            if range.is_single_key() {
                key == &range.start
            } else {
                range.start.as_ref() <= key.as_ref() && key.as_ref() < range.end.as_ref()
            }
        })
    };
    let mut puts = BTreeSet::new();
    for operation in operations {
        let RequestOp::Txn(nested) = operation else {
            continue;
        };
        let (puts_then, deletes_then) = check_intervals(&nested.success)?;
        let (puts_else, deletes_else) = check_intervals(&nested.failure)?;
        for key in &puts_then {
            if puts.contains(key) || deleted(&deletes, key) {
                return Err(EtcdError::DuplicateKey);
            }
            puts.insert(key.clone());
        }
        for key in puts_else {
            if (puts.contains(&key) && !puts_then.contains(&key)) || deleted(&deletes, &key) {
                return Err(EtcdError::DuplicateKey);
            }
            puts.insert(key);
        }
        deletes.extend(deletes_then);
        deletes.extend(deletes_else);
    }
    for operation in operations {
        let RequestOp::Put(put) = operation else {
            continue;
        };
        if puts.contains(&put.key) || deleted(&deletes, &put.key) {
            return Err(EtcdError::DuplicateKey);
        }
        puts.insert(put.key.clone());
    }
    Ok((puts, deletes))
}

/// The branch choices of a txn and every nested txn on the chosen path, in the order they
/// are met, evaluated on the state before the txn runs (etcd's `compareToPath`).
pub fn choose_path(store: &Store, txn: &TxnRequest) -> Vec<bool> {
    let mut path = Vec::new();
    choose_path_into(store, store.current_revision(), txn, &mut path);
    path
}

fn choose_path_into(store: &Store, revision: Revision, txn: &TxnRequest, path: &mut Vec<bool>) {
    let succeeded = txn
        .compares
        .iter()
        .all(|compare| compare_holds(store, revision, compare));
    path.push(succeeded);
    let branch = if succeeded {
        &txn.success
    } else {
        &txn.failure
    };
    for operation in branch {
        if let RequestOp::Txn(nested) = operation {
            choose_path_into(store, revision, nested, path);
        }
    }
}

/// A compare over a range holds when it holds for every key in it; an absent key compares as
/// etcd's zero KeyValue, except that a VALUE compare on an absent key is false.
fn compare_holds(store: &Store, revision: Revision, compare: &Compare) -> bool {
    let mut kvs = Vec::new();
    store.visit_range(&compare.range, revision, |kv| {
        kvs.push(kv.clone());
        true
    });
    if kvs.is_empty() {
        if matches!(compare.target, CompareTarget::Value(_)) {
            return false;
        }
        return compare_one(
            &KeyValue {
                key: Bytes::new(),
                create_revision: 0,
                mod_revision: 0,
                version: 0,
                value: Bytes::new(),
                lease: 0,
            },
            compare,
        );
    }
    kvs.iter().all(|kv| compare_one(kv, compare))
}

fn compare_one(kv: &KeyValue, compare: &Compare) -> bool {
    let ordering = match &compare.target {
        CompareTarget::Version(version) => kv.version.cmp(version),
        CompareTarget::Create(revision) => kv.create_revision.cmp(revision),
        CompareTarget::Mod(revision) if planted(PlantedBug::TxnCompareModReadsCreate) => {
            kv.create_revision.cmp(revision)
        }
        CompareTarget::Mod(revision) => kv.mod_revision.cmp(revision),
        CompareTarget::Value(value) => kv.value.as_ref().cmp(value.as_ref()),
        CompareTarget::Lease(lease) => kv.lease.cmp(lease),
    };
    match compare.result {
        CompareResult::Equal => ordering.is_eq(),
        CompareResult::NotEqual => ordering.is_ne(),
        CompareResult::Greater => ordering.is_gt(),
        CompareResult::Less => ordering.is_lt(),
    }
}

/// etcd's `checkRequests` on the chosen path: leases exist, ignore_* keys exist, range
/// revisions readable. Returns the bytes the path's puts add (for the space quota).
pub fn check_path(
    store: &Store,
    leases: &LeaseTable,
    txn: &TxnRequest,
    path: &[bool],
) -> Result<u64, EtcdError> {
    // As etcd's applier: every put on the path is checked first, then every range
    // (`checkRequests` with `checkPut`, then with `checkRange`), so which error a txn gets
    // does not depend on the order of its operations.
    let mut puts_bytes = 0;
    visit_path(txn, path, &mut 0, &mut |operation| {
        if let RequestOp::Put(put) = operation {
            let needs_existing = put.ignore_value || put.ignore_lease;
            if needs_existing && store.get(&put.key, store.current_revision()).is_none() {
                return Err(EtcdError::KeyNotFound);
            }
            if put.lease != 0 && !leases.contains(put.lease) {
                return Err(EtcdError::LeaseNotFound);
            }
            puts_bytes += (put.key.len() + put.value.len()) as u64;
        }
        Ok(())
    })?;
    visit_path(txn, path, &mut 0, &mut |operation| {
        if let RequestOp::Range(query) = operation {
            // In a txn etcd compares a negative revision with the compact revision
            // (`checkRange`), where a lone range reads the current one.
            if query.revision < 0 && query.revision < store.compact_revision() {
                return Err(EtcdError::Compacted);
            }
            store.readable_revision(query.revision)?;
        }
        Ok(())
    })?;
    Ok(puts_bytes)
}

/// Calls `check` on every operation of the branches `path` chose, nested txns included, in
/// order; stops at the first error.
fn visit_path(
    txn: &TxnRequest,
    path: &[bool],
    step: &mut usize,
    check: &mut impl FnMut(&RequestOp) -> Result<(), EtcdError>,
) -> Result<(), EtcdError> {
    for operation in chosen_branch(txn, path, step) {
        match operation {
            RequestOp::Txn(nested) => visit_path(nested, path, step, check)?,
            other => check(other)?,
        }
    }
    Ok(())
}

/// The branch `path` chose for `txn`, advancing `step` past its choice.
fn chosen_branch<'a>(txn: &'a TxnRequest, path: &[bool], step: &mut usize) -> &'a [RequestOp] {
    let succeeded = path[*step];
    *step += 1;
    if succeeded {
        &txn.success
    } else {
        &txn.failure
    }
}

/// Runs the checked path of `txn` in `write` (one revision for the whole txn).
pub fn execute(
    write: &mut WriteTxn<'_>,
    leases: &mut LeaseTable,
    txn: &TxnRequest,
    path: &[bool],
) -> TxnResponse {
    execute_branch(write, leases, txn, path, &mut 0)
}

fn execute_branch(
    write: &mut WriteTxn<'_>,
    leases: &mut LeaseTable,
    txn: &TxnRequest,
    path: &[bool],
    step: &mut usize,
) -> TxnResponse {
    let succeeded = path[*step];
    let branch = chosen_branch(txn, path, step);
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
            RequestOp::Put(put) => ResponseOp::Put(execute_put(write, leases, put)),
            RequestOp::Delete(delete) => ResponseOp::Delete(execute_delete(write, leases, delete)),
            RequestOp::Txn(nested) => {
                ResponseOp::Txn(execute_branch(write, leases, nested, path, step))
            }
        };
        responses.push(response);
    }
    TxnResponse {
        succeeded,
        responses,
    }
}

/// One checked put: ignore_value and ignore_lease keep the existing key's value and lease.
pub fn execute_put(
    write: &mut WriteTxn<'_>,
    leases: &mut LeaseTable,
    put: &PutRequest,
) -> PutResponse {
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
    PutResponse {
        prev_kv: previous.filter(|_| put.prev_kv),
    }
}

pub fn execute_delete(
    write: &mut WriteTxn<'_>,
    leases: &mut LeaseTable,
    delete: &DeleteRequest,
) -> DeleteResponse {
    let deleted = write.delete_range(&delete.range);
    for kv in &deleted {
        move_lease(leases, &kv.key, kv.lease, 0);
    }
    DeleteResponse {
        deleted: deleted.len() as i64,
        prev_kvs: if delete.prev_kv { deleted } else { Vec::new() },
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
