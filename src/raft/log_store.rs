//! openraft's log storage on the WAL. Entries live in memory (until purged after a
//! snapshot) for reads, and go to disk through one writer task that batches every queued
//! append into one write and one fsync (group commit) before acknowledging any of them.

use super::persisted::{self, DiskLogId, DiskVote};
use super::types::{storage_error, StorageResult, TypeConfig};
use crate::base::metrics::Metrics;
use crate::io;
use crate::io::fault_points::{self, FaultPoint};
use crate::io::planted::{planted, PlantedBug};
use crate::storage::wal::{Record, RecordKind, Wal};
use crate::storage::{codec, next_retry_interval, DiskSpace, StorageError};
use openraft::storage::{LogFlushed, LogState, RaftLogReader, RaftLogStorage};
use openraft::{Entry, ErrorSubject, ErrorVerb, LogId, OptionalSend, RaftLogId, Vote};
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::ops::RangeBounds;
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot};

/// How many queued writes one fsync may cover at most.
const GROUP_COMMIT_JOBS_MAX: usize = 1024;
/// Bound on writes queued for the writer task.
const WRITE_QUEUE_LENGTH_MAX: usize = 4096;

#[derive(Debug, Default)]
pub(super) struct InMemoryLog {
    pub(super) entries: BTreeMap<u64, Entry<TypeConfig>>,
    pub(super) last_purged: Option<LogId<u64>>,
    pub(super) vote: Option<Vote<u64>>,
    pub(super) committed: Option<LogId<u64>>,
}

enum Completion {
    Flushed(LogFlushed<TypeConfig>),
    Reply(oneshot::Sender<Result<(), std::io::Error>>),
    None,
}

struct WriteJob {
    records: Vec<(RecordKind, Vec<u8>)>,
    /// Index of the next entry after this job (for naming the next segment).
    next_index: Option<u64>,
    /// Segments wholly at or below this index may go once this job is durable.
    purge_through: Option<u64>,
    completion: Completion,
}

/// The log as the WAL's records leave it: entries, vote, committed and purge points.
pub(super) fn replay(records: Vec<Record>) -> Result<InMemoryLog, crate::storage::StorageError> {
    let mut state = InMemoryLog::default();
    for record in records {
        match record.kind {
            RecordKind::Entry => {
                let entry = persisted::decode_entry(&record.payload)?;
                state.entries.insert(entry.get_log_id().index, entry);
            }
            RecordKind::Vote => {
                let vote: DiskVote = codec::decode("vote", &record.payload)?;
                state.vote = Some(vote.into());
            }
            RecordKind::Committed => {
                let committed: Option<DiskLogId> =
                    codec::decode("committed log id", &record.payload)?;
                state.committed = committed.map(LogId::from);
            }
            RecordKind::Truncate => {
                let since: u64 = codec::decode("truncate point", &record.payload)?;
                state.entries.split_off(&since);
            }
            RecordKind::Purge => {
                let upto: LogId<u64> =
                    codec::decode::<DiskLogId>("purge point", &record.payload)?.into();
                state.entries = state.entries.split_off(&(upto.index + 1));
                state.last_purged = Some(upto);
            }
            RecordKind::Header => {}
        }
    }
    if planted(PlantedBug::WalReplayDropsNewestEntry) {
        state.entries.pop_last();
    }
    Ok(state)
}

#[derive(Clone)]
pub struct LogStore {
    state: Arc<Mutex<InMemoryLog>>,
    writer: mpsc::Sender<WriteJob>,
    metrics: Arc<Metrics>,
}

#[derive(Clone)]
pub struct LogReader {
    state: Arc<Mutex<InMemoryLog>>,
}

