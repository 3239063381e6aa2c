//! Multi-member clusters of the real binary on loopback, driven by the real etcdctl and a
//! gRPC client: bootstrap, replication, leader failure, membership changes, even splits.
// These start real processes on real sockets; the simulator has its own tests in sim/.
#![cfg(not(madsim))]

mod common;

use cairn::api::pb::etcdserverpb::{self as pb, kv_client::KvClient};
use common::cluster::Cluster;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tonic::transport::Channel;

const FAST: [&str; 2] = ["--heartbeat-interval=50", "--election-timeout=500"];

#[test]
fn three_members_bootstrap_list_status_and_replicate() {
    let cluster = Cluster::start(3, &FAST);
    cluster.wait_all_started();
    let members = cluster.members[0].ok(&["member", "list"]);
    assert_eq!(members.lines().count(), 3, "{members}");
    for member in &cluster.members {
        assert!(
            members.contains(&format!(
                "started, {}, {}, http://{}",
                member.name,
                member.peer_url(),
                member.endpoint()
            )),
            "{members}"
        );
    }
    let health = cluster.members[1].etcdctl(&["endpoint", "health", "--cluster"]);
    assert_eq!(
        String::from_utf8_lossy(&health.stderr)
            .matches("is healthy")
            .count(),
        3,
        "{health:?}"
    );
    // --cluster makes etcdctl 3.4 dial each member's client URL with its scheme in the HTTP/2
    // authority, which Cairn's listeners accept as etcd's do.
    let status = cluster.members[2].etcdctl(&["endpoint", "status", "--cluster", "-w", "json"]);
    assert!(status.status.success(), "{status:?}");
    let text = String::from_utf8_lossy(&status.stdout);
    let leaders: Vec<&str> = text
        .split("\"leader\":")
        .skip(1)
        .map(|rest| rest.split(',').next().unwrap())
        .collect();
    assert_eq!(leaders.len(), 3);
    assert!(
        leaders.iter().all(|leader| *leader == leaders[0]),
        "all members agree on the leader: {text}"
    );
    for (writer, member) in cluster.members.iter().enumerate() {
        member.ok(&["put", &format!("from{writer}"), &format!("value{writer}")]);
        for reader in &cluster.members {
            assert_eq!(
                reader.ok(&["get", &format!("from{writer}"), "--print-value-only"]),
                format!("value{writer}\n"),
                "a write on member {} read linearizably on member {}",
                member.index,
                reader.index
            );
        }
    }
    let hashes = cluster.hashes();
    assert!(hashes.iter().all(|hash| *hash == hashes[0]), "{hashes:?}");
    // Leadership moves to a follower on request, as `etcdctl move-leader` asks.
    let old_leader = cluster.leader();
    let target = (old_leader + 1) % 3;
    let list = cluster.members[0].ok(&["member", "list"]);
    let target_hex = list
        .lines()
        .find(|line| line.contains(&cluster.members[target].endpoint()))
        .unwrap()
        .split(',')
        .next()
        .unwrap()
        .to_string();
    let moved = cluster.members[old_leader].ok(&["move-leader", &target_hex]);
    assert!(moved.contains("Leadership transferred"), "{moved}");
    assert_eq!(cluster.leader(), target);
    // Leases and watches work through followers too.
    let follower = (cluster.leader() + 1) % 3;
    let granted = cluster.members[follower].ok(&["lease", "grant", "30"]);
    let id = granted.split_whitespace().nth(1).unwrap();
    assert!(cluster.members[follower]
        .ok(&["lease", "keep-alive", "--once", id])
        .contains("keepalived with TTL(30)"));
    assert!(cluster.members[(follower + 1) % 3]
        .ok(&["lease", "timetolive", id])
        .contains("granted with TTL(30s)"));
}

