//! Each checker against hand-made histories: a valid one passes, broken ones are caught.

use super::*;
use crate::history::*;

fn put(
    id: usize,
    key: &str,
    value: &str,
    invoked_ms: Millis,
    completed_ms: Millis,
    revision: Revision,
) -> Operation {
    Operation {
        id,
        client: 0,
        request: Request::Put {
            key: key.into(),
            value: value.into(),
        },
        invoked_ms,
        completed_ms,
        response: Response::Written {
            revision,
            changed: true,
        },
    }
}

fn get(
    id: usize,
    key: &str,
    invoked_ms: Millis,
    completed_ms: Millis,
    revision: Revision,
    found: Option<(&str, Revision)>,
) -> Operation {
    let found = found.map(|(value, mod_revision)| Observed {
        value: value.into(),
        mod_revision,
        create_revision: mod_revision,
        version: 1,
    });
    Operation {
        id,
        client: 1,
        request: Request::Get {
            key: key.into(),
            linearizable: true,
        },
        invoked_ms,
        completed_ms,
        response: Response::Read { revision, found },
    }
}

fn history(operations: Vec<Operation>) -> History {
    let mut final_state = FinalState {
        revision: 100,
        hashes: vec![(1, 7), (2, 7)],
        hash_revision: 100,
        recovery_ms: Some(10),
        ..FinalState::default()
    };
    let (known, _) = KnownWrites::build(&History {
        operations: operations.clone(),
        ..History::default()
    });
    for (revision, write) in &known.by_revision {
        match &write.value {
            Some(value) => {
                final_state.keys.insert(
                    write.key.clone(),
                    Observed {
                        value: value.clone(),
                        mod_revision: *revision,
                        create_revision: *revision,
                        version: 1,
                    },
                );
            }
            None => {
                final_state.keys.remove(&write.key);
            }
        }
    }
    History {
        operations,
        final_state,
        ..History::default()
    }
}

fn linearizability(history: &History) -> Vec<Violation> {
    let (known, mut violations) = KnownWrites::build(history);
    violations.extend(linearizability::check(history, &known, 0));
    violations
}

#[test]
fn a_valid_history_passes_every_checker() {
    let operations = vec![
        put(0, "k", "a", 0, 10, 2),
        get(1, "k", 5, 15, 2, Some(("a", 2))),
        put(2, "k", "b", 20, 30, 3),
        get(3, "k", 31, 40, 3, Some(("b", 3))),
        Operation {
            id: 4,
            client: 2,
            request: Request::Put {
                key: "k".into(),
                value: "lost?".into(),
            },
            invoked_ms: 41,
            completed_ms: 60,
            response: Response::Indeterminate("timeout".into()),
        },
        get(5, "k", 61, 70, 3, Some(("b", 3))),
    ];
    let history = history(operations);
    let options = CheckOptions {
        lease_expiry_bound_ms: 1000,
        recovery_bound_ms: 1000,
        clock_uncertainty_ms: 0,
        clock_rate_bound_ppm: 0,
    };
    assert_eq!(check_all(&history, &options), Vec::new());
}

#[test]
fn a_stale_read_is_caught() {
    let history = history(vec![
        put(0, "k", "a", 0, 10, 2),
        get(1, "k", 20, 30, 1, None),
    ]);
    let violations = linearizability(&history);
    assert!(
        violations
            .iter()
            .any(|v| v.detail.contains("began after op 0")),
        "{violations:?}"
    );
}

#[test]
fn a_read_of_a_value_older_than_its_revision_is_caught() {
    let history = history(vec![
        put(0, "k", "a", 0, 10, 2),
        put(1, "k", "b", 11, 20, 3),
        get(2, "k", 21, 30, 3, Some(("a", 2))),
    ]);
    let violations = linearizability(&history);
    assert!(
        violations
            .iter()
            .any(|v| v.detail.contains("op 2 read k at revision 3")),
        "{violations:?}"
    );
}

