//! Planted bugs: realistic mistakes, each behind a switch only the simulator build has, so
//! CI can show that a sweep catches every one and name the checker that does (`ci/test`'s
//! planted-bug table). Several are bugs Cairn once had, put back exactly where they were
//! fixed. A production build has no switch: `planted` is a constant `false` there and the
//! compiler drops each branch.

/// One planted bug. Its name is what `cairn-sim --planted-bug` takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlantedBug {
    /// A watcher's batch reads its revisions as a half-open range, dropping the events of
    /// the batch's last revision whenever it covers more than one.
    WatchBatchEndExclusive,
    /// A txn's MOD compare reads the key's create revision.
    TxnCompareModReadsCreate,
    /// Compaction also removes each key's newest version at or below the compaction point.
    CompactionDropsNewestVersion,
    /// A member that raft says leads takes its own applied index as the read index, with
    /// no quorum round to confirm that it still leads.
    ReadIndexSkipsQuorum,
    /// WAL replay ignores the newest entry record.
    WalReplayDropsNewestEntry,
    /// Revoking a lease deletes all its keys but the last (an off-by-one over the list).
    RevokeSkipsLastKey,
    /// A renewal leaves a checkpointed remaining TTL in the replicated table (fixed once:
    /// renewal-keeps-a-stale-checkpoint.toml).
    RenewalKeepsStaleCheckpoint,
    /// A restarted member reads its persisted vote back as committed, so a leader restarts
    /// as leader of its old term with a stale commit point (fixed once:
    /// leader-restarts-with-a-stale-commit-point.toml).
    RestartedVoteStaysCommitted,
    /// The proposer answers a batch's commands with the batch's outcomes in reverse order.
    BatchAnswersOutOfOrder,
    /// A watch created at a start revision begins after it (an off-by-one on resume).
    WatchStartsAfterStartRevision,
    /// Member add leaves out the taken-peer-URL check (the ID check after it seems to cover
    /// it), so a taken URL is refused as "member ID already exist", not as etcd refuses it.
    MemberAddSkipsPeerUrlCheck,
}

impl PlantedBug {
    pub const ALL: [PlantedBug; 11] = [
        PlantedBug::WatchBatchEndExclusive,
        PlantedBug::TxnCompareModReadsCreate,
        PlantedBug::CompactionDropsNewestVersion,
        PlantedBug::ReadIndexSkipsQuorum,
        PlantedBug::WalReplayDropsNewestEntry,
        PlantedBug::RevokeSkipsLastKey,
        PlantedBug::RenewalKeepsStaleCheckpoint,
        PlantedBug::RestartedVoteStaysCommitted,
        PlantedBug::BatchAnswersOutOfOrder,
        PlantedBug::WatchStartsAfterStartRevision,
        PlantedBug::MemberAddSkipsPeerUrlCheck,
    ];

    pub fn name(self) -> &'static str {
        match self {
            PlantedBug::WatchBatchEndExclusive => "watch-batch-end-exclusive",
            PlantedBug::TxnCompareModReadsCreate => "txn-compare-mod-reads-create",
            PlantedBug::CompactionDropsNewestVersion => "compaction-drops-newest-version",
            PlantedBug::ReadIndexSkipsQuorum => "read-index-skips-quorum",
            PlantedBug::WalReplayDropsNewestEntry => "wal-replay-drops-newest-entry",
            PlantedBug::RevokeSkipsLastKey => "revoke-skips-last-key",
            PlantedBug::RenewalKeepsStaleCheckpoint => "renewal-keeps-stale-checkpoint",
            PlantedBug::RestartedVoteStaysCommitted => "restarted-vote-stays-committed",
            PlantedBug::BatchAnswersOutOfOrder => "batch-answers-out-of-order",
            PlantedBug::WatchStartsAfterStartRevision => "watch-starts-after-start-revision",
            PlantedBug::MemberAddSkipsPeerUrlCheck => "member-add-skips-peer-url-check",
        }
    }

    pub fn parse(name: &str) -> Option<PlantedBug> {
        PlantedBug::ALL.into_iter().find(|bug| bug.name() == name)
    }
}

#[cfg(madsim)]
thread_local! {
    /// Per thread: a simulation runs on one thread of its own (`cairn-sim`'s `run`).
    static PLANTED: std::cell::Cell<Option<PlantedBug>> = const { std::cell::Cell::new(None) };
}

/// Turns `bug` on (or every bug off) for the simulation running on this thread.
#[cfg(madsim)]
pub fn plant(bug: Option<PlantedBug>) {
    PLANTED.with(|planted| planted.set(bug));
}

/// Outside the simulator there is nothing to plant into.
#[cfg(not(madsim))]
pub fn plant(bug: Option<PlantedBug>) {
    assert!(
        bug.is_none(),
        "bugs are planted only in the simulator build (--cfg madsim)"
    );
}

/// Whether `bug` is on: never outside the simulator.
#[inline(always)]
pub fn planted(bug: PlantedBug) -> bool {
    #[cfg(madsim)]
    {
        PLANTED.with(|planted| planted.get() == Some(bug))
    }
    #[cfg(not(madsim))]
    {
        let _ = bug;
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_parses_back_and_names_are_distinct() {
        let mut names: Vec<&str> = PlantedBug::ALL.iter().map(|bug| bug.name()).collect();
        for bug in PlantedBug::ALL {
            assert_eq!(PlantedBug::parse(bug.name()), Some(bug));
        }
        names.sort();
        names.dedup();
        assert_eq!(names.len(), PlantedBug::ALL.len());
    }

    #[cfg(not(madsim))]
    #[test]
    fn no_bug_is_ever_on_in_a_production_build() {
        assert!(PlantedBug::ALL.into_iter().all(|bug| !planted(bug)));
    }
}
