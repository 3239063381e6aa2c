//! The seeded sequence of requests: every RPC of KV, Watch, Lease, Cluster, Maintenance and
//! Auth, with arguments drawn from a small space of keys, revisions and names so requests
//! meet each other's effects (and etcd's error paths) often. Leases and members are named by
//! the order they appeared in (`LeaseRef`), since each server picks its own IDs.

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// A lease as a sequence knows it: the k-th granted, or an ID nobody granted.
#[derive(Debug, Clone, Copy)]
pub enum LeaseRef {
    Granted(usize),
    Missing,
}

#[derive(Debug, Clone)]
pub enum Step {
    Range {
        key: String,
        range_end: String,
        limit: i64,
        revision: i64,
        sort_order: i32,
        sort_target: i32,
        keys_only: bool,
        count_only: bool,
        min_mod_revision: i64,
        max_create_revision: i64,
        serializable: bool,
    },
    Put {
        key: String,
        value: String,
        lease: Option<LeaseRef>,
        prev_kv: bool,
        ignore_value: bool,
        ignore_lease: bool,
    },
    Delete {
        key: String,
        range_end: String,
        prev_kv: bool,
    },
    Txn {
        compare_key: String,
        compare_target: i32,
        compare_result: i32,
        compare_value: i64,
        success: Vec<Step>,
        failure: Vec<Step>,
    },
    Compact {
        revision: i64,
    },
    Watch {
        key: String,
        range_end: String,
        start_revision: i64,
        prev_kv: bool,
        no_put: bool,
        no_delete: bool,
        progress: bool,
    },
    LeaseGrant {
        id: i64,
        ttl: i64,
    },
    LeaseRevoke(LeaseRef),
    LeaseKeepAlive(LeaseRef),
    LeaseTimeToLive {
        lease: LeaseRef,
        keys: bool,
    },
    LeaseLeases,
    MemberList,
    MemberAddLearner {
        peer_port: u16,
    },
    MemberRemoveAdded,
    MemberRemoveMissing,
    /// This member's own peer URLs, set to what they are.
    MemberUpdateOwn,
    MemberPromoteAdded,
    Status,
    AlarmGet,
    AlarmNoSpace {
        activate: bool,
    },
    Defragment,
    HashKv {
        revision: i64,
    },
    MoveLeaderToSelf,
    Hash,
    /// A whole snapshot stream, answered as its chunk count and its last chunk's
    /// remaining_bytes (the bytes are each server's own database).
    Snapshot,
    UserAdd {
        name: String,
        password: String,
    },
    UserGet(String),
    UserList,
    UserDelete(String),
    UserChangePassword(String),
    UserGrantRole {
        user: String,
        role: String,
    },
    UserRevokeRole {
        user: String,
        role: String,
    },
    RoleAdd(String),
    RoleGet(String),
    RoleList,
    RoleDelete(String),
    RoleGrantPermission {
        role: String,
        key: String,
        range_end: String,
        permission: i32,
    },
    RoleRevokePermission {
        role: String,
        key: String,
        range_end: String,
    },
    AuthStatus,
    Authenticate {
        name: String,
        password: String,
    },
    /// Root with the root role, auth on, an anonymous range (refused), root's token
    /// turns auth off again.
    AuthEnableAndDisable,
}

const KEYS: &[&str] = &["a", "b", "ba", "bb", "c", "k/1", "k/2", "k/3", "z"];
const USERS: &[&str] = &["root", "alice", "bob"];
const ROLES: &[&str] = &["root", "reader", "writer"];

pub struct Generator {
    random: SmallRng,
    /// Roughly the store's revision, to aim revisions near it.
    pub revision_guess: i64,
}

impl Generator {
    pub fn new(seed: u64) -> Generator {
        Generator {
            random: SmallRng::seed_from_u64(seed),
            revision_guess: 1,
        }
    }

    fn key(&mut self) -> String {
        KEYS[self.random.gen_range(0..KEYS.len())].to_string()
    }

    /// "" (one key), "\0" (every key from `key` on), or a key after it.
    fn range_end(&mut self, key: &str) -> String {
        match self.random.gen_range(0..4) {
            0 | 1 => String::new(),
            2 => "\0".to_string(),
            _ => format!("{key}\u{7f}"),
        }
    }

    fn revision(&mut self) -> i64 {
        match self.random.gen_range(0..6) {
            0 => 0,
            1 => -1,
            2 => self.revision_guess + self.random.gen_range(1..5),
            _ => self.random.gen_range(1..=self.revision_guess.max(1)),
        }
    }

    fn lease(&mut self) -> LeaseRef {
        if self.random.gen_bool(0.15) {
            LeaseRef::Missing
        } else {
            LeaseRef::Granted(self.random.gen_range(0..4))
        }
    }

    fn pick(&mut self, names: &[&str]) -> String {
        names[self.random.gen_range(0..names.len())].to_string()
    }

    fn put(&mut self) -> Step {
        let lease = self.random.gen_bool(0.2).then(|| self.lease());
        Step::Put {
            key: self.key(),
            value: format!("v{}", self.random.gen_range(0..100)),
            lease,
            prev_kv: self.random.gen_bool(0.3),
            ignore_value: self.random.gen_bool(0.05),
            ignore_lease: self.random.gen_bool(0.05),
        }
    }

