//! The small network figure in a tile's corner.

/// Receive figures of one stream over the last second.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NetMark {
    /// Decoded frames per second.
    pub fps: f32,
    /// Packets lost, percent.
    pub loss_pct: f32,
}

impl NetMark {
    /// 3 = good, 2 = fair, 1 = poor.
    pub fn bars(&self) -> u8 {
        if self.loss_pct >= 5.0 || self.fps < 5.0 {
            1
        } else if self.loss_pct >= 1.0 || self.fps < 12.0 {
            2
        } else {
            3
        }
    }
}
