//! The actor's side of top-N audio: the `enable-top-n-audio` request, the
//! link it answers, and a decoder per slot as the slots' tracks arrive.
//!
//! One top-N link per session at most. Its slots are [`RemoteStream`]s made
//! here (no stream id of their own: `StreamId(0)`, user `top-n-<slot>`); a
//! track is given the next slot in arrival order, each slot with its own
//! [`Receiver`] (own Opus decoder, own PCM queue) sharing one
//! [`PlayoutGain`]. Disabling, leaving and the session's end close the link
//! and end the slots. A resumed session keeps its link (the server kept
//! it); after a rejoin (a new server session, e.g. the server restarted) the
//! SDK asks the new server for a top-N link and feeds the same slots
//! ([`Session::relink_top_n`]), so the application's [`TopNAudio`] plays on.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::super::subscribe::Receiver;
use super::super::top_n::{PlayoutGain, TopNAudio};
use super::super::{ClientError, ClientResult, RemoteStream, RoomEvent};
use super::{Session, unexpected};
use crate::link::PeerLink;
use crate::protocol::{LinkId, Reply, Request, StreamId, StreamInfo, UserId};
/// Slots the SFU offers (`server::sfu::topn::SLOTS`; the client does not
/// import the server, the protocol fixes three).
const SLOTS: usize = 3;

/// The session's top-N link.
pub(super) struct TopNLink {
    pub(super) link_id: LinkId,
    pub(super) link: PeerLink,
    /// One per slot; the next track that arrives gets `receivers[next]`.
    receivers: Vec<Receiver>,
    next: usize,
    audio: TopNAudio,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Session {
    /// `enable_top_three_audio_mode`.
    pub(super) async fn enable_top_n(&mut self, enable: bool) -> ClientResult<Option<TopNAudio>> {
        let signal = self.signal()?;
        if !enable {
            signal
                .request(Request::EnableTopNAudio { enable: false })
                .await?;
            self.close_top_n().await;
            return Ok(None);
        }
        if self.top_n.is_some() {
            return Err(ClientError::InvalidOperation(
                "top-N audio is already enabled".into(),
            ));
        }
        let gain = PlayoutGain::default();
        let receivers: Vec<Receiver> = (0..SLOTS)
            .map(|_| Receiver::new(self.decode).with_gain(gain.clone()))
            .collect();
        let slots = receivers
            .iter()
            .enumerate()
            .map(|(i, r)| RemoteStream {
                info: StreamInfo {
                    stream_id: StreamId(0),
                    user_id: UserId(format!("top-n-{i}")),
                    audio: true,
                    video: None,
                    audio_muted: false,
                    video_muted: false,
                    is_screen: false,
                    resolutions: Vec::new(),
                },
                video: Arc::clone(&r.video),
                audio_rx: r.audio_rx.clone(),
                stats: Arc::clone(&r.stats),
                ended: Arc::clone(&r.ended),
                frames: r.frames.clone(),
                tap: Arc::clone(&r.tap),
            })
            .collect();
        let audio = TopNAudio { slots, gain };
        self.open_top_n(receivers, audio.clone()).await?;
        Ok(Some(audio))
    }

    /// Asks the server for a top-N link, answers it and keeps it, the slots
    /// fed by `receivers`.
    async fn open_top_n(&mut self, receivers: Vec<Receiver>, audio: TopNAudio) -> ClientResult<()> {
        let signal = self.signal()?;
        let reply = signal
            .request(Request::EnableTopNAudio { enable: true })
            .await?;
        let Reply::TopNOffer { link_id, sdp } = reply else {
            return Err(unexpected(&reply));
        };
        let (link, signals) = PeerLink::with_policy(self.rtc_ip, &self.ice)
            .await
            .map_err(ClientError::from)?;
        let answer = match link.answer(sdp).await {
            Ok(answer) => answer,
            Err(e) => {
                link.close().await;
                // Best effort: the server drops its leg, so a retry starts afresh.
                signal
                    .request(Request::EnableTopNAudio { enable: false })
                    .await
                    .ok();
                return Err(ClientError::from(e));
            }
        };
        self.top_n = Some(TopNLink {
            link_id,
            link,
            receivers,
            next: 0,
            audio,
            tasks: vec![self.spawn_link_task(link_id, signals)],
        });
        if let Err(e) = signal
            .request(Request::Answer {
                link_id,
                sdp: answer,
            })
            .await
        {
            self.close_top_n().await;
            return Err(e);
        }
        Ok(())
    }

    /// After a rejoin: the old server's top-N link is gone; the new server
    /// gets asked for one that feeds the same slots. If it refuses, the
    /// slots end and the application is told ([`RoomEvent::Error`]).
    pub(super) async fn relink_top_n(&mut self) {
        let Some(old) = self.top_n.take() else {
            return;
        };
        for task in old.tasks {
            task.abort();
        }
        old.link.close().await;
        let audio = old.audio.clone();
        let opened = self.open_top_n(old.receivers, old.audio).await;
        for slot in &audio.slots {
            // A slot whose old track ended before this plays again.
            slot.ended.store(opened.is_err(), Ordering::Release);
        }
        if let Err(e) = opened {
            self.emit(RoomEvent::Error {
                code: e.code(),
                message: format!("top-N audio not restored after rejoining: {e}"),
            });
        }
    }

    /// A track of link `link_id` arrived: if it is the top-N link's, decode
    /// it into the next slot. Returns whether it was.
    pub(super) fn top_n_track(
        &mut self,
        link_id: LinkId,
        track: Arc<dyn webrtc::media_stream::track_remote::TrackRemote>,
    ) -> bool {
        let Some(top_n) = self.top_n.as_mut().filter(|t| t.link_id == link_id) else {
            return false;
        };
        if let Some(receiver) = top_n.receivers.get(top_n.next) {
            top_n
                .tasks
                .push(tokio::spawn(receiver.clone().run_track(track)));
            top_n.next += 1;
        }
        true
    }

    /// The top-N link, if it is `link_id`.
    pub(super) fn top_n_link(&self, link_id: LinkId) -> Option<&PeerLink> {
        self.top_n
            .as_ref()
            .filter(|t| t.link_id == link_id)
            .map(|t| &t.link)
    }

    /// Closes the top-N link; its slots end.
    pub(super) async fn close_top_n(&mut self) {
        let Some(top_n) = self.top_n.take() else {
            return;
        };
        for task in top_n.tasks {
            task.abort();
        }
        top_n.link.close().await;
        for slot in &top_n.audio.slots {
            slot.ended.store(true, Ordering::Release);
        }
    }
}
