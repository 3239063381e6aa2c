//! One member's metrics: counters, gauges and histograms recorded where each event happens
//! (raft, the WAL, apply, the services), read by the `/metrics` page in Prometheus's text
//! format with etcd's names (`api::metrics`). Plain atomics: recording never blocks and
//! never changes what the member does, so simulation stays deterministic.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;

/// Label sets one labeled family keeps at most; later new sets are dropped (and counted in
/// `dropped`), so a stream of distinct labels cannot grow memory. Methods times codes and
/// peers are far below it.
pub const LABEL_SETS_MAX: usize = 4096;

#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn inc(&self) {
        self.add(1);
    }

    pub fn add(&self, amount: u64) {
        self.0.fetch_add(amount, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

#[derive(Debug, Default)]
pub struct Gauge(AtomicI64);

impl Gauge {
    pub fn set(&self, value: i64) {
        self.0.store(value, Ordering::Relaxed);
    }

    pub fn add(&self, amount: i64) {
        self.0.fetch_add(amount, Ordering::Relaxed);
    }

    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Raises a gauge now and lowers it when dropped: in-flight proposals, open streams.
pub struct GaugeGuard<'a>(&'a Gauge);

impl<'a> GaugeGuard<'a> {
    pub fn new(gauge: &'a Gauge) -> Self {
        gauge.add(1);
        GaugeGuard(gauge)
    }
}

impl Drop for GaugeGuard<'_> {
    fn drop(&mut self) {
        self.0.add(-1);
    }
}

/// A Prometheus histogram: cumulative buckets by upper bound, a sum and a count.
#[derive(Debug)]
pub struct Histogram {
    bounds: Vec<f64>,
    /// Observations at most each bound (not yet cumulative); the last one is `+Inf`.
    buckets: Vec<AtomicU64>,
    sum_bits: AtomicU64,
    count: AtomicU64,
}

/// What a histogram holds at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramSnapshot {
    /// (upper bound, observations at most it), cumulative, without `+Inf` (that is `count`).
    pub buckets: Vec<(f64, u64)>,
    pub sum: f64,
    pub count: u64,
}

impl Histogram {
    /// `count` buckets from `start`, each `factor` times the previous (Prometheus's
    /// `ExponentialBuckets`, as etcd declares its histograms).
    pub fn exponential(start: f64, factor: f64, count: usize) -> Self {
        let bounds: Vec<f64> = (0..count)
            .map(|step| start * factor.powi(step as i32))
            .collect();
        Histogram::from_bounds(&bounds)
    }

    pub fn from_bounds(bounds: &[f64]) -> Self {
        Histogram {
            buckets: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            bounds: bounds.to_vec(),
            sum_bits: AtomicU64::new(0f64.to_bits()),
            count: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, value: f64) {
        let bucket = self
            .bounds
            .iter()
            .position(|bound| value <= *bound)
            .unwrap_or(self.bounds.len());
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        let _ = self
            .sum_bits
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                Some((f64::from_bits(bits) + value).to_bits())
            });
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> HistogramSnapshot {
        let mut cumulative = 0;
        let buckets = self
            .bounds
            .iter()
            .zip(&self.buckets)
            .map(|(bound, bucket)| {
                cumulative += bucket.load(Ordering::Relaxed);
                (*bound, cumulative)
            })
            .collect();
        // Read after the buckets: a concurrent observation shows in count rather than making
        // count smaller than the last bucket.
        let count = self.count.load(Ordering::Relaxed).max(cumulative);
        HistogramSnapshot {
            buckets,
            sum: f64::from_bits(self.sum_bits.load(Ordering::Relaxed)),
            count,
        }
    }
}

/// A family of values by label values (the label names belong to the page that shows it).
/// Kept sorted by label values: found by binary search without building a key, since every
/// gRPC call and peer message records into one.
#[derive(Debug)]
pub struct Labeled<T> {
    sets: Mutex<Vec<(Vec<String>, T)>>,
    make: fn() -> T,
    pub dropped: Counter,
}

impl<T> Labeled<T> {
    pub fn new(make: fn() -> T) -> Self {
        Labeled {
            sets: Mutex::default(),
            make,
            dropped: Counter::default(),
        }
    }

    /// Runs `record` on the value for `labels`, made on first use.
    pub fn with(&self, labels: &[&str], record: impl FnOnce(&T)) {
        let mut sets = self.sets.lock().unwrap();
        let found = sets.binary_search_by(|(key, _)| {
            key.iter().map(String::as_str).cmp(labels.iter().copied())
        });
        let position = match found {
            Ok(position) => position,
            Err(_) if sets.len() >= LABEL_SETS_MAX => {
                self.dropped.inc();
                return;
            }
            Err(position) => {
                let key = labels.iter().map(|label| label.to_string()).collect();
                sets.insert(position, (key, (self.make)()));
                position
            }
        };
        record(&sets[position].1);
    }

    /// Every label set with what `read` takes from its value, in label order.
    pub fn read<R>(&self, read: impl Fn(&T) -> R) -> Vec<(Vec<String>, R)> {
        let sets = self.sets.lock().unwrap();
        sets.iter()
            .map(|(labels, value)| (labels.clone(), read(value)))
            .collect()
    }
}

/// Puts, deletes, ranges and txns seen by this member, counted as etcd's mvcc counts them:
/// every operation applied or read, and a txn only when it holds more than one.
#[derive(Debug, Default)]
pub struct MvccCounters {
    pub range: Counter,
    pub put: Counter,
    pub delete: Counter,
    pub txn: Counter,
}

