//! `cairnutl snapshot restore`: a new member's data directory from a snapshot file in etcd's
//! format (written by etcd 3.4 to 3.6 or by Cairn), with the membership the flags give, as
//! `etcdutl snapshot restore` makes one. Every member of the new cluster is restored from the
//! same file with the same `--initial-cluster` and token, and they start from identical state.

use super::identity::{self, Identity};
use crate::backup;
use crate::io::Disk;
use crate::raft::{save_restored_snapshot, MemberNode};
use crate::storage::snapshot::SnapshotStore;
use crate::storage::DataDir;
use std::path::PathBuf;
use std::sync::Arc;

/// The revision bump a restore applies unless told otherwise: far beyond what any cluster
/// writes between its last backup and a restore, so revisions never go backwards for a
/// client that saw the old cluster.
pub const DEFAULT_REVISION_BUMP: i64 = 1_000_000_000;

pub struct RestoreOptions {
    pub snapshot: PathBuf,
    pub data_dir: PathBuf,
    pub name: String,
    pub initial_cluster: String,
    pub initial_cluster_token: String,
    pub initial_advertise_peer_urls: Vec<String>,
    pub skip_hash_check: bool,
    /// Added to the snapshot's revision; 0 keeps it.
    pub bump_revision: i64,
    /// Compacts at the bumped revision (what etcd's `--mark-compacted` does).
    pub mark_compacted: bool,
}

/// What a restore did, for the operator.
#[derive(Debug)]
pub struct Restored {
    pub identity: Identity,
    pub revision: i64,
    pub versions: u64,
    pub keys: usize,
    pub leases: usize,
    pub snapshot_path: PathBuf,
}

/// How far a restore is: the phase, bytes done and to do, versions read.
pub struct Progress<'a> {
    pub phase: &'a str,
    pub done_bytes: u64,
    pub total_bytes: u64,
    pub versions: u64,
}

pub fn restore(
    disk: Arc<dyn Disk>,
    options: &RestoreOptions,
    progress: &mut dyn FnMut(Progress),
) -> Result<Restored, String> {
    let data_dir = DataDir::new(&options.data_dir);
    if disk.exists(data_dir.root())
        && !disk
            .list(data_dir.root())
            .map(|names| names.is_empty())
            .unwrap_or(false)
    {
        return Err(format!(
            "data-dir {:?} not empty or could not be read",
            options.data_dir.display().to_string()
        ));
    }
    let token = &options.initial_cluster_token;
    let members = identity::parse_initial_cluster(&options.initial_cluster, token)?;
    let member_id = identity::member_id(&options.initial_advertise_peer_urls, token);
    if !members.contains_key(&member_id) {
        return Err(format!(
            "couldn't find local name {:?} in the initial cluster configuration: --initial-advertise-peer-urls {:?} is not in --initial-cluster",
            options.name, options.initial_advertise_peer_urls
        ));
    }
    let file_bytes = disk
        .len(&options.snapshot)
        .map_err(|error| format!("{}: {error}", options.snapshot.display()))?;
    if !options.skip_hash_check {
        backup::verify_hash(disk.as_ref(), &options.snapshot, &mut |done, total| {
            progress(Progress {
                phase: "checking sha256",
                done_bytes: done,
                total_bytes: total,
                versions: 0,
            })
        })
        .map_err(|error| error.to_string())?;
    }
    let mut imported =
        backup::read_database(disk.as_ref(), &options.snapshot, &mut |done, versions| {
            progress(Progress {
                phase: "reading",
                done_bytes: done,
                total_bytes: file_bytes,
                versions,
            })
        })
        .map_err(|error| error.to_string())?;
    if options.bump_revision > 0 || options.mark_compacted {
        imported
            .machine
            .bump_revision(options.bump_revision, options.mark_compacted);
    }
    let machine = imported.machine;
    let member_ids: Vec<u64> = members.keys().copied().collect();
    let identity = Identity {
        cluster_id: identity::cluster_id(&member_ids, token),
        member_id,
        name: options.name.clone(),
        token: token.clone(),
    };
    let restored = Restored {
        identity: identity.clone(),
        revision: machine.store().current_revision(),
        versions: imported.versions,
        keys: machine.store().key_count(),
        leases: machine.leases().len(),
        snapshot_path: PathBuf::new(),
    };
    let snapshots = SnapshotStore::open(disk.clone(), &data_dir.snapshots())
        .map_err(|error| error.to_string())?;
    let snapshot_path = save_restored_snapshot(&snapshots, machine, bootstrap_members(members))
        .map_err(|error| error.to_string())?;
    // The identity last: a data directory with one is a member's, and a restore that
    // stopped before this point leaves a directory that `cairn` refuses, not half a member.
    identity::save(disk.as_ref(), &data_dir, &identity).map_err(|error| error.to_string())?;
    Ok(Restored {
        snapshot_path,
        ..restored
    })
}

/// The initial membership every member must agree on, byte for byte: peer URLs only (each
/// member publishes its name and client URLs through raft once it runs).
pub fn bootstrap_members(
    members: std::collections::BTreeMap<u64, MemberNode>,
) -> std::collections::BTreeMap<u64, MemberNode> {
    members
        .into_iter()
        .map(|(id, node)| {
            (
                id,
                MemberNode {
                    name: String::new(),
                    client_urls: Vec::new(),
                    ..node
                },
            )
        })
        .collect()
}
