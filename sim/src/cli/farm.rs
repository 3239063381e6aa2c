//! `cairn-sim farm`: seeds for hours, resumable. Each seed's result is one JSON line in
//! `<dir>/results.jsonl`, written as soon as its batch ends; a farm started again with the
//! same setup skips the seeds already there (with `--hours`, it goes on after the highest).
//! Every failure is shrunk (`shrink.rs`) and its smallest run saved as
//! `<dir>/failures/seed-<N>.toml`, with the replay command in its result line.

use super::shrink::{shrink_seed, ShrinkPlan};
use super::sweep::{run_parallel, run_seed, Plan};
use cairn_sim::coverage::Coverage;
use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub struct FarmPlan {
    pub plan: Plan,
    /// The seeds to run, or `None` for as many as fit in `hours` from `first_seed`.
    pub seeds: Option<Vec<u64>>,
    pub hours: Option<f64>,
    pub first_seed: u64,
    pub jobs: usize,
    pub dir: PathBuf,
    /// Candidate runs each failure's shrink may try.
    pub shrink_runs_max: usize,
}

/// Seeds a farm runs between writing results: small, so a stopped farm loses little.
const SEEDS_PER_BATCH_PER_JOB: usize = 4;

pub fn farm(farm: &FarmPlan) -> Result<bool, String> {
    farm.plan.setup.scenario()?;
    let setup = setup_key(farm);
    let results_path = farm.dir.join("results.jsonl");
    let failures_dir = farm.dir.join("failures");
    std::fs::create_dir_all(&failures_dir)
        .map_err(|error| format!("{}: {error}", failures_dir.display()))?;
    let done = seeds_done(&results_path, &setup)?;
    let started = Instant::now();
    let deadline = farm
        .hours
        .map(|hours| started + Duration::from_secs_f64(hours * 3600.0));
    let mut pending: Vec<u64> = match &farm.seeds {
        Some(seeds) => seeds
            .iter()
            .copied()
            .filter(|seed| !done.contains(seed))
            .collect(),
        None => Vec::new(),
    };
    let mut next_seed = done.iter().next_back().map_or(farm.first_seed, |highest| {
        (highest + 1).max(farm.first_seed)
    });
    println!(
        "farm: {} seeds already in {} for this setup; results append there",
        done.len(),
        results_path.display()
    );
    let (mut ran, mut failed) = (0usize, Vec::new());
    let mut coverage = Coverage::default();
    let batch_size = farm.jobs.max(1) * SEEDS_PER_BATCH_PER_JOB;
    loop {
        if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
            break;
        }
        let batch: Vec<u64> = if farm.seeds.is_some() {
            let count = batch_size.min(pending.len());
            pending.drain(..count).collect()
        } else {
            let batch = (next_seed..next_seed + batch_size as u64).collect();
            next_seed += batch_size as u64;
            batch
        };
        if batch.is_empty() {
            break;
        }
        for result in run_parallel(&batch, farm.jobs, |seed| run_seed(seed, &farm.plan)) {
            ran += 1;
            coverage.add(&result.coverage);
            let shrunk = if result.passed {
                None
            } else {
                failed.push(result.seed);
                shrink_failure(farm, result.seed, &failures_dir)
            };
            let line = serde_json::json!({
                "setup": setup,
                "seed": result.seed,
                "passed": result.passed,
                "simulated_ms": result.simulated_ms,
                "lines": result.lines,
                "replay": farm.plan.setup.replay_command(result.seed),
                "shrunk": shrunk.map(|path| path.display().to_string()),
            });
            append_line(&results_path, &line.to_string())?;
        }
    }
    for line in coverage
        .table()
        .into_iter()
        .chain(coverage.fault_points_table())
    {
        println!("  {line}");
    }
    println!(
        "farm: {ran} seeds in {:.0} wall s, {} failed {failed:?}; results in {}",
        started.elapsed().as_secs_f64(),
        failed.len(),
        results_path.display()
    );
    Ok(failed.is_empty())
}

