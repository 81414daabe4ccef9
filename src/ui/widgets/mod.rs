//! Widgets: take plain data, draw, return a `Response`. No SDK types.

mod grid;
mod net_mark;
mod toasts;
mod video_tile;

pub use grid::{GridLayout, grid_layout};
pub use net_mark::NetMark;
pub use toasts::Toasts;
pub use video_tile::{TileOverlays, VideoTile};
