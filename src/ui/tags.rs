//! The tag browser: the active image's header as a folding tree, filtered as you type.

use eframe::egui::{self};

use super::*;

impl App {
    /// The tag browser: every element of the active image's header (sequences
    /// indented), filtered by tag, keyword or value.
    pub(super) fn tag_browser(&mut self, ctx: &egui::Context) {
        // (A stand-in for an image not here yet has no file: nothing to show.)
        let path = self
            .header_of(self.grid.active)
            .filter(|h| h.stand_in.is_none())
            .map(|h| h.path.clone());
        let Some(path) = path else {
            self.panels.show_tags = false;
            return;
        };
        if self.panels.tags.as_ref().map(|t| &t.0) != Some(&path) {
            let (text, tree) = match crate::dicom::open(&path, crate::dicom::ReadMode::HeaderOnly) {
                Ok(o) => (
                    crate::dicom::dump::to_text(&o),
                    crate::dicom::dump::to_tree(&o),
                ),
                Err(e) => (e.to_string(), Vec::new()),
            };
            self.panels.tags = Some((path.clone(), text, tree));
        }
        let mut open = self.panels.show_tags;
        let needle = self.panels.tag_filter.to_lowercase();
        egui::Window::new("Tags")
            .open(&mut open)
            .default_size([620.0, 600.0])
            .show(ctx, |ui| {
                ui.horizontal(|ui| {
                    let label = ui.label("Filter");
                    ui.text_edit_singleline(&mut self.panels.tag_filter)
                        .labelled_by(label.id);
                });
                ui.label(path.display().to_string());
                ui.separator();
                egui::ScrollArea::vertical().show(ui, |ui| {
                    match &self.panels.tags {
                        // Filtered: every matching line, sequences opened up.
                        Some((_, text, _)) if !needle.is_empty() => {
                            for line in text.lines() {
                                if line.to_lowercase().contains(&needle) {
                                    ui.monospace(line);
                                }
                            }
                        }
                        // Unfiltered: sequences fold.
                        Some((_, _, tree)) if !tree.is_empty() => {
                            tag_tree(ui, tree, "tags");
                        }
                        Some((_, text, _)) => {
                            ui.monospace(text);
                        }
                        None => {}
                    }
                });
            });
        self.panels.show_tags = open;
    }
}

/// A header tree: plain elements as lines, sequences and their items folding.
pub(super) fn tag_tree(ui: &mut egui::Ui, nodes: &[crate::dicom::dump::Node], salt: &str) {
    for (k, n) in nodes.iter().enumerate() {
        if n.items.is_empty() {
            ui.monospace(&n.line);
            continue;
        }
        let id = format!("{salt}/{k}");
        egui::CollapsingHeader::new(egui::RichText::new(&n.line).monospace())
            .id_salt(&id)
            .show(ui, |ui| {
                for (i, item) in n.items.iter().enumerate() {
                    egui::CollapsingHeader::new(format!("item {}", i + 1))
                        .id_salt(format!("{id}/{i}"))
                        .default_open(n.items.len() == 1)
                        .show(ui, |ui| tag_tree(ui, item, &format!("{id}/{i}")));
                }
            });
    }
}
