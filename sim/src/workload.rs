//! The workload: clients doing puts, gets (linearizable and serializable), deletes and
//! compare-and-swaps on a small key space, watchers from past revisions with progress
//! requests, lease clients with short TTLs, and a compactor. Everything is recorded.

use crate::history::{
    History, LeaseLog, Millis, Observed, Operation, Request, Response, WatchEvent, WatchLog,
    WatchMessage,
};
use crate::params::Params;
use cairn::api::pb::etcdserverpb::{
    self as pb, kv_client::KvClient, lease_client::LeaseClient, watch_client::WatchClient,
};
use cairn::api::pb::mvccpb;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tonic::transport::{Channel, Endpoint};

pub const KEY_PREFIX: &str = "k/";
const KEY_PREFIX_END: &str = "k0";

/// Shared record of everything that happened, with the trace of events in order.
pub struct Recorder {
    start: tokio::time::Instant,
    pub history: History,
    pub trace: Vec<String>,
}

pub type SharedRecorder = Arc<Mutex<Recorder>>;

impl Recorder {
    pub fn new() -> SharedRecorder {
        Arc::new(Mutex::new(Recorder {
            start: tokio::time::Instant::now(),
            history: History::default(),
            trace: Vec::new(),
        }))
    }

    pub fn now_ms(&self) -> Millis {
        self.start.elapsed().as_millis() as Millis
    }

    pub fn note(&mut self, event: String) {
        let line = format!("{} {event}", self.now_ms());
        self.trace.push(line);
    }
}

pub fn now_ms(recorder: &SharedRecorder) -> Millis {
    recorder.lock().unwrap().now_ms()
}

/// Lazily connected channels to every member's client URL.
pub fn channels(endpoints: &[String]) -> Vec<Channel> {
    endpoints
        .iter()
        .map(|url| {
            Endpoint::from_shared(url.clone())
                .expect("valid URL")
                .connect_timeout(Duration::from_secs(1))
                .connect_lazy()
        })
        .collect()
}

async fn with_timeout<T>(
    params: &Params,
    call: impl std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
) -> Result<T, String> {
    match tokio::time::timeout(Duration::from_millis(params.request_timeout_ms()), call).await {
        Err(_) => Err("timed out".to_string()),
        Ok(Err(status)) => Err(format!("{:?}: {}", status.code(), status.message())),
        Ok(Ok(response)) => Ok(response.into_inner()),
    }
}

/// What the workload writes for `value`: the value, then `padding_bytes` dots.
pub fn padded(value: &str, padding_bytes: usize) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(value.len() + padding_bytes);
    bytes.extend_from_slice(value.as_bytes());
    bytes.resize(value.len() + padding_bytes, b'.');
    bytes
}

/// The value as the history records it: the padding removed only when it is exactly what
/// the workload added, so a value cut short or changed on its way still shows as different.
pub fn unpadded(bytes: &[u8], padding_bytes: usize) -> String {
    let text = String::from_utf8_lossy(bytes);
    match text.len().checked_sub(padding_bytes) {
        Some(end) if padding_bytes > 0 && text[end..].bytes().all(|byte| byte == b'.') => {
            text[..end].to_string()
        }
        _ => text.into_owned(),
    }
}

pub fn observed(kv: &mvccpb::KeyValue, padding_bytes: usize) -> Observed {
    Observed {
        value: unpadded(&kv.value, padding_bytes),
        mod_revision: kv.mod_revision,
        create_revision: kv.create_revision,
        version: kv.version,
    }
}

fn revision_of(header: &Option<pb::ResponseHeader>) -> i64 {
    header.as_ref().map_or(0, |header| header.revision)
}

/// A workload actor: a name (its simulated node's) and what it runs until the stop time.
pub type Actor = (
    String,
    std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>,
);

