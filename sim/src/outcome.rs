//! What one run reports, in simulation or against real processes.

use crate::check::{check_all, CheckOptions, Violation};
use crate::coverage::Coverage;
use crate::history::{FinalState, Millis};
use crate::params::Params;
use crate::recorder::Recorder;
use cairn::io::fault_points::FaultPoint;

pub struct Outcome {
    pub trace_hash: u64,
    pub trace: Vec<String>,
    pub violations: Vec<Violation>,
    /// Simulated milliseconds (wall milliseconds for a run against real processes).
    pub simulated_ms: Millis,
    pub operations: usize,
    pub coverage: Coverage,
    /// How often each fault point the run turned on fired (simulation only).
    pub fault_points_fired: Vec<(FaultPoint, u64)>,
}

/// The trace hash: FNV-1a over every traced line.
pub fn fnv1a(lines: &[String]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for line in lines {
        for byte in line.bytes().chain([b'\n']) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash
}

/// The end of every run: records the final state, runs the checkers the run selected (plus
/// `extra` violations the harness saw itself), traces the violations and hashes the trace.
/// `clock_uncertainty_ms` is 0 in simulation, `clock_rate_bound_ppm` 0 for real processes
/// (see `CheckOptions`).
pub fn conclude(
    recorder: &mut Recorder,
    params: &Params,
    final_state: FinalState,
    clock_uncertainty_ms: Millis,
    clock_rate_bound_ppm: i64,
    extra: Vec<Violation>,
) -> Outcome {
    recorder.note(format!("final {final_state:?}"));
    recorder.history.final_state = final_state;
    let options = CheckOptions {
        lease_expiry_bound_ms: params.lease_expiry_bound_ms(),
        recovery_bound_ms: params.recovery_bound_ms(),
        clock_uncertainty_ms,
        clock_rate_bound_ppm,
    };
    let mut violations = check_all(&recorder.history, &options);
    violations.retain(|violation| params.checkers.iter().any(|name| name == violation.checker));
    violations.extend(extra);
    for violation in &violations {
        let line = format!("violation {}: {}", violation.checker, violation.detail);
        recorder.note(line);
    }
    Outcome {
        trace_hash: fnv1a(&recorder.trace),
        trace: recorder.trace.clone(),
        violations,
        simulated_ms: recorder.now_ms(),
        operations: recorder.history.operations.len(),
        coverage: recorder.coverage.clone(),
        fault_points_fired: Vec::new(),
    }
}