#[test]
fn real_time_order_needs_more_than_the_clock_uncertainty() {
    // The read began 1 ms after the write finished: an order in simulation, within the
    // noise of real clocks.
    let operations = vec![put(0, "k", "a", 0, 10, 2), get(1, "k", 11, 15, 1, None)];
    let history = history(operations);
    let (known, _) = KnownWrites::build(&history);
    assert!(!linearizability::check(&history, &known, 0).is_empty());
    assert_eq!(linearizability::check(&history, &known, 2), Vec::new());
}

#[test]
fn revisions_against_real_time_are_caught() {
    let history = history(vec![
        put(0, "x", "a", 0, 10, 5),
        put(1, "y", "b", 20, 30, 3),
    ]);
    let violations = linearizability(&history);
    assert!(
        violations
            .iter()
            .any(|v| v.detail.contains("op 1 at revision 3 began after op 0")),
        "{violations:?}"
    );
}

#[test]
fn one_revision_for_two_writes_is_caught() {
    let history = history(vec![
        put(0, "x", "a", 0, 10, 2),
        put(1, "y", "b", 20, 30, 2),
    ]);
    let violations = linearizability(&history);
    assert!(
        violations
            .iter()
            .any(|v| v.detail.contains("revision 2 was given to two writes")),
        "{violations:?}"
    );
}

#[test]
fn a_value_nobody_wrote_is_caught_and_indeterminate_writes_may_apply() {
    let maybe = Operation {
        id: 1,
        client: 0,
        request: Request::Put {
            key: "k".into(),
            value: "maybe".into(),
        },
        invoked_ms: 11,
        completed_ms: 50,
        response: Response::Indeterminate("timeout".into()),
    };
    let applied = history(vec![
        put(0, "k", "a", 0, 10, 2),
        maybe.clone(),
        get(2, "k", 60, 70, 3, Some(("maybe", 3))),
    ]);
    assert_eq!(
        linearizability(&applied),
        Vec::new(),
        "an unanswered write may have applied"
    );
    let invented = history(vec![
        put(0, "k", "a", 0, 10, 2),
        get(2, "k", 60, 70, 3, Some(("invented", 3))),
    ]);
    assert!(linearizability(&invented)
        .iter()
        .any(|v| v.detail.contains("no operation wrote it")));
}

#[test]
fn a_wrong_compare_and_swap_outcome_is_caught() {
    let cas = Operation {
        id: 1,
        client: 0,
        request: Request::CompareAndSwap {
            key: "k".into(),
            expected: 9,
            value: "c".into(),
        },
        invoked_ms: 20,
        completed_ms: 30,
        response: Response::Written {
            revision: 3,
            changed: true,
        },
    };
    let history = history(vec![put(0, "k", "a", 0, 10, 2), cas]);
    assert!(linearizability(&history)
        .iter()
        .any(|v| v.detail.contains("compare-and-swap")));
}

fn watch_history(messages: Vec<WatchMessage>) -> History {
    let mut history = history(vec![
        put(0, "w/a", "1", 0, 10, 2),
        put(1, "w/b", "2", 11, 20, 3),
        put(2, "w/a", "3", 21, 30, 4),
    ]);
    history.watches.push(WatchLog {
        watcher: 0,
        prefix: "w/".into(),
        with_prev_kv: true,
        requires_leader: false,
        messages,
    });
    history
}

fn event(key: &str, revision: Revision, value: &str, prev: Option<(Revision, &str)>) -> WatchEvent {
    WatchEvent {
        key: key.into(),
        revision,
        value: Some(value.into()),
        prev: prev.map(|(revision, value)| PreviousKv {
            revision,
            value: value.into(),
        }),
    }
}

fn watch_violations(history: &History) -> Vec<Violation> {
    let (known, _) = KnownWrites::build(history);
    watch::check(history, &known)
}

