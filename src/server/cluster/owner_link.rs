//! How a relay (`relay`) reaches the node that owns a room: its signalling
//! URL as registered in Redis, `ws://host:port` (plain TCP) or
//! `wss://host:port` (TLS, for an owner serving `--tls-cert`), for the
//! mirror's WebSocket and the relay links' WHEP requests alike (same host
//! and port, `https` for `wss`).
//!
//! TLS is always verified, against the relay's CAs
//! ([`ClusterConfig::relay_ca_pem`](super::ClusterConfig::relay_ca_pem),
//! `--relay-ca`; without one, the system bundle at [`SYSTEM_CAS`]) and the
//! URL's host name. There is no switch that turns verification off: an owner
//! whose certificate is not trusted cannot be mirrored, and the node's
//! players are redirected to it.

use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};

/// Where Debian keeps the system's CAs (package `ca-certificates`).
pub const SYSTEM_CAS: &str = "/etc/ssl/certs/ca-certificates.crt";

/// A byte stream to the owner: TCP, or TLS over it.
pub(crate) trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// A connection to the owner node.
pub(crate) type Stream = Box<dyn Io>;

/// The certificates in `pem` (PEM `CERTIFICATE` blocks); an error when it
/// holds none or one does not parse.
pub fn certificates(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs: Vec<_> = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("relay CA: {e}"))?;
    if certs.is_empty() {
        return Err("relay CA: no PEM certificate in it".into());
    }
    Ok(certs)
}

/// One owner node's address, and how to speak TLS to it.
#[derive(Clone)]
pub(crate) struct OwnerLink {
    /// `host:port`, for TCP and the `Host` header.
    authority: String,
    /// For a `wss://` owner: the connector and the name its certificate
    /// must carry.
    tls: Option<(TlsConnector, ServerName<'static>)>,
}

impl OwnerLink {
    /// The owner at `url` (`ws://…` or `wss://…`); `ca_pem` the CAs trusted
    /// for a `wss://` one (else the system's).
    pub(crate) fn new(url: &str, ca_pem: Option<&[u8]>) -> Result<Self, String> {
        let (tls, rest) = if let Some(rest) = url.strip_prefix("wss://") {
            (true, rest)
        } else if let Some(rest) = url.strip_prefix("ws://") {
            (false, rest)
        } else {
            return Err(format!("{url:?} is not a ws:// or wss:// URL"));
        };
        let authority = rest
            .split(['/', '?'])
            .next()
            .filter(|a| !a.is_empty())
            .ok_or_else(|| format!("{url:?} has no host"))?
            .to_owned();
        if !tls {
            return Ok(Self {
                authority,
                tls: None,
            });
        }
        let host = match authority.rsplit_once(':') {
            Some((host, port)) if port.parse::<u16>().is_ok() => host,
            _ => authority.as_str(),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let name = ServerName::try_from(host.to_owned())
            .map_err(|e| format!("{url:?}: host {host:?}: {e}"))?;
        let pem = match ca_pem {
            Some(pem) => pem.to_vec(),
            None => std::fs::read(SYSTEM_CAS).map_err(|e| {
                format!("no relay CA configured and the system's ({SYSTEM_CAS}): {e}")
            })?,
        };
        let mut roots = rustls::RootCertStore::empty();
        let (added, _) = roots.add_parsable_certificates(certificates(&pem)?);
        if added == 0 {
            return Err("relay CA: no usable certificate".into());
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS setup: {e}"))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let authority = if authority.contains(':') {
            authority
        } else {
            format!("{authority}:443")
        };
        Ok(Self {
            authority,
            tls: Some((TlsConnector::from(Arc::new(config)), name)),
        })
    }

    /// `host:port`.
    pub(crate) fn authority(&self) -> &str {
        &self.authority
    }

    /// A new connection (TLS handshake done for a `wss://` owner).
    pub(crate) async fn connect(&self) -> Result<Stream, String> {
        let tcp = TcpStream::connect(&self.authority)
            .await
            .map_err(|e| format!("{}: {e}", self.authority))?;
        match &self.tls {
            None => Ok(Box::new(tcp)),
            Some((connector, name)) => {
                let tls = connector
                    .connect(name.clone(), tcp)
                    .await
                    .map_err(|e| format!("TLS to {}: {e}", self.authority))?;
                Ok(Box::new(tls))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_urls_parse_and_bad_ones_are_refused() {
        let plain = OwnerLink::new("ws://10.0.0.1:7880/x", None).expect("ws");
        assert_eq!(plain.authority(), "10.0.0.1:7880");
        assert!(plain.tls.is_none());
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])
            .expect("a certificate");
        let pem = cert.cert.pem();
        let tls = OwnerLink::new("wss://localhost:8443", Some(pem.as_bytes())).expect("wss");
        assert_eq!(tls.authority(), "localhost:8443");
        assert!(tls.tls.is_some());
        assert_eq!(
            OwnerLink::new("wss://a.example", Some(pem.as_bytes()))
                .expect("default port")
                .authority(),
            "a.example:443"
        );
        // Bad input: another scheme, no host, a CA file without a certificate.
        assert!(OwnerLink::new("http://10.0.0.1:7880", None).is_err());
        assert!(OwnerLink::new("ws://", None).is_err());
        assert!(OwnerLink::new("wss://localhost:8443", Some(b"not a pem")).is_err());
        assert!(certificates(b"").is_err());
        assert_eq!(certificates(pem.as_bytes()).map(|c| c.len()), Ok(1));
    }
}
