//! HTTP beside gRPC on every client URL, as etcd serves both on one port: a request whose
//! content type is not gRPC's, over HTTP/1.1 or HTTP/2, is answered by `api::http`; a gRPC
//! request is counted (`grpc_server_started_total`, `grpc_server_handled_total` by code,
//! and with `--metrics extensive` `grpc_server_handling_seconds`) and passed to the
//! services. The same layer serves `--listen-metrics-urls`, where there are no services.

use crate::api::gateway;
use crate::api::http::{answer, Answer, Endpoints};
use crate::api::metrics::Detail;
use crate::api::Context;
use crate::base::metrics::Metrics;
use crate::io::clock;
use bytes::Bytes;
use futures::future::BoxFuture;
use http::{HeaderMap, Request, Response};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use tonic::body::Body;

/// Wraps the gRPC services of one listener.
#[derive(Clone)]
pub struct HttpLayer {
    pub context: Context,
    pub endpoints: Endpoints,
    pub options: super::listeners::HttpOptions,
    /// Whether the listener is TLS (the Host check applies to plain HTTP only).
    pub secure: bool,
}

impl<S> tower_layer::Layer<S> for HttpLayer {
    type Service = Routed<S>;

    fn layer(&self, grpc: S) -> Routed<S> {
        Routed {
            grpc,
            layer: self.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Routed<S> {
    grpc: S,
    layer: HttpLayer,
}

fn is_grpc<B>(request: &Request<B>) -> bool {
    request
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/grpc"))
}

impl<S> tower_service::Service<Request<Body>> for Routed<S>
where
    S: tower_service::Service<Request<Body>, Response = Response<Body>> + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Response<Body>, S::Error>>;

    fn poll_ready(&mut self, context: &mut TaskContext<'_>) -> Poll<Result<(), S::Error>> {
        self.grpc.poll_ready(context)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        if is_grpc(&request) {
            let call = GrpcCall::start(
                self.layer.context.node.metrics().clone(),
                request.uri().path(),
                self.layer.options.detail,
            );
            let response = self.grpc.call(request);
            return Box::pin(async move {
                let response = super::grpc_status::as_grpc_go(response.await?);
                Ok(match call {
                    Some(call) => call.follow(response),
                    None => response,
                })
            });
        }
        let layer = self.layer.clone();
        Box::pin(async move { Ok(serve_http(layer, request).await) })
    }
}

/// etcd's access controller around the HTTP answers of a client URL: `/v3beta/` served as
/// `/v3/`, the Host header checked against `--host-whitelist` on plain HTTP, CORS headers
/// per `--cors`, and OPTIONS (a CORS preflight) answered with 200.
async fn serve_http(layer: HttpLayer, mut request: Request<Body>) -> Response<Body> {
    let Some(access) = layer.options.access.clone() else {
        return route(&layer, request).await;
    };
    if let Some(rest) = request.uri().path().strip_prefix("/v3beta/") {
        let path_and_query = match request.uri().query() {
            Some(query) => format!("/v3/{rest}?{query}"),
            None => format!("/v3/{rest}"),
        };
        let mut parts = request.uri().clone().into_parts();
        if let Ok(rewritten) = path_and_query.parse() {
            parts.path_and_query = Some(rewritten);
            if let Ok(uri) = http::Uri::from_parts(parts) {
                *request.uri_mut() = uri;
            }
        }
    }
    if !layer.secure {
        let host = request
            .headers()
            .get(http::header::HOST)
            .and_then(|value| value.to_str().ok())
            .or_else(|| {
                request
                    .uri()
                    .authority()
                    .map(|authority| authority.as_str())
            })
            .unwrap_or("");
        if let Some(refused) = access.refuse_host(host) {
            return into_response(refused);
        }
    }
    let origin = request
        .headers()
        .get(http::header::ORIGIN)
        .and_then(|value| value.to_str().ok());
    let cors = access.cors_headers(origin);
    let mut response = if request.method() == http::Method::OPTIONS {
        into_response(Answer::with_body(
            200,
            "text/plain; charset=utf-8",
            Vec::new(),
        ))
    } else {
        route(&layer, request).await
    };
    for (name, value) in cors {
        if let Ok(value) = value.parse() {
            response.headers_mut().append(name, value);
        }
    }
    response
}

/// The gateway, or etcd's HTTP endpoints.
async fn route(layer: &HttpLayer, request: Request<Body>) -> Response<Body> {
    let path = request.uri().path();
    if layer.serves_gateway(path)
        && gateway::is_streaming(path)
        && request.method() == http::Method::POST
    {
        return gateway_stream(&layer.context, request).await;
    }
    let answer = if layer.serves_gateway(path) {
        gateway_answer(&layer.context, request).await
    } else {
        let query = request.uri().query().unwrap_or("");
        let method = request.method().as_str();
        let detail = layer.options.detail;
        answer(&layer.context, layer.endpoints, detail, method, path, query).await
    };
    into_response(answer)
}

impl HttpLayer {
    fn serves_gateway(&self, path: &str) -> bool {
        self.options.gateway
            && self.endpoints == Endpoints::Client
            && path.starts_with(gateway::PREFIX)
    }
}

/// A streaming gateway route: requests decoded from the body as it arrives, responses
/// written as JSON lines as they come.
async fn gateway_stream(context: &Context, request: Request<Body>) -> Response<Body> {
    use futures::StreamExt;
    let path = request.uri().path().to_string();
    let authorization = request
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .map(str::to_string);
    let chunks = http_body_util::BodyDataStream::new(request.into_body());
    let chunks = Box::pin(chunks.map(|chunk| {
        chunk.map_err(|read_error| {
            tonic::Status::cancelled(format!("cairn: reading the body: {read_error}"))
        })
    }));
    match gateway::stream(context, &path, authorization.as_deref(), chunks).await {
        Ok(lines) => {
            let frames =
                lines.map(|line| Ok::<_, std::convert::Infallible>(http_body::Frame::data(line)));
            Response::builder()
                .status(200)
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(Body::new(http_body_util::StreamBody::new(frames)))
                .expect("a fixed status and header are valid")
        }
        Err(answer) => into_response(answer),
    }
}

fn into_response(answer: Answer) -> Response<Body> {
    let mut response = Response::builder().status(answer.status);
    for (name, value) in answer.headers {
        response = response.header(name, value);
    }
    response
        .body(Body::new(http_body_util::Full::new(Bytes::from(
            answer.body,
        ))))
        .expect("status codes and header names here are valid")
}

/// Reads the body (at most what a gRPC request may carry) and answers the gateway route.
async fn gateway_answer(context: &Context, request: Request<Body>) -> Answer {
    use http_body_util::BodyExt;
    let (parts, body) = request.into_parts();
    let bytes_max = context.limits.request_bytes_max + crate::api::GRPC_OVERHEAD_BYTES;
    let body = match http_body_util::Limited::new(body, bytes_max)
        .collect()
        .await
    {
        Ok(collected) => collected.to_bytes(),
        Err(read_error) => {
            // grpc-go's words for a message over the limit, as etcd's gateway relays them.
            let status = if read_error.is::<http_body_util::LengthLimitError>() {
                tonic::Status::resource_exhausted(format!(
                    "grpc: received message larger than max (more than {bytes_max} bytes)"
                ))
            } else {
                tonic::Status::invalid_argument(format!("cairn: reading the body: {read_error}"))
            };
            return gateway::error(&status);
        }
    };
    let authorization = parts
        .headers
        .get(http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok());
    let request = gateway::GatewayRequest {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        authorization,
        body: &body,
    };
    gateway::answer(context, &request).await
}

/// The services whose calls are counted (others are answered Unimplemented by tonic and
/// not counted, so a client inventing names cannot add label sets).
const SERVICES: [&str; 9] = [
    "etcdserverpb.KV",
    "etcdserverpb.Watch",
    "etcdserverpb.Lease",
    "etcdserverpb.Cluster",
    "etcdserverpb.Maintenance",
    "etcdserverpb.Auth",
    "v3lockpb.Lock",
    "v3electionpb.Election",
    "grpc.health.v1.Health",
];

/// go-grpc-prometheus's `grpc_type` of a method.
fn call_kind(service: &str, method: &str) -> &'static str {
    match (service, method) {
        ("etcdserverpb.Watch", "Watch") | ("etcdserverpb.Lease", "LeaseKeepAlive") => "bidi_stream",
        ("etcdserverpb.Maintenance", "Snapshot")
        | ("v3electionpb.Election", "Observe")
        | ("grpc.health.v1.Health", "Watch") => "server_stream",
        _ => "unary",
    }
}

/// gRPC's code names as Go spells them (`codes.Code.String()`).
fn code_name(code: &str) -> &'static str {
    const NAMES: [&str; 17] = [
        "OK",
        "Canceled",
        "Unknown",
        "InvalidArgument",
        "DeadlineExceeded",
        "NotFound",
        "AlreadyExists",
        "PermissionDenied",
        "ResourceExhausted",
        "FailedPrecondition",
        "Aborted",
        "OutOfRange",
        "Unimplemented",
        "Internal",
        "Unavailable",
        "DataLoss",
        "Unauthenticated",
    ];
    code.parse::<usize>()
        .ok()
        .and_then(|number| NAMES.get(number))
        .copied()
        .unwrap_or("Unknown")
}

