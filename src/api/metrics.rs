//! The `/metrics` page: Prometheus's text format (version 0.0.4) with etcd's metric names,
//! help texts and labels, from what the member recorded (`base::metrics`) and its state now.

use super::{Context, CLUSTER_VERSION, SERVER_VERSION};
use crate::base::metrics::{Counter, Histogram, HistogramSnapshot, Labeled};
use crate::io::process;
use std::fmt::Write;

/// The content type of the page.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// How much the page shows (`--metrics`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detail {
    Basic,
    Extensive,
}

/// The page's text.
pub fn render(context: &Context, detail: Detail) -> String {
    let mut page = Page::default();
    server(&mut page, context);
    storage(&mut page, context);
    network(&mut page, context);
    grpc(&mut page, context, detail);
    process_metrics(&mut page);
    page.text
}

fn server(page: &mut Page, context: &Context) {
    let node_status = context.node.status();
    let metrics = context.node.metrics();
    let as_number = |flag: bool| if flag { 1.0 } else { 0.0 };
    page.gauge(
        "etcd_server_has_leader",
        "Whether or not a leader exists. 1 is existence, 0 is not.",
        as_number(node_status.leader.is_some()),
    );
    page.gauge(
        "etcd_server_is_leader",
        "Whether or not this member is a leader. 1 if is, 0 otherwise.",
        as_number(node_status.is_leader),
    );
    page.gauge(
        "etcd_server_is_learner",
        "Whether or not this member is a learner. 1 if is, 0 otherwise.",
        as_number(node_status.is_learner),
    );
    page.counter(
        "etcd_server_leader_changes_seen_total",
        "The number of leader changes seen.",
        metrics.leader_changes_seen.get(),
    );
    page.gauge(
        "etcd_server_proposals_committed_total",
        "The total number of consensus proposals committed.",
        metrics.proposals_committed.get() as f64,
    );
    page.gauge(
        "etcd_server_proposals_applied_total",
        "The total number of consensus proposals applied.",
        node_status.applied_index as f64,
    );
    page.gauge(
        "etcd_server_proposals_pending",
        "The current number of pending proposals to commit.",
        metrics.proposals_pending.get() as f64,
    );
    page.counter(
        "etcd_server_proposals_failed_total",
        "The total number of failed proposals seen.",
        metrics.proposals_failed.get(),
    );
    page.counter(
        "etcd_server_slow_apply_total",
        "The total number of slow apply requests (likely overloaded from slow disk).",
        metrics.slow_apply.get(),
    );
    // etcd 3.5 calls it etcd_debugging_server_lease_expired_total, 3.6 drops "debugging":
    // both are shown so dashboards for either work.
    for name in [
        "etcd_debugging_server_lease_expired_total",
        "etcd_server_lease_expired_total",
    ] {
        page.counter(
            name,
            "The total number of expired leases.",
            metrics.lease_expired.get(),
        );
    }
    page.counter(
        "etcd_server_health_success",
        "The total number of successful health checks",
        metrics.health_checks_succeeded.get(),
    );
    page.counter(
        "etcd_server_health_failures",
        "The total number of failed health checks",
        metrics.health_checks_failed.get(),
    );
    page.gauge(
        "etcd_server_quota_backend_bytes",
        "Current backend storage quota size in bytes.",
        context.limits.backend_bytes_quota as f64,
    );
    let member_id = format!("{:x}", context.node.member_id());
    page.labeled_gauge(
        "etcd_server_id",
        "Server or member ID in hexadecimal format. 1 for 'server_id' label with current ID.",
        &[("server_id", &member_id)],
        1.0,
    );
    page.labeled_gauge(
        "etcd_server_version",
        "Which version is running. 1 for 'server_version' label with current version.",
        &[("server_version", SERVER_VERSION)],
        1.0,
    );
    page.labeled_gauge(
        "etcd_cluster_version",
        "Which version is running. 1 for 'cluster_version' label with current cluster version",
        &[("cluster_version", &CLUSTER_VERSION[..3])],
        1.0,
    );
}

