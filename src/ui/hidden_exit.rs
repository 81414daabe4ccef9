//! Kiosk exit that passers-by will not hit: Escape held for [`HOLD`], or three
//! clicks in the top-left corner within [`TRIPLE_WINDOW`].

use std::time::{Duration, Instant};

/// How long Escape must be held.
pub const HOLD: Duration = Duration::from_secs(2);
/// Window for the three corner clicks.
pub const TRIPLE_WINDOW: Duration = Duration::from_millis(1500);
/// Corner size, points.
const CORNER: f32 = 48.0;

/// Tracks the gestures.
#[derive(Debug, Default)]
pub struct HiddenExit {
    escape_since: Option<Instant>,
    clicks: Vec<Instant>,
}

impl HiddenExit {
    /// Feeds this frame's input; true when the user asked to exit.
    pub fn update(&mut self, ctx: &egui::Context) -> bool {
        let now = Instant::now();
        let (escape, corner_click) = ctx.input(|i| {
            let click = i.pointer.primary_clicked()
                && i.pointer
                    .interact_pos()
                    .is_some_and(|p| p.x < CORNER && p.y < CORNER);
            (i.key_down(egui::Key::Escape), click)
        });
        if escape {
            let since = *self.escape_since.get_or_insert(now);
            if now - since >= HOLD {
                return true;
            }
            ctx.request_repaint_after(Duration::from_millis(100));
        } else {
            self.escape_since = None;
        }
        if corner_click {
            self.clicks.retain(|t| now - *t < TRIPLE_WINDOW);
            self.clicks.push(now);
            if self.clicks.len() >= 3 {
                return true;
            }
        }
        false
    }
}
