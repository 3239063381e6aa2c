//! Protobuf <-> domain conversions. Validation that etcd does while converting (sort
//! options) happens here too; everything else is checked in `apply::validate_txn`.

use super::pb::etcdserverpb as pb;
use super::pb::mvccpb;
use crate::apply::{
    Compare, CompareResult, CompareTarget, DeleteRequest, DeleteResponse, PutRequest, PutResponse,
    RequestOp, ResponseOp, TxnRequest, TxnResponse,
};
use crate::base::{Bytes, EtcdError, KeyRange, Revision};
use crate::mvcc::{Event, EventKind, KeyValue, RangeQuery, RangeResult, SortOrder, SortTarget};

/// `bytes` in an allocation of its own. prost decodes a `bytes` field as a slice of the
/// buffer the request arrived in (kilobytes, shared with whatever else arrived in it): kept
/// as it is, a 256-byte value in the store or the raft log pins that whole buffer. Copying
/// keys and values as a request becomes a command cost a put 5 KiB of resident memory less.
pub fn owned(bytes: Bytes) -> Bytes {
    Bytes::copy_from_slice(&bytes)
}

fn key_range(key: Bytes, range_end: Bytes) -> KeyRange {
    KeyRange::new(owned(key), owned(range_end))
}

pub fn range_query(request: pb::RangeRequest) -> Result<RangeQuery, EtcdError> {
    use pb::range_request::{SortOrder as PbOrder, SortTarget as PbTarget};
    // An order etcd does not know sorts nothing there, whatever the target: the keys come
    // in key order. A target it does not know with a known order makes etcd 3.4 call
    // sort.Sort on nil and crash; here it is refused with the error etcd defines for it.
    let (sort_order, sort_target) = match PbOrder::try_from(request.sort_order) {
        Err(_) => (SortOrder::None, SortTarget::Key),
        Ok(order) => (
            match order {
                PbOrder::None => SortOrder::None,
                PbOrder::Ascend => SortOrder::Ascend,
                PbOrder::Descend => SortOrder::Descend,
            },
            match PbTarget::try_from(request.sort_target)
                .map_err(|_| EtcdError::InvalidSortOption)?
            {
                PbTarget::Key => SortTarget::Key,
                PbTarget::Version => SortTarget::Version,
                PbTarget::Create => SortTarget::Create,
                PbTarget::Mod => SortTarget::Mod,
                PbTarget::Value => SortTarget::Value,
            },
        ),
    };
    Ok(RangeQuery {
        range: KeyRange::new(request.key, request.range_end),
        limit: request.limit,
        revision: request.revision,
        sort_order,
        sort_target,
        keys_only: request.keys_only,
        count_only: request.count_only,
        min_mod_revision: request.min_mod_revision,
        max_mod_revision: request.max_mod_revision,
        min_create_revision: request.min_create_revision,
        max_create_revision: request.max_create_revision,
    })
}

pub fn put_request(request: pb::PutRequest) -> PutRequest {
    PutRequest {
        key: owned(request.key),
        value: owned(request.value),
        lease: request.lease,
        prev_kv: request.prev_kv,
        ignore_value: request.ignore_value,
        ignore_lease: request.ignore_lease,
    }
}

pub fn delete_request(request: pb::DeleteRangeRequest) -> DeleteRequest {
    DeleteRequest {
        range: key_range(request.key, request.range_end),
        prev_kv: request.prev_kv,
    }
}

fn compare(compare: pb::Compare) -> Compare {
    use pb::compare::{CompareResult as PbResult, CompareTarget as PbTarget, TargetUnion};
    let result = match PbResult::try_from(compare.result).unwrap_or(PbResult::Equal) {
        PbResult::Equal => CompareResult::Equal,
        PbResult::Greater => CompareResult::Greater,
        PbResult::Less => CompareResult::Less,
        PbResult::NotEqual => CompareResult::NotEqual,
    };
    // The target enum says which field matters; a missing union member compares with zero.
    let union = compare.target_union;
    let target = match PbTarget::try_from(compare.target).unwrap_or(PbTarget::Version) {
        PbTarget::Version => CompareTarget::Version(match union {
            Some(TargetUnion::Version(version)) => version,
            _ => 0,
        }),
        PbTarget::Create => CompareTarget::Create(match union {
            Some(TargetUnion::CreateRevision(revision)) => revision,
            _ => 0,
        }),
        PbTarget::Mod => CompareTarget::Mod(match union {
            Some(TargetUnion::ModRevision(revision)) => revision,
            _ => 0,
        }),
        PbTarget::Value => CompareTarget::Value(match union {
            Some(TargetUnion::Value(value)) => owned(value),
            _ => Default::default(),
        }),
        PbTarget::Lease => CompareTarget::Lease(match union {
            Some(TargetUnion::Lease(lease)) => lease,
            _ => 0,
        }),
    };
    Compare {
        range: key_range(compare.key, compare.range_end),
        result,
        target,
    }
}

