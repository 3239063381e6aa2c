//! The seeded random streams of a run, one per purpose, each derived from the run's seed by
//! its own rule, so adding draws to one stream never shifts another (a fault schedule stays
//! the same when a workload draws one more number). The rules are fixed: changing one
//! changes every seed's run.

use rand::rngs::SmallRng;
use rand::SeedableRng;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// The run's parameters (`Params::draw`).
    Params,
    /// Which fault kinds a real-cluster run uses, when its scenario does not say.
    RealFaultKinds,
    /// When faults happen and which (the fault loop of both worlds).
    Faults,
    /// KV client `n`'s requests.
    Client(usize),
    /// Watcher `n`'s ranges and progress requests.
    Watcher(usize),
    /// Whether watcher `n` closes its sending side after each create (as grpcurl and
    /// scripts do), sending no progress requests.
    WatcherHalfClose(usize),
    WatcherRequiresLeader(usize),
    /// Lease client `n`'s grants, renewals and revokes.
    LeaseClient(usize),
    /// Whether lease client `n` closes its sending side right after each keepalive.
    LeaseHalfClose(usize),
    /// The compactor's targets.
    Compactor,
    /// The auth admin's grant and revoke timing.
    AuthAdmin,
    /// Restricted auth client `n`'s keys and members.
    AuthClient(usize),
    /// Which fault points are on, and how often each fires (`fault_points::draw`).
    FaultPoints,
    /// When each fault point fires, inside the members (`cairn::io::fault_points`).
    FaultPointFiring,
    /// The sizes drawn down to tiny values (`Boundaries::draw`).
    Boundaries,
    /// The members' clock rates and whether clocks jump (`clocks::draw`).
    Clocks,
}

impl Stream {
    /// This stream's own seed for run `seed`.
    pub fn seed(self, seed: u64) -> u64 {
        match self {
            Stream::Params => seed ^ 0x5eed_c0de,
            Stream::RealFaultKinds => seed ^ 0x0ea1_c0de,
            Stream::Faults => seed.wrapping_mul(47),
            Stream::Client(n) => seed.wrapping_mul(31).wrapping_add(n as u64),
            Stream::Watcher(n) => seed.wrapping_mul(37).wrapping_add(n as u64),
            Stream::WatcherHalfClose(n) => (seed ^ 0x0ca1_f0c1).wrapping_add(n as u64),
            Stream::WatcherRequiresLeader(n) => (seed ^ 0x1ead_e4ed).wrapping_add(n as u64),
            Stream::LeaseClient(n) => seed.wrapping_mul(41).wrapping_add(n as u64),
            Stream::LeaseHalfClose(n) => (seed ^ 0x1ea5_ec10).wrapping_add(n as u64),
            Stream::Compactor => seed.wrapping_mul(43),
            Stream::AuthAdmin => seed.wrapping_mul(53),
            Stream::AuthClient(n) => seed.wrapping_mul(59).wrapping_add(n as u64),
            Stream::FaultPoints => seed ^ 0xb0_991f,
            Stream::FaultPointFiring => seed.wrapping_mul(61),
            Stream::Boundaries => seed ^ 0xb0_0da7,
            Stream::Clocks => seed ^ 0xc10c_0da7,
        }
    }

    /// A generator for this stream of run `seed`.
    pub fn random(self, seed: u64) -> SmallRng {
        SmallRng::seed_from_u64(self.seed(seed))
    }
}
