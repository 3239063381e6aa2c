//! etcdserverpb.Watch: one task per client stream drives a `watch::WatchStream`, waking on
//! every applied revision. Responses go out through a bounded queue: a slow client makes its
//! own task wait (its watchers simply fall behind in history), never grows memory, never
//! loses or repeats an event.

use super::authorize::Credentials;
use super::pb::etcdserverpb::{self as pb, watch_server::Watch};
use super::pb::mvccpb;
use super::{convert, next_message, status, Context, Inbound};
use crate::base::metrics::{Gauge, GaugeGuard};
use crate::base::{EtcdError, KeyRange};
use crate::io::clock;
use crate::watch::{WatchOutput, WatchSpec, WatchStream, PROGRESS_WATCH_ID};
use prost::Message;
use std::pin::Pin;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::Stream;
use tonic::{Request, Response, Status, Streaming};

pub struct WatchService {
    context: Context,
}

impl WatchService {
    pub fn new(context: Context) -> Self {
        WatchService { context }
    }
}

pub type ResponseStream =
    Pin<Box<dyn Stream<Item = Result<pb::WatchResponse, Status>> + Send + 'static>>;
type Sender = mpsc::Sender<Result<pb::WatchResponse, Status>>;

#[tonic::async_trait]
impl Watch for WatchService {
    type WatchStream = ResponseStream;

    async fn watch(
        &self,
        request: Request<Streaming<pb::WatchRequest>>,
    ) -> Result<Response<ResponseStream>, Status> {
        self.context.admit(&request, false)?;
        let requires_leader = Context::requires_leader(&request);
        let credentials = super::authorize::Credentials::of(&request);
        Ok(Response::new(self.open(
            Box::pin(request.into_inner()),
            requires_leader,
            credentials,
        )))
    }
}

impl WatchService {
    /// Serves one watch stream (from gRPC or the JSON gateway) on a task of its own.
    pub fn open(
        &self,
        inbound: Inbound<pb::WatchRequest>,
        requires_leader: bool,
        credentials: Credentials,
    ) -> ResponseStream {
        let (sender, receiver) = mpsc::channel(self.context.watch.responses_queued_max);
        let context = self.context.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = serve_stream(context.clone(), inbound, sender.clone(), credentials) => {}
                () = context.until_leader_lost(requires_leader) => {
                    let _ = sender.send(Err(status(EtcdError::NoLeader))).await;
                }
            }
        });
        Box::pin(ReceiverStream::new(receiver))
    }
}

/// The client went away; the stream's task ends.
struct Closed;

async fn serve_stream(
    context: Context,
    mut inbound: Inbound<pb::WatchRequest>,
    sender: Sender,
    credentials: Credentials,
) {
    let mut watchers = WatchStream::new(context.watch.watchers_per_stream_max);
    let metrics = context.node.metrics().clone();
    let _stream_open = GaugeGuard::new(&metrics.watch_streams);
    let mut watcher_count = WatcherCount::new(&metrics.watchers);
    let mut revisions = context.node.subscribe_revision();
    let mut progress_requested = false;
    let mut requests_open = true;
    let mut progress_timer = clock::interval(context.watch.progress_notify_interval);
    progress_timer.tick().await;
    loop {
        // Creates, cancels and compaction all change the count; each pass sees them.
        watcher_count.update(watchers.len());
        let view = context.node.view();
        let store = view.machine.store();
        let outputs = watchers.poll(store, context.watch.events_per_response_max);
        let delivered = !outputs.is_empty();
        for output in outputs {
            if send_output(&context, &watchers, &sender, output)
                .await
                .is_err()
            {
                return;
            }
        }
        if delivered {
            // Drain everything owed before waiting, so a progress report is never early.
            continue;
        }
        if progress_requested && watchers.is_synced(store.current_revision()) {
            progress_requested = false;
            let progress = pb::WatchResponse {
                header: context.header(store.current_revision()),
                watch_id: PROGRESS_WATCH_ID,
                ..Default::default()
            };
            if sender.send(Ok(progress)).await.is_err() {
                return;
            }
        }
        tokio::select! {
            message = next_message(&mut inbound), if requests_open => {
                let request = match message {
                    Ok(Some(request)) => request,
                    // The client closed its sending side (grpcurl, scripts that send one
                    // create): its watchers keep delivering, as etcd's do, until it goes.
                    Ok(None) => {
                        requests_open = false;
                        continue;
                    }
                    // Bytes that are not a WatchRequest: the stream ends with the decoder's
                    // error, never with OK (a broken connection ends here too).
                    Err(status) => {
                        let _ = sender.send(Err(status)).await;
                        return;
                    }
                };
                match handle_request(&context, &mut watchers, &sender, request, &credentials).await {
                    Ok(progress) => progress_requested |= progress,
                    Err(Closed) => return,
                }
            }
            // With the request side closed, only this notices the client going away.
            _ = sender.closed(), if !requests_open => return,
            changed = revisions.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            _ = progress_timer.tick() => {
                let current = context.current_revision();
                for output in watchers.progress_notifications(current) {
                    if send_output(&context, &watchers, &sender, output).await.is_err() {
                        return;
                    }
                }
            }
        }
    }
}

