//! etcd's JSON gateway (`/v3/...`), as etcd's grpc-gateway maps it: every route is a POST
//! whose body is the request message in protobuf's JSON mapping (proto field names, bytes
//! as base64, 64-bit integers as strings, enums by name, an empty body being the empty
//! message), answered with the response message in the same mapping, zero fields left out.
//! A request goes to the same service code gRPC calls, so admission, limits and errors are
//! the same; an error is `{"error":..,"message":..,"code":..}` with grpc-gateway's HTTP
//! status for the code.

use super::http::Answer;
use super::pb::etcdserverpb as pb;
use super::pb::etcdserverpb::{
    auth_server::Auth, cluster_server::Cluster, kv_server::Kv, lease_server::Lease,
    maintenance_server::Maintenance,
};
use super::pb::v3electionpb::election_server::Election;
use super::pb::v3lockpb::lock_server::Lock;
use super::Inbound;
use super::{
    AuthService, ClusterService, Context, ElectionService, KvService, LeaseService, LockService,
    MaintenanceService,
};
use bytes::Bytes;
use futures::StreamExt;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::pin::Pin;
use tokio_stream::Stream;
use tonic::{Code, Status};

/// The first path segment every gateway route has.
pub const PREFIX: &str = "/v3/";

const JSON: &str = "application/json";

/// A gateway request: the route's path, the client's `Authorization` header (forwarded as
/// gRPC metadata, as grpc-gateway does), and the body.
pub struct GatewayRequest<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub authorization: Option<&'a str>,
    pub body: &'a [u8],
}

/// The answer to a gateway route (404 for a path that is none, 405 for a method other than
/// POST, as grpc-gateway's mux answers).
pub async fn answer(context: &Context, request: &GatewayRequest<'_>) -> Answer {
    macro_rules! call {
        ($service:ident, $method:ident) => {
            unary(request, |message| async move {
                $service::new(context.clone())
                    .$method(message)
                    .await
                    .map(tonic::Response::into_inner)
            })
            .await
        };
    }
    if !is_route(request.path) {
        return Answer::error(404, "Not Found");
    }
    if request.method != "POST" {
        return Answer::error(405, "Method Not Allowed");
    }
    match request.path {
        "/v3/kv/range" => call!(KvService, range),
        "/v3/kv/put" => call!(KvService, put),
        "/v3/kv/deleterange" => call!(KvService, delete_range),
        "/v3/kv/txn" => call!(KvService, txn),
        "/v3/kv/compaction" => call!(KvService, compact),
        "/v3/lease/grant" => call!(LeaseService, lease_grant),
        "/v3/lease/revoke" | "/v3/kv/lease/revoke" => call!(LeaseService, lease_revoke),
        "/v3/lease/timetolive" | "/v3/kv/lease/timetolive" => {
            call!(LeaseService, lease_time_to_live)
        }
        "/v3/lease/leases" | "/v3/kv/lease/leases" => call!(LeaseService, lease_leases),
        "/v3/cluster/member/add" => call!(ClusterService, member_add),
        "/v3/cluster/member/remove" => call!(ClusterService, member_remove),
        "/v3/cluster/member/update" => call!(ClusterService, member_update),
        "/v3/cluster/member/list" => call!(ClusterService, member_list),
        "/v3/cluster/member/promote" => call!(ClusterService, member_promote),
        "/v3/maintenance/alarm" => call!(MaintenanceService, alarm),
        "/v3/maintenance/status" => call!(MaintenanceService, status),
        "/v3/maintenance/defragment" => call!(MaintenanceService, defragment),
        "/v3/maintenance/hash" => call!(MaintenanceService, hash),
        "/v3/maintenance/hashkv" => call!(MaintenanceService, hash_kv),
        "/v3/maintenance/transfer-leadership" => call!(MaintenanceService, move_leader),
        "/v3/maintenance/downgrade" => call!(MaintenanceService, downgrade),
        "/v3/auth/enable" => call!(AuthService, auth_enable),
        "/v3/auth/disable" => call!(AuthService, auth_disable),
        "/v3/auth/status" => call!(AuthService, auth_status),
        "/v3/auth/authenticate" => call!(AuthService, authenticate),
        "/v3/auth/user/add" => call!(AuthService, user_add),
        "/v3/auth/user/get" => call!(AuthService, user_get),
        "/v3/auth/user/list" => call!(AuthService, user_list),
        "/v3/auth/user/delete" => call!(AuthService, user_delete),
        "/v3/auth/user/changepw" => call!(AuthService, user_change_password),
        "/v3/auth/user/grant" => call!(AuthService, user_grant_role),
        "/v3/auth/user/revoke" => call!(AuthService, user_revoke_role),
        "/v3/auth/role/add" => call!(AuthService, role_add),
        "/v3/auth/role/get" => call!(AuthService, role_get),
        "/v3/auth/role/list" => call!(AuthService, role_list),
        "/v3/auth/role/delete" => call!(AuthService, role_delete),
        "/v3/auth/role/grant" => call!(AuthService, role_grant_permission),
        "/v3/auth/role/revoke" => call!(AuthService, role_revoke_permission),
        "/v3/lock/lock" => call!(LockService, lock),
        "/v3/lock/unlock" => call!(LockService, unlock),
        "/v3/election/campaign" => call!(ElectionService, campaign),
        "/v3/election/proclaim" => call!(ElectionService, proclaim),
        "/v3/election/leader" => call!(ElectionService, leader),
        "/v3/election/resign" => call!(ElectionService, resign),
        _ => error(&Status::internal(format!(
            "cairn: {} is a streaming route, served by `stream`",
            request.path
        ))),
    }
}

