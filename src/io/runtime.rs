//! openraft's `AsyncRuntime` on top of the `tokio` this crate sees: real tokio normally,
//! madsim under `--cfg madsim`. openraft's own tokio runtime draws election jitter from an
//! unseeded generator madsim cannot intercept; this one uses madsim's, which the simulation
//! seed controls (and which is the OS-seeded thread generator outside simulation).

use openraft::{AsyncRuntime, OptionalSend};
use std::future::Future;
use std::ops::{Add, AddAssign, Sub, SubAssign};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

#[derive(Debug, Default, PartialEq, Eq)]
pub struct CairnRuntime;

/// An instant of the `io` clock, in the shape openraft wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct RaftInstant(tokio::time::Instant);

impl Add<Duration> for RaftInstant {
    type Output = Self;
    fn add(self, duration: Duration) -> Self {
        RaftInstant(self.0 + duration)
    }
}

impl AddAssign<Duration> for RaftInstant {
    fn add_assign(&mut self, duration: Duration) {
        self.0 += duration;
    }
}

impl Sub<Duration> for RaftInstant {
    type Output = Self;
    fn sub(self, duration: Duration) -> Self {
        RaftInstant(self.0 - duration)
    }
}

impl Sub<RaftInstant> for RaftInstant {
    type Output = Duration;
    fn sub(self, earlier: RaftInstant) -> Duration {
        self.0.saturating_duration_since(earlier.0)
    }
}

impl SubAssign<Duration> for RaftInstant {
    fn sub_assign(&mut self, duration: Duration) {
        self.0 -= duration;
    }
}

impl openraft::Instant for RaftInstant {
    /// By the member's own clock (which may drift in simulation): raft's election and
    /// heartbeat timers run on it as on a real host's.
    fn now() -> Self {
        RaftInstant(super::clock::now())
    }
}

impl RaftInstant {
    /// The real wait until `self` by the member's clock.
    fn real_wait(self) -> Duration {
        super::clock::real_duration(self.0.saturating_duration_since(super::clock::now()))
    }
}

pin_project_lite::pin_project! {
    /// A future with a deadline: madsim's own timeout type cannot be named, so this one is
    /// built from a sleep, identically in both modes.
    pub struct Timeout<T> {
        #[pin]
        future: T,
        #[pin]
        sleep: tokio::time::Sleep,
    }
}

/// The error of a future that missed its deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("deadline has elapsed")]
pub struct Elapsed;

impl<T: Future> Future for Timeout<T> {
    type Output = Result<T::Output, Elapsed>;

    fn poll(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(output) = this.future.poll(context) {
            return Poll::Ready(Ok(output));
        }
        match this.sleep.poll(context) {
            Poll::Ready(()) => Poll::Ready(Err(Elapsed)),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// Sender half of openraft's oneshot channel.
pub struct OneshotSender<T>(tokio::sync::oneshot::Sender<T>);

impl<T> std::fmt::Debug for OneshotSender<T> {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("OneshotSender")
    }
}

impl<T: OptionalSend> openraft::async_runtime::AsyncOneshotSendExt<T> for OneshotSender<T> {
    fn send(self, value: T) -> Result<(), T> {
        self.0.send(value)
    }
}

#[cfg(not(madsim))]
type Rng = rand::rngs::ThreadRng;
#[cfg(madsim)]
type Rng = madsim::rand::GlobalRng;

impl AsyncRuntime for CairnRuntime {
    type JoinError = tokio::task::JoinError;
    type JoinHandle<T: OptionalSend + 'static> = tokio::task::JoinHandle<T>;
    type Sleep = tokio::time::Sleep;
    type Instant = RaftInstant;
    type TimeoutError = Elapsed;
    type Timeout<R, T: Future<Output = R> + OptionalSend> = Timeout<T>;
    type ThreadLocalRng = Rng;
    type OneshotSender<T: OptionalSend> = OneshotSender<T>;
    type OneshotReceiverError = tokio::sync::oneshot::error::RecvError;
    type OneshotReceiver<T: OptionalSend> = tokio::sync::oneshot::Receiver<T>;

    fn spawn<T>(future: T) -> Self::JoinHandle<T::Output>
    where
        T: Future + OptionalSend + 'static,
        T::Output: OptionalSend + 'static,
    {
        tokio::spawn(future)
    }

    fn sleep(duration: Duration) -> Self::Sleep {
        tokio::time::sleep(super::clock::real_duration(duration))
    }

    fn sleep_until(deadline: Self::Instant) -> Self::Sleep {
        tokio::time::sleep(deadline.real_wait())
    }

    fn timeout<R, F: Future<Output = R> + OptionalSend>(
        duration: Duration,
        future: F,
    ) -> Self::Timeout<R, F> {
        Timeout {
            future,
            sleep: tokio::time::sleep(super::clock::real_duration(duration)),
        }
    }

    fn timeout_at<R, F: Future<Output = R> + OptionalSend>(
        deadline: Self::Instant,
        future: F,
    ) -> Self::Timeout<R, F> {
        Timeout {
            future,
            sleep: tokio::time::sleep(deadline.real_wait()),
        }
    }

    fn is_panic(join_error: &Self::JoinError) -> bool {
        join_error.is_panic()
    }

    fn thread_rng() -> Self::ThreadLocalRng {
        #[cfg(not(madsim))]
        {
            rand::thread_rng()
        }
        #[cfg(madsim)]
        {
            madsim::rand::thread_rng()
        }
    }

    fn oneshot<T: OptionalSend>() -> (Self::OneshotSender<T>, Self::OneshotReceiver<T>) {
        let (sender, receiver) = tokio::sync::oneshot::channel();
        (OneshotSender(sender), receiver)
    }
}

/// Random bytes for secrets (auth tokens, password salts): the operating system's CSPRNG
/// through `rand`'s thread generator in production, madsim's seeded generator in simulation
/// so a run replays exactly.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    use rand::RngCore;
    let mut bytes = [0u8; N];
    <CairnRuntime as AsyncRuntime>::thread_rng().fill_bytes(&mut bytes);
    bytes
}
