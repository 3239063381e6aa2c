//! Group commit above raft. openraft 0.9 turns every client write into its own log append
//! and waits for that append's fsync before taking the next one, so writes would go at one
//! fsync each. The proposer keeps one raft write in flight and packs every command that
//! arrives meanwhile into a single `Command::Batch` entry: one append, one fsync, and each
//! command still gets its own revision and its own answer. A batch is capped by count and
//! by encoded bytes (`base::limits`), so it is always one WAL record recovery accepts and one
//! entry a follower can receive.

use super::error::NodeError;
use super::types::TypeConfig;
use crate::apply::{Applied, Command, Outcome};
use crate::base::limits::{BATCH_COMMANDS_MAX, COMMAND_BYTES_MAX};
use crate::base::EtcdError;
use crate::io::fault_points::{self, FaultPoint};
use crate::io::planted::{planted, PlantedBug};
use crate::storage::codec;
use openraft::Raft;
use tokio::sync::{mpsc, oneshot};

/// Commands waiting for the next entry at most; beyond this proposals wait for room.
const QUEUE_LENGTH_MAX: usize = 16 * 1024;

type Reply = oneshot::Sender<Result<Applied, NodeError>>;

/// A command waiting to be proposed, with its encoded size measured once.
struct Pending {
    command: Command,
    size_bytes: usize,
    reply: Reply,
}

#[derive(Clone)]
pub struct Proposer {
    queue: mpsc::Sender<Pending>,
}

/// Takes the next batch: `first`, then whatever `next` yields while the batch stays under
/// `bytes_max` and `BATCH_COMMANDS_MAX`. The command that would pass the byte cap is handed
/// back to start the following batch, so no command waits behind a cap it does not fit.
fn take_batch<T>(
    first: T,
    size_of: impl Fn(&T) -> usize,
    bytes_max: usize,
    mut next: impl FnMut() -> Option<T>,
) -> (Vec<T>, Option<T>) {
    let mut total_bytes = size_of(&first);
    let mut batch = vec![first];
    let commands_max = if fault_points::fires(FaultPoint::ProposerBatchOfOne) {
        1
    } else {
        BATCH_COMMANDS_MAX
    };
    while batch.len() < commands_max {
        let Some(item) = next() else { break };
        let size_bytes = size_of(&item);
        if total_bytes + size_bytes > bytes_max {
            return (batch, Some(item));
        }
        total_bytes += size_bytes;
        batch.push(item);
    }
    (batch, None)
}

impl Proposer {
    /// Starts the batching task; `write` performs one raft write (with its timeout and error
    /// mapping) and is called with one command at a time. A batch's commands encode to at
    /// most `batch_bytes_max` bytes (a single larger command goes alone).
    pub fn start<F, Fut>(raft: Raft<TypeConfig>, batch_bytes_max: usize, write: F) -> Proposer
    where
        F: Fn(Raft<TypeConfig>, Command) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<Applied, NodeError>> + Send,
    {
        let (queue, mut waiting) = mpsc::channel::<Pending>(QUEUE_LENGTH_MAX);
        tokio::spawn(async move {
            let mut carried: Option<Pending> = None;
            loop {
                let first = match carried.take() {
                    Some(pending) => pending,
                    None => match waiting.recv().await {
                        Some(pending) => pending,
                        None => return,
                    },
                };
                let (batch, left_over) = take_batch(
                    first,
                    |pending| pending.size_bytes,
                    batch_bytes_max,
                    || waiting.try_recv().ok(),
                );
                if left_over.is_some() {
                    tracing::debug!(
                        commands = batch.len(),
                        bytes_max = batch_bytes_max,
                        "batch closed at its byte cap"
                    );
                }
                carried = left_over;
                write_batch(&raft, &write, batch).await;
            }
        });
        Proposer { queue }
    }

    pub async fn propose(&self, command: Command) -> Result<Applied, NodeError> {
        let size_bytes = codec::encoded_len(&command);
        // The api layer refuses requests over --max-request-bytes, whose ceiling bounds this;
        // a larger command would become an entry no WAL record or peer message may carry.
        if size_bytes > COMMAND_BYTES_MAX {
            return Err(EtcdError::RequestTooLarge.into());
        }
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Pending {
                command,
                size_bytes,
                reply,
            })
            .await
            .map_err(|_| NodeError::Stopped)?;
        answer.await.unwrap_or(Err(NodeError::Stopped))
    }
}

async fn write_batch<F, Fut>(raft: &Raft<TypeConfig>, write: &F, mut batch: Vec<Pending>)
where
    F: Fn(Raft<TypeConfig>, Command) -> Fut + Sync,
    Fut: std::future::Future<Output = Result<Applied, NodeError>> + Send,
{
    if batch.len() == 1 {
        let pending = batch.pop().expect("one command");
        let _ = pending
            .reply
            .send(write(raft.clone(), pending.command).await);
        return;
    }
    let (commands, replies): (Vec<Command>, Vec<Reply>) = batch
        .into_iter()
        .map(|pending| (pending.command, pending.reply))
        .unzip();
    match write(raft.clone(), Command::Batch(commands)).await {
        Ok(Applied {
            result: Ok(Outcome::Batch(mut outcomes)),
            ..
        }) => {
            if planted(PlantedBug::BatchAnswersOutOfOrder) {
                outcomes.reverse();
            }
            assert_eq!(
                outcomes.len(),
                replies.len(),
                "a batch yields one outcome per command"
            );
            for (reply, outcome) in replies.into_iter().zip(outcomes) {
                let _ = reply.send(Ok(outcome));
            }
        }
        Ok(other) => unreachable!("a batch applied as {other:?}"),
        Err(error) => {
            for reply in replies {
                let _ = reply.send(Err(error.clone()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_closes_before_its_byte_cap_and_carries_the_next_command() {
        let mut sizes = vec![400, 300, 200, 100].into_iter();
        let (batch, left_over) = take_batch(500, |size| *size, 1000, || sizes.next());
        assert_eq!(
            batch,
            vec![500, 400],
            "500 + 400 fits 1000; 300 more would not"
        );
        assert_eq!(
            left_over,
            Some(300),
            "the command that did not fit starts the next batch"
        );
        let (batch, left_over) = take_batch(300, |size| *size, 1000, || sizes.next());
        assert_eq!((batch, left_over), (vec![300, 200, 100], None));
    }

    #[test]
    fn a_command_larger_than_the_cap_goes_alone() {
        let mut sizes = vec![10].into_iter();
        let (batch, left_over) = take_batch(5000, |size| *size, 1000, || sizes.next());
        assert_eq!((batch, left_over), (vec![5000], Some(10)));
    }

    #[test]
    fn a_batch_of_small_commands_stops_at_the_count_cap() {
        let mut remaining = BATCH_COMMANDS_MAX * 2;
        let (batch, left_over) = take_batch(
            1,
            |size| *size,
            usize::MAX,
            || {
                remaining -= 1;
                Some(1)
            },
        );
        assert_eq!(batch.len(), BATCH_COMMANDS_MAX);
        assert_eq!(left_over, None);
    }
}
