//! The auth workload: an admin that sets up root and a restricted user, enables auth, and
//! then grants and revokes the restricted role's READWRITE on `a/` over and over; restricted
//! clients that authenticate on any member and read and write keys under `a/` (granted
//! part of the time) and `secret/` (never granted). When faults stop the admin disables auth,
//! so the final observation reads as usual. Every grant change and request is recorded.

use super::{channels, with_timeout};
use crate::history::{AuthOutcome, AuthRequest, GrantChange, Millis};
use crate::params::Params;
use crate::recorder::{now_ms, SharedRecorder};
use crate::seeds::Stream;
use cairn::api::pb::authpb;
use cairn::api::pb::etcdserverpb::{self as pb, auth_client::AuthClient, kv_client::KvClient};
use rand::Rng;
use std::time::Duration;
use tonic::transport::Channel;

/// The prefix the restricted role is granted and revoked on.
pub const GRANTED_PREFIX: &str = "a/";
/// The prefix the restricted role is never granted.
pub const SECRET_PREFIX: &str = "secret/";
const KEYS_PER_PREFIX: usize = 3;
const ROOT_PASSWORD: &str = "root-password";
const USER: &str = "restricted";
const USER_PASSWORD: &str = "restricted-password";
const ROLE: &str = "restricted-role";
/// How long the admin keeps trying to disable auth once faults stopped (a healed cluster
/// must manage it; not managing is a liveness violation).
const DISABLE_PATIENCE_MS: Millis = 30_000;

fn with_token<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let Ok(value) = token.parse() {
        request.metadata_mut().insert("token", value);
    }
    request
}

/// A token for `name` from the member behind `channel`.
async fn authenticate(
    params: &Params,
    channel: &Channel,
    name: &str,
    password: &str,
) -> Option<String> {
    let request = pb::AuthenticateRequest {
        name: name.to_string(),
        password: password.to_string(),
    };
    with_timeout(
        params,
        AuthClient::new(channel.clone()).authenticate(request),
    )
    .await
    .ok()
    .map(|response| response.token)
}

/// Runs one setup step until it is done, or was already (by an attempt that got no answer:
/// "already exists", or, for the enable, the refusal an anonymous request gets once auth
/// is on); false if `stop_ms` came first.
async fn until_done<F, Fut>(
    params: &Params,
    channels: &[Channel],
    recorder: &SharedRecorder,
    stop_ms: Millis,
    step: F,
) -> bool
where
    F: Fn(AuthClient<Channel>) -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let mut attempt = 0;
    while now_ms(recorder) < stop_ms {
        let client = AuthClient::new(channels[attempt % channels.len()].clone());
        attempt += 1;
        match step(client).await {
            Ok(()) => return true,
            Err(error) if error.contains("already exists") => return true,
            Err(error) if error.contains("user name is empty") => return true,
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(params.request_timeout_ms() / 4)).await
            }
        }
    }
    false
}

