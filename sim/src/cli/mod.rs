//! The simulation build's command line: `run` one seed, `sweep` many (each in a child
//! process, see `child.rs`), run the `regressions` corpus.

mod child;
mod farm;
mod report;
mod shrink;
mod sweep;

use cairn::io::planted::PlantedBug;
use cairn_sim::params::Params;
use cairn_sim::scenario::Scenario;
use cairn_sim::simulation;
use clap::{Args, Parser, Subcommand};
use farm::{farm, FarmPlan};
use report::RunReport;
use shrink::{shrink_seed, ShrinkPlan};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use sweep::{regressions, sweep, Plan};

#[derive(Parser)]
#[command(
    name = "cairn-sim",
    about = "Seeded chaos on real Cairn clusters, with checked histories and exact replay"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run one simulation.
    Run {
        #[arg(long)]
        seed: u64,
        #[command(flatten)]
        setup: Setup,
        /// Print every traced event.
        #[arg(long)]
        trace: bool,
        /// Write every traced event to this file (used by sweep to find divergences).
        #[arg(long)]
        emit_trace: Option<PathBuf>,
    },
    /// Run many seeds and summarise.
    Sweep {
        /// A range like 1..200 (end exclusive) or 1..=200.
        #[arg(long)]
        seeds: String,
        #[arg(long, default_value_t = 1)]
        jobs: usize,
        /// Run every seed twice and fail on the first event that differs.
        #[arg(long)]
        check_determinism: bool,
        /// Wall seconds a seed may take before it counts as hung (a task spinning
        /// without letting simulated time advance) and is killed.
        #[arg(long, default_value_t = DEFAULT_SEED_TIMEOUT_S)]
        seed_timeout_s: u64,
        #[command(flatten)]
        setup: Setup,
    },
    /// Search for a smaller run of a failing seed that still fails the same checker (fewer
    /// faults, a shorter fault phase, fewer clients, features off); print it as a scenario.
    Shrink {
        #[arg(long)]
        seed: u64,
        #[command(flatten)]
        setup: Setup,
        /// The checker the smaller run must fail (default: the first the seed fails).
        #[arg(long)]
        checker: Option<String>,
        #[arg(long, default_value_t = 1)]
        jobs: usize,
        /// Candidate runs tried at most.
        #[arg(long, default_value_t = 120)]
        runs_max: usize,
        /// As for sweep.
        #[arg(long, default_value_t = DEFAULT_SEED_TIMEOUT_S)]
        seed_timeout_s: u64,
        /// Also write the shrunk scenario to this file.
        #[arg(long)]
        output: Option<PathBuf>,
    },
    /// Run seeds for hours (or a range), resumably: a JSON line per seed in DIR/results.jsonl,
    /// every failure shrunk into DIR/failures/seed-N.toml.
    Farm {
        /// A range like 1..200; without it, seeds from --first-seed on until --hours pass.
        #[arg(long, required_unless_present = "hours")]
        seeds: Option<String>,
        #[arg(long)]
        hours: Option<f64>,
        #[arg(long, default_value_t = 1)]
        first_seed: u64,
        #[arg(long, default_value_t = 1)]
        jobs: usize,
        #[arg(long, default_value = "farm")]
        dir: PathBuf,
        /// Run every seed twice and fail on the first event that differs.
        #[arg(long)]
        check_determinism: bool,
        /// As for sweep.
        #[arg(long, default_value_t = DEFAULT_SEED_TIMEOUT_S)]
        seed_timeout_s: u64,
        /// Candidate runs each failure's shrink may try.
        #[arg(long, default_value_t = 60)]
        shrink_runs_max: usize,
        #[command(flatten)]
        setup: Setup,
    },
    /// Run every scenario in a directory of regressions with the seeds it lists.
    Regressions {
        #[arg(default_value = "scenarios/regressions")]
        dir: PathBuf,
        #[arg(long, default_value_t = 1)]
        jobs: usize,
        /// As for sweep.
        #[arg(long, default_value_t = DEFAULT_SEED_TIMEOUT_S)]
        seed_timeout_s: u64,
    },
}

/// Seeds take seconds; a few minutes means a hang, even on a slow machine.
const DEFAULT_SEED_TIMEOUT_S: u64 = 180;

#[derive(Args, Clone, Default)]
pub struct Setup {
    /// A scenario file fixing some parameters.
    #[arg(long)]
    pub scenario: Option<PathBuf>,
    /// Members run with --unsafe-no-fsync (expect durability violations with crashes).
    #[arg(long)]
    pub unsafe_no_fsync: bool,
    /// A deliberately wrong workload that records serializable reads as linearizable.
    #[arg(long)]
    pub serializable_recorded_as_linearizable: bool,
    /// A bug planted in the members' code (`cairn::io::planted`), e.g.
    /// watch-batch-end-exclusive: the sweep must catch it.
    #[arg(long, value_parser = parse_planted_bug)]
    pub planted_bug: Option<String>,
}

fn parse_planted_bug(name: &str) -> Result<String, String> {
    match PlantedBug::parse(name) {
        Some(_) => Ok(name.to_string()),
        None => Err(format!(
            "unknown planted bug {name:?} (known: {})",
            PlantedBug::ALL.map(PlantedBug::name).join(", ")
        )),
    }
}

