//! The simulator's building blocks: real Cairn members (the production `server::start`) run
//! as madsim nodes, each on its own in-memory disk that separates written from synced bytes.
//! Only meaningful under `RUSTFLAGS="--cfg madsim"`; a normal build compiles nothing here.

#[cfg(madsim)]
pub mod member;
