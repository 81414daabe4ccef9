//! How a relay (`relay`) reaches the node that owns a room: its signalling
//! URL as registered in Redis, `ws://host:port` (plain TCP) or
//! `wss://host:port` (TLS, for an owner serving `--tls-cert`), for the
//! mirror's WebSocket and the relay links' WHEP requests alike (same host
//! and port, `https` for `wss`).
//!
//! An owner behind a reverse proxy may have a path in its URL
//! (`wss://host/huddle/`, the proxy passing `/huddle/…` on to the node as
//! `/…`): the mirror's WebSocket opens the URL as it is, and the WHEP
//! requests keep the prefix ([`OwnerLink::path`]: `/huddle/whep/…`), as
//! does the `DELETE` on a resource's `Location` the owner gave without it
//! ([`OwnerLink::resource`]).
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
    /// The URL's path without its trailing `/` (`""` for none, `/huddle`
    /// for `wss://host/huddle/`): put before the paths of HTTP requests.
    prefix: String,
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
        let rest = rest.split(['?', '#']).next().unwrap_or_default();
        let (authority, path) = match rest.find('/') {
            Some(at) => rest.split_at(at),
            None => (rest, ""),
        };
        if authority.is_empty() {
            return Err(format!("{url:?} has no host"));
        }
        let authority = authority.to_owned();
        let prefix = path.trim_end_matches('/').to_owned();
        if !tls {
            return Ok(Self {
                authority,
                prefix,
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
            prefix,
            tls: Some((TlsConnector::from(Arc::new(config)), name)),
        })
    }

    /// `host:port`.
    pub(crate) fn authority(&self) -> &str {
        &self.authority
    }

    /// The request path for the node's `path` (`/whep/…`): behind the
    /// URL's prefix, if it has one.
    pub(crate) fn path(&self, path: &str) -> String {
        format!("{}{path}", self.prefix)
    }

    /// The request path of a resource's `Location` as the owner gave it:
    /// an absolute path without the prefix (the node does not know its
    /// proxy's) gets it; one that has it, or a full URL's path, is kept.
    pub(crate) fn resource(&self, location: &str) -> String {
        let path = match location.split_once("://") {
            // A full URL: its path (same host: the one reached).
            Some((_, rest)) => rest.find('/').map_or("/", |at| &rest[at..]),
            None => location,
        };
        if location.contains("://")
            || self.prefix.is_empty()
            || path == self.prefix
            || path.starts_with(&format!("{}/", self.prefix))
        {
            path.to_owned()
        } else {
            self.path(path)
        }
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
        assert_eq!(plain.path("/whep/r/1"), "/x/whep/r/1", "the prefix is kept");
        // Bad input: another scheme, no host, a CA file without a certificate.
        assert!(OwnerLink::new("http://10.0.0.1:7880", None).is_err());
        assert!(OwnerLink::new("ws://", None).is_err());
        assert!(OwnerLink::new("wss://localhost:8443", Some(b"not a pem")).is_err());
        assert!(certificates(b"").is_err());
        assert_eq!(certificates(pem.as_bytes()).map(|c| c.len()), Ok(1));
    }

    /// An owner behind a proxy at `wss://host/huddle/`: WHEP requests and
    /// the `DELETE` of a resource go under `/huddle`, whatever form the
    /// owner's `Location` takes; an owner without a path is reached as before.
    #[test]
    fn a_path_prefix_is_kept_for_whep_requests() {
        let bare = OwnerLink::new("ws://10.0.0.1:7880", None).expect("ws");
        assert_eq!(bare.path("/whep/r/1?appid=a"), "/whep/r/1?appid=a");
        assert_eq!(bare.resource("/whep/r/1/abc"), "/whep/r/1/abc");
        let slash = OwnerLink::new("ws://10.0.0.1:7880/", None).expect("ws");
        assert_eq!(slash.path("/whep/r/1"), "/whep/r/1");
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])
            .expect("a certificate");
        let pem = cert.cert.pem();
        for url in [
            "wss://localhost/huddle/",
            "wss://localhost/huddle",
            "wss://localhost/huddle/?x=1",
        ] {
            let proxied = OwnerLink::new(url, Some(pem.as_bytes())).expect("wss");
            assert_eq!(proxied.authority(), "localhost:443", "{url}");
            assert_eq!(proxied.path("/whep/r/1?role=2"), "/huddle/whep/r/1?role=2");
            // The node answers with its own path; the proxy may have
            // rewritten it already, or made it a full URL.
            assert_eq!(proxied.resource("/whep/r/1/abc"), "/huddle/whep/r/1/abc");
            assert_eq!(
                proxied.resource("/huddle/whep/r/1/abc"),
                "/huddle/whep/r/1/abc"
            );
            assert_eq!(
                proxied.resource("https://localhost/huddle/whep/r/1/abc"),
                "/huddle/whep/r/1/abc"
            );
        }
        let deep = OwnerLink::new("ws://h:80/a/b/", None).expect("ws");
        assert_eq!(deep.path("/whep/r/1"), "/a/b/whep/r/1");
        assert_eq!(deep.resource("/a/b/whep/r/1/x"), "/a/b/whep/r/1/x");
        assert_eq!(
            deep.resource("/a/bc"),
            "/a/b/a/bc",
            "a prefix of a name is not the prefix"
        );
    }
}
