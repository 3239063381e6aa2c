//! v3electionpb.Election: leader election on a name, etcd's `concurrency.Election` run in
//! the member (see `recipes`). Candidates hold keys `<name>/<lease in hex>`; the leader is
//! the oldest. Campaign answers once the caller leads, Proclaim changes the leader's value,
//! Resign steps down, Leader reads the current one and Observe streams every value each
//! successive leader holds.

use super::pb::v3electionpb::{self as pb, election_server::Election};
use super::recipes::{self, CleanupOnCancel, History};
use super::{convert, Context};
use crate::base::{Bytes, KeyRange, LeaseId, Revision};
use crate::mvcc::{EventKind, KeyValue};
use std::pin::Pin;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

/// Observe responses queued for a slow client before its task waits for it.
const OBSERVE_RESPONSES_QUEUED_MAX: usize = 16;

/// etcd's `ErrMissingLeaderKey`.
const MISSING_LEADER_KEY: &str = "\"leader\" field must be provided";

pub struct ElectionService {
    context: Context,
}

impl ElectionService {
    pub fn new(context: Context) -> Self {
        ElectionService { context }
    }
}

type ObserveStream =
    Pin<Box<dyn Stream<Item = Result<pb::LeaderResponse, Status>> + Send + 'static>>;
type Sender = mpsc::Sender<Result<pb::LeaderResponse, Status>>;

#[tonic::async_trait]
impl Election for ElectionService {
    async fn campaign(
        &self,
        request: Request<pb::CampaignRequest>,
    ) -> Result<Response<pb::CampaignResponse>, Status> {
        let (context, request) = self.context.accept(request)?;
        let context = &context;
        let recipes::Waiter { lease, prefix, key } =
            recipes::Waiter::join(context, &request.name, request.lease).await?;
        let value = Bytes::from(request.value);
        let enter = recipes::create_unless_exists(
            &key,
            recipes::put(&key, value.clone(), lease),
            Vec::new(),
        );
        let (response, header_revision) = recipes::txn(context, enter).await?;
        let mut leader_revision = header_revision;
        if !response.succeeded {
            // Already a candidate on this lease: keep the place in line, with the new value.
            let Some(existing) = recipes::range_kvs(&response, 0).first() else {
                return Err(Status::unknown(
                    "cairn: the candidate key vanished inside a txn",
                ));
            };
            leader_revision = existing.create_revision;
            if existing.value != value {
                if let Err(error) = proclaim(context, &key, leader_revision, lease, value).await {
                    let _ = resign(context, &key, leader_revision).await;
                    return Err(error);
                }
            }
        }
        // A client that gives up waiting resigns (etcd's cleanup on a canceled context);
        // any other error leaves the candidacy in place, as etcd's does.
        let cleanup = CleanupOnCancel::resign(context, &key, leader_revision);
        let waited = recipes::wait_deletes(context, &prefix, leader_revision - 1).await;
        cleanup.disarm();
        waited?;
        Ok(Response::new(pb::CampaignResponse {
            header: context.header(header_revision),
            leader: Some(pb::LeaderKey {
                name: request.name,
                key: key.clone(),
                rev: leader_revision,
                lease,
            }),
        }))
    }

    async fn proclaim(
        &self,
        request: Request<pb::ProclaimRequest>,
    ) -> Result<Response<pb::ProclaimResponse>, Status> {
        let (context, request) = self.context.accept(request)?;
        let leader = request
            .leader
            .ok_or_else(|| Status::unknown(MISSING_LEADER_KEY))?;
        // etcd resumes the election on a session for the given lease, which grants a new
        // one when it is 0; the proclaimed value is put with that session's lease.
        let lease = recipes::session_lease(&context, leader.lease).await?;
        let revision = proclaim(&context, &leader.key, leader.rev, lease, request.value).await?;
        Ok(Response::new(pb::ProclaimResponse {
            header: context.header(revision),
        }))
    }

    async fn leader(
        &self,
        request: Request<pb::LeaderRequest>,
    ) -> Result<Response<pb::LeaderResponse>, Status> {
        let (context, request) = self.context.accept(request)?;
        let prefix = recipes::prefix_of(&request.name);
        let (result, revision) = recipes::get(&context, &recipes::first_created(&prefix)).await?;
        let Some(leader) = result.kvs.into_iter().next() else {
            return Err(Status::unknown(recipes::NO_LEADER));
        };
        Ok(Response::new(leader_response(&context, revision, leader)))
    }

