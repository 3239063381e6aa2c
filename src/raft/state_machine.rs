//! openraft's state machine on `apply::StateMachine`. The applied state sits behind a mutex
//! held only for O(1) clones and for apply itself; readers, watchers and snapshots work on
//! clones. Snapshots are built from a clone in openraft's background task while writes go on.

use super::members::MemberNode;
use super::persisted::{decode_snapshot, DiskLogId, DiskSnapshotMeta, SnapshotFile};
use super::snapshot_data::SnapshotData;
use super::types::{storage_error, StorageResult, TypeConfig};
use crate::apply::{Applied, Command, Outcome, StateMachine};
use crate::base::metrics::Metrics;
use crate::base::Revision;
use crate::io;
use crate::io::fault_points::{self, FaultPoint};
use crate::storage::snapshot::{SnapshotPin, SnapshotStore};
use crate::storage::{next_retry_interval, DiskSpace};
use openraft::storage::{RaftSnapshotBuilder, RaftStateMachine, Snapshot, SnapshotMeta};
use openraft::{
    Entry, EntryPayload, ErrorSubject, ErrorVerb, LogId, OptionalSend, RaftLogId, StoredMembership,
};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

/// The applied state: what a snapshot holds (on disk as `persisted::SnapshotFile`).
#[derive(Debug, Clone)]
pub struct AppliedState {
    pub machine: StateMachine,
    pub last_applied: Option<LogId<u64>>,
    pub membership: StoredMembership<u64, MemberNode>,
}

impl AppliedState {
    pub(super) fn to_file(&self, meta: &SnapshotMeta<u64, MemberNode>) -> SnapshotFile {
        SnapshotFile {
            meta: DiskSnapshotMeta {
                last_log_id: meta.last_log_id.map(DiskLogId::from),
                last_membership: (&meta.last_membership).into(),
                snapshot_id: meta.snapshot_id.clone(),
            },
            machine: self.machine.clone(),
            last_applied: self.last_applied.map(DiskLogId::from),
            membership: (&self.membership).into(),
        }
    }

    pub(super) fn from_file(file: SnapshotFile) -> AppliedState {
        AppliedState {
            machine: file.machine,
            last_applied: file.last_applied.map(LogId::from),
            membership: file.membership.into(),
        }
    }
}

fn meta_from_disk(meta: DiskSnapshotMeta) -> SnapshotMeta<u64, MemberNode> {
    SnapshotMeta {
        last_log_id: meta.last_log_id.map(LogId::from),
        last_membership: meta.last_membership.into(),
        snapshot_id: meta.snapshot_id,
    }
}

/// An entry whose apply takes longer is counted as slow (etcd's `warnApplyDuration`).
const SLOW_APPLY: std::time::Duration = std::time::Duration::from_millis(100);

/// State shared between the raft state machine and the readers above it.
pub struct SharedState {
    state: Mutex<AppliedState>,
    /// The store revision after the latest apply; watch streams wait on it.
    revision: watch::Sender<Revision>,
    /// Requests applied since the last snapshot (a batch entry counts each of its commands),
    /// which is what `--snapshot-count` counts in etcd.
    commands_since_snapshot: AtomicU64,
    pub metrics: Arc<Metrics>,
}

impl SharedState {
    /// A consistent O(1) copy of the applied state.
    pub fn view(&self) -> AppliedState {
        self.state.lock().unwrap().clone()
    }

    pub fn subscribe_revision(&self) -> watch::Receiver<Revision> {
        self.revision.subscribe()
    }

    /// Requests applied since the last snapshot was started.
    pub fn commands_since_snapshot(&self) -> u64 {
        self.commands_since_snapshot.load(Ordering::Relaxed)
    }

    /// Called when a snapshot starts: it covers everything applied so far.
    pub fn snapshot_started(&self) {
        self.commands_since_snapshot.store(0, Ordering::Relaxed);
    }

    /// The applied membership.
    pub fn membership(&self) -> StoredMembership<u64, MemberNode> {
        self.state.lock().unwrap().membership.clone()
    }

    /// The store revision after the latest apply, without copying any state.
    pub fn revision(&self) -> Revision {
        *self.revision.borrow()
    }
}

/// The newest snapshot that loads. A damaged newest snapshot is set aside only when the
/// log still holds every entry after the next older snapshot (or, with no older one, every
/// entry from the first, index 0): then replaying the log from there loses nothing.
/// Otherwise it is an error naming the file, since falling back would lose purged entries.
pub(super) fn load_newest_usable(
    snapshots: &SnapshotStore,
    log_first_index: Option<u64>,
) -> Result<Option<SnapshotFile>, crate::storage::StorageError> {
    let candidates = snapshots.newest_first()?;
    for (position, (path, _)) in candidates.iter().enumerate() {
        let error = match snapshots.load_with(path, decode_snapshot) {
            Ok(file) => return Ok(Some(file)),
            Err(error) => error,
        };
        let older_index = candidates.get(position + 1).map(|(_, index)| *index);
        let log_covers = match (older_index, log_first_index) {
            (_, None) => false,
            (Some(older), Some(first)) => first <= older + 1,
            (None, Some(first)) => first == 0,
        };
        if !log_covers {
            return Err(error);
        }
        let damaged = snapshots.set_aside(path)?;
        tracing::warn!(
            %error,
            set_aside = %damaged.display(),
            log_first_index,
            "the newest snapshot is damaged; the log holds every entry after the next older one, so starting from that and replaying the log"
        );
    }
    Ok(None)
}

