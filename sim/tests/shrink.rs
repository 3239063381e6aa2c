//! `cairn-sim shrink` on a planted bug's failing seed: the run it prints has fewer faults and
//! fewer operations than the seed's, and still fails the same checker when run again.
#![cfg(madsim)]

use std::process::Command;

fn cairn_sim(arguments: &[&str]) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_cairn-sim"))
        .args(arguments)
        .output()
        .expect("cairn-sim runs");
    let text = String::from_utf8_lossy(&output.stdout).to_string()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.success(), text)
}

/// The numbers of a size line: "6 faults, 4919 operations, 6 clients, fault phase 20000 ms".
fn faults_and_operations(size: &str) -> (usize, usize) {
    let number = |word: &str| {
        let before = size.split(word).next().unwrap();
        before
            .rsplit([' ', ','])
            .find(|part| !part.is_empty())
            .unwrap()
            .parse()
            .unwrap()
    };
    (number(" faults"), number(" operations"))
}

#[test]
fn a_shrunk_planted_bug_fails_the_same_checker_with_fewer_faults_and_operations() {
    let output =
        std::env::temp_dir().join(format!("cairn-shrink-test-{}.toml", std::process::id()));
    let output_path = output.to_str().unwrap();
    // batch-answers-out-of-order (src/io/planted.rs) fails seed 1 with six faults.
    let (passed, text) = cairn_sim(&[
        "shrink",
        "--seed",
        "1",
        "--planted-bug",
        "batch-answers-out-of-order",
        "--jobs",
        "2",
        "--runs-max",
        "40",
        "--output",
        output_path,
    ]);
    assert!(passed, "{text}");
    let summary = text
        .lines()
        .find_map(|line| line.strip_prefix("shrunk: from "))
        .unwrap_or_else(|| panic!("no summary in:\n{text}"));
    let (start, rest) = summary.split_once(" to ").unwrap();
    let (end, rest) = rest.split_once("; still fails ").unwrap();
    assert!(rest.starts_with("[linearizability]"), "{summary}");
    let (start_faults, start_operations) = faults_and_operations(start);
    let (end_faults, end_operations) = faults_and_operations(end);
    assert!(start_faults > 0, "{summary}");
    assert!(end_faults < start_faults, "{summary}");
    assert!(end_operations < start_operations, "{summary}");

    // The printed scenario is a regression that replays the failure.
    let scenario = std::fs::read_to_string(&output).unwrap();
    assert!(scenario.contains("seeds = [1]"), "{scenario}");
    let (passed, replay) = cairn_sim(&["run", "--seed", "1", "--scenario", output_path]);
    std::fs::remove_file(&output).unwrap();
    assert!(!passed, "{replay}");
    assert!(replay.contains("VIOLATION [linearizability]"), "{replay}");
    let operations = replay
        .lines()
        .find_map(|line| line.strip_prefix("operations: "))
        .and_then(|rest| rest.split(',').next())
        .and_then(|count| count.parse::<usize>().ok())
        .unwrap();
    assert_eq!(operations, end_operations, "{replay}");
}