impl Setup {
    pub fn scenario(&self) -> Result<Scenario, String> {
        let mut scenario = match &self.scenario {
            Some(path) => Scenario::load(path)?,
            None => Scenario::default(),
        };
        if self.unsafe_no_fsync {
            scenario.unsafe_no_fsync = Some(true);
        }
        if self.serializable_recorded_as_linearizable {
            scenario.serializable_recorded_as_linearizable = Some(true);
        }
        if let Some(name) = &self.planted_bug {
            scenario.planted_bug = Some(name.clone());
        }
        Ok(scenario)
    }

    pub fn replay_command(&self, seed: u64) -> String {
        let mut command = format!("ci/sim run --seed {seed}");
        if let Some(path) = &self.scenario {
            command += &format!(" --scenario {}", path.display());
        }
        if self.unsafe_no_fsync {
            command += " --unsafe-no-fsync";
        }
        if self.serializable_recorded_as_linearizable {
            command += " --serializable-recorded-as-linearizable";
        }
        if let Some(name) = &self.planted_bug {
            command += &format!(" --planted-bug {name}");
        }
        command
    }
}

fn parse_seeds(text: &str) -> Result<Vec<u64>, String> {
    let parse = |part: &str| {
        part.trim()
            .parse::<u64>()
            .map_err(|_| format!("bad seed range {text:?}"))
    };
    if let Some((start, end)) = text.split_once("..=") {
        return Ok((parse(start)?..=parse(end)?).collect());
    }
    if let Some((start, end)) = text.split_once("..") {
        return Ok((parse(start)?..parse(end)?).collect());
    }
    Ok(vec![parse(text)?])
}

pub fn main() -> i32 {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run {
            seed,
            setup,
            trace,
            emit_trace,
        } => run_one(seed, &setup, trace, emit_trace.as_deref()),
        Command::Sweep {
            seeds,
            jobs,
            check_determinism,
            seed_timeout_s,
            setup,
        } => parse_seeds(&seeds).and_then(|seeds| {
            let plan = Plan {
                setup,
                check_determinism,
                seed_timeout: Duration::from_secs(seed_timeout_s),
            };
            sweep(&seeds, jobs, &plan)
        }),
        Command::Shrink {
            seed,
            setup,
            checker,
            jobs,
            runs_max,
            seed_timeout_s,
            output,
        } => shrink_seed(&ShrinkPlan {
            seed,
            setup,
            checker,
            jobs,
            runs_max,
            seed_timeout: Duration::from_secs(seed_timeout_s),
            output,
        }),
        Command::Farm {
            seeds,
            hours,
            first_seed,
            jobs,
            dir,
            check_determinism,
            seed_timeout_s,
            shrink_runs_max,
            setup,
        } => seeds
            .as_deref()
            .map(parse_seeds)
            .transpose()
            .and_then(|seeds| {
                farm(&FarmPlan {
                    plan: Plan {
                        setup,
                        check_determinism,
                        seed_timeout: Duration::from_secs(seed_timeout_s),
                    },
                    seeds,
                    hours,
                    first_seed,
                    jobs,
                    dir,
                    shrink_runs_max,
                })
            }),
        Command::Regressions {
            dir,
            jobs,
            seed_timeout_s,
        } => regressions(&dir, jobs, Duration::from_secs(seed_timeout_s)),
    };
    match result {
        Ok(passed) if passed => 0,
        Ok(_) => 1,
        Err(error) => {
            eprintln!("cairn-sim: {error}");
            2
        }
    }
}

fn run_one(
    seed: u64,
    setup: &Setup,
    trace: bool,
    emit_trace: Option<&Path>,
) -> Result<bool, String> {
    let params = Params::draw(seed, &setup.scenario()?);
    println!("seed {seed}: {params:?}");
    // Members' own logs, on request: CAIRN_SIM_LOG=info (or any tracing filter).
    if let Ok(filter) = tracing_subscriber::EnvFilter::try_from_env("CAIRN_SIM_LOG") {
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .init();
    }
    let started = Instant::now();
    let outcome = simulation::run(&params);
    if trace {
        for line in &outcome.trace {
            println!("  {line}");
        }
    }
    if let Some(path) = emit_trace {
        std::fs::write(path, outcome.trace.join("\n"))
            .map_err(|error| format!("{}: {error}", path.display()))?;
    }
    let wall = started.elapsed().as_secs_f64();
    println!(
        "wall: {wall:.1} s ({:.1} simulated s per wall s)",
        outcome.simulated_ms as f64 / 1000.0 / wall.max(0.001)
    );
    let report = RunReport::of(&outcome);
    for line in report.lines() {
        println!("{line}");
    }
    if !outcome.violations.is_empty() {
        let checkers: std::collections::BTreeSet<&str> =
            outcome.violations.iter().map(|v| v.checker).collect();
        println!(
            "FAILED seed {} ({} violations from {:?}); replay: {}",
            params.seed,
            outcome.violations.len(),
            checkers,
            setup.replay_command(params.seed)
        );
    }
    Ok(outcome.violations.is_empty())
}
