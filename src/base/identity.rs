//! Member and cluster IDs, derived deterministically as etcd derives them: the same flags
//! give the same IDs on every member, and a different `--initial-cluster-token` gives
//! different ones.

use super::MemberId;

/// FNV-1a, 64 bit: stable across platforms and releases, unlike std's hasher.
fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for byte in part.iter().chain(&[0xff]) {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash
}

/// A member's ID: from its sorted peer URLs and the cluster token.
pub fn member_id(peer_urls: &[String], token: &str) -> MemberId {
    let mut urls = peer_urls.to_vec();
    urls.sort();
    fnv1a(&[urls.join(",").as_bytes(), token.as_bytes()])
}

/// The cluster's ID: from its sorted initial member IDs and the token.
pub fn cluster_id(member_ids: &[MemberId], token: &str) -> u64 {
    let mut ids = member_ids.to_vec();
    ids.sort();
    let joined: Vec<u8> = ids.iter().flat_map(|id| id.to_be_bytes()).collect();
    fnv1a(&[&joined, token.as_bytes()])
}
