//! X11 for screen sharing: what there is to share (monitors, top-level
//! windows) and the pixels of one of them, over x11rb's pure-Rust connection.
//!
//! Why this exists: [`super::screen`] captures on its own thread and must not
//! know the X protocol; this module owns the protocol side. One
//! [`X11Display`] is one connection, used by one thread.
//!
//! Invariants:
//! * Lists are in a stable order: monitors as RandR reports them (primary
//!   first), windows by id; never hash order.
//! * Pixels come from `GetImage` in Z format. Only 32 bits per pixel with
//!   8-bit channels (every 24/32-bit TrueColor X server: Xorg, Xvfb, Xwayland)
//!   is read; anything else is refused when the capture opens, not per frame.
//! * A display that cannot be reached is [`MissingDevice::Display`]
//!   (90100024); a window or monitor that is not there is
//!   [`MissingDevice::NotFound`] (90100019).

use x11rb::connection::Connection as _;
use x11rb::protocol::randr::ConnectionExt as _;
use x11rb::protocol::xproto::{
    AtomEnum, ConnectionExt as _, ImageFormat, ImageOrder, MapState, Window,
};
use x11rb::rust_connection::RustConnection;

use super::convert::fill_i420;
#[cfg(test)]
use super::convert::{rgb_to_uv, rgb_to_y};
use crate::media::{I420Frame, MediaError, MissingDevice, Result};

/// One monitor (RandR), or the whole root window where RandR reports none.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScreenInfo {
    /// Index in the list, what [`super::screen::CaptureTarget::Screen`] takes.
    pub index: u32,
    /// The monitor's name (`"DP-1"`), or `"screen"` for the root.
    pub name: String,
    /// Left edge on the root window.
    pub x: i16,
    /// Top edge on the root window.
    pub y: i16,
    /// Width in pixels.
    pub width: u16,
    /// Height in pixels.
    pub height: u16,
    /// RandR's primary monitor.
    pub primary: bool,
}

/// One top-level window that can be shared.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WindowInfo {
    /// The X window id (what `xwininfo` shows as hex).
    pub id: u32,
    /// Its title (`_NET_WM_NAME`, else `WM_NAME`).
    pub title: String,
    /// Width in pixels.
    pub width: u16,
    /// Height in pixels.
    pub height: u16,
}

/// A rectangle of a drawable to read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Area {
    pub(crate) drawable: u32,
    pub(crate) x: i16,
    pub(crate) y: i16,
    pub(crate) width: u16,
    pub(crate) height: u16,
}

/// Where each 8-bit channel sits in a 32-bit pixel, as byte offsets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PixelLayout {
    r: usize,
    g: usize,
    b: usize,
}

impl PixelLayout {
    /// The usual little-endian `0x00RRGGBB` pixel: bytes B, G, R, X.
    #[cfg(test)]
    const BGRX: Self = Self { r: 2, g: 1, b: 0 };

    fn from_masks(red: u32, green: u32, blue: u32, lsb_first: bool) -> Option<Self> {
        let byte = |mask: u32| -> Option<usize> {
            let shift = mask.trailing_zeros();
            (mask >> shift == 0xff && shift.is_multiple_of(8)).then(|| {
                let i = (shift / 8) as usize;
                if lsb_first { i } else { 3 - i }
            })
        };
        Some(Self {
            r: byte(red)?,
            g: byte(green)?,
            b: byte(blue)?,
        })
    }
}

/// One connection to an X server.
pub(crate) struct X11Display {
    conn: RustConnection,
    root: Window,
    layout: PixelLayout,
}

fn x_error(what: &str, e: impl std::fmt::Display) -> MediaError {
    MediaError::Device(format!("X11 {what}: {e}"))
}