/// Every route etcd's gateway serves, unary and streaming.
pub fn is_route(path: &str) -> bool {
    is_streaming(path) || UNARY.contains(&path)
}

/// The routes whose answer is a stream of JSON lines.
pub fn is_streaming(path: &str) -> bool {
    const STREAMING: [&str; 4] = [
        "/v3/watch",
        "/v3/lease/keepalive",
        "/v3/election/observe",
        "/v3/maintenance/snapshot",
    ];
    STREAMING.contains(&path)
}

/// The body of a streaming request as it arrives.
pub type BodyChunks = Pin<Box<dyn Stream<Item = Result<Bytes, Status>> + Send + 'static>>;
/// A streaming answer: one JSON object per line, `{"result":..}` for each response and
/// `{"error":{"code":..,"message":..}}` last when the stream fails.
pub type Lines = Pin<Box<dyn Stream<Item = Bytes> + Send + 'static>>;

/// Starts a streaming route (a POST to a path `is_streaming` accepts). The body of a
/// client stream is a sequence of JSON requests; as grpc-gateway, a first request that is
/// not JSON is answered as an error, a later one ends the client's side.
pub async fn stream(
    context: &Context,
    path: &str,
    authorization: Option<&str>,
    chunks: BodyChunks,
) -> Result<Lines, Answer> {
    let bytes_max = context.limits.request_bytes_max + super::GRPC_OVERHEAD_BYTES;
    let first_error = |status: Status| error(&Status::unknown(status.message().to_string()));
    match path {
        "/v3/watch" => {
            let inbound = messages::<pb::WatchRequest>(chunks, bytes_max)
                .await
                .map_err(first_error)?;
            Ok(lines(super::WatchService::new(context.clone()).open(
                inbound,
                false,
                super::authorize::Credentials {
                    token: authorization.map(str::to_string),
                    common_name: None,
                },
            )))
        }
        "/v3/lease/keepalive" => {
            let inbound = messages::<pb::LeaseKeepAliveRequest>(chunks, bytes_max)
                .await
                .map_err(first_error)?;
            let service = LeaseService::new(context.clone());
            Ok(lines(service.keep_alive_stream(inbound, false)))
        }
        "/v3/election/observe" => {
            let request =
                only_message::<super::pb::v3electionpb::LeaderRequest>(chunks, bytes_max).await?;
            let service = ElectionService::new(context.clone());
            Ok(server_stream(
                service.observe(with_token(request, authorization)).await,
            ))
        }
        _ => {
            let request = only_message::<pb::SnapshotRequest>(chunks, bytes_max).await?;
            let service = MaintenanceService::new(context.clone());
            Ok(server_stream(
                service.snapshot(with_token(request, authorization)).await,
            ))
        }
    }
}

