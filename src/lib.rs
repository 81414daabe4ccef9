//! # huddle
//!
//! Self-hosted real-time audio/video: a room server with an SFU, the client SDK it
//! speaks to, a headless bot and (with the `app` feature) the desktop app.
//!
//! ## Layout
//!
//! | module | owns | imports |
//! |---|---|---|
//! | [`protocol`] | wire messages, ids, error codes, protocol version. serde only, no I/O | — |
//! | [`auth`] | signatures (HMAC-SHA256, seed 001 ch. 4), app registry | protocol |
//! | [`media`] | frames, synthetic sources, H.264/Opus codecs, analysis. No tokio, no UI | — |
//! | [`record`] | MP4 files of received H.264 + Opus (no re-encoding), the room clock | — |
//! | [`link`] | one WebRTC peer connection set up the huddle way (codecs, RTCP tap, loopback) | protocol |
//! | [`server`] | WebSocket signalling, rooms, the SFU (ingress links + the egress hub), recordings | protocol, auth, link, record |
//! | `client` (feature `client`) | room-session actor + `Client` handle, local/remote streams | protocol, auth, media, link, logging |
//! | `bot` (feature `client`) | headless publisher/subscriber with live stats, `huddle record` | protocol, client, media, record |
//! | `ui` (feature `app`) | eframe desktop app, wgpu video rendering, the embedded server | protocol, auth, media, client, server, bot |
//! | [`check`] | `huddle check`: codecs, devices, display, GPU, a server's ping | protocol, media |
//! | [`cli`] | clap flags → validated config for `main` | all of the above, `ui` included |
//! | [`logging`] | the binary's log output, rate-limited per statement | — |
//!
//! Imports flow one way, down this table: a module imports only modules
//! listed in its row. So `server` and `client` never see each other (they
//! meet only in `protocol`), nothing but `ui` and `cli` imports `bot`,
//! nothing but `cli` imports `ui`, and nothing imports `cli`.
#![warn(missing_docs)]

/// huddle's version (seed `VERSION`): the package version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

pub mod auth;
#[cfg(feature = "client")]
pub mod bot;
pub mod check;
pub mod cli;
#[cfg(feature = "client")]
pub mod client;
pub mod link;
pub mod logging;
pub mod media;
pub mod protocol;
pub mod record;
pub mod server;
#[cfg(feature = "app")]
pub mod ui;
