//! The series strip: a thumbnail per display set, clicked or dragged onto a viewport.

use eframe::egui::{self, Vec2};

use super::super::*;

impl App {
    /// One thumbnail per display set (never fewer than series); click to show it
    /// in the active viewport, or drag it onto any viewport.
    pub(in crate::ui) fn series_strip(&mut self, ui: &mut egui::Ui) {
        let mut assign = None;
        egui::ScrollArea::horizontal()
            .id_salt("series-strip")
            .show(ui, |ui| {
                ui.horizontal(|ui| {
                    for (i, s) in self.session.sets.iter().enumerate() {
                        let loaded = self.residency.slots[i]
                            .iter()
                            .filter(|s| s.pixels.is_some())
                            .count();
                        let n = s.set.frames.len();
                        let label = format!(
                            "{} {}\n{}\n{}",
                            s.modality,
                            s.label,
                            s.study_date,
                            if s.derived.is_some() {
                                format!("{n} im, reformatted")
                            } else if loaded < n {
                                format!("{loaded}/{n} loading")
                            } else {
                                format!("{n} im")
                            }
                        );
                        let shown = self.grid.viewports.iter().any(|v| v.set == Some(i));
                        let id = ui.scope_id().with(("series", i));
                        let r = ui.dnd_drag_source(id, viewport::SeriesDrag(i), |ui| {
                            let button = match self.residency.thumbs.get(i).and_then(|t| t.as_ref())
                            {
                                Some(t) => egui::Button::image_and_text(
                                    egui::Image::new(t).max_size(Vec2::splat(72.0)),
                                    label,
                                ),
                                None => egui::Button::new(label).min_size(Vec2::new(72.0, 72.0)),
                            };
                            ui.add(button.selected(shown)).on_hover_text(format!(
                                "{}\nclick: show in the active viewport; drag onto a viewport",
                                s.series_description
                            ))
                        });
                        if r.inner.clicked() {
                            assign = Some(i);
                        }
                    }
                });
            });
        if let Some(i) = assign {
            let active = self.grid.active;
            self.show_set(active, i);
        }
    }
}
