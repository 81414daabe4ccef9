//! TLS on the server's one port: with a certificate, every route is served
//! over TLS (`https://` pages and `GET /signature`, `wss://` signalling).
//!
//! Browsers let a page use the camera and microphone only in a secure
//! context: `https://`, or `http://localhost` / `127.0.0.1`. A server that
//! people reach by name needs a certificate, from a CA for real use or
//! self-signed for a test (README, "Web client"). Media is not affected: it is
//! already encrypted (DTLS-SRTP) and travels on its own UDP ports.
//!
//! The handshake is [rustls] with the *ring* provider, TLS 1.2 and 1.3, and
//! ALPN `http/1.1` (the server speaks HTTP/1.1 only; a WebSocket is an
//! HTTP/1.1 upgrade). The accept loop (`listener`) runs the handshake under
//! the same deadline as a request head.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Why the certificate or key cannot be used. Each is a configuration error
/// found at start: fix the files and start again.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The certificate file cannot be read or is not PEM.
    #[error("reading the certificate chain {}: {source}", path.display())]
    Certificates {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        source: rustls::pki_types::pem::Error,
    },
    /// The certificate file holds no `CERTIFICATE` block.
    #[error("no PEM CERTIFICATE in {}", .0.display())]
    NoCertificate(PathBuf),
    /// The key file cannot be read, is not PEM, or holds no private key.
    #[error("reading the private key {} (PKCS#8, PKCS#1 or SEC1 PEM): {source}", path.display())]
    Key {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        source: rustls::pki_types::pem::Error,
    },
    /// rustls refuses the pair: the key does not match the certificate, or
    /// is of a kind it does not support.
    #[error("the certificate and key cannot be used together: {0}")]
    Config(#[from] rustls::Error),
}

/// The server's TLS settings, shared by every connection. Cheap to clone.
#[derive(Clone)]
pub struct TlsConfig(Arc<rustls::ServerConfig>);

impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key stays out of logs.
        f.write_str("TlsConfig { .. }")
    }
}

impl TlsConfig {
    /// Reads a PEM certificate chain (the server's certificate first, then
    /// any intermediates) and its PEM private key, as `--tls-cert` and
    /// `--tls-key` name them.
    pub fn from_pem_files(cert: &Path, key: &Path) -> Result<Self, TlsError> {
        let chain = CertificateDer::pem_file_iter(cert)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|source| TlsError::Certificates {
                path: cert.to_owned(),
                source,
            })?;
        if chain.is_empty() {
            return Err(TlsError::NoCertificate(cert.to_owned()));
        }
        let key = PrivateKeyDer::from_pem_file(key).map_err(|source| TlsError::Key {
            path: key.to_owned(),
            source,
        })?;
        Self::new(chain, key)
    }

    /// Uses a certificate chain and key already in memory.
    pub fn new(
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Result<Self, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(chain, key)?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self(Arc::new(config)))
    }

    /// An acceptor for the accept loop.
    pub(crate) fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(Arc::clone(&self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreadable_files_are_named_in_the_error() {
        let dir = std::env::temp_dir().join(format!("huddle-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let missing = dir.join("missing.pem");
        let error = TlsConfig::from_pem_files(&missing, &missing).unwrap_err();
        assert!(error.to_string().contains("missing.pem"), "{error}");

        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").expect("write");
        let error = TlsConfig::from_pem_files(&empty, &empty).unwrap_err();
        assert!(matches!(error, TlsError::NoCertificate(_)), "{error}");
        std::fs::remove_dir_all(&dir).ok(); // best effort
    }
}