    fn range(&mut self) -> Step {
        let key = self.key();
        Step::Range {
            range_end: self.range_end(&key),
            key,
            limit: [0, 0, 1, 2][self.random.gen_range(0..4)],
            revision: if self.random.gen_bool(0.3) {
                self.revision()
            } else {
                0
            },
            sort_order: [0, 0, 1, 2, 5][self.random.gen_range(0..5)],
            sort_target: [0, 0, 1, 2, 3, 4][self.random.gen_range(0..6)],
            keys_only: self.random.gen_bool(0.2),
            count_only: self.random.gen_bool(0.1),
            min_mod_revision: if self.random.gen_bool(0.1) { 3 } else { 0 },
            max_create_revision: if self.random.gen_bool(0.1) { 5 } else { 0 },
            serializable: self.random.gen_bool(0.3),
        }
    }

    fn delete(&mut self) -> Step {
        let key = self.key();
        Step::Delete {
            range_end: self.range_end(&key),
            key,
            prev_kv: self.random.gen_bool(0.5),
        }
    }

    /// An operation inside a txn (a nested txn at most `depth` deep).
    fn operation(&mut self, depth: usize) -> Step {
        match self.random.gen_range(0..10) {
            0..=3 => self.put(),
            4..=6 => self.range(),
            7 | 8 => self.delete(),
            _ if depth > 0 => self.txn(depth - 1),
            _ => self.put(),
        }
    }

    fn txn(&mut self, depth: usize) -> Step {
        let operations = |generator: &mut Generator| {
            let count = generator.random.gen_range(0..3);
            (0..count).map(|_| generator.operation(depth)).collect()
        };
        Step::Txn {
            compare_key: self.key(),
            compare_target: self.random.gen_range(0..5),
            compare_result: self.random.gen_range(0..4),
            compare_value: self.random.gen_range(0..6),
            success: operations(self),
            failure: operations(self),
        }
    }

    pub fn next(&mut self) -> Step {
        let roll = self.random.gen_range(0..100);
        match roll {
            0..=19 => self.put(),
            20..=31 => self.range(),
            32..=37 => self.delete(),
            38..=45 => self.txn(2),
            46..=47 => Step::Compact {
                revision: self.revision(),
            },
            48..=52 => {
                let key = self.key();
                Step::Watch {
                    range_end: self.range_end(&key),
                    key,
                    start_revision: self.revision(),
                    prev_kv: self.random.gen_bool(0.3),
                    no_put: self.random.gen_bool(0.1),
                    no_delete: self.random.gen_bool(0.1),
                    progress: self.random.gen_bool(0.2),
                }
            }
            53..=56 => Step::LeaseGrant {
                id: if self.random.gen_bool(0.3) {
                    self.random.gen_range(1..4) * 1000
                } else {
                    0
                },
                // Long enough that no lease expires during a sequence (expiry times differ
                // by a tick between servers), and one past etcd's maximum.
                ttl: [60, 3600, 9_000_000_001][self.random.gen_range(0..3)],
            },
            57 | 58 => Step::LeaseRevoke(self.lease()),
            59 => Step::LeaseKeepAlive(self.lease()),
            60 | 61 => Step::LeaseTimeToLive {
                lease: self.lease(),
                keys: self.random.gen_bool(0.5),
            },
            62 => Step::LeaseLeases,
            63 => Step::MemberList,
            64 => Step::MemberAddLearner {
                peer_port: 30_000 + self.random.gen_range(0..3),
            },
            65 => Step::MemberRemoveAdded,
            66 => Step::MemberRemoveMissing,
            // Not the added learner's: etcd's MemberUpdate drops IsLearner from its member
            // record (the learner is listed as a voter after), where Cairn keeps it.
            67 => Step::MemberUpdateOwn,
            68 => Step::MemberPromoteAdded,
            69 => Step::Status,
            70 => Step::AlarmGet,
            71 => Step::AlarmNoSpace {
                activate: self.random.gen_bool(0.5),
            },
            72 => Step::Defragment,
            73 => Step::HashKv {
                revision: self.revision(),
            },
            74 => Step::MoveLeaderToSelf,
            75..=77 => Step::UserAdd {
                name: self.pick(USERS),
                password: self.pick(&["", "secret", "other"]),
            },
            78 => Step::UserGet(self.pick(USERS)),
            79 => Step::UserList,
            80 => Step::UserDelete(self.pick(USERS)),
            81 => Step::UserChangePassword(self.pick(USERS)),
            82 | 83 => Step::UserGrantRole {
                user: self.pick(USERS),
                role: self.pick(ROLES),
            },
            84 => Step::UserRevokeRole {
                user: self.pick(USERS),
                role: self.pick(ROLES),
            },
            85 | 86 => Step::RoleAdd(self.pick(ROLES)),
            87 => Step::RoleGet(self.pick(ROLES)),
            88 => Step::RoleList,
            89 => Step::RoleDelete(self.pick(ROLES)),
            90 | 91 => {
                let key = self.key();
                Step::RoleGrantPermission {
                    role: self.pick(ROLES),
                    range_end: self.range_end(&key),
                    key,
                    permission: self.random.gen_range(0..4),
                }
            }
            92 => {
                let key = self.key();
                Step::RoleRevokePermission {
                    role: self.pick(ROLES),
                    range_end: self.range_end(&key),
                    key,
                }
            }
            93 => Step::AuthStatus,
            94 | 95 => Step::Authenticate {
                name: self.pick(USERS),
                password: self.pick(&["secret", "other", "wrong"]),
            },
            96 => Step::AuthEnableAndDisable,
            97 => Step::Hash,
            98 => Step::Snapshot,
            _ => self.put(),
        }
    }
}