pub struct StateMachineStore {
    shared: Arc<SharedState>,
    snapshots: Arc<SnapshotStore>,
    /// Limits from local flags, reapplied to state loaded from a snapshot.
    limits: (i64, u64),
    space: DiskSpace,
}

impl StateMachineStore {
    /// Loads the newest snapshot (if any) as the starting state. `log_first_index` is the
    /// index of the first entry the log holds (`None`: it holds none).
    pub fn open(
        snapshots: SnapshotStore,
        log_first_index: Option<u64>,
        lease_ttl_seconds_min: i64,
        backend_bytes_quota: u64,
        metrics: Arc<Metrics>,
        space: DiskSpace,
    ) -> Result<(StateMachineStore, Arc<SharedState>), crate::storage::StorageError> {
        let fresh = || AppliedState {
            machine: StateMachine::new(lease_ttl_seconds_min, backend_bytes_quota),
            last_applied: None,
            membership: StoredMembership::default(),
        };
        let mut state = match load_newest_usable(&snapshots, log_first_index)? {
            Some(file) => AppliedState::from_file(file),
            None => fresh(),
        };
        state
            .machine
            .set_limits(lease_ttl_seconds_min, backend_bytes_quota);
        let (revision, _) = watch::channel(state.machine.store().current_revision());
        let shared = Arc::new(SharedState {
            state: Mutex::new(state),
            revision,
            commands_since_snapshot: AtomicU64::new(0),
            metrics,
        });
        let store = StateMachineStore {
            shared: shared.clone(),
            snapshots: Arc::new(snapshots),
            limits: (lease_ttl_seconds_min, backend_bytes_quota),
            space,
        };
        Ok((store, shared))
    }

    fn replace(&self, mut state: AppliedState) {
        state.machine.set_limits(self.limits.0, self.limits.1);
        let revision = state.machine.store().current_revision();
        *self.shared.state.lock().unwrap() = state;
        self.shared.revision.send_replace(revision);
    }
}

pub struct SnapshotBuilder {
    state: AppliedState,
    snapshots: Arc<SnapshotStore>,
    space: DiskSpace,
}

