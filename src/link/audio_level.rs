//! The RFC 6464 client-to-mixer audio level header extension on huddle's
//! links: its URI, finding its negotiated id in an SDP, reading it from a
//! packet.
//!
//! Every link registers the extension for audio ([`super::PeerLink`]), so a
//! publisher's offer carries `a=extmap:<id> urn:ietf:params:rtp-hdrext:ssrc-audio-level`
//! and the server's answer echoes it. The id is the offerer's choice: the
//! SFU reads it from the answer it gave ([`ext_id_in_sdp`]) rather than
//! assuming one. Publishers attach the extension through the library's
//! `write_sample`, which maps it to the negotiated id by URI (webrtc 0.21.1
//! drops nothing then; a hand-set id that was not negotiated would be sent as
//! garbage or refused).

use rtc::rtp::Packet;

/// RFC 6464 §4: the extension's URI.
pub const AUDIO_LEVEL_URI: &str = "urn:ietf:params:rtp-hdrext:ssrc-audio-level";

/// The id `sdp` negotiates for the audio level extension, if any (RFC 8285
/// §5: `a=extmap:<id>[/<direction>] <uri> [<attributes>]`). Ids outside the
/// one-byte range 1..=14 are ignored.
pub fn ext_id_in_sdp(sdp: &str) -> Option<u8> {
    sdp.lines().find_map(|line| {
        let rest = line.trim().strip_prefix("a=extmap:")?;
        let (id, tail) = rest.split_once(' ')?;
        let uri = tail.split_whitespace().next()?;
        if uri != AUDIO_LEVEL_URI {
            return None;
        }
        let id: u8 = id.split('/').next()?.parse().ok()?;
        (1..=14).contains(&id).then_some(id)
    })
}

/// The level (−dBov, 0 loudest … 127 silence) a packet carries under
/// extension `id` (RFC 6464 §3: V bit, then 7 bits of level).
pub fn read_level(packet: &Packet, id: u8) -> Option<u8> {
    let payload = packet.header.get_extension(id)?;
    payload.first().map(|b| b & 0x7f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_negotiated_id() {
        let sdp = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n\
                   a=extmap:1 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01\r\n\
                   a=extmap:3/sendrecv urn:ietf:params:rtp-hdrext:ssrc-audio-level vad=on\r\n";
        assert_eq!(ext_id_in_sdp(sdp), Some(3));
        assert_eq!(ext_id_in_sdp("a=extmap:2 urn:other\r\n"), None);
        assert_eq!(
            ext_id_in_sdp("a=extmap:15 urn:ietf:params:rtp-hdrext:ssrc-audio-level"),
            None
        );
        assert_eq!(
            ext_id_in_sdp("a=extmap:x urn:ietf:params:rtp-hdrext:ssrc-audio-level"),
            None
        );
    }

    #[test]
    fn reads_the_level_without_the_voice_bit() {
        let mut packet = Packet::default();
        packet
            .header
            .set_extension(3, bytes::Bytes::from_static(&[0x80 | 42]))
            .expect("extension set");
        assert_eq!(read_level(&packet, 3), Some(42));
        assert_eq!(read_level(&packet, 4), None);
    }
}
