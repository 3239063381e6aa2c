//! gRPC statuses tonic words differently from grpc-go, rewritten to what etcd's clients see
//! from etcd: a request over the message size limit is RESOURCE_EXHAUSTED "grpc: received
//! message larger than max (N vs. M)" there, OUT_OF_RANGE "Error, decoded message length too
//! large: ..." in tonic. The status comes in the headers of a trailers-only answer (unary
//! calls) or in the trailers (a stream), so both are rewritten.

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Response};
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};
use tonic::body::Body;

const TONIC_OVERSIZE_PREFIX: &str = "Error, decoded message length too large";

/// The response with grpc-go's status for an oversized request, wherever its status is.
pub fn as_grpc_go(mut response: Response<Body>) -> Response<Body> {
    if response.headers().contains_key("grpc-status") {
        rewrite(response.headers_mut());
        return response;
    }
    response.map(|inner| Body::new(RewrittenTrailers { inner }))
}

/// Rewrites an oversize status in `headers` (headers or trailers) in place.
fn rewrite(headers: &mut HeaderMap) {
    if headers.get("grpc-status").map(HeaderValue::as_bytes) != Some(b"11") {
        return;
    }
    let Some(message) = headers
        .get("grpc-message")
        .and_then(|value| value.to_str().ok())
        .map(percent_decoded)
    else {
        return;
    };
    if !message.starts_with(TONIC_OVERSIZE_PREFIX) {
        return;
    }
    let numbers: Vec<&str> = message
        .split(|character: char| !character.is_ascii_digit())
        .filter(|run| !run.is_empty())
        .collect();
    let [found, limit] = numbers[..] else {
        return;
    };
    let text = format!("grpc: received message larger than max ({found} vs. {limit})");
    headers.insert("grpc-status", HeaderValue::from_static("8"));
    if let Ok(value) = HeaderValue::from_str(&text) {
        headers.insert("grpc-message", value);
    }
}

/// A grpc-message header's text (percent-encoded on the wire).
fn percent_decoded(encoded: &str) -> String {
    let bytes = encoded.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let escaped = (bytes[index] == b'%')
            .then(|| encoded.get(index + 1..index + 3))
            .flatten()
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(byte) => {
                decoded.push(byte);
                index += 3;
            }
            None => {
                decoded.push(bytes[index]);
                index += 1;
            }
        }
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

struct RewrittenTrailers {
    inner: Body,
}

impl http_body::Body for RewrittenTrailers {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        context: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, tonic::Status>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(context);
        match polled {
            Poll::Ready(Some(Ok(frame))) if frame.is_trailers() => {
                let mut trailers = frame.into_trailers().expect("checked to be trailers");
                rewrite(&mut trailers);
                Poll::Ready(Some(Ok(http_body::Frame::trailers(trailers))))
            }
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_oversize_status_becomes_grpc_gos() {
        let mut headers = HeaderMap::new();
        headers.insert("grpc-status", HeaderValue::from_static("11"));
        headers.insert(
            "grpc-message",
            HeaderValue::from_static(
                "Error,%20decoded%20message%20length%20too%20large:%20found%202097167%20bytes,%20the%20limit%20is:%202097152%20bytes",
            ),
        );
        rewrite(&mut headers);
        assert_eq!(headers["grpc-status"], "8");
        assert_eq!(
            headers["grpc-message"],
            "grpc: received message larger than max (2097167 vs. 2097152)"
        );
    }

    #[test]
    fn other_statuses_stay() {
        let mut headers = HeaderMap::new();
        headers.insert("grpc-status", HeaderValue::from_static("11"));
        headers.insert(
            "grpc-message",
            HeaderValue::from_static("etcdserver: mvcc: required revision is a future revision"),
        );
        let before = headers.clone();
        rewrite(&mut headers);
        assert_eq!(headers, before);
    }
}
