//! Per-egress RTP header rewriting, sans-IO.
//!
//! webrtc 0.21.1's `write_rtp` drops packets whose SSRC or payload type are not
//! the egress leg's, so every forwarded packet gets the leg's SSRC and payload
//! type. Header extensions are stripped: their ids were negotiated on the ingress
//! leg and mean nothing (or something else) on the egress leg.
//!
//! Sequence numbers are made contiguous per egress: when forwarding of a track
//! is paused (unsubscribe video, keep audio) and later resumed, the subscriber
//! must not see the pause as thousands of lost packets. Gaps that come from the
//! publisher (real loss upstream) pass through as gaps.

use rtc::rtp::Packet;

/// Rewrites forwarded packets for one egress track.
#[derive(Debug, Clone)]
pub struct Rewriter {
    ssrc: u32,
    payload_type: u8,
    /// Added (wrapping) to every ingress sequence number.
    seq_offset: u16,
    /// Last sequence number written, once something was.
    last_out: Option<u16>,
    /// The next packet follows a pause: re-anchor the offset on it.
    resync: bool,
}

impl Rewriter {
    /// A rewriter to the given egress SSRC and payload type.
    pub fn new(ssrc: u32, payload_type: u8) -> Self {
        Self {
            ssrc,
            payload_type,
            seq_offset: 0,
            last_out: None,
            resync: true,
        }
    }

    /// Marks a pause: the next packet continues right after the last one written.
    pub fn pause(&mut self) {
        self.resync = true;
    }

    /// Rewrites `packet` in place for the egress leg.
    pub fn rewrite(&mut self, packet: &mut Packet) {
        let header = &mut packet.header;
        if self.resync {
            self.resync = false;
            let next = self
                .last_out
                .map_or(header.sequence_number, |s| s.wrapping_add(1));
            self.seq_offset = next.wrapping_sub(header.sequence_number);
        }
        header.sequence_number = header.sequence_number.wrapping_add(self.seq_offset);
        self.last_out = Some(header.sequence_number);
        header.ssrc = self.ssrc;
        header.payload_type = self.payload_type;
        header.extension = false;
        header.extension_profile = 0;
        header.extensions.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(seq: u16) -> Packet {
        let mut p = Packet::default();
        p.header.sequence_number = seq;
        p.header.ssrc = 1;
        p.header.payload_type = 96;
        p.header.extension = true;
        p
    }

    #[test]
    fn rewrites_ssrc_payload_type_and_extensions() {
        let mut r = Rewriter::new(77, 102);
        let mut p = packet(10);
        r.rewrite(&mut p);
        assert_eq!(p.header.ssrc, 77);
        assert_eq!(p.header.payload_type, 102);
        assert!(!p.header.extension);
        assert_eq!(p.header.sequence_number, 10);
    }

    #[test]
    fn pause_keeps_sequence_contiguous_and_upstream_gaps_pass() {
        let mut r = Rewriter::new(1, 1);
        let out: Vec<u16> = [100u16, 101, 103]
            .iter()
            .map(|&s| {
                let mut p = packet(s);
                r.rewrite(&mut p);
                p.header.sequence_number
            })
            .collect();
        assert_eq!(out, vec![100, 101, 103]); // upstream loss of 102 stays visible
        r.pause();
        let mut p = packet(5000);
        r.rewrite(&mut p);
        assert_eq!(p.header.sequence_number, 104);
        let mut p = packet(5001);
        r.rewrite(&mut p);
        assert_eq!(p.header.sequence_number, 105);
    }

    #[test]
    fn wraps_around() {
        let mut r = Rewriter::new(1, 1);
        let mut p = packet(65_535);
        r.rewrite(&mut p);
        r.pause();
        let mut p = packet(7);
        r.rewrite(&mut p);
        assert_eq!(p.header.sequence_number, 0);
    }
}
