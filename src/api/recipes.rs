//! etcd's concurrency recipes (clientv3/concurrency's Session, Mutex and Election), which
//! etcd's Lock and Election services run through an in-process client. Cairn runs the same
//! requests in the same order against its own node, so keys, revisions, headers and races
//! are etcd's: a waiter's key is `<name>/<lease in hex>`, the holder is the key under the
//! prefix with the lowest create revision, and a waiter waits for the deletion of the key
//! created just before its own.
//!
//! Errors reach the client as etcd's do: its in-process client turns the server's status
//! into a plain error, which gRPC then sends with code Unknown and etcd's message.

use super::{guarded, status, Context};
use crate::apply::{
    validate_txn, Command, Compare, CompareResult, CompareTarget, DeleteRequest, Outcome,
    PutRequest, RequestOp, ResponseOp, TxnRequest, TxnResponse,
};
use crate::base::{Bytes, KeyRange, LeaseId, Revision};
use crate::mvcc::{Event, KeyValue, RangeQuery, RangeResult, SortOrder, SortTarget};
use tonic::Status;

/// The TTL of the lease a session grants when the request names none (etcd's
/// `defaultSessionTTL`). etcd never keeps that lease alive: the server orphans the session
/// at once, so a lock or candidacy taken without a lease lapses after 60 seconds.
pub const SESSION_TTL_SECONDS: i64 = 60;

/// Events gathered per pass while following a key's history (an Observe stream).
const EVENTS_PER_PASS_MAX: usize = 256;

/// `concurrency.ErrSessionExpired`: the waiter's key vanished (its lease expired) while it
/// waited.
pub const SESSION_EXPIRED: &str = "mutex: session is expired";
/// `concurrency.ErrElectionNotLeader`.
pub const NOT_LEADER: &str = "election: not leader";
/// `concurrency.ErrElectionNoLeader`.
pub const NO_LEADER: &str = "election: no leader";

/// An error as etcd's in-process client hands it back to its Lock and Election servers.
pub fn client_error(server_status: Status) -> Status {
    Status::unknown(server_status.message().to_string())
}

/// Who waits on a name: the session's lease, the name's prefix, and the waiter's key.
pub struct Waiter {
    pub lease: LeaseId,
    pub prefix: Bytes,
    pub key: Bytes,
}

impl Waiter {
    /// A session on `lease` (granted when 0) waiting on `name`.
    pub async fn join(context: &Context, name: &[u8], lease: LeaseId) -> Result<Waiter, Status> {
        let lease = session_lease(context, lease).await?;
        let prefix = prefix_of(name);
        let key = waiter_key(&prefix, lease);
        Ok(Waiter { lease, prefix, key })
    }
}

/// The concurrency prefix of a lock or election name.
pub fn prefix_of(name: &[u8]) -> Bytes {
    let mut prefix = name.to_vec();
    prefix.push(b'/');
    Bytes::from(prefix)
}

/// A waiter's key: the prefix and its lease ID in lowercase hex (Go's `%x`).
pub fn waiter_key(prefix: &[u8], lease: LeaseId) -> Bytes {
    let mut key = prefix.to_vec();
    key.extend_from_slice(format!("{lease:x}").as_bytes());
    Bytes::from(key)
}

/// The lease a session runs on: the request's, or a fresh `SESSION_TTL_SECONDS` lease when
/// it names none (ID 0), as `concurrency.NewSession` grants.
pub async fn session_lease(context: &Context, lease: LeaseId) -> Result<LeaseId, Status> {
    if lease != 0 {
        return Ok(lease);
    }
    let applied = context
        .propose(Command::LeaseGrant {
            id: 0,
            ttl_seconds: SESSION_TTL_SECONDS,
        })
        .await
        .map_err(|error| client_error(status(error)))?;
    match applied
        .result
        .map_err(|error| client_error(status(error)))?
    {
        Outcome::LeaseGranted { id, .. } => Ok(id),
        other => Err(unexpected("lease grant", &other)),
    }
}

fn unexpected(what: &str, outcome: &Outcome) -> Status {
    tracing::error!(
        ?outcome,
        "a {what} applied with the outcome of another command"
    );
    Status::unknown(format!(
        "cairn: a {what} applied with an unexpected outcome"
    ))
}

