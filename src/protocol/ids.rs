//! Newtypes for every identifier that crosses the wire.
//!
//! Each id is validated once, where it enters the system (the server's join handler,
//! the CLI), and is then carried as its own type so a `UserId` can never be passed
//! where a `RoomId` is expected.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! string_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl $name {
            /// The id as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self(s.to_owned())
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                Self(s)
            }
        }
    };
}

macro_rules! number_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub u64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }
    };
}

string_id!(
    /// An application: the unit that owns an app key (seed 001 chapter 4).
    AppId
);
string_id!(
    /// A room, `[A-Za-z0-9_-]{1,64}`; rooms appear on first join and vanish when empty.
    RoomId
);
string_id!(
    /// A user inside a room, `[A-Za-z0-9_-]{1,64}`; unique per room.
    UserId
);
number_id!(
    /// A published stream; assigned by the server, unique for the server's lifetime.
    StreamId
);
number_id!(
    /// One peer connection between a client and the SFU (a publish leg or a
    /// subscription leg); assigned by whoever creates it, unique per connection.
    LinkId
);
number_id!(
    /// Correlates a request with its reply; chosen by the client, echoed by the server.
    RequestId
);
