//! Which layer slot each packet of a browser's simulcast track belongs to.
//!
//! huddle's SDK sends each simulcast layer as a video track of its own, whose
//! track id is the `resolutionId` (`protocol::layers`). A browser's simulcast
//! (`addTransceiver(track, {sendEncodings: [{rid: "720p"}, ...]})`) sends all
//! its layers in one media section: webrtc-rs hands them to the server as ONE
//! remote track carrying one SSRC per RTP stream id (`a=rid`), the layers'
//! SSRCs appearing as their first packets arrive. This map tells, per packet,
//! the layer slot of its SSRC: the slot whose `resolutionId` is the SSRC's
//! rid, looked up once per SSRC. An SSRC whose rid names no declared layer
//! is [`RidLayer::Ignored`]: its packets are dropped (and the stream's other
//! layers carry on). An SSRC whose rid the track does not know (yet: a new
//! layer's first packets can come before webrtc-rs has noted its rid, and a
//! switch to that layer then never happened) is dropped too, and looked up
//! again every [`RETRY_EVERY`] packets.
//!
//! Per packet this is a scan of at most a few entries: no allocation once
//! every SSRC is known.

/// What one SSRC of a multi-rid track is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RidLayer {
    /// The RTP stream of layer slot `n`.
    Slot(u8),
    /// No declared layer: its packets are dropped.
    Ignored,
}

/// What the map knows of one SSRC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Known {
    Layer(RidLayer),
    /// No rid known for it yet: dropped, looked up again after this many
    /// more packets.
    Unresolved {
        retry_in: u32,
    },
}

/// Packets of an SSRC without a known rid between two lookups.
pub(crate) const RETRY_EVERY: u32 = 16;

/// SSRCs not worth remembering beyond: a publisher cycling through more
/// SSRCs than this is misbehaving, and an unknown one is just looked up
/// again.
const MAX_KNOWN: usize = 8;

/// The SSRC → layer map of one multi-rid track.
#[derive(Debug, Default)]
pub(crate) struct RidLayers {
    known: Vec<(u32, Known)>,
}

impl RidLayers {
    /// The layer of `ssrc` if it is known; `None` when its rid must be
    /// looked up ([`RidLayers::learn`]). An SSRC whose rid was not known at
    /// its last lookup is [`RidLayer::Ignored`] until its next one is due.
    pub(crate) fn get(&mut self, ssrc: u32) -> Option<RidLayer> {
        let (_, known) = self.known.iter_mut().find(|(known, _)| *known == ssrc)?;
        match known {
            Known::Layer(layer) => Some(*layer),
            Known::Unresolved { retry_in: 0 } => None,
            Known::Unresolved { retry_in } => {
                *retry_in -= 1;
                Some(RidLayer::Ignored)
            }
        }
    }

    /// Learns `ssrc`'s layer from its `rid` (`None`: the track does not know
    /// one yet) and the stream's layer lookup; returns it.
    pub(crate) fn learn(
        &mut self,
        ssrc: u32,
        rid: Option<&str>,
        slot_of: impl FnOnce(&str) -> Option<u8>,
    ) -> RidLayer {
        let (known, layer) = match rid {
            None => (
                Known::Unresolved {
                    retry_in: RETRY_EVERY,
                },
                RidLayer::Ignored,
            ),
            Some(rid) => {
                let layer = slot_of(rid).map_or(RidLayer::Ignored, RidLayer::Slot);
                (Known::Layer(layer), layer)
            }
        };
        if let Some((_, entry)) = self.known.iter_mut().find(|(k, _)| *k == ssrc) {
            *entry = known;
        } else if self.known.len() < MAX_KNOWN {
            self.known.push((ssrc, known));
        }
        layer
    }
}

#[cfg(test)]
mod tests {
    use super::{RidLayer, RidLayers};

    fn slot_of(id: &str) -> Option<u8> {
        ["720p", "360p", "180p"]
            .iter()
            .position(|l| *l == id)
            .map(|p| p as u8)
    }

    #[test]
    fn each_ssrc_maps_to_the_layer_its_rid_names() {
        let mut map = RidLayers::default();
        assert_eq!(map.get(1), None);
        assert_eq!(map.learn(1, Some("360p"), slot_of), RidLayer::Slot(1));
        assert_eq!(map.learn(2, Some("720p"), slot_of), RidLayer::Slot(0));
        assert_eq!(map.learn(3, Some("180p"), slot_of), RidLayer::Slot(2));
        assert_eq!(map.get(1), Some(RidLayer::Slot(1)));
        assert_eq!(map.get(2), Some(RidLayer::Slot(0)));
        assert_eq!(map.get(3), Some(RidLayer::Slot(2)));
    }

    #[test]
    fn a_rid_not_known_yet_is_looked_up_again() {
        let mut map = RidLayers::default();
        assert_eq!(map.learn(8, None, slot_of), RidLayer::Ignored);
        for _ in 0..super::RETRY_EVERY {
            assert_eq!(map.get(8), Some(RidLayer::Ignored));
        }
        assert_eq!(map.get(8), None, "due for another lookup");
        assert_eq!(map.learn(8, Some("180p"), slot_of), RidLayer::Slot(2));
        assert_eq!(map.get(8), Some(RidLayer::Slot(2)));
    }

    #[test]
    fn an_undeclared_rid_is_ignored_and_the_map_bounded() {
        let mut map = RidLayers::default();
        assert_eq!(map.learn(7, Some("1080p"), slot_of), RidLayer::Ignored);
        assert_eq!(map.get(7), Some(RidLayer::Ignored));
        assert_eq!(map.get(7), Some(RidLayer::Ignored), "for good");
        // A flood of new SSRCs is not remembered beyond the bound.
        for ssrc in 100..200 {
            map.learn(ssrc, Some("junk"), slot_of);
        }
        assert!(map.known.len() <= super::MAX_KNOWN);
        assert_eq!(map.get(199), None);
    }
}