#[test]
fn broken_watch_streams_are_caught() {
    let good = vec![
        WatchMessage::Created { start_revision: 2 },
        WatchMessage::Events {
            header_revision: 3,
            events: vec![event("w/a", 2, "1", None), event("w/b", 3, "2", None)],
        },
        WatchMessage::Events {
            header_revision: 4,
            events: vec![event("w/a", 4, "3", Some((2, "1")))],
        },
    ];
    assert_eq!(watch_violations(&watch_history(good)), Vec::new());
    let missing = vec![
        WatchMessage::Created { start_revision: 2 },
        WatchMessage::Events {
            header_revision: 4,
            events: vec![
                event("w/a", 2, "1", None),
                event("w/a", 4, "3", Some((2, "1"))),
            ],
        },
    ];
    assert!(watch_violations(&watch_history(missing))
        .iter()
        .any(|v| v.detail.contains("missed w/b at revision 3")));
    let duplicated = vec![
        WatchMessage::Created { start_revision: 2 },
        WatchMessage::Events {
            header_revision: 2,
            events: vec![event("w/a", 2, "1", None)],
        },
        WatchMessage::Events {
            header_revision: 2,
            events: vec![event("w/a", 2, "1", None)],
        },
    ];
    assert!(watch_violations(&watch_history(duplicated))
        .iter()
        .any(|v| v.detail.contains("twice")));
    let reordered = vec![
        WatchMessage::Created { start_revision: 3 },
        WatchMessage::Events {
            header_revision: 4,
            events: vec![
                event("w/a", 4, "3", Some((2, "1"))),
                event("w/b", 3, "2", None),
            ],
        },
    ];
    assert!(watch_violations(&watch_history(reordered))
        .iter()
        .any(|v| v.detail.contains("after one at 4")));
    let wrong_prev = vec![
        WatchMessage::Created { start_revision: 4 },
        WatchMessage::Events {
            header_revision: 4,
            events: vec![event("w/a", 4, "3", Some((2, "2")))],
        },
    ];
    assert!(watch_violations(&watch_history(wrong_prev))
        .iter()
        .any(|v| v.detail.contains("prev_kv")));
    let early_progress = vec![
        WatchMessage::Created { start_revision: 2 },
        WatchMessage::Progress { revision: 4 },
    ];
    assert!(watch_violations(&watch_history(early_progress))
        .iter()
        .any(|v| v.detail.contains("missed")));
    // The stream of a watcher that had everything so far, ended by the server with OK (as
    // Cairn once ended it when the client closed its sending side): caught, though the
    // watcher resumes and loses nothing.
    let ended_with_ok = vec![
        WatchMessage::Created { start_revision: 2 },
        WatchMessage::Events {
            header_revision: 3,
            events: vec![event("w/a", 2, "1", None), event("w/b", 3, "2", None)],
        },
        WatchMessage::EndedWithOk,
        WatchMessage::Created { start_revision: 4 },
        WatchMessage::Events {
            header_revision: 4,
            events: vec![event("w/a", 4, "3", Some((2, "1")))],
        },
    ];
    assert!(watch_violations(&watch_history(ended_with_ok))
        .iter()
        .any(|v| v.detail.contains("ended its live stream with OK")));
    // "No leader" ends only streams that asked for a leader.
    let no_leader = vec![
        WatchMessage::Created { start_revision: 2 },
        WatchMessage::Events {
            header_revision: 3,
            events: vec![event("w/a", 2, "1", None), event("w/b", 3, "2", None)],
        },
        WatchMessage::EndedNoLeader,
        WatchMessage::Created { start_revision: 4 },
        WatchMessage::Events {
            header_revision: 4,
            events: vec![event("w/a", 4, "3", Some((2, "1")))],
        },
    ];
    assert!(watch_violations(&watch_history(no_leader.clone()))
        .iter()
        .any(|v| v.detail.contains("without hasleader")));
    let mut asked = watch_history(no_leader);
    asked.watches[0].requires_leader = true;
    assert_eq!(watch_violations(&asked), Vec::new());
}

