//! Issue 11 §4, seed 001 `setTurnServer`: media through a real TURN server,
//! and a server that advertises another address than the one it binds.
//!
//! * A relay-only publisher and subscriber send and receive through coturn
//!   (started here on loopback with its own config and credentials): both
//!   links' selected candidate pairs are relay ones, and coturn's log shows
//!   the allocations, permissions and the bytes it relayed.
//! * The room server hands its TURN servers out in `joined`; a relay-only
//!   client without servers of its own relays through them.
//! * Wrong TURN credentials: publish and subscribe fail within seconds with
//!   90100226 and the room carries on.
//! * The bot (`huddle bot --turn … --relay-only`) publishes through coturn,
//!   and stops with 90100226 on a wrong password.
//! * `public_ip`: the server binds the wildcard address, advertises
//!   127.0.0.1 in every candidate (ingress answer, egress offer), and media
//!   flows through that address.
//!
//! The coturn tests call `common::skip` without `turnserver` (Debian package
//! `coturn`; `.ci/setup.sh` installs it).
#![cfg(feature = "client")]

mod common;

use std::net::IpAddr;
use std::time::{Duration, Instant};

use common::coturn::{Coturn, TURN_PASSWORD, TURN_USER};
use common::*;
use huddle::client::{
    CandidateKind, Client, ClientError, ErrorCode, IceServer, RoomEvent, SubscribeOptions,
    TurnConfig,
};
use huddle::protocol::{Reply, Role, ServerMessage};
use huddle::server::ServerConfig;

fn relay_only(servers: Vec<IceServer>) -> TurnConfig {
    TurnConfig {
        servers,
        relay_only: true,
    }
}

/// A client with `turn` set, joined to `room`.
async fn join_with(server: &TestServer, room: &str, user: &str, turn: TurnConfig) -> Client {
    let client = Client::new();
    client.set_turn_server(turn).await.expect("set_turn_server");
    client
        .join(join_config(server, room, user, Role::Joiner))
        .await
        .expect("join");
    client
}

/// The stream id of the next `stream-added`.
async fn stream_added(client: &Client) -> huddle::protocol::StreamId {
    wait_event(
        client,
        Duration::from_secs(10),
        "stream-added",
        |e| match e {
            RoomEvent::StreamAdded(info) => Some(info.stream_id),
            _ => None,
        },
    )
    .await
}

