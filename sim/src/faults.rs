//! Fault injection on a running cluster. Faults of a round may overlap (a member killed
//! while another's disk is full and the network is split); healing undoes every kind,
//! restarting members that are down, so the checkers can look at a cluster whose faults
//! have stopped.

use crate::fault_kind::FaultKind;
use crate::history::ClockJump;
use crate::member::{client_urls, SimMember};
use crate::membership::{self, Replacement};
use crate::operator::{find_leader, transfer_leadership};
use crate::recorder::SharedRecorder;
use crate::schedule::Injector;
use crate::unsafe_requests::{self, Choice};
use cairn::io::coverage::MemberState;
use cairn::io::MemoryDiskOptions;
use madsim::net::NetSim;
use madsim::runtime::{Handle, NodeHandle};
use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::Rng;
use std::time::Duration;

/// The largest forward step of a member's clock: a VM resumed after a second.
const CLOCK_JUMP_MAX_MS: u64 = 1000;

/// What is currently broken, so healing knows what to undo.
#[derive(Debug, Default)]
pub struct FaultState {
    clogged_links: Vec<(usize, usize)>,
    killed: Vec<usize>,
    paused: Vec<usize>,
    /// Members whose disk or fsync was broken: their raft stopped; they need a restart.
    /// Disks that filled up: freed at the heal, and the member must resume by itself.
    full_disks: Vec<usize>,
    /// Disks whose fsync failed: the member's raft stops, so the operator restarts it.
    failed_disks: Vec<usize>,
    slow_disks: Vec<usize>,
    packet_loss: bool,
    latency: bool,
}

pub struct Faults<'a> {
    pub handle: &'a Handle,
    pub members: &'a [SimMember],
    pub state: FaultState,
    /// A client node for faults that are requests (leader transfer).
    operator: NodeHandle,
    /// A member replacement in flight (at most one), awaited when the round heals.
    replacement: Option<madsim::task::JoinHandle<Result<String, String>>>,
    /// A voter was asked for at the phantom peer URL: the heal removes it if it is listed.
    phantom_asked: bool,
    /// Where unsafe requests and their answers go, for the operator checker.
    recorder: SharedRecorder,
}

impl<'a> Faults<'a> {
    pub fn new(
        handle: &'a Handle,
        members: &'a [SimMember],
        operator: NodeHandle,
        recorder: SharedRecorder,
    ) -> Self {
        Faults {
            handle,
            members,
            state: FaultState::default(),
            operator,
            replacement: None,
            phantom_asked: false,
            recorder,
        }
    }

    fn clog_both(&mut self, a: usize, b: usize) {
        let net = NetSim::current();
        net.clog_link(self.members[a].node.id(), self.members[b].node.id());
        net.clog_link(self.members[b].node.id(), self.members[a].node.id());
        self.state.clogged_links.extend([(a, b), (b, a)]);
    }

    fn isolate(&mut self, victim: usize) {
        for other in (0..self.members.len()).filter(|other| *other != victim) {
            self.clog_both(victim, other);
        }
    }
}

impl Injector for Faults<'_> {
    async fn apply(&mut self, kind: FaultKind, random: &mut SmallRng) -> Result<String, String> {
        if kind == FaultKind::Isolate && self.members.len() > 1 && random.gen_bool(0.5) {
            // Half the isolations cut off whoever leads now: the stale-leader case.
            if let Some(victim) = self.leader().await {
                self.isolate(victim);
                return Ok(format!("isolate the leader, member-{}", victim + 1));
            }
        }
        if kind == FaultKind::MemberReplace && self.members.len() > 1 {
            if self.replacement.is_some() {
                return Ok("member replacement skipped: one is in flight".to_string());
            }
            let victim = random.gen_range(0..self.members.len());
            let replacement =
                Replacement::of(self.handle, &self.members[victim], self.members.len());
            // It runs while the round's other faults strike (the learner catching up, the
            // joint configuration in force); healing waits for it to finish.
            self.replacement = Some(self.operator.spawn(membership::replace(replacement)));
            return Ok(format!("member-{} replacement started", victim + 1));
        }
        if kind == FaultKind::UnsafeRequest {
            return Ok(self.ask_unsafe(random).await);
        }
        if kind == FaultKind::ClockJump {
            return Ok(self.jump_a_clock(random).await);
        }
        Ok(self.apply_now(kind, random))
    }

    async fn heal_everything(&mut self) -> Result<String, String> {
        let mut healed = self.heal();
        if let Some(replacement) = self.replacement.take() {
            let replaced = replacement.await.expect("operator task")?;
            healed = format!("{healed}; {replaced}");
        }
        if std::mem::take(&mut self.phantom_asked) {
            let removed = self
                .operator
                .spawn(unsafe_requests::remove_phantom(self.members.len()))
                .await
                .expect("operator task")?;
            healed = format!("{healed}; {removed}");
        }
        Ok(healed)
    }

    fn member_states(&self) -> Vec<MemberState> {
        let mut states: Vec<MemberState> = (0..self.members.len())
            .filter(|member| !self.state.killed.contains(member))
            .flat_map(|member| cairn::io::coverage::states_of(self.members[member].node.id()))
            .collect();
        states.sort();
        states.dedup();
        states
    }
}

