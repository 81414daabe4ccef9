//! The stderr of a spawned `huddle` process, drained line by line by a thread
//! (a full pipe would block the process) and read with bounded waits.

use std::io::BufRead;
use std::process::Child;
use std::sync::{Mutex, mpsc};
use std::time::{Duration, Instant};

/// The lines a child printed on stderr, and the ones already read.
pub struct StderrLines {
    rx: mpsc::Receiver<String>,
    seen: Mutex<Vec<String>>,
}

impl StderrLines {
    /// Takes the child's piped stderr and starts draining it.
    pub fn of(child: &mut Child) -> Self {
        let stderr = child.stderr.take().expect("stderr is piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            rx,
            seen: Mutex::default(),
        }
    }

    fn seen(&self) -> std::sync::MutexGuard<'_, Vec<String>> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits up to `limit` for a line that `pick` maps to a value; panics
    /// with every line seen so far when none comes.
    pub fn wait_for<T>(
        &self,
        what: &str,
        limit: Duration,
        mut pick: impl FnMut(&str) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(line) => {
                    let found = pick(&line);
                    self.seen().push(line);
                    if let Some(value) = found {
                        return value;
                    }
                }
                Err(_) => panic!("no {what} on stderr; saw {:#?}", self.seen()),
            }
        }
    }

    /// The signalling URL from `huddle serve`'s start-up line
    /// (`… listening on ws://127.0.0.1:PORT`).
    pub fn listening_url(&self) -> String {
        self.wait_for("listening line", Duration::from_secs(30), |line| {
            line.split_once("listening on ")
                .map(|(_, url)| url.trim().to_owned())
        })
    }

    /// Every line printed so far (read or not), without waiting.
    pub fn so_far(&self) -> Vec<String> {
        let mut seen = self.seen();
        seen.extend(self.rx.try_iter());
        seen.clone()
    }

    /// Every line, waiting for the process's stderr to close (it has exited).
    pub fn all(&self) -> Vec<String> {
        let mut seen = self.seen();
        seen.extend(self.rx.iter());
        seen.clone()
    }
}
