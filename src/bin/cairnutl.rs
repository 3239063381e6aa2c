//! `cairnutl`: offline tools for snapshot files, with `etcdutl`'s commands and flags so that
//! etcd runbooks port over: `snapshot status` and `snapshot restore` take snapshots written
//! by etcd 3.4 to 3.6 (`etcdctl snapshot save`) or by Cairn.

use anyhow::Context as _;
use cairn::backup;
use cairn::io::{Disk, OsDisk};
use cairn::server::restore::{self, Progress, RestoreOptions, DEFAULT_REVISION_BUMP};
use clap::{Parser, Subcommand, ValueEnum};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(
    name = "cairnutl",
    version,
    about = "Offline tools for Cairn and etcd snapshot files"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Snapshot files: status and restore.
    #[command(subcommand)]
    Snapshot(SnapshotCommand),
}

#[derive(Subcommand)]
enum SnapshotCommand {
    /// Prints a snapshot file's hash, revision, pairs and size (as `etcdutl snapshot status`).
    Status {
        file: PathBuf,
        /// Output format.
        #[arg(short = 'w', long = "write-out", value_enum, default_value_t = Format::Simple)]
        write_out: Format,
    },
    /// Makes a new member's data directory from a snapshot file (as `etcdutl snapshot
    /// restore`). Restore every member of the new cluster from the same file and flags.
    Restore {
        file: PathBuf,
        /// The data directory to create (default `<name>.etcd`, as etcdutl).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// etcdutl's separate WAL directory: Cairn keeps the WAL in the data directory, so
        /// only that place (`<data-dir>/member/wal`) is accepted.
        #[arg(long)]
        wal_dir: Option<PathBuf>,
        #[arg(long, default_value = "default")]
        name: String,
        #[arg(long, default_value = "default=http://localhost:2380")]
        initial_cluster: String,
        #[arg(long, default_value = "etcd-cluster")]
        initial_cluster_token: String,
        #[arg(long, default_value = "http://localhost:2380")]
        initial_advertise_peer_urls: String,
        /// Restore a file without the SHA-256 trailer (copied from a data directory).
        #[arg(long)]
        skip_hash_check: bool,
        /// Revisions to add, so that no client sees revisions go backwards after the restore;
        /// 0 keeps the snapshot's revision.
        #[arg(long, default_value_t = DEFAULT_REVISION_BUMP)]
        bump_revision: i64,
        /// Compacts at the bumped revision, so watches from older revisions are told they
        /// were compacted (on by default with the default bump; etcdutl asks for it).
        #[arg(long, num_args = 0..=1, default_missing_value = "true")]
        mark_compacted: Option<bool>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Simple,
    Table,
    Json,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let disk: Arc<dyn Disk> = Arc::new(OsDisk {
        unsafe_no_fsync: false,
    });
    match cli.command {
        Command::Snapshot(SnapshotCommand::Status { file, write_out }) => {
            let status = backup::status(disk.as_ref(), &file)?;
            print_status(&status, write_out)?;
        }
        Command::Snapshot(SnapshotCommand::Restore {
            file,
            data_dir,
            wal_dir,
            name,
            initial_cluster,
            initial_cluster_token,
            initial_advertise_peer_urls,
            skip_hash_check,
            bump_revision,
            mark_compacted,
        }) => {
            let data_dir = data_dir.unwrap_or_else(|| PathBuf::from(format!("{name}.etcd")));
            if let Some(wal_dir) = wal_dir {
                anyhow::ensure!(
                    wal_dir == data_dir.join("member").join("wal"),
                    "--wal-dir {}: Cairn keeps its WAL at <data-dir>/member/wal",
                    wal_dir.display()
                );
            }
            anyhow::ensure!(bump_revision >= 0, "--bump-revision must not be negative");
            let options = RestoreOptions {
                snapshot: file,
                data_dir,
                name,
                initial_cluster,
                initial_cluster_token,
                initial_advertise_peer_urls: cairn::server::config::split_urls(
                    &initial_advertise_peer_urls,
                ),
                skip_hash_check,
                bump_revision,
                mark_compacted: mark_compacted.unwrap_or(bump_revision > 0),
            };
            let mut reporter = Reporter::new();
            let restored =
                restore::restore(disk, &options, &mut |progress| reporter.report(&progress))
                    .map_err(anyhow::Error::msg)
                    .context("snapshot restore failed")?;
            reporter.finish();
            eprintln!(
                "restored {} to {}: member {:x} of cluster {:x}, revision {}, {} keys ({} versions), {} leases",
                options.snapshot.display(),
                options.data_dir.display(),
                restored.identity.member_id,
                restored.identity.cluster_id,
                restored.revision,
                restored.keys,
                restored.versions,
                restored.leases,
            );
        }
    }
    Ok(())
}

fn print_status(status: &backup::Status, format: Format) -> anyhow::Result<()> {
    let size = human_bytes(status.total_bytes);
    match format {
        Format::Json => println!("{}", serde_json::to_string(status)?),
        Format::Simple => println!(
            "{:x}, {}, {}, {}",
            status.hash, status.revision, status.total_keys, size
        ),
        Format::Table => {
            let cells = [
                format!("{:x}", status.hash),
                status.revision.to_string(),
                status.total_keys.to_string(),
                size,
            ];
            let titles = ["HASH", "REVISION", "TOTAL KEYS", "TOTAL SIZE"];
            let widths: Vec<usize> = titles
                .iter()
                .zip(&cells)
                .map(|(title, cell)| title.len().max(cell.len()) + 2)
                .collect();
            let rule: String = widths
                .iter()
                .map(|w| format!("+{}", "-".repeat(*w)))
                .collect::<String>()
                + "+";
            // As etcd's tables: titles centred, cells right-aligned.
            let row = |values: &[String], centred: bool| -> String {
                values
                    .iter()
                    .zip(&widths)
                    .map(|(value, width)| {
                        if centred {
                            format!("|{value:^width$}")
                        } else {
                            format!("| {value:>0$} ", width - 2)
                        }
                    })
                    .collect::<String>()
                    + "|"
            };
            let titles: Vec<String> = titles.iter().map(|t| t.to_string()).collect();
            println!(
                "{rule}\n{}\n{rule}\n{}\n{rule}",
                row(&titles, true),
                row(&cells, false)
            );
        }
    }
    Ok(())
}

/// Sizes as etcd prints them (go-humanize: SI units, 1 kB = 1000 bytes).
fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "kB", "MB", "GB", "TB", "PB"];
    if bytes < 10 {
        return format!("{bytes} B");
    }
    let exponent = ((bytes as f64).ln() / 1000f64.ln()).floor() as usize;
    let value = bytes as f64 / 1000f64.powi(exponent as i32);
    if value < 10.0 {
        format!("{value:.1} {}", UNITS[exponent])
    } else {
        format!("{value:.0} {}", UNITS[exponent])
    }
}