impl Faults<'_> {
    /// Whoever leads now, asked from the operator's node (None: no leader answers).
    async fn leader(&self) -> Option<usize> {
        let urls = client_urls(self.members.len());
        let leader = self.operator.spawn(find_leader(urls)).await.ok().flatten();
        leader.map(|(member, _)| member)
    }

    /// Steps a member's clock forward (half the time the leader's, whose leases then expire
    /// early by as much) and records the jump for the lease checker.
    async fn jump_a_clock(&mut self, random: &mut SmallRng) -> String {
        let mut victim = random.gen_range(0..self.members.len());
        if random.gen_bool(0.5) {
            if let Some(leader) = self.leader().await {
                victim = leader;
            }
        }
        let forward_ms = random.gen_range(1..=CLOCK_JUMP_MAX_MS);
        let node = self.members[victim].node.id();
        cairn::io::clock::drift::jump(node, Duration::from_millis(forward_ms));
        let mut recorder = self.recorder.lock().unwrap();
        let at_ms = recorder.now_ms();
        recorder
            .history
            .clock_jumps
            .push(ClockJump { at_ms, forward_ms });
        format!(
            "clock of member-{} jumps {forward_ms} ms forward",
            victim + 1
        )
    }

    /// Asks one request etcd refuses and records the answer; a description for the trace.
    async fn ask_unsafe(&mut self, random: &mut SmallRng) -> String {
        if self.replacement.is_some() {
            // Its own changes would make a refusal (a taken URL) a legitimate acceptance.
            return "unsafe request skipped: a member replacement is in flight".to_string();
        }
        let voters = self.members.len();
        let started = voters - self.state.killed.len();
        let quorum_with_one_more = voters.div_ceil(2) + 1;
        let choice = if started < quorum_with_one_more && random.gen_bool(0.5) {
            self.phantom_asked = true;
            Choice::VoterWhileDown
        } else {
            match random.gen_range(0..3) {
                0 => Choice::TakenPeerUrl(random.gen()),
                1 => Choice::PromoteVoter(random.gen()),
                _ => Choice::RemoveUnknown(random.gen()),
            }
        };
        let target = random.gen_range(0..voters);
        let asked = self
            .operator
            .spawn(unsafe_requests::ask(voters, target, choice))
            .await
            .expect("operator task");
        match asked {
            Ok(request) => {
                let description = format!(
                    "unsafe request: {} -> {:?}",
                    request.description, request.answer
                );
                self.recorder
                    .lock()
                    .unwrap()
                    .history
                    .unsafe_requests
                    .push(request);
                description
            }
            Err(skipped) => skipped,
        }
    }

    fn apply_now(&mut self, kind: FaultKind, random: &mut impl Rng) -> String {
        let count = self.members.len();
        let mut order: Vec<usize> = (0..count).collect();
        order.shuffle(random);
        match kind {
            FaultKind::Partition if count > 1 => {
                // Any split, even ones (2|2, 3|3) included.
                let cut = random.gen_range(1..count);
                let (left, right) = order.split_at(cut);
                for a in left {
                    for b in right {
                        self.clog_both(*a, *b);
                    }
                }
                format!("partition {:?} | {:?}", indexes(left), indexes(right))
            }
            FaultKind::Isolate if count > 1 => {
                self.isolate(order[0]);
                format!("isolate member-{}", order[0] + 1)
            }
            FaultKind::OneWay if count > 1 => {
                let (from, to) = (order[0], order[1]);
                NetSim::current()
                    .clog_link(self.members[from].node.id(), self.members[to].node.id());
                self.state.clogged_links.push((from, to));
                format!("drop member-{} -> member-{}", from + 1, to + 1)
            }
            FaultKind::PacketLoss => {
                let rate = random.gen_range(0.01..0.2);
                NetSim::current().update_config(|config| config.packet_loss_rate = rate);
                self.state.packet_loss = true;
                format!("packet loss {:.0}%", rate * 100.0)
            }
            FaultKind::Latency => {
                let low = random.gen_range(5..50);
                let high = low + random.gen_range(1..150);
                NetSim::current().update_config(|config| {
                    config.send_latency = Duration::from_millis(low)..Duration::from_millis(high)
                });
                self.state.latency = true;
                format!("latency {low}..{high} ms")
            }
            FaultKind::LeaderTransfer if count > 1 => {
                // Asked like an operator would: from a client node, to whoever leads now.
                let members = count;
                let seed = random.gen();
                self.operator
                    .spawn(transfer_leadership(client_urls(members), seed));
                "leader transfer requested".to_string()
            }
            FaultKind::Kill => {
                let victim = order[0];
                self.kill(victim, random);
                format!("kill -9 member-{}", victim + 1)
            }
            FaultKind::KillAll => {
                for victim in 0..count {
                    self.kill(victim, random);
                }
                "kill -9 every member (power loss)".to_string()
            }
            FaultKind::Pause => {
                let victim = order[0];
                self.handle.pause(self.members[victim].node.id());
                self.state.paused.push(victim);
                format!("pause member-{}", victim + 1)
            }
            FaultKind::DiskFull => {
                let victim = order[0];
                let disk = &self.members[victim].disk;
                let capacity = disk.used_bytes_total() + random.gen_range(0..4096);
                disk.set_options(MemoryDiskOptions {
                    capacity_bytes: Some(capacity),
                    ..disk.options()
                });
                self.state.full_disks.push(victim);
                format!("disk full on member-{} at {capacity} bytes", victim + 1)
            }
            FaultKind::DamagedSnapshot => {
                let victim = order[0];
                self.kill(victim, random);
                let damaged = damage_newest_snapshot(&self.members[victim].disk, random);
                format!("kill -9 member-{}, {damaged}", victim + 1)
            }
            FaultKind::FailingFsync => {
                let victim = order[0];
                let disk = &self.members[victim].disk;
                disk.set_options(MemoryDiskOptions {
                    failing_syncs: 1,
                    ..disk.options()
                });
                self.state.failed_disks.push(victim);
                format!("failing fsync on member-{}", victim + 1)
            }
            FaultKind::SlowFsync => {
                let victim = order[0];
                let disk = &self.members[victim].disk;
                let sync_latency_ms = random.gen_range(20..=400);
                disk.set_options(MemoryDiskOptions {
                    sync_latency_ms,
                    ..disk.options()
                });
                self.state.slow_disks.push(victim);
                format!("fsync takes {sync_latency_ms} ms on member-{}", victim + 1)
            }
            // Network faults and membership changes need two members; a one-member cluster
            // gets a kill instead.
            _ => self.apply_now(FaultKind::Kill, random),
        }
    }

    fn kill(&mut self, victim: usize, random: &mut impl Rng) {
        if self.state.killed.contains(&victim) {
            return;
        }
        self.state.paused.retain(|paused| *paused != victim);
        self.handle.kill(self.members[victim].node.id());
        self.members[victim].disk.crash(random.gen());
        self.state.killed.push(victim);
    }

    /// Undoes every fault: network restored, paused members resumed, disks given space and
    /// working fsync, and every member that is down or whose raft stopped restarted.
    pub fn heal(&mut self) -> String {
        let net = NetSim::current();
        for (from, to) in self.state.clogged_links.drain(..) {
            net.unclog_link(self.members[from].node.id(), self.members[to].node.id());
        }
        if std::mem::take(&mut self.state.packet_loss) {
            net.update_config(|config| config.packet_loss_rate = 0.0);
        }
        if std::mem::take(&mut self.state.latency) {
            net.update_config(|config| {
                config.send_latency = madsim::net::Config::default().send_latency
            });
        }
        for paused in self.state.paused.drain(..) {
            self.handle.resume(self.members[paused].node.id());
        }
        for slow in self.state.slow_disks.drain(..) {
            let disk = &self.members[slow].disk;
            let settings = self.members[slow].flags.lock().unwrap().settings.clone();
            disk.set_options(MemoryDiskOptions {
                sync_latency_ms: settings.fsync_latency_ms,
                ..disk.options()
            });
        }
        let mut restart: Vec<usize> = self.state.killed.drain(..).collect();
        // A full disk gets its room back and nothing more: the member must notice and
        // resume writing by itself (the availability checker holds it to the recovery
        // bound like everyone else).
        for full in self.state.full_disks.drain(..) {
            let disk = &self.members[full].disk;
            disk.set_options(MemoryDiskOptions {
                capacity_bytes: None,
                ..disk.options()
            });
        }
        for broken in self.state.failed_disks.drain(..) {
            let disk = &self.members[broken].disk;
            disk.set_options(MemoryDiskOptions {
                failing_syncs: 0,
                ..disk.options()
            });
            if !restart.contains(&broken) {
                // Its raft stopped on the storage error: the operator restarts it.
                self.handle.kill(self.members[broken].node.id());
                restart.push(broken);
            }
        }
        for (member, sim_member) in self.members.iter().enumerate() {
            let failed = std::mem::take(&mut sim_member.flags.lock().unwrap().start_failed);
            if failed && !restart.contains(&member) {
                restart.push(member);
            }
        }
        restart.sort();
        for member in &restart {
            // Killed first, whether or not it is down: madsim's restart of a running node
            // (one a member replacement restarted meanwhile) leaves its old sockets bound,
            // and peers dialing it would be reset forever.
            let node = self.members[*member].node.id();
            self.handle.kill(node);
            self.handle.restart(node);
        }
        format!("heal (restarted {:?})", indexes(&restart))
    }
}

