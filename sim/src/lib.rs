//! The simulator: real Cairn members (the production `server::start`) run as madsim nodes,
//! each on its own in-memory disk that separates written from synced bytes, under seeded
//! faults, with every history checked. The history and checkers are plain Rust; running
//! members needs `RUSTFLAGS="--cfg madsim"`.

pub mod check;
#[cfg(madsim)]
pub mod faults;
pub mod history;
#[cfg(madsim)]
pub mod member;
#[cfg(madsim)]
pub mod membership;
pub mod params;
pub mod scenario;
#[cfg(madsim)]
pub mod simulation;
#[cfg(madsim)]
pub mod workload;
