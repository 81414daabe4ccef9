//! `https://` and `wss://` on the server's one port (`--tls-cert`,
//! `--tls-key`): a TLS client that trusts the self-signed certificate gets
//! the web page and joins over a WebSocket; a browser on a name other than
//! localhost gets its camera (a secure context) and media flows; plain HTTP to
//! the TLS port is refused without disturbing anyone.
#![cfg(feature = "client")]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use common::chromium::Chromium;
use common::*;
use futures_util::{SinkExt, StreamExt};
use huddle::server::ServerConfig;
use huddle::server::tls::TlsConfig;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio_tungstenite::tungstenite::Message;

/// A self-signed certificate for `names` and its key, as rustls wants them,
/// and the certificate alone, to trust it.
fn self_signed(names: &[&str]) -> (rcgen::CertifiedKey<rcgen::KeyPair>, CertificateDer<'static>) {
    let certified = rcgen::generate_simple_self_signed(
        names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>(),
    )
    .expect("self-signed certificate");
    let der = certified.cert.der().clone();
    (certified, der)
}

async fn tls_server(certified: &rcgen::CertifiedKey<rcgen::KeyPair>) -> (TestServer, String) {
    let key = PrivateKeyDer::try_from(certified.signing_key.serialize_der()).expect("key");
    let mut config = ServerConfig::new(test_apps());
    config.tls = Some(TlsConfig::new(vec![certified.cert.der().clone()], key).expect("tls config"));
    let server = start_server_with(config).await;
    let addr = server.url.trim_start_matches("ws://").to_owned();
    (server, addr)
}

/// A TLS connection to `addr` that trusts only `root`, checked for `name`.
async fn tls_connect(
    addr: &str,
    root: &CertificateDer<'static>,
    name: &str,
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(root.clone()).expect("trust the certificate");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from(name.to_owned()).expect("server name");
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
}

/// `GET path` over TLS; the whole response.
async fn https_get(addr: &str, root: &CertificateDer<'static>, path: &str) -> String {
    let mut tls = tls_connect(addr, root, "localhost")
        .await
        .expect("TLS handshake");
    tls.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .expect("send");
    let mut response = Vec::new();
    // A close_notify-less end is fine for a test: we read what came.
    tls.read_to_end(&mut response).await.ok();
    String::from_utf8_lossy(&response).into_owned()
}

