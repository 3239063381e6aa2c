//! etcdserverpb.Auth. Authentication is not enabled in this version of Cairn: AuthStatus
//! says so truthfully, and every call that would manage users, roles or tokens answers
//! Unimplemented with a clear message.

use super::pb::etcdserverpb::{self as pb, auth_server::Auth};
use super::{unimplemented, Context};
use tonic::{Request, Response, Status};

pub struct AuthService {
    context: Context,
}

impl AuthService {
    pub fn new(context: Context) -> Self {
        AuthService { context }
    }
}

#[tonic::async_trait]
impl Auth for AuthService {
    async fn auth_status(
        &self,
        request: Request<pb::AuthStatusRequest>,
    ) -> Result<Response<pb::AuthStatusResponse>, Status> {
        self.context.admit(&request, false)?;
        Ok(Response::new(pb::AuthStatusResponse {
            header: self.context.header(self.context.current_revision()),
            enabled: false,
            auth_revision: 0,
        }))
    }

    async fn auth_enable(
        &self,
        request: Request<pb::AuthEnableRequest>,
    ) -> Result<Response<pb::AuthEnableResponse>, Status> {
        self.context.admit(&request, false)?;
        Err(unimplemented("Auth.AuthEnable"))
    }

    async fn auth_disable(
        &self,
        request: Request<pb::AuthDisableRequest>,
    ) -> Result<Response<pb::AuthDisableResponse>, Status> {
        self.context.admit(&request, false)?;
        Err(unimplemented("Auth.AuthDisable"))
    }

    async fn authenticate(
        &self,
        request: Request<pb::AuthenticateRequest>,
    ) -> Result<Response<pb::AuthenticateResponse>, Status> {
        self.context.admit(&request, false)?;
        Err(unimplemented("Auth.Authenticate"))
    }

    async fn user_add(
        &self,
        request: Request<pb::AuthUserAddRequest>,
    ) -> Result<Response<pb::AuthUserAddResponse>, Status> {
        self.context.admit(&request, false)?;
        Err(unimplemented("Auth.UserAdd"))
    }

    async fn user_get(
        &self,
        request: Request<pb::AuthUserGetRequest>,
    ) -> Result<Response<pb::AuthUserGetResponse>, Status> {
        self.context.admit(&request, false)?;
        Err(unimplemented("Auth.UserGet"))
    }

    async fn user_list(
        &self,
        request: Request<pb::AuthUserListRequest>,
    ) -> Result<Response<pb::AuthUserListResponse>, Status> {
        self.context.admit(&request, false)?;
        Err(unimplemented("Auth.UserList"))
    }

    async fn user_delete(
        &self,
        request: Request<pb::AuthUserDeleteRequest>,
    ) -> Result<Response<pb::AuthUserDeleteResponse>, Status> {
        self.context.admit(&request, false)?;
        Err(unimplemented("Auth.UserDelete"))
    }

    async fn user_change_password(
        &self,
        request: Request<pb::AuthUserChangePasswordRequest>,
    ) -> Result<Response<pb::AuthUserChangePasswordResponse>, Status> {
        self.context.admit(&request, false)?;
        Err(unimplemented("Auth.UserChangePassword"))
    }

    async fn user_grant_role(
        &self,
        request: Request<pb::AuthUserGrantRoleRequest>,
    ) -> Result<Response<pb::AuthUserGrantRoleResponse>, Status> {
        self.context.admit(&request, false)?;
        Err(unimplemented("Auth.UserGrantRole"))
    }

    async fn user_revoke_role(
        &self,
        request: Request<pb::AuthUserRevokeRoleRequest>,
    ) -> Result<Response<pb::AuthUserRevokeRoleResponse>, Status> {
        self.context.admit(&request, false)?;
        Err(unimplemented("Auth.UserRevokeRole"))
    }

    async fn role_add(
        &self,
        request: Request<pb::AuthRoleAddRequest>,
    ) -> Result<Response<pb::AuthRoleAddResponse>, Status> {
        self.context.admit(&request, false)?;
        Err(unimplemented("Auth.RoleAdd"))
    }

    async fn role_get(
        &self,
        request: Request<pb::AuthRoleGetRequest>,
    ) -> Result<Response<pb::AuthRoleGetResponse>, Status> {
        self.context.admit(&request, false)?;
        Err(unimplemented("Auth.RoleGet"))
    }

    async fn role_list(
        &self,
        request: Request<pb::AuthRoleListRequest>,
    ) -> Result<Response<pb::AuthRoleListResponse>, Status> {
        self.context.admit(&request, false)?;
        Err(unimplemented("Auth.RoleList"))
    }

    async fn role_delete(
        &self,
        request: Request<pb::AuthRoleDeleteRequest>,
    ) -> Result<Response<pb::AuthRoleDeleteResponse>, Status> {
        self.context.admit(&request, false)?;
        Err(unimplemented("Auth.RoleDelete"))
    }

    async fn role_grant_permission(
        &self,
        request: Request<pb::AuthRoleGrantPermissionRequest>,
    ) -> Result<Response<pb::AuthRoleGrantPermissionResponse>, Status> {
        self.context.admit(&request, false)?;
        Err(unimplemented("Auth.RoleGrantPermission"))
    }

    async fn role_revoke_permission(
        &self,
        request: Request<pb::AuthRoleRevokePermissionRequest>,
    ) -> Result<Response<pb::AuthRoleRevokePermissionResponse>, Status> {
        self.context.admit(&request, false)?;
        Err(unimplemented("Auth.RoleRevokePermission"))
    }
}