/// Progress on stderr: a bar redrawn in place on a terminal, a plain line every 5 s
/// otherwise (a log file gets no carriage returns).
struct Reporter {
    terminal: bool,
    started: Instant,
    last: Option<Instant>,
    drawn: bool,
}

impl Reporter {
    fn new() -> Reporter {
        Reporter {
            terminal: std::io::stderr().is_terminal(),
            started: Instant::now(),
            last: None,
            drawn: false,
        }
    }

    fn report(&mut self, progress: &Progress) {
        let now = Instant::now();
        let interval = if self.terminal {
            Duration::from_millis(100)
        } else {
            Duration::from_secs(5)
        };
        if self.last.is_some_and(|last| now - last < interval) {
            return;
        }
        self.last = Some(now);
        let fraction = if progress.total_bytes == 0 {
            1.0
        } else {
            (progress.done_bytes as f64 / progress.total_bytes as f64).min(1.0)
        };
        let text = format!(
            "{}: {} / {}, {} versions, {:.0?}",
            progress.phase,
            human_bytes(progress.done_bytes),
            human_bytes(progress.total_bytes),
            progress.versions,
            now - self.started
        );
        let mut stderr = std::io::stderr();
        if self.terminal {
            let filled = (fraction * 30.0) as usize;
            let _ = write!(
                stderr,
                "\r[{}{}] {:3.0}% {text}\x1b[K",
                "#".repeat(filled),
                " ".repeat(30 - filled),
                fraction * 100.0
            );
            self.drawn = true;
        } else {
            let _ = writeln!(stderr, "{text} ({:.0}%)", fraction * 100.0);
        }
    }

    fn finish(&mut self) {
        if self.drawn {
            eprintln!();
        }
    }
}
