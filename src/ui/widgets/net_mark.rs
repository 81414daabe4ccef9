//! The small network figure in a tile's corner: what a remote stream's
//! receiver measured over the last second and/or the seed's network-quality
//! level (`network-quality`, 0–6) of the direction the tile depends on
//! (downlink for remote tiles, uplink for our own).

/// One tile's network figures; each part is shown when known.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct NetMark {
    /// Decoded frames per second (remote tiles).
    pub fps: Option<f32>,
    /// Packets lost, percent (remote tiles).
    pub loss_pct: Option<f32>,
    /// The seed's network-quality level: 1 excellent … 5 very bad, 6
    /// disconnected (0, unknown, is shown as nothing).
    pub quality: Option<u8>,
}

impl NetMark {
    /// Receive figures of one stream.
    pub fn receive(fps: f32, loss_pct: f32) -> Self {
        Self {
            fps: Some(fps),
            loss_pct: Some(loss_pct),
            quality: None,
        }
    }

    /// The same with the network-quality level (`None` or 0: unknown).
    #[must_use]
    pub fn with_quality(self, quality: Option<u8>) -> Self {
        Self {
            quality: quality.filter(|&q| q > 0),
            ..self
        }
    }

    /// 3 = good, 2 = fair, 1 = poor, 0 = disconnected: the worst of what is
    /// known.
    pub fn bars(&self) -> u8 {
        let figures = match (self.fps, self.loss_pct) {
            (Some(fps), Some(loss)) if loss >= 5.0 || fps < 5.0 => 1,
            (Some(fps), Some(loss)) if loss >= 1.0 || fps < 12.0 => 2,
            _ => 3,
        };
        let level = match self.quality {
            Some(6) => 0,
            Some(4..=5) => 1,
            Some(3) => 2,
            _ => 3,
        };
        figures.min(level)
    }

    /// The seed level in words.
    pub fn quality_label(&self) -> Option<&'static str> {
        Some(match self.quality? {
            1 => "excellent",
            2 => "good",
            3 => "poor",
            4 => "bad",
            5 => "very bad",
            6 => "disconnected",
            _ => return None,
        })
    }

    /// The text next to the bars.
    pub fn text(&self) -> String {
        let mut parts = Vec::new();
        if let Some(fps) = self.fps {
            parts.push(format!("{fps:.0} fps"));
        }
        if let Some(loss) = self.loss_pct {
            parts.push(format!("{loss:.1}% loss"));
        }
        if let Some(label) = self.quality_label() {
            parts.push(format!("net {label}"));
        }
        parts.join(" · ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_worst_known_figure_sets_the_bars() {
        assert_eq!(NetMark::receive(15.0, 0.0).bars(), 3);
        assert_eq!(NetMark::receive(15.0, 2.0).bars(), 2);
        assert_eq!(NetMark::receive(15.0, 0.0).with_quality(Some(4)).bars(), 1);
        assert_eq!(NetMark::receive(15.0, 0.0).with_quality(Some(6)).bars(), 0);
        let own = NetMark::default().with_quality(Some(2));
        assert_eq!((own.bars(), own.text()), (3, "net good".to_owned()));
        assert_eq!(NetMark::default().with_quality(Some(0)).quality, None);
        assert_eq!(
            NetMark::receive(14.6, 0.25).with_quality(Some(3)).text(),
            "15 fps · 0.2% loss · net poor"
        );
    }
}
