//! Liveness: once faults stop, writes succeed again within the bound; and a healed cluster
//! completes an operator's membership change within the simulator's patience.

use super::Violation;
use crate::history::{History, Millis};

pub fn check(history: &History, recovery_bound_ms: Millis) -> Vec<Violation> {
    let mut violations: Vec<Violation> = history
        .stalled_changes
        .iter()
        .map(|failure| Violation::new("liveness", failure.clone()))
        .collect();
    violations.extend(recovery(history, recovery_bound_ms));
    violations
}

fn recovery(history: &History, recovery_bound_ms: Millis) -> Vec<Violation> {
    match history.final_state.recovery_ms {
        Some(recovery_ms) if recovery_ms <= recovery_bound_ms => Vec::new(),
        Some(recovery_ms) => vec![Violation::new("liveness", format!("writes resumed {recovery_ms} ms after faults stopped; the bound is {recovery_bound_ms} ms"))],
        None => vec![Violation::new("liveness", format!("no write succeeded within {recovery_bound_ms} ms after faults stopped"))],
    }
}
