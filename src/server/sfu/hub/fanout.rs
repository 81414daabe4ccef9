//! Who gets which stream, and writing each ingress packet to each leg.
//!
//! [`Fanouts`] keeps, per published stream, the legs subscribed to its video
//! and to its audio: exactly the legs that are `Connected`. It also keeps
//! the stream's own subscriber counts in step ([`PublishedMedia::set_subscribers`]),
//! so the ingress forwarder stops handing the hub packets nobody wants. Both
//! change together in [`Fanouts::add`] and [`Fanouts::remove`], and `remove`
//! looks in every list rather than trusting the leg, so a leg dropped after a
//! panic leaves nothing behind.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use rtc::peer_connection::message::{RTCMessage, TaggedRTCMessage};
use rtc::sansio::Protocol;

use super::LegId;
use super::LegSource;
use super::event_loop::{HubLoop, mark};
use super::leg::{Egress, LegState, Work};
use crate::protocol::layers::MAX_RESOLUTIONS;
use crate::server::sfu::layers::{Admit, PacketInfo};
use crate::server::sfu::media::{IngressPacket, PublishedMedia};
use crate::server::sfu::padding::{SeqSkip, Verdict, is_padding_only};

/// Whether an RTCP packet asks for a keyframe (PLI, RFC 4585 §6.3.1; FIR,
/// RFC 5104 §4.3.1).
pub fn is_keyframe_request(packet: &dyn rtc::rtcp::Packet) -> bool {
    use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
    use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
    let any = packet.as_any();
    any.is::<PictureLossIndication>() || any.is::<FullIntraRequest>()
}

/// Clock ticks between the last packet of a relayed stream's old link and
/// the first of its new one, as the leg writes them: a frame at 30 fps
/// (90 kHz video clock).
const RELINK_GAP_VIDEO: u32 = 3000;
/// The same for audio: one 20 ms Opus frame (48 kHz clock).
const RELINK_GAP_AUDIO: u32 = 960;

/// The subscribed legs of one stream.
struct Subscribers {
    media: Arc<PublishedMedia>,
    video: Vec<LegId>,
    audio: Vec<LegId>,
    /// Padding dropped and numbers closed up, per video layer slot
    /// (`sfu::padding`); reset when the video gets its first leg (the
    /// forwarder hands the hub nothing while no leg wants it).
    video_seq: [SeqSkip; MAX_RESOLUTIONS],
    /// The same for the audio.
    audio_seq: SeqSkip,
}

impl Subscribers {
    fn new(media: &Arc<PublishedMedia>) -> Self {
        Subscribers {
            media: Arc::clone(media),
            video: Vec::new(),
            audio: Vec::new(),
            video_seq: Default::default(),
            audio_seq: SeqSkip::default(),
        }
    }

    fn publish_counts(&self) {
        self.media
            .set_subscribers(self.video.len(), self.audio.len());
    }
}

/// The fan-out lists of every stream with subscribers, by
/// [`PublishedMedia::id`].
#[derive(Default)]
pub struct Fanouts {
    streams: HashMap<u64, Subscribers>,
}

impl Fanouts {
    /// Adds a leg that just connected to `media`'s lists for the kinds it
    /// carries, and asks the publisher for a keyframe (a new subscriber needs
    /// one to start decoding). Nothing if the stream was unpublished: its
    /// session closes the leg.
    pub fn add(&mut self, id: LegId, media: &Arc<PublishedMedia>, video: bool, audio: bool) {
        if media.is_closed() {
            return;
        }
        let subscribers = self
            .streams
            .entry(media.id())
            .or_insert_with(|| Subscribers::new(media));
        if video && !subscribers.video.contains(&id) {
            if subscribers.video.is_empty() {
                subscribers.video_seq = Default::default();
            }
            subscribers.video.push(id);
        }
        if audio && !subscribers.audio.contains(&id) {
            if subscribers.audio.is_empty() {
                subscribers.audio_seq = SeqSkip::default();
            }
            subscribers.audio.push(id);
        }
        subscribers.publish_counts();
        media.request_keyframe();
    }

    /// Adds a top-N leg that is connected to the audio list of one of its
    /// sources (no keyframe: it takes no video).
    pub fn add_audio(&mut self, id: LegId, media: &Arc<PublishedMedia>) {
        if media.is_closed() {
            return;
        }
        let subscribers = self
            .streams
            .entry(media.id())
            .or_insert_with(|| Subscribers::new(media));
        if !subscribers.audio.contains(&id) {
            if subscribers.audio.is_empty() {
                subscribers.audio_seq = SeqSkip::default();
            }
            subscribers.audio.push(id);
            subscribers.publish_counts();
        }
    }

    /// Removes a leg from one stream's lists (a top-N source left).
    pub fn remove_from(&mut self, id: LegId, media: u64) {
        let Some(subscribers) = self.streams.get_mut(&media) else {
            return;
        };
        subscribers.video.retain(|l| *l != id);
        subscribers.audio.retain(|l| *l != id);
        subscribers.publish_counts();
        if subscribers.video.is_empty() && subscribers.audio.is_empty() {
            self.streams.remove(&media);
        }
    }

