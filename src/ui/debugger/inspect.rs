//! `huddle inspect FILE`: a saved debugger session in a window, offline,
//! with the live debugger's views.

use std::path::Path;

use super::Debugger;
use super::file::DebugData;

/// The window of `huddle inspect`.
pub struct InspectApp {
    debugger: Debugger,
}

impl InspectApp {
    /// Shows `data`.
    pub fn new(data: DebugData) -> Self {
        Self {
            debugger: Debugger::offline(data),
        }
    }
}

impl eframe::App for InspectApp {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        egui::CentralPanel::default().show(ui, |ui| super::panel::show(ui, &mut self.debugger));
    }
}

/// Reads `path` (a clear error when it is not a complete session file) and
/// opens it in a window until the window closes.
pub fn run(path: &Path, window_size: Option<[f32; 2]>) -> Result<(), crate::ui::UiError> {
    let data = DebugData::load(path)?;
    crate::ui::require_display()?;
    let title = format!("{} — huddle inspect", path.display());
    let native = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title(title)
            .with_app_id("huddle")
            .with_inner_size(window_size.unwrap_or([1280.0, 720.0])),
        renderer: eframe::Renderer::Wgpu,
        ..Default::default()
    };
    eframe::run_native(
        "huddle-inspect",
        native,
        Box::new(move |_cc| Ok(Box::new(InspectApp::new(data)))),
    )
    .map_err(|e| crate::ui::UiError::Window(e.to_string()))
}
