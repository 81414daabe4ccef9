//! Helpers for tests that put a UDP proxy between two links (loss and delay
//! injection): classify datagrams and steer candidates through the proxy.
//! Used by `tests/rtcp_stats_under_loss_and_delay.rs` and the egress hub's
//! unit tests; not part of the product's API.

/// The RTP sequence number of a datagram that is RTP, `None` for STUN, DTLS
/// and RTCP (demultiplexing per RFC 7983 and RFC 5761).
pub fn rtp_seq(datagram: &[u8]) -> Option<u16> {
    let (&b0, &b1) = (datagram.first()?, datagram.get(1)?);
    if !(128..=191).contains(&b0) || (192..=223).contains(&b1) {
        return None;
    }
    Some(u16::from_be_bytes([*datagram.get(2)?, *datagram.get(3)?]))
}

/// The port of the first host candidate in an SDP.
///
/// # Panics
/// When the SDP has no `a=candidate:` line with a port (a test setup error).
pub fn candidate_port(sdp: &str) -> u16 {
    sdp.lines()
        .find(|l| l.starts_with("a=candidate:"))
        .and_then(|l| l.split_whitespace().nth(5))
        .and_then(|p| p.parse().ok())
        .expect("a host candidate in the SDP")
}

/// The SDP with every candidate's port replaced by `port` (the proxy's).
pub fn with_candidate_port(sdp: &str, port: u16) -> String {
    sdp.lines()
        .map(|l| {
            if l.starts_with("a=candidate:") {
                let mut f: Vec<String> = l.split_whitespace().map(str::to_owned).collect();
                if let Some(p) = f.get_mut(5) {
                    *p = port.to_string();
                }
                f.join(" ")
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\r\n")
        + "\r\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rtp_is_told_from_rtcp_and_candidates_are_rewritten() {
        assert_eq!(rtp_seq(&[0x80, 102, 0x12, 0x34]), Some(0x1234));
        assert_eq!(rtp_seq(&[0x80, 200, 0, 1]), None); // RTCP SR
        assert_eq!(rtp_seq(&[0x00, 0x01, 0, 1]), None); // STUN
        let sdp = "v=0\r\na=candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host\r\n";
        assert_eq!(candidate_port(sdp), 5000);
        assert_eq!(candidate_port(&with_candidate_port(sdp, 6000)), 6000);
    }
}
