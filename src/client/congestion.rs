//! The publisher adapts: the uplink estimate drives the encoders (issue 10 §1).
//!
//! ```text
//!  publish link: TWCC feedback ─▶ GCC (link::congestion) ─▶ SendEstimate
//!                                                               │ every RATE_TICK
//!  cap (set_network_bandwidth) ─▶ rate_task: total = min(estimate, cap, profile max),
//!                                   bounded by what the path showed it carries
//!                                   (acked rate, loss, standing queue: path_ceiling)
//!                                   ├─ audio: its profile rate first, never below AUDIO_FLOOR_BPS
//!                                   └─ video: the rest × VIDEO_SHARE ─▶ RateLadder ─▶ RateControl
//!  video encode (media pool) ◀── rung (size, fps) + bitrate + FrameBudget ──┘
//!  audio encode (media pool) ◀── Opus bitrate ──────────────────────────────┘
//! ```
//!
//! The ladder, the path bound and the budget split are pure functions of their
//! inputs ([`crate::media::rate_ladder`], [`super::path_ceiling`], [`split_budget`]);
//! while the path bound probes above a capacity the path showed, the ladder
//! keeps the picture size that capacity pays for and only the bitrate follows
//! the probe (a new size is a keyframe, and a lost keyframe a freeze); the task only samples the
//! estimate and publishes the decision. The encoders read the decision under
//! a short lock once per frame.
//!
//! Invariant: nothing here queues media. When the path collapses below the
//! last rung, the video frame budget drops frames before encoding and the
//! pacer's queue stays bounded ([`crate::link::congestion::PACER_QUEUE_PACKETS`]).

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::path_ceiling::PathCeiling;
use crate::link::congestion::{CongestionConfig, EstimateSnapshot, SendEstimate};
use crate::media::rate_ladder::{LadderDecision, RateLadder};
use crate::media::{AudioProfile, VideoProfile};

/// How often the estimate is sampled and the ladder decided.
pub const RATE_TICK: Duration = Duration::from_millis(100);

/// Opus never goes below this, whatever the estimate: audio keeps priority.
pub const AUDIO_FLOOR_BPS: u32 = 16_000;

/// Share of what is left after audio that the video encoder targets; the rest
/// covers RTP/SRTP headers, the header extensions and retransmissions, which
/// the estimate counts and the encoder's target does not.
pub const VIDEO_SHARE: f64 = 0.85;

/// While the path has shown a ceiling (a narrow path, [`super::path_ceiling`]),
/// the H.264 encoder targets this share of the video budget, while the frame
/// budget ([`crate::media::rate_ladder::FrameBudget`]) refills at the whole
/// budget. What the encoder leaves saves towards the next keyframe (a
/// periodic IDR at 640x360 of a busy picture is some 15 KB, six P-frames'
/// worth) and its overshoot (openh264 without frame skipping), so the budget
/// need not drop the frames after each keyframe. Measured on a 500 kbit/s
/// uplink: docs/PERFORMANCE.md, issue 10 §1.
pub const KEYFRAME_HEADROOM: f64 = 0.8;

/// The encoders' total target rises at most this factor per second (falls at
/// once). GCC's loss-based half climbs 5 % every 200 ms (28 %/s) while the
/// path loses nothing; followed that fast, the encoder overshoots a narrow
/// path every few seconds and every overshoot is a burst of loss. Measured on
/// a 500 kbit/s `tc tbf` uplink (docs/PERFORMANCE.md, issue 10).
pub const MAX_RISE_PER_SEC: f64 = 1.15;

/// While the loss the estimator averages is above this (GCC's own "hold"
/// band, 2 %), the encoders' target does not rise at all: loss on a narrow
/// path is the only congestion signal that reliably reaches the estimator
/// there (docs/PERFORMANCE.md, issue 10), and climbing through it drives the
/// loss past 10 %, where GCC cuts the estimate deeply.
pub const HOLD_LOSS: f64 = rtc::interceptor::GCC_LOW_LOSS;

