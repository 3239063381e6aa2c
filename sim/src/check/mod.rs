//! Checkers over a `History`. Each returns violations; an empty list means the history is
//! consistent with what that checker guarantees. One checker per file.

pub mod auth;
pub mod convergence;
pub mod durability;
pub mod lease;
pub mod linearizability;
pub mod liveness;
pub mod operator;
pub mod watch;

use crate::history::{History, Millis, Request, Response, Revision};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub checker: &'static str,
    pub detail: String,
}

impl Violation {
    pub fn new(checker: &'static str, detail: impl Into<String>) -> Self {
        Violation {
            checker,
            detail: detail.into(),
        }
    }
}

/// A write the history proves happened at a revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write {
    pub key: String,
    /// None for a delete.
    pub value: Option<String>,
    /// The operation that made it.
    pub operation: usize,
    pub invoked_ms: Millis,
    /// None for a write whose client got no answer (proven by an observation).
    pub completed_ms: Option<Millis>,
}

/// Every write with a known revision: acknowledged ones, and indeterminate ones that a read,
/// a watch event or the final state revealed. Two different writes claiming one revision is a
/// violation (it is how lost and rewritten history shows).
#[derive(Debug, Default)]
pub struct KnownWrites {
    pub by_revision: BTreeMap<Revision, Write>,
}

impl KnownWrites {
    pub fn build(history: &History) -> (KnownWrites, Vec<Violation>) {
        let mut known = KnownWrites::default();
        let mut violations = Vec::new();
        for operation in &history.operations {
            if let Response::Written {
                revision,
                changed: true,
            } = operation.response
            {
                let write = Write {
                    key: operation.request.key().to_string(),
                    value: operation.request.written_value().map(str::to_string),
                    operation: operation.id,
                    invoked_ms: operation.invoked_ms,
                    completed_ms: Some(operation.completed_ms),
                };
                known.record(revision, write, &mut violations);
            }
        }
        let mut observations: Vec<(String, Revision, Option<String>)> = Vec::new();
        for operation in &history.operations {
            if let Response::Read {
                found: Some(observed),
                ..
            } = &operation.response
            {
                observations.push((
                    operation.request.key().to_string(),
                    observed.mod_revision,
                    Some(observed.value.clone()),
                ));
            }
        }
        for log in &history.watches {
            for message in &log.messages {
                if let crate::history::WatchMessage::Events { events, .. } = message {
                    for event in events {
                        observations.push((event.key.clone(), event.revision, event.value.clone()));
                        // A prev_kv reveals a write too: an indeterminate one may be seen
                        // nowhere else.
                        if let Some(prev) = &event.prev {
                            observations.push((
                                event.key.clone(),
                                prev.revision,
                                Some(prev.value.clone()),
                            ));
                        }
                    }
                }
            }
        }
        for (key, observed) in &history.final_state.keys {
            observations.push((
                key.clone(),
                observed.mod_revision,
                Some(observed.value.clone()),
            ));
        }
        for (key, revision, value) in observations {
            known.observe(history, &key, revision, value, &mut violations);
        }
        (known, violations)
    }

    fn record(&mut self, revision: Revision, write: Write, violations: &mut Vec<Violation>) {
        match self.by_revision.get(&revision) {
            Some(existing) if existing.operation != write.operation => violations.push(Violation::new(
                "linearizability",
                format!("revision {revision} was given to two writes: op {} ({} = {:?}) and op {} ({} = {:?})", existing.operation, existing.key, existing.value, write.operation, write.key, write.value),
            )),
            Some(_) => {}
            None => {
                self.by_revision.insert(revision, write);
            }
        }
    }

