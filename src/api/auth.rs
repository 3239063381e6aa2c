//! etcdserverpb.Auth as etcd 3.5 serves it: users, roles and permissions change through raft
//! (`Command::Auth`, checked for the root role at apply while auth is on), passwords are
//! hashed here with bcrypt before they are proposed (never logged, never stored or sent in
//! clear), and Authenticate hands out this member's simple tokens.

use super::authorize::authorize_admin_in;
use super::pb::authpb;
use super::pb::etcdserverpb::{self as pb, auth_server::Auth};
use super::tokens::TokenInfo;
use super::{guarded, status, Caller, Context};
use crate::apply::{Command, Outcome};
use crate::auth::{Access, AuthCommand, AuthStore, Permission};
use crate::base::{EtcdError, KeyRange};
use tonic::{Request, Response, Status};

pub struct AuthService {
    context: Context,
}

impl AuthService {
    pub fn new(context: Context) -> Self {
        AuthService { context }
    }

    /// Proposes `change` from `caller` and answers with the header at the applied revision.
    async fn change(
        &self,
        caller: &Caller,
        change: AuthCommand,
    ) -> Result<Option<pb::ResponseHeader>, Status> {
        let command = guarded(caller, Command::Auth(change));
        let applied = self.context.node.propose(command).await.map_err(status)?;
        match applied.result.map_err(status)? {
            Outcome::AuthChanged => Ok(self.context.header(applied.revision)),
            other => Err(super::error::unexpected_outcome("auth", other)),
        }
    }

    /// The applied auth state after a read barrier (etcd serves these reads through raft).
    async fn read(&self) -> Result<(AuthStore, i64), Status> {
        self.context.node.read_barrier().await.map_err(status)?;
        let view = self.context.node.view();
        Ok((
            view.machine.auth().clone(),
            view.machine.store().current_revision(),
        ))
    }

    /// A bcrypt hash of `password` (or the client's own hash, base64 as etcd's field), made
    /// off the async executor: hashing costs tens of milliseconds by design.
    async fn hash(&self, password: String, hashed_password: String) -> Result<String, Status> {
        use base64::Engine;
        if !hashed_password.is_empty() {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(hashed_password.as_bytes())
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok())
                .filter(|hash| hash.parse::<bcrypt::HashParts>().is_ok())
                .ok_or_else(|| status(EtcdError::InvalidAuthManagement))?;
            return Ok(decoded);
        }
        let cost = self.context.bcrypt_cost;
        let salt = crate::io::runtime::random_bytes::<16>();
        crate::io::blocking(move || bcrypt::hash_with_salt(password, cost, salt))
            .await
            .map(|parts| parts.format_for_version(bcrypt::Version::TwoA))
            .map_err(|error| Status::internal(format!("cairn: hashing a password: {error}")))
    }
}

fn permission_to_wire(permission: &Permission) -> authpb::Permission {
    authpb::Permission {
        perm_type: permission.access as i32,
        key: permission.range.start.clone(),
        range_end: permission.range.end.clone(),
    }
}

#[tonic::async_trait]
impl Auth for AuthService {
    async fn auth_status(
        &self,
        request: Request<pb::AuthStatusRequest>,
    ) -> Result<Response<pb::AuthStatusResponse>, Status> {
        self.context.admit(&request, false)?;
        let caller = self.context.caller(&request)?;
        let (auth, revision) = self.read().await?;
        authorize_admin_in(&auth, &caller)?;
        Ok(Response::new(pb::AuthStatusResponse {
            header: self.context.header(revision),
            enabled: auth.is_enabled(),
            auth_revision: auth.revision(),
        }))
    }

    async fn auth_enable(
        &self,
        request: Request<pb::AuthEnableRequest>,
    ) -> Result<Response<pb::AuthEnableResponse>, Status> {
        self.context.admit(&request, false)?;
        let caller = self.context.caller(&request)?;
        let header = self.change(&caller, AuthCommand::Enable).await?;
        Ok(Response::new(pb::AuthEnableResponse { header }))
    }

    async fn auth_disable(
        &self,
        request: Request<pb::AuthDisableRequest>,
    ) -> Result<Response<pb::AuthDisableResponse>, Status> {
        self.context.admit(&request, false)?;
        let caller = self.context.caller(&request)?;
        let header = self.change(&caller, AuthCommand::Disable).await?;
        Ok(Response::new(pb::AuthDisableResponse { header }))
    }

