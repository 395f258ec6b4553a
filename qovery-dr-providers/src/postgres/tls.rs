//! TLS to PostgreSQL with rustls: the server's certificate is verified
//! against the given CA bundle (no "accept anything" mode).

use std::path::Path;
use std::sync::Arc;

use qovery_dr_core::{ErrorKind, ProviderError};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use tokio_postgres_rustls::MakeRustlsConnect;

use super::endpoint::PROVIDER;

pub(crate) fn connector(ca_file: &Path, op: &str) -> Result<MakeRustlsConnect, ProviderError> {
    let bad = |why: String| ProviderError::new(ErrorKind::InvalidConfig, PROVIDER, op, why);
    let mut roots = rustls::RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(ca_file)
        .map_err(|e| bad(format!("cannot read the CA file {}: {e}", ca_file.display())))?;
    for cert in certs {
        let cert = cert.map_err(|e| bad(format!("invalid certificate in {}: {e}", ca_file.display())))?;
        roots.add(cert).map_err(|e| bad(format!("unusable CA certificate in {}: {e}", ca_file.display())))?;
    }
    if roots.is_empty() {
        return Err(bad(format!("no certificate in the CA file {}", ca_file.display())));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(format!("TLS configuration: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}
