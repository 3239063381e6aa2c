//! `--auto-tls` and `--peer-auto-tls`: a self-signed certificate made once and kept in the
//! data directory, as etcd's `transport.SelfCert` does.

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// `cert.pem` and `key.pem` in `directory`: the ones there if both exist, else new ones for
/// `hosts` (host names or IP addresses), valid for `validity_years`. A peer certificate is
/// also good for client authentication (members dial each other with it).
pub fn self_signed_certificate(
    directory: &Path,
    hosts: &[String],
    validity_years: u32,
    for_peers: bool,
) -> Result<(PathBuf, PathBuf), String> {
    if validity_years == 0 {
        return Err("selfSignedCertValidity is invalid,it should be greater than 0".into());
    }
    let cert_file = directory.join("cert.pem");
    let key_file = directory.join("key.pem");
    if cert_file.exists() && key_file.exists() {
        return Ok((cert_file, key_file));
    }
    let failed = |what: &str, error: &dyn std::fmt::Display| {
        format!(
            "generating a certificate in {}: {what}: {error}",
            directory.display()
        )
    };
    std::fs::create_dir_all(directory).map_err(|error| failed("creating the directory", &error))?;
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(DnType::OrganizationName, "etcd");
    params.distinguished_name = name;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|error| failed("reading the clock", &error))?;
    let not_before = time::OffsetDateTime::from_unix_timestamp(now.as_secs() as i64)
        .map_err(|error| failed("reading the clock", &error))?;
    params.not_before = not_before;
    params.not_after = not_before + time::Duration::days(365 * i64::from(validity_years));
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
        KeyUsagePurpose::KeyCertSign,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    if for_peers {
        params
            .extended_key_usages
            .push(ExtendedKeyUsagePurpose::ClientAuth);
    }
    for host in hosts {
        let san = match host.parse::<std::net::IpAddr>() {
            Ok(address) => SanType::IpAddress(address),
            Err(_) => SanType::DnsName(
                host.clone()
                    .try_into()
                    .map_err(|error| failed("a host name", &error))?,
            ),
        };
        params.subject_alt_names.push(san);
    }
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384)
        .map_err(|error| failed("a key", &error))?;
    let certificate = params
        .self_signed(&key)
        .map_err(|error| failed("signing", &error))?;
    std::fs::write(&cert_file, certificate.pem())
        .map_err(|error| failed("writing cert.pem", &error))?;
    let mut key_out = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&key_file)
        .map_err(|error| failed("writing key.pem", &error))?;
    key_out
        .write_all(key.serialize_pem().as_bytes())
        .and_then(|()| key_out.sync_all())
        .map_err(|error| failed("writing key.pem", &error))?;
    tracing::warn!(
        directory = %directory.display(),
        validity_years,
        "automatically generated a self-signed certificate"
    );
    Ok((cert_file, key_file))
}
