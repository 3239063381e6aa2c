//! Watchers of one client stream. Every watcher keeps the next revision it owes its client
//! and is fed from the store's history, so a slow reader falls behind without losing or
//! duplicating an event and without any per-watcher buffer growing: what it has not read
//! stays in the MVCC history until compaction, and a watcher overtaken by compaction is
//! canceled with `compact_revision` as etcd does. Pure: the api layer drives it.

use crate::base::{KeyRange, Revision};
use crate::io::planted::{planted, PlantedBug};
use crate::mvcc::{Event, EventKind, Store};
use std::collections::BTreeMap;

/// The reason etcd gives when a client-chosen watch ID is already in use on the stream.
pub const DUPLICATE_WATCH_ID_REASON: &str = "mvcc: duplicate watch ID provided on the WatchStream";

/// Why a watch stream refused a new watcher.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CreateError {
    /// The stream already holds `--watchers-per-stream-max` watchers (a Cairn bound; etcd
    /// has none, so there is no etcd wording for it).
    #[error("cairn: this watch stream already has {0} watchers, the most --watchers-per-stream-max allows")]
    TooManyWatchers(usize),
    /// The client chose an ID already in use on the stream.
    #[error("{DUPLICATE_WATCH_ID_REASON}")]
    IdExists(i64),
}

/// The watch ID etcd uses for stream-wide progress notifications.
pub const PROGRESS_WATCH_ID: i64 = -1;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WatchSpec {
    pub range: KeyRange,
    /// First revision to deliver; 0 = from the next write.
    pub start_revision: Revision,
    pub prev_kv: bool,
    pub filter_put: bool,
    pub filter_delete: bool,
    pub progress_notify: bool,
    pub fragment: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchOutput {
    /// Events of whole revisions up to `revision` (empty for a progress notification).
    Events {
        watch_id: i64,
        revision: Revision,
        events: Vec<Event>,
    },
    /// The watcher needs history that compaction removed; it is canceled.
    Compacted {
        watch_id: i64,
        compact_revision: Revision,
    },
}

#[derive(Debug)]
struct Watcher {
    spec: WatchSpec,
    next_revision: Revision,
}

/// The watchers of one stream, with a bound on how many it may hold.
#[derive(Debug)]
pub struct WatchStream {
    watchers: BTreeMap<i64, Watcher>,
    next_id: i64,
    watchers_max: usize,
}

impl WatchStream {
    pub fn new(watchers_max: usize) -> Self {
        WatchStream {
            watchers: BTreeMap::new(),
            next_id: 0,
            watchers_max,
        }
    }

    /// Registers a watcher; `requested_id` 0 lets the stream choose (etcd numbers from 0).
    pub fn create(
        &mut self,
        spec: WatchSpec,
        requested_id: i64,
        current_revision: Revision,
    ) -> Result<i64, CreateError> {
        if self.watchers.len() >= self.watchers_max {
            return Err(CreateError::TooManyWatchers(self.watchers_max));
        }
        let watch_id = if requested_id != 0 {
            if self.watchers.contains_key(&requested_id) {
                return Err(CreateError::IdExists(requested_id));
            }
            requested_id
        } else {
            while self.watchers.contains_key(&self.next_id) {
                self.next_id += 1;
            }
            self.next_id
        };
        self.next_id = self.next_id.max(watch_id.saturating_add(1));
        // Only 0 means "from now"; a negative start is a revision before every other, so
        // the watcher is canceled as compacted once the store has a compact revision above
        // it (a fresh store's is -1), as etcd's is; otherwise it starts from now (`poll`).
        let next_revision = if spec.start_revision == 0 {
            current_revision + 1
        } else if planted(PlantedBug::WatchStartsAfterStartRevision) {
            spec.start_revision + 1
        } else {
            spec.start_revision
        };
        self.watchers.insert(
            watch_id,
            Watcher {
                spec,
                next_revision,
            },
        );
        Ok(watch_id)
    }

    pub fn cancel(&mut self, watch_id: i64) -> bool {
        self.watchers.remove(&watch_id).is_some()
    }

    pub fn len(&self) -> usize {
        self.watchers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.watchers.is_empty()
    }

    pub fn wants_fragments(&self, watch_id: i64) -> bool {
        self.watchers
            .get(&watch_id)
            .is_some_and(|watcher| watcher.spec.fragment)
    }

    /// True when every watcher has been given everything up to `current_revision`.
    pub fn is_synced(&self, current_revision: Revision) -> bool {
        self.watchers
            .values()
            .all(|watcher| watcher.next_revision > current_revision)
    }

    /// The next outputs owed from `store`: for each watcher behind the store, the events of
    /// as many whole revisions as fit in about `events_max` events.
    pub fn poll(&mut self, store: &Store, events_max: usize) -> Vec<WatchOutput> {
        let current = store.current_revision();
        let mut outputs = Vec::new();
        let mut compacted = Vec::new();
        for (watch_id, watcher) in self.watchers.iter_mut() {
            if watcher.next_revision > current {
                continue;
            }
            if watcher.next_revision < store.compact_revision() {
                outputs.push(WatchOutput::Compacted {
                    watch_id: *watch_id,
                    compact_revision: store.compact_revision(),
                });
                compacted.push(*watch_id);
                continue;
            }
            if watcher.next_revision < 0 {
                // Not compacted past it: etcd reads history from the revision's unsigned
                // encoding, which is after every revision, so such a watcher gets no past
                // events, only new ones.
                watcher.next_revision = current + 1;
                continue;
            }
            let spec = &watcher.spec;
            let (mut events, covered) = store.events(
                &spec.range,
                watcher.next_revision,
                current,
                spec.prev_kv,
                events_max,
            );
            events.retain(|event| match event.kind {
                EventKind::Put => !spec.filter_put,
                EventKind::Delete => !spec.filter_delete,
            });
            if planted(PlantedBug::WatchBatchEndExclusive) && covered > watcher.next_revision {
                events.retain(|event| event.kv.mod_revision < covered);
            }
            watcher.next_revision = covered + 1;
            if !events.is_empty() {
                outputs.push(WatchOutput::Events {
                    watch_id: *watch_id,
                    revision: covered,
                    events,
                });
            }
        }
        for watch_id in compacted {
            self.watchers.remove(&watch_id);
        }
        outputs
    }

    /// Empty responses for synced watchers that asked for progress notifications.
    pub fn progress_notifications(&self, current_revision: Revision) -> Vec<WatchOutput> {
        self.watchers
            .iter()
            .filter(|(_, watcher)| {
                watcher.spec.progress_notify && watcher.next_revision > current_revision
            })
            .map(|(watch_id, _)| WatchOutput::Events {
                watch_id: *watch_id,
                revision: current_revision,
                events: Vec::new(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests;
