//! The toolbar, one row of icons at 1920 px: layouts, windows, tools, links,
//! MPR, tags, export, full screen, help, and the hanging protocol in use (a list
//! to choose another).

use eframe::egui::{self};

use super::super::command::{Command, LAYOUTS, TOOLS};
use super::super::*;
use super::icons::{self, icon_button};
use crate::hanging::Choice;
use crate::imaging::lut::{self};

impl App {
    /// The toolbar's buttons, every one a [`Command`]; clicked, they are handled
    /// after the panel is drawn.
    pub(in crate::ui) fn toolbar(&mut self, ui: &mut egui::Ui) {
        let mut queue = Vec::new();
        let mut choose = None;
        ui.horizontal_wrapped(|ui| {
            ui.spacing_mut().item_spacing.x = 3.0;
            for (r, c) in LAYOUTS {
                App::command_button(
                    ui,
                    Command::Layout(r, c),
                    Some(self.grid.layout == (r, c)),
                    &mut queue,
                );
            }
            let more = icons::more_layouts(ui, "N×M", "any layout: rows × columns");
            egui::Popup::menu(&more).show(|ui| {
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
            for i in 0..lut::CT_PRESETS.len() {
                App::command_button(ui, Command::Preset(i), None, &mut queue);
            }
            App::command_button(ui, Command::Invert, None, &mut queue);
            App::command_button(ui, Command::Reset, None, &mut queue);
            ui.separator();
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
            // The cine button says the rate while it plays.
            let cine = match self.grid.cine {
                Some(fps) => format!("cine {fps:.0} fps (space)"),
                None => Command::ToggleCine.label(),
            };
            if icon_button(
                ui,
                Command::ToggleCine,
                Some(self.grid.cine.is_some()),
                cine,
            )
            .clicked()
            {
                queue.push(Command::ToggleCine);
            }
            if let Some(fps) = self.grid.cine {
                ui.label(format!("{fps:.0} fps"));
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
            App::command_button(
                ui,
                Command::Mpr,
                Some(self.grid.mpr_saved.is_some()),
                &mut queue,
            );
            self.slab_control(ui, &mut queue);
            App::command_button(
                ui,
                Command::ToggleTags,
                Some(self.panels.show_tags),
                &mut queue,
            );
            let export = icon_button(ui, Command::ExportImage, None, "export".into());
            egui::Popup::menu(&export).show(|ui| {
                for c in [
                    Command::ExportImage,
                    Command::ExportView,
                    Command::ExportDeidentified,
                ] {
                    let r = ui.button(c.label()).on_hover_text(c.hover_text());
                    if r.clicked() {
                        queue.push(c);
                        ui.close();
                    }
                }
            });
            ui.separator();
            choose = self.protocol_list(ui);
            ui.separator();
            let full = ui.ctx().input(|i| i.viewport().fullscreen.unwrap_or(false));
            App::command_button(ui, Command::ToggleFullscreen, Some(full), &mut queue);
            App::command_button(
                ui,
                Command::ToggleHelp,
                Some(self.panels.show_help),
                &mut queue,
            );
        });
        for c in queue {
            self.handle(c);
        }
        if let Some(choice) = choose {
            self.choose_protocol(choice);
        }
    }

    /// On an MPR plane: its slab — thin, MIP, MinIP or AvgIP, and how
    /// thick (what S, ] and [ and the slab's dashed faces also set).
    fn slab_control(&self, ui: &mut egui::Ui, queue: &mut Vec<Command>) {
        use crate::imaging::reslice::{Slab, SlabMode};
        let Some(ls) = self
            .grid
            .viewports
            .get(self.grid.active)
            .and_then(|v| self.session.sets.get(v.set?))
            .filter(|ls| ls.derived.is_some())
        else {
            return;
        };
        let mut mode = ls.slab.map(|s| s.mode);
        let mut mm = ls.slab.map(|s| s.thickness_mm).unwrap_or(10.0);
        let name = |m: Option<SlabMode>| m.map(|m| m.label()).unwrap_or("thin");
        egui::ComboBox::from_id_salt("slab mode")
            .selected_text(name(mode))
            .width(60.0)
            .show_ui(ui, |ui| {
                for m in [
                    None,
                    Some(SlabMode::Mip),
                    Some(SlabMode::MinIp),
                    Some(SlabMode::Average),
                ] {
                    ui.selectable_value(&mut mode, m, name(m));
                }
            })
            .response
            .on_hover_text("the active MPR plane as a thick slab (S)");
        let thick = ui
            .add_enabled(
                mode.is_some(),
                egui::DragValue::new(&mut mm)
                    .range(1.0..=100.0)
                    .speed(0.5)
                    .suffix(" mm"),
            )
            .on_hover_text("the slab's thickness (] and [, or drag its dashed faces)");
        let slab = mode.map(|mode| Slab {
            thickness_mm: mm,
            mode,
        });
        if slab != ls.slab || thick.changed() {
            queue.push(Command::SetSlab(slab));
        }
    }

    /// The hanging protocols loaded, "automatic" (the best that applies) and one
    /// viewport per series, as a list; what the reader picks.
    fn protocol_list(&self, ui: &mut egui::Ui) -> Option<Choice> {
        let in_use = self.session.hanging_protocol.clone().unwrap_or_default();
        let current = &self.session.protocol_choice;
        let shown = match current {
            Choice::Automatic if in_use.is_empty() => "automatic".to_string(),
            Choice::Automatic => format!("automatic: {in_use}"),
            Choice::Protocol(n) => n.clone(),
            Choice::OnePerSet => crate::hanging::ONE_PER_SET.to_string(),
        };
        let mut picked = None;
        let mut options = vec![(Choice::Automatic, "automatic".to_string())];
        options.extend(
            self.session
                .protocols
                .iter()
                .map(|p| (Choice::Protocol(p.name.clone()), p.name.clone())),
        );
        options.push((Choice::OnePerSet, crate::hanging::ONE_PER_SET.to_string()));
        egui::ComboBox::from_label("hanging protocol")
            .selected_text(shown)
            .width(190.0)
            .show_ui(ui, |ui| {
                for (choice, name) in options {
                    if ui.selectable_label(*current == choice, name).clicked() {
                        picked = Some(choice);
                    }
                }
            })
            .response
            .on_hover_text("the hanging protocol: choose one to hang the open studies with it");
        picked
    }
}