fn request_op(operation: pb::RequestOp) -> Result<RequestOp, EtcdError> {
    use pb::request_op::Request;
    Ok(match operation.request {
        // A plain range is answered and dropped; one in a txn lives on in the log.
        Some(Request::RequestRange(mut range)) => {
            range.key = owned(range.key);
            range.range_end = owned(range.range_end);
            RequestOp::Range(range_query(range)?)
        }
        Some(Request::RequestPut(put)) => RequestOp::Put(put_request(put)),
        Some(Request::RequestDeleteRange(delete)) => RequestOp::Delete(delete_request(delete)),
        Some(Request::RequestTxn(txn)) => RequestOp::Txn(txn_request(txn)?),
        // An empty operation is a range over the empty key, which etcd refuses the same way.
        None => return Err(EtcdError::EmptyKey),
    })
}

pub fn txn_request(request: pb::TxnRequest) -> Result<TxnRequest, EtcdError> {
    Ok(TxnRequest {
        compares: request.compare.into_iter().map(compare).collect(),
        success: request
            .success
            .into_iter()
            .map(request_op)
            .collect::<Result<_, _>>()?,
        failure: request
            .failure
            .into_iter()
            .map(request_op)
            .collect::<Result<_, _>>()?,
    })
}

pub fn key_value(kv: KeyValue) -> mvccpb::KeyValue {
    mvccpb::KeyValue {
        key: kv.key,
        create_revision: kv.create_revision,
        mod_revision: kv.mod_revision,
        version: kv.version,
        value: kv.value,
        lease: kv.lease,
    }
}

pub fn range_response(
    result: RangeResult,
    header: Option<pb::ResponseHeader>,
) -> pb::RangeResponse {
    pb::RangeResponse {
        header,
        kvs: result.kvs.into_iter().map(key_value).collect(),
        more: result.more,
        count: result.count,
    }
}

pub fn put_response(response: PutResponse, header: Option<pb::ResponseHeader>) -> pb::PutResponse {
    pb::PutResponse {
        header,
        prev_kv: response.prev_kv.map(key_value),
    }
}

pub fn delete_response(
    response: DeleteResponse,
    header: Option<pb::ResponseHeader>,
) -> pb::DeleteRangeResponse {
    pb::DeleteRangeResponse {
        header,
        deleted: response.deleted,
        prev_kvs: response.prev_kvs.into_iter().map(key_value).collect(),
    }
}

/// A txn's response. As etcd's, only the outer header is a full one: a response inside
/// carries just the revision the store had at that point of the txn (the one before it,
/// plus one once something in it changed), and a nested txn's header is empty.
pub fn txn_response(response: TxnResponse, header: Option<pb::ResponseHeader>) -> pb::TxnResponse {
    let revision = header.as_ref().map_or(0, |header| header.revision);
    let begin_revision = if changes_anything(&response) {
        revision - 1
    } else {
        revision
    };
    let mut changed = false;
    pb::TxnResponse {
        header,
        succeeded: response.succeeded,
        responses: operation_responses(response.responses, begin_revision, &mut changed),
    }
}

fn changes_anything(response: &TxnResponse) -> bool {
    response.responses.iter().any(|operation| match operation {
        ResponseOp::Range(_) => false,
        ResponseOp::Put(_) => true,
        ResponseOp::Delete(delete) => delete.deleted > 0,
        ResponseOp::Txn(nested) => changes_anything(nested),
    })
}

fn operation_responses(
    operations: Vec<ResponseOp>,
    begin_revision: Revision,
    changed: &mut bool,
) -> Vec<pb::ResponseOp> {
    use pb::response_op::Response;
    let at = |revision: Revision| {
        Some(pb::ResponseHeader {
            revision,
            ..Default::default()
        })
    };
    operations
        .into_iter()
        .map(|operation| {
            let response = match operation {
                ResponseOp::Range(result) => Response::ResponseRange(range_response(
                    result,
                    at(begin_revision + i64::from(*changed)),
                )),
                ResponseOp::Put(put) => {
                    *changed = true;
                    Response::ResponsePut(put_response(put, at(begin_revision + 1)))
                }
                ResponseOp::Delete(delete) => {
                    *changed |= delete.deleted > 0;
                    let header = at(begin_revision + i64::from(*changed));
                    Response::ResponseDeleteRange(delete_response(delete, header))
                }
                ResponseOp::Txn(nested) => Response::ResponseTxn(pb::TxnResponse {
                    header: Some(pb::ResponseHeader::default()),
                    succeeded: nested.succeeded,
                    responses: operation_responses(nested.responses, begin_revision, changed),
                }),
            };
            pb::ResponseOp {
                response: Some(response),
            }
        })
        .collect()
}

pub fn event(event: Event) -> mvccpb::Event {
    let kind = match event.kind {
        EventKind::Put => mvccpb::event::EventType::Put,
        EventKind::Delete => mvccpb::event::EventType::Delete,
    };
    mvccpb::Event {
        r#type: kind as i32,
        kv: Some(key_value(event.kv)),
        prev_kv: event.prev_kv.map(key_value),
    }
}