/// One gRPC call being counted, from its start until its status is known.
struct GrpcCall {
    metrics: Arc<Metrics>,
    labels: [String; 3],
    started: clock::Instant,
    detail: Detail,
}

impl GrpcCall {
    fn start(metrics: Arc<Metrics>, path: &str, detail: Detail) -> Option<GrpcCall> {
        let (service, method) = path.strip_prefix('/')?.split_once('/')?;
        if !SERVICES.contains(&service) || method.is_empty() || method.contains('/') {
            return None;
        }
        let labels = [
            call_kind(service, method).to_string(),
            service.to_string(),
            method.to_string(),
        ];
        metrics
            .grpc
            .started
            .with(&label_refs(&labels), |counter| counter.inc());
        Some(GrpcCall {
            metrics,
            labels,
            started: clock::now(),
            detail,
        })
    }

    /// Counts the call as handled once its status arrives: in the headers of a
    /// trailers-only answer, or in the trailers at the end of the body.
    fn follow(self, response: Response<Body>) -> Response<Body> {
        if let Some(code) = grpc_status(response.headers()) {
            self.finish(code);
            return response;
        }
        response.map(|body| {
            Body::new(CountedBody {
                inner: body,
                call: Some(self),
            })
        })
    }

    fn finish(self, code: &str) {
        let labels = label_refs(&self.labels);
        let [kind, service, method] = labels;
        self.metrics
            .grpc
            .handled
            .with(&[kind, service, method, code], |counter| counter.inc());
        if self.detail == Detail::Extensive {
            let seconds = self.started.elapsed().as_secs_f64();
            self.metrics
                .grpc
                .handling_seconds
                .with(&labels, |histogram| histogram.observe(seconds));
        }
    }
}

