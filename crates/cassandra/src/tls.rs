//! Client-to-node TLS for CQL (Cassandra's `client_encryption_options`), through rustls.
//!
//! The node's certificate is checked against the operator's CA file, and its name against the
//! address cassette connects to (the CQL driver offers the node's IP, so the certificate needs
//! that IP as a subject alternative name) or against `server_name` when the certificates carry
//! DNS names. A client certificate and key answer `require_client_auth: true`.
//!
//! rustls has no switch for "check the chain, not the name" nor for "check another name than
//! the one connected to", so [`NameCheck`] wraps rustls' own verifier for those two cases; the
//! chain is always verified by rustls.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::CassandraError;

/// How to reach a node whose native transport requires TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CqlTls {
    /// PEM file of the CA(s) that signed the nodes' certificates.
    pub ca_file: PathBuf,
    /// PEM certificate and private key of this client, for `require_client_auth: true`.
    pub client_cert: Option<(PathBuf, PathBuf)>,
    /// The name the node's certificate must carry, when it is not the address connected to.
    pub server_name: Option<String>,
    /// Check the node's certificate is for that name (on by default); the chain is always checked.
    pub verify_hostname: bool,
}

impl CqlTls {
    /// TLS against the nodes signed by `ca_file`, names checked, no client certificate.
    pub fn new(ca_file: impl Into<PathBuf>) -> Self {
        CqlTls { ca_file: ca_file.into(), client_cert: None, server_name: None, verify_hostname: true }
    }

    /// The rustls configuration the CQL driver connects with. Reads the files now, so a missing
    /// or unreadable one is reported before any connection is tried.
    pub fn client_config(&self) -> Result<Arc<rustls::ClientConfig>, CassandraError> {
        let mut roots = RootCertStore::empty();
        for cert in read_certs(&self.ca_file)? {
            roots.add(cert).map_err(|e| tls_file_err(&self.ca_file, format!("not a usable CA certificate: {e}")))?;
        }
        let webpki = WebPkiServerVerifier::builder(Arc::new(roots))
            .build()
            .map_err(|e| tls_file_err(&self.ca_file, e.to_string()))?;
        let server_name = match &self.server_name {
            Some(name) => Some(
                ServerName::try_from(name.clone())
                    .map_err(|_| CassandraError::Tls { message: format!("{name:?} is not a valid TLS server name") })?,
            ),
            None => None,
        };
        let verifier = Arc::new(NameCheck { inner: webpki, server_name, verify_hostname: self.verify_hostname });
        let builder = rustls::ClientConfig::builder().dangerous().with_custom_certificate_verifier(verifier);
        let config = match &self.client_cert {
            None => builder.with_no_client_auth(),
            Some((cert_file, key_file)) => {
                let chain = read_certs(cert_file)?;
                let key = PrivateKeyDer::from_pem_file(key_file)
                    .map_err(|e| tls_file_err(key_file, format!("no PEM private key: {e}")))?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| tls_file_err(cert_file, format!("the certificate and key do not go together: {e}")))?
            }
        };
        Ok(Arc::new(config))
    }
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, CassandraError> {
    let certs: Vec<_> = CertificateDer::pem_file_iter(path)
        .map_err(|e| tls_file_err(path, e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| tls_file_err(path, e.to_string()))?;
    if certs.is_empty() {
        return Err(tls_file_err(path, "no PEM certificate in it".to_string()));
    }
    Ok(certs)
}

fn tls_file_err(path: &Path, message: String) -> CassandraError {
    CassandraError::Tls { message: format!("{}: {message}", path.display()) }
}

/// rustls' verifier, checking another name than the one connected to, or none.
#[derive(Debug)]
struct NameCheck {
    inner: Arc<WebPkiServerVerifier>,
    server_name: Option<ServerName<'static>>,
    verify_hostname: bool,
}

impl ServerCertVerifier for NameCheck {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let name = self.server_name.as_ref().unwrap_or(server_name);
        match self.inner.verify_server_cert(end_entity, intermediates, name, ocsp_response, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if !self.verify_hostname => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_or_empty_ca_file_is_named_in_the_error() {
        let d = tempfile::tempdir().unwrap();
        let missing = d.path().join("ca.pem");
        let err = CqlTls::new(&missing).client_config().unwrap_err().to_string();
        assert!(err.contains(&missing.display().to_string()), "{err}");
        std::fs::write(&missing, "not a certificate\n").unwrap();
        let err = CqlTls::new(&missing).client_config().unwrap_err().to_string();
        assert!(err.contains("no PEM certificate"), "{err}");
    }
}
