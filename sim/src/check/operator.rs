//! Unsafe operator requests: every membership request etcd refuses (a peer URL taken, a
//! voter promoted, an unknown member removed, a voter added while too few members run) was
//! refused with etcd's own message, or left unanswered by a cluster in trouble; none was
//! accepted unless etcd might accept it too. An accepted voter the cluster cannot reach is
//! removed at the heal, and the liveness checker holds that removal to its patience.

use super::Violation;
use crate::history::{History, UnsafeAnswer};

pub fn check(history: &History) -> Vec<Violation> {
    history
        .unsafe_requests
        .iter()
        .filter_map(|request| {
            let detail = match &request.answer {
                UnsafeAnswer::Accepted if !request.may_be_accepted => format!(
                    "{} was accepted; etcd refuses it with {:?}",
                    request.description, request.refusal
                ),
                UnsafeAnswer::Refused(message) if *message != request.refusal => format!(
                    "{} was refused with {message:?}; etcd refuses it with {:?}",
                    request.description, request.refusal
                ),
                _ => return None,
            };
            Some(Violation::new("operator", detail))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::UnsafeRequest;

    fn request(may_be_accepted: bool, answer: UnsafeAnswer) -> UnsafeRequest {
        UnsafeRequest {
            description: "add a voter at member-2's peer URL".to_string(),
            refusal: "etcdserver: Peer URLs already exists".to_string(),
            may_be_accepted,
            answer,
        }
    }

    fn violations(requests: Vec<UnsafeRequest>) -> usize {
        check(&History {
            unsafe_requests: requests,
            ..History::default()
        })
        .len()
    }

    #[test]
    fn refusals_with_etcds_message_and_unknown_answers_pass() {
        let refused = UnsafeAnswer::Refused("etcdserver: Peer URLs already exists".to_string());
        let unknown = UnsafeAnswer::Unknown("etcdserver: leader changed".to_string());
        assert_eq!(
            violations(vec![request(false, refused), request(false, unknown)]),
            0
        );
        assert_eq!(violations(vec![request(true, UnsafeAnswer::Accepted)]), 0);
    }

    #[test]
    fn an_accepted_request_or_another_refusal_fails() {
        assert_eq!(violations(vec![request(false, UnsafeAnswer::Accepted)]), 1);
        let other = UnsafeAnswer::Refused("etcdserver: member ID already exist".to_string());
        assert_eq!(violations(vec![request(false, other.clone())]), 1);
        assert_eq!(violations(vec![request(true, other)]), 1);
    }
}
