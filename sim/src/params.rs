//! Everything a simulation run depends on, drawn from its seed unless a scenario fixes it,
//! and printed at the start so a report carries the whole setup.

use crate::boundaries::Boundaries;
use crate::clocks;
use crate::fault_kind::{FaultKind, ALL_FAULTS};
use crate::fault_points;
use crate::scenario::Scenario;
use crate::schedule::{self, FaultRound, ScheduleShape};
use crate::seeds::Stream;
use cairn::io::fault_points::FaultPoint;
use cairn::io::planted::PlantedBug;
use rand::Rng;

#[derive(Debug, Clone, PartialEq)]
pub struct Params {
    pub seed: u64,
    pub members: usize,
    pub heartbeat_interval_ms: u64,
    pub election_timeout_ms: u64,
    pub snapshot_count: u64,
    /// How long faults are injected while the workload runs.
    pub fault_phase_ms: u64,
    pub faults: Vec<FaultKind>,
    /// Mean time between faults, and how long each lasts at most.
    pub fault_interval_ms: u64,
    pub fault_duration_max_ms: u64,
    pub clients: usize,
    pub keys: usize,
    /// Percentages of the operation mix (puts take the rest).
    pub gets_percent: u32,
    pub serializable_gets_percent: u32,
    pub deletes_percent: u32,
    pub compare_and_swaps_percent: u32,
    /// Percentage of client steps that read the whole key space in one range instead.
    pub ranges_percent: u32,
    pub watchers: usize,
    pub lease_clients: usize,
    pub compactions: bool,
    /// Members run with `--unsafe-no-fsync` (acknowledged writes may be lost on crashes).
    pub unsafe_no_fsync: bool,
    /// A deliberately wrong workload: serializable reads recorded as linearizable.
    pub serializable_recorded_as_linearizable: bool,
    /// The checkers whose violations fail the run.
    pub checkers: Vec<String>,
    /// Simulated time every fsync takes on every member (bytes durable only when it ends);
    /// the slow-fsync fault raises it for one member for a while.
    pub fsync_latency_ms: u64,
    /// Lease TTL the lease clients ask for (at least etcd's minimum for the timeouts).
    pub lease_ttl_seconds: i64,
    /// How often the leader checkpoints remaining lease TTLs (production: 5 minutes).
    pub lease_checkpoint_interval_ms: u64,
    /// Bytes of commands per proposal batch at most (production: 16 MiB).
    pub proposal_batch_bytes: usize,
    /// Bytes of padding on every written value, so batches reach their byte cap.
    pub value_padding_bytes: usize,
    /// How long a lease client waits between steps (keepalives, reads), in percent of its
    /// TTL: near the TTL, a lease restored too short by a new leader expires before the next
    /// keepalive.
    pub lease_renewal_percent: u64,
    /// A deliberately wrong workload: lease keepalives are not sent, but recorded as
    /// acknowledged renewals (the lease checker must report the keys vanishing).
    pub keepalives_dropped_recorded_as_acknowledged: bool,
    /// The members' client URLs, set by whoever runs the cluster (not drawn).
    pub endpoints: Vec<String>,
    /// The auth workload's restricted clients (scenario-only; 0 leaves auth off).
    pub auth_clients: usize,
    pub auth_denials_recorded_as_allowed: bool,
    /// `--disk-reserve-bytes` of every member (0: none), so a full disk meets both the
    /// released reserve and, once that is used up, writers waiting for room.
    pub disk_reserve_bytes: u64,
    /// A bug planted in the members' code (not drawn: only a scenario or flag plants one).
    pub planted_bug: Option<PlantedBug>,
    /// Faults applied together in one round at most (swarm testing: 2 or 3 overlap).
    pub overlapping_faults_max: usize,
    /// The rounds of faults, drawn from the fault stream unless the scenario lists them.
    pub fault_schedule: Vec<FaultRound>,
    /// The fault points on in the members' code, each with the percent of calls it fires on.
    pub fault_points: Vec<(FaultPoint, u32)>,
    /// Sizes drawn down to tiny values so their limits are met.
    pub boundaries: Boundaries,
    /// Each member's clock rate off real time, in parts per million (`clocks.rs`).
    pub clock_rates_ppm: Vec<i64>,
}