impl X11Display {
    /// Connects to `display` (`":0"`), or to the one the `DISPLAY`
    /// environment variable names (the X convention) for `None`.
    ///
    /// # Errors
    /// [`MissingDevice::Display`] when there is none or it cannot be
    /// reached; [`MediaError::Device`] when its pixels are not 32-bit
    /// TrueColor.
    pub(crate) fn connect(display: Option<&str>) -> Result<Self> {
        if let Some(name) = display {
            check_display_number(name)?;
        }
        let (conn, screen_num) =
            x11rb::connect(display).map_err(|e| MediaError::DeviceUnavailable {
                kind: MissingDevice::Display,
                detail: format!(
                    "cannot connect to the X display {}: {e}",
                    display.map_or_else(|| "named by DISPLAY".to_owned(), |d| format!("{d:?}"))
                ),
            })?;
        let setup = conn.setup();
        let screen = setup
            .roots
            .get(screen_num)
            .ok_or_else(|| x_error("setup", format!("no screen {screen_num}")))?;
        let root = screen.root;
        let depth = screen.root_depth;
        let bpp = setup
            .pixmap_formats
            .iter()
            .find(|f| f.depth == depth)
            .map(|f| f.bits_per_pixel);
        let visual = screen
            .allowed_depths
            .iter()
            .flat_map(|d| d.visuals.iter())
            .find(|v| v.visual_id == screen.root_visual);
        let lsb = setup.image_byte_order == ImageOrder::LSB_FIRST;
        let layout = match (bpp, visual) {
            (Some(32), Some(v)) => {
                PixelLayout::from_masks(v.red_mask, v.green_mask, v.blue_mask, lsb)
            }
            _ => None,
        }
        .ok_or_else(|| {
            x_error(
                "pixel format",
                format!("depth {depth} at {bpp:?} bits per pixel is not 32-bit TrueColor"),
            )
        })?;
        Ok(Self { conn, root, layout })
    }

    /// Monitors (RandR), primary first; the whole root when RandR has none.
    pub(crate) fn screens(&self) -> Result<Vec<ScreenInfo>> {
        let monitors = self
            .conn
            .randr_get_monitors(self.root, true)
            .ok()
            .and_then(|cookie| cookie.reply().ok())
            .map(|reply| reply.monitors)
            .unwrap_or_default();
        let mut list: Vec<ScreenInfo> = Vec::new();
        for m in &monitors {
            list.push(ScreenInfo {
                index: 0,
                name: self
                    .atom_name(m.name)
                    .unwrap_or_else(|| format!("monitor {}", list.len())),
                x: m.x,
                y: m.y,
                width: m.width,
                height: m.height,
                primary: m.primary,
            });
        }
        if list.is_empty() {
            let geometry = self
                .conn
                .get_geometry(self.root)
                .map_err(|e| x_error("get_geometry", e))?
                .reply()
                .map_err(|e| x_error("get_geometry", e))?;
            list.push(ScreenInfo {
                index: 0,
                name: "screen".into(),
                x: 0,
                y: 0,
                width: geometry.width,
                height: geometry.height,
                primary: true,
            });
        }
        // Stable: the primary first, then RandR's order.
        list.sort_by_key(|s| !s.primary);
        for (i, s) in list.iter_mut().enumerate() {
            s.index = u32::try_from(i).unwrap_or(u32::MAX);
        }
        Ok(list)
    }

    fn atom_name(&self, atom: u32) -> Option<String> {
        let reply = self.conn.get_atom_name(atom).ok()?.reply().ok()?;
        String::from_utf8(reply.name).ok()
    }

    fn atom(&self, name: &str) -> Option<u32> {
        Some(
            self.conn
                .intern_atom(true, name.as_bytes())
                .ok()?
                .reply()
                .ok()?
                .atom,
        )
        .filter(|&a| a != 0)
    }

    fn title(&self, window: Window) -> Option<String> {
        let utf8 = self.atom("UTF8_STRING");
        if let (Some(net_name), Some(utf8)) = (self.atom("_NET_WM_NAME"), utf8)
            && let Some(reply) = self
                .conn
                .get_property(false, window, net_name, utf8, 0, 1024)
                .ok()
                .and_then(|c| c.reply().ok())
            && !reply.value.is_empty()
        {
            return Some(String::from_utf8_lossy(&reply.value).into_owned());
        }
        let reply = self
            .conn
            .get_property(false, window, AtomEnum::WM_NAME, AtomEnum::STRING, 0, 1024)
            .ok()?
            .reply()
            .ok()?;
        (!reply.value.is_empty()).then(|| String::from_utf8_lossy(&reply.value).into_owned())
    }

