//! Requests an operator makes of a running cluster (who leads, move leadership), the same
//! in simulation and against real processes.

use std::time::Duration;

const OPERATOR_CALL_TIMEOUT: Duration = Duration::from_secs(3);

/// The member (0-based) that says it leads, with its member ID, asking each in turn.
pub async fn find_leader(endpoints: Vec<String>) -> Option<(usize, u64)> {
    use cairn::api::pb::etcdserverpb::{maintenance_client::MaintenanceClient, StatusRequest};
    for (index, channel) in crate::workload::channels(&endpoints)
        .into_iter()
        .enumerate()
    {
        let mut maintenance = MaintenanceClient::new(channel);
        let call = maintenance.status(StatusRequest {});
        let Ok(Ok(status)) = tokio::time::timeout(OPERATOR_CALL_TIMEOUT, call).await else {
            continue;
        };
        let status = status.into_inner();
        let own_id = status.header.map_or(0, |header| header.member_id);
        if status.leader != 0 && status.leader == own_id {
            return Some((index, own_id));
        }
    }
    None
}

/// Finds the leader and asks it to move leadership to another voter chosen by `seed`.
pub async fn transfer_leadership(endpoints: Vec<String>, seed: u64) {
    use cairn::api::pb::etcdserverpb::{
        cluster_client::ClusterClient, maintenance_client::MaintenanceClient, MemberListRequest,
        MoveLeaderRequest,
    };
    let timeout = OPERATOR_CALL_TIMEOUT;
    if let Some((index, own_id)) = find_leader(endpoints.clone()).await {
        let channel = crate::workload::channels(&endpoints).swap_remove(index);
        let mut maintenance = MaintenanceClient::new(channel.clone());
        let listed = tokio::time::timeout(
            timeout,
            ClusterClient::new(channel).member_list(MemberListRequest {
                linearizable: false,
            }),
        )
        .await;
        let Ok(Ok(list)) = listed else { return };
        let voters: Vec<u64> = list
            .into_inner()
            .members
            .iter()
            .filter(|member| !member.is_learner && member.id != own_id)
            .map(|member| member.id)
            .collect();
        if let Some(target) = voters.get(seed as usize % voters.len().max(1)) {
            let _ = tokio::time::timeout(
                timeout,
                maintenance.move_leader(MoveLeaderRequest { target_id: *target }),
            )
            .await;
        }
    }
}
