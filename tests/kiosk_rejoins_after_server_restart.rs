//! Kiosk mode rejoins on its own when the server goes away and comes back on
//! the same port: `huddle serve` as a child process is killed and restarted;
//! the kiosk must reappear as a room member (server `/metrics.json` users).
//! Since issue 11 it is the SDK's reconnection that brings it back (the kiosk
//! keeps no rejoin loop of its own): the test follows its "reconnect attempt
//! failed" log lines.
//!
//! Skips, saying why, when Xvfb/ImageMagick are missing (fails on CI).
#![cfg(feature = "client")]
#![cfg(feature = "app")]

mod common;
mod gui;

use std::io::BufRead;
use std::net::SocketAddr;
use std::process::{Child, ChildStderr, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const APP_ID: &str = "kiosk-app";
const APP_KEY: &str = "kiosk-key";

/// A port on 127.0.0.1 held for the whole test, for two servers in turn.
///
/// The test owns a socket bound to it with `SO_REUSEADDR` but never listening.
/// On Linux that keeps the port out of everyone else's hands (a bind without
/// `SO_REUSEADDR` conflicts with it; `bind(…:0)` and outgoing connections never
/// pick a port someone has bound), while `huddle serve --listen 127.0.0.1:PORT`
/// (tokio binds with `SO_REUSEADDR`) can still bind it and listen. So the
/// restarted server gets the same port back, also while the first one's
/// connections sit in TIME_WAIT, and nothing can take it in between. Picking
/// a port by binding and dropping a listener would leave it free for anyone
/// until the child binds it, and free again during the outage.
fn reserve_port() -> (tokio::net::TcpSocket, SocketAddr) {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_reuseaddr(true).expect("SO_REUSEADDR");
    socket
        .bind("127.0.0.1:0".parse().expect("addr"))
        .expect("bind 127.0.0.1:0");
    let addr = socket.local_addr().expect("local addr");
    (socket, addr)
}

/// Lines of a child's stderr, forwarded to ours, and the ones containing
/// `watch` sent to the returned channel.
fn watch_stderr(
    who: &'static str,
    stderr: ChildStderr,
    watch: &'static str,
) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            eprintln!("[{who}] {line}");
            if line.contains(watch) {
                tx.send(line).ok(); // nobody waiting any more: fine
            }
        }
    });
    rx
}

/// `huddle serve` on `addr`, returned once it says it listens there.
fn serve(addr: SocketAddr) -> gui::KillOnDrop {
    let mut child = Command::new(env!("CARGO_BIN_EXE_huddle"))
        .args([
            "serve",
            "--listen",
            &addr.to_string(),
            "--app-id",
            APP_ID,
            "--app-key",
            APP_KEY,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start huddle serve");
    let stderr = child.stderr.take().expect("piped stderr");
    let mut server = gui::KillOnDrop(child);
    let listening = watch_stderr("serve", stderr, "huddle server listening on");
    let line = listening
        .recv_timeout(Duration::from_secs(30))
        .unwrap_or_else(|_| {
            panic!(
                "huddle serve did not report listening within 30 s (exit status {:?})",
                server.0.try_wait()
            )
        });
    assert!(
        line.ends_with(&format!("ws://{addr}")),
        "huddle serve listens elsewhere: {line}"
    );
    server
}

/// The kiosk on `display`, and its SDK's "reconnect attempt failed …" log lines.
fn kiosk(display: &gui::Display, url: &str) -> (gui::KillOnDrop, mpsc::Receiver<String>) {
    let mut child: Child = display.launch_huddle_with_stderr(
        &[
            "--kiosk",
            "--server",
            url,
            "--room",
            "lobby",
            "--user",
            "wall",
            "--app-id",
            APP_ID,
            "--app-key",
            APP_KEY,
            "--window-size",
            "1280x720",
        ],
        Stdio::piped(),
    );
    let stderr = child.stderr.take().expect("piped stderr");
    let rejoins = watch_stderr("kiosk", stderr, "reconnect attempt failed");
    (gui::KillOnDrop(child), rejoins)
}

fn users(addr: SocketAddr) -> Option<u64> {
    let body = gui::http_get(&addr.to_string(), "/metrics.json")?;
    let v: serde_json::Value = serde_json::from_str(&body).ok()?;
    v.get("users")?.as_u64()
}

fn wait_users(addr: SocketAddr, want: u64, within: Duration) -> Duration {
    let start = Instant::now();
    loop {
        if users(addr) == Some(want) {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < within,
            "server never saw {want} user(s) (last: {:?})",
            users(addr)
        );
        std::thread::sleep(Duration::from_millis(200)); // poll interval
    }
}

#[test]
fn kiosk_rejoins_after_the_server_restarts() {
    if !gui::tools_or_skip("kiosk_rejoins_after_the_server_restarts") {
        return;
    }
    let (_port, addr) = reserve_port();
    let url = format!("ws://{addr}");
    let mut server = serve(addr);

    let display = gui::Display::start();
    let (_app, rejoins) = kiosk(&display, &url);
    let first = wait_users(addr, 1, Duration::from_secs(60));
    eprintln!("kiosk joined after {first:?}");

    // Server "crash": kill it and keep it down until the kiosk's SDK has
    // tried twice against the dead port, then start a new one on the same
    // port.
    server.0.kill().expect("kill server");
    server.0.wait().ok();
    while rejoins.try_recv().is_ok() {} // from before the crash
    let down = Instant::now();
    for n in 1..=2 {
        let line = rejoins
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| {
                panic!("kiosk logged no reconnect attempt #{n} within 30 s of the crash")
            });
        eprintln!("{:?} after the crash: {line}", down.elapsed());
    }
    server = serve(addr);
    let again = wait_users(addr, 1, Duration::from_secs(30));
    eprintln!("kiosk rejoined {again:?} after the restart");
    drop(server);
}
