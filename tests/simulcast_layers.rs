//! Simulcast layers (issue 10 §2, seed 001 dual stream): a publisher sends
//! two encodings of its test pattern; a subscriber switches between them and
//! keeps decoding one continuous stream (stamped frame numbers increasing, no
//! decoder error) whose picture size follows the layer. Bad layer requests get
//! their numbered errors and change nothing.
#![cfg(feature = "client")]

mod common;

use std::time::Duration;

use common::*;
use huddle::client::{RemoteStream, SubscribeOptions};
use huddle::media::VideoProfile;
use huddle::protocol::{ErrorCode, LayerChoice, ServerMessage};

/// 480x360 (360p_2) on top, 240x180 (180p_2) below: the stamp's cells scale
/// with the width, so both layers' pictures carry readable frame numbers.
fn layered() -> huddle::client::LocalStream {
    let lower = *VideoProfile::by_name("180p_2").expect("a seed profile");
    synthetic(440.0).with_lower_resolutions(vec![lower])
}

/// Waits until `remote` decodes pictures of `size` and a few more after.
async fn decodes_size(remote: &RemoteStream, size: (u32, u32), what: &str) -> u64 {
    let first = wait_for(Duration::from_secs(15), what, || {
        let s = remote.stats();
        (s.last_size == Some(size)).then_some(s.frames_decoded)
    })
    .await;
    wait_for(Duration::from_secs(10), what, || {
        let s = remote.stats();
        (s.last_size == Some(size) && s.frames_decoded >= first + 10).then_some(s.frames_decoded)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switching_layers_keeps_one_continuous_stream() {
    let server = start_server().await;
    let (publisher, _) = join(&server, "room-simulcast", "pub").await;
    let stream_id = publisher.publish(layered()).await.expect("publish");
    let (subscriber, info) = join(&server, "room-simulcast", "sub").await;
    let listed = &info.streams[0].resolutions;
    let ids: Vec<_> = listed.iter().map(|r| r.resolution_id.as_str()).collect();
    assert_eq!(ids, ["360p_2", "180p_2"], "StreamInfo lists the layers");
    assert_eq!((listed[1].width, listed[1].height), (240, 180));

    let remote = subscriber
        .subscribe(stream_id, SubscribeOptions::default())
        .await
        .expect("subscribe");
    decodes_size(&remote, (480, 360), "the top layer by default").await;
    // P-frames forwarded before the subscription's first keyframe may fail
    // to decode; from here on nothing may.
    let dropped_at_start = remote.stats().frames_dropped;
    for (choice, size) in [
        ("180p_2", (240, 180)),
        ("360p_2", (480, 360)),
        ("180p_2", (240, 180)),
        ("360p_2", (480, 360)),
    ] {
        let before = remote.stats().last_frame_no.expect("stamped frames");
        subscriber
            .set_resolution(stream_id, LayerChoice::Fixed(choice.into()))
            .await
            .expect("switch");
        decodes_size(&remote, size, choice).await;
        let s = remote.stats();
        assert!(
            s.last_frame_no.expect("stamped frames") > before,
            "frame numbers go on after switching to {choice}"
        );
        assert_eq!(s.out_of_order_frames, 0, "no frame number went back: {s:?}");
        assert_eq!(
            s.frames_dropped, dropped_at_start,
            "no decoder error, no lost frame: {s:?}"
        );
    }

    // The publisher stops the lower layer: the subscriber on it moves up,
    // and the layer can be sent again.
    subscriber
        .set_resolution(stream_id, LayerChoice::Fixed("180p_2".into()))
        .await
        .expect("switch");
    decodes_size(&remote, (240, 180), "the lower layer again").await;
    publisher
        .remove_resolution(stream_id, "180p_2")
        .await
        .expect("remove");
    decodes_size(
        &remote,
        (480, 360),
        "the top layer once the lower one is gone",
    )
    .await;
    let err = subscriber
        .set_resolution(stream_id, LayerChoice::Fixed("180p_2".into()))
        .await
        .expect_err("a removed layer cannot be chosen");
    assert_eq!(err.code(), ErrorCode::UnknownResolution);
    publisher
        .add_resolution(stream_id, "180p_2")
        .await
        .expect("add back");
    subscriber
        .set_resolution(stream_id, LayerChoice::Fixed("180p_2".into()))
        .await
        .expect("switch");
    decodes_size(&remote, (240, 180), "the layer added back").await;
    assert_eq!(remote.stats().frames_dropped, dropped_at_start);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_layer_requests_get_numbered_errors_and_change_nothing() {
    let server = start_server().await;
    let (publisher, _) = join(&server, "room-simulcast-bad", "pub").await;
    let stream_id = publisher.publish(layered()).await.expect("publish");

    let err = publisher
        .remove_resolution(stream_id, "nope")
        .await
        .expect_err("not a layer of the stream");
    assert!(matches!(err.code(), ErrorCode::InvalidParameter), "{err}");

    let mut raw = RawSocket::connect(&server).await;
    raw.joined("room-simulcast-bad", "mallory").await;
    let sid = stream_id.0;
    let (_, offer) = publish_offer(false, true).await;
    let offer = json_string(&offer);
    let r = |id: &str, w: u32, h: u32| {
        format!(r#"{{"resolutionId":"{id}","width":{w},"height":{h},"frameRate":15}}"#)
    };
    let cases: Vec<(String, ErrorCode)> = vec![
        // A 4th layer.
        (
            format!(
                r#"{{"id":1,"type":"publish","audio":false,"video":{{"width":1280,"height":720,"frameRate":15}},"sdp":{offer},"resolutions":[{},{},{},{}]}}"#,
                r("a", 1280, 720),
                r("b", 640, 360),
                r("c", 320, 180),
                r("d", 160, 90)
            ),
            ErrorCode::TooManyResolutions,
        ),
        // The same id twice.
        (
            format!(
                r#"{{"id":2,"type":"publish","audio":false,"video":{{"width":640,"height":360,"frameRate":15}},"sdp":{offer},"resolutions":[{},{}]}}"#,
                r("a", 640, 360),
                r("a", 320, 180)
            ),
            ErrorCode::ResolutionExists,
        ),
        // Smallest first.
        (
            format!(
                r#"{{"id":3,"type":"publish","audio":false,"video":{{"width":320,"height":180,"frameRate":15}},"sdp":{offer},"resolutions":[{},{}]}}"#,
                r("a", 320, 180),
                r("b", 640, 360)
            ),
            ErrorCode::InvalidParameter,
        ),
        // An id that is not a rid.
        (
            format!(
                r#"{{"id":4,"type":"publish","audio":false,"video":{{"width":640,"height":360,"frameRate":15}},"sdp":{offer},"resolutions":[{}]}}"#,
                r("no spaces", 640, 360)
            ),
            ErrorCode::InvalidParameter,
        ),
        // A layer the stream does not have.
        (
            format!(
                r#"{{"id":5,"type":"subscribe","streamId":{sid},"audio":true,"video":true,"resolutionId":"1080p_1"}}"#
            ),
            ErrorCode::UnknownResolution,
        ),
        // Someone else's stream.
        (
            format!(
                r#"{{"id":6,"type":"remove-resolution","streamId":{sid},"resolutionId":"180p_2"}}"#
            ),
            ErrorCode::InvalidOperation,
        ),
        (
            format!(
                r#"{{"id":7,"type":"add-resolution","streamId":{sid},"resolution":{}}}"#,
                r("180p_2", 240, 180)
            ),
            ErrorCode::InvalidOperation,
        ),
    ];
    for (frame, code) in cases {
        raw.send(&frame).await;
        let got = raw
            .recv_until(Duration::from_secs(10), "an error", |m| match m {
                ServerMessage::Error(_) => Some(expect_error(m.clone()).1),
                ServerMessage::Reply { reply, .. } => panic!("accepted: {reply:?} for {frame}"),
                _ => None,
            })
            .await;
        assert_eq!(got, code, "{frame}");
    }
    // The publisher's own bad requests: an active layer added again, the last
    // layer removed.
    let err = publisher
        .add_resolution(stream_id, "360p_2")
        .await
        .expect_err("active already");
    assert_eq!(err.code(), ErrorCode::ResolutionExists);
    publisher
        .remove_resolution(stream_id, "180p_2")
        .await
        .expect("remove");
    let err = publisher
        .remove_resolution(stream_id, "360p_2")
        .await
        .expect_err("the last layer");
    assert_eq!(err.code(), ErrorCode::InvalidOperation);

    // Nothing was lost: a subscriber still gets the stream.
    let (subscriber, info) = join(&server, "room-simulcast-bad", "sub").await;
    assert_eq!(info.streams[0].resolutions.len(), 1);
    let remote = subscriber
        .subscribe(stream_id, SubscribeOptions::default())
        .await
        .expect("subscribe");
    decodes_size(&remote, (480, 360), "the stream after the bad requests").await;
}

/// Frames the publisher sent of each layer slot so far.
async fn layer_sent(
    publisher: &huddle::client::Client,
    stream_id: huddle::protocol::StreamId,
) -> [u64; 3] {
    publisher
        .send_rate(stream_id)
        .await
        .expect("send rate")
        .layer_frames_sent
}

/// Waits until, over one second, the publisher's top layer keeps growing and
/// its lower layer `grows` (or stops growing when `false`).
async fn lower_layer_sent(
    publisher: &huddle::client::Client,
    stream_id: huddle::protocol::StreamId,
    grows: bool,
    what: &str,
) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let mut last = layer_sent(publisher, stream_id).await;
    loop {
        // A measurement interval, not a wait: the condition is on the rates.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = layer_sent(publisher, stream_id).await;
        if now[0] > last[0] && (now[1] > last[1]) == grows {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}: {last:?} then {now:?}"
        );
        last = now;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn layers_nobody_watches_are_not_encoded() {
    let server = start_server().await;
    let (publisher, _) = join(&server, "room-simulcast-unwatched", "pub").await;
    let stream_id = publisher.publish(layered()).await.expect("publish");
    let (subscriber, _) = join(&server, "room-simulcast-unwatched", "sub").await;
    let remote = subscriber
        .subscribe(stream_id, SubscribeOptions::default())
        .await
        .expect("subscribe");
    decodes_size(&remote, (480, 360), "the top layer by default").await;
    lower_layer_sent(
        &publisher,
        stream_id,
        false,
        "the unwatched lower layer to stop",
    )
    .await;

    // Wanted again: encoded again, from a keyframe the subscriber decodes.
    let before = remote.stats().last_frame_no.expect("stamped frames");
    let dropped = remote.stats().frames_dropped;
    subscriber
        .set_resolution(stream_id, LayerChoice::Fixed("180p_2".into()))
        .await
        .expect("switch");
    decodes_size(&remote, (240, 180), "the lower layer once wanted").await;
    let s = remote.stats();
    assert!(s.last_frame_no.expect("stamped frames") > before, "{s:?}");
    assert_eq!(s.out_of_order_frames, 0, "no frame number went back: {s:?}");
    assert_eq!(s.frames_dropped, dropped, "no decoder error: {s:?}");
    lower_layer_sent(
        &publisher,
        stream_id,
        true,
        "the watched lower layer to grow",
    )
    .await;

    // The subscriber leaves: the lower layer stops again, the top goes on.
    subscriber
        .unsubscribe(stream_id, SubscribeOptions::default())
        .await
        .expect("unsubscribe");
    lower_layer_sent(
        &publisher,
        stream_id,
        false,
        "the lower layer to stop again",
    )
    .await;
}
