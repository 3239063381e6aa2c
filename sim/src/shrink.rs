//! The search behind `cairn-sim shrink`: from a failing run, fixed as a scenario, smaller
//! runs to try. Fewer faults (delta debugging over the fault schedule), a shorter fault
//! phase, fewer clients, and workload features turned off. Which candidate still fails is
//! for the caller to find out, by running it.

use crate::scenario::Scenario;
use crate::schedule::{fault_count, FaultRound};

/// A fault's place in a schedule: (round, position in the round).
pub type FaultPosition = (usize, usize);

pub fn fault_positions(rounds: &[FaultRound]) -> Vec<FaultPosition> {
    rounds
        .iter()
        .enumerate()
        .flat_map(|(round, faults)| (0..faults.faults.len()).map(move |position| (round, position)))
        .collect()
}

/// The schedule with only the faults at `kept`. A removed fault's wait moves to what follows
/// it, so the faults that stay happen when they did; rounds left empty become quiet time
/// before the next round.
pub fn keeping(rounds: &[FaultRound], kept: &[FaultPosition]) -> Vec<FaultRound> {
    let mut thinned = Vec::with_capacity(rounds.len());
    for (index, round) in rounds.iter().enumerate() {
        let mut faults = Vec::new();
        let mut carried_ms = 0;
        for (position, fault) in round.faults.iter().enumerate() {
            if kept.contains(&(index, position)) {
                let mut fault = fault.clone();
                fault.after_ms += carried_ms;
                carried_ms = 0;
                faults.push(fault);
            } else {
                carried_ms += fault.after_ms;
            }
        }
        thinned.push(FaultRound {
            pause_ms: round.pause_ms,
            faults,
            hold_ms: round.hold_ms + carried_ms,
        });
    }
    compact(thinned)
}

/// Merges each empty round into the next one's pause and drops empty rounds at the end.
pub fn compact(rounds: Vec<FaultRound>) -> Vec<FaultRound> {
    let mut compacted = Vec::with_capacity(rounds.len());
    let mut quiet_ms = 0;
    for mut round in rounds {
        if round.faults.is_empty() {
            quiet_ms += round.pause_ms + round.hold_ms;
            continue;
        }
        round.pause_ms += quiet_ms;
        quiet_ms = 0;
        compacted.push(round);
    }
    compacted
}

/// The rounds that fit in a fault phase of `fault_phase_ms` (as `schedule::play` would
/// play them if applying a fault took no time).
pub fn fitting(rounds: &[FaultRound], fault_phase_ms: u64) -> Vec<FaultRound> {
    let mut planned_ms = 0;
    rounds
        .iter()
        .take_while(|round| {
            planned_ms += round.planned_ms();
            planned_ms < fault_phase_ms
        })
        .cloned()
        .collect()
}

/// The parts of `items` split into `parts` chunks of nearly equal size, each chunk's
/// complement: the candidates of one delta-debugging step.
pub fn complements<T: Clone>(items: &[T], parts: usize) -> Vec<Vec<T>> {
    let parts = parts.clamp(1, items.len().max(1));
    let size = items.len().div_ceil(parts);
    (0..parts)
        .map(|part| {
            items
                .iter()
                .enumerate()
                .filter(|(index, _)| index / size.max(1) != part)
                .map(|(_, item)| item.clone())
                .collect()
        })
        .collect()
}

/// Smaller workloads to try, each one change away from `scenario`, in the order tried:
/// a shorter fault phase, fewer clients, features off.
pub fn workload_candidates(scenario: &Scenario) -> Vec<Scenario> {
    let mut candidates = Vec::new();
    let mut push = |change: &dyn Fn(&mut Scenario)| {
        let mut candidate = scenario.clone();
        change(&mut candidate);
        if candidate_differs(&candidate, scenario) {
            candidates.push(candidate);
        }
    };
    let phase_ms = scenario.fault_phase_ms.unwrap_or(20_000);
    // Faults stop a second after the last round heals.
    let rounds = scenario.fault_schedule.as_deref().unwrap_or_default();
    let rounds_end_ms = rounds.iter().map(FaultRound::planned_ms).sum::<u64>() + 1_000;
    if !rounds.is_empty() && rounds_end_ms < phase_ms {
        push(&|candidate| candidate.fault_phase_ms = Some(rounds_end_ms));
    }
    // Down to two seconds: the workload needs a little time to do anything.
    if phase_ms / 2 >= 2_000 {
        push(&|candidate| {
            let shorter_ms = phase_ms / 2;
            candidate.fault_phase_ms = Some(shorter_ms);
            let rounds = candidate.fault_schedule.take().unwrap_or_default();
            candidate.fault_schedule = Some(fitting(&rounds, shorter_ms));
        });
    }
    let clients = scenario.clients.unwrap_or(1);
    let fewer: std::collections::BTreeSet<usize> = [1, clients / 2, clients.saturating_sub(1)]
        .into_iter()
        .filter(|fewer| (1..clients).contains(fewer))
        .collect();
    for fewer in fewer {
        push(&|candidate| candidate.clients = Some(fewer));
    }
    push(&|candidate| candidate.watchers = Some(0));
    push(&|candidate| candidate.lease_clients = Some(0));
    push(&|candidate| candidate.compactions = Some(false));
    push(&|candidate| candidate.ranges_percent = Some(0));
    push(&|candidate| candidate.value_padding_bytes = Some(0));
    candidates
}

