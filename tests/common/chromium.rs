//! Headless Chromium driven over the DevTools protocol (CDP), for the tests
//! of the web client: a real browser with its own WebRTC stack, fake camera
//! and microphone, no network but loopback.
//!
//! The CDP client is the least that works: one WebSocket to the browser,
//! `Target.createTarget` + `Target.attachToTarget` (flat sessions) per page,
//! then `Runtime.evaluate` to click the page's buttons and read
//! `huddle.summary()`. Events are not used, except console messages and
//! uncaught exceptions, which are kept to explain a failure.

use std::collections::VecDeque;
use std::io::BufRead;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

/// How long Chromium may take to start and print its DevTools address.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one CDP command may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(20);
/// Console lines kept for a failure message.
const CONSOLE_LINES: usize = 60;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A running headless Chromium; killed (and its profile removed) on drop.
pub struct Chromium {
    child: Child,
    profile: PathBuf,
    socket: Socket,
    next_id: u64,
    console: VecDeque<String>,
}

/// One page (tab) of the browser.
#[derive(Debug, Clone)]
pub struct Page {
    session: String,
}

/// The Chromium binary on `PATH`, if any.
fn find_binary() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .flat_map(|name| std::env::split_paths(&path).map(move |dir| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

/// Whether an interface other than loopback is up with an IPv4 address or a
/// non-link-local IPv6 address. Chromium's WebRTC gathers candidates on such
/// interfaces only (never on loopback); it needs no route through them: it
/// sends from that address to the server's 127.0.0.1 candidate, which the
/// kernel delivers locally. Seen: in a network namespace with only `lo`,
/// every browser link failed; with an unrouted veth address, all passed.
fn has_network_interface() -> bool {
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs stores the head of a list it allocates in `list`;
    // it is freed below with freeifaddrs, once.
    if unsafe { libc::getifaddrs(&mut list) } != 0 {
        return true; // cannot tell: let the test try
    }
    let mut found = false;
    let mut node = list;
    while !node.is_null() {
        // SAFETY: `node` is an element of the list getifaddrs returned, not
        // yet freed; its `ifa_addr`, when not null, points to a sockaddr whose
        // family says which sockaddr it is.
        let ifa = unsafe { &*node };
        let flags = ifa.ifa_flags;
        let usable = flags & libc::IFF_UP as u32 != 0 && flags & libc::IFF_LOOPBACK as u32 == 0;
        if usable && !ifa.ifa_addr.is_null() {
            match i32::from(unsafe { (*ifa.ifa_addr).sa_family }) {
                libc::AF_INET => found = true,
                libc::AF_INET6 => {
                    // SAFETY: the family says this is a sockaddr_in6.
                    let v6 = unsafe { &*ifa.ifa_addr.cast::<libc::sockaddr_in6>() };
                    let ip = std::net::Ipv6Addr::from(v6.sin6_addr.s6_addr);
                    found |= !ip.is_unicast_link_local();
                }
                _ => {}
            }
        }
        if found {
            break;
        }
        node = ifa.ifa_next;
    }
    // SAFETY: `list` came from getifaddrs above and is freed once.
    unsafe { libc::freeifaddrs(list) };
    found
}

impl Chromium {
    /// Starts headless Chromium with `extra_args`, or calls `skip` and
    /// returns `None` when there is none (`.ci/setup.sh` installs Debian's
    /// `chromium`).
    pub async fn start_or_skip(test: &str, extra_args: &[&str]) -> Option<Self> {
        let Some(binary) = find_binary() else {
            super::skip(test, "no chromium on PATH (Debian package `chromium`)");
            return None;
        };
        if !has_network_interface() {
            super::skip(
                test,
                "no network interface but loopback: Chromium gathers no ICE candidates on \
                 loopback, so no media would flow. Any interface with an address will do, \
                 e.g. `ip link add v0 type veth peer name v1; ip addr add 192.0.2.1/24 dev v0; \
                 ip link set v0 up`",
            );
            return None;
        }
        let profile = std::env::temp_dir().join(format!(
            "huddle-chromium-{}-{}",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::create_dir_all(&profile).expect("profile dir");
        let mut command = Command::new(&binary);
        command
            .args([
                "--headless=new",
                // Root in a container: Chromium's sandbox needs user namespaces.
                "--no-sandbox",
                "--use-fake-device-for-media-stream",
                "--use-fake-ui-for-media-stream",
                "--autoplay-policy=no-user-gesture-required",
                // No DNS and no network but loopback; no public STUN either
                // (the page uses no ICE servers).
                "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
                "--remote-debugging-port=0",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-extensions",
                "--disable-gpu",
                // Containers often have a small /dev/shm; use /tmp instead.
                "--disable-dev-shm-usage",
                "--window-size=1280,900",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .args(extra_args)
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                // Chromium's own log (D-Bus, GPU notes) is noise here; the
                // pages' console is kept instead (`console`).
                if let Some(url) = line.split("DevTools listening on ").nth(1) {
                    tx.send(Ok(url.trim().to_owned())).ok(); // test gone: fine
                }
            }
            tx.send(Err(())).ok(); // stderr closed (exited): fine if the test is gone
        });
        let url = match rx.recv_timeout(START_TIMEOUT) {
            Ok(Ok(url)) => url,
            other => {
                child.kill().ok();
                panic!("chromium printed no DevTools address within {START_TIMEOUT:?}: {other:?}");
            }
        };
        let (socket, _) = tokio_tungstenite::connect_async(&url)
            .await
            .unwrap_or_else(|e| panic!("connect to chromium's DevTools at {url}: {e}"));
        Some(Self {
            child,
            profile,
            socket,
            next_id: 1,
            console: VecDeque::new(),
        })
    }

    /// Sends one CDP command (to a page's session, or to the browser) and
    /// returns its result; panics on a CDP error.
    pub async fn command(&mut self, page: Option<&Page>, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let mut message = json!({"id": id, "method": method, "params": params});
        if let Some(page) = page {
            message["sessionId"] = json!(page.session);
        }
        self.socket
            .send(Message::Text(message.to_string().into()))
            .await
            .expect("send to chromium");
        let deadline = Instant::now() + COMMAND_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let frame = tokio::time::timeout(left, self.socket.next())
                .await
                .unwrap_or_else(|_| {
                    panic!("chromium did not answer {method} within {COMMAND_TIMEOUT:?}")
                })
                .unwrap_or_else(|| panic!("chromium closed DevTools during {method}"))
                .unwrap_or_else(|e| panic!("DevTools socket error during {method}: {e}"));
            let Message::Text(text) = frame else { continue };
            let reply: Value = serde_json::from_str(text.as_str()).expect("CDP sends JSON");
            if reply["id"] == json!(id) {
                if let Some(error) = reply.get("error") {
                    panic!("CDP {method} failed: {error}");
                }
                return reply["result"].clone();
            }
            self.keep_console(&reply);
        }
    }

    /// Keeps what the pages log, to explain a failure.
    fn keep_console(&mut self, event: &Value) {
        let line = match event["method"].as_str() {
            Some("Runtime.consoleAPICalled") => {
                let args = event["params"]["args"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                let texts: Vec<String> = args
                    .iter()
                    .map(|a| {
                        a["value"]
                            .as_str()
                            .map_or_else(|| a["value"].to_string(), str::to_owned)
                    })
                    .collect();
                format!("console.{}: {}", event["params"]["type"], texts.join(" "))
            }
            Some("Runtime.exceptionThrown") => format!(
                "exception: {}",
                event["params"]["exceptionDetails"]["exception"]["description"]
            ),
            _ => return,
        };
        if self.console.len() == CONSOLE_LINES {
            self.console.pop_front();
        }
        self.console.push_back(line);
    }

    /// What the pages logged (the last few lines), for failure messages.
    pub fn console(&self) -> String {
        self.console.iter().cloned().collect::<Vec<_>>().join("\n")
    }

    /// Opens `url` in a new page.
    pub async fn open(&mut self, url: &str) -> Page {
        self.open_with_script(url, None).await
    }

    /// Opens `url` in a new page that runs `script` before any of its own
    /// (to change what the browser offers, as another browser would).
    pub async fn open_with_script(&mut self, url: &str, script: Option<&str>) -> Page {
        let target = self
            .command(None, "Target.createTarget", json!({"url": "about:blank"}))
            .await;
        let target_id = target["targetId"].as_str().expect("targetId").to_owned();
        let attached = self
            .command(
                None,
                "Target.attachToTarget",
                json!({"targetId": target_id, "flatten": true}),
            )
            .await;
        let page = Page {
            session: attached["sessionId"]
                .as_str()
                .expect("sessionId")
                .to_owned(),
        };
        self.command(Some(&page), "Runtime.enable", json!({})).await;
        self.command(Some(&page), "Page.enable", json!({})).await;
        if let Some(script) = script {
            self.command(
                Some(&page),
                "Page.addScriptToEvaluateOnNewDocument",
                json!({"source": script}),
            )
            .await;
        }
        self.command(Some(&page), "Page.navigate", json!({"url": url}))
            .await;
        page
    }

    /// Evaluates `expression` in the page (awaiting a promise) and returns
    /// its value; panics when it throws.
    pub async fn eval(&mut self, page: &Page, expression: &str) -> Value {
        let result = self
            .command(
                Some(page),
                "Runtime.evaluate",
                json!({"expression": expression, "awaitPromise": true, "returnByValue": true}),
            )
            .await;
        if let Some(exception) = result.get("exceptionDetails") {
            panic!(
                "{expression} threw: {exception}\npage console:\n{}",
                self.console()
            );
        }
        result["result"]["value"].clone()
    }

    /// Evaluates `expression` every 200 ms until `check` accepts its value,
    /// within `timeout`; panics with `what`, the last value and the console.
    pub async fn wait_for<T>(
        &mut self,
        page: &Page,
        timeout: Duration,
        what: &str,
        expression: &str,
        mut check: impl FnMut(&Value) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + timeout;
        loop {
            let value = self.eval(page, expression).await;
            if let Some(found) = check(&value) {
                return found;
            }
            if Instant::now() >= deadline {
                panic!(
                    "timed out after {timeout:?} waiting for {what}; last value: {value:#}\npage console:\n{}",
                    self.console()
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// A PNG of the page as it is shown now.
    pub async fn screenshot(&mut self, page: &Page) -> Vec<u8> {
        use base64::Engine;
        let shot = self
            .command(
                Some(page),
                "Page.captureScreenshot",
                json!({"format": "png", "captureBeyondViewport": true}),
            )
            .await;
        base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().expect("screenshot data"))
            .expect("CDP sends base64")
    }
}

impl Drop for Chromium {
    fn drop(&mut self) {
        self.child.kill().ok(); // already gone: fine
        self.child.wait().ok();
        std::fs::remove_dir_all(&self.profile).ok(); // best effort: a temp dir
    }
}