    /// Removes a leg from every list.
    pub fn remove(&mut self, id: LegId) {
        self.streams.retain(|_, subscribers| {
            let before = subscribers.video.len() + subscribers.audio.len();
            subscribers.video.retain(|l| *l != id);
            subscribers.audio.retain(|l| *l != id);
            if subscribers.video.len() + subscribers.audio.len() != before {
                subscribers.publish_counts();
            }
            !(subscribers.video.is_empty() && subscribers.audio.is_empty())
        });
    }

    /// Drops a padding-only packet, and numbers any other so that the
    /// numbers dropped leave no gap (`sfu::padding`): once per ingress
    /// packet, before its fan-out. A stream nobody subscribes to passes
    /// (it goes nowhere).
    pub fn admit(&mut self, ingress: &mut IngressPacket) -> Verdict {
        let header = &ingress.packet.header;
        let seq = header.sequence_number;
        let Some(subscribers) = self.streams.get_mut(&ingress.media) else {
            return Verdict::Forward(seq);
        };
        let skip = if ingress.video {
            subscribers.video_seq.get_mut(usize::from(ingress.layer))
        } else {
            Some(&mut subscribers.audio_seq)
        };
        let Some(skip) = skip else {
            return Verdict::Forward(seq);
        };
        let verdict = skip.admit(header.ssrc, seq, is_padding_only(&ingress.packet));
        if let Verdict::Forward(out) = verdict {
            ingress.packet.header.sequence_number = out;
        }
        verdict
    }

    /// The legs subscribed to a stream's video or audio.
    pub fn subscribers(&self, media: u64, video: bool) -> &[LegId] {
        match self.streams.get(&media) {
            Some(s) if video => &s.video,
            Some(s) => &s.audio,
            None => &[],
        }
    }
}

