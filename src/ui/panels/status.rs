//! What the reader must know, on screen: the status bar (images decoded or why
//! there are none, files skipped, the hanging protocol, notices), the
//! skipped-files panel (each file and why), the F1 help generated from the
//! command list, and the window's size remembered for the next start.

use std::path::Path;

use eframe::egui::{self};

use super::super::*;
use crate::ui::theme;

impl App {
    /// The status bar under the series strip.
    pub(in crate::ui) fn status_bar(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            let (loaded, total) = self.decoded();
            if total > 0 {
                ui.colored_label(
                    theme::MUTED,
                    format!(
                        "{loaded}/{total} images decoded  first image {}  frame {:.1} ms",
                        self.timing
                            .first_image_ms
                            .map(|m| format!("{m:.0} ms"))
                            .unwrap_or_else(|| "-".into()),
                        self.timing.frame_ms,
                    ),
                );
            } else if !self.session.status.is_empty() {
                ui.colored_label(theme::MUTED, &self.session.status);
            } else if self.session.opened_from.is_some() || !self.session.failures.is_empty() {
                ui.colored_label(theme::WARNING, self.no_images_note());
            } else {
                ui.colored_label(
                    theme::MUTED,
                    "no study open: choose one in the list, or drop files or a folder here",
                );
            }
            // A study open while it is retrieved.
            let arriving: Vec<(usize, usize)> = self
                .session
                .arriving
                .as_ref()
                .map(|a| a.counts.values().copied().filter(|(c, l)| c < l).collect())
                .unwrap_or_default();
            if !arriving.is_empty() {
                let (c, l) = arriving
                    .iter()
                    .fold((0, 0), |(a, b), (c, l)| (a + c, b + l));
                ui.separator();
                ui.colored_label(theme::NOTE, format!("arriving from the PACS: {c} of {l} images"));
            }
            if total > 0 && !self.session.status.is_empty() {
                ui.separator();
                ui.colored_label(theme::MUTED, &self.session.status);
            }
            if !self.session.failures.is_empty() {
                ui.separator();
                let n = self.session.failures.len();
                if ui
                    .add(egui::Button::new(
                        egui::RichText::new(format!("{n} file(s) skipped")).color(theme::WARNING),
                    ))
                    .on_hover_text("which files, and why")
                    .clicked()
                {
                    self.panels.show_skipped = !self.panels.show_skipped;
                }
            }
            // A notice goes after a while (a new one starts its own time).
            match (&self.session.notice, &self.session.notice_since) {
                (Some(n), Some((seen, at))) if n == seen => {
                    let left = super::super::app::NOTICE_SHOWN.saturating_sub(at.elapsed());
                    if left.is_zero() {
                        self.session.notice = None;
                        self.session.notice_since = None;
                    } else {
                        ui.ctx().request_repaint_after(left);
                    }
                }
                (Some(n), _) => {
                    self.session.notice_since = Some((n.clone(), std::time::Instant::now()));
                    ui.ctx()
                        .request_repaint_after(super::super::app::NOTICE_SHOWN);
                }
                (None, _) => self.session.notice_since = None,
            }
            if let Some(n) = &self.session.notice {
                ui.separator();
                ui.colored_label(theme::WARNING, n);
            }
            if let (Some(fps), Some(rate)) = (self.grid.cine, self.grid.cine_rate)
                && rate < 0.9 * fps
            {
                ui.separator();
                ui.colored_label(
                    theme::WARNING,
                    format!(
                        "cine: {rate:.1} of {fps:.0} frames/s shown (every frame, slower than asked: the display cannot keep up)"
                    ),
                );
            }
            if let Some(p) = &self.browser.pacs.prior_status {
                ui.separator();
                ui.label(p);
            }
            if let Some(p) = &self.session.hanging_protocol {
                ui.separator();
                let how = match self.session.protocol_choice {
                    crate::hanging::Choice::Automatic => "",
                    _ => " (chosen)",
                };
                ui.label(format!("hanging: {p}{how}"));
            }
            if self.grid.mpr_saved.is_some() {
                ui.separator();
                ui.label("MPR: M goes back");
            }
            if let Some(m) = &self.exports.last {
                ui.separator();
                ui.label(m);
            }
        });
    }

    /// The files skipped while opening, each with why: a window the reader
    /// closes (the status bar's "N file(s) skipped" opens it again).
    pub(in crate::ui) fn skipped_window(&mut self, ctx: &egui::Context) {
        if !self.panels.show_skipped || self.session.failures.is_empty() {
            return;
        }
        let mut open = true;
        let title = format!("{} file(s) skipped", self.session.failures.len());
        egui::Window::new("skipped files")
            .open(&mut open)
            .collapsible(true)
            .default_width(560.0)
            .anchor(egui::Align2::RIGHT_BOTTOM, egui::vec2(-270.0, -150.0))
            .show(ctx, |ui| {
                ui.label(match &self.session.opened_from {
                    Some(from) => format!("{title} while opening {from}:"),
                    None => format!("{title} while opening:"),
                });
                egui::ScrollArea::vertical()
                    .max_height(240.0)
                    .show(ui, |ui| {
                        for (path, why) in &self.session.failures {
                            ui.label(skipped_line(path, why))
                                .on_hover_text(path.display().to_string());
                        }
                    });
            });
        self.panels.show_skipped = open;
    }

    /// F1: every command with its keys, from the command list.
    pub(in crate::ui) fn help_window(&mut self, ctx: &egui::Context) {
        if !self.panels.show_help {
            return;
        }
        let mut open = true;
        egui::Window::new("Shortcuts")
            .open(&mut open)
            .collapsible(false)
            .show(ctx, |ui| {
                // Two columns, so the whole table fits a laptop's screen.
                let rows = super::super::command::help_rows();
                let half = rows.len().div_ceil(2);
                ui.horizontal_top(|ui| {
                    for (k, part) in rows.chunks(half.max(1)).enumerate() {
                        egui::Grid::new(("keys", k)).striped(true).show(ui, |ui| {
                            for (keys, what) in part {
                                ui.monospace(keys);
                                ui.label(what);
                                ui.end_row();
                            }
                        });
                        ui.separator();
                    }
                });
            });
        self.panels.show_help = open;
    }

    /// Keep the window's size and maximised state for the next start (written
    /// when it changes, at most twice a second); on a first start without a
    /// window manager to maximise it, fill the monitor.
    pub(in crate::ui) fn remember_window(&mut self, ctx: &egui::Context) {
        let Some((path, last)) = &mut self.panels.window_memory else {
            return;
        };
        let info = ctx.input(|i| i.viewport().clone());
        if last.is_none()
            && self.timing.frames == 3
            && info.maximized != Some(true)
            && let (Some(m), Some(r)) = (info.monitor_size, info.inner_rect)
            && r.width() < m.x - 64.0
        {
            // Asked for maximised (first start) and not given it.
            ctx.send_viewport_cmd(egui::ViewportCommand::OuterPosition(egui::pos2(0.0, 0.0)));
            ctx.send_viewport_cmd(egui::ViewportCommand::InnerSize(m));
        }
        let Some(now) = WindowState::of(&info, last.as_ref()) else {
            return;
        };
        if last.as_ref() == Some(&now) || self.timing.frames < 5 {
            return;
        }
        if self
            .panels
            .window_saved_at
            .is_some_and(|t| t.elapsed().as_millis() < 500)
        {
            ctx.request_repaint_after(std::time::Duration::from_millis(500));
            return;
        }
        if let Err(e) = now.write(path) {
            tracing::warn!("window size not remembered: {e}");
        }
        *last = Some(now);
        self.panels.window_saved_at = Some(std::time::Instant::now());
    }
}

/// One line of the skipped-files panel: the file's name and why (the reason
/// without the path it may repeat).
fn skipped_line(path: &Path, why: &str) -> String {
    let full = path.display().to_string();
    let why = why
        .strip_prefix(&full)
        .map(|w| w.trim_start_matches(':').trim_start())
        .unwrap_or(why);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or(full);
    format!("{name}: {why}")
}

#[cfg(test)]
mod tests {
    use super::skipped_line;
    use std::path::Path;

    #[test]
    fn a_skipped_line_names_the_file_once() {
        let p = Path::new("/data/study/notes.txt");
        assert_eq!(
            skipped_line(p, "/data/study/notes.txt: not a DICOM file"),
            "notes.txt: not a DICOM file"
        );
        assert_eq!(skipped_line(p, "too short"), "notes.txt: too short");
    }
}
