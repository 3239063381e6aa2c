//! Concurrent puts of the largest size a client may send, until proposal batches close at
//! their byte cap; after a kill -9 and a restart every acknowledged put is there. A batch
//! capped only by count once could outgrow what WAL recovery accepts.
#![cfg(not(madsim))]

mod common;

use cairn::api::pb::etcdserverpb::{self as pb, kv_client::KvClient};
use common::Server;
use std::time::Duration;

const WRITERS: usize = 12;
const PUTS_PER_WRITER: usize = 4;
/// Just under etcd's default --max-request-bytes (1.5 MiB) once the key is added.
const VALUE_BYTES: usize = 1_500_000;
/// Two such puts pass this, so any two queued together fill a batch to its cap.
const BATCH_BYTES: &str = "--proposal-batch-bytes=2097152";

fn value(writer: usize, index: usize) -> Vec<u8> {
    let mut value = format!("{writer}-{index}-").into_bytes();
    value.resize(VALUE_BYTES, b'a' + (writer + index) as u8 % 26);
    value
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maximum_size_puts_fill_batches_to_their_byte_cap_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start_with_env(
        &dir.path().join("data"),
        &[BATCH_BYTES, "--wal-segment-bytes=8388608"],
        &[(
            "CAIRN_LOG",
            "info,openraft=warn,cairn::raft::proposer=debug",
        )],
    );
    let mut writers = Vec::new();
    for writer in 0..WRITERS {
        let mut kv = KvClient::new(server.channel().await);
        writers.push(tokio::spawn(async move {
            for index in 0..PUTS_PER_WRITER {
                kv.put(pb::PutRequest {
                    key: format!("big/{writer}/{index}").into_bytes().into(),
                    value: value(writer, index).into(),
                    ..Default::default()
                })
                .await
                .expect("a put of the largest allowed size is accepted");
            }
        }));
    }
    for writer in writers {
        writer.await.unwrap();
    }
    let log = std::fs::read_to_string(&server.log).unwrap();
    assert!(
        log.contains("batch closed at its byte cap"),
        "no batch reached the byte cap; log:\n{}",
        &log[log.len().saturating_sub(2000)..]
    );
    server.kill();
    server.restart();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut kv = KvClient::new(server.channel().await).max_decoding_message_size(64 << 20);
    for writer in 0..WRITERS {
        for index in 0..PUTS_PER_WRITER {
            let key = format!("big/{writer}/{index}");
            let found = kv
                .range(pb::RangeRequest {
                    key: key.clone().into_bytes().into(),
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner();
            let kv = found
                .kvs
                .first()
                .unwrap_or_else(|| panic!("{key} lost after restart"));
            assert!(
                kv.value[..] == value(writer, index)[..],
                "{key} has another value"
            );
        }
    }
}
