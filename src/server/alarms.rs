//! `--auto-disarm-nospace`: beyond etcd, the leader clears NOSPACE by itself once the store
//! is back under 90% of `--quota-backend-bytes` (after compaction freed room), and logs it.
//! Off by default, so etcd's runbooks (compact, defrag, `alarm disarm`) behave the same.

use crate::apply::{AlarmKind, Command};
use crate::io::clock;
use crate::raft::{NodeError, RaftNode};
use std::time::Duration;

/// How often the leader looks.
const CHECK_INTERVAL: Duration = Duration::from_secs(1);
/// The share of the quota the store must be under before NOSPACE clears.
const DISARM_BELOW_PERCENT: u64 = 90;

pub async fn auto_disarm_nospace(node: RaftNode, quota_bytes: u64) {
    let threshold_bytes = quota_bytes / 100 * DISARM_BELOW_PERCENT;
    loop {
        clock::sleep(CHECK_INTERVAL).await;
        if !node.status().is_leader {
            continue;
        }
        let view = node.view();
        let size_bytes = view.machine.store().size_bytes();
        if size_bytes >= threshold_bytes {
            continue;
        }
        let raised: Vec<_> = view
            .machine
            .alarms()
            .iter()
            .filter(|alarm| alarm.kind == AlarmKind::NoSpace)
            .copied()
            .collect();
        for alarm in raised {
            let command = Command::Alarm {
                activate: false,
                alarm,
            };
            match node.propose(command).await {
                Ok(_) => tracing::info!(
                    member_id = %format!("{:x}", alarm.member_id),
                    size_bytes,
                    quota_bytes,
                    "NOSPACE disarmed by --auto-disarm-nospace: the store is under 90% of the quota"
                ),
                Err(NodeError::Stopped) => return,
                Err(error) => tracing::warn!(%error, "disarming NOSPACE failed"),
            }
        }
    }
}
