//! The fault schedule of a run: rounds of faults, drawn from the seed before the run starts
//! (or fixed by a scenario), so a run's faults are a list that can be printed, edited and
//! shrunk (`cairn-sim shrink`) rather than draws interleaved with the run.
//!
//! A round waits, applies one or more faults (swarm testing: a partition while a member is
//! down and a disk is full), holds them, and heals everything. Each fault carries its own
//! seed for its choices (which member, which split), so removing one fault leaves the others
//! as they were.

use crate::fault_kind::FaultKind;
use crate::recorder::{now_ms, SharedRecorder};
use crate::seeds::Stream;
use cairn::io::coverage::MemberState;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultRound {
    /// Quiet time before the round's first fault, after the previous round healed.
    pub pause_ms: u64,
    /// The faults, applied one after another; empty for a round that only waits.
    #[serde(default)]
    pub faults: Vec<ScheduledFault>,
    /// How long the faults are held after the last one, before everything is healed.
    pub hold_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduledFault {
    /// Simulated time after the previous fault of the round (0 for the first).
    #[serde(default)]
    pub after_ms: u64,
    pub kind: FaultKind,
    /// Seeds the fault's own choices (victims, split, rates); at most `i64::MAX`.
    pub seed: u64,
}

impl FaultRound {
    /// Simulated time the round takes if applying its faults takes none.
    pub fn planned_ms(&self) -> u64 {
        self.pause_ms + self.faults.iter().map(|fault| fault.after_ms).sum::<u64>() + self.hold_ms
    }
}

/// What a drawn schedule is made of.
pub struct ScheduleShape<'a> {
    pub faults: &'a [FaultKind],
    pub fault_phase_ms: u64,
    pub fault_interval_ms: u64,
    pub fault_duration_max_ms: u64,
    /// Faults per round at most (1: one at a time).
    pub overlapping_faults_max: usize,
}

/// Draws the rounds that fit in the fault phase from the run's fault stream.
pub fn draw(seed: u64, shape: &ScheduleShape) -> Vec<FaultRound> {
    let mut random = Stream::Faults.random(seed);
    let mut rounds = Vec::new();
    if shape.faults.is_empty() {
        return rounds;
    }
    // Replacing a member is an operator's sequence of requests, asked of a healed cluster:
    // it only opens a round.
    let overlappable: Vec<FaultKind> = shape
        .faults
        .iter()
        .copied()
        .filter(|kind| *kind != FaultKind::MemberReplace)
        .collect();
    let mut planned_ms = 0;
    loop {
        let pause_ms =
            random.gen_range(shape.fault_interval_ms / 2..=shape.fault_interval_ms.max(1));
        let hold_ms = random.gen_range(100..=shape.fault_duration_max_ms.max(100));
        let count = random.gen_range(1..=shape.overlapping_faults_max.max(1));
        let mut faults = Vec::with_capacity(count);
        for position in 0..count {
            let choices = if position == 0 {
                shape.faults
            } else {
                &overlappable[..]
            };
            if choices.is_empty() {
                break;
            }
            faults.push(ScheduledFault {
                after_ms: if position == 0 {
                    0
                } else {
                    random.gen_range(0..=hold_ms)
                },
                kind: choices[random.gen_range(0..choices.len())],
                // Within TOML's integers, so a printed schedule reads back.
                seed: random.gen_range(0..=i64::MAX as u64),
            });
        }
        let round = FaultRound {
            pause_ms,
            faults,
            hold_ms,
        };
        if planned_ms + round.planned_ms() + shape.fault_interval_ms >= shape.fault_phase_ms {
            return rounds;
        }
        planned_ms += round.planned_ms();
        rounds.push(round);
    }
}

/// Whether a round that would start at `now_ms` still fits before the faults stop at
/// `stop_ms` (applying a fault can take time: a member replacement waits on the cluster).
pub fn fits(round: &FaultRound, now_ms: u64, stop_ms: u64) -> bool {
    now_ms + round.planned_ms() < stop_ms
}

/// What injects faults into a cluster: madsim nodes (`faults.rs`) or real processes
/// (`real/faults.rs`). Its futures need not be `Send`: both worlds await the schedule on
/// the task that runs the whole exercise.
#[allow(async_fn_in_trait)]
pub trait Injector {
    /// Applies one fault; returns a description for the trace, or what the cluster failed
    /// to do (a fault that is an operator's request).
    async fn apply(&mut self, kind: FaultKind, random: &mut SmallRng) -> Result<String, String>;
    /// Undoes every fault applied so far and waits for what they set going (a member
    /// replacement); returns a description for the trace, or what did not finish.
    async fn heal_everything(&mut self) -> Result<String, String>;
    /// The states the members that are up are in, for the coverage table (none known for
    /// real processes).
    fn member_states(&self) -> Vec<MemberState> {
        Vec::new()
    }
}

