//! Multi-member clusters of the real binary on loopback, peer traffic through `Proxy`.

use super::proxy::{member_ip, Proxy};
use super::{etcdctl, free_port};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub struct ClusterMember {
    pub index: usize,
    pub name: String,
    pub client_port: u16,
    /// The port the member listens on; peers reach it through the proxy port.
    pub peer_port: u16,
    pub proxy_port: u16,
    pub data_dir: PathBuf,
    pub log: PathBuf,
    child: Option<Child>,
    args: Vec<String>,
}

impl ClusterMember {
    pub fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.client_port)
    }

    pub fn peer_url(&self) -> String {
        format!("http://{}:{}", member_ip(self.index), self.proxy_port)
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_cairn"))
            .args(&self.args)
            .env("TOKIO_WORKER_THREADS", super::WORKER_THREADS)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start cairn");
        self.child = Some(child);
    }

    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Restarts with `extra` flags for this start only.
    pub fn restart_with(&mut self, extra: &[&str]) {
        self.kill();
        let kept = self.args.clone();
        self.args.extend(extra.iter().map(|flag| flag.to_string()));
        self.spawn();
        self.args = kept;
    }

    pub fn etcdctl(&self, args: &[&str]) -> Output {
        etcdctl(&self.endpoint(), args, None)
    }

    pub fn ok(&self, args: &[&str]) -> String {
        let output = self.etcdctl(args);
        assert!(
            output.status.success(),
            "member {}: etcdctl {args:?} failed: {}",
            self.index,
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    /// The numeric fields of `endpoint status -w json` (header and member fields alike, by
    /// name); empty if the member did not answer.
    pub fn status(&self) -> BTreeMap<String, u64> {
        let output = self.etcdctl(&["endpoint", "status", "-w", "json", "--command-timeout=1s"]);
        if !output.status.success() {
            return BTreeMap::new();
        }
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        text.split(['{', ',', '}'])
            .filter_map(|pair| {
                let (name, value) = pair.split_once(':')?;
                Some((
                    name.trim().trim_matches('"').to_string(),
                    value.trim().parse().ok()?,
                ))
            })
            .collect()
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for ClusterMember {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Lines of each member's log a failed test prints.
const LOG_TAIL_LINES: usize = 60;

pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub members: Vec<ClusterMember>,
    pub proxy: Proxy,
    token: String,
}

impl Cluster {
    /// Starts `size` members and waits until all are healthy.
    pub fn start(size: usize, extra_args: &[&str]) -> Cluster {
        let mut cluster = Cluster {
            dir: tempfile::tempdir().unwrap(),
            members: Vec::new(),
            proxy: Proxy::default(),
            token: "cairn-test".to_string(),
        };
        for index in 1..=size {
            cluster.prepare_member(index);
        }
        let initial = cluster
            .members
            .iter()
            .map(|member| format!("{}={}", member.name, member.peer_url()))
            .collect::<Vec<_>>()
            .join(",");
        for member in cluster.members.iter_mut() {
            member.args = member_args(member, &initial, "new", &cluster.token, extra_args);
            member.spawn();
        }
        for index in 0..size {
            cluster.wait_healthy(index);
        }
        cluster
    }

    fn prepare_member(&mut self, index: usize) -> usize {
        let member = ClusterMember {
            index,
            name: format!("m{index}"),
            client_port: free_port(),
            peer_port: free_port(),
            proxy_port: free_port(),
            data_dir: self.dir.path().join(format!("m{index}")),
            log: self.dir.path().join(format!("m{index}.log")),
            child: None,
            args: Vec::new(),
        };
        let ip = member_ip(index);
        let listen: SocketAddr = format!("{ip}:{}", member.proxy_port).parse().unwrap();
        let target: SocketAddr = format!("{ip}:{}", member.peer_port).parse().unwrap();
        self.proxy.forward(listen, target, index);
        self.members.push(member);
        self.members.len() - 1
    }

    /// Prepares member `index` to join with `--initial-cluster-state=existing`; returns its
    /// position. The caller runs `member add` first, then `start_joining`.
    pub fn prepare_joining(&mut self, index: usize) -> usize {
        self.prepare_member(index)
    }

    pub fn start_joining(&mut self, position: usize, extra_args: &[&str]) {
        let initial = self
            .members
            .iter()
            .filter(|member| member.is_running() || member.index == self.members[position].index)
            .map(|member| format!("{}={}", member.name, member.peer_url()))
            .collect::<Vec<_>>()
            .join(",");
        let token = self.token.clone();
        let member = &mut self.members[position];
        member.args = member_args(member, &initial, "existing", &token, extra_args);
        member.spawn();
    }

    pub fn wait_healthy(&self, position: usize) {
        self.wait_healthy_as(position, &[]);
    }

    /// `wait_healthy` with etcdctl flags (`--user=...` once auth is on: etcdctl's health
    /// check reads a key, which an anonymous client may not).
    pub fn wait_healthy_as(&self, position: usize, flags: &[&str]) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut args = flags.to_vec();
        args.extend(["endpoint", "health", "--command-timeout=2s"]);
        while Instant::now() < deadline {
            if self.members[position].etcdctl(&args).status.success() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "member {} not healthy in 30 s; log:\n{}",
            self.members[position].index,
            self.members[position].log_text()
        );
    }

    /// Position of the member that reports itself leader (waits up to 20 s for one).
    pub fn leader(&self) -> usize {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            for (position, member) in self
                .members
                .iter()
                .enumerate()
                .filter(|(_, member)| member.is_running())
            {
                let status = member.status();
                if status.contains_key("member_id")
                    && status.get("member_id") == status.get("leader")
                {
                    return position;
                }
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!("no leader within 20 s");
    }

    /// Runs etcdctl on member `position` until it succeeds (clients retry through leader
    /// elections the same way); fails the test after `patience`.
    pub fn eventually(&self, position: usize, args: &[&str], patience: Duration) -> String {
        let deadline = Instant::now() + patience;
        loop {
            let output = self.members[position].etcdctl(args);
            if output.status.success() {
                return String::from_utf8(output.stdout).unwrap();
            }
            assert!(
                Instant::now() < deadline,
                "member {}: etcdctl {args:?} kept failing: {}",
                self.members[position].index,
                String::from_utf8_lossy(&output.stderr)
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Waits until every running member lists every member as started (names published).
    pub fn wait_all_started(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let listed = self
                .members
                .iter()
                .filter(|member| member.is_running())
                .all(|member| {
                    let list = member.etcdctl(&["member", "list"]);
                    let text = String::from_utf8_lossy(&list.stdout);
                    list.status.success()
                        && !text.contains("unstarted")
                        && text.lines().count()
                            == self
                                .members
                                .iter()
                                .filter(|member| member.is_running())
                                .count()
                });
            if listed {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "members did not all publish their names within 20 s"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Every running member's HashKV at its current revision, as etcdctl prints it.
    pub fn hashes(&self) -> Vec<String> {
        self.members
            .iter()
            .filter(|member| member.is_running())
            .map(|member| {
                let json = member.ok(&["endpoint", "hashkv", "-w", "json"]);
                json.split("\"hash\":")
                    .nth(1)
                    .and_then(|rest| rest.split(',').next())
                    .unwrap_or_default()
                    .to_string()
            })
            .collect()
    }

    pub fn endpoints(&self) -> Vec<String> {
        self.members
            .iter()
            .filter(|member| member.is_running())
            .map(ClusterMember::endpoint)
            .collect()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for member in self.members.iter_mut() {
            member.kill();
        }
        if std::thread::panicking() {
            // A failed test shows what the members logged: CI keeps nothing else of them.
            for member in &self.members {
                let text = member.log_text();
                let tail: Vec<&str> = text.lines().rev().take(LOG_TAIL_LINES).collect();
                eprintln!(
                    "--- member {} log, last {} lines ---",
                    member.index,
                    tail.len()
                );
                for line in tail.into_iter().rev() {
                    eprintln!("{line}");
                }
            }
        }
        self.proxy.stop();
    }
}

fn member_args(
    member: &ClusterMember,
    initial_cluster: &str,
    state: &str,
    token: &str,
    extra_args: &[&str],
) -> Vec<String> {
    let mut args = vec![
        format!("--name={}", member.name),
        format!("--data-dir={}", member.data_dir.display()),
        format!(
            "--listen-client-urls=http://127.0.0.1:{}",
            member.client_port
        ),
        format!(
            "--advertise-client-urls=http://127.0.0.1:{}",
            member.client_port
        ),
        format!(
            "--listen-peer-urls=http://{}:{}",
            member_ip(member.index),
            member.peer_port
        ),
        format!("--initial-advertise-peer-urls={}", member.peer_url()),
        format!("--initial-cluster={initial_cluster}"),
        format!("--initial-cluster-state={state}"),
        format!("--initial-cluster-token={token}"),
    ];
    args.extend(extra_args.iter().map(|arg| arg.to_string()));
    args
}
