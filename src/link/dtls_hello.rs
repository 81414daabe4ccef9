//! Keeps a DTLS server's handshake alive under loss: repeated ClientHellos
//! that would stop its retransmissions are not handed to it.
//!
//! rtc-dtls 0.21.1 cancels a side's flight retransmission timer whenever a
//! handshake record arrives that does not complete the next flight
//! (`DTLSConn::wait` clears `current_retransmit_timer` before parsing). A
//! server whose flight 4 (ServerHello … ServerHelloDone) was lost waits for
//! flight 5 and would resend flight 4 after 1 s; but the client, which never
//! got flight 4, resends its ClientHello every 1 s too, each copy arrives
//! just before the server's timer and cancels it, and the server never
//! resends: the client gives up after 8 s (`ErrInvalidFsmTransition`), the
//! link fails. Measured with `benches/impair.sh` at 5 % loss: 2 of 9
//! subscriber links never carried media (docs/PERFORMANCE.md §6).
//!
//! A server only needs the first copy of the ClientHello that carries its
//! cookie (message sequence ≥ 1): the flight it answers with has its own
//! retransmission timer. So a datagram holding nothing but ClientHellos the
//! server has already been given is dropped before it reaches the server;
//! the first ClientHello (message sequence 0, answered by a stateless
//! HelloVerifyRequest that is never retransmitted) always goes through.
//!
//! Sans-IO: the caller shows each inbound DTLS datagram to
//! [`ClientHelloFilter::admit`] before the DTLS server reads it.

/// DTLS record header: type, version, epoch, sequence number, length.
const RECORD_HEADER: usize = 13;
/// Content type of handshake records.
const HANDSHAKE: u8 = 22;
/// Handshake message type ClientHello.
const CLIENT_HELLO: u8 = 1;

/// See the module docs.
#[derive(Debug, Default, Clone)]
pub struct ClientHelloFilter {
    /// Highest message sequence of a cookie-carrying ClientHello admitted.
    admitted: Option<u16>,
    /// Datagrams dropped as repeats.
    dropped: u64,
}

impl ClientHelloFilter {
    /// Whether the DTLS server should read `datagram` (one UDP payload of
    /// DTLS records). Anything that does not parse as DTLS is admitted: the
    /// server judges it.
    pub fn admit(&mut self, datagram: &[u8]) -> bool {
        let Some(hellos) = client_hellos(datagram) else {
            return true;
        };
        let repeat = hellos
            .iter()
            .all(|&seq| seq >= 1 && self.admitted.is_some_and(|a| seq <= a));
        if repeat {
            self.dropped += 1;
            return false;
        }
        for seq in hellos.into_iter().filter(|&seq| seq >= 1) {
            self.admitted = Some(self.admitted.map_or(seq, |a| a.max(seq)));
        }
        true
    }

    /// Datagrams dropped as repeated ClientHellos.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

/// The message sequences of a datagram made only of epoch-0 ClientHello
/// handshake records; `None` if it holds anything else (or nothing).
fn client_hellos(mut datagram: &[u8]) -> Option<Vec<u16>> {
    let mut seqs = Vec::new();
    while !datagram.is_empty() {
        if datagram.len() < RECORD_HEADER + 6 {
            return None;
        }
        let epoch = u16::from_be_bytes([datagram[3], datagram[4]]);
        let length = usize::from(u16::from_be_bytes([datagram[11], datagram[12]]));
        let body = datagram.get(RECORD_HEADER..RECORD_HEADER + length)?;
        if datagram[0] != HANDSHAKE || epoch != 0 || body.len() < 6 || body[0] != CLIENT_HELLO {
            return None;
        }
        seqs.push(u16::from_be_bytes([body[4], body[5]]));
        datagram = &datagram[RECORD_HEADER + length..];
    }
    (!seqs.is_empty()).then_some(seqs)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One DTLS 1.2 record of `content` type at `epoch` with `body`.
    fn record(content: u8, epoch: u16, record_seq: u64, body: &[u8]) -> Vec<u8> {
        let mut r = vec![content, 0xfe, 0xfd];
        r.extend_from_slice(&epoch.to_be_bytes());
        r.extend_from_slice(&record_seq.to_be_bytes()[2..]);
        r.extend_from_slice(&(body.len() as u16).to_be_bytes());
        r.extend_from_slice(body);
        r
    }

    /// A handshake message body: type, length, message sequence, fragment.
    fn handshake(msg_type: u8, message_seq: u16) -> Vec<u8> {
        let payload = [0u8; 40];
        let mut h = vec![msg_type, 0, 0, payload.len() as u8];
        h.extend_from_slice(&message_seq.to_be_bytes());
        h.extend_from_slice(&[0, 0, 0, 0, 0, payload.len() as u8]);
        h.extend_from_slice(&payload);
        h
    }

    /// The stall this prevents: the cookie ClientHello is resent (a new
    /// record sequence number each time) because the server's answer was
    /// lost; only the first copy reaches the server.
    #[test]
    fn repeats_of_the_cookie_client_hello_are_dropped() {
        let mut f = ClientHelloFilter::default();
        let hello = |record_seq| record(HANDSHAKE, 0, record_seq, &handshake(CLIENT_HELLO, 1));
        assert!(f.admit(&hello(1)), "the first copy");
        assert!(!f.admit(&hello(2)), "a resend");
        assert!(!f.admit(&hello(3)), "another");
        assert_eq!(f.dropped(), 2);
    }

    /// The first ClientHello is answered statelessly (HelloVerifyRequest, no
    /// retransmission): its repeats must reach the server.
    #[test]
    fn the_first_client_hello_always_goes_through() {
        let mut f = ClientHelloFilter::default();
        for record_seq in 0..3 {
            assert!(f.admit(&record(
                HANDSHAKE,
                0,
                record_seq,
                &handshake(CLIENT_HELLO, 0)
            )));
        }
        assert_eq!(f.dropped(), 0);
    }

    /// Other handshake messages (the client's flight 5, whose repeat makes a
    /// finished server resend its last flight), other content, encrypted
    /// records, and what does not parse all go through.
    #[test]
    fn everything_else_goes_through() {
        let mut f = ClientHelloFilter::default();
        assert!(f.admit(&record(HANDSHAKE, 0, 1, &handshake(CLIENT_HELLO, 1))));
        let key_exchange = record(HANDSHAKE, 0, 2, &handshake(16, 2));
        assert!(f.admit(&key_exchange));
        assert!(f.admit(&key_exchange), "a repeated flight 5");
        assert!(f.admit(&record(20, 0, 3, &[1])), "ChangeCipherSpec");
        assert!(
            f.admit(&record(HANDSHAKE, 1, 0, &handshake(CLIENT_HELLO, 1))),
            "epoch 1"
        );
        assert!(f.admit(&[HANDSHAKE, 0xfe]), "truncated");
        assert!(f.admit(&[]), "empty");
        // A repeated hello in one datagram with something new: the new part counts.
        let mut mixed = record(HANDSHAKE, 0, 4, &handshake(CLIENT_HELLO, 1));
        mixed.extend(record(HANDSHAKE, 0, 5, &handshake(11, 2)));
        assert!(f.admit(&mixed));
        assert_eq!(f.dropped(), 0);
    }
}
