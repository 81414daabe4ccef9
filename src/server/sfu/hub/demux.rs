//! Which leg an inbound datagram belongs to, on a socket all legs share.
//!
//! Datagrams are told apart by their first byte (RFC 7983 §7): STUN 0–3,
//! DTLS 20–63, RTP/RTCP 128–191. An address is *bound* to a leg (everything
//! from it goes to that leg) only once ICE has verified it: it is the remote
//! end of the leg's selected candidate pair. Before that:
//!
//! * a STUN binding request is routed by the ICE ufrag in its USERNAME
//!   (`ours:theirs`, RFC 8445 §7.2.2); the core checks its integrity with
//!   the password, which only the subscriber has;
//! * a STUN message from an address the leg's core sent checks to (the
//!   answers to our own checks) goes to that leg;
//! * anything else (DTLS, SRTCP) from such an address is [`Route::Unverified`]:
//!   the hub delivers it only if the leg's ICE has selected that address by
//!   now, and binds it then.
//!
//! So a third party that learns a leg's ufrag or address cannot get DTLS or
//! RTCP into it, nor steer its media elsewhere.

use std::collections::HashMap;
use std::net::SocketAddr;

use super::LegId;

/// What kind of datagram this is (RFC 7983 §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// STUN (ICE connectivity checks and their answers).
    Stun,
    /// DTLS (the handshake; then alerts).
    Dtls,
    /// RTP or RTCP (SRTP/SRTCP).
    Rtp,
    /// Anything else: nothing of ours.
    Other,
}

/// Classifies a datagram by its first byte.
pub fn classify(datagram: &[u8]) -> Kind {
    match datagram.first() {
        Some(0..=3) => Kind::Stun,
        Some(20..=63) => Kind::Dtls,
        Some(128..=191) => Kind::Rtp,
        _ => Kind::Other,
    }
}

/// Where a datagram goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// To this leg.
    Leg(LegId),
    /// Not STUN, from an address this leg sent checks to but ICE has not
    /// (yet) been seen to select: the hub asks the leg's ICE.
    Unverified(LegId),
    /// To no leg: dropped.
    Nowhere,
}

/// The routing tables of the hub's socket.
#[derive(Default)]
pub struct Routes {
    by_ufrag: HashMap<String, LegId>,
    /// Addresses a leg's core sent STUN to: their STUN answers go to it.
    checks: HashMap<SocketAddr, LegId>,
    /// ICE-verified addresses: each the remote end of a leg's selected pair.
    verified: HashMap<SocketAddr, LegId>,
}

impl Routes {
    /// A new leg with local ICE ufrag `ufrag`.
    pub fn add_leg(&mut self, id: LegId, ufrag: String) {
        self.by_ufrag.insert(ufrag, id);
    }

    /// The leg's core sent `datagram` to `to`.
    pub fn sent(&mut self, id: LegId, to: SocketAddr, datagram: &[u8]) {
        if classify(datagram) == Kind::Stun {
            self.checks.entry(to).or_insert(id);
        }
    }

    /// ICE selected `addr` as the remote end of the leg's pair: bind it.
    pub fn verify(&mut self, id: LegId, addr: SocketAddr) {
        self.verified.insert(addr, id);
    }

    /// Where `datagram` from `from` goes.
    pub fn route(&self, from: SocketAddr, datagram: &[u8]) -> Route {
        if let Some(&id) = self.verified.get(&from) {
            return Route::Leg(id);
        }
        match classify(datagram) {
            Kind::Stun => stun_local_ufrag(datagram)
                .and_then(|ufrag| self.by_ufrag.get(ufrag))
                .or_else(|| self.checks.get(&from))
                .map_or(Route::Nowhere, |&id| Route::Leg(id)),
            Kind::Dtls | Kind::Rtp => self
                .checks
                .get(&from)
                .map_or(Route::Nowhere, |&id| Route::Unverified(id)),
            Kind::Other => Route::Nowhere,
        }
    }

    /// Removes every route to leg `id`.
    pub fn forget(&mut self, id: LegId) {
        self.by_ufrag.retain(|_, leg| *leg != id);
        self.checks.retain(|_, leg| *leg != id);
        self.verified.retain(|_, leg| *leg != id);
    }

    /// Routes held in all (for leak tests).
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.by_ufrag.len() + self.checks.len() + self.verified.len()
    }
}

