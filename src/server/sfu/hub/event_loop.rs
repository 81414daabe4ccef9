//! The hub's loop: one task on the hub's thread that owns every leg and runs
//! each input to completion (a command, a batch of ingress packets, a batch
//! of datagrams, a timer), then services the legs that input touched and
//! sends what they have to send.
//!
//! Panic isolation: every step runs under `catch_unwind`. The loop notes the
//! leg it works on (`current`); a panic drops only that leg, without calling
//! into its core again, and removes it from every table in one go (fan-out
//! lists and their counts, routes, the work list), so nothing outside the leg
//! is left half-updated.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use rtc::peer_connection::event::RTCPeerConnectionEvent;
use rtc::peer_connection::message::{RTCMessage, TaggedRTCMessage};
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::peer_connection::transport::RTCIceCandidateInit;
use rtc::rtcp::transport_feedbacks::transport_layer_nack::TransportLayerNack;
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};
use tokio::sync::mpsc;

use super::demux::{Route, Routes};
use super::fanout::Fanouts;
use super::leg::{Leg, LegState, Work};
use super::udp::UdpIo;
use super::{Command, LegId, LegSource, hub_gone};
use crate::link::LinkError;
use crate::server::inbox::LinkState;
use crate::server::metrics::Metrics;
use crate::server::sfu::error::SfuError;
use crate::server::sfu::media::IngressPacket;

/// Ingress packets the hub takes off its queue per wake-up.
const MEDIA_BATCH: usize = 64;

/// `recvmmsg` batches read per wake-up before the loop looks at its other
/// inputs.
const READ_ROUNDS: usize = 64;

/// A timer that is already due is handled at most once per this interval per
/// leg, so a core whose deadline does not advance cannot spin the loop.
const MIN_TIMER_INTERVAL: Duration = Duration::from_millis(1);

/// How often the hub looks for sender reports due on directly sending legs.
const REPORT_CHECK_INTERVAL: Duration = Duration::from_millis(100);

/// How the hub's work batches up, logged at debug level every
/// [`HubStats::PERIOD`].
#[derive(Default)]
struct HubStats {
    since: Option<Instant>,
    wakes: u64,
    ingress: u64,
    datagrams: u64,
    messages: u64,
}

impl HubStats {
    const PERIOD: Duration = Duration::from_secs(10);

    fn maybe_log(&mut self, legs: usize, gso: bool) {
        let now = Instant::now();
        let since = *self.since.get_or_insert(now);
        if now.duration_since(since) < Self::PERIOD {
            return;
        }
        tracing::debug!(
            legs,
            gso,
            wakes = self.wakes,
            ingress = self.ingress,
            datagrams = self.datagrams,
            messages = self.messages,
            "egress hub batching over the last {:?}",
            Self::PERIOD
        );
        *self = HubStats {
            since: Some(now),
            ..HubStats::default()
        };
    }
}

/// Puts leg `id` on the work list for the next service pass, with at least
/// `work` to do.
pub(super) fn mark(list: &mut Vec<LegId>, id: LegId, leg: &mut Leg, work: Work) {
    if leg.work == Work::None {
        list.push(id);
    }
    leg.work = leg.work.max(work);
}

pub(super) struct HubLoop {
    io: UdpIo,
    pub(super) legs: HashMap<LegId, Leg>,
    next_leg: LegId,
    routes: Routes,
    pub(super) fanouts: Fanouts,
    /// Legs with something to do in the next service pass (see [`Work`]).
    pub(super) work: Vec<LegId>,
    out: Vec<(SocketAddr, BytesMut)>,
    stats: HubStats,
    /// When directly sending legs are next checked for due sender reports.
    next_reports: Instant,
    /// The leg being worked on, for [`HubLoop::step`] to blame on a panic.
    pub(super) current: Option<LegId>,
    pub(super) metrics: Arc<Metrics>,
    /// Keeps the media channel open while the hub runs, so `recv_many` never
    /// returns "closed" in a loop.
    _media_open: mpsc::Sender<IngressPacket>,
}