/// Smallest cap [`crate::client::Client::set_network_bandwidth`] accepts, kbit/s.
/// The seed's range starts at 3072; huddle goes down to the estimator's floor
/// so a cap can emulate a narrow path.
pub const MIN_NETWORK_BANDWIDTH_KBPS: u32 = 100;

/// Largest cap, kbit/s (the seed's maximum).
pub const MAX_NETWORK_BANDWIDTH_KBPS: u32 = 51_200;

/// The estimator starts here when nothing bounds it lower: the profile's
/// ceiling, so a good path shows full quality from the first second and a
/// narrow one is found within a few feedback intervals.
fn initial_estimate(ceiling_bps: u32) -> f64 {
    f64::from(ceiling_bps)
}

/// What a publication sends and why, as the SDK's stats show it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct SendRateStats {
    /// The uplink estimate (GCC), bit/s; `None` on a link without congestion control.
    pub estimate_bps: Option<f64>,
    /// Its delay-based half, bit/s.
    pub delay_based_bps: Option<f64>,
    /// Its loss-based half, bit/s.
    pub loss_based_bps: Option<f64>,
    /// TWCC feedback reports received so far.
    pub feedback_reports: u64,
    /// What the far end acknowledged, bit/s (`link::acked_rate`).
    pub acked_bps: Option<f64>,
    /// The fraction of the packets sent over the last half second reported lost.
    pub recent_loss: Option<f64>,
    /// The standing queue on the uplink, ms.
    pub queue_ms: Option<f64>,
    /// The capacity the path last showed ([`super::path_ceiling`]), bit/s.
    pub path_ceiling_bps: Option<u32>,
    /// What the link fills to with probe padding now, bit/s
    /// ([`crate::link::probe_padding`]: only while probing a path that
    /// showed congestion; 0 otherwise).
    pub probe_bps: u32,
    /// Probe padding the link sent so far, bytes (RTP).
    pub padding_bytes: u64,
    /// The cap set by `set_network_bandwidth` (or the stream option), bit/s.
    pub cap_bps: Option<u32>,
    /// Audio + video encoder targets, bit/s.
    pub target_bps: u32,
    /// H.264 target bitrate, bit/s.
    pub video_target_bps: u32,
    /// Opus target bitrate, bit/s.
    pub audio_target_bps: u32,
    /// Picture size encoded now.
    pub width: u32,
    /// Picture size encoded now.
    pub height: u32,
    /// Frames per second encoded now.
    pub frame_rate: u32,
    /// Rung of the ladder (0 = the full profile).
    pub rung: usize,
    /// Ladder steps down or up so far.
    pub rung_changes: u64,
    /// Encoded video bytes so far (what the encoder handed to the link).
    pub video_bytes: u64,
    /// Encoded audio bytes so far.
    pub audio_bytes: u64,
    /// Video frames encoded and sent so far.
    pub frames_encoded: u64,
    /// Frames left out to lower the frame rate (a ladder rung below full fps).
    pub frames_decimated: u64,
    /// Frames dropped because encoded video ran ahead of its budget.
    pub frames_dropped_budget: u64,
    /// Encoded video frames handed to the link (written to the track after
    /// it connected): the seed's `framesSent`.
    pub frames_sent: u64,
    /// Video frames handed to the link per simulcast layer slot (largest
    /// first; slot 0 is the top layer, counted also without layers): a
    /// layer nobody watches stops growing (`layers-wanted`).
    pub layer_frames_sent: [u64; 3],
    /// What the stream would send on an unbounded path, bit/s: its profiles'
    /// ceiling, or the cap when lower (network quality compares the
    /// estimate with it).
    pub wanted_bps: u32,
    /// The loss Opus plans its in-band FEC for, percent
    /// ([`crate::client::audio_fec`]).
    pub audio_expected_loss_percent: u8,
}

