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

/// The sender of a request: the token's (or client certificate's) user and the auth
/// revision it was issued at, or anonymous (empty name, revision 0). Whether auth applies
/// is decided by each check from the state it checks against, never at resolution: a
/// request resolved before auth was enabled and served after is checked as anonymous.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller(TokenInfo);

impl Caller {
    pub fn anonymous() -> Caller {
        Caller(TokenInfo {
            user: String::new(),
            auth_revision: 0,
        })
    }

    pub fn user(&self) -> &str {
        &self.0.user
    }
}

impl Context {
    /// Who sent `request`. A token this member does not know (expired, from another
    /// member, from before a restart) is "invalid auth token" while auth is on, which
    /// etcd's clients answer by authenticating again; while auth is off it is ignored.
    pub fn caller<T>(&self, request: &tonic::Request<T>) -> Result<Caller, Status> {
        self.caller_of(&Credentials::of(request))
    }

    /// `caller` for credentials kept from a stream's opening (each watch create is checked
    /// with them as they are then). A token wins; without one, with `--client-cert-auth`,
    /// a verified client certificate's common name is the user, at the current auth
    /// revision (etcd's `AuthInfoFromTLS`); otherwise the sender is anonymous.
    pub fn caller_of(&self, credentials: &Credentials) -> Result<Caller, Status> {
        // The applied auth state is consulted only when the credentials need it, so a
        // request without any (the common case) costs nothing here.
        let auth_now = || self.node.view().machine.auth().clone();
        if let Some(token) = &credentials.token {
            return match self.tokens.lookup(token) {
                Some(info) => Ok(Caller(info)),
                None if auth_now().is_enabled() => Err(status(EtcdError::InvalidAuthToken)),
                None => Ok(Caller::anonymous()),
            };
        }
        match &credentials.common_name {
            Some(name) if self.client_cert_auth => Ok(Caller(TokenInfo {
                user: name.clone(),
                auth_revision: auth_now().revision(),
            })),
            _ => Ok(Caller::anonymous()),
        }
    }

    /// etcd's `IsAdminPermitted` against the applied state now: with auth on, only a user
    /// with the root role.
    pub fn authorize_admin(&self, caller: &Caller) -> Result<(), Status> {
        admin_check(self.node.view().machine.auth(), caller).map_err(status)
    }

    /// The admin check of etcd's maintenance server (Defragment, Snapshot, Hash, HashKV),
    /// which answers with the auth store's own error, as etcd does.
    pub fn authorize_maintenance(&self, caller: &Caller) -> Result<(), Status> {
        admin_check(self.node.view().machine.auth(), caller)
            .map_err(|refused| super::error::auth_store_status(&refused))
    }

    /// READ on `range` for a read served from `machine` (etcd's `IsRangePermitted`, then its
    /// check that the token's revision is still current).
    pub fn authorize_range(
        &self,
        caller: &Caller,
        machine: &StateMachine,
        range: &KeyRange,
    ) -> Result<(), Status> {
        authorize_read(caller, machine, |auth, user| {
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
        caller: &Caller,
        machine: &StateMachine,
        txn: &TxnRequest,
    ) -> Result<(), Status> {
        authorize_read(caller, machine, |auth, user| {
            access::check_txn(auth, machine.leases(), user, txn)
        })
    }

    /// READ on every key of a lease (etcd's LeaseTimeToLive check).
    pub fn authorize_lease_read(
        &self,
        caller: &Caller,
        machine: &StateMachine,
        id: LeaseId,
    ) -> Result<(), Status> {
        authorize_read(caller, machine, |auth, user| {
            access::check_lease_read(auth, machine.leases(), user, id)
        })
    }
}

/// `IsAdminPermitted` against `auth` (for reads of the auth state, the state read).
pub fn authorize_admin_in(auth: &AuthStore, caller: &Caller) -> Result<(), Status> {
    admin_check(auth, caller).map_err(status)
}

fn admin_check(auth: &AuthStore, caller: &Caller) -> Result<(), EtcdError> {
    if !auth.is_enabled() {
        return Ok(());
    }
    if caller.user().is_empty() {
        return Err(EtcdError::UserEmpty);
    }
    auth.is_admin(caller.user())
}

fn authorize_read(
    caller: &Caller,
    machine: &StateMachine,
    check: impl FnOnce(&AuthStore, &str) -> Result<(), EtcdError>,
) -> Result<(), Status> {
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

/// `command` as raft carries it from `caller`, to be checked again at apply (an anonymous
/// caller's command is refused there if auth is on by then, as etcd refuses it).
pub fn guarded(caller: &Caller, command: Command) -> Command {
    Command::Guarded {
        user: caller.0.user.clone(),
        auth_revision: caller.0.auth_revision,
        command: Box::new(command),
    }
}
