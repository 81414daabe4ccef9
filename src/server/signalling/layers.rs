//! The session's side of simulcast layers (`protocol::layers`, issue 10 §2):
//! checking a layered `publish`, `add-resolution` / `remove-resolution` on the
//! caller's streams, and which layer each of the caller's subscriptions
//! forwards.
//!
//! A subscription's [`LayerChoice`] is resolved against the stream's active
//! layers (its `StreamInfo::resolutions`) to a slot, and the slot goes to the
//! egress leg, which switches at the slot's next keyframe (`sfu::layers`).
//! The choice is resolved again on every `stream-updated` of the stream that
//! passes through this session ([`Session::follow_layers`]), so a subscriber
//! on a removed layer moves to the largest one left. `auto` forwards the
//! largest layer until the SFU estimates subscribers' downlinks (issue 10 §2,
//! not done yet).

use super::{RequestError, Session, subscribed};
use crate::protocol::layers::{LayerChoice, LayerError, check_resolution, check_resolutions};
use crate::protocol::{Event, Reply, ServerMessage, StreamId, VideoInfo, VideoResolution};
use crate::server::inbox::SessionEvent;

impl From<LayerError> for RequestError {
    fn from(e: LayerError) -> Self {
        RequestError::Layer(e)
    }
}

/// Checks a publish's layers against its video: layers need video, and the
/// largest is the video the stream declares.
pub(super) fn check_publish_layers(
    video: Option<VideoInfo>,
    resolutions: &[VideoResolution],
) -> Result<(), RequestError> {
    check_resolutions(resolutions)?;
    match (video, resolutions.first()) {
        (_, None) => Ok(()),
        (None, Some(_)) => Err(RequestError::InvalidParameter(
            "resolutions need video".into(),
        )),
        (Some(v), Some(top)) if (v.width, v.height) != (top.width, top.height) => {
            Err(RequestError::InvalidParameter(format!(
                "the video is {}x{} but the largest resolution {} is {}x{}",
                v.width, v.height, top.resolution_id, top.width, top.height
            )))
        }
        _ => Ok(()),
    }
}

/// The slot `choice` comes to on a stream with `active` layers whose slots
/// are named `slots`: `None` for a stream without layers. A fixed layer that
/// is not active is refused (91000102); `fallback` takes the largest instead
/// (the layer was removed under the subscriber).
pub(crate) fn resolve(
    choice: &LayerChoice,
    active: &[VideoResolution],
    slots: &[String],
    fallback: bool,
) -> Result<Option<u8>, LayerError> {
    let slot = |id: &str| {
        slots
            .iter()
            .position(|s| s == id)
            .and_then(|p| u8::try_from(p).ok())
    };
    if slots.is_empty() {
        return match choice {
            LayerChoice::Fixed(id) => Err(LayerError::Unknown(id.clone())),
            _ => Ok(None),
        };
    }
    let top = active.first().and_then(|r| slot(&r.resolution_id));
    match choice {
        LayerChoice::Top | LayerChoice::Auto => Ok(top),
        LayerChoice::Fixed(id) => match active.iter().find(|r| &r.resolution_id == id) {
            Some(r) => Ok(slot(&r.resolution_id)),
            None if fallback => Ok(top),
            None => Err(LayerError::Unknown(id.clone())),
        },
    }
}

impl Session {
    /// Tells the caller which layers of its new stream are wanted as that
    /// changes (`sfu::announce_layers_wanted`); nothing for a stream without
    /// layers.
    pub(super) fn announce_layers_wanted(
        &self,
        stream_id: StreamId,
        media: std::sync::Arc<crate::server::sfu::PublishedMedia>,
    ) {
        let inbox = self.inbox_tx.clone();
        tokio::spawn(crate::server::sfu::announce_layers_wanted(
            media, stream_id, inbox,
        ));
    }

    /// `add-resolution`: sends a layer of the caller's stream again.
    pub(super) fn add_resolution(
        &mut self,
        stream_id: StreamId,
        resolution: VideoResolution,
    ) -> Result<Reply, RequestError> {
        let room_id = self.joined()?.room_id.clone();
        check_resolution(&resolution)?;
        let (_, media) = self.shared.rooms.stream(&room_id, stream_id)?;
        let slots = media.layers();
        let Some(slot) = slots.iter().position(|s| *s == resolution.resolution_id) else {
            return Err(LayerError::Unknown(resolution.resolution_id).into());
        };
        self.shared
            .rooms
            .change_stream(&room_id, self.id, stream_id, |info| {
                if info
                    .resolutions
                    .iter()
                    .any(|r| r.resolution_id == resolution.resolution_id)
                {
                    return Err(RequestError::from(LayerError::Exists(
                        resolution.resolution_id.clone(),
                    )));
                }
                // Kept in slot order: largest first.
                let at = info
                    .resolutions
                    .iter()
                    .position(|r| {
                        slots
                            .iter()
                            .position(|s| *s == r.resolution_id)
                            .is_some_and(|p| p > slot)
                    })
                    .unwrap_or(info.resolutions.len());
                info.resolutions.insert(at, resolution);
                check_resolutions(&info.resolutions)?;
                Ok(())
            })?;
        Ok(Reply::Ok)
    }

