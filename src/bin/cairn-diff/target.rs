//! One server under test (etcd or Cairn): its gRPC clients, and what a sequence has learned
//! of it (the IDs it chose for leases and members), so a step names "the second lease" and
//! each server gets its own ID for it. Every answer becomes JSON (etcd's gateway mapping)
//! with what must differ between two servers taken out or replaced by its name.

use super::steps::{LeaseRef, Step};
use cairn::api::pb::etcdserverpb::{
    self as pb, auth_client::AuthClient, cluster_client::ClusterClient, kv_client::KvClient,
    lease_client::LeaseClient, maintenance_client::MaintenanceClient, request_op,
    watch_client::WatchClient,
};
use serde_json::Value;
use std::time::Duration;
use tokio_stream::StreamExt;
use tonic::transport::Channel;

/// What a server answered: its response as normalized JSON, or "CODE: message".
pub type Answer = Result<Value, String>;

/// How long a watch or keepalive stream is read for once it went quiet.
const STREAM_QUIET: Duration = Duration::from_millis(300);
/// An ID no lease or member has in a sequence.
const MISSING_ID: i64 = 0x7e57;

pub struct Target {
    channel: Channel,
    /// Lease IDs in the order this server granted them.
    leases: Vec<i64>,
    /// The learner this sequence added, if it is still there.
    added_member: Option<u64>,
    own_member: u64,
    /// Each server's peer ports differ; URLs are compared with the port replaced.
    peer_port: u16,
    client_port: u16,
}

fn status_text(status: tonic::Status) -> String {
    format!("{:?}: {}", status.code(), status.message())
}

fn json<T: serde::Serialize>(value: &T) -> Value {
    serde_json::to_value(value).expect("pbjson types serialize")
}

impl Target {
    pub async fn connect(endpoint: &str, client_port: u16, peer_port: u16) -> Target {
        let channel = Channel::from_shared(format!("http://{endpoint}"))
            .expect("endpoint URL")
            .timeout(Duration::from_secs(10))
            .connect()
            .await
            .expect("connect");
        let mut target = Target {
            channel,
            leases: Vec::new(),
            added_member: None,
            own_member: 0,
            peer_port,
            client_port,
        };
        let status = MaintenanceClient::new(target.channel.clone())
            .status(pb::StatusRequest::default())
            .await
            .expect("status");
        target.own_member = status.into_inner().header.unwrap_or_default().member_id;
        target
    }

    fn lease_id(&self, lease: LeaseRef) -> i64 {
        match lease {
            LeaseRef::Granted(index) => self.leases.get(index).copied().unwrap_or(MISSING_ID),
            LeaseRef::Missing => MISSING_ID,
        }
    }

    /// Builds the protobuf of a KV step (also inside txns).
    fn operation(&self, step: &Step) -> request_op::Request {
        match step {
            Step::Range {
                key,
                range_end,
                limit,
                revision,
                sort_order,
                sort_target,
                keys_only,
                count_only,
                min_mod_revision,
                max_create_revision,
                serializable,
            } => request_op::Request::RequestRange(pb::RangeRequest {
                key: key.clone().into_bytes().into(),
                range_end: range_end.clone().into_bytes().into(),
                limit: *limit,
                revision: *revision,
                sort_order: *sort_order,
                sort_target: *sort_target,
                keys_only: *keys_only,
                count_only: *count_only,
                min_mod_revision: *min_mod_revision,
                max_create_revision: *max_create_revision,
                serializable: *serializable,
                ..Default::default()
            }),
            Step::Put {
                key,
                value,
                lease,
                prev_kv,
                ignore_value,
                ignore_lease,
            } => request_op::Request::RequestPut(pb::PutRequest {
                key: key.clone().into_bytes().into(),
                value: if *ignore_value {
                    Default::default()
                } else {
                    value.clone().into_bytes().into()
                },
                lease: lease.map_or(0, |lease| self.lease_id(lease)),
                prev_kv: *prev_kv,
                ignore_value: *ignore_value,
                ignore_lease: *ignore_lease,
            }),
            Step::Delete {
                key,
                range_end,
                prev_kv,
            } => request_op::Request::RequestDeleteRange(pb::DeleteRangeRequest {
                key: key.clone().into_bytes().into(),
                range_end: range_end.clone().into_bytes().into(),
                prev_kv: *prev_kv,
            }),
            Step::Txn { .. } => request_op::Request::RequestTxn(self.txn(step)),
            other => unreachable!("not a KV operation: {other:?}"),
        }
    }

