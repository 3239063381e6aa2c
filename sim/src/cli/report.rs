//! What `cairn-sim run` prints at the end of a run, and how a sweep reads it back from a
//! child process: one type does both, so the two cannot drift apart.

use cairn_sim::coverage::Coverage;
use cairn_sim::simulation::Outcome;

/// The parts of a run's report a sweep needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunReport {
    /// One `VIOLATION [checker] detail` line each.
    pub violations: Vec<String>,
    pub operations: usize,
    pub simulated_ms: u64,
    pub trace_hash: String,
    pub coverage: Coverage,
}

impl RunReport {
    pub fn of(outcome: &Outcome) -> RunReport {
        RunReport {
            violations: outcome
                .violations
                .iter()
                .map(|violation| format!("VIOLATION [{}] {}", violation.checker, violation.detail))
                .collect(),
            operations: outcome.operations,
            simulated_ms: outcome.simulated_ms,
            trace_hash: format!("{:016x}", outcome.trace_hash),
            coverage: {
                let mut coverage = outcome.coverage.clone();
                coverage.count_fault_points(&outcome.fault_points_fired);
                coverage
            },
        }
    }

    pub fn lines(&self) -> Vec<String> {
        let mut lines = self.violations.clone();
        lines.push(format!(
            "operations: {}, simulated: {:.1} s",
            self.operations,
            self.simulated_ms as f64 / 1000.0
        ));
        lines.push(format!("simulated-ms: {}", self.simulated_ms));
        lines.push(format!("coverage: {}", self.coverage.line()));
        lines.push(format!(
            "fault-points: {}",
            self.coverage.fault_points_line()
        ));
        lines.push(format!("trace-hash: {}", self.trace_hash));
        lines
    }

    /// The report in a run's output, `None` if there is none (the run crashed).
    pub fn parse(output: &str) -> Option<RunReport> {
        let value = |prefix: &str| output.lines().find_map(|line| line.strip_prefix(prefix));
        let trace_hash = value("trace-hash: ")?.to_string();
        let operations = value("operations: ")
            .and_then(|rest| rest.split(',').next())
            .and_then(|count| count.parse().ok())
            .unwrap_or(0);
        Some(RunReport {
            violations: output
                .lines()
                .filter(|line| line.starts_with("VIOLATION"))
                .map(str::to_string)
                .collect(),
            operations,
            simulated_ms: value("simulated-ms: ")
                .and_then(|ms| ms.parse().ok())
                .unwrap_or(0),
            trace_hash,
            coverage: value("coverage: ")
                .and_then(Coverage::parse)
                .map(|mut coverage| {
                    if let Some(line) = value("fault-points: ") {
                        coverage.parse_fault_points(line);
                    }
                    coverage
                })
                .unwrap_or_default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_printed_report_parses_back() {
        let mut report = RunReport {
            violations: vec!["VIOLATION [watch] watcher 1 missed revision 7".to_string()],
            operations: 1589,
            simulated_ms: 36250,
            trace_hash: "0aa55aa6df1bbe35".to_string(),
            coverage: Coverage::parse("kill:leader=1,nospace=2").unwrap(),
        };
        report
            .coverage
            .parse_fault_points("apply-slowed=3")
            .unwrap();
        let output = format!(
            "seed 1: Params {{ .. }}\nwall: 0.2 s\n{}\n",
            report.lines().join("\n")
        );
        assert_eq!(RunReport::parse(&output), Some(report));
        assert_eq!(RunReport::parse("thread panicked"), None);
    }
}