/// One stream's share of `etcd_mvcc_watcher_total`, given back when the stream ends.
struct WatcherCount<'a> {
    gauge: &'a Gauge,
    counted: usize,
}

impl<'a> WatcherCount<'a> {
    fn new(gauge: &'a Gauge) -> Self {
        WatcherCount { gauge, counted: 0 }
    }

    fn update(&mut self, watchers: usize) {
        self.gauge.add(watchers as i64 - self.counted as i64);
        self.counted = watchers;
    }
}

impl Drop for WatcherCount<'_> {
    fn drop(&mut self) {
        self.update(0);
    }
}

/// Handles one client request; returns whether it asked for a progress report.
async fn handle_request(
    context: &Context,
    watchers: &mut WatchStream,
    sender: &Sender,
    request: pb::WatchRequest,
    credentials: &Credentials,
) -> Result<bool, Closed> {
    use pb::watch_request::RequestUnion;
    let current = context.current_revision();
    let response = match request.request_union {
        Some(RequestUnion::CreateRequest(create)) => {
            let requested_id = create.watch_id;
            let range = KeyRange::new(create.key.clone(), create.range_end.clone());
            if !watch_permitted(context, credentials, &range) {
                let denied = status(EtcdError::PermissionDenied);
                // etcd's reason is the gRPC error's text, code included.
                let reason = format!(
                    "rpc error: code = PermissionDenied desc = {}",
                    denied.message()
                );
                sender
                    .send(Ok(canceled_on_create(context, current, reason)))
                    .await
                    .map_err(|_| Closed)?;
                return Ok(false);
            }
            match watch_spec(create) {
                Err(error) => canceled_on_create(context, current, error.to_string()),
                Ok(spec) => match watchers.create(spec, requested_id, current) {
                    Ok(watch_id) => pb::WatchResponse {
                        header: context.header(current),
                        watch_id,
                        created: true,
                        ..Default::default()
                    },
                    Err(error) => canceled_on_create(context, current, error.to_string()),
                },
            }
        }
        Some(RequestUnion::CancelRequest(cancel)) => {
            if !watchers.cancel(cancel.watch_id) {
                return Ok(false);
            }
            pb::WatchResponse {
                header: context.header(current),
                watch_id: cancel.watch_id,
                canceled: true,
                ..Default::default()
            }
        }
        Some(RequestUnion::ProgressRequest(_)) => return Ok(true),
        None => return Ok(false),
    };
    sender.send(Ok(response)).await.map_err(|_| Closed)?;
    Ok(false)
}

/// etcd's `isWatchPermitted`: with auth on, the stream's credentials (as they are now) must
/// speak for a user who may read the whole range.
fn watch_permitted(context: &Context, credentials: &Credentials, range: &KeyRange) -> bool {
    let Ok(caller) = context.caller_of(credentials) else {
        return false;
    };
    let view = context.node.view();
    context
        .authorize_range(&caller, &view.machine, range)
        .is_ok()
}

