//! rustls configurations from etcd's TLS flags: the listeners' (`ServerTls`) and the one a
//! member dials its peers with (`ClientTls`), each rebuilt when its files change.

use super::reload::Reloading;
use super::verify::{AllowedIdentities, AllowedServers, AnyServerCertificate, Identities};
use super::{TlsOptions, TlsProtocol, TlsVersion};
use rustls::client::ResolvesClientCert;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};
use rustls::server::danger::ClientCertVerifier;
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, ProtocolVersion, RootCertStore, ServerConfig, SignatureScheme};
use std::path::Path;
use std::sync::Arc;

/// Listeners serve gRPC over HTTP/2 and etcd's HTTP endpoints over either version, so a
/// client offering only HTTP/1.1 (curl --http1.1, Python's urllib3) is not refused; a
/// client offering no ALPN at all still gets served. Peers are dialed with HTTP/2 only.
const SERVER_ALPN_PROTOCOLS: &[&[u8]] = &[b"h2", b"http/1.1"];
const CLIENT_ALPN_PROTOCOLS: &[&[u8]] = &[b"h2"];

/// The TLS of one listener side (clients or peers).
#[derive(Clone)]
pub struct ServerTls {
    config: Arc<Reloading<ServerConfig>>,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("ServerTls")
    }
}

impl ServerTls {
    /// Loads every file once; an error names the file and fails the start.
    pub fn new(what: &'static str, options: TlsOptions) -> Result<ServerTls, String> {
        let files = options.files();
        let build = Box::new(move || server_config(&options));
        Ok(ServerTls {
            config: Arc::new(Reloading::new(what, files, build)?),
        })
    }

    /// The configuration for the next handshake (reloaded if its files changed).
    pub fn config(&self) -> Arc<ServerConfig> {
        self.config.current()
    }
}

/// The TLS a member dials `https://` peers with.
#[derive(Clone)]
pub struct ClientTls {
    config: Arc<Reloading<ClientConfig>>,
}

impl std::fmt::Debug for ClientTls {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("ClientTls")
    }
}

impl ClientTls {
    /// From the peer flags; without them, peers are verified against the system's CAs and
    /// this member presents no certificate.
    pub fn new(options: Option<TlsOptions>) -> Result<ClientTls, String> {
        let files = options.as_ref().map(TlsOptions::files).unwrap_or_default();
        let build = Box::new(move || client_config(options.as_ref()));
        Ok(ClientTls {
            config: Arc::new(Reloading::new("connections to peers", files, build)?),
        })
    }

    pub fn config(&self) -> Arc<ClientConfig> {
        self.config.current()
    }
}

fn server_config(options: &TlsOptions) -> Result<ServerConfig, String> {
    let provider = provider(&options.protocol)?;
    let key = certified_key(&options.cert_file, &options.key_file, &provider)?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions(&options.protocol))
        .map_err(|error| error.to_string())?;
    let builder = if options.requires_client_certificates() {
        builder.with_client_cert_verifier(client_verifier(options, provider)?)
    } else {
        builder.with_no_client_auth()
    };
    let mut config = builder.with_cert_resolver(Arc::new(Fixed(key)));
    config.alpn_protocols = SERVER_ALPN_PROTOCOLS
        .iter()
        .map(|name| name.to_vec())
        .collect();
    Ok(config)
}

fn client_verifier(
    options: &TlsOptions,
    provider: Arc<CryptoProvider>,
) -> Result<Arc<dyn ClientCertVerifier>, String> {
    let roots = Arc::new(roots(options.trusted_ca_file.as_deref())?);
    let mut builder = WebPkiClientVerifier::builder_with_provider(roots, provider);
    if let Some(crl_file) = &options.crl_file {
        // As etcd: a certificate listed in the CRL is refused; one its CRLs do not cover is
        // not (etcd matches serial numbers only; rustls also checks the CRL's signature).
        builder = builder
            .with_crls(crls(crl_file)?)
            .only_check_end_entity_revocation()
            .allow_unknown_revocation_status();
    }
    let verifier = builder
        .build()
        .map_err(|error| format!("verifying client certificates: {error}"))?;
    Ok(match identities(options) {
        Some(identities) => Arc::new(AllowedIdentities {
            inner: verifier,
            identities,
        }),
        None => verifier,
    })
}

/// The allowed common names or host names, if the flags name any.
fn identities(options: &TlsOptions) -> Option<Identities> {
    if options.allowed_common_names.is_empty() && options.allowed_hostnames.is_empty() {
        return None;
    }
    Some(Identities {
        common_names: options.allowed_common_names.clone(),
        hostnames: options.allowed_hostnames.clone(),
    })
}

