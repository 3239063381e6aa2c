//! Helpers for tests that start the real `cairn` binary on loopback and drive it with the
//! real `etcdctl` or a gRPC client. Every process started is killed when its handle drops.
#![allow(dead_code)]

pub mod cluster;
#[cfg(not(madsim))]
pub mod pki;
pub mod proxy;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A free loopback port for a server a test starts. Taken below Linux's ephemeral range
/// (32768 and up): a port the kernel handed out as free could be given next to one of the
/// many outgoing connections the tests make (etcdctl, peers) before the server binds it.
/// Each test process counts through its own stretch, so parallel tests never share one.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const FIRST: u32 = 10_000;
    const COUNT: u32 = 22_000;
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let _ = NEXT.compare_exchange(
        u32::MAX,
        std::process::id() % 200 * 100,
        Ordering::Relaxed,
        Ordering::Relaxed,
    );
    loop {
        let port = (FIRST + NEXT.fetch_add(1, Ordering::Relaxed) % COUNT) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// Servers run with as many tokio workers as an 8-core host gets by default, so tasks hop
/// between threads as they do in production (a per-thread clock once broke leases there).
pub const WORKER_THREADS: &str = "8";

pub struct Server {
    child: Option<Child>,
    pub endpoint: String,
    pub data_dir: PathBuf,
    pub log: PathBuf,
    extra_args: Vec<String>,
    extra_env: Vec<(String, String)>,
}

impl Server {
    /// Starts cairn with its data in `data_dir` and waits until it answers.
    pub fn start(data_dir: &Path, extra_args: &[&str]) -> Server {
        Server::start_with_env(data_dir, extra_args, &[])
    }

    /// As `start`, with extra environment variables for the server (e.g. `CAIRN_LOG`).
    pub fn start_with_env(data_dir: &Path, extra_args: &[&str], env: &[(&str, &str)]) -> Server {
        Server::start_logging_to(data_dir, &data_dir.with_extension("log"), extra_args, env)
    }

    /// As `start_with_env`, with the server's log at `log` (by default beside the data).
    pub fn start_logging_to(
        data_dir: &Path,
        log: &Path,
        extra_args: &[&str],
        env: &[(&str, &str)],
    ) -> Server {
        let port = free_port();
        let mut server = Server {
            child: None,
            endpoint: format!("127.0.0.1:{port}"),
            data_dir: data_dir.to_path_buf(),
            log: log.to_path_buf(),
            extra_args: extra_args.iter().map(|arg| arg.to_string()).collect(),
            extra_env: env
                .iter()
                .map(|(name, value)| (name.to_string(), value.to_string()))
                .collect(),
        };
        server.spawn();
        server
    }

    fn spawn(&mut self) {
        let peer_port = free_port();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_cairn"))
            .arg("--data-dir")
            .arg(&self.data_dir)
            .arg(format!("--listen-client-urls=http://{}", self.endpoint))
            .arg(format!("--listen-peer-urls=http://127.0.0.1:{peer_port}"))
            .arg(format!(
                "--initial-advertise-peer-urls=http://127.0.0.1:{peer_port}"
            ))
            .args(&self.extra_args)
            .env("TOKIO_WORKER_THREADS", WORKER_THREADS)
            .envs(self.extra_env.iter().map(|(name, value)| (name, value)))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start cairn");
        self.child = Some(child);
        self.wait_ready();
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "cairn exited early with {status}; log:\n{}",
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            let output = self.etcdctl(&["endpoint", "health", "--command-timeout=1s"]);
            // With auth on, an anonymous health read is refused after it went through raft:
            // the member is up (etcd's own health check counts a refusal as healthy too).
            let stderr = String::from_utf8_lossy(&output.stderr);
            if output.status.success() || stderr.contains("etcdserver: user name is empty") {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "cairn did not become healthy; log:\n{}",
            std::fs::read_to_string(&self.log).unwrap_or_default()
        );
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL: no shutdown, no flush.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the binary again on the same port and data directory (peer port is new, which a
    /// restarted member must not care about).
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    pub fn etcdctl(&self, args: &[&str]) -> Output {
        etcdctl(&self.endpoint, args, None)
    }

    /// A gRPC channel to this server.
    pub async fn channel(&self) -> tonic::transport::Channel {
        grpc_channel(&self.endpoint).await
    }

    pub fn etcdctl_input(&self, args: &[&str], input: &str) -> Output {
        etcdctl(&self.endpoint, args, Some(input))
    }

    /// Runs etcdctl and returns its stdout, failing the test if it fails.
    pub fn ok(&self, args: &[&str]) -> String {
        let output = self.etcdctl(args);
        assert!(
            output.status.success(),
            "etcdctl {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    /// Runs etcdctl expecting failure; returns its stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let output = self.etcdctl(args);
        assert!(
            !output.status.success(),
            "etcdctl {args:?} should fail, printed {}",
            String::from_utf8_lossy(&output.stdout)
        );
        String::from_utf8(output.stderr).unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A connected gRPC channel to `endpoint` (host:port).
pub async fn grpc_channel(endpoint: &str) -> tonic::transport::Channel {
    tonic::transport::Channel::from_shared(format!("http://{endpoint}"))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

/// The real etcdctl from Debian's etcd-client package (ci/test installs it when missing).
pub fn etcdctl_path() -> &'static str {
    let path = "/usr/bin/etcdctl";
    assert!(
        Path::new(path).exists(),
        "etcdctl is missing: install Debian's etcd-client package (ci/test does)"
    );
    path
}

pub fn etcdctl(endpoint: &str, args: &[&str], input: Option<&str>) -> Output {
    let mut command = Command::new(etcdctl_path());
    command
        .env("ETCDCTL_API", "3")
        .arg(format!("--endpoints={endpoint}"))
        .arg("--dial-timeout=2s")
        .args(args);
    command
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("run etcdctl");
    if let Some(input) = input {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    child.wait_with_output().unwrap()
}

/// Starts etcdctl in the background (for watch and keep-alive), stdout captured.
pub fn etcdctl_background(endpoint: &str, args: &[&str]) -> Child {
    Command::new(etcdctl_path())
        .env("ETCDCTL_API", "3")
        .arg(format!("--endpoints={endpoint}"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run etcdctl")
}

/// Reads what a background etcdctl printed, stopping it after `wait`.
pub fn stop_and_read(mut child: Child, wait: Duration) -> String {
    std::thread::sleep(wait);
    let _ = child.kill();
    let output = child.wait_with_output().unwrap();
    String::from_utf8(output.stdout).unwrap()
}

/// What curl got for one request.
#[derive(Debug)]
pub struct HttpReply {
    pub status: u16,
    /// "1.1" or "2".
    pub version: String,
    /// Header lines, names lower-cased (`content-type: text/plain; charset=utf-8`).
    pub headers: Vec<String>,
    pub body: String,
}

impl HttpReply {
    pub fn header(&self, name: &str) -> Option<&str> {
        let prefix = format!("{name}: ");
        self.headers
            .iter()
            .find_map(|line| line.strip_prefix(&prefix))
    }
}

/// One request with curl (Debian's; ci/test installs it when missing), at most 10 s.
pub fn curl(args: &[&str]) -> HttpReply {
    let dir = tempfile::tempdir().unwrap();
    let headers_path = dir.path().join("headers");
    let body_path = dir.path().join("body");
    let output = Command::new("curl")
        .args(["--silent", "--max-time", "10", "--dump-header"])
        .arg(&headers_path)
        .arg("--output")
        .arg(&body_path)
        .args(["--write-out", "%{http_code} %{http_version}"])
        .args(args)
        .output()
        .expect("run curl (install Debian's curl package)");
    let written = String::from_utf8_lossy(&output.stdout).to_string();
    let (status, version) = written.split_once(' ').unwrap_or(("0", ""));
    let headers = std::fs::read_to_string(&headers_path)
        .unwrap_or_default()
        .lines()
        .skip(1)
        .filter(|line| !line.trim().is_empty())
        .map(|line| match line.split_once(':') {
            Some((name, value)) => format!("{}: {}", name.to_lowercase(), value.trim()),
            None => line.to_string(),
        })
        .collect();
    HttpReply {
        status: status.parse().unwrap_or(0),
        version: version.to_string(),
        headers,
        body: std::fs::read_to_string(&body_path).unwrap_or_default(),
    }
}
