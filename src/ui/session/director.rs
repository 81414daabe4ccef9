//! The session's side of the broadcast console (issue 14 §2): the room's
//! program as the SDK reports it, whether we may direct, and the director's
//! requests (spawned like every SDK call; their results come back as
//! [`SessionReply::Directed`]).

use crate::client::{ClientResult, Program, UserId};

use super::{LocalPreview, RoomSession, SessionReply, send_reply};
use crate::media::{AudioProfile, VideoProfile};
use crate::ui::error_text::Notice;

/// What the console and the kiosk know of the room's program.
#[derive(Debug, Clone, Default)]
pub struct ProgramView {
    /// On air now, as the server last said.
    pub program: Program,
    /// The server granted us director powers at join.
    pub director: bool,
    /// Why the last director request was refused, for the console's bar
    /// (the same text also goes to a toast).
    pub refusal: Option<Notice>,
    /// Why the server removed us, once it did (a kiosk a director removed,
    /// reason 9, stays out).
    pub banned: Option<crate::client::LeaveReason>,
}

/// A director's request from the console.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DirectorAction {
    /// Put this on air.
    SetProgram(Program),
    /// Remove a user (reason 9).
    RemoveUser(UserId),
    /// End the room for everyone (reason 10).
    DismissRoom,
}

impl DirectorAction {
    /// What the user asked, for "… failed" notices.
    fn what(&self) -> &'static str {
        match self {
            DirectorAction::SetProgram(_) => "Changing the program",
            DirectorAction::RemoveUser(_) => "Removing the user",
            DirectorAction::DismissRoom => "Dismissing the room",
        }
    }
}

impl RoomSession {
    /// Sends a director's request; its result comes back through `poll`.
    pub fn direct(&mut self, action: DirectorAction) {
        let client = self.client.clone();
        let tx = self.replies_tx.clone();
        let ctx = self.ctx.clone();
        self.rt.spawn(async move {
            let what = action.what();
            let result: ClientResult<()> = match action {
                DirectorAction::SetProgram(p) => client.set_program(p).await,
                DirectorAction::RemoveUser(u) => client.remove_user(u).await,
                DirectorAction::DismissRoom => client.dismiss_room().await,
            };
            send_reply(&tx, &ctx, SessionReply::Directed(what, result));
        });
    }

    /// A director's request finished.
    pub(super) fn on_directed(&mut self, what: &'static str, result: ClientResult<()>) {
        match result {
            Ok(()) => self.program.refusal = None,
            Err(e) => {
                let notice = Notice::failed(what, &e);
                self.program.refusal = Some(notice.clone());
                self.errors.push(notice);
            }
        }
    }
}

impl LocalPreview {
    /// The profiles we publish with (seed Tables 3-10 and 3-9), for the
    /// console's source card.
    pub fn profiles(&self) -> (VideoProfile, AudioProfile) {
        (self.video_profile, self.audio_profile)
    }
}
