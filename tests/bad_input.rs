//! Requests etcd's clients may send that once got answers other than etcd's: txns nested
//! deeper than prost's recursion limit allowed, messages over the size limit (grpc-go's
//! RESOURCE_EXHAUSTED, not tonic's OUT_OF_RANGE, on unary calls and streams alike), and
//! sort enums etcd does not know.
#![cfg(not(madsim))]

mod common;

use cairn::api::pb::etcdserverpb::{
    self as pb, kv_client::KvClient, request_op::Request, response_op::Response,
    watch_client::WatchClient,
};
use common::Server;
use tonic::Code;

fn start() -> (tempfile::TempDir, Server) {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), &[]);
    (dir, server)
}

/// A txn `depth` levels deep (the outermost counted) whose innermost success path puts `key`.
fn nested_put(depth: usize, key: &str) -> pb::TxnRequest {
    let mut txn = pb::TxnRequest {
        success: vec![pb::RequestOp {
            request: Some(Request::RequestPut(pb::PutRequest {
                key: key.as_bytes().to_vec().into(),
                value: b"deep".to_vec().into(),
                ..Default::default()
            })),
        }],
        ..Default::default()
    };
    for _ in 1..depth {
        txn = pb::TxnRequest {
            success: vec![pb::RequestOp {
                request: Some(Request::RequestTxn(txn)),
            }],
            ..Default::default()
        };
    }
    txn
}

fn response_depth(response: &pb::TxnResponse) -> usize {
    match response
        .responses
        .first()
        .and_then(|op| op.response.as_ref())
    {
        Some(Response::ResponseTxn(inner)) => 1 + response_depth(inner),
        _ => 1,
    }
}

#[tokio::test]
async fn txns_nest_as_deep_as_etcd_accepts() {
    let (_dir, server) = start();
    let mut kv = KvClient::new(server.channel().await);
    // `depth` counts the outermost txn too: 129 levels hold 128 nested txns, the bound.
    for depth in [50, 60, 129] {
        let key = format!("deep{depth}");
        let response = kv
            .txn(nested_put(depth, &key))
            .await
            .unwrap_or_else(|status| panic!("depth {depth}: {status:?}"))
            .into_inner();
        assert!(response.succeeded);
        assert_eq!(response_depth(&response), depth);
        assert_eq!(
            server.ok(&["get", &key, "--print-value-only"]).trim(),
            "deep"
        );
    }
    // Past the bound: a decode error as grpc-go gives for a message it cannot unmarshal,
    // and the member goes on serving.
    let Err(status) = kv.txn(nested_put(130, "too-deep")).await else {
        panic!("130 levels are refused");
    };
    assert_eq!(status.code(), Code::Internal, "{status:?}");
    assert!(
        status.message().contains("nested more than 128"),
        "{status:?}"
    );
    server.ok(&["put", "after", "ok"]);
}

#[tokio::test]
async fn oversized_messages_are_resource_exhausted_as_grpc_go_says() {
    let (_dir, server) = start();
    // etcd's limit: --max-request-bytes (1.5 MiB) plus 512 KiB of gRPC overhead.
    let limit = 3 * 1024 * 1024 / 2 + 512 * 1024;
    let channel = server.channel().await;
    let mut kv = KvClient::new(channel.clone());
    let status = kv
        .put(pb::PutRequest {
            key: b"big".to_vec().into(),
            value: vec![b'x'; limit + 10].into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(
        status
            .message()
            .starts_with("grpc: received message larger than max ("),
        "{status:?}"
    );
    assert!(
        status.message().ends_with(&format!(" vs. {limit})")),
        "{status:?}"
    );

    let mut watch = WatchClient::new(channel);
    let create = pb::WatchRequest {
        request_union: Some(pb::watch_request::RequestUnion::CreateRequest(
            pb::WatchCreateRequest {
                key: vec![b'k'; limit + 10].into(),
                ..Default::default()
            },
        )),
    };
    let outcome = match watch.watch(tokio_stream::iter(vec![create])).await {
        Err(status) => status,
        Ok(response) => {
            let mut stream = response.into_inner();
            loop {
                match stream.message().await {
                    Ok(Some(_)) => continue,
                    Ok(None) => panic!("the stream ended with OK"),
                    Err(status) => break status,
                }
            }
        }
    };
    assert_eq!(outcome.code(), Code::ResourceExhausted, "{outcome:?}");
    assert!(
        outcome
            .message()
            .starts_with("grpc: received message larger than max"),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn unknown_sort_orders_sort_nothing_and_unknown_targets_are_refused() {
    let (_dir, server) = start();
    for (key, value) in [("b", "1"), ("a", "3"), ("c", "2")] {
        server.ok(&["put", key, value]);
    }
    let mut kv = KvClient::new(server.channel().await);
    let range = |sort_order: i32, sort_target: i32| pb::RangeRequest {
        key: b"a".to_vec().into(),
        range_end: b"d".to_vec().into(),
        sort_order,
        sort_target,
        ..Default::default()
    };
    let keys = |response: pb::RangeResponse| -> Vec<String> {
        response
            .kvs
            .iter()
            .map(|kv| String::from_utf8(kv.key.to_vec()).unwrap())
            .collect()
    };
    // etcd: an order it does not know sorts nothing, whatever the target (value here).
    let unsorted = kv.range(range(7, 4)).await.unwrap().into_inner();
    assert_eq!(keys(unsorted), ["a", "b", "c"]);
    let by_value = kv.range(range(2, 4)).await.unwrap().into_inner();
    assert_eq!(keys(by_value), ["a", "c", "b"], "descending by value");
    let status = kv.range(range(1, 9)).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(status.message(), "etcdserver: invalid sort option");
}
