//! The Watch and LeaseKeepAlive streams against clients that misbehave or are simply terse:
//! one that closes its sending side after one request (grpcurl, scripts), one that sends
//! bytes that are not a message, and refused watch creates, each answered as etcd does.
#![cfg(not(madsim))]

mod common;

use bytes::{Buf, BufMut};
use cairn::api::pb::etcdserverpb::{self as pb, kv_client::KvClient, watch_client::WatchClient};
use common::Server;
use std::time::Duration;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::{Code, Status};

fn start() -> (tempfile::TempDir, Server) {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), &[]);
    (dir, server)
}

fn create(key: &str, range_end: &str, watch_id: i64) -> pb::WatchRequest {
    pb::WatchRequest {
        request_union: Some(pb::watch_request::RequestUnion::CreateRequest(
            pb::WatchCreateRequest {
                key: key.as_bytes().to_vec().into(),
                range_end: range_end.as_bytes().to_vec().into(),
                watch_id,
                ..Default::default()
            },
        )),
    }
}

/// Waits for the next message, failing the test instead of hanging.
async fn next<T>(stream: &mut tonic::Streaming<T>) -> Result<Option<T>, Status> {
    tokio::time::timeout(Duration::from_secs(10), stream.message())
        .await
        .expect("the stream answered within 10 s")
}

#[tokio::test]
async fn a_watch_keeps_delivering_after_the_client_closes_its_side() {
    let (_dir, server) = start();
    // One create, then the request stream ends: tonic half-closes the call.
    let requests = tokio_stream::iter(vec![create("k", "", 0)]);
    let mut responses = WatchClient::new(server.channel().await)
        .watch(requests)
        .await
        .unwrap()
        .into_inner();
    let created = next(&mut responses).await.unwrap().unwrap();
    assert!(created.created && !created.canceled, "{created:?}");
    let mut kv = KvClient::new(server.channel().await);
    kv.put(pb::PutRequest {
        key: b"k".to_vec().into(),
        value: b"after the half-close".to_vec().into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let events = next(&mut responses)
        .await
        .unwrap()
        .expect("the stream stays open after the client closed its sending side");
    assert_eq!(events.watch_id, created.watch_id);
    assert_eq!(
        events.events[0].kv.as_ref().unwrap().value.as_ref(),
        b"after the half-close"
    );
}

#[tokio::test]
async fn refused_watch_creates_answer_an_invalid_watch_id() {
    let (_dir, server) = start();
    let (sender, receiver) = tokio::sync::mpsc::channel(4);
    let mut responses = WatchClient::new(server.channel().await)
        .watch(tokio_stream::wrappers::ReceiverStream::new(receiver))
        .await
        .unwrap()
        .into_inner();
    sender.send(create("a", "", 7)).await.unwrap();
    let live = next(&mut responses).await.unwrap().unwrap();
    assert_eq!((live.watch_id, live.canceled), (7, false));
    // An empty range, then a duplicate of the live watcher's ID.
    for refused in [create("b", "a", 0), create("c", "", 7)] {
        sender.send(refused).await.unwrap();
        let answer = next(&mut responses).await.unwrap().unwrap();
        assert!(answer.created && answer.canceled, "{answer:?}");
        assert_eq!(
            answer.watch_id, -1,
            "etcd's InvalidWatchID, never a live watcher's ID: {answer:?}"
        );
    }
    sender.send(create("d", "", 0)).await.unwrap();
    let next_live = next(&mut responses).await.unwrap().unwrap();
    assert_eq!((next_live.watch_id, next_live.canceled), (8, false));
}

/// A codec that sends and receives raw bytes, for messages no etcd client would send.
#[derive(Default, Clone)]
struct RawCodec;

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> RawCodec {
        RawCodec
    }

    fn decoder(&mut self) -> RawCodec {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = Status;

    fn encode(&mut self, item: Vec<u8>, destination: &mut EncodeBuf<'_>) -> Result<(), Status> {
        destination.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = Status;

    fn decode(&mut self, source: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        let length = source.remaining();
        Ok(Some(source.copy_to_bytes(length).to_vec()))
    }
}

/// Sends `bytes` as one message on the streaming RPC at `path`; returns how the stream
/// ended (its first message or error).
async fn garbage_on(server: &Server, path: &'static str, bytes: Vec<u8>) -> Result<(), Status> {
    let mut grpc = tonic::client::Grpc::new(server.channel().await);
    grpc.ready().await.unwrap();
    let (sender, receiver) = tokio::sync::mpsc::channel(1);
    sender.send(bytes).await.unwrap();
    let call = grpc.streaming(
        tonic::Request::new(tokio_stream::wrappers::ReceiverStream::new(receiver)),
        PathAndQuery::from_static(path),
        RawCodec,
    );
    let mut responses = call.await?.into_inner();
    let ended = next(&mut responses).await.map(|_| ());
    drop(sender);
    ended
}

#[tokio::test]
async fn bytes_that_are_not_a_message_end_the_stream_with_an_error() {
    let (_dir, server) = start();
    // Field 1 with wire type 7, which does not exist: no protobuf decoder accepts it.
    let garbage = vec![0x0f, 0xff, 0xff, 0xff];
    for path in [
        "/etcdserverpb.Watch/Watch",
        "/etcdserverpb.Lease/LeaseKeepAlive",
    ] {
        let ended = garbage_on(&server, path, garbage.clone()).await;
        let status = ended.expect_err("the stream ends with an error, not OK");
        assert_eq!(status.code(), Code::Internal, "{path}: {status:?}");
    }
    // The server is unharmed.
    let mut kv = KvClient::new(server.channel().await);
    kv.put(pb::PutRequest {
        key: b"still".to_vec().into(),
        value: b"serving".to_vec().into(),
        ..Default::default()
    })
    .await
    .unwrap();
}
