//! What the server requires of what a client signals, checked before anything
//! is created or announced: a publish offer ([`check_publish_offer`]), a
//! trickled ICE candidate ([`check_candidate`]), and the candidates inside an
//! offer or answer ([`usable_candidates_only`]).
//!
//! Without these checks an offer that can never carry media (no agreed codec,
//! a receive-only section, a fingerprint no certificate can match, plain RTP)
//! was answered, announced to the room, and only dropped when ICE gave up half
//! a minute later; an unusable candidate reached the ICE agent, which then
//! tried to reach it on every check. Both functions are pure (text in, verdict
//! out) and read the SDP and the candidate with the parsers `rtc` ships
//! (`rtc::sdp`, `rtc::ice`), so the verdict matches what the links would make
//! of the same text. Each refusal names the problem; docs/protocol.md lists the
//! rules.

use std::io::Cursor;
use std::net::IpAddr;

use rtc::sdp::direction::Direction;
use rtc::sdp::{MediaDescription, SessionDescription};

/// The transport profile every media section must use (RFC 8843/5764: SRTP
/// keyed by DTLS, with RTCP feedback).
pub const REQUIRED_PROFILE: &str = "UDP/TLS/RTP/SAVPF";

/// The only fingerprint hash the server's DTLS can verify (`rtc` 0.21
/// refuses every other algorithm during the handshake).
pub const FINGERPRINT_ALGORITHM: &str = "sha-256";

/// Why a publish offer was refused (90100214, `InvalidPushed`). Not retryable
/// with the same offer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OfferError {
    /// The text is not an SDP the parser can read.
    #[error("the offer is not valid SDP: {0}")]
    Unparsable(String),
    /// More than one section of one kind: a stream has at most one audio and
    /// one video track.
    #[error(
        "the offer has more than one m={0} section (a stream has at most one audio and one video track)"
    )]
    Duplicate(String),
    /// A section uses another transport profile than [`REQUIRED_PROFILE`].
    #[error(
        "m={media} uses the profile {found}; the server requires {REQUIRED_PROFILE} (DTLS-SRTP)"
    )]
    Profile {
        /// `audio` or `video`.
        media: String,
        /// The profile offered.
        found: String,
    },
    /// A section that does not send (`recvonly`, `inactive`).
    #[error("m={media} is {direction}; a published section must be sendonly or sendrecv")]
    Direction {
        /// `audio` or `video`.
        media: String,
        /// The direction offered.
        direction: &'static str,
    },
    /// A section of a player's offer that is not `recvonly`.
    #[error("m={media} is {direction}; a played section must be recvonly")]
    NotReceiving {
        /// `audio` or `video`.
        media: String,
        /// The direction offered.
        direction: &'static str,
    },
    /// A section without a codec the server forwards.
    #[error("m={media} offers no codec the server forwards ({wanted}); offered: {offered}")]
    NoCodec {
        /// `audio` or `video`.
        media: String,
        /// What the server forwards for this kind.
        wanted: &'static str,
        /// The `a=rtpmap` codecs offered, or `no a=rtpmap`.
        offered: String,
    },
    /// A section with no fingerprint of its own and none at session level.
    #[error("m={0} has no DTLS fingerprint (a=fingerprint:sha-256 at session or media level)")]
    NoFingerprint(String),
    /// A fingerprint that no certificate can match, or of another algorithm.
    #[error("malformed DTLS fingerprint {0:?}: expected sha-256 and 32 colon-separated hex pairs")]
    BadFingerprint(String),
}

/// Which media a publish offer carries, once it passed [`check_publish_offer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OfferedMedia {
    /// An audio section (Opus).
    pub audio: bool,
    /// A video section (H.264).
    pub video: bool,
}

/// Checks that every audio and video section of a publish offer can carry
/// media to the server: profile [`REQUIRED_PROFILE`], direction sendonly or
/// sendrecv, a codec the server forwards (H.264 constrained baseline with
/// packetization-mode 1 for video, Opus/48000 for audio), and a well-formed
/// sha-256 DTLS fingerprint at session or media level. Sections of other
/// kinds (`application`) are left to the link.
pub fn check_publish_offer(sdp: &str) -> Result<OfferedMedia, OfferError> {
    check_offer(sdp, Purpose::Publish, 1)
}

