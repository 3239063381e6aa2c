//! The NOSPACE alarm with the real etcdctl, as etcd's runbook goes: a small
//! `--quota-backend-bytes` fills, the alarm is raised and listed, writes and lease grants are
//! refused with etcd's error while deletes and reads go on, the alarm survives a restart, and
//! compaction + defrag + `alarm disarm` clear it; nothing acknowledged is lost. With
//! `--auto-disarm-nospace` it clears by itself once compaction freed room.
#![cfg(not(madsim))]

mod common;

use common::{curl, Server};
use std::time::{Duration, Instant};

const NO_SPACE: &str = "etcdserver: mvcc: database space exceeded";
const QUOTA: &str = "--quota-backend-bytes=200000";

/// Puts 10 KiB values until the quota refuses one; the keys acknowledged.
fn fill(server: &Server) -> Vec<String> {
    let value = "x".repeat(10 * 1024);
    let mut acknowledged = Vec::new();
    for index in 0..100 {
        let key = format!("fill{index:03}");
        let output = server.etcdctl(&["put", &key, &value]);
        if output.status.success() {
            acknowledged.push(key);
            continue;
        }
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains(NO_SPACE),
            "refused with etcd's error: {stderr}"
        );
        return acknowledged;
    }
    panic!("the quota never filled");
}

fn alarms(server: &Server) -> String {
    server.ok(&["alarm", "list"])
}

#[test]
fn nospace_is_raised_listed_persisted_and_cleared_as_in_etcd() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(&dir.path().join("data"), &[QUOTA]);
    let acknowledged = fill(&server);
    assert!(acknowledged.len() > 5, "{acknowledged:?}");
    assert!(
        alarms(&server).contains("alarm:NOSPACE"),
        "{}",
        alarms(&server)
    );

    // While raised: any put and any lease grant is refused, even a tiny one; reads and
    // deletes go on.
    assert!(server.fails(&["put", "small", "1"]).contains(NO_SPACE));
    assert!(server.fails(&["lease", "grant", "60"]).contains(NO_SPACE));
    assert!(server
        .ok(&["get", "fill000", "--print-value-only"])
        .starts_with("xxx"));
    let status = server.ok(&["endpoint", "status", "-w", "json"]);
    assert!(
        status.contains("alarm:NOSPACE"),
        "Status lists the alarm: {status}"
    );
    let health = curl(&[&format!("http://{}/health", server.endpoint)]);
    assert!(health.body.contains("ALARM NOSPACE"), "{}", health.body);
    let excluded = curl(&[&format!(
        "http://{}/health?exclude=NOSPACE",
        server.endpoint
    )]);
    assert!(
        excluded.body.contains("\"health\":\"true\""),
        "{}",
        excluded.body
    );

    // Replicated and persisted: a restart keeps it.
    server.restart();
    assert!(alarms(&server).contains("alarm:NOSPACE"));
    assert!(server.fails(&["put", "small", "1"]).contains(NO_SPACE));
    let stored = server.ok(&["get", "fill", "--prefix", "--keys-only"]);
    let stored: Vec<&str> = stored.lines().filter(|line| !line.is_empty()).collect();
    assert_eq!(
        stored, acknowledged,
        "every acknowledged put is kept, nothing else"
    );

    // etcd's runbook: free space, compact, defrag, disarm.
    server.ok(&["del", "fill", "--prefix"]);
    let revision: serde_json::Value =
        serde_json::from_str(&server.ok(&["get", "x", "-w", "json"])).unwrap();
    let revision = revision["header"]["revision"].to_string();
    server.ok(&["compact", &revision]);
    let db_size = |server: &Server| -> u64 {
        let status: serde_json::Value =
            serde_json::from_str(&server.ok(&["endpoint", "status", "-w", "json"])).unwrap();
        status[0]["Status"]["dbSize"].as_u64().unwrap()
    };
    let before = db_size(&server);
    assert!(server.ok(&["defrag"]).contains("Finished defragmenting"));
    let after = db_size(&server);
    assert!(
        after < before / 2,
        "defrag rewrites the snapshot and drops the WAL: {before} -> {after} bytes"
    );
    assert!(
        alarms(&server).contains("alarm:NOSPACE"),
        "only a disarm clears it"
    );
    assert!(server.ok(&["alarm", "disarm"]).contains("alarm:NOSPACE"));
    assert_eq!(alarms(&server).trim(), "");
    server.ok(&["put", "small", "1"]);
    server.ok(&["lease", "grant", "60"]);
}

#[test]
fn auto_disarm_clears_nospace_once_compaction_freed_room() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), &[QUOTA, "--auto-disarm-nospace"]);
    let acknowledged = fill(&server);
    assert!(alarms(&server).contains("alarm:NOSPACE"));
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        alarms(&server).contains("alarm:NOSPACE"),
        "still full: stays raised"
    );
    server.ok(&["del", "fill", "--prefix"]);
    let revision: serde_json::Value =
        serde_json::from_str(&server.ok(&["get", "x", "-w", "json"])).unwrap();
    server.ok(&["compact", &revision["header"]["revision"].to_string()]);
    let deadline = Instant::now() + Duration::from_secs(15);
    while alarms(&server).contains("alarm:NOSPACE") {
        assert!(Instant::now() < deadline, "NOSPACE was not disarmed");
        std::thread::sleep(Duration::from_millis(200));
    }
    server.ok(&["put", &acknowledged[0], "again"]);
    let log = std::fs::read_to_string(&server.log).unwrap();
    assert!(
        log.contains("NOSPACE disarmed by --auto-disarm-nospace"),
        "logged"
    );
}
