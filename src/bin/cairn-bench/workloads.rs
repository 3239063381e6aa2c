//! The workloads. Each client task runs requests back to back over one of `connections`
//! gRPC channels and records every latency; errors are counted, never retried.

use crate::histogram::Histogram;
use cairn::api::pb::etcdserverpb::{
    self as pb, kv_client::KvClient, lease_client::LeaseClient, watch_client::WatchClient,
};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tonic::transport::{Channel, Endpoint};

/// A response that takes longer than this counts as an error (a benchmark never hangs).
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Workload {
    Put,
    Range,
    RangeSerializable,
    TxnPut,
    Mixed,
    WatchLatency,
    LeaseKeepalive,
}

#[derive(Debug, Clone)]
pub struct Options {
    pub endpoints: Vec<String>,
    pub connections: usize,
    pub clients: usize,
    /// Stop after this many requests in all (or after `duration`, whichever comes first).
    pub total: Option<u64>,
    pub duration: Option<Duration>,
    pub key_size: usize,
    pub value_size: usize,
    pub key_space: u64,
    pub seed: u64,
    pub workload: Workload,
    /// Share of reads in the mixed workload.
    pub read_percent: u32,
    /// Watch streams in the watch-latency workload.
    pub watchers: usize,
}

#[derive(Debug, Clone)]
pub struct Report {
    pub operations: u64,
    pub errors: u64,
    pub seconds: f64,
    pub latency: Histogram,
}

impl Report {
    pub fn throughput(&self) -> f64 {
        self.operations as f64 / self.seconds.max(1e-9)
    }
}

/// Shared stop condition: a budget of requests and a deadline.
struct Budget {
    remaining: AtomicI64,
    deadline: Option<Instant>,
}

impl Budget {
    fn take(&self) -> bool {
        if self
            .deadline
            .is_some_and(|deadline| Instant::now() >= deadline)
        {
            return false;
        }
        self.remaining.fetch_sub(1, Ordering::Relaxed) > 0
    }
}

async fn connect(options: &Options) -> anyhow::Result<Vec<Channel>> {
    let mut channels = Vec::new();
    for index in 0..options.connections.max(1) {
        let endpoint = &options.endpoints[index % options.endpoints.len()];
        let url = if endpoint.starts_with("http") {
            endpoint.clone()
        } else {
            format!("http://{endpoint}")
        };
        channels.push(
            Endpoint::from_shared(url)?
                .tcp_nodelay(true)
                .connect()
                .await?,
        );
    }
    Ok(channels)
}

fn key(options: &Options, index: u64) -> Vec<u8> {
    let mut key = format!("bench/{index:016}").into_bytes();
    key.resize(options.key_size.max(key.len()), b'k');
    key
}

/// Runs the workload and returns the merged report.
pub async fn run(options: &Options) -> anyhow::Result<Report> {
    let channels = connect(options).await?;
    if matches!(
        options.workload,
        Workload::Range | Workload::RangeSerializable | Workload::Mixed
    ) {
        populate(options, &channels).await?;
    }
    if options.workload == Workload::WatchLatency {
        return watch_latency(options, &channels).await;
    }
    let budget = Arc::new(Budget {
        remaining: AtomicI64::new(options.total.map_or(i64::MAX, |total| total as i64)),
        deadline: options.duration.map(|duration| Instant::now() + duration),
    });
    let errors = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for client in 0..options.clients {
        let channel = channels[client % channels.len()].clone();
        let (options, budget, errors) = (options.clone(), budget.clone(), errors.clone());
        tasks.push(tokio::spawn(async move {
            run_client(client, options, channel, budget, errors).await
        }));
    }
    let mut latency = Histogram::default();
    for task in tasks {
        latency.merge(&task.await?);
    }
    let seconds = started.elapsed().as_secs_f64();
    Ok(Report {
        operations: latency.count(),
        errors: errors.load(Ordering::Relaxed),
        seconds,
        latency,
    })
}

