//! The SDK's side of the broadcast console (issue 14 §2): a director sets
//! the room's program, removes users and dismisses the room; everyone
//! follows the program through [`RoomEvent::ProgramChanged`].
//!
//! Directing needs a director signature: [`Credential::DirectorKey`] makes
//! one from the app key, or a [`Credential::Signature`] from the app's
//! signature server (`GET /signature?...&director=1`) carries one.
//! [`JoinInfo::director`] says whether the server granted it. Refusals come
//! back as [`ClientError::Server`] with the seed's code (90100022 not a
//! director, 90000005 a bad layout, 90100213 an unknown stream, 90100222 an
//! unknown user) and change nothing.
//!
//! [`RoomEvent::ProgramChanged`]: super::RoomEvent::ProgramChanged
//! [`Credential::DirectorKey`]: super::Credential::DirectorKey
//! [`Credential::Signature`]: super::Credential::Signature
//! [`JoinInfo::director`]: super::JoinInfo::director
//! [`ClientError::Server`]: super::ClientError::Server

use super::{Client, ClientResult, RoomCommand};
use crate::protocol::{Program, Request, UserId};

/// A director's request, as the actor sends it.
#[derive(Debug, Clone)]
pub(crate) enum DirectorRequest {
    SetProgram(Program),
    RemoveUser(UserId),
    DismissRoom,
}

impl DirectorRequest {
    /// The wire request.
    pub(crate) fn into_request(self) -> Request {
        match self {
            DirectorRequest::SetProgram(program) => Request::SetProgram { program },
            DirectorRequest::RemoveUser(user_id) => Request::RemoveUser { user_id },
            DirectorRequest::DismissRoom => Request::DismissRoom,
        }
    }
}

impl Client {
    /// Puts `program` on air in the room: every member, this one included,
    /// gets [`RoomEvent::ProgramChanged`](super::RoomEvent::ProgramChanged).
    pub async fn set_program(&self, program: Program) -> ClientResult<()> {
        self.direct(DirectorRequest::SetProgram(program)).await
    }

    /// Removes `user_id` from the room: it is disconnected with leave
    /// reason 9, the others see it leave with reason 9.
    pub async fn remove_user(&self, user_id: UserId) -> ClientResult<()> {
        self.direct(DirectorRequest::RemoveUser(user_id)).await
    }

    /// Ends the room for everyone (leave reason 10), this client included:
    /// it ends [`Disconnected`](super::ConnectionState::Disconnected) with
    /// reason 10.
    pub async fn dismiss_room(&self) -> ClientResult<()> {
        self.direct(DirectorRequest::DismissRoom).await
    }

    async fn direct(&self, request: DirectorRequest) -> ClientResult<()> {
        self.call(|tx| RoomCommand::Direct(request, tx)).await
    }
}
