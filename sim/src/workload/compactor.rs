//! A compactor that compacts a little behind the current revision now and then.

use super::{channels, revision_of, with_timeout};
use crate::history::Millis;
use crate::params::Params;
use crate::recorder::{now_ms, SharedRecorder};
use crate::seeds::Stream;
use cairn::api::pb::etcdserverpb::{self as pb, kv_client::KvClient};
use rand::Rng;
use std::time::Duration;

/// Compacts to a little behind the current revision now and then.
pub async fn run_compactor(params: Params, recorder: SharedRecorder, stop_ms: Millis) {
    let mut random = Stream::Compactor.random(params.seed);
    let channels = channels(&params.endpoints);
    while now_ms(&recorder) < stop_ms {
        tokio::time::sleep(Duration::from_millis(random.gen_range(1000..4000))).await;
        let mut kv = KvClient::new(channels[random.gen_range(0..channels.len())].clone());
        let Ok(current) = with_timeout(
            &params,
            kv.range(pb::RangeRequest {
                key: b"k/".to_vec().into(),
                count_only: true,
                ..Default::default()
            }),
        )
        .await
        else {
            continue;
        };
        let target = revision_of(&current.header) - random.gen_range(5..50);
        if target > 1 {
            let outcome = with_timeout(
                &params,
                kv.compact(pb::CompactionRequest {
                    revision: target,
                    physical: false,
                }),
            )
            .await;
            recorder
                .lock()
                .unwrap()
                .note(format!("compact {target}: {:?}", outcome.map(|_| ())));
        }
    }
}
