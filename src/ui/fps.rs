//! Counts UI frames: shown in the debug overlay, logged every [`LOG_EVERY`].

use std::time::{Duration, Instant};

/// Log period.
pub const LOG_EVERY: Duration = Duration::from_secs(5);

/// Frame counter.
#[derive(Debug)]
pub struct FpsCounter {
    window_start: Instant,
    frames: u32,
    fps: f32,
    last_log: Instant,
    log_frames: u32,
}

impl Default for FpsCounter {
    fn default() -> Self {
        let now = Instant::now();
        Self {
            window_start: now,
            frames: 0,
            fps: 0.0,
            last_log: now,
            log_frames: 0,
        }
    }
}

impl FpsCounter {
    /// Counts one frame; every [`LOG_EVERY`] returns the average fps since the
    /// last log line.
    pub fn tick(&mut self, now: Instant) -> Option<f32> {
        self.frames += 1;
        self.log_frames += 1;
        let dt = now - self.window_start;
        if dt >= Duration::from_secs(1) {
            self.fps = self.frames as f32 / dt.as_secs_f32();
            self.frames = 0;
            self.window_start = now;
        }
        let since_log = now - self.last_log;
        if since_log >= LOG_EVERY {
            let fps = self.log_frames as f32 / since_log.as_secs_f32();
            self.log_frames = 0;
            self.last_log = now;
            return Some(fps);
        }
        None
    }

    /// Frames in the last full second.
    pub fn fps(&self) -> f32 {
        self.fps
    }
}
