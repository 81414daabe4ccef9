//! A window with known content on an X display (Xvfb), for the
//! screen-sharing tests: four colour blocks, drawn by its own x11rb
//! connection, and the checks that a picture shows them.

use huddle::media::I420Frame;
use x11rb::connection::Connection;
use x11rb::protocol::xproto::{
    AtomEnum, ChangeGCAux, ConnectionExt as _, CreateGCAux, CreateWindowAux, EventMask, PropMode,
    Rectangle, WindowClass,
};
use x11rb::rust_connection::RustConnection;
use x11rb::wrapper::ConnectionExt as _;

/// The window's four quadrants, left to right, top to bottom, as 0xRRGGBB.
pub const QUADRANTS: [u32; 4] = [0xe0_2020, 0x20_c020, 0x20_20e0, 0xf0_f0f0];
/// Its title.
pub const TITLE: &str = "huddle screen test";
/// Per channel, after BT.601 studio range, H.264 and back.
pub const TOLERANCE: u8 = 40;

/// A window filled with [`QUADRANTS`].
pub struct TestWindow {
    pub conn: RustConnection,
    pub id: u32,
    pub size: (u16, u16),
}

impl TestWindow {
    /// Opens a `size` window at `at` on `display`, titled [`TITLE`], and
    /// fills it once the server has mapped it.
    pub fn open(display: &str, at: (i16, i16), size: (u16, u16)) -> TestWindow {
        let (conn, screen_num) = x11rb::connect(Some(display)).expect("connect to Xvfb");
        let screen = &conn.setup().roots[screen_num];
        let (root, visual, depth) = (screen.root, screen.root_visual, screen.root_depth);
        let id = conn.generate_id().expect("window id");
        conn.create_window(
            depth,
            id,
            root,
            at.0,
            at.1,
            size.0,
            size.1,
            0,
            WindowClass::INPUT_OUTPUT,
            visual,
            &CreateWindowAux::new()
                .background_pixel(0)
                .event_mask(EventMask::EXPOSURE),
        )
        .expect("create_window");
        conn.change_property8(
            PropMode::REPLACE,
            id,
            AtomEnum::WM_NAME,
            AtomEnum::STRING,
            TITLE.as_bytes(),
        )
        .expect("title");
        conn.map_window(id).expect("map");
        let window = TestWindow { conn, id, size };
        window.draw();
        window
    }

    /// Fills the quadrants and waits until the server has done it.
    pub fn draw(&self) {
        let gc = self.conn.generate_id().expect("gc id");
        self.conn
            .create_gc(gc, self.id, &CreateGCAux::new())
            .expect("create_gc");
        let (w, h) = (self.size.0 / 2, self.size.1 / 2);
        for (i, colour) in QUADRANTS.iter().enumerate() {
            let i = i as u16;
            self.conn
                .change_gc(gc, &ChangeGCAux::new().foreground(*colour))
                .expect("change_gc");
            let rect = Rectangle {
                x: ((i % 2) * w) as i16,
                y: ((i / 2) * h) as i16,
                width: w,
                height: h,
            };
            self.conn
                .poly_fill_rectangle(self.id, gc, &[rect])
                .expect("fill");
        }
        // A round trip: every request before it has been carried out.
        self.conn
            .get_input_focus()
            .expect("sync")
            .reply()
            .expect("sync reply");
    }

    /// Closes the window.
    pub fn destroy(&self) {
        self.conn.destroy_window(self.id).expect("destroy");
        self.conn.flush().expect("flush");
    }
}

/// The RGB of a pixel (BT.601 studio range, as the capture wrote it).
pub fn rgb_at(frame: &I420Frame, x: usize, y: usize) -> [u8; 3] {
    let w = frame.width as usize;
    let cw = frame.chroma_width() as usize;
    let luma = f64::from(frame.y[y * w + x]) - 16.0;
    let u = f64::from(frame.u[(y / 2) * cw + x / 2]) - 128.0;
    let v = f64::from(frame.v[(y / 2) * cw + x / 2]) - 128.0;
    let c = |f: f64| f.round().clamp(0.0, 255.0) as u8;
    [
        c(1.164 * luma + 1.596 * v),
        c(1.164 * luma - 0.392 * u - 0.813 * v),
        c(1.164 * luma + 2.017 * u),
    ]
}

/// `rgb` is quadrant colour `i` within [`TOLERANCE`].
pub fn is_quadrant(i: usize, rgb: [u8; 3]) -> bool {
    let colour = QUADRANTS[i];
    let want = [(colour >> 16) as u8, (colour >> 8) as u8, colour as u8];
    want.iter()
        .zip(rgb)
        .all(|(a, b)| a.abs_diff(b) <= TOLERANCE)
}

/// Whether the whole frame is the window: each quadrant's centre has its
/// colour (else which one does not, and what it has).
pub fn shows_quadrants(frame: &I420Frame) -> Result<(), String> {
    let (w, h) = (frame.width as usize, frame.height as usize);
    for (i, colour) in QUADRANTS.iter().enumerate() {
        let (x, y) = ((i % 2) * w / 2 + w / 4, (i / 2) * h / 2 + h / 4);
        let got = rgb_at(frame, x, y);
        if !is_quadrant(i, got) {
            return Err(format!(
                "quadrant {i} at ({x},{y}): got {got:?}, want {colour:06x}"
            ));
        }
    }
    Ok(())
}
