//! The real `etcdctl` (Debian's etcd-client, etcd 3.4) against the real `cairn` binary:
//! what a user of etcd would type, and what etcd would answer.
// These start real processes on real sockets; the simulator has its own tests in sim/.
#![cfg(not(madsim))]

mod common;

use common::{etcdctl_background, stop_and_read, Server};
use std::time::Duration;

fn server(extra_args: &[&str]) -> (tempfile::TempDir, Server) {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), extra_args);
    (dir, server)
}

#[test]
fn put_and_get_with_every_flag() {
    let (_dir, server) = server(&[]);
    for (key, value) in [("a", "1"), ("b", "2"), ("c", "3"), ("d", "4")] {
        assert_eq!(server.ok(&["put", key, value]), "OK\n");
    }
    assert_eq!(server.ok(&["get", "a"]), "a\n1\n");
    assert_eq!(server.ok(&["get", "a", "c"]), "a\n1\nb\n2\n");
    assert_eq!(
        server.ok(&["get", "b", "--from-key", "--keys-only"]),
        "b\n\nc\n\nd\n\n"
    );
    assert_eq!(
        server.ok(&["get", "", "--prefix", "--limit=2", "--print-value-only"]),
        "1\n2\n"
    );
    assert_eq!(
        server.ok(&[
            "get",
            "",
            "--prefix",
            "--sort-by=VALUE",
            "--order=DESCEND",
            "--print-value-only"
        ]),
        "4\n3\n2\n1\n"
    );
    assert_eq!(
        server.ok(&["get", "a", "--rev=2", "--print-value-only"]),
        "1\n"
    );
    let json = server.ok(&["get", "", "--prefix", "--limit=1", "-w", "json"]);
    assert!(
        json.contains("\"more\":true") && json.contains("\"count\":4"),
        "{json}"
    );
    let json = server.ok(&["get", "", "--prefix", "--consistency=s", "-w", "json"]);
    assert!(json.contains("\"revision\":5"), "{json}");
    assert_eq!(server.ok(&["put", "a", "10", "--prev-kv"]), "OK\na\n1\n");
    assert_eq!(server.ok(&["put", "a", "--ignore-value"]), "OK\n");
    assert_eq!(server.ok(&["get", "a", "--print-value-only"]), "10\n");
    let json = server.ok(&["get", "a", "-w", "json"]);
    assert!(
        json.contains("\"version\":3") && json.contains("\"create_revision\":2"),
        "{json}"
    );
    assert!(server
        .fails(&["put", "missing", "--ignore-value"])
        .contains("etcdserver: key not found"));
    assert_eq!(server.ok(&["del", "a", "--prev-kv"]), "1\na\n10\n");
    assert_eq!(server.ok(&["del", "b", "--from-key"]), "3\n");
    assert_eq!(server.ok(&["get", "", "--prefix"]), "");
    assert_eq!(server.ok(&["del", "nothing"]), "0\n");
}

#[test]
fn txn_compares_and_branches() {
    let (_dir, server) = server(&["--max-txn-ops=3"]);
    server.ok(&["put", "k", "v1"]);
    let txn = "value(\"k\") = \"v1\"\nversion(\"k\") = \"1\"\nmod(\"k\") > \"1\"\n\nput k v2\nget k\n\nput k failed\n\n";
    let output = server.etcdctl_input(&["txn"], txn);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        String::from_utf8(output.stdout).unwrap(),
        "SUCCESS\n\nOK\n\nk\nv2\n"
    );
    let txn = "create(\"k\") = \"0\"\n\nput k created\n\nput other took-failure-branch\n\n";
    let output = server.etcdctl_input(&["txn"], txn);
    assert_eq!(String::from_utf8(output.stdout).unwrap(), "FAILURE\n\nOK\n");
    assert_eq!(
        server.ok(&["get", "other", "--print-value-only"]),
        "took-failure-branch\n"
    );
    let duplicate = server.etcdctl_input(&["txn"], "\nput x 1\nput x 2\n\n\n");
    assert!(String::from_utf8_lossy(&duplicate.stderr)
        .contains("etcdserver: duplicate key given in txn request"));
    let too_many = server.etcdctl_input(&["txn"], "\nput x 1\nput y 2\nput z 3\nput w 4\n\n\n");
    assert!(String::from_utf8_lossy(&too_many.stderr)
        .contains("etcdserver: too many operations in txn request"));
}