    /// Accounts for `key` having `value` (None = deleted) at `revision`.
    fn observe(
        &mut self,
        history: &History,
        key: &str,
        revision: Revision,
        value: Option<String>,
        violations: &mut Vec<Violation>,
    ) {
        if let Some(write) = self.by_revision.get(&revision) {
            if write.key != key || write.value != value {
                violations.push(Violation::new(
                    "linearizability",
                    format!("{key} = {value:?} was observed at revision {revision}, which op {} wrote as {} = {:?}", write.operation, write.key, write.value),
                ));
            }
            return;
        }
        let bound = self.placed_operations();
        // Of the unanswered writes that could explain the observation, the one invoked first
        // constrains the order least: binding a later one (say, the first to complete) can
        // make a correct history look out of real-time order.
        let candidate = history
            .operations
            .iter()
            .filter(|operation| {
                matches!(operation.response, Response::Indeterminate(_))
                    && operation.request.key() == key
                    && !bound.contains(&operation.id)
                    && match (&operation.request, &value) {
                        (Request::Delete { .. }, None) => true,
                        (request, Some(value)) => request.written_value() == Some(value.as_str()),
                        _ => false,
                    }
            })
            .min_by_key(|operation| (operation.invoked_ms, operation.id));
        match candidate {
            Some(operation) => {
                let write = Write { key: key.to_string(), value, operation: operation.id, invoked_ms: operation.invoked_ms, completed_ms: None };
                self.by_revision.insert(revision, write);
            }
            // A delete nobody asked for is a lease expiry or revoke; those keys are not ours.
            None if value.is_none() => {}
            None => violations.push(Violation::new("linearizability", format!("{key} = {value:?} was observed at revision {revision} but no operation wrote it"))),
        }
    }

    /// Whether a delete of `key` whose client got no answer, invoked before `before_ms` and
    /// not yet placed anywhere, could have taken effect in (`after`, `through`]: some
    /// revision there must be unclaimed by known writes.
    pub fn unobserved_delete_possible(
        &self,
        history: &History,
        key: &str,
        after: Revision,
        through: Revision,
        before_ms: Millis,
    ) -> bool {
        self.unobserved_write_possible(history, key, after, through, before_ms, true)
    }

    /// Like `unobserved_delete_possible`, for any write (or only deletes).
    pub fn unobserved_write_possible(
        &self,
        history: &History,
        key: &str,
        after: Revision,
        through: Revision,
        before_ms: Millis,
        deletes_only: bool,
    ) -> bool {
        let bound = self.placed_operations();
        let candidate = history.operations.iter().any(|operation| {
            (operation.request.is_write()
                && (!deletes_only || matches!(operation.request, Request::Delete { .. })))
                && matches!(operation.response, Response::Indeterminate(_))
                && operation.request.key() == key
                && operation.invoked_ms < before_ms
                && !bound.contains(&operation.id)
        });
        candidate && (after + 1..=through).any(|revision| !self.by_revision.contains_key(&revision))
    }

    /// Operations already placed at a revision.
    fn placed_operations(&self) -> std::collections::BTreeSet<usize> {
        self.by_revision
            .values()
            .map(|write| write.operation)
            .collect()
    }

    /// The newest known write to `key` at or below `revision`.
    pub fn latest(&self, key: &str, revision: Revision) -> Option<(Revision, &Write)> {
        self.by_revision
            .range(..=revision)
            .rev()
            .find(|(_, write)| write.key == key)
            .map(|(revision, write)| (*revision, write))
    }
}

/// Runs every checker.
/// Every checker's name, as violations carry it and scenarios select it.
pub const CHECKERS: [&str; 8] = [
    "linearizability",
    "watch",
    "lease",
    "durability",
    "convergence",
    "liveness",
    "auth",
    "operator",
];

pub fn check_all(history: &History, options: &CheckOptions) -> Vec<Violation> {
    let (known, mut violations) = KnownWrites::build(history);
    violations.extend(linearizability::check(
        history,
        &known,
        options.clock_uncertainty_ms,
    ));
    violations.extend(watch::check(history, &known));
    violations.extend(lease::check(
        history,
        options.lease_expiry_bound_ms,
        options.clock_uncertainty_ms,
        options.clock_rate_bound_ppm,
    ));
    violations.extend(durability::check(history, &known));
    violations.extend(convergence::check(history));
    violations.extend(operator::check(history));
    violations.extend(liveness::check(history, options.recovery_bound_ms));
    violations.extend(auth::check(history));
    violations
}

#[derive(Debug, Clone, Copy)]
pub struct CheckOptions {
    /// How long past its TTL a lease's keys may linger once faults stopped.
    pub lease_expiry_bound_ms: Millis,
    /// How soon after faults stop a write must succeed.
    pub recovery_bound_ms: Millis,
    /// How far apart two timestamps must be to prove an order: 0 in simulation (one clock,
    /// no scheduling between a call and its timestamp); against real processes, timestamps
    /// are whole milliseconds taken around each call by a thread that may be descheduled.
    pub clock_uncertainty_ms: Millis,
    /// How fast a member's clock may run, in parts per million, for leases to hold
    /// (`clocks::CLOCK_RATE_BOUND_PPM` in simulation; 0 for real processes on one host).
    pub clock_rate_bound_ppm: i64,
}

#[cfg(test)]
pub(crate) mod tests;