/// Every actor of the workload, in the order both worlds start them: KV clients, watchers,
/// lease clients, the compactor.
pub fn actors(params: &Params, recorder: &SharedRecorder, stop_ms: Millis) -> Vec<Actor> {
    let mut actors: Vec<Actor> = Vec::new();
    for client in 0..params.clients {
        let actor = run_client(client, params.clone(), recorder.clone(), stop_ms);
        actors.push((format!("client-{client}"), Box::pin(actor)));
    }
    for watcher in 0..params.watchers {
        let actor = run_watcher(watcher, params.clone(), recorder.clone(), stop_ms);
        actors.push((format!("watcher-{watcher}"), Box::pin(actor)));
    }
    for lease in 0..params.lease_clients {
        let actor = run_lease_client(lease, params.clone(), recorder.clone(), stop_ms);
        actors.push((format!("lease-{lease}"), Box::pin(actor)));
    }
    if params.compactions {
        let actor = run_compactor(params.clone(), recorder.clone(), stop_ms);
        actors.push(("compactor".to_string(), Box::pin(actor)));
    }
    actors
}

/// One KV client until `stop_ms`.
pub async fn run_client(client: usize, params: Params, recorder: SharedRecorder, stop_ms: Millis) {
    let mut random =
        SmallRng::seed_from_u64(params.seed.wrapping_mul(31).wrapping_add(client as u64));
    let clients: Vec<KvClient<Channel>> = channels(&params.endpoints)
        .into_iter()
        .map(KvClient::new)
        .collect();
    let mut last_mod: std::collections::BTreeMap<String, i64> = Default::default();
    let mut sequence = 0;
    while now_ms(&recorder) < stop_ms {
        // One step: a range over the key space (recorded as one read per key), or one
        // operation on one key.
        let (invoked_ms, outcomes) = if random.gen_range(0..100) < params.ranges_percent {
            let linearizable = random.gen_range(0..100) >= params.serializable_gets_percent;
            let mut kv = clients[random.gen_range(0..clients.len())].clone();
            let invoked_ms = now_ms(&recorder);
            let outcome = execute_range(&params, &mut kv, linearizable).await;
            (invoked_ms, range_as_reads(&params, linearizable, outcome))
        } else {
            let request = draw_request(&params, &mut random, client, &mut sequence, &last_mod);
            let mut kv = clients[random.gen_range(0..clients.len())].clone();
            let invoked_ms = now_ms(&recorder);
            let response = execute(&params, &mut kv, &request).await;
            (invoked_ms, vec![(request, response)])
        };
        for (request, response) in outcomes {
            if let Response::Read { found, .. } = &response {
                let mod_revision = found.as_ref().map_or(0, |observed| observed.mod_revision);
                last_mod.insert(request.key().to_string(), mod_revision);
            }
            record(
                &recorder,
                client,
                recorded(&params, request),
                invoked_ms,
                response,
            );
        }
        tokio::time::sleep(Duration::from_millis(random.gen_range(1..30))).await;
    }
}

/// One operation on one key of the key space, by the workload's mix.
fn draw_request(
    params: &Params,
    random: &mut SmallRng,
    client: usize,
    sequence: &mut u64,
    last_mod: &std::collections::BTreeMap<String, i64>,
) -> Request {
    let key = format!("{KEY_PREFIX}{}", random.gen_range(0..params.keys));
    *sequence += 1;
    let value = format!("c{client}-{sequence}");
    let roll = random.gen_range(0..100);
    if roll < params.gets_percent {
        let serializable = random.gen_range(0..100) < params.serializable_gets_percent;
        Request::Get {
            key,
            linearizable: !serializable,
        }
    } else if roll < params.gets_percent + params.deletes_percent {
        Request::Delete { key }
    } else if roll < params.gets_percent + params.deletes_percent + params.compare_and_swaps_percent
    {
        let expected = last_mod.get(&key).copied().unwrap_or(0);
        Request::CompareAndSwap {
            key,
            expected,
            value,
        }
    } else {
        Request::Put { key, value }
    }
}

/// The request as the history records it; the deliberately wrong workload records a
/// serializable read as linearizable.
fn recorded(params: &Params, request: Request) -> Request {
    match request {
        Request::Get {
            key,
            linearizable: false,
        } if params.serializable_recorded_as_linearizable => Request::Get {
            key,
            linearizable: true,
        },
        other => other,
    }
}

