//! Keeps a DTLS handshake moving under loss when the library has stopped
//! retransmitting: the last flight we sent is sent again, byte for byte, after
//! a silence.
//!
//! The library's stall (rtc-dtls 0.21.1, `handshaker.rs`, `DTLSConn::wait`):
//! while a side waits for the peer's next flight, *any* handshake record that
//! arrives clears its retransmission timer before the flight is parsed; if the
//! record does not complete that flight, the side stays in `Waiting` with no
//! timer at all, and only a later record that completes the flight wakes it.
//! Under loss that happens in two ways:
//!
//! * the server's flight 4 (ServerHello … ServerHelloDone) is lost; the
//!   client, which got nothing, resends its cookie ClientHello on its 1 s
//!   timer; that copy reaches the server just before the server's own 1 s
//!   timer (both were armed within a one-way delay of each other), clears
//!   it, and the server never resends flight 4. The client resends its
//!   ClientHello 7 times and fails (`ErrInvalidFsmTransition`, ~8 s);
//! * a client that receives part of flight 4 clears its timer and depends
//!   on the server's resends alone.
//!
//! A replay is an exact copy of datagrams already sent: to the peer it is
//! indistinguishable from the network duplicating and delaying packets,
//! which every DTLS implementation must tolerate (RFC 6347 §4.1.2.6: records
//! it already has are dropped by its replay window; the ones it lost are new
//! to it). So, unlike dropping or rewriting the peer's datagrams, it is safe
//! for any peer implementation (OpenSSL, BoringSSL, rtc-dtls), and it does
//! not depend on which side lost what.
//!
//! Rules: datagrams sent within [`FLIGHT_SPAN`] of the first one form a
//! flight (a new one replaces the previous); when the owner has sent nothing
//! for [`REPLAY_AFTER`] (longer than the library's fixed 1 s retransmission
//! interval, so a library that is still retransmitting is never doubled),
//! the flight is sent again, at most [`MAX_REPLAYS`] times per flight. Once
//! the link is connected (the handshake is over: later repeats are the
//! library's RFC 6347 §4.2.4 job) or gone, [`DtlsReplay::finish`] stops it
//! for good.
//!
//! Sans-IO: the owner shows it every datagram it sends
//! ([`DtlsReplay::on_sent`]), wakes it at [`DtlsReplay::next_due`] and sends
//! what [`DtlsReplay::poll`] returns.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::BytesMut;

/// Silence after our last DTLS send before the last flight is replayed. The
/// library retransmits every 1 s while its timer runs.
pub const REPLAY_AFTER: Duration = Duration::from_millis(1500);

/// Replays of one flight at most (then the handshake is left to fail).
pub const MAX_REPLAYS: u32 = 6;

/// Datagrams sent within this span of a flight's first datagram belong to it
/// (the library writes a flight at once).
pub const FLIGHT_SPAN: Duration = Duration::from_millis(50);

/// Smallest DTLS record: the 13-byte record header.
const RECORD_HEADER: usize = 13;

/// Whether `datagram` is DTLS (RFC 7983 demultiplexing: first byte 20–63)
/// and holds at least one record header.
fn is_dtls(datagram: &[u8]) -> bool {
    datagram.len() >= RECORD_HEADER && matches!(datagram.first(), Some(20..=63))
}

/// Where the handshake's replays stand.
#[derive(Debug, Default)]
enum State {
    /// Nothing sent yet.
    #[default]
    Idle,
    /// The handshake is under way; `flight` is the last one we sent.
    Watching {
        flight: Vec<(SocketAddr, BytesMut)>,
        /// When the flight's first datagram went out.
        started: Instant,
        /// When we last sent anything DTLS (the library or a replay).
        last_sent: Instant,
        /// Replays of this flight so far.
        replays: u32,
    },
    /// Connected or gone: never replays again.
    Done,
}

/// See the module docs. One per DTLS association (one per leg).
#[derive(Debug, Default)]
pub struct DtlsReplay {
    state: State,
    /// Datagrams replayed, over the association's life.
    replayed: u64,
}

impl DtlsReplay {
    /// Notes a datagram the owner sends to `to` at `now`. Anything that is
    /// not DTLS (STUN, SRTP) is ignored.
    pub fn on_sent(&mut self, now: Instant, to: SocketAddr, datagram: &[u8]) {
        if !is_dtls(datagram) {
            return;
        }
        match &mut self.state {
            State::Done => {}
            State::Watching {
                flight,
                started,
                last_sent,
                ..
            } if now.saturating_duration_since(*started) <= FLIGHT_SPAN => {
                flight.push((to, BytesMut::from(datagram)));
                *last_sent = now;
            }
            State::Idle | State::Watching { .. } => {
                self.state = State::Watching {
                    flight: vec![(to, BytesMut::from(datagram))],
                    started: now,
                    last_sent: now,
                    replays: 0,
                };
            }
        }
    }

    /// When [`Self::poll`] next has something to send, if ever.
    pub fn next_due(&self) -> Option<Instant> {
        match &self.state {
            State::Watching {
                last_sent, replays, ..
            } if *replays < MAX_REPLAYS => Some(*last_sent + REPLAY_AFTER),
            _ => None,
        }
    }

    /// The datagrams to send again at `now` (empty when nothing is due).
    pub fn poll(&mut self, now: Instant) -> Vec<(SocketAddr, BytesMut)> {
        if self.next_due().is_none_or(|due| now < due) {
            return Vec::new();
        }
        let State::Watching {
            flight,
            last_sent,
            replays,
            ..
        } = &mut self.state
        else {
            return Vec::new();
        };
        *last_sent = now;
        *replays += 1;
        self.replayed += flight.len() as u64;
        flight.clone()
    }

    /// The handshake is over (connected) or the association is gone.
    pub fn finish(&mut self) {
        self.state = State::Done;
    }

    /// Datagrams replayed so far.
    pub fn replayed(&self) -> u64 {
        self.replayed
    }
}

#[cfg(test)]
mod tests;
