//! Watchers from past revisions with progress requests, resuming after every break.

use super::{channels, revision_of, unpadded, KEY_PREFIX, KEY_PREFIX_END};
use crate::history::{Millis, PreviousKv, WatchEvent, WatchLog, WatchMessage};
use crate::params::Params;
use crate::recorder::{now_ms, SharedRecorder};
use crate::seeds::Stream;
use cairn::api::pb::etcdserverpb::{self as pb, watch_client::WatchClient};
use cairn::api::pb::mvccpb;
use rand::Rng;
use std::time::Duration;

fn watch_event(event: &mvccpb::Event, padding_bytes: usize) -> WatchEvent {
    let kv = event.kv.clone().unwrap_or_default();
    let is_delete = event.r#type == mvccpb::event::EventType::Delete as i32;
    WatchEvent {
        key: String::from_utf8_lossy(&kv.key).into_owned(),
        revision: kv.mod_revision,
        value: (!is_delete).then(|| unpadded(&kv.value, padding_bytes)),
        prev: event.prev_kv.as_ref().map(|prev| PreviousKv {
            revision: prev.mod_revision,
            value: unpadded(&prev.value, padding_bytes),
        }),
    }
}

/// One watcher on the key space until `stop_ms`, resuming after every break.
pub async fn run_watcher(
    watcher: usize,
    params: Params,
    recorder: SharedRecorder,
    stop_ms: Millis,
) {
    let mut random = Stream::Watcher(watcher).random(params.seed);
    let half_closes = Stream::WatcherHalfClose(watcher)
        .random(params.seed)
        .gen_bool(0.3);
    // Half the watchers ask for a leader, as Kubernetes' clients do: their streams end
    // with "no leader" when their member has none and they resume elsewhere.
    let requires_leader = Stream::WatcherRequiresLeader(watcher)
        .random(params.seed)
        .gen_bool(0.5);
    let channels = channels(&params.endpoints);
    let mut log = WatchLog {
        watcher,
        prefix: KEY_PREFIX.to_string(),
        with_prev_kv: true,
        requires_leader,
        messages: Vec::new(),
    };
    // Start from the beginning of history or from now.
    let mut next_start: i64 = if random.gen_bool(0.5) { 1 } else { 0 };
    let timeout = Duration::from_millis(params.request_timeout_ms());
    while now_ms(&recorder) < stop_ms {
        let (request_sender, receiver) = tokio::sync::mpsc::channel(8);
        let create = pb::WatchCreateRequest {
            key: KEY_PREFIX.as_bytes().to_vec().into(),
            range_end: KEY_PREFIX_END.as_bytes().to_vec().into(),
            start_revision: next_start,
            prev_kv: true,
            ..Default::default()
        };
        let _ = request_sender
            .send(pb::WatchRequest {
                request_union: Some(pb::watch_request::RequestUnion::CreateRequest(create)),
            })
            .await;
        // A half-closing watcher ends its request stream right after the create.
        let sender = (!half_closes).then_some(request_sender);
        let mut client = WatchClient::new(channels[random.gen_range(0..channels.len())].clone());
        let mut request =
            tonic::Request::new(tokio_stream::wrappers::ReceiverStream::new(receiver));
        if requires_leader {
            request
                .metadata_mut()
                .insert("hasleader", "true".parse().expect("ASCII"));
        }
        let opened = tokio::time::timeout(timeout, client.watch(request)).await;
        let Ok(Ok(stream)) = opened else {
            log.messages.push(WatchMessage::Broken);
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let mut stream = stream.into_inner();
        loop {
            if now_ms(&recorder) >= stop_ms {
                break;
            }
            if random.gen_bool(0.2) {
                let progress = pb::WatchRequest {
                    request_union: Some(pb::watch_request::RequestUnion::ProgressRequest(
                        pb::WatchProgressRequest {},
                    )),
                };
                if let Some(sender) = &sender {
                    let _ = sender.try_send(progress);
                }
            }
            let message = match tokio::time::timeout(timeout, stream.message()).await {
                Ok(Ok(Some(message))) => message,
                Ok(Ok(None)) => {
                    log.messages.push(WatchMessage::EndedWithOk);
                    break;
                }
                Ok(Err(status)) if status.message() == "etcdserver: no leader" => {
                    log.messages.push(WatchMessage::EndedNoLeader);
                    break;
                }
                _ => {
                    log.messages.push(WatchMessage::Broken);
                    break;
                }
            };
            let header_revision = revision_of(&message.header);
            let recorded = if message.created && !message.canceled {
                let start_revision = if next_start > 0 {
                    next_start
                } else {
                    header_revision + 1
                };
                next_start = start_revision;
                WatchMessage::Created { start_revision }
            } else if message.canceled && message.compact_revision > 0 {
                next_start = message.compact_revision;
                log.messages.push(WatchMessage::Compacted {
                    compact_revision: message.compact_revision,
                });
                break;
            } else if message.canceled {
                log.messages.push(WatchMessage::Broken);
                break;
            } else if message.watch_id == cairn::watch::PROGRESS_WATCH_ID {
                next_start = next_start.max(header_revision + 1);
                WatchMessage::Progress {
                    revision: header_revision,
                }
            } else {
                let events: Vec<WatchEvent> = message
                    .events
                    .iter()
                    .map(|event| watch_event(event, params.value_padding_bytes))
                    .collect();
                if let Some(last) = events.last() {
                    next_start = last.revision + 1;
                }
                WatchMessage::Events {
                    header_revision,
                    events,
                }
            };
            log.messages.push(recorded);
        }
    }
    let mut recorder = recorder.lock().unwrap();
    recorder.note(format!("watcher {watcher} {:?}", log.messages));
    recorder.history.watches.push(log);
}
