//! The end of a run, in either world: after faults stop, the time until writes succeed
//! again, the final contents, every member's HashKV at one revision, and whether abandoned
//! leases' keys are gone.

use crate::history::{FinalState, Millis};
use crate::params::Params;
use crate::recorder::{now_ms, SharedRecorder};
use crate::workload::{channels, observed, KEY_PREFIX};
use cairn::api::pb::etcdserverpb::{
    self as pb, kv_client::KvClient, maintenance_client::MaintenanceClient,
};
use std::time::Duration;

/// How long to let the cluster settle after healing before reading the final state.
const SETTLE_MS: u64 = 2_000;

/// After faults stop: time until writes succeed, the final contents, every member's HashKV at
/// one revision, and whether abandoned leases' keys are gone.
pub async fn observe_final_state(
    params: Params,
    recorder: SharedRecorder,
    faults_end_ms: Millis,
) -> FinalState {
    let channels = channels(&params.endpoints);
    let timeout = Duration::from_millis(params.request_timeout_ms());
    let deadline_ms = faults_end_ms + params.recovery_bound_ms();
    let mut state = FinalState::default();
    let mut attempt = 0;
    while now_ms(&recorder) < deadline_ms {
        let mut kv = KvClient::new(channels[attempt % channels.len()].clone());
        attempt += 1;
        let probe = pb::PutRequest {
            key: b"probe".to_vec().into(),
            value: b"alive".to_vec().into(),
            ..Default::default()
        };
        if matches!(
            tokio::time::timeout(timeout, kv.put(probe)).await,
            Ok(Ok(_))
        ) {
            state.recovery_ms = Some(now_ms(&recorder) - faults_end_ms);
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_millis(SETTLE_MS)).await;
    for attempt in 0..30 {
        let mut kv = KvClient::new(channels[attempt % channels.len()].clone());
        let range = pb::RangeRequest {
            key: KEY_PREFIX.as_bytes().to_vec().into(),
            range_end: b"k0".to_vec().into(),
            ..Default::default()
        };
        if let Ok(Ok(response)) = tokio::time::timeout(timeout, kv.range(range)).await {
            let response = response.into_inner();
            state.revision = response.header.map_or(0, |header| header.revision);
            for kv in response.kvs {
                let observed = observed(&kv, params.value_padding_bytes);
                state
                    .keys
                    .insert(String::from_utf8_lossy(&kv.key).into_owned(), observed);
            }
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    state.hash_revision = state.revision;
    for (member, channel) in channels.iter().enumerate() {
        for _ in 0..40 {
            let mut maintenance = MaintenanceClient::new(channel.clone());
            if let Ok(Ok(response)) = tokio::time::timeout(
                timeout,
                maintenance.hash_kv(pb::HashKvRequest {
                    revision: state.hash_revision,
                }),
            )
            .await
            {
                state.hashes.push((member + 1, response.into_inner().hash));
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    let expiry_check_ms = faults_end_ms + params.lease_expiry_bound_ms();
    tokio::time::sleep(Duration::from_millis(
        expiry_check_ms.saturating_sub(now_ms(&recorder)),
    ))
    .await;
    let lease_keys: Vec<String> = recorder
        .lock()
        .unwrap()
        .history
        .leases
        .iter()
        .map(|log| log.key.clone())
        .collect();
    for (position, key) in lease_keys.iter().enumerate() {
        let mut kv = KvClient::new(channels[position % channels.len()].clone());
        if let Ok(Ok(response)) = tokio::time::timeout(
            timeout,
            kv.range(pb::RangeRequest {
                key: key.as_bytes().to_vec().into(),
                ..Default::default()
            }),
        )
        .await
        {
            let present = !response.into_inner().kvs.is_empty();
            recorder.lock().unwrap().history.leases[position].present_at_end = Some(present);
        }
    }
    state
}
