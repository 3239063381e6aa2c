//! Defragment, in Cairn's storage: write a snapshot of everything applied now and purge the
//! WAL it covers, so the member's files hold the store once and little else. Reads and
//! writes go on meanwhile (the snapshot is built from an O(1) copy of the applied state).

use super::error::{NodeError, Waited};
use super::node::RaftNode;
use std::time::Duration;

/// How long a defragment waits for the snapshot and the purge.
const DEFRAGMENT_TIMEOUT: Duration = Duration::from_secs(120);

impl RaftNode {
    /// Snapshots everything applied so far and purges the WAL up to it. Returns the bytes
    /// the member's raft storage took before and after.
    pub async fn defragment(&self) -> Result<(u64, u64), NodeError> {
        let before = self.storage_bytes();
        let raft = self.raft();
        let applied = raft
            .metrics()
            .borrow()
            .last_applied
            .map_or(0, |id| id.index);
        let snapshotted = |metrics: &openraft::RaftMetrics<u64, super::MemberNode>| {
            metrics.snapshot.is_some_and(|id| id.index >= applied)
        };
        if !snapshotted(&raft.metrics().borrow()) {
            raft.trigger()
                .snapshot()
                .await
                .map_err(|_| NodeError::Stopped)?;
            raft.wait(Some(DEFRAGMENT_TIMEOUT))
                .metrics(snapshotted, "a snapshot covering everything applied")
                .await
                .map_err(|_| NodeError::Timeout(Waited::Snapshot))?;
        }
        // openraft keeps some entries after a snapshot for slow followers; a defragment
        // purges them too (a follower that needs them gets the snapshot instead).
        raft.trigger()
            .purge_log(applied)
            .await
            .map_err(|_| NodeError::Stopped)?;
        raft.wait(Some(DEFRAGMENT_TIMEOUT))
            .metrics(
                |metrics| metrics.purged.is_some_and(|id| id.index >= applied),
                "the WAL purged up to the snapshot",
            )
            .await
            .map_err(|_| NodeError::Timeout(Waited::Snapshot))?;
        Ok((before, self.storage_bytes()))
    }
}