fn indexes(members: &[usize]) -> Vec<usize> {
    members.iter().map(|member| member + 1).collect()
}

/// Flips a byte in the middle of the newest snapshot file of a stopped member, if it has an
/// older snapshot (or none is needed) whose following entries its log still holds; says
/// what it did. Opening the log here repairs a torn tail exactly as the member's start would.
fn damage_newest_snapshot(disk: &cairn::io::MemoryDisk, random: &mut impl Rng) -> String {
    use cairn::io::Disk;
    use cairn::storage::snapshot::SnapshotStore;
    use cairn::storage::wal::Wal;
    let data_dir = cairn::storage::DataDir::new("/data");
    let shared: std::sync::Arc<dyn Disk> = std::sync::Arc::new(disk.clone());
    let Ok(snapshots) = SnapshotStore::open(shared.clone(), &data_dir.snapshots()) else {
        return "no snapshot directory to damage".to_string();
    };
    let newest = snapshots.newest_first().unwrap_or_default();
    let Some((path, _)) = newest.first() else {
        return "no snapshot to damage yet".to_string();
    };
    // As the member will see its log: purged and truncated entries gone.
    let first_logged =
        Wal::open(shared, &data_dir.wal(), u64::MAX)
            .ok()
            .and_then(|(_, records)| {
                cairn::raft::inspect::first_log_index(records)
                    .ok()
                    .flatten()
            });
    let covered = match (newest.get(1).map(|(_, index)| *index), first_logged) {
        (_, None) => false,
        (Some(older), Some(first)) => first <= older + 1,
        (None, Some(first)) => first == 0,
    };
    if !covered {
        return "snapshot damage skipped: the log no longer covers the older snapshot".to_string();
    }
    let Ok(mut bytes) = disk.read(path) else {
        return "snapshot damage skipped: unreadable".to_string();
    };
    if bytes.is_empty() {
        return "snapshot damage skipped: empty file".to_string();
    }
    let offset = random.gen_range(bytes.len() / 4..=bytes.len() * 3 / 4);
    bytes[offset] ^= 0x5a;
    if disk.write_synced(path, &bytes).is_err() {
        return "snapshot damage skipped: unwritable".to_string();
    }
    format!("snapshot {} damaged at offset {offset}", path.display())
}
