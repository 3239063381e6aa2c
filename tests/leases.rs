//! Leases in real time against the real binary on a multi-threaded runtime (8 tokio workers):
//! what the simulator, running every member on one thread, cannot see. A per-thread clock
//! origin once made keepalives set deadlines in another thread's past.
#![cfg(not(madsim))]

mod common;

use cairn::api::pb::etcdserverpb::{self as pb, kv_client::KvClient, lease_client::LeaseClient};
use common::cluster::Cluster;
use common::{grpc_channel, Server};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;

async fn grant_with_key(channel: &Channel, ttl: i64, key: &str) -> i64 {
    let granted = LeaseClient::new(channel.clone())
        .lease_grant(pb::LeaseGrantRequest { ttl, id: 0 })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(granted.ttl, ttl);
    KvClient::new(channel.clone())
        .put(pb::PutRequest {
            key: key.as_bytes().to_vec().into(),
            value: b"held".to_vec().into(),
            lease: granted.id,
            ..Default::default()
        })
        .await
        .unwrap();
    granted.id
}

async fn key_present(channel: &Channel, key: &str) -> bool {
    let response = KvClient::new(channel.clone())
        .range(pb::RangeRequest {
            key: key.as_bytes().to_vec().into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    !response.kvs.is_empty()
}

async fn time_to_live(channel: &Channel, id: i64) -> pb::LeaseTimeToLiveResponse {
    LeaseClient::new(channel.clone())
        .lease_time_to_live(pb::LeaseTimeToLiveRequest { id, keys: false })
        .await
        .unwrap()
        .into_inner()
}

/// Keeps lease `id` (TTL `ttl`) alive through `keepalive` once a second for `seconds`,
/// checking after each renewal that the key is still there (read through `reader`) and that
/// the remaining TTL never exceeds what was granted.
async fn keep_alive_for(
    keepalive: &Channel,
    reader: &Channel,
    id: i64,
    ttl: i64,
    key: &str,
    seconds: u64,
) {
    let (sender, receiver) = mpsc::channel(4);
    let mut responses = LeaseClient::new(keepalive.clone())
        .lease_keep_alive(ReceiverStream::new(receiver))
        .await
        .unwrap()
        .into_inner();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(seconds) {
        sender.send(pb::LeaseKeepAliveRequest { id }).await.unwrap();
        let response = responses
            .message()
            .await
            .unwrap()
            .expect("a keepalive answer");
        assert_eq!(
            response.ttl,
            ttl,
            "keepalive at {:?} answered TTL {} (0 means the lease expired)",
            started.elapsed(),
            response.ttl
        );
        assert!(
            key_present(reader, key).await,
            "{key} vanished at {:?}",
            started.elapsed()
        );
        let remaining = time_to_live(reader, id).await;
        assert_eq!(remaining.granted_ttl, ttl);
        assert!(
            (1..=ttl).contains(&remaining.ttl),
            "remaining TTL {} right after a renewal of a TTL-{ttl} lease",
            remaining.ttl
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

#[tokio::test]
async fn a_lease_kept_alive_every_second_keeps_its_key_on_one_member() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), &[]);
    let channel = server.channel().await;
    // Idle first, so the runtime's worker threads have been busy at different times.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let id = grant_with_key(&channel, 3, "lock").await;
    keep_alive_for(&channel, &channel, id, 3, "lock", 10).await;
}

#[tokio::test]
async fn an_abandoned_lease_expires_on_time() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), &[]);
    let channel = server.channel().await;
    let granted_at = Instant::now();
    let id = grant_with_key(&channel, 5, "session").await;
    loop {
        let elapsed = granted_at.elapsed();
        let present = key_present(&channel, "session").await;
        if !present {
            assert!(
                elapsed >= Duration::from_secs(5),
                "the key vanished after {elapsed:?}, before its 5 s TTL"
            );
            break;
        }
        let remaining = time_to_live(&channel, id).await;
        assert!(
            remaining.ttl <= 5,
            "remaining TTL {} of a TTL-5 lease",
            remaining.ttl
        );
        assert!(
            elapsed < Duration::from_secs(7),
            "the key outlived its TTL-5 lease by more than 2 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        time_to_live(&channel, id).await.ttl,
        -1,
        "an expired lease is gone"
    );
}

#[tokio::test]
async fn a_lease_kept_alive_through_a_follower_keeps_its_key_on_three_members() {
    let cluster = Cluster::start(3, &[]);
    let leader = cluster.leader();
    let follower = (leader + 1) % 3;
    let other = (leader + 2) % 3;
    let follower_channel = grpc_channel(&cluster.members[follower].endpoint()).await;
    let other_channel = grpc_channel(&cluster.members[other].endpoint()).await;
    // Granted and renewed through a follower, read through the third member.
    let id = grant_with_key(&follower_channel, 3, "lock").await;
    keep_alive_for(&follower_channel, &other_channel, id, 3, "lock", 10).await;
    // Several leases granted through a follower, then abandoned: none vanishes early.
    let granted_at = Instant::now();
    let mut ids = Vec::new();
    for index in 0..5 {
        ids.push(grant_with_key(&follower_channel, 5, &format!("short/{index}")).await);
    }
    while granted_at.elapsed() < Duration::from_millis(4_500) {
        for index in 0..5 {
            assert!(
                key_present(&other_channel, &format!("short/{index}")).await,
                "short/{index} vanished after {:?}, before its TTL of 5 s",
                granted_at.elapsed()
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
