//! Fresh etcd and Cairn members for each sequence, on loopback, each in a directory of its
//! own, started with the same etcd flags and killed when dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Member {
    child: Child,
    pub client_port: u16,
    pub peer_port: u16,
    pub log: PathBuf,
}

impl Member {
    /// Starts `binary` (etcd or cairn) and waits until it answers; `None` with the reason.
    pub fn start(
        binary: &Path,
        dir: &Path,
        client_port: u16,
        peer_port: u16,
    ) -> Result<Member, String> {
        std::fs::create_dir_all(dir).map_err(|error| format!("{}: {error}", dir.display()))?;
        let log = dir.join("member.log");
        let log_file =
            std::fs::File::create(&log).map_err(|error| format!("{}: {error}", log.display()))?;
        let client = format!("http://127.0.0.1:{client_port}");
        let peer = format!("http://127.0.0.1:{peer_port}");
        let child = Command::new(binary)
            .arg("--name=diff")
            .arg(format!("--data-dir={}", dir.join("data").display()))
            .arg(format!("--listen-client-urls={client}"))
            .arg(format!("--advertise-client-urls={client}"))
            .arg(format!("--listen-peer-urls={peer}"))
            .arg(format!("--initial-advertise-peer-urls={peer}"))
            .arg(format!("--initial-cluster=diff={peer}"))
            .arg("--initial-cluster-token=cairn-diff")
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .map_err(|error| format!("{}: {error}", binary.display()))?;
        let mut member = Member {
            child,
            client_port,
            peer_port,
            log,
        };
        member.wait_ready()?;
        Ok(member)
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("exited with {status}; see {}", self.log.display()));
            }
            if std::net::TcpStream::connect(("127.0.0.1", self.client_port)).is_ok() {
                // Listening is not leading yet: give a one-member cluster its election.
                std::thread::sleep(Duration::from_millis(300));
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(format!(
            "not listening after 30 s; see {}",
            self.log.display()
        ))
    }

    pub fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.client_port)
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
