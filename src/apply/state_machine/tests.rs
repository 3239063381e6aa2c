//! The state machine against etcd's documented behaviour for puts, txns and leases.

use super::*;
use crate::apply::{validate_txn, ReadOnlyTxn};
use crate::base::{prefix_end, Bytes, Limits};
use crate::mvcc::RangeQuery;

fn bytes(text: &str) -> Bytes {
    Bytes::copy_from_slice(text.as_bytes())
}

fn put(key: &str, value: &str) -> PutRequest {
    PutRequest {
        key: bytes(key),
        value: bytes(value),
        ..PutRequest::default()
    }
}

fn get(machine: &StateMachine, key: &str) -> Option<crate::mvcc::KeyValue> {
    machine
        .store()
        .get(key.as_bytes(), machine.store().current_revision())
}

#[test]
fn put_flags_follow_etcd() {
    let mut machine = StateMachine::new(2, u64::MAX);
    let ignore_value = PutRequest {
        ignore_value: true,
        ..put("a", "")
    };
    assert_eq!(
        machine.apply(1, &Command::Put(ignore_value.clone())).result,
        Err(EtcdError::KeyNotFound)
    );
    machine.apply(2, &Command::Put(put("a", "1")));
    let applied = machine.apply(
        3,
        &Command::Put(PutRequest {
            prev_kv: true,
            ..ignore_value
        }),
    );
    assert_eq!(applied.revision, 3);
    match applied.result {
        Ok(Outcome::Put(PutResponse {
            prev_kv: Some(prev),
        })) => assert_eq!(prev.value, bytes("1")),
        other => panic!("unexpected {other:?}"),
    }
    let kv = get(&machine, "a").unwrap();
    assert_eq!(
        (kv.value, kv.version, kv.create_revision, kv.mod_revision),
        (bytes("1"), 2, 2, 3)
    );
    let with_missing_lease = PutRequest {
        lease: 99,
        ..put("b", "x")
    };
    assert_eq!(
        machine.apply(4, &Command::Put(with_missing_lease)).result,
        Err(EtcdError::LeaseNotFound)
    );
}

