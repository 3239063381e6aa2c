//! Authentication and RBAC state, as etcd 3.5's `auth` store: users (with a bcrypt hash,
//! or none for `--no-password` users), roles with key-range permissions, the enabled flag and
//! the auth revision. Replicated through apply and part of snapshots; every change here is a
//! pure function of the state and the command, so members agree. Hashing passwords and
//! issuing tokens happen in the api layer: nothing here is slow or random.

mod permissions;

pub use permissions::Access;

use crate::base::{EtcdError, KeyRange};
use im::OrdMap;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// The user and the role that etcd treats as the administrator.
pub const ROOT: &str = "root";

/// One key-range permission of a role (etcd's `authpb.Permission`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Permission {
    pub access: Access,
    pub range: KeyRange,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Role {
    /// Sorted by key, as etcd keeps them (and lists them).
    pub permissions: Vec<Permission>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// The bcrypt hash of the password (never the password); None for a no-password user,
    /// who can authenticate only by client certificate.
    pub password_hash: Option<String>,
    /// Sorted, as etcd keeps them.
    pub roles: BTreeSet<String>,
}

impl User {
    pub fn is_root(&self) -> bool {
        self.roles.contains(ROOT)
    }
}

/// A change to the auth state; passwords arrive hashed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AuthCommand {
    Enable,
    Disable,
    UserAdd {
        name: String,
        password_hash: Option<String>,
    },
    UserDelete {
        name: String,
    },
    UserChangePassword {
        name: String,
        password_hash: Option<String>,
    },
    UserGrantRole {
        name: String,
        role: String,
    },
    UserRevokeRole {
        name: String,
        role: String,
    },
    RoleAdd {
        name: String,
    },
    RoleDelete {
        name: String,
    },
    RoleGrantPermission {
        name: String,
        permission: Permission,
    },
    RoleRevokePermission {
        name: String,
        range: KeyRange,
    },
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthStore {
    enabled: bool,
    /// Bumped by every change that succeeds, as etcd's `authRevision`; a token carries the
    /// revision it was issued at, and is "old" once this moved past it.
    revision: u64,
    #[serde(with = "crate::base::serde_im::ord_map")]
    users: OrdMap<String, User>,
    #[serde(with = "crate::base::serde_im::ord_map")]
    roles: OrdMap<String, Role>,
}

impl AuthStore {
    /// The auth state read from a backup.
    pub fn from_parts(
        enabled: bool,
        revision: u64,
        users: impl IntoIterator<Item = (String, User)>,
        roles: impl IntoIterator<Item = (String, Role)>,
    ) -> AuthStore {
        AuthStore {
            enabled,
            revision,
            users: users.into_iter().collect(),
            roles: roles.into_iter().collect(),
        }
    }

    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    pub fn revision(&self) -> u64 {
        self.revision
    }

    pub fn user(&self, name: &str) -> Option<&User> {
        self.users.get(name)
    }

    pub fn role(&self, name: &str) -> Option<&Role> {
        self.roles.get(name)
    }

    pub fn user_names(&self) -> impl Iterator<Item = &String> {
        self.users.keys()
    }

    pub fn role_names(&self) -> impl Iterator<Item = &String> {
        self.roles.keys()
    }

