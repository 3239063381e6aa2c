//! Scenario files (`scenarios/*.toml`): any parameter set here is fixed; the rest is drawn
//! from the seed. Regression files also name the seeds that once failed.

use crate::schedule::FaultRound;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// What the scenario exercises (shown in reports).
    pub description: Option<String>,
    /// For regressions: the seeds that once failed with this setup.
    pub seeds: Option<Vec<u64>>,
    pub members: Option<usize>,
    pub heartbeat_interval_ms: Option<u64>,
    pub election_timeout_ms: Option<u64>,
    pub snapshot_count: Option<u64>,
    pub fault_phase_ms: Option<u64>,
    /// Fault kinds by name (partition, isolate, one-way, packet-loss, latency, kill,
    /// kill-all, pause, disk-full, failing-fsync, slow-fsync, leader-transfer,
    /// member-replace, damaged-snapshot); empty means no faults.
    pub faults: Option<Vec<String>>,
    pub fault_interval_ms: Option<u64>,
    pub fault_duration_max_ms: Option<u64>,
    /// Faults applied together in one round at most (1: one at a time; drawn from 1 to 3).
    pub overlapping_faults_max: Option<usize>,
    /// The rounds of faults themselves (`[[fault_schedule]]` tables, as `cairn-sim shrink`
    /// prints them); when set, `faults`, the interval and the durations are not used.
    pub fault_schedule: Option<Vec<FaultRound>>,
    pub clients: Option<usize>,
    pub keys: Option<usize>,
    pub gets_percent: Option<u32>,
    pub serializable_gets_percent: Option<u32>,
    pub deletes_percent: Option<u32>,
    pub compare_and_swaps_percent: Option<u32>,
    pub ranges_percent: Option<u32>,
    pub watchers: Option<usize>,
    pub lease_clients: Option<usize>,
    pub compactions: Option<bool>,
    pub unsafe_no_fsync: Option<bool>,
    pub serializable_recorded_as_linearizable: Option<bool>,
    pub fsync_latency_ms: Option<u64>,
    pub lease_ttl_seconds: Option<i64>,
    pub lease_checkpoint_interval_ms: Option<u64>,
    pub proposal_batch_bytes: Option<usize>,
    pub disk_reserve_bytes: Option<u64>,
    pub value_padding_bytes: Option<usize>,
    pub lease_renewal_percent: Option<u64>,
    pub keepalives_dropped_recorded_as_acknowledged: Option<bool>,
    /// Restricted clients of the auth workload (0: none, and auth stays off). With any,
    /// an admin enables auth, grants and revokes the clients' role over time, and disables
    /// auth when faults stop; the other workload actors should then be off.
    pub auth_clients: Option<usize>,
    /// A planted recording bug (negative control): denied auth requests recorded as allowed.
    pub auth_denials_recorded_as_allowed: Option<bool>,
    /// Checkers to run by name (default: all of `check::CHECKERS`). A member that panics
    /// always fails the run.
    pub checkers: Option<Vec<String>>,
    /// A bug planted in the members' code by name (`cairn::io::planted`).
    pub planted_bug: Option<String>,
    /// Fault points on (`cairn::io::fault_points` names), each with the percent of calls it
    /// fires on; an empty table turns every point off. Drawn when absent.
    pub fault_points: Option<BTreeMap<String, u32>>,
    /// Sizes the simulator otherwise draws down to tiny values (`boundaries.rs`).
    pub wal_segment_bytes: Option<u64>,
    pub snapshot_chunk_bytes: Option<usize>,
    pub watch_events_per_response_max: Option<usize>,
    /// Each member's clock rate off real time, in parts per million (`clocks.rs`); members
    /// not listed run at real time.
    pub clock_rates_ppm: Option<Vec<i64>>,
}

impl Scenario {
    pub fn load(path: &Path) -> Result<Scenario, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|error| format!("{}: {error}", path.display()))?;
        let scenario: Scenario =
            toml::from_str(&text).map_err(|error| format!("{}: {error}", path.display()))?;
        if let Some(names) = &scenario.faults {
            for name in names {
                if crate::fault_kind::FaultKind::parse(name).is_none() {
                    return Err(format!("{}: unknown fault kind {name:?}", path.display()));
                }
            }
        }
        if let Some(name) = &scenario.planted_bug {
            if cairn::io::planted::PlantedBug::parse(name).is_none() {
                return Err(format!("{}: unknown planted bug {name:?}", path.display()));
            }
        }
        if let Some(table) = &scenario.fault_points {
            crate::fault_points::check_names(table)
                .map_err(|error| format!("{}: {error}", path.display()))?;
        }
        for name in scenario.checkers.iter().flatten() {
            if !crate::check::CHECKERS.contains(&name.as_str()) {
                return Err(format!(
                    "{}: unknown checker {name:?} (known: {:?})",
                    path.display(),
                    crate::check::CHECKERS
                ));
            }
        }
        Ok(scenario)
    }
}