/// What makes two farms' results comparable: everything in the replay command but the seed.
fn setup_key(farm: &FarmPlan) -> String {
    let mut key = farm
        .plan
        .setup
        .replay_command(0)
        .replacen("ci/sim run --seed 0", "", 1);
    if farm.plan.check_determinism {
        key += " --check-determinism";
    }
    key.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The seeds `results` already holds for `setup`.
fn seeds_done(results: &Path, setup: &str) -> Result<BTreeSet<u64>, String> {
    let text = match std::fs::read_to_string(results) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeSet::new()),
        Err(error) => return Err(format!("{}: {error}", results.display())),
    };
    let mut done = BTreeSet::new();
    for (number, line) in text.lines().enumerate() {
        // A farm killed mid-write leaves at most its last line torn: skip it, run it again.
        let Ok(value) = serde_json::from_str::<serde_json::Value>(line) else {
            eprintln!(
                "{}:{}: unreadable line skipped",
                results.display(),
                number + 1
            );
            continue;
        };
        if value["setup"] == setup {
            if let Some(seed) = value["seed"].as_u64() {
                done.insert(seed);
            }
        }
    }
    Ok(done)
}

/// Appends `line`, first ending a torn last line (a farm killed mid-write) so the new one
/// stays whole.
fn append_line(path: &Path, line: &str) -> Result<(), String> {
    use std::io::{Read, Seek, SeekFrom};
    let failed = |error: std::io::Error| format!("{}: {error}", path.display());
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .read(true)
        .append(true)
        .open(path)
        .map_err(failed)?;
    let mut last = [b'\n'];
    if file.metadata().map_err(failed)?.len() > 0 {
        file.seek(SeekFrom::End(-1)).map_err(failed)?;
        file.read_exact(&mut last).map_err(failed)?;
    }
    let separator = if last[0] == b'\n' { "" } else { "\n" };
    writeln!(file, "{separator}{line}").map_err(failed)
}

/// Shrinks a failing seed into `failures/seed-N.toml`; the path, or `None` if the shrink
/// could not finish (the failure is still in the results, with its replay command).
fn shrink_failure(farm: &FarmPlan, seed: u64, failures_dir: &Path) -> Option<PathBuf> {
    let output = failures_dir.join(format!("seed-{seed}.toml"));
    let plan = ShrinkPlan {
        seed,
        setup: farm.plan.setup.clone(),
        checker: None,
        jobs: farm.jobs,
        runs_max: farm.shrink_runs_max,
        seed_timeout: farm.plan.seed_timeout,
        output: Some(output.clone()),
    };
    match shrink_seed(&plan) {
        Ok(_) => Some(output),
        Err(error) => {
            eprintln!("farm: seed {seed} not shrunk: {error}");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_farm_resumes_after_the_seeds_of_its_own_setup_and_skips_a_torn_line() {
        let path =
            std::env::temp_dir().join(format!("cairn-farm-test-{}.jsonl", std::process::id()));
        let lines = [
            r#"{"setup":"--scenario a.toml","seed":1,"passed":true}"#,
            r#"{"setup":"--scenario b.toml","seed":2,"passed":true}"#,
            r#"{"setup":"--scenario a.toml","seed":3,"passed":false}"#,
            r#"{"setup":"--scenario a.toml","se"#,
        ];
        std::fs::write(&path, lines.join("\n")).unwrap();
        let done = seeds_done(&path, "--scenario a.toml").unwrap();
        assert_eq!(done.into_iter().collect::<Vec<_>>(), vec![1, 3]);
        append_line(&path, r#"{"setup":"--scenario a.toml","seed":4}"#).unwrap();
        assert!(seeds_done(&path, "--scenario a.toml").unwrap().contains(&4));
        std::fs::remove_file(&path).unwrap();
        assert!(seeds_done(&path, "").unwrap().is_empty());
    }
}
