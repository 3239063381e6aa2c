//! etcd's TLS flags, and what they make of a member's listeners and of its connections to
//! peers (see `io::tls` for how each is served).

use super::config::{split_urls, Config};
use super::error::StartError;
use super::listeners::is_https;
use crate::io::tls::{self_signed_certificate, ClientTls, ServerTls, TlsOptions, TlsProtocol};
use crate::storage::DataDir;
use clap::{ArgAction, Args};
use std::path::PathBuf;

#[derive(Args, Debug, Clone, Default)]
pub struct TlsFlags {
    /// Path to the client server TLS cert file.
    #[arg(long, env = "CAIRN_CERT_FILE")]
    pub cert_file: Option<PathBuf>,
    /// Path to the client server TLS key file.
    #[arg(long, env = "CAIRN_KEY_FILE")]
    pub key_file: Option<PathBuf>,
    /// Enable client cert authentication.
    #[arg(long, env = "CAIRN_CLIENT_CERT_AUTH", default_value_t = false, num_args = 0..=1, default_missing_value = "true", action = ArgAction::Set)]
    pub client_cert_auth: bool,
    /// Path to the client certificate revocation list file.
    #[arg(long, env = "CAIRN_CLIENT_CRL_FILE")]
    pub client_crl_file: Option<PathBuf>,
    /// Comma-separated list of allowed SAN hostnames for client cert authentication.
    #[arg(
        long,
        env = "CAIRN_CLIENT_CERT_ALLOWED_HOSTNAME",
        value_delimiter = ','
    )]
    pub client_cert_allowed_hostname: Vec<String>,
    /// Path to the client server TLS trusted CA cert file.
    #[arg(long, env = "CAIRN_TRUSTED_CA_FILE")]
    pub trusted_ca_file: Option<PathBuf>,
    /// Client TLS using generated certificates.
    #[arg(long, env = "CAIRN_AUTO_TLS", default_value_t = false, num_args = 0..=1, default_missing_value = "true", action = ArgAction::Set)]
    pub auto_tls: bool,
    /// Path to the peer server TLS cert file.
    #[arg(long, env = "CAIRN_PEER_CERT_FILE")]
    pub peer_cert_file: Option<PathBuf>,
    /// Path to the peer server TLS key file.
    #[arg(long, env = "CAIRN_PEER_KEY_FILE")]
    pub peer_key_file: Option<PathBuf>,
    /// Path to the certificate presented when dialing peers [default: --peer-cert-file].
    #[arg(long, env = "CAIRN_PEER_CLIENT_CERT_FILE")]
    pub peer_client_cert_file: Option<PathBuf>,
    /// Path to the key of --peer-client-cert-file.
    #[arg(long, env = "CAIRN_PEER_CLIENT_KEY_FILE")]
    pub peer_client_key_file: Option<PathBuf>,
    /// Enable peer client cert authentication.
    #[arg(long, env = "CAIRN_PEER_CLIENT_CERT_AUTH", default_value_t = false, num_args = 0..=1, default_missing_value = "true", action = ArgAction::Set)]
    pub peer_client_cert_auth: bool,
    /// Path to the peer server TLS trusted CA file.
    #[arg(long, env = "CAIRN_PEER_TRUSTED_CA_FILE")]
    pub peer_trusted_ca_file: Option<PathBuf>,
    /// Peer TLS using generated certificates.
    #[arg(long, env = "CAIRN_PEER_AUTO_TLS", default_value_t = false, num_args = 0..=1, default_missing_value = "true", action = ArgAction::Set)]
    pub peer_auto_tls: bool,
    /// Path to the peer certificate revocation list file.
    #[arg(long, env = "CAIRN_PEER_CRL_FILE")]
    pub peer_crl_file: Option<PathBuf>,
    /// Comma-separated list of allowed CNs for inter-peer TLS authentication.
    #[arg(long, env = "CAIRN_PEER_CERT_ALLOWED_CN", value_delimiter = ',')]
    pub peer_cert_allowed_cn: Vec<String>,
    /// Comma-separated list of allowed SAN hostnames for inter-peer TLS authentication.
    #[arg(long, env = "CAIRN_PEER_CERT_ALLOWED_HOSTNAME", value_delimiter = ',')]
    pub peer_cert_allowed_hostname: Vec<String>,
    /// Comma-separated list of supported TLS cipher suites between client/server and peers
    /// (empty: the library's choice).
    #[arg(long, env = "CAIRN_CIPHER_SUITES", value_delimiter = ',')]
    pub cipher_suites: Vec<String>,
    /// Minimum TLS version supported: TLS1.2 or TLS1.3.
    #[arg(long, env = "CAIRN_TLS_MIN_VERSION", default_value = "TLS1.2")]
    pub tls_min_version: String,
    /// Maximum TLS version supported: TLS1.2 or TLS1.3 (empty: the library's choice).
    #[arg(long, env = "CAIRN_TLS_MAX_VERSION", default_value = "")]
    pub tls_max_version: String,
    /// The validity period of the client and peer certificates (auto TLS), in years.
    #[arg(long, env = "CAIRN_SELF_SIGNED_CERT_VALIDITY", default_value_t = 1)]
    pub self_signed_cert_validity: u32,
}