fn record(
    recorder: &SharedRecorder,
    client: usize,
    request: Request,
    invoked_ms: Millis,
    response: Response,
) {
    let mut recorder = recorder.lock().unwrap();
    let id = recorder.history.operations.len();
    let operation = Operation {
        id,
        client,
        request,
        invoked_ms,
        completed_ms: recorder.now_ms(),
        response,
    };
    recorder.note(format!("op {operation:?}"));
    recorder.history.operations.push(operation);
}

/// A range over the whole key space: the keys it returned and the revision it read at.
async fn execute_range(
    params: &Params,
    kv: &mut KvClient<Channel>,
    linearizable: bool,
) -> Result<(i64, std::collections::BTreeMap<String, Observed>), String> {
    let response = with_timeout(
        params,
        kv.range(pb::RangeRequest {
            key: KEY_PREFIX.as_bytes().to_vec().into(),
            range_end: KEY_PREFIX_END.as_bytes().to_vec().into(),
            serializable: !linearizable,
            ..Default::default()
        }),
    )
    .await?;
    let found = response
        .kvs
        .iter()
        .map(|kv| {
            let key = String::from_utf8_lossy(&kv.key).into_owned();
            (key, observed(kv, params.value_padding_bytes))
        })
        .collect();
    Ok((revision_of(&response.header), found))
}

/// A range is recorded as one read per key of the key space, all at the range's revision
/// and with its timing: each must be right on its own, and together they must be one
/// consistent cut of the store, which is what a range promises.
fn range_as_reads(
    params: &Params,
    linearizable: bool,
    outcome: Result<(i64, std::collections::BTreeMap<String, Observed>), String>,
) -> Vec<(Request, Response)> {
    (0..params.keys)
        .map(|index| {
            let key = format!("{KEY_PREFIX}{index}");
            let response = match &outcome {
                Ok((revision, found)) => Response::Read {
                    revision: *revision,
                    found: found.get(&key).cloned(),
                },
                Err(error) => Response::ReadFailed(error.clone()),
            };
            (Request::Get { key, linearizable }, response)
        })
        .collect()
}

async fn execute(params: &Params, kv: &mut KvClient<Channel>, request: &Request) -> Response {
    let bytes = |text: &str| text.as_bytes().to_vec().into();
    let value_bytes = |text: &str| padded(text, params.value_padding_bytes).into();
    match request {
        Request::Put { key, value } => match with_timeout(
            params,
            kv.put(pb::PutRequest {
                key: bytes(key),
                value: value_bytes(value),
                ..Default::default()
            }),
        )
        .await
        {
            Ok(response) => Response::Written {
                revision: revision_of(&response.header),
                changed: true,
            },
            Err(error) => Response::Indeterminate(error),
        },
        Request::Delete { key } => match with_timeout(
            params,
            kv.delete_range(pb::DeleteRangeRequest {
                key: bytes(key),
                ..Default::default()
            }),
        )
        .await
        {
            Ok(response) => Response::Written {
                revision: revision_of(&response.header),
                changed: response.deleted > 0,
            },
            Err(error) => Response::Indeterminate(error),
        },
        Request::CompareAndSwap {
            key,
            expected,
            value,
        } => {
            let compare = pb::Compare {
                key: bytes(key),
                target: pb::compare::CompareTarget::Mod as i32,
                result: pb::compare::CompareResult::Equal as i32,
                target_union: Some(pb::compare::TargetUnion::ModRevision(*expected)),
                range_end: Default::default(),
            };
            let put = pb::RequestOp {
                request: Some(pb::request_op::Request::RequestPut(pb::PutRequest {
                    key: bytes(key),
                    value: value_bytes(value),
                    ..Default::default()
                })),
            };
            match with_timeout(
                params,
                kv.txn(pb::TxnRequest {
                    compare: vec![compare],
                    success: vec![put],
                    failure: Vec::new(),
                }),
            )
            .await
            {
                Ok(response) => Response::Written {
                    revision: revision_of(&response.header),
                    changed: response.succeeded,
                },
                Err(error) => Response::Indeterminate(error),
            }
        }
        Request::Get { key, linearizable } => match with_timeout(
            params,
            kv.range(pb::RangeRequest {
                key: bytes(key),
                serializable: !linearizable,
                ..Default::default()
            }),
        )
        .await
        {
            Ok(response) => Response::Read {
                revision: revision_of(&response.header),
                found: response
                    .kvs
                    .first()
                    .map(|kv| observed(kv, params.value_padding_bytes)),
            },
            Err(error) => Response::ReadFailed(error),
        },
    }
}

