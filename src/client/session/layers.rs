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
use crate::protocol::{LayerChoice, Request, StreamId};

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