/// Plays the schedule's rounds until the faults stop at `stop_ms`, then waits until then.
/// The caller heals what the last round left.
pub async fn play(
    rounds: &[FaultRound],
    injector: &mut impl Injector,
    recorder: &SharedRecorder,
    stop_ms: u64,
) {
    for round in rounds {
        if !fits(round, now_ms(recorder), stop_ms) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(round.pause_ms)).await;
        for fault in &round.faults {
            tokio::time::sleep(Duration::from_millis(fault.after_ms)).await;
            let mut random = SmallRng::seed_from_u64(fault.seed);
            let states = injector.member_states();
            let applied = injector.apply(fault.kind, &mut random).await;
            if applied.is_ok() {
                recorder.lock().unwrap().coverage.count(fault.kind, &states);
            }
            note(
                recorder,
                applied.map(|description| format!("fault {description}")),
            );
        }
        tokio::time::sleep(Duration::from_millis(round.hold_ms)).await;
        note(recorder, injector.heal_everything().await);
    }
    let remaining_ms = stop_ms.saturating_sub(now_ms(recorder));
    tokio::time::sleep(Duration::from_millis(remaining_ms)).await;
}

/// Traces what a fault or a heal did; what it failed to do is also a stalled change, which
/// the liveness checker reports.
fn note(recorder: &SharedRecorder, done: Result<String, String>) {
    let mut recorder = recorder.lock().unwrap();
    match done {
        Ok(description) => recorder.note(description),
        Err(failure) => {
            recorder.note(format!("fault failed: {failure}"));
            recorder.history.stalled_changes.push(failure);
        }
    }
}

/// The number of faults in a schedule.
pub fn fault_count(rounds: &[FaultRound]) -> usize {
    rounds.iter().map(|round| round.faults.len()).sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fault_kind::ALL_FAULTS;

    fn shape(overlapping_faults_max: usize) -> ScheduleShape<'static> {
        ScheduleShape {
            faults: &ALL_FAULTS,
            fault_phase_ms: 20_000,
            fault_interval_ms: 2_000,
            fault_duration_max_ms: 3_000,
            overlapping_faults_max,
        }
    }

    #[test]
    fn a_drawn_schedule_fits_the_fault_phase_and_is_the_same_for_the_same_seed() {
        for seed in 0..50 {
            let rounds = draw(seed, &shape(3));
            assert_eq!(rounds, draw(seed, &shape(3)));
            assert!(!rounds.is_empty(), "seed {seed}");
            let planned: u64 = rounds.iter().map(FaultRound::planned_ms).sum();
            assert!(planned + 2_000 < 20_000, "seed {seed}: {planned} ms");
            for round in &rounds {
                assert!((1..=3).contains(&round.faults.len()));
                assert_eq!(round.faults[0].after_ms, 0);
                assert!(round.faults[1..]
                    .iter()
                    .all(|fault| fault.kind != FaultKind::MemberReplace));
            }
        }
    }

    #[test]
    fn one_fault_at_a_time_unless_overlap_is_allowed() {
        let overlapping: usize = (0..50)
            .map(|seed| fault_count(&draw(seed, &shape(3))))
            .sum();
        let rounds: usize = (0..50).map(|seed| draw(seed, &shape(3)).len()).sum();
        assert!(
            overlapping > rounds,
            "{overlapping} faults in {rounds} rounds"
        );
        for seed in 0..50 {
            assert!(draw(seed, &shape(1))
                .iter()
                .all(|round| round.faults.len() == 1));
        }
        assert!(draw(
            1,
            &ScheduleShape {
                faults: &[],
                ..shape(3)
            }
        )
        .is_empty());
    }

    #[test]
    fn a_schedule_reads_back_from_toml() {
        #[derive(Serialize, Deserialize, PartialEq, Debug)]
        struct File {
            fault_schedule: Vec<FaultRound>,
        }
        let file = File {
            fault_schedule: draw(7, &shape(3)),
        };
        let text = toml::to_string(&file).unwrap();
        assert_eq!(toml::from_str::<File>(&text).unwrap(), file);
        assert!(text.contains("kind = \""), "{text}");
    }
}
