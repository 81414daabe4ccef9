//! Signalling through a reverse proxy (seed 001 `setProxyServer`), and the TLS
//! of `wss://` URLs.
//!
//! A deployment may put nginx (or any TLS-terminating proxy) in front of the
//! server; the client then speaks `wss://` to the proxy. Certificates are
//! always verified: against the system's roots (`rustls-native-certs`), plus
//! any CA the application adds ([`ProxyConfig::ca_pem`], e.g. a company CA or
//! the self-signed certificate of a test). There is no switch that turns
//! verification off.

use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tokio_tungstenite::Connector;

use super::{ClientError, ClientResult};

/// Where signalling goes and which CAs its TLS trusts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProxyConfig {
    /// Connect the signalling WebSocket here (`wss://proxy.example.org/huddle`
    /// or `ws://…`) instead of [`super::JoinConfig::server_url`]. `None`: the
    /// join's URL, which may itself name the proxy.
    pub url: Option<String>,
    /// PEM certificates trusted for `wss://` in addition to the system's
    /// roots.
    pub ca_pem: Option<Vec<u8>>,
}

impl ProxyConfig {
    /// Checks the URL's scheme and that `ca_pem` holds at least one
    /// certificate. 90000005 (invalid parameter) naming the problem.
    pub fn check(&self) -> ClientResult<()> {
        if let Some(url) = &self.url
            && !(url.starts_with("ws://") || url.starts_with("wss://"))
        {
            return Err(ClientError::InvalidParameter(format!(
                "the proxy URL must be ws:// or wss://: {url}"
            )));
        }
        if let Some(pem) = &self.ca_pem {
            extra_roots(pem)?;
        }
        Ok(())
    }

    /// The URL to connect to for a join to `server_url`.
    pub(crate) fn url_for<'a>(&'a self, server_url: &'a str) -> &'a str {
        self.url.as_deref().unwrap_or(server_url)
    }

    /// The TLS connector for `url`: `None` for `ws://`.
    pub(crate) fn connector(&self, url: &str) -> ClientResult<Option<Connector>> {
        if !url.starts_with("wss://") {
            return Ok(None);
        }
        let mut roots = rustls::RootCertStore::empty();
        // A system store that cannot be read (a missing file, an odd entry)
        // leaves fewer roots, not a failure: the handshake says if it matters.
        let native = rustls_native_certs::load_native_certs();
        for e in &native.errors {
            tracing::debug!("system CA store: {e}");
        }
        roots.add_parsable_certificates(native.certs);
        if let Some(pem) = &self.ca_pem {
            for cert in extra_roots(pem)? {
                roots
                    .add(cert)
                    .map_err(|e| ClientError::InvalidParameter(format!("ca_pem: {e}")))?;
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| ClientError::Connect(format!("TLS setup: {e}")))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Some(Connector::Rustls(Arc::new(config))))
    }
}

fn extra_roots(pem: &[u8]) -> ClientResult<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ClientError::InvalidParameter(format!("ca_pem: {e}")))?;
    if certs.is_empty() {
        return Err(ClientError::InvalidParameter(
            "ca_pem holds no PEM certificate".into(),
        ));
    }
    Ok(certs)
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn bad_proxy_configurations_are_invalid_parameters() {
        for bad in [
            ProxyConfig {
                url: Some("https://proxy:443".into()),
                ca_pem: None,
            },
            ProxyConfig {
                url: None,
                ca_pem: Some(b"not a certificate".to_vec()),
            },
        ] {
            let e = bad.check().expect_err("bad");
            assert_eq!(e.code(), crate::protocol::ErrorCode::InvalidParameter);
        }
        let plain = ProxyConfig::default();
        assert!(plain.check().is_ok());
        assert!(plain.connector("ws://127.0.0.1:1").expect("ok").is_none());
        assert!(plain.connector("wss://127.0.0.1:1").expect("ok").is_some());
        assert_eq!(plain.url_for("ws://a"), "ws://a");
    }
}
