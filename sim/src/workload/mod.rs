//! The workload: clients doing puts, gets (linearizable and serializable), deletes and
//! compare-and-swaps on a small key space, watchers from past revisions with progress
//! requests, lease clients with short TTLs, and a compactor. Everything is recorded.

mod auth;
mod compactor;
mod kv;
mod lease;
mod watch;

pub use auth::{run_auth_admin, run_auth_client, GRANTED_PREFIX, SECRET_PREFIX};
pub use compactor::run_compactor;
pub use kv::run_client;
pub use lease::run_lease_client;
pub use watch::run_watcher;

use crate::history::{Millis, Observed};
use crate::params::Params;
use crate::recorder::SharedRecorder;
use cairn::api::pb::etcdserverpb as pb;
use cairn::api::pb::mvccpb;
use std::time::Duration;
use tonic::transport::{Channel, Endpoint};

pub const KEY_PREFIX: &str = "k/";
const KEY_PREFIX_END: &str = "k0";

/// Lazily connected channels to every member's client URL.
pub fn channels(endpoints: &[String]) -> Vec<Channel> {
    endpoints
        .iter()
        .map(|url| {
            Endpoint::from_shared(url.clone())
                .expect("valid URL")
                .connect_timeout(Duration::from_secs(1))
                .connect_lazy()
        })
        .collect()
}

async fn with_timeout<T>(
    params: &Params,
    call: impl std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
) -> Result<T, String> {
    match tokio::time::timeout(Duration::from_millis(params.request_timeout_ms()), call).await {
        Err(_) => Err("timed out".to_string()),
        Ok(Err(status)) => Err(format!("{:?}: {}", status.code(), status.message())),
        Ok(Ok(response)) => Ok(response.into_inner()),
    }
}

/// What the workload writes for `value`: the value, then `padding_bytes` dots.
pub fn padded(value: &str, padding_bytes: usize) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(value.len() + padding_bytes);
    bytes.extend_from_slice(value.as_bytes());
    bytes.resize(value.len() + padding_bytes, b'.');
    bytes
}

/// The value as the history records it: the padding removed only when it is exactly what
/// the workload added, so a value cut short or changed on its way still shows as different.
pub fn unpadded(bytes: &[u8], padding_bytes: usize) -> String {
    let text = String::from_utf8_lossy(bytes);
    match text.len().checked_sub(padding_bytes) {
        Some(end) if padding_bytes > 0 && text[end..].bytes().all(|byte| byte == b'.') => {
            text[..end].to_string()
        }
        _ => text.into_owned(),
    }
}

pub fn observed(kv: &mvccpb::KeyValue, padding_bytes: usize) -> Observed {
    Observed {
        value: unpadded(&kv.value, padding_bytes),
        mod_revision: kv.mod_revision,
        create_revision: kv.create_revision,
        version: kv.version,
    }
}

fn revision_of(header: &Option<pb::ResponseHeader>) -> i64 {
    header.as_ref().map_or(0, |header| header.revision)
}

/// A workload actor: a name (its simulated node's) and what it runs until the stop time.
pub type Actor = (
    String,
    std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>,
);

/// Every actor of the workload, in the order both worlds start them: KV clients, watchers,
/// lease clients, the compactor, the auth admin and its restricted clients.
pub fn actors(params: &Params, recorder: &SharedRecorder, stop_ms: Millis) -> Vec<Actor> {
    let mut actors: Vec<Actor> = Vec::new();
    for client in 0..params.clients {
        let actor = run_client(client, params.clone(), recorder.clone(), stop_ms);
        actors.push((format!("client-{client}"), Box::pin(actor)));
    }
    for watcher in 0..params.watchers {
        let actor = run_watcher(watcher, params.clone(), recorder.clone(), stop_ms);
        actors.push((format!("watcher-{watcher}"), Box::pin(actor)));
    }
    for lease in 0..params.lease_clients {
        let actor = run_lease_client(lease, params.clone(), recorder.clone(), stop_ms);
        actors.push((format!("lease-{lease}"), Box::pin(actor)));
    }
    if params.compactions {
        let actor = run_compactor(params.clone(), recorder.clone(), stop_ms);
        actors.push(("compactor".to_string(), Box::pin(actor)));
    }
    if params.auth_clients > 0 {
        let actor = run_auth_admin(params.clone(), recorder.clone(), stop_ms);
        actors.push(("auth-admin".to_string(), Box::pin(actor)));
    }
    for client in 0..params.auth_clients {
        let actor = run_auth_client(client, params.clone(), recorder.clone(), stop_ms);
        actors.push((format!("auth-client-{client}"), Box::pin(actor)));
    }
    actors
}