/// A linearizable range, as the in-process client's Get; with the store revision it read.
pub async fn get(context: &Context, query: &RangeQuery) -> Result<(RangeResult, Revision), Status> {
    context
        .node
        .read_barrier()
        .await
        .map_err(|error| client_error(status(error)))?;
    let view = context.node.view();
    context
        .authorize_range(&context.acting_for, &view.machine, &query.range)
        .map_err(client_error)?;
    let store = view.machine.store();
    let result = store
        .range(query)
        .map_err(|error| client_error(status(error)))?;
    context
        .node
        .metrics()
        .mvcc
        .record(crate::base::metrics::Operations {
            ranges: 1,
            ..Default::default()
        });
    Ok((result, store.current_revision()))
}

/// A txn through raft; with the revision after it.
pub async fn txn(
    context: &Context,
    request: TxnRequest,
) -> Result<(TxnResponse, Revision), Status> {
    validate_txn(&request, &context.limits).map_err(|error| client_error(status(error)))?;
    let applied = context
        .propose(guarded(&context.acting_for, Command::Txn(request)))
        .await
        .map_err(|error| client_error(status(error)))?;
    match applied
        .result
        .map_err(|error| client_error(status(error)))?
    {
        Outcome::Txn(response) => Ok((response, applied.revision)),
        other => Err(unexpected("txn", &other)),
    }
}

/// Deletes one key; the revision after it.
pub async fn delete(context: &Context, key: Bytes) -> Result<Revision, Status> {
    let applied = context
        .propose(guarded(
            &context.acting_for,
            Command::Delete(DeleteRequest {
                range: KeyRange::single(key),
                prev_kv: false,
            }),
        ))
        .await
        .map_err(|error| client_error(status(error)))?;
    applied
        .result
        .map_err(|error| client_error(status(error)))?;
    Ok(applied.revision)
}

/// `clientv3.WithFirstCreate()` on a prefix: the key with the lowest create revision.
pub fn first_created(prefix: &[u8]) -> RangeQuery {
    RangeQuery {
        range: KeyRange::prefix(prefix),
        limit: 1,
        sort_order: SortOrder::Ascend,
        sort_target: SortTarget::Create,
        ..RangeQuery::default()
    }
}

/// `WithLastCreate()` and `WithMaxCreateRev(max)`: the newest key created at or before `max`.
fn last_created_before(prefix: &[u8], max_create_revision: Revision) -> RangeQuery {
    RangeQuery {
        range: KeyRange::prefix(prefix),
        limit: 1,
        sort_order: SortOrder::Descend,
        sort_target: SortTarget::Create,
        max_create_revision,
        ..RangeQuery::default()
    }
}

pub fn compare_created(key: &Bytes, create_revision: Revision) -> Compare {
    Compare {
        range: KeyRange::single(key.clone()),
        result: CompareResult::Equal,
        target: CompareTarget::Create(create_revision),
    }
}

pub fn put(key: &Bytes, value: Bytes, lease: LeaseId) -> RequestOp {
    RequestOp::Put(PutRequest {
        key: super::convert::owned(key.clone()),
        value: super::convert::owned(value),
        lease,
        ..PutRequest::default()
    })
}

/// A plain read of one key.
pub fn single_key(key: &Bytes) -> RangeQuery {
    RangeQuery {
        range: KeyRange::single(key.clone()),
        ..RangeQuery::default()
    }
}

/// The keys a txn's range response at `index` returned (empty when it is not a range).
pub fn range_kvs(response: &TxnResponse, index: usize) -> &[KeyValue] {
    match response.responses.get(index) {
        Some(ResponseOp::Range(result)) => &result.kvs,
        _ => &[],
    }
}

/// etcd's `waitDeletes`: waits until no key under `prefix` created at or before
/// `max_create_revision` remains, one deletion at a time from the newest.
pub async fn wait_deletes(
    context: &Context,
    prefix: &[u8],
    max_create_revision: Revision,
) -> Result<(), Status> {
    let query = last_created_before(prefix, max_create_revision);
    loop {
        let (result, _) = get(context, &query).await?;
        let Some(newest) = result.kvs.first() else {
            return Ok(());
        };
        wait_deleted(context, &newest.key, newest.create_revision).await?;
    }
}

