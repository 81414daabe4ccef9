//! `huddle serve` as a process: SIGTERM (systemd, Docker, Kubernetes) is a
//! clean shutdown like Ctrl-C, and an open `GET /signature` is warned about at
//! start-up. Issue 9, items 4 and 9.
#![cfg(feature = "client")]

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use huddle::protocol::{Reply, ServerMessage};

/// A `huddle serve` child process and the lines of its stderr.
struct Serve {
    child: Child,
    lines: StderrLines,
}

impl Serve {
    fn start(extra: &[&str]) -> Self {
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
            .args(extra)
            .env_remove("RUST_LOG") // the binary's default log filter
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start huddle serve");
        let lines = StderrLines::of(&mut child);
        Self { child, lines }
    }

    /// Waits (bounded) for a stderr line matching `pick`.
    fn line<T>(&mut self, what: &str, pick: impl FnMut(&str) -> Option<T>) -> T {
        self.lines.wait_for(what, Duration::from_secs(20), pick)
    }

    /// The server's WebSocket URL, from its start-up line.
    fn url(&mut self) -> String {
        self.lines.listening_url()
    }

    fn signal(&self, signal: libc::c_int) {
        let pid = libc::pid_t::try_from(self.child.id()).expect("pid fits");
        // SAFETY: kill(2) with the pid of our own child, not yet reaped.
        let rc = unsafe { libc::kill(pid, signal) };
        assert_eq!(rc, 0, "kill: {}", std::io::Error::last_os_error());
    }

    /// Waits (bounded) for the process to exit; returns its status and all of
    /// its stderr.
    fn wait(mut self) -> (std::process::ExitStatus, Vec<String>) {
        let deadline = Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                break status;
            }
            assert!(Instant::now() < deadline, "huddle serve did not exit");
            std::thread::sleep(Duration::from_millis(20));
        };
        (status, self.lines.all())
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        self.child.kill().ok(); // already exited: fine
        self.child.wait().ok();
    }
}

fn is_open_signature_warning(line: &str) -> bool {
    line.contains("WARN") && line.contains("/signature")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_bans_every_client_with_reason_3_and_exits_cleanly() {
    let mut serve = Serve::start(&[]);
    let url = serve.url();
    let mut alice = RawSocket::connect_url(&url).await;
    alice.joined("room-term", "alice").await;
    let mut bob = RawSocket::connect_url(&url).await;
    bob.joined("room-term", "bob").await;

    serve.signal(libc::SIGTERM);
    for (name, socket) in [("alice", &mut alice), ("bob", &mut bob)] {
        socket.until_shutdown_goodbye(name).await;
    }
    let (status, _) = serve.wait();
    assert!(status.success(), "huddle serve exited with {status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_signature_endpoint_is_warned_about_at_start_up() {
    let mut open = Serve::start(&[]);
    open.url();
    open.line("a WARN line about the open /signature", |l| {
        is_open_signature_warning(l).then_some(())
    });
    open.signal(libc::SIGTERM);
    let (_, lines) = open.wait();
    assert_eq!(
        lines
            .iter()
            .filter(|l| is_open_signature_warning(l))
            .count(),
        1,
        "warned once: {lines:#?}"
    );

    let mut guarded = Serve::start(&["--signature-token", "s3cret"]);
    let url = guarded.url();
    // Start-up is over once a session works.
    let mut client = RawSocket::connect_url(&url).await;
    client.send(r#"{"id":1,"type":"ping"}"#).await;
    assert!(matches!(
        client.recv().await,
        ServerMessage::Reply {
            reply: Reply::Pong,
            ..
        }
    ));
    guarded.signal(libc::SIGTERM);
    let (_, lines) = guarded.wait();
    assert!(
        !lines.iter().any(|l| is_open_signature_warning(l)),
        "no warning with a token: {lines:#?}"
    );
}