/// Waits until `stream`'s link has a selected pair and returns it.
async fn selected(
    client: &Client,
    stream: huddle::protocol::StreamId,
) -> huddle::client::SelectedPair {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(pair) = client.selected_pair(stream).await.expect("selected_pair") {
            return pair;
        }
        assert!(
            Instant::now() < deadline,
            "no selected candidate pair within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until `remote` decoded `frames` frames.
async fn decoded(remote: &huddle::client::RemoteStream, frames: u64) {
    wait_for(
        Duration::from_secs(20),
        &format!("{frames} decoded frames"),
        || (remote.stats().frames_decoded >= frames).then_some(()),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_only_clients_send_and_receive_media_through_coturn() {
    let Some(coturn) = Coturn::start("relay_only_clients_send_and_receive_media_through_coturn")
    else {
        return;
    };
    let server = start_server().await;
    let turn = relay_only(vec![coturn.server(TURN_PASSWORD)]);
    let alice = join_with(&server, "turn-room", "alice", turn.clone()).await;
    let bob = join_with(&server, "turn-room", "bob", turn).await;
    let stream = alice.publish(synthetic(440.0)).await.expect("publish");
    assert_eq!(stream_added(&bob).await, stream);
    let remote = bob
        .subscribe(stream, SubscribeOptions::default())
        .await
        .expect("subscribe");
    decoded(&remote, 30).await;

    // Both ends relay: our end of the selected pair is coturn's relay
    // address (the only kind of candidate a relay-only link has).
    for (who, client) in [("publisher", &alice), ("subscriber", &bob)] {
        let pair = selected(client, stream).await;
        assert_eq!(pair.local.kind, CandidateKind::Relay, "{who}: {pair:?}");
        assert!(
            pair.local.address.starts_with("127.0.0.1:"),
            "{who}: {pair:?}"
        );
    }
    // coturn's side: two allocations for our user, permissions for the
    // SFU's address.
    let allocations = coturn.lines_with(&["ALLOCATE processed, success", TURN_USER]);
    assert!(
        allocations.len() >= 2,
        "allocations in coturn's log: {allocations:?}"
    );
    let permissions = coturn.lines_with(&["CREATE_PERMISSION processed, success"]);
    assert!(!permissions.is_empty(), "no permission in coturn's log");

    alice.leave().await.expect("leave");
    bob.leave().await.expect("leave");
    // At the end of each allocation coturn logs what it relayed to and from
    // the peer (the SFU). Media went through it: tens of kilobytes (about
    // 90 kB in all for the 2-3 s this test publishes; a few hundred bytes
    // if only ICE checks had gone that way).
    let relayed = wait_for(Duration::from_secs(10), "coturn's peer usage lines", || {
        let bytes: Vec<u64> = coturn
            .lines_with(&["peer usage:", TURN_USER])
            .iter()
            .filter_map(|l| usage(l, "rb=").zip(usage(l, "sb=")).map(|(r, s)| r + s))
            .collect();
        (bytes.len() >= 2).then_some(bytes)
    })
    .await;
    for bytes in &relayed {
        assert!(*bytes > 20_000, "coturn relayed only {relayed:?} bytes");
    }
}

/// The number after `key` in a coturn usage line (`rb=123,`).
fn usage(line: &str, key: &str) -> Option<u64> {
    let at = line.find(key)? + key.len();
    line[at..]
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_without_turn_servers_uses_the_ones_the_room_server_hands_out() {
    let Some(coturn) =
        Coturn::start("a_client_without_turn_servers_uses_the_ones_the_room_server_hands_out")
    else {
        return;
    };
    let mut config = ServerConfig::new(test_apps());
    config.ice_servers = vec![coturn.server(TURN_PASSWORD)];
    let server = start_server_with(config).await;

    // On the wire: `joined` carries them.
    let mut raw = RawSocket::connect(&server).await;
    match raw.join("handout-room", "raw").await {
        ServerMessage::Reply {
            reply: Reply::Joined { ice_servers, .. },
            ..
        } => assert_eq!(ice_servers, vec![coturn.server(TURN_PASSWORD)]),
        other => panic!("join refused: {other:?}"),
    }

    let (alice, _) = join(&server, "handout-room", "alice").await;
    let bob = join_with(&server, "handout-room", "bob", relay_only(Vec::new())).await;
    let stream = alice.publish(synthetic(440.0)).await.expect("publish");
    assert_eq!(stream_added(&bob).await, stream);
    let remote = bob
        .subscribe(stream, SubscribeOptions::default())
        .await
        .expect("subscribe");
    decoded(&remote, 15).await;
    let pair = selected(&bob, stream).await;
    assert_eq!(pair.local.kind, CandidateKind::Relay, "{pair:?}");
    // Alice has no relay-only policy: she may go direct, but she too was
    // given the TURN server, so coturn saw both.
    assert!(
        !coturn
            .lines_with(&["ALLOCATE processed, success"])
            .is_empty()
    );
    alice.leave().await.expect("leave");
    bob.leave().await.expect("leave");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_turn_credentials_fail_fast_with_a_code_and_the_room_carries_on() {
    let Some(coturn) =
        Coturn::start("wrong_turn_credentials_fail_fast_with_a_code_and_the_room_carries_on")
    else {
        return;
    };
    let server = start_server().await;
    let (alice, _) = join(&server, "wrong-turn", "alice").await;
    let mallory = join_with(
        &server,
        "wrong-turn",
        "mallory",
        relay_only(vec![coturn.server("not-the-password")]),
    )
    .await;

    // Publishing: refused within seconds, nothing announced.
    let started = Instant::now();
    let err = mallory
        .publish(synthetic(440.0))
        .await
        .expect_err("a relay-only publish without a relay");
    let took = started.elapsed();
    assert!(matches!(err, ClientError::NoRelay(_)), "{err:?}");
    assert_eq!(err.code(), ErrorCode::SubscribedUserConnectError);
    assert!(err.to_string().contains(&coturn.url()), "{err}");
    assert!(!err.to_string().contains("not-the-password"), "{err}");
    eprintln!("wrong TURN password: publish refused after {took:?}");
    assert!(took < Duration::from_secs(5), "took {took:?}");
    // coturn refused the credentials (401), it was not a timeout.
    assert!(
        !coturn.lines_with(&["401"]).is_empty(),
        "coturn's log shows no 401:\n{}",
        coturn.log()
    );

    // Subscribing: the same, and the server's leg is dropped again, so a
    // working subscriber is not disturbed.
    let stream = alice.publish(synthetic(440.0)).await.expect("publish");
    assert_eq!(stream_added(&mallory).await, stream);
    let started = Instant::now();
    let Err(err) = mallory.subscribe(stream, SubscribeOptions::default()).await else {
        panic!("a relay-only subscribe without a relay succeeded");
    };
    assert_eq!(err.code(), ErrorCode::SubscribedUserConnectError, "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(5));

    let (bob, _) = join(&server, "wrong-turn", "bob").await;
    let remote = bob
        .subscribe(stream, SubscribeOptions::default())
        .await
        .expect("subscribe");
    decoded(&remote, 15).await;
    // Mallory is still in the room and answering.
    mallory.change_user_name("still here").await.expect("alive");
    for c in [alice, bob, mallory] {
        c.leave().await.expect("leave");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_turn_configurations_are_refused_with_codes() {
    let server = start_server().await;
    let client = Client::new();
    for bad in [
        TurnConfig {
            servers: vec![IceServer {
                urls: vec!["turn:127.0.0.1:3478".into()],
                ..IceServer::default()
            }],
            relay_only: false,
        },
        TurnConfig {
            servers: vec![IceServer {
                urls: vec!["turns:127.0.0.1:5349".into()],
                username: "u".into(),
                credential: "p".into(),
            }],
            relay_only: false,
        },
        relay_only(vec![IceServer {
            urls: vec!["stun:127.0.0.1:3478".into()],
            ..IceServer::default()
        }]),
    ] {
        let err = client.set_turn_server(bad.clone()).await.expect_err("bad");
        assert_eq!(err.code(), ErrorCode::InvalidParameter, "{bad:?}: {err:?}");
    }
    // Relay-only without any TURN server: joins, but links fail at once.
    client
        .set_turn_server(relay_only(Vec::new()))
        .await
        .expect("relay-only, servers left to the room server");
    client
        .join(join_config(&server, "bad-turn", "carol", Role::Joiner))
        .await
        .expect("join");
    let err = client
        .publish(synthetic(440.0))
        .await
        .expect_err("no relay");
    assert!(err.to_string().contains("no TURN server"), "{err}");
    assert_eq!(err.code(), ErrorCode::SubscribedUserConnectError, "{err:?}");
    // While joined it cannot change.
    let err = client
        .set_turn_server(TurnConfig::default())
        .await
        .expect_err("joined");
    assert_eq!(err.code(), ErrorCode::InvalidOperation);
    client.leave().await.expect("leave");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_advertised_public_address_is_in_every_candidate_and_carries_media() {
    let advertised: IpAddr = [127, 0, 0, 1].into();
    let mut config = ServerConfig::new(test_apps());
    // Bound to every address, reachable at 127.0.0.1: the wildcard address
    // itself can never be a candidate, so media flows only if the
    // advertised address replaced it.
    config.rtc_ip = [0, 0, 0, 0].into();
    config.public_ip = Some(advertised);
    let server = start_server_with(config).await;

    let (alice, _) = join(&server, "nat-room", "alice").await;
    let (bob, _) = join(&server, "nat-room", "bob").await;
    let stream = alice.publish(synthetic(440.0)).await.expect("publish");
    assert_eq!(stream_added(&bob).await, stream);
    let remote = bob
        .subscribe(stream, SubscribeOptions::default())
        .await
        .expect("subscribe");
    decoded(&remote, 15).await;
    // The publisher's link files the server's candidates in its stats (an
    // answering link, the subscriber's, files none).
    let pair = selected(&alice, stream).await;
    assert!(
        pair.remote.address.starts_with("127.0.0.1:"),
        "the publisher sends to {pair:?}"
    );

    // The SDPs themselves: the ingress answer and the egress offer name
    // only the advertised address.
    let mut raw = RawSocket::connect(&server).await;
    raw.joined("nat-room", "carol").await;
    let (link, offer) = publish_offer(true, false).await;
    raw.send(&format!(
        r#"{{"id":2,"type":"publish","audio":true,"video":null,"sdp":{}}}"#,
        json_string(&offer)
    ))
    .await;
    let answer = raw
        .recv_until(Duration::from_secs(10), "published", |m| match m {
            ServerMessage::Reply {
                reply: Reply::Published { sdp, .. },
                ..
            } => Some(sdp.clone()),
            ServerMessage::Error(e) => panic!("publish refused: {e:?}"),
            _ => None,
        })
        .await;
    let (_, egress_offer) = raw.subscribe_offer(3, stream).await;
    for (what, sdp) in [("ingress answer", &answer), ("egress offer", &egress_offer)] {
        let candidates: Vec<&str> = sdp
            .lines()
            .filter(|l| l.starts_with("a=candidate:"))
            .collect();
        assert!(!candidates.is_empty(), "{what} has no candidate:\n{sdp}");
        for c in &candidates {
            assert!(c.contains(" 127.0.0.1 "), "{what}: {c}");
            assert!(!c.contains("0.0.0.0"), "{what}: {c}");
        }
    }
    link.close().await;
    alice.leave().await.expect("leave");
    bob.leave().await.expect("leave");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_only_bot_publishes_through_coturn_and_stops_on_a_wrong_password() {
    let Some(coturn) =
        Coturn::start("a_relay_only_bot_publishes_through_coturn_and_stops_on_a_wrong_password")
    else {
        return;
    };
    let server = start_server().await;
    // `huddle bot --turn … --relay-only`, as the CLI builds it.
    let bot = huddle::bot::BotConfig {
        turn: relay_only(vec![coturn.server(TURN_PASSWORD)]),
        ..publishing_bot(&server.url, "bot-room", "relay-bot", "360p_2", 440.0)
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(huddle::bot::run(bot.clone(), async {
        stopped.await.ok(); // a dropped sender also stops it
    }));
    let (viewer, info) = join(&server, "bot-room", "viewer").await;
    let stream = match info.streams.first() {
        Some(s) => s.stream_id,
        None => stream_added(&viewer).await,
    };
    let remote = viewer
        .subscribe(stream, SubscribeOptions::default())
        .await
        .expect("subscribe");
    decoded(&remote, 15).await;
    let allocations = coturn.lines_with(&["ALLOCATE processed, success", TURN_USER]);
    assert!(!allocations.is_empty(), "the bot allocated no relay");
    stop.send(()).ok(); // the bot may have ended already: the join below says
    running.await.expect("bot task").expect("the bot ran");

    let started = Instant::now();
    let wrong = huddle::bot::BotConfig {
        turn: relay_only(vec![coturn.server("wrong")]),
        user_id: "wrong-bot".into(),
        ..bot
    };
    let Err(err) = huddle::bot::run(wrong, std::future::pending()).await else {
        panic!("a relay-only bot without a relay ran");
    };
    assert_eq!(err.code(), ErrorCode::SubscribedUserConnectError, "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    viewer.leave().await.expect("leave");
}
