//! The leader's expiry queue. Only a leader holds deadlines; followers hold none, so a
//! deposed or partitioned leader stops deciding expiry the moment it stops being leader.

use crate::base::LeaseId;
use std::collections::{BTreeMap, BTreeSet};

/// Deadlines in milliseconds of the `io` clock, ordered for cheap "what has expired".
#[derive(Debug, Default)]
pub struct ExpiryQueue {
    by_deadline: BTreeSet<(u64, LeaseId)>,
    deadline_of: BTreeMap<LeaseId, u64>,
}

impl ExpiryQueue {
    /// Sets lease `id` to expire `ttl_ms` after `now_ms`.
    pub fn refresh(&mut self, id: LeaseId, now_ms: u64, ttl_ms: u64) {
        self.remove(id);
        let deadline_ms = now_ms.saturating_add(ttl_ms);
        self.by_deadline.insert((deadline_ms, id));
        self.deadline_of.insert(id, deadline_ms);
    }

    /// Moves the deadline later only, never earlier (leader changes never shorten a lease).
    pub fn extend_to(&mut self, id: LeaseId, now_ms: u64, ttl_ms: u64) {
        let wanted_ms = now_ms.saturating_add(ttl_ms);
        if self
            .deadline_of
            .get(&id)
            .is_none_or(|current| *current < wanted_ms)
        {
            self.refresh(id, now_ms, ttl_ms);
        }
    }

    pub fn remove(&mut self, id: LeaseId) {
        if let Some(deadline_ms) = self.deadline_of.remove(&id) {
            self.by_deadline.remove(&(deadline_ms, id));
        }
    }

    pub fn clear(&mut self) {
        self.by_deadline.clear();
        self.deadline_of.clear();
    }

    /// Milliseconds left for lease `id`, if the queue tracks it.
    pub fn remaining_ms(&self, id: LeaseId, now_ms: u64) -> Option<u64> {
        self.deadline_of
            .get(&id)
            .map(|deadline_ms| deadline_ms.saturating_sub(now_ms))
    }

    /// Up to `count_max` leases whose deadline has passed, earliest first.
    pub fn expired(&self, now_ms: u64, count_max: usize) -> Vec<LeaseId> {
        self.by_deadline
            .iter()
            .take_while(|(deadline_ms, _)| *deadline_ms <= now_ms)
            .take(count_max)
            .map(|(_, id)| *id)
            .collect()
    }

    pub fn len(&self) -> usize {
        self.deadline_of.len()
    }

    pub fn is_empty(&self) -> bool {
        self.deadline_of.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expires_in_deadline_order_and_extends_only_forward() {
        let mut queue = ExpiryQueue::default();
        queue.refresh(1, 0, 3000);
        queue.refresh(2, 0, 1000);
        queue.refresh(3, 0, 2000);
        assert_eq!(queue.expired(999, 10), Vec::<LeaseId>::new());
        assert_eq!(queue.expired(2500, 10), vec![2, 3]);
        assert_eq!(queue.expired(2500, 1), vec![2]);
        queue.extend_to(1, 0, 1000);
        assert_eq!(
            queue.remaining_ms(1, 0),
            Some(3000),
            "extend_to never shortens"
        );
        queue.extend_to(1, 2000, 5000);
        assert_eq!(queue.remaining_ms(1, 2000), Some(5000));
        queue.remove(2);
        assert_eq!(queue.expired(10_000, 10), vec![3, 1]);
    }
}
