//! Backups with the real tools, both ways: etcd 3.4 (Debian's etcd-server) writes a snapshot
//! with `etcdctl snapshot save`, `cairnutl snapshot restore` makes a Cairn member of it, and
//! Cairn serves the same keys, history, leases and users; then `etcdctl snapshot save` from
//! Cairn, `etcdctl snapshot status` and `restore`, and a real etcd serves them again.
#![cfg(not(madsim))]

mod common;

use common::{etcdctl, free_port, Server};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A real etcd 3.4 member, killed on drop.
struct Etcd {
    child: Child,
    endpoint: String,
}

impl Etcd {
    fn start(data_dir: &Path, name: &str, peer_port: u16) -> Etcd {
        let etcd = "/usr/bin/etcd";
        assert!(
            Path::new(etcd).exists(),
            "etcd is missing: install Debian's etcd-server package (ci/test does)"
        );
        let endpoint = format!("127.0.0.1:{}", free_port());
        let peer = format!("http://127.0.0.1:{peer_port}");
        let child = Command::new(etcd)
            .arg(format!("--data-dir={}", data_dir.display()))
            .arg(format!("--name={name}"))
            .arg(format!("--listen-client-urls=http://{endpoint}"))
            .arg(format!("--advertise-client-urls=http://{endpoint}"))
            .arg(format!("--listen-peer-urls={peer}"))
            .arg(format!("--initial-advertise-peer-urls={peer}"))
            .arg(format!("--initial-cluster={name}={peer}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start etcd");
        let etcd = Etcd { child, endpoint };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !etcdctl(&etcd.endpoint, &["endpoint", "health"], None)
            .status
            .success()
        {
            assert!(Instant::now() < deadline, "etcd did not become healthy");
            std::thread::sleep(Duration::from_millis(100));
        }
        etcd
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn ok(endpoint: &str, args: &[&str]) -> String {
    checked(etcdctl(endpoint, args, None), &format!("etcdctl {args:?}"))
}

fn checked(output: Output, what: &str) -> String {
    assert!(
        output.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

fn tool(program: &str, args: &[&str]) -> String {
    let output = Command::new(program)
        .env("ETCDCTL_API", "3")
        .args(args)
        .output()
        .unwrap();
    checked(output, &format!("{program} {args:?}"))
}

fn cairnutl(args: &[&str]) -> String {
    tool(env!("CARGO_BIN_EXE_cairnutl"), args)
}

/// Everything a client can read that a backup must keep: every key's newest version, the
/// versions at older revisions above the compaction point, the compaction point itself, the
/// leases and their keys, users and roles. Header fields (member and cluster IDs, raft term)
/// are the cluster's, not the data's, and are left out.
fn contents(endpoint: &str) -> String {
    let kvs = |revision: Option<u32>| {
        let mut args = vec!["get", "", "--from-key", "-w", "json"];
        let flag;
        if let Some(revision) = revision {
            flag = format!("--rev={revision}");
            args.push(&flag);
        }
        let reply: serde_json::Value = serde_json::from_str(&ok(endpoint, &args)).unwrap();
        (reply["header"]["revision"].clone(), reply["kvs"].clone())
    };
    let (revision, newest) = kvs(None);
    let mut text = format!("revision {revision}\nnewest {newest}\n");
    for revision in [101, 150, 200, 250] {
        text += &format!("at {revision}: {}\n", kvs(Some(revision)).1);
    }
    let compacted = etcdctl(endpoint, &["get", "k1", "--rev=50"], None);
    text += &format!(
        "at 50: {}\n",
        String::from_utf8_lossy(&compacted.stderr).contains("required revision has been compacted")
    );
    for lease in ok(endpoint, &["lease", "list"]).lines().skip(1) {
        let ttl = ok(
            endpoint,
            &["lease", "timetolive", lease, "--keys", "-w", "json"],
        );
        let ttl: serde_json::Value = serde_json::from_str(&ttl).unwrap();
        text += &format!(
            "lease {lease} granted {} keys {}\n",
            ttl["grantedTTL"], ttl["keys"]
        );
    }
    text += &ok(endpoint, &["user", "list"]);
    text += &ok(endpoint, &["user", "get", "bob"]);
    text += &ok(endpoint, &["role", "get", "reader"]);
    text
}

/// History with overwrites, a delete, a compaction, a lease with a key, users and a role.
fn write_sample(endpoint: &str) {
    for round in 0..300 {
        ok(
            endpoint,
            &["put", &format!("k{}", round % 50), &format!("v{round}")],
        );
    }
    ok(endpoint, &["del", "k7"]);
    let lease = ok(endpoint, &["lease", "grant", "600"]);
    let lease = lease.split_whitespace().nth(1).unwrap().to_string();
    ok(
        endpoint,
        &["put", "leased", "x", &format!("--lease={lease}")],
    );
    ok(endpoint, &["compact", "100"]);
    ok(endpoint, &["user", "add", "root:rootpw"]);
    ok(endpoint, &["user", "add", "bob:bobpw"]);
    ok(endpoint, &["role", "add", "reader"]);
    ok(
        endpoint,
        &[
            "role",
            "grant-permission",
            "reader",
            "read",
            "k",
            "--prefix",
        ],
    );
    ok(endpoint, &["user", "grant-role", "bob", "reader"]);
}

#[test]
fn etcd_to_cairn_to_etcd_keeps_keys_history_leases_and_users() {
    let dir = tempfile::tempdir().unwrap();
    let etcd = Etcd::start(&dir.path().join("etcd"), "e1", free_port());
    write_sample(&etcd.endpoint);
    let original = contents(&etcd.endpoint);
    let etcd_snapshot = dir.path().join("etcd.db");
    let etcd_snapshot_text = etcd_snapshot.to_str().unwrap();
    ok(&etcd.endpoint, &["snapshot", "save", etcd_snapshot_text]);
    drop(etcd);

    // The same figures as etcd's own status, hash included.
    let theirs = tool(
        "/usr/bin/etcdctl",
        &["snapshot", "status", etcd_snapshot_text, "-w", "json"],
    );
    let ours = cairnutl(&["snapshot", "status", etcd_snapshot_text, "-w", "json"]);
    assert_eq!(ours.trim(), theirs.trim());

    // etcd -> Cairn, revisions kept as they were.
    let cairn_dir = dir.path().join("cairn");
    let cairn_dir_text = cairn_dir.to_str().unwrap();
    cairnutl(&[
        "snapshot",
        "restore",
        etcd_snapshot_text,
        "--data-dir",
        cairn_dir_text,
        "--bump-revision",
        "0",
    ]);
    let cairn = Server::start(&cairn_dir, &[]);
    assert_eq!(
        contents(&cairn.endpoint),
        original,
        "Cairn serves what etcd served"
    );

    // Cairn -> etcd, through etcd's own tools.
    let cairn_snapshot = dir.path().join("cairn.db");
    let cairn_snapshot_text = cairn_snapshot.to_str().unwrap();
    ok(&cairn.endpoint, &["snapshot", "save", cairn_snapshot_text]);
    drop(cairn);
    let status = tool(
        "/usr/bin/etcdctl",
        &["snapshot", "status", cairn_snapshot_text, "-w", "json"],
    );
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert_eq!(status["revision"], 303, "{status}");
    let peer_port = free_port();
    let restored = dir.path().join("etcd-again");
    tool(
        "/usr/bin/etcdctl",
        &[
            "snapshot",
            "restore",
            cairn_snapshot_text,
            &format!("--data-dir={}", restored.display()),
            "--name=e2",
            &format!("--initial-cluster=e2=http://127.0.0.1:{peer_port}"),
            &format!("--initial-advertise-peer-urls=http://127.0.0.1:{peer_port}"),
        ],
    );
    let etcd = Etcd::start(&restored, "e2", peer_port);
    assert_eq!(
        contents(&etcd.endpoint),
        original,
        "etcd serves what Cairn served"
    );
}

#[test]
fn a_restore_bumps_revisions_and_starts_a_three_member_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let source = Server::start(&dir.path().join("source"), &[]);
    for round in 0..20 {
        source.ok(&["put", &format!("key{round}"), "value"]);
    }
    let snapshot = dir.path().join("backup.db");
    let snapshot_text = snapshot.to_str().unwrap();
    source.ok(&["snapshot", "save", snapshot_text]);
    drop(source);

    // A damaged backup is refused, naming the file.
    let mut damaged = std::fs::read(&snapshot).unwrap();
    damaged[9000] ^= 0x40;
    let damaged_path = dir.path().join("damaged.db");
    std::fs::write(&damaged_path, &damaged).unwrap();
    let refused = Command::new(env!("CARGO_BIN_EXE_cairnutl"))
        .args([
            "snapshot",
            "restore",
            damaged_path.to_str().unwrap(),
            "--data-dir",
        ])
        .arg(dir.path().join("never"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success() && stderr.contains("damaged.db") && stderr.contains("sha256"),
        "{stderr}"
    );
    assert!(!dir.path().join("never").exists(), "nothing is left behind");

    let (endpoints, _members) = restored_cluster(dir.path(), &[&snapshot; 3], &[]);
    let revision_floor = 1_000_000_000;
    for endpoint in &endpoints {
        let reply: serde_json::Value = serde_json::from_str(&ok(
            endpoint,
            &["get", "key", "--prefix", "--keys-only", "-w", "json"],
        ))
        .unwrap();
        assert_eq!(reply["count"], 20);
        let revision = reply["header"]["revision"].as_i64().unwrap();
        assert!(
            revision > revision_floor,
            "revisions are bumped by default: {revision}"
        );
    }
    ok(&endpoints[1], &["put", "after", "restore"]);
    assert!(ok(&endpoints[2], &["get", "after"]).contains("restore"));
    let old_watch = etcdctl(&endpoints[0], &["watch", "key1", "--rev=5"], None);
    assert!(
        String::from_utf8_lossy(&old_watch.stderr).contains("required revision has been compacted")
            || String::from_utf8_lossy(&old_watch.stdout).contains("compacted"),
        "a watch from before the restore is told it was compacted"
    );
    let list = ok(&endpoints[0], &["member", "list"]);
    assert_eq!(list.matches(", started, ").count(), 3, "{list}");
}

/// Three members restored from `snapshots` (one file per member: the same file for a healthy
/// cluster), started with `flags`; waits until all are healthy. Their endpoints, and the
/// processes (killed on drop).
fn restored_cluster(
    dir: &Path,
    snapshots: &[&Path; 3],
    flags: &[&str],
) -> (Vec<String>, Vec<Killed>) {
    let ports: Vec<(u16, u16)> = (0..3).map(|_| (free_port(), free_port())).collect();
    let cluster: Vec<String> = ports
        .iter()
        .enumerate()
        .map(|(index, (_, peer))| format!("m{index}=http://127.0.0.1:{peer}"))
        .collect();
    let cluster = cluster.join(",");
    let mut members = Vec::new();
    for (index, (client, peer)) in ports.iter().enumerate() {
        let data_dir = dir.join(format!("m{index}"));
        let peer_url = format!("http://127.0.0.1:{peer}");
        let mut restore = vec![
            "snapshot".to_string(),
            "restore".to_string(),
            snapshots[index].display().to_string(),
            format!("--data-dir={}", data_dir.display()),
            format!("--name=m{index}"),
            format!("--initial-cluster={cluster}"),
            "--initial-cluster-token=restored".to_string(),
            format!("--initial-advertise-peer-urls={peer_url}"),
        ];
        if snapshots.iter().any(|snapshot| *snapshot != snapshots[0]) {
            // Different backups must keep their revisions to be compared at one.
            restore.push("--bump-revision=0".to_string());
        }
        cairnutl(&restore.iter().map(String::as_str).collect::<Vec<_>>());
        let log = std::fs::File::create(dir.join(format!("m{index}.log"))).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_cairn"))
            .arg(format!("--data-dir={}", data_dir.display()))
            .arg(format!("--name=m{index}"))
            .arg(format!("--listen-client-urls=http://127.0.0.1:{client}"))
            .arg(format!("--advertise-client-urls=http://127.0.0.1:{client}"))
            .arg(format!("--listen-peer-urls={peer_url}"))
            .arg(format!("--initial-advertise-peer-urls={peer_url}"))
            .arg(format!("--initial-cluster={cluster}"))
            .arg("--initial-cluster-token=restored")
            .args(flags)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        members.push(Killed(child));
    }
    let endpoints: Vec<String> = ports
        .iter()
        .map(|(client, _)| format!("127.0.0.1:{client}"))
        .collect();
    let all = endpoints.join(",");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !etcdctl(&all, &["endpoint", "health", "--cluster"], None)
        .status
        .success()
    {
        assert!(
            Instant::now() < deadline,
            "the restored cluster did not become healthy"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    (endpoints, members)
}

#[test]
fn a_member_whose_store_differs_is_named_by_the_corruption_check() {
    // Two backups at the same revision that differ in one value: members restored from
    // different ones hold different stores, as after silent corruption.
    let dir = tempfile::tempdir().unwrap();
    let mut backups = Vec::new();
    for (name, value) in [("good", "right"), ("bad", "wrong")] {
        let source = Server::start(&dir.path().join(name), &[]);
        for round in 0..10 {
            source.ok(&["put", &format!("key{round}"), "value"]);
        }
        source.ok(&["put", "contested", value]);
        let backup = dir.path().join(format!("{name}.db"));
        source.ok(&["snapshot", "save", backup.to_str().unwrap()]);
        backups.push(backup);
    }
    let (good, bad) = (backups[0].as_path(), backups[1].as_path());
    let (endpoints, _members) = restored_cluster(
        dir.path(),
        &[good, good, bad],
        &["--experimental-corrupt-check-time=1s"],
    );
    let members: serde_json::Value =
        serde_json::from_str(&ok(&endpoints[0], &["member", "list", "-w", "json"])).unwrap();
    let corrupt_id = members["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|member| member["name"] == "m2")
        .map(|member| member["ID"].to_string())
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let alarms = ok(&endpoints[0], &["alarm", "list"]);
        if alarms.contains("alarm:CORRUPT") {
            assert_eq!(
                alarms.trim(),
                format!("memberID:{corrupt_id} alarm:CORRUPT"),
                "only the member that differs is named"
            );
            break;
        }
        assert!(Instant::now() < deadline, "no CORRUPT alarm was raised");
        std::thread::sleep(Duration::from_millis(200));
    }
    let refused = etcdctl(&endpoints[1], &["put", "after", "x"], None);
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("etcdserver: corrupt cluster"),
        "writes are refused cluster-wide"
    );
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
