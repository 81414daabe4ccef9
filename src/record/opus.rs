//! What the recorder needs to know of an Opus packet: its length in samples
//! (RFC 6716 §3.1, the TOC byte) and a silent packet to fill holes with.

/// One 20 ms CELT fullband mono frame that decodes to silence (TOC 0xF8,
/// config 31, one frame; the CELT payload 0xFF 0xFE is the silence flag).
pub const OPUS_SILENCE_MONO: [u8; 3] = [0xF8, 0xFF, 0xFE];

/// Samples (48 kHz) in one Opus packet, from its TOC byte and frame count
/// (RFC 6716 §3.1–3.2). `None` for an empty or malformed packet.
pub fn opus_packet_samples(packet: &[u8]) -> Option<u32> {
    let toc = *packet.first()?;
    let config = toc >> 3;
    // Frame length in 48 kHz samples (Table 2 of RFC 6716).
    let frame = match config {
        0..=11 => [480, 960, 1920, 2880][usize::from(config % 4)],
        12..=15 => [480, 960][usize::from(config % 2)],
        _ => [120, 240, 480, 960][usize::from(config % 4)],
    };
    let frames = match toc & 0b11 {
        0 => 1,
        1 | 2 => 2,
        _ => u32::from(*packet.get(1)? & 0x3F),
    };
    let samples = frame * frames;
    // A packet is at most 120 ms (RFC 6716 §3.2.5).
    (samples > 0 && samples <= 5_760).then_some(samples)
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn toc_lengths() {
        assert_eq!(opus_packet_samples(&OPUS_SILENCE_MONO), Some(960));
        // SILK 20 ms, one frame; CELT 10 ms two frames; code 3 with 3 × 20 ms.
        assert_eq!(opus_packet_samples(&[0x08]), Some(960));
        assert_eq!(opus_packet_samples(&[(26 << 3) | 1]), Some(960));
        assert_eq!(opus_packet_samples(&[(31 << 3) | 3, 3]), Some(2_880));
        assert_eq!(opus_packet_samples(&[]), None);
        assert_eq!(opus_packet_samples(&[(31 << 3) | 3, 0]), None);
        assert_eq!(opus_packet_samples(&[(31 << 3) | 3, 7]), None);
    }
}