    /// The windows a window manager lists (`_NET_CLIENT_LIST`), or, without
    /// one, the root's mapped children that have a title; sorted by id.
    pub(crate) fn windows(&self) -> Result<Vec<WindowInfo>> {
        let managed: Vec<Window> = self
            .atom("_NET_CLIENT_LIST")
            .and_then(|list| {
                self.conn
                    .get_property(false, self.root, list, AtomEnum::WINDOW, 0, 4096)
                    .ok()?
                    .reply()
                    .ok()
            })
            .and_then(|reply| reply.value32().map(Iterator::collect))
            .unwrap_or_default();
        let candidates = if managed.is_empty() {
            self.conn
                .query_tree(self.root)
                .map_err(|e| x_error("query_tree", e))?
                .reply()
                .map_err(|e| x_error("query_tree", e))?
                .children
        } else {
            managed
        };
        let mut list = Vec::new();
        for window in candidates {
            let Some(attributes) = self
                .conn
                .get_window_attributes(window)
                .ok()
                .and_then(|c| c.reply().ok())
            else {
                continue; // gone meanwhile
            };
            if attributes.map_state != MapState::VIEWABLE || attributes.override_redirect {
                continue;
            }
            let Some(title) = self.title(window) else {
                continue;
            };
            let Some(geometry) = self
                .conn
                .get_geometry(window)
                .ok()
                .and_then(|c| c.reply().ok())
            else {
                continue;
            };
            list.push(WindowInfo {
                id: window,
                title,
                width: geometry.width,
                height: geometry.height,
            });
        }
        list.sort_by_key(|w| w.id);
        Ok(list)
    }

    /// The area of monitor `index` (see [`X11Display::screens`]).
    pub(crate) fn screen_area(&self, index: u32) -> Result<Area> {
        let screens = self.screens()?;
        let s = screens.iter().find(|s| s.index == index).ok_or_else(|| {
            MediaError::DeviceUnavailable {
                kind: MissingDevice::NotFound,
                detail: format!("no screen {index} (the display has {})", screens.len()),
            }
        })?;
        Ok(Area {
            drawable: self.root,
            x: s.x,
            y: s.y,
            width: s.width,
            height: s.height,
        })
    }

    /// The area of window `id`, which must exist and be mapped.
    pub(crate) fn window_area(&self, id: u32) -> Result<Area> {
        let not_found = |why: &str| MediaError::DeviceUnavailable {
            kind: MissingDevice::NotFound,
            detail: format!("no window 0x{id:x} to share: {why}"),
        };
        let attributes = self
            .conn
            .get_window_attributes(id)
            .map_err(|e| x_error("get_window_attributes", e))?
            .reply()
            .map_err(|_| not_found("the display has no such window"))?;
        if attributes.map_state != MapState::VIEWABLE {
            return Err(not_found("it is not shown"));
        }
        let geometry = self
            .conn
            .get_geometry(id)
            .map_err(|e| x_error("get_geometry", e))?
            .reply()
            .map_err(|_| not_found("it is gone"))?;
        Ok(Area {
            drawable: id,
            x: 0,
            y: 0,
            width: geometry.width,
            height: geometry.height,
        })
    }

    /// The current size of a window being shared (it may have been resized);
    /// `None` once it is gone or hidden.
    pub(crate) fn refresh(&self, area: Area) -> Option<Area> {
        if area.drawable == self.root {
            return Some(area);
        }
        self.window_area(area.drawable).ok()
    }

    /// Reads `area` and writes it into `out`, scaled (nearest neighbour) to
    /// `out`'s size, as BT.601 studio-range I420.
    ///
    /// # Errors
    /// [`MissingDevice::NotFound`] when the window went away;
    /// [`MediaError::Device`] for other X errors.
    pub(crate) fn grab(&self, area: Area, out: &mut I420Frame) -> Result<()> {
        let reply = self
            .conn
            .get_image(
                ImageFormat::Z_PIXMAP,
                area.drawable,
                area.x,
                area.y,
                area.width,
                area.height,
                u32::MAX,
            )
            .map_err(|e| x_error("get_image", e))?
            .reply()
            .map_err(|e| MediaError::DeviceUnavailable {
                kind: MissingDevice::NotFound,
                detail: format!("reading window 0x{:x}: {e}", area.drawable),
            })?;
        let (w, h) = (usize::from(area.width), usize::from(area.height));
        xrgb_to_i420_scaled(&reply.data, w, h, w * 4, self.layout, out)
    }
}

