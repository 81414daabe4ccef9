//! Draws the Server tab: the token field, then the server's view of the
//! room (users, streams, links with their counters) beside the client's
//! links as its signalling log shows them.

use super::Debugger;
use super::links;
use super::server_view::ServerState;

/// Draws the tab (nothing to draw without a live server view).
pub fn show(ui: &mut egui::Ui, dbg: &mut Debugger) {
    let Some(server) = &mut dbg.server else {
        ui.label("No server: this debugger shows a file.");
        return;
    };
    ui.horizontal_wrapped(|ui| {
        ui.label("X-AUTH-TOKEN");
        ui.add(
            egui::TextEdit::singleline(&mut server.token)
                .password(true)
                .desired_width(180.0),
        );
        match &server.origin {
            Ok(origin) => ui.weak(format!("{origin}/rooms/{} · every 2 s", dbg.data.room)),
            Err(_) => ui.weak("no HTTP origin"),
        };
    });
    ui.separator();
    let client_links = links::links(&dbg.data.signalling);
    ui.columns(2, |cols| {
        let ui = &mut cols[0];
        ui.strong("Server");
        match &server.state {
            ServerState::Waiting => {
                ui.label("Waiting for the server…");
            }
            ServerState::Failed { text, at } => {
                ui.colored_label(ui.visuals().error_fg_color, text.as_str());
                ui.weak(format!("{:.0} s ago", at.elapsed().as_secs_f64()));
            }
            ServerState::Shown { view, at } => {
                ui.weak(format!(
                    "room {} · {:.0} s ago",
                    view.id,
                    at.elapsed().as_secs_f64()
                ));
                ui.label(format!("Users ({})", view.users.len()));
                for u in &view.users {
                    let role = if u.role == 2 { "player" } else { "joiner" };
                    ui.label(format!("user {} · {} · {role}", u.id, u.name));
                }
                ui.label(format!("Streams ({})", view.streams.len()));
                for s in &view.streams {
                    let video = s
                        .video
                        .as_ref()
                        .map_or_else(|| "no video".to_owned(), |v| v.to_string());
                    ui.label(format!(
                        "stream {} · {} · audio {}{} · {video}{}{}",
                        s.id,
                        s.publisher,
                        s.audio,
                        if s.audio_muted { " (muted)" } else { "" },
                        if s.video_muted { " · video muted" } else { "" },
                        if s.relayed { " · relayed" } else { "" },
                    ));
                }
                ui.label(format!("Links ({})", view.links.len()));
                for l in &view.links {
                    ui.add(egui::Label::new(l.row()).wrap());
                }
            }
        }
        let ui = &mut cols[1];
        ui.strong("Client");
        ui.label(format!("Links ({})", client_links.len()));
        for (id, l) in &client_links {
            let stream = l
                .stream_id
                .map_or_else(|| "top-N audio".to_owned(), |s| format!("stream {s}"));
            let state = l.states.last().map_or("new", |(_, s)| s.as_str());
            ui.label(format!(
                "client link {id} · {} · {stream} · {state}",
                l.kind
            ));
        }
    });
}