async fn client(endpoint: &str) -> KvClient<Channel> {
    KvClient::new(
        Channel::from_shared(format!("http://{endpoint}"))
            .unwrap()
            .connect_timeout(Duration::from_secs(1))
            .connect_lazy(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_kill_9_under_load_loses_nothing_and_hashes_agree() {
    let mut cluster = Cluster::start(3, &FAST);
    let leader = cluster.leader();
    let endpoints = cluster.endpoints();
    let acknowledged: Arc<Mutex<BTreeMap<String, (u64, Instant)>>> = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut writers = Vec::new();
    for writer in 0..6usize {
        // Writers go to followers and the leader alike; a request that fails is retried on
        // the next member, and only acknowledged writes are recorded.
        let endpoints = endpoints.clone();
        let acknowledged = acknowledged.clone();
        let stop = stop.clone();
        writers.push(tokio::spawn(async move {
            let mut clients = Vec::new();
            for endpoint in &endpoints {
                clients.push(client(endpoint).await);
            }
            let mut sequence = 0u64;
            let mut target = writer;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && sequence < 20_000 {
                let key = format!("load/{writer}/{}", sequence % 200);
                let request = pb::PutRequest {
                    key: key.clone().into_bytes().into(),
                    value: sequence.to_string().into_bytes().into(),
                    ..Default::default()
                };
                let count = clients.len();
                match tokio::time::timeout(
                    Duration::from_secs(3),
                    clients[target % count].put(request),
                )
                .await
                {
                    Ok(Ok(_)) => {
                        acknowledged
                            .lock()
                            .unwrap()
                            .insert(key, (sequence, Instant::now()));
                        sequence += 1;
                    }
                    _ => target += 1,
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let killed_at = Instant::now();
    cluster.members[leader].kill();
    // Writes must resume within a few election timeouts.
    let resumed = loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let latest = acknowledged
            .lock()
            .unwrap()
            .values()
            .map(|(_, at)| *at)
            .max()
            .unwrap();
        if latest > killed_at {
            break latest.duration_since(killed_at);
        }
        assert!(
            killed_at.elapsed() < Duration::from_secs(15),
            "writes did not resume within 15 s of killing the leader"
        );
    };
    println!("writes resumed {resumed:?} after kill -9 of the leader");
    tokio::time::sleep(Duration::from_millis(1000)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for writer in writers {
        writer.await.unwrap();
    }
    cluster.members[leader].restart();
    cluster.wait_healthy(leader);
    let acknowledged = acknowledged.lock().unwrap().clone();
    // Every member, the restarted one included, has every acknowledged write (or a later one).
    cluster.members[cluster.leader()].ok(&["put", "barrier", "x"]);
    for member in &cluster.members {
        let mut kv = client(&member.endpoint()).await;
        let range = pb::RangeRequest {
            key: b"load/".to_vec().into(),
            range_end: b"load0".to_vec().into(),
            ..Default::default()
        };
        let stored: BTreeMap<String, u64> = kv
            .range(range)
            .await
            .unwrap()
            .into_inner()
            .kvs
            .iter()
            .map(|kv| {
                (
                    String::from_utf8(kv.key.to_vec()).unwrap(),
                    String::from_utf8(kv.value.to_vec())
                        .unwrap()
                        .parse()
                        .unwrap(),
                )
            })
            .collect();
        for (key, (sequence, _)) in &acknowledged {
            let found = stored
                .get(key)
                .unwrap_or_else(|| panic!("member {}: acknowledged {key} lost", member.index));
            assert!(
                found >= sequence,
                "member {}: {key} acknowledged at {sequence}, found {found}",
                member.index
            );
        }
    }
    let hashes = cluster.hashes();
    assert!(
        hashes.iter().all(|hash| *hash == hashes[0]),
        "HashKV differs after recovery: {hashes:?}"
    );
}

#[test]
fn learner_catches_up_by_snapshot_is_promoted_and_a_member_is_removed() {
    let args = [
        "--heartbeat-interval=50",
        "--election-timeout=500",
        "--snapshot-count=100",
    ];
    let mut cluster = Cluster::start(3, &args);
    // 400 values of 8 KiB: a snapshot of over 3 MiB, sent as several 1 MiB chunks.
    let value = "v".repeat(8 * 1024);
    for index in 0..400 {
        cluster.members[index % 3].ok(&["put", &format!("before/{index:03}"), &value]);
    }
    let position = cluster.prepare_joining(4);
    let peer_url = cluster.members[position].peer_url();
    let added = cluster.members[0].ok(&[
        "member",
        "add",
        "m4",
        &format!("--peer-urls={peer_url}"),
        "--learner",
    ]);
    assert!(
        added.contains("ETCD_INITIAL_CLUSTER_STATE=\"existing\""),
        "{added}"
    );
    let promote_early =
        cluster.members[0].etcdctl(&["member", "promote", &member_id(&cluster, &peer_url)]);
    assert!(
        String::from_utf8_lossy(&promote_early.stderr)
            .contains("can only promote a learner member which is in sync with leader"),
        "{promote_early:?}"
    );
    // etcd holds one learner at a time by default (`--max-learners`).
    let second_learner = cluster.members[0].etcdctl(&[
        "member",
        "add",
        "m5",
        "--peer-urls=http://127.0.0.1:1",
        "--learner",
    ]);
    assert!(
        String::from_utf8_lossy(&second_learner.stderr)
            .contains("etcdserver: too many learner members in cluster"),
        "{second_learner:?}"
    );
    cluster.start_joining(position, &args);
    // The learner got the purged history by snapshot: it serves it (serializable reads only).
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let count = cluster.members[position].etcdctl(&[
            "get",
            "before/",
            "--prefix",
            "--keys-only",
            "--consistency=s",
            "-w",
            "json",
        ]);
        if String::from_utf8_lossy(&count.stdout).contains("\"count\":400") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "learner did not catch up; log:\n{}",
            cluster.members[position].log_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let snapshots: Vec<u64> =
        std::fs::read_dir(cluster.members[position].data_dir.join("member/snap"))
            .unwrap()
            .map(|entry| entry.unwrap().metadata().unwrap().len())
            .collect();
    assert!(
        snapshots.iter().any(|bytes| *bytes > 3 * 1024 * 1024),
        "the learner adopted a multi-chunk snapshot: {snapshots:?}"
    );
    // As etcd's interceptors: a learner serves Status and serializable reads, nothing else.
    let learner_status = cluster.members[position].ok(&["endpoint", "status", "-w", "json"]);
    assert!(
        learner_status.contains("\"isLearner\":true"),
        "{learner_status}"
    );
    for refused_command in [
        &["get", "before/000"][..],
        &["put", "k", "v"],
        &["member", "list"],
        &["alarm", "list"],
        &["endpoint", "hashkv"],
        &["user", "list"],
    ] {
        let refused = cluster.members[position].etcdctl(refused_command);
        assert!(
            String::from_utf8_lossy(&refused.stderr)
                .contains("etcdserver: rpc not supported for learner"),
            "{refused_command:?}: {refused:?}"
        );
    }
    let id = member_id(&cluster, &peer_url);
    let promoted = cluster.members[1].ok(&["member", "promote", &id]);
    assert!(promoted.contains("promoted"), "{promoted}");
    cluster.members[position].ok(&["put", "after/promote", "v"]);
    // Remove member 1 (maybe the leader); the others keep serving.
    let removed_id = member_id(&cluster, &cluster.members[0].peer_url());
    cluster.members[1].ok(&["member", "remove", &removed_id]);
    cluster.members[0].kill();
    for position in 1..4 {
        // Removing the leader means an election first; clients retry "no leader" as etcd's do.
        cluster.eventually(
            position,
            &["put", &format!("after/remove/{position}"), "v"],
            Duration::from_secs(15),
        );
        assert_eq!(
            cluster.members[position]
                .ok(&["get", "after/", "--prefix", "--keys-only"])
                .lines()
                .filter(|line| !line.is_empty())
                .count(),
            4.min(position + 1)
        );
    }
    assert_eq!(
        cluster.members[3].ok(&["member", "list"]).lines().count(),
        3
    );
}

/// The ID member 2 lists for `peer_url`. Its list shows what it has applied (etcdctl 3.4's
/// member list is served locally, as etcd serves it), so a just-added member may take a
/// moment to appear.
fn member_id(cluster: &Cluster, peer_url: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let list = cluster.members[1].ok(&["member", "list"]);
        if let Some(line) = list.lines().find(|line| line.contains(peer_url)) {
            return line.split(',').next().unwrap().to_string();
        }
        assert!(Instant::now() < deadline, "{peer_url} not in {list}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn four_members_split_two_two_refuse_everything_until_healed() {
    let cluster = Cluster::start(4, &FAST);
    cluster.members[0].ok(&["put", "before", "split"]);
    // A write is acknowledged by a quorum; wait until the fourth member has it too, so the
    // serializable reads below have something to show.
    for position in 0..4 {
        let deadline = Instant::now() + Duration::from_secs(10);
        while cluster.members[position].ok(&[
            "get",
            "before",
            "--consistency=s",
            "--print-value-only",
        ]) != "split\n"
        {
            assert!(
                Instant::now() < deadline,
                "member {} never applied the write",
                position + 1
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    cluster.proxy.partition(&[&[1, 2], &[3, 4]]);
    // Give the old leader's term time to run out of quorum acknowledgements.
    std::thread::sleep(Duration::from_millis(1500));
    for member in &cluster.members {
        let write = member.etcdctl(&["put", "during", "split", "--command-timeout=3s"]);
        assert!(
            !write.status.success(),
            "member {} acknowledged a write during a 2|2 split",
            member.index
        );
        let read = member.etcdctl(&["get", "before", "--command-timeout=3s"]);
        assert!(
            !read.status.success(),
            "member {} answered a linearizable read during a 2|2 split",
            member.index
        );
        let serializable =
            member.etcdctl(&["get", "before", "--consistency=s", "--print-value-only"]);
        assert_eq!(
            String::from_utf8_lossy(&serializable.stdout),
            "split\n",
            "serializable reads are served locally"
        );
    }
    cluster.proxy.heal();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !cluster.members[2]
        .etcdctl(&["put", "after", "heal", "--command-timeout=2s"])
        .status
        .success()
    {
        assert!(
            Instant::now() < deadline,
            "writes did not resume after healing"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    for member in &cluster.members {
        assert_eq!(
            member.ok(&["get", "before", "--print-value-only"]),
            "split\n"
        );
        assert_eq!(member.ok(&["get", "after", "--print-value-only"]), "heal\n");
        // A write that timed out during the split may or may not apply later (indeterminate);
        // either way every member agrees.
    }
    let values: Vec<String> = cluster
        .members
        .iter()
        .map(|member| member.ok(&["get", "during", "--print-value-only"]))
        .collect();
    assert!(values.iter().all(|value| *value == values[0]), "{values:?}");
}

#[test]
fn force_new_cluster_recovers_a_member_s_data_when_quorum_is_lost_for_good() {
    let mut cluster = Cluster::start(3, &[]);
    let leader = cluster.leader();
    for round in 0..40 {
        cluster.members[leader].ok(&["put", &format!("key{round}"), &format!("v{round}")]);
    }
    let before: serde_json::Value =
        serde_json::from_str(&cluster.members[leader].ok(&["get", "key0", "-w", "json"])).unwrap();
    let revision = before["header"]["revision"].as_i64().unwrap();
    // Quorum lost for good: every member stops, and only one comes back. It recovers what
    // it knew committed, so first let it learn that the last write committed (as an
    // operator's survivor would have, a heartbeat later).
    let survivor = (leader + 1) % 3;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cluster.members[survivor]
        .ok(&["get", "key39", "--consistency=s", "--print-value-only"])
        .contains("v39")
    {
        assert!(
            Instant::now() < deadline,
            "the survivor never applied the last write"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    for member in &mut cluster.members {
        member.kill();
    }
    cluster.members[survivor].restart_with(&["--force-new-cluster"]);
    let list = cluster.eventually(survivor, &["member", "list"], Duration::from_secs(30));
    assert_eq!(list.lines().count(), 1, "a one-member cluster: {list}");
    let member = &cluster.members[survivor];
    assert_eq!(
        member.ok(&["get", "key39", "--print-value-only"]).trim(),
        "v39"
    );
    member.ok(&["put", "after", "recovery"]);
    let after: serde_json::Value =
        serde_json::from_str(&member.ok(&["get", "after", "-w", "json"])).unwrap();
    assert_eq!(after["header"]["revision"].as_i64().unwrap(), revision + 1);
    assert!(member
        .log_text()
        .contains("--force-new-cluster: starting as a one-member cluster"));
    // Without the flag it stays what it became.
    cluster.members[survivor].restart();
    cluster.eventually(survivor, &["get", "after"], Duration::from_secs(30));
    let list = cluster.members[survivor].ok(&["member", "list"]);
    assert_eq!(list.lines().count(), 1, "{list}");
}

/// Pre-vote: a follower cut off for several election timeouts, or restarted, comes back
/// without raising the term, so the leader the others still follow keeps leading.
#[test]
fn an_isolated_or_restarted_follower_rejoins_without_deposing_the_leader() {
    let mut cluster = Cluster::start(3, &FAST);
    let leader = cluster.leader();
    let follower = (leader + 1) % 3;
    let before = cluster.members[leader].status();
    let term = before["raft_term"];
    let isolated = cluster.members[follower].index;
    let others: Vec<usize> = cluster
        .members
        .iter()
        .map(|member| member.index)
        .filter(|index| *index != isolated)
        .collect();
    cluster.proxy.partition(&[&[isolated], &others]);
    // Eight election timeouts: without pre-vote the isolated member campaigns again and
    // again, each time in a higher term.
    std::thread::sleep(Duration::from_millis(4000));
    cluster.members[leader].ok(&["put", "during", "isolation"]);
    cluster.proxy.heal();
    // The follower catches up from the leader it never stopped belonging to.
    let deadline = Instant::now() + Duration::from_secs(10);
    while cluster.members[follower]
        .etcdctl(&["get", "during", "--consistency=s", "--print-value-only"])
        .stdout
        != b"isolation\n"
    {
        assert!(
            Instant::now() < deadline,
            "the isolated follower did not catch up"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    cluster.members[follower].restart();
    cluster.wait_healthy(follower);
    // Two more election timeouts for a restarted member's campaign, had it one.
    std::thread::sleep(Duration::from_millis(1000));
    cluster.members[leader].ok(&["put", "after", "rejoin"]);
    let after = cluster.members[leader].status();
    assert_eq!(
        (after["leader"], after["raft_term"]),
        (before["leader"], term),
        "the leader changed (or its term rose) when a follower rejoined"
    );
    for member in &cluster.members {
        assert_eq!(
            member.status()["raft_term"],
            term,
            "member {}",
            member.index
        );
    }
}
