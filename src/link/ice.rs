//! How a link reaches its peer: the STUN/TURN servers it gathers from, whether
//! it may use only relayed candidates, and which address it advertises in
//! place of the one it is bound to.
//!
//! * **TURN** (client side, seed 001 `setTurnServer`): the link's ICE agent
//!   allocates a relay on each `turn:` server (UDP only, as webrtc-rs 0.21
//!   relays) and offers it as a `typ relay` candidate.
//! * **Relay only**: host and server-reflexive candidates are not gathered, so
//!   every packet goes through the TURN server. A relay-only link whose
//!   gathering ended without a relay candidate (wrong credentials, server down)
//!   can never connect; [`check_relay`] turns that into
//!   [`LinkError::NoRelayCandidate`] at once instead of a link that waits for
//!   ICE to give up.
//! * **Advertised address** (server side, a 1:1 NAT): the link binds `rtc_ip`
//!   but its host candidates name the public address, port kept.
//!   `SettingEngine::with_nat_1to1_ips` exists in webrtc-rs 0.21 but nothing
//!   reads it, so [`advertise`] rewrites the candidates the link hands out
//!   (in its SDP and trickled). The local agent keeps its bound address, which
//!   is where the NAT delivers the packets.
//!
//! Everything here is pure text in, text out, except [`selected_pair`].

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use rtc::peer_connection::configuration::RTCIceServer;
use rtc::peer_connection::transport::RTCIceCandidateType;
use webrtc::peer_connection::{PeerConnection, RTCStatsReportEntry, StatsSelector};

use super::LinkError;
use crate::protocol::IceServer;

/// What a link does about ICE besides its host candidate. The default is
/// what every link did before: host candidates on the bound address only.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IcePolicy {
    /// STUN/TURN servers to gather from.
    pub servers: Vec<IceServer>,
    /// Use relayed candidates only (W3C `iceTransportPolicy: "relay"`).
    pub relay_only: bool,
    /// Name this address instead of the bound one in host candidates (a
    /// server behind a 1:1 NAT).
    pub advertised_ip: Option<IpAddr>,
    /// What an ICE restart does with the local sockets and candidates
    /// (the client's links rebind, the server's keep theirs).
    pub on_restart: RestartSockets,
}

/// What an ICE restart does with a link's local sockets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RestartSockets {
    /// Keep the sockets and the candidates gathered on them (a server on a
    /// fixed address).
    #[default]
    Keep,
    /// Bind new sockets and gather again: the host's addresses may have
    /// changed since (a client that roamed to another network).
    Rebind,
}

impl IcePolicy {
    /// The servers in webrtc-rs' shape.
    pub(super) fn rtc_servers(&self) -> Vec<RTCIceServer> {
        self.servers
            .iter()
            .map(|s| RTCIceServer {
                urls: s.urls.clone(),
                username: s.username.clone(),
                credential: s.credential.clone(),
            })
            .collect()
    }
}

/// A candidate's type, as the SDK reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CandidateKind {
    /// An address of this host.
    Host,
    /// Our address as a STUN server saw it.
    ServerReflexive,
    /// An address learnt from a connectivity check.
    PeerReflexive,
    /// An address on a TURN server, relaying for us.
    Relay,
    /// The library did not say.
    Unknown,
}

impl From<RTCIceCandidateType> for CandidateKind {
    fn from(t: RTCIceCandidateType) -> Self {
        match t {
            RTCIceCandidateType::Host => CandidateKind::Host,
            RTCIceCandidateType::Srflx => CandidateKind::ServerReflexive,
            RTCIceCandidateType::Prflx => CandidateKind::PeerReflexive,
            RTCIceCandidateType::Relay => CandidateKind::Relay,
            _ => CandidateKind::Unknown,
        }
    }
}

/// One end of the selected candidate pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CandidateEnd {
    /// Its type.
    pub kind: CandidateKind,
    /// `ip:port` (empty when the library did not report it).
    pub address: String,
}