    fn txn(&self, step: &Step) -> pb::TxnRequest {
        let Step::Txn {
            compare_key,
            compare_target,
            compare_result,
            compare_value,
            success,
            failure,
        } = step
        else {
            unreachable!("a txn step");
        };
        use pb::compare::TargetUnion;
        let target_union = match compare_target {
            0 => TargetUnion::Version(*compare_value),
            1 => TargetUnion::CreateRevision(*compare_value),
            2 => TargetUnion::ModRevision(*compare_value),
            3 => TargetUnion::Value(format!("v{compare_value}").into_bytes().into()),
            _ => TargetUnion::Lease(self.lease_id(LeaseRef::Granted(*compare_value as usize))),
        };
        let operations = |steps: &[Step]| {
            steps
                .iter()
                .map(|step| pb::RequestOp {
                    request: Some(self.operation(step)),
                })
                .collect()
        };
        pb::TxnRequest {
            compare: vec![pb::Compare {
                result: *compare_result,
                target: *compare_target,
                key: compare_key.clone().into_bytes().into(),
                range_end: Default::default(),
                target_union: Some(target_union),
            }],
            success: operations(success),
            failure: operations(failure),
        }
    }

    /// Sends `step` and returns the normalized answer.
    pub async fn run(&mut self, step: &Step) -> Answer {
        let answer = self.send(step).await;
        answer.map(|value| self.normalized(value))
    }

