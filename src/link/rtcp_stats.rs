//! Round-trip time, remote loss and remote jitter of what a link sends, computed
//! from RTCP (RFC 3550 §6.4).
//!
//! webrtc 0.21.1 exchanges sender and receiver reports but leaves the
//! corresponding stats (`RemoteInboundRtp.round_trip_time`, `fraction_lost`) at
//! zero, so this interceptor works them out itself:
//!
//! * On the write leg it notes every sender report we send: the middle 32 bits
//!   of its NTP timestamp (what the remote will echo as LSR) and the instant it
//!   left. It sits wire-most ([`RTCP_STATS_SLOT`]), below the report
//!   generators, so it sees the reports they generate.
//! * On the read leg, for each reception block about one of our SSRCs (in an RR
//!   or an SR), RTT = arrival − departure of the echoed SR − DLSR. Using the
//!   departure instant we recorded instead of `ntp(now) − LSR` makes the result
//!   independent of which wall clock the library stamps its reports with; it is
//!   the same quantity RFC 3550 §6.4.1 defines.
//!
//! Everything passes through unchanged. Results are read through the cloneable
//! [`RtcpStats`] handle.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rtc::interceptor::{Interceptor, Packet, StreamInfo, TaggedPacket};
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtcp::receiver_report::ReceiverReport;
use rtc::rtcp::reception_report::ReceptionReport;
use rtc::rtcp::sender_report::SenderReport;
use rtc::rtcp::transport_feedbacks::transport_layer_nack::TransportLayerNack;
use rtc::sansio::Protocol;
use rtc::shared::error::Error;
use serde::Serialize;

/// Where the interceptor sits: wire-most, below every RTCP generator, so the
/// sender reports it records are the ones that actually leave.
pub const RTCP_STATS_SLOT: usize = 500;

/// Sender reports remembered per SSRC for matching LSR echoes (reports leave
/// about once a second, and the echo comes back within the next one or two).
const SENT_REPORTS_KEPT: usize = 16;

/// What the remote end reports about one stream we send.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct RemoteReport {
    /// Our SSRC the report is about.
    pub ssrc: u32,
    /// RTP clock rate of that stream, once bound (90 000: video, 48 000: Opus).
    pub clock_rate: Option<u32>,
    /// Latest round-trip time, ms (`None` until a report echoes one of our SRs).
    pub rtt_ms: Option<f64>,
    /// Fraction lost since the remote's previous report (0..1).
    pub fraction_lost: f64,
    /// Cumulative packets lost as the remote counts them (can go negative with
    /// duplicates, RFC 3550 §6.4.1).
    pub total_lost: i32,
    /// Interarrival jitter the remote measured, ms (`None` without a clock rate).
    pub jitter_ms: Option<f64>,
    /// Reception reports received about this SSRC.
    pub reports: u64,
    /// Generic NACKs (RFC 4585 §6.2.1) received about this SSRC. Counted
    /// here because the RTCP tap ends NACKs before the library's own stats
    /// see them.
    pub nack_count: u64,
    /// Keyframe requests (PLI, FIR) received about this SSRC.
    pub pli_count: u64,
}

#[derive(Default)]
struct State {
    /// Clock rate of each local (sent) stream, from binding.
    clock_rates: HashMap<u32, u32>,
    /// (LSR value, departure) of our recent sender reports, per SSRC.
    sent: HashMap<u32, VecDeque<(u32, Instant)>>,
    remote: HashMap<u32, RemoteReport>,
}

/// Shared view of a link's RTCP-derived send statistics.
#[derive(Clone, Default)]
pub struct RtcpStats(Arc<Mutex<State>>);

impl RtcpStats {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Every critical section is a map update: a poisoned lock is still consistent.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// What the remote reported about `ssrc`, once it has.
    pub fn remote(&self, ssrc: u32) -> Option<RemoteReport> {
        self.lock().remote.get(&ssrc).copied()
    }

    /// Every stream the remote reported on, by SSRC.
    pub fn all(&self) -> Vec<RemoteReport> {
        let mut all: Vec<_> = self.lock().remote.values().copied().collect();
        all.sort_by_key(|r| r.ssrc);
        all
    }

    /// The interceptor feeding this handle; register one per peer connection.
    pub fn interceptor(&self) -> RtcpStatsInterceptor {
        RtcpStatsInterceptor {
            stats: self.clone(),
            read: VecDeque::new(),
            write: VecDeque::new(),
        }
    }

