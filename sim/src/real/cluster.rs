//! Real member processes on loopback: started with etcd's flags (which Cairn shares), killed
//! with SIGKILL, paused with SIGSTOP, restarted on the same data. Each member's data may sit
//! on a small ext4 file system of its own (a loop device, as root) so the harness can fill
//! it; every peer link goes through the proxy in `proxy.rs`.

use super::proxy::SharedLinks;
use crate::boundaries::Boundaries;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::process::{Child, Command};

/// What server runs the members.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerKind {
    Cairn,
    Etcd,
}

#[derive(Debug, Clone)]
pub struct ClusterOptions {
    pub server_binary: PathBuf,
    pub kind: ServerKind,
    /// Member `i` (0-based) uses ports `base_port + 10 i` (client), `+ 1` (peer listener) and
    /// `+ 2` (its proxy, the advertised peer URL).
    pub base_port: u16,
    pub work_dir: PathBuf,
    /// Size of each member's own file system for the disk-full fault; 0 = no file systems
    /// (data on the work directory's disk, and no disk-full fault).
    pub disk_bytes: u64,
    pub heartbeat_interval_ms: u64,
    pub election_timeout_ms: u64,
    pub snapshot_count: u64,
    /// Cairn only: hidden tuning flags the simulator also draws.
    pub lease_checkpoint_interval_ms: u64,
    pub proposal_batch_bytes: usize,
    pub boundaries: Boundaries,
}

pub struct RealMember {
    pub index: usize,
    child: Option<Child>,
    pub paused: bool,
    /// Where this member's data directory lives (a mount point when it has its own disk).
    disk_dir: PathBuf,
    mounted: bool,
}

pub struct RealCluster {
    pub options: ClusterOptions,
    pub members: Vec<RealMember>,
    links: SharedLinks,
    token: String,
}

impl ClusterOptions {
    pub fn client_port(&self, member: usize) -> u16 {
        self.base_port + 10 * member as u16
    }

    pub fn peer_port(&self, member: usize) -> u16 {
        self.client_port(member) + 1
    }

    pub fn proxy_port(&self, member: usize) -> u16 {
        self.client_port(member) + 2
    }

    pub fn client_url(&self, member: usize) -> String {
        format!("http://127.0.0.1:{}", self.client_port(member))
    }
}

impl RealCluster {
    /// Prepares `members` data directories (and file systems) and starts every member.
    pub fn start(
        options: ClusterOptions,
        members: usize,
        links: SharedLinks,
        seed: u64,
    ) -> Result<RealCluster, String> {
        std::fs::create_dir_all(&options.work_dir)
            .map_err(|error| format!("{}: {error}", options.work_dir.display()))?;
        let mut cluster = RealCluster {
            members: Vec::new(),
            links,
            token: format!("cairn-real-{seed}"),
            options,
        };
        for index in 0..members {
            let disk_dir = cluster
                .options
                .work_dir
                .join(format!("member-{index}.disk"));
            std::fs::create_dir_all(&disk_dir)
                .map_err(|error| format!("{}: {error}", disk_dir.display()))?;
            let mounted = cluster.options.disk_bytes > 0;
            if mounted {
                mount_own_disk(
                    &cluster.options.work_dir,
                    index,
                    &disk_dir,
                    cluster.options.disk_bytes,
                )?;
            }
            cluster.members.push(RealMember {
                index,
                child: None,
                paused: false,
                disk_dir,
                mounted,
            });
        }
        for index in 0..members {
            cluster.spawn(index)?;
        }
        Ok(cluster)
    }

    pub fn endpoints(&self) -> Vec<String> {
        (0..self.members.len())
            .map(|member| self.options.client_url(member))
            .collect()
    }

