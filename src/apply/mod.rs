//! The replicated command and the deterministic state machine that applies it: the only
//! place the MVCC store and the lease table change. No clock, no randomness, no I/O: every
//! member applying the same log reaches the same state.

pub mod access;
mod command;
mod state_machine;
mod txn;

pub use command::*;
pub use state_machine::StateMachine;
pub use txn::{validate_operation, validate_txn, ReadOnlyTxn};
