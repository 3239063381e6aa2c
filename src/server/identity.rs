//! Cluster and member IDs, derived deterministically from the bootstrap flags (as etcd
//! derives them), and persisted in the data directory so a restart needs no flags.

use crate::base::MemberId;
use crate::io::Disk;
use crate::raft::MemberNode;
use crate::storage::{codec, DataDir, StorageError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Persisted in `member/identity` (bincode; its layout is pinned by a golden-bytes test, and
/// any change needs a new file name or a version prefix).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    pub cluster_id: u64,
    pub member_id: MemberId,
    pub name: String,
    pub token: String,
}

pub use crate::base::identity::{cluster_id, member_id};

/// Parses `--initial-cluster` (`name=url,name=url2,...`) into members by ID.
pub fn parse_initial_cluster(
    text: &str,
    token: &str,
) -> Result<BTreeMap<MemberId, MemberNode>, String> {
    let mut urls_by_name: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for item in text
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
    {
        let (name, url) = item
            .split_once('=')
            .ok_or_else(|| format!("--initial-cluster entry {item:?} is not name=URL"))?;
        urls_by_name
            .entry(name.to_string())
            .or_default()
            .push(url.to_string());
    }
    if urls_by_name.is_empty() {
        return Err("--initial-cluster is empty".to_string());
    }
    Ok(urls_by_name
        .into_iter()
        .map(|(name, peer_urls)| {
            (
                member_id(&peer_urls, token),
                MemberNode {
                    name,
                    peer_urls,
                    client_urls: Vec::new(),
                },
            )
        })
        .collect())
}

/// The identity stored in `data_dir`, if this data directory was used before.
pub fn load(disk: &dyn Disk, data_dir: &DataDir) -> Result<Option<Identity>, StorageError> {
    let path = data_dir.identity();
    if !disk.exists(&path) {
        return Ok(None);
    }
    let bytes = disk
        .read(&path)
        .map_err(StorageError::io("reading", &path))?;
    let identity =
        codec::decode("member identity", &bytes).map_err(|error| StorageError::Corrupt {
            what: "member identity",
            path: path.clone(),
            offset: 0,
            reason: error.to_string(),
        })?;
    Ok(Some(identity))
}

/// Stores the identity durably (file synced, then its directory).
pub fn save(disk: &dyn Disk, data_dir: &DataDir, identity: &Identity) -> Result<(), StorageError> {
    let member_dir = data_dir.member();
    disk.create_dir_all(&member_dir)
        .map_err(StorageError::io("creating", &member_dir))?;
    let path = data_dir.identity();
    let temporary = path.with_extension("tmp");
    disk.write_synced(&temporary, &codec::encode(identity))
        .map_err(StorageError::io("writing", &temporary))?;
    disk.rename(&temporary, &path)
        .map_err(StorageError::io("renaming", &temporary))?;
    disk.sync_dir(&member_dir)
        .map_err(StorageError::io("syncing", &member_dir))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_identity_file_keeps_its_layout() {
        let identity = Identity {
            cluster_id: 0x0102_0304_0506_0708,
            member_id: 0x1112_1314_1516_1718,
            name: "m1".to_string(),
            token: "t".to_string(),
        };
        let bytes = codec::encode(&identity);
        let hex: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
        assert_eq!(
            hex,
            "0807060504030201181716151413121102000000000000006d310100000000000000\
             74",
            "the layout of member/identity changed: existing data directories would not start"
        );
        assert_eq!(
            codec::decode::<Identity>("identity", &bytes).unwrap(),
            identity
        );
    }

    #[test]
    fn ids_are_deterministic_and_token_dependent() {
        let members =
            parse_initial_cluster("a=http://127.0.0.1:2380,b=http://127.0.0.1:2382", "t").unwrap();
        assert_eq!(members.len(), 2);
        let again =
            parse_initial_cluster("b=http://127.0.0.1:2382,a=http://127.0.0.1:2380", "t").unwrap();
        assert_eq!(members, again);
        let other_token =
            parse_initial_cluster("a=http://127.0.0.1:2380,b=http://127.0.0.1:2382", "u").unwrap();
        assert_ne!(
            members.keys().collect::<Vec<_>>(),
            other_token.keys().collect::<Vec<_>>()
        );
        assert!(parse_initial_cluster("nonsense", "t").is_err());
    }
}
