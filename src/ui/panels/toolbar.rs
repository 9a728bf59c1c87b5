//! The toolbar: layouts, windows, tools, links, MPR, tags, export, help.

use eframe::egui::{self};

use super::super::command::{Command, LAYOUTS, TOOLS};
use super::super::*;
use crate::imaging::lut::{self};

impl App {
    /// The toolbar's buttons, every one a [`Command`]; clicked, they are handled
    /// after the panel is drawn.
    pub(in crate::ui) fn toolbar(&mut self, ui: &mut egui::Ui) {
        let mut queue = Vec::new();
        ui.horizontal_wrapped(|ui| {
            ui.label("Layout");
            for (r, c) in LAYOUTS {
                App::command_button(
                    ui,
                    Command::Layout(r, c),
                    Some(self.grid.layout == (r, c)),
                    &mut queue,
                );
            }
            ui.menu_button("N×M", |ui| {
                let (mut r, mut c) = self.grid.layout;
                ui.horizontal(|ui| {
                    ui.label("rows");
                    ui.add(egui::DragValue::new(&mut r).range(1..=6));
                    ui.label("columns");
                    ui.add(egui::DragValue::new(&mut c).range(1..=6));
                });
                if (r, c) != self.grid.layout {
                    queue.push(Command::Layout(r, c));
                }
            });
            ui.separator();
            ui.label("W/L");
            for i in 0..lut::CT_PRESETS.len() {
                App::command_button(ui, Command::Preset(i), None, &mut queue);
            }
            App::command_button(ui, Command::Invert, None, &mut queue);
            App::command_button(ui, Command::Reset, None, &mut queue);
            ui.separator();
            ui.label("Tool");
            for t in TOOLS {
                App::command_button(
                    ui,
                    Command::SetTool(t),
                    Some(self.grid.tool == t),
                    &mut queue,
                );
            }
            ui.separator();
            App::command_button(
                ui,
                Command::ToggleLink,
                Some(self.grid.link.is_some()),
                &mut queue,
            );
            let cine = match self.grid.cine {
                Some(fps) => format!("cine {fps:.0} fps (space)"),
                None => Command::ToggleCine.label(),
            };
            if ui
                .selectable_label(self.grid.cine.is_some(), cine)
                .on_hover_text(Command::ToggleCine.hover_text())
                .clicked()
            {
                queue.push(Command::ToggleCine);
            }
            App::command_button(
                ui,
                Command::ToggleSyncView,
                Some(self.grid.sync_view),
                &mut queue,
            );
            App::command_button(
                ui,
                Command::ToggleReverseWlDrag,
                Some(self.grid.invert_wl_drag),
                &mut queue,
            );
            App::command_button(ui, Command::Mpr, None, &mut queue);
            App::command_button(
                ui,
                Command::ToggleTags,
                Some(self.panels.show_tags),
                &mut queue,
            );
            ui.menu_button("export", |ui| {
                for c in [
                    Command::ExportImage,
                    Command::ExportView,
                    Command::ExportDeidentified,
                ] {
                    let before = queue.len();
                    App::command_button(ui, c, None, &mut queue);
                    if queue.len() > before {
                        ui.close();
                    }
                }
            });
            ui.separator();
            App::command_button(ui, Command::ToggleHelp, None, &mut queue);
        });
        for c in queue {
            self.handle(c);
        }
    }
}
