//! Durability: after faults stop and every member is back, the final state holds every
//! acknowledged write, or a newer write of the same key.

use super::{KnownWrites, Violation};
use crate::history::{History, Response};

const NAME: &str = "durability";

pub fn check(history: &History, known: &KnownWrites) -> Vec<Violation> {
    let mut violations = Vec::new();
    let final_state = &history.final_state;
    if final_state.revision == 0 {
        return vec![Violation::new(NAME, "the final state could not be read")];
    }
    for operation in &history.operations {
        let Response::Written {
            revision,
            changed: true,
        } = operation.response
        else {
            continue;
        };
        let key = operation.request.key();
        if revision > final_state.revision {
            violations.push(Violation::new(
                NAME,
                format!(
                    "op {} was acknowledged at revision {revision}, beyond the final revision {}",
                    operation.id, final_state.revision
                ),
            ));
            continue;
        }
        let newest = known
            .latest(key, final_state.revision)
            .map(|(revision, _)| revision)
            .unwrap_or(0);
        let shown = final_state
            .keys
            .get(key)
            .map(|observed| observed.mod_revision);
        let survives = match shown {
            Some(mod_revision) => mod_revision >= revision,
            // Gone: fine only if a newer write deleted it (known, or unanswered but possible).
            None => {
                (newest >= revision
                    && known
                        .by_revision
                        .get(&newest)
                        .is_some_and(|write| write.value.is_none()))
                    || known.unobserved_delete_possible(
                        history,
                        key,
                        newest.max(revision),
                        final_state.revision,
                        crate::history::Millis::MAX,
                    )
            }
        };
        if !survives {
            violations.push(Violation::new(NAME, format!("acknowledged write op {} ({key} at revision {revision}) is lost: the final state shows {shown:?}", operation.id)));
        }
    }
    violations
}