#[test]
fn watch_history_live_and_compaction() {
    let (_dir, server) = server(&[]);
    server.ok(&["put", "w/a", "1"]);
    server.ok(&["put", "w/b", "2"]);
    server.ok(&["del", "w/a"]);
    let history = stop_and_read(
        etcdctl_background(
            &server.endpoint,
            &["watch", "w/", "--prefix", "--rev=1", "--prev-kv"],
        ),
        Duration::from_millis(1500),
    );
    // etcdctl prints an event's prev_kv before its kv.
    assert_eq!(history, "PUT\nw/a\n1\nPUT\nw/b\n2\nDELETE\nw/a\n1\nw/a\n\n");
    let live = etcdctl_background(&server.endpoint, &["watch", "w/b"]);
    std::thread::sleep(Duration::from_millis(700));
    server.ok(&["put", "w/b", "3"]);
    server.ok(&["put", "w/other", "ignored"]);
    server.ok(&["put", "w/b", "4"]);
    assert_eq!(
        stop_and_read(live, Duration::from_millis(700)),
        "PUT\nw/b\n3\nPUT\nw/b\n4\n"
    );
    assert_eq!(server.ok(&["compact", "5"]), "compacted revision 5\n");
    let output = server.etcdctl(&["watch", "w/b", "--rev=2"]);
    assert!(
        String::from_utf8_lossy(&output.stderr).contains(
            "watch was canceled (etcdserver: mvcc: required revision has been compacted)"
        ),
        "{output:?}"
    );
    assert!(server
        .fails(&["get", "w/b", "--rev=4"])
        .contains("etcdserver: mvcc: required revision has been compacted"));
    assert!(server
        .fails(&["get", "w/b", "--rev=99"])
        .contains("etcdserver: mvcc: required revision is a future revision"));
    assert!(server
        .fails(&["compact", "3"])
        .contains("etcdserver: mvcc: required revision has been compacted"));
    assert_eq!(
        server.ok(&["get", "w/b", "--rev=5", "--print-value-only"]),
        "3\n"
    );
}

#[test]
fn leases_grant_keepalive_timetolive_revoke() {
    let (_dir, server) = server(&[]);
    let granted = server.ok(&["lease", "grant", "60"]);
    let id = granted.split_whitespace().nth(1).unwrap().to_string();
    assert!(granted.ends_with("granted with TTL(60s)\n"), "{granted}");
    server.ok(&["put", "leased", "v", &format!("--lease={id}")]);
    server.ok(&["put", "leased2", "v", &format!("--lease={id}")]);
    let ttl = server.ok(&["lease", "timetolive", &id, "--keys"]);
    assert!(
        ttl.contains("granted with TTL(60s)") && ttl.contains("attached keys([leased leased2])"),
        "{ttl}"
    );
    assert!(server
        .ok(&["lease", "keep-alive", "--once", &id])
        .contains("keepalived with TTL(60)"));
    assert!(server.ok(&["lease", "list"]).contains(&id));
    let short = server.ok(&["lease", "grant", "1"]);
    assert!(
        short.ends_with("granted with TTL(2s)\n"),
        "minimum TTL is 1.5 election timeouts: {short}"
    );
    assert!(server
        .fails(&["put", "x", "v", "--lease=999"])
        .contains("etcdserver: requested lease not found"));
    assert_eq!(
        server.ok(&["lease", "revoke", &id]),
        format!("lease {id} revoked\n")
    );
    assert_eq!(server.ok(&["get", "leased", "--prefix"]), "");
    assert!(server
        .fails(&["lease", "revoke", &id])
        .contains("etcdserver: requested lease not found"));
    assert!(server
        .ok(&["lease", "timetolive", &id])
        .contains("already expired"));
}

#[test]
fn short_leases_expire_and_take_their_keys() {
    let (_dir, server) = server(&["--election-timeout=500", "--heartbeat-interval=50"]);
    let granted = server.ok(&["lease", "grant", "1"]);
    let id = granted.split_whitespace().nth(1).unwrap().to_string();
    server.ok(&["put", "ephemeral", "v", &format!("--lease={id}")]);
    let watch = etcdctl_background(&server.endpoint, &["watch", "ephemeral"]);
    let mut gone = false;
    for _ in 0..50 {
        std::thread::sleep(Duration::from_millis(200));
        if server.ok(&["get", "ephemeral"]).is_empty() {
            gone = true;
            break;
        }
    }
    assert!(gone, "the key outlived its 1 s lease by more than 10 s");
    assert_eq!(
        stop_and_read(watch, Duration::from_millis(300)),
        "DELETE\nephemeral\n\n"
    );
}