/// [`check_publish_offer`] for a stream of `layers` simulcast layers
/// (`protocol::layers`): one video section each.
pub fn check_layered_publish_offer(sdp: &str, layers: usize) -> Result<OfferedMedia, OfferError> {
    check_offer(sdp, Purpose::Publish, layers.max(1))
}

/// The checks of [`check_publish_offer`] for a player's offer (WHEP,
/// `server::whep`): the same rules, except that each audio and video section
/// must be `recvonly` (the server only sends on it);
/// [`OfferError::NotReceiving`] otherwise.
pub fn check_play_offer(sdp: &str) -> Result<OfferedMedia, OfferError> {
    check_offer(sdp, Purpose::Play, 1)
}

/// Which way the media of a checked offer flows.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Purpose {
    /// The client sends (a publish, WHIP).
    Publish,
    /// The client receives (WHEP).
    Play,
}

fn check_offer(sdp: &str, purpose: Purpose, videos: usize) -> Result<OfferedMedia, OfferError> {
    let session = SessionDescription::unmarshal(&mut Cursor::new(sdp.as_bytes()))
        .map_err(|e| OfferError::Unparsable(e.to_string()))?;
    let fingerprints = |attributes: &[rtc::sdp::description::common::Attribute]| {
        attributes
            .iter()
            .filter(|a| a.key == "fingerprint")
            .map(|a| a.value.clone().unwrap_or_default())
            .collect::<Vec<_>>()
    };
    let session_fingerprints = fingerprints(&session.attributes);
    for value in &session_fingerprints {
        check_fingerprint(value)?;
    }
    let session_direction = direction_of(&session.attributes);
    let mut offered = OfferedMedia {
        audio: false,
        video: false,
    };
    let mut video_sections = 0;
    for section in &session.media_descriptions {
        let media = section.media_name.media.as_str();
        let seen = match media {
            "audio" => &mut offered.audio,
            "video" => {
                video_sections += 1;
                &mut offered.video
            }
            _ => continue,
        };
        if std::mem::replace(seen, true) && (media != "video" || video_sections > videos) {
            return Err(OfferError::Duplicate(media.to_owned()));
        }
        let profile = section.media_name.protos.join("/");
        if profile != REQUIRED_PROFILE {
            return Err(OfferError::Profile {
                media: media.to_owned(),
                found: profile,
            });
        }
        // No direction at either level means sendrecv (RFC 4566 §6).
        let direction = direction_of(&section.attributes).or(session_direction);
        match (purpose, direction) {
            (Purpose::Publish, Some(direction @ ("recvonly" | "inactive"))) => {
                return Err(OfferError::Direction {
                    media: media.to_owned(),
                    direction,
                });
            }
            // The leg only sends: a `sendrecv` section would be answered
            // by a transceiver of its own, not the stream's.
            (Purpose::Play, direction) if direction != Some("recvonly") => {
                return Err(OfferError::NotReceiving {
                    media: media.to_owned(),
                    direction: direction.unwrap_or("sendrecv"),
                });
            }
            _ => {}
        }
        check_codecs(media, section)?;
        let own = fingerprints(&section.attributes);
        for value in &own {
            check_fingerprint(value)?;
        }
        if own.is_empty() && session_fingerprints.is_empty() {
            return Err(OfferError::NoFingerprint(media.to_owned()));
        }
    }
    Ok(offered)
}

/// The direction attribute among `attributes`, if any, as its SDP name.
fn direction_of(attributes: &[rtc::sdp::description::common::Attribute]) -> Option<&'static str> {
    attributes
        .iter()
        .find_map(|a| match Direction::new(&a.key) {
            Direction::SendRecv => Some("sendrecv"),
            Direction::SendOnly => Some("sendonly"),
            Direction::RecvOnly => Some("recvonly"),
            Direction::Inactive => Some("inactive"),
            Direction::Unspecified => None,
        })
}

