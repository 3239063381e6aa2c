//! `cairn-sim`: runs Cairn clusters under seeded faults and checks every history.
//!
//!   cairn-sim run --seed N [--scenario FILE] [--unsafe-no-fsync] [--serializable-recorded-as-linearizable]
//!   cairn-sim sweep --seeds A..B [--jobs J] [--check-determinism] [--scenario FILE] [...]
//!   cairn-sim regressions [DIR]
//!   cairn-sim real --seeds A..B --duration-seconds S [--server-binary /usr/bin/etcd]  (normal build)
//!
//! Build with `RUSTFLAGS="--cfg madsim"` in its own target directory (see `ci/sim`).

#[cfg(not(madsim))]
mod real_cli;

/// A normal build serves `cairn-sim real` (real processes, real tokio) only.
#[cfg(not(madsim))]
fn main() {
    std::process::exit(real_cli::main());
}

#[cfg(madsim)]
fn main() {
    std::process::exit(cli::main());
}

#[cfg(madsim)]
mod cli {
    use cairn_sim::params::Params;
    use cairn_sim::scenario::Scenario;
    use cairn_sim::simulation::{self, Outcome};
    use clap::{Args, Parser, Subcommand};
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

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
    struct Setup {
        /// A scenario file fixing some parameters.
        #[arg(long)]
        scenario: Option<PathBuf>,
        /// Members run with --unsafe-no-fsync (expect durability violations with crashes).
        #[arg(long)]
        unsafe_no_fsync: bool,
        /// A deliberately wrong workload that records serializable reads as linearizable.
        #[arg(long)]
        serializable_recorded_as_linearizable: bool,
    }

    impl Setup {
        fn scenario(&self) -> Result<Scenario, String> {
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
            Ok(scenario)
        }