async fn run_client(
    client: usize,
    options: Options,
    channel: Channel,
    budget: Arc<Budget>,
    errors: Arc<AtomicU64>,
) -> Histogram {
    let mut random = SmallRng::seed_from_u64(
        options
            .seed
            .wrapping_mul(1_000_003)
            .wrapping_add(client as u64),
    );
    let mut kv = KvClient::new(channel.clone());
    let mut histogram = Histogram::default();
    let value = vec![b'v'; options.value_size];
    if options.workload == Workload::LeaseKeepalive {
        return keepalive_client(channel, budget, errors).await;
    }
    while budget.take() {
        let key = key(&options, random.gen_range(0..options.key_space.max(1)));
        let read = match options.workload {
            Workload::Range | Workload::RangeSerializable => true,
            Workload::Mixed => random.gen_range(0..100) < options.read_percent,
            _ => false,
        };
        let started = Instant::now();
        let outcome = if read {
            let serializable = options.workload == Workload::RangeSerializable;
            kv.range(pb::RangeRequest {
                key: key.into(),
                serializable,
                ..Default::default()
            })
            .await
            .map(|_| ())
        } else if options.workload == Workload::TxnPut {
            let compare = pb::Compare {
                key: key.clone().into(),
                target: pb::compare::CompareTarget::Version as i32,
                result: pb::compare::CompareResult::Greater as i32,
                target_union: Some(pb::compare::TargetUnion::Version(-1)),
                range_end: Default::default(),
            };
            let put = pb::RequestOp {
                request: Some(pb::request_op::Request::RequestPut(pb::PutRequest {
                    key: key.into(),
                    value: value.clone().into(),
                    ..Default::default()
                })),
            };
            kv.txn(pb::TxnRequest {
                compare: vec![compare],
                success: vec![put],
                failure: Vec::new(),
            })
            .await
            .map(|_| ())
        } else {
            kv.put(pb::PutRequest {
                key: key.into(),
                value: value.clone().into(),
                ..Default::default()
            })
            .await
            .map(|_| ())
        };
        match outcome {
            Ok(()) => histogram.record(started.elapsed().as_micros() as u64),
            Err(_) => {
                errors.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    histogram
}

async fn keepalive_client(
    channel: Channel,
    budget: Arc<Budget>,
    errors: Arc<AtomicU64>,
) -> Histogram {
    let mut histogram = Histogram::default();
    let mut leases = LeaseClient::new(channel);
    let Ok(granted) = leases
        .lease_grant(pb::LeaseGrantRequest { ttl: 60, id: 0 })
        .await
    else {
        errors.fetch_add(1, Ordering::Relaxed);
        return histogram;
    };
    let id = granted.into_inner().id;
    let (sender, receiver) = tokio::sync::mpsc::channel(1);
    // The first request goes out before the stream is opened: grpc-go servers (etcd) send
    // response headers only with their first response, so waiting for headers first would
    // wait forever.
    let mut started = Instant::now();
    let _ = sender.send(pb::LeaseKeepAliveRequest { id }).await;
    let opened = tokio::time::timeout(
        RESPONSE_TIMEOUT,
        leases.lease_keep_alive(tokio_stream::wrappers::ReceiverStream::new(receiver)),
    )
    .await;
    let Ok(Ok(stream)) = opened else {
        errors.fetch_add(1, Ordering::Relaxed);
        return histogram;
    };
    let mut stream = stream.into_inner();
    loop {
        match tokio::time::timeout(RESPONSE_TIMEOUT, stream.message()).await {
            Ok(Ok(Some(_))) => histogram.record(started.elapsed().as_micros() as u64),
            _ => {
                errors.fetch_add(1, Ordering::Relaxed);
                break;
            }
        }
        if !budget.take() {
            break;
        }
        started = Instant::now();
        if sender.send(pb::LeaseKeepAliveRequest { id }).await.is_err() {
            break;
        }
    }
    let _ = leases.lease_revoke(pb::LeaseRevokeRequest { id }).await;
    histogram
}

/// Writes every key of the (capped) key space once, so reads find data.
async fn populate(options: &Options, channels: &[Channel]) -> anyhow::Result<()> {
    const POPULATE_KEYS_MAX: u64 = 100_000;
    let keys = options.key_space.min(POPULATE_KEYS_MAX);
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for client in 0..options.clients.clamp(1, 64) {
        let mut kv = KvClient::new(channels[client % channels.len()].clone());
        let (next, options) = (next.clone(), options.clone());
        tasks.push(tokio::spawn(async move {
            let value = vec![b'v'; options.value_size];
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                if index >= keys {
                    return Ok::<(), tonic::Status>(());
                }
                kv.put(pb::PutRequest {
                    key: key(&options, index).into(),
                    value: value.clone().into(),
                    ..Default::default()
                })
                .await?;
            }
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok(())
}

/// Put-to-event latency: writers put values carrying their send time; every watcher records
/// how long each event took to reach it.
async fn watch_latency(options: &Options, channels: &[Channel]) -> anyhow::Result<Report> {
    let epoch = Instant::now();
    let latency = Arc::new(Mutex::new(Histogram::default()));
    let mut watchers = Vec::new();
    let prefix = b"bench/".to_vec();
    for index in 0..options.watchers.max(1) {
        let mut client = WatchClient::new(channels[index % channels.len()].clone());
        let (sender, receiver) = tokio::sync::mpsc::channel(1);
        let create = pb::WatchCreateRequest {
            key: prefix.clone().into(),
            range_end: cairn::base::prefix_end(&prefix).into(),
            ..Default::default()
        };
        sender
            .send(pb::WatchRequest {
                request_union: Some(pb::watch_request::RequestUnion::CreateRequest(create)),
            })
            .await?;
        let mut stream = client
            .watch(tokio_stream::wrappers::ReceiverStream::new(receiver))
            .await?
            .into_inner();
        stream.message().await?;
        let latency = latency.clone();
        watchers.push(tokio::spawn(async move {
            let _keep_open = sender;
            let mut local = Histogram::default();
            while let Ok(Some(response)) = stream.message().await {
                let now = epoch.elapsed().as_micros() as u64;
                for event in response.events {
                    let sent = event
                        .kv
                        .as_ref()
                        .and_then(|kv| kv.value.get(..8))
                        .map_or(now, |bytes| u64::from_le_bytes(bytes.try_into().unwrap()));
                    local.record(now.saturating_sub(sent));
                }
                if local.count() >= 1024 {
                    latency.lock().unwrap().merge(&local);
                    local = Histogram::default();
                }
            }
            latency.lock().unwrap().merge(&local);
        }));
    }
    let budget = Budget {
        remaining: AtomicI64::new(options.total.map_or(i64::MAX, |total| total as i64)),
        deadline: options.duration.map(|duration| Instant::now() + duration),
    };
    let budget = Arc::new(budget);
    let started = Instant::now();
    let mut writers = Vec::new();
    for client in 0..options.clients.max(1) {
        let mut kv = KvClient::new(channels[client % channels.len()].clone());
        let (budget, options) = (budget.clone(), options.clone());
        writers.push(tokio::spawn(async move {
            let mut random = SmallRng::seed_from_u64(options.seed.wrapping_add(client as u64));
            while budget.take() {
                let mut value = (epoch.elapsed().as_micros() as u64).to_le_bytes().to_vec();
                value.resize(options.value_size.max(8), b'v');
                let key = key(&options, random.gen_range(0..options.key_space.max(1)));
                let _ = kv
                    .put(pb::PutRequest {
                        key: key.into(),
                        value: value.into(),
                        ..Default::default()
                    })
                    .await;
            }
        }));
    }
    for writer in writers {
        writer.await?;
    }
    let seconds = started.elapsed().as_secs_f64();
    // Let the watchers drain what is in flight, then stop them.
    tokio::time::sleep(Duration::from_secs(2)).await;
    for watcher in watchers {
        watcher.abort();
    }
    let latency = latency.lock().unwrap().clone();
    Ok(Report {
        operations: latency.count(),
        errors: 0,
        seconds,
        latency,
    })
}
