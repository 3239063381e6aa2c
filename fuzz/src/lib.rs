//! Cairn's fuzz targets. Each is a plain function over bytes in `targets.rs`, so the main
//! workspace's `cargo test` replays the checked-in corpora on the stable toolchain
//! (`tests/fuzz_corpus.rs`) and `cargo fuzz run` explores further.

pub mod targets;
