//! Range queries with every option of etcd's RangeRequest, applied in etcd's order:
//! fetch (limit + 1 when nothing else needs the whole range), filter, sort, truncate.

use super::{KeyValue, Store};
use crate::base::{EtcdError, KeyRange, Revision};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum SortOrder {
    #[default]
    None,
    Ascend,
    Descend,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum SortTarget {
    #[default]
    Key,
    Version,
    Create,
    Mod,
    Value,
}

/// etcd's RangeRequest, minus `serializable` (a consistency choice made above the store).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RangeQuery {
    pub range: KeyRange,
    pub limit: i64,
    pub revision: Revision,
    pub sort_order: SortOrder,
    pub sort_target: SortTarget,
    pub keys_only: bool,
    pub count_only: bool,
    pub min_mod_revision: Revision,
    pub max_mod_revision: Revision,
    pub min_create_revision: Revision,
    pub max_create_revision: Revision,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RangeResult {
    pub kvs: Vec<KeyValue>,
    pub more: bool,
    /// Keys in the range at the revision, before limit and filters (as etcd counts).
    pub count: i64,
}

impl RangeQuery {
    fn has_filters(&self) -> bool {
        self.min_mod_revision != 0
            || self.max_mod_revision != 0
            || self.min_create_revision != 0
            || self.max_create_revision != 0
    }

    fn passes_filters(&self, kv: &KeyValue) -> bool {
        (self.min_mod_revision == 0 || kv.mod_revision >= self.min_mod_revision)
            && (self.max_mod_revision == 0 || kv.mod_revision <= self.max_mod_revision)
            && (self.min_create_revision == 0 || kv.create_revision >= self.min_create_revision)
            && (self.max_create_revision == 0 || kv.create_revision <= self.max_create_revision)
    }

    /// The sort etcd actually performs: results already come in ascending key order, so
    /// ascending by key is a no-op, and a non-key target with no order sorts ascending.
    fn effective_order(&self) -> SortOrder {
        match (self.sort_target, self.sort_order) {
            (SortTarget::Key, SortOrder::Ascend) => SortOrder::None,
            (SortTarget::Key, order) => order,
            (_, SortOrder::None) => SortOrder::Ascend,
            (_, order) => order,
        }
    }
}

impl Store {
    /// Answers `query` at `query.revision` (0 = `current`). `current` is the newest revision
    /// the caller may read: the store's, or a write's own inside a txn.
    pub fn range_at(
        &self,
        query: &RangeQuery,
        current: Revision,
    ) -> Result<RangeResult, EtcdError> {
        let revision = if query.revision <= 0 {
            current
        } else if query.revision > current {
            return Err(EtcdError::FutureRevision);
        } else if query.revision < self.compact_revision {
            return Err(EtcdError::Compacted);
        } else {
            query.revision
        };
        let needs_whole_range = query.sort_order != SortOrder::None || query.has_filters();
        let fetch_max = if query.limit > 0 && !needs_whole_range {
            query.limit as usize + 1
        } else {
            usize::MAX
        };
        let mut count = 0i64;
        let mut kvs = Vec::new();
        self.visit_range(&query.range, revision, |kv| {
            count += 1;
            if !query.count_only && kvs.len() < fetch_max {
                kvs.push(kv.clone());
            }
            true
        });
        if query.count_only {
            return Ok(RangeResult {
                kvs: Vec::new(),
                more: false,
                count,
            });
        }
        kvs.retain(|kv| query.passes_filters(kv));
        sort(&mut kvs, query.sort_target, query.effective_order());
        let mut more = false;
        if query.limit > 0 && kvs.len() > query.limit as usize {
            kvs.truncate(query.limit as usize);
            more = true;
        }
        if query.keys_only {
            for kv in &mut kvs {
                kv.value = Default::default();
            }
        }
        Ok(RangeResult { kvs, more, count })
    }

    /// Answers `query` against the committed store.
    pub fn range(&self, query: &RangeQuery) -> Result<RangeResult, EtcdError> {
        self.range_at(query, self.current_revision)
    }
}

fn sort(kvs: &mut [KeyValue], target: SortTarget, order: SortOrder) {
    if order == SortOrder::None {
        return;
    }
    // Stable in both directions, so ties keep key order (as etcd's sort.Sort does for the
    // small results its insertion sort handles) and every member returns the same sequence.
    let compare = |a: &KeyValue, b: &KeyValue| match target {
        SortTarget::Key => a.key.cmp(&b.key),
        SortTarget::Version => a.version.cmp(&b.version),
        SortTarget::Create => a.create_revision.cmp(&b.create_revision),
        SortTarget::Mod => a.mod_revision.cmp(&b.mod_revision),
        SortTarget::Value => a.value.cmp(&b.value),
    };
    if order == SortOrder::Descend {
        kvs.sort_by(|a, b| compare(b, a));
    } else {
        kvs.sort_by(compare);
    }
}
