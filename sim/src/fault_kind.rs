//! The kinds of fault a run can inject, in both worlds (the simulator's `faults.rs`, real
//! clusters' `real/faults.rs`), named in scenarios by their variant names.

/// Written in scenario files in kebab case (`disk-full`); `parse` also takes other spellings.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum FaultKind {
    /// Random halves (including even splits such as 2|2 and 3|3).
    Partition,
    /// A member cut off from everyone: half the time whoever leads, else any member.
    Isolate,
    /// Traffic from one member to another dropped, the reverse kept.
    OneWay,
    /// Packet loss on the whole network.
    PacketLoss,
    /// kill -9 of one member; its unsynced disk bytes are lost or torn.
    Kill,
    /// Every member killed at once (power loss).
    KillAll,
    /// A member frozen, then resumed (a stale leader).
    Pause,
    /// A member's disk fills up; space returns at heal time.
    DiskFull,
    /// A member's fsync fails.
    FailingFsync,
    /// A member's fsync takes tens to hundreds of milliseconds.
    SlowFsync,
    /// Network latency raised for a while.
    Latency,
    /// Leadership moved to another voter (etcd's MoveLeader) under load.
    LeaderTransfer,
    /// A member removed, wiped and added back as a learner under a new ID, then promoted.
    MemberReplace,
    /// A member killed and its newest snapshot file damaged (bit rot), where the log still
    /// covers the older snapshot: it must start from that one and replay the log.
    DamagedSnapshot,
    /// A membership request etcd refuses, asked by the operator (`unsafe_requests.rs`).
    UnsafeRequest,
    /// A member's clock steps forward (a host clock corrected, a VM resumed): half the time
    /// the leader's. Simulation only; drawn with the clock rates (`clocks.rs`).
    ClockJump,
}

pub const ALL_FAULTS: [FaultKind; 16] = [
    FaultKind::Partition,
    FaultKind::Isolate,
    FaultKind::OneWay,
    FaultKind::PacketLoss,
    FaultKind::Kill,
    FaultKind::KillAll,
    FaultKind::Pause,
    FaultKind::DiskFull,
    FaultKind::FailingFsync,
    FaultKind::SlowFsync,
    FaultKind::Latency,
    FaultKind::LeaderTransfer,
    FaultKind::MemberReplace,
    FaultKind::DamagedSnapshot,
    FaultKind::UnsafeRequest,
    FaultKind::ClockJump,
];

impl FaultKind {
    /// The name scenarios use: `disk-full`.
    pub fn name(self) -> String {
        let mut name = String::new();
        for (position, letter) in format!("{self:?}").chars().enumerate() {
            if letter.is_uppercase() && position > 0 {
                name.push('-');
            }
            name.push(letter.to_ascii_lowercase());
        }
        name
    }

    pub fn parse(name: &str) -> Option<FaultKind> {
        ALL_FAULTS
            .into_iter()
            .find(|kind| format!("{kind:?}").eq_ignore_ascii_case(&name.replace(['-', '_'], "")))
    }
}