/// Seed 76 with fault points on: a forwarded put applied but its client timed out, and
/// only the next event's prev_kv revealed it. That history is correct.
#[test]
fn a_write_revealed_only_by_prev_kv_passes_and_a_skipped_one_fails() {
    let timed_out = Operation {
        id: 3,
        client: 3,
        request: Request::Put {
            key: "w/a".into(),
            value: "x".into(),
        },
        invoked_ms: 31,
        completed_ms: 60,
        response: Response::Indeterminate("timeout".into()),
    };
    let mut history = watch_history(Vec::new());
    history.operations.push(timed_out);
    history.operations.push(put(4, "w/a", "y", 61, 70, 6));
    let watch = |events| {
        vec![
            WatchMessage::Created { start_revision: 6 },
            WatchMessage::Events {
                header_revision: 6,
                events,
            },
        ]
    };
    history.watches[0].messages = watch(vec![event("w/a", 6, "y", Some((5, "x")))]);
    assert_eq!(watch_violations(&history), Vec::new());
    // The same event claiming the key's previous value came from revision 2 skips the
    // writes at 4 and 5.
    history.watches[0].messages = watch(vec![event("w/a", 6, "y", Some((2, "1")))]);
    assert!(watch_violations(&history)
        .iter()
        .any(|v| v.detail.contains("has prev_kv from revision 2")));
}

#[test]
fn a_lease_key_vanishing_early_or_lingering_is_caught() {
    let mut history = history(Vec::new());
    history.leases.push(LeaseLog {
        key: "l/0".into(),
        ttl_seconds: 5,
        attached_ms: Some(900),
        renewals: vec![(1000, 1100)],
        reads: vec![(2000, 2100, false)],
        ..LeaseLog::default()
    });
    assert!(lease::check(&history, 1000, 0, 0)
        .iter()
        .any(|v| v.detail.contains("vanished")));
    // Against real processes the window widens by the clocks' uncertainty, never closes:
    // the read finished 3900 ms before the renewal's protection ended.
    assert!(lease::check(&history, 1000, 5, 0)
        .iter()
        .any(|v| v.detail.contains("vanished")));
    history.leases[0] = LeaseLog {
        key: "l/1".into(),
        ttl_seconds: 5,
        abandoned_ms: Some(0),
        present_at_end: Some(true),
        ..LeaseLog::default()
    };
    assert!(lease::check(&history, 1000, 0, 0)
        .iter()
        .any(|v| v.detail.contains("outlived")));
    history.leases[0] = LeaseLog {
        key: "l/2".into(),
        ttl_seconds: 5,
        half_closed_unanswered: 1,
        ..LeaseLog::default()
    };
    assert!(lease::check(&history, 1000, 0, 0)
        .iter()
        .any(|v| v.detail.contains("half-closed")));
    history.leases[0].half_closed_unanswered = 0;
    assert!(
        lease::check(&history, 1000, 0, 0).is_empty(),
        "nothing else to flag"
    );
}

/// A renewal at 1000 ms of a 5 s TTL: by a clock 1% fast the lease may end at 5950 ms, and
/// a clock step of 500 ms after the renewal moves that to 5450 ms.
#[test]
fn a_lease_key_vanishing_within_the_clock_bound_passes_and_past_it_fails() {
    let mut history = history(Vec::new());
    let vanished_at = |read_completed_ms| LeaseLog {
        key: "l/0".into(),
        ttl_seconds: 5,
        attached_ms: Some(900),
        renewals: vec![(1000, 1100)],
        reads: vec![(read_completed_ms - 10, read_completed_ms, false)],
        ..LeaseLog::default()
    };
    let vanished = |history: &History, bound_ppm| {
        lease::check(history, 1000, 0, bound_ppm)
            .iter()
            .any(|v| v.detail.contains("vanished"))
    };
    history.leases.push(vanished_at(5960));
    assert!(vanished(&history, 0), "no drift allowed: gone 40 ms early");
    assert!(!vanished(&history, 10_000), "within a 1% fast clock");
    history.leases[0] = vanished_at(5900);
    assert!(
        vanished(&history, 10_000),
        "earlier than even a 1% fast clock explains"
    );
    history.leases[0] = vanished_at(5460);
    history.clock_jumps.push(ClockJump {
        at_ms: 3000,
        forward_ms: 500,
    });
    assert!(
        !vanished(&history, 10_000),
        "a clock stepped 500 ms forward"
    );
    history.leases[0] = vanished_at(5400);
    assert!(vanished(&history, 10_000), "earlier than the step explains");
    // A step before the renewal shortens nothing.
    history.clock_jumps[0].at_ms = 900;
    history.leases[0] = vanished_at(5460);
    assert!(vanished(&history, 10_000));
}

