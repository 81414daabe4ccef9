//! `huddle check` (seed `checkSystemRequirements`): can this machine run
//! huddle? One line per item, and whether any item is a blocker.
//!
//! Items: the codecs (an H.264 encode/decode round trip at 720p, timed, and
//! an Opus round trip), the audio host and its devices, the cameras, the
//! display and the GPU adapter the app renders with, and, when given, a
//! signalling server (a WebSocket `ping`, which the server answers before
//! `join`). Blockers: codecs that fail, a server that does not answer, and
//! a display without a GPU adapter (the app cannot draw). A missing camera
//! or microphone is not one: the synthetic sources stand in.

use std::fmt;
use std::time::Duration;

/// How an item came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Works.
    Ok,
    /// Works in a reduced way, or is not needed for everything.
    Warn,
    /// Something huddle needs is broken.
    Blocker,
}

/// One checked item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// What was checked.
    pub what: &'static str,
    /// How it came out.
    pub verdict: Verdict,
    /// What was found, for a person.
    pub detail: String,
}

impl fmt::Display for Item {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mark = match self.verdict {
            Verdict::Ok => "ok     ",
            Verdict::Warn => "warn   ",
            Verdict::Blocker => "BLOCKER",
        };
        write!(f, "{mark} {}: {}", self.what, self.detail)
    }
}

fn item(what: &'static str, verdict: Verdict, detail: impl Into<String>) -> Item {
    Item {
        what,
        verdict,
        detail: detail.into(),
    }
}

/// What to check besides the local machine.
#[derive(Debug, Clone, Default)]
pub struct CheckConfig {
    /// A signalling URL (`ws://` or `wss://`) to ping.
    pub server: Option<String>,
}

/// Runs every check. Blocking (codecs and device listing take a moment):
/// call it off UI threads.
pub async fn run(config: &CheckConfig) -> Vec<Item> {
    let mut items = vec![item(
        "huddle",
        Verdict::Ok,
        format!("version {}", crate::VERSION),
    )];
    items.extend(codecs());
    items.extend(devices());
    items.extend(display_and_gpu().await);
    if let Some(url) = &config.server {
        items.push(server(url).await);
    }
    items
}

/// Whether any item is a blocker.
pub fn has_blocker(items: &[Item]) -> bool {
    items.iter().any(|i| i.verdict == Verdict::Blocker)
}

#[cfg(feature = "client")]
fn codecs() -> Vec<Item> {
    use crate::media::{
        AudioSource, H264Decoder, H264Encoder, OpusDecoder, OpusEncoder, SyntheticAudio,
        TestPattern,
    };
    const FRAMES: u32 = 30;
    let h264 = (|| -> Result<String, crate::media::MediaError> {
        let (w, h) = (1280, 720);
        let mut encoder = H264Encoder::new(w, h, 30, 1_500_000)?;
        let mut decoder = H264Decoder::new()?;
        let mut pattern = TestPattern::new(w, h);
        let (mut encoding, mut decoding, mut decoded) = (Duration::ZERO, Duration::ZERO, 0);
        for n in 0..FRAMES {
            let frame = pattern.render(n, crate::media::now_us());
            let t = std::time::Instant::now();
            let encoded = encoder.encode(&frame, n == 0)?;
            encoding += t.elapsed();
            let t = std::time::Instant::now();
            if decoder.decode(&encoded.data)?.is_some() {
                decoded += 1;
            }
            decoding += t.elapsed();
        }
        if decoded == 0 {
            return Err(crate::media::MediaError::H264Decode(
                "no picture came out of the round trip".into(),
            ));
        }
        let ms = |d: Duration| d.as_secs_f64() * 1e3 / f64::from(FRAMES);
        Ok(format!(
            "OpenH264 720p: encode {:.1} ms/frame, decode {:.1} ms/frame ({decoded}/{FRAMES} pictures){}",
            ms(encoding),
            ms(decoding),
            if ms(encoding) > 20.0 {
                "; slow: was it built without nasm (no assembly)?"
            } else {
                ""
            }
        ))
    })();
    let opus = (|| -> Result<String, crate::media::MediaError> {
        let mut source = SyntheticAudio::new(440.0, 48_000, 1);
        let mut encoder = OpusEncoder::new(48_000, 1, 32_000)?;
        let mut decoder = OpusDecoder::new(48_000, 1)?;
        let frame = source
            .next_frame()?
            .ok_or_else(|| crate::media::MediaError::InvalidParameter("no tone frame".into()))?;
        let packet = encoder.encode(&frame)?;
        let out = decoder.decode(&packet)?;
        Ok(format!(
            "Opus 48 kHz: {} samples → {} bytes → {} samples",
            frame.samples.len(),
            packet.len(),
            out.samples.len()
        ))
    })();
    vec![
        match h264 {
            Ok(d) => item("H.264", Verdict::Ok, d),
            Err(e) => item("H.264", Verdict::Blocker, e.to_string()),
        },
        match opus {
            Ok(d) => item("Opus", Verdict::Ok, d),
            Err(e) => item("Opus", Verdict::Blocker, e.to_string()),
        },
    ]
}

