//! Live counters of what the server holds, so tests (and `/metrics`) can check that
//! leaving, a dropped socket or a failed link leaves nothing behind.
//!
//! Every resource that can leak is counted by an RAII [`GaugeGuard`]: the count
//! goes up when it is created and down when it is dropped, whatever path drops it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use serde::Serialize;

/// One up/down counter.
#[derive(Debug, Default)]
pub struct Gauge(AtomicUsize);

impl Gauge {
    /// Counts one more until the returned guard is dropped.
    pub fn enter(self: &Arc<Self>) -> GaugeGuard {
        self.0.fetch_add(1, Ordering::Relaxed);
        GaugeGuard(Arc::clone(self))
    }

    /// The current count.
    pub fn get(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }
}

/// Holds one unit of a [`Gauge`]; releases it on drop.
#[derive(Debug)]
pub struct GaugeGuard(Arc<Gauge>);

impl Drop for GaugeGuard {
    fn drop(&mut self) {
        self.0.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The server's counters.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Open WebSocket sessions.
    pub sessions: Arc<Gauge>,
    /// Peer connections not yet closed (publish and subscription legs).
    pub peer_connections: Arc<Gauge>,
    /// Spawned per-track / per-link tasks still running.
    pub tasks: Arc<Gauge>,
    /// RTP packets written to subscribers.
    pub forwarded_packets: AtomicU64,
    /// RTP bytes (header and payload, before SRTP) of those packets.
    pub forwarded_bytes: AtomicU64,
    /// NACK feedback messages subscribers sent the egress hub.
    pub nacks_received: AtomicU64,
    /// Keyframe requests (PLI) sent to publishers.
    pub keyframe_requests: AtomicU64,
    /// Packets sent again to subscribers who NACKed them (by the egress hub;
    /// legs whose media goes through the `rtc` pipeline are not counted).
    pub retransmitted_packets: AtomicU64,
    /// Egress legs whose media the hub seals itself (`sfu::hub` seals: see its `direct` module).
    pub direct_egress_legs: Arc<Gauge>,
    /// Panics the egress hub caught (each cost at most one leg).
    pub egress_panics: AtomicU64,
    /// Datagrams the egress hub could not send: the kernel refused them (a
    /// full send buffer, an unreachable destination) or the destination
    /// could never be sent to.
    pub egress_datagrams_dropped: AtomicU64,
    /// Egress legs that connected without the hub recognising their SRTP
    /// keys, so their media goes through the `rtc` pipeline (slower). Should
    /// stay 0: anything else means the `rtc` library changed under us.
    pub egress_key_failures: AtomicU64,
    /// Ingress packets not forwarded to a subscriber because their egress
    /// sequence number was already written or is too old (a publisher's
    /// retransmission of a packet that had arrived, a straggler from before
    /// a pause): sending them would reuse an SRTP nonce.
    pub stale_packets_dropped: AtomicU64,
    /// Padding-only ingress packets (RFC 3550 §5.1; a browser probing its
    /// uplink) not forwarded to subscribers, their numbers closed up
    /// (`sfu::padding`).
    pub padding_packets_dropped: AtomicU64,
    /// TCP connections closed at accept because a connection limit was full.
    pub connections_refused: AtomicU64,
    /// Ingress tracks being read from publishers (one forwarding task each):
    /// a stream relayed into other rooms still counts once per track.
    pub ingress_tracks: Arc<Gauge>,
    /// Cross-room relays running (a stream relayed into one other room).
    pub cross_room_relays: Arc<Gauge>,
}

/// A copy of [`Metrics`] at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricsSnapshot {
    /// Rooms that exist.
    pub rooms: usize,
    /// Users in all rooms.
    pub users: usize,
    /// Open WebSocket sessions.
    pub sessions: usize,
    /// Peer connections not yet closed.
    pub peer_connections: usize,
    /// Per-track / per-link tasks still running.
    pub tasks: usize,
    /// RTP packets written to subscribers so far.
    pub forwarded_packets: u64,
    /// RTP bytes of those packets so far.
    pub forwarded_bytes: u64,
    /// NACK messages from subscribers so far (egress hub).
    pub nacks_received: u64,
    /// PLIs sent to publishers so far.
    pub keyframe_requests: u64,
    /// Packets resent to subscribers on NACK so far (egress hub).
    pub retransmitted_packets: u64,
    /// Egress legs sealing their own media (bypassing the `rtc` pipeline).
    pub direct_egress_legs: usize,
    /// Panics caught by the egress hub so far (each cost at most one leg).
    pub egress_panics: u64,
    /// Datagrams the egress hub could not send so far.
    pub egress_datagrams_dropped: u64,
    /// Egress legs whose SRTP keys were not recognised so far (should be 0).
    pub egress_key_failures: u64,
    /// Packets not forwarded because their egress number was already used.
    pub stale_packets_dropped: u64,
    /// Padding-only publisher packets not forwarded so far.
    pub padding_packets_dropped: u64,
    /// Open TCP connections (HTTP requests and WebSocket sessions).
    pub connections: usize,
    /// TCP connections refused at accept so far (`max_connections`,
    /// `max_connections_per_ip`).
    pub connections_refused: u64,
    /// Ingress tracks read from publishers now.
    pub ingress_tracks: usize,
    /// Cross-room relays running now.
    pub cross_room_relays: usize,
}