#[test]
fn status_health_hash_and_members() {
    let (_dir, server) = server(&[]);
    server.ok(&["put", "k", "v"]);
    let status = server.ok(&["endpoint", "status", "-w", "json"]);
    assert!(
        status.contains("\"version\":\"3.5.13\"") && status.contains("\"raft_term\":"),
        "{status}"
    );
    let member_id = status
        .split("\"member_id\":")
        .nth(1)
        .unwrap()
        .split(',')
        .next()
        .unwrap()
        .to_string();
    let leader = status
        .split("\"leader\":")
        .nth(1)
        .unwrap()
        .split(',')
        .next()
        .unwrap()
        .to_string();
    assert_eq!(member_id, leader, "a one-member cluster leads itself");
    let output = server.etcdctl(&["endpoint", "health"]);
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("is healthy"),
        "{output:?}"
    );
    let first = server.ok(&["endpoint", "hashkv"]);
    assert_eq!(
        first,
        server.ok(&["endpoint", "hashkv"]),
        "hash is stable without writes"
    );
    server.ok(&["put", "k", "changed"]);
    assert_ne!(first, server.ok(&["endpoint", "hashkv"]));
    let members = server.ok(&["member", "list"]);
    assert!(
        members.contains(", started, ") && members.contains(&server.endpoint),
        "{members}"
    );
    // A second voter that has not started would leave one started member of two: no quorum,
    // so etcd (and Cairn) refuse it.
    let refused = server.fails(&["member", "add", "x", "--peer-urls=http://127.0.0.1:1"]);
    assert!(
        refused.contains("etcdserver: unhealthy cluster"),
        "{refused}"
    );
}

#[test]
fn limits_and_bad_input_get_etcd_errors() {
    let (_dir, server) = server(&["--max-request-bytes=1024"]);
    let large = "x".repeat(2000);
    assert!(server
        .fails(&["put", "k", &large])
        .contains("etcdserver: request is too large"));
    assert!(server
        .fails(&["put", "", "v"])
        .contains("etcdserver: key is not provided"));
    assert!(server
        .fails(&["get", ""])
        .contains("etcdserver: key is not provided"));
}

#[test]
fn data_survives_restart_and_snapshots() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(&dir.path().join("data"), &["--snapshot-count=50"]);
    for index in 0..200 {
        server.ok(&["put", &format!("key{index:03}"), &format!("value{index}")]);
    }
    server.ok(&["del", "key000"]);
    server.restart();
    assert_eq!(
        server.ok(&["get", "key199", "--print-value-only"]),
        "value199\n"
    );
    assert_eq!(server.ok(&["get", "key000"]), "");
    let json = server.ok(&["get", "key", "--prefix", "--keys-only", "-w", "json"]);
    assert!(
        json.contains("\"count\":199") && json.contains("\"revision\":202"),
        "{json}"
    );
    let snapshots = std::fs::read_dir(dir.path().join("data/member/snap"))
        .unwrap()
        .count();
    assert!(
        snapshots >= 1,
        "--snapshot-count=50 must have written snapshots"
    );
}

#[test]
fn corrupt_wal_stops_the_member_naming_file_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = Server::start(&data, &[]);
    for index in 0..20 {
        server.ok(&["put", &format!("k{index}"), "some value that fills the log"]);
    }
    server.kill();
    let wal_dir = data.join("member/wal");
    let segment = std::fs::read_dir(&wal_dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let mut bytes = std::fs::read(&segment).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&segment, bytes).unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_cairn"))
        .arg("--data-dir")
        .arg(&data)
        .arg(format!(
            "--listen-client-urls=http://127.0.0.1:{}",
            common::free_port()
        ))
        .output()
        .unwrap();
    assert!(
        !output.status.success(),
        "a member must not start on a corrupt WAL"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&segment.display().to_string()) && stderr.contains("at offset"),
        "{stderr}"
    );
}
