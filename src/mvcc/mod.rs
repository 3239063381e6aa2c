//! Multi-version key-value store as etcd defines it: one global revision; per key a history
//! of versions with create_revision, mod_revision, version and lease; deletes are tombstones;
//! history readable at any revision at or above the compaction point.
//!
//! Built on `im` persistent maps so that a clone is O(1): readers and snapshots take a clone
//! and never block the writer. Pure and deterministic: no clock, no I/O, no randomness.
//! It does not know about leases beyond storing a key's lease ID, nor about raft.

mod history;
mod query;
mod write;

pub use history::{StoreBuilder, Versions};
pub use query::{RangeQuery, RangeResult, SortOrder, SortTarget};
pub use write::WriteTxn;

use crate::base::{Bytes, EtcdError, KeyRange, LeaseId, Revision};
use crate::io::planted::{planted, PlantedBug};
use im::OrdMap;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// One version of one key, exactly etcd's `mvccpb.KeyValue`. A tombstone (the version written
/// by a delete) has `version == 0`, `create_revision == 0` and an empty value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyValue {
    pub key: Bytes,
    pub create_revision: Revision,
    pub mod_revision: Revision,
    pub version: i64,
    pub value: Bytes,
    pub lease: LeaseId,
}

impl KeyValue {
    pub fn is_tombstone(&self) -> bool {
        self.version == 0
    }

    fn tombstone(key: Bytes, revision: Revision) -> Self {
        KeyValue {
            key,
            create_revision: 0,
            mod_revision: revision,
            version: 0,
            value: Bytes::new(),
            lease: 0,
        }
    }

    /// Bytes this version accounts for in `--quota-backend-bytes` and `dbSize`.
    fn size_bytes(&self) -> u64 {
        // Key and value plus the four integers and index overhead, roughly as stored.
        (self.key.len() + self.value.len() + 48) as u64
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventKind {
    Put,
    Delete,
}

/// A change as watchers see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub kind: EventKind,
    pub kv: KeyValue,
    pub prev_kv: Option<KeyValue>,
}

/// The store. Cloning is O(1) and the clone is an immutable point-in-time view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Store {
    /// Every key's versions in increasing mod_revision, compacted ones removed.
    /// A key's history is a shared, copy-on-write vector: histories are short (compaction
    /// trims them), and a persistent vector's chunk would cost kilobytes per key.
    #[serde(with = "crate::base::serde_im::ord_map")]
    keys: OrdMap<Bytes, Arc<Vec<KeyValue>>>,
    /// What each revision changed, in operation order: the new version, or a tombstone.
    /// This is the history watchers catch up from.
    #[serde(with = "crate::base::serde_im::ord_map")]
    changes: OrdMap<Revision, Arc<[KeyValue]>>,
    current_revision: Revision,
    compact_revision: Revision,
    size_bytes: u64,
}

impl Default for Store {
    fn default() -> Self {
        Self::new()
    }
}

impl Store {
    /// A fresh store is at revision 1, as etcd's is.
    pub fn new() -> Self {
        Store {
            keys: OrdMap::new(),
            changes: OrdMap::new(),
            current_revision: 1,
            // Never compacted: etcd's -1, so compacting to 0 on a fresh store succeeds
            // once, as it does in etcd.
            compact_revision: -1,
            size_bytes: 0,
        }
    }

    pub fn current_revision(&self) -> Revision {
        self.current_revision
    }

    /// The revision of the last compaction (0 if never compacted).
    pub fn compact_revision(&self) -> Revision {
        self.compact_revision
    }

    /// Approximate bytes held, counted the same way on every member.
    pub fn size_bytes(&self) -> u64 {
        self.size_bytes
    }

    /// Number of keys that currently exist (not deleted).
    pub fn key_count(&self) -> usize {
        self.keys
            .values()
            .filter(|history| history.last().is_some_and(|kv| !kv.is_tombstone()))
            .count()
    }

    /// The version of `key` visible at `revision`, if the key existed then.
    pub fn get(&self, key: &[u8], revision: Revision) -> Option<KeyValue> {
        let history = self.keys.get(key)?;
        visible_at(history, revision)
            .filter(|kv| !kv.is_tombstone())
            .cloned()
    }

    /// Checks that `revision` (0 = current) is readable; returns the concrete revision.
    pub fn readable_revision(&self, revision: Revision) -> Result<Revision, EtcdError> {
        if revision <= 0 {
            return Ok(self.current_revision);
        }
        if revision > self.current_revision {
            return Err(EtcdError::FutureRevision);
        }
        if revision < self.compact_revision {
            return Err(EtcdError::Compacted);
        }
        Ok(revision)
    }

    /// The revision a client's HashKV hashes: as `readable_revision`, except that etcd's
    /// `HashByRev` refuses the compact revision itself too (a hash needs the history up to
    /// it, and the compaction dropped what it superseded).
    pub fn hashable_revision(&self, revision: Revision) -> Result<Revision, EtcdError> {
        if revision > 0 && revision <= self.compact_revision {
            return Err(EtcdError::Compacted);
        }
        self.readable_revision(revision)
    }

    /// Visits every key in `range` that exists at `revision`, in key order, until `visit`
    /// returns false.
    pub fn visit_range(
        &self,
        range: &KeyRange,
        revision: Revision,
        mut visit: impl FnMut(&KeyValue) -> bool,
    ) {
        use std::ops::Bound;
        if range.is_empty() {
            return;
        }
        let (start, end) = range.bounds();
        let upper = match &end {
            Some(end) => Bound::Excluded(end.as_slice()),
            None => Bound::Unbounded,
        };
        for (_, history) in self
            .keys
            .range::<_, [u8]>((Bound::Included(start.as_slice()), upper))
        {
            if let Some(kv) = visible_at(history, revision) {
                if !kv.is_tombstone() && !visit(kv) {
                    return;
                }
            }
        }
    }

