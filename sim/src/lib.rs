//! The simulator: real Cairn members (the production `server::start`) run as madsim nodes,
//! each on its own in-memory disk that separates written from synced bytes, under seeded
//! faults, with every history checked. The history and checkers are plain Rust; running
//! members needs `RUSTFLAGS="--cfg madsim"`.

pub mod boundaries;
pub mod check;
pub mod clocks;
pub mod coverage;
pub mod fault_kind;
pub mod fault_points;
#[cfg(madsim)]
pub mod faults;
pub mod history;
#[cfg(madsim)]
pub mod member;
#[cfg(madsim)]
pub mod membership;
pub mod observe;
pub mod operator;
pub mod outcome;
pub mod params;
#[cfg(not(madsim))]
pub mod real;
pub mod recorder;
pub mod scenario;
pub mod schedule;
pub mod seeds;
pub mod shrink;
#[cfg(madsim)]
pub mod simulation;
#[cfg(madsim)]
pub mod unsafe_requests;
pub mod workload;
