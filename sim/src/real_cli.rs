//! `cairn-sim real`: the simulator's workload and checkers against real processes (a normal
//! build, real tokio). The other subcommands need the simulation build.

use cairn_sim::fault_kind::FaultKind;
use cairn_sim::params::Params;
use cairn_sim::real::cluster::{can_mount_disks, ClusterOptions, ServerKind};
use cairn_sim::real::faults::REAL_FAULTS;
use cairn_sim::scenario::Scenario;
use cairn_sim::seeds::Stream;
use clap::{Parser, Subcommand};
use rand::Rng;
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "cairn-sim",
    about = "Seeded chaos on real Cairn (or etcd) clusters, with checked histories"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run seeds against real member processes on loopback.
    Real(RealArgs),
    /// Simulation subcommands (run, sweep, regressions) need the simulation build.
    #[command(external_subcommand)]
    Other(Vec<String>),
}

#[derive(clap::Args)]
struct RealArgs {
    /// One seed, or a range like 1..4 (end exclusive), run one after another.
    #[arg(long, default_value = "1")]
    seeds: String,
    /// How long faults are injected while the workload runs, per seed.
    #[arg(long, default_value_t = 60)]
    duration_seconds: u64,
    /// A scenario file fixing parameters (members, faults, workload mix, ...).
    #[arg(long)]
    scenario: Option<PathBuf>,
    /// The server to run: cairn (default: the one built beside this binary) or etcd (any
    /// path whose file name starts with "etcd", e.g. /usr/bin/etcd).
    #[arg(long)]
    server_binary: Option<PathBuf>,
    /// Member i uses ports base + 10 i, + 1 and + 2 (keep below 32768).
    #[arg(long, default_value_t = 21000)]
    base_port: u16,
    /// Where data directories and logs go [default: a fresh directory under /tmp].
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// Size of each member's own file system for the disk-full fault (needs root and loop
    /// devices; without them the fault is skipped, with a message). 0 turns it off.
    #[arg(long, default_value_t = 256)]
    disk_mib: u64,
    /// Print every traced event.
    #[arg(long)]
    trace: bool,
    /// Keep data directories and logs of passing seeds too.
    #[arg(long)]
    keep_data: bool,
    /// Negative control: record serializable reads as linearizable.
    #[arg(long)]
    serializable_recorded_as_linearizable: bool,
    /// Negative control: drop lease keepalives but record them as acknowledged.
    #[arg(long)]
    keepalives_dropped_recorded_as_acknowledged: bool,
}

pub fn main() -> i32 {
    let cli = Cli::parse();
    match cli.command {
        Command::Other(arguments) => {
            eprintln!(
                "cairn-sim {}: simulation subcommands run only in a simulation build: RUSTFLAGS=\"--cfg madsim\" CARGO_TARGET_DIR=target/sim cargo run -p cairn-sim --release -- ...  (or ci/sim ...)",
                arguments.first().map_or("", String::as_str)
            );
            2
        }
        Command::Real(arguments) => match real(&arguments) {
            Ok(true) => 0,
            Ok(false) => 1,
            Err(error) => {
                eprintln!("cairn-sim real: {error}");
                2
            }
        },
    }
}

fn parse_seeds(text: &str) -> Result<Vec<u64>, String> {
    let parse = |part: &str| {
        part.trim()
            .parse::<u64>()
            .map_err(|_| format!("bad seed range {text:?}"))
    };
    match text.split_once("..") {
        Some((start, end)) => Ok((parse(start)?..parse(end)?).collect()),
        None => Ok(vec![parse(text)?]),
    }
}

