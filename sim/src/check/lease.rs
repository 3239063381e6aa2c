//! Lease safety: a leased key never vanishes while its lease is kept alive (a read that began
//! after a renewal was acknowledged and finished before that renewal's TTL ran out must find
//! the key), and once faults stopped, a key whose lease was abandoned is gone within its TTL
//! plus the bound. A keepalive whose stream the client half-closed is still answered.
//!
//! A lease lives by its leader's clock, as in etcd: the guarantee holds only while that
//! clock runs at most `clock_rate_bound_ppm` fast (`clocks::CLOCK_RATE_BOUND_PPM` in the
//! simulator; 0 for real processes, which share one host clock), and a clock stepped
//! forward shortens it by the step. Those are the bounds this checker relies on; a drift
//! past them must show as a violation (`scenarios/negative/clock-drift-past-the-lease-bound.toml`).

use super::Violation;
use crate::history::{ClockJump, History, Millis};

const NAME: &str = "lease";

pub fn check(
    history: &History,
    expiry_bound_ms: Millis,
    clock_uncertainty_ms: Millis,
    clock_rate_bound_ppm: i64,
) -> Vec<Violation> {
    let mut violations = Vec::new();
    for log in &history.leases {
        let ttl_ms = log.ttl_seconds as Millis * 1000;
        // A TTL by a clock as fast as the bound allows, in real time.
        let protected_ms = ttl_ms * 1_000_000 / (1_000_000 + clock_rate_bound_ppm as Millis);
        // Reads only count once the key was acknowledged as attached to the lease.
        let attached_ms = log.attached_ms.unwrap_or(Millis::MAX);
        for (read_invoked, read_completed, present) in &log.reads {
            if *present || *read_invoked < attached_ms {
                continue;
            }
            // The deadline a renewal set is at least its invocation plus the TTL.
            let protected_until = log
                .renewals
                .iter()
                .filter(|(_, acknowledged)| acknowledged < read_invoked)
                .map(|(invoked, _)| {
                    let jumped_ms = jumped_ms(&history.clock_jumps, *invoked, *read_completed);
                    (invoked + protected_ms).saturating_sub(jumped_ms)
                })
                .max();
            if let Some(until) = protected_until {
                if read_completed.saturating_add(clock_uncertainty_ms) < until {
                    violations.push(Violation::new(NAME, format!("{} vanished by {read_completed} ms, but a renewal kept its lease until at least {until} ms", log.key)));
                }
            }
        }
        if log.half_closed_unanswered > 0 {
            violations.push(Violation::new(NAME, format!("{}: {} keepalive streams the client half-closed ended with OK before answering its request", log.key, log.half_closed_unanswered)));
        }
        if log.abandoned_ms.is_some() && log.present_at_end == Some(true) {
            violations.push(Violation::new(NAME, format!("{} outlived its abandoned lease (TTL {} s) by more than {expiry_bound_ms} ms after faults stopped", log.key, log.ttl_seconds)));
        }
    }
    violations
}

/// How far clocks stepped forward between `from_ms` and `to_ms` (any member's: the leader
/// may change in between).
fn jumped_ms(jumps: &[ClockJump], from_ms: Millis, to_ms: Millis) -> Millis {
    jumps
        .iter()
        .filter(|jump| (from_ms..=to_ms).contains(&jump.at_ms))
        .map(|jump| jump.forward_ms)
        .sum()
}