    async fn authenticate(
        &self,
        request: Request<pb::AuthenticateRequest>,
    ) -> Result<Response<pb::AuthenticateResponse>, Status> {
        self.context.admit(&request, false)?;
        let request = request.into_inner();
        let (auth, revision) = self.read().await?;
        if !auth.is_enabled() {
            return Err(status(EtcdError::AuthNotEnabled));
        }
        let hash = auth
            .user(&request.name)
            .and_then(|user| user.password_hash.clone())
            .ok_or_else(|| status(EtcdError::AuthFailed))?;
        let password = request.password;
        let matches = crate::io::blocking(move || bcrypt::verify(password, &hash))
            .await
            .unwrap_or(false);
        if !matches {
            tracing::info!(user = %request.name, "authentication failed: invalid password");
            return Err(status(EtcdError::AuthFailed));
        }
        let token = self
            .context
            .tokens
            .issue(TokenInfo {
                user: request.name,
                auth_revision: auth.revision(),
            })
            .map_err(Status::unknown)?;
        Ok(Response::new(pb::AuthenticateResponse {
            header: self.context.header(revision),
            token,
        }))
    }

    async fn user_add(
        &self,
        request: Request<pb::AuthUserAddRequest>,
    ) -> Result<Response<pb::AuthUserAddResponse>, Status> {
        self.context.admit(&request, false)?;
        let caller = self.context.caller(&request)?;
        // Refused before the (slow) hash, as etcd's api layer does.
        self.context.authorize_admin(&caller)?;
        let request = request.into_inner();
        if request.name.is_empty() {
            return Err(status(EtcdError::UserEmpty));
        }
        let no_password = request.options.is_some_and(|options| options.no_password);
        let password_hash = if no_password {
            None
        } else {
            Some(self.hash(request.password, request.hashed_password).await?)
        };
        let header = self
            .change(
                &caller,
                AuthCommand::UserAdd {
                    name: request.name,
                    password_hash,
                },
            )
            .await?;
        Ok(Response::new(pb::AuthUserAddResponse { header }))
    }

    async fn user_get(
        &self,
        request: Request<pb::AuthUserGetRequest>,
    ) -> Result<Response<pb::AuthUserGetResponse>, Status> {
        self.context.admit(&request, false)?;
        let caller = self.context.caller(&request)?;
        let name = request.into_inner().name;
        let (auth, revision) = self.read().await?;
        // A user may read its own entry; anyone else's needs the root role.
        if caller.user() != name {
            authorize_admin_in(&auth, &caller)?;
        }
        let user = auth
            .user(&name)
            .ok_or_else(|| status(EtcdError::UserNotFound))?;
        Ok(Response::new(pb::AuthUserGetResponse {
            header: self.context.header(revision),
            roles: user.roles.iter().cloned().collect(),
        }))
    }

    async fn user_list(
        &self,
        request: Request<pb::AuthUserListRequest>,
    ) -> Result<Response<pb::AuthUserListResponse>, Status> {
        self.context.admit(&request, false)?;
        let caller = self.context.caller(&request)?;
        let (auth, revision) = self.read().await?;
        authorize_admin_in(&auth, &caller)?;
        Ok(Response::new(pb::AuthUserListResponse {
            header: self.context.header(revision),
            users: auth.user_names().cloned().collect(),
        }))
    }

    async fn user_delete(
        &self,
        request: Request<pb::AuthUserDeleteRequest>,
    ) -> Result<Response<pb::AuthUserDeleteResponse>, Status> {
        self.context.admit(&request, false)?;
        let caller = self.context.caller(&request)?;
        let name = request.into_inner().name;
        let header = self
            .change(&caller, AuthCommand::UserDelete { name: name.clone() })
            .await?;
        self.context.tokens.invalidate_user(&name);
        Ok(Response::new(pb::AuthUserDeleteResponse { header }))
    }

    async fn user_change_password(
        &self,
        request: Request<pb::AuthUserChangePasswordRequest>,
    ) -> Result<Response<pb::AuthUserChangePasswordResponse>, Status> {
        self.context.admit(&request, false)?;
        let caller = self.context.caller(&request)?;
        self.context.authorize_admin(&caller)?;
        let request = request.into_inner();
        let password_hash = Some(self.hash(request.password, request.hashed_password).await?);
        let header = self
            .change(
                &caller,
                AuthCommand::UserChangePassword {
                    name: request.name.clone(),
                    password_hash,
                },
            )
            .await?;
        self.context.tokens.invalidate_user(&request.name);
        Ok(Response::new(pb::AuthUserChangePasswordResponse { header }))
    }

    async fn user_grant_role(
        &self,
        request: Request<pb::AuthUserGrantRoleRequest>,
    ) -> Result<Response<pb::AuthUserGrantRoleResponse>, Status> {
        self.context.admit(&request, false)?;
        let caller = self.context.caller(&request)?;
        let request = request.into_inner();
        let change = AuthCommand::UserGrantRole {
            name: request.user,
            role: request.role,
        };
        let header = self.change(&caller, change).await?;
        Ok(Response::new(pb::AuthUserGrantRoleResponse { header }))
    }

