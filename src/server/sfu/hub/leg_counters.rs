//! What one leg has sent and been asked for, counted by the hub loop, and
//! the snapshot of every leg that `GET /rooms/{id}` reads.
//!
//! Why plain integers: the hub thread owns every leg, so the per-packet path
//! only adds to fields of the leg it is already writing to (no atomics, no
//! locks). A snapshot is a command on the hub's queue: the loop copies the
//! counters between two passes, so a reader never slows the fan-out.

use super::leg::{Leg, LegState};
use super::{LegId, LegSource};
use crate::protocol::LinkId;
use crate::server::inbox::SessionInbox;

/// Counters of one leg since it was created.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LegCounters {
    /// RTP packets forwarded to the subscriber (retransmissions excluded).
    pub packets: u64,
    /// Their bytes before SRTP (header and payload).
    pub bytes: u64,
    /// Of `bytes`, the video's (`auto` measures what else the leg carries).
    pub video_bytes: u64,
    /// NACK packets the subscriber sent.
    pub nacks: u64,
    /// Packets the hub resent for those NACKs.
    pub retransmitted: u64,
    /// Of `retransmitted`, those sent as RTX packets (RFC 4588) on the
    /// video's RTX stream (a leg whose answer kept RTX, `link::rtx`).
    pub retransmitted_rtx: u64,
    /// Of `retransmitted`, the extra copies of packets NACKed again (their
    /// first resend or NACK was lost: sent on both paths, `Leg::retransmit`).
    pub retransmitted_again: u64,
    /// Keyframe requests (PLI or FIR) the subscriber sent.
    pub plis: u64,
    /// Transport-wide feedback packets taken into the downlink estimate.
    pub twcc_feedback: u64,
    /// Transport-wide feedback packets ignored: contradicting themselves,
    /// about numbers never sent, or on a leg that does not number its packets.
    pub twcc_malformed: u64,
    /// Padding-only packets sent to probe the downlink (`probe_leg.rs`).
    pub probe_packets: u64,
}

/// Where a leg stands, for a reader outside the hub.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LegPhase {
    /// Offered or answered, DTLS not up yet.
    Connecting,
    /// Forwarding.
    Connected,
    /// ICE or DTLS failed; the session drops it.
    Failed,
}

/// One leg as a snapshot sees it.
#[derive(Debug, Clone)]
pub struct LegSnapshot {
    /// The hub's id of the leg.
    pub leg: LegId,
    /// The subscription's link id.
    pub link_id: LinkId,
    /// The stream it forwards (its `PublishedMedia::id`);
    /// `None` for a top-N leg.
    pub media: Option<u64>,
    /// The session it reports to (to find the subscriber, see
    /// [`SessionInbox::same_session`]).
    pub inbox: SessionInbox,
    /// Its state.
    pub phase: LegPhase,
    /// Its counters.
    pub counters: LegCounters,
    /// Its video resends go as RTX packets: the answer kept RTX
    /// (`link::rtx`; sealed by the hub, or by the core's NACK responder on
    /// a leg sending through its core).
    pub rtx: bool,
}

impl LegSnapshot {
    pub(super) fn of(id: LegId, leg: &Leg) -> Self {
        Self {
            leg: id,
            link_id: leg.link_id,
            media: match &leg.source {
                LegSource::Stream(media) => Some(media.id()),
                LegSource::TopN(_) => None,
            },
            inbox: leg.inbox.clone(),
            phase: match leg.state {
                LegState::Offered { .. } | LegState::Answered(_) => LegPhase::Connecting,
                LegState::Connected(..) => LegPhase::Connected,
                LegState::Failed => LegPhase::Failed,
            },
            counters: leg.counters,
            rtx: match &leg.state {
                LegState::Connected(tracks, _) => {
                    tracks.video.as_ref().is_some_and(|t| t.rtx.is_some())
                }
                _ => false,
            },
        }
    }
}
