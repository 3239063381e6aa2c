//! etcd's YAML configuration file (`--config-file`), turned into the flags it stands for so
//! it goes through exactly the same parsing, checks and warnings as a command line. Keys
//! are flag names; `client-transport-security` and `peer-transport-security` hold the TLS
//! settings under shorter names, `socket-options` the socket flags, and lists (such as
//! `log-outputs`) become comma-separated values. As etcd does, a key naming no setting is
//! ignored, with a warning here.

use std::path::Path;
use yaml_rust2::{Yaml, YamlLoader};

/// The TLS keys of a transport-security section, with the flag each one sets for client
/// and for peer traffic.
const TRANSPORT_SECURITY: [(&str, &str, &str); 7] = [
    ("cert-file", "cert-file", "peer-cert-file"),
    ("key-file", "key-file", "peer-key-file"),
    (
        "client-cert-file",
        "client-cert-file",
        "peer-client-cert-file",
    ),
    ("client-key-file", "client-key-file", "peer-client-key-file"),
    (
        "client-cert-auth",
        "client-cert-auth",
        "peer-client-cert-auth",
    ),
    ("trusted-ca-file", "trusted-ca-file", "peer-trusted-ca-file"),
    ("auto-tls", "auto-tls", "peer-auto-tls"),
];

/// The keys of `socket-options` and their flags.
const SOCKET_OPTIONS: [(&str, &str); 2] = [
    ("reuse-port", "socket-reuse-port"),
    ("reuse-address", "socket-reuse-address"),
];

/// The flags (`--name=value`) the file at `path` sets, and a warning per key it ignores.
/// `is_flag` tells which names are settings.
pub fn flags_from_file(
    path: &Path,
    is_flag: &dyn Fn(&str) -> bool,
) -> Result<(Vec<String>, Vec<String>), String> {
    let text = crate::io::read_operator_file(path).map_err(|error| {
        format!(
            "cannot read the configuration file {}: {error}",
            path.display()
        )
    })?;
    flags_from_yaml(&text, is_flag).map_err(|error| {
        format!(
            "the configuration file {} is not valid: {error}",
            path.display()
        )
    })
}

/// As `flags_from_file`, from the file's text.
pub fn flags_from_yaml(
    text: &str,
    is_flag: &dyn Fn(&str) -> bool,
) -> Result<(Vec<String>, Vec<String>), String> {
    let documents = YamlLoader::load_from_str(text).map_err(|error| error.to_string())?;
    let mut flags = Vec::new();
    let mut warnings = Vec::new();
    let Some(document) = documents.into_iter().next() else {
        return Ok((flags, warnings));
    };
    let Yaml::Hash(entries) = document else {
        if document.is_null() {
            return Ok((flags, warnings));
        }
        return Err("the top level must be a mapping of setting names to values".to_string());
    };
    for (key, value) in entries {
        let Some(key) = key.as_str() else {
            return Err(format!("a setting name must be a string, not {key:?}"));
        };
        match key {
            "client-transport-security" | "peer-transport-security" => {
                let peer = key == "peer-transport-security";
                let table = TRANSPORT_SECURITY.iter().map(|(name, client, peer_flag)| {
                    (*name, if peer { *peer_flag } else { *client })
                });
                section(
                    key,
                    &value,
                    &table.collect::<Vec<_>>(),
                    &mut flags,
                    &mut warnings,
                )?;
            }
            "socket-options" => section(key, &value, &SOCKET_OPTIONS, &mut flags, &mut warnings)?,
            _ if is_flag(key) => {
                if let Some(text) = scalar_or_list(key, &value)? {
                    flags.push(format!("--{key}={text}"));
                }
            }
            _ => warnings.push(format!(
                "the configuration file sets {key:?}, which names no setting; it is ignored"
            )),
        }
    }
    Ok((flags, warnings))
}