/// The ICE ufrag of the receiver (us) in a STUN binding request's USERNAME
/// (`ours:theirs`, RFC 8445 §7.2.2), if `datagram` is one.
pub fn stun_local_ufrag(datagram: &[u8]) -> Option<&str> {
    const MAGIC_COOKIE: [u8; 4] = [0x21, 0x12, 0xA4, 0x42];
    const USERNAME: u16 = 0x0006;
    if datagram.len() < 20 || datagram[0] & 0xC0 != 0 || datagram.get(4..8)? != MAGIC_COOKIE {
        return None;
    }
    let mut at = 20;
    while let Some(head) = datagram.get(at..at + 4) {
        let kind = u16::from_be_bytes([head[0], head[1]]);
        let len = usize::from(u16::from_be_bytes([head[2], head[3]]));
        let value = datagram.get(at + 4..at + 4 + len)?;
        if kind == USERNAME {
            return std::str::from_utf8(value).ok()?.split(':').next();
        }
        at += 4 + len.div_ceil(4) * 4;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding_request(username: &[u8]) -> Vec<u8> {
        let mut d = vec![0x00, 0x01, 0, 0, 0x21, 0x12, 0xA4, 0x42];
        d.extend_from_slice(&[7; 12]); // transaction id
        // A PRIORITY attribute first, then USERNAME (odd length: padded).
        d.extend_from_slice(&[0x00, 0x24, 0x00, 0x04, 1, 2, 3, 4]);
        d.extend_from_slice(&[0x00, 0x06, 0x00, username.len() as u8]);
        d.extend_from_slice(username);
        while d.len() % 4 != 0 {
            d.push(0);
        }
        let len = (d.len() - 20) as u16;
        d[2..4].copy_from_slice(&len.to_be_bytes());
        d
    }

    /// A STUN success response (no USERNAME).
    fn binding_response() -> Vec<u8> {
        let mut d = vec![0x01, 0x01, 0, 0, 0x21, 0x12, 0xA4, 0x42];
        d.extend_from_slice(&[9; 12]);
        d
    }

    const DTLS: [u8; 13] = [22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    const SRTCP: [u8; 8] = [0x81, 200, 0, 6, 0, 0, 0, 1];

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn finds_our_ufrag_in_a_binding_request() {
        assert_eq!(
            stun_local_ufrag(&binding_request(b"ours:theirs1")),
            Some("ours")
        );
        assert_eq!(stun_local_ufrag(&binding_request(b"abc:d")), Some("abc"));
    }

    #[test]
    fn ignores_what_is_not_stun() {
        assert_eq!(stun_local_ufrag(&[0x80; 40]), None); // RTP/SRTP
        assert_eq!(stun_local_ufrag(&[22; 40]), None); // DTLS
        assert_eq!(stun_local_ufrag(&[0, 1, 0, 0]), None); // truncated
        let mut truncated = binding_request(b"ours:theirs");
        truncated.truncate(30);
        assert_eq!(stun_local_ufrag(&truncated), None);
    }

    #[test]
    fn classifies_by_first_byte() {
        assert_eq!(classify(&binding_request(b"a:b")), Kind::Stun);
        assert_eq!(classify(&DTLS), Kind::Dtls);
        assert_eq!(classify(&SRTCP), Kind::Rtp);
        assert_eq!(classify(&[70, 1]), Kind::Other);
        assert_eq!(classify(&[]), Kind::Other);
    }

    /// Knowing a leg's ufrag gets a STUN request to its ICE (which checks
    /// the password), never DTLS or RTCP into it: the address is not bound.
    #[test]
    fn a_binding_request_does_not_bind_its_address() {
        let mut routes = Routes::default();
        routes.add_leg(1, "ours".into());
        let stranger = addr(4000);
        assert_eq!(
            routes.route(stranger, &binding_request(b"ours:x")),
            Route::Leg(1)
        );
        assert_eq!(routes.route(stranger, &DTLS), Route::Nowhere);
        assert_eq!(routes.route(stranger, &SRTCP), Route::Nowhere);
        assert_eq!(
            routes.route(stranger, &binding_request(b"other:x")),
            Route::Nowhere
        );
    }

    /// An address our checks went to gets its STUN answers routed; its DTLS
    /// waits for ICE's verdict; once verified, everything from it is routed.
    #[test]
    fn an_address_is_bound_only_once_verified() {
        let mut routes = Routes::default();
        routes.add_leg(1, "ours".into());
        let peer = addr(5000);
        routes.sent(1, peer, &binding_request(b"theirs:ours"));
        routes.sent(1, addr(5001), &DTLS); // not a check: no route
        assert_eq!(routes.route(peer, &binding_response()), Route::Leg(1));
        assert_eq!(routes.route(peer, &DTLS), Route::Unverified(1));
        assert_eq!(routes.route(addr(5001), &DTLS), Route::Nowhere);
        routes.verify(1, peer);
        assert_eq!(routes.route(peer, &DTLS), Route::Leg(1));
        assert_eq!(routes.route(peer, &SRTCP), Route::Leg(1));
    }

    #[test]
    fn forgetting_a_leg_removes_all_its_routes() {
        let mut routes = Routes::default();
        routes.add_leg(1, "one".into());
        routes.add_leg(2, "two".into());
        routes.sent(1, addr(1), &binding_request(b"x:one"));
        routes.verify(1, addr(2));
        routes.sent(2, addr(3), &binding_request(b"x:two"));
        routes.forget(1);
        assert_eq!(routes.len(), 2, "leg 2's ufrag and check address remain");
        assert_eq!(routes.route(addr(2), &SRTCP), Route::Nowhere);
        assert_eq!(routes.route(addr(3), &binding_response()), Route::Leg(2));
    }
}
