//! etcdserverpb.KV: range, put, delete, txn, compact.

use super::error::unexpected_outcome;
use super::pb::etcdserverpb::{self as pb, kv_server::Kv};
use super::{convert, guarded, status, Context};
use crate::apply::{validate_txn, Command, Outcome, ReadOnlyTxn, RequestOp};
use crate::base::metrics::Operations;
use crate::base::EtcdError;
use tonic::{Request, Response, Status};

pub struct KvService {
    context: Context,
}

impl KvService {
    pub fn new(context: Context) -> Self {
        KvService { context }
    }

    async fn propose(&self, command: Command) -> Result<(Outcome, i64), Status> {
        let applied = self.context.propose(command).await.map_err(status)?;
        let outcome = applied.result.map_err(status)?;
        Ok((outcome, applied.revision))
    }
}

#[tonic::async_trait]
impl Kv for KvService {
    async fn range(
        &self,
        request: Request<pb::RangeRequest>,
    ) -> Result<Response<pb::RangeResponse>, Status> {
        self.context
            .admit(&request, request.get_ref().serializable)?;
        let caller = self.context.caller(&request)?;
        let request = request.into_inner();
        self.context.check_size(&request)?;
        if request.key.is_empty() {
            return Err(status(EtcdError::EmptyKey));
        }
        let serializable = request.serializable;
        let query = convert::range_query(request).map_err(status)?;
        if !serializable {
            self.context.node.read_barrier().await.map_err(status)?;
        }
        let view = self.context.node.view();
        self.context
            .authorize_range(&caller, &view.machine, &query.range)?;
        let store = view.machine.store();
        let result = store.range(&query).map_err(status)?;
        self.context.node.metrics().mvcc.record(Operations {
            ranges: 1,
            ..Operations::default()
        });
        Ok(Response::new(convert::range_response(
            result,
            self.context.header(store.current_revision()),
        )))
    }

    async fn put(
        &self,
        request: Request<pb::PutRequest>,
    ) -> Result<Response<pb::PutResponse>, Status> {
        self.context.admit(&request, false)?;
        let caller = self.context.caller(&request)?;
        let request = request.into_inner();
        self.context.check_size(&request)?;
        let put = convert::put_request(request);
        crate::apply::validate_operation(&RequestOp::Put(put.clone()), &self.context.limits)
            .map_err(status)?;
        match self.propose(guarded(&caller, Command::Put(put))).await? {
            (Outcome::Put(response), revision) => Ok(Response::new(convert::put_response(
                response,
                self.context.header(revision),
            ))),
            (other, _) => Err(unexpected_outcome("put", other)),
        }
    }

    async fn delete_range(
        &self,
        request: Request<pb::DeleteRangeRequest>,
    ) -> Result<Response<pb::DeleteRangeResponse>, Status> {
        self.context.admit(&request, false)?;
        let caller = self.context.caller(&request)?;
        let request = request.into_inner();
        self.context.check_size(&request)?;
        let delete = convert::delete_request(request);
        crate::apply::validate_operation(&RequestOp::Delete(delete.clone()), &self.context.limits)
            .map_err(status)?;
        match self
            .propose(guarded(&caller, Command::Delete(delete)))
            .await?
        {
            (Outcome::Delete(response), revision) => Ok(Response::new(convert::delete_response(
                response,
                self.context.header(revision),
            ))),
            (other, _) => Err(unexpected_outcome("delete", other)),
        }
    }

    async fn txn(
        &self,
        request: Request<pb::TxnRequest>,
    ) -> Result<Response<pb::TxnResponse>, Status> {
        self.context.admit(&request, false)?;
        let caller = self.context.caller(&request)?;
        let request = request.into_inner();
        self.context.check_size(&request)?;
        let serializable = is_serializable(&request);
        let txn = convert::txn_request(request).map_err(status)?;
        validate_txn(&txn, &self.context.limits).map_err(status)?;
        let txn = match ReadOnlyTxn::new(txn) {
            Ok(read_only) => {
                // As etcd does: a txn that only reads needs no log entry, just a read
                // barrier (skipped when every range in it is serializable).
                if !serializable {
                    self.context.node.read_barrier().await.map_err(status)?;
                }
                let machine = self.context.node.view().machine;
                self.context
                    .authorize_txn(&caller, &machine, read_only.request())?;
                let response = machine.read_txn(&read_only).map_err(status)?;
                self.context
                    .node
                    .metrics()
                    .mvcc
                    .record(response.operations());
                let revision = machine.store().current_revision();
                return Ok(Response::new(convert::txn_response(
                    response,
                    self.context.header(revision),
                )));
            }
            Err(writes) => writes,
        };
        match self.propose(guarded(&caller, Command::Txn(txn))).await? {
            (Outcome::Txn(response), revision) => Ok(Response::new(convert::txn_response(
                response,
                self.context.header(revision),
            ))),
            (other, _) => Err(unexpected_outcome("txn", other)),
        }
    }

    async fn compact(
        &self,
        request: Request<pb::CompactionRequest>,
    ) -> Result<Response<pb::CompactionResponse>, Status> {
        self.context.admit(&request, false)?;
        let caller = self.context.caller(&request)?;
        let request = request.into_inner();
        let (_, revision) = self
            .propose(guarded(
                &caller,
                Command::Compact {
                    revision: request.revision,
                },
            ))
            .await?;
        Ok(Response::new(pb::CompactionResponse {
            header: self.context.header(revision),
        }))
    }
}

/// True when every range in the txn is marked serializable (etcd's `isTxnSerializable`).
fn is_serializable(txn: &pb::TxnRequest) -> bool {
    use pb::request_op::Request;
    txn.success
        .iter()
        .chain(&txn.failure)
        .all(|operation| match &operation.request {
            Some(Request::RequestRange(range)) => range.serializable,
            Some(Request::RequestTxn(nested)) => is_serializable(nested),
            _ => true,
        })
}
