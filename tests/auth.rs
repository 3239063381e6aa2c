//! Authentication and RBAC against the real binary, driven by the real `etcdctl` and by the
//! `etcd-client` crate. Every expected message and code is what etcd 3.4 answered to the
//! same commands on this machine (the whole etcdctl flow below was run against both).
// These start real processes on real sockets; the simulator has its own tests in sim/.
#![cfg(not(madsim))]

mod common;

use common::cluster::Cluster;
use common::Server;
use etcd_client::{Client, ConnectOptions, EventType, WatchOptions};
use std::time::Duration;

fn start(args: &[&str]) -> (tempfile::TempDir, Server) {
    let dir = tempfile::tempdir().unwrap();
    // The lowest bcrypt cost etcd accepts keeps each Authenticate fast in tests.
    let mut all_args = vec!["--bcrypt-cost=4"];
    all_args.extend_from_slice(args);
    let server = Server::start(&dir.path().join("data"), &all_args);
    (dir, server)
}

/// etcdctl as `user` (`name:password`).
fn as_user(server: &Server, user: &str, args: &[&str]) -> std::process::Output {
    let user_flag = format!("--user={user}");
    let mut all_args = vec![user_flag.as_str()];
    all_args.extend_from_slice(args);
    server.etcdctl(&all_args)
}

