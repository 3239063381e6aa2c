//! Maintenance.Snapshot's stream, as etcd sends it: the backend database in pieces, each
//! with the bytes still to come, then one message holding the SHA-256 of everything sent.
//! The database is produced page by page from an O(1) copy of the applied state (see
//! `storage::bolt`), so a store of many GiB is sent in bounded memory while writes go on.

use super::pb::etcdserverpb as pb;
use super::CLUSTER_VERSION;
use crate::apply::StateMachine;
use crate::backup::{self, ExportMeta, StreamHash};
use crate::io;
use crate::storage::bolt::BoltWriter;
use tonic::Status;

/// Bytes per message: etcd's `snapshotSendBufferSize`.
const CHUNK_BYTES: usize = 32 * 1024;

struct Sending {
    writer: BoltWriter,
    remaining_bytes: u64,
    hash: Option<StreamHash>,
}

/// The messages of a snapshot of `machine`. Laying the file out reads every version once,
/// off the async executor, before the first message.
pub async fn stream(
    machine: StateMachine,
    meta: ExportMeta,
) -> impl futures::Stream<Item = Result<pb::SnapshotResponse, Status>> + Send + 'static {
    let writer = io::blocking(move || backup::database(&machine, &meta)).await;
    let sending = Sending {
        remaining_bytes: writer.total_bytes(),
        writer,
        hash: Some(StreamHash::default()),
    };
    tracing::info!(
        bytes = sending.remaining_bytes,
        "sending a snapshot of the backend database"
    );
    futures::stream::unfold(sending, |mut sending| async move {
        let hash = sending.hash.as_mut()?;
        let mut writer = sending.writer;
        let (writer, chunk) = io::blocking(move || {
            let chunk = writer.next_chunk(CHUNK_BYTES);
            (writer, chunk)
        })
        .await;
        sending.writer = writer;
        let blob = if chunk.is_empty() {
            let hash = sending.hash.take().expect("checked above");
            tracing::info!("snapshot sent");
            hash.finish()
        } else {
            hash.update(&chunk);
            sending.remaining_bytes -= chunk.len() as u64;
            chunk
        };
        let response = pb::SnapshotResponse {
            header: None,
            remaining_bytes: sending.remaining_bytes,
            blob: blob.into(),
            version: CLUSTER_VERSION.to_string(),
        };
        Some((Ok(response), sending))
    })
}
