//! An interceptor that lets the application see inbound RTCP.
//!
//! webrtc 0.21.1 stops inbound RTCP at the end of its interceptor chain unless an
//! interceptor tags the packet with `Attribute::DeliverToApplication`; only then
//! do `TrackLocal::poll` (feedback about what we send: PLI, FIR, receiver
//! reports) and `TrackRemote::poll` (sender reports about what we receive) yield
//! it. This tap tags the kinds huddle acts on and lets everything else end where
//! it did before, so the library's own interceptors (NACK, reports) still see all.

use std::collections::VecDeque;
use std::time::Instant;

use rtc::interceptor::{Attribute, Interceptor, Packet, StreamInfo, TaggedPacket};
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtcp::receiver_report::ReceiverReport;
use rtc::rtcp::sender_report::SenderReport;
use rtc::rtcp::transport_feedbacks::transport_layer_cc::TransportLayerCc;
use rtc::rtcp::transport_feedbacks::transport_layer_nack::TransportLayerNack;
use rtc::sansio::Protocol;
use rtc::shared::error::Error;

/// Where the tap sits in the chain: after the default interceptors, so they see
/// every packet first.
pub const RTCP_TAP_SLOT: usize = 14_000;

/// Tags PLI, FIR, sender and receiver reports for the application (and NACKs,
/// if built [`RtcpTap::with_nacks`]).
#[derive(Default)]
pub struct RtcpTap {
    read: VecDeque<TaggedPacket>,
    write: VecDeque<TaggedPacket>,
    nacks: bool,
}

impl RtcpTap {
    /// Also passes NACKs and transport-wide feedback (TWCC) up: for a sender
    /// that answers them itself and numbers its own packets (the egress hub,
    /// whose media does not go through the library's history or TWCC sender).
    pub fn with_nacks() -> Self {
        Self {
            nacks: true,
            ..Self::default()
        }
    }

    fn wanted(&self, packet: &dyn rtc::rtcp::Packet) -> bool {
        let any = packet.as_any();
        any.is::<PictureLossIndication>()
            || any.is::<FullIntraRequest>()
            || any.is::<SenderReport>()
            || any.is::<ReceiverReport>()
            || (self.nacks && (any.is::<TransportLayerNack>() || any.is::<TransportLayerCc>()))
    }
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for RtcpTap {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = Error;
    type Time = Instant;

    fn handle_read(&mut self, mut msg: TaggedPacket) -> Result<(), Error> {
        if let Packet::Rtcp(packets) = &msg.message.packet {
            let keep: Vec<_> = packets
                .iter()
                .filter(|p| self.wanted(p.as_ref()))
                .cloned()
                .collect();
            if keep.is_empty() {
                // The interceptors before us have acted on it; nothing for the app.
                return Ok(());
            }
            msg.message.packet = Packet::Rtcp(keep);
            msg.message.add(Attribute::DeliverToApplication);
        }
        self.read.push_back(msg);
        Ok(())
    }

    fn poll_read(&mut self) -> Option<TaggedPacket> {
        self.read.pop_front()
    }

    fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), Error> {
        self.write.push_back(msg);
        Ok(())
    }

    fn poll_write(&mut self) -> Option<TaggedPacket> {
        self.write.pop_front()
    }
}

impl Interceptor for RtcpTap {
    fn bind_local_stream(&mut self, _: &StreamInfo) {}
    fn unbind_local_stream(&mut self, _: &StreamInfo) {}
    fn bind_remote_stream(&mut self, _: &StreamInfo) {}
    fn unbind_remote_stream(&mut self, _: &StreamInfo) {}
}