fn watch_event(event: &mvccpb::Event, padding_bytes: usize) -> WatchEvent {
    let kv = event.kv.clone().unwrap_or_default();
    let is_delete = event.r#type == mvccpb::event::EventType::Delete as i32;
    WatchEvent {
        key: String::from_utf8_lossy(&kv.key).into_owned(),
        revision: kv.mod_revision,
        value: (!is_delete).then(|| unpadded(&kv.value, padding_bytes)),
        prev_value: event
            .prev_kv
            .as_ref()
            .map(|prev| unpadded(&prev.value, padding_bytes)),
    }
}

/// One watcher on the key space until `stop_ms`, resuming after every break.
pub async fn run_watcher(
    watcher: usize,
    params: Params,
    recorder: SharedRecorder,
    stop_ms: Millis,
) {
    let mut random =
        SmallRng::seed_from_u64(params.seed.wrapping_mul(37).wrapping_add(watcher as u64));
    let channels = channels(&params.endpoints);
    let mut log = WatchLog {
        watcher,
        prefix: KEY_PREFIX.to_string(),
        with_prev_kv: true,
        messages: Vec::new(),
    };
    // Start from the beginning of history or from now.
    let mut next_start: i64 = if random.gen_bool(0.5) { 1 } else { 0 };
    let timeout = Duration::from_millis(params.request_timeout_ms());
    while now_ms(&recorder) < stop_ms {
        let (sender, receiver) = tokio::sync::mpsc::channel(8);
        let create = pb::WatchCreateRequest {
            key: KEY_PREFIX.as_bytes().to_vec().into(),
            range_end: KEY_PREFIX_END.as_bytes().to_vec().into(),
            start_revision: next_start,
            prev_kv: true,
            ..Default::default()
        };
        let _ = sender
            .send(pb::WatchRequest {
                request_union: Some(pb::watch_request::RequestUnion::CreateRequest(create)),
            })
            .await;
        let mut client = WatchClient::new(channels[random.gen_range(0..channels.len())].clone());
        let opened = tokio::time::timeout(
            timeout,
            client.watch(tokio_stream::wrappers::ReceiverStream::new(receiver)),
        )
        .await;
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
                let _ = sender.try_send(progress);
            }
            let message = match tokio::time::timeout(timeout, stream.message()).await {
                Ok(Ok(Some(message))) => message,
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

/// One lease client: a short-TTL lease holding one key, kept alive for a while, then
/// abandoned; the key is read throughout.
pub async fn run_lease_client(
    index: usize,
    params: Params,
    recorder: SharedRecorder,
    stop_ms: Millis,
) {
    let mut random =
        SmallRng::seed_from_u64(params.seed.wrapping_mul(41).wrapping_add(index as u64));
    let channels = channels(&params.endpoints);
    let ttl_seconds = params.lease_ttl_seconds();
    let key = format!("l/{index}");
    let mut log = LeaseLog {
        key: key.clone(),
        ttl_seconds,
        ..LeaseLog::default()
    };
    let abandon_ms = random.gen_range(0..stop_ms.max(1));
    let mut lease_id = 0;
    while now_ms(&recorder) < stop_ms {
        let channel = channels[random.gen_range(0..channels.len())].clone();
        let (mut leases, mut kv) = (LeaseClient::new(channel.clone()), KvClient::new(channel));
        let invoked = now_ms(&recorder);
        if lease_id == 0 {
            if let Ok(granted) = with_timeout(
                &params,
                leases.lease_grant(pb::LeaseGrantRequest {
                    ttl: ttl_seconds,
                    id: 0,
                }),
            )
            .await
            {
                log.renewals.push((invoked, now_ms(&recorder)));
                lease_id = granted.id;
                // Attach at once: the first keepalive may be most of a TTL away.
                continue;
            }
        } else if log.attached_ms.is_none() {
            let put = pb::PutRequest {
                key: key.as_bytes().to_vec().into(),
                value: b"held".to_vec().into(),
                lease: lease_id,
                ..Default::default()
            };
            match with_timeout(&params, kv.put(put)).await {
                Ok(_) => log.attached_ms = Some(now_ms(&recorder)),
                // Expired before the key could be attached (the put took too long): start over.
                Err(error) if error.contains("lease not found") => lease_id = 0,
                Err(_) => {}
            }
        } else if invoked < abandon_ms && params.keepalives_dropped_recorded_as_acknowledged {
            log.renewals.push((invoked, now_ms(&recorder)));
        } else if invoked < abandon_ms {
            let (sender, receiver) = tokio::sync::mpsc::channel(1);
            let _ = sender
                .send(pb::LeaseKeepAliveRequest { id: lease_id })
                .await;
            let renewed = async {
                let mut stream = leases
                    .lease_keep_alive(tokio_stream::wrappers::ReceiverStream::new(receiver))
                    .await?
                    .into_inner();
                stream.message().await
            };
            if let Ok(Ok(Some(response))) =
                tokio::time::timeout(Duration::from_millis(params.request_timeout_ms()), renewed)
                    .await
            {
                if response.ttl > 0 {
                    log.renewals.push((invoked, now_ms(&recorder)));
                }
            }
        } else if log.abandoned_ms.is_none() {
            log.abandoned_ms = Some(invoked);
        }
        if log.attached_ms.is_some() {
            let read_invoked = now_ms(&recorder);
            if let Ok(response) = with_timeout(
                &params,
                kv.range(pb::RangeRequest {
                    key: key.as_bytes().to_vec().into(),
                    ..Default::default()
                }),
            )
            .await
            {
                log.reads
                    .push((read_invoked, now_ms(&recorder), !response.kvs.is_empty()));
            }
        }
        let pause_ms = ttl_seconds as u64 * 10 * params.lease_renewal_percent;
        tokio::time::sleep(Duration::from_millis(pause_ms)).await;
    }
    if log.abandoned_ms.is_none() {
        log.abandoned_ms = Some(now_ms(&recorder));
    }
    let mut recorder = recorder.lock().unwrap();
    recorder.note(format!("lease {log:?}"));
    recorder.history.leases.push(log);
}

/// Compacts to a little behind the current revision now and then.
pub async fn run_compactor(params: Params, recorder: SharedRecorder, stop_ms: Millis) {
    let mut random = SmallRng::seed_from_u64(params.seed.wrapping_mul(43));
    let channels = channels(&params.endpoints);
    while now_ms(&recorder) < stop_ms {
        tokio::time::sleep(Duration::from_millis(random.gen_range(1000..4000))).await;
        let mut kv = KvClient::new(channels[random.gen_range(0..channels.len())].clone());
        let Ok(current) = with_timeout(
            &params,
            kv.range(pb::RangeRequest {
                key: b"k/".to_vec().into(),
                count_only: true,
                ..Default::default()
            }),
        )
        .await
        else {
            continue;
        };
        let target = revision_of(&current.header) - random.gen_range(5..50);
        if target > 1 {
            let outcome = with_timeout(
                &params,
                kv.compact(pb::CompactionRequest {
                    revision: target,
                    physical: false,
                }),
            )
            .await;
            recorder
                .lock()
                .unwrap()
                .note(format!("compact {target}: {:?}", outcome.map(|_| ())));
        }
    }
}
