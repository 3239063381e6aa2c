//! Watch streams against the store: every write seen once, in order, whatever the pace of
//! the reader; filters, prev_kv, compaction cancels.

use super::*;
use crate::base::Bytes;
use proptest::prelude::*;

fn put(store: &mut Store, key: &'static [u8], value: u8) {
    let mut write = store.write();
    write.put(Bytes::from_static(key), Bytes::from(vec![value]), 0);
    write.commit();
}

fn delete(store: &mut Store, key: &'static [u8]) {
    let mut write = store.write();
    write.delete_range(&KeyRange::single(Bytes::from_static(key)));
    write.commit();
}

fn drain(stream: &mut WatchStream, store: &Store, events_max: usize) -> Vec<(i64, Event)> {
    let mut seen = Vec::new();
    loop {
        let outputs = stream.poll(store, events_max);
        if outputs.is_empty() {
            return seen;
        }
        for output in outputs {
            if let WatchOutput::Events {
                watch_id, events, ..
            } = output
            {
                seen.extend(events.into_iter().map(|event| (watch_id, event)));
            }
        }
    }
}

#[test]
fn history_then_live_with_filters_and_prev_kv() {
    let mut store = Store::new();
    put(&mut store, b"a", 1);
    put(&mut store, b"b", 2);
    delete(&mut store, b"a");
    let mut stream = WatchStream::new(16);
    let prefix = KeyRange::new(&b"a"[..], &b"b"[..]);
    let all = stream
        .create(
            WatchSpec {
                range: prefix.clone(),
                start_revision: 1,
                prev_kv: true,
                ..WatchSpec::default()
            },
            0,
            4,
        )
        .unwrap();
    let deletes_only = stream
        .create(
            WatchSpec {
                range: prefix,
                start_revision: 1,
                filter_put: true,
                ..WatchSpec::default()
            },
            0,
            4,
        )
        .unwrap();
    assert_eq!((all, deletes_only), (0, 1));
    let seen = drain(&mut stream, &store, 100);
    assert_eq!(seen.len(), 3);
    assert_eq!(seen[0].1.kind, EventKind::Put);
    assert_eq!(seen[1].0, all);
    assert_eq!(seen[1].1.kind, EventKind::Delete);
    assert_eq!(seen[1].1.prev_kv.as_ref().unwrap().value.as_ref(), &[1]);
    assert_eq!(seen[2].0, deletes_only);
    assert!(seen[2].1.prev_kv.is_none(), "prev_kv only when asked");
    put(&mut store, b"a", 3);
    let live = drain(&mut stream, &store, 100);
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].1.kv.mod_revision, 5);
    assert!(stream.is_synced(store.current_revision()));
}

#[test]
fn duplicate_ids_and_compaction_cancel() {
    let mut store = Store::new();
    for value in 0..4 {
        put(&mut store, b"k", value);
    }
    let mut stream = WatchStream::new(2);
    let spec = WatchSpec {
        range: KeyRange::single(&b"k"[..]),
        start_revision: 2,
        ..WatchSpec::default()
    };
    assert_eq!(stream.create(spec.clone(), 7, 5), Ok(7));
    assert_eq!(
        stream.create(spec.clone(), 7, 5),
        Err(CreateError::IdExists(7))
    );
    assert_eq!(
        stream.create(spec.clone(), 0, 5),
        Ok(8),
        "automatic IDs never reuse a chosen one"
    );
    assert_eq!(
        stream.create(spec, 0, 5),
        Err(CreateError::TooManyWatchers(2)),
        "the stream holds at most watchers_max watchers"
    );
    store.compact(4).unwrap();
    let outputs = stream.poll(&store, 100);
    assert!(outputs.contains(&WatchOutput::Compacted {
        watch_id: 7,
        compact_revision: 4
    }));
    assert!(stream.is_empty());
}

#[test]
fn negative_start_revisions_are_canceled_as_compacted_as_in_etcd() {
    let mut store = Store::new();
    put(&mut store, b"k", 1);
    let spec = |start_revision| WatchSpec {
        range: KeyRange::single(&b"k"[..]),
        start_revision,
        ..WatchSpec::default()
    };
    let mut stream = WatchStream::new(8);
    let fresh = stream
        .create(spec(-5), 0, store.current_revision())
        .unwrap();
    assert_eq!(
        stream.poll(&store, 100),
        vec![WatchOutput::Compacted {
            watch_id: fresh,
            compact_revision: -1
        }],
        "below a fresh store's compact revision (-1), as etcd answers"
    );
    put(&mut store, b"k", 2);
    put(&mut store, b"k", 3);
    store.compact(3).unwrap();
    let compacted = stream
        .create(spec(-5), 0, store.current_revision())
        .unwrap();
    assert_eq!(
        stream.poll(&store, 100),
        vec![WatchOutput::Compacted {
            watch_id: compacted,
            compact_revision: 3
        }]
    );
    let now = stream.create(spec(0), 0, store.current_revision()).unwrap();
    assert!(stream.poll(&store, 100).is_empty(), "0 watches from now on");
    put(&mut store, b"k", 4);
    let outputs = stream.poll(&store, 100);
    assert!(
        matches!(&outputs[..], [WatchOutput::Events { watch_id, .. }] if *watch_id == now),
        "{outputs:?}"
    );
}

proptest! {
    /// However small the batches, a watcher sees every matching write exactly once, in order.
    #[test]
    fn slow_readers_see_every_event_once(values in proptest::collection::vec((0u8..3, any::<u8>()), 1..80), events_max in 1usize..5, reads_every in 1usize..10) {
        let keys: [&'static [u8]; 3] = [b"x", b"y", b"z"];
        let mut store = Store::new();
        let mut stream = WatchStream::new(4);
        stream.create(WatchSpec { range: KeyRange::new(&b"x"[..], &b"z"[..]), ..WatchSpec::default() }, 0, 1).unwrap();
        let mut seen = Vec::new();
        for (step, (key, value)) in values.iter().enumerate() {
            put(&mut store, keys[*key as usize], *value);
            if step % reads_every == 0 {
                for output in stream.poll(&store, events_max) {
                    if let WatchOutput::Events { events, .. } = output { seen.extend(events); }
                }
            }
        }
        seen.extend(drain(&mut stream, &store, events_max).into_iter().map(|(_, event)| event));
        let expected: Vec<Revision> = values.iter().enumerate().filter(|(_, (key, _))| *key < 2).map(|(step, _)| step as Revision + 2).collect();
        let revisions: Vec<Revision> = seen.iter().map(|event| event.kv.mod_revision).collect();
        prop_assert_eq!(revisions, expected);
    }
}
