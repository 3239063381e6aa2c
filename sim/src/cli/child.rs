//! One seed in a child process: the only way a seed replays exactly (see
//! `simulation::run`), with its trace kept in a file and a wall-clock bound.

use super::report::RunReport;
use super::Setup;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What a child `cairn-sim run` reported, and where its trace is.
pub struct ChildRun {
    pub report: RunReport,
    pub trace_file: PathBuf,
}

/// Runs one seed in a fresh process (the only way a seed replays exactly, see
/// `simulation::run`), keeping its trace in `trace_file`; kills it after `timeout`.
pub fn run_child(
    seed: u64,
    setup: &Setup,
    trace_file: PathBuf,
    timeout: Duration,
) -> Result<ChildRun, String> {
    let executable = std::env::current_exe().map_err(|error| error.to_string())?;
    let mut command = std::process::Command::new(executable);
    command
        .arg("run")
        .arg("--seed")
        .arg(seed.to_string())
        .arg("--emit-trace")
        .arg(&trace_file);
    if let Some(path) = &setup.scenario {
        command.arg("--scenario").arg(path);
    }
    if setup.unsafe_no_fsync {
        command.arg("--unsafe-no-fsync");
    }
    if setup.serializable_recorded_as_linearizable {
        command.arg("--serializable-recorded-as-linearizable");
    }
    if let Some(name) = &setup.planted_bug {
        command.arg("--planted-bug").arg(name);
    }
    let output = run_with_timeout(command, &trace_file.with_extension("out"), timeout)
        .map_err(|error| format!("seed {seed}: {error}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let Some(report) = RunReport::parse(&stdout) else {
        return Err(format!(
            "seed {seed}: the simulation crashed: {}{}",
            stdout,
            String::from_utf8_lossy(&output.stderr)
        ));
    };
    Ok(ChildRun { report, trace_file })
}

/// Runs `command` with its output in files next to `scratch` (a pipe would fill and
/// block the child while we wait), polling until it exits or `timeout` passes.
fn run_with_timeout(
    mut command: std::process::Command,
    scratch: &Path,
    timeout: Duration,
) -> Result<std::process::Output, String> {
    let (stdout_path, stderr_path) = (
        scratch.with_extension("stdout"),
        scratch.with_extension("stderr"),
    );
    let create = |path: &Path| {
        std::fs::File::create(path).map_err(|error| format!("{}: {error}", path.display()))
    };
    command
        .stdout(create(&stdout_path)?)
        .stderr(create(&stderr_path)?);
    let mut child = command
        .spawn()
        .map_err(|error| format!("starting a simulation: {error}"))?;
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Ok(status),
            Ok(None) if started.elapsed() >= timeout => {
                let _ = child.kill();
                let _ = child.wait();
                break Err(format!(
                    "HUNG: no result after {} wall s (a task spinning without letting simulated time advance?)",
                    timeout.as_secs()
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            Err(error) => break Err(format!("waiting for a simulation: {error}")),
        }
    };
    let read = |path: &Path| std::fs::read(path).unwrap_or_default();
    let output = status.map(|status| std::process::Output {
        status,
        stdout: read(&stdout_path),
        stderr: read(&stderr_path),
    });
    let _ = std::fs::remove_file(&stdout_path);
    let _ = std::fs::remove_file(&stderr_path);
    output
}
