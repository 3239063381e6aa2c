//! Which fault kinds met which member states: each fault, when it is applied, counts the
//! states the members that are up are in (as they tell `cairn::io::coverage`). A run prints
//! its counts in one line; a sweep adds them up and prints the table, so a pair that no
//! seed reached (a gap in what the sweep explores) shows as a dash. It counts the fault
//! points too: in how many runs each was on and how often it fired.

use crate::fault_kind::{FaultKind, ALL_FAULTS};
use cairn::io::coverage::MemberState;
use cairn::io::fault_points::FaultPoint;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Coverage {
    met: BTreeMap<(FaultKind, MemberState), u64>,
    /// Per fault point: the runs it was on in, and the times it fired in them.
    points: BTreeMap<FaultPoint, (u64, u64)>,
}

impl Coverage {
    /// A fault of `kind` was applied while members were in `states`.
    pub fn count(&mut self, kind: FaultKind, states: &[MemberState]) {
        for state in states {
            *self.met.entry((kind, *state)).or_default() += 1;
        }
    }

    /// One run's fault points (those it turned on) and how often each fired.
    pub fn count_fault_points(&mut self, fired: &[(FaultPoint, u64)]) {
        for (point, times) in fired {
            let entry = self.points.entry(*point).or_default();
            entry.0 += 1;
            entry.1 += times;
        }
    }

    pub fn add(&mut self, other: &Coverage) {
        for (pair, count) in &other.met {
            *self.met.entry(*pair).or_default() += count;
        }
        for (point, (runs, fired)) in &other.points {
            let entry = self.points.entry(*point).or_default();
            entry.0 += runs;
            entry.1 += fired;
        }
    }

    /// One run's fault points in one line: `apply-slowed=12,snapshot-now=0`.
    pub fn fault_points_line(&self) -> String {
        self.points
            .iter()
            .map(|(point, (_, fired))| format!("{}={fired}", point.name()))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Reads a run's `fault_points_line` back into this coverage.
    pub fn parse_fault_points(&mut self, line: &str) -> Option<()> {
        let mut fired = Vec::new();
        for part in line.split(',').filter(|part| !part.is_empty()) {
            let (name, times) = part.split_once('=')?;
            fired.push((FaultPoint::parse(name)?, times.parse().ok()?));
        }
        self.count_fault_points(&fired);
        Some(())
    }

    /// A line per fault point any run turned on: in how many runs, fired how often.
    pub fn fault_points_table(&self) -> Vec<String> {
        self.points
            .iter()
            .map(|(point, (runs, fired))| {
                format!(
                    "{:<30} on in {runs:>5} runs, fired {fired:>8} times",
                    point.name()
                )
            })
            .collect()
    }

    /// One line: `partition:leader=3,follower=4;kill:leader=1`.
    pub fn line(&self) -> String {
        let mut kinds: BTreeMap<FaultKind, Vec<String>> = BTreeMap::new();
        for ((kind, state), count) in &self.met {
            kinds
                .entry(*kind)
                .or_default()
                .push(format!("{}={count}", state.name()));
        }
        kinds
            .into_iter()
            .map(|(kind, states)| format!("{}:{}", kind.name(), states.join(",")))
            .collect::<Vec<_>>()
            .join(";")
    }

    pub fn parse(line: &str) -> Option<Coverage> {
        let mut coverage = Coverage::default();
        for part in line.split(';').filter(|part| !part.is_empty()) {
            let (kind, states) = part.split_once(':')?;
            let kind = FaultKind::parse(kind)?;
            for state in states.split(',') {
                let (name, count) = state.split_once('=')?;
                let state = MemberState::ALL
                    .into_iter()
                    .find(|state| state.name() == name)?;
                *coverage.met.entry((kind, state)).or_default() += count.parse::<u64>().ok()?;
            }
        }
        Some(coverage)
    }

    /// The table: a row per fault kind, a column per member state, faults counted in each
    /// cell; a dash where no fault of the kind met the state. Kinds no seed drew are left out.
    pub fn table(&self) -> Vec<String> {
        let width = |state: &MemberState| state.name().len().max(5);
        let mut header = format!("{:<18}", "fault \\ state");
        for state in MemberState::ALL {
            header += &format!(" {:>1$}", state.name(), width(&state));
        }
        let mut lines = vec![header];
        for kind in ALL_FAULTS {
            let row: Vec<u64> = MemberState::ALL
                .iter()
                .map(|state| self.met.get(&(kind, *state)).copied().unwrap_or(0))
                .collect();
            if row.iter().all(|count| *count == 0) {
                continue;
            }
            let mut line = format!("{:<18}", kind.name());
            for (state, count) in MemberState::ALL.iter().zip(row) {
                let cell = if count == 0 {
                    "-".to_string()
                } else {
                    count.to_string()
                };
                line += &format!(" {cell:>0$}", width(state));
            }
            lines.push(line);
        }
        lines
    }

    /// The pairs of kinds that were drawn and states no fault of theirs met.
    pub fn gaps(&self) -> Vec<(FaultKind, MemberState)> {
        ALL_FAULTS
            .into_iter()
            .filter(|kind| self.met.keys().any(|(met, _)| met == kind))
            .flat_map(|kind| MemberState::ALL.into_iter().map(move |state| (kind, state)))
            .filter(|pair| !self.met.contains_key(pair))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_read_back_from_their_line_and_add_up_in_the_table() {
        let mut one = Coverage::default();
        one.count(
            FaultKind::Partition,
            &[MemberState::Leader, MemberState::Follower],
        );
        one.count(FaultKind::Partition, &[MemberState::Leader]);
        one.count(FaultKind::DiskFull, &[MemberState::NoSpace]);
        let line = one.line();
        assert_eq!(line, "partition:leader=2,follower=1;disk-full:nospace=1");
        assert_eq!(Coverage::parse(&line), Some(one.clone()));
        assert_eq!(Coverage::parse(""), Some(Coverage::default()));
        assert_eq!(Coverage::parse("partition:queen=1"), None);
        let mut total = Coverage::default();
        total.add(&one);
        total.add(&one);
        let table = total.table();
        assert_eq!(table.len(), 3, "{table:#?}");
        assert!(table[1].starts_with("partition"));
        assert!(table[1].contains(" 4 "), "{}", table[1]);
        assert!(table[2].trim_end().ends_with('2'), "{}", table[2]);
        assert!(total
            .gaps()
            .contains(&(FaultKind::DiskFull, MemberState::Leader)));
        assert!(!total
            .gaps()
            .contains(&(FaultKind::Partition, MemberState::Leader)));
        assert!(total
            .gaps()
            .iter()
            .all(|(kind, _)| *kind != FaultKind::Kill));
    }

    #[test]
    fn fault_point_counts_read_back_and_add_up_per_run() {
        let mut one = Coverage::default();
        one.count_fault_points(&[(FaultPoint::ApplySlowed, 12), (FaultPoint::SnapshotNow, 0)]);
        let line = one.fault_points_line();
        assert_eq!(line, "snapshot-now=0,apply-slowed=12");
        let mut parsed = Coverage::default();
        assert_eq!(parsed.parse_fault_points(&line), Some(()));
        assert_eq!(parsed, one);
        assert_eq!(Coverage::default().parse_fault_points("apply-fast=1"), None);
        let mut total = Coverage::default();
        total.add(&one);
        total.add(&one);
        let table = total.fault_points_table();
        assert_eq!(table.len(), 2);
        assert!(table[1].starts_with("apply-slowed"), "{}", table[1]);
        assert!(
            table[1].contains("on in     2 runs, fired       24 times"),
            "{}",
            table[1]
        );
    }
}