impl Params {
    pub fn draw(seed: u64, scenario: &Scenario) -> Params {
        let mut random = Stream::Params.random(seed);
        let heartbeat_interval_ms = scenario
            .heartbeat_interval_ms
            .unwrap_or_else(|| random.gen_range(1..=4) * 25);
        let election_timeout_ms = scenario
            .election_timeout_ms
            .unwrap_or(heartbeat_interval_ms * random.gen_range(5..=10));
        let mut faults: Vec<FaultKind> = match &scenario.faults {
            Some(names) => names
                .iter()
                .filter_map(|name| FaultKind::parse(name))
                .collect(),
            // Clock jumps come with the clock draws, so the other kinds draw as before.
            None => ALL_FAULTS
                .into_iter()
                .filter(|kind| *kind != FaultKind::ClockJump)
                .filter(|_| random.gen_bool(0.6))
                .collect(),
        };
        let members = scenario.members.unwrap_or_else(|| random.gen_range(1..=7));
        let (clock_rates_ppm, clock_jumps) = clocks::draw(seed, members, scenario);
        if clock_jumps && scenario.faults.is_none() {
            faults.push(FaultKind::ClockJump);
        }
        let mut params = Params {
            seed,
            members,
            heartbeat_interval_ms,
            election_timeout_ms,
            snapshot_count: scenario
                .snapshot_count
                .unwrap_or_else(|| [50, 200, 1000][random.gen_range(0..3)]),
            fault_phase_ms: scenario.fault_phase_ms.unwrap_or(20_000),
            faults,
            fault_interval_ms: scenario
                .fault_interval_ms
                .unwrap_or_else(|| random.gen_range(1_000..=4_000)),
            fault_duration_max_ms: scenario
                .fault_duration_max_ms
                .unwrap_or_else(|| random.gen_range(1_000..=6_000)),
            clients: scenario.clients.unwrap_or_else(|| random.gen_range(2..=6)),
            keys: scenario.keys.unwrap_or_else(|| random.gen_range(2..=12)),
            gets_percent: scenario
                .gets_percent
                .unwrap_or_else(|| random.gen_range(20..=50)),
            serializable_gets_percent: scenario
                .serializable_gets_percent
                .unwrap_or_else(|| random.gen_range(0..=30)),
            deletes_percent: scenario
                .deletes_percent
                .unwrap_or_else(|| random.gen_range(0..=10)),
            compare_and_swaps_percent: scenario
                .compare_and_swaps_percent
                .unwrap_or_else(|| random.gen_range(0..=20)),
            ranges_percent: scenario
                .ranges_percent
                .unwrap_or_else(|| random.gen_range(0..=15)),
            watchers: scenario.watchers.unwrap_or_else(|| random.gen_range(0..=3)),
            lease_clients: scenario
                .lease_clients
                .unwrap_or_else(|| random.gen_range(0..=2)),
            compactions: scenario.compactions.unwrap_or_else(|| random.gen_bool(0.5)),
            unsafe_no_fsync: scenario.unsafe_no_fsync.unwrap_or(false),
            serializable_recorded_as_linearizable: scenario
                .serializable_recorded_as_linearizable
                .unwrap_or(false),
            checkers: scenario.checkers.clone().unwrap_or_else(|| {
                crate::check::CHECKERS
                    .iter()
                    .map(|name| name.to_string())
                    .collect()
            }),
            fsync_latency_ms: scenario
                .fsync_latency_ms
                .unwrap_or_else(|| [1, 2, 5, 10, 15, 25][random.gen_range(0..6)]),
            lease_ttl_seconds: scenario.lease_ttl_seconds.unwrap_or_else(|| {
                cairn::lease::ttl_seconds_min(election_timeout_ms) + random.gen_range(0..=4)
            }),
            lease_checkpoint_interval_ms: scenario
                .lease_checkpoint_interval_ms
                .unwrap_or_else(|| [1_000, 2_000, 5_000, 300_000][random.gen_range(0..4)]),
            proposal_batch_bytes: scenario.proposal_batch_bytes.unwrap_or_else(|| {
                [1024, 16 * 1024, cairn::base::limits::BATCH_BYTES_MAX][random.gen_range(0..3)]
            }),
            value_padding_bytes: scenario
                .value_padding_bytes
                .unwrap_or_else(|| [0, 0, 64, 1024][random.gen_range(0..4)]),
            lease_renewal_percent: scenario
                .lease_renewal_percent
                .unwrap_or_else(|| [25, 50, 75][random.gen_range(0..3)]),
            keepalives_dropped_recorded_as_acknowledged: scenario
                .keepalives_dropped_recorded_as_acknowledged
                .unwrap_or(false),
            endpoints: Vec::new(),
            // Not drawn: auth changes what every other actor may do, so only a scenario
            // that turns those off turns this on.
            auth_clients: scenario.auth_clients.unwrap_or(0),
            auth_denials_recorded_as_allowed: scenario
                .auth_denials_recorded_as_allowed
                .unwrap_or(false),
            disk_reserve_bytes: scenario
                .disk_reserve_bytes
                .unwrap_or_else(|| [0, 512, 4096, 65_536][random.gen_range(0..4)]),
            planted_bug: scenario.planted_bug.as_deref().and_then(PlantedBug::parse),
            overlapping_faults_max: scenario
                .overlapping_faults_max
                .unwrap_or_else(|| random.gen_range(1..=3)),
            fault_schedule: Vec::new(),
            fault_points: fault_points::draw(seed, scenario),
            boundaries: Boundaries::draw(seed, scenario),
            clock_rates_ppm,
        };
        params.fault_schedule = match &scenario.fault_schedule {
            Some(rounds) => rounds.clone(),
            None => schedule::draw(
                seed,
                &ScheduleShape {
                    faults: &params.faults,
                    fault_phase_ms: params.fault_phase_ms,
                    fault_interval_ms: params.fault_interval_ms,
                    fault_duration_max_ms: params.fault_duration_max_ms,
                    overlapping_faults_max: params.overlapping_faults_max,
                },
            ),
        };
        params
    }