/// At least one of the section's payload types is a codec the server
/// forwards, as `rtc` would match it exactly (`src/link/mod.rs` registers the
/// codecs).
fn check_codecs(media: &str, section: &MediaDescription) -> Result<(), OfferError> {
    let codecs = section.codecs();
    let mut listed: Vec<_> = section
        .media_name
        .formats
        .iter()
        .filter_map(|f| f.parse::<u8>().ok())
        .filter_map(|pt| codecs.get(&pt))
        .filter(|c| !c.name.is_empty())
        .collect();
    listed.sort_by_key(|c| c.payload_type);
    let (wanted, agreed): (&'static str, fn(&rtc::sdp::util::Codec) -> bool) = match media {
        "video" => (
            "H264/90000, packetization-mode=1, profile-level-id 42e0xx",
            |c| {
                c.name.eq_ignore_ascii_case("H264")
                    && c.clock_rate == crate::link::VIDEO_CLOCK_RATE
                    && fmtp_value(&c.fmtp, "packetization-mode") == Some("1")
                    && fmtp_value(&c.fmtp, "profile-level-id")
                        .is_some_and(|id| id.len() == 6 && id[..4].eq_ignore_ascii_case("42e0"))
            },
        ),
        _ => ("opus/48000/2", |c| {
            c.name.eq_ignore_ascii_case("opus")
                && c.clock_rate == crate::link::OPUS_CLOCK_RATE
                && matches!(c.encoding_parameters.as_str(), "" | "2")
        }),
    };
    if listed.iter().any(|c| agreed(c)) {
        return Ok(());
    }
    let offered = if listed.is_empty() {
        "no a=rtpmap".to_owned()
    } else {
        listed
            .iter()
            .map(|c| format!("{} {}/{}", c.payload_type, c.name, c.clock_rate))
            .collect::<Vec<_>>()
            .join(", ")
    };
    Err(OfferError::NoCodec {
        media: media.to_owned(),
        wanted,
        offered,
    })
}

/// The value of `key` in an `a=fmtp` parameter list (`k=v;k=v`).
fn fmtp_value<'a>(fmtp: &'a str, key: &str) -> Option<&'a str> {
    fmtp.split(';').find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        k.trim().eq_ignore_ascii_case(key).then_some(v.trim())
    })
}

/// `sha-256 XX:XX:…`: the algorithm, one space, 32 colon-separated hex pairs.
fn check_fingerprint(value: &str) -> Result<(), OfferError> {
    let bad = || OfferError::BadFingerprint(value.chars().take(120).collect());
    let (algorithm, hash) = value.split_once(' ').ok_or_else(bad)?;
    if algorithm != FINGERPRINT_ALGORITHM {
        return Err(bad());
    }
    let pairs: Vec<&str> = hash.split(':').collect();
    let well_formed = pairs.len() == 32
        && pairs
            .iter()
            .all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit()));
    if well_formed { Ok(()) } else { Err(bad()) }
}

/// Why a trickled candidate was refused (90000005, `InvalidParameter`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CandidateError {
    /// Not a candidate the ICE parser can read.
    #[error("unparsable candidate: {0}")]
    Unparsable(String),
    /// Not UDP: the server's links listen on UDP only.
    #[error("candidate transport {0} is not supported (UDP only)")]
    Transport(String),
    /// Not an IP address (e.g. an mDNS `.local` name, which the server does not
    /// resolve).
    #[error(
        "candidate address {0:?} is not an IP address (the server resolves no names, mDNS included)"
    )]
    NotAnIp(String),
    /// An address nothing can be sent to: unspecified, multicast or broadcast.
    #[error("candidate address {address} is {kind}")]
    Unreachable {
        /// The address.
        address: IpAddr,
        /// `unspecified`, `multicast` or `broadcast`.
        kind: &'static str,
    },
    /// Port 0.
    #[error("candidate port 0")]
    PortZero,
}