    fn arguments(&self, index: usize) -> Vec<String> {
        let options = &self.options;
        let client_url = options.client_url(index);
        let peer_listen = format!("http://127.0.0.1:{}", options.peer_port(index));
        let peer_advertised = format!("http://127.0.0.1:{}", options.proxy_port(index));
        let initial_cluster = (0..self.members.len())
            .map(|member| {
                format!(
                    "member-{member}=http://127.0.0.1:{}",
                    options.proxy_port(member)
                )
            })
            .collect::<Vec<_>>()
            .join(",");
        let mut arguments = vec![
            format!("--name=member-{index}"),
            format!("--data-dir={}", self.data_dir(index).display()),
            format!("--listen-client-urls={client_url}"),
            format!("--advertise-client-urls={client_url}"),
            format!("--listen-peer-urls={peer_listen}"),
            format!("--initial-advertise-peer-urls={peer_advertised}"),
            format!("--initial-cluster={initial_cluster}"),
            "--initial-cluster-state=new".to_string(),
            format!("--initial-cluster-token={}", self.token),
            format!("--heartbeat-interval={}", options.heartbeat_interval_ms),
            format!("--election-timeout={}", options.election_timeout_ms),
            format!("--snapshot-count={}", options.snapshot_count),
        ];
        if options.kind == ServerKind::Cairn {
            // As in simulation: the cheapest bcrypt keeps Authenticate from costing real CPU.
            arguments.push("--bcrypt-cost=4".to_string());
            arguments.push(format!(
                "--lease-checkpoint-interval={}ms",
                options.lease_checkpoint_interval_ms
            ));
            arguments.push(format!(
                "--proposal-batch-bytes={}",
                options.proposal_batch_bytes
            ));
            arguments.extend(options.boundaries.flags());
        }
        arguments
    }

    fn data_dir(&self, index: usize) -> PathBuf {
        self.members[index].disk_dir.join("data")
    }

    pub fn log_path(&self, index: usize) -> PathBuf {
        self.options.work_dir.join(format!("member-{index}.log"))
    }

    /// Starts member `index` (again) on its data directory; its output goes to its log.
    pub fn spawn(&mut self, index: usize) -> Result<(), String> {
        let log_path = self.log_path(index);
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|error| format!("{}: {error}", log_path.display()))?;
        let _ = writeln!(log, "=== harness: starting member-{index}");
        let stderr = log.try_clone().map_err(|error| error.to_string())?;
        let mut command = Command::new(&self.options.server_binary);
        if self.options.kind == ServerKind::Cairn {
            // As many tokio workers as an 8-core host gets, whatever this machine has, so
            // tasks move between threads as in production (a per-thread clock origin broke
            // leases there and nowhere else).
            command.env("TOKIO_WORKER_THREADS", "8");
        }
        let child = command
            .args(self.arguments(index))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(stderr)
            .kill_on_drop(true)
            .spawn()
            .map_err(|error| format!("{}: {error}", self.options.server_binary.display()))?;
        let pid = child.id().unwrap_or(0);
        self.links.lock().unwrap().set_pid(index, pid);
        let member = &mut self.members[index];
        member.child = Some(child);
        member.paused = false;
        Ok(())
    }

    /// kill -9; returns false when the member was not running.
    pub async fn kill(&mut self, index: usize) -> bool {
        self.resume(index);
        let Some(mut child) = self.members[index].child.take() else {
            return false;
        };
        self.links.lock().unwrap().set_pid(index, 0);
        let _ = child.start_kill();
        let _ = tokio::time::timeout(Duration::from_secs(10), child.wait()).await;
        true
    }

    pub fn pause(&mut self, index: usize) {
        if let Some(pid) = self.members[index].child.as_ref().and_then(Child::id) {
            signal(pid, "STOP");
            self.members[index].paused = true;
        }
    }

    pub fn resume(&mut self, index: usize) {
        if std::mem::take(&mut self.members[index].paused) {
            if let Some(pid) = self.members[index].child.as_ref().and_then(Child::id) {
                signal(pid, "CONT");
            }
        }
    }

    /// Whether member `index` is down: killed, or exited by itself. An exit the harness did
    /// not cause is returned as its status, once.
    pub fn reap(&mut self, index: usize) -> Option<String> {
        let child = self.members[index].child.as_mut()?;
        match child.try_wait() {
            Ok(Some(status)) => {
                self.members[index].child = None;
                self.links.lock().unwrap().set_pid(index, 0);
                Some(status.to_string())
            }
            _ => None,
        }
    }

    /// Fills member `index`'s file system (leaving `room_bytes`); returns the bytes written.
    pub async fn fill_disk(&self, index: usize, room_bytes: u64) -> Result<u64, String> {
        let member = &self.members[index];
        if !member.mounted {
            return Err(
                "members have no file system of their own (run as root with --disk-mib)".into(),
            );
        }
        let ballast = member.disk_dir.join("ballast");
        tokio::task::spawn_blocking(move || fill(&ballast, room_bytes))
            .await
            .map_err(|error| error.to_string())?
    }

    pub fn free_disk(&self, index: usize) {
        let _ = std::fs::remove_file(self.members[index].disk_dir.join("ballast"));
    }

    /// Stops every member and unmounts their file systems; keeps logs and data.
    pub async fn shut_down(&mut self) {
        for index in 0..self.members.len() {
            self.kill(index).await;
        }
        for member in &self.members {
            if member.mounted {
                let _ = std::process::Command::new("umount")
                    .arg(&member.disk_dir)
                    .status();
            }
        }
    }
}