    fn sent_report(&self, sr: &SenderReport, at: Instant) {
        let lsr = ntp_middle32(sr.ntp_time);
        let mut state = self.lock();
        let sent = state.sent.entry(sr.ssrc).or_default();
        if sent.len() == SENT_REPORTS_KEPT {
            sent.pop_front();
        }
        sent.push_back((lsr, at));
    }

    /// Counts one feedback message about `ssrc`: a NACK or a keyframe request.
    fn received_feedback(&self, ssrc: u32, nack: bool) {
        let mut state = self.lock();
        let entry = state.remote.entry(ssrc).or_default();
        entry.ssrc = ssrc;
        if nack {
            entry.nack_count += 1;
        } else {
            entry.pli_count += 1;
        }
    }

    fn received_block(&self, block: &ReceptionReport, at: Instant) {
        let mut state = self.lock();
        let departed = state.sent.get(&block.ssrc).and_then(|sent| {
            sent.iter()
                .rev()
                .find(|(lsr, _)| block.last_sender_report != 0 && *lsr == block.last_sender_report)
                .map(|(_, t)| *t)
        });
        let clock_rate = state.clock_rates.get(&block.ssrc).copied();
        let entry = state.remote.entry(block.ssrc).or_default();
        entry.ssrc = block.ssrc;
        entry.clock_rate = clock_rate;
        entry.reports += 1;
        entry.fraction_lost = f64::from(block.fraction_lost) / 256.0;
        entry.total_lost = total_lost(block.total_lost);
        entry.jitter_ms = clock_rate.map(|rate| f64::from(block.jitter) * 1000.0 / f64::from(rate));
        if let Some(departed) = departed {
            entry.rtt_ms = Some(rtt_ms(departed, at, block.delay));
        }
    }
}

/// The middle 32 bits of a 64-bit NTP timestamp: the LSR format.
pub fn ntp_middle32(ntp: u64) -> u32 {
    (ntp >> 16) as u32
}

/// RTT from our SR's departure, the report's arrival and the remote's DLSR
/// (1/65536 s), floored at 0.
pub fn rtt_ms(departed: Instant, arrived: Instant, dlsr: u32) -> f64 {
    let round_trip = arrived.saturating_duration_since(departed);
    let held = Duration::from_secs_f64(f64::from(dlsr) / 65_536.0);
    round_trip.saturating_sub(held).as_secs_f64() * 1e3
}

/// The 24-bit signed cumulative-lost field as an integer.
fn total_lost(raw: u32) -> i32 {
    let v = (raw & 0x00ff_ffff) as i32;
    if v & 0x0080_0000 != 0 {
        v - 0x0100_0000
    } else {
        v
    }
}

/// Records sent SRs and received reception blocks into an [`RtcpStats`].
pub struct RtcpStatsInterceptor {
    stats: RtcpStats,
    read: VecDeque<TaggedPacket>,
    write: VecDeque<TaggedPacket>,
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for RtcpStatsInterceptor {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = Error;
    type Time = Instant;

    fn handle_read(&mut self, msg: TaggedPacket) -> Result<(), Error> {
        if let Packet::Rtcp(packets) = &msg.message.packet {
            for packet in packets {
                let any = packet.as_any();
                if let Some(nack) = any.downcast_ref::<TransportLayerNack>() {
                    self.stats.received_feedback(nack.media_ssrc, true);
                    continue;
                }
                if let Some(pli) = any.downcast_ref::<PictureLossIndication>() {
                    self.stats.received_feedback(pli.media_ssrc, false);
                    continue;
                }
                if let Some(fir) = any.downcast_ref::<FullIntraRequest>() {
                    for entry in &fir.fir {
                        self.stats.received_feedback(entry.ssrc, false);
                    }
                    continue;
                }
                let blocks = if let Some(rr) = any.downcast_ref::<ReceiverReport>() {
                    &rr.reports
                } else if let Some(sr) = any.downcast_ref::<SenderReport>() {
                    &sr.reports
                } else {
                    continue;
                };
                for block in blocks {
                    self.stats.received_block(block, msg.now);
                }
            }
        }
        self.read.push_back(msg);
        Ok(())
    }

    fn poll_read(&mut self) -> Option<TaggedPacket> {
        self.read.pop_front()
    }

    fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), Error> {
        if let Packet::Rtcp(packets) = &msg.message.packet {
            for packet in packets {
                if let Some(sr) = packet.as_any().downcast_ref::<SenderReport>() {
                    self.stats.sent_report(sr, msg.now);
                }
            }
        }
        self.write.push_back(msg);
        Ok(())
    }

