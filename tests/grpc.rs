//! A Rust gRPC client against the real binary, for what etcdctl 3.4 cannot express: range
//! filters, fixed lease IDs, compare on LEASE, nested txns, watch IDs, filters, progress
//! requests, fragments, many watchers and slow readers, and the gRPC status codes.
// These start real processes on real sockets; the simulator has its own tests in sim/.
#![cfg(not(madsim))]

mod common;

use cairn::api::pb::etcdserverpb::{
    self as pb, auth_client::AuthClient, kv_client::KvClient, lease_client::LeaseClient,
    watch_client::WatchClient,
};
use common::Server;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Code;

fn put(key: &str, value: &str) -> pb::PutRequest {
    pb::PutRequest {
        key: key.as_bytes().to_vec().into(),
        value: value.as_bytes().to_vec().into(),
        ..Default::default()
    }
}

fn start(extra_args: &[&str]) -> (tempfile::TempDir, Server) {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), extra_args);
    (dir, server)
}

#[tokio::test]
async fn range_filters_and_status_codes() {
    let (_dir, server) = start(&["--max-request-bytes=4096"]);
    let mut kv = KvClient::new(server.channel().await);
    for (key, value) in [("a", "1"), ("b", "2"), ("c", "3"), ("a", "4")] {
        kv.put(put(key, value)).await.unwrap();
    }
    let all = |extra: fn(&mut pb::RangeRequest)| {
        let mut request = pb::RangeRequest {
            key: b"\0".to_vec().into(),
            range_end: b"\0".to_vec().into(),
            ..Default::default()
        };
        extra(&mut request);
        request
    };
    let keys = |response: pb::RangeResponse| {
        response
            .kvs
            .iter()
            .map(|kv| String::from_utf8(kv.key.to_vec()).unwrap())
            .collect::<Vec<_>>()
    };
    let response = kv
        .range(all(|r| r.min_mod_revision = 4))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(response.count, 3, "count ignores filters, as etcd's does");
    assert_eq!(keys(response), vec!["a", "c"]);
    let response = kv
        .range(all(|r| r.max_create_revision = 3))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(keys(response), vec!["a", "b"]);
    let response = kv
        .range(all(|r| r.count_only = true))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((response.count, response.kvs.len()), (3, 0));
    let response = kv
        .range(all(|r| {
            r.sort_target = 2;
            r.sort_order = 2;
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        keys(response),
        vec!["c", "b", "a"],
        "descending by create revision"
    );
    // An order etcd does not know sorts nothing (etcd's applier only sorts ASCEND and
    // DESCEND); a target it does not know is refused (etcd 3.4 would crash on it).
    let unsorted = kv
        .range(all(|r| {
            r.sort_order = 7;
            r.sort_target = 2;
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(keys(unsorted), vec!["a", "b", "c"], "key order");
    let error = kv
        .range(all(|r| {
            r.sort_order = 1;
            r.sort_target = 9;
        }))
        .await
        .unwrap_err();
    assert_eq!(
        (error.code(), error.message()),
        (Code::InvalidArgument, "etcdserver: invalid sort option")
    );
    let error = kv.range(all(|r| r.revision = 100)).await.unwrap_err();
    assert_eq!(
        (error.code(), error.message()),
        (
            Code::OutOfRange,
            "etcdserver: mvcc: required revision is a future revision"
        )
    );
    let error = kv.put(put("big", &"x".repeat(5000))).await.unwrap_err();
    assert_eq!(
        (error.code(), error.message()),
        (Code::InvalidArgument, "etcdserver: request is too large")
    );
    let error = kv
        .put(pb::PutRequest {
            ignore_lease: true,
            lease: 5,
            ..put("a", "")
        })
        .await
        .unwrap_err();
    assert_eq!(error.message(), "etcdserver: lease is provided");
    let error = kv
        .put(pb::PutRequest {
            ignore_value: true,
            ..put("a", "v")
        })
        .await
        .unwrap_err();
    assert_eq!(error.message(), "etcdserver: value is provided");
    let error = AuthClient::new(server.channel().await)
        .user_add(pb::AuthUserAddRequest::default())
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::InvalidArgument);
    assert_eq!(error.message(), "etcdserver: user name is empty");
    let status = AuthClient::new(server.channel().await)
        .auth_status(pb::AuthStatusRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(!status.enabled);
}

#[tokio::test]
async fn fixed_lease_ids_lease_compares_and_nested_txns() {
    let (_dir, server) = start(&[]);
    let channel = server.channel().await;
    let mut lease = LeaseClient::new(channel.clone());
    let mut kv = KvClient::new(channel);
    let granted = lease
        .lease_grant(pb::LeaseGrantRequest { ttl: 60, id: 1234 })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((granted.id, granted.ttl), (1234, 60));
    let error = lease
        .lease_grant(pb::LeaseGrantRequest { ttl: 60, id: 1234 })
        .await
        .unwrap_err();
    assert_eq!(
        (error.code(), error.message()),
        (Code::FailedPrecondition, "etcdserver: lease already exists")
    );
    let error = lease
        .lease_grant(pb::LeaseGrantRequest {
            ttl: 9_000_000_001,
            id: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(
        (error.code(), error.message()),
        (Code::OutOfRange, "etcdserver: too large lease TTL")
    );
    kv.put(pb::PutRequest {
        lease: 1234,
        ..put("held", "v")
    })
    .await
    .unwrap();
    use pb::request_op::Request;
    let compare_lease = pb::Compare {
        key: b"held".to_vec().into(),
        target: 4,
        result: 0,
        target_union: Some(pb::compare::TargetUnion::Lease(1234)),
        range_end: Default::default(),
    };
    let nested = pb::TxnRequest {
        compare: vec![pb::Compare {
            key: b"held".to_vec().into(),
            target: 3,
            result: 0,
            target_union: Some(pb::compare::TargetUnion::Value(b"v".to_vec().into())),
            range_end: Default::default(),
        }],
        success: vec![pb::RequestOp {
            request: Some(Request::RequestPut(put("inner", "then"))),
        }],
        failure: vec![pb::RequestOp {
            request: Some(Request::RequestPut(put("inner", "else"))),
        }],
    };
    let txn = pb::TxnRequest {
        compare: vec![compare_lease],
        success: vec![
            pb::RequestOp {
                request: Some(Request::RequestPut(pb::PutRequest {
                    ignore_lease: true,
                    ..put("held", "changed")
                })),
            },
            pb::RequestOp {
                request: Some(Request::RequestTxn(nested)),
            },
        ],
        failure: vec![],
    };
    let response = kv.txn(txn).await.unwrap().into_inner();
    assert!(response.succeeded);
    let inner = kv
        .range(pb::RangeRequest {
            key: b"inner".to_vec().into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        inner.kvs[0].value.as_ref(),
        b"then",
        "nested compares see the state before the txn"
    );
    let ttl = lease
        .lease_time_to_live(pb::LeaseTimeToLiveRequest {
            id: 1234,
            keys: true,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((ttl.granted_ttl, ttl.keys.len()), (60, 1));
    assert!(ttl.ttl > 55 && ttl.ttl <= 60, "remaining {}", ttl.ttl);
}

/// Opens a watch stream; returns the request sender and the response stream.
async fn watch_stream(
    server: &Server,
) -> (
    mpsc::Sender<pb::WatchRequest>,
    tonic::Streaming<pb::WatchResponse>,
) {
    let (sender, receiver) = mpsc::channel(16);
    let responses = WatchClient::new(server.channel().await)
        .watch(ReceiverStream::new(receiver))
        .await
        .unwrap()
        .into_inner();
    (sender, responses)
}

fn create(key: &str, range_end: &str, watch_id: i64, start_revision: i64) -> pb::WatchRequest {
    pb::WatchRequest {
        request_union: Some(pb::watch_request::RequestUnion::CreateRequest(
            pb::WatchCreateRequest {
                key: key.as_bytes().to_vec().into(),
                range_end: range_end.as_bytes().to_vec().into(),
                start_revision,
                watch_id,
                ..Default::default()
            },
        )),
    }
}

#[tokio::test]
async fn watch_ids_filters_progress_and_fragments() {
    let (_dir, server) = start(&["--max-request-bytes=2000"]);
    let mut kv = KvClient::new(server.channel().await);
    let (requests, mut responses) = watch_stream(&server).await;
    requests.send(create("k", "", 7, 0)).await.unwrap();
    let created = responses.message().await.unwrap().unwrap();
    assert_eq!(
        (created.watch_id, created.created, created.canceled),
        (7, true, false)
    );
    requests.send(create("k", "", 7, 0)).await.unwrap();
    let duplicate = responses.message().await.unwrap().unwrap();
    assert!(
        duplicate.canceled
            && duplicate.watch_id == -1
            && duplicate.cancel_reason.contains("duplicate watch ID"),
        "{duplicate:?}"
    );
    let mut no_put = create("k", "", 8, 0);
    if let Some(pb::watch_request::RequestUnion::CreateRequest(create)) = &mut no_put.request_union
    {
        create.filters = vec![0];
    }
    requests.send(no_put).await.unwrap();
    assert_eq!(responses.message().await.unwrap().unwrap().watch_id, 8);
    kv.put(put("k", "1")).await.unwrap();
    kv.delete_range(pb::DeleteRangeRequest {
        key: b"k".to_vec().into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let mut seen = Vec::new();
    while seen.len() < 3 {
        let response = responses.message().await.unwrap().unwrap();
        seen.extend(response.events.iter().map(|event| {
            (
                response.watch_id,
                event.r#type,
                event.kv.as_ref().unwrap().mod_revision,
            )
        }));
    }
    seen.sort();
    assert_eq!(
        seen,
        vec![(7, 0, 2), (7, 1, 3), (8, 1, 3)],
        "watcher 8 filters puts"
    );
    requests
        .send(pb::WatchRequest {
            request_union: Some(pb::watch_request::RequestUnion::ProgressRequest(
                pb::WatchProgressRequest {},
            )),
        })
        .await
        .unwrap();
    let progress = responses.message().await.unwrap().unwrap();
    assert_eq!(
        (
            progress.watch_id,
            progress.header.unwrap().revision,
            progress.events.len()
        ),
        (-1, 3, 0)
    );
    requests
        .send(pb::WatchRequest {
            request_union: Some(pb::watch_request::RequestUnion::CancelRequest(
                pb::WatchCancelRequest { watch_id: 8 },
            )),
        })
        .await
        .unwrap();
    let canceled = responses.message().await.unwrap().unwrap();
    assert_eq!((canceled.watch_id, canceled.canceled), (8, true));
    // Fragments: one revision of three 600-byte values plus their prev_kvs exceeds 2000 bytes.
    let big = "v".repeat(600);
    for key in ["f1", "f2", "f3"] {
        kv.put(put(key, &big)).await.unwrap();
    }
    let mut fragmented = create("f", "g", 0, 0);
    if let Some(pb::watch_request::RequestUnion::CreateRequest(create)) =
        &mut fragmented.request_union
    {
        create.fragment = true;
        create.prev_kv = true;
    }
    requests.send(fragmented).await.unwrap();
    let watch_id = responses.message().await.unwrap().unwrap().watch_id;
    use pb::request_op::Request;
    let overwrite = ["f1", "f2", "f3"].map(|key| pb::RequestOp {
        request: Some(Request::RequestPut(pb::PutRequest {
            prev_kv: true,
            ..put(key, &big)
        })),
    });
    kv.txn(pb::TxnRequest {
        success: overwrite.to_vec(),
        ..Default::default()
    })
    .await
    .unwrap();
    let mut pieces = Vec::new();
    loop {
        let response = responses.message().await.unwrap().unwrap();
        assert_eq!(response.watch_id, watch_id);
        pieces.push((response.fragment, response.events.len()));
        if !response.fragment {
            break;
        }
    }
    assert!(
        pieces.len() > 1,
        "a 3.6 KB revision over a 2000-byte limit is fragmented: {pieces:?}"
    );
    assert_eq!(pieces.iter().map(|(_, events)| events).sum::<usize>(), 3);
}

#[tokio::test]
async fn many_watchers_and_a_slow_reader_lose_nothing() {
    let (_dir, server) = start(&[]);
    let mut kv = KvClient::new(server.channel().await);
    let watchers = 20i64;
    let writes = 1500i64;
    let (slow_requests, mut slow) = watch_stream(&server).await;
    for watch_id in 1..=watchers {
        slow_requests
            .send(create("key", "kez", watch_id, 0))
            .await
            .unwrap();
        assert!(slow.message().await.unwrap().unwrap().created);
    }
    let (fast_requests, mut fast) = watch_stream(&server).await;
    fast_requests
        .send(create("key", "kez", 0, 0))
        .await
        .unwrap();
    assert!(fast.message().await.unwrap().unwrap().created);
    // Write everything while the slow stream is not read at all.
    for index in 0..writes {
        kv.put(put(&format!("key{}", index % 37), &index.to_string()))
            .await
            .unwrap();
    }
    let mut fast_revisions = Vec::new();
    while (fast_revisions.len() as i64) < writes {
        let response = fast.message().await.unwrap().unwrap();
        fast_revisions.extend(
            response
                .events
                .iter()
                .map(|event| event.kv.as_ref().unwrap().mod_revision),
        );
    }
    let expected: Vec<i64> = (2..writes + 2).collect();
    assert_eq!(fast_revisions, expected);
    let mut per_watcher: std::collections::BTreeMap<i64, Vec<i64>> = Default::default();
    while per_watcher.values().map(Vec::len).sum::<usize>() < (watchers * writes) as usize {
        let response = slow.message().await.unwrap().unwrap();
        per_watcher.entry(response.watch_id).or_default().extend(
            response
                .events
                .iter()
                .map(|event| event.kv.as_ref().unwrap().mod_revision),
        );
    }
    assert_eq!(per_watcher.len() as i64, watchers);
    for (watch_id, revisions) in per_watcher {
        assert_eq!(
            revisions, expected,
            "watcher {watch_id} saw every event once, in order"
        );
    }
}

#[tokio::test]
async fn progress_notifications_arrive_for_idle_watchers() {
    let (_dir, server) = start(&["--experimental-watch-progress-notify-interval=300ms"]);
    let mut kv = KvClient::new(server.channel().await);
    kv.put(put("p", "1")).await.unwrap();
    let (requests, mut responses) = watch_stream(&server).await;
    let mut notified = create("p", "", 0, 0);
    if let Some(pb::watch_request::RequestUnion::CreateRequest(create)) =
        &mut notified.request_union
    {
        create.progress_notify = true;
    }
    requests.send(notified).await.unwrap();
    let watch_id = responses.message().await.unwrap().unwrap().watch_id;
    let progress = tokio::time::timeout(std::time::Duration::from_secs(5), responses.message())
        .await
        .expect("a progress notification within 5 s")
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            progress.watch_id,
            progress.events.len(),
            progress.header.unwrap().revision
        ),
        (watch_id, 0, 2)
    );
}

#[tokio::test]
async fn defragment_and_move_leader_answer_without_a_header_as_etcd() {
    use cairn::api::pb::etcdserverpb::maintenance_client::MaintenanceClient;
    let (_dir, server) = start(&[]);
    let mut maintenance = MaintenanceClient::new(server.channel().await);
    let status = maintenance
        .status(pb::StatusRequest::default())
        .await
        .unwrap()
        .into_inner();
    let own_id = status.header.unwrap().member_id;
    let moved = maintenance
        .move_leader(pb::MoveLeaderRequest { target_id: own_id })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        moved.header, None,
        "etcd's MoveLeaderResponse has no header"
    );
    let defragmented = maintenance
        .defragment(pb::DefragmentRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        defragmented.header, None,
        "etcd's DefragmentResponse has no header"
    );
}