/// Checks a trickled candidate (`candidate:…`, the `a=` attribute value)
/// before it reaches a link: parsable, UDP, an IP address that can be sent
/// to, a port other than 0. The empty string (end of candidates) passes.
pub fn check_candidate(candidate: &str) -> Result<(), CandidateError> {
    let text = candidate.trim();
    if text.is_empty() {
        return Ok(());
    }
    let raw = text.strip_prefix("candidate:").unwrap_or(text);
    // The transport is checked first: the parser maps TCP candidates too.
    let transport = raw.split_whitespace().nth(2).unwrap_or_default();
    let parsed = rtc::ice::candidate::unmarshal_candidate(raw)
        .map_err(|e| CandidateError::Unparsable(e.to_string()))?;
    if !transport.eq_ignore_ascii_case("udp") || !parsed.network_type().is_udp() {
        return Err(CandidateError::Transport(transport.to_owned()));
    }
    let ip: IpAddr = parsed
        .address()
        .parse()
        .map_err(|_| CandidateError::NotAnIp(parsed.address().to_owned()))?;
    let unreachable = if ip.is_unspecified() {
        Some("unspecified")
    } else if ip.is_multicast() {
        Some("multicast")
    } else if matches!(ip, IpAddr::V4(v4) if v4.is_broadcast()) {
        Some("broadcast")
    } else {
        None
    };
    if let Some(kind) = unreachable {
        return Err(CandidateError::Unreachable { address: ip, kind });
    }
    if parsed.port() == 0 {
        return Err(CandidateError::PortZero);
    }
    Ok(())
}

