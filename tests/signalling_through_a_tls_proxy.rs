//! Issue 11 §4, seed 001 `setProxyServer`: signalling through a reverse proxy
//! that terminates TLS. nginx (the README's configuration, on a free loopback
//! port, with a certificate from a test CA made here by `openssl`) forwards
//! `wss://` to the server's `ws://`; a client that trusts the CA joins through
//! it and media flows; one that does not is refused at the TLS handshake with
//! 90100016 (verification is never off).
//!
//! Needs `nginx` and `openssl` (`common::skip` otherwise; `.ci/setup.sh`
//! installs both).
#![cfg(feature = "client")]

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::nginx::{Nginx, have};
use common::*;
use huddle::client::{Client, ClientError, ErrorCode, ProxyConfig, RoomEvent, SubscribeOptions};
use huddle::protocol::Role;

/// A test CA (`ca.pem`) and a server certificate it signed for `localhost`
/// and 127.0.0.1 (`cert.pem`, `key.pem`) in `dir`, as a company CA would.
fn make_certificates(dir: &Path) {
    let openssl = |args: &[&str]| {
        let status = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("run openssl");
        assert!(status.success(), "openssl {args:?} failed");
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    openssl(
        &[
            &["req", "-x509"],
            &ec[..],
            &["-days", "2", "-subj", "/CN=huddle test CA"],
            &["-keyout", "ca.key", "-out", "ca.pem"],
        ]
        .concat(),
    );
    openssl(
        &[
            &["req"],
            &ec[..],
            &[
                "-subj",
                "/CN=localhost",
                "-keyout",
                "key.pem",
                "-out",
                "leaf.csr",
            ],
        ]
        .concat(),
    );
    std::fs::write(
        dir.join("leaf.ext"),
        "basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n\
         subjectAltName=DNS:localhost,IP:127.0.0.1\n",
    )
    .expect("write leaf.ext");
    openssl(&[
        "x509",
        "-req",
        "-in",
        "leaf.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "leaf.ext",
        "-out",
        "cert.pem",
    ]);
}

/// nginx with the README's configuration (this test's port, paths and
/// upstream), proxying `wss://localhost:<port>/huddle` to `upstream`
/// (`host:port`), its certificate from a test CA.
fn tls_proxy(test: &str, upstream: &str) -> Option<Nginx> {
    if !have("openssl", "version") {
        skip(test, "no `openssl` (Debian package openssl)");
        return None;
    }
    Nginx::start(test, make_certificates, |port, dir| {
        format!(
            r#"    server {{
        listen 127.0.0.1:{port} ssl;
        server_name localhost;
        ssl_certificate {dir}/cert.pem;
        ssl_certificate_key {dir}/key.pem;
        ssl_protocols TLSv1.2 TLSv1.3;
        location /huddle {{
            proxy_pass http://{upstream}/ws;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_read_timeout 3600s;
            proxy_send_timeout 3600s;
        }}
    }}"#,
            dir = dir.display()
        )
    })
}

/// Where a client reaches it, and the CA it must trust.
trait TlsProxy {
    fn url(&self) -> String;
    fn ca(&self) -> Vec<u8>;
}

impl TlsProxy for Nginx {
    fn url(&self) -> String {
        format!("wss://localhost:{}/huddle", self.port)
    }

    /// The CA that signed nginx's certificate.
    fn ca(&self) -> Vec<u8> {
        std::fs::read(self.dir.join("ca.pem")).expect("ca.pem")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_joins_through_nginx_over_wss_and_media_flows() {
    let server = start_server().await;
    let upstream = server.url.trim_start_matches("ws://").to_owned();
    let Some(nginx) = tls_proxy(
        "a_client_joins_through_nginx_over_wss_and_media_flows",
        &upstream,
    ) else {
        return;
    };

    // Not trusting the test CA: refused at the handshake.
    let stranger = Client::new();
    let mut config = join_config(&server, "proxied", "stranger", Role::Joiner);
    config.server_url = nginx.url();
    let started = Instant::now();
    let err = stranger.join(config).await.expect_err("an unknown issuer");
    assert!(matches!(err, ClientError::Connect(_)), "{err:?}");
    assert_eq!(err.code(), ErrorCode::WebsocketConnectError);
    assert!(
        err.to_string().to_lowercase().contains("certificate"),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));

    // Trusting it: the join URL names the server, the proxy carries it
    // (seed `setProxyServer`).
    let alice = Client::new();
    alice
        .set_proxy_server(ProxyConfig {
            url: Some(nginx.url()),
            ca_pem: Some(nginx.ca()),
        })
        .await
        .expect("set_proxy_server");
    alice
        .join(join_config(&server, "proxied", "alice", Role::Joiner))
        .await
        .expect("join through nginx");
    let (bob, _) = join(&server, "proxied", "bob").await;
    let stream = alice.publish(synthetic(440.0)).await.expect("publish");
    let added = wait_event(&bob, Duration::from_secs(10), "stream-added", |e| match e {
        RoomEvent::StreamAdded(info) => Some(info.stream_id),
        _ => None,
    })
    .await;
    assert_eq!(added, stream);
    let remote = bob
        .subscribe(stream, SubscribeOptions::default())
        .await
        .expect("subscribe");
    wait_for(Duration::from_secs(20), "15 decoded frames", || {
        (remote.stats().frames_decoded >= 15).then_some(())
    })
    .await;
    // The server saw two sessions: the proxied one is real.
    assert_eq!(server.server.metrics().users, 2);
    alice.leave().await.expect("leave");
    bob.leave().await.expect("leave");
}
