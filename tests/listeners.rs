//! Listeners a supervisor can trust: a port that cannot be bound fails the start instead of
//! leaving a process that looks alive, and no accept error (here: out of file descriptors)
//! stops a listener; each is logged.
#![cfg(not(madsim))]

mod common;

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn cairn(data_dir: &std::path::Path, client_port: u16, peer_port: u16) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cairn"));
    command
        .arg("--data-dir")
        .arg(data_dir)
        .arg(format!(
            "--listen-client-urls=http://127.0.0.1:{client_port}"
        ))
        .arg(format!("--listen-peer-urls=http://127.0.0.1:{peer_port}"))
        .arg(format!(
            "--initial-advertise-peer-urls=http://127.0.0.1:{peer_port}"
        ))
        .stdout(Stdio::null());
    command
}

/// Waits for `child` to exit, killing it (and failing) after `limit`.
fn exit_within(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("cairn kept running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_peer_port_in_use_fails_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let peer_port = taken.local_addr().unwrap().port();
    let mut child = cairn(&dir.path().join("data"), common::free_port(), peer_port)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = exit_within(&mut child, Duration::from_secs(20));
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(!status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("listening for peers on 127.0.0.1:{peer_port}")),
        "the error names the listener and its address: {stderr}"
    );
}

#[test]
fn running_out_of_file_descriptors_stops_no_listener() {
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("cairn.log");
    let (client_port, peer_port) = (common::free_port(), common::free_port());
    let command = cairn(&dir.path().join("data"), client_port, peer_port);
    // A member needs 14 descriptors idle; 24 leave room for a few connections only.
    let program = command.get_program().to_owned();
    let arguments: Vec<_> = command
        .get_args()
        .map(|argument| argument.to_owned())
        .collect();
    let mut limited = Command::new("sh");
    limited
        .arg("-c")
        .arg("ulimit -n 24 && exec \"$0\" \"$@\"")
        .arg(program)
        .args(arguments)
        .env("TOKIO_WORKER_THREADS", "2")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log_path).unwrap());
    let _server = Killed(limited.spawn().unwrap());
    let endpoint = format!("127.0.0.1:{client_port}");
    let healthy = |limit: Duration| {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            let output = common::etcdctl(&endpoint, &["put", "k", "v"], None);
            if output.status.success() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        false
    };
    assert!(healthy(Duration::from_secs(20)), "cairn did not start");
    // More connections than descriptors left: the kernel queues them, accept fails.
    let held: Vec<TcpStream> = (0..40)
        .filter_map(|_| TcpStream::connect(&endpoint).ok())
        .collect();
    let deadline = Instant::now() + Duration::from_secs(10);
    let logged = loop {
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        if log.contains("accepting a connection failed") || Instant::now() > deadline {
            break log;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        logged.contains("accepting a connection failed"),
        "the failed accepts are logged: {logged}"
    );
    drop(held);
    assert!(
        healthy(Duration::from_secs(20)),
        "the client listener accepts again once descriptors are free"
    );
}