    async fn send(&mut self, step: &Step) -> Answer {
        let channel = self.channel.clone();
        let mut kv = KvClient::new(channel.clone());
        let mut lease = LeaseClient::new(channel.clone());
        let mut cluster = ClusterClient::new(channel.clone());
        let mut maintenance = MaintenanceClient::new(channel.clone());
        let mut auth = AuthClient::new(channel.clone());
        macro_rules! call {
            ($call:expr) => {
                $call
                    .await
                    .map(|response| json(&response.into_inner()))
                    .map_err(status_text)
            };
        }
        match step {
            Step::Range { .. } | Step::Put { .. } | Step::Delete { .. } => {
                match self.operation(step) {
                    request_op::Request::RequestRange(request) => call!(kv.range(request)),
                    request_op::Request::RequestPut(request) => call!(kv.put(request)),
                    request_op::Request::RequestDeleteRange(request) => {
                        call!(kv.delete_range(request))
                    }
                    request_op::Request::RequestTxn(request) => call!(kv.txn(request)),
                }
            }
            Step::Txn { .. } => call!(kv.txn(self.txn(step))),
            Step::Compact { revision } => call!(kv.compact(pb::CompactionRequest {
                revision: *revision,
                physical: false,
            })),
            Step::Watch { .. } => self.watch(step).await,
            Step::LeaseGrant { id, ttl } => {
                let granted =
                    call!(lease.lease_grant(pb::LeaseGrantRequest { id: *id, ttl: *ttl }));
                if let Ok(response) = &granted {
                    if let Some(id) = response["ID"].as_str().and_then(|id| id.parse().ok()) {
                        self.leases.push(id);
                    }
                }
                granted
            }
            Step::LeaseRevoke(reference) => call!(lease.lease_revoke(pb::LeaseRevokeRequest {
                id: self.lease_id(*reference)
            })),
            Step::LeaseKeepAlive(reference) => {
                let request = pb::LeaseKeepAliveRequest {
                    id: self.lease_id(*reference),
                };
                match lease
                    .lease_keep_alive(tokio_stream::iter(vec![request]))
                    .await
                {
                    Err(status) => Err(status_text(status)),
                    Ok(response) => {
                        let mut stream = response.into_inner();
                        match tokio::time::timeout(STREAM_QUIET * 10, stream.next()).await {
                            Ok(Some(Ok(response))) => Ok(json(&response)),
                            Ok(Some(Err(status))) => Err(status_text(status)),
                            Ok(None) => Err("stream ended".into()),
                            Err(_) => Err("no keepalive response".into()),
                        }
                    }
                }
            }
            Step::LeaseTimeToLive {
                lease: reference,
                keys,
            } => {
                call!(lease.lease_time_to_live(pb::LeaseTimeToLiveRequest {
                    id: self.lease_id(*reference),
                    keys: *keys,
                }))
            }
            Step::LeaseLeases => call!(lease.lease_leases(pb::LeaseLeasesRequest {})),
            Step::MemberList => call!(cluster.member_list(pb::MemberListRequest::default())),
            Step::MemberAddLearner { peer_port } => {
                let added = cluster
                    .member_add(pb::MemberAddRequest {
                        peer_ur_ls: vec![format!("http://127.0.0.1:{peer_port}")],
                        is_learner: true,
                    })
                    .await
                    .map(|response| response.into_inner())
                    .map_err(status_text);
                if let Ok(response) = &added {
                    self.added_member = response.member.as_ref().map(|member| member.id);
                }
                added.map(|response| json(&response))
            }
            Step::MemberRemoveAdded | Step::MemberRemoveMissing => {
                let id = match step {
                    Step::MemberRemoveAdded => self.added_member.unwrap_or(MISSING_ID as u64),
                    _ => MISSING_ID as u64,
                };
                let removed = call!(cluster.member_remove(pb::MemberRemoveRequest { id }));
                if removed.is_ok() && Some(id) == self.added_member {
                    self.added_member = None;
                }
                removed
            }
            Step::MemberUpdateOwn => call!(cluster.member_update(pb::MemberUpdateRequest {
                id: self.own_member,
                peer_ur_ls: vec![format!("http://127.0.0.1:{}", self.peer_port)],
            })),
            Step::MemberPromoteAdded => call!(cluster.member_promote(pb::MemberPromoteRequest {
                id: self.added_member.unwrap_or(MISSING_ID as u64),
            })),
            Step::Status => call!(maintenance.status(pb::StatusRequest::default())),
            Step::AlarmGet => call!(maintenance.alarm(pb::AlarmRequest::default())),
            Step::AlarmNoSpace { activate } => call!(maintenance.alarm(pb::AlarmRequest {
                action: if *activate { 1 } else { 2 },
                member_id: self.own_member,
                alarm: 1,
            })),
            Step::Defragment => call!(maintenance.defragment(pb::DefragmentRequest::default())),
            Step::HashKv { revision } => call!(maintenance.hash_kv(pb::HashKvRequest {
                revision: *revision
            })),
            Step::MoveLeaderToSelf => call!(maintenance.move_leader(pb::MoveLeaderRequest {
                target_id: self.own_member
            })),
            Step::Hash => call!(maintenance.hash(pb::HashRequest::default())),
            Step::Snapshot => match maintenance.snapshot(pb::SnapshotRequest::default()).await {
                Err(status) => Err(status_text(status)),
                Ok(response) => {
                    let mut stream = response.into_inner();
                    let mut last_remaining_bytes = None;
                    loop {
                        match stream.message().await {
                            Ok(Some(chunk)) => last_remaining_bytes = Some(chunk.remaining_bytes),
                            Ok(None) => break,
                            Err(status) => return Err(status_text(status)),
                        }
                    }
                    Ok(serde_json::json!({ "last_remaining_bytes": last_remaining_bytes }))
                }
            },
            Step::UserAdd { name, password } => call!(auth.user_add(pb::AuthUserAddRequest {
                name: name.clone(),
                password: password.clone(),
                ..Default::default()
            })),
            Step::UserGet(name) => {
                call!(auth.user_get(pb::AuthUserGetRequest { name: name.clone() }))
            }
            Step::UserList => call!(auth.user_list(pb::AuthUserListRequest::default())),
            Step::UserDelete(name) => {
                call!(auth.user_delete(pb::AuthUserDeleteRequest { name: name.clone() }))
            }
            Step::UserChangePassword(name) => {
                call!(
                    auth.user_change_password(pb::AuthUserChangePasswordRequest {
                        name: name.clone(),
                        password: "secret".into(),
                        ..Default::default()
                    })
                )
            }
            Step::UserGrantRole { user, role } => {
                call!(auth.user_grant_role(pb::AuthUserGrantRoleRequest {
                    user: user.clone(),
                    role: role.clone(),
                }))
            }
            Step::UserRevokeRole { user, role } => {
                call!(auth.user_revoke_role(pb::AuthUserRevokeRoleRequest {
                    name: user.clone(),
                    role: role.clone(),
                }))
            }
            Step::RoleAdd(name) => {
                call!(auth.role_add(pb::AuthRoleAddRequest { name: name.clone() }))
            }
            Step::RoleGet(name) => {
                call!(auth.role_get(pb::AuthRoleGetRequest { role: name.clone() }))
            }
            Step::RoleList => call!(auth.role_list(pb::AuthRoleListRequest::default())),
            Step::RoleDelete(name) => {
                call!(auth.role_delete(pb::AuthRoleDeleteRequest { role: name.clone() }))
            }
            Step::RoleGrantPermission {
                role,
                key,
                range_end,
                permission,
            } => call!(
                auth.role_grant_permission(pb::AuthRoleGrantPermissionRequest {
                    name: role.clone(),
                    perm: Some(cairn::api::pb::authpb::Permission {
                        perm_type: *permission,
                        key: key.clone().into_bytes().into(),
                        range_end: range_end.clone().into_bytes().into(),
                    }),
                })
            ),
            Step::RoleRevokePermission {
                role,
                key,
                range_end,
            } => call!(
                auth.role_revoke_permission(pb::AuthRoleRevokePermissionRequest {
                    role: role.clone(),
                    key: key.clone().into_bytes().into(),
                    range_end: range_end.clone().into_bytes().into(),
                })
            ),
            Step::AuthStatus => call!(auth.auth_status(pb::AuthStatusRequest::default())),
            Step::Authenticate { name, password } => {
                call!(auth.authenticate(pb::AuthenticateRequest {
                    name: name.clone(),
                    password: password.clone(),
                }))
            }
            Step::AuthEnableAndDisable => self.auth_enable_and_disable().await,
        }
    }

