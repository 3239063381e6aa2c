//! `cairn-sim shrink`: runs the search of `cairn_sim::shrink` on a failing seed, each
//! candidate in a child process of its own, and prints the smallest run that still fails the
//! same checker as a scenario file for `scenarios/regressions/`.

use super::child::run_child;
use super::report::RunReport;
use super::Setup;
use cairn_sim::params::Params;
use cairn_sim::scenario::Scenario;
use cairn_sim::shrink::{self, complements, fault_positions, keeping, FaultPosition, Size};
use std::path::PathBuf;
use std::time::{Duration, Instant};

pub struct ShrinkPlan {
    pub seed: u64,
    pub setup: Setup,
    /// The checker the shrunk run must still fail (default: the first one the run fails).
    pub checker: Option<String>,
    pub jobs: usize,
    /// Candidate runs tried at most.
    pub runs_max: usize,
    pub seed_timeout: Duration,
    pub output: Option<PathBuf>,
}

struct Search<'a> {
    plan: &'a ShrinkPlan,
    checker: String,
    runs: usize,
    scratch: PathBuf,
}

impl Search<'_> {
    /// Runs the candidates, `jobs` at a time, in order; returns the index of the first that
    /// fails the checker (the same answer whatever `jobs` is), with its report.
    fn first_failing(&mut self, candidates: &[Scenario]) -> Option<(usize, RunReport)> {
        let jobs = self.plan.jobs.max(1);
        for (batch_index, batch) in candidates.chunks(jobs).enumerate() {
            if self.runs + batch.len() > self.plan.runs_max {
                return None;
            }
            let first = self.runs;
            self.runs += batch.len();
            let reports: Vec<Option<RunReport>> = std::thread::scope(|scope| {
                let runs: Vec<_> = batch
                    .iter()
                    .enumerate()
                    .map(|(offset, candidate)| {
                        let search = &*self;
                        scope.spawn(move || search.run(first + offset, candidate))
                    })
                    .collect();
                runs.into_iter()
                    .map(|run| run.join().ok().flatten())
                    .collect()
            });
            let found = reports
                .into_iter()
                .enumerate()
                .find_map(|(offset, report)| {
                    let report = report?;
                    self.fails(&report)
                        .then_some((batch_index * jobs + offset, report))
                });
            if found.is_some() {
                return found;
            }
        }
        None
    }

    fn fails(&self, report: &RunReport) -> bool {
        let tag = format!("VIOLATION [{}]", self.checker);
        report
            .violations
            .iter()
            .any(|violation| violation.starts_with(&tag))
    }

    /// One candidate in a child process; `None` if it could not run (a hang counts as not
    /// failing the checker: a shrink must not trade the bug for another).
    fn run(&self, number: usize, candidate: &Scenario) -> Option<RunReport> {
        let path = self.scratch.join(format!("candidate-{number}.toml"));
        std::fs::write(&path, toml::to_string(candidate).ok()?).ok()?;
        let setup = Setup {
            scenario: Some(path.clone()),
            ..Setup::default()
        };
        let trace = self.scratch.join(format!("candidate-{number}.trace"));
        let result = run_child(
            self.plan.seed,
            &setup,
            trace.clone(),
            self.plan.seed_timeout,
        );
        let _ = std::fs::remove_file(&path);
        let _ = std::fs::remove_file(&trace);
        result.ok().map(|run| run.report)
    }
}

