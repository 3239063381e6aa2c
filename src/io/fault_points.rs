//! Fault points (FoundationDB's BUGGIFY): places in the production code where the simulator
//! may make something rare happen on purpose (a WAL flush answered late, a snapshot chunk
//! lost, a batch of one), so the paths that handle it run in most seeds instead of almost
//! none. Each point a run turns on fires with its own seeded probability. Only the simulator
//! build has any: elsewhere `fires` is a constant `false` and the compiler drops each branch.

/// One fault point. Its name is what a scenario's `fault_points` table takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum FaultPoint {
    /// A WAL group commit, once durable, is answered 1-50 ms late, and its jobs in reverse
    /// order (every one of them is durable, so any order is correct).
    WalFlushDelayed,
    /// The leader fails to send one snapshot chunk (openraft must send the snapshot again).
    SnapshotChunkFails,
    /// The WAL cuts its segment after a group commit, full or not.
    WalSegmentCutEarly,
    /// A member starts a snapshot now, whatever `--snapshot-count` says.
    SnapshotNow,
    /// The proposer closes its batch after one command.
    ProposerBatchOfOne,
    /// The leader applies a forwarded proposal and then answers the follower with a timeout
    /// (the client must treat the outcome as unknown).
    ForwardTimesOutAfterApply,
    /// A read index round is lost: its reads fail with a timeout.
    ReadIndexRoundDropped,
    /// One apply of committed entries takes 1-100 ms longer.
    ApplySlowed,
}

impl FaultPoint {
    pub const ALL: [FaultPoint; 8] = [
        FaultPoint::WalFlushDelayed,
        FaultPoint::SnapshotChunkFails,
        FaultPoint::WalSegmentCutEarly,
        FaultPoint::SnapshotNow,
        FaultPoint::ProposerBatchOfOne,
        FaultPoint::ForwardTimesOutAfterApply,
        FaultPoint::ReadIndexRoundDropped,
        FaultPoint::ApplySlowed,
    ];

    pub fn name(self) -> &'static str {
        match self {
            FaultPoint::WalFlushDelayed => "wal-flush-delayed",
            FaultPoint::SnapshotChunkFails => "snapshot-chunk-fails",
            FaultPoint::WalSegmentCutEarly => "wal-segment-cut-early",
            FaultPoint::SnapshotNow => "snapshot-now",
            FaultPoint::ProposerBatchOfOne => "proposer-batch-of-one",
            FaultPoint::ForwardTimesOutAfterApply => "forward-times-out-after-apply",
            FaultPoint::ReadIndexRoundDropped => "read-index-round-dropped",
            FaultPoint::ApplySlowed => "apply-slowed",
        }
    }

    pub fn parse(name: &str) -> Option<FaultPoint> {
        FaultPoint::ALL
            .into_iter()
            .find(|point| point.name() == name)
    }
}

#[cfg(madsim)]
mod simulated {
    use super::FaultPoint;
    use rand::rngs::SmallRng;
    use rand::{Rng, SeedableRng};
    use std::cell::RefCell;

    pub struct Points {
        /// Percent of calls each point fires on (0: off).
        pub percent: [u32; FaultPoint::ALL.len()],
        pub fired: [u64; FaultPoint::ALL.len()],
        /// Apart from madsim's own generator, so turning points on leaves every other draw
        /// of the run where it was.
        pub random: SmallRng,
    }

    thread_local! {
        /// Per thread: a simulation runs on one thread of its own (`cairn-sim`'s `run`).
        pub static POINTS: RefCell<Option<Points>> = const { RefCell::new(None) };
    }

    pub fn with<T>(act: impl FnOnce(&mut Points) -> T) -> Option<T> {
        POINTS.with(|points| points.borrow_mut().as_mut().map(act))
    }

    pub fn new(seed: u64, percent: [u32; FaultPoint::ALL.len()]) -> Points {
        Points {
            percent,
            fired: [0; FaultPoint::ALL.len()],
            random: SmallRng::seed_from_u64(seed),
        }
    }

    pub fn fires(points: &mut Points, point: FaultPoint) -> bool {
        let percent = points.percent[point as usize];
        if percent == 0 || points.random.gen_range(0..100) >= percent {
            return false;
        }
        points.fired[point as usize] += 1;
        true
    }

    pub fn below(points: &mut Points, bound: u64) -> u64 {
        points.random.gen_range(0..bound.max(1))
    }
}

/// Turns the points listed on (each with the percent of calls it fires on) and every other
/// point off, for the simulation running on this thread; `seed` draws when each fires.
#[cfg(madsim)]
pub fn enable(seed: u64, points: &[(FaultPoint, u32)]) {
    let mut percent = [0; FaultPoint::ALL.len()];
    for &(point, chance) in points {
        percent[point as usize] = chance.min(100);
    }
    simulated::POINTS.with(|slot| *slot.borrow_mut() = Some(simulated::new(seed, percent)));
}

/// How often each point has fired in this thread's simulation so far (the run's report).
#[cfg(madsim)]
pub fn fired() -> Vec<(FaultPoint, u64)> {
    simulated::with(|points| {
        FaultPoint::ALL
            .into_iter()
            .filter(|point| points.percent[*point as usize] > 0)
            .map(|point| (point, points.fired[point as usize]))
            .collect()
    })
    .unwrap_or_default()
}

/// Outside the simulator there are no fault points to turn on.
#[cfg(not(madsim))]
pub fn enable(_seed: u64, points: &[(FaultPoint, u32)]) {
    assert!(
        points.is_empty(),
        "fault points exist only in the simulator build (--cfg madsim)"
    );
}

/// Whether `point` fires on this call: never outside the simulator.
#[inline(always)]
pub fn fires(point: FaultPoint) -> bool {
    #[cfg(madsim)]
    {
        simulated::with(|points| simulated::fires(points, point)).unwrap_or(false)
    }
    #[cfg(not(madsim))]
    {
        let _ = point;
        false
    }
}

/// A seeded number of milliseconds from 1 to `most_ms`, for a point that fired and delays
/// something (1 outside the simulator, where no point fires).
pub fn delay_ms(most_ms: u64) -> u64 {
    #[cfg(madsim)]
    {
        1 + simulated::with(|points| simulated::below(points, most_ms)).unwrap_or(0)
    }
    #[cfg(not(madsim))]
    {
        let _ = most_ms;
        1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_parses_back_and_names_are_distinct() {
        let mut names: Vec<&str> = FaultPoint::ALL.iter().map(|point| point.name()).collect();
        for point in FaultPoint::ALL {
            assert_eq!(FaultPoint::parse(point.name()), Some(point));
        }
        names.sort();
        names.dedup();
        assert_eq!(names.len(), FaultPoint::ALL.len());
    }

    #[cfg(not(madsim))]
    #[test]
    fn no_point_ever_fires_in_a_production_build() {
        assert!(FaultPoint::ALL.into_iter().all(|point| !fires(point)));
    }

    #[cfg(madsim)]
    #[test]
    fn a_point_fires_at_about_its_percent_and_only_when_on() {
        enable(7, &[(FaultPoint::ApplySlowed, 20)]);
        let count = (0..10_000)
            .filter(|_| fires(FaultPoint::ApplySlowed))
            .count();
        assert!((1_500..2_500).contains(&count), "fired {count} of 10000");
        assert!((0..1000).all(|_| !fires(FaultPoint::SnapshotNow)));
        assert_eq!(fired(), vec![(FaultPoint::ApplySlowed, count as u64)]);
        enable(7, &[]);
        assert!(!fires(FaultPoint::ApplySlowed));
    }
}
