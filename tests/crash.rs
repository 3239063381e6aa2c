//! `kill -9` during a bounded concurrent write load: after a restart every acknowledged write
//! is there, with the value acknowledged.
// These start real processes on real sockets; the simulator has its own tests in sim/.
#![cfg(not(madsim))]

mod common;

use cairn::api::pb::etcdserverpb::{self as pb, kv_client::KvClient};
use common::Server;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tonic::transport::Channel;

const WRITERS: usize = 16;
const WRITES_PER_WRITER_MAX: usize = 5000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_write_survives_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(
        &dir.path().join("data"),
        &["--snapshot-count=300", "--wal-segment-bytes=65536"],
    );
    let endpoint = format!("http://{}", server.endpoint);
    let acknowledged: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let mut writers = Vec::new();
    for writer in 0..WRITERS {
        let channel = Channel::from_shared(endpoint.clone())
            .unwrap()
            .connect()
            .await
            .unwrap();
        let acknowledged = acknowledged.clone();
        writers.push(tokio::spawn(async move {
            let mut kv = KvClient::new(channel);
            for index in 0..WRITES_PER_WRITER_MAX {
                let key = format!("w{writer:02}-{:05}", index % 700);
                let value = format!("{writer}-{index}");
                let request = pb::PutRequest {
                    key: key.clone().into_bytes().into(),
                    value: value.clone().into_bytes().into(),
                    ..Default::default()
                };
                match tokio::time::timeout(Duration::from_secs(5), kv.put(request)).await {
                    Ok(Ok(_)) => acknowledged.lock().unwrap().push((key, value)),
                    _ => return,
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(2500)).await;
    server.kill();
    for writer in writers {
        writer.await.unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(
        acknowledged.len() > 100,
        "the load ran before the kill ({} writes)",
        acknowledged.len()
    );
    server.restart();
    let mut kv = KvClient::new(
        Channel::from_shared(endpoint)
            .unwrap()
            .connect()
            .await
            .unwrap(),
    );
    // The last acknowledged value of each key must be the one stored (writers own their keys).
    let mut latest = std::collections::BTreeMap::new();
    for (key, value) in acknowledged.iter() {
        latest.insert(key.clone(), value.clone());
    }
    let everything = kv
        .range(pb::RangeRequest {
            key: b"w".to_vec().into(),
            range_end: b"x".to_vec().into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let stored: std::collections::BTreeMap<String, String> = everything
        .kvs
        .iter()
        .map(|kv| {
            (
                String::from_utf8(kv.key.to_vec()).unwrap(),
                String::from_utf8(kv.value.to_vec()).unwrap(),
            )
        })
        .collect();
    for (key, value) in &latest {
        let found = stored
            .get(key)
            .unwrap_or_else(|| panic!("acknowledged key {key} lost after kill -9"));
        let acknowledged_index: usize = value.split('-').nth(1).unwrap().parse().unwrap();
        let stored_index: usize = found.split('-').nth(1).unwrap().parse().unwrap();
        // A write in flight at the kill may have landed without its acknowledgement.
        assert!(
            stored_index >= acknowledged_index,
            "key {key}: acknowledged {value}, found older {found}"
        );
    }
    println!(
        "{} acknowledged writes across {} keys all survived kill -9",
        acknowledged.len(),
        latest.len()
    );
}

/// A data directory whose `member/identity` was deleted, started with another cluster token
/// (so the flags derive another member ID), exits at once with an error naming the file
/// instead of waiting forever for a leader with its peer port open.
#[tokio::test]
async fn a_lost_identity_with_other_flags_is_refused_not_hung() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let mut server = Server::start(&data_dir, &[]);
    server.ok(&["put", "k", "v"]);
    server.kill();
    std::fs::remove_file(data_dir.join("member/identity")).unwrap();
    let (client_port, peer_port) = (common::free_port(), common::free_port());
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_cairn"))
        .arg("--data-dir")
        .arg(&data_dir)
        .arg(format!(
            "--listen-client-urls=http://127.0.0.1:{client_port}"
        ))
        .arg(format!("--listen-peer-urls=http://127.0.0.1:{peer_port}"))
        .arg(format!(
            "--initial-advertise-peer-urls=http://127.0.0.1:{peer_port}"
        ))
        .arg("--initial-cluster-token=another-token")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("cairn neither served nor exited: it hung on a lost identity");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(!status.success(), "{stderr}");
    assert!(
        stderr.contains("member/identity is missing"),
        "the error names the missing file: {stderr}"
    );
}

/// A damaged newest snapshot, with a log that still holds every entry after the older
/// snapshot: the member sets it aside, starts from the older one, replays the log, and
/// serves everything it acknowledged (etcd falls back the same way).
#[tokio::test]
async fn a_damaged_newest_snapshot_falls_back_when_the_log_covers_it() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    // Snapshots every 10 commands keep the 10 entries before each: bursts of exactly 10
    // puts, each followed by a snapshot, leave the log reaching back to the older one.
    let mut server = Server::start(&data_dir, &["--snapshot-count=10"]);
    let snapshot_dir = data_dir.join("member/snap");
    let snapshots = || {
        let mut names: Vec<String> = std::fs::read_dir(&snapshot_dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.ends_with(".snap"))
            .collect();
        names.sort();
        names
    };
    for burst in 0..4 {
        let before = snapshots().last().cloned();
        for key in 0..10 {
            server.ok(&["put", &format!("k{burst}-{key}"), "v"]);
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while snapshots().last() == before.as_ref() {
            assert!(
                std::time::Instant::now() < deadline,
                "no snapshot after burst {burst}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    server.kill();
    let names = snapshots();
    assert_eq!(names.len(), 2, "the newest two are kept: {names:?}");
    let newest = snapshot_dir.join(names.last().unwrap());
    let mut bytes = std::fs::read(&newest).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&newest, bytes).unwrap();
    server.restart();
    for burst in 0..4 {
        for key in 0..10 {
            let value = server.ok(&["get", &format!("k{burst}-{key}"), "--print-value-only"]);
            assert_eq!(value.trim(), "v", "k{burst}-{key} after the fallback");
        }
    }
    let log = std::fs::read_to_string(&server.log).unwrap();
    assert!(log.contains("the newest snapshot is damaged"), "{log}");
    let damaged = format!("{}.damaged", names.last().unwrap());
    assert!(
        snapshot_dir.join(&damaged).exists(),
        "the damaged file is kept aside"
    );
}
