//! `cairn-diff`: sends the same seeded sequence of requests to a fresh etcd and a fresh Cairn
//! member and compares every answer field by field (etcd's JSON mapping), ignoring only what
//! must differ (IDs, ports, tokens, header cluster/member IDs and terms). Reports the first
//! difference of each sequence with the request that caused it; differences in the
//! allowlist (`compare::ALLOWED`, each with its reason) are counted, not failed.
//!
//! `cairn-diff --seeds 1..21 --steps 150` (etcd from Debian's etcd-server, cairn from
//! target/debug). Exit status 1 if any sequence differs outside the allowlist.

#[cfg(not(madsim))]
mod compare;
#[cfg(not(madsim))]
mod servers;
#[cfg(not(madsim))]
mod steps;
#[cfg(not(madsim))]
mod target;

#[cfg(not(madsim))]
mod real {
    use super::compare::{allowed, first_difference};
    use super::servers::Member;
    use super::steps::Generator;
    use super::target::Target;
    use clap::Parser;
    use std::collections::BTreeMap;
    use std::path::PathBuf;

    #[derive(Parser, Debug)]
    #[command(
        name = "cairn-diff",
        about = "Differential runs: etcd and Cairn, same requests"
    )]
    struct Cli {
        /// Seeds of the sequences, as A..B (B excluded).
        #[arg(long, default_value = "1..11")]
        seeds: String,
        /// Requests per sequence.
        #[arg(long, default_value_t = 150)]
        steps: usize,
        #[arg(long, default_value = "/usr/bin/etcd")]
        etcd: PathBuf,
        #[arg(long, default_value = "target/debug/cairn")]
        cairn: PathBuf,
        /// First of the four loopback ports each sequence uses (below 32768).
        #[arg(long, default_value_t = 24_000)]
        base_port: u16,
        /// Where members keep data and logs [default: a fresh directory under /tmp].
        #[arg(long)]
        work_dir: Option<PathBuf>,
        /// Print every step and both answers.
        #[arg(long)]
        verbose: bool,
    }

    fn parse_seeds(text: &str) -> anyhow::Result<std::ops::Range<u64>> {
        let (start, end) = text
            .split_once("..")
            .ok_or_else(|| anyhow::anyhow!("--seeds takes A..B"))?;
        Ok(start.parse()?..end.parse()?)
    }

    fn kind(step: &super::steps::Step) -> String {
        if let super::steps::Step::Watch { progress: true, .. } = step {
            return "WatchWithProgress".to_string();
        }
        let text = format!("{step:?}");
        text.split([' ', '(', '{']).next().unwrap_or("").to_string()
    }

    /// One sequence; the first difference outside the allowlist, if any.
    async fn sequence(
        cli: &Cli,
        seed: u64,
        work_dir: &std::path::Path,
        allowlisted: &mut BTreeMap<String, usize>,
    ) -> anyhow::Result<Option<String>> {
        let dir = work_dir.join(format!("seed-{seed}"));
        let port = cli.base_port;
        let etcd = Member::start(&cli.etcd, &dir.join("etcd"), port, port + 1)
            .map_err(|error| anyhow::anyhow!("etcd: {error}"))?;
        let cairn = Member::start(&cli.cairn, &dir.join("cairn"), port + 2, port + 3)
            .map_err(|error| anyhow::anyhow!("cairn: {error}"))?;
        let mut left = Target::connect(&etcd.endpoint(), etcd.client_port, etcd.peer_port).await;
        let mut right =
            Target::connect(&cairn.endpoint(), cairn.client_port, cairn.peer_port).await;
        let mut generator = Generator::new(seed);
        for index in 0..cli.steps {
            let step = generator.next();
            let expected = left.run(&step).await;
            let actual = right.run(&step).await;
            if cli.verbose {
                println!("seed {seed} step {index}: {step:?}\n  etcd:  {expected:?}\n  cairn: {actual:?}");
            }
            if let Ok(answer) = &expected {
                if let Some(revision) = answer
                    .pointer("/header/revision")
                    .and_then(|revision| revision.as_str())
                    .and_then(|revision| revision.parse().ok())
                {
                    generator.revision_guess = revision;
                }
            }
            let wrap = |answer: &Result<serde_json::Value, String>| match answer {
                Ok(value) => serde_json::json!({ "ok": value }),
                Err(error) => serde_json::json!({ "error": error }),
            };
            let Some((path, etcd_value, cairn_value)) =
                first_difference(&wrap(&expected), &wrap(&actual), "")
            else {
                continue;
            };
            let step_kind = kind(&step);
            let inner_path = path.strip_prefix(".ok").unwrap_or(&path).to_string();
            if let Some(entry) = allowed(&step_kind, &inner_path, &cairn_value) {
                *allowlisted
                    .entry(format!("{step_kind} {}: {}", entry.path, entry.reason))
                    .or_default() += 1;
                if entry.ends_sequence {
                    println!("seed {seed}: ended at step {index} by an allowlisted difference ({step_kind})");
                    break;
                }
                continue;
            }
            return Ok(Some(format!(
                "seed {seed} step {index}: {step:?}\n  first difference at {path}: etcd {etcd_value}, cairn {cairn_value}\n  etcd:  {expected:?}\n  cairn: {actual:?}"
            )));
        }
        drop((etcd, cairn));
        let _ = std::fs::remove_dir_all(&dir);
        Ok(None)
    }

    pub async fn main() -> anyhow::Result<()> {
        let cli = Cli::parse();
        let seeds = parse_seeds(&cli.seeds)?;
        let work_dir = cli.work_dir.clone().unwrap_or_else(|| {
            std::env::temp_dir().join(format!("cairn-diff-{}", std::process::id()))
        });
        let started = std::time::Instant::now();
        let mut differing = Vec::new();
        let mut allowlisted = BTreeMap::new();
        let total = seeds.end.saturating_sub(seeds.start);
        for (done, seed) in seeds.enumerate() {
            match sequence(&cli, seed, &work_dir, &mut allowlisted).await? {
                Some(report) => {
                    println!("DIFFERENT {report}");
                    differing.push(seed);
                }
                None => println!(
                    "seed {seed}: {} requests, same answers ({}/{total}, {:.0} s)",
                    cli.steps,
                    done + 1,
                    started.elapsed().as_secs_f64()
                ),
            }
        }
        for (entry, count) in &allowlisted {
            println!("allowlisted {count}x: {entry}");
        }
        println!(
            "cairn-diff: {total} sequences of {} requests, {} differing {differing:?}, in {:.0} s",
            cli.steps,
            differing.len(),
            started.elapsed().as_secs_f64()
        );
        if differing.is_empty() {
            let _ = std::fs::remove_dir_all(&work_dir);
            Ok(())
        } else {
            anyhow::bail!("answers differ; logs under {}", work_dir.display())
        }
    }
}

#[cfg(not(madsim))]
#[tokio::main]
async fn main() -> anyhow::Result<()> {
    real::main().await
}

#[cfg(madsim)]
fn main() {}
