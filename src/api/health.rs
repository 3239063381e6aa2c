//! What `/health`, `/livez` and `/readyz` check, as etcd 3.5's `etcdhttp` does: alarms, a
//! leader, and a read through the same path a client's Range takes.

use super::{status, Context};
use crate::apply::AlarmKind;
use crate::base::metrics::Metrics;

/// `/health`'s answer (etcd's `Health` JSON).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    pub healthy: bool,
    pub reason: String,
}

impl Health {
    fn ok() -> Self {
        Health {
            healthy: true,
            reason: String::new(),
        }
    }

    fn failed(reason: String) -> Self {
        Health {
            healthy: false,
            reason,
        }
    }

    /// etcd's JSON: `{"health":"true","reason":""}`.
    pub fn to_json(&self) -> String {
        format!(
            "{{\"health\":\"{}\",\"reason\":{}}}",
            self.healthy,
            json_string(&self.reason)
        )
    }
}

/// `/health?exclude=...&serializable=...`: alarms not excluded (by name, `NOSPACE` or
/// `CORRUPT`), then a leader (unless serializable), then a one-key read (linearizable unless
/// serializable).
pub async fn health(context: &Context, excluded: &[&str], serializable: bool) -> Health {
    let raised = context
        .node
        .alarms()
        .iter()
        .map(|alarm| alarm.kind.name())
        .find(|name| !excluded.contains(name));
    let health = if let Some(name) = raised {
        Health::failed(format!("ALARM {name}"))
    } else if !serializable && context.node.status().leader.is_none() {
        Health::failed("RAFT NO LEADER".into())
    } else {
        match read(context, serializable).await {
            Ok(()) => Health::ok(),
            Err(message) => Health::failed(format!("RANGE ERROR:{message}")),
        }
    };
    count(context.node.metrics(), health.healthy);
    health
}

fn count(metrics: &Metrics, healthy: bool) {
    if healthy {
        metrics.health_checks_succeeded.inc();
    } else {
        metrics.health_checks_failed.inc();
    }
}

/// The read a client's Range does, keys only and one key: a read barrier unless
/// serializable. The error is etcd's message for the failure.
async fn read(context: &Context, serializable: bool) -> Result<(), String> {
    if serializable {
        return Ok(());
    }
    context
        .node
        .read_barrier()
        .await
        .map_err(|error| status(error).message().to_string())
}

/// The kind of a `/livez` or `/readyz` check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    Livez,
    Readyz,
}

impl Probe {
    pub fn path(self) -> &'static str {
        match self {
            Probe::Livez => "/livez",
            Probe::Readyz => "/readyz",
        }
    }

    /// etcd's checks for each probe, in the order they are reported.
    pub fn checks(self) -> &'static [&'static str] {
        match self {
            Probe::Livez => &["serializable_read"],
            Probe::Readyz => &[
                "data_corruption",
                "serializable_read",
                "linearizable_read",
                "non_learner",
            ],
        }
    }
}

/// What a probe found: whether every check passed, and etcd's per-check lines
/// (`[+]name ok` / `[-]name failed: reason`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeResult {
    pub passed: bool,
    pub report: String,
}

/// Runs the named checks of `probe`, in order.
pub async fn run_checks(context: &Context, checks: &[&str]) -> ProbeResult {
    let mut passed = true;
    let mut report = String::new();
    for check in checks {
        let outcome = match *check {
            "data_corruption" if context.node.view().machine.has_alarm(AlarmKind::Corrupt) => {
                Err("Alarm CORRUPT present".to_string())
            }
            "serializable_read" => read(context, true).await,
            "linearizable_read" => read(context, false).await,
            "non_learner" if context.node.status().is_learner => {
                Err("not supported for learner".to_string())
            }
            _ => Ok(()),
        };
        match outcome {
            Ok(()) => report.push_str(&format!("[+]{check} ok\n")),
            Err(reason) => {
                passed = false;
                report.push_str(&format!("[-]{check} failed: {reason}\n"));
            }
        }
    }
    ProbeResult { passed, report }
}

/// A JSON string literal (quotes, backslashes and control characters escaped).
pub fn json_string(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('"');
    for character in text.chars() {
        match character {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            '\n' => quoted.push_str("\\n"),
            '\r' => quoted.push_str("\\r"),
            '\t' => quoted.push_str("\\t"),
            // Go's encoder escapes these too, for HTML.
            '<' => quoted.push_str("\\u003c"),
            '>' => quoted.push_str("\\u003e"),
            '&' => quoted.push_str("\\u0026"),
            control if (control as u32) < 0x20 => {
                quoted.push_str(&format!("\\u{:04x}", control as u32))
            }
            other => quoted.push(other),
        }
    }
    quoted.push('"');
    quoted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_json_is_etcds() {
        assert_eq!(Health::ok().to_json(), r#"{"health":"true","reason":""}"#);
        assert_eq!(
            Health::failed("RAFT NO LEADER".into()).to_json(),
            r#"{"health":"false","reason":"RAFT NO LEADER"}"#
        );
    }

    #[test]
    fn json_strings_escape_what_json_requires() {
        assert_eq!(json_string("a\"b\\c\nd\u{1}"), r#""a\"b\\c\nd\u0001""#);
    }
}
