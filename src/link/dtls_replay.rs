//! Keeps a DTLS handshake moving under loss despite the library's
//! retransmission timer: our flights are resent as first sent, byte for
//! byte, never as the library regenerates them, and the last flight is sent
//! again after a silence.
//!
//! The library's stall (rtc-dtls 0.21.1, `handshaker.rs`, `DTLSConn::wait`):
//! while a side waits for the peer's next flight, *any* handshake record that
//! passes its replay window clears its retransmission timer before the flight
//! is parsed; if the record does not complete that flight, the side stays in
//! `Waiting` with no timer at all, and only a later record that completes the
//! flight wakes it. Both sides run 1 s timers armed a one-way delay apart, so
//! the peer's retransmission tends to arrive just before one's own timer:
//!
//! * the server's flight 4 (ServerHello … ServerHelloDone) is lost: the
//!   client's repeated cookie ClientHello clears the server's timer, the
//!   server never resends flight 4, the client gives up after 7 resends
//!   (`ErrInvalidFsmTransition`, ~8 s);
//! * the client's flight 5 is lost: the server's retransmitted flight 4
//!   (fresh record sequence numbers) clears the client's timer, the client
//!   never resends flight 5, the server gives up after 7 resends of flight 4.
//!
//! Both are reproduced deterministically with the library's own endpoints in
//! the tests. What this module does about it, at the side that sends:
//!
//! * **Originals, not regenerated copies.** A datagram the library sends
//!   that has the shape of one of the current flight's (same records, same
//!   handshake message sequences and fragments: a retransmission) goes out
//!   as the datagram first sent. A peer that has it drops the copy in its
//!   replay window (RFC 6347 §4.1.2.6) before it counts as a handshake
//!   record, so its own timer keeps running; a peer that lost it takes it
//!   as new.
//! * **Replay after a silence.** When the owner has sent nothing DTLS for
//!   [`REPLAY_AFTER`] (longer than the library's fixed 1 s interval, so a
//!   library that is still retransmitting is never doubled) the current
//!   flight is sent again, at most [`MAX_REPLAYS`] times per flight.
//!
//! Either way the peer sees exact copies of datagrams already sent: to it
//! that is indistinguishable from the network duplicating and delaying
//! packets, which every DTLS implementation must tolerate. So, unlike
//! dropping or rewriting the peer's datagrams (the reverted ClientHello
//! filter), it is safe for any peer (OpenSSL, BoringSSL, rtc-dtls).
//!
//! Datagrams sent within [`FLIGHT_SPAN`] of the first one form a flight (a
//! new one replaces the previous). Once the link is connected (the handshake
//! is over: later repeats are the library's RFC 6347 §4.2.4 job) or gone,
//! [`DtlsReplay::finish`] stops it for good.
//!
//! Sans-IO: the owner passes every datagram it sends through
//! [`DtlsReplay::on_send`] and sends what comes back, wakes it at
//! [`DtlsReplay::next_due`] and sends what [`DtlsReplay::poll`] returns.

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

/// What identifies a datagram within its flight: per record, its content
/// type and epoch and, for a plaintext handshake record, the message type,
/// message sequence and fragment offset. A retransmission of the flight has
/// the same shape (the library regenerates it with new record sequence
/// numbers, which are not part of it).
type Shape = Vec<(u8, u16, Option<(u8, u16, u32)>)>;

/// The shape of `datagram`, if it parses as DTLS records and holds at least
/// one plaintext handshake record (only those identify a flight).
fn shape(mut datagram: &[u8]) -> Option<Shape> {
    let mut shape = Vec::new();
    while !datagram.is_empty() {
        let header = datagram.get(..RECORD_HEADER)?;
        let content = header[0];
        let epoch = u16::from_be_bytes([header[3], header[4]]);
        let length = usize::from(u16::from_be_bytes([header[11], header[12]]));
        let body = datagram.get(RECORD_HEADER..RECORD_HEADER + length)?;
        let handshake = (content == HANDSHAKE && epoch == 0)
            .then(|| {
                let b = body.get(..12)?;
                Some((
                    b[0],
                    u16::from_be_bytes([b[4], b[5]]),
                    u32::from_be_bytes([0, b[6], b[7], b[8]]),
                ))
            })
            .flatten();
        shape.push((content, epoch, handshake));
        datagram = &datagram[RECORD_HEADER + length..];
    }
    shape.iter().any(|r| r.2.is_some()).then_some(shape)
}

/// Content type of handshake records.
const HANDSHAKE: u8 = 22;

/// Where the handshake's replays stand.
#[derive(Debug, Default)]
enum State {
    /// Nothing sent yet.
    #[default]
    Idle,
    /// The handshake is under way; `flight` is the last one we sent (as
    /// first sent), with each datagram's shape.
    Watching {
        flight: Vec<(SocketAddr, BytesMut, Option<Shape>)>,
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
    /// Library retransmissions sent as the original datagram instead.
    substituted: u64,
}

impl DtlsReplay {
    /// Takes a datagram the owner is about to send to `to` at `now`, and
    /// returns what to send: the datagram itself, or, when it is the
    /// library's retransmission of a datagram of the flight in progress
    /// (same shape), that datagram as first sent (module docs). Anything
    /// that is not DTLS (STUN, SRTP) passes untouched.
    pub fn on_send(&mut self, now: Instant, to: SocketAddr, datagram: BytesMut) -> BytesMut {
        if !is_dtls(&datagram) {
            return datagram;
        }
        let shaped = shape(&datagram);
        match &mut self.state {
            State::Done => datagram,
            State::Watching {
                flight, last_sent, ..
            } if shaped.is_some()
                && flight
                    .iter()
                    .any(|(a, _, s)| *a == to && s.as_ref() == shaped.as_ref()) =>
            {
                *last_sent = now;
                self.substituted += 1;
                flight
                    .iter()
                    .find(|(a, _, s)| *a == to && s.as_ref() == shaped.as_ref())
                    .map_or(datagram, |(_, original, _)| original.clone())
            }
            State::Watching {
                flight,
                started,
                last_sent,
                ..
            } if now.saturating_duration_since(*started) <= FLIGHT_SPAN => {
                flight.push((to, datagram.clone(), shaped));
                *last_sent = now;
                datagram
            }
            State::Idle | State::Watching { .. } => {
                self.state = State::Watching {
                    flight: vec![(to, datagram.clone(), shaped)],
                    started: now,
                    last_sent: now,
                    replays: 0,
                };
                datagram
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
        flight.iter().map(|(a, d, _)| (*a, d.clone())).collect()
    }

    /// The handshake is over (connected) or the association is gone.
    pub fn finish(&mut self) {
        self.state = State::Done;
    }

    /// Datagrams replayed after a silence so far.
    pub fn replayed(&self) -> u64 {
        self.replayed
    }

    /// Library retransmissions sent as the original datagram so far.
    pub fn substituted(&self) -> u64 {
        self.substituted
    }
}

#[cfg(test)]
mod tests;
