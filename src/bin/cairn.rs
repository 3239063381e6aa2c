//! `cairn`: one member of an etcd-compatible cluster. With no flags it serves a one-member
//! cluster on 127.0.0.1:2379 with data in ./default.cairn, as etcd does.

use anyhow::Context as _;
use cairn::io::OsDisk;
use cairn::server::{self, Config};
use std::io::IsTerminal;
use std::sync::Arc;

fn init_logging(config: &Config) -> anyhow::Result<()> {
    use tracing_subscriber::fmt::writer::{BoxMakeWriter, MakeWriterExt};
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
    let outputs = server::config::split_urls(&config.log_outputs);
    let mut writer: Option<BoxMakeWriter> = None;
    let mut to_terminal = false;
    for output in &outputs {
        let next = match output.as_str() {
            "default" | "stderr" => {
                to_terminal = std::io::stderr().is_terminal();
                BoxMakeWriter::new(std::io::stderr)
            }
            "stdout" => {
                to_terminal = std::io::stdout().is_terminal();
                BoxMakeWriter::new(std::io::stdout)
            }
            path => {
                let file = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .with_context(|| format!("opening --log-outputs {path}"))?;
                BoxMakeWriter::new(std::sync::Mutex::new(file))
            }
        };
        writer = Some(match writer {
            None => next,
            Some(earlier) => BoxMakeWriter::new(earlier.and(next)),
        });
    }
    let writer = writer.unwrap_or_else(|| BoxMakeWriter::new(std::io::stderr));
    // Colours only for a terminal that is the one output.
    let ansi = to_terminal && outputs.len() == 1;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(writer);
    match config.log_format.as_str() {
        "json" => builder.json().flatten_event(true).init(),
        _ => builder.with_ansi(ansi).init(),
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
