//! etcdserverpb.Cluster: the member list and its changes, through the leader.

use super::pb::etcdserverpb::{self as pb, cluster_server::Cluster};
use super::{status, Context};
use crate::raft::{MemberInfo, MembershipChange};
use tonic::{Request, Response, Status};

pub struct ClusterService {
    context: Context,
}

fn member(info: MemberInfo) -> pb::Member {
    pb::Member {
        id: info.id,
        name: info.node.name,
        peer_ur_ls: info.node.peer_urls,
        client_ur_ls: info.node.client_urls,
        is_learner: info.is_learner,
    }
}

/// etcd accepts only well-formed http(s) URLs with a host and port.
fn check_peer_urls(urls: &[String]) -> Result<(), Status> {
    let valid = |url: &String| {
        let rest = url
            .strip_prefix("http://")
            .or_else(|| url.strip_prefix("https://"));
        rest.and_then(|rest| rest.trim_end_matches('/').rsplit_once(':'))
            .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok())
    };
    if urls.is_empty() || !urls.iter().all(valid) {
        return Err(Status::invalid_argument(format!(
            "etcdserver: invalid peer URLs {urls:?}"
        )));
    }
    Ok(())
}

impl ClusterService {
    pub fn new(context: Context) -> Self {
        ClusterService { context }
    }

    async fn change(
        &self,
        change: MembershipChange,
    ) -> Result<(Option<pb::Member>, Vec<pb::Member>), Status> {
        let (added, members) = self
            .context
            .node
            .change_members(change)
            .await
            .map_err(status)?;
        Ok((added.map(member), members.into_iter().map(member).collect()))
    }
}

/// etcd's Cluster answers carry cluster, member and term, never a revision
/// (`ClusterServer.header`).
const CLUSTER_HEADER_REVISION: i64 = 0;

#[tonic::async_trait]
impl Cluster for ClusterService {
    async fn member_add(
        &self,
        request: Request<pb::MemberAddRequest>,
    ) -> Result<Response<pb::MemberAddResponse>, Status> {
        self.context.admit(&request, false)?;
        let caller = self.context.caller(&request)?;
        self.context.authorize_admin(&caller)?;
        let request = request.into_inner();
        check_peer_urls(&request.peer_ur_ls)?;
        let (added, members) = self
            .change(MembershipChange::Add {
                peer_urls: request.peer_ur_ls,
                is_learner: request.is_learner,
            })
            .await?;
        Ok(Response::new(pb::MemberAddResponse {
            header: self.context.header(CLUSTER_HEADER_REVISION),
            member: added,
            members,
        }))
    }

    async fn member_remove(
        &self,
        request: Request<pb::MemberRemoveRequest>,
    ) -> Result<Response<pb::MemberRemoveResponse>, Status> {
        self.context.admit(&request, false)?;
        let caller = self.context.caller(&request)?;
        self.context.authorize_admin(&caller)?;
        let (_, members) = self
            .change(MembershipChange::Remove {
                id: request.into_inner().id,
            })
            .await?;
        Ok(Response::new(pb::MemberRemoveResponse {
            header: self.context.header(CLUSTER_HEADER_REVISION),
            members,
        }))
    }

    async fn member_update(
        &self,
        request: Request<pb::MemberUpdateRequest>,
    ) -> Result<Response<pb::MemberUpdateResponse>, Status> {
        self.context.admit(&request, false)?;
        let caller = self.context.caller(&request)?;
        self.context.authorize_admin(&caller)?;
        let request = request.into_inner();
        check_peer_urls(&request.peer_ur_ls)?;
        let (_, members) = self
            .change(MembershipChange::Update {
                id: request.id,
                peer_urls: request.peer_ur_ls,
            })
            .await?;
        Ok(Response::new(pb::MemberUpdateResponse {
            header: self.context.header(CLUSTER_HEADER_REVISION),
            members,
        }))
    }

    async fn member_list(
        &self,
        request: Request<pb::MemberListRequest>,
    ) -> Result<Response<pb::MemberListResponse>, Status> {
        self.context.admit(&request, false)?;
        if request.into_inner().linearizable {
            self.context.node.read_barrier().await.map_err(status)?;
        }
        let members = self
            .context
            .node
            .members()
            .into_iter()
            .map(member)
            .collect();
        Ok(Response::new(pb::MemberListResponse {
            header: self.context.header(CLUSTER_HEADER_REVISION),
            members,
        }))
    }

    async fn member_promote(
        &self,
        request: Request<pb::MemberPromoteRequest>,
    ) -> Result<Response<pb::MemberPromoteResponse>, Status> {
        self.context.admit(&request, false)?;
        let caller = self.context.caller(&request)?;
        self.context.authorize_admin(&caller)?;
        // The leader checks the member exists, against its newest configuration; this
        // member may not have applied the add yet.
        let id = request.into_inner().id;
        let (_, members) = self.change(MembershipChange::Promote { id }).await?;
        Ok(Response::new(pb::MemberPromoteResponse {
            header: self.context.header(CLUSTER_HEADER_REVISION),
            members,
        }))
    }
}
