//! The room's program: what a live show has "on air" (issue 14 §2).
//!
//! A broadcast room has one program, a small piece of room-level state that a
//! director sets (`set-program`) and every member follows (`program-changed`;
//! joiners get it in `joined`). A kiosk shows exactly the program's streams in
//! its layout. The program is a pure value: the server checks it against the
//! room's streams ([`Program::check`]) and keeps it consistent when an on-air
//! stream goes away ([`Program::without`]).
//!
//! Invariants of a checked program: its stream count fits its layout
//! ([`ProgramLayout::accepts`]), no stream appears twice, and (server side)
//! every stream is published in the room.

use serde::{Deserialize, Serialize};

use super::ids::StreamId;

/// How the on-air streams share the picture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProgramLayout {
    /// Nothing on air (no streams): a kiosk shows the whole room as usual.
    #[default]
    Off,
    /// One stream fills the picture.
    Single,
    /// Two streams next to each other, left then right.
    SideBySide,
    /// A 2×2 grid of one to four streams, row by row.
    Quad,
}

impl ProgramLayout {
    /// Every layout, in the console's order.
    pub const ALL: [ProgramLayout; 4] = [
        ProgramLayout::Off,
        ProgramLayout::Single,
        ProgramLayout::SideBySide,
        ProgramLayout::Quad,
    ];

    /// Whether `count` streams fit the layout: none for off, one for single,
    /// two side by side, one to four in the 2×2 grid.
    pub const fn accepts(self, count: usize) -> bool {
        match self {
            ProgramLayout::Off => count == 0,
            ProgramLayout::Single => count == 1,
            ProgramLayout::SideBySide => count == 2,
            ProgramLayout::Quad => count >= 1 && count <= 4,
        }
    }

    /// The most streams the layout shows.
    pub const fn capacity(self) -> usize {
        match self {
            ProgramLayout::Off => 0,
            ProgramLayout::Single => 1,
            ProgramLayout::SideBySide => 2,
            ProgramLayout::Quad => 4,
        }
    }

    /// The wire name (`"side-by-side"`), for labels and logs.
    pub const fn name(self) -> &'static str {
        match self {
            ProgramLayout::Off => "off",
            ProgramLayout::Single => "single",
            ProgramLayout::SideBySide => "side-by-side",
            ProgramLayout::Quad => "quad",
        }
    }
}

/// What is on air: a layout and its streams, in their places.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Program {
    /// How the streams share the picture.
    pub layout: ProgramLayout,
    /// The on-air streams, in layout order (left to right, row by row).
    #[serde(default)]
    pub streams: Vec<StreamId>,
}

/// Why a program is not acceptable. Not retryable as sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProgramError {
    /// The stream count does not fit the layout (90000005).
    #[error("layout {layout} takes {expected} streams, got {got}")]
    BadLayout {
        /// The layout asked for.
        layout: &'static str,
        /// What it takes, in words.
        expected: &'static str,
        /// How many streams came.
        got: usize,
    },
    /// A stream is named twice (90000005).
    #[error("stream {0} is on air twice")]
    Duplicate(StreamId),
    /// A stream is not published in the room (90100213).
    #[error("stream {0} is not published in this room")]
    UnknownStream(StreamId),
}

impl Program {
    /// Nothing on air.
    pub fn off() -> Self {
        Self::default()
    }

    /// One stream on air.
    pub fn single(stream_id: StreamId) -> Self {
        Self {
            layout: ProgramLayout::Single,
            streams: vec![stream_id],
        }
    }

    /// Whether nothing is on air.
    pub fn is_off(&self) -> bool {
        self.layout == ProgramLayout::Off
    }

    /// Whether `stream_id` is on air.
    pub fn is_on_air(&self, stream_id: StreamId) -> bool {
        self.streams.contains(&stream_id)
    }

