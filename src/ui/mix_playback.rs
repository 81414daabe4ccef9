//! Plays the music the "Music" menu mixes into what we publish on our own
//! speaker too (`AudioMixOption::play_locally`): a thread that takes the
//! mixing's local frames and hands them to the same speaker playout remote
//! streams use. It ends when dropped or when the mixing is gone.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::client::AudioMixing;

use super::devices::AudioPlayout;

/// How long the thread waits for a frame before it looks at its stop flag.
const POLL: Duration = Duration::from_millis(200);

/// Owns the playback thread; stops it when dropped.
pub struct MixPlayback {
    stop: Arc<AtomicBool>,
    /// New playouts (speaker switched); the thread takes the newest.
    playouts: crossbeam_channel::Sender<Box<dyn AudioPlayout>>,
}

impl MixPlayback {
    /// Starts playing `mixing`'s local frames on `playout`.
    pub fn start(
        mixing: &AudioMixing,
        mut playout: Box<dyn AudioPlayout>,
    ) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let frames = mixing.local_playback();
        // Speaker switches are rare user actions, and the thread drains them
        // on its next frame.
        let (playouts, new_playouts) = crossbeam_channel::unbounded::<Box<dyn AudioPlayout>>();
        let thread_stop = Arc::clone(&stop);
        std::thread::Builder::new()
            .name("huddle-mix-playback".into())
            .spawn(move || {
                while !thread_stop.load(Ordering::Relaxed) {
                    match frames.recv_timeout(POLL) {
                        Ok(frame) => {
                            if let Some(next) = new_playouts.try_iter().last() {
                                playout = next;
                            }
                            playout.play(&frame, 1.0);
                        }
                        Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
                        Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
                    }
                }
            })?;
        Ok(Self { stop, playouts })
    }

    /// Plays on `playout` from the next frame on (speaker switched).
    pub fn set_playout(&self, playout: Box<dyn AudioPlayout>) {
        // Fails only when the thread has ended: nothing left to play.
        self.playouts.send(playout).ok();
    }
}

impl Drop for MixPlayback {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
