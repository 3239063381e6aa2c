//! etcd's HTTP endpoints (`/health`, `/livez`, `/readyz`, `/version`, `/metrics`) as answers
//! to a method, path and query, with the status codes, headers and bodies etcd's Go
//! handlers give. The server layer carries them over HTTP/1.1 or HTTP/2.

use super::health::{self, json_string, Probe};
use super::metrics::{self, Detail};
use super::{Context, CLUSTER_VERSION, SERVER_VERSION};

/// Which endpoints a listener serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoints {
    /// A client URL: everything.
    Client,
    /// A `--listen-metrics-urls` URL: `/metrics` and the health endpoints, as etcd.
    Metrics,
}

/// One answer: status, headers, body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

const TEXT: &str = "text/plain; charset=utf-8";

impl Answer {
    fn ok(content_type: &str, body: impl Into<Vec<u8>>) -> Answer {
        Answer {
            status: 200,
            headers: vec![("content-type", content_type.to_string())],
            body: body.into(),
        }
    }

    pub fn with_body(status: u16, content_type: &str, body: Vec<u8>) -> Answer {
        Answer {
            status,
            headers: vec![("content-type", content_type.to_string())],
            body,
        }
    }

    /// Go's `http.Error`: plain text, a newline added, and `nosniff`.
    pub fn error(status: u16, text: &str) -> Answer {
        Answer {
            status,
            headers: vec![
                ("content-type", TEXT.to_string()),
                ("x-content-type-options", "nosniff".to_string()),
            ],
            body: format!("{text}\n").into_bytes(),
        }
    }

    fn not_found() -> Answer {
        Answer::error(404, "404 page not found")
    }

    fn method_not_allowed() -> Answer {
        let mut answer = Answer::error(405, "Method Not Allowed");
        answer.headers.push(("allow", "GET".to_string()));
        answer
    }
}

/// The answer to `method path?query` on a listener serving `endpoints`.
pub async fn answer(
    context: &Context,
    endpoints: Endpoints,
    detail: Detail,
    method: &str,
    path: &str,
    query: &str,
) -> Answer {
    let query = Query::parse(query);
    let probe = [Probe::Livez, Probe::Readyz]
        .into_iter()
        .find(|probe| path == probe.path() || path.starts_with(&format!("{}/", probe.path())));
    let known = matches!(path, "/health" | "/metrics") || probe.is_some();
    let known = known || (endpoints == Endpoints::Client && path == "/version");
    if !known {
        return Answer::not_found();
    }
    if method != "GET" {
        return Answer::method_not_allowed();
    }
    match (path, probe) {
        ("/health", _) => {
            let excluded: Vec<&str> = query.values("exclude").collect();
            let serializable = query.value("serializable") == Some("true");
            let health = health::health(context, &excluded, serializable).await;
            if health.healthy {
                Answer::ok(TEXT, health.to_json())
            } else {
                Answer::error(503, &health.to_json())
            }
        }
        ("/metrics", _) => Answer::ok(metrics::CONTENT_TYPE, metrics::render(context, detail)),
        ("/version", _) => Answer::ok(
            "application/json",
            format!(
                "{{\"etcdserver\":{},\"etcdcluster\":{}}}",
                json_string(SERVER_VERSION),
                json_string(CLUSTER_VERSION)
            ),
        ),
        (_, Some(probe)) => answer_probe(context, probe, path, &query).await,
        _ => Answer::not_found(),
    }
}

/// `/livez`, `/readyz` (every check but those in `exclude`) or `/readyz/<check>` (one).
async fn answer_probe(context: &Context, probe: Probe, path: &str, query: &Query) -> Answer {
    let checks: Vec<&str> = match path.strip_prefix(probe.path()) {
        Some("") => probe
            .checks()
            .iter()
            .copied()
            .filter(|check| !query.values("exclude").any(|excluded| excluded == *check))
            .collect(),
        Some(sub) => match probe
            .checks()
            .iter()
            .find(|check| sub.strip_prefix('/') == Some(**check))
        {
            Some(check) => vec![*check],
            None => return Answer::not_found(),
        },
        None => return Answer::not_found(),
    };
    let result = health::run_checks(context, &checks).await;
    if !result.passed {
        // `http.Error` adds a newline after the report's own.
        return Answer::error(503, &result.report);
    }
    let mut body = String::new();
    if query.has("verbose") {
        body.push_str(&result.report);
    }
    body.push_str("ok\n");
    let mut answer = Answer::ok(TEXT, body);
    answer
        .headers
        .push(("x-content-type-options", "nosniff".to_string()));
    answer
}

/// A decoded query string (`a=1&b&a=2`).
struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    fn parse(query: &str) -> Query {
        let pairs = query
            .split('&')
            .filter(|pair| !pair.is_empty())
            .map(|pair| {
                let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
                (percent_decode(name), percent_decode(value))
            })
            .collect();
        Query { pairs }
    }

    fn values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.pairs
            .iter()
            .filter(move |(key, value)| key == name && !value.is_empty())
            .map(|(_, value)| value.as_str())
    }

    /// The first value of `name`, as Go's `Query().Get` (empty when given without one).
    fn value(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    fn has(&self, name: &str) -> bool {
        self.pairs.iter().any(|(key, _)| key == name)
    }
}