    async fn watch(&mut self, step: &Step) -> Answer {
        let Step::Watch {
            key,
            range_end,
            start_revision,
            prev_kv,
            no_put,
            no_delete,
            progress,
        } = step
        else {
            unreachable!("a watch step");
        };
        let mut filters = Vec::new();
        if *no_put {
            filters.push(0);
        }
        if *no_delete {
            filters.push(1);
        }
        let mut requests = vec![pb::WatchRequest {
            request_union: Some(pb::watch_request::RequestUnion::CreateRequest(
                pb::WatchCreateRequest {
                    key: key.clone().into_bytes().into(),
                    range_end: range_end.clone().into_bytes().into(),
                    start_revision: *start_revision,
                    prev_kv: *prev_kv,
                    filters,
                    ..Default::default()
                },
            )),
        }];
        if *progress {
            requests.push(pb::WatchRequest {
                request_union: Some(pb::watch_request::RequestUnion::ProgressRequest(
                    pb::WatchProgressRequest {},
                )),
            });
        }
        // The request side stays open while responses are read, as etcdctl's does.
        let (sender, receiver) = tokio::sync::mpsc::channel(4);
        for request in requests {
            let _ = sender.send(request).await;
        }
        let mut watch = WatchClient::new(self.channel.clone());
        let response = watch
            .watch(tokio_stream::wrappers::ReceiverStream::new(receiver))
            .await;
        let mut stream = match response {
            Err(status) => return Err(status_text(status)),
            Ok(response) => response.into_inner(),
        };
        let mut responses = Vec::new();
        // A created response, events, a progress notification: read until quiet.
        while responses.len() < 16 {
            match tokio::time::timeout(STREAM_QUIET, stream.next()).await {
                Ok(Some(Ok(response))) => responses.push(json(&response)),
                Ok(Some(Err(status))) => {
                    responses.push(Value::String(status_text(status)));
                    break;
                }
                Ok(None) | Err(_) => break,
            }
        }
        drop(sender);
        Ok(Value::Array(responses))
    }

