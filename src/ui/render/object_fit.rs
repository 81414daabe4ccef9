//! How a picture fills a tile (seed 001 play options `objectFit`).

/// How a picture of one aspect ratio fills a tile of another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ObjectFit {
    /// Whole picture visible, letterboxed.
    #[default]
    Contain,
    /// Tile filled, picture cropped.
    Cover,
    /// Tile filled, picture stretched.
    Fill,
}

impl ObjectFit {
    /// All variants, for pickers.
    pub const ALL: [ObjectFit; 3] = [ObjectFit::Contain, ObjectFit::Cover, ObjectFit::Fill];

    /// The seed's name.
    pub fn name(self) -> &'static str {
        match self {
            ObjectFit::Contain => "contain",
            ObjectFit::Cover => "cover",
            ObjectFit::Fill => "fill",
        }
    }

    /// `(quad_scale, uv_scale)` for a picture of `picture` size in a tile of
    /// `tile` size: the quad's share of the tile (contain shrinks it) and the
    /// share of the picture sampled (cover crops it). Degenerate sizes fill.
    pub fn scales(self, picture: [f32; 2], tile: [f32; 2]) -> ([f32; 2], [f32; 2]) {
        let [pw, ph] = picture;
        let [tw, th] = tile;
        if !(pw > 0.0 && ph > 0.0 && tw > 0.0 && th > 0.0) {
            return ([1.0, 1.0], [1.0, 1.0]);
        }
        // > 1: the picture is wider than the tile.
        let ratio = (pw / ph) / (tw / th);
        match self {
            ObjectFit::Fill => ([1.0, 1.0], [1.0, 1.0]),
            ObjectFit::Contain if ratio > 1.0 => ([1.0, 1.0 / ratio], [1.0, 1.0]),
            ObjectFit::Contain => ([ratio, 1.0], [1.0, 1.0]),
            ObjectFit::Cover if ratio > 1.0 => ([1.0, 1.0], [1.0 / ratio, 1.0]),
            ObjectFit::Cover => ([1.0, 1.0], [1.0, ratio]),
        }
    }
}

#[cfg(test)]
mod test {
    use super::ObjectFit;

    #[test]
    fn contain_letterboxes_a_wide_picture() {
        let (quad, uv) = ObjectFit::Contain.scales([640.0, 360.0], [400.0, 400.0]);
        assert_eq!(quad[0], 1.0);
        assert!((quad[1] - 0.5625).abs() < 1e-6);
        assert_eq!(uv, [1.0, 1.0]);
    }

    #[test]
    fn cover_crops_a_wide_picture() {
        let (quad, uv) = ObjectFit::Cover.scales([640.0, 360.0], [400.0, 400.0]);
        assert_eq!(quad, [1.0, 1.0]);
        assert!((uv[0] - 0.5625).abs() < 1e-6);
        assert_eq!(uv[1], 1.0);
    }

    #[test]
    fn tall_tile_and_degenerate_sizes() {
        let (quad, _) = ObjectFit::Contain.scales([360.0, 640.0], [800.0, 400.0]);
        assert!((quad[0] - 0.28125).abs() < 1e-6 && quad[1] == 1.0);
        assert_eq!(
            ObjectFit::Cover.scales([0.0, 0.0], [10.0, 10.0]),
            ([1.0, 1.0], [1.0, 1.0])
        );
    }
}
