//! Writes: every change of one request (a put, a delete, a whole txn) shares one revision.

use super::{KeyValue, Store};
use crate::base::{Bytes, KeyRange, LeaseId, Revision};
use std::sync::Arc;

/// A write in progress at revision `current + 1`. Reads through it see its own writes.
pub struct WriteTxn<'a> {
    store: &'a mut Store,
    revision: Revision,
    changed: Vec<KeyValue>,
}

impl<'a> WriteTxn<'a> {
    pub(super) fn new(store: &'a mut Store) -> Self {
        let revision = store.current_revision + 1;
        WriteTxn {
            store,
            revision,
            changed: Vec::new(),
        }
    }

    /// The revision this write's changes carry.
    pub fn revision(&self) -> Revision {
        self.revision
    }

    /// The store as this write sees it, and the revision at which it sees its own changes.
    pub fn view(&self) -> (&Store, Revision) {
        let revision = if self.changed.is_empty() {
            self.store.current_revision
        } else {
            self.revision
        };
        (self.store, revision)
    }

    /// Puts `key`; returns the version it replaced, if the key existed.
    pub fn put(&mut self, key: Bytes, value: Bytes, lease: LeaseId) -> Option<KeyValue> {
        let previous = self.store.get(&key, self.revision);
        let (create_revision, version) = match &previous {
            Some(prev) => (prev.create_revision, prev.version + 1),
            None => (self.revision, 1),
        };
        let kv = KeyValue {
            key: key.clone(),
            create_revision,
            mod_revision: self.revision,
            version,
            value,
            lease,
        };
        self.record(kv);
        previous
    }

    /// Deletes every existing key in `range`; returns the deleted versions in key order.
    pub fn delete_range(&mut self, range: &KeyRange) -> Vec<KeyValue> {
        let mut deleted = Vec::new();
        self.store.visit_range(range, self.revision, |kv| {
            deleted.push(kv.clone());
            true
        });
        for kv in &deleted {
            self.record(KeyValue::tombstone(kv.key.clone(), self.revision));
        }
        deleted
    }

    fn record(&mut self, mut kv: KeyValue) {
        let store = &mut *self.store;
        // The new history is made at the length it will have (a clone and a push would
        // double its capacity, in every key), and every version of a key shares the map's
        // copy of the key's bytes.
        let mut history: Vec<KeyValue> = match store.keys.get_key_value(&kv.key) {
            Some((key, history)) => {
                kv.key = key.clone();
                let mut copy = Vec::with_capacity(history.len() + 1);
                copy.extend_from_slice(history);
                copy
            }
            None => Vec::with_capacity(1),
        };
        // A key changed twice in one revision keeps only its last version, as etcd does
        // (the txn rules make this rare: only a delete after a put of an overlapping range).
        if history
            .last()
            .is_some_and(|last| last.mod_revision == self.revision)
        {
            let replaced = history.pop().expect("checked non-empty");
            store.size_bytes -= replaced.size_bytes();
            if let Some(index) = self
                .changed
                .iter()
                .position(|changed| changed.key == kv.key)
            {
                self.changed.remove(index);
            }
        }
        // An existing key deleted in the same revision it was created vanishes entirely.
        if kv.is_tombstone() && history.last().is_none_or(|last| last.is_tombstone()) {
            if history.is_empty() {
                store.keys.remove(&kv.key);
            } else {
                store.keys.insert(kv.key.clone(), Arc::new(history));
            }
            return;
        }
        store.size_bytes += kv.size_bytes();
        history.push(kv.clone());
        store.keys.insert(kv.key.clone(), Arc::new(history));
        self.changed.push(kv);
    }

    /// Finishes the write; returns the store's revision afterwards.
    pub fn commit(self) -> Revision {
        if !self.changed.is_empty() {
            self.store
                .changes
                .insert(self.revision, Arc::from(self.changed));
            self.store.current_revision = self.revision;
        }
        self.store.current_revision
    }
}