/// The flags of one nested section, by its table of key → flag.
fn section(
    name: &str,
    value: &Yaml,
    table: &[(&str, &str)],
    flags: &mut Vec<String>,
    warnings: &mut Vec<String>,
) -> Result<(), String> {
    let entries = match value {
        Yaml::Hash(entries) => entries,
        Yaml::Null => return Ok(()),
        _ => return Err(format!("{name} must be a mapping")),
    };
    for (key, value) in entries {
        let key = key.as_str().unwrap_or_default();
        match table.iter().find(|(name, _)| *name == key) {
            Some((_, flag)) => {
                if let Some(text) = scalar_or_list(key, value)? {
                    flags.push(format!("--{flag}={text}"));
                }
            }
            None => warnings.push(format!(
                "the configuration file sets {name}.{key}, which names no setting; it is ignored"
            )),
        }
    }
    Ok(())
}

/// A flag value: a scalar as written, a list of scalars comma-separated; None for null.
fn scalar_or_list(key: &str, value: &Yaml) -> Result<Option<String>, String> {
    let scalar = |value: &Yaml| -> Result<String, String> {
        match value {
            Yaml::String(text) | Yaml::Real(text) => Ok(text.clone()),
            Yaml::Integer(number) => Ok(number.to_string()),
            Yaml::Boolean(flag) => Ok(flag.to_string()),
            _ => Err(format!(
                "{key} must be a string, a number, a boolean or a list of them"
            )),
        }
    };
    match value {
        Yaml::Null => Ok(None),
        Yaml::Array(items) => Ok(Some(
            items
                .iter()
                .map(scalar)
                .collect::<Result<Vec<_>, _>>()?
                .join(","),
        )),
        other => scalar(other).map(Some),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_flag(name: &str) -> bool {
        [
            "name",
            "data-dir",
            "log-outputs",
            "heartbeat-interval",
            "enable-v2",
        ]
        .contains(&name)
    }

    #[test]
    fn keys_become_flags_and_sections_their_tls_flags() {
        let text = "
name: infra1
data-dir: /var/lib/etcd
heartbeat-interval: 100
enable-v2: false
log-outputs: [stderr, /var/log/etcd.log]
wal-dir:
client-transport-security:
  cert-file: /etc/etcd/server.crt
  client-cert-auth: true
peer-transport-security:
  trusted-ca-file: /etc/etcd/ca.crt
  auto-tls: false
  unknown-thing: 1
socket-options:
  reuse-port: true
experimental-from-the-future: 1
";
        let (flags, warnings) = flags_from_yaml(text, &is_flag).unwrap();
        assert_eq!(
            flags,
            [
                "--name=infra1",
                "--data-dir=/var/lib/etcd",
                "--heartbeat-interval=100",
                "--enable-v2=false",
                "--log-outputs=stderr,/var/log/etcd.log",
                "--cert-file=/etc/etcd/server.crt",
                "--client-cert-auth=true",
                "--peer-trusted-ca-file=/etc/etcd/ca.crt",
                "--peer-auto-tls=false",
                "--socket-reuse-port=true",
            ]
        );
        assert_eq!(warnings.len(), 3, "{warnings:?}");
        assert!(warnings
            .iter()
            .any(|w| w.contains("peer-transport-security.unknown-thing")));
        assert!(
            warnings.iter().any(|w| w.contains("wal-dir")),
            "not a Cairn flag: {warnings:?}"
        );
    }

    #[test]
    fn bad_files_are_errors_naming_what_is_wrong() {
        assert!(flags_from_yaml("- just\n- a list\n", &is_flag)
            .unwrap_err()
            .contains("mapping"));
        assert!(flags_from_yaml("name: [a, {b: c}]\n", &is_flag)
            .unwrap_err()
            .contains("name must be"));
        assert!(flags_from_yaml("name: \"unterminated\n", &is_flag).is_err());
        assert_eq!(flags_from_yaml("", &is_flag).unwrap(), (vec![], vec![]));
        let missing =
            flags_from_file(Path::new("/nonexistent/etcd.conf.yml"), &is_flag).unwrap_err();
        assert!(missing.contains("/nonexistent/etcd.conf.yml"), "{missing}");
    }
}