fn signal(pid: u32, name: &str) {
    let _ = std::process::Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status();
}

/// A file system of `bytes` for one member: an ext4 image on a loop device, so fsync is real
/// and the disk can fill up without touching the machine's own.
fn mount_own_disk(
    work_dir: &Path,
    index: usize,
    mount_point: &Path,
    bytes: u64,
) -> Result<(), String> {
    let image = work_dir.join(format!("member-{index}.img"));
    let file =
        std::fs::File::create(&image).map_err(|error| format!("{}: {error}", image.display()))?;
    file.set_len(bytes).map_err(|error| error.to_string())?;
    let run = |program: &str, arguments: &[&std::ffi::OsStr]| -> Result<(), String> {
        let output = std::process::Command::new(program)
            .args(arguments)
            .output()
            .map_err(|error| format!("{program}: {error}"))?;
        if output.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{program} failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            ))
        }
    };
    run(
        "mkfs.ext4",
        &["-q".as_ref(), "-F".as_ref(), image.as_os_str()],
    )?;
    run(
        "mount",
        &[
            "-o".as_ref(),
            "loop".as_ref(),
            image.as_os_str(),
            mount_point.as_os_str(),
        ],
    )
}

/// Whether this machine lets the harness give members file systems of their own.
pub fn can_mount_disks() -> bool {
    let probe = std::env::temp_dir().join(format!("cairn-real-probe-{}", std::process::id()));
    let mount_point = probe.join("mnt");
    let ok = std::fs::create_dir_all(&mount_point).is_ok()
        && mount_own_disk(&probe, 0, &mount_point, 8 << 20).is_ok();
    if ok {
        let _ = std::process::Command::new("umount")
            .arg(&mount_point)
            .status();
    }
    let _ = std::fs::remove_dir_all(&probe);
    ok
}

fn fill(path: &Path, room_bytes: u64) -> Result<u64, String> {
    let mut file =
        std::fs::File::create(path).map_err(|error| format!("{}: {error}", path.display()))?;
    let available = available_bytes(path.parent().unwrap_or(path));
    let target = available.saturating_sub(room_bytes);
    let chunk = vec![0u8; 1 << 20];
    let mut written = 0u64;
    while written < target {
        let length = chunk.len().min((target - written) as usize);
        match file.write(&chunk[..length]) {
            Ok(0) | Err(_) => break,
            Ok(count) => written += count as u64,
        }
    }
    let _ = file.sync_all();
    Ok(written)
}

/// Free bytes of the file system holding `dir` (from `df`, to stay free of libc bindings).
fn available_bytes(dir: &Path) -> u64 {
    std::process::Command::new("df")
        .args(["--output=avail", "-B1"])
        .arg(dir)
        .output()
        .ok()
        .and_then(|output| {
            String::from_utf8_lossy(&output.stdout)
                .lines()
                .nth(1)
                .and_then(|line| line.trim().parse().ok())
        })
        .unwrap_or(0)
}
