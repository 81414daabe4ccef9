//! Harness for desktop-app tests: a private Xvfb display, the built `huddle`
//! binary in kiosk mode, screenshots read back as raw RGB.
//!
//! Without Xvfb or ImageMagick, [`tools_or_skip`] skips the test (saying why)
//! or, on CI, fails it. Test files using this module also use `common`.

#![allow(dead_code)] // each test file uses a different part of the harness

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Screen size of the virtual display.
pub const SCREEN: (usize, usize) = (1280, 720);

/// How long Xvfb may take to report its display.
const XVFB_READY: Duration = Duration::from_secs(30);

/// Why a GUI test cannot run here, if it cannot.
pub fn skip_reason() -> Option<String> {
    for tool in ["/usr/bin/Xvfb", "/usr/bin/import", "/usr/bin/convert"] {
        if !Path::new(tool).exists() {
            return Some(format!(
                "{tool} not installed (apt-get install xvfb mesa-vulkan-drivers libvulkan1 imagemagick)"
            ));
        }
    }
    None
}

/// Whether `test` can use the display tools; if not, `common::skip` has
/// printed why (outside CI) or panicked (on CI).
#[track_caller]
pub fn tools_or_skip(test: &str) -> bool {
    match skip_reason() {
        None => true,
        Some(reason) => {
            crate::common::skip(test, &reason);
            false
        }
    }
}

/// A running Xvfb; killed on drop.
pub struct Display {
    pub name: String,
    child: Child,
    pub runtime_dir: PathBuf,
}

impl Display {
    /// Starts Xvfb on a free display. Xvfb picks the number itself
    /// (`-displayfd`: the first one whose socket it can create) and writes it
    /// to its stdout once it accepts connections, so there is no number to
    /// guess and no socket to poll for.
    pub fn start() -> Display {
        let mut child = Command::new("/usr/bin/Xvfb")
            .args([
                "-displayfd",
                "1",
                "-screen",
                "0",
                &format!("{}x{}x24", SCREEN.0, SCREEN.1),
                "-nolisten",
                "tcp",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start Xvfb");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut out = std::io::BufReader::new(stdout);
            let mut line = String::new();
            // EOF (Xvfb exited) sends an empty line.
            out.read_line(&mut line).ok();
            tx.send(line).ok(); // the test gave up waiting: fine
            // Keep the pipe open (a closed one would kill Xvfb on a later write).
            std::io::copy(&mut out, &mut std::io::sink()).ok();
        });
        let line = match rx.recv_timeout(XVFB_READY) {
            Ok(line) => line,
            Err(_) => {
                child.kill().ok(); // already gone is fine
                panic!("Xvfb reported no display within {XVFB_READY:?}");
            }
        };
        let Ok(number) = line.trim().parse::<u32>() else {
            let status = child.try_wait();
            panic!("Xvfb did not report a display (said {line:?}; exit status {status:?})");
        };
        let name = format!(":{number}");
        let runtime_dir =
            std::env::temp_dir().join(format!("huddle-xdg-{}-{number}", std::process::id()));
        std::fs::create_dir_all(&runtime_dir).expect("runtime dir");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&runtime_dir, std::fs::Permissions::from_mode(0o700))
                .expect("chmod runtime dir");
        }
        Display {
            name,
            child,
            runtime_dir,
        }
    }

    /// Launches `huddle` with `args` on this display.
    pub fn launch_huddle(&self, args: &[&str]) -> Child {
        self.launch_huddle_with_stderr(args, Stdio::inherit())
    }

    /// [`Display::launch_huddle`] with its stderr (the log) going to `stderr`.
    pub fn launch_huddle_with_stderr(&self, args: &[&str], stderr: Stdio) -> Child {
        let bin = env!("CARGO_BIN_EXE_huddle");
        let config_dir = self.runtime_dir.join("config");
        Command::new(bin)
            .args(args)
            .env("DISPLAY", &self.name)
            .env_remove("WAYLAND_DISPLAY")
            .env("XDG_RUNTIME_DIR", &self.runtime_dir)
            .env("XDG_CONFIG_HOME", config_dir)
            .env("RUST_LOG", "huddle=info,warn")
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("launch huddle")
    }

    /// Takes a screenshot of the whole display into `path` (PNG).
    pub fn screenshot(&self, path: &Path) -> Screenshot {
        let status = Command::new("/usr/bin/import")
            .args(["-window", "root"])
            .arg(path)
            .env("DISPLAY", &self.name)
            .status()
            .expect("run import");
        assert!(status.success(), "import failed");
        Screenshot::read(path)
    }
}

