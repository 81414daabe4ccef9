//! The debugger's panel: its tabs, drawn the same for a live room and for
//! a file. Timeline: one stream's frames (`timeline_view.rs`). Plots: one scope (a stream's link, or all links) at a time, a
//! small plot per metric over the last 1, 5 or 15 minutes. Signalling: the
//! log, filtered by kind and text, a frame's JSON pretty-printed on click.
//! Links: each link's selected pair, candidates and SDP.

use std::collections::BTreeMap;

use super::Debugger;
use super::history::Metric;
use super::links::{self, LinkView};

/// Which tab.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Tab {
    /// Live plots.
    #[default]
    Plots,
    /// Received frames on a time axis, their packets on click.
    Timeline,
    /// The signalling log.
    Signalling,
    /// SDP and ICE per link.
    Links,
    /// The server's view of the room (`GET /rooms/{id}`), live only.
    Server,
}

/// Plot windows offered, seconds.
const WINDOWS: [(f64, &str); 3] = [(60.0, "1 min"), (300.0, "5 min"), (900.0, "15 min")];
/// Height of one plot.
const PLOT_HEIGHT: f32 = 96.0;
/// Narrowest plot column.
const PLOT_MIN_WIDTH: f32 = 300.0;

/// What the panel remembers between passes.
#[derive(Debug, Clone)]
pub struct PanelState {
    /// The tab shown.
    pub tab: Tab,
    /// The scope plotted (`None`: the first received video, else the first).
    pub scope: Option<String>,
    /// Seconds of history plotted.
    pub window_s: f64,
    /// Only frames of this kind (empty: all).
    pub kind_filter: String,
    /// Only frames containing this text.
    pub text_filter: String,
    /// The frame shown pretty-printed, by sequence number.
    pub selected: Option<u64>,
    /// Where `Save session…` writes.
    pub save_path: String,
    /// What the last save said.
    pub save_note: Option<String>,
    /// The right edge (s) of the plots drawn in the last pass (tests read
    /// that the plots move).
    pub plotted_until: Option<f64>,
    /// The Timeline tab's own state.
    pub timeline: super::timeline_view::TimelineState,
    /// Links rebuilt from the log, with the log length they were built from.
    links: (usize, u64, BTreeMap<u64, LinkView>),
    /// The plots' meshes, rebuilt only when their data or place changes.
    pub plots: super::plot_view::PlotCache,
}

impl Default for PanelState {
    fn default() -> Self {
        Self {
            tab: Tab::default(),
            scope: None,
            window_s: WINDOWS[0].0,
            kind_filter: String::new(),
            text_filter: String::new(),
            selected: None,
            save_path: "huddle-debug.json".to_owned(),
            save_note: None,
            plotted_until: None,
            timeline: Default::default(),
            links: (0, 0, BTreeMap::new()),
            plots: Default::default(),
        }
    }
}

/// Below this window width the panel docks at the bottom, not on the right.
const NARROW: f32 = 900.0;

/// The window's clear color while the debugger is docked: the panel's own
/// fill, which the docked panel then does not paint (`docked_frame`).
pub fn clear_color(visuals: &egui::Visuals) -> [f32; 4] {
    visuals.panel_fill.to_normalized_gamma_f32()
}

/// The docked panel's frame: a side panel's margins and no fill (issue 14
/// §4). On a software renderer (lavapipe) every pixel painted each pass
/// costs, and a filled panel paints half the window once more on top of
/// the clear; the app clears to the same color instead (`clear_color`).
fn docked_frame(style: &egui::Style) -> egui::Frame {
    egui::Frame::side_top_panel(style).fill(egui::Color32::TRANSPARENT)
}

/// Draws the debugger as a resizable panel of the room: on the right in a
/// wide window, at the bottom in a narrow one. Call before the room's own
/// panels; the window must be cleared to `clear_color`.
pub fn show_docked(ui: &mut egui::Ui, dbg: &mut Debugger) {
    let width = ui.available_width();
    let frame = docked_frame(ui.style());
    if width >= NARROW {
        egui::Panel::right("debugger")
            .frame(frame)
            .resizable(true)
            .default_size((width * 0.5).min(900.0))
            .min_size(320.0)
            .show(ui, |ui| show(ui, dbg));
    } else {
        let height = ui.available_height();
        egui::Panel::bottom("debugger")
            .frame(frame)
            .resizable(true)
            .default_size(height * 0.5)
            .min_size(160.0)
            .show(ui, |ui| show(ui, dbg));
    }
}