/// `sdp` without its `a=candidate` lines that [`check_candidate`] refuses,
/// and how many were removed. Browsers put candidates the server cannot use
/// in their SDP as a matter of course (TCP, mDNS `.local` names), so these
/// are dropped, not the whole offer: the link then never tries them (an
/// address like port 0 made the ICE agent log an error every check).
pub fn usable_candidates_only(sdp: &str) -> (String, usize) {
    let mut removed = 0;
    let mut kept = String::with_capacity(sdp.len());
    for line in sdp.split_inclusive('\n') {
        let attribute = line.trim_end_matches(['\r', '\n']);
        if let Some(candidate) = attribute.strip_prefix("a=")
            && candidate.starts_with("candidate:")
            && let Err(e) = check_candidate(candidate)
        {
            tracing::debug!("dropping an SDP candidate: {e}");
            removed += 1;
            continue;
        }
        kept.push_str(line);
    }
    (kept, removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A publish offer as the SDK makes one (H.264 + Opus, bundled, host
    /// candidates), with the fingerprint at session level.
    const OFFER: &str = "v=0\r\n\
o=- 2142927007255924402 612627710 IN IP4 0.0.0.0\r\n\
s=-\r\n\
t=0 0\r\n\
a=fingerprint:sha-256 CA:E0:C5:6B:78:07:8B:91:9C:89:65:09:7F:13:60:45:44:FD:19:E6:5C:EA:A7:0E:7D:9E:77:3F:BF:5A:0B:A6\r\n\
a=group:BUNDLE 0 1\r\n\
m=video 9 UDP/TLS/RTP/SAVPF 102 96\r\n\
c=IN IP4 0.0.0.0\r\n\
a=setup:actpass\r\n\
a=mid:0\r\n\
a=ice-ufrag:hbZHASNouYWEZaJK\r\n\
a=ice-pwd:mKQPEjzfiHvmvEQrBDQvSkCmKGBgFSnu\r\n\
a=rtcp-mux\r\n\
a=rtpmap:102 H264/90000\r\n\
a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\r\n\
a=rtcp-fb:102 nack pli\r\n\
a=rtpmap:96 VP8/90000\r\n\
a=sendrecv\r\n\
a=candidate:2693830880 1 udp 2130706431 127.0.0.1 52906 typ host\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n\
c=IN IP4 0.0.0.0\r\n\
a=setup:actpass\r\n\
a=mid:1\r\n\
a=ice-ufrag:hbZHASNouYWEZaJK\r\n\
a=ice-pwd:mKQPEjzfiHvmvEQrBDQvSkCmKGBgFSnu\r\n\
a=rtcp-mux\r\n\
a=rtpmap:111 opus/48000/2\r\n\
a=fmtp:111 minptime=10;useinbandfec=1\r\n\
a=sendonly\r\n";

    fn replaced(from: &str, to: &str) -> String {
        assert!(OFFER.contains(from), "{from}");
        OFFER.replacen(from, to, 1)
    }

    fn refused(sdp: &str) -> OfferError {
        check_publish_offer(sdp).expect_err("refused")
    }

    #[test]
    fn a_usable_offer_passes_and_says_what_it_carries() {
        assert_eq!(
            check_publish_offer(OFFER),
            Ok(OfferedMedia {
                audio: true,
                video: true
            })
        );
        // The fingerprint may sit in each section instead.
        let fingerprint = OFFER.lines().nth(4).unwrap();
        let per_section = OFFER
            .replacen(&format!("{fingerprint}\r\n"), "", 1)
            .replace(
                "a=rtcp-mux\r\n",
                &format!("a=rtcp-mux\r\n{fingerprint}\r\n"),
            );
        assert!(check_publish_offer(&per_section).is_ok(), "{per_section}");
        // No direction at all means sendrecv.
        let plain = OFFER
            .replace("a=sendrecv\r\n", "")
            .replace("a=sendonly\r\n", "");
        assert!(check_publish_offer(&plain).is_ok());
    }

    #[test]
    fn a_garbage_or_missing_fingerprint_is_refused() {
        let garbage = replaced("sha-256 CA:E0", "sha-256 ZZ:E0");
        assert!(matches!(refused(&garbage), OfferError::BadFingerprint(_)));
        let short = replaced("CA:E0:", "");
        assert!(matches!(refused(&short), OfferError::BadFingerprint(_)));
        let words = replaced("sha-256 CA", "sha-256 hello CA");
        assert!(matches!(refused(&words), OfferError::BadFingerprint(_)));
        let sha1 = replaced("sha-256", "sha-1");
        assert!(matches!(refused(&sha1), OfferError::BadFingerprint(_)));
        let fingerprint = OFFER.lines().nth(4).unwrap();
        let none = OFFER.replacen(&format!("{fingerprint}\r\n"), "", 1);
        let e = refused(&none);
        assert_eq!(e, OfferError::NoFingerprint("video".into()));
        assert!(e.to_string().contains("fingerprint"), "{e}");
    }

    #[test]
    fn a_section_that_does_not_send_is_refused() {
        let e = refused(&replaced("a=sendrecv", "a=recvonly"));
        assert_eq!(
            e,
            OfferError::Direction {
                media: "video".into(),
                direction: "recvonly"
            }
        );
        assert!(e.to_string().contains("recvonly"), "{e}");
        let e = refused(&replaced("a=sendonly", "a=inactive"));
        assert!(e.to_string().contains("m=audio is inactive"), "{e}");
        // A session-level direction applies where a section has none.
        let session_inactive = OFFER
            .replace("a=sendrecv\r\n", "")
            .replace("a=sendonly\r\n", "")
            .replacen("t=0 0\r\n", "t=0 0\r\na=inactive\r\n", 1);
        assert!(matches!(
            refused(&session_inactive),
            OfferError::Direction { .. }
        ));
    }

    #[test]
    fn a_section_without_an_agreed_codec_is_refused() {
        let no_rtpmap = replaced("a=rtpmap:111 opus/48000/2\r\n", "");
        let e = refused(&no_rtpmap);
        assert!(
            e.to_string().contains("m=audio offers no codec")
                && e.to_string().contains("no a=rtpmap"),
            "{e}"
        );
        let vp8_only = replaced(
            "m=video 9 UDP/TLS/RTP/SAVPF 102 96",
            "m=video 9 UDP/TLS/RTP/SAVPF 96",
        );
        let e = refused(&vp8_only);
        assert!(
            e.to_string().contains("H264") && e.to_string().contains("96 VP8/90000"),
            "{e}"
        );
        let high_profile = replaced("profile-level-id=42e01f", "profile-level-id=640c1f");
        assert!(matches!(refused(&high_profile), OfferError::NoCodec { .. }));
        let mode_0 = replaced("packetization-mode=1", "packetization-mode=0");
        assert!(matches!(refused(&mode_0), OfferError::NoCodec { .. }));
        let mono_8k = replaced("opus/48000/2", "opus/8000");
        assert!(matches!(refused(&mono_8k), OfferError::NoCodec { .. }));
        // An rtpmap for a payload type the m= line does not list does not count.
        let unlisted = replaced(
            "m=audio 9 UDP/TLS/RTP/SAVPF 111",
            "m=audio 9 UDP/TLS/RTP/SAVPF 0",
        );
        assert!(matches!(refused(&unlisted), OfferError::NoCodec { .. }));
    }

    #[test]
    fn plain_rtp_and_duplicate_sections_are_refused() {
        let e = refused(&replaced(
            "m=video 9 UDP/TLS/RTP/SAVPF",
            "m=video 9 RTP/AVP",
        ));
        assert_eq!(
            e,
            OfferError::Profile {
                media: "video".into(),
                found: "RTP/AVP".into()
            }
        );
        assert!(e.to_string().contains("UDP/TLS/RTP/SAVPF"), "{e}");
        let audio = &OFFER[OFFER.find("m=audio").unwrap()..];
        let twice = format!("{OFFER}{audio}");
        assert_eq!(refused(&twice), OfferError::Duplicate("audio".into()));
        assert!(matches!(
            refused("m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nnot sdp"),
            OfferError::Unparsable(_)
        ));
    }

    #[test]
    fn unusable_sdp_candidates_are_dropped_and_the_rest_kept() {
        let sdp = OFFER.replace(
            "a=candidate:2693830880 1 udp 2130706431 127.0.0.1 52906 typ host\r\n",
            "a=candidate:2693830880 1 udp 2130706431 127.0.0.1 52906 typ host\r\n\
             a=candidate:1 1 udp 2130706431 127.0.0.1 0 typ host\r\n\
             a=candidate:2 1 tcp 1518280447 127.0.0.1 9 typ host tcptype active\r\n\
             a=candidate:3 1 udp 2130706431 3f1c-example.local 50000 typ host\r\n",
        );
        let (kept, removed) = usable_candidates_only(&sdp);
        assert_eq!(removed, 3);
        assert_eq!(kept, OFFER, "only the unusable candidates go");
        assert_eq!(usable_candidates_only(OFFER), (OFFER.to_owned(), 0));
    }

    #[test]
    fn usable_candidates_pass() {
        for ok in [
            "candidate:1 1 udp 2130706431 127.0.0.1 50000 typ host",
            "candidate:2693830880 2 UDP 2130706431 192.0.2.7 9 typ host",
            "1 1 udp 2130706431 ::1 50000 typ host",
            "candidate:3 1 udp 1694498815 203.0.113.5 61000 typ srflx raddr 10.0.0.2 rport 50000",
            "",
        ] {
            assert_eq!(check_candidate(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn unusable_candidates_are_refused_naming_the_problem() {
        let cases = [
            (
                "candidate:1 1 udp 2130706431 127.0.0.1 0 typ host",
                "port 0",
            ),
            (
                "candidate:1 1 udp 2130706431 0.0.0.0 50000 typ host",
                "unspecified",
            ),
            (
                "candidate:1 1 udp 2130706431 :: 50000 typ host",
                "unspecified",
            ),
            (
                "candidate:1 1 udp 2130706431 224.0.0.1 50000 typ host",
                "multicast",
            ),
            (
                "candidate:1 1 udp 2130706431 255.255.255.255 50000 typ host",
                "broadcast",
            ),
            (
                "candidate:1 1 tcp 2130706431 127.0.0.1 50000 typ host tcptype passive",
                "UDP only",
            ),
            (
                "candidate:1 1 udp 2130706431 6f1b.local 50000 typ host",
                "not an IP",
            ),
            (
                "candidate:1 1 udp 2130706431 127.0.0.1 port typ host",
                "unparsable",
            ),
            (
                "candidate:1 1 udp 2130706431 127.0.0.1 50000 typ nonsense",
                "unparsable",
            ),
            ("not a candidate at all", "unparsable"),
        ];
        for (text, named) in cases {
            let e = check_candidate(text).expect_err(text);
            assert!(e.to_string().contains(named), "{text}: {e}");
        }
    }
}
