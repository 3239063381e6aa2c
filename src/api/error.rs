//! Every error a layer below reports, mapped once to etcd's gRPC status (code and message,
//! which clients match on), as etcd's `toGRPCErrorMap` does. Causes that etcd does not tell
//! apart on the wire (a failed forward and a commit timeout are both "request timed out")
//! stay apart below this point and are logged here.

use crate::apply::Outcome;
use crate::base::EtcdError;
use crate::raft::NodeError;
use tonic::{Code, Status};

/// An error with an etcd wire form.
pub trait WireError {
    fn into_status(self) -> Status;
}

/// A command applied with an outcome of another kind than its own: a bug, answered as an
/// internal error rather than a panic that would take the member down.
pub fn unexpected_outcome(command: &str, outcome: Outcome) -> Status {
    tracing::error!(
        ?outcome,
        "a {command} applied with the outcome of another command"
    );
    Status::internal(format!(
        "cairn: a {command} applied with an unexpected outcome"
    ))
}

/// etcd's gRPC status for `error`.
pub fn status(error: impl WireError) -> Status {
    error.into_status()
}

impl WireError for EtcdError {
    fn into_status(self) -> Status {
        etcd_status(self)
    }
}

impl WireError for NodeError {
    fn into_status(self) -> Status {
        let wire = match self {
            NodeError::Etcd(error) => error,
            NodeError::NoLeader => EtcdError::NoLeader,
            NodeError::NotLeader => EtcdError::NotLeader,
            NodeError::LeaderChanged => EtcdError::LeaderChanged,
            NodeError::Stopped => EtcdError::Stopped,
            // etcd answers a request it could not finish in time, for whatever reason
            // (its followers cannot reach the leader either), with "request timed out".
            NodeError::Timeout(_) | NodeError::ForwardFailed { .. } => {
                tracing::debug!(cause = %self, "answering request timed out");
                EtcdError::Timeout
            }
            NodeError::ReadQueueFull(_) => {
                tracing::debug!(cause = %self, "answering too many requests");
                EtcdError::TooManyRequests
            }
        };
        etcd_status(wire)
    }
}

/// etcd's gRPC status for each error (clients match on code and message).
fn etcd_status(error: EtcdError) -> Status {
    let code = match &error {
        EtcdError::EmptyKey
        | EtcdError::KeyNotFound
        | EtcdError::ValueProvided
        | EtcdError::LeaseProvided
        | EtcdError::TooManyOperations
        | EtcdError::DuplicateKey
        | EtcdError::RequestTooLarge
        | EtcdError::InvalidSortOption
        | EtcdError::InvalidWatchRange => Code::InvalidArgument,
        EtcdError::Compacted | EtcdError::FutureRevision | EtcdError::LeaseTtlTooLarge => {
            Code::OutOfRange
        }
        EtcdError::NoSpace | EtcdError::TooManyRequests => Code::ResourceExhausted,
        EtcdError::Corrupt => Code::DataLoss,
        EtcdError::UserEmpty
        | EtcdError::RoleEmpty
        | EtcdError::AuthFailed
        | EtcdError::PermissionNotGiven
        | EtcdError::InvalidAuthManagement
        | EtcdError::AuthOldRevision => Code::InvalidArgument,
        EtcdError::RootUserNotExist
        | EtcdError::RootRoleNotExist
        | EtcdError::UserAlreadyExist
        | EtcdError::UserNotFound
        | EtcdError::RoleAlreadyExist
        | EtcdError::RoleNotFound
        | EtcdError::RoleNotGranted
        | EtcdError::PermissionNotGranted
        | EtcdError::AuthNotEnabled => Code::FailedPrecondition,
        EtcdError::PermissionDenied => Code::PermissionDenied,
        EtcdError::InvalidAuthToken => Code::Unauthenticated,
        EtcdError::LeaseNotFound | EtcdError::MemberNotFound => Code::NotFound,
        EtcdError::LeaseExists
        | EtcdError::NotLeader
        | EtcdError::MemberExists
        | EtcdError::PeerUrlExists
        | EtcdError::MemberNotLearner
        | EtcdError::TooManyLearners
        | EtcdError::LearnerNotReady
        | EtcdError::NotEnoughStartedMembers
        | EtcdError::BadLeaderTransferee => Code::FailedPrecondition,
        EtcdError::NoLeader
        | EtcdError::LeaderChanged
        | EtcdError::Timeout
        | EtcdError::Stopped
        | EtcdError::NotSupportedForLearner
        | EtcdError::Unhealthy
        | EtcdError::LeaderTransferTimeout
        | EtcdError::Storage(_) => Code::Unavailable,
    };
    Status::new(code, error.to_string())
}

/// An admin refusal as etcd's maintenance server answers it: the auth store's own error,
/// not converted to its gRPC form, so code Unknown and the store's text.
pub fn auth_store_status(error: &EtcdError) -> Status {
    let reason = match error {
        EtcdError::UserEmpty => "user name is empty",
        EtcdError::UserNotFound => "user not found",
        EtcdError::PermissionDenied => "permission denied",
        other => return status(other.clone()),
    };
    Status::unknown(format!("auth: {reason}"))
}