/// Refuses a display number over 59535 (`:N` is TCP port 6000 + N, which
/// x11rb 0.13 computes in 16 bits: a larger number would panic there).
fn check_display_number(name: &str) -> Result<()> {
    let number = name
        .rsplit_once(':')
        .map(|(_, rest)| rest.split('.').next().unwrap_or(rest));
    match number.map(str::parse::<u32>) {
        Some(Ok(n)) if n > u32::from(u16::MAX) - 6000 => Err(MediaError::DeviceUnavailable {
            kind: MissingDevice::Display,
            detail: format!("no X display {name:?}: display numbers end at 59535"),
        }),
        _ => Ok(()),
    }
}

/// 32-bit pixels (`layout`), `stride` bytes a row, of a `width` x `height`
/// image, scaled to `out`'s size (nearest neighbour) and converted to I420.
/// Chroma is averaged over each 2x2 block of output pixels.
///
/// # Errors
/// [`MediaError::FrameMismatch`] when `data` is shorter than the image.
pub(crate) fn xrgb_to_i420_scaled(
    data: &[u8],
    width: usize,
    height: usize,
    stride: usize,
    layout: PixelLayout,
    out: &mut I420Frame,
) -> Result<()> {
    if width == 0 || height == 0 || data.len() < stride * (height - 1) + width * 4 {
        return Err(MediaError::FrameMismatch(format!(
            "X image {width}x{height}: {} bytes",
            data.len()
        )));
    }
    let (ow, oh) = (out.width as usize, out.height as usize);
    let px = |x: usize, y: usize| -> (i32, i32, i32) {
        let sx = (x * width / ow).min(width - 1);
        let sy = (y * height / oh).min(height - 1);
        let i = sy * stride + sx * 4;
        let at = |o: usize| i32::from(data.get(i + o).copied().unwrap_or(0));
        (at(layout.r), at(layout.g), at(layout.b))
    };
    fill_i420(out, px);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_to_layout() {
        assert_eq!(
            PixelLayout::from_masks(0xff_0000, 0xff00, 0xff, true),
            Some(PixelLayout::BGRX)
        );
        assert_eq!(
            PixelLayout::from_masks(0xff_0000, 0xff00, 0xff, false),
            Some(PixelLayout { r: 1, g: 2, b: 3 })
        );
        // 16-bit style masks are not 8-bit channels.
        assert_eq!(PixelLayout::from_masks(0xf800, 0x7e0, 0x1f, true), None);
    }

    #[test]
    fn colour_blocks_survive_scaling() {
        // 8x4 image: left half red, right half blue; scaled to 4x2.
        let mut data = Vec::new();
        for _y in 0..4 {
            for x in 0..8 {
                let (r, g, b) = if x < 4 { (255, 0, 0) } else { (0, 0, 255) };
                data.extend_from_slice(&[b, g, r, 0]);
            }
        }
        let mut out = I420Frame::new_black(4, 2);
        xrgb_to_i420_scaled(&data, 8, 4, 32, PixelLayout::BGRX, &mut out).expect("converts");
        assert_eq!(out.y[0], rgb_to_y(255, 0, 0));
        assert_eq!(out.y[3], rgb_to_y(0, 0, 255));
        let red = rgb_to_uv(255, 0, 0);
        let blue = rgb_to_uv(0, 0, 255);
        assert_eq!((out.u[0], out.v[0]), red);
        assert_eq!((out.u[1], out.v[1]), blue);
        let short = xrgb_to_i420_scaled(&data[..10], 8, 4, 32, PixelLayout::BGRX, &mut out);
        assert!(matches!(short, Err(MediaError::FrameMismatch(_))));
    }
}
