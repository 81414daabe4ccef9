//! # huddle
//!
//! Self-hosted real-time audio/video: a room server with an SFU, the client SDK it
//! speaks to, a headless bot and (with the `app` feature) the desktop app.
//!
//! ## Layout
//!
//! | module | owns | may import |
//! |---|---|---|
//! | [`protocol`] | wire messages, ids, error codes, protocol version. serde only, no I/O | — |
//! | [`auth`] | signatures (HMAC-SHA256, seed 001 ch. 4), app registry | protocol |
//! | [`media`] | frames, synthetic sources, H.264/Opus codecs, analysis. No tokio, no UI | — |
//! | [`link`] | one WebRTC peer connection set up the huddle way (codecs, RTCP tap, loopback) | protocol |
//! | [`server`] | WebSocket signalling, rooms, the SFU (webrtc-rs) | protocol, auth, link |
//! | [`client`] | room-session actor + `Client` handle, local/remote streams | protocol, auth, media, link |
//! | [`bot`] | headless publisher/subscriber with live stats | client, media |
//! | [`cli`] | clap flags → validated config | everything above |
//! | `ui` (feature `app`) | eframe desktop app, wgpu video rendering | client, media, server, bot |
//!
//! Imports flow one way: nothing imports `bot`, `cli` (or the UI).
#![warn(missing_docs)]

pub mod auth;
pub mod bot;
pub mod cli;
pub mod client;
pub mod link;
pub mod media;
pub mod protocol;
pub mod server;
#[cfg(feature = "app")]
pub mod ui;
