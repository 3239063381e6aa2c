//! Replays every checked-in fuzz corpus (`fuzz/corpus/<target>/`) through its target on the
//! stable toolchain, so `cargo test` keeps each input that once mattered passing. `cargo
//! fuzz run <target>` (see README) explores beyond them.
#![cfg(not(madsim))]

#[path = "../fuzz/src/targets.rs"]
mod targets;

fn replay(target: &str, run: fn(&[u8])) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut inputs: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|error| panic!("{}: {error}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    inputs.sort();
    assert!(!inputs.is_empty(), "{}: no corpus", dir.display());
    for input in inputs {
        let data = std::fs::read(&input).unwrap();
        let outcome = std::panic::catch_unwind(|| run(&data));
        assert!(outcome.is_ok(), "{target} panicked on {}", input.display());
    }
}

#[test]
fn wal_recovery_corpus() {
    replay("wal_recovery", targets::wal_recovery);
}

#[test]
fn snapshot_load_corpus() {
    replay("snapshot_load", targets::snapshot_load);
}

#[test]
fn peer_message_corpus() {
    replay("peer_message", targets::peer_message);
}

#[test]
fn txn_apply_corpus() {
    replay("txn_apply", targets::txn_apply);
}

#[test]
fn etcd_database_corpus() {
    replay("etcd_database", targets::etcd_database);
}

#[test]
fn kv_model_corpus() {
    replay("kv_model", targets::kv_model);
}

#[test]
fn watch_requests_corpus() {
    replay("watch_requests", targets::watch_requests);
}

#[test]
fn commands_apply_corpus() {
    replay("commands_apply", targets::commands_apply);
}
