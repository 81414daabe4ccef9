//! The worst audio loss among a published stream's subscribers, and the
//! `downlink-loss` event that tells the publisher (issue 10 §3: Opus in-band
//! FEC sized by the subscribers' loss).
//!
//! The publisher's own receiver reports describe only its uplink, while the
//! FEC it adds protects each subscriber's downlink. So every egress leg
//! smooths the RFC 3550 fraction lost of the receiver reports its subscriber
//! sends for the leg's audio SSRC (an exponential average, [`SMOOTHING`]: one
//! report covers ~50 audio packets, so at a steady 20 % random loss single
//! reports read 14-30 %); [`announce`] looks once per [`ANNOUNCE_INTERVAL`]
//! at the worst leg whose latest report is younger than [`STALE`] (a leg
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
/// The weight of a new report in a leg's average: its first report is taken
/// as it is, then each report moves the average a third of the way
/// (roughly the last 3 reports; a jump to 20 % reads 13 %, 16 %, 18 %).
pub const SMOOTHING: f32 = 1.0 / 3.0;

/// Each leg's smoothed audio fraction lost (of 256) and when its latest
/// report arrived.
#[derive(Default)]
pub(crate) struct DownlinkLoss {
    legs: Mutex<HashMap<LinkId, (f32, Instant)>>,
}

impl DownlinkLoss {
    /// Leg `link`'s subscriber reported `fraction_lost` (of 256) at `now`.
    pub(crate) fn report(&self, link: LinkId, fraction_lost: u8, now: Instant) {
        let mut legs = self.legs.lock().unwrap_or_else(|e| e.into_inner());
        let reported = f32::from(fraction_lost);
        legs.entry(link)
            .and_modify(|(smoothed, at)| {
                *smoothed += (reported - *smoothed) * SMOOTHING;
                *at = now;
            })
            .or_insert((reported, now));
    }

    /// Leg `link` ended.
    pub(crate) fn remove(&self, link: LinkId) {
        let mut legs = self.legs.lock().unwrap_or_else(|e| e.into_inner());
        legs.remove(&link);
    }

    /// The worst smoothed loss (percent, rounded) of the legs that reported
    /// within [`STALE`] of `now`; `None` when no leg reported lately. Stale
    /// entries are dropped.
    pub(crate) fn worst_percent(&self, now: Instant) -> Option<u8> {
        let mut legs = self.legs.lock().unwrap_or_else(|e| e.into_inner());
        legs.retain(|_, (_, at)| now.saturating_duration_since(*at) < STALE);
        legs.values().map(|&(f, _)| percent(f)).max()
    }
}

/// A fraction lost (of 256) as a rounded percentage, 0-100.
fn percent(fraction_lost: f32) -> u8 {
    (fraction_lost.clamp(0.0, 255.0) * 100.0 / 256.0).round() as u8
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
        // Leg 2's 20 % moves a third of the way to 0: 13 %.
        assert_eq!(d.worst_percent(t0 + Duration::from_secs(1)), Some(13));
        // Leg 1 stopped reporting: its 10 % goes stale.
        assert_eq!(d.worst_percent(t0 + Duration::from_secs(5)), Some(13));
        d.remove(LinkId(2));
        assert_eq!(d.worst_percent(t0 + Duration::from_secs(5)), None);
    }

    #[test]
    fn fractions_become_percentages_within_0_to_100() {
        assert_eq!(percent(0.0), 0);
        assert_eq!(percent(1.0), 0);
        assert_eq!(percent(128.0), 50);
        assert_eq!(percent(255.0), 100);
    }

    /// Reports of a steady 20 % random loss over ~50 packets a second scatter
    /// 14-30 %; the announced figure stays within a few points of 20 and is
    /// told again less often.
    #[test]
    fn a_steady_loss_reads_steady() {
        let t0 = Instant::now();
        let d = DownlinkLoss::default();
        let reports = [20u8, 14, 28, 17, 30, 15, 22, 19, 26, 14, 21, 29, 16, 20];
        let mut told = None;
        let mut events = 0;
        let mut seen = Vec::new();
        for (i, percent_lost) in reports.iter().enumerate() {
            let now = t0 + Duration::from_secs(i as u64);
            let fraction = (u32::from(*percent_lost) * 256 / 100) as u8;
            d.report(LinkId(1), fraction, now);
            let worst = d.worst_percent(now).unwrap();
            seen.push(worst);
            if worth_telling(told, worst) {
                told = Some(worst);
                events += 1;
            }
        }
        let (low, high) = (seen.iter().min().unwrap(), seen.iter().max().unwrap());
        assert!(*low >= 16 && *high <= 25, "announced {seen:?}");
        // Told report by report, every one of these 14 would be an event.
        let raw_events = reports
            .iter()
            .scan(None, |told: &mut Option<u8>, &r| {
                let tell = worth_telling(*told, r);
                if tell {
                    *told = Some(r);
                }
                Some(tell)
            })
            .filter(|&t| t)
            .count();
        assert_eq!(raw_events, reports.len());
        assert!(events < raw_events, "{events} events for {seen:?}");
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
