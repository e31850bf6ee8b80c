//! TLS settings: TLS 1.3 and 1.2 only, ECDHE key exchange and AEAD cipher suites only
//! (AES-GCM, ChaCha20-Poly1305), from aws-lc-rs. Safeguard: 45 CFR 164.312(e)(1)
//! transmission security.

use std::path::Path;
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Why TLS could not be set up (file paths only, never key material).
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read the certificate chain at {0}")]
    Certificate(String),
    #[error("cannot read the private key at {0}")]
    PrivateKey(String),
    #[error("the certificate and key do not form a usable TLS configuration")]
    Config(#[source] rustls::Error),
}

/// The crypto provider every phivault binary installs first: aws-lc-rs, with only AEAD
/// suites. Safe to call more than once.
pub fn install_crypto_provider() {
    let _ = provider().install_default();
}

fn provider() -> CryptoProvider {
    let mut provider = rustls::crypto::aws_lc_rs::default_provider();
    provider.cipher_suites.retain(|suite| {
        let name = format!("{:?}", suite.suite());
        name.contains("GCM") || name.contains("CHACHA20_POLY1305")
    });
    provider
}

/// A server configuration from PEM files, offering HTTP/2 and HTTP/1.1 through ALPN.
pub fn server_config(cert_path: &Path, key_path: &Path) -> Result<Arc<ServerConfig>, TlsError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_path)
        .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
        .map_err(|_| TlsError::Certificate(cert_path.display().to_string()))?;
    if certs.is_empty() {
        return Err(TlsError::Certificate(cert_path.display().to_string()));
    }
    let key =
        PrivateKeyDer::from_pem_file(key_path).map_err(|_| TlsError::PrivateKey(key_path.display().to_string()))?;
    let mut config = ServerConfig::builder_with_provider(Arc::new(provider()))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(TlsError::Config)?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(TlsError::Config)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_aead_suites_are_offered() {
        let suites = provider().cipher_suites;
        assert!(!suites.is_empty());
        for suite in suites {
            let name = format!("{:?}", suite.suite());
            assert!(name.contains("GCM") || name.contains("CHACHA20_POLY1305"), "{name}");
            assert!(!name.contains("CBC") && !name.contains("RC4") && !name.contains("NULL"), "{name}");
        }
    }
}
