//! Convergence: after healing, every member reports the same HashKV at the same revision.

use super::Violation;
use crate::history::History;

pub fn check(history: &History) -> Vec<Violation> {
    let hashes = &history.final_state.hashes;
    let Some((_, first)) = hashes.first() else {
        return vec![Violation::new(
            "convergence",
            "no member answered HashKV after healing",
        )];
    };
    if hashes.iter().all(|(_, hash)| hash == first) {
        return Vec::new();
    }
    vec![Violation::new(
        "convergence",
        format!(
            "HashKV at revision {} differs between members: {hashes:?}",
            history.final_state.hash_revision
        ),
    )]
}