/// Joins `room` as `user` over `wss://` and returns the socket after the
/// `joined` reply.
async fn wss_join(
    addr: &str,
    root: &CertificateDer<'static>,
    path: &str,
    room: &str,
    user: &str,
) -> tokio_tungstenite::WebSocketStream<tokio_rustls::client::TlsStream<TcpStream>> {
    let tls = tls_connect(addr, root, "localhost")
        .await
        .expect("TLS handshake");
    let url = format!(
        "wss://localhost:{}{path}",
        addr.rsplit(':').next().expect("port")
    );
    let (mut ws, _) = tokio_tungstenite::client_async(url, tls)
        .await
        .expect("WebSocket over TLS");
    let ctime = huddle::auth::now_unix() + 600;
    let signature = huddle::auth::sign(APP_KEY, APP_ID, room, user, ctime);
    ws.send(Message::Text(
        format!(
            r#"{{"id":1,"type":"join","protocolVersion":1,"appId":"{APP_ID}","roomId":"{room}","userId":"{user}","ctime":{ctime},"signature":"{signature}"}}"#
        )
        .into(),
    ))
    .await
    .expect("send join");
    let reply = tokio::time::timeout(Duration::from_secs(5), ws.next())
        .await
        .expect("a reply within 5 s")
        .expect("open")
        .expect("frame");
    let reply: Value = serde_json::from_str(reply.to_text().expect("text")).expect("JSON");
    assert_eq!(reply["result"], "joined", "{reply}");
    ws
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_trusting_the_certificate_gets_the_page_and_joins_over_wss() {
    let (certified, root) = self_signed(&["localhost"]);
    let (_server, addr) = tls_server(&certified).await;

    let page = https_get(&addr, &root, "/").await;
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(
        page.to_lowercase().contains("content-type: text/html"),
        "{page}"
    );
    assert!(page.contains(r#"<script src="/web/huddle.js">"#), "{page}");
    let script = https_get(&addr, &root, "/web/huddle.js").await;
    assert!(script.starts_with("HTTP/1.1 200"), "{script}");

    // Both WebSocket routes, over TLS; the second user sees the first.
    let mut alice = wss_join(&addr, &root, "/ws", "tls-room", "alice").await;
    let _bob = wss_join(&addr, &root, "/", "tls-room", "bob").await;
    let event = tokio::time::timeout(Duration::from_secs(5), alice.next())
        .await
        .expect("an event within 5 s")
        .expect("open")
        .expect("frame");
    let event: Value = serde_json::from_str(event.to_text().expect("text")).expect("JSON");
    assert_eq!(event["event"]["type"], "peer-join", "{event}");
    assert_eq!(event["event"]["user"]["userId"], "bob", "{event}");
}

/// Plain HTTP, or a client that does not trust the certificate, gets no
/// answer; the server goes on serving TLS clients.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_and_untrusted_clients_are_refused_and_nothing_else_changes() {
    let (certified, root) = self_signed(&["localhost"]);
    let (_server, addr) = tls_server(&certified).await;
    let mut alice = wss_join(&addr, &root, "/ws", "tls-bad", "alice").await;

    let mut plain = TcpStream::connect(&addr).await.expect("connect");
    plain
        .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .expect("send");
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), plain.read_to_end(&mut response))
        .await
        .expect("closed within 5 s")
        .ok(); // a reset is as good as a close here
    assert!(
        !String::from_utf8_lossy(&response).contains("HTTP/1.1 200"),
        "plain HTTP got a page from the TLS port"
    );

    let (_, stranger) = self_signed(&["localhost"]);
    let refused = tls_connect(&addr, &stranger, "localhost").await;
    assert!(
        refused.is_err(),
        "a certificate the client does not trust was accepted"
    );

    // Alice's session is still alive and answering.
    alice
        .send(Message::Text(r#"{"id":2,"type":"ping"}"#.into()))
        .await
        .expect("ping");
    let pong = tokio::time::timeout(Duration::from_secs(5), alice.next())
        .await
        .expect("pong within 5 s")
        .expect("open")
        .expect("frame");
    assert!(pong.to_text().expect("text").contains("pong"), "{pong}");
}

/// A connection that never finishes its TLS handshake (slowloris over TLS)
/// is closed after the header timeout, as a stalled HTTP request is; a
/// `wss://` session is not affected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_tls_handshake_is_closed_after_the_header_timeout() {
    const HEADER_TIMEOUT: Duration = Duration::from_millis(400);
    let (certified, root) = self_signed(&["localhost"]);
    let key = PrivateKeyDer::try_from(certified.signing_key.serialize_der()).expect("key");
    let mut config = ServerConfig::new(test_apps());
    config.limits.header_timeout = HEADER_TIMEOUT;
    config.tls = Some(TlsConfig::new(vec![root.clone()], key).expect("tls config"));
    let server = start_server_with(config).await;
    let addr = server.url.trim_start_matches("ws://").to_owned();
    let mut alice = wss_join(&addr, &root, "/ws", "tls-slow", "alice").await;

    let opened = std::time::Instant::now();
    let mut silent = TcpStream::connect(&addr).await.expect("connect");
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(HEADER_TIMEOUT * 10, silent.read(&mut buf))
        .await
        .expect("closed by the server within 10 header timeouts");
    assert!(matches!(read, Ok(0) | Err(_)), "the server sent {read:?}");
    let after = opened.elapsed();
    assert!(
        after >= HEADER_TIMEOUT,
        "closed after {after:?}, before the timeout"
    );
    wait_for(
        Duration::from_secs(5),
        "only alice's connection left",
        || (server.server.metrics().connections == 1).then_some(()),
    )
    .await;

    // Alice's session outlived the header timeout (the wait is the point).
    tokio::time::sleep(HEADER_TIMEOUT * 2).await;
    alice
        .send(Message::Text(r#"{"id":2,"type":"ping"}"#.into()))
        .await
        .expect("ping");
    let pong = tokio::time::timeout(Duration::from_secs(5), alice.next())
        .await
        .expect("pong within 5 s")
        .expect("open")
        .expect("frame");
    assert!(pong.to_text().expect("text").contains("pong"), "{pong}");
}

/// Writes the certificate and key the README's `openssl` command makes.
fn openssl_self_signed(dir: &Path) -> Option<(PathBuf, PathBuf)> {
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    let status = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "30", "-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        // Without it `req -x509` makes a CA certificate, which TLS clients
        // (rustls, and so the test) refuse as a server's.
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .ok()?;
    status.success().then_some((cert, key))
}

/// `huddle serve` with `--tls-cert`/`--tls-key`; killed on drop.
struct TlsServe {
    child: std::process::Child,
    dir: PathBuf,
    cert: PathBuf,
    /// `wss://127.0.0.1:port`, from its start-up line.
    url: String,
}

impl TlsServe {
    /// Makes the README's certificate and starts the server with it, or
    /// `None` (after `skip`) without `openssl`.
    fn start(test: &str) -> Option<Self> {
        let dir = std::env::temp_dir().join(format!(
            "huddle-tls-serve-{}-{}",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::create_dir_all(&dir).expect("dir");
        let Some((cert, key)) = openssl_self_signed(&dir) else {
            skip(test, "cannot run `openssl req` (Debian package `openssl`)");
            return None;
        };
        let mut child = Command::new(env!("CARGO_BIN_EXE_huddle"))
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--app-id",
                APP_ID,
                "--app-key",
                APP_KEY,
            ])
            .arg("--tls-cert")
            .arg(&cert)
            .arg("--tls-key")
            .arg(&key)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start huddle serve");
        let url = StderrLines::of(&mut child).listening_url();
        Some(Self {
            child,
            dir,
            cert,
            url,
        })
    }

    fn addr(&self) -> String {
        self.url.trim_start_matches("wss://").to_owned()
    }

    /// The certificate, as a TLS client trusts it.
    fn root(&self) -> CertificateDer<'static> {
        let pem = std::fs::read(&self.cert).expect("read cert");
        rustls::pki_types::pem::PemObject::from_pem_slice(&pem).expect("PEM certificate")
    }
}

impl Drop for TlsServe {
    fn drop(&mut self) {
        self.child.kill().ok(); // it may have exited: fine
        self.child.wait().ok();
        std::fs::remove_dir_all(&self.dir).ok(); // best effort
    }
}

/// `huddle serve --tls-cert --tls-key` with the README's self-signed
/// certificate says `wss://` and serves it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huddle_serve_with_the_readme_certificate_speaks_wss() {
    let Some(serve) = TlsServe::start("huddle_serve_with_the_readme_certificate_speaks_wss") else {
        return;
    };
    assert!(serve.url.starts_with("wss://"), "{}", serve.url);
    let page = https_get(&serve.addr(), &serve.root(), "/").await;
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    wss_join(&serve.addr(), &serve.root(), "/ws", "tls-cli", "alice").await;
}

/// `huddle bot` (the SDK) joins a `wss://` server when it trusts the
/// certificate (here through `SSL_CERT_FILE`, as the system store is read),
/// and media flows between two bots; without it, the bot fails to connect.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bots_join_over_wss_when_they_trust_the_certificate() {
    const TEST: &str = "bots_join_over_wss_when_they_trust_the_certificate";
    let Some(serve) = TlsServe::start(TEST) else {
        return;
    };
    let server = format!(
        "wss://localhost:{}",
        serve.addr().rsplit(':').next().expect("port")
    );
    let bot = |user: &str, role: &str, seconds: &str| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_huddle"));
        command
            .args([
                "bot", "--server", &server, "--room", "tls-bots", "--user", user, role,
            ])
            .args([
                "--duration",
                seconds,
                "--app-id",
                APP_ID,
                "--app-key",
                APP_KEY,
            ])
            .env("SSL_CERT_FILE", &serve.cert)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        command
    };
    let mut publisher = bot("pub", "--publish", "20")
        .spawn()
        .expect("publisher bot");
    let summary = serve.dir.join("summary.json");
    let watcher = bot("sub", "--subscribe", "6")
        .arg("--summary")
        .arg(&summary)
        .output()
        .expect("subscriber bot");
    publisher.kill().ok(); // done with it either way
    publisher.wait().ok();
    assert!(
        watcher.status.success(),
        "the subscriber failed: {}",
        String::from_utf8_lossy(&watcher.stderr)
    );
    let report: Value =
        serde_json::from_slice(&std::fs::read(&summary).expect("summary written")).expect("JSON");
    assert!(report["frames_decoded"].as_u64() >= Some(10), "{report:#}");

    // With only the system's CAs: no connection, a non-zero exit, and the
    // certificate named as the reason.
    let untrusted = bot("stranger", "--subscribe", "2")
        .env_remove("SSL_CERT_FILE")
        .output()
        .expect("bot");
    let said = String::from_utf8_lossy(&untrusted.stderr);
    assert!(
        !untrusted.status.success() && said.contains("certificate"),
        "a bot that does not trust the certificate: {said}"
    );
}

