//! The simulation seam works: the production member runs inside madsim, serves a put and a
//! get over simulated gRPC, and keeps every acknowledged write across a crash that loses its
//! unsynced disk bytes.
#![cfg(madsim)]

use cairn::api::pb::etcdserverpb::{kv_client::KvClient, PutRequest, RangeRequest};
use cairn_sim::member::{client_url, start_member, MemberSettings};
use madsim::runtime::Handle;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;
use tonic::transport::{Channel, Endpoint};

async fn connect(index: u8) -> KvClient<Channel> {
    for _ in 0..100 {
        if let Ok(channel) = Endpoint::from_shared(client_url(index))
            .unwrap()
            .connect_timeout(Duration::from_secs(1))
            .connect()
            .await
        {
            return KvClient::new(channel);
        }
        madsim::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("member {index} never accepted a connection");
}

async fn get(client: &mut KvClient<Channel>, key: &str) -> Option<String> {
    let response = client
        .range(RangeRequest {
            key: key.as_bytes().to_vec().into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    response
        .kvs
        .first()
        .map(|kv| String::from_utf8(kv.value.to_vec()).unwrap())
}

/// The node the tests' requests come from.
fn client_node(handle: &Handle) -> madsim::runtime::NodeHandle {
    handle
        .create_node()
        .name("client")
        .ip(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 100)))
        .build()
}

#[madsim::test]
async fn put_then_get_in_simulation() {
    let handle = Handle::current();
    let _member = start_member(&handle, 1, &MemberSettings::default());
    let client = client_node(&handle);
    client
        .spawn(async move {
            let mut kv = connect(1).await;
            kv.put(PutRequest {
                key: b"hello".to_vec().into(),
                value: b"world".to_vec().into(),
                ..Default::default()
            })
            .await
            .unwrap();
            assert_eq!(get(&mut kv, "hello").await.as_deref(), Some("world"));
        })
        .await
        .unwrap();
}

#[madsim::test]
async fn acknowledged_writes_survive_a_crash_that_loses_unsynced_bytes() {
    let handle = Handle::current();
    let member = start_member(&handle, 1, &MemberSettings::default());
    let client = client_node(&handle);
    let written = client
        .spawn(async move {
            let mut kv = connect(1).await;
            for index in 0..250u32 {
                let request = PutRequest {
                    key: format!("key{index}").into_bytes().into(),
                    value: index.to_string().into_bytes().into(),
                    ..Default::default()
                };
                kv.put(request).await.unwrap();
            }
            250u32
        })
        .await
        .unwrap();
    handle.kill(member.node.id());
    member.disk.crash(madsim::rand::random());
    handle.restart(member.node.id());
    client
        .spawn(async move {
            let mut kv = connect(1).await;
            for index in 0..written {
                assert_eq!(
                    get(&mut kv, &format!("key{index}")).await,
                    Some(index.to_string()),
                    "acknowledged key{index} lost"
                );
            }
        })
        .await
        .unwrap();
}

#[madsim::test]
async fn a_slow_fsync_delays_acknowledgments_by_its_latency() {
    let handle = Handle::current();
    let member = start_member(&handle, 1, &MemberSettings::default());
    let client = client_node(&handle);
    let put_ms = |disk: cairn::io::MemoryDisk, latency_ms: u64| async move {
        disk.set_options(cairn::io::MemoryDiskOptions {
            sync_latency_ms: latency_ms,
            ..disk.options()
        });
        let mut kv = connect(1).await;
        let started = madsim::time::Instant::now();
        kv.put(PutRequest {
            key: b"slow".to_vec().into(),
            value: latency_ms.to_string().into_bytes().into(),
            ..Default::default()
        })
        .await
        .unwrap();
        started.elapsed().as_millis() as u64
    };
    let fast = client.spawn(put_ms(member.disk.clone(), 0)).await.unwrap();
    let slow = client
        .spawn(put_ms(member.disk.clone(), 300))
        .await
        .unwrap();
    // A put waits for at least one WAL fsync before it is acknowledged.
    assert!(
        fast < 300 && slow >= 300,
        "fast put {fast} ms, slow put {slow} ms"
    );
}
