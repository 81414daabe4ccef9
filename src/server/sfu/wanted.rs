//! Which simulcast layers of a published stream some subscriber wants
//! (issue 10 §2: layers nobody watches are not encoded), and the debounced
//! `layers-wanted` event that tells the publisher.
//!
//! Each egress leg of a layered stream records the layer slot it is heading
//! to (its switch target, `sfu::layers`; a finished switch's target is its
//! current layer) when it sets one, and drops its entry when it ends. The
//! union, with the top layer always in it (kept encoded: a subscriber's
//! default, and a leg's first keyframe needs no wait), goes out on a watch
//! channel. [`announce`] turns its changes into `layers-wanted` events for
//! the publisher's session: a layer that becomes wanted is announced at once
//! (a switch to it waits for its keyframe), one that is no longer wanted
//! only after the set has stayed smaller for [`SHRINK_DELAY`], so a switch
//! back and forth does not make the publisher stop and restart an encoder.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use super::PublishedMedia;
use crate::protocol::{Event, LinkId, ServerMessage, StreamId};
use crate::server::inbox::{SessionEvent, SessionInbox};

/// How long a smaller wanted set must stand before the publisher hears it.
pub const SHRINK_DELAY: Duration = Duration::from_secs(1);

/// The top layer's bit: always wanted.
const TOP: u8 = 1;

/// Per-leg wanted slots of one stream, as a bit set (bit `n`: slot `n`).
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
    /// Leg `link` heads to `slot` now.
    pub(crate) fn set(&self, link: LinkId, slot: u8) {
        let bit = 1u8.checked_shl(u32::from(slot)).unwrap_or(0);
        let mut legs = self.legs.lock().unwrap_or_else(|e| e.into_inner());
        legs.insert(link, bit);
        self.publish(&legs);
    }

    /// Leg `link` ended.
    pub(crate) fn remove(&self, link: LinkId) {
        let mut legs = self.legs.lock().unwrap_or_else(|e| e.into_inner());
        if legs.remove(&link).is_some() {
            self.publish(&legs);
        }
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

/// The slots of `mask` named by `ids` (slot order), ids of absent slots left out.
fn names(mask: u8, ids: &[String]) -> Vec<String> {
    ids.iter()
        .enumerate()
        .filter(|(slot, _)| mask & (1 << slot) != 0)
        .map(|(_, id)| id.clone())
        .collect()
}

/// Sends `layers-wanted` for stream `stream_id` to the publisher's `inbox`
/// as its wanted set changes (module docs), until the stream closes or the
/// session ends. The publisher starts with every layer encoded.
pub(crate) async fn announce(media: Arc<PublishedMedia>, stream_id: StreamId, inbox: SessionInbox) {
    let ids = media.layers();
    if ids.len() < 2 {
        return;
    }
    let mut rx = media.wanted_changes();
    let mut told: u8 = (1u8 << ids.len()) - 1;
    loop {
        let want = *rx.borrow_and_update();
        let changed = if want == told {
            None
        } else if want & !told != 0 {
            Some(want)
        } else {
            tokio::select! {
                () = tokio::time::sleep(SHRINK_DELAY) => Some(want),
                r = rx.changed() => match r {
                    Ok(()) => continue,
                    Err(_) => return,
                },
                () = media.closed() => return,
            }
        };
        if let Some(want) = changed {
            told = want;
            let event = Event::LayersWanted {
                stream_id,
                resolution_ids: names(want, &ids),
            };
            let message = ServerMessage::Event { event };
            if inbox.try_send(SessionEvent::Send(Box::new(message)))
                == Err(crate::server::inbox::Refused::Closed)
            {
                return;
            }
            continue;
        }
        tokio::select! {
            r = rx.changed() => if r.is_err() { return },
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
        w.set(LinkId(1), 2);
        w.set(LinkId(2), 1);
        assert_eq!(*rx.borrow(), 0b111);
        w.set(LinkId(2), 0);
        assert_eq!(*rx.borrow(), 0b101);
        w.remove(LinkId(1));
        assert_eq!(*rx.borrow(), TOP);
        let ids = ["a".to_owned(), "b".to_owned(), "c".to_owned()];
        assert_eq!(names(0b101, &ids), ["a", "c"]);
    }
}
