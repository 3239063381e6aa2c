//! etcd 3.5's flags that Cairn has no use for, so an existing unit file or manifest still
//! starts: each is accepted (with its `ETCD_*` twin) and logged once with why it has no
//! effect here, and the few whose meaning Cairn cannot honour are refused with the reason.
//! A flag etcd does not have still fails, as it fails in etcd.

use clap::{Arg, ArgAction, ArgMatches, Command};

/// How etcd parses a flag: Go's booleans take `--flag` or `--flag=value`, never a separate
/// argument; every other flag takes a value.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Boolean,
    Value,
}

use Kind::{Boolean, Value};

/// What Cairn does with a flag it accepts: nothing (and why), or refuses when it is set to
/// anything but the values listed (with why).
#[derive(Clone, Copy)]
enum Handling {
    NoEffect(&'static str),
    RefusedUnless(&'static [&'static str], &'static str),
}

use Handling::{NoEffect, RefusedUnless};

const NO_BBOLT: &str = "Cairn's store is not bbolt; it keeps its state in memory, made durable by the WAL and snapshots";
const NO_TRACING: &str = "Cairn exports no OpenTelemetry traces";
const NO_V2: &str = "Cairn serves only the v3 API";

const FLAGS: &[(&str, Kind, Handling)] = &[
    ("backend-batch-interval", Value, NoEffect(NO_BBOLT)),
    ("backend-batch-limit", Value, NoEffect(NO_BBOLT)),
    ("backend-bbolt-freelist-type", Value, NoEffect(NO_BBOLT)),
    ("experimental-bootstrap-defrag-threshold-megabytes", Value, NoEffect(NO_BBOLT)),
    ("experimental-compaction-batch-limit", Value, NoEffect(NO_BBOLT)),
    ("experimental-compaction-sleep-interval", Value, NoEffect(NO_BBOLT)),
    ("experimental-txn-mode-write-with-shared-buffer", Boolean, NoEffect(NO_BBOLT)),
    ("experimental-memory-mlock", Boolean, NoEffect(NO_BBOLT)),
    ("experimental-stop-grpc-service-on-defrag", Boolean, NoEffect("Cairn defragments (a snapshot, then a WAL purge) while serving")),
    ("max-snapshots", Value, NoEffect("Cairn keeps the newest two snapshots (and any being sent)")),
    ("max-wals", Value, NoEffect("Cairn removes a WAL segment once a snapshot covers it")),
    ("wal-dir", Value, NoEffect("Cairn keeps its WAL in <data-dir>/member/wal")),
    ("experimental-snapshot-catchup-entries", Value, NoEffect("Cairn's leader sends a snapshot only for entries it has purged")),
    ("experimental-enable-distributed-tracing", Boolean, NoEffect(NO_TRACING)),
    ("experimental-distributed-tracing-address", Value, NoEffect(NO_TRACING)),
    ("experimental-distributed-tracing-instance-id", Value, NoEffect(NO_TRACING)),
    ("experimental-distributed-tracing-sampling-rate", Value, NoEffect(NO_TRACING)),
    ("experimental-distributed-tracing-service-name", Value, NoEffect(NO_TRACING)),
    ("experimental-enable-lease-checkpoint", Boolean, NoEffect("Cairn always checkpoints remaining lease TTLs through raft")),
    ("experimental-enable-lease-checkpoint-persist", Boolean, NoEffect("Cairn's checkpoints are always replicated and persisted")),
    ("experimental-downgrade-check-time", Value, NoEffect("Cairn does not support downgrades")),
    ("experimental-warning-apply-duration", Value, NoEffect("Cairn counts applies over 100 ms as slow")),
    ("experimental-peer-skip-client-san-verification", Boolean, NoEffect("Cairn verifies peers with --peer-cert-allowed-cn or host names")),
    ("strict-reconfig-check", Boolean, NoEffect("Cairn always refuses a membership change that would lose quorum")),
    ("pre-vote", Boolean, NoEffect("Cairn always asks for pre-votes before an election (etcd 3.5's default)")),
    ("initial-election-tick-advance", Boolean, NoEffect("a sole voter campaigns at once; others wait one randomized election timeout")),
    ("raft-read-timeout", Value, NoEffect("Cairn bounds each peer message by half an election timeout")),
    ("raft-write-timeout", Value, NoEffect("Cairn bounds each peer message by half an election timeout")),
    ("grpc-keepalive-min-time", Value, NoEffect("Cairn does not police client keepalive pings")),
    ("grpc-keepalive-interval", Value, NoEffect("Cairn sends no server keepalive pings")),
    ("grpc-keepalive-timeout", Value, NoEffect("Cairn sends no server keepalive pings")),
    ("max-concurrent-streams", Value, NoEffect("Cairn uses HTTP/2's default stream limit")),
    ("socket-reuse-address", Boolean, NoEffect("Cairn's listeners set no extra socket options")),
    ("socket-reuse-port", Boolean, NoEffect("Cairn's listeners set no extra socket options")),
    ("enable-pprof", Boolean, NoEffect("Cairn has no Go profiler; use perf or the process_* metrics")),
    ("enable-log-rotation", Boolean, NoEffect("Cairn does not rotate logs; use logrotate or journald")),
    ("log-rotation-config-json", Value, NoEffect("Cairn does not rotate logs; use logrotate or journald")),
    ("client-cert-file", Value, NoEffect("etcd dials itself with it for its JSON gateway; Cairn's gateway calls the services in process")),
    ("client-key-file", Value, NoEffect("etcd dials itself with it for its JSON gateway; Cairn's gateway calls the services in process")),
    ("v2-deprecation", Value, NoEffect(NO_V2)),
    ("enable-v2", Boolean, RefusedUnless(&["false"], NO_V2)),
    ("experimental-enable-v2v3", Value, RefusedUnless(&[""], NO_V2)),
    ("discovery", Value, RefusedUnless(&[""], "Cairn bootstraps from --initial-cluster only")),
    ("discovery-srv", Value, RefusedUnless(&[""], "Cairn bootstraps from --initial-cluster only")),
    ("discovery-srv-name", Value, NoEffect("Cairn bootstraps from --initial-cluster only")),
    ("discovery-fallback", Value, NoEffect("Cairn bootstraps from --initial-cluster only")),
    ("discovery-proxy", Value, NoEffect("Cairn bootstraps from --initial-cluster only")),
    ("proxy", Value, RefusedUnless(&["off"], "Cairn has no v2 proxy mode")),
    ("proxy-failure-wait", Value, NoEffect("Cairn has no v2 proxy mode")),
    ("proxy-refresh-interval", Value, NoEffect("Cairn has no v2 proxy mode")),
    ("proxy-dial-timeout", Value, NoEffect("Cairn has no v2 proxy mode")),
    ("proxy-write-timeout", Value, NoEffect("Cairn has no v2 proxy mode")),
    ("proxy-read-timeout", Value, NoEffect("Cairn has no v2 proxy mode")),
];

/// `command` with every accepted etcd flag added (hidden from `--help`).
pub fn add(command: Command) -> Command {
    FLAGS.iter().fold(command, |command, (name, kind, _)| {
        let arg = Arg::new(*name).long(*name).hide(true);
        command.arg(match kind {
            Boolean => arg
                .num_args(0..=1)
                .require_equals(true)
                .default_missing_value("true")
                .action(ArgAction::Set),
            Value => arg.num_args(1).action(ArgAction::Set),
        })
    })
}

/// One warning per accepted flag that was set, or the refusal of one Cairn cannot honour.
pub fn check(matches: &ArgMatches) -> Result<Vec<String>, String> {
    let mut warnings = Vec::new();
    for (name, _, handling) in FLAGS {
        let Some(value) = matches.get_one::<String>(name) else {
            continue;
        };
        match handling {
            NoEffect(reason) => {
                warnings.push(format!("--{name}={value} has no effect in Cairn: {reason}"))
            }
            RefusedUnless(allowed, _) if allowed.contains(&value.as_str()) => {}
            RefusedUnless(_, reason) => {
                return Err(format!("--{name}={value} is not supported: {reason}"))
            }
        }
    }
    Ok(warnings)
}
