//! A kiosk in a broadcast room shows exactly what is on air: the program's
//! streams in its layout, cut at their first decoded frame
//! ([`ProgramFollower`]). Off air, the kiosk shows the room as before.

use std::time::Instant;

use crate::ui::render::ObjectFit;
use crate::ui::session::{RoomSession, VIDEO_REPAINT_DELAY};

use super::follower::ProgramFollower;
use super::program_view;

/// Follows the room's program and draws it when something is on air.
/// Returns whether it drew (the stage draws the room otherwise).
pub fn show(
    ui: &mut egui::Ui,
    session: &RoomSession,
    follower: &mut ProgramFollower,
    fit: ObjectFit,
    pass: u64,
) -> bool {
    // A picture decoded after the source's resume, never one from before
    // its pause (`session/standby.rs`).
    let ready = |id| session.shows_fresh_video(id);
    if follower.update(&session.program.program, ready, Instant::now()) {
        tracing::info!(program = ?follower.shown(), "kiosk: cut to the program");
    }
    if follower.is_cueing() {
        // Look again soon: the cut waits for a frame that no event announces.
        ui.ctx().request_repaint_after(VIDEO_REPAINT_DELAY);
    }
    let shown = follower.shown().clone();
    if shown.is_off() {
        return false;
    }
    let area = ui.available_rect_before_wrap();
    program_view::show(ui, session, &shown, area, fit, pass);
    true
}
