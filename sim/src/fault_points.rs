//! Which fault points (`cairn::io::fault_points`) a run turns on, and how often each fires:
//! each point is on in about half the seeds (swarm testing: a point that masks another is
//! off in some seeds), firing on 1, 5 or 20 percent of its calls.

use crate::scenario::Scenario;
use crate::seeds::Stream;
use cairn::io::fault_points::FaultPoint;
use rand::Rng;
use std::collections::BTreeMap;

/// The points on, each with the percent of calls it fires on.
pub fn draw(seed: u64, scenario: &Scenario) -> Vec<(FaultPoint, u32)> {
    if let Some(table) = &scenario.fault_points {
        // In `ALL`'s order, as drawn: a run fixed as a scenario prints (and traces) the
        // same parameters.
        return FaultPoint::ALL
            .into_iter()
            .filter_map(|point| Some((point, *table.get(point.name())?)))
            .filter(|(_, percent)| *percent > 0)
            .collect();
    }
    let mut random = Stream::FaultPoints.random(seed);
    FaultPoint::ALL
        .into_iter()
        .filter_map(|point| {
            let on = random.gen_bool(0.5);
            let percent = [1, 5, 20][random.gen_range(0..3)];
            on.then_some((point, percent))
        })
        .collect()
}

/// The scenario table for `points` (what `Params::as_scenario` writes).
pub fn table(points: &[(FaultPoint, u32)]) -> BTreeMap<String, u32> {
    points
        .iter()
        .map(|(point, percent)| (point.name().to_string(), *percent))
        .collect()
}

/// A scenario's table names only known points.
pub fn check_names(table: &BTreeMap<String, u32>) -> Result<(), String> {
    match table.keys().find(|name| FaultPoint::parse(name).is_none()) {
        Some(name) => Err(format!(
            "unknown fault point {name:?} (known: {:?})",
            FaultPoint::ALL.map(FaultPoint::name)
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_point_is_on_in_some_seeds_and_off_in_others() {
        let runs: Vec<_> = (1..201)
            .map(|seed| draw(seed, &Scenario::default()))
            .collect();
        for point in FaultPoint::ALL {
            let on = runs
                .iter()
                .filter(|points| points.iter().any(|(on, _)| *on == point))
                .count();
            assert!((50..150).contains(&on), "{point:?} on in {on} of 200");
        }
    }

    #[test]
    fn a_scenario_table_fixes_the_points() {
        let scenario = Scenario {
            fault_points: Some(BTreeMap::from([
                ("apply-slowed".to_string(), 5),
                ("snapshot-now".to_string(), 0),
            ])),
            ..Scenario::default()
        };
        assert_eq!(draw(3, &scenario), vec![(FaultPoint::ApplySlowed, 5)]);
        assert!(check_names(&BTreeMap::from([("no-such".to_string(), 1)])).is_err());
    }
}