impl HubLoop {
    /// Writes each packet of `batch` to every subscribed leg: video first,
    /// then audio (each in arrival order; they are separate RTP streams), so
    /// a frame's packets to one leg stay adjacent for GSO. A leg that seals
    /// its own media gets the sealed datagram queued for the next flush; a
    /// leg that sends through its core gets the packet written into it.
    pub(super) fn fan_out(&mut self, batch: &mut Vec<IngressPacket>) {
        let now = Instant::now();
        let mut forwarded = 0u64;
        let mut forwarded_bytes = 0u64;
        let mut stale = 0u64;
        let mut padding = 0u64;
        let HubLoop {
            legs,
            fanouts,
            work,
            current,
            metrics,
            ..
        } = self;
        // Padding goes no further (one check per ingress packet, not per leg).
        batch.retain_mut(|ingress| match fanouts.admit(ingress) {
            Verdict::Forward(_) => true,
            Verdict::Padding => {
                padding += 1;
                false
            }
            Verdict::Stale => {
                stale += 1;
                false
            }
        });
        let ordered = batch
            .iter()
            .filter(|p| p.video)
            .chain(batch.iter().filter(|p| !p.video));
        for ingress in ordered {
            for &id in fanouts.subscribers(ingress.media, ingress.video) {
                *current = Some(id);
                let Some(leg) = legs.get_mut(&id) else {
                    continue;
                };
                let LegState::Connected(tracks, egress) = &mut leg.state else {
                    continue;
                };
                // Extensions were stripped by the forwarder, so this clone only
                // bumps the payload's refcount.
                let mut packet = ingress.packet.clone();
                let track = match &mut leg.source {
                    LegSource::TopN(mix) => {
                        let timestamp = packet.header.timestamp;
                        let routed = mix.route(ingress.media, ingress.audio_level, timestamp, now);
                        // Cheap when none is due (a time and 3 ids compared).
                        mix.indicate(now, &leg.inbox);
                        let Some((routed, timestamp)) = routed else {
                            continue; // not among the loudest
                        };
                        let Some(track) = tracks.slots.get_mut(routed.slot) else {
                            continue;
                        };
                        if routed.switched {
                            // Another talker: sequence numbers go on from the
                            // slot's highest (see `Rewriter::pause`).
                            track.rewriter.pause();
                        }
                        packet.header.timestamp = timestamp;
                        track
                    }
                    LegSource::Stream(_) => match tracks.get_mut(ingress.video) {
                        Some(track) => track,
                        None => continue,
                    },
                };
                if !track.enabled || track.paused {
                    continue;
                }
                if ingress.video {
                    // One layer of a simulcast stream per leg (`sfu::layers`).
                    let info = PacketInfo {
                        timestamp: packet.header.timestamp,
                        captured: ingress.capture_ntp,
                        marker: packet.header.marker,
                    };
                    let admitted = leg.layers.admit(ingress.layer, info, &packet.payload, now);
                    match admitted {
                        Admit::Drop => continue,
                        Admit::Defer => {
                            if let LegSource::Stream(media) = &leg.source {
                                if leg.layers.cut() {
                                    // Nothing is shown until it comes.
                                    media.request_keyframe_urgently_on(leg.layers.target());
                                } else {
                                    media.request_keyframe_on(leg.layers.target());
                                }
                            }
                            continue;
                        }
                        Admit::Forward => {}
                        Admit::Switch { gap_ticks } => {
                            track.rewriter.switch_source(gap_ticks);
                            if leg.auto.is_some() {
                                tracing::info!(
                                    link = leg.link_id.0,
                                    layer = leg.layers.current(),
                                    gap_ms = u64::from(gap_ticks) / 90,
                                    "auto layer switched"
                                );
                            }
                            // The old layer is no longer needed by this leg.
                            if let LegSource::Stream(media) = &leg.source {
                                let mask = crate::server::sfu::wanted::leg_wants(
                                    leg.layers.current(),
                                    leg.layers.target(),
                                    leg.auto.is_some(),
                                );
                                media.want_layers(leg.link_id, mask);
                            }
                        }
                    }
                }
                // A relayed stream's link reopened (another SSRC, its own
                // numbering): the leg goes on from where it was.
                if matches!(leg.source, LegSource::Stream(_))
                    && track.rewriter.source_changed(ingress.packet.header.ssrc)
                {
                    track.rewriter.switch_source(if ingress.video {
                        RELINK_GAP_VIDEO
                    } else {
                        RELINK_GAP_AUDIO
                    });
                }
                if !track.rewriter.rewrite(&mut packet) {
                    stale += 1;
                    continue;
                }
                let level = match egress {
                    Egress::Direct { srtp, .. } => {
                        if let (Some(id), Some(level), false) =
                            (leg.audio_level_ext, ingress.audio_level, ingress.video)
                        {
                            super::direct::set_audio_level(&mut packet, id, level);
                        }
                        if let (Some(id), true) = (leg.capture_time_ext, ingress.video)
                            && ingress.capture_ntp != 0
                        {
                            super::direct::set_capture_time(&mut packet, id, ingress.capture_ntp);
                        }
                        // Sealed here, sent at the next flush; the core never sees it.
                        // Numbered (TWCC) with its size on the wire: + the
                        // extension and the GCM tag.
                        let len = rtp_len(&packet);
                        let stamp = leg
                            .twcc
                            .as_mut()
                            .map(|t| t.stamp(now, len as usize + TWCC_OVERHEAD));
                        if let Some(datagram) = srtp.seal_stamped(&mut packet, stamp) {
                            leg.pending.push(datagram);
                            track.report.on_sent(now, &packet);
                            forwarded_bytes += len;
                            leg.counters.packets += 1;
                            leg.counters.bytes += len;
                            if ingress.video {
                                leg.counters.video_bytes += len;
                            }
                            if let Some(history) = track.history.as_mut() {
                                history.push(now, packet, stamp.map(|(_, n)| n));
                            }
                            forwarded += 1;
                        }
                        Work::Send
                    }
                    Egress::Core => {
                        // Straight into the pipeline: `RTCRtpSender::write_rtp`
                        // would rebuild the sender's parameters (allocating)
                        // for every packet to check what `Rewriter` already
                        // guarantees (our SSRC, the negotiated payload type,
                        // no extensions). The track id is unused on this path.
                        let len = rtp_len(&packet);
                        let written = leg.pc.handle_write(TaggedRTCMessage {
                            now,
                            message: RTCMessage::RtpPacket(String::new(), packet),
                        });
                        if written.is_ok() {
                            forwarded += 1;
                            forwarded_bytes += len;
                            leg.counters.packets += 1;
                            leg.counters.bytes += len;
                            if ingress.video {
                                leg.counters.video_bytes += len;
                            }
                        }
                        Work::Writes
                    }
                };
                mark(work, id, leg, level);
            }
        }
        batch.clear();
        metrics
            .forwarded_packets
            .fetch_add(forwarded, Ordering::Relaxed);
        metrics
            .forwarded_bytes
            .fetch_add(forwarded_bytes, Ordering::Relaxed);
        if padding > 0 {
            metrics
                .padding_packets_dropped
                .fetch_add(padding, Ordering::Relaxed);
        }
        if stale > 0 {
            metrics
                .stale_packets_dropped
                .fetch_add(stale, Ordering::Relaxed);
        }
    }
}

/// Bytes a numbered packet carries beyond [`rtp_len`]: the one-byte
/// extension block (4 + 3 + 1 padding) and the AES-GCM tag (16).
pub(super) const TWCC_OVERHEAD: usize = 8 + 16;

/// An RTP packet's size on the wire before SRTP: the fixed header, its CSRCs
/// and the payload (the forwarder strips extensions).
fn rtp_len(packet: &rtc::rtp::Packet) -> u64 {
    (12 + 4 * packet.header.csrc.len() + packet.payload.len()) as u64
}
