//! `cairn-bench`: a load generator speaking only etcd's v3 gRPC API, so it drives Cairn and
//! etcd identically. Prints a table row and, with `--json`, a JSON line.

#[cfg(not(madsim))]
mod histogram;
#[cfg(not(madsim))]
mod workloads;

#[cfg(not(madsim))]
mod real {
    use crate::workloads::{self, Options, Workload};
    use clap::Parser;
    use std::time::Duration;

    #[derive(Parser, Debug)]
    #[command(
        name = "cairn-bench",
        about = "Load generator for etcd-v3 endpoints (Cairn or etcd)"
    )]
    struct Cli {
        #[arg(long, value_enum, default_value = "put")]
        workload: Workload,
        /// Comma-separated client endpoints (host:port or http://host:port).
        #[arg(long, default_value = "127.0.0.1:2379")]
        endpoints: String,
        /// gRPC connections shared by the clients.
        #[arg(long, default_value_t = 16)]
        connections: usize,
        /// Concurrent clients (requests in flight).
        #[arg(long, default_value_t = 256)]
        clients: usize,
        /// Total requests (default 100000 unless --duration is given).
        #[arg(long)]
        total: Option<u64>,
        /// Run for this many seconds instead of a fixed total.
        #[arg(long)]
        duration_seconds: Option<f64>,
        #[arg(long, default_value_t = 32)]
        key_size: usize,
        #[arg(long, default_value_t = 256)]
        value_size: usize,
        /// Keys are drawn from this many distinct keys.
        #[arg(long, default_value_t = 10_000)]
        key_space: u64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Share of reads in the mixed workload.
        #[arg(long, default_value_t = 50)]
        read_percent: u32,
        /// Watch streams in the watch-latency workload.
        #[arg(long, default_value_t = 100)]
        watchers: usize,
        /// A label for the output (e.g. "cairn-1" or "etcd-3").
        #[arg(long, default_value = "")]
        label: String,
        /// Also print the result as one JSON line.
        #[arg(long)]
        json: bool,
    }

    pub async fn main() -> anyhow::Result<()> {
        let cli = Cli::parse();
        let duration = cli.duration_seconds.map(Duration::from_secs_f64);
        let options = Options {
            endpoints: cli
                .endpoints
                .split(',')
                .map(str::trim)
                .filter(|e| !e.is_empty())
                .map(str::to_string)
                .collect(),
            connections: cli.connections,
            clients: cli.clients,
            total: cli.total.or(if duration.is_some() {
                None
            } else {
                Some(100_000)
            }),
            duration,
            key_size: cli.key_size,
            value_size: cli.value_size,
            key_space: cli.key_space,
            seed: cli.seed,
            workload: cli.workload,
            read_percent: cli.read_percent,
            watchers: cli.watchers,
        };
        let report = workloads::run(&options).await?;
        let workload = format!("{:?}", cli.workload).to_lowercase();
        let latency = &report.latency;
        println!(
            "{:<14} {:<18} {:>8} {:>10} {:>12} {:>9} {:>9} {:>9} {:>9} {:>9}",
            "label",
            "workload",
            "clients",
            "requests",
            "req/s",
            "p50 ms",
            "p90 ms",
            "p99 ms",
            "p99.9 ms",
            "max ms"
        );
        println!(
            "{:<14} {:<18} {:>8} {:>10} {:>12.0} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>9.3}",
            cli.label,
            workload,
            cli.clients,
            report.operations,
            report.throughput(),
            latency.quantile_ms(0.5),
            latency.quantile_ms(0.9),
            latency.quantile_ms(0.99),
            latency.quantile_ms(0.999),
            latency.max_ms()
        );
        if report.errors > 0 {
            println!("errors: {}", report.errors);
        }
        if cli.json {
            println!(
                "{{\"label\":\"{}\",\"workload\":\"{workload}\",\"clients\":{},\"connections\":{},\"requests\":{},\"errors\":{},\"seconds\":{:.3},\"throughput\":{:.1},\"p50_ms\":{:.3},\"p90_ms\":{:.3},\"p99_ms\":{:.3},\"p999_ms\":{:.3},\"max_ms\":{:.3},\"mean_ms\":{:.3}}}",
                cli.label, cli.clients, cli.connections, report.operations, report.errors, report.seconds, report.throughput(),
                latency.quantile_ms(0.5), latency.quantile_ms(0.9), latency.quantile_ms(0.99), latency.quantile_ms(0.999), latency.max_ms(), latency.mean_ms()
            );
        }
        Ok(())
    }
}

#[cfg(not(madsim))]
#[tokio::main]
async fn main() -> anyhow::Result<()> {
    real::main().await
}

#[cfg(madsim)]
fn main() {
    eprintln!("cairn-bench drives real endpoints; build it without --cfg madsim");
}
