//! KV clients: puts, gets (linearizable and serializable), deletes and compare-and-swaps on
//! a small key space, each recorded as an operation of the history.

use super::{channels, observed, padded, revision_of, with_timeout, KEY_PREFIX, KEY_PREFIX_END};
use crate::history::{Millis, Observed, Operation, Request, Response};
use crate::params::Params;
use crate::recorder::{now_ms, SharedRecorder};
use crate::seeds::Stream;
use cairn::api::pb::etcdserverpb::{self as pb, kv_client::KvClient};
use rand::rngs::SmallRng;
use rand::Rng;
use std::time::Duration;
use tonic::transport::Channel;

/// One KV client until `stop_ms`.
pub async fn run_client(client: usize, params: Params, recorder: SharedRecorder, stop_ms: Millis) {
    let mut random = Stream::Client(client).random(params.seed);
    let clients: Vec<KvClient<Channel>> = channels(&params.endpoints)
        .into_iter()
        .map(KvClient::new)
        .collect();
    let mut last_mod: std::collections::BTreeMap<String, i64> = Default::default();
    let mut sequence = 0;
    while now_ms(&recorder) < stop_ms {
        // One step: a range over the key space (recorded as one read per key), or one
        // operation on one key.
        let (invoked_ms, outcomes) = if random.gen_range(0..100) < params.ranges_percent {
            let linearizable = random.gen_range(0..100) >= params.serializable_gets_percent;
            let mut kv = clients[random.gen_range(0..clients.len())].clone();
            let invoked_ms = now_ms(&recorder);
            let outcome = execute_range(&params, &mut kv, linearizable).await;
            (invoked_ms, range_as_reads(&params, linearizable, outcome))
        } else {
            let request = draw_request(&params, &mut random, client, &mut sequence, &last_mod);
            let mut kv = clients[random.gen_range(0..clients.len())].clone();
            let invoked_ms = now_ms(&recorder);
            let response = execute(&params, &mut kv, &request).await;
            (invoked_ms, vec![(request, response)])
        };
        for (request, response) in outcomes {
            if let Response::Read { found, .. } = &response {
                let mod_revision = found.as_ref().map_or(0, |observed| observed.mod_revision);
                last_mod.insert(request.key().to_string(), mod_revision);
            }
            record(
                &recorder,
                client,
                recorded(&params, request),
                invoked_ms,
                response,
            );
        }
        tokio::time::sleep(Duration::from_millis(random.gen_range(1..30))).await;
    }
}

/// One operation on one key of the key space, by the workload's mix.
fn draw_request(
    params: &Params,
    random: &mut SmallRng,
    client: usize,
    sequence: &mut u64,
    last_mod: &std::collections::BTreeMap<String, i64>,
) -> Request {
    let key = format!("{KEY_PREFIX}{}", random.gen_range(0..params.keys));
    *sequence += 1;
    let value = format!("c{client}-{sequence}");
    let roll = random.gen_range(0..100);
    if roll < params.gets_percent {
        let serializable = random.gen_range(0..100) < params.serializable_gets_percent;
        Request::Get {
            key,
            linearizable: !serializable,
        }
    } else if roll < params.gets_percent + params.deletes_percent {
        Request::Delete { key }
    } else if roll < params.gets_percent + params.deletes_percent + params.compare_and_swaps_percent
    {
        let expected = last_mod.get(&key).copied().unwrap_or(0);
        Request::CompareAndSwap {
            key,
            expected,
            value,
        }
    } else {
        Request::Put { key, value }
    }
}

/// The request as the history records it; the deliberately wrong workload records a
/// serializable read as linearizable.
fn recorded(params: &Params, request: Request) -> Request {
    match request {
        Request::Get {
            key,
            linearizable: false,
        } if params.serializable_recorded_as_linearizable => Request::Get {
            key,
            linearizable: true,
        },
        other => other,
    }
}

fn record(
    recorder: &SharedRecorder,
    client: usize,
    request: Request,
    invoked_ms: Millis,
    response: Response,
) {
    let mut recorder = recorder.lock().unwrap();
    let id = recorder.history.operations.len();
    let operation = Operation {
        id,
        client,
        request,
        invoked_ms,
        completed_ms: recorder.now_ms(),
        response,
    };
    recorder.note(format!("op {operation:?}"));
    recorder.history.operations.push(operation);
}

