//! Many seeds, each in its own child process on `jobs` threads, optionally twice to check
//! determinism; and the regression corpus, every scenario with the seeds it lists.

use super::child::{run_child, ChildRun};
use super::Setup;
use cairn_sim::coverage::Coverage;
use cairn_sim::scenario::Scenario;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct SeedResult {
    pub seed: u64,
    pub passed: bool,
    /// What the sweep prints for the seed: its verdict, violations, replay command.
    pub lines: Vec<String>,
    pub simulated_ms: u64,
    pub coverage: Coverage,
}

/// How a sweep runs each seed.
pub struct Plan {
    pub setup: Setup,
    pub check_determinism: bool,
    pub seed_timeout: Duration,
}

pub fn run_seed(seed: u64, plan: &Plan) -> SeedResult {
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
                coverage: Coverage::default(),
            }
        }
    };
    let mut passed = first.report.violations.is_empty();
    lines.extend(
        first
            .report
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
    let mut simulated_ms = first.report.simulated_ms;
    if plan.check_determinism {
        match run_child(seed, setup, trace_file(2), plan.seed_timeout) {
            Ok(second) if second.report.trace_hash == first.report.trace_hash => {
                simulated_ms += second.report.simulated_ms
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
            first.report.trace_hash
        ),
    );
    SeedResult {
        seed,
        passed,
        lines,
        simulated_ms,
        coverage: first.report.coverage.clone(),
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
        first.report.trace_hash,
        second.report.trace_hash,
        one.get(index).unwrap_or(&"<end>"),
        two.get(index).unwrap_or(&"<end>")
    )
}

pub fn sweep(seeds: &[u64], jobs: usize, plan: &Plan) -> Result<bool, String> {
    plan.setup.scenario()?;
    let started = Instant::now();
    let results = run_parallel(seeds, jobs, |seed| run_seed(seed, plan));
    summarise(&results, started)
}

pub fn run_parallel(
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
    let mut coverage = Coverage::default();
    for result in results {
        coverage.add(&result.coverage);
    }
    let table = coverage.table();
    if table.len() > 1 {
        println!("coverage: faults applied while some member was in each state (-: never)");
        for line in table {
            println!("  {line}");
        }
    }
    let points = coverage.fault_points_table();
    if !points.is_empty() {
        println!("fault points:");
        for line in points {
            println!("  {line}");
        }
    }
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

pub fn regressions(dir: &Path, jobs: usize, seed_timeout: Duration) -> Result<bool, String> {
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
