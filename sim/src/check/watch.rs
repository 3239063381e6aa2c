//! The watch guarantees, per watcher and across its resumptions: ordered (revisions never go
//! back), unique (no event twice), atomic (a revision's events arrive together), reliable (no
//! known write in range is skipped between the start and the last revision delivered),
//! resumable (a resumed watcher continues exactly after what it saw), bookmarkable (after a
//! progress notification at R, nothing at or below R arrives), correct (values and prev_kv
//! match the writes), and created first.

use super::{KnownWrites, Violation};
use crate::history::{History, Revision, WatchLog, WatchMessage};
use std::collections::BTreeSet;

const NAME: &str = "watch";

pub fn check(history: &History, known: &KnownWrites) -> Vec<Violation> {
    let mut violations = Vec::new();
    for log in &history.watches {
        check_log(log, known, &mut violations);
    }
    violations
}

fn check_log(log: &WatchLog, known: &KnownWrites, violations: &mut Vec<Violation>) {
    let watcher = log.watcher;
    let mut seen: BTreeSet<(Revision, String)> = BTreeSet::new();
    // The revision from which delivery must be complete, and the last revision delivered.
    let mut complete_from: Option<Revision> = None;
    let mut last_revision: Revision = 0;
    let mut progress_floor: Revision = 0;
    let mut expecting_created = true;
    for message in &log.messages {
        match message {
            WatchMessage::Created { start_revision } => {
                expecting_created = false;
                if complete_from.is_none() {
                    complete_from = Some(*start_revision);
                } else if *start_revision != last_revision + 1 && last_revision > 0 {
                    violations.push(Violation::new(NAME, format!("watcher {watcher} resumed at {start_revision}, not right after revision {last_revision}")));
                }
            }
            WatchMessage::Events { events, .. } => {
                if expecting_created {
                    violations.push(Violation::new(
                        NAME,
                        format!("watcher {watcher} got events before its created response"),
                    ));
                }
                let revisions: BTreeSet<Revision> =
                    events.iter().map(|event| event.revision).collect();
                for event in events {
                    if event.revision < last_revision {
                        violations.push(Violation::new(
                            NAME,
                            format!(
                                "watcher {watcher}: event at {} after one at {last_revision}",
                                event.revision
                            ),
                        ));
                    }
                    if event.revision <= progress_floor {
                        violations.push(Violation::new(NAME, format!("watcher {watcher}: event at {} after a progress notification at {progress_floor}", event.revision)));
                    }
                    if !event.key.starts_with(&log.prefix) {
                        violations.push(Violation::new(
                            NAME,
                            format!(
                                "watcher {watcher} on {} got an event for {}",
                                log.prefix, event.key
                            ),
                        ));
                    }
                    if !seen.insert((event.revision, event.key.clone())) {
                        violations.push(Violation::new(
                            NAME,
                            format!(
                                "watcher {watcher} got {} at {} twice",
                                event.key, event.revision
                            ),
                        ));
                    }
                    check_event_against_writes(watcher, log.with_prev_kv, event, known, violations);
                    last_revision = last_revision.max(event.revision);
                }
                // Atomic: every known write of a delivered revision in range is in this response.
                for revision in revisions {
                    if let Some(write) = known
                        .by_revision
                        .get(&revision)
                        .filter(|write| write.key.starts_with(&log.prefix))
                    {
                        if !seen.contains(&(revision, write.key.clone())) {
                            violations.push(Violation::new(
                                NAME,
                                format!(
                                    "watcher {watcher}: revision {revision} delivered without {}",
                                    write.key
                                ),
                            ));
                        }
                    }
                }
            }
            WatchMessage::Progress { revision } => {
                check_complete(
                    watcher,
                    log,
                    known,
                    &seen,
                    complete_from,
                    *revision,
                    violations,
                );
                progress_floor = progress_floor.max(*revision);
                last_revision = last_revision.max(*revision);
            }
            WatchMessage::Compacted { compact_revision } => {
                // A watcher overtaken by compaction is told so and loses what it had not
                // received: complete up to what it got, then again from the compaction point.
                check_complete(
                    watcher,
                    log,
                    known,
                    &seen,
                    complete_from,
                    last_revision,
                    violations,
                );
                complete_from = Some(*compact_revision);
                last_revision = last_revision.max(compact_revision - 1);
                expecting_created = true;
            }
            WatchMessage::Broken => expecting_created = true,
            WatchMessage::EndedNoLeader => {
                if !log.requires_leader {
                    violations.push(Violation::new(
                        NAME,
                        format!(
                            "watcher {watcher}: a stream opened without hasleader ended with \"no leader\""
                        ),
                    ));
                }
                expecting_created = true;
            }
            WatchMessage::EndedWithOk => {
                violations.push(Violation::new(
                    NAME,
                    format!("watcher {watcher}: the server ended its live stream with OK"),
                ));
                expecting_created = true;
            }
        }
    }
    check_complete(
        watcher,
        log,
        known,
        &seen,
        complete_from,
        last_revision,
        violations,
    );
}

/// Reliable: every known write under the prefix in [from, through] was delivered.
fn check_complete(
    watcher: usize,
    log: &WatchLog,
    known: &KnownWrites,
    seen: &BTreeSet<(Revision, String)>,
    from: Option<Revision>,
    through: Revision,
    violations: &mut Vec<Violation>,
) {
    let Some(from) = from else { return };
    if through < from {
        return;
    }
    for (revision, write) in known.by_revision.range(from..=through) {
        if write.key.starts_with(&log.prefix) && !seen.contains(&(*revision, write.key.clone())) {
            violations.push(Violation::new(NAME, format!("watcher {watcher} missed {} at revision {revision} (delivered through {through})", write.key)));
        }
    }
}

fn check_event_against_writes(
    watcher: usize,
    with_prev_kv: bool,
    event: &crate::history::WatchEvent,
    known: &KnownWrites,
    violations: &mut Vec<Violation>,
) {
    if let Some(write) = known.by_revision.get(&event.revision) {
        if write.key == event.key && write.value != event.value {
            violations.push(Violation::new(
                NAME,
                format!(
                    "watcher {watcher}: {} at {} is {:?}, the write was {:?}",
                    event.key, event.revision, event.value, write.value
                ),
            ));
        }
    }
    if !with_prev_kv {
        return;
    }
    // prev_kv must be the key's latest write before this event. Without one, the key did
    // not exist, which is only checkable when every earlier write is known (it is not:
    // compaction and unanswered writes hide some), so that case is left alone.
    let Some(prev) = &event.prev else {
        return;
    };
    let Some((latest_revision, latest)) = known.latest(&event.key, event.revision - 1) else {
        return;
    };
    if latest_revision > prev.revision {
        violations.push(Violation::new(
            NAME,
            format!(
                "watcher {watcher}: {} at {} has prev_kv from revision {}, but the key was written at {latest_revision} ({:?})",
                event.key, event.revision, prev.revision, latest.value
            ),
        ));
    } else if latest_revision == prev.revision && latest.value.as_ref() != Some(&prev.value) {
        violations.push(Violation::new(
            NAME,
            format!(
                "watcher {watcher}: {} at {} has prev_kv {:?}, the previous write was {:?}",
                event.key, event.revision, prev.value, latest.value
            ),
        ));
    }
}