    /// Applies `command` with etcd's checks and messages; the revision moves only on
    /// success (and not for an enable or disable that changes nothing, as etcd).
    pub fn apply(&mut self, command: &AuthCommand) -> Result<(), EtcdError> {
        match command {
            AuthCommand::Enable => {
                if self.enabled {
                    return Ok(());
                }
                let root = self.users.get(ROOT).ok_or(EtcdError::RootUserNotExist)?;
                if !root.is_root() {
                    return Err(EtcdError::RootRoleNotExist);
                }
                self.enabled = true;
                return Ok(());
            }
            AuthCommand::Disable => {
                self.enabled = false;
                return Ok(());
            }
            AuthCommand::UserAdd {
                name,
                password_hash,
            } => {
                if name.is_empty() {
                    return Err(EtcdError::UserEmpty);
                }
                if self.users.contains_key(name) {
                    return Err(EtcdError::UserAlreadyExist);
                }
                let user = User {
                    password_hash: password_hash.clone(),
                    roles: BTreeSet::new(),
                };
                self.users.insert(name.clone(), user);
            }
            AuthCommand::UserDelete { name } => {
                if self.enabled && name == ROOT {
                    return Err(EtcdError::InvalidAuthManagement);
                }
                self.users.remove(name).ok_or(EtcdError::UserNotFound)?;
            }
            AuthCommand::UserChangePassword {
                name,
                password_hash,
            } => {
                let user = self.users.get_mut(name).ok_or(EtcdError::UserNotFound)?;
                // A no-password user stays one (etcd ignores the new password).
                if user.password_hash.is_some() {
                    user.password_hash = password_hash.clone();
                }
            }
            AuthCommand::UserGrantRole { name, role } => {
                // etcd looks for the user first, then the role.
                if !self.users.contains_key(name) {
                    return Err(EtcdError::UserNotFound);
                }
                if role != ROOT && !self.roles.contains_key(role) {
                    return Err(EtcdError::RoleNotFound);
                }
                let user = self.users.get_mut(name).ok_or(EtcdError::UserNotFound)?;
                if !user.roles.insert(role.clone()) {
                    // Granting a role the user has is a no-op in etcd: no new revision.
                    return Ok(());
                }
            }
            AuthCommand::UserRevokeRole { name, role } => {
                if self.enabled && name == ROOT && role == ROOT {
                    return Err(EtcdError::InvalidAuthManagement);
                }
                let user = self.users.get_mut(name).ok_or(EtcdError::UserNotFound)?;
                if !user.roles.remove(role) {
                    return Err(EtcdError::RoleNotGranted);
                }
            }
            AuthCommand::RoleAdd { name } => {
                if name.is_empty() {
                    return Err(EtcdError::RoleEmpty);
                }
                if self.roles.contains_key(name) {
                    return Err(EtcdError::RoleAlreadyExist);
                }
                self.roles.insert(name.clone(), Role::default());
            }
            AuthCommand::RoleDelete { name } => {
                if self.enabled && name == ROOT {
                    return Err(EtcdError::InvalidAuthManagement);
                }
                self.roles.remove(name).ok_or(EtcdError::RoleNotFound)?;
                let holders: Vec<String> = self
                    .users
                    .iter()
                    .filter(|(_, user)| user.roles.contains(name))
                    .map(|(user_name, _)| user_name.clone())
                    .collect();
                for holder in holders {
                    if let Some(user) = self.users.get_mut(&holder) {
                        user.roles.remove(name);
                    }
                }
            }
            AuthCommand::RoleGrantPermission { name, permission } => {
                if !permissions::is_valid_grant(&permission.range) {
                    return Err(EtcdError::InvalidAuthManagement);
                }
                let role = self.roles.get_mut(name).ok_or(EtcdError::RoleNotFound)?;
                match role
                    .permissions
                    .iter_mut()
                    .find(|existing| existing.range == permission.range)
                {
                    Some(existing) => existing.access = permission.access,
                    None => {
                        role.permissions.push(permission.clone());
                        role.permissions
                            .sort_by(|left, right| left.range.start.cmp(&right.range.start));
                    }
                }
            }
            AuthCommand::RoleRevokePermission { name, range } => {
                let role = self.roles.get_mut(name).ok_or(EtcdError::RoleNotFound)?;
                let before = role.permissions.len();
                role.permissions
                    .retain(|permission| permission.range != *range);
                if role.permissions.len() == before {
                    return Err(EtcdError::PermissionNotGranted);
                }
            }
        }
        self.revision += 1;
        Ok(())
    }

    /// Whether `user` may `access` every key of `range`: root may do anything; others need
    /// the union of their roles' grants to cover the whole range (etcd's range permission
    /// cache). An unknown user may do nothing.
    pub fn permits(&self, user: &str, range: &KeyRange, access: Access) -> bool {
        let Some(user) = self.users.get(user) else {
            return false;
        };
        if user.is_root() {
            return true;
        }
        let granted = user
            .roles
            .iter()
            .filter_map(|role| self.roles.get(role))
            .flat_map(|role| role.permissions.iter())
            .filter(|permission| permission.access.allows(access))
            .map(|permission| &permission.range);
        permissions::covered(granted, range)
    }

    /// Whether `user` holds the root role (etcd's admin check for compaction, membership,
    /// maintenance and the auth RPCs).
    pub fn is_admin(&self, user: &str) -> Result<(), EtcdError> {
        match self.users.get(user) {
            None => Err(EtcdError::UserNotFound),
            Some(user) if user.is_root() => Ok(()),
            Some(_) => Err(EtcdError::PermissionDenied),
        }
    }

    /// The state as etcd's `Hash` covers it: every user, role and permission, and the flag.
    pub fn hash_into(&self, hasher: &mut crc32fast::Hasher) {
        hasher.update(&[self.enabled as u8]);
        hasher.update(&self.revision.to_be_bytes());
        for (name, user) in &self.users {
            hasher.update(name.as_bytes());
            hasher.update(user.password_hash.as_deref().unwrap_or("").as_bytes());
            for role in &user.roles {
                hasher.update(role.as_bytes());
            }
        }
        for (name, role) in &self.roles {
            hasher.update(name.as_bytes());
            for permission in &role.permissions {
                hasher.update(&[permission.access as u8]);
                hasher.update(&permission.range.start);
                hasher.update(&permission.range.end);
            }
        }
    }
}

#[cfg(test)]
mod tests;