fn label_refs(labels: &[String; 3]) -> [&str; 3] {
    [&labels[0], &labels[1], &labels[2]]
}

fn grpc_status(headers: &HeaderMap) -> Option<&'static str> {
    let value = headers.get("grpc-status")?.to_str().ok()?;
    Some(code_name(value))
}

/// A gRPC response body that counts its call when its trailers pass, or as `Canceled` when
/// it is dropped unfinished (the client went away).
struct CountedBody {
    inner: Body,
    call: Option<GrpcCall>,
}

impl http_body::Body for CountedBody {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        context: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, tonic::Status>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(context);
        let code = match &polled {
            Poll::Ready(Some(Ok(frame))) => frame.trailers_ref().map(grpc_status),
            Poll::Ready(Some(Err(_))) => Some(Some("Unknown")),
            Poll::Ready(None) => Some(None),
            Poll::Pending => None,
        };
        if let Some(code) = code {
            if let Some(call) = self.call.take() {
                call.finish(code.unwrap_or("Unknown"));
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for CountedBody {
    fn drop(&mut self) {
        if let Some(call) = self.call.take() {
            call.finish("Canceled");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_are_labeled_as_go_grpc_prometheus_labels_them() {
        let metrics = Arc::new(Metrics::default());
        let call =
            GrpcCall::start(metrics.clone(), "/etcdserverpb.Watch/Watch", Detail::Basic).unwrap();
        call.finish(code_name("0"));
        assert!(GrpcCall::start(metrics.clone(), "/made.Up/Call", Detail::Basic).is_none());
        assert_eq!(
            metrics.grpc.handled.read(|counter| counter.get()),
            vec![(
                vec![
                    "bidi_stream".to_string(),
                    "etcdserverpb.Watch".to_string(),
                    "Watch".to_string(),
                    "OK".to_string()
                ],
                1
            )]
        );
        assert_eq!(code_name("14"), "Unavailable");
        assert_eq!(code_name("99"), "Unknown");
    }
}
