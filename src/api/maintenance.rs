//! etcdserverpb.Maintenance: status, hashes, alarms, defragment.

use super::error::unexpected_outcome;
use super::pb::etcdserverpb::{self as pb, maintenance_server::Maintenance};
use super::{status, unimplemented, Context, CLUSTER_VERSION, SERVER_VERSION};
use crate::apply::{Alarm, AlarmKind, Command, Outcome};
use crate::backup::ExportMeta;
use std::pin::Pin;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

pub struct MaintenanceService {
    context: Context,
}

impl MaintenanceService {
    pub fn new(context: Context) -> Self {
        MaintenanceService { context }
    }
}

type SnapshotStream =
    Pin<Box<dyn Stream<Item = Result<pb::SnapshotResponse, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl Maintenance for MaintenanceService {
    async fn alarm(
        &self,
        request: Request<pb::AlarmRequest>,
    ) -> Result<Response<pb::AlarmResponse>, Status> {
        self.context.admit(&request, false)?;
        use pb::alarm_request::AlarmAction;
        let request = request.into_inner();
        let kind = AlarmKind::from_wire(request.alarm);
        let activate = match AlarmAction::try_from(request.action) {
            Ok(AlarmAction::Get) => {
                // Linearizable, as etcd's (which goes through raft): a GET after a DEACTIVATE
                // answered elsewhere sees it.
                self.context.node.read_barrier().await.map_err(status)?;
                let view = self.context.node.view();
                let alarms = self
                    .context
                    .node
                    .alarms()
                    .iter()
                    .filter(|alarm| kind.is_none_or(|kind| alarm.kind == kind))
                    .map(alarm_member)
                    .collect();
                return Ok(Response::new(pb::AlarmResponse {
                    header: self.context.header(view.machine.store().current_revision()),
                    alarms,
                }));
            }
            Ok(AlarmAction::Activate) => Some(true),
            Ok(AlarmAction::Deactivate) => Some(false),
            Err(_) => None,
        };
        // etcd does nothing for an unknown action or the NONE alarm, and answers no alarms.
        let (Some(activate), Some(kind)) = (activate, kind) else {
            return Ok(Response::new(pb::AlarmResponse {
                header: self.context.header(self.context.current_revision()),
                alarms: Vec::new(),
            }));
        };
        let alarm = Alarm {
            member_id: request.member_id,
            kind,
        };
        let applied = self
            .context
            .propose(Command::Alarm { activate, alarm })
            .await
            .map_err(status)?;
        let alarms = match applied.result.map_err(status)? {
            Outcome::Alarms(alarms) => alarms.iter().map(alarm_member).collect(),
            other => return Err(unexpected_outcome("alarm", other)),
        };
        if !activate {
            tracing::info!(member_id = %format!("{:x}", alarm.member_id), alarm = kind.name(), "alarm disarmed");
        }
        Ok(Response::new(pb::AlarmResponse {
            header: self.context.header(applied.revision),
            alarms,
        }))
    }

    async fn status(
        &self,
        request: Request<pb::StatusRequest>,
    ) -> Result<Response<pb::StatusResponse>, Status> {
        self.context.admit(&request, true)?;
        let node_status = self.context.node.status();
        let view = self.context.node.view();
        let store = view.machine.store();
        let db_size = self.context.node.storage_bytes();
        Ok(Response::new(pb::StatusResponse {
            header: self.context.header(store.current_revision()),
            version: SERVER_VERSION.to_string(),
            db_size: db_size as i64,
            leader: node_status.leader.unwrap_or(0),
            raft_index: node_status.last_log_index,
            raft_term: node_status.term,
            raft_applied_index: node_status.applied_index,
            // etcd lists each raised alarm as its AlarmMember's text form.
            errors: self
                .context
                .node
                .alarms()
                .iter()
                .map(|alarm| format!("memberID:{} alarm:{} ", alarm.member_id, alarm.kind.name()))
                .collect(),
            db_size_in_use: store.size_bytes() as i64,
            is_learner: node_status.is_learner,
            storage_version: String::new(),
            db_size_quota: self.context.limits.backend_bytes_quota as i64,
            downgrade_info: None,
        }))
    }

    async fn defragment(
        &self,
        request: Request<pb::DefragmentRequest>,
    ) -> Result<Response<pb::DefragmentResponse>, Status> {
        self.context.admit(&request, false)?;
        let caller = self.context.caller(&request)?;
        self.context.authorize_maintenance(&caller)?;
        let (before, after) = self.context.node.defragment().await.map_err(status)?;
        tracing::info!(
            before_bytes = before,
            after_bytes = after,
            freed_bytes = before.saturating_sub(after),
            "defragmented: snapshot written, WAL purged up to it"
        );
        // etcd's answer carries no header.
        Ok(Response::new(pb::DefragmentResponse { header: None }))
    }

    async fn hash(
        &self,
        request: Request<pb::HashRequest>,
    ) -> Result<Response<pb::HashResponse>, Status> {
        self.context.admit(&request, false)?;
        let caller = self.context.caller(&request)?;
        self.context.authorize_maintenance(&caller)?;
        let view = self.context.node.view();
        Ok(Response::new(pb::HashResponse {
            header: self.context.header(view.machine.store().current_revision()),
            hash: view.machine.hash(),
        }))
    }

    async fn hash_kv(
        &self,
        request: Request<pb::HashKvRequest>,
    ) -> Result<Response<pb::HashKvResponse>, Status> {
        self.context.admit(&request, false)?;
        let caller = self.context.caller(&request)?;
        self.context.authorize_maintenance(&caller)?;
        let view = self.context.node.view();
        let store = view.machine.store();
        let revision = store
            .hashable_revision(request.into_inner().revision)
            .map_err(status)?;
        Ok(Response::new(pb::HashKvResponse {
            header: self.context.header(store.current_revision()),
            hash: store.hash_kv(revision),
            compact_revision: store.compact_revision(),
            hash_revision: revision,
        }))
    }

    type SnapshotStream = SnapshotStream;

    async fn snapshot(
        &self,
        request: Request<pb::SnapshotRequest>,
    ) -> Result<Response<SnapshotStream>, Status> {
        self.context.admit(&request, true)?;
        let caller = self.context.caller(&request)?;
        self.context.authorize_maintenance(&caller)?;
        let view = self.context.node.view();
        let meta = ExportMeta {
            consistent_index: view.last_applied.map_or(0, |id| id.index),
            term: view.last_applied.map_or(0, |id| id.leader_id.term),
            members: self.context.node.members(),
            cluster_version: CLUSTER_VERSION.to_string(),
        };
        let stream = super::snapshot_stream::stream(view.machine, meta).await;
        Ok(Response::new(Box::pin(stream)))
    }

    async fn move_leader(
        &self,
        request: Request<pb::MoveLeaderRequest>,
    ) -> Result<Response<pb::MoveLeaderResponse>, Status> {
        self.context.admit(&request, false)?;
        // As in etcd, only the leader moves leadership (etcdctl sends it there).
        self.context
            .node
            .move_leader(request.into_inner().target_id)
            .await
            .map_err(status)?;
        // etcd's answer carries no header.
        Ok(Response::new(pb::MoveLeaderResponse { header: None }))
    }

    async fn downgrade(
        &self,
        request: Request<pb::DowngradeRequest>,
    ) -> Result<Response<pb::DowngradeResponse>, Status> {
        self.context.admit(&request, false)?;
        Err(unimplemented("Maintenance.Downgrade"))
    }
}

/// etcd's AlarmMember for an alarm.
fn alarm_member(alarm: &Alarm) -> pb::AlarmMember {
    pb::AlarmMember {
        member_id: alarm.member_id,
        alarm: alarm.kind.wire(),
    }
}
