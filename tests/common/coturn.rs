//! A real coturn (Debian package `coturn`) for the TURN tests: its own
//! config, user database and log in a temp directory, on a free loopback
//! port; killed on drop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use huddle::client::IceServer;

use super::skip;

pub const TURN_USER: &str = "huddle-user";
pub const TURN_PASSWORD: &str = "huddle-secret";

/// A coturn process on a free loopback port, with its config, database and
/// log in a directory of its own; killed on drop.
pub struct Coturn {
    child: Child,
    /// Its UDP listening port on 127.0.0.1.
    pub port: u16,
    dir: PathBuf,
}

impl Drop for Coturn {
    fn drop(&mut self) {
        self.child.kill().ok(); // already gone: nothing to stop
        self.child.wait().ok();
        std::fs::remove_dir_all(&self.dir).ok(); // best effort: a temp dir
    }
}

impl Coturn {
    /// Starts coturn, or `None` after `skip` when `turnserver` is missing.
    pub fn start(test: &str) -> Option<Self> {
        if Command::new("turnserver")
            .arg("--help")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_err()
        {
            skip(test, "no `turnserver` (Debian package coturn)");
            return None;
        }
        // A free port can be taken between our probe and coturn's bind:
        // coturn then logs no listener, and we try another port.
        for _ in 0..5 {
            let port = std::net::UdpSocket::bind("127.0.0.1:0")
                .and_then(|s| s.local_addr())
                .expect("a free UDP port")
                .port();
            let dir =
                std::env::temp_dir().join(format!("huddle-coturn-{}-{port}", std::process::id()));
            std::fs::create_dir_all(&dir).expect("temp dir");
            let config = dir.join("turnserver.conf");
            // Loopback everywhere: coturn relays between 127.0.0.1 ports, and
            // must be told that loopback peers (our SFU) are allowed.
            std::fs::write(
                &config,
                format!(
                    "listening-port={port}\nlistening-ip=127.0.0.1\nrelay-ip=127.0.0.1\n\
                     min-port=40000\nmax-port=49999\n\
                     lt-cred-mech\nuser={TURN_USER}:{TURN_PASSWORD}\nrealm=huddle\n\
                     no-tls\nno-dtls\nno-cli\nno-tcp-relay\nallow-loopback-peers\n\
                     log-file={log}\nsimple-log\nverbose\n\
                     pidfile={pid}\nuserdb={db}\n",
                    log = dir.join("turn.log").display(),
                    pid = dir.join("turn.pid").display(),
                    db = dir.join("turndb").display(),
                ),
            )
            .expect("write coturn config");
            let child = Command::new("turnserver")
                .arg("-c")
                .arg(&config)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start turnserver");
            let mut coturn = Coturn { child, port, dir };
            let ready = format!("UDP listener opened on: 127.0.0.1:{port}");
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if coturn.log().contains(&ready) {
                    return Some(coturn);
                }
                if coturn.child.try_wait().ok().flatten().is_some() {
                    break; // exited: the port was taken, or a bad config
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            eprintln!("coturn did not open port {port}:\n{}", coturn.log());
        }
        panic!("coturn did not start on any of 5 ports");
    }

    pub fn log(&self) -> String {
        log_of(&self.dir)
    }

    pub fn url(&self) -> String {
        format!("turn:127.0.0.1:{}?transport=udp", self.port)
    }

    pub fn server(&self, password: &str) -> IceServer {
        IceServer {
            urls: vec![self.url()],
            username: TURN_USER.into(),
            credential: password.into(),
        }
    }

    /// Log lines containing every one of `words`.
    pub fn lines_with(&self, words: &[&str]) -> Vec<String> {
        self.log()
            .lines()
            .filter(|l| words.iter().all(|w| l.contains(w)))
            .map(str::to_owned)
            .collect()
    }
}

fn log_of(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("turn.log")).unwrap_or_default()
}
