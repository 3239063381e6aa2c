//! A member whose disk fills up (a real ext4 file system of its own on a loop device, filled
//! by a ballast file): it raises NOSPACE for itself, refuses writes with etcd's error, keeps
//! serving reads, and once the ballast is gone writes again by itself, without a restart.
//! Nothing acknowledged is lost, across a kill -9 afterwards too. Needs root (mount); the
//! test says so and passes without running where the machine forbids loop mounts.
#![cfg(not(madsim))]

mod common;

use common::Server;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const NO_SPACE: &str = "etcdserver: mvcc: database space exceeded";

/// A small ext4 file system mounted at `<dir>/mnt`, unmounted when dropped.
struct OwnDisk {
    mount_point: PathBuf,
}

impl OwnDisk {
    fn mount(dir: &Path, bytes: u64) -> Result<OwnDisk, String> {
        let image = dir.join("disk.img");
        let mount_point = dir.join("mnt");
        std::fs::create_dir_all(&mount_point).map_err(|error| error.to_string())?;
        std::fs::File::create(&image)
            .and_then(|file| file.set_len(bytes))
            .map_err(|error| error.to_string())?;
        run("mkfs.ext4", &["-q", "-F", path_text(&image)])?;
        run(
            "mount",
            &["-o", "loop", path_text(&image), path_text(&mount_point)],
        )?;
        Ok(OwnDisk { mount_point })
    }
}

impl Drop for OwnDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(&self.mount_point)
            .status();
    }
}

fn path_text(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn run(program: &str, arguments: &[&str]) -> Result<(), String> {
    let output = Command::new(program)
        .args(arguments)
        .output()
        .map_err(|error| format!("{program}: {error}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{program}: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// Writes a ballast file until the file system refuses more; its size.
fn fill(path: &Path) -> u64 {
    let mut file = std::fs::File::create(path).unwrap();
    let mut written = 0;
    for chunk_bytes in [1 << 20, 64 << 10, 4 << 10, 512, 1] {
        let chunk = vec![0xa5u8; chunk_bytes];
        while file.write_all(&chunk).is_ok() {
            written += chunk_bytes as u64;
        }
    }
    let _ = file.sync_all();
    written
}

#[test]
fn a_full_disk_raises_nospace_keeps_reads_and_writing_resumes_when_space_returns() {
    let dir = tempfile::tempdir().unwrap();
    let disk = match OwnDisk::mount(dir.path(), 48 << 20) {
        Ok(disk) => disk,
        Err(error) => {
            eprintln!("SKIPPED: this machine cannot mount a loop file system ({error})");
            return;
        }
    };
    let data_dir = disk.mount_point.join("data.cairn");
    // The log lives off the full disk, so what the member says about it can be read.
    let log = dir.path().join("member.log");
    let mut server = Server::start_logging_to(&data_dir, &log, &[], &[]);
    let mut acknowledged = Vec::new();
    for index in 0..20 {
        let key = format!("before{index:02}");
        server.ok(&["put", &key, &format!("value-{index}")]);
        acknowledged.push(key);
    }

    let ballast = disk.mount_point.join("ballast");
    let ballast_bytes = fill(&ballast);
    assert!(ballast_bytes > 0);
    // The log's last block may still hold a few records: write until the disk refuses one.
    let value = "v".repeat(2048);
    let mut refused = None;
    for index in 0..200 {
        let key = format!("during{index:03}");
        let output = server.etcdctl(&["put", &key, &value, "--command-timeout=3s"]);
        if output.status.success() {
            acknowledged.push(key);
        } else {
            refused = Some(String::from_utf8_lossy(&output.stderr).to_string());
            break;
        }
    }
    let refused = refused.expect("a full disk refuses a write");
    // The write that found the disk full went through on the released reserve; the next
    // one that adds data is refused with etcd's error at once.
    assert!(refused.contains(NO_SPACE), "{refused}");
    // From then on the member answers with etcd's NOSPACE at once, lists the alarm for
    // itself, and still serves reads of everything acknowledged.
    let stderr = server.fails(&["put", "refused", "x", "--command-timeout=3s"]);
    assert!(stderr.contains(NO_SPACE), "{stderr}");
    let alarms = server.ok(&["alarm", "list"]);
    assert!(alarms.contains("alarm:NOSPACE"), "{alarms}");
    let status = server.ok(&["endpoint", "status", "-w", "json"]);
    assert!(
        status.contains("NOSPACE"),
        "status lists the alarm: {status}"
    );
    for consistency in ["l", "s"] {
        let keys = server.ok(&[
            "get",
            "--prefix",
            "",
            "--keys-only",
            &format!("--consistency={consistency}"),
        ]);
        for key in &acknowledged {
            assert!(
                keys.contains(key.as_str()),
                "{key} is readable ({consistency})"
            );
        }
    }
    assert!(server.log_text().contains("the disk is full"));

    // Room again: writes resume by themselves, and the alarm clears.
    std::fs::remove_file(&ballast).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if server
            .etcdctl(&["put", "after", "space", "--command-timeout=2s"])
            .status
            .success()
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "writes resume once the disk has room"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    acknowledged.push("after".to_string());
    assert!(server.log_text().contains("the disk has room again"));
    let alarms = server.ok(&["alarm", "list"]);
    assert!(!alarms.contains("NOSPACE"), "the alarm cleared: {alarms}");

    server.kill();
    server.restart();
    let keys = server.ok(&["get", "--prefix", "", "--keys-only"]);
    for key in &acknowledged {
        assert!(keys.contains(key.as_str()), "{key} survived kill -9");
    }
    assert_eq!(
        server.ok(&["get", "before07", "--print-value-only"]).trim(),
        "value-7"
    );
    drop(server);
}
