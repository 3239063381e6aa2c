//! The members' clocks. In half the seeds each member's clock runs a little fast or slow,
//! within the rate the lease checker assumes (`CLOCK_RATE_BOUND_PPM`), and those seeds may
//! also have the `clock-jump` fault step a member's clock forward. Drawn from a stream of
//! their own, so a seed whose clocks stay true draws every other parameter as before.

use crate::scenario::Scenario;
use crate::seeds::Stream;
use rand::Rng;

/// How far a member's clock rate may be off real time, in parts per million, for the lease
/// guarantee to hold: a leader whose clock runs fast by this much expires a lease this much
/// early. etcd makes the same assumption (its leases are measured by the leader's clock).
/// Quartz oscillators are off by tens of ppm; 1% leaves room for a VM's clock as well.
pub const CLOCK_RATE_BOUND_PPM: i64 = 10_000;

/// The most members a run has: rates are drawn for all of them whatever the run's size, so
/// the draw does not depend on it.
const MEMBERS_MAX: usize = 7;

/// Each member's clock rate, and whether clock jumps join the faults (when the scenario does
/// not list them).
pub fn draw(seed: u64, members: usize, scenario: &Scenario) -> (Vec<i64>, bool) {
    let mut random = Stream::Clocks.random(seed);
    let drifting = random.gen_bool(0.5);
    let mut rates_ppm: Vec<i64> = (0..MEMBERS_MAX)
        .map(|_| random.gen_range(-CLOCK_RATE_BOUND_PPM..=CLOCK_RATE_BOUND_PPM))
        .collect();
    let jumps = drifting && random.gen_bool(0.6);
    if !drifting {
        rates_ppm.fill(0);
    }
    if let Some(fixed) = &scenario.clock_rates_ppm {
        rates_ppm = fixed.clone();
    }
    rates_ppm.resize(members, 0);
    (rates_ppm, jumps)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn about_half_the_seeds_drift_and_every_rate_is_within_the_bound() {
        let mut drifting = 0;
        for seed in 1..201 {
            let (rates, _) = draw(seed, 5, &Scenario::default());
            assert_eq!(rates.len(), 5);
            assert!(rates.iter().all(|rate| rate.abs() <= CLOCK_RATE_BOUND_PPM));
            if rates.iter().any(|rate| *rate != 0) {
                drifting += 1;
            }
        }
        assert!(
            (70..=130).contains(&drifting),
            "{drifting} of 200 seeds drift"
        );
    }

    #[test]
    fn a_scenario_fixes_the_rates() {
        let scenario = Scenario {
            clock_rates_ppm: Some(vec![600_000, -3]),
            ..Scenario::default()
        };
        assert_eq!(draw(9, 3, &scenario).0, vec![600_000, -3, 0]);
    }
}
