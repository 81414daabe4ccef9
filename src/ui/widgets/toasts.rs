//! Short-lived messages in the top-right corner (SDK errors and notices):
//! one human line each, the code and raw detail behind a "Details" click.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// How long a toast stays.
const TOAST_LIFETIME: Duration = Duration::from_secs(6);
/// How long a toast whose details are open stays (time to read them).
const OPEN_LIFETIME: Duration = Duration::from_secs(30);
/// Most toasts kept; older ones are dropped.
const MAX_TOASTS: usize = 5;

struct Toast {
    text: String,
    details: Option<String>,
    at: Instant,
    open: bool,
}

/// The queue of toasts.
#[derive(Default)]
pub struct Toasts {
    items: VecDeque<Toast>,
}

impl Toasts {
    /// Adds a message with optional details (repeats of the newest are merged).
    pub fn push_with(&mut self, text: String, details: Option<String>) {
        if let Some(last) = self.items.back_mut()
            && last.text == text
        {
            last.at = Instant::now();
            return;
        }
        tracing::info!("toast: {text} ({})", details.as_deref().unwrap_or("-"));
        self.items.push_back(Toast {
            text,
            details,
            at: Instant::now(),
            open: false,
        });
        while self.items.len() > MAX_TOASTS {
            self.items.pop_front();
        }
    }

    /// Adds a plain message.
    pub fn push(&mut self, text: String) {
        self.push_with(text, None);
    }

    /// Draws the live toasts and forgets expired ones.
    pub fn show(&mut self, ctx: &egui::Context) {
        let now = Instant::now();
        self.items.retain(|t| {
            let life = if t.open {
                OPEN_LIFETIME
            } else {
                TOAST_LIFETIME
            };
            now.saturating_duration_since(t.at) < life
        });
        if self.items.is_empty() {
            return;
        }
        let max_width = (ctx.content_rect().width() - 24.0).clamp(120.0, 360.0);
        egui::Area::new(egui::Id::unique("huddle-toasts"))
            .anchor(egui::Align2::RIGHT_TOP, egui::vec2(-12.0, 12.0))
            .order(egui::Order::Foreground)
            .show(ctx, |ui| {
                for (i, toast) in self.items.iter_mut().enumerate() {
                    egui::Frame::popup(ui.style())
                        .fill(egui::Color32::from_rgb(90, 30, 30))
                        .show(ui, |ui| {
                            ui.set_max_width(max_width);
                            ui.colored_label(egui::Color32::WHITE, &toast.text);
                            if let Some(details) = &toast.details {
                                let label = if toast.open {
                                    "Hide details"
                                } else {
                                    "Details"
                                };
                                if ui.push_id(i, |ui| ui.small_button(label)).inner.clicked() {
                                    toast.open = !toast.open;
                                }
                                if toast.open {
                                    ui.label(egui::RichText::new(details).small().monospace());
                                }
                            }
                        });
                }
            });
        // Come back when the oldest expires.
        if let Some(t) = self.items.front() {
            ctx.request_repaint_after(TOAST_LIFETIME.saturating_sub(now - t.at));
        }
    }
}

#[cfg(test)]
mod tests {
    use egui_kittest::Harness;
    use egui_kittest::kittest::Queryable;

    use super::Toasts;

    #[test]
    fn a_toast_shows_one_line_and_its_details_on_a_click() {
        let mut toasts = Toasts::default();
        toasts.push_with(
            "Mute failed: Too many requests at once — wait a moment and try again.".into(),
            Some("90100108 RTC_ERR_CODE_REQUEST_FREQUENTLY: server error 90100108".into()),
        );
        // A repeat of the newest is merged, not shown twice.
        toasts.push("Mute failed: Too many requests at once — wait a moment and try again.".into());
        let mut harness = Harness::builder()
            .with_size(egui::vec2(800.0, 600.0))
            .build_ui_state(|ui, t: &mut Toasts| t.show(ui.ctx()), toasts);
        harness.run_steps(2);
        assert_eq!(
            harness.query_all_by_label_contains("Mute failed").count(),
            1
        );
        assert!(harness.query_by_label_contains("90100108").is_none());
        harness.get_by_label("Details").click();
        harness.run_steps(2);
        harness.get_by_label_contains("90100108 RTC_ERR_CODE_REQUEST_FREQUENTLY");
    }
}