/// The candidate pair ICE selected: which way the media goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelectedPair {
    /// Our end.
    pub local: CandidateEnd,
    /// The peer's end.
    pub remote: CandidateEnd,
}

/// The link's selected pair, from its stats; `None` while ICE has selected
/// none.
///
/// webrtc-rs 0.21 files candidates under `RTCLocalIceCandidate_<id>` and
/// `RTCRemoteIceCandidate_<id>`, and the pair names `<id>`. The remote id it
/// names is not always the one it filed the candidate under (the agent parses
/// the remote SDP itself); then the only remote candidate is the one. With
/// several, or none filed (an answering link files none), the remote end is
/// [`CandidateKind::Unknown`].
pub(super) async fn selected_pair(pc: &Arc<dyn PeerConnection>) -> Option<SelectedPair> {
    let report = pc.get_stats(Instant::now(), StatsSelector::None).await;
    let pair_id = &report.transport()?.selected_candidate_pair_id;
    let Some(RTCStatsReportEntry::IceCandidatePair(pair)) = report.get(pair_id) else {
        return None;
    };
    let end = |c: &rtc::statistics::stats::ice_candidate::RTCIceCandidateStats| CandidateEnd {
        kind: c.candidate_type.into(),
        address: c
            .address
            .as_ref()
            .map(|a| format!("{a}:{}", c.port))
            .unwrap_or_default(),
    };
    let local = match report.get(&format!("RTCLocalIceCandidate_{}", pair.local_candidate_id)) {
        Some(RTCStatsReportEntry::LocalCandidate(c)) => end(c),
        _ => return None,
    };
    let remotes: Vec<_> = report
        .iter()
        .filter_map(|e| match e {
            RTCStatsReportEntry::RemoteCandidate(c) => Some(c),
            _ => None,
        })
        .collect();
    let named = format!("RTCRemoteIceCandidate_{}", pair.remote_candidate_id);
    let remote = match (report.get(&named), remotes.as_slice()) {
        (Some(RTCStatsReportEntry::RemoteCandidate(c)), _) => end(c),
        (_, [c]) => end(c),
        _ => CandidateEnd {
            kind: CandidateKind::Unknown,
            address: String::new(),
        },
    };
    Some(SelectedPair { local, remote })
}

/// The candidate type of an SDP `a=candidate:` line or a bare candidate
/// (`candidate:…`): the word after `typ` (RFC 8839 §5.1).
fn candidate_type(line: &str) -> Option<&str> {
    let mut words = line.split_ascii_whitespace();
    words.find(|w| *w == "typ")?;
    words.next()
}

/// Fails a relay-only link whose local SDP has no relay candidate: it can
/// never connect. The message names the servers tried (never credentials).
pub(super) fn check_relay(sdp: &str, policy: &IcePolicy) -> Result<(), LinkError> {
    if !policy.relay_only {
        return Ok(());
    }
    let relayed = sdp
        .lines()
        .filter(|l| l.starts_with("a=candidate:"))
        .any(|l| candidate_type(l) == Some("relay"));
    if relayed {
        return Ok(());
    }
    let tried: Vec<&str> = policy
        .servers
        .iter()
        .flat_map(|s| s.urls.iter())
        .filter(|u| u.starts_with("turn:"))
        .map(String::as_str)
        .collect();
    Err(LinkError::NoRelayCandidate(if tried.is_empty() {
        "relay-only, but no TURN server is configured".into()
    } else {
        format!(
            "relay-only, but no TURN server gave a relay (wrong credentials, or unreachable): {}",
            tried.join(", ")
        )
    }))
}

/// Fails a relay-only policy without a TURN server before any link is built
/// (webrtc-rs refuses to build one), with the error [`check_relay`] gives.
pub(super) fn check_servers(policy: &IcePolicy) -> Result<(), LinkError> {
    if policy.relay_only && !policy.servers.iter().any(IceServer::is_turn) {
        return Err(LinkError::NoRelayCandidate(
            "relay-only, but no TURN server is configured".into(),
        ));
    }
    Ok(())
}

