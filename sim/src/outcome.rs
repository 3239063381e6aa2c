//! What one run reports, in simulation or against real processes.

use crate::check::Violation;
use crate::history::Millis;

pub struct Outcome {
    pub trace_hash: u64,
    pub trace: Vec<String>,
    pub violations: Vec<Violation>,
    /// Simulated milliseconds (wall milliseconds for a run against real processes).
    pub simulated_ms: Millis,
    pub operations: usize,
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
