//! Responsive grid: how many columns and rows fit `n` tiles best.

use egui::{Rect, Vec2, vec2};

/// Where each tile of a grid goes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GridLayout {
    /// Columns.
    pub cols: usize,
    /// Rows.
    pub rows: usize,
    /// Tile size (all tiles equal).
    pub tile: Vec2,
    /// Tiles laid out (the last row holds the rest, centred).
    pub count: usize,
}

impl GridLayout {
    /// Rect of tile `i` inside `area` (grid centred, `gap` between tiles).
    pub fn rect(&self, area: Rect, i: usize, gap: f32) -> Rect {
        let cols = self.cols.max(1);
        let (row, col) = (i / cols, i % cols);
        // Centre the last, partly filled row.
        let in_row = if row + 1 == self.rows {
            let rest = self.count.saturating_sub((self.rows - 1) * cols);
            rest.clamp(1, cols)
        } else {
            cols
        };
        let grid = vec2(
            self.cols as f32 * self.tile.x + (self.cols.saturating_sub(1)) as f32 * gap,
            self.rows as f32 * self.tile.y + (self.rows.saturating_sub(1)) as f32 * gap,
        );
        let origin = area.center() - grid / 2.0;
        let row_width = in_row as f32 * self.tile.x + in_row.saturating_sub(1) as f32 * gap;
        let row_x = origin.x + (grid.x - row_width) / 2.0;
        Rect::from_min_size(
            egui::pos2(
                row_x + col as f32 * (self.tile.x + gap),
                origin.y + row as f32 * (self.tile.y + gap),
            ),
            self.tile,
        )
    }
}

/// The grid for `n` tiles of aspect `aspect` (w/h) in `area` that makes the
/// tiles largest.
pub fn grid_layout(n: usize, area: Vec2, aspect: f32, gap: f32) -> GridLayout {
    let n = n.max(1);
    let mut best = GridLayout {
        cols: 1,
        rows: n,
        tile: Vec2::ZERO,
        count: n,
    };
    for cols in 1..=n {
        let rows = n.div_ceil(cols);
        let cell_w = (area.x - gap * (cols - 1) as f32) / cols as f32;
        let cell_h = (area.y - gap * (rows - 1) as f32) / rows as f32;
        if cell_w <= 0.0 || cell_h <= 0.0 {
            continue;
        }
        let (w, h) = if cell_w / cell_h > aspect {
            (cell_h * aspect, cell_h)
        } else {
            (cell_w, cell_w / aspect)
        };
        if w * h > best.tile.x * best.tile.y {
            best = GridLayout {
                cols,
                rows,
                tile: vec2(w, h),
                count: n,
            };
        }
    }
    best
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn picks_square_grids_for_square_counts() {
        let g = grid_layout(4, vec2(1280.0, 720.0), 16.0 / 9.0, 0.0);
        assert_eq!((g.cols, g.rows), (2, 2));
        let g = grid_layout(9, vec2(1280.0, 720.0), 16.0 / 9.0, 0.0);
        assert_eq!((g.cols, g.rows), (3, 3));
    }

    #[test]
    fn one_tile_fills_and_two_go_side_by_side_on_wide_screens() {
        let g = grid_layout(1, vec2(1280.0, 720.0), 16.0 / 9.0, 0.0);
        assert_eq!(g.tile, vec2(1280.0, 720.0));
        let g = grid_layout(2, vec2(1280.0, 720.0), 16.0 / 9.0, 8.0);
        assert_eq!((g.cols, g.rows), (2, 1));
    }

    #[test]
    fn the_last_row_of_an_odd_grid_is_centred() {
        // Issue 16 §8: 5 tiles in 3×2 leave no hole at the bottom right.
        let area = Rect::from_min_size(egui::pos2(0.0, 0.0), vec2(1280.0, 720.0));
        let g = grid_layout(5, area.size(), 16.0 / 9.0, 8.0);
        assert_eq!((g.cols, g.rows), (3, 2));
        let last_row = [g.rect(area, 3, 8.0), g.rect(area, 4, 8.0)];
        let mid = (last_row[0].left() + last_row[1].right()) / 2.0;
        assert!((mid - area.center().x).abs() < 0.5, "{last_row:?}");
        let first_row_mid = (g.rect(area, 0, 8.0).left() + g.rect(area, 2, 8.0).right()) / 2.0;
        assert!((first_row_mid - area.center().x).abs() < 0.5);
    }

    #[test]
    fn tiles_stay_inside_the_area() {
        let area = Rect::from_min_size(egui::pos2(10.0, 20.0), vec2(1000.0, 600.0));
        for n in 1..=10 {
            let g = grid_layout(n, area.size(), 16.0 / 9.0, 6.0);
            for i in 0..n {
                let r = g.rect(area, i, 6.0);
                assert!(area.expand(0.01).contains_rect(r), "n={n} i={i} {r:?}");
            }
        }
    }
}