#[cfg(not(feature = "client"))]
fn codecs() -> Vec<Item> {
    vec![item(
        "codecs",
        Verdict::Ok,
        "not built in (server only: the SFU forwards without decoding)",
    )]
}

#[cfg(feature = "devices")]
fn devices() -> Vec<Item> {
    use crate::media::devices::{self, DeviceInfo};
    let names = |list: &[DeviceInfo]| {
        list.iter()
            .map(|d| {
                if d.is_default {
                    format!("{} (default)", d.name)
                } else {
                    d.name.clone()
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let host = devices::audio_host();
    let mut items = vec![item(
        "audio host",
        Verdict::Ok,
        format!(
            "{}{}",
            host.id().name(),
            if devices::pulseaudio_available() {
                ""
            } else {
                " (no PulseAudio server answered)"
            }
        ),
    )];
    for (what, list, missing) in [
        (
            "microphones",
            devices::list_microphones(),
            "none: the synthetic tone will be published",
        ),
        (
            "speakers",
            devices::list_speakers(),
            "none: remote audio will not be played",
        ),
        (
            "cameras",
            devices::list_cameras(),
            "none: the synthetic test pattern will be published",
        ),
    ] {
        items.push(match list {
            Ok(list) if list.is_empty() => item(what, Verdict::Warn, missing),
            Ok(list) => item(what, Verdict::Ok, names(&list)),
            Err(e) => item(what, Verdict::Warn, format!("{e}; {missing}")),
        });
    }
    items
}

#[cfg(not(feature = "devices"))]
fn devices() -> Vec<Item> {
    vec![item(
        "devices",
        Verdict::Warn,
        "built without the `devices` feature: synthetic camera and tone only",
    )]
}

/// The display the app would open, if any.
fn display() -> Option<String> {
    if let Ok(wayland) = std::env::var("WAYLAND_DISPLAY")
        && !wayland.is_empty()
    {
        return Some(format!("Wayland {wayland}"));
    }
    let x = std::env::var("DISPLAY").ok().filter(|d| !d.is_empty())?;
    // A local X server (":N") has its socket here; a remote one is trusted.
    let local = x
        .strip_prefix(':')
        .and_then(|n| n.split('.').next())
        .map(|n| format!("/tmp/.X11-unix/X{n}"));
    match local {
        Some(socket) if !std::path::Path::new(&socket).exists() => None,
        _ => Some(format!("X11 {x}")),
    }
}

async fn display_and_gpu() -> Vec<Item> {
    let display = display();
    let mut items = vec![match &display {
        Some(d) => item("display", Verdict::Ok, d.clone()),
        None => item(
            "display",
            Verdict::Warn,
            "none (DISPLAY / WAYLAND_DISPLAY unset or not reachable): the desktop app cannot open; server, bot and kiosk-less use are fine",
        ),
    }];
    #[cfg(feature = "devices")]
    items.push(screen_sharing());
    items.push(gpu(display.is_some()).await);
    items
}

/// Whether screens and windows can be shared (seed `isScreenShareSupported`).
#[cfg(feature = "devices")]
fn screen_sharing() -> Item {
    use crate::media::devices::{list_screens, list_windows};
    match list_screens(None).and_then(|s| Ok((s, list_windows(None)?))) {
        Ok((screens, windows)) => item(
            "screen sharing",
            Verdict::Ok,
            format!(
                "X11: {} screen(s), {} window(s) to share",
                screens.len(),
                windows.len()
            ),
        ),
        Err(e) => item(
            "screen sharing",
            Verdict::Warn,
            format!("not supported here ({}): {e}", e.seed_code()),
        ),
    }
}

#[cfg(feature = "app")]
async fn gpu(have_display: bool) -> Item {
    let instance =
        wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    let adapters: Vec<String> = instance
        .enumerate_adapters(wgpu::Backends::all())
        .await
        .into_iter()
        .map(|a| {
            let info = a.get_info();
            format!("{} ({:?}, {:?})", info.name, info.backend, info.device_type)
        })
        .collect();
    if adapters.is_empty() {
        item(
            "GPU adapter",
            if have_display {
                Verdict::Blocker
            } else {
                Verdict::Warn
            },
            "none (Vulkan/GL): the app cannot draw; install mesa-vulkan-drivers for a software one",
        )
    } else {
        item("GPU adapter", Verdict::Ok, adapters.join(", "))
    }
}

#[cfg(not(feature = "app"))]
async fn gpu(_have_display: bool) -> Item {
    item(
        "GPU adapter",
        Verdict::Ok,
        "not needed (built without the desktop app)",
    )
}

/// How long the server has to answer.
const SERVER_TIMEOUT: Duration = Duration::from_secs(5);

async fn server(url: &str) -> Item {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let what = "signalling server";
    let attempt = async {
        let (mut socket, _) = tokio_tungstenite::connect_async(url)
            .await
            .map_err(|e| format!("cannot connect: {e}"))?;
        socket
            .send(Message::text(r#"{"id":1,"type":"ping"}"#))
            .await
            .map_err(|e| format!("cannot send: {e}"))?;
        while let Some(message) = socket.next().await {
            let message = message.map_err(|e| format!("connection failed: {e}"))?;
            if let Message::Text(text) = message {
                let reply: crate::protocol::ServerMessage = serde_json::from_str(&text)
                    .map_err(|e| format!("not a huddle server ({e}): {text}"))?;
                return match reply {
                    crate::protocol::ServerMessage::Reply {
                        reply: crate::protocol::Reply::Pong,
                        ..
                    } => Ok(()),
                    other => Err(format!("unexpected answer to ping: {other:?}")),
                };
            }
        }
        Err("closed without answering".to_owned())
    };
    let started = std::time::Instant::now();
    match tokio::time::timeout(SERVER_TIMEOUT, attempt).await {
        Ok(Ok(())) => item(
            what,
            Verdict::Ok,
            format!(
                "{url} answered ping in {:.0} ms",
                started.elapsed().as_secs_f64() * 1e3
            ),
        ),
        Ok(Err(e)) => item(what, Verdict::Blocker, format!("{url}: {e}")),
        Err(_) => item(
            what,
            Verdict::Blocker,
            format!("{url}: no answer within {SERVER_TIMEOUT:?}"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_blocker_is_seen_and_printed_as_such() {
        let items = vec![
            item("a", Verdict::Ok, "fine"),
            item("b", Verdict::Warn, "meh"),
        ];
        assert!(!has_blocker(&items));
        let mut items = items;
        items.push(item("c", Verdict::Blocker, "broken"));
        assert!(has_blocker(&items));
        assert_eq!(items[2].to_string(), "BLOCKER c: broken");
    }
}