    /// `remove-resolution`: stops one layer of the caller's stream.
    pub(super) fn remove_resolution(
        &mut self,
        stream_id: StreamId,
        resolution_id: String,
    ) -> Result<Reply, RequestError> {
        let room_id = self.joined()?.room_id.clone();
        self.shared
            .rooms
            .change_stream(&room_id, self.id, stream_id, |info| {
                let Some(at) = info
                    .resolutions
                    .iter()
                    .position(|r| r.resolution_id == resolution_id)
                else {
                    return Err(RequestError::from(LayerError::Unknown(
                        resolution_id.clone(),
                    )));
                };
                if info.resolutions.len() == 1 {
                    return Err(RequestError::InvalidOperation(format!(
                        "{resolution_id} is the stream's last resolution: unpublish instead"
                    )));
                }
                info.resolutions.remove(at);
                Ok(())
            })?;
        Ok(Reply::Ok)
    }

    /// An `auto` subscription's leg moved to layer `slot`, or paused its
    /// video (`None`): `stream-subscribed` for the client.
    pub(super) fn auto_layer_moved(
        &mut self,
        link_id: crate::protocol::LinkId,
        slot: Option<u8>,
    ) -> Option<ServerMessage> {
        let (stream_id, sub) = self
            .subscriptions
            .iter_mut()
            .find(|(_, s)| s.link_id == link_id)?;
        let ServerMessage::Event {
            event:
                Event::StreamSubscribed {
                    stream_id,
                    audio,
                    video,
                    ..
                },
        } = subscribed(*stream_id, &sub.link, None)
        else {
            return None;
        };
        if let Some(slot) = slot {
            sub.slot = Some(slot);
        }
        Some(ServerMessage::Event {
            event: Event::StreamSubscribed {
                stream_id,
                audio,
                video: video && slot.is_some(),
                resolution_id: slot.and_then(|_| sub.resolution_id()),
            },
        })
    }

    /// A `stream-updated` on its way to the client: a subscription to that
    /// stream resolves its layer again (its layer may be gone).
    pub(super) fn follow_layers(&mut self, message: &ServerMessage) {
        let ServerMessage::Event {
            event: Event::StreamUpdated { stream },
        } = message
        else {
            return;
        };
        if stream.resolutions.is_empty() {
            return;
        }
        let Some(sub) = self.subscriptions.get_mut(&stream.stream_id) else {
            return;
        };
        let Ok(Some(slot)) = resolve(&sub.layer, &stream.resolutions, &sub.slots, true) else {
            return;
        };
        if sub.slot != Some(slot) {
            sub.slot = Some(slot);
            sub.link.set_layer(slot, false);
            if sub.layer == LayerChoice::Auto {
                // The hub chooses again, from the largest layer left.
                sub.link.set_layer(slot, true);
            }
            // Our own inbox: if it is full the session is already being closed.
            let event = subscribed(stream.stream_id, &sub.link, sub.resolution_id());
            self.inbox_tx
                .try_send(SessionEvent::Send(Box::new(event)))
                .ok();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(id: &str, width: u32) -> VideoResolution {
        VideoResolution {
            resolution_id: id.into(),
            width,
            height: width / 2,
            frame_rate: 15,
        }
    }

    #[test]
    fn choices_resolve_to_slots() {
        let slots: Vec<String> = ["hi", "mid", "lo"].map(String::from).to_vec();
        let all = [r("hi", 1280), r("mid", 640), r("lo", 320)];
        let fixed = |id: &str| LayerChoice::Fixed(id.into());
        assert_eq!(resolve(&LayerChoice::Top, &all, &slots, false), Ok(Some(0)));
        assert_eq!(
            resolve(&LayerChoice::Auto, &all, &slots, false),
            Ok(Some(0))
        );
        assert_eq!(resolve(&fixed("lo"), &all, &slots, false), Ok(Some(2)));
        let no_top = [r("mid", 640), r("lo", 320)];
        assert_eq!(
            resolve(&LayerChoice::Top, &no_top, &slots, false),
            Ok(Some(1))
        );
        assert_eq!(
            resolve(&fixed("hi"), &no_top, &slots, false),
            Err(LayerError::Unknown("hi".into()))
        );
        assert_eq!(resolve(&fixed("hi"), &no_top, &slots, true), Ok(Some(1)));
        assert_eq!(resolve(&LayerChoice::Top, &[], &[], false), Ok(None));
        assert!(resolve(&fixed("x"), &[], &[], false).is_err());
    }
}