/// The watch ID etcd answers a refused create with (clientv3's `InvalidWatchID`): never
/// the ID of a live watcher.
const INVALID_WATCH_ID: i64 = -1;

fn canceled_on_create(context: &Context, current: i64, reason: String) -> pb::WatchResponse {
    pb::WatchResponse {
        header: context.header(current),
        watch_id: INVALID_WATCH_ID,
        created: true,
        canceled: true,
        cancel_reason: reason,
        ..Default::default()
    }
}

pub fn watch_spec(create: pb::WatchCreateRequest) -> Result<WatchSpec, EtcdError> {
    use pb::watch_create_request::FilterType;
    let range = KeyRange::new(create.key, create.range_end);
    if range.is_empty() {
        return Err(EtcdError::InvalidWatchRange);
    }
    let filters: Vec<Option<FilterType>> = create
        .filters
        .iter()
        .map(|filter| FilterType::try_from(*filter).ok())
        .collect();
    Ok(WatchSpec {
        range,
        start_revision: create.start_revision,
        prev_kv: create.prev_kv,
        filter_put: filters.contains(&Some(FilterType::Noput)),
        filter_delete: filters.contains(&Some(FilterType::Nodelete)),
        progress_notify: create.progress_notify,
        fragment: create.fragment,
    })
}

async fn send_output(
    context: &Context,
    watchers: &WatchStream,
    sender: &Sender,
    output: WatchOutput,
) -> Result<(), Closed> {
    match output {
        WatchOutput::Compacted {
            watch_id,
            compact_revision,
        } => {
            // As etcd's: the compacted answer carries no revision and no cancel reason
            // (clients read `compact_revision`), and is marked canceled only for a compact
            // revision above 0 (`canceled := wresp.CompactRevision != 0`): a watcher from a
            // negative revision after a compaction to 0 ends with an empty answer there.
            let response = pb::WatchResponse {
                header: context.header(0),
                watch_id,
                canceled: compact_revision != 0,
                compact_revision,
                ..Default::default()
            };
            sender.send(Ok(response)).await.map_err(|_| Closed)
        }
        WatchOutput::Events {
            watch_id,
            revision,
            events,
        } => {
            let events: Vec<mvccpb::Event> = events.into_iter().map(convert::event).collect();
            let header = context.header(revision);
            let whole = pb::WatchResponse {
                header,
                watch_id,
                events,
                ..Default::default()
            };
            if !watchers.wants_fragments(watch_id)
                || whole.encoded_len() <= context.limits.request_bytes_max
            {
                return sender.send(Ok(whole)).await.map_err(|_| Closed);
            }
            for fragment in fragments(
                whole.events,
                context.limits.request_bytes_max,
                header,
                watch_id,
            ) {
                sender.send(Ok(fragment)).await.map_err(|_| Closed)?;
            }
            Ok(())
        }
    }
}

/// Splits one revision's large response into pieces under `bytes_max`; every piece but the
/// last has `fragment` set, as etcd's clients reassemble them.
fn fragments(
    events: Vec<mvccpb::Event>,
    bytes_max: usize,
    header: Option<pb::ResponseHeader>,
    watch_id: i64,
) -> Vec<pb::WatchResponse> {
    let mut pieces: Vec<Vec<mvccpb::Event>> = vec![Vec::new()];
    let mut piece_bytes = 0;
    for event in events {
        let event_bytes = event.encoded_len();
        let current = pieces.last_mut().expect("never empty");
        if !current.is_empty() && piece_bytes + event_bytes > bytes_max {
            pieces.push(Vec::new());
            piece_bytes = 0;
        }
        piece_bytes += event_bytes;
        pieces.last_mut().expect("never empty").push(event);
    }
    let count = pieces.len();
    pieces
        .into_iter()
        .enumerate()
        .map(|(position, events)| pb::WatchResponse {
            header,
            watch_id,
            events,
            fragment: position + 1 < count,
            ..Default::default()
        })
        .collect()
}
