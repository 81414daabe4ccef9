//! `huddle bot --screen`: the bot shares a screen or one window of an X
//! display (seed `createStream({screen: true})`), as a second stream beside
//! its test pattern, or alone.
//!
//! Why this exists: the screen-sharing path (X11 capture, screen-content
//! encoding, `isScreen`) needs a publisher that runs without the desktop app,
//! for tests and for trying a server.

use crate::client::{Client, ClientError, ClientResult, LocalStream};
use crate::media::devices::ScreenCaptureConfig;
use crate::protocol::{ErrorCode, StreamId};

/// Opens the capture and publishes it. A capture that cannot open (no
/// display 90100024, no such window 90100019) ends the bot with its code.
pub(super) async fn share(client: &Client, config: &ScreenCaptureConfig) -> ClientResult<StreamId> {
    let config = config.clone();
    // Opening connects to the X server and reads a first picture: blocking.
    let stream = tokio::task::spawn_blocking(move || LocalStream::open_screen(&config))
        .await
        .map_err(|e| ClientError::Media(format!("screen capture task: {e}")))?
        .map_err(|e| ClientError::Server {
            code: ErrorCode::from_code(e.seed_code()).unwrap_or(ErrorCode::InvalidParameter),
            message: format!("--screen: {e}"),
        })?;
    client.publish(stream).await
}