/// The one request of a server-streaming route.
async fn only_message<Req: DeserializeOwned + Send + 'static>(
    chunks: BodyChunks,
    bytes_max: usize,
) -> Result<Req, Answer> {
    let mut inbound = messages::<Req>(chunks, bytes_max)
        .await
        .map_err(|status| error(&status))?;
    match super::next_message(&mut inbound).await {
        Ok(Some(request)) => Ok(request),
        Ok(None) => decode(b"").map_err(|status| error(&status)),
        Err(status) => Err(error(&status)),
    }
}

fn server_stream<S, M>(started: Result<tonic::Response<S>, Status>) -> Lines
where
    S: Stream<Item = Result<M, Status>> + Send + 'static,
    M: Serialize,
{
    match started {
        Ok(response) => lines(response.into_inner()),
        Err(status) => Box::pin(futures::stream::iter([error_line(&status)])),
    }
}

/// The responses as JSON lines, ending after the first error.
fn lines<M: Serialize>(responses: impl Stream<Item = Result<M, Status>> + Send + 'static) -> Lines {
    Box::pin(responses.scan(false, |failed, response| {
        if *failed {
            return std::future::ready(None);
        }
        let line = match response {
            Ok(message) => match serde_json::to_vec(&message) {
                Ok(json) => {
                    let mut line = Vec::with_capacity(json.len() + 12);
                    line.extend_from_slice(b"{\"result\":");
                    line.extend_from_slice(&json);
                    line.extend_from_slice(b"}\n");
                    Bytes::from(line)
                }
                Err(encode_error) => {
                    *failed = true;
                    error_line(&Status::internal(format!(
                        "cairn: could not encode the response as JSON: {encode_error}"
                    )))
                }
            },
            Err(status) => {
                *failed = true;
                error_line(&status)
            }
        };
        std::future::ready(Some(line))
    }))
}

/// grpc-gateway's error chunk: the status as `google.rpc.Status` in JSON.
fn error_line(status: &Status) -> Bytes {
    let chunk = serde_json::json!({
        "error": { "code": status.code() as i32, "message": status.message() }
    });
    let mut line = serde_json::to_vec(&chunk).expect("a status encodes as JSON");
    line.push(b'\n');
    Bytes::from(line)
}

/// The requests in a body of concatenated JSON objects, decoded as they arrive. The first is
/// decoded before this returns (its error is the caller's); a later one that is not JSON,
/// or a body over `bytes_max` bytes not yet consumed, ends the stream of requests.
async fn messages<Req: DeserializeOwned + Send + 'static>(
    chunks: BodyChunks,
    bytes_max: usize,
) -> Result<Inbound<Req>, Status> {
    let mut decoder = JsonMessages {
        chunks,
        buffer: Vec::new(),
        ended: false,
        bytes_max,
    };
    let first = decoder.next_message::<Req>().await?;
    let rest = futures::stream::unfold(decoder, |mut decoder| async move {
        match decoder.next_message::<Req>().await {
            Ok(Some(request)) => Some((Ok(request), decoder)),
            Ok(None) => None,
            Err(status) => {
                tracing::debug!(%status, "the JSON gateway ends a client stream");
                None
            }
        }
    });
    Ok(Box::pin(futures::stream::iter(first.map(Ok)).chain(rest)))
}

struct JsonMessages {
    chunks: BodyChunks,
    buffer: Vec<u8>,
    ended: bool,
    bytes_max: usize,
}

