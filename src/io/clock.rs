//! Time. Everything above `io` asks here; in simulation this is madsim's virtual clock.

use std::time::Duration;

/// A monotonic instant (tokio's, which is madsim's under `--cfg madsim`).
pub type Instant = tokio::time::Instant;

/// Now by the calling member's clock: the host's monotonic clock in production; in
/// simulation the member's own node clock (`drift`), which may run fast or slow or jump, as
/// a real host's does. Every duration a member measures (leases, tokens, request deadlines,
/// raft's timers) comes from here, and `sleep`, `timeout` and `interval` wait by it.
pub fn now() -> Instant {
    #[cfg(madsim)]
    {
        origin() + Duration::from_micros(local_micros())
    }
    #[cfg(not(madsim))]
    {
        Instant::now()
    }
}

/// Milliseconds since one origin, for modules that take time as a number. The origin is
/// the same for every thread of the process: a deadline computed on one tokio worker is
/// compared on another (a per-thread origin once made keepalives on the multi-threaded
/// runtime renew leases into the past). In simulation the origin belongs to the simulation,
/// which runs on one thread of its own, so parallel simulations in one process never share
/// it.
pub fn monotonic_ms() -> u64 {
    local_micros() / 1000
}

/// Microseconds since the origin by the calling member's clock: real elapsed time in
/// production, the node's drifting clock in simulation (`drift`).
fn local_micros() -> u64 {
    let real_micros = origin().elapsed().as_micros() as u64;
    #[cfg(madsim)]
    {
        drift::local_micros(real_micros)
    }
    #[cfg(not(madsim))]
    {
        real_micros
    }
}

/// The real time a wait of `local` takes by the calling member's clock (the same in
/// production; shorter on a fast simulated clock, longer on a slow one).
pub(crate) fn real_duration(local: Duration) -> Duration {
    #[cfg(madsim)]
    {
        drift::real_duration(local)
    }
    #[cfg(not(madsim))]
    {
        local
    }
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
    tokio::time::sleep(real_duration(duration)).await
}

/// `future`'s output, or `Err(Elapsed)` if `duration` passes first. The deadline counts
/// from this call, not from the first poll.
pub fn timeout<F: std::future::Future>(
    duration: Duration,
    future: F,
) -> impl std::future::Future<Output = Result<F::Output, Elapsed>> {
    let bounded = tokio::time::timeout(real_duration(duration), future);
    async move { bounded.await.map_err(|_| Elapsed) }
}

/// A timeout passed before the future it bounded finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Elapsed;

/// Ticks every `period`, the first at once (tokio's interval: a late tick fires as soon as
/// possible, then the schedule goes on).
pub fn interval(period: Duration) -> Interval {
    tokio::time::interval(real_duration(period))
}

pub type Interval = tokio::time::Interval;

/// Each simulated member's clock: a rate a little off real time, and forward jumps (a VM
/// resumed, a clock stepped). Members measure leases, tokens, pre-vote windows and raft's
/// timers by it, as a real member does by its own host's clock. Set by the simulator,
/// per madsim node; a node nobody set runs at real time.
#[cfg(madsim)]
pub mod drift {
    use madsim::task::NodeId;
    use std::cell::RefCell;
    use std::collections::BTreeMap;
    use std::time::Duration;

    /// A node's clock: `local = anchor_local + (real - anchor_real) × (1 + rate_ppm / 10⁶)`.
    #[derive(Debug, Clone, Copy, Default)]
    struct NodeClock {
        rate_ppm: i64,
        anchor_real_micros: u64,
        anchor_local_micros: u64,
    }

    impl NodeClock {
        fn local(&self, real_micros: u64) -> u64 {
            let elapsed = real_micros.saturating_sub(self.anchor_real_micros) as i128;
            let scaled = elapsed * (1_000_000 + self.rate_ppm as i128) / 1_000_000;
            self.anchor_local_micros + scaled.max(0) as u64
        }
    }

    /// The slowest and fastest rates a clock may be set to: half and twice real time.
    pub const RATE_PPM_RANGE: std::ops::RangeInclusive<i64> = -500_000..=1_000_000;

    thread_local! {
        /// Per simulated node: a simulation runs on one thread of its own.
        static CLOCKS: RefCell<BTreeMap<NodeId, NodeClock>> = const { RefCell::new(BTreeMap::new()) };
    }

    fn current_node() -> Option<NodeId> {
        // Unit tests of the simulator build run members' code with no simulation around it.
        madsim::runtime::Handle::try_current().ok()?;
        Some(madsim::plugin::node())
    }

    fn clock_of(node: NodeId) -> NodeClock {
        CLOCKS.with(|clocks| clocks.borrow().get(&node).copied().unwrap_or_default())
    }

    fn real_micros() -> u64 {
        super::origin().elapsed().as_micros() as u64
    }

    pub(super) fn local_micros(real_micros: u64) -> u64 {
        match current_node() {
            Some(node) => clock_of(node).local(real_micros),
            None => real_micros,
        }
    }

    pub(super) fn real_duration(local: Duration) -> Duration {
        let Some(node) = current_node() else {
            return local;
        };
        let rate_ppm = clock_of(node).rate_ppm;
        let micros = local.as_micros() * 1_000_000 / (1_000_000 + rate_ppm) as u128;
        Duration::from_micros(micros.min(u64::MAX as u128) as u64)
    }

    /// From now on `node`'s clock runs at `1 + rate_ppm / 10⁶` of real time, going on from
    /// where it reads now (it never steps back).
    pub fn set_rate(node: NodeId, rate_ppm: i64) {
        assert!(
            RATE_PPM_RANGE.contains(&rate_ppm),
            "clock rate {rate_ppm} ppm"
        );
        re_anchor(node, |clock| clock.rate_ppm = rate_ppm);
    }

    /// `node`'s clock steps forward by `forward` at once. Timers already waiting keep their
    /// real deadlines; every reading from now on is later.
    pub fn jump(node: NodeId, forward: Duration) {
        re_anchor(node, |clock| {
            clock.anchor_local_micros += forward.as_micros() as u64
        });
    }

    /// Anchors `node`'s clock at its reading now, then lets `change` adjust it.
    fn re_anchor(node: NodeId, change: impl FnOnce(&mut NodeClock)) {
        let real = real_micros();
        CLOCKS.with(|clocks| {
            let mut clocks = clocks.borrow_mut();
            let clock = clocks.entry(node).or_default();
            *clock = NodeClock {
                rate_ppm: clock.rate_ppm,
                anchor_real_micros: real,
                anchor_local_micros: clock.local(real),
            };
            change(clock);
        });
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn a_clock_runs_at_its_rate_from_where_it_was_and_jumps_forward() {
            let mut clock = NodeClock::default();
            assert_eq!(clock.local(1_000_000), 1_000_000);
            // 10% fast from real second 1.
            clock = NodeClock {
                rate_ppm: 100_000,
                anchor_real_micros: 1_000_000,
                anchor_local_micros: clock.local(1_000_000),
            };
            assert_eq!(clock.local(2_000_000), 2_100_000);
            // Half speed, never below where it was.
            clock = NodeClock {
                rate_ppm: -500_000,
                anchor_real_micros: 2_000_000,
                anchor_local_micros: clock.local(2_000_000) + 300_000,
            };
            assert_eq!(clock.local(2_000_000), 2_400_000);
            assert_eq!(clock.local(4_000_000), 3_400_000);
            assert_eq!(clock.local(1_000), 2_400_000);
        }
    }
}

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
