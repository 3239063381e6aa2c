//! Linearizability of the KV history, by revisions: etcd gives every write a unique revision
//! and every read a header revision, so a history is linearizable when (1) the revision order
//! agrees with real time (an operation that finished before another began has the lower
//! revision; reads sit at their revision), (2) every linearizable read shows, for its key,
//! the newest write at or below its revision, and (3) every compare-and-swap's outcome
//! matches the state just before its revision. Writes without an answer are maybe-applied:
//! they take part only if something observed them.

use super::{KnownWrites, Violation};
use crate::history::{History, Millis, Request, Response, Revision};

const NAME: &str = "linearizability";

/// An operation placed in revision order.
struct Point {
    operation: usize,
    revision: Revision,
    is_write: bool,
    invoked_ms: Millis,
    completed_ms: Millis,
}

pub fn check(
    history: &History,
    known: &KnownWrites,
    clock_uncertainty_ms: Millis,
) -> Vec<Violation> {
    let mut violations = Vec::new();
    let mut points = Vec::new();
    for (revision, write) in &known.by_revision {
        points.push(Point {
            operation: write.operation,
            revision: *revision,
            is_write: true,
            invoked_ms: write.invoked_ms,
            completed_ms: write.completed_ms.unwrap_or(Millis::MAX),
        });
    }
    for operation in &history.operations {
        let read_revision = match (&operation.request, &operation.response) {
            (
                Request::Get {
                    linearizable: true, ..
                },
                Response::Read { revision, .. },
            ) => Some(*revision),
            // A write that changed nothing (failed CAS, delete of nothing) is a read at its revision.
            (
                _,
                Response::Written {
                    revision,
                    changed: false,
                },
            ) => Some(*revision),
            _ => None,
        };
        if let Some(revision) = read_revision {
            points.push(Point {
                operation: operation.id,
                revision,
                is_write: false,
                invoked_ms: operation.invoked_ms,
                completed_ms: operation.completed_ms,
            });
        }
    }
    check_real_time(&mut points, clock_uncertainty_ms, &mut violations);
    for operation in &history.operations {
        check_result(history, operation, known, &mut violations);
    }
    violations
}

/// For every point, every point that completed before it was invoked must come before it.
/// "Before" must hold by more than `clock_uncertainty_ms` (zero in simulation, where one
/// clock times everything; a few milliseconds against real processes).
fn check_real_time(
    points: &mut [Point],
    clock_uncertainty_ms: Millis,
    violations: &mut Vec<Violation>,
) {
    let mut by_completion: Vec<&Point> = points.iter().collect();
    by_completion.sort_by_key(|point| point.completed_ms);
    let mut by_invocation: Vec<&Point> = points.iter().collect();
    by_invocation.sort_by_key(|point| point.invoked_ms);
    // Highest revision among completed writes and completed reads so far, with its operation.
    let mut newest_write: Option<(Revision, usize)> = None;
    let mut newest_read: Option<(Revision, usize)> = None;
    let mut completed = by_completion.iter().peekable();
    for point in by_invocation {
        while let Some(done) = completed.next_if(|done| {
            done.completed_ms.saturating_add(clock_uncertainty_ms) < point.invoked_ms
        }) {
            let slot = if done.is_write {
                &mut newest_write
            } else {
                &mut newest_read
            };
            if slot.is_none_or(|(revision, _)| done.revision > revision) {
                *slot = Some((done.revision, done.operation));
            }
        }
        for (earlier, what) in [(newest_write, "finished at"), (newest_read, "had read")] {
            let Some((revision, operation)) = earlier else {
                continue;
            };
            // A write needs a higher revision than anything before it; a read may share one.
            let too_low = if point.is_write {
                point.revision <= revision
            } else {
                point.revision < revision
            };
            if too_low {
                violations.push(Violation::new(
                    NAME,
                    format!("op {} at revision {} began after op {operation} {what} revision {revision}", point.operation, point.revision),
                ));
            }
        }
    }
}

fn check_result(
    history: &History,
    operation: &crate::history::Operation,
    known: &KnownWrites,
    violations: &mut Vec<Violation>,
) {
    let key = operation.request.key();
    match (&operation.request, &operation.response) {
        (
            Request::Get {
                linearizable: true, ..
            },
            Response::Read { revision, found },
        ) => {
            let expected = known
                .latest(key, *revision)
                .filter(|(_, write)| write.value.is_some());
            let matches = match (found, expected) {
                (None, None) => true,
                (Some(observed), Some((write_revision, write))) => {
                    observed.mod_revision == write_revision
                        && write.value.as_deref() == Some(observed.value.as_str())
                }
                // Absent although a put is the newest known write: fine if a delete that got
                // no answer could have applied after it.
                (None, Some((write_revision, _))) => known.unobserved_delete_possible(
                    history,
                    key,
                    write_revision,
                    *revision,
                    operation.completed_ms,
                ),
                _ => false,
            };
            if !matches {
                violations.push(Violation::new(
                    NAME,
                    format!("op {} read {key} at revision {revision} as {:?}, but the newest write there is {:?}", operation.id, found.as_ref().map(|o| (&o.value, o.mod_revision)), expected.map(|(r, w)| (w.value.clone(), r))),
                ));
            }
        }
        (Request::CompareAndSwap { expected, .. }, Response::Written { revision, changed }) => {
            // A successful CAS saw the state just before its revision; a failed one, at it.
            let state_at = if *changed { revision - 1 } else { *revision };
            let current = known
                .latest(key, state_at)
                .filter(|(_, write)| write.value.is_some())
                .map_or(0, |(revision, _)| revision);
            let maybe_deleted = current != 0
                && *expected == 0
                && known.unobserved_delete_possible(
                    history,
                    key,
                    current,
                    state_at,
                    operation.completed_ms,
                );
            // A failed compare is also explained by any unanswered write landing unseen.
            let maybe_changed = current == *expected
                && known.unobserved_write_possible(
                    history,
                    key,
                    current,
                    state_at,
                    operation.completed_ms,
                    false,
                );
            let consistent = if *changed {
                current == *expected || maybe_deleted
            } else {
                current != *expected || maybe_changed
            };
            if !consistent {
                violations.push(Violation::new(NAME, format!("op {} compare-and-swap on {key} expecting mod_revision {expected} {} but the key's mod_revision at revision {state_at} was {current}", operation.id, if *changed { "succeeded" } else { "failed" })));
            }
        }
        _ => {}
    }
}
