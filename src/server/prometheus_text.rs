//! `GET /metrics` in the Prometheus text exposition format (version 0.0.4),
//! the format every operator's scraper reads. The values are one
//! [`MetricsSnapshot`], so a scrape is consistent; the `prometheus` crate
//! (TiKV's, no global registry used) does the encoding. Every sample
//! carries the label `node` (the server's node id), so several nodes'
//! series stay apart.

use prometheus::proto::{Counter, Gauge, LabelPair, Metric, MetricFamily, MetricType};
use prometheus::{Encoder, TextEncoder};

use super::metrics::MetricsSnapshot;

/// The `Content-Type` of the reply.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Whether a series only grows (a counter) or goes up and down (a gauge).
#[derive(Clone, Copy)]
enum Kind {
    Counter,
    Gauge,
}

/// The families of `snapshot`: name, help, kind, value.
fn series(s: &MetricsSnapshot) -> [(&'static str, &'static str, Kind, f64); 20] {
    use Kind::{Counter as C, Gauge as G};
    [
        ("huddle_rooms", "Rooms that exist.", G, s.rooms as f64),
        ("huddle_users", "Users in all rooms.", G, s.users as f64),
        (
            "huddle_sessions",
            "Open WebSocket sessions.",
            G,
            s.sessions as f64,
        ),
        (
            "huddle_peer_connections",
            "Peer connections not yet closed (publish and subscription links).",
            G,
            s.peer_connections as f64,
        ),
        (
            "huddle_tasks",
            "Per-track and per-link tasks running.",
            G,
            s.tasks as f64,
        ),
        (
            "huddle_forwarded_packets_total",
            "RTP packets written to subscribers.",
            C,
            s.forwarded_packets as f64,
        ),
        (
            "huddle_forwarded_bytes_total",
            "RTP bytes (header and payload, before SRTP) written to subscribers.",
            C,
            s.forwarded_bytes as f64,
        ),
        (
            "huddle_nacks_received_total",
            "NACK messages subscribers sent the egress hub.",
            C,
            s.nacks_received as f64,
        ),
        (
            "huddle_retransmitted_packets_total",
            "Packets the egress hub sent again because a subscriber NACKed them.",
            C,
            s.retransmitted_packets as f64,
        ),
        (
            "huddle_keyframe_requests_total",
            "Keyframe requests (PLI) sent to publishers.",
            C,
            s.keyframe_requests as f64,
        ),
        (
            "huddle_direct_egress_legs",
            "Subscription legs whose media the egress hub seals itself.",
            G,
            s.direct_egress_legs as f64,
        ),
        (
            "huddle_egress_panics_total",
            "Panics the egress hub caught (each cost at most one leg).",
            C,
            s.egress_panics as f64,
        ),
        (
            "huddle_egress_datagrams_dropped_total",
            "Datagrams to subscribers the kernel refused or that could never be sent.",
            C,
            s.egress_datagrams_dropped as f64,
        ),
        (
            "huddle_egress_key_failures_total",
            "Subscription legs whose SRTP key the hub could not recover (should stay 0).",
            C,
            s.egress_key_failures as f64,
        ),
        (
            "huddle_stale_packets_dropped_total",
            "Publisher packets not forwarded because their egress sequence number was used or too old.",
            C,
            s.stale_packets_dropped as f64,
        ),
        (
            "huddle_padding_packets_dropped_total",
            "Padding-only publisher packets not forwarded to subscribers (their numbers closed up).",
            C,
            s.padding_packets_dropped as f64,
        ),
        (
            "huddle_connections",
            "Open TCP connections (WebSocket sessions and HTTP requests).",
            G,
            s.connections as f64,
        ),
        (
            "huddle_connections_refused_total",
            "TCP connections closed at accept by a connection limit.",
            C,
            s.connections_refused as f64,
        ),
        (
            "huddle_ingress_tracks",
            "Tracks read from publishers (a relayed stream counts once).",
            G,
            s.ingress_tracks as f64,
        ),
        (
            "huddle_cross_room_relays",
            "Streams relayed into another room (cross-room co-hosting).",
            G,
            s.cross_room_relays as f64,
        ),
    ]
}

/// `snapshot` as Prometheus text, each sample labelled `node="<node>"`.
pub fn encode(snapshot: &MetricsSnapshot, node: &str) -> prometheus::Result<String> {
    let mut label = LabelPair::default();
    label.set_name("node".to_owned());
    label.set_value(node.to_owned());
    let families: Vec<MetricFamily> = series(snapshot)
        .into_iter()
        .map(|(name, help, kind, value)| {
            let mut metric = Metric::from_label(vec![label.clone()]);
            match kind {
                Kind::Counter => {
                    let mut c = Counter::default();
                    c.set_value(value);
                    metric.set_counter(c);
                }
                Kind::Gauge => {
                    let mut g = Gauge::default();
                    g.set_value(value);
                    metric.set_gauge(g);
                }
            }
            let mut family = MetricFamily::default();
            family.set_name(name.to_owned());
            family.set_help(help.to_owned());
            family.set_field_type(match kind {
                Kind::Counter => MetricType::COUNTER,
                Kind::Gauge => MetricType::GAUGE,
            });
            family.set_metric(vec![metric]);
            family
        })
        .collect();
    let mut out = Vec::new();
    TextEncoder::new().encode(&families, &mut out)?;
    String::from_utf8(out).map_err(|e| prometheus::Error::Msg(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_series_is_typed_labelled_and_valued() {
        let snapshot = MetricsSnapshot {
            rooms: 2,
            forwarded_packets: 12345,
            connections_refused: 7,
            ..MetricsSnapshot::default()
        };
        let text = encode(&snapshot, "node-a").expect("encodes");
        assert!(text.contains("# TYPE huddle_rooms gauge\n"), "{text}");
        assert!(text.contains("huddle_rooms{node=\"node-a\"} 2\n"), "{text}");
        assert!(
            text.contains("# TYPE huddle_forwarded_packets_total counter\n"),
            "{text}"
        );
        assert!(
            text.contains("huddle_forwarded_packets_total{node=\"node-a\"} 12345\n"),
            "{text}"
        );
        assert_eq!(text.matches("# TYPE").count(), series(&snapshot).len());
        // A label value is escaped, not spliced.
        let odd = encode(&snapshot, "a\"b\\c").expect("encodes");
        assert!(odd.contains(r#"node="a\"b\\c""#), "{odd}");
    }
}