impl JsonMessages {
    async fn next_message<Req: DeserializeOwned>(&mut self) -> Result<Option<Req>, Status> {
        loop {
            let mut decoded = serde_json::Deserializer::from_slice(&self.buffer).into_iter::<Req>();
            match decoded.next() {
                Some(Ok(message)) => {
                    let used = decoded.byte_offset();
                    self.buffer.drain(..used);
                    return Ok(Some(message));
                }
                Some(Err(decode_error)) if !decode_error.is_eof() || self.ended => {
                    return Err(Status::invalid_argument(decode_error.to_string()));
                }
                _ if self.ended => return Ok(None),
                _ => {}
            }
            match self.chunks.next().await {
                Some(Ok(chunk)) => {
                    if self.buffer.len() + chunk.len() > self.bytes_max {
                        return Err(Status::resource_exhausted(format!(
                            "grpc: received message larger than max (more than {} bytes)",
                            self.bytes_max
                        )));
                    }
                    self.buffer.extend_from_slice(&chunk);
                }
                Some(Err(status)) => return Err(status),
                None => self.ended = true,
            }
        }
    }
}

const UNARY: [&str; 47] = [
    "/v3/kv/range",
    "/v3/kv/put",
    "/v3/kv/deleterange",
    "/v3/kv/txn",
    "/v3/kv/compaction",
    "/v3/lease/grant",
    "/v3/lease/revoke",
    "/v3/kv/lease/revoke",
    "/v3/lease/timetolive",
    "/v3/kv/lease/timetolive",
    "/v3/lease/leases",
    "/v3/kv/lease/leases",
    "/v3/cluster/member/add",
    "/v3/cluster/member/remove",
    "/v3/cluster/member/update",
    "/v3/cluster/member/list",
    "/v3/cluster/member/promote",
    "/v3/maintenance/alarm",
    "/v3/maintenance/status",
    "/v3/maintenance/defragment",
    "/v3/maintenance/hash",
    "/v3/maintenance/hashkv",
    "/v3/maintenance/transfer-leadership",
    "/v3/maintenance/downgrade",
    "/v3/auth/enable",
    "/v3/auth/disable",
    "/v3/auth/status",
    "/v3/auth/authenticate",
    "/v3/auth/user/add",
    "/v3/auth/user/get",
    "/v3/auth/user/list",
    "/v3/auth/user/delete",
    "/v3/auth/user/changepw",
    "/v3/auth/user/grant",
    "/v3/auth/user/revoke",
    "/v3/auth/role/add",
    "/v3/auth/role/get",
    "/v3/auth/role/list",
    "/v3/auth/role/delete",
    "/v3/auth/role/grant",
    "/v3/auth/role/revoke",
    "/v3/lock/lock",
    "/v3/lock/unlock",
    "/v3/election/campaign",
    "/v3/election/proclaim",
    "/v3/election/leader",
    "/v3/election/resign",
];

/// Decodes the body, calls the service, encodes its answer.
async fn unary<Req, Resp, F, Fut>(request: &GatewayRequest<'_>, call: F) -> Answer
where
    Req: DeserializeOwned,
    Resp: Serialize,
    F: FnOnce(tonic::Request<Req>) -> Fut,
    Fut: std::future::Future<Output = Result<Resp, Status>>,
{
    let message = match decode::<Req>(request.body) {
        Ok(message) => message,
        Err(status) => return error(&status),
    };
    match call(with_token(message, request.authorization)).await {
        Ok(response) => match serde_json::to_vec(&response) {
            Ok(body) => Answer::with_body(200, JSON, body),
            Err(encode_error) => error(&Status::internal(format!(
                "cairn: could not encode the response as JSON: {encode_error}"
            ))),
        },
        Err(status) => error(&status),
    }
}

/// `message` as a gRPC request carrying the `Authorization` header's token, as
/// grpc-gateway passes it on as the `authorization` metadata.
fn with_token<T>(message: T, authorization: Option<&str>) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let Some(value) = authorization.and_then(|token| token.parse().ok()) {
        request.metadata_mut().insert("authorization", value);
    }
    request
}