/// The scenario for a real run: production timings and three members unless the file says
/// otherwise, and only the fault kinds real processes can have (drawn from the seed).
fn real_scenario(
    arguments: &RealArgs,
    seed: u64,
    disks: bool,
) -> Result<(Scenario, Vec<String>), String> {
    let mut scenario = match &arguments.scenario {
        Some(path) => Scenario::load(path)?,
        None => Scenario::default(),
    };
    scenario.members.get_or_insert(3);
    scenario.heartbeat_interval_ms.get_or_insert(100);
    scenario.election_timeout_ms.get_or_insert(1000);
    scenario.fault_phase_ms = Some(arguments.duration_seconds * 1000);
    let mut notes = Vec::new();
    let mut kinds: Vec<FaultKind> = match &scenario.faults {
        Some(names) => names
            .iter()
            .filter_map(|name| FaultKind::parse(name))
            .collect(),
        None => {
            let mut random = Stream::RealFaultKinds.random(seed);
            REAL_FAULTS
                .into_iter()
                .filter(|_| random.gen_bool(0.6))
                .collect()
        }
    };
    kinds.retain(|kind| {
        let supported = REAL_FAULTS.contains(kind) && (disks || *kind != FaultKind::DiskFull);
        if !supported {
            notes.push(match kind {
                FaultKind::DiskFull => "disk-full skipped: members need file systems of their own (root, loop devices, --disk-mib > 0)".to_string(),
                other => format!("{other:?} skipped: simulation only"),
            });
        }
        supported
    });
    scenario.faults = Some(kinds.iter().map(|kind| format!("{kind:?}")).collect());
    if let Some(rounds) = &mut scenario.fault_schedule {
        for round in rounds {
            round.faults.retain(|fault| kinds.contains(&fault.kind));
        }
    }
    // One fault at a time unless the scenario asks for overlap: real clusters take seconds
    // per restart, and CI runs only a few real seeds.
    scenario.overlapping_faults_max.get_or_insert(1);
    // A production build has no fault points to turn on.
    scenario.fault_points = Some(Default::default());
    if arguments.serializable_recorded_as_linearizable {
        scenario.serializable_recorded_as_linearizable = Some(true);
    }
    if arguments.keepalives_dropped_recorded_as_acknowledged {
        scenario.keepalives_dropped_recorded_as_acknowledged = Some(true);
        scenario.lease_clients = Some(scenario.lease_clients.unwrap_or(0).max(2));
    }
    Ok((scenario, notes))
}

fn server_binary(arguments: &RealArgs) -> Result<(PathBuf, ServerKind), String> {
    let binary = match &arguments.server_binary {
        Some(path) => path.clone(),
        None => std::env::current_exe()
            .map_err(|error| error.to_string())?
            .with_file_name("cairn"),
    };
    if !binary.exists() {
        return Err(format!(
            "{} does not exist (cargo build --bin cairn, or pass --server-binary)",
            binary.display()
        ));
    }
    let is_etcd = binary
        .file_name()
        .is_some_and(|name| name.to_string_lossy().starts_with("etcd"));
    Ok((
        binary,
        if is_etcd {
            ServerKind::Etcd
        } else {
            ServerKind::Cairn
        },
    ))
}

fn real(arguments: &RealArgs) -> Result<bool, String> {
    let (binary, kind) = server_binary(arguments)?;
    let disks = arguments.disk_mib > 0 && can_mount_disks();
    let mut failed = Vec::new();
    let seeds = parse_seeds(&arguments.seeds)?;
    let started = std::time::Instant::now();
    for &seed in &seeds {
        let (scenario, notes) = real_scenario(arguments, seed, disks)?;
        let params = Params::draw(seed, &scenario);
        println!(
            "seed {seed} against {} ({kind:?}): {params:?}",
            binary.display()
        );
        for note in notes {
            println!("seed {seed}: {note}");
        }
        let work_dir = arguments.work_dir.clone().unwrap_or_else(|| {
            std::env::temp_dir().join(format!("cairn-real-{}-{seed}", std::process::id()))
        });
        let options = ClusterOptions {
            server_binary: binary.clone(),
            kind,
            base_port: arguments.base_port,
            work_dir: work_dir.clone(),
            disk_bytes: if disks { arguments.disk_mib << 20 } else { 0 },
            heartbeat_interval_ms: params.heartbeat_interval_ms,
            election_timeout_ms: params.election_timeout_ms,
            snapshot_count: params.snapshot_count,
            lease_checkpoint_interval_ms: params.lease_checkpoint_interval_ms,
            proposal_batch_bytes: params.proposal_batch_bytes,
            boundaries: params.boundaries,
        };
        let outcome = cairn_sim::real::run(&params, options);
        if arguments.trace {
            for line in &outcome.trace {
                println!("  {line}");
            }
        }
        for violation in &outcome.violations {
            println!(
                "seed {seed}: VIOLATION [{}] {}",
                violation.checker, violation.detail
            );
        }
        println!(
            "seed {seed}: {} operations in {:.1} s: {}",
            outcome.operations,
            outcome.simulated_ms as f64 / 1000.0,
            if outcome.violations.is_empty() {
                "ok"
            } else {
                "FAILED"
            }
        );
        if outcome.violations.is_empty() && !arguments.keep_data {
            let _ = std::fs::remove_dir_all(&work_dir);
        } else {
            println!(
                "seed {seed}: data and member logs kept in {}",
                work_dir.display()
            );
        }
        if !outcome.violations.is_empty() {
            failed.push(seed);
        }
    }
    println!(
        "real: {} seeds, {} passed, {} failed {failed:?}; {:.0} wall s",
        seeds.len(),
        seeds.len() - failed.len(),
        failed.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(failed.is_empty())
}
