//! A real Redis (Debian package `redis-server`) for the several-nodes tests:
//! no persistence, its own directory, on a free loopback port; killed on
//! drop. It can be stopped and started again on the same port (Redis
//! "going away" and coming back, empty).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::skip;

/// A `redis-server` on 127.0.0.1; killed on drop.
pub struct Redis {
    child: Option<Child>,
    /// Its TCP port on 127.0.0.1.
    pub port: u16,
    dir: PathBuf,
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
        std::fs::remove_dir_all(&self.dir).ok(); // best effort: a temp dir
    }
}

impl Redis {
    /// Starts Redis, or `None` after `skip` when `redis-server` is missing.
    pub fn start(test: &str) -> Option<Self> {
        if Command::new("redis-server")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_err()
        {
            skip(test, "no `redis-server` (Debian package redis-server)");
            return None;
        }
        // A free port can be taken between our probe and Redis's bind: then
        // it exits, and we try another.
        for _ in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|s| s.local_addr())
                .expect("a free TCP port")
                .port();
            let dir =
                std::env::temp_dir().join(format!("huddle-redis-{}-{port}", std::process::id()));
            std::fs::create_dir_all(&dir).expect("temp dir");
            let mut redis = Redis {
                child: None,
                port,
                dir,
            };
            if redis.run() {
                return Some(redis);
            }
        }
        panic!("redis-server did not start on any of 5 ports");
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills it (`kill -9`): connections drop, nothing is saved.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().ok(); // already gone: nothing to stop
            child.wait().ok();
        }
    }

    /// Starts it again on the same port, empty.
    pub fn restart(&mut self) {
        self.stop();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.run() {
            assert!(Instant::now() < deadline, "redis-server did not come back");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Spawns the server and waits until it answers `PING`; `false` if it
    /// exited (the port is taken).
    fn run(&mut self) -> bool {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--protected-mode",
                "no",
            ])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.ping() {
                return true;
            }
            if let Some(child) = &mut self.child
                && child.try_wait().ok().flatten().is_some()
            {
                self.child = None;
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.stop();
        false
    }

    /// Whether it answers `PING` now.
    pub fn ping(&self) -> bool {
        self.command(&["PING"]).is_some_and(|r| r == "+PONG")
    }

    /// Sends one command over a fresh connection and returns the first line
    /// of the answer (RESP as is, e.g. `$5`, `+PONG`, `:1`), or `None` when
    /// it cannot be reached.
    pub fn command(&self, args: &[&str]) -> Option<String> {
        use std::io::{BufRead, BufReader, Write};
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        let mut request = format!("*{}\r\n", args.len());
        for arg in args {
            request.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
        }
        stream.write_all(request.as_bytes()).ok()?;
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        reader.read_line(&mut line).ok()?;
        let first = line.trim_end().to_owned();
        // A bulk string: its value is the next line.
        if first.starts_with('$') && first != "$-1" {
            let mut value = String::new();
            reader.read_line(&mut value).ok()?;
            return Some(value.trim_end().to_owned());
        }
        Some(first)
    }
}
