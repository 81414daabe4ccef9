//! `restart-ice`: a client's link whose ICE disconnected or failed (its
//! network dropped UDP for a while, its address changed) gets new ICE
//! credentials and new candidate checks, and keeps everything else: the
//! link id, the stream and its id, the subscription, DTLS and SRTP, the
//! forwarding state. Nobody else in the room sees anything.
//!
//! * Publish link (the server answers, webrtc-rs): the client sends its
//!   restart offer (`sdp`); the server applies it, which restarts its side
//!   implicitly (RFC 8445 §9, JSEP 5.10), and replies with its answer.
//! * Subscription link (the server offers, the egress hub): `sdp` is absent;
//!   the hub makes a restart offer on the leg and the reply carries it; the
//!   client answers with the ordinary `answer` request.
//!
//! Bad input changes nothing: an unknown link (or another user's: link ids
//! are looked up among the caller's own) or an `sdp` on a subscription link
//! is 90000005; a publish offer that is unusable or does not change the ICE
//! credentials is 90100214; a subscription link whose first offer is still
//! unanswered is 90100001.

use super::{RequestError, Session};
use crate::protocol::{LinkId, Reply};
use crate::server::sdp_checks::usable_candidates_only;

impl Session {
    /// Handles `restart-ice` (module docs).
    pub(super) async fn restart_ice(
        &mut self,
        link_id: LinkId,
        sdp: Option<String>,
    ) -> Result<Reply, RequestError> {
        self.joined()?;
        if let Some(p) = self.publications.values().find(|p| p.link_id == link_id) {
            let offer = sdp.ok_or_else(|| {
                RequestError::InvalidParameter(format!(
                    "restart-ice on publish link {link_id} needs `sdp`: the client's restart offer"
                ))
            })?;
            let (offer, _) = usable_candidates_only(&offer);
            let answer = p.link.restart_ice(offer).await?;
            tracing::info!(
                session = self.id.0,
                link = link_id.0,
                "publish link: ICE restarted"
            );
            return Ok(Reply::IceRestarted {
                link_id,
                sdp: answer,
            });
        }
        if let Some(s) = self.subscriptions.values().find(|s| s.link_id == link_id) {
            if sdp.is_some() {
                return Err(RequestError::InvalidParameter(format!(
                    "link {link_id} is a subscription link: the server makes its restart offer; send restart-ice without `sdp`"
                )));
            }
            let offer = s.link.restart_ice().await?;
            tracing::info!(
                session = self.id.0,
                link = link_id.0,
                "subscription link: ICE restart offered"
            );
            return Ok(Reply::IceRestarted {
                link_id,
                sdp: offer,
            });
        }
        Err(RequestError::InvalidParameter(format!(
            "no link {link_id} of yours"
        )))
    }
}
