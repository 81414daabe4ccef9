//! Which simulcast layers of a published stream some subscriber wants
//! (issue 10 §2: layers nobody watches are not encoded), and the
//! `layers-wanted` event that tells the publisher.
//!
//! Each egress leg of a layered stream records the layer slots it needs
//! ([`leg_wants`]) whenever they change, and drops its entry when it ends:
//!
//! * a leg on a fixed layer needs the layer it forwards and, while a switch
//!   waits for a keyframe, the one it switches to (the old one keeps
//!   flowing to it until then);
//! * an `auto` leg needs every layer. Its choice (`sfu::downlink`) weighs
//!   each layer's rate as measured at the ingress: a layer that is not
//!   encoded has no rate, so `auto` could neither step down to it nor
//!   resume onto it from a pause. (Keeping only its current, target and
//!   lowest layers wanted would leave the middle one unmeasured: a capped
//!   leg would skip it on the way down and never climb back through it.)
//!
//! The union, with the top layer always in it (kept encoded: a subscriber's
//! default, and recordings take it), goes out on a watch channel.
//! [`announce`] turns its changes into `layers-wanted` events for the
//! publisher's session, with [`Announcer`] deciding when: a layer that
//! becomes wanted is announced at once, so that a switch to it (which waits
//! for its keyframe, `sfu::layers`) waits as little as possible; a layer no
//! longer wanted only once it has stayed unwanted for [`SHRINK_DELAY`], so a
//! switch back and forth does not make the publisher stop and restart an
//! encoder.
//!
//! Races: the keyframe request for a switch target (an RTCP PLI) and the
//! `layers-wanted` naming it travel separately, and the PLI may reach the
//! publisher first, while the layer is still skipped. That is harmless: the
//! SDK starts a layer it resumes with a keyframe of its own
//! (`client::layers::LayerEncode`), which is the keyframe the switch waits
//! for. A leg never switches onto a layer that sends nothing: a fixed switch
//! waits for the target's keyframe, and `auto` only picks layers whose
//! packets it has seen arrive.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use super::PublishedMedia;
use crate::protocol::layers::MAX_RESOLUTIONS;
use crate::protocol::{Event, LinkId, ServerMessage, StreamId};
use crate::server::inbox::{SessionEvent, SessionInbox};

/// How long a layer must stay unwanted before the publisher hears it.
pub const SHRINK_DELAY: Duration = Duration::from_secs(1);

/// The top layer's bit: always wanted.
const TOP: u8 = 1;

/// Every slot's bit.
const ALL: u8 = (1 << MAX_RESOLUTIONS) - 1;

/// The slots a leg needs (bit `n`: slot `n`; module docs): its `current`
/// and `target` layer, or every layer when `auto` chooses.
pub(crate) fn leg_wants(current: u8, target: u8, auto: bool) -> u8 {
    if auto {
        return ALL;
    }
    let bit = |slot: u8| 1u8.checked_shl(u32::from(slot)).unwrap_or(0) & ALL;
    bit(current) | bit(target)
}

/// Per-leg wanted slots of one stream, as bit sets (bit `n`: slot `n`).
pub(crate) struct LayersWanted {
    legs: Mutex<HashMap<LinkId, u8>>,
    union: watch::Sender<u8>,
}

impl Default for LayersWanted {
    fn default() -> Self {
        Self {
            legs: Mutex::new(HashMap::new()),
            union: watch::Sender::new(TOP),
        }
    }
}

impl LayersWanted {
    /// Leg `link` needs the slots of `mask` now ([`leg_wants`]).
    pub(crate) fn set(&self, link: LinkId, mask: u8) {
        let mut legs = self.legs.lock().unwrap_or_else(|e| e.into_inner());
        if legs.insert(link, mask) != Some(mask) {
            self.publish(&legs);
        }
    }

    /// Leg `link` ended.
    pub(crate) fn remove(&self, link: LinkId) {
        let mut legs = self.legs.lock().unwrap_or_else(|e| e.into_inner());
        if legs.remove(&link).is_some() {
            self.publish(&legs);
        }
    }

    /// The union of what the legs need, without the standing top bit.
    pub(crate) fn watched(&self) -> u8 {
        let legs = self.legs.lock().unwrap_or_else(|e| e.into_inner());
        legs.values().fold(0, |a, b| a | b)
    }

    fn publish(&self, legs: &HashMap<LinkId, u8>) {
        let union = legs.values().fold(TOP, |a, b| a | b);
        self.union
            .send_if_modified(|u| std::mem::replace(u, union) != union);
    }

    /// The union's changes.
    pub(crate) fn subscribe(&self) -> watch::Receiver<u8> {
        self.union.subscribe()
    }
}

/// What the publisher was told, and since when each layer it was told
/// about has been unwanted; sans-IO (the caller brings the time).
#[derive(Debug)]
pub(crate) struct Announcer {
    /// The set last announced (the publisher starts with all: `layers`).
    told: u8,
    /// The stream's slots.
    layers: u8,
    /// Per slot: unwanted (but still told) since then.
    unwanted_since: [Option<Instant>; MAX_RESOLUTIONS],
}

impl Announcer {
    /// For a stream of `count` layers, all of them encoded at first.
    pub(crate) fn new(count: usize) -> Self {
        let layers = u8::try_from((1u16 << count.min(MAX_RESOLUTIONS)) - 1).unwrap_or(ALL);
        Self {
            told: layers,
            layers,
            unwanted_since: [None; MAX_RESOLUTIONS],
        }
    }

