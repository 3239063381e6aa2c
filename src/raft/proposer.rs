//! Group commit above raft. openraft 0.9 turns every client write into its own log append
//! and waits for that append's fsync before taking the next one, so writes would go at one
//! fsync each. The proposer keeps one raft write in flight and packs every command that
//! arrives meanwhile into a single `Command::Batch` entry: one append, one fsync, and each
//! command still gets its own revision and its own answer.

use super::TypeConfig;
use crate::apply::{Applied, Command, Outcome};
use crate::base::EtcdError;
use openraft::Raft;
use tokio::sync::{mpsc, oneshot};

/// Commands packed into one entry at most.
pub const BATCH_COMMANDS_MAX: usize = 512;
/// Commands waiting for the next entry at most; beyond this proposals wait for room.
const QUEUE_LENGTH_MAX: usize = 16 * 1024;

type Reply = oneshot::Sender<Result<Applied, EtcdError>>;

#[derive(Clone)]
pub struct Proposer {
    queue: mpsc::Sender<(Command, Reply)>,
}

impl Proposer {
    /// Starts the batching task; `write` performs one raft write (with its timeout and error
    /// mapping) and is called with one command at a time.
    pub fn start<F, Fut>(raft: Raft<TypeConfig>, write: F) -> Proposer
    where
        F: Fn(Raft<TypeConfig>, Command) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<Applied, EtcdError>> + Send,
    {
        let (queue, mut pending) = mpsc::channel::<(Command, Reply)>(QUEUE_LENGTH_MAX);
        tokio::spawn(async move {
            while let Some(first) = pending.recv().await {
                let mut batch = vec![first];
                while batch.len() < BATCH_COMMANDS_MAX {
                    match pending.try_recv() {
                        Ok(next) => batch.push(next),
                        Err(_) => break,
                    }
                }
                if batch.len() == 1 {
                    let (command, reply) = batch.pop().expect("one command");
                    let _ = reply.send(write(raft.clone(), command).await);
                    continue;
                }
                let (commands, replies): (Vec<Command>, Vec<Reply>) = batch.into_iter().unzip();
                match write(raft.clone(), Command::Batch(commands)).await {
                    Ok(Applied {
                        result: Ok(Outcome::Batch(outcomes)),
                        ..
                    }) => {
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
        });
        Proposer { queue }
    }

    pub async fn propose(&self, command: Command) -> Result<Applied, EtcdError> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send((command, reply))
            .await
            .map_err(|_| EtcdError::Stopped)?;
        answer.await.unwrap_or(Err(EtcdError::Stopped))
    }
}