/// One step of the setup, in the order `set_up` takes them.
enum SetupStep {
    UserAdd(&'static str, &'static str),
    RoleAdd(&'static str),
    GrantRole(&'static str, &'static str),
    Enable,
}

async fn set_up_step(
    params: &Params,
    mut client: AuthClient<Channel>,
    step: &SetupStep,
) -> Result<(), String> {
    match *step {
        SetupStep::UserAdd(name, password) => {
            let request = pb::AuthUserAddRequest {
                name: name.to_string(),
                password: password.to_string(),
                ..Default::default()
            };
            with_timeout(params, client.user_add(request))
                .await
                .map(drop)
        }
        SetupStep::RoleAdd(name) => {
            let request = pb::AuthRoleAddRequest {
                name: name.to_string(),
            };
            with_timeout(params, client.role_add(request))
                .await
                .map(drop)
        }
        SetupStep::GrantRole(user, role) => {
            let request = pb::AuthUserGrantRoleRequest {
                user: user.to_string(),
                role: role.to_string(),
            };
            with_timeout(params, client.user_grant_role(request))
                .await
                .map(drop)
        }
        SetupStep::Enable => with_timeout(params, client.auth_enable(pb::AuthEnableRequest {}))
            .await
            .map(drop),
    }
}

/// Root and the restricted user with its role, then auth on; false if faults outlasted it.
async fn set_up(
    params: &Params,
    channels: &[Channel],
    recorder: &SharedRecorder,
    stop_ms: Millis,
) -> bool {
    let steps = [
        SetupStep::UserAdd("root", ROOT_PASSWORD),
        SetupStep::UserAdd(USER, USER_PASSWORD),
        SetupStep::RoleAdd(ROLE),
        SetupStep::GrantRole("root", "root"),
        SetupStep::GrantRole(USER, ROLE),
        SetupStep::Enable,
    ];
    for step in &steps {
        let done = until_done(params, channels, recorder, stop_ms, |client| {
            set_up_step(params, client, step)
        })
        .await;
        if !done {
            return false;
        }
    }
    true
}

/// Grants (or revokes) the restricted role's READWRITE on the granted prefix, as root.
async fn change_grant(
    params: &Params,
    channel: &Channel,
    token: &str,
    granted: bool,
) -> Result<(), String> {
    let mut client = AuthClient::new(channel.clone());
    let key = GRANTED_PREFIX.as_bytes().to_vec();
    let range_end = cairn::base::prefix_end(GRANTED_PREFIX.as_bytes());
    if granted {
        let request = pb::AuthRoleGrantPermissionRequest {
            name: ROLE.to_string(),
            perm: Some(authpb::Permission {
                perm_type: authpb::permission::Type::Readwrite as i32,
                key: key.into(),
                range_end: range_end.into(),
            }),
        };
        with_timeout(
            params,
            client.role_grant_permission(with_token(request, token)),
        )
        .await
        .map(drop)
    } else {
        let request = pb::AuthRoleRevokePermissionRequest {
            role: ROLE.to_string(),
            key: key.into(),
            range_end: range_end.into(),
        };
        match with_timeout(
            params,
            client.role_revoke_permission(with_token(request, token)),
        )
        .await
        {
            // An earlier revoke that got no answer took effect after all.
            Err(error) if error.contains("permission is not granted") => Ok(()),
            other => other.map(drop),
        }
    }
}

/// Whether an error means the request never reached raft (so nothing changed).
fn refused_before_raft(error: &str) -> bool {
    error.contains("invalid auth token") || error.contains("user name is empty")
}

/// The admin: set up, then flip the grant until `stop_ms`, then disable auth.
pub async fn run_auth_admin(params: Params, recorder: SharedRecorder, stop_ms: Millis) {
    let mut random = Stream::AuthAdmin.random(params.seed);
    let channels = channels(&params.endpoints);
    if set_up(&params, &channels, &recorder, stop_ms).await {
        recorder.lock().unwrap().history.auth.enabled_ms = Some(now_ms(&recorder));
    }
    let mut granted = false;
    let mut session: Option<(usize, String)> = None;
    while now_ms(&recorder) < stop_ms {
        let (member, token) = match session.take() {
            Some(session) => session,
            None => {
                let member = random.gen_range(0..channels.len());
                match authenticate(&params, &channels[member], "root", ROOT_PASSWORD).await {
                    Some(token) => (member, token),
                    None => continue,
                }
            }
        };
        let wanted = !granted;
        let invoked_ms = now_ms(&recorder);
        let result = change_grant(&params, &channels[member], &token, wanted).await;
        let completed_ms = now_ms(&recorder);
        let answered = match result {
            Err(error) if refused_before_raft(&error) => continue,
            Ok(()) => {
                granted = wanted;
                session = Some((member, token));
                true
            }
            // No answer: it may still take effect; the next attempt asks for it again.
            Err(_) => false,
        };
        let change = GrantChange {
            granted: wanted,
            invoked_ms,
            completed_ms: answered.then_some(completed_ms),
        };
        recorder
            .lock()
            .unwrap()
            .history
            .auth
            .grant_changes
            .push(change);
        tokio::time::sleep(Duration::from_millis(random.gen_range(50..=400))).await;
    }
    disable(&params, &channels, &recorder).await;
    let mut recorder = recorder.lock().unwrap();
    let log = &recorder.history.auth;
    let count = |wanted: fn(&AuthOutcome) -> bool| {
        log.requests
            .iter()
            .filter(|request| wanted(&request.outcome))
            .count()
    };
    let summary = format!(
        "auth: {} grant changes, requests {} allowed, {} denied, {} failed",
        log.grant_changes.len(),
        count(|outcome| *outcome == AuthOutcome::Allowed),
        count(|outcome| *outcome == AuthOutcome::Denied),
        count(|outcome| matches!(outcome, AuthOutcome::Failed(_))),
    );
    recorder.note(summary);
}

async fn disable(params: &Params, channels: &[Channel], recorder: &SharedRecorder) {
    let started_ms = now_ms(recorder);
    recorder.lock().unwrap().history.auth.disable_invoked_ms = Some(started_ms);
    for attempt in 0.. {
        let channel = &channels[attempt % channels.len()];
        if let Some(token) = authenticate(params, channel, "root", ROOT_PASSWORD).await {
            let request = with_token(pb::AuthDisableRequest {}, &token);
            let disabled = with_timeout(
                params,
                AuthClient::new(channel.clone()).auth_disable(request),
            )
            .await;
            match disabled {
                Ok(_) => return,
                Err(error) if error.contains("authentication is not enabled") => return,
                Err(_) => {}
            }
        } else if AuthClient::new(channel.clone())
            .auth_status(pb::AuthStatusRequest {})
            .await
            .is_ok_and(|status| !status.into_inner().enabled)
        {
            // An attempt that got no answer did disable it.
            return;
        }
        if now_ms(recorder) > started_ms + DISABLE_PATIENCE_MS {
            let mut recorder = recorder.lock().unwrap();
            recorder.history.stalled_changes.push(format!(
                "auth disable did not complete within {DISABLE_PATIENCE_MS} ms of faults stopping"
            ));
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A restricted client: authenticate on a member, then read and write there until the token
/// stops working, then authenticate again (perhaps elsewhere).
pub async fn run_auth_client(
    index: usize,
    params: Params,
    recorder: SharedRecorder,
    stop_ms: Millis,
) {
    let mut random = Stream::AuthClient(index).random(params.seed);
    let channels = channels(&params.endpoints);
    while now_ms(&recorder) < stop_ms {
        let member = random.gen_range(0..channels.len());
        let Some(token) = authenticate(&params, &channels[member], USER, USER_PASSWORD).await
        else {
            // Auth not on yet, or the member unreachable.
            tokio::time::sleep(Duration::from_millis(random.gen_range(50..=200))).await;
            continue;
        };
        while now_ms(&recorder) < stop_ms {
            let prefix = if random.gen_bool(0.7) {
                GRANTED_PREFIX
            } else {
                SECRET_PREFIX
            };
            let key = format!("{prefix}{}", random.gen_range(0..KEYS_PER_PREFIX));
            let write = random.gen_bool(0.5);
            let mut kv = KvClient::new(channels[member].clone());
            let invoked_ms = now_ms(&recorder);
            let result = if write {
                let put = pb::PutRequest {
                    key: key.as_bytes().to_vec().into(),
                    value: format!("from-{index}").into_bytes().into(),
                    ..Default::default()
                };
                with_timeout(&params, kv.put(with_token(put, &token)))
                    .await
                    .map(drop)
            } else {
                let get = pb::RangeRequest {
                    key: key.as_bytes().to_vec().into(),
                    ..Default::default()
                };
                with_timeout(&params, kv.range(with_token(get, &token)))
                    .await
                    .map(drop)
            };
            let outcome = match &result {
                Ok(()) => AuthOutcome::Allowed,
                Err(_) if params.auth_denials_recorded_as_allowed => AuthOutcome::Allowed,
                Err(error) if error.contains("permission denied") => AuthOutcome::Denied,
                Err(error) => AuthOutcome::Failed(error.clone()),
            };
            let request = AuthRequest {
                client: index,
                key,
                write,
                invoked_ms,
                completed_ms: now_ms(&recorder),
                outcome,
            };
            recorder.lock().unwrap().history.auth.requests.push(request);
            if let Err(error) = result {
                if error.contains("invalid auth token") || error.contains("auth store is old") {
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(random.gen_range(10..=80))).await;
        }
    }
}
