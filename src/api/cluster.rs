//! etcdserverpb.Cluster: the member list from raft's applied membership.

use super::pb::etcdserverpb::{self as pb, cluster_server::Cluster};
use super::{unimplemented, Context};
use tonic::{Request, Response, Status};

pub struct ClusterService {
    context: Context,
}

impl ClusterService {
    pub fn new(context: Context) -> Self {
        ClusterService { context }
    }

    fn members(&self) -> Vec<pb::Member> {
        self.context
            .node
            .members()
            .into_iter()
            .map(|(id, node, is_learner)| pb::Member {
                id,
                name: node.name,
                peer_ur_ls: node.peer_urls,
                client_ur_ls: node.client_urls,
                is_learner,
            })
            .collect()
    }
}

#[tonic::async_trait]
impl Cluster for ClusterService {
    async fn member_add(
        &self,
        _request: Request<pb::MemberAddRequest>,
    ) -> Result<Response<pb::MemberAddResponse>, Status> {
        Err(unimplemented("Cluster.MemberAdd"))
    }

    async fn member_remove(
        &self,
        _request: Request<pb::MemberRemoveRequest>,
    ) -> Result<Response<pb::MemberRemoveResponse>, Status> {
        Err(unimplemented("Cluster.MemberRemove"))
    }

    async fn member_update(
        &self,
        _request: Request<pb::MemberUpdateRequest>,
    ) -> Result<Response<pb::MemberUpdateResponse>, Status> {
        Err(unimplemented("Cluster.MemberUpdate"))
    }

    async fn member_list(
        &self,
        _request: Request<pb::MemberListRequest>,
    ) -> Result<Response<pb::MemberListResponse>, Status> {
        Ok(Response::new(pb::MemberListResponse {
            header: self.context.header(self.context.current_revision()),
            members: self.members(),
        }))
    }

    async fn member_promote(
        &self,
        _request: Request<pb::MemberPromoteRequest>,
    ) -> Result<Response<pb::MemberPromoteResponse>, Status> {
        Err(unimplemented("Cluster.MemberPromote"))
    }
}
