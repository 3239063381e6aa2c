//! One simulation: a seeded madsim runtime, a cluster of real members, the workload under
//! faults, healing, the final state, the checkers, and a hash over every traced event.

use crate::check::Violation;
use crate::faults::Faults;
use crate::member::{client_ip, client_urls, start_member, MemberSettings, SimMember};
use crate::observe::observe_final_state;
pub use crate::outcome::Outcome;
use crate::outcome::{conclude, fnv1a};
use crate::params::Params;
use crate::recorder::{now_ms, Recorder};
use crate::schedule;
use crate::workload;
use madsim::runtime::{Handle, Runtime};
use std::time::Duration;

/// Simulated time a run may take at most before it is declared hung.
const SIMULATED_TIME_LIMIT: Duration = Duration::from_secs(600);

/// Runs one simulation to completion.
///
/// Two things keep a seed exact. The simulation runs on a fresh thread, whose thread-local
/// state (std's hash keys, tokio's generator behind `select!`) is first touched inside the
/// madsim runtime, so madsim's seeded entropy initializes it. And only one simulation runs per
/// process, because tokio seeds those generators from a process-wide counter; `cairn-sim`
/// runs every seed in a process of its own.
pub fn run(params: &Params) -> Outcome {
    let mut params = params.clone();
    params.endpoints = client_urls(params.members);
    std::thread::spawn(move || {
        let mut runtime = Runtime::with_seed_and_config(params.seed, madsim::Config::default());
        runtime.set_time_limit(SIMULATED_TIME_LIMIT);
        runtime.block_on(simulate(params))
    })
    .join()
    .unwrap_or_else(|panic| {
        // A member that panics has hit an invariant (openraft's or Cairn's): a violation.
        let message = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|text| text.to_string()))
            .unwrap_or_default();
        let detail = format!("a member stopped on a broken invariant: {message}");
        Outcome {
            trace_hash: fnv1a(std::slice::from_ref(&detail)),
            trace: vec![detail.clone()],
            violations: vec![Violation::new("invariant", detail)],
            simulated_ms: 0,
            operations: 0,
            coverage: Default::default(),
            fault_points_fired: Vec::new(),
        }
    })
}

async fn simulate(params: Params) -> Outcome {
    // Before any member starts: they all run on this thread.
    cairn::io::planted::plant(params.planted_bug);
    let firing_seed = crate::seeds::Stream::FaultPointFiring.seed(params.seed);
    cairn::io::fault_points::enable(firing_seed, &params.fault_points);
    let handle = Handle::current();
    let settings = MemberSettings {
        members: params.members as u8,
        heartbeat_interval_ms: params.heartbeat_interval_ms,
        election_timeout_ms: params.election_timeout_ms,
        snapshot_count: params.snapshot_count,
        unsafe_no_fsync: params.unsafe_no_fsync,
        fsync_latency_ms: params.fsync_latency_ms,
        lease_checkpoint_interval_ms: params.lease_checkpoint_interval_ms,
        proposal_batch_bytes: params.proposal_batch_bytes,
        disk_reserve_bytes: params.disk_reserve_bytes,
        boundaries: params.boundaries,
    };
    let members: Vec<SimMember> = (1..=params.members as u8)
        .map(|index| start_member(&handle, index, &settings))
        .collect();
    for (member, rate_ppm) in members.iter().zip(&params.clock_rates_ppm) {
        cairn::io::clock::drift::set_rate(member.node.id(), *rate_ppm);
    }
    let recorder = Recorder::new();
    recorder.lock().unwrap().note(format!("params {params:?}"));
    let stop_ms = params.fault_phase_ms;
    let mut tasks = Vec::new();
    let mut next_client = 0;
    let mut client_node = |name: String| {
        next_client += 1;
        handle
            .create_node()
            .name(name)
            .ip(client_ip(next_client))
            .build()
    };
    for (name, actor) in workload::actors(&params, &recorder, stop_ms) {
        tasks.push(client_node(name).spawn(actor));
    }
    let operator = client_node("operator".to_string());
    let mut faults = Faults::new(&handle, &members, operator, recorder.clone());
    schedule::play(&params.fault_schedule, &mut faults, &recorder, stop_ms).await;
    let healed = faults.heal();
    let faults_end_ms = now_ms(&recorder);
    recorder
        .lock()
        .unwrap()
        .note(format!("faults stop: {healed}"));
    for task in tasks {
        let _ = task.await;
    }
    let observer = client_node("observer".to_string());
    let final_state = observer
        .spawn(observe_final_state(
            params.clone(),
            recorder.clone(),
            faults_end_ms,
        ))
        .await
        .expect("observer task");
    let mut recorder = recorder.lock().unwrap();
    let mut outcome = conclude(
        &mut recorder,
        &params,
        final_state,
        0,
        crate::clocks::CLOCK_RATE_BOUND_PPM,
        Vec::new(),
    );
    outcome.fault_points_fired = cairn::io::fault_points::fired();
    outcome
}
