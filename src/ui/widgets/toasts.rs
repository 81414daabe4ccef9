//! Short-lived messages in the top-right corner (SDK errors and notices).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// How long a toast stays.
const TOAST_LIFETIME: Duration = Duration::from_secs(6);
/// Most toasts kept; older ones are dropped.
const MAX_TOASTS: usize = 5;

/// The queue of toasts.
#[derive(Default)]
pub struct Toasts {
    items: VecDeque<(String, Instant)>,
}

impl Toasts {
    /// Adds a message (repeats of the newest are merged).
    pub fn push(&mut self, message: String) {
        if self.items.back().is_some_and(|(m, _)| *m == message) {
            if let Some(last) = self.items.back_mut() {
                last.1 = Instant::now();
            }
            return;
        }
        tracing::info!("toast: {message}");
        self.items.push_back((message, Instant::now()));
        while self.items.len() > MAX_TOASTS {
            self.items.pop_front();
        }
    }

    /// Draws the live toasts and forgets expired ones.
    pub fn show(&mut self, ctx: &egui::Context) {
        let now = Instant::now();
        self.items
            .retain(|(_, at)| now.saturating_duration_since(*at) < TOAST_LIFETIME);
        if self.items.is_empty() {
            return;
        }
        egui::Area::new(egui::Id::unique("huddle-toasts"))
            .anchor(egui::Align2::RIGHT_TOP, egui::vec2(-12.0, 48.0))
            .order(egui::Order::Foreground)
            .show(ctx, |ui| {
                for (message, _) in &self.items {
                    egui::Frame::popup(ui.style())
                        .fill(egui::Color32::from_rgb(90, 30, 30))
                        .show(ui, |ui| {
                            ui.set_max_width(360.0);
                            ui.colored_label(egui::Color32::WHITE, message);
                        });
                }
            });
        // Come back when the oldest expires.
        if let Some((_, at)) = self.items.front() {
            ctx.request_repaint_after(TOAST_LIFETIME.saturating_sub(now - *at));
        }
    }
}
