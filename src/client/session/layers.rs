//! Simulcast layers on the session (`protocol::layers`, issue 10 §2): the
//! publisher removes and adds back layers of its stream (seed
//! `removeResolution` / `addResolution`), a subscriber picks the layer it
//! receives (`resolutionId` or `auto`).
//!
//! A layer can be added back only if the stream was published with it: its
//! track was negotiated then, and adding a new one would need a new offer
//! (not done: remove it and publish again).

use super::super::{ClientError, ClientResult, LayerCommand};
use super::Session;
use crate::protocol::{LayerChoice, Request, StreamId, VideoResolution};

impl Session {
    pub(super) async fn on_layer_command(&mut self, command: LayerCommand) {
        match command {
            LayerCommand::Add(stream_id, id, reply) => {
                let result = self.set_resolution_sent(stream_id, &id, true).await;
                reply.send(result).ok();
            }
            LayerCommand::Remove(stream_id, id, reply) => {
                let result = self.set_resolution_sent(stream_id, &id, false).await;
                reply.send(result).ok();
            }
            LayerCommand::Choose(stream_id, choice, reply) => {
                let result = self.choose_resolution(stream_id, choice).await;
                reply.send(result).ok();
            }
        }
    }

    /// Adds back (`on`) or removes one layer of a published stream.
    async fn set_resolution_sent(
        &mut self,
        stream_id: StreamId,
        id: &str,
        on: bool,
    ) -> ClientResult<()> {
        let signal = self.signal()?;
        let publication = self.publications.get(&stream_id).ok_or_else(|| {
            ClientError::InvalidParameter(format!("stream {stream_id} is not published here"))
        })?;
        let Some(slot) = publication
            .resolutions
            .iter()
            .position(|r| r.resolution_id == id)
        else {
            return Err(ClientError::InvalidParameter(format!(
                "stream {stream_id} was not published with resolution {id:?}"
            )));
        };
        let resolution = publication.resolutions[slot].clone();
        if on {
            // Encoding first, so subscribers that move to it find pictures.
            publication.pipeline.set_layer_active(slot, true);
            signal
                .request(Request::AddResolution {
                    stream_id,
                    resolution,
                })
                .await?;
        } else {
            signal
                .request(Request::RemoveResolution {
                    stream_id,
                    resolution_id: id.to_owned(),
                })
                .await?;
            if let Some(p) = self.publications.get(&stream_id) {
                p.pipeline.set_layer_active(slot, false);
            }
        }
        Ok(())
    }

    /// `layers-wanted` for a stream published here: encode its lower layers
    /// that are listed, skip the others (the top layer stays encoded).
    /// Unknown ids and streams are ignored.
    pub(super) fn on_layers_wanted(&mut self, stream_id: StreamId, ids: &[String]) {
        let Some(publication) = self.publications.get(&stream_id) else {
            return;
        };
        for (slot, wanted) in wanted_slots(&publication.resolutions, ids)
            .into_iter()
            .enumerate()
        {
            publication.pipeline.set_layer_wanted(slot, wanted);
        }
    }

    /// Picks the layer a subscription receives.
    async fn choose_resolution(
        &mut self,
        stream_id: StreamId,
        choice: LayerChoice,
    ) -> ClientResult<()> {
        let signal = self.signal()?;
        let options = self
            .subscriptions
            .get(&stream_id)
            .map(|s| s.options)
            .ok_or_else(|| {
                ClientError::InvalidParameter(format!("not subscribed to stream {stream_id}"))
            })?;
        signal
            .request(Request::Subscribe {
                stream_id,
                audio: options.audio,
                video: options.video,
                resolution_id: choice.to_wire(),
            })
            .await?;
        Ok(())
    }
}

/// Whether each of `published` (slot order) is named in `ids`; ids that name
/// no layer are ignored.
fn wanted_slots(published: &[VideoResolution], ids: &[String]) -> Vec<bool> {
    published
        .iter()
        .map(|r| ids.contains(&r.resolution_id))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(id: &str) -> VideoResolution {
        VideoResolution {
            resolution_id: id.into(),
            width: 320,
            height: 180,
            frame_rate: 15,
        }
    }

    #[test]
    fn unknown_resolution_ids_are_ignored() {
        let published = [layer("360p_2"), layer("180p_2")];
        let ids = ["360p_2".to_owned(), "nope".to_owned(), "".to_owned()];
        assert_eq!(wanted_slots(&published, &ids), [true, false]);
        let ids = ["180p_2".to_owned(), "720p_1".to_owned()];
        assert_eq!(wanted_slots(&published, &ids), [false, true]);
        assert_eq!(wanted_slots(&[], &ids), Vec::<bool>::new());
    }
}