fn storage(page: &mut Page, context: &Context) {
    let metrics = context.node.metrics();
    let view = context.node.view();
    let store = view.machine.store();
    for (name, help, counter) in [
        (
            "etcd_mvcc_range_total",
            "Total number of ranges seen by this member.",
            &metrics.mvcc.range,
        ),
        (
            "etcd_debugging_mvcc_range_total",
            "Total number of ranges seen by this member.",
            &metrics.mvcc.range,
        ),
        (
            "etcd_mvcc_put_total",
            "Total number of puts seen by this member.",
            &metrics.mvcc.put,
        ),
        (
            "etcd_mvcc_delete_total",
            "Total number of deletes seen by this member.",
            &metrics.mvcc.delete,
        ),
        (
            "etcd_mvcc_txn_total",
            "Total number of txns seen by this member.",
            &metrics.mvcc.txn,
        ),
    ] {
        page.counter(name, help, counter.get());
    }
    page.gauge(
        "etcd_mvcc_db_total_size_in_bytes",
        "Total size of the underlying database physically allocated in bytes.",
        context.node.storage_bytes() as f64,
    );
    page.gauge(
        "etcd_mvcc_db_total_size_in_use_in_bytes",
        "Total size of the underlying database logically in use in bytes.",
        store.size_bytes() as f64,
    );
    page.gauge(
        "etcd_debugging_mvcc_keys_total",
        "Total number of keys.",
        store.key_count() as f64,
    );
    page.gauge(
        "etcd_debugging_mvcc_current_revision",
        "The current revision of store.",
        store.current_revision() as f64,
    );
    page.gauge(
        "etcd_debugging_mvcc_compact_revision",
        "The revision of the last compaction in store.",
        store.compact_revision() as f64,
    );
    page.gauge(
        "etcd_debugging_mvcc_watch_stream_total",
        "Total number of watch streams.",
        metrics.watch_streams.get() as f64,
    );
    // 3.5's name, and the one without "debugging" that later versions use.
    for name in [
        "etcd_debugging_mvcc_watcher_total",
        "etcd_mvcc_watcher_total",
    ] {
        page.gauge(
            name,
            "Total number of watchers.",
            metrics.watchers.get() as f64,
        );
    }
    page.histogram(
        "etcd_disk_wal_fsync_duration_seconds",
        "The latency distributions of fsync called by WAL.",
        &[],
        &metrics.wal_fsync_seconds.snapshot(),
    );
    page.histogram(
        "etcd_disk_backend_commit_duration_seconds",
        "The latency distributions of commit called by backend.",
        &[],
        &metrics.backend_commit_seconds.snapshot(),
    );
}

fn network(page: &mut Page, context: &Context) {
    let peers = &context.node.metrics().peers;
    page.labeled_counters(
        "etcd_network_peer_sent_bytes_total",
        "The total number of bytes sent to peers.",
        &["To"],
        &peers.sent_bytes,
    );
    page.labeled_counters(
        "etcd_network_peer_received_bytes_total",
        "The total number of bytes received from peers.",
        &["From"],
        &peers.received_bytes,
    );
    page.labeled_counters(
        "etcd_network_peer_sent_failures_total",
        "The total number of send failures from peers.",
        &["To"],
        &peers.sent_failures,
    );
    page.labeled_histograms(
        "etcd_network_peer_round_trip_time_seconds",
        "Round-Trip-Time histogram between peers",
        &["To"],
        &peers.round_trip_seconds,
    );
}

const GRPC_LABELS: [&str; 3] = ["grpc_type", "grpc_service", "grpc_method"];

fn grpc(page: &mut Page, context: &Context, detail: Detail) {
    let grpc = &context.node.metrics().grpc;
    page.labeled_counters(
        "grpc_server_started_total",
        "Total number of RPCs started on the server.",
        &GRPC_LABELS,
        &grpc.started,
    );
    page.labeled_counters(
        "grpc_server_handled_total",
        "Total number of RPCs completed on the server, regardless of success or failure.",
        &["grpc_type", "grpc_service", "grpc_method", "grpc_code"],
        &grpc.handled,
    );
    if detail == Detail::Extensive {
        page.labeled_histograms(
            "grpc_server_handling_seconds",
            "Histogram of response latency (seconds) of gRPC that had been application-level handled by the server.",
            &GRPC_LABELS,
            &grpc.handling_seconds,
        );
    }
}

fn process_metrics(page: &mut Page) {
    let Some(stats) = process::stats() else {
        return;
    };
    page.counter_float(
        "process_cpu_seconds_total",
        "Total user and system CPU time spent in seconds.",
        stats.cpu_seconds,
    );
    page.gauge(
        "os_fd_used",
        "The number of used file descriptors.",
        stats.open_fds as f64,
    );
    if let Some(max_fds) = stats.max_fds {
        page.gauge("os_fd_limit", "The file descriptor limit.", max_fds as f64);
    }
    page.gauge(
        "process_open_fds",
        "Number of open file descriptors.",
        stats.open_fds as f64,
    );
    if let Some(max_fds) = stats.max_fds {
        page.gauge(
            "process_max_fds",
            "Maximum number of open file descriptors.",
            max_fds as f64,
        );
    }
    page.gauge(
        "process_resident_memory_bytes",
        "Resident memory size in bytes.",
        stats.resident_memory_bytes as f64,
    );
    page.gauge(
        "process_virtual_memory_bytes",
        "Virtual memory size in bytes.",
        stats.virtual_memory_bytes as f64,
    );
    page.gauge(
        "process_start_time_seconds",
        "Start time of the process since unix epoch in seconds.",
        stats.start_time_seconds,
    );
}