    /// Events of revisions `from..=to` that touch `range`, in revision then operation order,
    /// each with the key's previous version when `with_prev_kv`. Stops after the revision at
    /// which at least `events_max` events were collected (a revision is never split).
    /// Returns the events and the last revision fully covered.
    pub fn events(
        &self,
        range: &KeyRange,
        from: Revision,
        to: Revision,
        with_prev_kv: bool,
        events_max: usize,
    ) -> (Vec<Event>, Revision) {
        let mut events = Vec::new();
        let mut covered = from - 1;
        for (revision, changed) in self.changes.range(from..=to) {
            for kv in changed.iter().filter(|kv| range.contains(&kv.key)) {
                let prev_kv = if with_prev_kv {
                    self.get(&kv.key, revision - 1)
                } else {
                    None
                };
                let kind = if kv.is_tombstone() {
                    EventKind::Delete
                } else {
                    EventKind::Put
                };
                events.push(Event {
                    kind,
                    kv: kv.clone(),
                    prev_kv,
                });
            }
            covered = *revision;
            if events.len() >= events_max {
                break;
            }
        }
        if events.len() < events_max {
            covered = to;
        }
        (events, covered)
    }

    /// etcd's HashKV: a hash of every version with mod_revision <= `revision`, in key order,
    /// equal on every member that applied the same log.
    pub fn hash_kv(&self, revision: Revision) -> u32 {
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(&self.compact_revision.to_be_bytes());
        for (key, history) in self.keys.iter() {
            for kv in history.iter().take_while(|kv| kv.mod_revision <= revision) {
                hasher.update(&(key.len() as u64).to_be_bytes());
                hasher.update(key);
                hasher.update(&kv.create_revision.to_be_bytes());
                hasher.update(&kv.mod_revision.to_be_bytes());
                hasher.update(&kv.version.to_be_bytes());
                hasher.update(&kv.lease.to_be_bytes());
                hasher.update(&(kv.value.len() as u64).to_be_bytes());
                hasher.update(&kv.value);
            }
        }
        hasher.finalize()
    }

    /// Compacts history: after this, reads below `revision` fail with `Compacted`, and only
    /// the newest version at or below `revision` of each live key is kept.
    pub fn compact(&mut self, revision: Revision) -> Result<(), EtcdError> {
        if revision <= self.compact_revision {
            return Err(EtcdError::Compacted);
        }
        if revision > self.current_revision {
            return Err(EtcdError::FutureRevision);
        }
        // Only keys changed since the last compaction can hold versions to remove: every other
        // key was reduced to one live version by an earlier compaction.
        let mut touched: Vec<Bytes> = Vec::new();
        for (_, changed) in self.changes.range(self.compact_revision..=revision) {
            touched.extend(changed.iter().map(|kv| kv.key.clone()));
        }
        touched.sort();
        touched.dedup();
        for key in touched {
            let Some(history) = self.keys.get(&key) else {
                continue;
            };
            let newest_at_or_below = history.iter().rposition(|kv| kv.mod_revision <= revision);
            let Some(position) = newest_at_or_below else {
                continue;
            };
            let keep_from = if history[position].is_tombstone()
                || planted(PlantedBug::CompactionDropsNewestVersion)
            {
                position + 1
            } else {
                position
            };
            if keep_from == 0 {
                continue;
            }
            let removed: u64 = history
                .iter()
                .take(keep_from)
                .map(KeyValue::size_bytes)
                .sum();
            self.size_bytes -= removed;
            let kept = history[keep_from..].to_vec();
            if kept.is_empty() {
                self.keys.remove(&key);
            } else {
                self.keys.insert(key, Arc::new(kept));
            }
        }
        let (_, at_revision, newer) = self.changes.split_lookup(&revision);
        self.changes = newer;
        if let Some(changed) = at_revision {
            self.changes.insert(revision, changed);
        }
        self.compact_revision = revision;
        Ok(())
    }

    /// Moves the revision `amount` ahead with no change (a restore's bump, so no watcher or
    /// cache sees revisions go backwards); with `mark_compacted` also compacts there, so a
    /// watch from an older revision is told it was compacted instead of missing events.
    pub fn bump_revision(&mut self, amount: Revision, mark_compacted: bool) {
        assert!(amount >= 0, "a revision bump moves forward");
        self.current_revision += amount;
        if mark_compacted && self.current_revision > self.compact_revision {
            self.compact(self.current_revision)
                .expect("compacting at the current revision, past the last compaction");
        }
    }

    /// Starts a write: every change made through it carries revision `current + 1`, and the
    /// revision advances only if something changed.
    pub fn write(&mut self) -> WriteTxn<'_> {
        WriteTxn::new(self)
    }
}

/// The version visible at `revision`: the newest with mod_revision <= revision.
fn visible_at(history: &[KeyValue], revision: Revision) -> Option<&KeyValue> {
    let last = history.last()?;
    if last.mod_revision <= revision {
        return Some(last);
    }
    match history.binary_search_by(|kv| kv.mod_revision.cmp(&revision)) {
        Ok(index) => Some(&history[index]),
        Err(insert_at) => insert_at.checked_sub(1).map(|index| &history[index]),
    }
}

#[cfg(test)]
mod tests;
