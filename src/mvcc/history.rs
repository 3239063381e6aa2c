//! The store as one list of versions in revision order, as etcd's `key` bucket holds it
//! (each version under its `(main, sub)` revision), out for a backup and back in from one.

use super::{visible_at, KeyValue, Store};
use crate::base::{Bytes, EtcdError, Revision};
use std::sync::Arc;

/// Every version the store holds, in `(revision, sub-revision)` order, resumable: it holds
/// an O(1) copy of the store and its place, never a borrow.
pub struct Versions {
    store: Store,
    /// Versions older than the compaction point, whose revisions' change lists compaction
    /// dropped: their keys by revision. Sub-revisions there follow key order (the order of
    /// operations is gone with the change list, and nothing can read it any more).
    compacted: Vec<(Revision, Bytes)>,
    position: usize,
    /// The change list being read: its revision, versions and the next index.
    current: Option<(Revision, Arc<[KeyValue]>, usize)>,
    /// The sub-revision the next compacted version gets, and the revision it counts in.
    compacted_sub: (Revision, i64),
}

impl Versions {
    pub fn new(store: Store) -> Versions {
        let mut compacted: Vec<(Revision, Bytes)> = store
            .keys
            .iter()
            .flat_map(|(key, history)| {
                history
                    .iter()
                    .filter(|kv| !store.changes.contains_key(&kv.mod_revision))
                    .map(|kv| (kv.mod_revision, key.clone()))
            })
            .collect();
        compacted.sort();
        Versions {
            store,
            compacted,
            position: 0,
            current: None,
            compacted_sub: (0, 0),
        }
    }

    pub fn rewind(&mut self) {
        self.position = 0;
        self.current = None;
        self.compacted_sub = (0, 0);
    }

    /// The next version with its revision and sub-revision.
    pub fn next_version(&mut self) -> Option<(Revision, i64, KeyValue)> {
        if let Some((revision, key)) = self.compacted.get(self.position) {
            self.position += 1;
            let sub = if self.compacted_sub.0 == *revision {
                self.compacted_sub.1 + 1
            } else {
                0
            };
            self.compacted_sub = (*revision, sub);
            let history = &self.store.keys[key];
            let kv = visible_at(history, *revision).expect("a listed version exists");
            return Some((*revision, sub, kv.clone()));
        }
        loop {
            match &mut self.current {
                Some((revision, versions, index)) if *index < versions.len() => {
                    let sub = *index as i64;
                    *index += 1;
                    return Some((*revision, sub, versions[sub as usize].clone()));
                }
                _ => {
                    let after = self.current.as_ref().map_or(Revision::MIN, |c| c.0 + 1);
                    let (revision, versions) = self.store.changes.range(after..).next()?;
                    self.current = Some((*revision, versions.clone(), 0));
                }
            }
        }
    }
}

/// Builds a store from versions in revision order (a restored backup), then compacts it
/// to the backup's compaction point so it holds exactly what etcd's store would.
pub struct StoreBuilder {
    store: Store,
    last: Option<(Revision, i64)>,
    pending: Vec<KeyValue>,
}

impl Default for StoreBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl StoreBuilder {
    pub fn new() -> StoreBuilder {
        StoreBuilder {
            store: Store::new(),
            last: None,
            pending: Vec::new(),
        }
    }

    /// Adds one version (a tombstone has version 0). Revisions must strictly increase.
    pub fn push(&mut self, revision: Revision, sub: i64, kv: KeyValue) -> Result<(), String> {
        if self.last.is_some_and(|last| last >= (revision, sub)) {
            return Err(format!(
                "revision {revision}.{sub} after {:?}: revisions out of order",
                self.last
            ));
        }
        if revision < 1 || kv.mod_revision != revision {
            return Err(format!(
                "version of {:?} at revision {revision} says mod_revision {}",
                String::from_utf8_lossy(&kv.key),
                kv.mod_revision
            ));
        }
        if self.last.is_some_and(|(last, _)| last != revision) {
            self.flush();
        }
        self.last = Some((revision, sub));
        self.pending.push(kv);
        Ok(())
    }

    /// Moves the store to `revision` without a change (etcd's revision bump marker).
    pub fn advance_to(&mut self, revision: Revision) {
        self.flush();
        self.store.current_revision = self.store.current_revision.max(revision);
    }

    fn flush(&mut self) {
        let Some(revision) = self.pending.first().map(|kv| kv.mod_revision) else {
            return;
        };
        for kv in &self.pending {
            let mut history: Vec<KeyValue> = self
                .store
                .keys
                .get(&kv.key)
                .map(|history| history.as_ref().clone())
                .unwrap_or_default();
            // Two versions of a key in one revision: the later one is the key's, as in etcd.
            if history
                .last()
                .is_some_and(|last| last.mod_revision == revision)
            {
                let replaced = history.pop().expect("checked non-empty");
                self.store.size_bytes -= replaced.size_bytes();
            }
            self.store.size_bytes += kv.size_bytes();
            history.push(kv.clone());
            self.store.keys.insert(kv.key.clone(), Arc::new(history));
        }
        let versions = std::mem::take(&mut self.pending);
        self.store.changes.insert(revision, Arc::from(versions));
        self.store.current_revision = self.store.current_revision.max(revision);
    }

    /// The store, compacted at `compact_revision` (none when below 1).
    pub fn finish(mut self, compact_revision: Revision) -> Result<Store, EtcdError> {
        self.flush();
        if compact_revision >= 1 {
            self.store.current_revision = self.store.current_revision.max(compact_revision);
            self.store.compact(compact_revision)?;
        }
        Ok(self.store)
    }
}