impl HubLoop {
    pub(super) fn new(
        io: UdpIo,
        metrics: Arc<Metrics>,
        media_open: mpsc::Sender<IngressPacket>,
    ) -> Self {
        Self {
            io,
            legs: HashMap::new(),
            next_leg: 1,
            routes: Routes::default(),
            fanouts: Fanouts::default(),
            work: Vec::new(),
            out: Vec::new(),
            stats: HubStats::default(),
            next_reports: Instant::now(),
            current: None,
            metrics,
            _media_open: media_open,
        }
    }

    pub(super) async fn run(
        mut self,
        mut commands: mpsc::Receiver<Command>,
        mut media: mpsc::Receiver<IngressPacket>,
    ) {
        let mut batch = Vec::with_capacity(MEDIA_BATCH);
        loop {
            let reports = (self.metrics.direct_egress_legs.get() > 0).then_some(self.next_reports);
            // Probes pace their padding whichever input wakes the loop.
            let probes = self.legs.values().filter_map(|l| l.probe_due()).min();
            let deadline = self
                .legs
                .values()
                .filter_map(|l| l.deadline)
                .chain(probes)
                .chain(reports)
                .min()
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                command = commands.recv() => match command {
                    #[cfg(test)]
                    Some(Command::Barrier(reply)) => {
                        while let Ok(packet) = media.try_recv() {
                            batch.push(packet);
                            self.step("fan-out", |hub| hub.fan_out(&mut batch));
                            batch.clear();
                        }
                        reply.send(()).ok(); // test gone
                    }
                    Some(command) => self.step("a command", |hub| hub.command(command)),
                    None => break,
                },
                n = media.recv_many(&mut batch, MEDIA_BATCH) => {
                    self.stats.ingress += n as u64;
                    if n > 0 {
                        self.step("fan-out", |hub| hub.fan_out(&mut batch));
                        batch.clear();
                    }
                }
                ready = self.io.readable() => {
                    if ready.is_ok() {
                        self.step("a read", Self::read_socket);
                    }
                }
                () = tokio::time::sleep_until(deadline.into()) => {
                    self.step("a timer", Self::timeouts);
                }
            }
            if probes.is_some_and(|due| due <= Instant::now()) {
                self.step("probes", Self::probes);
            }
            self.stats.wakes += 1;
            self.step("service", Self::service);
            self.stats.maybe_log(self.legs.len(), self.io.gso());
        }
        // Every handle is gone: close what is left (its gauges fall with it).
        let ids: Vec<LegId> = self.legs.keys().copied().collect();
        for id in ids {
            self.close_leg(id);
        }
        self.flush();
    }

    /// Runs one step of the loop. A panic in it (an `rtc` core fed something
    /// it did not expect, or a bug of ours) costs only the leg being worked on
    /// (`self.current`), which is dropped and reported failed; every other leg
    /// carries on.
    pub(super) fn step(&mut self, what: &'static str, f: impl FnOnce(&mut Self)) {
        self.current = None;
        let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(self)));
        if let Err(panic) = run {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            self.recover(what, &message);
        }
        self.current = None;
    }

    fn recover(&mut self, what: &'static str, message: &str) {
        self.metrics.egress_panics.fetch_add(1, Ordering::Relaxed);
        match self.current.take() {
            Some(id) => {
                tracing::error!(
                    leg = id,
                    "egress leg panicked in {what}: {message}; dropping it"
                );
                self.drop_poisoned(id);
            }
            None => tracing::error!("egress hub panicked in {what}: {message}"),
        }
        // The step stopped midway: look at every leg again.
        self.work.clear();
        for (&id, leg) in self.legs.iter_mut() {
            leg.work = Work::None;
            mark(&mut self.work, id, leg, Work::All);
        }
    }

    /// Removes leg `id` from every table the loop keeps outside the leg:
    /// fan-out lists (and the stream's subscriber counts), routes, work list.
    fn forget(&mut self, id: LegId) {
        self.fanouts.remove(id);
        self.routes.forget(id);
        self.work.retain(|w| *w != id);
    }

    /// Forgets a leg whose core panicked, without calling into it again.
    fn drop_poisoned(&mut self, id: LegId) {
        self.forget(id);
        let Some(leg) = self.legs.remove(&id) else {
            return;
        };
        let report = (!matches!(leg.state, LegState::Failed)).then(|| leg.owner());
        // Its state may be half-updated: do not run its destructor's code
        // unguarded either. Dropped (gauges released) before it is reported.
        let dropped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(leg)));
        if dropped.is_err() {
            tracing::error!(leg = id, "egress leg panicked while being dropped");
        }
        if let Some((inbox, link_id)) = report {
            inbox.link_event(link_id, LinkState::Failed);
        }
    }

    fn command(&mut self, command: Command) {
        match command {
            Command::Create(request, reply) => {
                let result = self.create(*request);
                if let Err(Ok((id, _))) = reply.send(result) {
                    // The requester gave up waiting: nobody owns the leg.
                    self.close_leg(id);
                }
            }
            Command::Answer(id, sdp, reply) => {
                self.current = Some(id);
                let result = match self.legs.get_mut(&id) {
                    Some(leg) => {
                        let now = Instant::now();
                        let r = leg.answer(sdp, now);
                        if r.is_ok() {
                            let local_addr = self.io.ice_addr();
                            for (from, datagram) in leg.take_early_checks() {
                                read_into(leg, now, local_addr, from, datagram);
                            }
                        }
                        mark(&mut self.work, id, leg, Work::All);
                        r
                    }
                    None => Err(hub_gone()),
                };
                reply.send(result).ok(); // requester gone: nothing to report to
            }
            Command::RestartIce(id, reply) => {
                self.current = Some(id);
                let local_addr = self.io.ice_addr();
                let result = match self.legs.get_mut(&id) {
                    Some(leg) => {
                        let r = leg.restart(local_addr, Instant::now());
                        if let Ok((ufrag, _)) = &r {
                            tracing::info!(
                                link = leg.link_id.0,
                                restarts = leg.restarts,
                                ufrag = %ufrag,
                                "egress leg: ICE restart offered"
                            );
                            // Checks for the new credentials find the leg
                            // by their ufrag, like the first ones.
                            self.routes.add_leg(id, ufrag.clone());
                        }
                        mark(&mut self.work, id, leg, Work::All);
                        r.map(|(_, sdp)| sdp)
                    }
                    None => Err(hub_gone()),
                };
                reply.send(result).ok(); // requester gone: nothing to report to
            }
            Command::Candidate(id, candidate, reply) => {
                self.current = Some(id);
                let result = match self.legs.get_mut(&id) {
                    Some(leg) => {
                        let r = leg
                            .pc
                            .add_remote_candidate(RTCIceCandidateInit {
                                candidate: candidate.candidate,
                                sdp_mid: candidate.sdp_mid,
                                sdp_mline_index: candidate.sdp_mline_index,
                                ..Default::default()
                            })
                            .map_err(|e| SfuError::Candidate(LinkError::InvalidSdp(e.to_string())));
                        mark(&mut self.work, id, leg, Work::All);
                        r
                    }
                    None => Err(hub_gone()),
                };
                reply.send(result).ok(); // requester gone: nothing to report to
            }
            Command::Forwarding(id, audio, video) => {
                if let Some(leg) = self.legs.get_mut(&id) {
                    leg.set_forwarding(audio, video);
                }
            }
            Command::Layer(id, target) => {
                if let Some(leg) = self.legs.get_mut(&id) {
                    leg.set_layer_target(target);
                }
            }
            Command::TopNSource(id, change) => {
                self.current = Some(id);
                if let Some(leg) = self.legs.get_mut(&id)
                    && let LegSource::TopN(mix) = &mut leg.source
                {
                    // A connected leg joins or leaves the source's fan-out
                    // now; one still connecting joins all its sources then.
                    let connected = matches!(leg.state, LegState::Connected(..));
                    match mix.change(change) {
                        Ok(media) if connected => self.fanouts.add_audio(id, &media),
                        Ok(_) => {}
                        Err(media) => self.fanouts.remove_from(id, media),
                    }
                }
            }
            #[cfg(test)]
            Command::Barrier(reply) => {
                reply.send(()).ok(); // handled by the loop; never here
            }
            #[cfg(test)]
            Command::EarlyChecks(id, reply) => {
                let n = self.legs.get(&id).map_or((0, 0), |leg| {
                    (leg.early_checks_held(), leg.early_checks_replayed)
                });
                reply.send(n).ok(); // test gone
            }
            #[cfg(test)]
            Command::Selected(id, reply) => {
                let found = self
                    .legs
                    .get_mut(&id)
                    .map_or((None, 0), |leg| (leg.selected_remote(), leg.restarts));
                reply.send(found).ok(); // test gone
            }
            #[cfg(test)]
            Command::Probe(id, request) => {
                if let Some(leg) = self.legs.get_mut(&id) {
                    leg.start_probe(Instant::now(), request);
                }
            }
            #[cfg(test)]
            Command::Estimate(id, reply) => {
                let found = self.legs.get(&id).and_then(|leg| {
                    let twcc = leg.twcc.as_ref()?;
                    let p = &twcc.prober;
                    Some((twcc.downlink.estimate()?, [p.started, p.passed, p.failed]))
                });
                reply.send(found).ok(); // test gone
            }
            #[cfg(test)]
            Command::Inject(id, packet) => {
                if let Some(leg) = self.legs.get_mut(&id)
                    && let super::leg::LegState::Connected(
                        _,
                        super::leg::Egress::Direct { srtp, .. },
                    ) = &mut leg.state
                    && let Some(datagram) = srtp.seal(&packet)
                {
                    leg.pending.push(datagram);
                    mark(&mut self.work, id, leg, Work::Send);
                }
            }
            #[cfg(test)]
            Command::Panic(id) => {
                self.current = Some(id);
                panic!("injected by a test");
            }
            Command::Close(id, reply) => {
                self.close_leg(id);
                self.flush();
                reply.send(()).ok(); // requester gone: it was closing anyway
            }
            Command::Snapshot(reply) => {
                let legs = self
                    .legs
                    .iter()
                    .map(|(&id, leg)| super::LegSnapshot::of(id, leg))
                    .collect();
                reply.send(legs).ok(); // requester gone: nobody to show it to
            }
        }
    }

    fn create(&mut self, mut request: super::CreateLeg) -> Result<(LegId, String), SfuError> {
        let now = Instant::now();
        let (mut leg, ufrag, sdp) = match request.remote_offer.take() {
            Some(offer) => Leg::answer_offer(request, offer, self.io.ice_addr(), now)?,
            None => Leg::offer(request, self.io.ice_addr(), now)?,
        };
        let id = self.next_leg;
        self.next_leg += 1;
        self.routes.add_leg(id, ufrag);
        mark(&mut self.work, id, &mut leg, Work::All);
        self.legs.insert(id, leg);
        Ok((id, sdp))
    }

    fn close_leg(&mut self, id: LegId) {
        self.current = Some(id);
        self.forget(id);
        let Some(mut leg) = self.legs.remove(&id) else {
            return;
        };
        leg.forget_audio_loss();
        if let Err(e) = leg.pc.close() {
            tracing::debug!("closing egress leg: {e}");
        }
        // close_notify to the subscriber, if DTLS was up.
        while let Some(w) = leg.pc.poll_write() {
            self.out.push((w.transport.peer_addr, w.message));
        }
    }

    fn read_socket(&mut self) {
        let now = Instant::now();
        let HubLoop {
            io,
            legs,
            routes,
            work,
            current,
            ..
        } = self;
        let local_addr = io.ice_addr();
        for _ in 0..READ_ROUNDS {
            let read = io.recv(|from, datagram| {
                let id = match routes.route(from, datagram) {
                    Route::Leg(id) => id,
                    Route::Unverified(id) => {
                        // DTLS/SRTCP from where our checks went: only once
                        // ICE has selected that address (then it is bound).
                        let selected = legs.get_mut(&id).and_then(Leg::selected_remote);
                        if selected != Some(from) {
                            tracing::trace!(%from, "egress hub: datagram from an unverified address");
                            return;
                        }
                        routes.verify(id, from);
                        id
                    }
                    Route::Nowhere => return, // not for any leg we know
                };
                *current = Some(id);
                let Some(leg) = legs.get_mut(&id) else {
                    return;
                };
                if leg.hold_early_check(from, datagram) {
                    return;
                }
                read_into(leg, now, local_addr, from, BytesMut::from(datagram));
                mark(work, id, leg, Work::All);
            });
            if read == 0 {
                return;
            }
        }
    }

    fn timeouts(&mut self) {
        let now = Instant::now();
        if now >= self.next_reports {
            self.next_reports = now + REPORT_CHECK_INTERVAL;
            self.sender_reports(now);
        }
        for (&id, leg) in self.legs.iter_mut() {
            self.current = Some(id);
            if leg.deadline.is_some_and(|d| d <= now) {
                leg.deadline = None;
                leg.last_timer = Some(now);
                if let Err(e) = leg.pc.handle_timeout(now) {
                    tracing::trace!("egress leg timeout: {e}");
                }
                let replay = leg.dtls_replay.poll(now);
                if !replay.is_empty() {
                    tracing::debug!(
                        datagrams = replay.len(),
                        "egress leg: DTLS handshake silent, last flight replayed"
                    );
                    self.out.extend(replay);
                }
                mark(&mut self.work, id, leg, Work::All);
            }
        }
    }

    /// Sends the padding due on legs that probe their downlink (`probe_leg`).
    fn probes(&mut self) {
        let now = Instant::now();
        for (&id, leg) in self.legs.iter_mut() {
            if leg.probe_due().is_some_and(|d| d <= now) {
                self.current = Some(id);
                leg.send_probe_padding(now);
                mark(&mut self.work, id, leg, Work::Send);
            }
        }
    }

    /// Writes the sender reports due on directly sending legs into their
    /// cores (which encrypt them with their SRTCP state).
    fn sender_reports(&mut self, now: Instant) {
        for (&id, leg) in self.legs.iter_mut() {
            self.current = Some(id);
            let due = leg.due_reports(now);
            if due.is_empty() {
                continue;
            }
            let written = leg.pc.handle_write(TaggedRTCMessage {
                now,
                message: RTCMessage::RtcpPacket(String::new(), due),
            });
            if let Err(e) = written {
                tracing::debug!("egress sender report: {e}");
            }
            mark(&mut self.work, id, leg, Work::Writes);
        }
    }

    /// Services every leg on the work list: its events, reads (RTCP for us)
    /// and timer as [`Work`] says, its writes; then sends.
    fn service(&mut self) {
        let now = Instant::now();
        let list = std::mem::take(&mut self.work);
        for &id in &list {
            self.current = Some(id);
            let HubLoop {
                legs,
                routes,
                fanouts,
                metrics,
                out,
                ..
            } = self;
            let Some(leg) = legs.get_mut(&id) else {
                continue;
            };
            let work = std::mem::replace(&mut leg.work, Work::None);
            if work == Work::All {
                while let Some(event) = leg.pc.poll_event() {
                    match event {
                        RTCPeerConnectionEvent::OnIceConnectionStateChangeEvent(_) => {
                            follow_selected_pair(routes, id, leg);
                        }
                        RTCPeerConnectionEvent::OnConnectionStateChangeEvent(state) => {
                            on_state(fanouts, routes, metrics, id, leg, state);
                        }
                        _ => {}
                    }
                }
                while let Some(message) = leg.pc.poll_read() {
                    if let RTCMessage::RtcpPacket(_, packets) = message.message {
                        let keyframe_requests = packets
                            .iter()
                            .filter(|p| super::fanout::is_keyframe_request(p.as_ref()))
                            .count() as u64;
                        leg.counters.plis += keyframe_requests;
                        if keyframe_requests > 0
                            && let LegSource::Stream(media) = &leg.source
                        {
                            // The layer it decodes (and the one it waits for).
                            // After a step down under congestion it shows
                            // nothing until the target's keyframe, or lost
                            // it: only that one, urgently (`sfu::layers`).
                            if leg.layers.starved(now) {
                                media.request_keyframe_urgently_on(leg.layers.target());
                            } else {
                                media.request_keyframe_on(leg.layers.current());
                                media.request_keyframe_on(leg.layers.target());
                            }
                        }
                        for nack in packets
                            .iter()
                            .filter_map(|p| p.as_any().downcast_ref::<TransportLayerNack>())
                        {
                            metrics.nacks_received.fetch_add(1, Ordering::Relaxed);
                            let resent = leg.retransmit(nack, now);
                            leg.counters.nacks += 1;
                            leg.counters.retransmitted += resent;
                            metrics
                                .retransmitted_packets
                                .fetch_add(resent, Ordering::Relaxed);
                        }
                        leg.on_twcc_feedback(&packets, now);
                        leg.on_rtcp_for_layers(&packets, now);
                        leg.report_audio_loss(&packets, now);
                    }
                }
            }
            if work >= Work::Writes {
                while let Some(w) = leg.pc.poll_write() {
                    let to = w.transport.peer_addr;
                    // A DTLS retransmission goes out as first sent (link::dtls_replay).
                    let message = leg.dtls_replay.on_send(now, to, w.message);
                    routes.sent(id, to, &message);
                    out.push((to, message));
                }
            }
            if work == Work::All {
                let next = earliest(leg.pc.poll_timeout(), leg.dtls_replay.next_due());
                // A deadline already due right after a timer: wait a little.
                leg.deadline = next.map(|d| match leg.last_timer {
                    Some(t) => d.max(t + MIN_TIMER_INTERVAL),
                    None => d,
                });
            } else if work == Work::Writes && leg.deadline.is_none() {
                // Writing media can arm a timer that was idle (reports).
                leg.deadline = earliest(leg.pc.poll_timeout(), leg.dtls_replay.next_due());
            }
            leg.send_pending(out);
        }
        // Keep the allocation.
        let mut list = list;
        list.clear();
        if self.work.is_empty() {
            self.work = list;
        }
        self.flush();
    }

    /// Sends what the service pass collected; counts what the kernel refused.
    fn flush(&mut self) {
        if self.out.is_empty() {
            return;
        }
        let sent = self.io.send(&mut self.out);
        self.stats.datagrams += sent.datagrams as u64;
        self.stats.messages += sent.messages as u64;
        if sent.dropped > 0 {
            self.metrics
                .egress_datagrams_dropped
                .fetch_add(sent.dropped as u64, Ordering::Relaxed);
        }
    }
}

