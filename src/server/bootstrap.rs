//! Who this member is and whom it starts with: a restart reads the data directory (bootstrap
//! flags ignored, as etcd does); a new cluster derives IDs from `--initial-cluster`; a member
//! joining an existing cluster asks the running members, and refuses to start unless it was
//! added first (`etcdctl member add`), which also catches a wrong cluster token.

use super::config::{split_urls, Config};
use super::error::StartError;
use super::identity::{self, Identity};
use crate::api::GrpcPeerTransport;
use crate::base::MemberId;
use crate::io::Disk;
use crate::raft::{call_peer, MemberNode, PeerRequest, PeerResponse};
use crate::storage::DataDir;
use std::collections::BTreeMap;
use std::time::Duration;

/// How long a joining member waits for one running member to answer.
const DISCOVERY_TIMEOUT: Duration = Duration::from_secs(3);

pub struct Bootstrap {
    pub identity: Identity,
    /// Members to initialize raft with; empty on restart and when joining.
    pub initial_members: BTreeMap<MemberId, MemberNode>,
    /// The identity was read from the data directory (a restart), not derived from flags.
    pub restarted: bool,
}

pub async fn resolve(
    config: &Config,
    disk: &dyn Disk,
    data_dir: &DataDir,
    transport: &GrpcPeerTransport,
) -> Result<Bootstrap, StartError> {
    let token = config.initial_cluster_token.clone();
    let members = identity::parse_initial_cluster(&config.initial_cluster(), &token)
        .map_err(StartError::Flag)?;
    let own_peer_urls = split_urls(&config.initial_advertise_peer_urls);
    let member_id = identity::member_id(&own_peer_urls, &token);
    if let Some(identity) = identity::load(disk, data_dir)? {
        // Identity is saved only after raft storage was initialized, so there is nothing to
        // bootstrap: the WAL holds the membership.
        return Ok(Bootstrap {
            identity,
            initial_members: BTreeMap::new(),
            restarted: true,
        });
    }
    if !members.contains_key(&member_id) {
        return Err(StartError::Bootstrap(format!(
            "couldn't find local name {:?} in the initial cluster configuration: --initial-advertise-peer-urls {:?} with --initial-cluster-token {token:?} is not in --initial-cluster",
            config.name,
            own_peer_urls
        )));
    }
    if config.initial_cluster_state == "existing" {
        let cluster_id = discover(member_id, &members, transport).await?;
        let identity = Identity {
            cluster_id,
            member_id,
            name: config.name.clone(),
            token,
        };
        return Ok(Bootstrap {
            identity,
            initial_members: BTreeMap::new(),
            restarted: false,
        });
    }
    let member_ids: Vec<MemberId> = members.keys().copied().collect();
    let identity = Identity {
        cluster_id: identity::cluster_id(&member_ids, &token),
        member_id,
        name: config.name.clone(),
        token,
    };
    let members = super::restore::bootstrap_members(members);
    Ok(Bootstrap {
        identity,
        initial_members: members,
        restarted: false,
    })
}

/// Asks the other listed members for the cluster's ID and checks this member was added.
/// One member not listing it is not enough to refuse: it may lag behind the `member add`.
async fn discover(
    member_id: MemberId,
    members: &BTreeMap<MemberId, MemberNode>,
    transport: &GrpcPeerTransport,
) -> Result<u64, StartError> {
    let mut failures = Vec::new();
    let mut not_listed_by = None;
    for (id, node) in members.iter().filter(|(id, _)| **id != member_id) {
        match call_peer(
            transport,
            0,
            &node.peer_urls,
            &PeerRequest::ClusterInfo,
            DISCOVERY_TIMEOUT,
        )
        .await
        {
            Ok(PeerResponse::ClusterInfo {
                cluster_id,
                members,
            }) => {
                if members.iter().any(|member| member.id == member_id) {
                    return Ok(cluster_id);
                }
                not_listed_by = Some((cluster_id, node.peer_urls.join(",")));
            }
            Ok(other) => failures.push(format!("{id:x}: unexpected answer {other:?}")),
            Err(error) => failures.push(format!("{}: {error}", node.peer_urls.join(","))),
        }
    }
    if let Some((cluster_id, urls)) = not_listed_by {
        return Err(StartError::Bootstrap(format!(
            "member {member_id:x} has not been added to the cluster {cluster_id:x} that {urls} belongs to: add it first with `etcdctl member add` (or check --initial-cluster-token)"
        )));
    }
    Err(StartError::Bootstrap(format!(
        "could not reach any member of the existing cluster: {}",
        failures.join("; ")
    )))
}