    /// Checks the program's shape, then that `published` knows each stream.
    pub fn check(&self, published: impl Fn(StreamId) -> bool) -> Result<(), ProgramError> {
        if !self.layout.accepts(self.streams.len()) {
            return Err(ProgramError::BadLayout {
                layout: self.layout.name(),
                expected: match self.layout {
                    ProgramLayout::Off => "no",
                    ProgramLayout::Single => "exactly 1",
                    ProgramLayout::SideBySide => "exactly 2",
                    ProgramLayout::Quad => "1 to 4",
                },
                got: self.streams.len(),
            });
        }
        for (i, id) in self.streams.iter().enumerate() {
            if self
                .streams
                .get(..i)
                .is_some_and(|before| before.contains(id))
            {
                return Err(ProgramError::Duplicate(*id));
            }
        }
        match self.streams.iter().find(|id| !published(**id)) {
            Some(id) => Err(ProgramError::UnknownStream(*id)),
            None => Ok(()),
        }
    }

    /// The program once `gone` is no longer published, or `None` if it was not
    /// on air. Side by side falls back to single, an empty program to off, so
    /// the result always passes [`Program::check`]'s shape rules.
    pub fn without(&self, gone: StreamId) -> Option<Program> {
        if !self.is_on_air(gone) {
            return None;
        }
        let streams: Vec<StreamId> = self
            .streams
            .iter()
            .copied()
            .filter(|s| *s != gone)
            .collect();
        let layout = match (self.layout, streams.len()) {
            (_, 0) => ProgramLayout::Off,
            (ProgramLayout::SideBySide, 1) => ProgramLayout::Single,
            (layout, _) => layout,
        };
        Some(Program { layout, streams })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: &[u64]) -> Vec<StreamId> {
        n.iter().map(|n| StreamId(*n)).collect()
    }

    #[test]
    fn layouts_take_their_stream_counts() {
        let all = |_| true;
        for (layout, ok, bad) in [
            (ProgramLayout::Off, vec![0], vec![1]),
            (ProgramLayout::Single, vec![1], vec![0, 2]),
            (ProgramLayout::SideBySide, vec![2], vec![0, 1, 3]),
            (ProgramLayout::Quad, vec![1, 2, 3, 4], vec![0, 5]),
        ] {
            for n in ok {
                let p = Program {
                    layout,
                    streams: ids(&(1..=n).collect::<Vec<_>>()),
                };
                assert_eq!(p.check(all), Ok(()), "{layout:?} {n}");
            }
            for n in bad {
                let p = Program {
                    layout,
                    streams: ids(&(1..=n).collect::<Vec<_>>()),
                };
                assert!(
                    matches!(p.check(all), Err(ProgramError::BadLayout { .. })),
                    "{layout:?} {n}"
                );
            }
        }
    }

    #[test]
    fn duplicates_and_unknown_streams_are_refused() {
        let p = Program {
            layout: ProgramLayout::Quad,
            streams: ids(&[1, 2, 1]),
        };
        assert_eq!(p.check(|_| true), Err(ProgramError::Duplicate(StreamId(1))));
        let p = Program {
            layout: ProgramLayout::SideBySide,
            streams: ids(&[1, 9]),
        };
        assert_eq!(
            p.check(|id| id == StreamId(1)),
            Err(ProgramError::UnknownStream(StreamId(9)))
        );
    }

    #[test]
    fn a_gone_stream_leaves_a_valid_program() {
        let sbs = Program {
            layout: ProgramLayout::SideBySide,
            streams: ids(&[1, 2]),
        };
        assert_eq!(sbs.without(StreamId(3)), None);
        assert_eq!(sbs.without(StreamId(1)), Some(Program::single(StreamId(2))));
        assert_eq!(
            Program::single(StreamId(2)).without(StreamId(2)),
            Some(Program::off())
        );
        let quad = Program {
            layout: ProgramLayout::Quad,
            streams: ids(&[1, 2, 3]),
        };
        let left = quad.without(StreamId(2)).unwrap();
        assert_eq!(left.streams, ids(&[1, 3]));
        assert_eq!(left.check(|_| true), Ok(()));
    }

    #[test]
    fn wire_form() {
        let p = Program {
            layout: ProgramLayout::SideBySide,
            streams: ids(&[3, 4]),
        };
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(json, r#"{"layout":"side-by-side","streams":[3,4]}"#);
        assert_eq!(serde_json::from_str::<Program>(&json).unwrap(), p);
        assert!(serde_json::from_str::<Program>(r#"{"layout":"3x3"}"#).is_err());
    }
}