/// Saves a snapshot file, retrying for as long as the disk refuses it for space: a failed
/// build would stop raft, while a late snapshot only keeps more log. `space` reports the
/// disk full meanwhile; any other error is returned.
async fn save_when_room(
    snapshots: &Arc<SnapshotStore>,
    space: &DiskSpace,
    index: u64,
    term: u64,
    file: Arc<SnapshotFile>,
) -> Result<SnapshotPin, crate::storage::StorageError> {
    let mut waiting = None;
    let mut interval = None;
    loop {
        let (store, contents) = (snapshots.clone(), file.clone());
        match io::blocking(move || store.save(index, term, &*contents)).await {
            Err(error) if error.is_disk_full() => {
                if waiting.is_none() {
                    tracing::error!(%error, index, "the disk is full: the snapshot is saved once it fits (retried until then)");
                    waiting = Some(space.wait());
                }
                let pause = next_retry_interval(interval);
                interval = Some(pause);
                io::clock::sleep(pause).await;
            }
            result => return result,
        }
    }
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> StorageResult<Snapshot<TypeConfig>> {
        let last = self.state.last_applied;
        let snapshot_id = last.map_or_else(
            || "empty".to_string(),
            |id| format!("{}-{}", id.index, id.leader_id.term),
        );
        let meta = SnapshotMeta {
            last_log_id: last,
            last_membership: self.state.membership.clone(),
            snapshot_id,
        };
        let file = Arc::new(self.state.to_file(&meta));
        let (index, term) = last.map_or((0, 0), |id| (id.index, id.leader_id.term));
        let pin = save_when_room(&self.snapshots, &self.space, index, term, file)
            .await
            .map_err(|error| {
                storage_error(ErrorSubject::Snapshot(None), ErrorVerb::Write, error)
            })?;
        tracing::info!(index, path = %pin.path().display(), "snapshot saved");
        Ok(Snapshot {
            meta,
            snapshot: Box::new(SnapshotData::sending(self.snapshots.disk().clone(), pin)),
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachineStore {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(
        &mut self,
    ) -> StorageResult<(Option<LogId<u64>>, StoredMembership<u64, MemberNode>)> {
        let state = self.shared.state.lock().unwrap();
        Ok((state.last_applied, state.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> StorageResult<Vec<Applied>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        if fault_points::fires(FaultPoint::ApplySlowed) {
            let slowed_ms = fault_points::delay_ms(100);
            io::clock::sleep(std::time::Duration::from_millis(slowed_ms)).await;
        }
        let mut responses = Vec::new();
        let metrics = &self.shared.metrics;
        let started = io::clock::now();
        let revision = {
            let mut state = self.shared.state.lock().unwrap();
            for entry in entries {
                let log_id = *entry.get_log_id();
                let entry_started = io::clock::now();
                let response = match entry.payload {
                    EntryPayload::Normal(command) => {
                        let commands = match &command {
                            Command::Batch(commands) => commands.len() as u64,
                            _ => 1,
                        };
                        self.shared
                            .commands_since_snapshot
                            .fetch_add(commands, Ordering::Relaxed);
                        state.machine.apply(log_id.index, &command)
                    }
                    EntryPayload::Membership(membership) => {
                        state.membership = StoredMembership::new(Some(log_id), membership);
                        Applied {
                            revision: state.machine.store().current_revision(),
                            result: Ok(Outcome::Nothing),
                        }
                    }
                    EntryPayload::Blank => Applied {
                        revision: state.machine.store().current_revision(),
                        result: Ok(Outcome::Nothing),
                    },
                };
                state.last_applied = Some(log_id);
                response.each_request_operations(&mut |operations| metrics.mvcc.record(operations));
                if entry_started.elapsed() > SLOW_APPLY {
                    metrics.slow_apply.inc();
                }
                responses.push(response);
            }
            state.machine.store().current_revision()
        };
        metrics
            .backend_commit_seconds
            .observe(started.elapsed().as_secs_f64());
        self.shared.revision.send_replace(revision);
        Ok(responses)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.shared.snapshot_started();
        SnapshotBuilder {
            state: self.shared.view(),
            snapshots: self.snapshots.clone(),
            space: self.space.clone(),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> StorageResult<Box<SnapshotData>> {
        let path = self.snapshots.temporary_path("receive");
        let data = SnapshotData::receiving(self.snapshots.disk().clone(), path.clone()).map_err(
            |error| {
                storage_error(
                    ErrorSubject::Snapshot(None),
                    ErrorVerb::Write,
                    format!("{}: {error}", path.display()),
                )
            },
        )?;
        Ok(Box::new(data))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<u64, MemberNode>,
        snapshot: Box<SnapshotData>,
    ) -> StorageResult<()> {
        let (index, term) = meta
            .last_log_id
            .map_or((0, 0), |id| (id.index, id.leader_id.term));
        let snapshots = self.snapshots.clone();
        let received = snapshot.path().to_path_buf();
        drop(snapshot);
        let file = io::blocking(move || {
            snapshots.adopt_received_with(&received, index, term, decode_snapshot)
        })
        .await
        .map_err(|error| {
            storage_error(
                ErrorSubject::Snapshot(Some(meta.signature())),
                ErrorVerb::Write,
                error,
            )
        })?;
        self.replace(AppliedState::from_file(file));
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> StorageResult<Option<Snapshot<TypeConfig>>> {
        let snapshots = self.snapshots.clone();
        // The metadata is encoded in front of the state: read just that much.
        let loaded = io::blocking(move || {
            let Some(pin) = snapshots.latest_pinned()? else {
                return Ok(None);
            };
            let meta = snapshots.load_prefix::<DiskSnapshotMeta>(pin.path())?;
            Ok::<_, crate::storage::StorageError>(Some((pin, meta_from_disk(meta))))
        })
        .await
        .map_err(|error| storage_error(ErrorSubject::Snapshot(None), ErrorVerb::Read, error))?;
        Ok(loaded.map(|(pin, meta)| Snapshot {
            meta,
            snapshot: Box::new(SnapshotData::sending(self.snapshots.disk().clone(), pin)),
        }))
    }
}

/// Saves the snapshot a restored member starts from (`cairnutl snapshot restore`): `machine`
/// with `members` as the voters, at the log position raft's own initialization uses (term
/// 0, index 0), so every member restored from the same backup starts identical and the
/// first election comes after it. Returns the file's path.
pub fn save_restored_snapshot(
    snapshots: &SnapshotStore,
    machine: StateMachine,
    members: std::collections::BTreeMap<u64, MemberNode>,
) -> Result<std::path::PathBuf, crate::storage::StorageError> {
    let log_id = LogId::default();
    let voters: std::collections::BTreeSet<u64> = members.keys().copied().collect();
    let membership = StoredMembership::new(
        Some(log_id),
        openraft::Membership::new(vec![voters], members),
    );
    let state = AppliedState {
        machine,
        last_applied: Some(log_id),
        membership,
    };
    let meta = SnapshotMeta {
        last_log_id: Some(log_id),
        last_membership: state.membership.clone(),
        snapshot_id: "restored".to_string(),
    };
    let pin = snapshots.save(0, 0, &state.to_file(&meta))?;
    Ok(pin.path().to_path_buf())
}
