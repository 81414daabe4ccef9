//! Which layer slot each packet of a browser's simulcast track belongs to.
//!
//! huddle's SDK sends each simulcast layer as a video track of its own, whose
//! track id is the `resolutionId` (`protocol::layers`). A browser's simulcast
//! (`addTransceiver(track, {sendEncodings: [{rid: "720p"}, ...]})`) sends all
//! its layers in one media section: webrtc-rs hands them to the server as ONE
//! remote track carrying one SSRC per RTP stream id (`a=rid`), the layers'
//! SSRCs appearing as their first packets arrive. This map tells, per packet,
//! the layer slot of its SSRC: the slot whose `resolutionId` is the SSRC's
//! rid, looked up once per SSRC. An SSRC without a rid, or whose rid names no
//! declared layer, is [`RidLayer::Ignored`]: its packets are dropped (and the
//! stream's other layers carry on).
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

/// SSRCs not worth remembering beyond: a publisher cycling through more
/// SSRCs than this is misbehaving, and an unknown one is just looked up
/// again.
const MAX_KNOWN: usize = 8;

/// The SSRC → layer map of one multi-rid track.
#[derive(Debug, Default)]
pub(crate) struct RidLayers {
    known: Vec<(u32, RidLayer)>,
}

impl RidLayers {
    /// The layer of `ssrc` if it was seen before.
    pub(crate) fn get(&self, ssrc: u32) -> Option<RidLayer> {
        self.known
            .iter()
            .find(|(known, _)| *known == ssrc)
            .map(|(_, layer)| *layer)
    }

    /// Learns `ssrc`'s layer from its `rid` (`None`: the track does not know
    /// one) and the stream's layer lookup; returns it.
    pub(crate) fn learn(
        &mut self,
        ssrc: u32,
        rid: Option<&str>,
        slot_of: impl FnOnce(&str) -> Option<u8>,
    ) -> RidLayer {
        let layer = match rid.and_then(slot_of) {
            Some(slot) => RidLayer::Slot(slot),
            None => RidLayer::Ignored,
        };
        if self.known.len() < MAX_KNOWN {
            self.known.push((ssrc, layer));
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
    fn an_unknown_or_missing_rid_is_ignored_and_bounded() {
        let mut map = RidLayers::default();
        assert_eq!(map.learn(7, Some("1080p"), slot_of), RidLayer::Ignored);
        assert_eq!(map.learn(8, None, slot_of), RidLayer::Ignored);
        assert_eq!(map.get(7), Some(RidLayer::Ignored));
        // A flood of new SSRCs is not remembered beyond the bound.
        for ssrc in 100..200 {
            map.learn(ssrc, Some("junk"), slot_of);
        }
        assert!(map.known.len() <= super::MAX_KNOWN);
        assert_eq!(map.get(199), None);
    }
}
