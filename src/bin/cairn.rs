//! `cairn`: one member of an etcd-compatible cluster. With no flags it serves a one-member
//! cluster on 127.0.0.1:2379 with data in ./default.cairn, as etcd does.

use anyhow::Context as _;
use cairn::io::OsDisk;
use cairn::server::{self, Config};
use std::io::IsTerminal;
use std::sync::Arc;

fn init_logging(config: &Config) -> anyhow::Result<()> {
    let level = match config.log_level.as_str() {
        "debug" => "debug",
        "info" => "info",
        "warn" => "warn",
        "error" | "dpanic" | "panic" | "fatal" => "error",
        other => anyhow::bail!(
            "--log-level {other:?} is not one of debug, info, warn, error, panic, fatal"
        ),
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("CAIRN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("{level},openraft=warn")));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    match config.log_outputs.as_str() {
        "default" | "stderr" => builder
            .with_ansi(std::io::stderr().is_terminal())
            .with_writer(std::io::stderr)
            .init(),
        "stdout" => builder
            .with_ansi(std::io::stdout().is_terminal())
            .with_writer(std::io::stdout)
            .init(),
        path => {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("opening --log-outputs {path}"))?;
            builder
                .with_writer(std::sync::Mutex::new(file))
                .with_ansi(false)
                .init()
        }
    }
    Ok(())
}

#[cfg(not(madsim))]
async fn stop_requested() {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing the SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
}

#[cfg(madsim)]
async fn stop_requested() {
    std::future::pending::<()>().await
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // `vars_os`: `vars` would panic on a variable that is not UTF-8 (it is skipped).
    let environment = std::env::vars_os()
        .filter_map(|(name, value)| Some((name.into_string().ok()?, value.into_string().ok()?)));
    let (config, warnings) =
        match Config::parse_with_etcd_environment(std::env::args_os(), environment) {
            Ok(parsed) => parsed,
            Err(error) => error.exit(),
        };
    init_logging(&config)?;
    for warning in warnings {
        tracing::warn!("{warning}");
    }
    let disk = Arc::new(OsDisk {
        unsafe_no_fsync: config.unsafe_no_fsync,
    });
    let mut member = server::start(&config, disk).await?;
    tokio::select! {
        result = member.wait() => result?,
        _ = stop_requested() => {
            tracing::info!("stopping");
            member.shutdown().await;
        }
    }
    Ok(())
}