impl LogStore {
    /// Replays the WAL's records and starts the writer task.
    pub fn open(
        wal: Wal,
        records: Vec<Record>,
        metrics: Arc<Metrics>,
        space: DiskSpace,
    ) -> Result<LogStore, crate::storage::StorageError> {
        let state = replay(records)?;
        let next_index = state.entries.keys().next_back().map_or_else(
            || state.last_purged.map_or(0, |id| id.index + 1),
            |last| last + 1,
        );
        let carried = carried_state(&state);
        let (writer, jobs) = mpsc::channel(WRITE_QUEUE_LENGTH_MAX);
        tokio::spawn(run_writer(wal, jobs, next_index, carried, space));
        Ok(LogStore {
            state: Arc::new(Mutex::new(state)),
            writer,
            metrics,
        })
    }

    /// A reader of this log that outlives raft's ownership of the store.
    pub fn reader(&self) -> LogReader {
        LogReader {
            state: self.state.clone(),
        }
    }

    /// The index of the first entry the log holds (`None`: it holds none).
    pub fn first_index(&self) -> Option<u64> {
        self.state.lock().unwrap().entries.keys().next().copied()
    }

    async fn write(&self, job: WriteJob) -> StorageResult<()> {
        self.writer.send(job).await.map_err(|_| {
            storage_error(
                ErrorSubject::Logs,
                ErrorVerb::Write,
                "the WAL writer has stopped",
            )
        })
    }

    async fn write_and_wait(
        &self,
        subject: ErrorSubject<u64>,
        records: Vec<(RecordKind, Vec<u8>)>,
        next_index: Option<u64>,
        purge_through: Option<u64>,
    ) -> StorageResult<()> {
        let (reply, done) = oneshot::channel();
        self.write(WriteJob {
            records,
            next_index,
            purge_through,
            completion: Completion::Reply(reply),
        })
        .await?;
        match done.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(storage_error(subject, ErrorVerb::Write, error)),
            Err(_) => Err(storage_error(
                subject,
                ErrorVerb::Write,
                "the WAL writer has stopped",
            )),
        }
    }
}

/// The records a new segment must start with so older segments can be removed.
fn carried_state(state: &InMemoryLog) -> Vec<(RecordKind, Vec<u8>)> {
    let mut carried = Vec::new();
    if let Some(vote) = &state.vote {
        carried.push((RecordKind::Vote, codec::encode(&DiskVote::from(vote))));
    }
    if let Some(purged) = &state.last_purged {
        carried.push((RecordKind::Purge, codec::encode(&DiskLogId::from(*purged))));
    }
    carried
}

