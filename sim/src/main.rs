//! `cairn-sim`: runs Cairn clusters under seeded faults and checks every history.
//!
//!   cairn-sim run --seed N [--scenario FILE] [--unsafe-no-fsync] [--serializable-recorded-as-linearizable]
//!   cairn-sim sweep --seeds A..B [--jobs J] [--check-determinism] [--scenario FILE] [...]
//!   cairn-sim regressions [DIR]
//!   cairn-sim real --seeds A..B --duration-seconds S [--server-binary /usr/bin/etcd]  (normal build)
//!
//! Build with `RUSTFLAGS="--cfg madsim"` in its own target directory (see `ci/sim`).

#[cfg(not(madsim))]
mod real_cli;

/// A normal build serves `cairn-sim real` (real processes, real tokio) only.
#[cfg(not(madsim))]
fn main() {
    std::process::exit(real_cli::main());
}

#[cfg(madsim)]
fn main() {
    std::process::exit(cli::main());
}

#[cfg(madsim)]
mod cli;