fn client_config(options: Option<&TlsOptions>) -> Result<ClientConfig, String> {
    let protocol = options
        .map(|options| options.protocol.clone())
        .unwrap_or_default();
    let provider = provider(&protocol)?;
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions(&protocol))
        .map_err(|error| error.to_string())?;
    let builder = if options.is_some_and(|options| options.self_signed) {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyServerCertificate(provider.clone())))
    } else {
        let roots = roots(options.and_then(|options| options.trusted_ca_file.as_deref()))?;
        let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots),
            provider.clone(),
        )
        .build()
        .map_err(|error| format!("verifying peers' certificates: {error}"))?;
        match options.and_then(identities) {
            Some(identities) => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AllowedServers {
                    inner: verifier,
                    identities,
                })),
            None => builder.with_webpki_verifier(verifier),
        }
    };
    let mut config = match options {
        Some(options) => {
            let cert_file = options
                .client_cert_file
                .as_ref()
                .unwrap_or(&options.cert_file);
            let key_file = options
                .client_key_file
                .as_ref()
                .unwrap_or(&options.key_file);
            let key = certified_key(cert_file, key_file, &provider)?;
            builder.with_client_cert_resolver(Arc::new(Fixed(key)))
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = CLIENT_ALPN_PROTOCOLS
        .iter()
        .map(|name| name.to_vec())
        .collect();
    Ok(config)
}

/// One certificate and key for every handshake (until the files change).
#[derive(Debug)]
struct Fixed(Arc<CertifiedKey>);

impl ResolvesServerCert for Fixed {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
}

impl ResolvesClientCert for Fixed {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _schemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// Go's names of the TLS 1.2 suites rustls does not implement (CBC, RC4, 3DES, static RSA
/// key exchange: all insecure). A deployment that lists them still starts; they are dropped.
const GO_SUITES_NOT_OFFERED: &[&str] = &[
    "TLS_RSA_WITH_RC4_128_SHA",
    "TLS_RSA_WITH_3DES_EDE_CBC_SHA",
    "TLS_RSA_WITH_AES_128_CBC_SHA",
    "TLS_RSA_WITH_AES_256_CBC_SHA",
    "TLS_RSA_WITH_AES_128_CBC_SHA256",
    "TLS_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_RC4_128_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_RC4_128_SHA",
    "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256",
];

/// rustls's name for a suite Go (and so etcd's flag) names `name`.
fn rustls_suite_name(name: &str) -> String {
    match name {
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305" | "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305" => {
            format!("{name}_SHA256")
        }
        "TLS_AES_128_GCM_SHA256" | "TLS_AES_256_GCM_SHA384" | "TLS_CHACHA20_POLY1305_SHA256" => {
            name.replacen("TLS_", "TLS13_", 1)
        }
        other => other.to_string(),
    }
}

fn is_tls13(suite: &rustls::SupportedCipherSuite) -> bool {
    suite.version().version == ProtocolVersion::TLSv1_3
}

/// ring's provider with `--cipher-suites` applied to TLS 1.2 (TLS 1.3's suites all stay, as
/// in Go).
fn provider(protocol: &TlsProtocol) -> Result<Arc<CryptoProvider>, String> {
    let mut provider = rustls::crypto::ring::default_provider();
    if protocol.cipher_suites.is_empty() {
        return Ok(Arc::new(provider));
    }
    let mut chosen: Vec<rustls::SupportedCipherSuite> = Vec::new();
    for name in &protocol.cipher_suites {
        let wanted = rustls_suite_name(name);
        let found = provider
            .cipher_suites
            .iter()
            .find(|suite| suite.suite().as_str() == Some(wanted.as_str()));
        match found {
            Some(suite) if !is_tls13(suite) && !chosen.contains(suite) => chosen.push(*suite),
            Some(_) => {}
            None if GO_SUITES_NOT_OFFERED.contains(&name.as_str()) => tracing::warn!(
                suite = %name,
                "--cipher-suites names an insecure suite rustls does not implement: not offered"
            ),
            None => return Err(format!("unexpected TLS cipher suite {name:?}")),
        }
    }
    if chosen.is_empty() && protocol.max_version == TlsVersion::Tls12 {
        return Err(format!(
            "none of --cipher-suites {:?} is offered, and TLS 1.3 is disabled",
            protocol.cipher_suites
        ));
    }
    chosen.extend(
        provider
            .cipher_suites
            .iter()
            .filter(|suite| is_tls13(suite)),
    );
    provider.cipher_suites = chosen;
    Ok(Arc::new(provider))
}

fn versions(protocol: &TlsProtocol) -> Vec<&'static rustls::SupportedProtocolVersion> {
    [
        (TlsVersion::Tls12, &rustls::version::TLS12),
        (TlsVersion::Tls13, &rustls::version::TLS13),
    ]
    .into_iter()
    .filter(|(version, _)| protocol.min_version <= *version && *version <= protocol.max_version)
    .map(|(_, supported)| supported)
    .collect()
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|error| format!("{}: {error}", path.display()))
}

fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let bytes = read(path)?;
    let certificates = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| format!("{}: {error}", path.display()))?;
    if certificates.is_empty() {
        return Err(format!(
            "{}: no PEM certificate in the file",
            path.display()
        ));
    }
    Ok(certificates)
}

fn crls(path: &Path) -> Result<Vec<CertificateRevocationListDer<'static>>, String> {
    let bytes = read(path)?;
    if !bytes.starts_with(b"-----") {
        // DER, as Go's x509.ParseCRL also reads.
        return Ok(vec![CertificateRevocationListDer::from(bytes)]);
    }
    let crls = CertificateRevocationListDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| format!("{}: {error}", path.display()))?;
    if crls.is_empty() {
        return Err(format!("{}: no PEM X509 CRL in the file", path.display()));
    }
    Ok(crls)
}

fn roots(ca_file: Option<&Path>) -> Result<RootCertStore, String> {
    let mut store = RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let (added, _) = store.add_parsable_certificates(certificates(path)?);
            if added == 0 {
                return Err(format!("{}: no usable CA certificate", path.display()));
            }
        }
        None => {
            // As Go without a CA file: the system's bundle.
            let loaded = rustls_native_certs::load_native_certs();
            store.add_parsable_certificates(loaded.certs);
        }
    }
    Ok(store)
}

/// A certificate chain with its key, checked to belong together (a rotation that replaced
/// one file but not yet the other is refused, and the old pair stays).
fn certified_key(
    cert_file: &Path,
    key_file: &Path,
    provider: &CryptoProvider,
) -> Result<Arc<CertifiedKey>, String> {
    let chain = certificates(cert_file)?;
    let key = PrivateKeyDer::from_pem_slice(&read(key_file)?)
        .map_err(|error| format!("{}: {error}", key_file.display()))?;
    let signing_key = provider
        .key_provider
        .load_private_key(key)
        .map_err(|error| format!("{}: {error}", key_file.display()))?;
    let certified = CertifiedKey::new(chain, signing_key);
    certified.keys_match().map_err(|error| {
        format!(
            "{} does not belong to {}: {error}",
            key_file.display(),
            cert_file.display()
        )
    })?;
    Ok(Arc::new(certified))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(protocol: &TlsProtocol) -> Result<Vec<String>, String> {
        Ok(provider(protocol)?
            .cipher_suites
            .iter()
            .map(|suite| suite.suite().as_str().unwrap_or_default().to_string())
            .collect())
    }

    #[test]
    fn cipher_suites_take_go_names_and_keep_tls13() {
        let protocol = |suites: &[&str]| TlsProtocol {
            cipher_suites: suites.iter().map(|name| name.to_string()).collect(),
            ..TlsProtocol::default()
        };
        let chosen = names(&protocol(&[
            "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305",
            "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
            // Insecure, not in rustls: dropped, not fatal.
            "TLS_RSA_WITH_AES_128_CBC_SHA",
        ]))
        .unwrap();
        assert_eq!(
            chosen,
            [
                "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
                "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
                "TLS13_AES_256_GCM_SHA384",
                "TLS13_AES_128_GCM_SHA256",
                "TLS13_CHACHA20_POLY1305_SHA256",
            ]
        );
        assert_eq!(
            names(&protocol(&["TLS_MADE_UP"])).unwrap_err(),
            "unexpected TLS cipher suite \"TLS_MADE_UP\""
        );
        let only_tls12 = TlsProtocol {
            max_version: TlsVersion::Tls12,
            ..protocol(&["TLS_RSA_WITH_RC4_128_SHA"])
        };
        assert!(names(&only_tls12)
            .unwrap_err()
            .contains("none of --cipher-suites"));
        assert_eq!(
            versions(&only_tls12)
                .iter()
                .map(|version| version.version)
                .collect::<Vec<_>>(),
            [ProtocolVersion::TLSv1_2]
        );
    }
}
