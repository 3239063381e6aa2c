//! Batched read index: concurrent linearizable reads share one leadership confirmation.
//! A read joins the next round to start after it arrived (never one already in flight, whose
//! confirmation may predate the read), so each read still sees every write acknowledged
//! before it began.

use crate::base::EtcdError;
use std::sync::Mutex;
use tokio::sync::oneshot;

/// Reads waiting for a round at most; beyond this a read fails fast instead of queueing.
pub const READS_WAITING_MAX: usize = 100_000;

type Waiter = oneshot::Sender<Result<u64, EtcdError>>;

#[derive(Default)]
pub struct ReadBatcher {
    state: Mutex<BatchState>,
}

#[derive(Default)]
struct BatchState {
    running: bool,
    waiting: Vec<Waiter>,
}

impl ReadBatcher {
    /// Queues a read. Returns its receiver, and whether the caller must start the rounds.
    pub fn join(&self) -> Result<(oneshot::Receiver<Result<u64, EtcdError>>, bool), EtcdError> {
        let (sender, receiver) = oneshot::channel();
        let mut state = self.state.lock().unwrap();
        if state.waiting.len() >= READS_WAITING_MAX {
            return Err(EtcdError::Timeout);
        }
        state.waiting.push(sender);
        let start = !std::mem::replace(&mut state.running, true);
        Ok((receiver, start))
    }

    /// Takes the reads for the next round; `None` (and rounds stop) when nobody waits.
    pub fn next_round(&self) -> Option<Vec<Waiter>> {
        let mut state = self.state.lock().unwrap();
        if state.waiting.is_empty() {
            state.running = false;
            return None;
        }
        Some(std::mem::take(&mut state.waiting))
    }
}

pub fn finish_round(waiters: Vec<Waiter>, result: Result<u64, EtcdError>) {
    for waiter in waiters {
        let _ = waiter.send(result.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_arriving_during_a_round_wait_for_the_next() {
        let batcher = ReadBatcher::default();
        let (mut first, start) = batcher.join().unwrap();
        assert!(start);
        let round = batcher.next_round().unwrap();
        let (mut second, start_again) = batcher.join().unwrap();
        assert!(!start_again, "one round runner at a time");
        finish_round(round, Ok(7));
        assert_eq!(first.try_recv().unwrap(), Ok(7));
        assert!(
            second.try_recv().is_err(),
            "the later read was not answered by the earlier round"
        );
        finish_round(batcher.next_round().unwrap(), Ok(9));
        assert_eq!(second.try_recv().unwrap(), Ok(9));
        assert!(batcher.next_round().is_none());
    }
}
