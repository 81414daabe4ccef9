//! What a signature allows beyond joining: the director grant (issue 14 §2).
//!
//! A director runs a live show's console: it sets the room's program, removes
//! users and dismisses the room. Who may do that is the app's decision, made
//! where the app key lives: a director signature is the join signature over
//! the same fields with `+director` appended,
//! `hmacSha256(app_key, app_id+room_id+user_id+ctime+director)`. A client
//! presents it in `join` (or `renew-signature`, `switch-role`) exactly like a
//! plain one; the server recognises which of the two it is. Only holders of
//! the app key (or of its signature server, `GET /signature?...&director=1`)
//! can make one, so no server configuration lists directors.
//!
//! Invariant: the grant a session holds is the grant of the signature in
//! force (the join's, or the last accepted renewal's).

/// What a genuine signature grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Grant {
    /// Join the room in the signed role (the seed's signature).
    #[default]
    Member,
    /// Also direct the room: program, remove users, dismiss the room.
    Director,
}

impl Grant {
    /// Both grants, in the order `verify` tries them.
    pub const ALL: [Grant; 2] = [Grant::Member, Grant::Director];

    /// What is appended to the signed content: nothing, or `+director`.
    pub(super) const fn suffix(self) -> &'static str {
        match self {
            Grant::Member => "",
            Grant::Director => "+director",
        }
    }

    /// Whether the holder may direct the room.
    pub const fn is_director(self) -> bool {
        matches!(self, Grant::Director)
    }
}