    async fn user_revoke_role(
        &self,
        request: Request<pb::AuthUserRevokeRoleRequest>,
    ) -> Result<Response<pb::AuthUserRevokeRoleResponse>, Status> {
        self.context.admit(&request, false)?;
        let caller = self.context.caller(&request)?;
        let request = request.into_inner();
        let change = AuthCommand::UserRevokeRole {
            name: request.name,
            role: request.role,
        };
        let header = self.change(&caller, change).await?;
        Ok(Response::new(pb::AuthUserRevokeRoleResponse { header }))
    }

    async fn role_add(
        &self,
        request: Request<pb::AuthRoleAddRequest>,
    ) -> Result<Response<pb::AuthRoleAddResponse>, Status> {
        self.context.admit(&request, false)?;
        let caller = self.context.caller(&request)?;
        let name = request.into_inner().name;
        let header = self.change(&caller, AuthCommand::RoleAdd { name }).await?;
        Ok(Response::new(pb::AuthRoleAddResponse { header }))
    }

    async fn role_get(
        &self,
        request: Request<pb::AuthRoleGetRequest>,
    ) -> Result<Response<pb::AuthRoleGetResponse>, Status> {
        self.context.admit(&request, false)?;
        let caller = self.context.caller(&request)?;
        let name = request.into_inner().role;
        let (auth, revision) = self.read().await?;
        // A user may read a role it holds; any other needs the root role.
        let holds = auth
            .user(caller.user())
            .is_some_and(|user| user.roles.contains(&name));
        if !holds {
            authorize_admin_in(&auth, &caller)?;
        }
        let role = auth
            .role(&name)
            .ok_or_else(|| status(EtcdError::RoleNotFound))?;
        Ok(Response::new(pb::AuthRoleGetResponse {
            header: self.context.header(revision),
            perm: role.permissions.iter().map(permission_to_wire).collect(),
        }))
    }

    async fn role_list(
        &self,
        request: Request<pb::AuthRoleListRequest>,
    ) -> Result<Response<pb::AuthRoleListResponse>, Status> {
        self.context.admit(&request, false)?;
        let caller = self.context.caller(&request)?;
        let (auth, revision) = self.read().await?;
        authorize_admin_in(&auth, &caller)?;
        Ok(Response::new(pb::AuthRoleListResponse {
            header: self.context.header(revision),
            roles: auth.role_names().cloned().collect(),
        }))
    }

    async fn role_delete(
        &self,
        request: Request<pb::AuthRoleDeleteRequest>,
    ) -> Result<Response<pb::AuthRoleDeleteResponse>, Status> {
        self.context.admit(&request, false)?;
        let caller = self.context.caller(&request)?;
        let name = request.into_inner().role;
        let header = self
            .change(&caller, AuthCommand::RoleDelete { name })
            .await?;
        Ok(Response::new(pb::AuthRoleDeleteResponse { header }))
    }

    async fn role_grant_permission(
        &self,
        request: Request<pb::AuthRoleGrantPermissionRequest>,
    ) -> Result<Response<pb::AuthRoleGrantPermissionResponse>, Status> {
        self.context.admit(&request, false)?;
        let caller = self.context.caller(&request)?;
        let request = request.into_inner();
        let wire = request
            .perm
            .ok_or_else(|| status(EtcdError::PermissionNotGiven))?;
        // etcd stores a permission type it does not know (one that grants nothing); Cairn
        // refuses it, after etcd's own check that the role exists.
        let Some(access) = Access::from_wire(wire.perm_type) else {
            let role_exists = self
                .context
                .node
                .view()
                .machine
                .auth()
                .role(&request.name)
                .is_some();
            return Err(status(if role_exists {
                EtcdError::InvalidAuthManagement
            } else {
                EtcdError::RoleNotFound
            }));
        };
        let change = AuthCommand::RoleGrantPermission {
            name: request.name,
            permission: Permission {
                access,
                range: KeyRange::new(wire.key, wire.range_end),
            },
        };
        let header = self.change(&caller, change).await?;
        Ok(Response::new(pb::AuthRoleGrantPermissionResponse {
            header,
        }))
    }

    async fn role_revoke_permission(
        &self,
        request: Request<pb::AuthRoleRevokePermissionRequest>,
    ) -> Result<Response<pb::AuthRoleRevokePermissionResponse>, Status> {
        self.context.admit(&request, false)?;
        let caller = self.context.caller(&request)?;
        let request = request.into_inner();
        let change = AuthCommand::RoleRevokePermission {
            name: request.role,
            range: KeyRange::new(request.key, request.range_end),
        };
        let header = self.change(&caller, change).await?;
        Ok(Response::new(pb::AuthRoleRevokePermissionResponse {
            header,
        }))
    }
}