impl Drop for Display {
    fn drop(&mut self) {
        self.child.kill().ok(); // already gone is fine
        self.child.wait().ok();
        std::fs::remove_dir_all(&self.runtime_dir).ok(); // best effort: it is in /tmp
    }
}

/// Kills a child process when dropped.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        self.0.kill().ok(); // already gone is fine
        self.0.wait().ok();
    }
}

/// A screenshot as packed RGB.
pub struct Screenshot {
    pub width: usize,
    pub height: usize,
    pub rgb: Vec<u8>,
}

impl Screenshot {
    /// Reads a PNG via ImageMagick's raw RGB output.
    pub fn read(path: &Path) -> Screenshot {
        let out = Command::new("/usr/bin/convert")
            .arg(path)
            .args(["-depth", "8", "rgb:-"])
            .output()
            .expect("run convert");
        assert!(out.status.success(), "convert failed");
        let (width, height) = SCREEN;
        assert_eq!(
            out.stdout.len(),
            width * height * 3,
            "unexpected screenshot size"
        );
        Screenshot {
            width,
            height,
            rgb: out.stdout,
        }
    }

    fn pixel(&self, x: usize, y: usize) -> [u8; 3] {
        let i = (y * self.width + x) * 3;
        [self.rgb[i], self.rgb[i + 1], self.rgb[i + 2]]
    }

    /// Standard deviation of luma over a region (0..255): ~0 for a blank area.
    pub fn luma_stddev(&self, x0: usize, y0: usize, w: usize, h: usize) -> f64 {
        let mut sum = 0.0;
        let mut sq = 0.0;
        let mut n = 0.0;
        for y in (y0..y0 + h).step_by(2) {
            for x in (x0..x0 + w).step_by(2) {
                let [r, g, b] = self.pixel(x, y);
                let l = 0.299 * f64::from(r) + 0.587 * f64::from(g) + 0.114 * f64::from(b);
                sum += l;
                sq += l * l;
                n += 1.0;
            }
        }
        let mean = sum / n;
        (sq / n - mean * mean).max(0.0).sqrt()
    }

    /// Share of pixels in a region that differ (any channel by > 24) from `other`.
    pub fn changed_share(
        &self,
        other: &Screenshot,
        x0: usize,
        y0: usize,
        w: usize,
        h: usize,
    ) -> f64 {
        let mut changed = 0usize;
        let mut n = 0usize;
        for y in (y0..y0 + h).step_by(2) {
            for x in (x0..x0 + w).step_by(2) {
                let (a, b) = (self.pixel(x, y), other.pixel(x, y));
                if a.iter().zip(b).any(|(p, q)| p.abs_diff(q) > 24) {
                    changed += 1;
                }
                n += 1;
            }
        }
        changed as f64 / n as f64
    }
}

/// GET `path` from `addr` (host:port) with plain HTTP/1.1; returns the body.
pub fn http_get(addr: &str, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned())
}

/// The luma of a screen region, scaled to `out_w`x`out_h`, as an I420 frame
/// (neutral chroma), so `media::read_stamp` can read a test pattern's stamp
/// back off the screen.
pub fn frame_from_region(
    png: &Path,
    (x, y, w, h): (usize, usize, usize, usize),
    (out_w, out_h): (u32, u32),
) -> huddle::media::I420Frame {
    let out = Command::new("/usr/bin/convert")
        .arg(png)
        .args([
            "-crop",
            &format!("{w}x{h}+{x}+{y}"),
            "-resize",
            &format!("{out_w}x{out_h}!"),
            "-colorspace",
            "gray",
            "-depth",
            "8",
            "gray:-",
        ])
        .output()
        .expect("run convert");
    assert!(out.status.success(), "convert failed");
    let mut frame = huddle::media::I420Frame::new_black(out_w, out_h);
    assert_eq!(out.stdout.len(), frame.y.len(), "unexpected crop size");
    frame.y = out.stdout;
    frame
}
