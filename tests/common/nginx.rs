//! nginx in the foreground as a reverse proxy in front of a node (the
//! README's deployment), on a free loopback port, with its own prefix
//! directory (config, logs, temp paths); killed and its directory removed on
//! drop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::skip;

/// A running nginx.
pub struct Nginx {
    child: Child,
    /// Its listening port on 127.0.0.1.
    pub port: u16,
    /// Its prefix directory (`logs/access.log`, whatever `prepare` wrote).
    pub dir: PathBuf,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        self.child.kill().ok(); // already gone: nothing to stop
        self.child.wait().ok();
        std::fs::remove_dir_all(&self.dir).ok(); // best effort: a temp dir
    }
}

/// Whether `tool arg` runs at all.
pub fn have(tool: &str, arg: &str) -> bool {
    Command::new(tool)
        .arg(arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

impl Nginx {
    /// Starts nginx with one `server { … }` block, `server(port, dir)` (inside
    /// an `http` block that already has the temp paths, an access log and the
    /// `$connection_upgrade` map of the WebSocket example), after
    /// `prepare(dir)` (certificates, say). `None` after `skip` without nginx.
    pub fn start(
        test: &str,
        prepare: impl Fn(&Path),
        server: impl Fn(u16, &Path) -> String,
    ) -> Option<Self> {
        if !have("nginx", "-v") {
            skip(test, "no `nginx` (Debian package nginx)");
            return None;
        }
        for _ in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free port")
                .port();
            let dir =
                std::env::temp_dir().join(format!("huddle-nginx-{}-{port}", std::process::id()));
            std::fs::create_dir_all(dir.join("logs")).expect("temp dir");
            prepare(&dir);
            let config = format!(
                r#"worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/logs/error.log info;
events {{ worker_connections 64; }}
http {{
    access_log {dir}/logs/access.log;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    map $http_upgrade $connection_upgrade {{ default upgrade; '' close; }}
{server}
}}
"#,
                dir = dir.display(),
                server = server(port, &dir),
            );
            std::fs::write(dir.join("nginx.conf"), config).expect("write nginx.conf");
            let child = Command::new("nginx")
                .arg("-p")
                .arg(&dir)
                .arg("-c")
                .arg(dir.join("nginx.conf"))
                .args(["-g", "daemon off;"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start nginx");
            let mut nginx = Nginx { child, port, dir };
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Some(nginx);
                }
                if nginx.child.try_wait().ok().flatten().is_some() {
                    break; // exited: the port was taken
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            eprintln!(
                "nginx did not listen on {port}: {}",
                std::fs::read_to_string(nginx.dir.join("logs/error.log")).unwrap_or_default()
            );
        }
        panic!("nginx did not start on any of 5 ports");
    }

    /// The requests it passed on, as its access log has them.
    pub fn requests(&self) -> String {
        std::fs::read_to_string(self.dir.join("logs/access.log")).unwrap_or_default()
    }
}
