use std::sync::Arc;

use rtc::dtls::config::{ConfigBuilder, HandshakeConfig};
use rtc::dtls::crypto::Certificate;
use rtc::dtls::endpoint::{Endpoint, EndpointEvent};
use rtc::shared::TransportProtocol;

use super::*;

fn client_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 40001))
}

fn server_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 40002))
}

/// A DTLS 1.2 handshake record (epoch 0) holding a handshake message of `msg_type`.
fn handshake_datagram(msg_type: u8) -> Vec<u8> {
    let mut d = vec![22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 1, 0, 12];
    d.extend_from_slice(&[msg_type, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    d
}

#[test]
fn a_flight_is_replayed_after_a_silence_and_only_while_the_handshake_runs() {
    let t0 = Instant::now();
    let to = client_addr();
    let mut r = DtlsReplay::default();
    assert_eq!(r.next_due(), None, "nothing sent, nothing to replay");
    r.on_send(t0, to, BytesMut::from(&[0x00, 0x01, 0, 0][..])); // STUN: not DTLS
    r.on_send(t0, to, BytesMut::from(&[0x80; 40][..])); // RTP: not DTLS
    assert_eq!(r.next_due(), None);

    // One flight of two datagrams.
    r.on_send(t0, to, BytesMut::from(&handshake_datagram(2)[..]));
    r.on_send(
        t0 + Duration::from_millis(1),
        to,
        BytesMut::from(&handshake_datagram(11)[..]),
    );
    assert_eq!(
        r.next_due(),
        Some(t0 + Duration::from_millis(1) + REPLAY_AFTER)
    );
    assert!(
        r.poll(t0 + Duration::from_millis(1000)).is_empty(),
        "not yet"
    );
    let replay = r.poll(t0 + Duration::from_millis(1501));
    assert_eq!(replay.len(), 2, "the whole flight");
    assert_eq!(
        &replay[0].1[..],
        &handshake_datagram(2)[..],
        "byte for byte"
    );
    assert_eq!(replay[0].0, to);
    assert!(
        r.poll(t0 + Duration::from_millis(1600)).is_empty(),
        "silence again first"
    );

    // The library's retransmission of the flight (new record sequence
    // number, same shape) goes out as the datagram first sent.
    let mut again = handshake_datagram(11);
    again[10] = 9; // record sequence number
    let sent = r.on_send(
        t0 + Duration::from_millis(1700),
        to,
        BytesMut::from(&again[..]),
    );
    assert_eq!(&sent[..], &handshake_datagram(11)[..], "the original");
    assert_eq!(r.substituted(), 1);
    assert_eq!(
        r.next_due(),
        Some(t0 + Duration::from_millis(1700) + REPLAY_AFTER),
        "activity"
    );

    // A later send starts a new flight and restarts the clock and the count.
    let t1 = t0 + Duration::from_secs(2);
    r.on_send(t1, to, BytesMut::from(&handshake_datagram(16)[..]));
    assert_eq!(r.next_due(), Some(t1 + REPLAY_AFTER));
    let mut at = t1;
    for _ in 0..MAX_REPLAYS {
        at += REPLAY_AFTER;
        assert_eq!(r.poll(at).len(), 1);
    }
    assert_eq!(r.next_due(), None, "at most MAX_REPLAYS per flight");
    assert!(r.poll(at + Duration::from_secs(60)).is_empty());
    assert_eq!(r.replayed(), 2 + u64::from(MAX_REPLAYS));

    // Connected: never again, whatever is sent.
    r.on_send(at, to, BytesMut::from(&handshake_datagram(20)[..]));
    r.finish();
    r.on_send(at, to, BytesMut::from(&handshake_datagram(20)[..]));
    assert_eq!(r.next_due(), None);
    assert!(r.poll(at + Duration::from_secs(60)).is_empty());
}

fn config(is_client: bool) -> Arc<HandshakeConfig> {
    let provider = rtc::crypto::default_provider().expect("a crypto provider");
    let mut builder = ConfigBuilder::default()
        .with_crypto_provider(provider.clone())
        .with_insecure_skip_verify(true);
    if !is_client {
        builder = builder.with_certificates(vec![
            Certificate::generate_self_signed(vec!["huddle".to_owned()], provider.crypto())
                .expect("a certificate"),
        ]);
    }
    Arc::new(builder.build(is_client, None).expect("a DTLS config"))
}

/// Whether `datagram` holds a plaintext handshake message of `msg_type`.
fn carries(datagram: &[u8], msg_type: u8) -> bool {
    shape(datagram).is_some_and(|s| s.iter().any(|r| r.2.is_some_and(|h| h.0 == msg_type)))
}

/// ServerHello: flight 4's first message.
const SERVER_HELLO: u8 = 2;
/// ClientKeyExchange: in flight 5 (the client has no certificate here).
const CLIENT_KEY_EXCHANGE: u8 = 16;

/// Which flight the network loses (its first transmission, every datagram).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Lose {
    /// The server's flight 4; the client's repeated ClientHello then
    /// reaches the server just before the server's own timer.
    ServerFlight4,
    /// The client's flight 5; the server's retransmitted flight 4 then
    /// reaches the client just before the client's own timer.
    ClientFlight5,
}

/// How one simulated handshake ended.
#[derive(Debug)]
struct Outcome {
    client_complete: bool,
    server_complete: bool,
    /// The client gave up (its retransmissions spent).
    client_failed: bool,
    /// The server gave up.
    server_failed: bool,
    /// Datagrams the losing side's library sent after its flight was lost.
    loser_sent_after_loss: usize,
    replayed: u64,
    substituted: u64,
}

/// A client and a server (the hub's role) handshake over a link that loses
/// one flight, in simulated time (10 ms steps, no delay). Both sides' 1 s
/// timers fall on the same step after the loss; the side whose flight was
/// not lost runs first (its retransmission reaches the other side just
/// before that side's timer would fire: the order a link with any delay
/// gives, as the other side armed its timer a one-way delay later).
/// `replay` puts a [`DtlsReplay`] on the server's sends.
fn handshake_losing(lose: Lose, replay: bool) -> Outcome {
    let t0 = Instant::now();
    let mut client = Endpoint::new(client_addr(), TransportProtocol::UDP, None);
    let mut server = Endpoint::new(server_addr(), TransportProtocol::UDP, Some(config(false)));
    client
        .connect(t0, server_addr(), config(true), None)
        .expect("client starts");
    let mut helper = replay.then(DtlsReplay::default);
    let mut lost_at: Option<Instant> = None;
    let mut out = Outcome {
        client_complete: false,
        server_complete: false,
        client_failed: false,
        server_failed: false,
        loser_sent_after_loss: 0,
        replayed: 0,
        substituted: 0,
    };
    for step in 0..2000u32 {
        let now = t0 + Duration::from_millis(10) * step;
        for side in [0, 1] {
            // ServerFlight4: the client (0) runs first; ClientFlight5: the server.
            let client_turn = (side == 0) == (lose == Lose::ServerFlight4);
            if client_turn {
                if client
                    .poll_timeout(&server_addr())
                    .is_some_and(|t| t <= now)
                    && client.handle_timeout(server_addr(), now).is_err()
                {
                    out.client_failed = true;
                }
                while let Some(t) = client.poll_transmit() {
                    if lose == Lose::ClientFlight5 {
                        if lost_at.is_some_and(|l| l < now) {
                            out.loser_sent_after_loss += 1;
                        }
                        if lost_at.is_none() && carries(&t.message, CLIENT_KEY_EXCHANGE) {
                            lost_at = Some(now);
                        }
                        if lost_at == Some(now) {
                            continue; // lost
                        }
                    }
                    if let Ok(events) = server.read(now, client_addr(), None, t.message)
                        && events
                            .iter()
                            .any(|e| matches!(e, EndpointEvent::HandshakeComplete))
                    {
                        out.server_complete = true;
                        if let Some(h) = helper.as_mut() {
                            h.finish(); // the hub: the leg is connected
                        }
                    }
                }
            } else {
                if server
                    .poll_timeout(&client_addr())
                    .is_some_and(|t| t <= now)
                    && server.handle_timeout(client_addr(), now).is_err()
                {
                    out.server_failed = true;
                }
                let mut to_client = Vec::new();
                while let Some(t) = server.poll_transmit() {
                    let message = match helper.as_mut() {
                        Some(h) => h.on_send(now, client_addr(), t.message),
                        None => t.message,
                    };
                    if lose == Lose::ServerFlight4 {
                        if lost_at.is_some_and(|l| l < now) {
                            out.loser_sent_after_loss += 1;
                        }
                        if lost_at.is_none() && carries(&message, SERVER_HELLO) {
                            lost_at = Some(now);
                        }
                        if lost_at == Some(now) {
                            continue; // lost
                        }
                    }
                    to_client.push(message);
                }
                if let Some(h) = helper.as_mut() {
                    to_client.extend(h.poll(now).into_iter().map(|(_, d)| d));
                }
                for datagram in to_client {
                    if let Ok(events) = client.read(now, server_addr(), None, datagram)
                        && events
                            .iter()
                            .any(|e| matches!(e, EndpointEvent::HandshakeComplete))
                    {
                        out.client_complete = true;
                    }
                }
            }
        }
        if out.client_complete && out.server_complete || out.client_failed || out.server_failed {
            break;
        }
    }
    if let Some(h) = helper {
        out.replayed = h.replayed();
        out.substituted = h.substituted();
    }
    assert!(lost_at.is_some(), "the flight to lose was sent: {out:?}");
    out
}

/// The first stall, in the library as pinned: with flight 4 lost, the
/// server's library never sends again and the client gives up. If this starts
/// failing, rtc-dtls keeps its timer now and the replay may be unnecessary.
#[test]
fn without_help_a_lost_flight_4_stalls_the_handshake() {
    let out = handshake_losing(Lose::ServerFlight4, false);
    assert!(
        !out.client_complete && !out.server_complete,
        "the handshake stalls: {out:?}"
    );
    assert!(out.client_failed, "the client gives up: {out:?}");
    assert_eq!(
        out.loser_sent_after_loss, 0,
        "the server's retransmission timer was cleared: {out:?}"
    );
}

/// The fix for it: the server replays flight 4 after a silence and both
/// sides complete.
#[test]
fn with_replay_a_lost_flight_4_is_recovered() {
    let out = handshake_losing(Lose::ServerFlight4, true);
    assert!(
        out.client_complete && out.server_complete,
        "the handshake completes: {out:?}"
    );
    assert!(out.replayed >= 1, "flight 4 was replayed: {out:?}");
}

/// The mirror stall (seen in a `benches/impair.sh` run at 5 % loss: the
/// server resent flight 4 eight times and failed): with the client's flight 5
/// lost, the server's retransmitted flight 4 (new record sequence numbers)
/// clears the client's timer, and the client never resends flight 5.
#[test]
fn without_help_a_lost_flight_5_stalls_the_handshake() {
    let out = handshake_losing(Lose::ClientFlight5, false);
    assert!(
        !out.client_complete && !out.server_complete,
        "the handshake stalls: {out:?}"
    );
    assert!(out.server_failed, "the server gives up: {out:?}");
    assert_eq!(
        out.loser_sent_after_loss, 0,
        "the client's retransmission timer was cleared: {out:?}"
    );
}

/// The fix for it: the server's retransmissions of flight 4 go out as first
/// sent, the client drops them as duplicates (its replay window) without
/// touching its timer, resends flight 5, and both complete.
#[test]
fn with_originals_a_lost_flight_5_is_recovered() {
    let out = handshake_losing(Lose::ClientFlight5, true);
    assert!(
        out.client_complete && out.server_complete,
        "the handshake completes: {out:?}"
    );
    assert!(
        out.substituted >= 1,
        "a retransmission went out as first sent: {out:?}"
    );
}