        fn replay_command(&self, seed: u64) -> String {
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

    fn report(params: &Params, outcome: &Outcome, setup: &Setup) -> bool {
        for violation in &outcome.violations {
            println!("VIOLATION [{}] {}", violation.checker, violation.detail);
        }
        println!(
            "operations: {}, simulated: {:.1} s",
            outcome.operations,
            outcome.simulated_ms as f64 / 1000.0
        );
        println!("simulated-ms: {}", outcome.simulated_ms);
        println!("trace-hash: {:016x}", outcome.trace_hash);
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
        outcome.violations.is_empty()
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
        Ok(report(&params, &outcome, setup))
    }

    struct SeedResult {
        seed: u64,
        passed: bool,
        lines: Vec<String>,
        simulated_ms: u64,
    }

    /// What a child `cairn-sim run` reported.
    struct ChildRun {
        trace_hash: String,
        violations: Vec<String>,
        simulated_ms: u64,
        trace_file: PathBuf,
    }

    /// How a sweep runs each seed.
    struct Plan {
        setup: Setup,
        check_determinism: bool,
        seed_timeout: Duration,
    }

    /// Runs one seed in a fresh process (the only way a seed replays exactly, see
    /// `simulation::run`), keeping its trace in `trace_file`; kills it after `timeout`.
    fn run_child(
        seed: u64,
        setup: &Setup,
        trace_file: PathBuf,
        timeout: Duration,
    ) -> Result<ChildRun, String> {
        let executable = std::env::current_exe().map_err(|error| error.to_string())?;
        let mut command = std::process::Command::new(executable);
        command
            .arg("run")
            .arg("--seed")
            .arg(seed.to_string())
            .arg("--emit-trace")
            .arg(&trace_file);
        if let Some(path) = &setup.scenario {
            command.arg("--scenario").arg(path);
        }
        if setup.unsafe_no_fsync {
            command.arg("--unsafe-no-fsync");
        }
        if setup.serializable_recorded_as_linearizable {
            command.arg("--serializable-recorded-as-linearizable");
        }
        let output = run_with_timeout(command, &trace_file.with_extension("out"), timeout)
            .map_err(|error| format!("seed {seed}: {error}"))?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        let trace_hash = stdout
            .lines()
            .find_map(|line| line.strip_prefix("trace-hash: "))
            .map(str::to_string);
        let Some(trace_hash) = trace_hash else {
            return Err(format!(
                "seed {seed}: the simulation crashed: {}{}",
                stdout,
                String::from_utf8_lossy(&output.stderr)
            ));
        };
        let violations = stdout
            .lines()
            .filter(|line| line.starts_with("VIOLATION"))
            .map(str::to_string)
            .collect();
        let simulated_ms = stdout
            .lines()
            .find_map(|line| line.strip_prefix("simulated-ms: "))
            .and_then(|ms| ms.parse().ok())
            .unwrap_or(0);
        Ok(ChildRun {
            trace_hash,
            violations,
            simulated_ms,
            trace_file,
        })
    }

    /// Runs `command` with its output in files next to `scratch` (a pipe would fill and
    /// block the child while we wait), polling until it exits or `timeout` passes.
    fn run_with_timeout(
        mut command: std::process::Command,
        scratch: &Path,
        timeout: Duration,
    ) -> Result<std::process::Output, String> {
        let (stdout_path, stderr_path) = (
            scratch.with_extension("stdout"),
            scratch.with_extension("stderr"),
        );
        let create = |path: &Path| {
            std::fs::File::create(path).map_err(|error| format!("{}: {error}", path.display()))
        };
        command
            .stdout(create(&stdout_path)?)
            .stderr(create(&stderr_path)?);
        let mut child = command
            .spawn()
            .map_err(|error| format!("starting a simulation: {error}"))?;
        let started = Instant::now();
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break Ok(status),
                Ok(None) if started.elapsed() >= timeout => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break Err(format!(
                        "HUNG: no result after {} wall s (a task spinning without letting simulated time advance?)",
                        timeout.as_secs()
                    ));
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(50)),
                Err(error) => break Err(format!("waiting for a simulation: {error}")),
            }
        };
        let read = |path: &Path| std::fs::read(path).unwrap_or_default();
        let output = status.map(|status| std::process::Output {
            status,
            stdout: read(&stdout_path),
            stderr: read(&stderr_path),
        });
        let _ = std::fs::remove_file(&stdout_path);
        let _ = std::fs::remove_file(&stderr_path);
        output
    }

    fn run_seed(seed: u64, plan: &Plan) -> SeedResult {
        let setup = &plan.setup;
        let directory = std::env::temp_dir();
        let trace_file = |run: u32| {
            directory.join(format!(
                "cairn-sim-{}-{seed}-{run}.trace",
                std::process::id()
            ))
        };
        let mut lines = Vec::new();
        let first = match run_child(seed, setup, trace_file(1), plan.seed_timeout) {
            Ok(first) => first,
            Err(error) => {
                return SeedResult {
                    seed,
                    passed: false,
                    lines: vec![
                        error,
                        format!("seed {seed}: replay: {}", setup.replay_command(seed)),
                    ],
                    simulated_ms: 0,
                }
            }
        };
        let mut passed = first.violations.is_empty();
        lines.extend(
            first
                .violations
                .iter()
                .map(|violation| format!("seed {seed}: {violation}")),
        );
        if !passed {
            lines.push(format!(
                "seed {seed}: FAILED; replay: {}",
                setup.replay_command(seed)
            ));
        }
        let mut simulated_ms = first.simulated_ms;
        if plan.check_determinism {
            match run_child(seed, setup, trace_file(2), plan.seed_timeout) {
                Ok(second) if second.trace_hash == first.trace_hash => {
                    simulated_ms += second.simulated_ms
                }
                Ok(second) => {
                    passed = false;
                    lines.push(first_divergence(seed, &first, &second));
                }
                Err(error) => {
                    passed = false;
                    lines.push(error);
                }
            }
            let _ = std::fs::remove_file(trace_file(2));
        }
        let _ = std::fs::remove_file(trace_file(1));
        lines.insert(
            0,
            format!(
                "seed {seed}: {} trace-hash {}",
                if passed { "ok" } else { "FAILED" },
                first.trace_hash
            ),
        );
        SeedResult {
            seed,
            passed,
            lines,
            simulated_ms,
        }
    }

    fn first_divergence(seed: u64, first: &ChildRun, second: &ChildRun) -> String {
        let read = |path: &Path| std::fs::read_to_string(path).unwrap_or_default();
        let (one, two) = (read(&first.trace_file), read(&second.trace_file));
        let (one, two): (Vec<&str>, Vec<&str>) = (one.lines().collect(), two.lines().collect());
        let index = one
            .iter()
            .zip(&two)
            .position(|(a, b)| a != b)
            .unwrap_or(one.len().min(two.len()));
        format!(
            "seed {seed}: NONDETERMINISTIC: trace hashes {} vs {}; first difference at event {index}:\n  first run:  {}\n  second run: {}",
            first.trace_hash,
            second.trace_hash,
            one.get(index).unwrap_or(&"<end>"),
            two.get(index).unwrap_or(&"<end>")
        )
    }

    fn sweep(seeds: &[u64], jobs: usize, plan: &Plan) -> Result<bool, String> {
        plan.setup.scenario()?;
        let started = Instant::now();
        let results = run_parallel(seeds, jobs, |seed| run_seed(seed, plan));
        summarise(&results, started)
    }

    fn run_parallel(
        seeds: &[u64],
        jobs: usize,
        work: impl Fn(u64) -> SeedResult + Sync,
    ) -> Vec<SeedResult> {
        let next = AtomicU64::new(0);
        let results = Mutex::new(Vec::new());
        // Each thread waits on child processes, one simulation per process.
        std::thread::scope(|scope| {
            for _ in 0..jobs.max(1) {
                scope.spawn(|| loop {
                    let position = next.fetch_add(1, Ordering::Relaxed) as usize;
                    let Some(seed) = seeds.get(position) else {
                        return;
                    };
                    let result = work(*seed);
                    for line in &result.lines {
                        println!("{line}");
                    }
                    results.lock().unwrap().push(result);
                });
            }
        });
        let mut results = results.into_inner().unwrap();
        results.sort_by_key(|result| result.seed);
        results
    }

    fn summarise(results: &[SeedResult], started: Instant) -> Result<bool, String> {
        let failed: Vec<u64> = results
            .iter()
            .filter(|result| !result.passed)
            .map(|result| result.seed)
            .collect();
        let simulated_s: f64 = results
            .iter()
            .map(|result| result.simulated_ms as f64 / 1000.0)
            .sum();
        let wall_s = started.elapsed().as_secs_f64();
        println!(
            "sweep: {} seeds, {} passed, {} failed {:?}; {simulated_s:.0} simulated s in {wall_s:.0} wall s ({:.1} simulated s per wall s)",
            results.len(),
            results.len() - failed.len(),
            failed.len(),
            failed,
            simulated_s / wall_s.max(0.001)
        );
        Ok(failed.is_empty())
    }

    fn regressions(dir: &Path, jobs: usize, seed_timeout: Duration) -> Result<bool, String> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|error| format!("{}: {error}", dir.display()))?
            .filter_map(|entry| entry.ok().map(|entry| entry.path()))
            .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
            .collect();
        files.sort();
        let started = Instant::now();
        let results = Arc::new(Mutex::new(Vec::new()));
        for file in &files {
            let scenario = Scenario::load(file)?;
            let seeds = scenario
                .seeds
                .clone()
                .ok_or_else(|| format!("{}: a regression lists its seeds", file.display()))?;
            println!("regression {}: seeds {seeds:?}", file.display());
            let plan = Plan {
                setup: Setup {
                    scenario: Some(file.clone()),
                    ..Setup::default()
                },
                check_determinism: true,
                seed_timeout,
            };
            let outcome = run_parallel(&seeds, jobs, |seed| run_seed(seed, &plan));
            results.lock().unwrap().extend(outcome);
        }
        let results = std::mem::take(&mut *results.lock().unwrap());
        summarise(&results, started)
    }
}
