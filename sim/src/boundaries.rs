//! Sizes the production code fixes, drawn from the seed down to tiny values so the code at
//! each limit (a WAL segment cut, a snapshot in many chunks, a revision's events split over
//! responses) runs in most seeds instead of almost none. Both worlds pass them as flags.

use crate::scenario::Scenario;
use crate::seeds::Stream;
use rand::Rng;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Boundaries {
    /// `--wal-segment-bytes` (production: 64 MiB).
    pub wal_segment_bytes: u64,
    /// `--snapshot-chunk-bytes` (production: 1 MiB).
    pub snapshot_chunk_bytes: usize,
    /// `--watch-events-per-response-max` (production: 1000).
    pub watch_events_per_response_max: usize,
}

impl Boundaries {
    /// Production's values: what a member runs with when nothing is drawn.
    pub const PRODUCTION: Boundaries = Boundaries {
        wal_segment_bytes: 64 << 20,
        snapshot_chunk_bytes: cairn::base::limits::SNAPSHOT_CHUNK_BYTES,
        watch_events_per_response_max: 1000,
    };

    /// From its own stream, so the other parameters draw as they did before these existed.
    pub fn draw(seed: u64, scenario: &Scenario) -> Boundaries {
        let mut random = Stream::Boundaries.random(seed);
        let production = Boundaries::PRODUCTION;
        let mut pick = |choices: &[u64]| choices[random.gen_range(0..choices.len())];
        let wal_segment_bytes = pick(&[4096, 65_536, production.wal_segment_bytes]);
        let snapshot_chunk_bytes = pick(&[512, 16_384, production.snapshot_chunk_bytes as u64]);
        let watch_events_per_response_max = pick(&[1, 2, 16, 1000]);
        Boundaries {
            wal_segment_bytes: scenario.wal_segment_bytes.unwrap_or(wal_segment_bytes),
            snapshot_chunk_bytes: scenario
                .snapshot_chunk_bytes
                .unwrap_or(snapshot_chunk_bytes as usize),
            watch_events_per_response_max: scenario
                .watch_events_per_response_max
                .unwrap_or(watch_events_per_response_max as usize),
        }
    }

    /// The members' flags for these sizes.
    pub fn flags(&self) -> Vec<String> {
        vec![
            format!("--wal-segment-bytes={}", self.wal_segment_bytes),
            format!("--snapshot-chunk-bytes={}", self.snapshot_chunk_bytes),
            format!(
                "--watch-events-per-response-max={}",
                self.watch_events_per_response_max
            ),
        ]
    }

    /// Sets every size in `scenario`, so the seed replays with them.
    pub fn fix_in(&self, scenario: &mut Scenario) {
        scenario.wal_segment_bytes = Some(self.wal_segment_bytes);
        scenario.snapshot_chunk_bytes = Some(self.snapshot_chunk_bytes);
        scenario.watch_events_per_response_max = Some(self.watch_events_per_response_max);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_accept_every_drawn_size() {
        for seed in 1..50 {
            let boundaries = Boundaries::draw(seed, &Scenario::default());
            let mut arguments = vec!["cairn".to_string()];
            arguments.extend(boundaries.flags());
            let config = <cairn::server::Config as clap::Parser>::try_parse_from(&arguments)
                .unwrap_or_else(|error| panic!("seed {seed}: {arguments:?}: {error}"));
            assert_eq!(config.wal_segment_bytes, boundaries.wal_segment_bytes);
            assert_eq!(config.snapshot_chunk_bytes, boundaries.snapshot_chunk_bytes);
            assert_eq!(
                config.watch_events_per_response_max,
                boundaries.watch_events_per_response_max
            );
        }
    }

    #[test]
    fn most_seeds_draw_some_size_below_production() {
        let below = (1..101)
            .filter(|seed| Boundaries::draw(*seed, &Scenario::default()) != Boundaries::PRODUCTION)
            .count();
        assert!(below > 90, "{below} of 100 seeds drew a small size");
    }
}