/// The text of a page being written.
#[derive(Default)]
struct Page {
    text: String,
}

impl Page {
    fn family(&mut self, name: &str, help: &str, kind: &str) {
        let _ = writeln!(self.text, "# HELP {name} {}", escape_help(help));
        let _ = writeln!(self.text, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.text.push_str(name);
        if !labels.is_empty() {
            self.text.push('{');
            for (position, (label, label_value)) in labels.iter().enumerate() {
                if position > 0 {
                    self.text.push(',');
                }
                let _ = write!(self.text, "{label}=\"{}\"", escape_label(label_value));
            }
            self.text.push('}');
        }
        let _ = writeln!(self.text, " {}", number(value));
    }

    fn gauge(&mut self, name: &str, help: &str, value: f64) {
        self.labeled_gauge(name, help, &[], value);
    }

    fn labeled_gauge(&mut self, name: &str, help: &str, labels: &[(&str, &str)], value: f64) {
        self.family(name, help, "gauge");
        self.sample(name, labels, value);
    }

    fn counter(&mut self, name: &str, help: &str, value: u64) {
        self.counter_float(name, help, value as f64);
    }

    fn counter_float(&mut self, name: &str, help: &str, value: f64) {
        self.family(name, help, "counter");
        self.sample(name, &[], value);
    }

    fn labeled_counters(
        &mut self,
        name: &str,
        help: &str,
        label_names: &[&str],
        family: &Labeled<Counter>,
    ) {
        self.family(name, help, "counter");
        for (values, count) in family.read(Counter::get) {
            let labels = zip_labels(label_names, &values);
            self.sample(name, &labels, count as f64);
        }
    }

    fn labeled_histograms(
        &mut self,
        name: &str,
        help: &str,
        label_names: &[&str],
        family: &Labeled<Histogram>,
    ) {
        self.family(name, help, "histogram");
        for (values, snapshot) in family.read(Histogram::snapshot) {
            let labels = zip_labels(label_names, &values);
            self.histogram_samples(name, &labels, &snapshot);
        }
    }

    fn histogram(
        &mut self,
        name: &str,
        help: &str,
        labels: &[(&str, &str)],
        snapshot: &HistogramSnapshot,
    ) {
        self.family(name, help, "histogram");
        self.histogram_samples(name, labels, snapshot);
    }

    fn histogram_samples(
        &mut self,
        name: &str,
        labels: &[(&str, &str)],
        snapshot: &HistogramSnapshot,
    ) {
        let bucket = format!("{name}_bucket");
        for (bound, count) in &snapshot.buckets {
            let bound = number(*bound);
            let mut with_bound = labels.to_vec();
            with_bound.push(("le", &bound));
            self.sample(&bucket, &with_bound, *count as f64);
        }
        let mut infinite = labels.to_vec();
        infinite.push(("le", "+Inf"));
        self.sample(&bucket, &infinite, snapshot.count as f64);
        self.sample(&format!("{name}_sum"), labels, snapshot.sum);
        self.sample(&format!("{name}_count"), labels, snapshot.count as f64);
    }
}

fn zip_labels<'a>(names: &[&'a str], values: &'a [String]) -> Vec<(&'a str, &'a str)> {
    names
        .iter()
        .zip(values)
        .map(|(name, value)| (*name, value.as_str()))
        .collect()
}

/// A sample value as Go's client writes it: integers without a fraction, others shortest.
fn number(value: f64) -> String {
    if value.is_infinite() {
        return if value > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    if value.is_nan() {
        return "NaN".into();
    }
    if value.fract() == 0.0 && value.abs() < 1e15 {
        return format!("{}", value as i64);
    }
    format!("{value}")
}

fn escape_help(text: &str) -> String {
    text.replace('\\', "\\\\").replace('\n', "\\n")
}

fn escape_label(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_and_histograms_are_prometheus_text() {
        let mut page = Page::default();
        page.labeled_gauge("x_up", "Up.", &[("id", "a\"b")], 1.0);
        let histogram = Histogram::exponential(0.5, 2.0, 2);
        histogram.observe(0.25);
        histogram.observe(3.0);
        page.histogram("x_seconds", "Time.", &[], &histogram.snapshot());
        assert_eq!(
            page.text,
            "# HELP x_up Up.\n# TYPE x_up gauge\nx_up{id=\"a\\\"b\"} 1\n\
             # HELP x_seconds Time.\n# TYPE x_seconds histogram\n\
             x_seconds_bucket{le=\"0.5\"} 1\nx_seconds_bucket{le=\"1\"} 1\n\
             x_seconds_bucket{le=\"+Inf\"} 2\nx_seconds_sum 3.25\nx_seconds_count 2\n"
        );
    }
}