fn candidate_differs(candidate: &Scenario, scenario: &Scenario) -> bool {
    toml::to_string(candidate).ok() != toml::to_string(scenario).ok()
}

/// How big a run is, for the shrink's progress lines and its summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size {
    pub faults: usize,
    pub operations: usize,
    pub clients: usize,
    pub fault_phase_ms: u64,
}

impl Size {
    pub fn of(scenario: &Scenario, operations: usize) -> Size {
        Size {
            faults: fault_count(scenario.fault_schedule.as_deref().unwrap_or_default()),
            operations,
            clients: scenario.clients.unwrap_or(0),
            fault_phase_ms: scenario.fault_phase_ms.unwrap_or(0),
        }
    }
}

impl std::fmt::Display for Size {
    fn fmt(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(
            formatter,
            "{} faults, {} operations, {} clients, fault phase {} ms",
            self.faults, self.operations, self.clients, self.fault_phase_ms
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fault_kind::FaultKind;
    use crate::schedule::ScheduledFault;

    fn fault(after_ms: u64, kind: FaultKind) -> ScheduledFault {
        ScheduledFault {
            after_ms,
            kind,
            seed: 9,
        }
    }

    fn schedule() -> Vec<FaultRound> {
        vec![
            FaultRound {
                pause_ms: 1_000,
                faults: vec![fault(0, FaultKind::Kill), fault(300, FaultKind::Partition)],
                hold_ms: 2_000,
            },
            FaultRound {
                pause_ms: 1_500,
                faults: vec![fault(0, FaultKind::DiskFull)],
                hold_ms: 500,
            },
            FaultRound {
                pause_ms: 700,
                faults: vec![fault(0, FaultKind::Pause), fault(100, FaultKind::Isolate)],
                hold_ms: 400,
            },
        ]
    }

    fn total_ms(rounds: &[FaultRound]) -> u64 {
        rounds.iter().map(FaultRound::planned_ms).sum()
    }

    #[test]
    fn removed_faults_leave_the_others_at_their_times() {
        let rounds = schedule();
        let all = fault_positions(&rounds);
        assert_eq!(all.len(), 5);
        assert_eq!(keeping(&rounds, &all), rounds);
        // Without the first round's kill, its partition still comes 300 ms into the round.
        let thinned = keeping(&rounds, &[(0, 1), (1, 0), (2, 0), (2, 1)]);
        assert_eq!(thinned[0].faults, vec![fault(300, FaultKind::Partition)]);
        assert_eq!(total_ms(&thinned), total_ms(&rounds));
        // Without its last fault, a round holds what followed it for as long.
        let thinned = keeping(&rounds, &[(0, 0), (1, 0), (2, 0)]);
        assert_eq!(thinned[2].hold_ms, 500);
        // An emptied round becomes quiet time before the next; empty rounds at the end go.
        let thinned = keeping(&rounds, &[(2, 0)]);
        assert_eq!(thinned.len(), 1);
        assert_eq!(thinned[0].pause_ms, 3_300 + 2_000 + 700);
        assert!(keeping(&rounds, &[]).is_empty());
    }

    #[test]
    fn complements_cover_every_item_once_and_fitting_cuts_at_the_phase() {
        let items: Vec<u32> = (0..5).collect();
        let candidates = complements(&items, 2);
        assert_eq!(candidates, vec![vec![3, 4], vec![0, 1, 2]]);
        assert_eq!(complements(&items, 9).len(), 5);
        assert!(complements(&items, 5).iter().all(|c| c.len() == 4));
        let rounds = schedule();
        assert_eq!(fitting(&rounds, 3_301).len(), 1);
        assert_eq!(fitting(&rounds, 3_300).len(), 0);
        assert_eq!(fitting(&rounds, 100_000), rounds);
    }

    #[test]
    fn workload_candidates_each_make_one_thing_smaller() {
        let scenario = Scenario {
            fault_phase_ms: Some(20_000),
            fault_schedule: Some(schedule()),
            clients: Some(4),
            watchers: Some(2),
            lease_clients: Some(0),
            compactions: Some(true),
            ranges_percent: Some(5),
            value_padding_bytes: Some(0),
            ..Scenario::default()
        };
        let candidates = workload_candidates(&scenario);
        // Phase ended after the last round, phase halved, clients 1, 2 and 3, watchers,
        // compactions, ranges; the lease clients and padding are already off.
        assert_eq!(candidates.len(), 8);
        assert_eq!(
            candidates[0].fault_phase_ms,
            Some(total_ms(&schedule()) + 1_000)
        );
        assert_eq!(candidates[1].fault_phase_ms, Some(10_000));
        assert_eq!(candidates[1].fault_schedule.as_ref().unwrap().len(), 3);
        let clients: Vec<_> = candidates[2..5].iter().map(|c| c.clients).collect();
        assert_eq!(clients, vec![Some(1), Some(2), Some(3)]);
        assert!(workload_candidates(&Scenario {
            fault_phase_ms: Some(3_000),
            clients: Some(1),
            watchers: Some(0),
            lease_clients: Some(0),
            compactions: Some(false),
            ranges_percent: Some(0),
            value_padding_bytes: Some(0),
            ..Scenario::default()
        })
        .is_empty());
    }
}