/// Operations one request performed on the store.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Operations {
    pub ranges: u64,
    pub puts: u64,
    pub deletes: u64,
}

impl MvccCounters {
    pub fn record(&self, operations: Operations) {
        self.range.add(operations.ranges);
        self.put.add(operations.puts);
        self.delete.add(operations.deletes);
        if operations.ranges + operations.puts + operations.deletes > 1 {
            self.txn.inc();
        }
    }
}

#[derive(Debug)]
pub struct GrpcMetrics {
    /// By type, service, method.
    pub started: Labeled<Counter>,
    /// By type, service, method, code.
    pub handled: Labeled<Counter>,
    /// By type, service, method; recorded only with `--metrics extensive`, as etcd.
    pub handling_seconds: Labeled<Histogram>,
}

impl Default for GrpcMetrics {
    fn default() -> Self {
        GrpcMetrics {
            started: Labeled::new(Counter::default),
            handled: Labeled::new(Counter::default),
            // go-grpc-prometheus's default buckets.
            handling_seconds: Labeled::new(|| Histogram::from_bounds(&GRPC_HANDLING_BOUNDS)),
        }
    }
}

const GRPC_HANDLING_BOUNDS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Traffic to and from each peer, by the peer's ID in hex (etcd's `To` and `From`).
#[derive(Debug)]
pub struct PeerMetrics {
    pub sent_bytes: Labeled<Counter>,
    pub received_bytes: Labeled<Counter>,
    pub sent_failures: Labeled<Counter>,
    pub round_trip_seconds: Labeled<Histogram>,
}

impl Default for PeerMetrics {
    fn default() -> Self {
        PeerMetrics {
            sent_bytes: Labeled::new(Counter::default),
            received_bytes: Labeled::new(Counter::default),
            sent_failures: Labeled::new(Counter::default),
            // etcd: ExponentialBuckets(0.0001, 2, 16).
            round_trip_seconds: Labeled::new(|| Histogram::exponential(0.0001, 2.0, 16)),
        }
    }
}

/// Everything one member records.
#[derive(Debug)]
pub struct Metrics {
    pub leader_changes_seen: Counter,
    /// The raft log's committed index, as raft reports it.
    pub proposals_committed: Gauge,
    /// Proposals made on this member not yet answered.
    pub proposals_pending: Gauge,
    pub proposals_failed: Counter,
    /// Applies of one entry that took longer than 100 ms (etcd's `warnApplyDuration`).
    pub slow_apply: Counter,
    pub lease_expired: Counter,
    pub mvcc: MvccCounters,
    pub watch_streams: Gauge,
    pub watchers: Gauge,
    pub wal_fsync_seconds: Histogram,
    /// Each apply of committed entries into the store, which is where etcd commits bbolt.
    pub backend_commit_seconds: Histogram,
    pub health_checks_succeeded: Counter,
    pub health_checks_failed: Counter,
    pub peers: PeerMetrics,
    pub grpc: GrpcMetrics,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            leader_changes_seen: Counter::default(),
            proposals_committed: Gauge::default(),
            proposals_pending: Gauge::default(),
            proposals_failed: Counter::default(),
            slow_apply: Counter::default(),
            lease_expired: Counter::default(),
            mvcc: MvccCounters::default(),
            watch_streams: Gauge::default(),
            watchers: Gauge::default(),
            // etcd: ExponentialBuckets(0.001, 2, 14) for both.
            wal_fsync_seconds: Histogram::exponential(0.001, 2.0, 14),
            backend_commit_seconds: Histogram::exponential(0.001, 2.0, 14),
            health_checks_succeeded: Counter::default(),
            health_checks_failed: Counter::default(),
            peers: PeerMetrics::default(),
            grpc: GrpcMetrics::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative_and_count_everything() {
        let histogram = Histogram::exponential(0.001, 2.0, 3);
        for value in [0.0005, 0.001, 0.003, 0.5] {
            histogram.observe(value);
        }
        let snapshot = histogram.snapshot();
        assert_eq!(snapshot.buckets, vec![(0.001, 2), (0.002, 2), (0.004, 3)]);
        assert_eq!(snapshot.count, 4);
        assert!((snapshot.sum - 0.5045).abs() < 1e-12);
    }

    #[test]
    fn labeled_families_stop_growing_at_the_bound() {
        let family: Labeled<Counter> = Labeled::new(Counter::default);
        for set in 0..LABEL_SETS_MAX + 10 {
            family.with(&[&set.to_string()], Counter::inc);
        }
        family.with(&["0"], Counter::inc);
        assert_eq!(family.read(|counter| counter.get()).len(), LABEL_SETS_MAX);
        assert_eq!(family.dropped.get(), 10);
        let first = family.read(|counter| counter.get());
        assert_eq!(first[0], (vec!["0".to_string()], 2));
    }

    #[test]
    fn a_txn_counts_only_with_more_than_one_operation() {
        let counters = MvccCounters::default();
        counters.record(Operations {
            puts: 1,
            ..Operations::default()
        });
        counters.record(Operations {
            ranges: 1,
            puts: 2,
            deletes: 0,
        });
        assert_eq!(
            (counters.put.get(), counters.range.get(), counters.txn.get()),
            (3, 1, 1)
        );
    }
}
