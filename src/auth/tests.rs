use super::*;
use crate::base::prefix_end;

fn grant(store: &mut AuthStore, role: &str, access: Access, range: KeyRange) {
    store
        .apply(&AuthCommand::RoleGrantPermission {
            name: role.to_string(),
            permission: Permission { access, range },
        })
        .unwrap();
}

fn with_user_and_role() -> AuthStore {
    let mut store = AuthStore::default();
    for command in [
        AuthCommand::UserAdd {
            name: "alice".into(),
            password_hash: Some("hash".into()),
        },
        AuthCommand::RoleAdd {
            name: "reader".into(),
        },
        AuthCommand::UserGrantRole {
            name: "alice".into(),
            role: "reader".into(),
        },
    ] {
        store.apply(&command).unwrap();
    }
    store
}

fn prefix(text: &str) -> KeyRange {
    KeyRange::prefix(text.as_bytes())
}

#[test]
fn enable_needs_a_root_user_with_the_root_role() {
    let mut store = AuthStore::default();
    assert_eq!(
        store.apply(&AuthCommand::Enable),
        Err(EtcdError::RootUserNotExist)
    );
    store
        .apply(&AuthCommand::UserAdd {
            name: ROOT.into(),
            password_hash: Some("hash".into()),
        })
        .unwrap();
    assert_eq!(
        store.apply(&AuthCommand::Enable),
        Err(EtcdError::RootRoleNotExist)
    );
    store
        .apply(&AuthCommand::UserGrantRole {
            name: ROOT.into(),
            role: ROOT.into(),
        })
        .unwrap();
    store.apply(&AuthCommand::Enable).unwrap();
    assert!(store.is_enabled());
    // While enabled, root and its role cannot be taken away.
    for refused in [
        AuthCommand::UserDelete { name: ROOT.into() },
        AuthCommand::RoleDelete { name: ROOT.into() },
        AuthCommand::UserRevokeRole {
            name: ROOT.into(),
            role: ROOT.into(),
        },
    ] {
        assert_eq!(store.apply(&refused), Err(EtcdError::InvalidAuthManagement));
    }
}

#[test]
fn every_change_moves_the_revision_and_refusals_do_not() {
    let mut store = with_user_and_role();
    assert_eq!(store.revision(), 3);
    assert_eq!(
        store.apply(&AuthCommand::UserAdd {
            name: "alice".into(),
            password_hash: None
        }),
        Err(EtcdError::UserAlreadyExist)
    );
    assert_eq!(
        store.apply(&AuthCommand::UserAdd {
            name: String::new(),
            password_hash: None
        }),
        Err(EtcdError::UserEmpty)
    );
    // Granting a role already held is accepted and changes nothing.
    store
        .apply(&AuthCommand::UserGrantRole {
            name: "alice".into(),
            role: "reader".into(),
        })
        .unwrap();
    assert_eq!(store.revision(), 3);
    assert_eq!(
        store.apply(&AuthCommand::UserGrantRole {
            name: "alice".into(),
            role: "nobody".into()
        }),
        Err(EtcdError::RoleNotFound)
    );
    assert_eq!(
        store.apply(&AuthCommand::RoleRevokePermission {
            name: "reader".into(),
            range: prefix("a"),
        }),
        Err(EtcdError::PermissionNotGranted)
    );
    assert_eq!(store.revision(), 3);
}

#[test]
fn grants_cover_keys_prefixes_and_merged_ranges() {
    let mut store = with_user_and_role();
    grant(&mut store, "reader", Access::Read, prefix("app/"));
    grant(
        &mut store,
        "reader",
        Access::ReadWrite,
        KeyRange::single("solo"),
    );
    grant(&mut store, "reader", Access::Read, KeyRange::new("m", "p"));
    grant(&mut store, "reader", Access::Read, KeyRange::new("p", "r"));
    let permits = |range: KeyRange, access| store.permits("alice", &range, access);
    assert!(permits(KeyRange::single("app/x"), Access::Read));
    assert!(!permits(KeyRange::single("app/x"), Access::Write));
    assert!(permits(prefix("app/"), Access::Read));
    assert!(permits(prefix("app/sub/"), Access::Read));
    assert!(
        !permits(prefix("app"), Access::Read),
        "wider than the grant"
    );
    assert!(permits(KeyRange::single("solo"), Access::Write));
    assert!(!permits(KeyRange::single("solo2"), Access::Read));
    // Two adjacent grants together cover [m, r).
    assert!(permits(KeyRange::new("n", "q"), Access::Read));
    assert!(permits(KeyRange::new("m", "r"), Access::Read));
    assert!(!permits(KeyRange::new("m", "s"), Access::Read));
    assert!(!permits(KeyRange::new("n", "\0"), Access::Read));
    assert!(!store.permits("mallory", &KeyRange::single("app/x"), Access::Read));
}

#[test]
fn an_unbounded_grant_covers_everything_after_it() {
    let mut store = with_user_and_role();
    grant(
        &mut store,
        "reader",
        Access::Write,
        KeyRange::new("k", "\0"),
    );
    assert!(store.permits("alice", &KeyRange::new("z", "\0"), Access::Write));
    assert!(store.permits(
        "alice",
        &KeyRange::new("k", prefix_end(b"zz")),
        Access::Write
    ));
    assert!(!store.permits("alice", &KeyRange::new("a", "\0"), Access::Write));
}

#[test]
fn revoking_and_deleting_take_grants_away() {
    let mut store = with_user_and_role();
    grant(&mut store, "reader", Access::Read, prefix("app/"));
    let key = KeyRange::single("app/x");
    store
        .apply(&AuthCommand::RoleRevokePermission {
            name: "reader".into(),
            range: prefix("app/"),
        })
        .unwrap();
    assert!(!store.permits("alice", &key, Access::Read));
    grant(&mut store, "reader", Access::Read, prefix("app/"));
    store
        .apply(&AuthCommand::RoleDelete {
            name: "reader".into(),
        })
        .unwrap();
    assert!(!store.permits("alice", &key, Access::Read));
    assert!(store.user("alice").unwrap().roles.is_empty());
    assert_eq!(store.is_admin("alice"), Err(EtcdError::PermissionDenied));
    assert_eq!(store.is_admin("nobody"), Err(EtcdError::UserNotFound));
}

#[test]
fn invalid_grants_are_refused() {
    let mut store = with_user_and_role();
    for range in [KeyRange::new("", "z"), KeyRange::new("z", "a")] {
        assert_eq!(
            store.apply(&AuthCommand::RoleGrantPermission {
                name: "reader".into(),
                permission: Permission {
                    access: Access::Read,
                    range
                },
            }),
            Err(EtcdError::InvalidAuthManagement)
        );
    }
}