fn ok_as(server: &Server, user: &str, args: &[&str]) -> String {
    let output = as_user(server, user, args);
    assert!(
        output.status.success(),
        "etcdctl --user={user} {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// The `Error:` line etcdctl prints for a refused command.
fn refusal_as(server: &Server, user: Option<&str>, args: &[&str]) -> String {
    let output = match user {
        Some(user) => as_user(server, user, args),
        None => server.etcdctl(args),
    };
    assert!(!output.status.success(), "{args:?} should be refused");
    let stderr = String::from_utf8_lossy(&output.stderr);
    stderr
        .lines()
        .find_map(|line| line.strip_prefix("Error: "))
        .unwrap_or_else(|| panic!("no Error: line in {stderr}"))
        .to_string()
}

const ROOT: &str = "root:rootpw";
const ALICE: &str = "alice:alicepw";

/// root with the root role, alice with `reader` (READ on app/, READWRITE on solo), auth on.
fn with_alice(server: &Server) {
    server.ok(&["user", "add", ROOT]);
    server.ok(&["user", "add", ALICE]);
    server.ok(&["role", "add", "reader"]);
    server.ok(&[
        "role",
        "grant-permission",
        "reader",
        "read",
        "app/",
        "--prefix=true",
    ]);
    server.ok(&["role", "grant-permission", "reader", "readwrite", "solo"]);
    server.ok(&["user", "grant-role", "alice", "reader"]);
    // etcdctl grants root the root role itself when the server says it lacks it.
    assert_eq!(
        server.ok(&["auth", "enable"]).trim(),
        "Authentication Enabled"
    );
}

#[test]
fn users_roles_and_grants_as_etcd() {
    let (_dir, server) = start(&[]);
    assert_eq!(
        refusal_as(&server, None, &["auth", "enable"]),
        "etcdserver: root user does not exist"
    );
    with_alice(&server);
    assert_eq!(
        refusal_as(&server, None, &["user", "add", "root:again"]),
        "etcdserver: user name is empty",
        "anonymous requests are refused once auth is on"
    );
    assert_eq!(
        refusal_as(&server, Some(ROOT), &["role", "add", "reader"]),
        "etcdserver: role name already exists"
    );
    assert_eq!(
        refusal_as(
            &server,
            Some(ROOT),
            &["user", "grant-role", "alice", "nosuch"]
        ),
        "etcdserver: role name not found"
    );
    ok_as(&server, ROOT, &["put", "app/x", "1"]);
    ok_as(&server, ROOT, &["put", "other", "1"]);

    // Read-only under app/, read-write on solo, nothing elsewhere.
    assert_eq!(ok_as(&server, ALICE, &["get", "app/x"]), "app/x\n1\n");
    assert_eq!(
        ok_as(&server, ALICE, &["get", "app/", "--prefix"]),
        "app/x\n1\n"
    );
    for refused in [
        &["put", "app/x", "2"][..],
        &["get", "other"],
        &["get", "a", "--prefix"],
        &["del", "app/x"],
        &["user", "list"],
        &["user", "get", "root"],
        &["member", "add", "m2", "--peer-urls=http://127.0.0.1:1"],
    ] {
        assert_eq!(
            refusal_as(&server, Some(ALICE), refused),
            "etcdserver: permission denied",
            "{refused:?}"
        );
    }
    ok_as(&server, ALICE, &["put", "solo", "s"]);
    assert_eq!(ok_as(&server, ALICE, &["get", "solo"]), "solo\ns\n");
    // A user reads its own entry and the roles it holds; member list is open to all.
    assert_eq!(
        ok_as(&server, ALICE, &["user", "get", "alice"]),
        "User: alice\nRoles: reader\n"
    );
    assert_eq!(
        ok_as(&server, ALICE, &["role", "get", "reader"]),
        "Role reader\nKV Read:\n\t[app/, app0) (prefix app/)\n\tsolo\nKV Write:\n\tsolo\n"
    );
    ok_as(&server, ALICE, &["member", "list"]);
    // Maintenance answers with the auth store's own error, as etcd's does.
    let hashkv = as_user(&server, ALICE, &["endpoint", "hashkv"]);
    assert!(
        String::from_utf8_lossy(&hashkv.stderr)
            .contains("rpc error: code = Unknown desc = auth: permission denied"),
        "{hashkv:?}"
    );
    assert_eq!(
        refusal_as(&server, Some("alice:wrong"), &["get", "app/x"]),
        "etcdserver: authentication failed, invalid user ID or password"
    );

    assert_eq!(ok_as(&server, ROOT, &["user", "list"]), "alice\nroot\n");
    assert_eq!(ok_as(&server, ROOT, &["role", "list"]), "reader\nroot\n");
    for refused in [
        &["user", "delete", "root"][..],
        &["role", "delete", "root"],
        &["user", "revoke-role", "root", "root"],
    ] {
        assert_eq!(
            refusal_as(&server, Some(ROOT), refused),
            "etcdserver: invalid auth management",
            "{refused:?}"
        );
    }

    // Revoking takes effect at once.
    ok_as(
        &server,
        ROOT,
        &[
            "role",
            "revoke-permission",
            "reader",
            "app/",
            "--prefix=true",
        ],
    );
    assert_eq!(
        refusal_as(&server, Some(ALICE), &["get", "app/x"]),
        "etcdserver: permission denied"
    );
    assert_eq!(
        refusal_as(
            &server,
            Some(ROOT),
            &["role", "revoke-permission", "reader", "nothere"]
        ),
        "etcdserver: permission is not granted to the role"
    );
    ok_as(&server, ROOT, &["user", "revoke-role", "alice", "reader"]);
    assert_eq!(
        refusal_as(
            &server,
            Some(ROOT),
            &["user", "revoke-role", "alice", "reader"]
        ),
        "etcdserver: role is not granted to the user"
    );
    assert_eq!(
        refusal_as(&server, Some(ALICE), &["get", "solo"]),
        "etcdserver: permission denied"
    );

    // A new password replaces the old one.
    let changed = server.etcdctl_input(
        &[
            "--user=root:rootpw",
            "user",
            "passwd",
            "alice",
            "--interactive=false",
        ],
        "newpw\n",
    );
    assert!(changed.status.success(), "{changed:?}");
    assert_eq!(
        refusal_as(&server, Some(ALICE), &["get", "solo"]),
        "etcdserver: authentication failed, invalid user ID or password"
    );
    assert_eq!(
        refusal_as(&server, Some("alice:newpw"), &["get", "solo"]),
        "etcdserver: permission denied"
    );

    // Disabled, everyone is let in again.
    assert_eq!(
        ok_as(&server, ROOT, &["auth", "disable"]).trim(),
        "Authentication Disabled"
    );
    assert_eq!(server.ok(&["get", "app/x"]), "app/x\n1\n");
    server.ok(&["user", "delete", "alice"]);
    server.ok(&["role", "delete", "reader"]);
    assert_eq!(server.ok(&["user", "list"]), "root\n");
}

async fn client_as(server: &Server, user: &str, password: &str, refresh: bool) -> Client {
    let options = ConnectOptions::new()
        .with_user(user, password)
        .with_auto_token_refresh(refresh);
    Client::connect([format!("http://{}", server.endpoint)], Some(options))
        .await
        .unwrap()
}

async fn put_leased(client: &mut Client, key: &str, lease: i64) {
    let options = etcd_client::PutOptions::new().with_lease(lease);
    client.put(key, "v", Some(options)).await.unwrap();
}

fn denied(error: etcd_client::Error) -> bool {
    matches!(&error, etcd_client::Error::GRpcStatus(status)
        if status.code() == tonic::Code::PermissionDenied
            && status.message() == "etcdserver: permission denied")
}

#[tokio::test]
async fn txns_watches_and_leases_are_checked_key_by_key() {
    use etcd_client::{Compare, CompareOp, Txn, TxnOp};
    let (_dir, server) = start(&[]);
    with_alice(&server);
    let mut root = client_as(&server, "root", "rootpw", false).await;
    let mut alice = client_as(&server, "alice", "alicepw", false).await;
    let lease = root.lease_grant(60, None).await.unwrap().id();
    put_leased(&mut root, "app/leased", lease).await;
    root.put("other", "secret", None).await.unwrap();

    // A txn is refused if any compare or operation, on either branch, reaches outside.
    let compare_outside = Txn::new()
        .when([Compare::value("other", CompareOp::Equal, "secret")])
        .and_then([TxnOp::put("solo", "x", None)]);
    assert!(denied(alice.txn(compare_outside).await.unwrap_err()));
    let failure_branch_outside = Txn::new()
        .when([Compare::version("solo", CompareOp::Greater, 0)])
        .and_then([TxnOp::get("solo", None)])
        .or_else([TxnOp::delete("other", None)]);
    assert!(denied(alice.txn(failure_branch_outside).await.unwrap_err()));
    let inside = Txn::new()
        .when([Compare::version("app/leased", CompareOp::Greater, 0)])
        .and_then([TxnOp::put("solo", "from-txn", None)]);
    assert!(alice.txn(inside).await.unwrap().succeeded());

    // Revoking a lease needs WRITE on its keys; a read-only user cannot delete them so.
    assert!(denied(alice.lease_revoke(lease).await.unwrap_err()));
    assert_eq!(root.get("app/leased", None).await.unwrap().count(), 1);
    // TimeToLive needs READ on every key of the lease.
    alice.lease_time_to_live(lease, None).await.unwrap();
    let secret_lease = root.lease_grant(60, None).await.unwrap().id();
    put_leased(&mut root, "other/leased", secret_lease).await;
    assert!(denied(
        alice
            .lease_time_to_live(secret_lease, None)
            .await
            .unwrap_err()
    ));

    // A watch outside the grants is canceled at once with etcd's reason.
    let mut events = alice.watch("other", None).await.unwrap();
    let refused = events.message().await.unwrap().unwrap();
    assert!(refused.canceled(), "{refused:?}");
    assert_eq!(
        refused.cancel_reason(),
        "rpc error: code = PermissionDenied desc = etcdserver: permission denied"
    );
    let mut events = alice
        .watch("app/", Some(WatchOptions::new().with_prefix()))
        .await
        .unwrap();
    let created = events.message().await.unwrap().unwrap();
    assert!(created.created() && !created.canceled(), "{created:?}");
    root.put("app/new", "1", None).await.unwrap();
    let delivered = tokio::time::timeout(Duration::from_secs(10), events.message())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(delivered.events()[0].event_type(), EventType::Put);
    assert_eq!(delivered.events()[0].kv().unwrap().key(), b"app/new");
}

#[tokio::test]
async fn tokens_expire_and_a_refreshing_client_keeps_working() {
    let (_dir, server) = start(&["--auth-token-ttl=2"]);
    with_alice(&server);
    let mut refreshing = client_as(&server, "alice", "alicepw", true).await;
    let mut plain = client_as(&server, "alice", "alicepw", false).await;
    refreshing.put("solo", "1", None).await.unwrap();
    plain.put("solo", "2", None).await.unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    match plain.put("solo", "3", None).await {
        Err(etcd_client::Error::GRpcStatus(status)) => {
            assert_eq!(status.code(), tonic::Code::Unauthenticated);
            assert_eq!(status.message(), "etcdserver: invalid auth token");
        }
        other => panic!("an unused token outlived its TTL: {other:?}"),
    }
    refreshing.put("solo", "4", None).await.unwrap();
    let value = refreshing.get("solo", None).await.unwrap();
    assert_eq!(value.kvs()[0].value(), b"4");
}

#[test]
fn auth_survives_restarts_and_snapshots_and_holds_on_every_member() {
    let mut cluster = Cluster::start(3, &["--bcrypt-cost=4", "--snapshot-count=5"]);
    let root_flag = format!("--user={ROOT}");
    cluster.members[0].ok(&["user", "add", ROOT]);
    cluster.members[1].ok(&["user", "add", ALICE]);
    cluster.members[2].ok(&["role", "add", "reader"]);
    cluster.members[0].ok(&[
        "role",
        "grant-permission",
        "reader",
        "read",
        "app/",
        "--prefix=true",
    ]);
    cluster.members[1].ok(&["user", "grant-role", "alice", "reader"]);
    cluster.members[2].ok(&["auth", "enable"]);
    for index in 0..10 {
        cluster.members[index % 3].ok(&[&root_flag, "put", &format!("app/{index}"), "v"]);
    }
    for position in 0..3 {
        cluster.members[position].kill();
        cluster.members[position].restart();
        cluster.wait_healthy_as(position, &[&root_flag]);
    }
    for member in &cluster.members {
        let alice_flag = format!("--user={ALICE}");
        let read = member.ok(&[&alice_flag, "get", "app/", "--prefix", "--keys-only"]);
        assert_eq!(read.lines().filter(|line| !line.is_empty()).count(), 10);
        let refused = member.etcdctl(&[&alice_flag, "put", "app/x", "v"]);
        assert!(
            String::from_utf8_lossy(&refused.stderr).contains("etcdserver: permission denied"),
            "{refused:?}"
        );
        let anonymous = member.etcdctl(&["get", "app/0"]);
        assert!(
            String::from_utf8_lossy(&anonymous.stderr).contains("etcdserver: user name is empty"),
            "{anonymous:?}"
        );
    }
    let snapshots = std::fs::read_dir(cluster.members[0].data_dir.join("member/snap"))
        .unwrap()
        .count();
    assert!(snapshots > 0, "the run took no snapshot");
}

/// An ES256 key pair in PEM files, as etcd's `priv-key` and `pub-key` take them.
fn jwt_keys(dir: &std::path::Path) -> (String, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let private = dir.join("jwt.key");
    let public = dir.join("jwt.pub");
    std::fs::write(&private, key.serialize_pem()).unwrap();
    std::fs::write(&public, key.public_key_pem()).unwrap();
    (private.display().to_string(), public.display().to_string())
}

#[tokio::test]
async fn jwt_tokens_survive_a_restart_and_expire_by_their_ttl() {
    let dir = tempfile::tempdir().unwrap();
    let (private, public) = jwt_keys(dir.path());
    // Long enough that a restart on a loaded machine ends well inside it (CI saw a 3 s TTL
    // run out before the restarted member answered); the expiry is awaited from the issue.
    let ttl = Duration::from_secs(10);
    let flag = format!(
        "--auth-token=jwt,pub-key={public},priv-key={private},sign-method=ES256,ttl={}s",
        ttl.as_secs()
    );
    let (_data, mut server) = start(&[&flag]);
    with_alice(&server);
    assert_eq!(ok_as(&server, ALICE, &["get", "solo"]), "");
    // The token is issued between these two instants.
    let asked = std::time::Instant::now();
    let mut alice = client_as(&server, "alice", "alicepw", false).await;
    let issued = std::time::Instant::now();
    alice.put("solo", "1", None).await.unwrap();
    // A JWT is not member state: the restarted member still accepts it.
    server.restart();
    // The first call after the restart may find the old connection gone; the channel
    // reconnects by itself.
    let mut after_restart = alice.put("solo", "2", None).await;
    for _ in 0..50 {
        match &after_restart {
            Err(etcd_client::Error::GRpcStatus(status))
                if status.code() == tonic::Code::Unknown
                    || status.code() == tonic::Code::Unavailable =>
            {
                tokio::time::sleep(Duration::from_millis(100)).await;
                after_restart = alice.put("solo", "2", None).await;
            }
            _ => break,
        }
    }
    after_restart.unwrap();
    assert!(
        asked.elapsed() < ttl,
        "the restart outlasted the token's TTL"
    );
    tokio::time::sleep((ttl + Duration::from_secs(1)).saturating_sub(issued.elapsed())).await;
    match alice.put("solo", "3", None).await {
        Err(etcd_client::Error::GRpcStatus(status)) => {
            assert_eq!(status.message(), "etcdserver: invalid auth token")
        }
        other => panic!("a JWT outlived its ttl: {other:?}"),
    }
    let mut refreshing = client_as(&server, "alice", "alicepw", true).await;
    refreshing.put("solo", "4", None).await.unwrap();
    assert_eq!(
        refreshing.get("solo", None).await.unwrap().kvs()[0].value(),
        b"4"
    );
}

/// Lock and Election act for their caller: their keys need the caller's permissions, as
/// etcd's in-process client passes the caller's token on.
#[tokio::test]
async fn locks_and_elections_act_for_their_caller() {
    let (_dir, server) = start(&[]);
    with_alice(&server);
    ok_as(
        &server,
        ROOT,
        &[
            "role",
            "grant-permission",
            "reader",
            "readwrite",
            "jobs/",
            "--prefix=true",
        ],
    );
    let mut alice = client_as(&server, "alice", "alicepw", false).await;
    let held = alice.lock("jobs", None).await.unwrap();
    assert!(held.key().starts_with(b"jobs/"), "{:?}", held.key());
    alice.unlock(held.key()).await.unwrap();
    for refused in [
        alice.lock("other", None).await.map(drop),
        alice.campaign("other", "me", 0).await.map(drop),
    ] {
        match refused {
            Err(etcd_client::Error::GRpcStatus(status)) => {
                assert_eq!(
                    status.message(),
                    "etcdserver: permission denied",
                    "{status:?}"
                )
            }
            other => panic!("a lock outside alice's grants: {other:?}"),
        }
    }
    let mut root = client_as(&server, "root", "rootpw", false).await;
    let campaign = root.campaign("other", "root", 0).await.unwrap();
    assert!(campaign.leader().is_some());
}
