//! Auto-compaction (`--auto-compaction-mode`/`--auto-compaction-retention`), run by the
//! leader as replicated compact commands, as etcd's compactor does.

use crate::apply::Command;
use crate::base::Revision;
use crate::io::clock;
use crate::raft::NodeError;
use crate::raft::RaftNode;
use std::collections::VecDeque;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompactionMode {
    Disabled,
    /// Keep this much history (by time).
    Periodic(Duration),
    /// Keep this many revisions.
    Revision(i64),
}

/// How often revision mode compacts (etcd: every 5 minutes).
const REVISION_MODE_INTERVAL: Duration = Duration::from_secs(300);
/// Revision samples periodic mode keeps: one per tenth of the retention, plus the newest.
const SAMPLES_MAX: usize = 11;

pub async fn run(node: RaftNode, mode: CompactionMode) {
    let (interval, retention) = match mode {
        CompactionMode::Disabled => return,
        CompactionMode::Periodic(retention) => (
            (retention / 10).clamp(Duration::from_secs(1), Duration::from_secs(3600)),
            retention,
        ),
        CompactionMode::Revision(_) => (REVISION_MODE_INTERVAL, Duration::ZERO),
    };
    let mut samples: VecDeque<(clock::Instant, Revision)> =
        VecDeque::with_capacity(SAMPLES_MAX + 1);
    loop {
        clock::sleep(interval).await;
        let view = node.view();
        let store = view.machine.store();
        let now = clock::now();
        let target = match mode {
            CompactionMode::Revision(keep) => store.current_revision() - keep,
            CompactionMode::Periodic(_) => {
                samples.push_back((now, store.current_revision()));
                if samples.len() > SAMPLES_MAX {
                    samples.pop_front();
                }
                // The newest revision that is at least `retention` old.
                samples
                    .iter()
                    .rev()
                    .find(|(taken, _)| now.duration_since(*taken) >= retention)
                    .map_or(0, |(_, revision)| *revision)
            }
            CompactionMode::Disabled => unreachable!(),
        };
        if target <= store.compact_revision() || !node.status().is_leader {
            continue;
        }
        match node.propose(Command::Compact { revision: target }).await {
            Ok(_) => tracing::info!(revision = target, "auto-compacted"),
            Err(NodeError::Stopped) => return,
            Err(error) => tracing::warn!(revision = target, %error, "auto-compaction failed"),
        }
    }
}
