//! The Lock and Election services, driven by a client nobody here wrote (the `etcd-client`
//! crate's lock and election calls), against the real binary. The expected keys, headers and
//! error messages are what etcd 3.4 answered to the same requests on this machine.
// These start real processes on real sockets; the simulator has its own tests in sim/.
#![cfg(not(madsim))]

mod common;

use common::Server;
use etcd_client::{Client, GetOptions, LockOptions, ProclaimOptions, ResignOptions};
use std::future::Future;
use std::time::Duration;

/// Long enough for a request that should stay blocked to have been answered if it were not.
const STILL_BLOCKED_AFTER: Duration = Duration::from_millis(400);
/// The bound on anything the tests wait for.
const WAIT_MAX: Duration = Duration::from_secs(10);

fn start() -> (tempfile::TempDir, Server) {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), &[]);
    (dir, server)
}

async fn connect(server: &Server) -> Client {
    Client::connect([format!("http://{}", server.endpoint)], None)
        .await
        .unwrap()
}

async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(WAIT_MAX, future)
        .await
        .unwrap_or_else(|_| panic!("{what} did not happen within {WAIT_MAX:?}"))
}

async fn keys_under(client: &mut Client, prefix: &str) -> Vec<String> {
    let response = client
        .get(prefix, Some(GetOptions::new().with_prefix()))
        .await
        .unwrap();
    response
        .kvs()
        .iter()
        .map(|kv| kv.key_str().unwrap().to_string())
        .collect()
}

/// The status an etcd server's Lock and Election services answer with: Unknown and etcd's
/// message (its in-process client flattens every server error).
fn unknown_with(error: etcd_client::Error) -> String {
    match error {
        etcd_client::Error::GRpcStatus(status) => {
            assert_eq!(status.code(), tonic::Code::Unknown, "{status:?}");
            status.message().to_string()
        }
        other => panic!("expected a gRPC status, got {other:?}"),
    }
}