    type ObserveStream = ObserveStream;

    async fn observe(
        &self,
        request: Request<pb::LeaderRequest>,
    ) -> Result<Response<ObserveStream>, Status> {
        let (context, request) = self.context.accept(request)?;
        let prefix = recipes::prefix_of(&request.name);
        let (sender, receiver) = mpsc::channel(OBSERVE_RESPONSES_QUEUED_MAX);
        let context = context.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = observe_leaders(&context, &prefix, &sender) => {}
                () = sender.closed() => {}
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(receiver))))
    }

    async fn resign(
        &self,
        request: Request<pb::ResignRequest>,
    ) -> Result<Response<pb::ResignResponse>, Status> {
        let (context, request) = self.context.accept(request)?;
        let leader = request
            .leader
            .ok_or_else(|| Status::unknown(MISSING_LEADER_KEY))?;
        // etcd opens a session here too, granting a lease when the request names none; its
        // lease is unused, but the grant is part of what etcd does, so Cairn does it.
        recipes::session_lease(&context, leader.lease).await?;
        let revision = resign(&context, &leader.key, leader.rev).await?;
        Ok(Response::new(pb::ResignResponse {
            header: context.header(revision),
        }))
    }
}

/// `Election.Proclaim`: put the new value if `key` is still the one elected.
async fn proclaim(
    context: &Context,
    key: &Bytes,
    leader_revision: Revision,
    lease: LeaseId,
    value: Bytes,
) -> Result<Revision, Status> {
    let txn = crate::apply::TxnRequest {
        compares: vec![recipes::compare_created(key, leader_revision)],
        success: vec![recipes::put(key, value, lease)],
        failure: Vec::new(),
    };
    let (response, revision) = recipes::txn(context, txn).await?;
    if !response.succeeded {
        return Err(Status::unknown(recipes::NOT_LEADER));
    }
    Ok(revision)
}

/// `Election.Resign`: delete `key` if it is still the one elected; not being elected is no
/// error.
async fn resign(
    context: &Context,
    key: &Bytes,
    leader_revision: Revision,
) -> Result<Revision, Status> {
    let (_, revision) = recipes::txn(context, recipes::resign_txn(key, leader_revision)).await?;
    Ok(revision)
}

fn leader_response(context: &Context, revision: Revision, leader: KeyValue) -> pb::LeaderResponse {
    pb::LeaderResponse {
        header: context.header(revision),
        kv: Some(convert::key_value(leader)),
    }
}

/// etcd's `Election.observe`: the current leader (or the first to appear), then every value
/// it proclaims until its key is deleted, then the next leader. Ends, as etcd's does, when a
/// read fails or the history it follows is compacted away.
async fn observe_leaders(context: &Context, prefix: &[u8], sender: &Sender) {
    loop {
        let Ok((result, revision)) = recipes::get(context, &recipes::first_created(prefix)).await
        else {
            return;
        };
        let (revision, leader) = match result.kvs.into_iter().next() {
            Some(leader) => (revision, leader),
            None => match first_put(context, prefix, revision).await {
                Some(found) => found,
                None => return,
            },
        };
        let key = leader.key.clone();
        if send(context, sender, revision, leader).await.is_err() {
            return;
        }
        let mut history = History::new(context, KeyRange::single(key), revision + 1);
        'leader: loop {
            let Some((events, covered)) = history.next(context).await else {
                return;
            };
            for event in events {
                if event.kind == EventKind::Delete {
                    break 'leader;
                }
                if send(context, sender, covered, event.kv).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// The first key put under `prefix` from revision `from` on, with its revision.
async fn first_put(
    context: &Context,
    prefix: &[u8],
    from: Revision,
) -> Option<(Revision, KeyValue)> {
    let mut history = History::new(context, KeyRange::prefix(prefix), from);
    loop {
        let (events, _) = history.next(context).await?;
        if let Some(put) = events
            .into_iter()
            .find(|event| event.kind == EventKind::Put)
        {
            return Some((put.kv.mod_revision, put.kv));
        }
    }
}

async fn send(
    context: &Context,
    sender: &Sender,
    revision: Revision,
    leader: KeyValue,
) -> Result<(), mpsc::error::SendError<Result<pb::LeaderResponse, Status>>> {
    sender
        .send(Ok(leader_response(context, revision, leader)))
        .await
}
