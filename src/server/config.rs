//! Flags, mirroring etcd's names and defaults, each with a `CAIRN_*` environment twin and
//! etcd's `ETCD_*` one (`Config::parse_with_etcd_environment`).

use clap::{ArgAction, Parser};
use std::path::PathBuf;

#[derive(Parser, Debug, Clone)]
#[command(
    name = "cairn",
    // Cairn's version and the etcd version whose API it matches (`api::SERVER_VERSION`).
    version = concat!(env!("CARGO_PKG_VERSION"), " (etcd API 3.5.13)"),
    about = "An etcd-compatible, strongly consistent key-value store"
)]
pub struct Config {
    /// Human-readable name for this member.
    #[arg(long, env = "CAIRN_NAME", default_value = "default")]
    pub name: String,
    /// Path to the data directory [default: <name>.cairn].
    #[arg(long, env = "CAIRN_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// URLs to listen on for client traffic (comma-separated).
    #[arg(
        long,
        env = "CAIRN_LISTEN_CLIENT_URLS",
        default_value = "http://127.0.0.1:2379"
    )]
    pub listen_client_urls: String,
    /// Client URLs advertised to the cluster [default: the listen client URLs].
    #[arg(long, env = "CAIRN_ADVERTISE_CLIENT_URLS")]
    pub advertise_client_urls: Option<String>,
    /// URLs to listen on for peer traffic (comma-separated).
    #[arg(
        long,
        env = "CAIRN_LISTEN_PEER_URLS",
        default_value = "http://127.0.0.1:2380"
    )]
    pub listen_peer_urls: String,
    /// This member's peer URLs to advertise to the rest of the cluster.
    #[arg(
        long,
        env = "CAIRN_INITIAL_ADVERTISE_PEER_URLS",
        default_value = "http://127.0.0.1:2380"
    )]
    pub initial_advertise_peer_urls: String,
    /// Initial cluster configuration for bootstrapping: name=peerURL,... [default: <name>=<initial advertise peer URLs>].
    #[arg(long, env = "CAIRN_INITIAL_CLUSTER")]
    pub initial_cluster: Option<String>,
    /// Initial cluster state ('new' or 'existing').
    #[arg(long, env = "CAIRN_INITIAL_CLUSTER_STATE", default_value = "new", value_parser = ["new", "existing"])]
    pub initial_cluster_state: String,
    /// Initial cluster token, mixed into the cluster and member IDs.
    #[arg(
        long,
        env = "CAIRN_INITIAL_CLUSTER_TOKEN",
        default_value = "etcd-cluster"
    )]
    pub initial_cluster_token: String,
    /// Time (in milliseconds) of a heartbeat interval.
    #[arg(long, env = "CAIRN_HEARTBEAT_INTERVAL", default_value_t = 100)]
    pub heartbeat_interval: u64,
    /// Time (in milliseconds) for an election to timeout.
    #[arg(long, env = "CAIRN_ELECTION_TIMEOUT", default_value_t = 1000)]
    pub election_timeout: u64,
    /// Number of committed transactions to trigger a snapshot to disk.
    #[arg(long, env = "CAIRN_SNAPSHOT_COUNT", default_value_t = 100_000)]
    pub snapshot_count: u64,
    /// Raise alarms when backend size exceeds the given quota (0 defaults to 2 GiB).
    #[arg(long, env = "CAIRN_QUOTA_BACKEND_BYTES", default_value_t = 0)]
    pub quota_backend_bytes: u64,
    /// How often the leader compares members' HashKV at its revision (0s: never, as etcd).
    #[arg(
        long,
        env = "CAIRN_EXPERIMENTAL_CORRUPT_CHECK_TIME",
        default_value = "0s"
    )]
    pub experimental_corrupt_check_time: String,
    /// Compare this member's HashKV with the others' once it has caught up, before serving.
    #[arg(long, env = "CAIRN_EXPERIMENTAL_INITIAL_CORRUPT_CHECK", default_value_t = false, num_args = 0..=1, default_missing_value = "true", action = ArgAction::Set)]
    pub experimental_initial_corrupt_check: bool,
    /// The leader compares members' HashKV at the last compaction revision.
    #[arg(long, env = "CAIRN_EXPERIMENTAL_COMPACT_HASH_CHECK_ENABLED", default_value_t = false, num_args = 0..=1, default_missing_value = "true", action = ArgAction::Set)]
    pub experimental_compact_hash_check_enabled: bool,
    /// How often the compaction hash check runs.
    #[arg(
        long,
        env = "CAIRN_EXPERIMENTAL_COMPACT_HASH_CHECK_TIME",
        default_value = "1m"
    )]
    pub experimental_compact_hash_check_time: String,
    /// Start this member as a one-member cluster from its data (quorum lost for good), as
    /// etcd's disaster recovery; remove the flag once it has started.
    #[arg(long, env = "CAIRN_FORCE_NEW_CLUSTER", default_value_t = false, num_args = 0..=1, default_missing_value = "true", action = ArgAction::Set)]
    pub force_new_cluster: bool,
    /// Clear the NOSPACE alarm by itself once the store is under 90% of the quota again
    /// (beyond etcd, which waits for `etcdctl alarm disarm`).
    #[arg(long, env = "CAIRN_AUTO_DISARM_NOSPACE", default_value_t = false, num_args = 0..=1, default_missing_value = "true", action = ArgAction::Set)]
    pub auto_disarm_nospace: bool,
    /// Maximum client request size in bytes the server will accept.
    #[arg(long, env = "CAIRN_MAX_REQUEST_BYTES", default_value_t = crate::base::limits::REQUEST_BYTES_DEFAULT, value_parser = parse_request_bytes)]
    pub max_request_bytes: usize,
    /// Maximum number of operations permitted in a transaction.
    #[arg(long, env = "CAIRN_MAX_TXN_OPS", default_value_t = 128)]
    pub max_txn_ops: usize,
    /// Interpret 'auto-compaction-retention' as 'periodic' (a duration) or 'revision'.
    #[arg(long, env = "CAIRN_AUTO_COMPACTION_MODE", default_value = "periodic", value_parser = ["periodic", "revision"])]
    pub auto_compaction_mode: String,
    /// Auto compaction retention: a duration for periodic mode (e.g. '1h', '30m', or hours as a number), a revision count for revision mode. 0 disables.
    #[arg(long, env = "CAIRN_AUTO_COMPACTION_RETENTION", default_value = "0")]
    pub auto_compaction_retention: String,
    /// Interval of server-side progress notifications for watchers that ask for them.
    #[arg(
        long = "experimental-watch-progress-notify-interval",
        env = "CAIRN_WATCH_PROGRESS_NOTIFY_INTERVAL",
        default_value = "10m"
    )]
    pub watch_progress_notify_interval: String,
    /// Learners the cluster membership may hold at once (etcd 3.6's flag; 3.5 fixes 1).
    #[arg(long, env = "CAIRN_MAX_LEARNERS", default_value_t = 1)]
    pub max_learners: usize,
    /// How auth tokens are made: 'simple' (etcd's default; random, member-local).
    #[arg(long, env = "CAIRN_AUTH_TOKEN", default_value = "simple", value_parser = parse_auth_token)]
    pub auth_token: String,
    /// Seconds an unused simple token stays valid (each use extends it).
    #[arg(long, env = "CAIRN_AUTH_TOKEN_TTL", default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..))]
    pub auth_token_ttl: u64,
    /// bcrypt work factor for password hashes (4 to 31, as etcd).
    #[arg(long, env = "CAIRN_BCRYPT_COST", default_value_t = 10, value_parser = clap::value_parser!(u32).range(4..=31))]
    pub bcrypt_cost: u32,
    /// Most watchers one watch stream may hold.
    #[arg(long, env = "CAIRN_WATCHERS_PER_STREAM_MAX", default_value_t = 10_000)]
    pub watchers_per_stream_max: usize,
    /// Size at which a WAL segment is closed and a new one started.
    #[arg(long, env = "CAIRN_WAL_SEGMENT_BYTES", default_value_t = 64 * 1024 * 1024)]
    pub wal_segment_bytes: u64,
    /// Bytes set aside on the data directory's disk (at most a twentieth of it, 0: none).
    /// When the disk fills, the reserve is released so raft keeps going (reads, deletes,
    /// compactions) while writes that add data are refused with NOSPACE; once it fits again,
    /// writes resume by themselves.
    #[arg(long, env = "CAIRN_DISK_RESERVE_BYTES", default_value_t = 64 * 1024 * 1024)]
    pub disk_reserve_bytes: u64,
    /// How often the leader checkpoints leases' remaining TTLs through raft, so a new leader
    /// never restarts a lease longer than it had left (etcd: 5 minutes). The simulator draws
    /// it down to a second so checkpoints meet leader changes.
    #[arg(long, env = "CAIRN_LEASE_CHECKPOINT_INTERVAL", default_value = "5m", value_parser = parse_interval, hide = true)]
    pub lease_checkpoint_interval: std::time::Duration,
    /// Bytes of commands the proposer packs into one raft entry at most (see
    /// `base::limits::BATCH_BYTES_MAX`, the default and the ceiling). The simulator draws it
    /// down to a few KiB so batches reach their cap in most runs.
    #[arg(long, env = "CAIRN_PROPOSAL_BATCH_BYTES", default_value_t = crate::base::limits::BATCH_BYTES_MAX, value_parser = parse_batch_bytes, hide = true)]
    pub proposal_batch_bytes: usize,
    /// Bytes of one snapshot chunk sent to a follower at most (see
    /// `base::limits::SNAPSHOT_CHUNK_BYTES`, the default and the ceiling). The simulator
    /// draws it down to hundreds of bytes so a snapshot goes out in many chunks.
    #[arg(long, env = "CAIRN_SNAPSHOT_CHUNK_BYTES", default_value_t = crate::base::limits::SNAPSHOT_CHUNK_BYTES, value_parser = parse_chunk_bytes, hide = true)]
    pub snapshot_chunk_bytes: usize,
    /// Events gathered for one watcher before a response goes out. The simulator draws it
    /// down to one so a revision's events span several responses.
    #[arg(long, env = "CAIRN_WATCH_EVENTS_PER_RESPONSE_MAX", default_value_t = 1000, value_parser = parse_positive, hide = true)]
    pub watch_events_per_response_max: usize,
    /// Disables fsync, unsafe: acknowledged writes can be lost on a crash (as etcd's flag).
    #[arg(long, env = "CAIRN_UNSAFE_NO_FSYNC", default_value_t = false, num_args = 0..=1, default_missing_value = "true", action = ArgAction::Set)]
    pub unsafe_no_fsync: bool,
    /// Logger to use ('zap' in etcd; accepted for compatibility, Cairn logs to stderr).
    #[arg(long, env = "CAIRN_LOGGER", default_value = "zap")]
    pub logger: String,
    /// Log level: debug, info, warn, error, panic, or fatal.
    #[arg(long, env = "CAIRN_LOG_LEVEL", default_value = "info")]
    pub log_level: String,
    /// Where to write logs, comma-separated: 'default' or 'stderr' (stderr), 'stdout', or
    /// file paths; every line goes to each.
    #[arg(long, env = "CAIRN_LOG_OUTPUTS", default_value = "default")]
    pub log_outputs: String,
    /// Log line format: 'console' (text) or 'json' (one object per line, as etcd's zap).
    #[arg(long, env = "CAIRN_LOG_FORMAT", default_value = "console", value_parser = ["console", "json"])]
    pub log_format: String,
    /// More URLs to serve /metrics and the health endpoints on (comma-separated), beside
    /// the client URLs, which always serve them.
    #[arg(long, env = "CAIRN_LISTEN_METRICS_URLS", default_value = "")]
    pub listen_metrics_urls: String,
    /// 'extensive' adds gRPC handling-time histograms to 'basic'.
    #[arg(long, env = "CAIRN_METRICS", default_value = "basic", value_parser = ["basic", "extensive"])]
    pub metrics: String,
    /// Origins allowed cross-origin requests to the HTTP endpoints and the gateway
    /// (comma-separated; empty or * allows all).
    #[arg(long, env = "CAIRN_CORS", default_value = "*")]
    pub cors: String,
    /// Host names a plain-HTTP request may carry (comma-separated; empty or * allows all),
    /// against DNS rebinding.
    #[arg(long, env = "CAIRN_HOST_WHITELIST", default_value = "*")]
    pub host_whitelist: String,
    /// etcd's YAML configuration file; when given, other flags and environment variables
    /// are ignored, as etcd does.
    #[arg(long, env = "CAIRN_CONFIG_FILE")]
    pub config_file: Option<PathBuf>,
    /// Serve etcd's JSON gateway (`/v3/...`) on the client URLs.
    #[arg(long, env = "CAIRN_ENABLE_GRPC_GATEWAY", default_value_t = true, num_args = 0..=1, default_missing_value = "true", action = ArgAction::Set)]
    pub enable_grpc_gateway: bool,
    #[command(flatten)]
    pub tls: super::tls::TlsFlags,
}

