//! The store against a naive reference model that replays the whole write log for every
//! question, under random sequences of puts, deletes, compactions and reads.

use super::*;
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Operation {
    Put(u8, u8),
    Delete(u8, u8),
    Compact(u8),
    Range {
        start: u8,
        end: u8,
        back: u8,
        limit: u8,
    },
}

fn operation() -> impl Strategy<Value = Operation> {
    prop_oneof![
        5 => (0u8..8, any::<u8>()).prop_map(|(k, v)| Operation::Put(k, v)),
        2 => (0u8..8, 0u8..9).prop_map(|(k, n)| Operation::Delete(k, n)),
        1 => (0u8..20).prop_map(Operation::Compact),
        3 => (0u8..8, 0u8..9, 0u8..20, 0u8..4)
            .prop_map(|(start, end, back, limit)| Operation::Range { start, end, back, limit }),
    ]
}

fn key(k: u8) -> Bytes {
    Bytes::from(vec![b'a' + k])
}

/// Keys `[start, start + width)`, or the single key when width is 0.
fn key_range(start: u8, width: u8) -> KeyRange {
    if width == 0 {
        KeyRange::single(key(start))
    } else {
        KeyRange::new(key(start), key(start.saturating_add(width)))
    }
}

/// Every write ever made: (revision, key, value or None for a delete).
#[derive(Default)]
struct Model {
    writes: Vec<(Revision, Bytes, Option<Bytes>)>,
    current: Revision,
    compacted: Revision,
}

impl Model {
    fn get(&self, k: &Bytes, revision: Revision) -> Option<KeyValue> {
        let mut state: Option<KeyValue> = None;
        for (rev, wk, value) in self
            .writes
            .iter()
            .filter(|(rev, wk, _)| wk == k && *rev <= revision)
        {
            state = match (value, state) {
                (None, _) => None,
                (Some(v), Some(prev)) => Some(KeyValue {
                    mod_revision: *rev,
                    version: prev.version + 1,
                    value: v.clone(),
                    ..prev
                }),
                (Some(v), None) => Some(KeyValue {
                    key: wk.clone(),
                    create_revision: *rev,
                    mod_revision: *rev,
                    version: 1,
                    value: v.clone(),
                    lease: 0,
                }),
            };
        }
        state
    }