    fn poll_write(&mut self) -> Option<TaggedPacket> {
        self.write.pop_front()
    }
}

impl Interceptor for RtcpStatsInterceptor {
    fn bind_local_stream(&mut self, info: &StreamInfo) {
        self.stats
            .lock()
            .clock_rates
            .insert(info.ssrc, info.clock_rate);
    }
    fn unbind_local_stream(&mut self, info: &StreamInfo) {
        let mut state = self.stats.lock();
        state.clock_rates.remove(&info.ssrc);
        state.sent.remove(&info.ssrc);
    }
    fn bind_remote_stream(&mut self, _: &StreamInfo) {}
    fn unbind_remote_stream(&mut self, _: &StreamInfo) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nacks_and_keyframe_requests_are_counted_per_ssrc() {
        let stats = RtcpStats::default();
        let mut interceptor = stats.interceptor();
        let feedback: Vec<Box<dyn rtc::rtcp::Packet>> = vec![
            Box::new(TransportLayerNack {
                media_ssrc: 7,
                ..Default::default()
            }),
            Box::new(TransportLayerNack {
                media_ssrc: 7,
                ..Default::default()
            }),
            Box::new(PictureLossIndication {
                media_ssrc: 7,
                ..Default::default()
            }),
            Box::new(PictureLossIndication {
                media_ssrc: 9,
                ..Default::default()
            }),
        ];
        interceptor
            .handle_read(TaggedPacket {
                now: Instant::now(),
                transport: Default::default(),
                message: rtc::interceptor::AttributedPacket::new(Packet::Rtcp(feedback)),
            })
            .expect("read");
        assert!(interceptor.poll_read().is_some(), "passed on unchanged");
        let seven = stats.remote(7).expect("ssrc 7");
        assert_eq!((seven.nack_count, seven.pli_count), (2, 1));
        assert_eq!(
            stats.remote(9).map(|r| (r.nack_count, r.pli_count)),
            Some((0, 1))
        );
    }

    #[test]
    fn rtt_subtracts_the_remote_hold_time() {
        let t0 = Instant::now();
        // Sent at t0, echoed 250 ms later after the remote held it 200 ms: 50 ms.
        let rtt = rtt_ms(t0, t0 + Duration::from_millis(250), 200 * 65_536 / 1000);
        assert!((rtt - 50.0).abs() < 0.1, "{rtt}");
        assert_eq!(rtt_ms(t0, t0, 65_536), 0.0);
    }

    #[test]
    fn matches_the_echoed_report_and_converts_fields() {
        let stats = RtcpStats::default();
        stats.lock().clock_rates.insert(7, 90_000);
        let t0 = Instant::now();
        for i in 0..3u64 {
            let sr = SenderReport {
                ssrc: 7,
                ntp_time: (100 + i) << 32,
                ..Default::default()
            };
            stats.sent_report(&sr, t0 + Duration::from_secs(i));
        }
        let block = ReceptionReport {
            ssrc: 7,
            fraction_lost: 64,
            total_lost: 0x00ff_fffe, // −2
            jitter: 900,
            last_sender_report: ntp_middle32(101 << 32),
            delay: 65_536 / 2,
            ..Default::default()
        };
        stats.received_block(&block, t0 + Duration::from_millis(1_600));
        let r = stats.remote(7).expect("report");
        assert!((r.rtt_ms.expect("rtt") - 100.0).abs() < 0.1, "{r:?}");
        assert_eq!(r.fraction_lost, 0.25);
        assert_eq!(r.total_lost, -2);
        assert_eq!(r.jitter_ms, Some(10.0));
        // An LSR we never sent (or 0: no SR received yet) gives no RTT.
        let unknown = ReceptionReport {
            ssrc: 9,
            ..Default::default()
        };
        stats.received_block(&unknown, t0);
        assert_eq!(stats.remote(9).and_then(|r| r.rtt_ms), None);
    }
}