async fn run_writer(
    mut wal: Wal,
    mut jobs: mpsc::Receiver<WriteJob>,
    mut next_index: u64,
    mut carried: Vec<(RecordKind, Vec<u8>)>,
    space: DiskSpace,
) {
    while let Some(first) = jobs.recv().await {
        let mut batch = vec![first];
        while batch.len() < GROUP_COMMIT_JOBS_MAX {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let mut purge_through = None;
        // A refused record fails its whole group and everything after it: nothing written
        // after a record that never reached the log may be acknowledged.
        let mut refused = None;
        for job in &batch {
            for (kind, payload) in &job.records {
                if refused.is_none() {
                    refused = wal.append(*kind, payload).err();
                }
                // Keep the newest vote and purge point to carry into the next segment.
                if matches!(kind, RecordKind::Vote | RecordKind::Purge) {
                    carried.retain(|(carried_kind, _)| carried_kind != kind);
                    carried.push((*kind, payload.clone()));
                }
            }
            next_index = job.next_index.unwrap_or(next_index);
            purge_through = job.purge_through.or(purge_through);
        }
        let (returned, mut result) = match refused {
            Some(error) => (wal, Err(error)),
            None => sync_when_room(wal, &space).await,
        };
        wal = returned;
        // A purge of every entry written (a defragment's) cuts the segment too, so that the
        // whole segment can go; other purges wait for the segment to fill.
        let purges_all = purge_through.is_some_and(|index| index + 1 >= next_index);
        let cut_early = fault_points::fires(FaultPoint::WalSegmentCutEarly);
        if result.is_ok() && (wal.should_cut() || purges_all || cut_early) {
            match wal.cut(next_index, &carried) {
                // The batch is durable in the old segment, which stays active; the cut is
                // tried again after the next batch.
                Err(error) if error.is_disk_full() => {
                    tracing::warn!(%error, "WAL segment cut postponed: the disk is full");
                }
                cut => result = cut,
            }
        }
        if let (Ok(()), Some(index)) = (&result, purge_through) {
            result = wal.remove_segments_through(index).map(|_| ());
        }
        let outcome = result.map_err(|error| std::io::Error::other(error.to_string()));
        if fault_points::fires(FaultPoint::WalFlushDelayed) {
            let delay_ms = fault_points::delay_ms(50);
            io::clock::sleep(std::time::Duration::from_millis(delay_ms)).await;
            batch.reverse();
        }
        for job in batch {
            let result = outcome
                .as_ref()
                .map(|_| ())
                .map_err(|error| std::io::Error::other(error.to_string()));
            match job.completion {
                Completion::Flushed(callback) => callback.log_io_completed(result),
                Completion::Reply(reply) => {
                    let _ = reply.send(result);
                }
                Completion::None => {}
            }
        }
        if let Err(error) = outcome {
            // Nothing after a failed write may be acknowledged; every later job fails too.
            tracing::error!(%error, "WAL write failed; the member stops accepting writes");
            while let Some(job) = jobs.recv().await {
                let failure = std::io::Error::other(format!("WAL failed earlier: {error}"));
                match job.completion {
                    Completion::Flushed(callback) => callback.log_io_completed(Err(failure)),
                    Completion::Reply(reply) => {
                        let _ = reply.send(Err(failure));
                    }
                    Completion::None => {}
                }
            }
            return;
        }
    }
}

/// Writes and fsyncs what the WAL holds. A disk full (ENOSPC) first releases the space
/// reserve and tries again at once; with no reserve left it retries for as long as the disk
/// refuses it: the batch stays unacknowledged, `space` reports the member's disk full (so
/// it refuses new writes with NOSPACE), and the first retry that fits resumes writing with
/// nothing lost. Any other error is returned.
async fn sync_when_room(mut wal: Wal, space: &DiskSpace) -> (Wal, Result<(), StorageError>) {
    let mut waiting = None;
    let mut interval = None;
    loop {
        let (returned, result) = io::blocking(move || {
            let result = wal.sync();
            (wal, result)
        })
        .await;
        wal = returned;
        match result {
            Err(error) if error.is_disk_full() => {
                let released = {
                    let space = space.clone();
                    io::blocking(move || space.release_reserve()).await
                };
                if released {
                    continue;
                }
                if waiting.is_none() {
                    tracing::error!(
                        %error,
                        "the disk is full: writes are refused with NOSPACE until the WAL \
                         write fits (retried until then)"
                    );
                    waiting = Some((space.wait(), io::clock::now()));
                }
                let pause = next_retry_interval(interval);
                interval = Some(pause);
                io::clock::sleep(pause).await;
            }
            result => {
                if let (Ok(()), Some((_, since))) = (&result, &waiting) {
                    tracing::warn!(
                        waited_ms = since.elapsed().as_millis() as u64,
                        "the disk has room again: the WAL write fitted and writes resume"
                    );
                }
                return (wal, result);
            }
        }
    }
}

impl LogReader {
    /// The id of the newest entry appended (durable or not), or of the purge point when
    /// the log holds none.
    pub fn last_log_id(&self) -> Option<LogId<u64>> {
        let state = self.state.lock().unwrap();
        state
            .entries
            .values()
            .next_back()
            .map(|entry| *entry.get_log_id())
            .or(state.last_purged)
    }
}

impl RaftLogReader<TypeConfig> for LogReader {
    async fn try_get_log_entries<R: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: R,
    ) -> StorageResult<Vec<Entry<TypeConfig>>> {
        let state = self.state.lock().unwrap();
        Ok(state
            .entries
            .range(range)
            .map(|(_, entry)| entry.clone())
            .collect())
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<R: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: R,
    ) -> StorageResult<Vec<Entry<TypeConfig>>> {
        LogReader {
            state: self.state.clone(),
        }
        .try_get_log_entries(range)
        .await
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogReader;

    async fn get_log_state(&mut self) -> StorageResult<LogState<TypeConfig>> {
        let last_purged_log_id = self.state.lock().unwrap().last_purged;
        Ok(LogState {
            last_purged_log_id,
            last_log_id: self.reader().last_log_id(),
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        LogReader {
            state: self.state.clone(),
        }
    }

    async fn save_vote(&mut self, vote: &Vote<u64>) -> StorageResult<()> {
        // Durable before it takes effect: raft safety depends on never voting twice in a term.
        self.write_and_wait(
            ErrorSubject::Vote,
            vec![(RecordKind::Vote, codec::encode(&DiskVote::from(vote)))],
            None,
            None,
        )
        .await?;
        self.state.lock().unwrap().vote = Some(*vote);
        Ok(())
    }

    /// The vote as this member restarts with it: never committed. openraft would otherwise
    /// restore a member that led before its crash as leader of the same term at once, with
    /// the commit point it last wrote (written without an fsync of its own, so possibly
    /// behind entries it had acknowledged) as its read index: a linearizable read then
    /// misses acknowledged writes. An uncommitted vote makes the member start as a follower,
    /// as etcd's raft does, and leadership needs a new election, whose winner commits an
    /// entry of its own term before serving reads.
    async fn read_vote(&mut self) -> StorageResult<Option<Vote<u64>>> {
        Ok(self.state.lock().unwrap().vote.map(|vote| Vote {
            committed: planted(PlantedBug::RestartedVoteStaysCommitted) && vote.committed,
            ..vote
        }))
    }

    async fn save_committed(&mut self, committed: Option<LogId<u64>>) -> StorageResult<()> {
        self.state.lock().unwrap().committed = committed;
        self.metrics
            .proposals_committed
            .set(committed.map_or(0, |id| id.index) as i64);
        // Needs no fsync of its own: losing it only means re-learning the commit point.
        let job = WriteJob {
            records: vec![(
                RecordKind::Committed,
                codec::encode(&committed.map(DiskLogId::from)),
            )],
            next_index: None,
            purge_through: None,
            completion: Completion::None,
        };
        self.write(job).await
    }

    async fn read_committed(&mut self) -> StorageResult<Option<LogId<u64>>> {
        Ok(self.state.lock().unwrap().committed)
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> StorageResult<()>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut records = Vec::new();
        let mut next_index = None;
        {
            let mut state = self.state.lock().unwrap();
            for entry in entries {
                records.push((RecordKind::Entry, persisted::encode_entry(&entry)));
                let index = entry.get_log_id().index;
                next_index = Some(index + 1);
                state.entries.insert(index, entry);
            }
        }
        self.write(WriteJob {
            records,
            next_index,
            purge_through: None,
            completion: Completion::Flushed(callback),
        })
        .await
    }

    async fn truncate(&mut self, log_id: LogId<u64>) -> StorageResult<()> {
        self.state.lock().unwrap().entries.split_off(&log_id.index);
        let records = vec![(RecordKind::Truncate, codec::encode(&log_id.index))];
        self.write_and_wait(ErrorSubject::Logs, records, Some(log_id.index), None)
            .await
    }

    async fn purge(&mut self, log_id: LogId<u64>) -> StorageResult<()> {
        {
            let mut state = self.state.lock().unwrap();
            state.entries = state.entries.split_off(&(log_id.index + 1));
            state.last_purged = Some(log_id);
        }
        let records = vec![(RecordKind::Purge, codec::encode(&DiskLogId::from(log_id)))];
        self.write_and_wait(ErrorSubject::Logs, records, None, Some(log_id.index))
            .await
    }
}
