//! The worst audio loss among a published stream's subscribers, and the
//! `downlink-loss` event that tells the publisher (issue 10 §3: Opus in-band
//! FEC sized by the subscribers' loss).
//!
//! The publisher's own receiver reports describe only its uplink, while the
//! FEC it adds protects each subscriber's downlink. So every egress leg
//! records the RFC 3550 fraction lost of each receiver report its subscriber
//! sends for the leg's audio SSRC; [`announce`] looks once per
//! [`ANNOUNCE_INTERVAL`] at the worst report younger than [`STALE`] (a leg
//! that stopped reporting, or ended, stops counting) and sends the
//! publisher's session `downlink-loss {streamId, lossPercent}` when it moved
//! by [`MIN_CHANGE`] points or more, or to or from 0. LiveKit does the same
//! job by rewriting the receiver report it sends the publisher; an event
//! keeps the publisher's ingress link as the library makes it, and the SDK
//! applies it where it sets Opus anyway.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::PublishedMedia;
use crate::protocol::{Event, LinkId, ServerMessage, StreamId};
use crate::server::inbox::{Refused, SessionEvent, SessionInbox};

/// A leg's report older than this no longer counts.
pub const STALE: Duration = Duration::from_secs(5);
/// How often the worst loss is looked at (receiver reports come about once
/// a second).
pub const ANNOUNCE_INTERVAL: Duration = Duration::from_secs(1);
/// The smallest change (percentage points) worth an event.
pub const MIN_CHANGE: u8 = 2;

/// Each leg's latest audio fraction lost (of 256) and when it arrived.
#[derive(Default)]
pub(crate) struct DownlinkLoss {
    legs: Mutex<HashMap<LinkId, (u8, Instant)>>,
}

impl DownlinkLoss {
    /// Leg `link`'s subscriber reported `fraction_lost` (of 256) at `now`.
    pub(crate) fn report(&self, link: LinkId, fraction_lost: u8, now: Instant) {
        let mut legs = self.legs.lock().unwrap_or_else(|e| e.into_inner());
        legs.insert(link, (fraction_lost, now));
    }

    /// Leg `link` ended.
    pub(crate) fn remove(&self, link: LinkId) {
        let mut legs = self.legs.lock().unwrap_or_else(|e| e.into_inner());
        legs.remove(&link);
    }

    /// The worst loss (percent, rounded) reported within [`STALE`] of `now`;
    /// `None` when no leg reported lately. Stale entries are dropped.
    pub(crate) fn worst_percent(&self, now: Instant) -> Option<u8> {
        let mut legs = self.legs.lock().unwrap_or_else(|e| e.into_inner());
        legs.retain(|_, (_, at)| now.saturating_duration_since(*at) < STALE);
        legs.values().map(|&(f, _)| percent(f)).max()
    }
}

/// RFC 3550 fraction lost (of 256) as a rounded percentage.
fn percent(fraction_lost: u8) -> u8 {
    // At most (255 * 100 + 128) / 256 = 100: fits.
    u8::try_from((u32::from(fraction_lost) * 100 + 128) / 256).unwrap_or(100)
}

/// Whether a move from `told` to `now` is worth an event.
fn worth_telling(told: Option<u8>, now: u8) -> bool {
    match told {
        None => now > 0, // the publisher starts with its own default
        Some(told) => told.abs_diff(now) >= MIN_CHANGE || (told == 0) != (now == 0),
    }
}

/// Sends `downlink-loss` for `stream_id` to the publisher's `inbox` as its
/// subscribers' worst audio loss changes (module docs), until the stream
/// closes or the session is gone.
pub(crate) async fn announce(media: Arc<PublishedMedia>, stream_id: StreamId, inbox: SessionInbox) {
    let mut tick = tokio::time::interval(ANNOUNCE_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut told = None;
    loop {
        tick.tick().await;
        if media.is_closed() {
            return;
        }
        let worst = media
            .downlink_loss()
            .worst_percent(Instant::now())
            .unwrap_or(0);
        if !worth_telling(told, worst) {
            continue;
        }
        let event = Event::DownlinkLoss {
            stream_id,
            loss_percent: worst,
        };
        let message = ServerMessage::Event { event };
        match inbox.try_send(SessionEvent::Send(Box::new(message))) {
            Ok(()) => told = Some(worst),
            Err(Refused::Closed) => return,
            Err(_) => {} // full: try again at the next tick
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_worst_fresh_report_counts() {
        let t0 = Instant::now();
        let d = DownlinkLoss::default();
        assert_eq!(d.worst_percent(t0), None);
        d.report(LinkId(1), 26, t0); // ~10 %
        d.report(LinkId(2), 51, t0); // ~20 %
        assert_eq!(d.worst_percent(t0), Some(20));
        d.report(LinkId(2), 0, t0 + Duration::from_secs(1));
        assert_eq!(d.worst_percent(t0 + Duration::from_secs(1)), Some(10));
        // Leg 1 stopped reporting: its 10 % goes stale.
        assert_eq!(d.worst_percent(t0 + Duration::from_secs(5)), Some(0));
        d.remove(LinkId(2));
        assert_eq!(d.worst_percent(t0 + Duration::from_secs(5)), None);
    }

    #[test]
    fn fractions_become_percentages_within_0_to_100() {
        assert_eq!(percent(0), 0);
        assert_eq!(percent(1), 0);
        assert_eq!(percent(128), 50);
        assert_eq!(percent(255), 100);
    }

    #[test]
    fn small_moves_are_not_announced() {
        assert!(!worth_telling(None, 0), "nothing to say yet");
        assert!(worth_telling(None, 1));
        assert!(!worth_telling(Some(10), 11));
        assert!(worth_telling(Some(10), 12));
        assert!(worth_telling(Some(10), 8));
        assert!(worth_telling(Some(1), 0), "back to a clean path");
        assert!(!worth_telling(Some(0), 0));
    }
}