/// `%XX` and `+` decoding of a query component; a malformed escape is kept as written.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut position = 0;
    while position < bytes.len() {
        let byte = bytes[position];
        let escaped = (byte == b'%')
            .then(|| text.get(position + 1..position + 3))
            .flatten()
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match (byte, escaped) {
            (_, Some(value)) => {
                decoded.push(value);
                position += 3;
            }
            (b'+', None) => {
                decoded.push(b' ');
                position += 1;
            }
            (other, None) => {
                decoded.push(other);
                position += 1;
            }
        }
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_decode_repeated_and_bare_names() {
        let query = Query::parse("exclude=serializable_read&verbose&exclude=non%5Flearner&a=b+c");
        assert_eq!(
            query.values("exclude").collect::<Vec<_>>(),
            ["serializable_read", "non_learner"]
        );
        assert!(query.has("verbose"));
        assert_eq!(query.value("a"), Some("b c"));
        assert_eq!(query.value("serializable"), None);
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
    }

    #[test]
    fn go_errors_end_with_a_newline_and_say_nosniff() {
        let answer = Answer::method_not_allowed();
        assert_eq!(answer.status, 405);
        assert_eq!(answer.body, b"Method Not Allowed\n");
        assert!(answer.headers.contains(&("allow", "GET".to_string())));
        assert!(answer
            .headers
            .contains(&("x-content-type-options", "nosniff".to_string())));
    }
}

/// etcd's access controller for HTTP on client URLs: `--cors` (origins sent
/// `Access-Control-Allow-*` headers) and `--host-whitelist` (Host names a plain-HTTP request
/// may carry, against DNS rebinding). An empty list or `*` allows all, as etcd's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessControl {
    cors: Vec<String>,
    hosts: Vec<String>,
}

impl AccessControl {
    /// From the comma-separated flag values.
    pub fn from_flags(cors: &str, host_whitelist: &str) -> AccessControl {
        let list = |value: &str| {
            value
                .split(',')
                .map(str::trim)
                .filter(|item| !item.is_empty())
                .map(str::to_string)
                .collect::<Vec<_>>()
        };
        AccessControl {
            cors: list(cors),
            hosts: list(host_whitelist),
        }
    }

    fn allows(list: &[String], value: &str) -> bool {
        list.is_empty() || list.iter().any(|item| item == "*" || item == value)
    }

    /// The CORS headers for a request from `origin`: `*` when every origin is allowed, the
    /// origin itself when it is listed, none otherwise.
    pub fn cors_headers(&self, origin: Option<&str>) -> Vec<(&'static str, String)> {
        let allowed = if Self::allows(&self.cors, "*") {
            "*"
        } else {
            match origin {
                Some(origin) if Self::allows(&self.cors, origin) => origin,
                _ => return Vec::new(),
            }
        };
        vec![
            (
                "access-control-allow-methods",
                "POST, GET, OPTIONS, PUT, DELETE".to_string(),
            ),
            ("access-control-allow-origin", allowed.to_string()),
            (
                "access-control-allow-headers",
                "accept, content-type, authorization".to_string(),
            ),
        ]
    }

    /// None when a plain-HTTP request with this `Host` header may proceed; else etcd's 421.
    pub fn refuse_host(&self, host_header: &str) -> Option<Answer> {
        let host = match host_header.rsplit_once(':') {
            Some((host, port)) if port.bytes().all(|byte| byte.is_ascii_digit()) => host,
            _ => host_header,
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if Self::allows(&self.hosts, host) {
            return None;
        }
        tracing::warn!(
            host,
            "rejecting HTTP request to prevent DNS rebinding attacks"
        );
        Some(Answer::error(
            421,
            &format!(
                "\netcd received your request, but the Host header was unrecognized.\n\n\
                 To fix this, choose one of the following options:\n\
                 - Enable TLS, then any HTTPS request will be allowed.\n\
                 - Add the hostname you want to use to the whitelist in settings.\n  \
                 - e.g. etcd --host-whitelist {host:?}\n\n\
                 This requirement has been added to help prevent \"DNS Rebinding\" attacks (CVE-2018-5702).\n"
            ),
        ))
    }
}

#[cfg(test)]
mod access_tests {
    use super::*;

    #[test]
    fn cors_and_host_whitelist_follow_etcds_rules() {
        let open = AccessControl::from_flags("*", "*");
        assert_eq!(open.cors_headers(None)[1].1, "*");
        assert!(open.refuse_host("evil.example:2379").is_none());
        let strict = AccessControl::from_flags("https://app.example", "cairn.example,127.0.0.1");
        assert_eq!(
            strict.cors_headers(Some("https://app.example"))[1].1,
            "https://app.example"
        );
        assert!(strict
            .cors_headers(Some("https://other.example"))
            .is_empty());
        assert!(strict.refuse_host("cairn.example:2379").is_none());
        assert!(strict.refuse_host("127.0.0.1").is_none());
        let refused = strict.refuse_host("rebind.example:2379").unwrap();
        assert_eq!(refused.status, 421);
        assert!(String::from_utf8(refused.body)
            .unwrap()
            .contains("etcd --host-whitelist \"rebind.example\""));
        assert!(AccessControl::from_flags("", "")
            .refuse_host("any")
            .is_none());
    }
}