/// etcd's environment prefix: `ETCD_` and a flag's long name upper-cased, `-` as `_`.
const ETCD_ENVIRONMENT_PREFIX: &str = "ETCD_";

/// What parsing found besides the flags: lines to log once logging is set up.
pub type Warnings = Vec<String>;

impl Config {
    /// Flags from `args`, then `CAIRN_*` variables, then etcd's `ETCD_*` twins from
    /// `environment` (`ETCD_LISTEN_CLIENT_URLS` for `--listen-client-urls`), then defaults,
    /// so etcd's unit files and container setups run unchanged. An `ETCD_*` variable that
    /// names no flag is a warning, as etcd makes it.
    ///
    /// With `--config-file` (or `ETCD_CONFIG_FILE`), the settings come from etcd's YAML file
    /// alone and other flags and variables are ignored, as etcd does.
    pub fn parse_with_etcd_environment<I, T>(
        args: I,
        environment: impl IntoIterator<Item = (String, String)>,
    ) -> Result<(Config, Warnings), clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        use clap::CommandFactory;
        let args: Vec<std::ffi::OsString> = args.into_iter().map(Into::into).collect();
        let (config, warnings) = Self::parse_arguments(args.clone(), environment)?;
        let Some(path) = config.config_file.clone() else {
            return Ok((config, warnings));
        };
        let command = super::etcd_flags::add(Config::command());
        let is_flag = |name: &str| {
            name != "config-file"
                && command
                    .get_arguments()
                    .any(|arg| arg.get_long() == Some(name))
        };
        let (flags, mut file_warnings) = super::config_file::flags_from_file(&path, &is_flag)
            .map_err(|error| {
                command
                    .clone()
                    .error(clap::error::ErrorKind::ValueValidation, error)
            })?;
        let program = args.first().cloned().unwrap_or_else(|| "cairn".into());
        let file_args = std::iter::once(program).chain(flags.into_iter().map(Into::into));
        let (config, warnings) = Self::parse_arguments(file_args, std::iter::empty())?;
        file_warnings.push(format!(
            "loaded the configuration file {}; other command line flags and environment variables are ignored",
            path.display()
        ));
        file_warnings.extend(warnings);
        Ok((config, file_warnings))
    }

    fn parse_arguments<I, T>(
        args: I,
        environment: impl IntoIterator<Item = (String, String)>,
    ) -> Result<(Config, Warnings), clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        use clap::{CommandFactory, FromArgMatches};
        let mut etcd: std::collections::BTreeMap<String, String> = environment
            .into_iter()
            .filter(|(name, _)| name.starts_with(ETCD_ENVIRONMENT_PREFIX))
            .collect();
        let command = super::etcd_flags::add(Config::command()).mut_args(|arg| {
            // `--help` and `--version` are actions, not settings (container images set
            // ETCD_VERSION to the image's version).
            let Some(long) = arg
                .get_long()
                .filter(|long| !["help", "version"].contains(long))
            else {
                return arg;
            };
            let name = format!(
                "{ETCD_ENVIRONMENT_PREFIX}{}",
                long.to_uppercase().replace('-', "_")
            );
            match etcd.remove(&name) {
                // Below the command line and `CAIRN_*` (clap's env), above the default.
                Some(value) => arg.default_value(value),
                None => arg,
            }
        });
        let mut warnings: Warnings = etcd
            .keys()
            .map(|name| format!("unrecognized environment variable {name}: no such flag"))
            .collect();
        let matches = command.clone().try_get_matches_from(args)?;
        let config = Config::from_arg_matches(&matches)?;
        match super::etcd_flags::check(&matches) {
            Ok(accepted) => warnings.extend(accepted),
            Err(refusal) => {
                let mut command = command;
                return Err(command.error(clap::error::ErrorKind::ValueValidation, refusal));
            }
        }
        Ok((config, warnings))
    }

    pub fn data_dir(&self) -> PathBuf {
        self.data_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(format!("{}.cairn", self.name)))
    }

    pub fn initial_cluster(&self) -> String {
        self.initial_cluster.clone().unwrap_or_else(|| {
            split_urls(&self.initial_advertise_peer_urls)
                .iter()
                .map(|url| format!("{}={url}", self.name))
                .collect::<Vec<_>>()
                .join(",")
        })
    }

    pub fn advertise_client_urls(&self) -> Vec<String> {
        split_urls(
            self.advertise_client_urls
                .as_deref()
                .unwrap_or(&self.listen_client_urls),
        )
    }

    pub fn backend_bytes_quota(&self) -> u64 {
        if self.quota_backend_bytes == 0 {
            crate::base::Limits::default().backend_bytes_quota
        } else {
            self.quota_backend_bytes
        }
    }
}