    fn range(&self, range: &KeyRange, revision: Revision) -> Vec<KeyValue> {
        (0u8..8)
            .map(key)
            .filter(|k| range.contains(k))
            .filter_map(|k| self.get(&k, revision))
            .collect()
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    #[test]
    fn store_matches_reference_model(operations in proptest::collection::vec(operation(), 1..60)) {
        let mut store = Store::new();
        let mut model = Model { current: 1, compacted: -1, ..Model::default() };
        for operation in operations {
            match operation {
                Operation::Put(k, v) => {
                    let mut write = store.write();
                    let revision = write.revision();
                    let previous = write.put(key(k), Bytes::from(vec![v]), 0);
                    prop_assert_eq!(previous, model.get(&key(k), model.current));
                    prop_assert_eq!(write.commit(), revision);
                    model.current = revision;
                    model.writes.push((revision, key(k), Some(Bytes::from(vec![v]))));
                }
                Operation::Delete(k, width) => {
                    let range = key_range(k, width);
                    let expected = model.range(&range, model.current);
                    let mut write = store.write();
                    let revision = write.revision();
                    let deleted = write.delete_range(&range);
                    prop_assert_eq!(&deleted, &expected);
                    let after = write.commit();
                    if expected.is_empty() {
                        prop_assert_eq!(after, model.current, "a delete of nothing keeps the revision");
                    } else {
                        model.current = revision;
                        for kv in expected {
                            model.writes.push((revision, kv.key, None));
                        }
                    }
                }
                Operation::Compact(back) => {
                    let target = model.current - Revision::from(back);
                    let result = store.compact(target);
                    if target <= model.compacted {
                        prop_assert_eq!(result, Err(EtcdError::Compacted));
                    } else {
                        prop_assert_eq!(result, Ok(()));
                        model.compacted = target;
                    }
                }
                Operation::Range { start, end, back, limit } => {
                    let range = key_range(start, end);
                    let revision = model.current - Revision::from(back);
                    let query = RangeQuery { range: range.clone(), revision, limit: i64::from(limit), ..RangeQuery::default() };
                    let result = store.range(&query);
                    if revision <= 0 {
                        // Non-positive means "current" in etcd; checked below through revision 0.
                        continue;
                    }
                    if revision < model.compacted {
                        prop_assert_eq!(result, Err(EtcdError::Compacted));
                        continue;
                    }
                    let expected = model.range(&range, revision);
                    let result = result.unwrap();
                    prop_assert_eq!(result.count, expected.len() as i64);
                    let shown = if limit > 0 { expected.len().min(limit as usize) } else { expected.len() };
                    prop_assert_eq!(&result.kvs[..], &expected[..shown]);
                    prop_assert_eq!(result.more, shown < expected.len());
                }
            }
            prop_assert_eq!(store.current_revision(), model.current);
            // Every retained revision's events match what the model wrote at that revision.
            let first = model.compacted.max(2);
            let everything = KeyRange::new(&b"\0"[..], &b"\0"[..]);
            let (events, _) = store.events(&everything, first, model.current, true, usize::MAX);
            let expected: Vec<(Revision, Bytes, bool)> = model.writes.iter()
                .filter(|(rev, _, _)| *rev >= first)
                .map(|(rev, k, v)| (*rev, k.clone(), v.is_none()))
                .collect();
            let seen: Vec<(Revision, Bytes, bool)> = events.iter()
                .map(|e| (e.kv.mod_revision, e.kv.key.clone(), e.kind == EventKind::Delete))
                .collect();
            prop_assert_eq!(seen, expected);
            for event in &events {
                if event.kind == EventKind::Put {
                    prop_assert_eq!(Some(event.kv.clone()), model.get(&event.kv.key, event.kv.mod_revision));
                }
                if event.kv.mod_revision > model.compacted {
                    prop_assert_eq!(&event.prev_kv, &model.get(&event.kv.key, event.kv.mod_revision - 1));
                }
            }
        }
    }
}

#[test]
fn read_errors_match_etcd() {
    let mut store = Store::new();
    for value in 0..5u8 {
        let mut write = store.write();
        write.put(key(0), Bytes::from(vec![value]), 0);
        write.commit();
    }
    assert_eq!(store.current_revision(), 6);
    let query = |revision| RangeQuery {
        range: KeyRange::single(key(0)),
        revision,
        ..RangeQuery::default()
    };
    assert_eq!(store.range(&query(7)), Err(EtcdError::FutureRevision));
    store.compact(4).unwrap();
    assert_eq!(store.range(&query(3)), Err(EtcdError::Compacted));
    assert_eq!(store.range(&query(4)).unwrap().kvs[0].value.as_ref(), &[2]);
    assert_eq!(store.compact(4), Err(EtcdError::Compacted));
    assert_eq!(store.compact(9), Err(EtcdError::FutureRevision));
}

#[test]
fn a_fresh_store_compacts_to_zero_once_as_etcd_does() {
    let mut store = Store::new();
    assert_eq!(store.compact_revision(), -1, "never compacted, etcd's -1");
    assert_eq!(store.compact(0), Ok(()));
    assert_eq!(store.compact(0), Err(EtcdError::Compacted));
    assert_eq!(store.compact(1), Ok(()));
    assert_eq!(store.compact(1), Err(EtcdError::Compacted));
}

#[test]
fn sort_filters_and_flags() {
    let mut store = Store::new();
    for (k, v) in [(2u8, 9u8), (0, 5), (1, 7)] {
        let mut write = store.write();
        write.put(key(k), Bytes::from(vec![v]), 0);
        write.commit();
    }
    let all = KeyRange::new(key(0), &b"\0"[..]);
    let by_mod_descending = RangeQuery {
        range: all.clone(),
        sort_target: SortTarget::Mod,
        sort_order: SortOrder::Descend,
        limit: 2,
        ..RangeQuery::default()
    };
    let result = store.range(&by_mod_descending).unwrap();
    let keys: Vec<_> = result.kvs.iter().map(|kv| kv.key.clone()).collect();
    assert_eq!(keys, vec![key(1), key(0)]);
    assert!(result.more);
    assert_eq!(result.count, 3);
    let filtered = RangeQuery {
        range: all.clone(),
        min_create_revision: 3,
        keys_only: true,
        ..RangeQuery::default()
    };
    let result = store.range(&filtered).unwrap();
    assert_eq!(result.kvs.len(), 2);
    assert!(result.kvs.iter().all(|kv| kv.value.is_empty()));
    let counted = RangeQuery {
        range: all,
        count_only: true,
        ..RangeQuery::default()
    };
    let result = store.range(&counted).unwrap();
    assert_eq!((result.count, result.kvs.len()), (3, 0));
}