/// A browser on a name other than localhost: only over https is the page a
/// secure context with a camera. Chromium trusts just this certificate (by
/// its key's hash) and maps `huddle.test` to loopback; one tab publishes its
/// fake camera, another watches as a player and decodes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_publishes_from_an_https_page_on_a_host_name() {
    use base64::Engine;
    use rcgen::PublicKeyData;
    use sha2::Digest;

    const TEST: &str = "a_browser_publishes_from_an_https_page_on_a_host_name";
    let (certified, _) = self_signed(&["huddle.test"]);
    let spki = sha2::Sha256::digest(certified.signing_key.subject_public_key_info());
    let spki = base64::engine::general_purpose::STANDARD.encode(spki);
    let Some(mut browser) = Chromium::start_or_skip(
        TEST,
        &[
            &format!("--ignore-certificate-errors-spki-list={spki}"),
            "--host-resolver-rules=MAP huddle.test 127.0.0.1, MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        ],
    )
    .await
    else {
        return;
    };
    let (_server, addr) = tls_server(&certified).await;
    let port = addr.rsplit(':').next().expect("port");
    let base = format!("https://huddle.test:{port}/?app={APP_ID}&room=tls-web&autojoin=1");
    let summary = "window.huddle ? huddle.summary() : null";

    let publisher = browser.open(&format!("{base}&user=camera")).await;
    let local = browser
        .wait_for(
            &publisher,
            Duration::from_secs(30),
            "the camera is published",
            summary,
            |s| {
                (s["local"]["media"]["video"]["frames"].as_u64() >= Some(10))
                    .then(|| s["local"].clone())
            },
        )
        .await;
    let secure = browser
        .eval(&publisher, "window.isSecureContext && location.protocol")
        .await;
    assert_eq!(secure, "https:", "{local}");

    let player = browser
        .open(&format!("{base}&user=viewer&role=2&camera=none&mic=none"))
        .await;
    browser
        .wait_for(
            &player,
            Duration::from_secs(30),
            "the player decodes the camera",
            summary,
            |s| {
                s["remote"]
                    .as_array()?
                    .iter()
                    .find(|t| {
                        t["userId"] == "camera"
                            && t["media"]["video"]["frames"].as_u64() >= Some(30)
                    })
                    .cloned()
            },
        )
        .await;
    let server_url = browser
        .eval(&player, "document.getElementById('server').value")
        .await;
    assert_eq!(server_url, format!("wss://huddle.test:{port}/ws"));
}
