//! The simulator's faults, done for real to real processes: kill -9 and restart, SIGSTOP and
//! SIGCONT, partitions and one-way loss and latency through the peer proxies, a file system
//! filled up, leadership moved. One at a time; `heal_everything` undoes them all.

use super::cluster::RealCluster;
use super::proxy::SharedLinks;
use crate::fault_kind::FaultKind;
use crate::operator::{find_leader, transfer_leadership};
use crate::schedule::Injector;
use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::Rng;

/// The fault kinds that exist for real processes. Packet loss, failing and slow fsync and
/// member replacement stay simulation-only: loopback TCP does not lose packets, the kernel
/// offers no fsync fault injection without a custom device, and replacement needs the
/// operator state machine written for madsim nodes.
pub const REAL_FAULTS: [FaultKind; 9] = [
    FaultKind::Partition,
    FaultKind::Isolate,
    FaultKind::OneWay,
    FaultKind::Latency,
    FaultKind::Kill,
    FaultKind::KillAll,
    FaultKind::Pause,
    FaultKind::DiskFull,
    FaultKind::LeaderTransfer,
];

/// Bytes left free when a disk is filled: less than a WAL segment or a snapshot needs.
const DISK_ROOM_BYTES: u64 = 64 * 1024;

pub struct RealFaults<'a> {
    pub cluster: &'a mut RealCluster,
    links: SharedLinks,
    killed: Vec<usize>,
    full_disks: Vec<usize>,
    /// Exits nobody caused, as (member, status).
    pub unexpected_exits: Vec<(usize, String)>,
}

impl<'a> RealFaults<'a> {
    pub fn new(cluster: &'a mut RealCluster, links: SharedLinks) -> Self {
        RealFaults {
            cluster,
            links,
            killed: Vec::new(),
            full_disks: Vec::new(),
            unexpected_exits: Vec::new(),
        }
    }

    fn isolate(&mut self, victim: usize) {
        let mut links = self.links.lock().unwrap();
        for other in (0..self.cluster.members.len()).filter(|other| *other != victim) {
            links.block(victim, other);
            links.block(other, victim);
        }
    }

    async fn apply_now(&mut self, kind: FaultKind, random: &mut impl Rng) -> String {
        let count = self.cluster.members.len();
        let mut order: Vec<usize> = (0..count).collect();
        order.shuffle(random);
        match kind {
            FaultKind::Partition if count > 1 => {
                let cut = random.gen_range(1..count);
                let (left, right) = order.split_at(cut);
                let mut links = self.links.lock().unwrap();
                for a in left {
                    for b in right {
                        links.block(*a, *b);
                        links.block(*b, *a);
                    }
                }
                format!("partition {:?} | {:?}", numbered(left), numbered(right))
            }
            FaultKind::Isolate if count > 1 => {
                if random.gen_bool(0.5) {
                    if let Some((leader, _)) = find_leader(self.cluster.endpoints()).await {
                        self.isolate(leader);
                        return format!("isolate the leader, member-{leader}");
                    }
                }
                self.isolate(order[0]);
                format!("isolate member-{}", order[0])
            }
            FaultKind::OneWay if count > 1 => {
                self.links.lock().unwrap().block(order[0], order[1]);
                format!("drop member-{} -> member-{}", order[0], order[1])
            }
            FaultKind::Latency => {
                let latency_ms = random.gen_range(5..150);
                self.links.lock().unwrap().set_latency_ms(latency_ms);
                format!("peer latency {latency_ms} ms")
            }
            FaultKind::LeaderTransfer if count > 1 => {
                tokio::spawn(transfer_leadership(self.cluster.endpoints(), random.gen()));
                "leader transfer requested".to_string()
            }
            FaultKind::KillAll => {
                for victim in 0..count {
                    self.kill(victim).await;
                }
                "kill -9 every member".to_string()
            }
            FaultKind::Pause => {
                self.cluster.pause(order[0]);
                format!("SIGSTOP member-{}", order[0])
            }
            FaultKind::DiskFull => {
                let victim = order[0];
                match self.cluster.fill_disk(victim, DISK_ROOM_BYTES).await {
                    Ok(bytes) => {
                        self.full_disks.push(victim);
                        format!(
                            "disk full on member-{victim} ({} MiB of ballast)",
                            bytes >> 20
                        )
                    }
                    Err(error) => format!("disk full skipped: {error}"),
                }
            }
            // Kill, and the network faults on a one-member cluster.
            _ => {
                self.kill(order[0]).await;
                format!("kill -9 member-{}", order[0])
            }
        }
    }

    async fn kill(&mut self, victim: usize) {
        if self.cluster.kill(victim).await {
            self.killed.push(victim);
        }
    }

    /// Notes every member that exited by itself since the last look (as down, to restart,
    /// and as an unexpected exit: not even a full disk may stop a member).
    pub fn reap(&mut self) {
        for index in 0..self.cluster.members.len() {
            if let Some(status) = self.cluster.reap(index) {
                self.unexpected_exits.push((index, status));
                self.killed.push(index);
            }
        }
    }

    /// Undoes every fault and restarts every member that is down.
    pub async fn heal(&mut self) -> String {
        self.links.lock().unwrap().heal();
        for index in 0..self.cluster.members.len() {
            self.cluster.resume(index);
        }
        self.reap();
        let mut restart: Vec<usize> = self.killed.drain(..).collect();
        // Freed and nothing more: the member must resume writing by itself.
        for full in std::mem::take(&mut self.full_disks) {
            self.cluster.free_disk(full);
        }
        restart.sort();
        restart.dedup();
        let mut failed = Vec::new();
        for member in &restart {
            if let Err(error) = self.cluster.spawn(*member) {
                failed.push(format!("member-{member}: {error}"));
            }
        }
        if failed.is_empty() {
            format!("heal (restarted {})", numbered(&restart).join(", "))
        } else {
            format!(
                "heal (restarted {}; failed: {failed:?})",
                numbered(&restart).join(", ")
            )
        }
    }
}

fn numbered(members: &[usize]) -> Vec<String> {
    members
        .iter()
        .map(|member| format!("member-{member}"))
        .collect()
}

impl Injector for RealFaults<'_> {
    async fn apply(&mut self, kind: FaultKind, random: &mut SmallRng) -> Result<String, String> {
        Ok(self.apply_now(kind, random).await)
    }

    async fn heal_everything(&mut self) -> Result<String, String> {
        Ok(self.heal().await)
    }
}
