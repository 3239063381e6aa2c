//! Who sent a request, and whether auth lets it through, at the api edge as etcd's
//! `AuthInfoFromCtx` and its admin checks: reads are checked here against the state they
//! are served from; writes go to raft as `Command::Guarded` and are checked at apply.

use super::tokens::TokenInfo;
use super::{status, Context};
use crate::apply::{access, Command, StateMachine, TxnRequest};
use crate::auth::AuthStore;
use crate::base::{EtcdError, KeyRange, LeaseId};

use tonic::Status;

/// The gRPC metadata etcd's clients put their token in, and the one the JSON gateway maps
/// an `Authorization` header to.
const TOKEN_KEYS: [&str; 2] = ["token", "authorization"];

/// The sender of a request while auth is on: the token's user and the auth revision it was
/// issued at, or an anonymous sender (no token: empty name, revision 0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller(TokenInfo);

impl Caller {
    pub fn user(&self) -> &str {
        &self.0.user
    }
}

impl Context {
    /// None while auth is off; otherwise who sent `request`. A token this member does not
    /// know (expired, from another member, from before a restart) is "invalid auth token",
    /// which etcd's clients answer by authenticating again.
    pub fn caller<T>(&self, request: &tonic::Request<T>) -> Result<Option<Caller>, Status> {
        self.caller_of(&Credentials::of(request))
    }

    /// `caller` for credentials kept from a stream's opening (each watch create is checked
    /// with them as they are then). A token wins; without one, with `--client-cert-auth`,
    /// a verified client certificate's common name is the user, at the current auth
    /// revision (etcd's `AuthInfoFromTLS`); otherwise the sender is anonymous.
    pub fn caller_of(&self, credentials: &Credentials) -> Result<Option<Caller>, Status> {
        let view = self.node.view();
        let auth = view.machine.auth();
        if !auth.is_enabled() {
            return Ok(None);
        }
        if let Some(token) = &credentials.token {
            return match self.tokens.lookup(token) {
                Some(info) => Ok(Some(Caller(info))),
                None => Err(status(EtcdError::InvalidAuthToken)),
            };
        }
        let info = match &credentials.common_name {
            Some(name) if self.client_cert_auth => TokenInfo {
                user: name.clone(),
                auth_revision: auth.revision(),
            },
            _ => TokenInfo {
                user: String::new(),
                auth_revision: 0,
            },
        };
        Ok(Some(Caller(info)))
    }

    /// etcd's `IsAdminPermitted`: with auth on, only a user with the root role.
    pub fn authorize_admin(&self, caller: &Option<Caller>) -> Result<(), Status> {
        let Some(caller) = caller else {
            return Ok(());
        };
        let view = self.node.view();
        admin(view.machine.auth(), caller).map_err(status)
    }

    /// The admin check of etcd's maintenance server (Defragment, Snapshot, Hash, HashKV),
    /// which answers with the auth store's own error, code Unknown, as etcd does.
    pub fn authorize_maintenance(&self, caller: &Option<Caller>) -> Result<(), Status> {
        self.authorize_admin(caller).map_err(|refused| {
            let reason = refused.message().trim_start_matches("etcdserver: ");
            let reason = if reason == "user name not found" {
                "user not found"
            } else {
                reason
            };
            Status::unknown(format!("auth: {reason}"))
        })
    }

    /// READ on `range` for a read served from `machine` (etcd's `IsRangePermitted`, then its
    /// check that the token's revision is still current).
    pub fn authorize_range(
        &self,
        caller: &Option<Caller>,
        machine: &StateMachine,
        range: &KeyRange,
    ) -> Result<(), Status> {
        self.authorize_read(caller, machine, |auth, user| {
            if auth.permits(user, range, crate::auth::Access::Read) {
                Ok(())
            } else {
                Err(EtcdError::PermissionDenied)
            }
        })
    }

    /// What a read-only txn needs, against the state it is served from.
    pub fn authorize_txn(
        &self,
        caller: &Option<Caller>,
        machine: &StateMachine,
        txn: &TxnRequest,
    ) -> Result<(), Status> {
        self.authorize_read(caller, machine, |auth, user| {
            access::check_txn(auth, machine.leases(), user, txn)
        })
    }

    /// READ on every key of a lease (etcd's LeaseTimeToLive check).
    pub fn authorize_lease_read(
        &self,
        caller: &Option<Caller>,
        machine: &StateMachine,
        id: LeaseId,
    ) -> Result<(), Status> {
        self.authorize_read(caller, machine, |auth, user| {
            access::check_lease_read(auth, machine.leases(), user, id)
        })
    }

    fn authorize_read(
        &self,
        caller: &Option<Caller>,
        machine: &StateMachine,
        check: impl FnOnce(&AuthStore, &str) -> Result<(), EtcdError>,
    ) -> Result<(), Status> {
        let Some(caller) = caller else {
            return Ok(());
        };
        let auth = machine.auth();
        if !auth.is_enabled() {
            return Ok(());
        }
        if caller.0.auth_revision == 0 {
            return Err(status(EtcdError::UserEmpty));
        }
        if caller.0.auth_revision < auth.revision() {
            return Err(status(EtcdError::AuthOldRevision));
        }
        check(auth, caller.user()).map_err(status)
    }
}

/// What a connection knows of its client, as tonic hands it to every request: the address
/// and, over TLS with a client certificate, the certificate's verified common name.
#[derive(Debug, Clone)]
pub struct ClientConnectInfo {
    pub remote_address: Option<crate::io::SocketAddr>,
    pub certificate_common_name: Option<String>,
}

/// What a request can authenticate with: the token in its metadata, and the common name of
/// the client certificate its connection presented.
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    pub token: Option<String>,
    pub common_name: Option<String>,
}

impl Credentials {
    pub fn of<T>(request: &tonic::Request<T>) -> Credentials {
        let token = TOKEN_KEYS
            .iter()
            .find_map(|key| request.metadata().get(*key))
            .and_then(|value| value.to_str().ok())
            .map(str::to_string);
        let common_name = request
            .extensions()
            .get::<ClientConnectInfo>()
            .and_then(|info| info.certificate_common_name.clone());
        Credentials { token, common_name }
    }
}

fn admin(auth: &AuthStore, caller: &Caller) -> Result<(), EtcdError> {
    if !auth.is_enabled() {
        return Ok(());
    }
    if caller.user().is_empty() {
        return Err(EtcdError::UserEmpty);
    }
    auth.is_admin(caller.user())
}

/// `command` as raft carries it from `caller`, to be checked again at apply. A command sent
/// while auth was off is carried as anonymous: if auth is enabled before it applies, it is
/// refused there as etcd refuses it ("user name is empty").
pub fn guarded(caller: &Option<Caller>, command: Command) -> Command {
    let (user, auth_revision) = match caller {
        None => (String::new(), 0),
        Some(caller) => (caller.0.user.clone(), caller.0.auth_revision),
    };
    Command::Guarded {
        user,
        auth_revision,
        command: Box::new(command),
    }
}