/// Draws the debugger into `ui` (all of its space).
pub fn show(ui: &mut egui::Ui, dbg: &mut Debugger) {
    ui.horizontal_wrapped(|ui| {
        let state = &mut dbg.panel;
        ui.strong("Stream debugger");
        ui.selectable_value(&mut state.tab, Tab::Plots, "Plots");
        ui.selectable_value(&mut state.tab, Tab::Timeline, "Timeline");
        let n = dbg.data.signalling.len();
        ui.selectable_value(&mut state.tab, Tab::Signalling, format!("Signalling ({n})"));
        ui.selectable_value(&mut state.tab, Tab::Links, "Links");
        if dbg.server.is_some() {
            ui.selectable_value(&mut state.tab, Tab::Server, "Server");
        }
        ui.separator();
        let source = if dbg.is_live() { "live" } else { "file" };
        ui.weak(format!(
            "{source} · {} · t = {:.0} s",
            dbg.data.room, dbg.data.history.last_t
        ));
    });
    if dbg.is_live() {
        ui.horizontal_wrapped(|ui| {
            ui.add(
                egui::TextEdit::singleline(&mut dbg.panel.save_path)
                    .desired_width(180.0)
                    .hint_text("file.json"),
            );
            if ui
                .button("Save session…")
                .on_hover_text("write plots, signalling log and links to one JSON file (open it with `huddle inspect FILE`)")
                .clicked()
            {
                let path = std::path::PathBuf::from(dbg.panel.save_path.trim());
                dbg.panel.save_note = Some(match dbg.save(&path) {
                    Ok(()) => format!("saved {}", path.display()),
                    Err(e) => e.to_string(),
                });
            }
            if let Some(note) = &dbg.panel.save_note {
                ui.add(egui::Label::new(note.as_str()).wrap());
            }
        });
    }
    ui.separator();
    match dbg.panel.tab {
        Tab::Plots => plots(ui, dbg),
        Tab::Timeline => super::timeline_view::show(ui, dbg),
        Tab::Signalling => signalling(ui, dbg),
        Tab::Links => links_tab(ui, dbg),
        Tab::Server => super::server_tab::show(ui, dbg),
    }
}

fn plots(ui: &mut egui::Ui, dbg: &mut Debugger) {
    let history = &dbg.data.history;
    let state = &mut dbg.panel;
    if history.scopes.is_empty() {
        ui.label("Waiting for the first statistics…");
        return;
    }
    let current = state
        .scope
        .clone()
        .filter(|s| history.scopes.contains_key(s))
        .or_else(|| {
            history
                .scopes
                .keys()
                .find(|k| k.starts_with("received video"))
                .cloned()
        })
        .or_else(|| history.scopes.keys().next().cloned())
        .unwrap_or_default();
    ui.horizontal_wrapped(|ui| {
        egui::ComboBox::new("debugger-scope", "stream")
            .selected_text(current.as_str())
            .width(220.0)
            .show_ui(ui, |ui| {
                for name in history.scopes.keys() {
                    if ui
                        .selectable_label(*name == current, name.as_str())
                        .clicked()
                    {
                        state.scope = Some(name.clone());
                    }
                }
            });
        for (seconds, label) in WINDOWS {
            ui.selectable_value(&mut state.window_s, seconds, label);
        }
    });
    let Some(scope) = history.scopes.get(&current) else {
        return;
    };
    let hi = history.last_t;
    let lo = hi - state.window_s;
    let metrics: Vec<Metric> = Metric::ALL
        .into_iter()
        .filter(|m| scope.series.contains_key(m))
        .collect();
    let columns = ((ui.available_width() / PLOT_MIN_WIDTH) as usize).clamp(1, 3);
    let cache = &mut state.plots;
    cache.retain_scope(&current);
    egui::ScrollArea::vertical()
        .id_salt("debugger-plots")
        .auto_shrink(false)
        .show(ui, |ui| {
            ui.columns(columns, |cols| {
                for (i, metric) in metrics.iter().enumerate() {
                    let Some(col) = cols.get_mut(i % columns) else {
                        continue;
                    };
                    let Some(ring) = scope.series.get(metric) else {
                        continue;
                    };
                    let last = ring.last().map_or(String::new(), |v| format!(" — {v:.1}"));
                    col.label(format!("{}{last}", metric.title()));
                    cache.show(col, &current, *metric, ring, (lo, hi), PLOT_HEIGHT);
                }
            });
        });
    state.plotted_until = (!metrics.is_empty()).then_some(hi);
}