/// Rewrites one candidate (`a=candidate:…` line or bare `candidate:…`): a
/// host candidate of `public`'s IP family names `public` instead, port kept
/// (a 1:1 NAT maps the whole host; on a wildcard bind the agent names each
/// interface's address). Anything else comes back unchanged.
pub fn advertise_candidate(candidate: &str, public: IpAddr) -> String {
    if candidate_type(candidate) != Some("host") {
        return candidate.to_owned();
    }
    // foundation component transport priority ADDRESS port typ host …
    let mut out = Vec::new();
    for (i, word) in candidate.split(' ').enumerate() {
        let same_family = word
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_ipv4() == public.is_ipv4());
        if i == 4 && same_family {
            out.push(public.to_string());
        } else {
            out.push(word.to_owned());
        }
    }
    out.join(" ")
}

/// [`advertise_candidate`] on every candidate line of an SDP.
pub fn advertise(sdp: &str, public: IpAddr) -> String {
    let mut out = String::with_capacity(sdp.len() + 32);
    for line in sdp.split_inclusive('\n') {
        match line.strip_prefix("a=") {
            Some(rest) if rest.starts_with("candidate:") => {
                let body = rest.trim_end_matches(['\r', '\n']);
                let ending = &rest[body.len()..];
                out.push_str("a=");
                out.push_str(&advertise_candidate(body, public));
                out.push_str(ending);
            }
            _ => out.push_str(line),
        }
    }
    out
}

#[cfg(test)]
mod test {
    use super::*;

    const SDP: &str = "v=0\r\n\
        m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n\
        a=candidate:1 1 udp 2130706431 10.0.0.5 50000 typ host\r\n\
        a=candidate:2 1 udp 16777215 192.0.2.9 61000 typ relay raddr 10.0.0.5 rport 50000\r\n\
        a=candidate:3 1 udp 2130706431 10.0.0.6 50001 typ host\r\n\
        a=candidate:4 1 udp 2130706431 fd00::6 50002 typ host\r\n\
        a=end-of-candidates\r\n";

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn host_candidates_name_the_public_address() {
        let out = advertise(SDP, ip("203.0.113.7"));
        assert!(out.contains("a=candidate:1 1 udp 2130706431 203.0.113.7 50000 typ host\r\n"));
        assert!(out.contains("a=candidate:3 1 udp 2130706431 203.0.113.7 50001 typ host\r\n"));
        // A relay (and its raddr) and another family's host are left alone.
        assert!(out.contains("192.0.2.9 61000 typ relay raddr 10.0.0.5 rport 50000\r\n"));
        assert!(out.contains("fd00::6 50002 typ host\r\n"));
        assert_eq!(out.len(), SDP.len() + 6, "only the two addresses changed");
        assert_eq!(
            advertise_candidate(
                "candidate:1 1 udp 2130706431 10.0.0.5 50000 typ host",
                ip("203.0.113.7")
            ),
            "candidate:1 1 udp 2130706431 203.0.113.7 50000 typ host"
        );
    }

    #[test]
    fn relay_only_needs_a_relay_candidate() {
        let mut policy = IcePolicy {
            relay_only: true,
            ..IcePolicy::default()
        };
        assert_eq!(check_relay(SDP, &policy).map_err(|e| e.to_string()), Ok(()));
        let no_relay = SDP.replace("typ relay", "typ srflx");
        let e = check_relay(&no_relay, &policy).expect_err("no relay");
        assert!(
            e.to_string().contains("no TURN server is configured"),
            "{e}"
        );
        policy.servers = vec![IceServer {
            urls: vec!["turn:127.0.0.1:3478".into()],
            username: "u".into(),
            credential: "secret".into(),
        }];
        let e = check_relay(&no_relay, &policy).expect_err("no relay");
        assert!(e.to_string().contains("turn:127.0.0.1:3478"), "{e}");
        assert!(!e.to_string().contains("secret"), "{e}");
        policy.relay_only = false;
        assert!(check_relay(&no_relay, &policy).is_ok());
    }
}