/// A range over the whole key space: the keys it returned and the revision it read at.
async fn execute_range(
    params: &Params,
    kv: &mut KvClient<Channel>,
    linearizable: bool,
) -> Result<(i64, std::collections::BTreeMap<String, Observed>), String> {
    let response = with_timeout(
        params,
        kv.range(pb::RangeRequest {
            key: KEY_PREFIX.as_bytes().to_vec().into(),
            range_end: KEY_PREFIX_END.as_bytes().to_vec().into(),
            serializable: !linearizable,
            ..Default::default()
        }),
    )
    .await?;
    let found = response
        .kvs
        .iter()
        .map(|kv| {
            let key = String::from_utf8_lossy(&kv.key).into_owned();
            (key, observed(kv, params.value_padding_bytes))
        })
        .collect();
    Ok((revision_of(&response.header), found))
}

/// A range is recorded as one read per key of the key space, all at the range's revision
/// and with its timing: each must be right on its own, and together they must be one
/// consistent cut of the store, which is what a range promises.
fn range_as_reads(
    params: &Params,
    linearizable: bool,
    outcome: Result<(i64, std::collections::BTreeMap<String, Observed>), String>,
) -> Vec<(Request, Response)> {
    (0..params.keys)
        .map(|index| {
            let key = format!("{KEY_PREFIX}{index}");
            let response = match &outcome {
                Ok((revision, found)) => Response::Read {
                    revision: *revision,
                    found: found.get(&key).cloned(),
                },
                Err(error) => Response::ReadFailed(error.clone()),
            };
            (Request::Get { key, linearizable }, response)
        })
        .collect()
}

async fn execute(params: &Params, kv: &mut KvClient<Channel>, request: &Request) -> Response {
    let bytes = |text: &str| text.as_bytes().to_vec().into();
    let value_bytes = |text: &str| padded(text, params.value_padding_bytes).into();
    match request {
        Request::Put { key, value } => match with_timeout(
            params,
            kv.put(pb::PutRequest {
                key: bytes(key),
                value: value_bytes(value),
                ..Default::default()
            }),
        )
        .await
        {
            Ok(response) => Response::Written {
                revision: revision_of(&response.header),
                changed: true,
            },
            Err(error) => Response::Indeterminate(error),
        },
        Request::Delete { key } => match with_timeout(
            params,
            kv.delete_range(pb::DeleteRangeRequest {
                key: bytes(key),
                ..Default::default()
            }),
        )
        .await
        {
            Ok(response) => Response::Written {
                revision: revision_of(&response.header),
                changed: response.deleted > 0,
            },
            Err(error) => Response::Indeterminate(error),
        },
        Request::CompareAndSwap {
            key,
            expected,
            value,
        } => {
            let compare = pb::Compare {
                key: bytes(key),
                target: pb::compare::CompareTarget::Mod as i32,
                result: pb::compare::CompareResult::Equal as i32,
                target_union: Some(pb::compare::TargetUnion::ModRevision(*expected)),
                range_end: Default::default(),
            };
            let put = pb::RequestOp {
                request: Some(pb::request_op::Request::RequestPut(pb::PutRequest {
                    key: bytes(key),
                    value: value_bytes(value),
                    ..Default::default()
                })),
            };
            match with_timeout(
                params,
                kv.txn(pb::TxnRequest {
                    compare: vec![compare],
                    success: vec![put],
                    failure: Vec::new(),
                }),
            )
            .await
            {
                Ok(response) => Response::Written {
                    revision: revision_of(&response.header),
                    changed: response.succeeded,
                },
                Err(error) => Response::Indeterminate(error),
            }
        }
        Request::Get { key, linearizable } => match with_timeout(
            params,
            kv.range(pb::RangeRequest {
                key: bytes(key),
                serializable: !linearizable,
                ..Default::default()
            }),
        )
        .await
        {
            Ok(response) => Response::Read {
                revision: revision_of(&response.header),
                found: response
                    .kvs
                    .first()
                    .map(|kv| observed(kv, params.value_padding_bytes)),
            },
            Err(error) => Response::ReadFailed(error),
        },
    }
}
