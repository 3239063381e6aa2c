//! Field-by-field comparison of two answers, and the allowlist: differences that must stay,
//! each with the reason.

use serde_json::Value;

/// A difference that is known and kept: the step's kind, the path of the field that
/// differs (a prefix), and why.
pub struct Allowed {
    pub step: &'static str,
    pub path: &'static str,
    pub reason: &'static str,
    /// Only when Cairn's value at the path contains this ("" for any).
    pub cairn_says: &'static str,
    /// The servers' states differ from then on, so the rest of the sequence is not
    /// compared (counted as ended early).
    pub ends_sequence: bool,
}

pub const ALLOWED: &[Allowed] = &[
    Allowed {
        step: "Status",
        path: "",
        reason: "version, dbSize, raft indexes and leader are each server's own",
        cairn_says: "",
        ends_sequence: false,
    },
    Allowed {
        step: "HashKv",
        path: ".hash",
        reason: "Cairn hashes its own storage layout, not bbolt's pages (see ARCHITECTURE)",
        cairn_says: "",
        ends_sequence: false,
    },
    Allowed {
        step: "Hash",
        path: ".hash",
        reason: "Hash covers the backend's bytes, which are each server's own layout",
        cairn_says: "",
        ends_sequence: false,
    },
    Allowed {
        step: "AlarmGet",
        path: ".header",
        reason: "etcd 3.4's Alarm answers have no header; 3.5 fills one (maintenanceServer.Alarm), as Cairn does",
        cairn_says: "",
        ends_sequence: false,
    },
    Allowed {
        step: "AlarmNoSpace",
        path: ".header",
        reason: "etcd 3.4's Alarm answers have no header; 3.5 fills one (maintenanceServer.Alarm), as Cairn does",
        cairn_says: "",
        ends_sequence: false,
    },
    Allowed {
        step: "AuthStatus",
        path: "",
        reason: "etcd 3.4 has no Auth.AuthStatus (added in 3.5); Cairn serves 3.5's",
        cairn_says: "",
        ends_sequence: false,
    },
    Allowed {
        step: "RoleGrantPermission",
        path: "",
        reason: "a permission type etcd does not know (3 and up) is stored by etcd, granting nothing; Cairn refuses it with etcd's ErrInvalidAuthMgmt",
        cairn_says: "",
        ends_sequence: true,
    },
    Allowed {
        step: "WatchWithProgress",
        path: "",
        reason: "etcd 3.4.23 answers a progress request at once, even before a new watcher's catch-up events or compaction notice (etcd #15220, the bug README names), so its notification's revision claims events not yet sent; Cairn sends them first",
        cairn_says: "",
        ends_sequence: false,
    },
    Allowed {
        step: "LeaseLeases",
        path: ".leases",
        reason: "both list soonest expiry first, but Cairn's leader sets deadlines of leases granted within one expiry check (500 ms) at once, so their order is by ID; etcd's differ by grant time",
        cairn_says: "",
        ends_sequence: false,
    },
    Allowed {
        step: "Txn",
        path: ".error",
        reason: "with NOSPACE raised etcd's capped applier counts only a txn's top-level puts, so it applies puts in nested txns and adds data; Cairn refuses a txn whose chosen path puts anywhere",
        cairn_says: "database space exceeded",
        ends_sequence: true,
    },
    Allowed {
        step: "MemberAddLearner",
        path: ".error",
        reason: "a taken peer URL: etcd's member IDs hash the request's second, so etcd answers 'member ID already exist' within the second the URL was added and 'Peer URLs already exists' after; Cairn's IDs derive from the URLs alone and it always answers the latter",
        cairn_says: "Peer URLs already exists",
        ends_sequence: false,
    },
];

/// The first path at which `left` and `right` differ, with both values there.
pub fn first_difference(
    left: &Value,
    right: &Value,
    path: &str,
) -> Option<(String, String, String)> {
    match (left, right) {
        (Value::Object(a), Value::Object(b)) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            keys.into_iter().find_map(|key| {
                let inner = format!("{path}.{key}");
                match (a.get(key), b.get(key)) {
                    (Some(x), Some(y)) => first_difference(x, y, &inner),
                    (x, y) => Some((inner, shown(x), shown(y))),
                }
            })
        }
        (Value::Array(a), Value::Array(b)) => {
            let shared =
                a.iter().zip(b).enumerate().find_map(|(index, (x, y))| {
                    first_difference(x, y, &format!("{path}[{index}]"))
                });
            shared.or_else(|| {
                (a.len() != b.len()).then(|| {
                    (
                        format!("{path}.length"),
                        a.len().to_string(),
                        b.len().to_string(),
                    )
                })
            })
        }
        _ if left == right => None,
        // A remaining TTL is read a few milliseconds apart on the two servers.
        (Value::String(a), Value::String(b))
            if path.ends_with(".TTL")
                && a.parse::<i64>()
                    .ok()
                    .zip(b.parse::<i64>().ok())
                    .is_some_and(|(a, b)| a > 0 && b > 0 && (a - b).abs() <= 1) =>
        {
            None
        }
        _ => Some((path.to_string(), left.to_string(), right.to_string())),
    }
}

fn shown(value: Option<&Value>) -> String {
    value.map_or("(absent)".to_string(), Value::to_string)
}

/// The allowlist entry that covers a difference at `path` in a `step` answer where Cairn
/// answered `cairn_value` there, if any.
pub fn allowed(step: &str, path: &str, cairn_value: &str) -> Option<&'static Allowed> {
    ALLOWED.iter().find(|entry| {
        entry.step == step && path.starts_with(entry.path) && cairn_value.contains(entry.cairn_says)
    })
}