/// Waits until the key created at `create_revision` is gone. etcd watches it for a DELETE;
/// in the member, a live version of the key with that create revision is exactly "not
/// deleted yet" (a delete and re-create would carry a new create revision), and no history
/// is needed, so compaction cannot interfere.
async fn wait_deleted(
    context: &Context,
    key: &[u8],
    create_revision: Revision,
) -> Result<(), Status> {
    let mut revisions = context.node.subscribe_revision();
    loop {
        let view = context.node.view();
        let store = view.machine.store();
        match store.get(key, store.current_revision()) {
            Some(kv) if kv.create_revision == create_revision => {}
            _ => return Ok(()),
        }
        drop(view);
        if revisions.changed().await.is_err() {
            return Err(client_error(status(crate::base::EtcdError::Stopped)));
        }
    }
}

/// Follows the history of `range` from revision `from` on: each call returns the next
/// events (of whole revisions) and the revision they cover, waiting for new writes when
/// there are none. None when the history it needs was compacted or the member stopped: etcd's
/// watch is canceled then, and the stream reading it ends.
pub struct History {
    range: KeyRange,
    next_revision: Revision,
    revisions: tokio::sync::watch::Receiver<Revision>,
}

impl History {
    pub fn new(context: &Context, range: KeyRange, from: Revision) -> History {
        History {
            range,
            next_revision: from,
            revisions: context.node.subscribe_revision(),
        }
    }

    pub async fn next(&mut self, context: &Context) -> Option<(Vec<Event>, Revision)> {
        loop {
            {
                let view = context.node.view();
                let store = view.machine.store();
                let current = store.current_revision();
                if self.next_revision <= current {
                    if self.next_revision < store.compact_revision() {
                        return None;
                    }
                    let (events, covered) = store.events(
                        &self.range,
                        self.next_revision,
                        current,
                        false,
                        EVENTS_PER_PASS_MAX,
                    );
                    self.next_revision = covered + 1;
                    if !events.is_empty() {
                        return Some((events, covered));
                    }
                }
            }
            self.revisions.changed().await.ok()?;
        }
    }
}

/// A cleanup etcd runs when a client gives up waiting (`Unlock` or `Resign` on the server's
/// own context). The RPC's future is dropped then, so it runs from `Drop`, on a task of its
/// own; `disarm` once the wait succeeded or failed in a way etcd does not clean up after.
pub struct CleanupOnCancel {
    context: Context,
    command: Option<Command>,
}

impl CleanupOnCancel {
    /// Deletes `key` (a lock waiter's cleanup).
    pub fn delete(context: &Context, key: &Bytes) -> CleanupOnCancel {
        CleanupOnCancel {
            context: context.clone(),
            command: Some(guarded(
                &context.acting_for,
                Command::Delete(DeleteRequest {
                    range: KeyRange::single(key.clone()),
                    prev_kv: false,
                }),
            )),
        }
    }

    /// Deletes `key` if it is still the one created at `create_revision` (a candidate's
    /// resignation).
    pub fn resign(context: &Context, key: &Bytes, create_revision: Revision) -> CleanupOnCancel {
        CleanupOnCancel {
            context: context.clone(),
            command: Some(guarded(
                &context.acting_for,
                Command::Txn(resign_txn(key, create_revision)),
            )),
        }
    }

    pub fn disarm(mut self) {
        self.command = None;
    }
}

impl Drop for CleanupOnCancel {
    fn drop(&mut self) {
        let Some(command) = self.command.take() else {
            return;
        };
        let node = self.context.node.clone();
        tokio::spawn(async move {
            if let Err(error) = node.propose(command).await {
                tracing::warn!(%error, "could not remove the key of a canceled lock or campaign");
            }
        });
    }
}

/// `Election.Resign`'s txn: delete the leader key if it is still the one elected.
pub fn resign_txn(key: &Bytes, create_revision: Revision) -> TxnRequest {
    TxnRequest {
        compares: vec![compare_created(key, create_revision)],
        success: vec![RequestOp::Delete(DeleteRequest {
            range: KeyRange::single(key.clone()),
            prev_kv: false,
        })],
        failure: Vec::new(),
    }
}

/// A waiter's first request (etcd's `tryAcquire` and `Campaign` txns): create `key` unless
/// it exists, and read what the caller needs either way.
pub fn create_unless_exists(
    key: &Bytes,
    put: RequestOp,
    then_and_else: Vec<RequestOp>,
) -> TxnRequest {
    let mut success = vec![put];
    success.extend(then_and_else.iter().cloned());
    let mut failure = vec![RequestOp::Range(single_key(key))];
    failure.extend(then_and_else);
    TxnRequest {
        compares: vec![compare_created(key, 0)],
        success,
        failure,
    }
}
