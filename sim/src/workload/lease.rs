//! Lease clients: a short-TTL lease holding one key, kept alive, then abandoned.

use super::{channels, with_timeout};
use crate::history::{LeaseLog, Millis};
use crate::params::Params;
use crate::recorder::{now_ms, SharedRecorder};
use crate::seeds::Stream;
use cairn::api::pb::etcdserverpb::{self as pb, kv_client::KvClient, lease_client::LeaseClient};
use rand::Rng;
use std::time::Duration;

/// One lease client: a short-TTL lease holding one key, kept alive for a while, then
/// abandoned; the key is read throughout.
pub async fn run_lease_client(
    index: usize,
    params: Params,
    recorder: SharedRecorder,
    stop_ms: Millis,
) {
    let mut random = Stream::LeaseClient(index).random(params.seed);
    // Half the lease clients close their sending side after each keepalive (as scripts do):
    // the server must still answer it.
    let half_closes = Stream::LeaseHalfClose(index)
        .random(params.seed)
        .gen_bool(0.5);
    let channels = channels(&params.endpoints);
    let ttl_seconds = params.lease_ttl_seconds();
    let key = format!("l/{index}");
    let mut log = LeaseLog {
        key: key.clone(),
        ttl_seconds,
        ..LeaseLog::default()
    };
    let abandon_ms = random.gen_range(0..stop_ms.max(1));
    let mut lease_id = 0;
    while now_ms(&recorder) < stop_ms {
        let channel = channels[random.gen_range(0..channels.len())].clone();
        let (mut leases, mut kv) = (LeaseClient::new(channel.clone()), KvClient::new(channel));
        let invoked = now_ms(&recorder);
        if lease_id == 0 {
            if let Ok(granted) = with_timeout(
                &params,
                leases.lease_grant(pb::LeaseGrantRequest {
                    ttl: ttl_seconds,
                    id: 0,
                }),
            )
            .await
            {
                log.renewals.push((invoked, now_ms(&recorder)));
                lease_id = granted.id;
                // Attach at once: the first keepalive may be most of a TTL away.
                continue;
            }
        } else if log.attached_ms.is_none() {
            let put = pb::PutRequest {
                key: key.as_bytes().to_vec().into(),
                value: b"held".to_vec().into(),
                lease: lease_id,
                ..Default::default()
            };
            match with_timeout(&params, kv.put(put)).await {
                Ok(_) => log.attached_ms = Some(now_ms(&recorder)),
                // Expired before the key could be attached (the put took too long): start over.
                Err(error) if error.contains("lease not found") => lease_id = 0,
                Err(_) => {}
            }
        } else if invoked < abandon_ms && params.keepalives_dropped_recorded_as_acknowledged {
            log.renewals.push((invoked, now_ms(&recorder)));
        } else if invoked < abandon_ms {
            let (sender, receiver) = tokio::sync::mpsc::channel(1);
            let _ = sender
                .send(pb::LeaseKeepAliveRequest { id: lease_id })
                .await;
            let sender = (!half_closes).then_some(sender);
            let renewed = async {
                let mut stream = leases
                    .lease_keep_alive(tokio_stream::wrappers::ReceiverStream::new(receiver))
                    .await?
                    .into_inner();
                stream.message().await
            };
            match tokio::time::timeout(Duration::from_millis(params.request_timeout_ms()), renewed)
                .await
            {
                Ok(Ok(Some(response))) if response.ttl > 0 => {
                    log.renewals.push((invoked, now_ms(&recorder)));
                }
                Ok(Ok(None)) if half_closes => log.half_closed_unanswered += 1,
                _ => {}
            }
            drop(sender);
        } else if log.abandoned_ms.is_none() {
            log.abandoned_ms = Some(invoked);
        }
        if log.attached_ms.is_some() {
            let read_invoked = now_ms(&recorder);
            if let Ok(response) = with_timeout(
                &params,
                kv.range(pb::RangeRequest {
                    key: key.as_bytes().to_vec().into(),
                    ..Default::default()
                }),
            )
            .await
            {
                log.reads
                    .push((read_invoked, now_ms(&recorder), !response.kvs.is_empty()));
            }
        }
        let pause_ms = ttl_seconds as u64 * 10 * params.lease_renewal_percent;
        tokio::time::sleep(Duration::from_millis(pause_ms)).await;
    }
    if log.abandoned_ms.is_none() {
        log.abandoned_ms = Some(now_ms(&recorder));
    }
    let mut recorder = recorder.lock().unwrap();
    recorder.note(format!("lease {log:?}"));
    recorder.history.leases.push(log);
}