#[test]
fn txn_compares_choose_branch_and_nested_paths_use_pre_txn_state() {
    let mut machine = StateMachine::new(2, u64::MAX);
    machine.apply(1, &Command::Put(put("k", "v1")));
    let compare = |target, result| Compare {
        range: KeyRange::single(bytes("k")),
        result,
        target,
    };
    let nested = TxnRequest {
        compares: vec![compare(
            CompareTarget::Value(bytes("v1")),
            CompareResult::Equal,
        )],
        success: vec![RequestOp::Put(put("nested", "saw-v1"))],
        failure: vec![RequestOp::Put(put("nested", "saw-other"))],
    };
    let txn = TxnRequest {
        compares: vec![
            compare(CompareTarget::Version(1), CompareResult::Equal),
            compare(CompareTarget::Mod(1), CompareResult::Greater),
            compare(CompareTarget::Lease(0), CompareResult::Equal),
        ],
        success: vec![
            RequestOp::Put(put("k", "v2")),
            RequestOp::Range(RangeQuery {
                range: KeyRange::single(bytes("k")),
                ..RangeQuery::default()
            }),
            RequestOp::Txn(nested),
        ],
        failure: vec![],
    };
    validate_txn(&txn, &Limits::default()).unwrap();
    let applied = machine.apply(2, &Command::Txn(txn));
    let Ok(Outcome::Txn(response)) = applied.result else {
        panic!("txn failed")
    };
    assert!(response.succeeded);
    match &response.responses[1] {
        ResponseOp::Range(result) => assert_eq!(
            result.kvs[0].value,
            bytes("v2"),
            "reads see the txn's own writes"
        ),
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(
        get(&machine, "nested").unwrap().value,
        bytes("saw-v1"),
        "nested compares see the pre-txn state"
    );
    assert_eq!(applied.revision, 3, "a whole txn is one revision");
    let absent = TxnRequest {
        compares: vec![Compare {
            range: KeyRange::single(bytes("none")),
            result: CompareResult::NotEqual,
            target: CompareTarget::Value(bytes("x")),
        }],
        success: vec![RequestOp::Put(put("x", "1"))],
        failure: vec![],
    };
    let Ok(Outcome::Txn(response)) = machine.apply(3, &Command::Txn(absent)).result else {
        panic!()
    };
    assert!(
        !response.succeeded,
        "a value compare on an absent key is false"
    );
    let over_range = TxnRequest {
        compares: vec![Compare {
            range: KeyRange::new(bytes("a"), prefix_end(b"z")),
            result: CompareResult::Greater,
            target: CompareTarget::Create(0),
        }],
        ..TxnRequest::default()
    };
    let Ok(Outcome::Txn(response)) = machine.apply(4, &Command::Txn(over_range)).result else {
        panic!()
    };
    assert!(response.succeeded);
}

#[test]
fn txn_validation_matches_etcd() {
    let limits = Limits {
        txn_operations_max: 2,
        ..Limits::default()
    };
    let puts = |keys: &[&str]| {
        keys.iter()
            .map(|key| RequestOp::Put(put(key, "v")))
            .collect::<Vec<_>>()
    };
    let too_many = TxnRequest {
        success: puts(&["a", "b", "c"]),
        ..TxnRequest::default()
    };
    assert_eq!(
        validate_txn(&too_many, &limits),
        Err(EtcdError::TooManyOperations)
    );
    let limits = Limits::default();
    let duplicate = TxnRequest {
        success: puts(&["a", "a"]),
        ..TxnRequest::default()
    };
    assert_eq!(
        validate_txn(&duplicate, &limits),
        Err(EtcdError::DuplicateKey)
    );
    let put_and_delete = TxnRequest {
        success: vec![
            RequestOp::Put(put("b", "v")),
            RequestOp::Delete(DeleteRequest {
                range: KeyRange::new(bytes("a"), bytes("c")),
                prev_kv: false,
            }),
        ],
        ..TxnRequest::default()
    };
    assert_eq!(
        validate_txn(&put_and_delete, &limits),
        Err(EtcdError::DuplicateKey)
    );
    let exclusive_branches = TxnRequest {
        success: vec![RequestOp::Txn(TxnRequest {
            success: puts(&["a"]),
            failure: puts(&["a"]),
            ..TxnRequest::default()
        })],
        ..TxnRequest::default()
    };
    assert_eq!(validate_txn(&exclusive_branches, &limits), Ok(()));
    let nested_duplicate = TxnRequest {
        success: vec![
            RequestOp::Put(put("a", "v")),
            RequestOp::Txn(TxnRequest {
                success: puts(&["a"]),
                ..TxnRequest::default()
            }),
        ],
        ..TxnRequest::default()
    };
    assert_eq!(
        validate_txn(&nested_duplicate, &limits),
        Err(EtcdError::DuplicateKey)
    );
    let empty_key = TxnRequest {
        failure: puts(&[""]),
        ..TxnRequest::default()
    };
    assert_eq!(validate_txn(&empty_key, &limits), Err(EtcdError::EmptyKey));
}

#[test]
fn revoke_deletes_attached_keys_in_one_revision() {
    let mut machine = StateMachine::new(2, u64::MAX);
    let granted = machine.apply(
        1,
        &Command::LeaseGrant {
            id: 0,
            ttl_seconds: 1,
        },
    );
    let Ok(Outcome::LeaseGranted { id, ttl_seconds }) = granted.result else {
        panic!()
    };
    assert!(id > 0);
    assert_eq!(ttl_seconds, 2, "minimum TTL applies");
    for key in ["a", "b", "c"] {
        machine.apply(
            2,
            &Command::Put(PutRequest {
                lease: id,
                ..put(key, "v")
            }),
        );
    }
    machine.apply(3, &Command::Put(put("b", "detached")));
    assert_eq!(
        machine.leases().get(id).unwrap().keys.len(),
        2,
        "re-putting without the lease detaches"
    );
    let before = machine.store().current_revision();
    let revoked = machine.apply(4, &Command::LeaseRevoke { id });
    assert_eq!(revoked.revision, before + 1);
    assert!(get(&machine, "a").is_none() && get(&machine, "c").is_none());
    assert_eq!(get(&machine, "b").unwrap().value, bytes("detached"));
    assert_eq!(
        machine.apply(5, &Command::LeaseRevoke { id }).result,
        Err(EtcdError::LeaseNotFound)
    );
    assert_eq!(
        machine
            .apply(
                6,
                &Command::LeaseGrant {
                    id: 5,
                    ttl_seconds: 10
                }
            )
            .result,
        Ok(Outcome::LeaseGranted {
            id: 5,
            ttl_seconds: 10
        })
    );
    assert_eq!(
        machine
            .apply(
                7,
                &Command::LeaseGrant {
                    id: 5,
                    ttl_seconds: 10
                }
            )
            .result,
        Err(EtcdError::LeaseExists)
    );
}

#[test]
fn quota_refuses_puts_but_not_deletes() {
    let mut machine = StateMachine::new(2, 200);
    machine.apply(1, &Command::Put(put("a", "small")));
    let large = "x".repeat(300);
    assert_eq!(
        machine.apply(2, &Command::Put(put("b", &large))).result,
        Err(EtcdError::NoSpace)
    );
    let delete = DeleteRequest {
        range: KeyRange::single(bytes("a")),
        prev_kv: false,
    };
    assert!(machine.apply(3, &Command::Delete(delete)).result.is_ok());
}

#[test]
fn read_only_txns_are_answered_without_changing_state() {
    let mut machine = StateMachine::new(1, u64::MAX);
    machine.apply(1, &Command::Put(put("a", "1")));
    machine.apply(2, &Command::Put(put("b", "2")));
    let range = |key: &str, revision| {
        RequestOp::Range(RangeQuery {
            range: KeyRange::single(bytes(key)),
            revision,
            ..RangeQuery::default()
        })
    };
    let nested = TxnRequest {
        compares: vec![Compare {
            range: KeyRange::single(bytes("b")),
            result: CompareResult::Equal,
            target: CompareTarget::Value(bytes("2")),
        }],
        success: vec![range("b", 0)],
        failure: vec![range("a", 0)],
    };
    let txn = TxnRequest {
        compares: vec![Compare {
            range: KeyRange::single(bytes("a")),
            result: CompareResult::Equal,
            target: CompareTarget::Value(bytes("no")),
        }],
        success: vec![range("a", 0)],
        failure: vec![range("a", 2), RequestOp::Txn(nested)],
    };
    let read_only = ReadOnlyTxn::new(txn.clone()).expect("the txn only reads");
    let before = machine.clone();
    let response = machine.read_txn(&read_only).unwrap();
    assert_eq!(machine, before, "a read-only txn changes nothing");
    assert!(!response.succeeded);
    let values: Vec<Vec<Bytes>> = response
        .responses
        .iter()
        .map(|operation| match operation {
            ResponseOp::Range(result) => result.kvs.iter().map(|kv| kv.value.clone()).collect(),
            ResponseOp::Txn(nested) => match &nested.responses[..] {
                [ResponseOp::Range(result)] => {
                    result.kvs.iter().map(|kv| kv.value.clone()).collect()
                }
                other => panic!("unexpected {other:?}"),
            },
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(values, [vec![bytes("1")], vec![bytes("2")]]);
    // The same answer as applying it as a command would give.
    let mut copy = machine.clone();
    let Ok(Outcome::Txn(applied)) = copy.apply(3, &Command::Txn(txn)).result else {
        panic!("txn failed")
    };
    assert_eq!(applied, response);
    // A future revision is refused as when applied.
    let future = ReadOnlyTxn::new(single_range("a", 99)).unwrap();
    assert_eq!(machine.read_txn(&future), Err(EtcdError::FutureRevision));
    let writes = TxnRequest {
        success: vec![RequestOp::Put(put("a", "3"))],
        ..single_range("a", 0)
    };
    assert!(
        ReadOnlyTxn::new(writes).is_err(),
        "a txn with a put is not read-only"
    );
}

fn single_range(key: &str, revision: i64) -> TxnRequest {
    TxnRequest {
        compares: Vec::new(),
        success: vec![RequestOp::Range(RangeQuery {
            range: KeyRange::single(bytes(key)),
            revision,
            ..RangeQuery::default()
        })],
        failure: Vec::new(),
    }
}

#[test]
fn raised_alarms_refuse_what_etcds_capped_and_corrupt_appliers_refuse() {
    let mut machine = StateMachine::new(2, u64::MAX);
    machine.apply(1, &Command::Put(put("a", "1")));
    let alarm = |kind| Alarm { member_id: 7, kind };
    let raise = |kind| Command::Alarm {
        activate: true,
        alarm: alarm(kind),
    };
    assert_eq!(
        machine.apply(2, &raise(AlarmKind::NoSpace)).result,
        Ok(Outcome::Alarms(vec![alarm(AlarmKind::NoSpace)]))
    );
    assert_eq!(
        machine.apply(3, &raise(AlarmKind::NoSpace)).result,
        Ok(Outcome::Alarms(vec![alarm(AlarmKind::NoSpace)])),
        "raising a raised alarm answers the alarm held, as etcd 3.4 does (cairn-diff)"
    );
    assert_eq!(
        machine.apply(4, &Command::Put(put("b", "2"))).result,
        Err(EtcdError::NoSpace)
    );
    let grant = Command::LeaseGrant {
        id: 5,
        ttl_seconds: 10,
    };
    assert_eq!(machine.apply(5, &grant).result, Err(EtcdError::NoSpace));
    let delete = Command::Delete(DeleteRequest {
        range: KeyRange::single(bytes("a")),
        prev_kv: false,
    });
    assert!(
        machine.apply(6, &delete).result.is_ok(),
        "deletes free space"
    );
    machine.apply(7, &raise(AlarmKind::Corrupt));
    assert_eq!(
        machine.apply(8, &Command::Compact { revision: 2 }).result,
        Err(EtcdError::Corrupt)
    );
    for kind in [AlarmKind::NoSpace, AlarmKind::Corrupt] {
        let clear = Command::Alarm {
            activate: false,
            alarm: alarm(kind),
        };
        assert_eq!(
            machine.apply(9, &clear).result,
            Ok(Outcome::Alarms(vec![alarm(kind)]))
        );
    }
    assert!(machine.alarms().is_empty());
    assert!(machine
        .apply(10, &Command::Put(put("b", "2")))
        .result
        .is_ok());
}