    /// The wanted set is `want` at `now`: the set to announce now, if it
    /// changed. Additions go out at once; a layer no longer wanted leaves
    /// the announced set once unwanted for [`SHRINK_DELAY`].
    pub(crate) fn update(&mut self, want: u8, now: Instant) -> Option<u8> {
        let want = (want | TOP) & self.layers;
        let mut next = self.told | want;
        for (slot, since) in self.unwanted_since.iter_mut().enumerate() {
            let bit = 1u8 << slot;
            if want & bit != 0 || self.told & bit == 0 {
                *since = None;
                continue;
            }
            let since = *since.get_or_insert(now);
            if now.saturating_duration_since(since) >= SHRINK_DELAY {
                next &= !bit;
            }
        }
        for (slot, since) in self.unwanted_since.iter_mut().enumerate() {
            if next & (1 << slot) == 0 {
                *since = None;
            }
        }
        (next != std::mem::replace(&mut self.told, next)).then_some(next)
    }

    /// When a pending removal is due, if one is.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.unwanted_since
            .iter()
            .flatten()
            .min()
            .map(|since| *since + SHRINK_DELAY)
    }
}

/// The slots of `mask` named by `ids` (slot order), ids of absent slots left out.
fn names(mask: u8, ids: &[String]) -> Vec<String> {
    ids.iter()
        .enumerate()
        .filter(|(slot, _)| mask & (1 << slot) != 0)
        .map(|(_, id)| id.clone())
        .collect()
}

/// Sends `layers-wanted` for stream `stream_id` to the publisher's `inbox`
/// as its wanted set changes ([`Announcer`]), until the stream closes or the
/// session ends. The publisher starts with every layer encoded.
pub(crate) async fn announce(media: Arc<PublishedMedia>, stream_id: StreamId, inbox: SessionInbox) {
    let ids = media.layers();
    if ids.len() < 2 {
        return;
    }
    let mut rx = media.wanted_changes();
    let mut announcer = Announcer::new(ids.len());
    loop {
        let want = *rx.borrow_and_update();
        if let Some(told) = announcer.update(want, Instant::now()) {
            let event = Event::LayersWanted {
                stream_id,
                resolution_ids: names(told, &ids),
            };
            let message = ServerMessage::Event { event };
            if inbox.try_send(SessionEvent::Send(Box::new(message)))
                == Err(crate::server::inbox::Refused::Closed)
            {
                return;
            }
        }
        let due = announcer.deadline();
        tokio::select! {
            r = rx.changed() => if r.is_err() { return },
            () = async {
                match due {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            } => {}
            () = media.closed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_union_keeps_the_top_and_follows_legs() {
        let w = LayersWanted::default();
        let rx = w.subscribe();
        assert_eq!(*rx.borrow(), TOP);
        w.set(LinkId(1), leg_wants(2, 2, false));
        w.set(LinkId(2), leg_wants(1, 1, false));
        assert_eq!(*rx.borrow(), 0b111);
        w.set(LinkId(2), leg_wants(0, 0, false));
        assert_eq!(*rx.borrow(), 0b101);
        assert_eq!(w.watched(), 0b101);
        w.remove(LinkId(1));
        assert_eq!(*rx.borrow(), TOP);
        w.remove(LinkId(2));
        assert_eq!(w.watched(), 0, "the top is not watched by itself");
        let ids = ["a".to_owned(), "b".to_owned(), "c".to_owned()];
        assert_eq!(names(0b101, &ids), ["a", "c"]);
    }

    #[test]
    fn a_leg_wants_its_current_and_target_and_auto_wants_all() {
        assert_eq!(leg_wants(1, 1, false), 0b010);
        assert_eq!(leg_wants(0, 2, false), 0b101, "switching: both");
        assert_eq!(leg_wants(2, 2, true), 0b111, "auto measures every layer");
        assert_eq!(leg_wants(9, 1, false), 0b010, "no such slot");
    }

    #[test]
    fn additions_go_out_at_once_and_removals_after_the_delay() {
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        let mut a = Announcer::new(3);
        assert_eq!(a.update(0b111, t0), None, "the publisher starts with all");
        // Nobody watches the lower layers: dropped after the delay only.
        assert_eq!(a.update(TOP, at(0)), None);
        assert_eq!(a.deadline(), Some(at(1000)));
        assert_eq!(a.update(TOP, at(999)), None);
        assert_eq!(a.update(TOP, at(1000)), Some(TOP));
        assert_eq!(a.deadline(), None);
        // Wanted again: at once.
        assert_eq!(a.update(0b101, at(1200)), Some(0b101));
        // A fixed leg moves from slot 2 to slot 1: slot 1 is added at once
        // while slot 2 stays told until it has been unwanted for the delay.
        assert_eq!(a.update(0b011, at(1300)), Some(0b111));
        assert_eq!(a.update(0b011, at(1500)), None);
        // Back and forth within the delay: nothing stops.
        assert_eq!(a.update(0b101, at(1800)), None);
        assert_eq!(a.deadline(), Some(at(2800)), "slot 1 unwanted since 1800");
        assert_eq!(a.update(0b101, at(2800)), Some(0b101));
        // The top is always announced; slots the stream lacks never are.
        let mut two = Announcer::new(2);
        assert_eq!(two.update(0, at(0)), None);
        assert_eq!(two.update(0b100, at(1000)), Some(TOP));
        assert_eq!(two.update(0b110, at(1100)), Some(0b011));
    }
}
