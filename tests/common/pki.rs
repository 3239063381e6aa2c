//! Certificates made by the tests (rcgen): CAs, server and client certificates, CRLs, each
//! written as PEM files in a directory.

use rcgen::{
    BasicConstraints, Certificate, CertificateParams, CertificateRevocationListParams, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyIdMethod, KeyPair, KeyUsagePurpose, RevokedCertParams,
    SerialNumber,
};
use std::path::{Path, PathBuf};

/// A certificate authority that issues certificates into `directory`.
pub struct Authority {
    pub name: String,
    pub cert_file: PathBuf,
    certificate: Certificate,
    key: KeyPair,
    directory: PathBuf,
}

/// An issued certificate's files.
#[derive(Clone, Debug)]
pub struct Issued {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    pub serial: u64,
}

fn validity(params: &mut CertificateParams) {
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(30);
}

impl Authority {
    pub fn new(directory: &Path, name: &str) -> Authority {
        std::fs::create_dir_all(directory).unwrap();
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        validity(&mut params);
        let certificate = params.self_signed(&key).unwrap();
        let cert_file = directory.join(format!("{name}.pem"));
        std::fs::write(&cert_file, certificate.pem()).unwrap();
        Authority {
            name: name.to_string(),
            cert_file,
            certificate,
            key,
            directory: directory.to_path_buf(),
        }
    }

    /// A certificate for `common_name`, valid for 127.0.0.1 and localhost, good for servers
    /// and clients both (as etcd's docs make peer certificates), written as
    /// `<file_name>.pem` and `<file_name>-key.pem`.
    pub fn issue(&self, file_name: &str, common_name: &str, serial: u64) -> Issued {
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.serial_number = Some(SerialNumber::from(serial));
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        validity(&mut params);
        let certificate = params
            .signed_by(&key, &self.certificate, &self.key)
            .unwrap();
        let issued = Issued {
            cert_file: self.directory.join(format!("{file_name}.pem")),
            key_file: self.directory.join(format!("{file_name}-key.pem")),
            serial,
        };
        std::fs::write(&issued.cert_file, certificate.pem()).unwrap();
        std::fs::write(&issued.key_file, key.serialize_pem()).unwrap();
        issued
    }

    /// A CRL revoking `revoked`, written to `<file_name>.pem`.
    pub fn revocation_list(&self, file_name: &str, revoked: &[&Issued]) -> PathBuf {
        let now = time::OffsetDateTime::now_utc();
        let params = CertificateRevocationListParams {
            this_update: now - time::Duration::hours(1),
            next_update: now + time::Duration::days(7),
            crl_number: SerialNumber::from(1u64),
            issuing_distribution_point: None,
            revoked_certs: revoked
                .iter()
                .map(|issued| RevokedCertParams {
                    serial_number: SerialNumber::from(issued.serial),
                    revocation_time: now - time::Duration::minutes(5),
                    reason_code: None,
                    invalidity_date: None,
                })
                .collect(),
            key_identifier_method: KeyIdMethod::Sha256,
        };
        let crl = params.signed_by(&self.certificate, &self.key).unwrap();
        let path = self.directory.join(format!("{file_name}.pem"));
        std::fs::write(&path, crl.pem().unwrap()).unwrap();
        path
    }
}

/// Replaces `target` with `source`'s bytes the way an operator's tooling does: a new file
/// renamed over the old one, so a reader never sees half a file.
pub fn replace_file(source: &Path, target: &Path) {
    let staging = target.with_extension("new");
    std::fs::copy(source, &staging).unwrap();
    std::fs::rename(&staging, target).unwrap();
}