/// What the video encoder is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct VideoTarget {
    /// Rung and bitrate.
    pub(crate) decision: LadderDecision,
    /// The whole video budget (can be below the rung's bitrate at the bottom).
    pub(crate) budget_bps: u32,
    /// The full rung's size, to scale sources of another size in proportion.
    pub(crate) top: (u32, u32),
    /// Congestions taken so far ([`PathCeiling::congestions`]): at each, the
    /// encoder gives up what it had run ahead of its budget.
    pub(crate) congestions: u64,
    /// The path has shown a ceiling: an encoder made now keyframes less
    /// often (`publish::NARROW_KEYFRAME_INTERVAL_S`).
    pub(crate) narrow: bool,
}

/// Splits a total budget: Opus first (its profile rate while the total is at
/// least four times it, never below [`AUDIO_FLOOR_BPS`]), video gets
/// [`VIDEO_SHARE`] of the rest. Returns `(audio, video)` in bit/s.
#[must_use]
pub fn split_budget(total_bps: u32, audio_profile_bps: Option<u32>) -> (u32, u32) {
    let audio = audio_profile_bps.map_or(0, |max| {
        (total_bps / 4).clamp(AUDIO_FLOOR_BPS.min(max), max)
    });
    let video = (f64::from(total_bps.saturating_sub(audio)) * VIDEO_SHARE) as u32;
    (audio, video)
}

/// `allowed` (bit/s) at `now`, risen at most [`MAX_RISE_PER_SEC`] since the
/// `previous` total, and not at all while `loss` is above [`HOLD_LOSS`]; a
/// fall applies at once.
#[must_use]
pub fn limit_rise(
    previous: Option<(f64, Instant)>,
    allowed: u32,
    loss: Option<f64>,
    now: Instant,
) -> u32 {
    let Some((before, at)) = previous else {
        return allowed;
    };
    if loss.is_some_and(|l| l > HOLD_LOSS) {
        return allowed.min(before as u32);
    }
    let secs = now.saturating_duration_since(at).as_secs_f64().min(10.0);
    let most = before * MAX_RISE_PER_SEC.powf(secs);
    (f64::from(allowed).min(most.ceil())) as u32
}

/// The total a publication may send: the estimate, bounded by the cap and by
/// what the profiles can use at most.
#[must_use]
pub fn total_budget(estimate_bps: Option<f64>, cap_bps: Option<u32>, ceiling_bps: u32) -> u32 {
    let estimate = estimate_bps.map_or(u32::MAX, |e| e.max(0.0).min(f64::from(u32::MAX)) as u32);
    estimate.min(cap_bps.unwrap_or(u32::MAX)).min(ceiling_bps)
}

/// The most a publication can use: video at its profile maximum (grossed up
/// for [`VIDEO_SHARE`]) plus audio at its profile rate.
#[must_use]
pub fn ceiling_bps(video: Option<&VideoProfile>, audio: Option<&AudioProfile>) -> u32 {
    let audio = audio.map_or(0, AudioProfile::bitrate_bps);
    let video = video.map_or(0, |v| {
        (f64::from(v.max_bitrate_bps()) / VIDEO_SHARE).ceil() as u32
    });
    audio + video
}

/// The estimator's configuration for a publication with this ceiling and cap.
#[must_use]
pub fn link_config(ceiling: u32, cap_bps: Option<u32>) -> CongestionConfig {
    let defaults = CongestionConfig::default();
    let start = ceiling.min(cap_bps.unwrap_or(u32::MAX));
    CongestionConfig {
        initial_bps: initial_estimate(start).max(defaults.min_bps),
        // Room to find headroom above the ceiling (the estimate is reported as
        // is), but not to drift to the library's 100 Mbit/s while app-limited.
        max_bps: (f64::from(ceiling) * 2.0).max(defaults.min_bps * 2.0),
        ..defaults
    }
}

/// [`link_config`] for a stream about to be published.
pub(crate) fn link_config_for(
    stream: &super::stream::LocalStream,
    cap_bps: Option<u32>,
) -> CongestionConfig {
    let ceiling = ceiling_bps(
        stream.has_video().then_some(&stream.video_profile),
        stream.has_audio().then_some(&stream.audio_profile),
    );
    link_config(ceiling, cap_bps)
}

