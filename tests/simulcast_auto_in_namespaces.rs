//! Simulcast `auto` under a capped downlink (issue 10 §2), end to end in
//! network namespaces (`benches/simulcast.sh`, namespaces `simulcast-*`): a
//! publisher sends three layers (640x360, 320x180, 160x90, with noise so the
//! encoders spend their bitrate), subscriber A is unimpaired, subscriber B is
//! behind `tc tbf` at 300 kbit/s; both subscribe with `--resolution auto`.
//! A keeps the top layer; B gets a lower one while capped (never the top,
//! which cannot fit) and decodes video there. Timing figures are measured by
//! the benchmark (docs/PERFORMANCE.md), not asserted here.
//!
//! Needs root (namespaces), `ip`, `tc`, `jq` (`.ci/setup.sh`).
#![cfg(feature = "client")]

mod common;

const TEST: &str = "simulcast_auto_in_namespaces";

#[test]
fn a_capped_subscriber_gets_a_lower_layer_and_an_uncapped_one_keeps_the_top() {
    if !common::bench_script::root_and_tools_or_skip(TEST, &["ip", "tc", "jq"]) {
        return;
    }
    let out = std::env::temp_dir().join(format!("huddle-simulcast-{}", std::process::id()));
    let lift = 25;
    let lift_s = lift.to_string();
    let args = [
        "--rate",
        "300",
        "--duration",
        "32",
        "--lift",
        &lift_s,
        "--noise",
        "--tag",
        "ci",
    ];
    let result = common::bench_script::run("simulcast.sh", &args, &[("OUT", out.as_os_str())]);
    let widths = |who: &str| -> Vec<u64> {
        result[who]["widths"]
            .as_array()
            .map(|w| w.iter().filter_map(|v| v.as_u64()).collect())
            .unwrap_or_default()
    };
    let (a, b) = (widths("a"), widths("b"));
    assert!(a.len() > lift, "A reported too few seconds: {result}");
    assert!(b.len() > lift, "B reported too few seconds: {result}");
    // The first seconds: subscriptions start on the top layer.
    let capped = 6..lift - 1;
    assert!(
        a[capped.clone()].iter().all(|&w| w == 640),
        "A left the top layer: {result}"
    );
    assert!(
        b[capped.clone()].iter().all(|&w| w < 640),
        "B was on the top layer behind a 300 kbit/s cap: {result}"
    );
    let b_fps: Vec<f64> = result["b"]["fps"]
        .as_array()
        .map(|f| f.iter().filter_map(serde_json::Value::as_f64).collect())
        .unwrap_or_default();
    assert!(
        b_fps[capped].iter().any(|&f| f > 0.0),
        "B decoded no video on its lower layer: {result}"
    );
    std::fs::remove_dir_all(&out).ok(); // a leftover temp dir is harmless
}
