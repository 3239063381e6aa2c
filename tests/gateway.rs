//! etcd's JSON gateway on the client port, driven by curl and by the `etcd3gw` client
//! (OpenStack's, from PyPI) running its own test suite. The expected bodies are what etcd
//! answered to the same requests on this machine.
// These start real processes on real sockets; the simulator has its own tests in sim/.
#![cfg(not(madsim))]

mod common;

use common::{curl, HttpReply, Server};
use std::process::Command;

fn start(extra_args: &[&str]) -> (tempfile::TempDir, Server) {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), extra_args);
    (dir, server)
}

fn post(server: &Server, path: &str, body: &str) -> HttpReply {
    curl(&[
        "-X",
        "POST",
        "--data-binary",
        body,
        &format!("http://{}{path}", server.endpoint),
    ])
}

fn json(reply: &HttpReply) -> serde_json::Value {
    serde_json::from_str(&reply.body)
        .unwrap_or_else(|error| panic!("not JSON ({error}): {:?}", reply.body))
}

#[test]
fn json_gateway_answers_as_etcd_does() {
    let (_dir, server) = start(&["--max-request-bytes=4096"]);
    // "foo" = Zm9v, "bar" = YmFy; 64-bit integers are strings, zero fields left out.
    let put = post(&server, "/v3/kv/put", r#"{"key":"Zm9v","value":"YmFy"}"#);
    assert_eq!(put.status, 200, "{put:?}");
    assert_eq!(put.header("content-type"), Some("application/json"));
    assert_eq!(json(&put)["header"]["revision"], "2");
    let range = json(&post(&server, "/v3/kv/range", r#"{"key":"Zm9v"}"#));
    assert_eq!(
        range["kvs"],
        serde_json::json!([{"key":"Zm9v","create_revision":"2","mod_revision":"2","version":"1","value":"YmFy"}])
    );
    assert_eq!(range["count"], "1");

    // Inside a txn, headers carry only the revision at that point; a nested txn's is empty.
    let txn = json(&post(
        &server,
        "/v3/kv/txn",
        r#"{"success":[{"request_range":{"key":"Zm9v"}},{"request_put":{"key":"eA==","value":"eQ=="}},
            {"request_range":{"key":"Zm9v"}},{"request_txn":{}}]}"#,
    ));
    assert_eq!(txn["header"]["revision"], "3");
    let responses = &txn["responses"];
    assert_eq!(
        responses[0]["response_range"]["header"],
        serde_json::json!({"revision":"2"})
    );
    assert_eq!(
        responses[1]["response_put"]["header"],
        serde_json::json!({"revision":"3"})
    );
    assert_eq!(
        responses[2]["response_range"]["header"],
        serde_json::json!({"revision":"3"})
    );
    assert_eq!(
        responses[3]["response_txn"]["header"],
        serde_json::json!({})
    );

    // Errors: grpc-gateway's body and its HTTP status for the gRPC code.
    let empty_key = post(&server, "/v3/kv/range", "{}");
    assert_eq!(empty_key.status, 400);
    assert_eq!(
        json(&empty_key),
        serde_json::json!({"error":"etcdserver: key is not provided","message":"etcdserver: key is not provided","code":3})
    );
    let missing_lease = post(&server, "/v3/lease/revoke", r#"{"ID":"5"}"#);
    assert_eq!(missing_lease.status, 404);
    assert_eq!(json(&missing_lease)["code"], 5);
    assert_eq!(post(&server, "/v3/kv/range", "{bad").status, 400);
    // Over --max-request-bytes: the service refuses it, as over gRPC.
    let large = post(
        &server,
        "/v3/kv/put",
        &format!(r#"{{"key":"Zm9v","value":"{}"}}"#, "A".repeat(8192)),
    );
    assert_eq!(
        (large.status, json(&large)["message"].clone()),
        (400, "etcdserver: request is too large".into())
    );
    // Over what gRPC would even receive: refused while reading, never buffered whole.
    let body_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        body_file.path(),
        format!(r#"{{"key":"Zm9v","value":"{}"}}"#, "A".repeat(1 << 20)),
    )
    .unwrap();
    let oversize = curl(&[
        "-X",
        "POST",
        "--data-binary",
        &format!("@{}", body_file.path().display()),
        &format!("http://{}/v3/kv/put", server.endpoint),
    ]);
    assert_eq!(
        (oversize.status, json(&oversize)["code"].clone()),
        (429, 8.into()),
        "{oversize:?}"
    );
    assert_eq!(post(&server, "/v3/nothing", "{}").status, 404);
    let get = curl(&[&format!("http://{}/v3/kv/range", server.endpoint)]);
    assert_eq!(get.status, 405);

    // Leases, including the keepalive stream (one line per request in the body).
    let granted = json(&post(
        &server,
        "/v3/lease/grant",
        r#"{"TTL":"30","ID":"77"}"#,
    ));
    assert_eq!(
        (&granted["ID"], &granted["TTL"]),
        (&"77".into(), &"30".into())
    );
    let kept = post(&server, "/v3/lease/keepalive", r#"{"ID":"77"} {"ID":"77"}"#);
    let lines: Vec<serde_json::Value> = kept
        .body
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{kept:?}");
    assert!(lines.iter().all(|line| line["result"]["TTL"] == "30"));

    // A snapshot streams as JSON lines: the database in pieces, then its SHA-256.
    use base64::Engine as _;
    use sha2::Digest as _;
    let snapshot = post(&server, "/v3/maintenance/snapshot", "{}");
    assert_eq!(snapshot.status, 200);
    let blobs: Vec<Vec<u8>> = snapshot
        .body
        .lines()
        .map(|line| {
            let line: serde_json::Value = serde_json::from_str(line).unwrap();
            let blob = line["result"]["blob"].as_str().unwrap().to_string();
            base64::engine::general_purpose::STANDARD
                .decode(blob)
                .unwrap()
        })
        .collect();
    let (hash, database) = blobs.split_last().unwrap();
    let database = database.concat();
    assert_eq!(database.len() % 4096, 0, "whole bbolt pages");
    assert_eq!(hash.as_slice(), sha2::Sha256::digest(&database).as_slice());
    // An unimplemented route answers grpc-gateway's error with the HTTP status of its code.
    let downgrade = post(&server, "/v3/maintenance/downgrade", "{}");
    assert_eq!(downgrade.status, 501, "{}", downgrade.body);
    assert_eq!(json(&downgrade)["code"], 12, "{}", downgrade.body);
    // A first request that is not JSON is answered as an error, as grpc-gateway does.
    let bad_watch = post(&server, "/v3/watch", "{bad");
    assert_eq!(
        (bad_watch.status, json(&bad_watch)["code"].clone()),
        (500, 2.into())
    );
}

#[test]
fn watch_over_the_gateway_streams_events_as_json_lines() {
    let (_dir, server) = start(&[]);
    let url = format!("http://{}/v3/watch", server.endpoint);
    let watcher = std::thread::spawn(move || {
        // curl stops reading after 3 s; the lines it got by then are the answer.
        curl(&[
            "--max-time",
            "3",
            "-X",
            "POST",
            "--data-binary",
            r#"{"create_request":{"key":"Zm9v"}}"#,
            &url,
        ])
    });
    std::thread::sleep(std::time::Duration::from_millis(1000));
    assert_eq!(
        post(&server, "/v3/kv/put", r#"{"key":"Zm9v","value":"YmFy"}"#).status,
        200
    );
    let streamed = watcher.join().unwrap();
    let lines: Vec<serde_json::Value> = streamed
        .body
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{streamed:?}");
    assert_eq!(lines[0]["result"]["created"], true);
    assert_eq!(lines[1]["result"]["events"][0]["kv"]["value"], "YmFy");
}

#[test]
fn the_gateway_can_be_turned_off() {
    let (_dir, server) = start(&["--enable-grpc-gateway=false"]);
    assert_eq!(
        post(&server, "/v3/kv/range", r#"{"key":"Zm9v"}"#).status,
        404
    );
    let health = curl(&[&format!("http://{}/health", server.endpoint)]);
    assert_eq!(health.status, 200, "the other endpoints stay");
}

/// The gateway passes the same auth as gRPC: a token from /v3/auth/authenticate in the
/// `Authorization` header, "user name is empty" without one, "invalid auth token" for one
/// this member never issued.
#[test]
fn the_gateway_authenticates_with_the_authorization_header() {
    let (_dir, server) = start(&["--bcrypt-cost=4"]);
    server.ok(&["user", "add", "root:pw"]);
    server.ok(&["auth", "enable"]);
    server.ok(&["--user=root:pw", "put", "foo", "bar"]);
    let anonymous = post(&server, "/v3/kv/range", r#"{"key":"Zm9v"}"#);
    assert_eq!(anonymous.status, 400);
    assert_eq!(
        json(&anonymous)["message"],
        "etcdserver: user name is empty"
    );
    let authenticated = post(
        &server,
        "/v3/auth/authenticate",
        r#"{"name":"root","password":"pw"}"#,
    );
    assert_eq!(authenticated.status, 200, "{authenticated:?}");
    let token = json(&authenticated)["token"].as_str().unwrap().to_string();
    let range = |token: &str| {
        curl(&[
            "-X",
            "POST",
            "-H",
            &format!("Authorization: {token}"),
            "--data-binary",
            r#"{"key":"Zm9v"}"#,
            &format!("http://{}/v3/kv/range", server.endpoint),
        ])
    };
    let read = range(&token);
    assert_eq!(read.status, 200, "{read:?}");
    assert_eq!(json(&read)["kvs"][0]["value"], "YmFy");
    let forged = range("not-a-token.1");
    assert_eq!(forged.status, 401);
    assert_eq!(json(&forged)["message"], "etcdserver: invalid auth token");
}

/// etcd3gw's own integration suite (23 tests: keys, prefixes, sorting, txns, leases,
/// watches, locks). ci/test installs it from PyPI.
#[test]
fn etcd3gw_test_suite_passes() {
    let (_dir, server) = start(&[]);
    let port = server.endpoint.rsplit(':').next().unwrap().to_string();
    let output = Command::new("timeout")
        .args([
            "120",
            "python3",
            "-m",
            "unittest",
            "etcd3gw.tests.test_etcd3gw",
        ])
        .env("TOOZ_TEST_HTTP_URL", format!("http://{}", server.endpoint))
        .env("TOOZ_TEST_ETCD_PORT", &port)
        .output()
        .expect("run python3 (with etcd3gw and oslotest from PyPI)");
    let report = String::from_utf8_lossy(&output.stderr);
    let summary: Vec<&str> = report
        .lines()
        .filter(|line| {
            line.starts_with("Ran ") || line.starts_with("OK") || line.starts_with("FAILED")
        })
        .collect();
    assert!(
        output.status.success(),
        "{summary:?}\n{}",
        report
            .chars()
            .rev()
            .take(4000)
            .collect::<String>()
            .chars()
            .rev()
            .collect::<String>()
    );
    assert!(
        !report.contains("skipped="),
        "etcd3gw skipped tests: {summary:?}"
    );
}

#[test]
fn cors_host_whitelist_and_v3beta_as_etcd() {
    let (_dir, open) = start(&[]);
    let range = post(&open, "/v3beta/kv/range", r#"{"key":"Zm9v"}"#);
    assert_eq!(range.status, 200, "/v3beta/ is served as /v3/: {range:?}");
    assert_eq!(range.header("access-control-allow-origin"), Some("*"));
    let preflight = curl(&[
        "-X",
        "OPTIONS",
        &format!("http://{}/v3/kv/range", open.endpoint),
    ]);
    assert_eq!(preflight.status, 200);
    assert_eq!(
        preflight.header("access-control-allow-headers"),
        Some("accept, content-type, authorization")
    );
    drop(open);

    let (_dir, strict) = start(&[
        "--host-whitelist=cairn.example",
        "--cors=https://app.example",
    ]);
    let url = format!("http://{}/health", strict.endpoint);
    let refused = curl(&[&url]);
    assert_eq!(refused.status, 421, "{refused:?}");
    assert!(refused.body.contains("DNS Rebinding"));
    let listed = curl(&[
        "-H",
        "Host: cairn.example:2379",
        "-H",
        "Origin: https://app.example",
        &url,
    ]);
    assert_eq!(listed.status, 200);
    assert_eq!(
        listed.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    let other_origin = curl(&[
        "-H",
        "Host: cairn.example",
        "-H",
        "Origin: https://evil.example",
        &url,
    ]);
    assert_eq!(other_origin.header("access-control-allow-origin"), None);
}