struct State {
    stats: SendRateStats,
    /// The total target after the rise limit, and when it was set.
    total: Option<(f64, Instant)>,
    path: PathCeiling,
    video: Option<VideoTarget>,
    audio_profile_bps: Option<u32>,
    ceiling_bps: u32,
    /// The uplink loss fraction the estimator last averaged.
    uplink_loss: Option<f64>,
    /// The worst subscriber's audio loss, percent (`downlink-loss`).
    downlink_loss: Option<u8>,
}

/// The decision shared between the rate task and the encoders.
#[derive(Clone)]
pub(crate) struct RateControl(Arc<Mutex<State>>);

impl RateControl {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Every critical section is a field update: a poisoned lock is consistent.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A control for a publication with these profiles (`None`: no such
    /// track) and an optional cap (bit/s), before any estimate.
    pub(crate) fn new(
        video: Option<(&RateLadder, &VideoProfile)>,
        audio: Option<&AudioProfile>,
        cap_bps: Option<u32>,
    ) -> Self {
        let ceiling = ceiling_bps(video.map(|(_, p)| p), audio);
        let state = State {
            stats: SendRateStats {
                cap_bps,
                wanted_bps: ceiling,
                audio_expected_loss_percent: super::audio_fec::expected_loss_percent(None, None),
                ..SendRateStats::default()
            },
            total: None,
            path: PathCeiling::default(),
            video: None,
            audio_profile_bps: audio.map(AudioProfile::bitrate_bps),
            ceiling_bps: ceiling,
            uplink_loss: None,
            downlink_loss: None,
        };
        let control = Self(Arc::new(Mutex::new(state)));
        if let Some((ladder, _)) = video {
            let mut ladder = ladder.clone();
            control.update(&mut Some(&mut ladder), None, false, Instant::now());
        } else {
            control.update(&mut None, None, false, Instant::now());
        }
        control
    }

    /// Sets or lifts the cap (bit/s); applies at the next tick.
    pub(crate) fn set_cap(&self, cap_bps: Option<u32>) {
        self.lock().stats.cap_bps = cap_bps;
    }

    /// What the video encoder should do now.
    pub(crate) fn video(&self) -> Option<VideoTarget> {
        self.lock().video
    }

    /// Opus's target now, bit/s.
    pub(crate) fn audio_bps(&self) -> u32 {
        self.lock().stats.audio_target_bps
    }

    /// The loss Opus should plan its FEC for now, percent.
    pub(crate) fn audio_expected_loss(&self) -> u8 {
        self.lock().stats.audio_expected_loss_percent
    }

    /// The server reported the worst subscriber's audio loss (percent).
    pub(crate) fn set_downlink_loss(&self, percent: u8) {
        let mut state = self.lock();
        state.downlink_loss = Some(percent);
        state.stats.audio_expected_loss_percent =
            super::audio_fec::expected_loss_percent(state.uplink_loss, state.downlink_loss);
    }

    /// The stats as of now.
    pub(crate) fn stats(&self) -> SendRateStats {
        self.lock().stats
    }

    pub(crate) fn count_video(&self, bytes: usize) {
        let mut state = self.lock();
        state.stats.video_bytes += bytes as u64;
        state.stats.frames_encoded += 1;
    }

    /// One encoded video frame was handed to the link.
    pub(crate) fn count_sent(&self) {
        self.lock().stats.frames_sent += 1;
    }

    pub(crate) fn count_audio(&self, bytes: usize) {
        self.lock().stats.audio_bytes += bytes as u64;
    }

    pub(crate) fn count_decimated(&self) {
        self.lock().stats.frames_decimated += 1;
    }

    pub(crate) fn count_budget_drop(&self) {
        self.lock().stats.frames_dropped_budget += 1;
    }

    /// One decision from an estimate (`None`: no congestion control);
    /// `can_pad`: the link can send probe padding.
    fn update(
        &self,
        ladder: &mut Option<&mut RateLadder>,
        estimate: Option<EstimateSnapshot>,
        can_pad: bool,
        now: Instant,
    ) {
        let mut state = self.lock();
        let allowed = total_budget(
            estimate.map(|e| e.estimate_bps),
            state.stats.cap_bps,
            state.ceiling_bps,
        );
        let limit = total_budget(None, state.stats.cap_bps, state.ceiling_bps);
        let loss = estimate.and_then(|e| e.loss);
        let previous = state.total.map(|(t, _)| t as u32);
        let allowed = state
            .path
            .bound(allowed, limit, previous, estimate.as_ref(), can_pad, now);
        // The loss now where the link measures it; GCC's moving average lingers.
        let recent = estimate.and_then(|e| e.recent_loss.or(e.loss));
        let total = limit_rise(state.total, allowed, recent, now);
        // Back up to what the path showed it carries at once (after a drain,
        // or as a padded probe raises it): the slow rise guards against an
        // estimate that climbs past the path, and this is what arrived.
        let total = state
            .path
            .carried_bps()
            .map_or(total, |carried| total.max(allowed.min(carried)));
        state.total = Some((f64::from(total), now));
        let (audio, video_budget) = split_budget(total, state.audio_profile_bps);
        let (_, rung_budget) = split_budget(state.path.rung_total(total), state.audio_profile_bps);
        if estimate.is_some() {
            state.uplink_loss = loss;
        }
        state.stats.audio_expected_loss_percent =
            super::audio_fec::expected_loss_percent(state.uplink_loss, state.downlink_loss);
        let path_ceiling = state.path.ceiling_bps();
        let probe_bps = state.path.probe_bps();
        let congestions = state.path.congestions();
        let stats = &mut state.stats;
        if let Some(e) = estimate {
            stats.estimate_bps = Some(e.estimate_bps);
            stats.delay_based_bps = e.delay_based_bps;
            stats.loss_based_bps = e.loss_based_bps;
            stats.feedback_reports = e.feedback;
            stats.acked_bps = e.acked_bps;
            stats.recent_loss = e.recent_loss;
            stats.queue_ms = e.queue_ms;
        }
        stats.path_ceiling_bps = path_ceiling;
        stats.probe_bps = probe_bps;
        stats.audio_target_bps = audio;
        let video = ladder.as_deref_mut().map(|ladder| {
            let top = ladder
                .rungs()
                .first()
                .map_or((0, 0), |r| (r.width, r.height));
            let mut decision = ladder.decide_probing(video_budget, rung_budget, now);
            if path_ceiling.is_some() {
                decision.bitrate_bps = (f64::from(decision.bitrate_bps) * KEYFRAME_HEADROOM) as u32;
            }
            VideoTarget {
                decision,
                budget_bps: video_budget,
                top,
                congestions,
                narrow: path_ceiling.is_some(),
            }
        });
        if let Some(v) = video {
            if stats.rung != v.decision.rung && stats.frame_rate != 0 {
                stats.rung_changes += 1;
            }
            stats.rung = v.decision.rung;
            stats.width = v.decision.width;
            stats.height = v.decision.height;
            stats.frame_rate = v.decision.frame_rate;
            stats.video_target_bps = v.decision.bitrate_bps;
        }
        stats.target_bps = stats.audio_target_bps + stats.video_target_bps;
        state.video = video;
    }
}

/// Samples the estimate every [`RATE_TICK`] and publishes the decision; runs
/// until aborted with its publication.
pub(crate) async fn rate_task(
    control: RateControl,
    estimate: tokio::sync::watch::Receiver<Option<SendEstimate>>,
    mut ladder: Option<RateLadder>,
) {
    let mut tick = tokio::time::interval(RATE_TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        // The stream's current link's: a stream republished on a new link
        // follows that link's estimate.
        let estimate = estimate.borrow().clone();
        let snapshot = estimate.as_ref().map(SendEstimate::get);
        let can_pad = estimate.as_ref().is_some_and(|e| e.padding().can_pad());
        control.update(&mut ladder.as_mut(), snapshot, can_pad, Instant::now());
        if let Some(estimate) = &estimate {
            let stats = control.stats();
            estimate.set_sending(f64::from(stats.target_bps));
            estimate.padding().fill_to(stats.probe_bps);
            control.lock().stats.padding_bytes = estimate.padding().sent().bytes;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p720() -> &'static VideoProfile {
        VideoProfile::by_name("720p_1").expect("720p_1")
    }

    /// A rate control for 720p_1 with the default audio, and its ladder.
    fn control_720() -> (RateControl, Option<RateLadder>) {
        let ladder = RateLadder::new(1280, 720, 15, p720());
        let control = RateControl::new(
            Some((&ladder, p720())),
            Some(&AudioProfile::default()),
            None,
        );
        (control, Some(ladder))
    }

    #[test]
    fn audio_keeps_priority_down_to_its_floor() {
        assert_eq!(split_budget(1_000_000, Some(40_000)).0, 40_000);
        assert_eq!(split_budget(160_000, Some(40_000)).0, 40_000);
        assert_eq!(split_budget(100_000, Some(40_000)).0, 25_000);
        assert_eq!(split_budget(30_000, Some(40_000)).0, AUDIO_FLOOR_BPS);
        assert_eq!(
            split_budget(30_000, Some(12_000)).0,
            12_000,
            "never above its profile"
        );
        assert_eq!(split_budget(500_000, None), (0, 425_000));
        let (audio, video) = split_budget(500_000, Some(40_000));
        assert_eq!(video, ((500_000 - audio) as f64 * VIDEO_SHARE) as u32);
    }

    #[test]
    fn the_target_falls_at_once_rises_at_most_15_percent_a_second_and_holds_under_loss() {
        let t0 = Instant::now();
        let second = t0 + Duration::from_secs(1);
        assert_eq!(limit_rise(None, 700_000, None, t0), 700_000);
        let previous = Some((500_000.0, t0));
        assert_eq!(limit_rise(previous, 200_000, None, t0 + RATE_TICK), 200_000);
        assert_eq!(limit_rise(previous, 2_000_000, None, second), 575_000);
        assert_eq!(limit_rise(previous, 2_000_000, Some(0.01), second), 575_000);
        assert_eq!(limit_rise(previous, 520_000, None, second), 520_000);
        // Loss above 2 %: hold, but still fall at once.
        assert_eq!(limit_rise(previous, 2_000_000, Some(0.05), second), 500_000);
        assert_eq!(limit_rise(previous, 300_000, Some(0.05), second), 300_000);
    }

    #[test]
    fn the_cap_and_the_profile_bound_the_estimate() {
        let ceiling = ceiling_bps(Some(p720()), Some(&AudioProfile::default()));
        assert_eq!(ceiling, 40_000 + 1_764_706);
        assert_eq!(total_budget(Some(3e6), None, ceiling), ceiling);
        assert_eq!(total_budget(Some(3e6), Some(500_000), ceiling), 500_000);
        assert_eq!(
            total_budget(Some(300_000.0), Some(500_000), ceiling),
            300_000
        );
        assert_eq!(total_budget(None, Some(500_000), ceiling), 500_000);
    }

    #[test]
    fn a_cap_moves_the_decision_and_lifting_it_climbs_back() {
        let (control, mut ladder) = control_720();
        let t0 = Instant::now();
        let estimate = |bps: f64| EstimateSnapshot {
            estimate_bps: bps,
            ..EstimateSnapshot::default()
        };
        control.update(&mut ladder.as_mut(), Some(estimate(5e6)), false, t0);
        let s = control.stats();
        assert_eq!(
            (s.width, s.frame_rate, s.video_target_bps),
            (1280, 15, 1_500_000)
        );
        control.set_cap(Some(500_000));
        control.update(&mut ladder.as_mut(), Some(estimate(5e6)), false, t0);
        let s = control.stats();
        assert!(s.target_bps < 500_000, "{s:?}");
        // 460 kbit/s after audio, 85 % of it for video: 540p at 12 fps.
        assert_eq!((s.width, s.frame_rate), (960, 12), "{s:?}");
        control.set_cap(None);
        let mut t = t0;
        // 500 kbit/s → 745 kbit/s (what 720p at 15 fps needs with
        // hysteresis) at 15 %/s, plus one hold per rung.
        while control.stats().rung != 0 && t < t0 + Duration::from_secs(15) {
            t += RATE_TICK;
            control.update(&mut ladder.as_mut(), Some(estimate(5e6)), false, t);
        }
        assert_eq!(control.stats().rung, 0);
        assert_eq!(control.stats().rung_changes, 3, "one step down, two up");
    }

    /// On a path that showed its ceiling the encoder is asked for
    /// KEYFRAME_HEADROOM of what the frame budget admits; an open path
    /// gets it all.
    #[test]
    fn under_a_ceiling_the_encoder_leaves_headroom_for_keyframes() {
        let (control, mut ladder) = control_720();
        let t0 = Instant::now();
        let open = EstimateSnapshot {
            estimate_bps: 5e6,
            ..EstimateSnapshot::default()
        };
        control.update(&mut ladder.as_mut(), Some(open), true, t0);
        let video = control.video().expect("video");
        assert_eq!(video.decision.bitrate_bps, 1_500_000);
        assert!(!video.narrow);
        // 1.6 Mbit/s sent into a 500 kbit/s path: two thirds lost.
        let collapse = EstimateSnapshot {
            acked_bps: Some(480_000.0),
            sent_bps: Some(1_600_000.0),
            recent_loss: Some(0.66),
            queue_ms: Some(150.0),
            ..open
        };
        control.update(&mut ladder.as_mut(), Some(collapse), true, t0 + RATE_TICK);
        let video = control.video().expect("video");
        assert_eq!(control.stats().path_ceiling_bps, Some(480_000));
        assert!(video.narrow, "keyframes less often under a ceiling");
        assert_eq!(
            video.decision.bitrate_bps,
            (f64::from(video.budget_bps) * KEYFRAME_HEADROOM) as u32,
            "{video:?}"
        );
    }

    /// After a collapse the total drains at DRAIN × C, then is back at
    /// BACKOFF × C at once (what arrived needs no 15 %/s climb).
    #[test]
    fn after_a_drain_the_total_is_back_at_the_hold_at_once() {
        let (control, mut ladder) = control_720();
        let audio = AudioProfile::default();
        let t0 = Instant::now();
        let open = EstimateSnapshot {
            estimate_bps: 5e6,
            ..EstimateSnapshot::default()
        };
        control.update(&mut ladder.as_mut(), Some(open), true, t0);
        let snapshot = |acked: f64, sent: f64, loss: f64, queue: f64| EstimateSnapshot {
            acked_bps: Some(acked),
            sent_bps: Some(sent),
            recent_loss: Some(loss),
            queue_ms: Some(queue),
            ..open
        };
        let budget = |total| split_budget(total, Some(audio.bitrate_bps())).1;
        control.update(
            &mut ladder.as_mut(),
            Some(snapshot(480_000.0, 1_600_000.0, 0.66, 400.0)),
            true,
            t0 + RATE_TICK,
        );
        let draining = control.video().expect("video");
        assert_eq!(draining.budget_bps, budget(240_000));
        control.update(
            &mut ladder.as_mut(),
            Some(snapshot(240_000.0, 250_000.0, 0.0, 0.0)),
            true,
            t0 + RATE_TICK * 2,
        );
        let held = control.video().expect("video");
        assert_eq!(held.budget_bps, budget(384_000), "no slow climb back");
        assert_eq!(
            held.decision.rung, draining.decision.rung,
            "the drain moved no rung"
        );
    }
}