/// The request message from the body: an empty body is the empty message (grpc-gateway
/// accepts EOF), anything else must be the message's JSON.
pub fn decode<Req: DeserializeOwned>(body: &[u8]) -> Result<Req, Status> {
    let body = body.trim_ascii();
    let body = if body.is_empty() {
        b"{}".as_slice()
    } else {
        body
    };
    serde_json::from_slice(body)
        .map_err(|decode_error| Status::invalid_argument(decode_error.to_string()))
}

/// grpc-gateway's error body and HTTP status for a gRPC status.
pub fn error(status: &Status) -> Answer {
    Answer::with_body(http_status(status.code()), JSON, error_body(status))
}

/// `{"error":..,"message":..,"code":..}`, as etcd's gateway writes it.
pub fn error_body(status: &Status) -> Vec<u8> {
    #[derive(Serialize)]
    struct ErrorBody<'a> {
        error: &'a str,
        message: &'a str,
        code: i32,
    }
    serde_json::to_vec(&ErrorBody {
        error: status.message(),
        message: status.message(),
        code: status.code() as i32,
    })
    .expect("strings and a number encode as JSON")
}

/// grpc-gateway's `HTTPStatusFromCode`.
pub fn http_status(code: Code) -> u16 {
    match code {
        Code::Ok => 200,
        Code::Cancelled => 408,
        Code::Unknown | Code::Internal | Code::DataLoss => 500,
        Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => 400,
        Code::DeadlineExceeded => 504,
        Code::NotFound => 404,
        Code::AlreadyExists | Code::Aborted => 409,
        Code::PermissionDenied => 403,
        Code::Unauthenticated => 401,
        Code::ResourceExhausted => 429,
        Code::Unimplemented => 501,
        Code::Unavailable => 503,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_use_protobuf_json_with_proto_field_names() {
        let request: pb::RangeRequest =
            decode(br#"{"key":"YQ==","range_end":"Yg==","limit":"2","sort_order":"DESCEND"}"#)
                .unwrap();
        assert_eq!(request.key.as_ref(), b"a");
        assert_eq!(request.range_end.as_ref(), b"b");
        assert_eq!(request.limit, 2);
        assert_eq!(
            request.sort_order,
            pb::range_request::SortOrder::Descend as i32
        );
        // Numbers are accepted for 64-bit fields too, and camelCase names, as jsonpb does.
        let request: pb::RangeRequest = decode(br#"{"rangeEnd":"Yg==","limit":3}"#).unwrap();
        assert_eq!((request.range_end.as_ref(), request.limit), (&b"b"[..], 3));
        let empty: pb::RangeRequest = decode(b"  ").unwrap();
        assert_eq!(empty, pb::RangeRequest::default());

        let response = pb::PutResponse {
            header: Some(pb::ResponseHeader {
                cluster_id: 1,
                member_id: 0,
                revision: 7,
                raft_term: 2,
            }),
            prev_kv: None,
        };
        assert_eq!(
            serde_json::to_string(&response).unwrap(),
            r#"{"header":{"cluster_id":"1","revision":"7","raft_term":"2"}}"#
        );
    }

    #[test]
    fn bad_bodies_and_errors_have_grpc_gateway_form() {
        let status = decode::<pb::PutRequest>(b"{not json").unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
        let answer = error(&Status::new(
            Code::InvalidArgument,
            "etcdserver: key is not provided",
        ));
        assert_eq!(answer.status, 400);
        assert_eq!(
            String::from_utf8(answer.body).unwrap(),
            r#"{"error":"etcdserver: key is not provided","message":"etcdserver: key is not provided","code":3}"#
        );
        assert_eq!(http_status(Code::Unavailable), 503);
        assert_eq!(http_status(Code::ResourceExhausted), 429);
    }
}
