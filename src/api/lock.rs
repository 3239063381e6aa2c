//! v3lockpb.Lock: a distributed mutex owned by a lease, etcd's `concurrency.Mutex` run in the
//! member (see `recipes`). Lock answers once the caller's key is the oldest under the name;
//! the lock is held until Unlock deletes the key or the lease ends.

use super::pb::v3lockpb::{self as pb, lock_server::Lock};
use super::recipes::{self, CleanupOnCancel};
use super::Context;
use crate::apply::RequestOp;
use tonic::{Request, Response, Status};

pub struct LockService {
    context: Context,
}

impl LockService {
    pub fn new(context: Context) -> Self {
        LockService { context }
    }
}

#[tonic::async_trait]
impl Lock for LockService {
    async fn lock(
        &self,
        request: Request<pb::LockRequest>,
    ) -> Result<Response<pb::LockResponse>, Status> {
        let (context, request) = self.context.accept(request)?;
        let context = &context;
        let recipes::Waiter { lease, prefix, key } =
            recipes::Waiter::join(context, &request.name, request.lease).await?;
        // etcd's `tryAcquire`: join the waiters unless this lease already has (a second
        // Lock on the same lease and name gets the same key), and read the holder.
        let acquire = recipes::create_unless_exists(
            &key,
            recipes::put(&key, Default::default(), lease),
            vec![RequestOp::Range(recipes::first_created(&prefix))],
        );
        let (response, revision) = recipes::txn(context, acquire).await?;
        let my_revision = if response.succeeded {
            revision
        } else {
            match recipes::range_kvs(&response, 0).first() {
                Some(mine) => mine.create_revision,
                None => return Err(Status::unknown("cairn: the lock key vanished inside a txn")),
            }
        };
        let holder = recipes::range_kvs(&response, 1).first();
        if holder.is_none_or(|holder| holder.create_revision == my_revision) {
            return Ok(Response::new(pb::LockResponse {
                header: context.header(revision),
                key: key.clone(),
            }));
        }
        // Until the wait ends, a client that gives up leaves no waiter behind (etcd's
        // `Unlock` on failure); an error on the way removes the key too.
        let cleanup = CleanupOnCancel::delete(context, &key);
        recipes::wait_deletes(context, &prefix, my_revision - 1).await?;
        let (mine, revision) = recipes::get(context, &recipes::single_key(&key)).await?;
        cleanup.disarm();
        if mine.kvs.is_empty() {
            // The lease ended while waiting: the key went with it.
            return Err(Status::unknown(recipes::SESSION_EXPIRED));
        }
        Ok(Response::new(pb::LockResponse {
            header: context.header(revision),
            key: key.clone(),
        }))
    }

    async fn unlock(
        &self,
        request: Request<pb::UnlockRequest>,
    ) -> Result<Response<pb::UnlockResponse>, Status> {
        let (context, request) = self.context.accept(request)?;
        let revision = recipes::delete(&context, request.key).await?;
        Ok(Response::new(pb::UnlockResponse {
            header: context.header(revision),
        }))
    }
}
