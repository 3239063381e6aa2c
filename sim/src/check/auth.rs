//! Auth: while auth is on, no request of the restricted user succeeds on a key it was never
//! granted, and none succeeds on the granted prefix once a revoke of it was acknowledged
//! before the request was sent, unless a grant that could have taken effect in between was
//! sent before the request completed. A grant change that got no answer may take effect at
//! any time after it was sent, so it can excuse a request but never condemn one.

use super::Violation;
use crate::history::{AuthLog, AuthOutcome, AuthRequest, GrantChange, History};
use crate::workload::{GRANTED_PREFIX, SECRET_PREFIX};

pub fn check(history: &History) -> Vec<Violation> {
    let log = &history.auth;
    let Some(enabled_ms) = log.enabled_ms else {
        return Vec::new();
    };
    let checked = |request: &&AuthRequest| {
        request.outcome == AuthOutcome::Allowed
            && request.invoked_ms > enabled_ms
            && log
                .disable_invoked_ms
                .is_none_or(|disable_ms| request.completed_ms < disable_ms)
    };
    log.requests
        .iter()
        .filter(checked)
        .filter_map(|request| refusal_owed(log, enabled_ms, request))
        .map(|reason| Violation::new("auth", reason))
        .collect()
}

/// Why `request` (allowed) should have been refused, if it should.
fn refusal_owed(log: &AuthLog, enabled_ms: u64, request: &AuthRequest) -> Option<String> {
    let what = if request.write { "write" } else { "read" };
    if request.key.starts_with(SECRET_PREFIX) {
        return Some(format!(
            "client {}'s {what} of {} (never granted) was allowed ({}..{} ms)",
            request.client, request.key, request.invoked_ms, request.completed_ms
        ));
    }
    if !request.key.starts_with(GRANTED_PREFIX) {
        return None;
    }
    // The newest change known to have taken effect before the request was sent; enabling
    // auth counts as a revoke (nothing is granted at first).
    let settled = log.grant_changes.iter().rev().find(|change| {
        change
            .completed_ms
            .is_some_and(|done| done < request.invoked_ms)
    });
    let (revoked_since_ms, revoked) = match settled {
        Some(change) => (change.invoked_ms, !change.granted),
        None => (0, true),
    };
    if !revoked {
        return None;
    }
    let could_grant = |change: &GrantChange| {
        change.granted
            && change.invoked_ms < request.completed_ms
            && (change.completed_ms.is_none() || change.invoked_ms > revoked_since_ms)
    };
    if log.grant_changes.iter().any(could_grant) {
        return None;
    }
    let since = match settled {
        Some(change) => format!(
            "a revoke acknowledged at {} ms",
            change.completed_ms.unwrap_or(0)
        ),
        None => format!("auth was enabled at {enabled_ms} ms with no grant"),
    };
    Some(format!(
        "client {}'s {what} of {} was allowed ({}..{} ms) after {since}",
        request.client, request.key, request.invoked_ms, request.completed_ms
    ))
}