pub fn shrink_seed(plan: &ShrinkPlan) -> Result<bool, String> {
    let started = Instant::now();
    let params = Params::draw(plan.seed, &plan.setup.scenario()?);
    let mut current = params.as_scenario();
    let scratch = std::env::temp_dir().join(format!("cairn-shrink-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).map_err(|error| format!("{}: {error}", scratch.display()))?;
    let mut search = Search {
        plan,
        checker: plan.checker.clone().unwrap_or_default(),
        runs: 0,
        scratch: scratch.clone(),
    };
    let result = search_from(&mut search, &mut current);
    let _ = std::fs::remove_dir_all(&scratch);
    let (start, end) = result?;
    current.description = Some(format!(
        "Seed {} shrunk by cairn-sim shrink from {start} to {end}; fails the {} checker.",
        plan.seed, search.checker
    ));
    let text = toml::to_string(&current).map_err(|error| error.to_string())?;
    println!("\n# the shrunk run, for scenarios/regressions/:\n{text}");
    if let Some(path) = &plan.output {
        std::fs::write(path, &text).map_err(|error| format!("{}: {error}", path.display()))?;
        println!("written to {}", path.display());
    }
    println!(
        "shrunk: from {start} to {end}; still fails [{}]; {} runs in {:.0} wall s",
        search.checker,
        search.runs,
        started.elapsed().as_secs_f64()
    );
    Ok(true)
}

/// Shrinks `current` in place; returns its size before and after.
fn search_from(search: &mut Search, current: &mut Scenario) -> Result<(Size, Size), String> {
    search.runs += 1;
    let report = search
        .run(0, current)
        .ok_or_else(|| format!("seed {}: the run did not finish", search.plan.seed))?;
    if search.checker.is_empty() {
        search.checker = report
            .violations
            .first()
            .and_then(|line| line.strip_prefix("VIOLATION ["))
            .and_then(|rest| rest.split(']').next())
            .ok_or_else(|| {
                format!(
                    "seed {}: the run passes; nothing to shrink",
                    search.plan.seed
                )
            })?
            .to_string();
    }
    if !search.fails(&report) {
        return Err(format!(
            "seed {}: the run does not fail the {} checker",
            search.plan.seed, search.checker
        ));
    }
    let start = Size::of(current, report.operations);
    let mut size = start;
    println!(
        "shrink seed {}: [{}] fails with {start}",
        search.plan.seed, search.checker
    );
    loop {
        let before = size;
        if let Some(smaller) = fewer_faults(search, current) {
            size = smaller;
        }
        loop {
            let candidates = shrink::workload_candidates(current);
            let Some((index, report)) = search.first_failing(&candidates) else {
                break;
            };
            *current = candidates[index].clone();
            size = Size::of(current, report.operations);
            println!("  run {}: {size}", search.runs);
        }
        if size == before || search.runs >= search.plan.runs_max {
            return Ok((start, size));
        }
    }
}

/// Delta debugging over the faults of the schedule (Zeller's ddmin): tries no faults at all,
/// then drops ever smaller chunks while the run still fails.
fn fewer_faults(search: &mut Search, current: &mut Scenario) -> Option<Size> {
    let rounds = current.fault_schedule.clone().unwrap_or_default();
    let mut kept: Vec<FaultPosition> = fault_positions(&rounds);
    if kept.is_empty() {
        return None;
    }
    let base = current.clone();
    let with = |kept: &[FaultPosition]| Scenario {
        fault_schedule: Some(keeping(&rounds, kept)),
        ..base.clone()
    };
    let mut size = None;
    let mut accept = |kept: &[FaultPosition], report: &RunReport, runs: usize| {
        *current = with(kept);
        let smaller = Size::of(current, report.operations);
        println!("  run {runs}: {smaller}");
        size = Some(smaller);
    };
    if let Some((_, report)) = search.first_failing(&[with(&[])]) {
        accept(&[], &report, search.runs);
        return size;
    }
    let mut parts = 2;
    while kept.len() > 1 {
        let candidates = complements(&kept, parts);
        let scenarios: Vec<Scenario> = candidates.iter().map(|kept| with(kept)).collect();
        match search.first_failing(&scenarios) {
            Some((index, report)) => {
                kept = candidates[index].clone();
                accept(&kept, &report, search.runs);
                parts = (parts - 1).max(2);
            }
            None if parts >= kept.len() || search.runs >= search.plan.runs_max => break,
            None => parts = (parts * 2).min(kept.len()),
        }
    }
    size
}