/// What the TLS flags make of one member.
#[derive(Default)]
pub struct MemberTls {
    /// For `https://` client URLs.
    pub clients: Option<ServerTls>,
    /// For `https://` peer URLs.
    pub peers: Option<ServerTls>,
    /// For dialing `https://` peers.
    pub dial_peers: Option<ClientTls>,
}

/// One side's flags, as `side_options` reads them.
struct Side<'a> {
    name: &'static str,
    flag_prefix: &'static str,
    cert_file: &'a Option<PathBuf>,
    key_file: &'a Option<PathBuf>,
    auto_tls: bool,
    urls: Vec<String>,
    fixtures: PathBuf,
}

impl Side<'_> {
    fn hosts(&self) -> Vec<String> {
        self.urls
            .iter()
            .filter_map(|url| {
                let host_port = url.split_once("://")?.1.trim_end_matches('/');
                let host = host_port
                    .rsplit_once(':')
                    .map_or(host_port, |(host, _)| host);
                Some(
                    host.trim_start_matches('[')
                        .trim_end_matches(']')
                        .to_string(),
                )
            })
            .collect()
    }
}

/// Resolves the TLS flags: generated certificates for auto TLS, etcd's checks and messages,
/// every file loaded once (an error names it).
pub fn resolve(config: &Config, data_dir: &DataDir) -> Result<MemberTls, StartError> {
    let flags = &config.tls;
    let protocol = TlsProtocol::new(
        flags.cipher_suites.clone(),
        &flags.tls_min_version,
        &flags.tls_max_version,
    )
    .map_err(StartError::Flag)?;
    if !flags.peer_cert_allowed_cn.is_empty() && !flags.peer_cert_allowed_hostname.is_empty() {
        return Err(StartError::Flag(format!(
            "AllowedCN and AllowedHostname are mutually exclusive (cn={:?}, hostname={:?})",
            flags.peer_cert_allowed_cn, flags.peer_cert_allowed_hostname
        )));
    }
    let client_side = Side {
        name: "client",
        flag_prefix: "",
        cert_file: &flags.cert_file,
        key_file: &flags.key_file,
        auto_tls: flags.auto_tls,
        urls: split_urls(&config.listen_client_urls),
        fixtures: data_dir.root().join("fixtures").join("client"),
    };
    let client = side_options(&client_side, flags, &protocol, |options| {
        options.client_cert_auth = flags.client_cert_auth;
        options.trusted_ca_file = flags.trusted_ca_file.clone();
        options.crl_file = flags.client_crl_file.clone();
        options.allowed_hostnames = flags.client_cert_allowed_hostname.clone();
    })?;
    let peer_side = Side {
        name: "peer",
        flag_prefix: "peer-",
        cert_file: &flags.peer_cert_file,
        key_file: &flags.peer_key_file,
        auto_tls: flags.peer_auto_tls,
        urls: split_urls(&config.listen_peer_urls),
        fixtures: data_dir.root().join("fixtures").join("peer"),
    };
    let peer = side_options(&peer_side, flags, &protocol, |options| {
        options.client_cert_auth = flags.peer_client_cert_auth;
        options.trusted_ca_file = flags.peer_trusted_ca_file.clone();
        options.crl_file = flags.peer_crl_file.clone();
        options.allowed_common_names = flags.peer_cert_allowed_cn.clone();
        options.allowed_hostnames = flags.peer_cert_allowed_hostname.clone();
        options.client_cert_file = flags.peer_client_cert_file.clone();
        options.client_key_file = flags.peer_client_key_file.clone();
    })?;
    let server = |what: &'static str, options: Option<TlsOptions>, side: &Side| {
        if !side.urls.iter().any(|url| is_https(url)) {
            return Ok(None);
        }
        ServerTls::new(what, options.expect("checked by side_options"))
            .map(Some)
            .map_err(|error| StartError::Flag(format!("{} TLS: {error}", side.name)))
    };
    let dials_https = split_urls(&config.initial_cluster())
        .iter()
        .chain(split_urls(&config.initial_advertise_peer_urls).iter())
        .any(|entry| entry.contains("https://"));
    let dial_peers = if peer.is_some() || dials_https {
        Some(
            ClientTls::new(peer.clone())
                .map_err(|error| StartError::Flag(format!("peer TLS: {error}")))?,
        )
    } else {
        None
    };
    Ok(MemberTls {
        clients: server("client listener", client, &client_side)?,
        peers: server("peer listener", peer, &peer_side)?,
        dial_peers,
    })
}

