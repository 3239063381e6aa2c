//! etcd's txn rules: request validation before raft (operation count, empty keys, flags,
//! duplicate keys across nested txns), and compares, evaluated on the pre-txn state.

use super::command::{Compare, CompareResult, CompareTarget, RequestOp, TxnRequest};
use crate::base::{Bytes, EtcdError, KeyRange, Limits, Revision};
use crate::mvcc::{KeyValue, Store};
use std::collections::BTreeSet;

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
    let deleted =
        |deletes: &[KeyRange], key: &Bytes| deletes.iter().any(|range| range.contains(key));
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

/// The branch choices of a txn and every nested txn on the chosen path, evaluated on the
/// state before the txn runs (etcd's `compareToPath`).
pub fn choose_path(store: &Store, revision: Revision, txn: &TxnRequest, path: &mut Vec<bool>) {
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
            choose_path(store, revision, nested, path);
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