#[test]
fn a_lost_acknowledged_write_is_caught() {
    let mut history = history(vec![put(0, "k", "a", 0, 10, 2)]);
    history.final_state.keys.clear();
    let (known, _) = KnownWrites::build(&history);
    assert!(durability::check(&history, &known)
        .iter()
        .any(|v| v.detail.contains("is lost")));
}

#[test]
fn diverged_members_and_no_recovery_are_caught() {
    let mut history = history(Vec::new());
    history.final_state.hashes = vec![(1, 7), (2, 8)];
    assert_eq!(convergence::check(&history).len(), 1);
    history.final_state.recovery_ms = None;
    assert_eq!(liveness::check(&history, 1000).len(), 1);
}

#[test]
fn an_observed_delete_is_bound_to_the_earliest_invoked_unanswered_delete() {
    // Seed 219 once failed this way: two unanswered deletes of k, the later-invoked one
    // completing first. The deletion seen at revision 3 must be explained by the one invoked
    // at 20 (before the put at revision 4 finished), not the one invoked at 50.
    let unanswered_delete = |id, invoked_ms, completed_ms| Operation {
        id,
        client: 2,
        request: Request::Delete { key: "k".into() },
        invoked_ms,
        completed_ms,
        response: Response::Indeterminate("timed out".into()),
    };
    let mut history = history(vec![
        put(0, "k", "a", 0, 10, 2),
        put(1, "j", "x", 30, 40, 4),
        unanswered_delete(2, 50, 60),
        unanswered_delete(3, 20, 100),
    ]);
    history.watches.push(WatchLog {
        watcher: 0,
        prefix: String::new(),
        with_prev_kv: false,
        requires_leader: false,
        messages: vec![WatchMessage::Events {
            header_revision: 4,
            events: vec![WatchEvent {
                key: "k".into(),
                revision: 3,
                value: None,
                prev: None,
            }],
        }],
    });
    history.final_state.keys.remove("k");
    assert_eq!(linearizability(&history), Vec::new());
}

fn change(granted: bool, invoked_ms: Millis, completed_ms: Option<Millis>) -> GrantChange {
    GrantChange {
        granted,
        invoked_ms,
        completed_ms,
    }
}

fn allowed(key: &str, invoked_ms: Millis, completed_ms: Millis) -> AuthRequest {
    AuthRequest {
        client: 0,
        key: key.into(),
        write: true,
        invoked_ms,
        completed_ms,
        outcome: AuthOutcome::Allowed,
    }
}

fn auth_history(changes: Vec<GrantChange>, requests: Vec<AuthRequest>) -> History {
    History {
        auth: AuthLog {
            enabled_ms: Some(10),
            disable_invoked_ms: Some(10_000),
            grant_changes: changes,
            requests,
        },
        ..History::default()
    }
}

#[test]
fn auth_allows_what_a_grant_in_effect_or_in_flight_explains() {
    let history = auth_history(
        vec![
            change(true, 100, Some(150)),
            change(false, 300, Some(350)),
            // No answer: it may take effect at any time after 500.
            change(true, 500, None),
        ],
        vec![
            // Before auth was on: not checked.
            allowed("secret/0", 0, 5),
            // While granted, and while the revoke was in flight.
            allowed("a/0", 160, 170),
            allowed("a/1", 290, 320),
            // After the unanswered grant was sent.
            allowed("a/2", 600, 620),
            // After the final disable was sent: not checked.
            allowed("secret/1", 10_001, 10_002),
        ],
    );
    assert_eq!(super::auth::check(&history), Vec::new());
}

#[test]
fn auth_catches_access_outside_grants_and_after_a_revoke() {
    let history = auth_history(
        vec![change(true, 100, Some(150)), change(false, 300, Some(350))],
        vec![
            allowed("secret/0", 200, 210),
            // Before the first grant was sent: nothing was granted once auth was on.
            allowed("a/0", 20, 40),
            // After the revoke was acknowledged.
            allowed("a/1", 360, 380),
        ],
    );
    let violations = super::auth::check(&history);
    assert_eq!(violations.len(), 3, "{violations:?}");
    assert!(violations
        .iter()
        .all(|violation| violation.checker == "auth"));
}
