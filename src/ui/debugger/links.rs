//! Each media link as the signalling log shows it: its local and remote SDP
//! and the ICE candidates trickled each way, rebuilt from the log's frames
//! (pure: the debugger's live view and `huddle inspect` use the same code).
//!
//! Which frame carries which side (docs/protocol.md): a publish link's
//! local SDP is the `publish` request's offer and its remote SDP the
//! `published` reply's answer; a subscription (or top-N) link's remote SDP is
//! the server's `subscribe-offer` (`top-n-offer`), its local SDP the
//! client's `answer`; `ice-restarted` replaces the remote SDP (and a
//! `restart-ice` offer the local one).

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;

use crate::client::SignalRecord;
use crate::client::signal_log::Direction;

/// One link.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LinkView {
    /// `publish`, `subscribe` or `top-n`.
    pub kind: &'static str,
    /// The stream it carries (none for top-N).
    pub stream_id: Option<u64>,
    /// This client's SDP, the latest.
    pub local_sdp: Option<String>,
    /// The server's SDP, the latest.
    pub remote_sdp: Option<String>,
    /// Candidates this client trickled.
    pub local_candidates: Vec<String>,
    /// Candidates the server trickled.
    pub remote_candidates: Vec<String>,
    /// Its peer-connection (ICE + DTLS) states, with when (Unix ms).
    pub states: Vec<(u64, String)>,
}

/// The links named in `records`, by link id.
pub fn links<'a>(records: impl IntoIterator<Item = &'a SignalRecord>) -> BTreeMap<u64, LinkView> {
    let mut links: BTreeMap<u64, LinkView> = BTreeMap::new();
    // Offers sent with a request, by request id, until the reply names the link.
    let mut offers: HashMap<u64, String> = HashMap::new();
    for record in records {
        let Ok(v) = serde_json::from_str::<Value>(&record.text) else {
            continue;
        };
        let num = |v: &Value, k: &str| v.get(k).and_then(Value::as_u64);
        let text = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
        match (record.direction, record.kind.as_str()) {
            (Direction::Out, "publish") => {
                if let (Some(id), Some(sdp)) = (num(&v, "id"), text(&v, "sdp")) {
                    offers.insert(id, sdp);
                }
            }
            (Direction::Out, "restart-ice") => {
                if let (Some(id), Some(sdp)) = (num(&v, "id"), text(&v, "sdp")) {
                    offers.insert(id, sdp);
                }
            }
            (Direction::Out, "answer") => {
                if let Some(link) = num(&v, "linkId") {
                    links.entry(link).or_default().local_sdp = text(&v, "sdp");
                }
            }
            (Direction::Out, "candidate") => {
                if let (Some(link), Some(c)) = (num(&v, "linkId"), v.get("candidate"))
                    && let Some(c) = text(c, "candidate")
                {
                    links.entry(link).or_default().local_candidates.push(c);
                }
            }
            (Direction::Local, "link-state") => {
                if let (Some(link), Some(state)) = (num(&v, "linkId"), text(&v, "state")) {
                    links
                        .entry(link)
                        .or_default()
                        .states
                        .push((record.at_ms, state));
                }
            }
            (Direction::In, "event:candidate") => {
                let event = v.get("event").unwrap_or(&Value::Null);
                if let (Some(link), Some(c)) = (num(event, "linkId"), event.get("candidate"))
                    && let Some(c) = text(c, "candidate")
                {
                    links.entry(link).or_default().remote_candidates.push(c);
                }
            }
            (
                Direction::In,
                kind @ ("reply:published"
                | "reply:subscribe-offer"
                | "reply:top-n-offer"
                | "reply:ice-restarted"),
            ) => {
                let Some(link_id) = num(&v, "linkId") else {
                    continue;
                };
                let link = links.entry(link_id).or_default();
                link.remote_sdp = text(&v, "sdp");
                match kind {
                    "reply:published" => link.kind = "publish",
                    "reply:subscribe-offer" => link.kind = "subscribe",
                    "reply:top-n-offer" => link.kind = "top-n",
                    _ => {}
                }
                if let Some(stream) = num(&v, "streamId") {
                    link.stream_id = Some(stream);
                }
                if let Some(offer) = num(&v, "id").and_then(|id| offers.remove(&id)) {
                    link.local_sdp = Some(offer);
                }
            }
            _ => {}
        }
    }
    links
}

#[cfg(test)]
mod test {
    use super::*;

    fn rec(direction: Direction, text: &str) -> SignalRecord {
        SignalRecord {
            seq: 0,
            at_ms: 0,
            direction,
            kind: crate::client::signal_log::kind_of(text),
            text: text.to_owned(),
        }
    }

    #[test]
    fn publish_and_subscription_links_get_both_sdps_and_candidates() {
        let log = [
            rec(
                Direction::Out,
                r#"{"id":3,"type":"publish","audio":true,"sdp":"v=0 offer"}"#,
            ),
            rec(
                Direction::In,
                r#"{"type":"reply","id":3,"result":"published","streamId":7,"linkId":2,"sdp":"v=0 answer"}"#,
            ),
            rec(
                Direction::Out,
                r#"{"id":4,"type":"candidate","linkId":2,"candidate":{"candidate":"candidate:1 1 udp 1 127.0.0.1 5000 typ host"}}"#,
            ),
            rec(
                Direction::In,
                r#"{"type":"reply","id":5,"result":"subscribe-offer","streamId":9,"linkId":6,"sdp":"v=0 server offer"}"#,
            ),
            rec(
                Direction::Out,
                r#"{"id":6,"type":"answer","linkId":6,"sdp":"v=0 client answer"}"#,
            ),
            rec(
                Direction::In,
                r#"{"type":"event","event":{"type":"candidate","linkId":6,"candidate":{"candidate":"candidate:2 1 udp 1 127.0.0.1 6000 typ host"}}}"#,
            ),
            rec(
                Direction::Local,
                r#"{"type":"link-state","linkId":6,"state":"connected"}"#,
            ),
            rec(Direction::In, "not json"),
        ];
        let links = links(&log);
        let publish = &links[&2];
        assert_eq!(publish.kind, "publish");
        assert_eq!(publish.stream_id, Some(7));
        assert_eq!(publish.local_sdp.as_deref(), Some("v=0 offer"));
        assert_eq!(publish.remote_sdp.as_deref(), Some("v=0 answer"));
        assert_eq!(publish.local_candidates.len(), 1);
        let sub = &links[&6];
        assert_eq!((sub.kind, sub.stream_id), ("subscribe", Some(9)));
        assert_eq!(sub.local_sdp.as_deref(), Some("v=0 client answer"));
        assert_eq!(sub.remote_sdp.as_deref(), Some("v=0 server offer"));
        assert_eq!(sub.remote_candidates.len(), 1);
        assert_eq!(sub.states, vec![(0, "connected".to_owned())]);
    }
}