    async fn auth_enable_and_disable(&mut self) -> Answer {
        let mut auth = AuthClient::new(self.channel.clone());
        let mut outcomes = Vec::new();
        let enabled = auth.auth_enable(pb::AuthEnableRequest {}).await;
        outcomes.push(
            enabled
                .as_ref()
                .map(|_| Value::Null)
                .map_err(|status| status_text(status.clone())),
        );
        if enabled.is_err() {
            return Ok(Value::Array(
                outcomes.into_iter().map(answer_value).collect(),
            ));
        }
        let anonymous = KvClient::new(self.channel.clone())
            .range(pb::RangeRequest {
                key: b"a".to_vec().into(),
                ..Default::default()
            })
            .await;
        outcomes.push(anonymous.map(|_| Value::Null).map_err(status_text));
        // The sequence set root's password through UserAdd or UserChangePassword.
        for password in ["secret", "other", ""] {
            let Ok(token) = auth
                .authenticate(pb::AuthenticateRequest {
                    name: "root".into(),
                    password: password.into(),
                })
                .await
            else {
                continue;
            };
            let mut request = tonic::Request::new(pb::AuthDisableRequest {});
            let token = token.into_inner().token;
            request
                .metadata_mut()
                .insert("token", token.parse().expect("a token is ASCII"));
            let disabled = auth.auth_disable(request).await;
            outcomes.push(disabled.map(|_| Value::Null).map_err(status_text));
            return Ok(Value::Array(
                outcomes.into_iter().map(answer_value).collect(),
            ));
        }
        panic!("auth is on and root's password is unknown: later steps cannot compare");
    }

    /// The answer with what two servers may not share replaced: headers keep only their
    /// revision, lease IDs become "lease#k", member IDs "member:own" or "member:added",
    /// ports "port:client" or "port:peer", and the token a placeholder.
    fn normalized(&self, mut value: Value) -> Value {
        self.normalize(&mut value, "");
        value
    }

    fn normalize(&self, value: &mut Value, key: &str) {
        // Members come sorted by ID, and each server chose its own IDs.
        if let (Value::Array(members), "members") = (&mut *value, key) {
            for member in members.iter_mut() {
                self.normalize(member, "");
            }
            members.sort_by_key(|member| member["ID"].to_string());
            return;
        }
        match value {
            Value::Object(map) => {
                if key == "header" {
                    map.retain(|name, _| name == "revision");
                }
                for (name, inner) in map.iter_mut() {
                    self.normalize(inner, name);
                }
            }
            Value::Array(items) => {
                for item in items {
                    self.normalize(item, key);
                }
            }
            Value::String(text) => {
                if let Some(replacement) = self.replacement(key, text) {
                    *text = replacement;
                }
            }
            _ => {}
        }
    }

    fn replacement(&self, key: &str, text: &str) -> Option<String> {
        if key == "token" {
            return Some("<token>".into());
        }
        if let Ok(number) = text.parse::<i64>() {
            if let Some(index) = self.leases.iter().position(|id| *id == number) {
                if matches!(key, "ID" | "lease" | "leases") {
                    return Some(format!("lease#{index}"));
                }
            }
        }
        if let Ok(number) = text.parse::<u64>() {
            if number == self.own_member {
                return Some("member:own".into());
            }
            if Some(number) == self.added_member {
                return Some("member:added".into());
            }
        }
        let client = format!(":{}", self.client_port);
        let peer = format!(":{}", self.peer_port);
        if text.contains(&client) || text.contains(&peer) {
            return Some(text.replace(&client, ":<client>").replace(&peer, ":<peer>"));
        }
        None
    }
}

fn answer_value(answer: Answer) -> Value {
    match answer {
        Ok(value) => value,
        Err(text) => Value::String(text),
    }
}