    /// A scenario that fixes every parameter to this run's, so the seed replays the same run
    /// from it (what `cairn-sim shrink` edits and prints).
    pub fn as_scenario(&self) -> Scenario {
        let mut scenario = Scenario {
            description: None,
            seeds: Some(vec![self.seed]),
            members: Some(self.members),
            heartbeat_interval_ms: Some(self.heartbeat_interval_ms),
            election_timeout_ms: Some(self.election_timeout_ms),
            snapshot_count: Some(self.snapshot_count),
            fault_phase_ms: Some(self.fault_phase_ms),
            faults: Some(self.faults.iter().map(|kind| kind.name()).collect()),
            fault_interval_ms: Some(self.fault_interval_ms),
            fault_duration_max_ms: Some(self.fault_duration_max_ms),
            overlapping_faults_max: Some(self.overlapping_faults_max),
            fault_schedule: Some(self.fault_schedule.clone()),
            clients: Some(self.clients),
            keys: Some(self.keys),
            gets_percent: Some(self.gets_percent),
            serializable_gets_percent: Some(self.serializable_gets_percent),
            deletes_percent: Some(self.deletes_percent),
            compare_and_swaps_percent: Some(self.compare_and_swaps_percent),
            ranges_percent: Some(self.ranges_percent),
            watchers: Some(self.watchers),
            lease_clients: Some(self.lease_clients),
            compactions: Some(self.compactions),
            unsafe_no_fsync: Some(self.unsafe_no_fsync),
            serializable_recorded_as_linearizable: Some(self.serializable_recorded_as_linearizable),
            fsync_latency_ms: Some(self.fsync_latency_ms),
            lease_ttl_seconds: Some(self.lease_ttl_seconds),
            lease_checkpoint_interval_ms: Some(self.lease_checkpoint_interval_ms),
            proposal_batch_bytes: Some(self.proposal_batch_bytes),
            disk_reserve_bytes: Some(self.disk_reserve_bytes),
            value_padding_bytes: Some(self.value_padding_bytes),
            lease_renewal_percent: Some(self.lease_renewal_percent),
            keepalives_dropped_recorded_as_acknowledged: Some(
                self.keepalives_dropped_recorded_as_acknowledged,
            ),
            auth_clients: Some(self.auth_clients),
            auth_denials_recorded_as_allowed: Some(self.auth_denials_recorded_as_allowed),
            checkers: Some(self.checkers.clone()),
            planted_bug: self.planted_bug.map(|bug| bug.name().to_string()),
            fault_points: Some(fault_points::table(&self.fault_points)),
            wal_segment_bytes: None,
            snapshot_chunk_bytes: None,
            watch_events_per_response_max: None,
            clock_rates_ppm: Some(self.clock_rates_ppm.clone()),
        };
        self.boundaries.fix_in(&mut scenario);
        scenario
    }

    /// Lease TTLs the workload asks for: at least etcd's minimum for this election timeout
    /// (the server raises anything shorter, and the checker must use what was granted).
    pub fn lease_ttl_seconds(&self) -> i64 {
        self.lease_ttl_seconds
            .max(cairn::lease::ttl_seconds_min(self.election_timeout_ms))
            .max(1)
    }

    pub fn request_timeout_ms(&self) -> u64 {
        2 * self.election_timeout_ms + 1000
    }

    pub fn lease_expiry_bound_ms(&self) -> u64 {
        // After faults stop, leadership may still change until the cluster has settled (a
        // member cut off during the faults comes back with a higher term and forces an
        // election, messages held by a partition arrive late): that is the recovery bound.
        // The last new leader restarts every lease that was not checkpointed at its full
        // TTL, and expiry checks run every 500 ms.
        self.recovery_bound_ms() + self.lease_ttl_seconds() as u64 * 1000 + 1000
    }

    pub fn recovery_bound_ms(&self) -> u64 {
        10 * self.election_timeout_ms + 10_000
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_fixed_as_a_scenario_draws_the_same_parameters_back() {
        for seed in 1..40 {
            let drawn = Params::draw(seed, &Scenario::default());
            let scenario = drawn.as_scenario();
            assert_eq!(Params::draw(seed, &scenario), drawn, "seed {seed}");
            // And through the file a shrink prints.
            let text = toml::to_string(&scenario).unwrap();
            let read: Scenario = toml::from_str(&text).unwrap();
            assert_eq!(Params::draw(seed, &read), drawn, "seed {seed}:\n{text}");
        }
    }
}