/// The earlier of two optional deadlines.
fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Binds the remote end of the leg's ICE-selected pair to it, and sends its
/// directly sealed media there (the pair can change, e.g. on renomination).
fn follow_selected_pair(routes: &mut Routes, id: LegId, leg: &mut Leg) {
    let Some(selected) = leg.selected_remote() else {
        return;
    };
    routes.verify(id, selected);
    leg.set_media_dest(selected);
}

fn on_state(
    fanouts: &mut Fanouts,
    routes: &mut Routes,
    metrics: &Metrics,
    id: LegId,
    leg: &mut Leg,
    state: RTCPeerConnectionState,
) {
    match state {
        RTCPeerConnectionState::Connected => {
            leg.dtls_replay.finish(); // DTLS is up: later repeats are the core's
            follow_selected_pair(routes, id, leg);
            if leg.connect(metrics) {
                let (video, audio) = leg.kinds();
                match &leg.source {
                    LegSource::Stream(media) => fanouts.add(id, media, video, audio),
                    LegSource::TopN(mix) => {
                        for media in mix.sources() {
                            fanouts.add_audio(id, media);
                        }
                    }
                }
                leg.report(LinkState::Connected);
            }
        }
        RTCPeerConnectionState::Failed | RTCPeerConnectionState::Closed if leg.fail() => {
            leg.dtls_replay.finish();
            fanouts.remove(id);
        }
        _ => {}
    }
}

/// Hands a datagram from `from` to the leg's core.
fn read_into(
    leg: &mut Leg,
    now: Instant,
    local_addr: SocketAddr,
    from: SocketAddr,
    datagram: BytesMut,
) {
    let read = leg.pc.handle_read(TaggedBytesMut {
        now,
        transport: TransportContext {
            local_addr,
            peer_addr: from,
            ecn: None,
            transport_protocol: TransportProtocol::UDP,
        },
        message: datagram,
    });
    if let Err(e) = read {
        tracing::trace!("egress leg read: {e}");
    }
}
