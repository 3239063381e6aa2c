//! Elections happen only when a quorum has lost its leader (pre-vote, `src/raft/pre_vote.rs`):
//! a follower that was cut off, restarted, or stalled on a slow disk comes back without
//! raising the term, so the leader the others still follow keeps leading. The real-process
//! twin of the first case is in tests/cluster.rs.
#![cfg(madsim)]

use cairn::api::pb::etcdserverpb::{
    kv_client::KvClient, maintenance_client::MaintenanceClient, PutRequest, StatusRequest,
    StatusResponse,
};
use cairn_sim::member::{client_url, start_member, MemberSettings, SimMember};
use madsim::runtime::{Handle, NodeHandle};
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;
use tonic::transport::{Channel, Endpoint};

const ELECTION_TIMEOUT_MS: u64 = 1000;

async fn channel(index: u8) -> Channel {
    for _ in 0..100 {
        if let Ok(channel) = Endpoint::from_shared(client_url(index))
            .unwrap()
            .connect_timeout(Duration::from_secs(1))
            .timeout(Duration::from_secs(3))
            .connect()
            .await
        {
            return channel;
        }
        madsim::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("member {index} never accepted a connection");
}

async fn status(index: u8) -> StatusResponse {
    MaintenanceClient::new(channel(index).await)
        .status(StatusRequest {})
        .await
        .unwrap()
        .into_inner()
}

/// (leader, term) as member `index` reports them.
async fn leader_and_term(index: u8) -> (u64, u64) {
    let status = status(index).await;
    (status.leader, status.raft_term)
}

/// Puts through member `index` until one succeeds (a fresh cluster may still be electing).
async fn put_eventually(index: u8, key: &str) {
    let mut kv = KvClient::new(channel(index).await);
    for _ in 0..50 {
        let request = PutRequest {
            key: key.as_bytes().to_vec().into(),
            value: b"v".to_vec().into(),
            ..Default::default()
        };
        if kv.put(request).await.is_ok() {
            return;
        }
        madsim::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("no put through member {index} succeeded");
}

fn client_node(handle: &Handle) -> NodeHandle {
    handle
        .create_node()
        .name("client")
        .ip(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 100)))
        .build()
}

fn three_members(handle: &Handle) -> Vec<SimMember> {
    let settings = MemberSettings {
        members: 3,
        election_timeout_ms: ELECTION_TIMEOUT_MS,
        ..MemberSettings::default()
    };
    (1..=3)
        .map(|index| start_member(handle, index, &settings))
        .collect()
}

/// The member that leads once writes go through, its term, and a follower.
async fn settled(client: &NodeHandle) -> (u8, u64, u8) {
    client
        .spawn(async move {
            put_eventually(1, "settled").await;
            let (leader_id, term) = leader_and_term(1).await;
            for index in 1..=3u8 {
                if status(index).await.header.unwrap().member_id == leader_id {
                    return (index, term, index % 3 + 1);
                }
            }
            panic!("no member has the leader's id");
        })
        .await
        .unwrap()
}

/// Every member agrees on the leader and the term it had before.
async fn assert_unchanged(client: &NodeHandle, leader: u8, term: u64) {
    client
        .spawn(async move {
            put_eventually(leader, "after").await;
            let (leader_id, _) = leader_and_term(leader).await;
            for index in 1..=3u8 {
                assert_eq!(
                    leader_and_term(index).await,
                    (leader_id, term),
                    "member {index}: the leader changed or its term rose"
                );
            }
        })
        .await
        .unwrap();
}

#[madsim::test]
async fn a_follower_cut_off_for_ten_election_timeouts_rejoins_without_an_election() {
    let handle = Handle::current();
    let members = three_members(&handle);
    let client = client_node(&handle);
    let (leader, term, follower) = settled(&client).await;
    let net = madsim::net::NetSim::current();
    let cut = members[usize::from(follower) - 1].node.id();
    net.clog_node(cut);
    madsim::time::sleep(Duration::from_millis(10 * ELECTION_TIMEOUT_MS)).await;
    net.unclog_node(cut);
    madsim::time::sleep(Duration::from_millis(3 * ELECTION_TIMEOUT_MS)).await;
    assert_unchanged(&client, leader, term).await;
}

#[madsim::test]
async fn a_restarted_follower_rejoins_without_an_election() {
    let handle = Handle::current();
    let members = three_members(&handle);
    let client = client_node(&handle);
    let (leader, term, follower) = settled(&client).await;
    let restarted = members[usize::from(follower) - 1].node.id();
    handle.kill(restarted);
    madsim::time::sleep(Duration::from_millis(5 * ELECTION_TIMEOUT_MS)).await;
    handle.restart(restarted);
    madsim::time::sleep(Duration::from_millis(3 * ELECTION_TIMEOUT_MS)).await;
    assert_unchanged(&client, leader, term).await;
}

#[madsim::test]
async fn a_follower_stalled_on_a_slow_disk_causes_no_election() {
    let handle = Handle::current();
    let members = three_members(&handle);
    let client = client_node(&handle);
    let (leader, term, follower) = settled(&client).await;
    // Each fsync on the follower takes longer than an election timeout: its raft answers
    // nothing for that long, yet the leader it cannot answer is still there.
    let disk = members[usize::from(follower) - 1].disk.clone();
    disk.set_options(cairn::io::MemoryDiskOptions {
        sync_latency_ms: 3 * ELECTION_TIMEOUT_MS / 2,
        ..disk.options()
    });
    client
        .spawn(async move {
            for index in 0..40 {
                put_eventually(leader, &format!("slow/{index}")).await;
                madsim::time::sleep(Duration::from_millis(250)).await;
            }
        })
        .await
        .unwrap();
    disk.set_options(cairn::io::MemoryDiskOptions {
        sync_latency_ms: 0,
        ..disk.options()
    });
    madsim::time::sleep(Duration::from_millis(3 * ELECTION_TIMEOUT_MS)).await;
    assert_unchanged(&client, leader, term).await;
}

/// What each member tells the simulator's coverage table (`cairn::io::coverage`): the
/// leader and followers their roles, a follower cut off that it asks for pre-votes, and
/// that it no longer does once it hears from the leader again.
#[madsim::test]
async fn members_tell_the_coverage_table_their_roles() {
    use cairn::io::coverage::{states_of, MemberState};
    let handle = Handle::current();
    let members = three_members(&handle);
    let client = client_node(&handle);
    let (leader, _, follower) = settled(&client).await;
    let states = |index: u8| states_of(members[usize::from(index) - 1].node.id());
    assert_eq!(states(leader), vec![MemberState::Leader]);
    assert_eq!(states(follower), vec![MemberState::Follower]);
    let net = madsim::net::NetSim::current();
    let cut = members[usize::from(follower) - 1].node.id();
    net.clog_node(cut);
    madsim::time::sleep(Duration::from_millis(4 * ELECTION_TIMEOUT_MS)).await;
    assert!(
        states(follower).contains(&MemberState::Candidate),
        "{:?}",
        states(follower)
    );
    net.unclog_node(cut);
    madsim::time::sleep(Duration::from_millis(3 * ELECTION_TIMEOUT_MS)).await;
    assert_eq!(states(follower), vec![MemberState::Follower]);
    assert_eq!(states(leader), vec![MemberState::Leader]);
}