/// One side's options, or `None` when it has no certificate. `https://` URLs without one
/// fail with etcd's message.
fn side_options(
    side: &Side,
    flags: &TlsFlags,
    protocol: &TlsProtocol,
    checks: impl FnOnce(&mut TlsOptions),
) -> Result<Option<TlsOptions>, StartError> {
    let prefix = side.flag_prefix;
    let files = match (side.cert_file, side.key_file) {
        (Some(cert), Some(key)) => {
            if side.auto_tls {
                tracing::warn!("ignoring {} auto TLS since certs given", side.name);
            }
            Some((cert.clone(), key.clone(), false))
        }
        (None, None) if side.auto_tls => {
            let (cert, key) = self_signed_certificate(
                &side.fixtures,
                &side.hosts(),
                flags.self_signed_cert_validity,
                side.name == "peer",
            )
            .map_err(StartError::Flag)?;
            Some((cert, key, true))
        }
        (None, None) => None,
        _ => {
            return Err(StartError::Flag(format!(
                "--{prefix}cert-file and --{prefix}key-file must both be given"
            )))
        }
    };
    let Some((cert_file, key_file, self_signed)) = files else {
        if let Some(url) = side.urls.iter().find(|url| is_https(url)) {
            return Err(StartError::Flag(format!(
                "TLS key/cert (--{prefix}cert-file, --{prefix}key-file) must be provided for {} url {url} with HTTPS scheme",
                side.name
            )));
        }
        return Ok(None);
    };
    let mut options = TlsOptions {
        cert_file,
        key_file,
        client_cert_file: None,
        client_key_file: None,
        trusted_ca_file: None,
        crl_file: None,
        client_cert_auth: false,
        allowed_common_names: Vec::new(),
        allowed_hostnames: Vec::new(),
        self_signed,
        protocol: protocol.clone(),
    };
    if self_signed {
        // As etcd: a generated certificate replaces the side's whole TLS configuration, so
        // its client-certificate checks do not apply.
        let mut unused = options.clone();
        checks(&mut unused);
        if unused.requires_client_certificates() || unused.crl_file.is_some() {
            tracing::warn!(
                "{} auto TLS: the client certificate checks (client cert auth, trusted CA, CRL) do not apply to a generated certificate",
                side.name
            );
        }
    } else {
        checks(&mut options);
    }
    Ok(Some(options))
}
