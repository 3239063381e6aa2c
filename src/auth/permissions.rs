//! Key-range permissions: what a grant may name, and whether a user's grants cover a
//! request's range (etcd's `range_perm_cache`, merged intervals instead of an interval tree).

use crate::base::KeyRange;
use serde::{Deserialize, Serialize};

/// etcd's `authpb.Permission_Type`, with its wire numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Access {
    Read = 0,
    Write = 1,
    ReadWrite = 2,
}

impl Access {
    pub fn from_wire(number: i32) -> Option<Access> {
        match number {
            0 => Some(Access::Read),
            1 => Some(Access::Write),
            2 => Some(Access::ReadWrite),
            _ => None,
        }
    }

    /// Whether a grant of `self` allows an operation needing `needed` (Read or Write).
    pub fn allows(self, needed: Access) -> bool {
        self == Access::ReadWrite || self == needed
    }
}

/// etcd's `isValidPermissionRange`: a non-empty key, and an end that is empty (one key),
/// after the key, or `"\0"` (every key from it).
pub fn is_valid_grant(range: &KeyRange) -> bool {
    !range.start.is_empty()
        && (range.is_single_key()
            || range.is_unbounded()
            || range.start.as_ref() < range.end.as_ref())
}

/// Whether the union of `granted` covers every key of `wanted`. A single key needs one
/// grant holding it; a range needs the merged grants to span it without a gap.
pub fn covered<'a>(granted: impl Iterator<Item = &'a KeyRange>, wanted: &KeyRange) -> bool {
    if wanted.is_single_key() {
        let mut granted = granted;
        return granted.any(|range| range.contains(&wanted.start));
    }
    // Half-open intervals, None as the end meaning unbounded, sorted by start.
    let mut intervals: Vec<(Vec<u8>, Option<Vec<u8>>)> = granted.map(KeyRange::bounds).collect();
    intervals.sort();
    let (wanted_start, wanted_end) = wanted.bounds();
    // Walk the merged intervals from the wanted start, extending how far is covered.
    let mut covered_to: Option<Option<Vec<u8>>> = None;
    for (start, end) in intervals {
        let reach = match &covered_to {
            None if start <= wanted_start => {
                if end.as_ref().is_some_and(|end| *end <= wanted_start) {
                    continue;
                }
                end
            }
            None => continue,
            Some(None) => break,
            Some(Some(covered_end)) if start <= *covered_end => match (&end, covered_end) {
                (None, _) => None,
                (Some(end), covered_end) => Some(end.max(covered_end).clone()),
            },
            Some(Some(_)) => break,
        };
        covered_to = Some(reach);
    }
    match (covered_to, wanted_end) {
        (Some(None), _) => true,
        (Some(Some(covered_end)), Some(wanted_end)) => covered_end >= wanted_end,
        _ => false,
    }
}