pub fn split_urls(urls: &str) -> Vec<String> {
    urls.split(',')
        .map(str::trim)
        .filter(|url| !url.is_empty())
        .map(str::to_string)
        .collect()
}

/// A byte count from 1 to `ceiling` (a bound `base::limits` proves the others fit).
fn parse_bytes_at_most(text: &str, ceiling: usize) -> Result<usize, String> {
    let bytes: usize = text.parse().map_err(|error| format!("{error}"))?;
    if bytes == 0 || bytes > ceiling {
        return Err(format!("must be between 1 and {ceiling} bytes"));
    }
    Ok(bytes)
}

/// `--auth-token`: etcd's `simple`, or `jwt` with its options (checked again, with the
/// key files, by `jwt_options` at start).
fn parse_auth_token(text: &str) -> Result<String, String> {
    match text.split(',').next() {
        Some("simple") if !text.contains(',') => Ok(text.to_string()),
        Some("jwt") => jwt_options(text).map(|_| text.to_string()),
        _ => Err(format!(
            "unknown token type {text:?} (etcd's are 'simple' and 'jwt,pub-key=...,priv-key=...,sign-method=...,ttl=...')"
        )),
    }
}

/// The options of `--auth-token jwt,...`, None for `simple`: etcd's `pub-key` (required),
/// `priv-key` (without it the member only verifies), `sign-method` (required) and `ttl`
/// (default 5m).
pub fn jwt_options(flag: &str) -> Result<Option<crate::io::jwt::JwtOptions>, String> {
    let mut parts = flag.split(',');
    if parts.next() != Some("jwt") {
        return Ok(None);
    }
    let (mut public_key, mut private_key, mut sign_method) = (None, None, None);
    let mut ttl = std::time::Duration::from_secs(300);
    for part in parts {
        let (name, value) = part
            .split_once('=')
            .ok_or_else(|| format!("auth: invalid auth options {part:?} (name=value)"))?;
        match name {
            "pub-key" => public_key = Some(PathBuf::from(value)),
            "priv-key" => private_key = Some(PathBuf::from(value)),
            "sign-method" => sign_method = Some(value.to_string()),
            "ttl" => ttl = parse_duration(value, std::time::Duration::from_secs(1))?,
            _ => {
                return Err(format!(
                    "auth: invalid auth options: unknown option {name:?}"
                ))
            }
        }
    }
    Ok(Some(crate::io::jwt::JwtOptions {
        sign_method: sign_method.ok_or("auth: invalid auth options: sign-method is required")?,
        public_key: public_key.ok_or("auth: invalid auth options: pub-key is required")?,
        private_key,
        ttl,
    }))
}