fn signalling(ui: &mut egui::Ui, dbg: &mut Debugger) {
    let data = &dbg.data;
    let state = &mut dbg.panel;
    let mut kinds: Vec<&str> = data.signalling.iter().map(|r| r.kind.as_str()).collect();
    kinds.sort_unstable();
    kinds.dedup();
    ui.horizontal_wrapped(|ui| {
        let shown = if state.kind_filter.is_empty() {
            "every kind"
        } else {
            state.kind_filter.as_str()
        };
        egui::ComboBox::new("debugger-kind", "kind")
            .selected_text(shown)
            .width(180.0)
            .show_ui(ui, |ui| {
                ui.selectable_value(&mut state.kind_filter, String::new(), "every kind");
                for kind in &kinds {
                    ui.selectable_value(&mut state.kind_filter, (*kind).to_owned(), *kind);
                }
            });
        ui.add(
            egui::TextEdit::singleline(&mut state.text_filter)
                .desired_width(160.0)
                .hint_text("contains…"),
        );
    });
    let rows: Vec<usize> = data
        .signalling
        .iter()
        .enumerate()
        .filter(|(_, r)| state.kind_filter.is_empty() || r.kind == state.kind_filter)
        .filter(|(_, r)| state.text_filter.is_empty() || r.text.contains(&state.text_filter))
        .map(|(i, _)| i)
        .collect();
    let selected = state
        .selected
        .and_then(|seq| data.signalling.iter().find(|r| r.seq == seq));
    let list_height = if selected.is_some() {
        ui.available_height() * 0.45
    } else {
        ui.available_height()
    };
    let row_height = ui.text_style_height(&egui::TextStyle::Monospace) + 4.0;
    egui::ScrollArea::vertical()
        .id_salt("debugger-log")
        .max_height(list_height)
        .auto_shrink([false, true])
        .stick_to_bottom(selected.is_none())
        .show_rows(ui, row_height, rows.len(), |ui, range| {
            for &i in rows.get(range).unwrap_or_default() {
                let Some(r) = data.signalling.get(i) else {
                    continue;
                };
                let arrow = match r.direction {
                    crate::client::signal_log::Direction::In => "↓ in ",
                    crate::client::signal_log::Direction::Out => "↑ out",
                    crate::client::signal_log::Direction::Local => "· sdk",
                };
                let t = r.at_ms.saturating_sub(data.started_unix_ms) as f64 / 1e3;
                let line = format!("{t:>9.3} s {arrow} {:<24} {:>6} B", r.kind, r.text.len());
                let label = egui::RichText::new(line).monospace();
                if ui
                    .selectable_label(state.selected == Some(r.seq), label)
                    .clicked()
                {
                    state.selected = (state.selected != Some(r.seq)).then_some(r.seq);
                }
            }
        });
    if let Some(record) = selected {
        ui.separator();
        let pretty = serde_json::from_str::<serde_json::Value>(&record.text)
            .ok()
            .and_then(|v| serde_json::to_string_pretty(&v).ok())
            .unwrap_or_else(|| record.text.clone());
        egui::ScrollArea::both()
            .id_salt("debugger-json")
            .auto_shrink(false)
            .show(ui, |ui| {
                ui.add(egui::Label::new(egui::RichText::new(pretty).monospace()).extend());
            });
    }
}

fn links_tab(ui: &mut egui::Ui, dbg: &mut Debugger) {
    let data = &dbg.data;
    let state = &mut dbg.panel;
    // Rebuilt only when the log changed (it parses every frame).
    let last_seq = data.signalling.last().map_or(0, |r| r.seq);
    if state.links.0 != data.signalling.len() || state.links.1 != last_seq {
        state.links = (
            data.signalling.len(),
            last_seq,
            links::links(&data.signalling),
        );
    }
    let links = &state.links.2;
    if links.is_empty() {
        ui.label("No link yet (links appear once a stream is published or subscribed).");
        return;
    }
    egui::ScrollArea::vertical()
        .id_salt("debugger-links")
        .auto_shrink(false)
        .show(ui, |ui| {
            for (id, link) in links {
                let stream = link
                    .stream_id
                    .map_or(String::new(), |s| format!(" · stream {s}"));
                egui::CollapsingHeader::new(format!("link {id} · {}{stream}", link.kind))
                    .id_salt(("debugger-link", *id))
                    .default_open(true)
                    .show(ui, |ui| {
                        let pair = link
                            .stream_id
                            .and_then(|s| data.selected_pairs.get(&s))
                            .map_or("not known yet", String::as_str);
                        ui.add(egui::Label::new(format!("selected pair: {pair}")).wrap());
                        let states: Vec<String> = link
                            .states
                            .iter()
                            .map(|(at, s)| {
                                let t = at.saturating_sub(data.started_unix_ms) as f64 / 1e3;
                                format!("{s} ({t:.1} s)")
                            })
                            .collect();
                        if !states.is_empty() {
                            ui.add(
                                egui::Label::new(format!("ICE/DTLS: {}", states.join(" > ")))
                                    .wrap(),
                            );
                        }
                        for (title, candidates) in [
                            ("local candidates", &link.local_candidates),
                            ("remote candidates", &link.remote_candidates),
                        ] {
                            ui.label(format!("{title}: {}", candidates.len()));
                            for c in candidates {
                                ui.add(egui::Label::new(egui::RichText::new(c).monospace()).wrap());
                            }
                        }
                        for (title, sdp) in [
                            ("local SDP", &link.local_sdp),
                            ("remote SDP", &link.remote_sdp),
                        ] {
                            egui::CollapsingHeader::new(title)
                                .id_salt(("debugger-sdp", *id, title))
                                .default_open(true)
                                .show(ui, |ui| match sdp {
                                    Some(sdp) => {
                                        ui.add(
                                            egui::Label::new(
                                                egui::RichText::new(sdp_text(sdp)).monospace(),
                                            )
                                            .wrap(),
                                        );
                                    }
                                    None => {
                                        ui.weak("not seen in the log");
                                    }
                                });
                        }
                    });
            }
        });
}

/// An SDP as shown: its CRLF line ends as plain line breaks.
pub fn sdp_text(sdp: &str) -> String {
    sdp.trim_end().replace("\r\n", "\n")
}
