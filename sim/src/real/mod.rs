//! The simulator's other world: the same workload, history and six checkers run against a
//! cluster of real processes on loopback (`cairn`, or `etcd` for comparison) on a real
//! multi-threaded tokio runtime, with real sockets, real fsync and real faults. Timestamps
//! are the harness's monotonic clock, taken around each call; the checkers widen their
//! real-time windows by `CLOCK_UNCERTAINTY_MS` instead of skipping anything.

pub mod cluster;
pub mod faults;
pub mod proxy;

use crate::check::Violation;
use crate::history::Millis;
use crate::observe::observe_final_state;
use crate::outcome::{conclude, fnv1a, Outcome};
use crate::params::Params;
use crate::recorder::{now_ms, Recorder};
use crate::schedule;
use crate::workload::{self, channels};
use cairn::api::pb::etcdserverpb::{maintenance_client::MaintenanceClient, StatusRequest};
use cluster::{ClusterOptions, RealCluster};
use faults::RealFaults;
use proxy::Links;
use std::net::SocketAddr;
use std::time::Duration;

/// Timestamps are whole milliseconds, taken by threads that may be descheduled between a
/// response and its timestamp: two events closer than this are not ordered.
pub const CLOCK_UNCERTAINTY_MS: Millis = 2;
/// How long a fresh cluster may take until every member answers.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs `params` against real processes configured by `options`.
pub fn run(params: &Params, options: ClusterOptions) -> Outcome {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(run_cluster(params.clone(), options))
}

async fn run_cluster(mut params: Params, options: ClusterOptions) -> Outcome {
    let links = Links::new(params.members);
    let mut proxies = Vec::new();
    for member in 0..params.members {
        let listen = SocketAddr::from(([127, 0, 0, 1], options.proxy_port(member)));
        let upstream = SocketAddr::from(([127, 0, 0, 1], options.peer_port(member)));
        match proxy::serve(listen, upstream, member, links.clone()).await {
            Ok(task) => proxies.push(task),
            Err(error) => return failed_to_start(format!("proxy on {listen}: {error}")),
        }
    }
    let mut cluster = match RealCluster::start(options, params.members, links.clone(), params.seed)
    {
        Ok(cluster) => cluster,
        Err(error) => return failed_to_start(error),
    };
    params.endpoints = cluster.endpoints();
    let outcome = if let Err(error) = wait_until_serving(&params.endpoints).await {
        let logs = (0..params.members)
            .map(|member| log_tail(&cluster.log_path(member)))
            .collect::<Vec<_>>()
            .join("\n");
        failed_to_start(format!("{error}\n{logs}"))
    } else {
        exercise(&params, &mut cluster, links).await
    };
    cluster.shut_down().await;
    for proxy in proxies {
        proxy.abort();
    }
    outcome
}

/// Workload under faults, healing, the final state and the checkers: `simulation::simulate`
/// with processes instead of madsim nodes.
async fn exercise(
    params: &Params,
    cluster: &mut RealCluster,
    links: proxy::SharedLinks,
) -> Outcome {
    let recorder = Recorder::new();
    recorder.lock().unwrap().note(format!("params {params:?}"));
    let stop_ms = params.fault_phase_ms;
    let tasks: Vec<_> = workload::actors(params, &recorder, stop_ms)
        .into_iter()
        .map(|(_, actor)| tokio::spawn(actor))
        .collect();
    let mut faults = RealFaults::new(cluster, links);
    schedule::play(&params.fault_schedule, &mut faults, &recorder, stop_ms).await;
    let healed = faults.heal().await;
    let faults_end_ms = now_ms(&recorder);
    recorder
        .lock()
        .unwrap()
        .note(format!("faults stop: {healed}"));
    for task in tasks {
        let _ = task.await;
    }
    let final_state = observe_final_state(params.clone(), recorder.clone(), faults_end_ms).await;
    // Exits that happen while the final state is read count too.
    faults.reap();
    let exits = faults
        .unexpected_exits
        .iter()
        .map(|(member, status)| {
            let log = log_tail(&faults.cluster.log_path(*member));
            let detail =
                format!("member-{member} exited by itself ({status}); its log ends:\n{log}");
            Violation::new("invariant", detail)
        })
        .collect();
    let mut recorder = recorder.lock().unwrap();
    conclude(
        &mut recorder,
        params,
        final_state,
        CLOCK_UNCERTAINTY_MS,
        // One host's clock for every member: its rate cannot differ between them.
        0,
        exits,
    )
}

/// Waits until every member answers Status and one of them reports a leader.
async fn wait_until_serving(endpoints: &[String]) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + STARTUP_TIMEOUT;
    let channels = channels(endpoints);
    loop {
        let mut answered = 0;
        let mut leader = false;
        for channel in &channels {
            let mut maintenance = MaintenanceClient::new(channel.clone());
            let call = maintenance.status(StatusRequest {});
            if let Ok(Ok(status)) = tokio::time::timeout(Duration::from_secs(1), call).await {
                answered += 1;
                leader |= status.into_inner().leader != 0;
            }
        }
        if answered == channels.len() && leader {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(format!(
                "the cluster did not start within {} s ({answered} of {} members answered, leader: {leader})",
                STARTUP_TIMEOUT.as_secs(),
                channels.len()
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn failed_to_start(detail: String) -> Outcome {
    Outcome {
        trace_hash: fnv1a(std::slice::from_ref(&detail)),
        trace: vec![detail.clone()],
        violations: vec![Violation::new("liveness", detail)],
        simulated_ms: 0,
        operations: 0,
        coverage: Default::default(),
        fault_points_fired: Vec::new(),
    }
}

/// The last lines of a member's log, for reports.
fn log_tail(path: &std::path::Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(15);
    format!("--- {}\n{}", path.display(), lines[start..].join("\n"))
}
