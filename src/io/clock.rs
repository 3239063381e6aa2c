//! Time. Everything above `io` asks here; in simulation this is madsim's virtual clock.

use std::time::Duration;

/// A monotonic instant (tokio's, which is madsim's under `--cfg madsim`).
pub type Instant = tokio::time::Instant;

pub fn now() -> Instant {
    Instant::now()
}

/// Milliseconds since one origin, for modules that take time as a number. The origin is
/// the same for every thread of the process: a deadline computed on one tokio worker is
/// compared on another (a per-thread origin once made keepalives on the multi-threaded
/// runtime renew leases into the past). In simulation the origin belongs to the simulation,
/// which runs on one thread of its own, so parallel simulations in one process never share
/// it.
pub fn monotonic_ms() -> u64 {
    origin().elapsed().as_millis() as u64
}

#[cfg(not(madsim))]
fn origin() -> Instant {
    static ORIGIN: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *ORIGIN.get_or_init(Instant::now)
}

#[cfg(madsim)]
fn origin() -> Instant {
    thread_local! {
        static ORIGIN: Instant = Instant::now();
    }
    ORIGIN.with(|origin| *origin)
}

pub async fn sleep(duration: Duration) {
    tokio::time::sleep(duration).await
}

/// `future`'s output, or `Err(Elapsed)` if `duration` passes first. The deadline counts
/// from this call, not from the first poll.
pub fn timeout<F: std::future::Future>(
    duration: Duration,
    future: F,
) -> impl std::future::Future<Output = Result<F::Output, Elapsed>> {
    let bounded = tokio::time::timeout(duration, future);
    async move { bounded.await.map_err(|_| Elapsed) }
}

/// A timeout passed before the future it bounded finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Elapsed;

/// Ticks every `period`, the first at once (tokio's interval: a late tick fires as soon as
/// possible, then the schedule goes on).
pub fn interval(period: Duration) -> Interval {
    tokio::time::interval(period)
}

pub type Interval = tokio::time::Interval;

#[cfg(all(test, not(madsim)))]
mod tests {
    use super::*;

    /// The contract the lessor relies on: every thread reads the same clock. Threads started
    /// at different times must agree on "now" to within scheduling noise, not differ by how
    /// late each first asked.
    #[test]
    fn every_thread_reads_the_same_clock() {
        let first = monotonic_ms();
        std::thread::sleep(Duration::from_millis(300));
        let readings: Vec<u64> = (0..8)
            .map(|_| std::thread::spawn(monotonic_ms))
            .map(|thread| thread.join().unwrap())
            .collect();
        let main_now = monotonic_ms();
        for reading in readings {
            assert!(
                reading >= first + 300,
                "a new thread read {reading} ms, {first} ms + 300 ms slept"
            );
            assert!(
                reading <= main_now,
                "a thread read {reading} ms after main read {main_now}"
            );
        }
    }

    #[test]
    fn tokio_workers_agree_on_deadlines() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(4)
            .enable_time()
            .build()
            .unwrap();
        runtime.block_on(async {
            // A deadline set on one worker and read on others, as a keepalive and the expiry
            // check do.
            let deadline_ms = monotonic_ms() + 200;
            let mut tasks = Vec::new();
            for _ in 0..16 {
                tasks.push(tokio::spawn(async move {
                    sleep(Duration::from_millis(250)).await;
                    monotonic_ms() >= deadline_ms
                }));
            }
            for task in tasks {
                assert!(
                    task.await.unwrap(),
                    "a worker saw the deadline not yet passed"
                );
            }
            let started = now();
            sleep(Duration::from_millis(50)).await;
            assert!(
                started.elapsed() >= Duration::from_millis(50),
                "timers wait at least as long as asked"
            );
        });
    }
}

/// Seconds since the Unix epoch by the wall clock (madsim's simulated one in simulation),
/// for the few things that must agree across members and restarts: JWT expiry times.
pub fn wall_seconds() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}
