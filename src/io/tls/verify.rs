//! Certificate checks beyond a chain to a trusted CA: etcd's allowed common names and host
//! names, and the self-signed peers of `--peer-auto-tls`.

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, Error, SignatureScheme};
use std::sync::Arc;

/// The subject common name of a DER certificate, if it has one.
pub fn common_name(certificate: &CertificateDer<'_>) -> Option<String> {
    let (_, parsed) = x509_parser::parse_x509_certificate(certificate.as_ref()).ok()?;
    let name = parsed.subject().iter_common_name().next()?;
    name.as_str().ok().map(str::to_string)
}

/// Whether `certificate` is valid for `hostname` by its subject alternative names (as Go's
/// `VerifyHostname`, which etcd uses).
fn valid_for_hostname(certificate: &CertificateDer<'_>, hostname: &str) -> bool {
    let Ok(name) = ServerName::try_from(hostname.to_string()) else {
        return false;
    };
    let Ok(parsed) = rustls::server::ParsedCertificate::try_from(certificate) else {
        return false;
    };
    rustls::client::verify_server_name(&parsed, &name).is_ok()
}

/// etcd's identity check after the chain check: a certificate's common name is one of
/// `common_names`, or it is valid for one of `hostnames` (whichever list is given).
#[derive(Debug, Clone)]
pub struct Identities {
    pub common_names: Vec<String>,
    pub hostnames: Vec<String>,
}

impl Identities {
    fn allows(&self, certificate: &CertificateDer<'_>) -> Result<(), Error> {
        let refused =
            |reason: String| Err(Error::General(format!("certificate refused: {reason}")));
        if !self.common_names.is_empty() {
            let name = common_name(certificate);
            if name
                .as_ref()
                .is_some_and(|name| self.common_names.contains(name))
            {
                return Ok(());
            }
            return refused(format!(
                "common name {:?} is not one of the allowed {:?}",
                name.unwrap_or_default(),
                self.common_names
            ));
        }
        if self
            .hostnames
            .iter()
            .any(|hostname| valid_for_hostname(certificate, hostname))
        {
            return Ok(());
        }
        refused(format!(
            "valid for none of the allowed host names {:?}",
            self.hostnames
        ))
    }
}

/// Client certificates: the chain check (`inner`), then the identity check.
#[derive(Debug)]
pub struct AllowedIdentities {
    pub inner: Arc<dyn ClientCertVerifier>,
    pub identities: Identities,
}

/// Server certificates of the peers a member dials: the chain and name check (`inner`),
/// then the identity check (etcd applies it on both ends of a peer connection).
#[derive(Debug)]
pub struct AllowedServers {
    pub inner: Arc<dyn ServerCertVerifier>,
    pub identities: Identities,
}

impl ServerCertVerifier for AllowedServers {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        let verified = self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        )?;
        self.identities.allows(end_entity)?;
        Ok(verified)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner
            .verify_tls12_signature(message, certificate, signature)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner
            .verify_tls13_signature(message, certificate, signature)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

impl ClientCertVerifier for AllowedIdentities {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        let verified = self
            .inner
            .verify_client_cert(end_entity, intermediates, now)?;
        self.identities.allows(end_entity)?;
        Ok(verified)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner
            .verify_tls12_signature(message, certificate, signature)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner
            .verify_tls13_signature(message, certificate, signature)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// For a member with self-signed peer certificates (`--peer-auto-tls`): every peer's
/// certificate is accepted, as etcd accepts them (its `InsecureSkipVerify`), but the
/// handshake's signatures are still checked, so the peer holds the key of what it presents.
#[derive(Debug)]
pub struct AnyServerCertificate(pub Arc<CryptoProvider>);

impl ServerCertVerifier for AnyServerCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            certificate,
            signature,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            certificate,
            signature,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