#[tokio::test]
async fn locks_are_exclusive_pass_in_order_and_follow_their_lease() {
    let (_dir, server) = start();
    let mut client = connect(&server).await;
    let first_lease = client.lease_grant(30, None).await.unwrap().id();
    let second_lease = client.lease_grant(30, None).await.unwrap().id();

    let held = client
        .lock("job", Some(LockOptions::new().with_lease(first_lease)))
        .await
        .unwrap();
    assert_eq!(held.key(), format!("job/{first_lease:x}").as_bytes());
    let again = client
        .lock("job", Some(LockOptions::new().with_lease(first_lease)))
        .await
        .unwrap();
    assert_eq!(again.key(), held.key(), "the same lease holds the same key");

    let mut waiter_client = client.clone();
    let waiter = tokio::spawn(async move {
        waiter_client
            .lock("job", Some(LockOptions::new().with_lease(second_lease)))
            .await
    });
    tokio::time::sleep(STILL_BLOCKED_AFTER).await;
    assert!(!waiter.is_finished(), "a second lease got a held lock");
    let mut waiting = [
        format!("job/{first_lease:x}"),
        format!("job/{second_lease:x}"),
    ];
    waiting.sort();
    assert_eq!(keys_under(&mut client, "job/").await, waiting);

    let unlocked = client.unlock(held.key()).await.unwrap();
    let unlock_revision = unlocked.header().unwrap().revision();
    let acquired = within("the waiter's lock", waiter).await.unwrap().unwrap();
    assert_eq!(acquired.key(), format!("job/{second_lease:x}").as_bytes());
    assert!(acquired.header().unwrap().revision() >= unlock_revision);

    // A lock whose lease is revoked is released: the next waiter gets it.
    let third_lease = client.lease_grant(30, None).await.unwrap().id();
    let mut waiter_client = client.clone();
    let waiter = tokio::spawn(async move {
        waiter_client
            .lock("job", Some(LockOptions::new().with_lease(third_lease)))
            .await
    });
    tokio::time::sleep(STILL_BLOCKED_AFTER).await;
    assert!(!waiter.is_finished());
    client.lease_revoke(second_lease).await.unwrap();
    let acquired = within("the lock after a revoke", waiter)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(acquired.key(), format!("job/{third_lease:x}").as_bytes());

    // A waiter that gives up leaves no key behind, as etcd's cleanup on cancel.
    let fourth_lease = client.lease_grant(30, None).await.unwrap().id();
    let mut waiter_client = client.clone();
    let given_up = tokio::time::timeout(
        STILL_BLOCKED_AFTER,
        waiter_client.lock("job", Some(LockOptions::new().with_lease(fourth_lease))),
    )
    .await;
    assert!(given_up.is_err(), "the lock is held; the waiter must wait");
    within("the canceled waiter's key to go", async {
        while keys_under(&mut client, "job/").await.len() != 1 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert_eq!(
        keys_under(&mut client, "job/").await,
        [format!("job/{third_lease:x}")]
    );
}

/// Real time, real lease expiry: a holder that stops renewing loses the lock once its TTL
/// runs out, and the waiter gets it then, not before.
#[tokio::test]
async fn a_lock_passes_on_when_its_holders_lease_expires() {
    let (_dir, server) = start();
    let mut client = connect(&server).await;
    let holder_lease = client.lease_grant(2, None).await.unwrap();
    let waiter_lease = client.lease_grant(60, None).await.unwrap().id();
    client
        .lock(
            "expiring",
            Some(LockOptions::new().with_lease(holder_lease.id())),
        )
        .await
        .unwrap();
    let granted = std::time::Instant::now();
    let mut waiter_client = client.clone();
    let waiter = tokio::spawn(async move {
        waiter_client
            .lock(
                "expiring",
                Some(LockOptions::new().with_lease(waiter_lease)),
            )
            .await
    });
    let acquired = within("the lock after the holder's lease expired", waiter)
        .await
        .unwrap()
        .unwrap();
    let waited = granted.elapsed();
    assert_eq!(
        acquired.key(),
        format!("expiring/{waiter_lease:x}").as_bytes()
    );
    assert!(
        waited >= Duration::from_secs(holder_lease.ttl() as u64) - Duration::from_millis(100),
        "the lock passed on after {waited:?}, before the holder's {}s TTL ran out",
        holder_lease.ttl()
    );
    assert_eq!(
        keys_under(&mut client, "expiring/").await,
        [format!("expiring/{waiter_lease:x}")]
    );
}

#[tokio::test]
async fn lock_without_a_lease_gets_a_sixty_second_one_and_errors_match_etcd() {
    let (_dir, server) = start();
    let mut client = connect(&server).await;
    let held = client.lock("solo", None).await.unwrap();
    let kv = client.get(held.key(), None).await.unwrap().kvs()[0].clone();
    assert_ne!(kv.lease(), 0);
    assert_eq!(held.key(), format!("solo/{:x}", kv.lease()).as_bytes());
    let lease = client.lease_time_to_live(kv.lease(), None).await.unwrap();
    assert_eq!(lease.granted_ttl(), 60, "etcd's session TTL");

    let error = client
        .lock("solo", Some(LockOptions::new().with_lease(12345)))
        .await
        .unwrap_err();
    assert_eq!(unknown_with(error), "etcdserver: requested lease not found");

    // Unlocking a key that is not there is no error (a plain delete, as etcd's).
    let response = client.unlock("solo/nothing").await.unwrap();
    assert!(response.header().unwrap().revision() > 0);
}

#[tokio::test]
async fn elections_elect_in_order_and_observers_see_every_value() {
    let (_dir, server) = start();
    let mut client = connect(&server).await;
    let error = client.leader("vote").await.unwrap_err();
    assert_eq!(unknown_with(error), "election: no leader");

    let first_lease = client.lease_grant(30, None).await.unwrap().id();
    let second_lease = client.lease_grant(30, None).await.unwrap().id();
    let campaign = client.campaign("vote", "a", first_lease).await.unwrap();
    let leader = campaign.leader().unwrap().clone();
    assert_eq!(leader.name(), b"vote");
    assert_eq!(leader.key(), format!("vote/{first_lease:x}").as_bytes());
    assert_eq!(leader.lease(), first_lease);
    assert_eq!(leader.rev(), campaign.header().unwrap().revision());

    let mut observer = client.observe("vote").await.unwrap();
    let seen = within("the current leader", observer.message())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(seen.kv().unwrap().value(), b"a");

    let mut candidate_client = client.clone();
    let candidate =
        tokio::spawn(async move { candidate_client.campaign("vote", "b", second_lease).await });
    tokio::time::sleep(STILL_BLOCKED_AFTER).await;
    assert!(!candidate.is_finished(), "two leaders at once");

    client
        .proclaim(
            "a2",
            Some(ProclaimOptions::new().with_leader(leader.clone())),
        )
        .await
        .unwrap();
    let seen = within("the proclaimed value", observer.message())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(seen.kv().unwrap().value(), b"a2");
    assert_eq!(
        client.leader("vote").await.unwrap().kv().unwrap().value(),
        b"a2"
    );

    client
        .resign(Some(ResignOptions::new().with_leader(leader.clone())))
        .await
        .unwrap();
    let elected = within("the second candidate's election", candidate)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        elected.leader().unwrap().key(),
        format!("vote/{second_lease:x}").as_bytes()
    );
    let seen = within("the next leader", observer.message())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(seen.kv().unwrap().value(), b"b");

    // The resigned leader can no longer proclaim; resigning twice is no error.
    let error = client
        .proclaim(
            "late",
            Some(ProclaimOptions::new().with_leader(leader.clone())),
        )
        .await
        .unwrap_err();
    assert_eq!(unknown_with(error), "election: not leader");
    client
        .resign(Some(ResignOptions::new().with_leader(leader)))
        .await
        .unwrap();
    let error = client.resign(None).await.unwrap_err();
    assert_eq!(unknown_with(error), "\"leader\" field must be provided");
}