fn parse_request_bytes(text: &str) -> Result<usize, String> {
    parse_bytes_at_most(text, crate::base::limits::REQUEST_BYTES_CEILING)
}

fn parse_batch_bytes(text: &str) -> Result<usize, String> {
    parse_bytes_at_most(text, crate::base::limits::BATCH_BYTES_MAX)
}

fn parse_chunk_bytes(text: &str) -> Result<usize, String> {
    parse_bytes_at_most(text, crate::base::limits::SNAPSHOT_CHUNK_BYTES)
}

fn parse_positive(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(0) => Err("must be at least 1".to_string()),
        Ok(count) => Ok(count),
        Err(error) => Err(error.to_string()),
    }
}

fn parse_interval(text: &str) -> Result<std::time::Duration, String> {
    let interval = parse_duration(text, std::time::Duration::from_secs(1))?;
    if interval.is_zero() {
        return Err("must be positive".to_string());
    }
    Ok(interval)
}

/// Parses etcd-style durations: "10m", "1h30m", "500ms", "90s"; a bare number is `bare_unit`.
pub fn parse_duration(
    text: &str,
    bare_unit: std::time::Duration,
) -> Result<std::time::Duration, String> {
    let text = text.trim();
    if let Ok(number) = text.parse::<f64>() {
        return Ok(bare_unit.mul_f64(number));
    }
    let mut total = std::time::Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| format!("missing unit in duration {text:?}"))?;
        let number: f64 = rest[..digits]
            .parse()
            .map_err(|_| format!("invalid duration {text:?}"))?;
        let unit_end = rest[digits..]
            .find(|c: char| c.is_ascii_digit())
            .map_or(rest.len(), |end| digits + end);
        let unit = match &rest[digits..unit_end] {
            "ms" => std::time::Duration::from_millis(1),
            "s" => std::time::Duration::from_secs(1),
            "m" => std::time::Duration::from_secs(60),
            "h" => std::time::Duration::from_secs(3600),
            other => return Err(format!("unknown unit {other:?} in duration {text:?}")),
        };
        total += unit.mul_f64(number);
        rest = &rest[unit_end..];
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn etcd_environment(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect()
    }

    #[test]
    fn etcd_environment_variables_are_twins_of_the_flags() {
        let environment = etcd_environment(&[
            ("ETCD_NAME", "from-env"),
            ("ETCD_LISTEN_CLIENT_URLS", "http://127.0.0.1:3379"),
            ("ETCD_EXPERIMENTAL_WATCH_PROGRESS_NOTIFY_INTERVAL", "5s"),
            ("ETCD_UNSAFE_NO_FSYNC", "true"),
            ("ETCD_ENABLE_PPROF", "true"),
            ("ETCD_NOT_A_FLAG", "1"),
            ("ETCD_VERSION", "3.5.13"),
            ("PATH", "/usr/bin"),
        ]);
        let (config, warnings) = Config::parse_with_etcd_environment(
            ["cairn", "--listen-client-urls=http://127.0.0.1:4379"],
            environment,
        )
        .unwrap();
        assert_eq!(config.name, "from-env");
        assert_eq!(
            config.listen_client_urls, "http://127.0.0.1:4379",
            "the command line wins"
        );
        assert_eq!(config.watch_progress_notify_interval, "5s");
        assert!(config.unsafe_no_fsync);
        assert_eq!(
            warnings,
            [
                "unrecognized environment variable ETCD_NOT_A_FLAG: no such flag",
                "unrecognized environment variable ETCD_VERSION: no such flag",
                "--enable-pprof=true has no effect in Cairn: Cairn has no Go profiler; use perf or the process_* metrics"
            ]
        );
        let bad = Config::parse_with_etcd_environment(
            ["cairn"],
            etcd_environment(&[("ETCD_HEARTBEAT_INTERVAL", "soon")]),
        );
        assert!(bad.is_err(), "a bad value is the flag's error");
    }

    #[test]
    fn etcd_flags_cairn_has_no_use_for_are_accepted_or_refused_with_the_reason() {
        let parse = |args: &[&str]| {
            Config::parse_with_etcd_environment(
                std::iter::once("cairn").chain(args.iter().copied()),
                Vec::new(),
            )
        };
        let (_, warnings) = parse(&[
            "--enable-pprof",
            "--backend-batch-interval",
            "10ms",
            "--experimental-txn-mode-write-with-shared-buffer=true",
            "--enable-v2=false",
            "--proxy=off",
        ])
        .unwrap();
        assert_eq!(warnings.len(), 3, "{warnings:?}");
        assert!(warnings[0].starts_with("--backend-batch-interval=10ms has no effect in Cairn: "));
        let refused = parse(&["--enable-v2=true"]).unwrap_err().to_string();
        assert!(
            refused.contains("--enable-v2=true is not supported"),
            "{refused}"
        );
        // Go's booleans never take a separate argument, and unknown flags still fail.
        assert!(parse(&["--enable-pprof", "true"]).is_err());
        assert!(parse(&["--no-such-flag"]).is_err());
    }

    #[test]
    fn the_version_names_the_etcd_api_it_matches() {
        use clap::CommandFactory;
        let version = Config::command().get_version().unwrap().to_string();
        assert_eq!(
            version,
            format!(
                "{} (etcd API {})",
                crate::api::CAIRN_VERSION,
                crate::api::SERVER_VERSION
            )
        );
    }

    #[test]
    fn defaults_match_etcd() {
        let config = Config::parse_from(["cairn"]);
        assert_eq!(config.data_dir(), PathBuf::from("default.cairn"));
        assert_eq!(config.initial_cluster(), "default=http://127.0.0.1:2380");
        assert_eq!(
            (
                config.heartbeat_interval,
                config.election_timeout,
                config.max_txn_ops
            ),
            (100, 1000, 128)
        );
        assert_eq!(config.max_request_bytes, 1_572_864);
        let config = Config::parse_from([
            "cairn",
            "--unsafe-no-fsync",
            "--log-level=debug",
            "--logger",
            "zap",
        ]);
        assert!(config.unsafe_no_fsync);
        assert_eq!(config.log_level, "debug");
        assert_eq!(config.lease_checkpoint_interval, Duration::from_secs(300));
    }

    #[test]
    fn size_flags_stay_within_the_bounds_that_compose() {
        let ceiling = crate::base::limits::REQUEST_BYTES_CEILING;
        assert!(
            Config::try_parse_from(["cairn", &format!("--max-request-bytes={ceiling}")]).is_ok()
        );
        assert!(
            Config::try_parse_from(["cairn", &format!("--max-request-bytes={}", ceiling + 1)])
                .is_err()
        );
        assert!(Config::try_parse_from(["cairn", "--max-request-bytes=0"]).is_err());
        assert!(Config::try_parse_from(["cairn", "--proposal-batch-bytes=4096"]).is_ok());
        let batch_max = crate::base::limits::BATCH_BYTES_MAX;
        assert!(Config::try_parse_from([
            "cairn",
            &format!("--proposal-batch-bytes={}", batch_max + 1)
        ])
        .is_err());
        let chunk_max = crate::base::limits::SNAPSHOT_CHUNK_BYTES;
        assert!(Config::try_parse_from(["cairn", "--snapshot-chunk-bytes=512"]).is_ok());
        assert!(Config::try_parse_from([
            "cairn",
            &format!("--snapshot-chunk-bytes={}", chunk_max + 1)
        ])
        .is_err());
        assert!(Config::try_parse_from(["cairn", "--watch-events-per-response-max=0"]).is_err());
        let one = Config::try_parse_from(["cairn", "--watch-events-per-response-max=1"]);
        assert_eq!(one.unwrap().watch_events_per_response_max, 1);
    }

    #[test]
    fn durations_parse_like_go() {
        let hour = Duration::from_secs(3600);
        assert_eq!(parse_duration("10m", hour), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("1h30m", hour), Ok(Duration::from_secs(5400)));
        assert_eq!(
            parse_duration("500ms", hour),
            Ok(Duration::from_millis(500))
        );
        assert_eq!(parse_duration("2", hour), Ok(Duration::from_secs(7200)));
        assert!(parse_duration("5y", hour).is_err());
    }
}
