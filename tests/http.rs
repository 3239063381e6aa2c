//! etcd's HTTP endpoints on the client port and on `--listen-metrics-urls`, driven with curl
//! over HTTP/1.1 and HTTP/2: `/health`, `/livez`, `/readyz`, `/version` and `/metrics` with
//! and without a leader; the metrics page parsed by a Prometheus text-format parser and its
//! counters moving after puts; gRPC health; streams opened with `hasleader` ending once the
//! leader is gone; and the rest of the operator surface: a member started from an etcd YAML file or `ETCD_*`
//! variables alone, JSON logs to several outputs.
#![cfg(not(madsim))]

mod common;

use cairn::api::pb::etcdserverpb::{
    self as pb, lease_client::LeaseClient, watch_client::WatchClient,
};
use cairn::api::pb::grpc_health_v1::{health_client::HealthClient, HealthCheckRequest};
use common::cluster::Cluster;
use common::{curl, free_port, grpc_channel, HttpReply, Server};
use futures::StreamExt;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const FAST: [&str; 2] = ["--heartbeat-interval=50", "--election-timeout=500"];

fn get(url: &str) -> HttpReply {
    curl(&[url])
}

/// The page's samples by name and labels (`name{a="1",b="2"}`, labels sorted).
fn scrape(url: &str) -> BTreeMap<String, f64> {
    let reply = get(url);
    assert_eq!(reply.status, 200, "{url}: {reply:?}");
    assert_eq!(
        reply.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let lines = reply.body.lines().map(|line| Ok(line.to_string()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("Prometheus text format");
    let mut samples = BTreeMap::new();
    for sample in scrape.samples {
        let mut labels: Vec<String> = sample
            .labels
            .iter()
            .map(|(name, value)| format!("{name}={value:?}"))
            .collect();
        labels.sort();
        let name = if labels.is_empty() {
            sample.metric.clone()
        } else {
            format!("{}{{{}}}", sample.metric, labels.join(","))
        };
        let value = match sample.value {
            prometheus_parse::Value::Counter(value)
            | prometheus_parse::Value::Gauge(value)
            | prometheus_parse::Value::Untyped(value) => value,
            prometheus_parse::Value::Histogram(buckets) => {
                buckets.last().map_or(0.0, |bucket| bucket.count)
            }
            _ => continue,
        };
        samples.insert(name, value);
    }
    samples
}

fn sample(samples: &BTreeMap<String, f64>, name: &str) -> f64 {
    *samples
        .get(name)
        .unwrap_or_else(|| panic!("{name} missing from {:?}", samples.keys()))
}

#[test]
fn endpoints_answer_as_etcds_over_both_http_versions() {
    let dir = tempfile::tempdir().unwrap();
    let metrics_port = free_port();
    let metrics_url = format!("http://127.0.0.1:{metrics_port}");
    let server = Server::start(
        &dir.path().join("data"),
        &[&format!("--listen-metrics-urls={metrics_url}")],
    );
    let base = format!("http://{}", server.endpoint);
    for version in ["--http1.1", "--http2-prior-knowledge"] {
        let reply = curl(&[version, &format!("{base}/health")]);
        assert_eq!(
            (reply.status, reply.body.as_str()),
            (200, r#"{"health":"true","reason":""}"#),
            "{version}"
        );
        assert_eq!(
            reply.version,
            if version == "--http1.1" { "1.1" } else { "2" }
        );
    }
    let version = get(&format!("{base}/version"));
    assert_eq!(
        (version.status, version.body.as_str()),
        (200, r#"{"etcdserver":"3.5.13","etcdcluster":"3.5.0"}"#)
    );
    assert_eq!(version.header("content-type"), Some("application/json"));
    assert_eq!(
        get(&format!("{base}/readyz?verbose")).body,
        "[+]data_corruption ok\n[+]serializable_read ok\n[+]linearizable_read ok\n[+]non_learner ok\nok\n"
    );
    assert_eq!(
        get(&format!(
            "{base}/readyz?verbose&exclude=non_learner&exclude=data_corruption"
        ))
        .body,
        "[+]serializable_read ok\n[+]linearizable_read ok\nok\n"
    );
    assert_eq!(get(&format!("{base}/livez")).body, "ok\n");
    assert_eq!(
        get(&format!("{base}/readyz/linearizable_read")).body,
        "ok\n"
    );
    let missing = get(&format!("{base}/readyz/no_such_check"));
    assert_eq!(
        (missing.status, missing.body.as_str()),
        (404, "404 page not found\n")
    );
    let posted = curl(&["-X", "POST", &format!("{base}/health")]);
    assert_eq!(
        (posted.status, posted.body.as_str(), posted.header("allow")),
        (405, "Method Not Allowed\n", Some("GET"))
    );

    // Counters move where the events happen.
    let before = scrape(&format!("{base}/metrics"));
    for index in 0..5 {
        server.ok(&["put", &format!("key{index}"), "value"]);
    }
    server.ok(&["get", "key", "--prefix"]);
    let after = scrape(&format!("{metrics_url}/metrics"));
    let moved = |name: &str| sample(&after, name) - before.get(name).copied().unwrap_or(0.0);
    assert_eq!(moved("etcd_mvcc_put_total"), 5.0);
    assert_eq!(moved("etcd_mvcc_range_total"), 1.0);
    assert_eq!(moved("etcd_debugging_mvcc_keys_total"), 5.0);
    assert_eq!(
        moved(
            r#"grpc_server_handled_total{grpc_code="OK",grpc_method="Put",grpc_service="etcdserverpb.KV",grpc_type="unary"}"#
        ),
        5.0
    );
    assert!(moved("etcd_disk_wal_fsync_duration_seconds") >= 5.0);
    assert!(moved("etcd_server_proposals_committed_total") >= 5.0);
    assert_eq!(sample(&after, "etcd_server_has_leader"), 1.0);
    assert_eq!(sample(&after, "etcd_server_is_leader"), 1.0);
    assert_eq!(sample(&after, "etcd_server_proposals_pending"), 0.0);
    assert!(sample(&after, "process_resident_memory_bytes") > 0.0);
    let status = server.ok(&["endpoint", "status", "-w", "json"]);
    let member_id: u64 = status
        .split("\"member_id\":")
        .nth(1)
        .and_then(|rest| rest.split([',', '}']).next())
        .and_then(|id| id.parse().ok())
        .expect("member_id in endpoint status");
    assert_eq!(
        sample(
            &after,
            &format!("etcd_server_id{{server_id=\"{member_id:x}\"}}")
        ),
        1.0
    );
    // The metrics URL serves metrics and health, not the rest of the client port.
    assert_eq!(get(&format!("{metrics_url}/health")).status, 200);
    assert_eq!(get(&format!("{metrics_url}/version")).status, 404);

    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let mut health = HealthClient::new(server.channel().await);
        let serving = health
            .check(HealthCheckRequest::default())
            .await
            .unwrap()
            .into_inner();
        assert_eq!(serving.status, 1, "SERVING");
        let unknown = health
            .check(HealthCheckRequest {
                service: "etcdserverpb.KV".into(),
            })
            .await
            .unwrap_err();
        assert_eq!(unknown.code(), tonic::Code::NotFound);
    });
}

/// A watch stream with `hasleader: true` (and one without), opened on `endpoint`.
async fn open_watch(endpoint: &str, requires_leader: bool) -> tonic::Streaming<pb::WatchResponse> {
    let create = pb::WatchRequest {
        request_union: Some(pb::watch_request::RequestUnion::CreateRequest(
            pb::WatchCreateRequest {
                key: b"watched".to_vec().into(),
                ..Default::default()
            },
        )),
    };
    // The request side stays open, as clients keep it.
    let requests = futures::stream::iter([create]).chain(futures::stream::pending());
    let mut request = tonic::Request::new(requests);
    if requires_leader {
        request
            .metadata_mut()
            .insert("hasleader", "true".parse().unwrap());
    }
    let mut stream = WatchClient::new(grpc_channel(endpoint).await)
        .watch(request)
        .await
        .unwrap()
        .into_inner();
    let created = stream.message().await.unwrap().unwrap();
    assert!(created.created);
    stream
}

#[test]
fn without_a_leader_health_fails_and_hasleader_streams_end() {
    let mut cluster = Cluster::start(3, &FAST);
    // A follower: it loses its leader with the others (an isolated leader is checked in
    // `an_isolated_leader_steps_down_as_etcds_does`).
    let survivor = (cluster.leader() + 1) % 3;
    let endpoint = cluster.members[survivor].endpoint();
    let base = format!("http://{endpoint}");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (mut guarded, mut unguarded, mut keepalive) = runtime.block_on(async {
        let guarded = open_watch(&endpoint, true).await;
        let unguarded = open_watch(&endpoint, false).await;
        let channel = grpc_channel(&endpoint).await;
        let granted = LeaseClient::new(channel.clone())
            .lease_grant(pb::LeaseGrantRequest { ttl: 60, id: 0 })
            .await
            .unwrap()
            .into_inner();
        let beats = futures::stream::iter([pb::LeaseKeepAliveRequest { id: granted.id }])
            .chain(futures::stream::pending());
        let mut request = tonic::Request::new(beats);
        request
            .metadata_mut()
            .insert("hasleader", "true".parse().unwrap());
        let mut keepalive = LeaseClient::new(channel)
            .lease_keep_alive(request)
            .await
            .unwrap()
            .into_inner();
        assert!(keepalive.message().await.unwrap().unwrap().ttl > 0);
        (guarded, unguarded, keepalive)
    });
    for (position, member) in cluster.members.iter_mut().enumerate() {
        if position != survivor {
            member.kill();
        }
    }
    // The survivor loses its leader after an election timeout.
    let unhealthy = wait_for_no_leader(&base);
    assert_eq!(
        (unhealthy.status, unhealthy.body.as_str()),
        (
            503,
            "{\"health\":\"false\",\"reason\":\"RAFT NO LEADER\"}\n"
        )
    );
    assert_eq!(unhealthy.header("x-content-type-options"), Some("nosniff"));
    let serializable = get(&format!("{base}/health?serializable=true"));
    assert_eq!(serializable.status, 200, "{serializable:?}");
    assert_eq!(get(&format!("{base}/livez")).status, 200);
    let samples = scrape(&format!("{base}/metrics"));
    assert_eq!(sample(&samples, "etcd_server_has_leader"), 0.0);
    assert_eq!(sample(&samples, "etcd_server_is_leader"), 0.0);

    runtime.block_on(async {
        // Three election timeouts (1.5 s) after the leader went, plus the monitor's period.
        let ended = tokio::time::timeout(Duration::from_secs(10), guarded.message())
            .await
            .expect("a hasleader watch ends without a leader");
        let status = ended.expect_err("ends with an error, not OK");
        assert_eq!(
            (status.code(), status.message()),
            (tonic::Code::Unavailable, "etcdserver: no leader")
        );
        let status = tokio::time::timeout(Duration::from_secs(10), keepalive.message())
            .await
            .expect("a hasleader keepalive stream ends without a leader")
            .expect_err("with an error");
        assert_eq!(status.message(), "etcdserver: no leader");
        // A stream opened without hasleader stays, as in etcd.
        let still_open =
            tokio::time::timeout(Duration::from_millis(500), unguarded.message()).await;
        assert!(still_open.is_err(), "{still_open:?}");
    });
    // A linearizable read times out without a leader: readyz says which check failed.
    let ready = curl(&["--max-time", "30", &format!("{base}/readyz?verbose")]);
    assert_eq!(ready.status, 503, "{ready:?}");
    assert!(
        ready.body.starts_with(
            "[+]data_corruption ok\n[+]serializable_read ok\n[-]linearizable_read failed: "
        ),
        "{}",
        ready.body
    );
}

/// Polls `/health` until it reports no leader (at most 20 s) and returns that reply.
fn wait_for_no_leader(base: &str) -> HttpReply {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let reply = get(&format!("{base}/health"));
        if reply.status == 503 && reply.body.contains("RAFT NO LEADER") || Instant::now() > deadline
        {
            return reply;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn an_isolated_leader_steps_down_as_etcds_does() {
    let mut cluster = Cluster::start(3, &FAST);
    let leader = cluster.leader();
    let endpoint = cluster.members[leader].endpoint();
    let base = format!("http://{endpoint}");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut guarded = runtime.block_on(open_watch(&endpoint, true));
    for (position, member) in cluster.members.iter_mut().enumerate() {
        if position != leader {
            member.kill();
        }
    }
    // etcd's CheckQuorum: a leader that hears from no quorum for an election timeout is
    // no leader, so its health fails and hasleader streams fail over.
    let reply = wait_for_no_leader(&base);
    assert_eq!(reply.status, 503, "{reply:?}");
    let samples = scrape(&format!("{base}/metrics"));
    assert_eq!(sample(&samples, "etcd_server_is_leader"), 0.0);
    assert_eq!(sample(&samples, "etcd_server_has_leader"), 0.0);
    let stderr = cluster.members[leader]
        .etcdctl(&["put", "k", "v", "--command-timeout=3s"])
        .stderr;
    assert!(
        !String::from_utf8_lossy(&stderr).is_empty(),
        "a write fails"
    );
    runtime.block_on(async {
        let status = tokio::time::timeout(Duration::from_secs(10), guarded.message())
            .await
            .expect("a hasleader watch on an isolated leader ends")
            .expect_err("with an error");
        assert_eq!(status.message(), "etcdserver: no leader");
    });
}

/// Starts a member that gets every setting from `configure`, waits until its metrics URL
/// answers, and returns `etcdctl member list` and its log once it is stopped.
fn run_configured_member(
    dir: &std::path::Path,
    configure: impl FnOnce(&mut std::process::Command, &MemberUrls),
) -> (String, String) {
    let urls = MemberUrls {
        client: format!("http://127.0.0.1:{}", free_port()),
        peer: format!("http://127.0.0.1:{}", free_port()),
        metrics: format!("http://127.0.0.1:{}", free_port()),
    };
    let log = std::fs::File::create(dir.join("member.log")).unwrap();
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_cairn"));
    command
        .env_clear()
        .stdout(std::process::Stdio::null())
        .stderr(log);
    configure(&mut command, &urls);
    let mut child = command.spawn().unwrap();
    let health = format!("{}/health", urls.metrics);
    let deadline = Instant::now() + Duration::from_secs(30);
    while get(&health).status != 200 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let endpoint = urls.client.trim_start_matches("http://");
    let members = common::etcdctl(endpoint, &["member", "list"], None);
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(get(&health).status, 0, "stopped");
    let log = std::fs::read_to_string(dir.join("member.log")).unwrap();
    (String::from_utf8_lossy(&members.stdout).to_string(), log)
}

struct MemberUrls {
    client: String,
    peer: String,
    metrics: String,
}

#[test]
fn a_member_configured_only_by_etcd_environment_variables() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut expected = String::new();
    let (members, log) = run_configured_member(dir.path(), |command, urls| {
        expected = format!("from-env, {}, {}", urls.peer, urls.client);
        command
            .env("ETCD_NAME", "from-env")
            .env("ETCD_DATA_DIR", &data)
            .env("ETCD_LISTEN_CLIENT_URLS", &urls.client)
            .env("ETCD_ADVERTISE_CLIENT_URLS", &urls.client)
            .env("ETCD_LISTEN_PEER_URLS", &urls.peer)
            .env("ETCD_INITIAL_ADVERTISE_PEER_URLS", &urls.peer)
            .env("ETCD_INITIAL_CLUSTER", format!("from-env={}", urls.peer))
            .env("ETCD_LISTEN_METRICS_URLS", &urls.metrics)
            .env("ETCD_ENABLE_PPROF", "true");
    });
    assert!(members.contains(&expected), "{members}\n{log}");
    assert!(
        log.contains("--enable-pprof=true has no effect in Cairn"),
        "{log}"
    );
}

#[test]
fn a_member_configured_only_by_an_etcd_yaml_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("etcd.conf.yml");
    let data = dir.path().join("data");
    let mut expected = String::new();
    let (members, log) = run_configured_member(dir.path(), |command, urls| {
        expected = format!("from-file, {}, {}", urls.peer, urls.client);
        let yaml = format!(
            "# as etcd's etcd.conf.yml.sample writes it\n\
             name: 'from-file'\n\
             data-dir: {data}\n\
             listen-client-urls: {client}\n\
             advertise-client-urls: {client}\n\
             listen-peer-urls: {peer}\n\
             initial-advertise-peer-urls: {peer}\n\
             initial-cluster: from-file={peer}\n\
             initial-cluster-state: 'new'\n\
             listen-metrics-urls: {metrics}\n\
             heartbeat-interval: 100\n\
             enable-pprof: true\n\
             log-outputs: [stderr]\n\
             wal-dir:\n\
             client-transport-security:\n  client-cert-auth: false\n  auto-tls: false\n\
             peer-transport-security:\n  trusted-ca-file:\n",
            data = data.display(),
            client = urls.client,
            peer = urls.peer,
            metrics = urls.metrics,
        );
        std::fs::write(&file, yaml).unwrap();
        // Flags and variables beside the file are ignored, as etcd ignores them.
        command
            .arg(format!("--config-file={}", file.display()))
            .arg("--name=ignored-flag")
            .env("ETCD_NAME", "ignored-variable");
    });
    assert!(members.contains(&expected), "{members}\n{log}");
    assert!(
        log.contains("--enable-pprof=true has no effect in Cairn"),
        "{log}"
    );
    assert!(
        log.contains("other command line flags and environment variables are ignored"),
        "{log}"
    );
}

#[test]
fn json_logs_go_to_every_output() {
    let dir = tempfile::tempdir().unwrap();
    let (first, second) = (dir.path().join("first.log"), dir.path().join("second.log"));
    let outputs = format!(
        "--log-outputs=stderr,{},{}",
        first.display(),
        second.display()
    );
    let server = Server::start(&dir.path().join("data"), &["--log-format=json", &outputs]);
    server.ok(&["put", "k", "v"]);
    drop(server);
    for path in [&first, &second, &dir.path().join("data.log")] {
        let text = std::fs::read_to_string(path).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|line| serde_json::from_str(line).unwrap_or_else(|_| panic!("{path:?}: {line}")))
            .collect();
        assert!(
            lines
                .iter()
                .any(|line| line["message"] == "ready to serve client requests"
                    && line["level"] == "INFO"
                    && line["etcd_version"] == "3.5.13"),
            "{path:?}: {text}"
        );
    }
}
