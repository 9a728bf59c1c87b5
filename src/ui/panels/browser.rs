//! The study browser panel: the Local tab (search, sort, pin, delete; the open
//! study highlighted, dates as dates with the patient's age) and a tab per PACS
//! node.

use eframe::egui::{self};

use super::super::*;
use crate::store::Store;
use crate::ui::theme;

impl App {
    pub(in crate::ui) fn browser_ui(&mut self, ui: &mut egui::Ui) {
        ui.horizontal_wrapped(|ui| {
            if ui
                .selectable_label(self.browser.tab == BrowserTab::Local, "Local")
                .clicked()
            {
                self.browser.tab = BrowserTab::Local;
            }
            for (i, name) in self.browser.pacs.node_names().iter().enumerate() {
                if ui
                    .selectable_label(self.browser.tab == BrowserTab::Node(i), name)
                    .on_hover_text("query and retrieve from this PACS")
                    .clicked()
                {
                    self.browser.tab = BrowserTab::Node(i);
                    self.browser.pacs.node = i;
                }
            }
        });
        ui.separator();
        match self.browser.tab {
            BrowserTab::Local => self.local_studies(ui),
            BrowserTab::Node(_) => {
                let cached = self.browser.cached_uids();
                let action = self.browser.pacs.ui(ui, &cached);
                if let Some(pacs::Action::Open(uid)) = action {
                    // It may have come into the cache just now (still arriving).
                    self.refresh_studies();
                    self.open(&[uid]);
                }
            }
        }
    }

    /// The local cache's studies: search, sort, open, pin, delete.
    pub(in crate::ui) fn local_studies(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            let label = ui.label("Search");
            ui.text_edit_singleline(&mut self.browser.search)
                .labelled_by(label.id)
                .on_hover_text("name, ID, date, modality or description");
        });
        ui.horizontal(|ui| {
            ui.label("Sort");
            for (s, name) in [(SortBy::Date, "date"), (SortBy::Name, "name")] {
                if ui.selectable_label(self.browser.sort == s, name).clicked() {
                    self.browser.sort = s;
                    self.refresh_studies();
                }
            }
            if ui.button("Refresh").clicked() {
                self.refresh_studies();
            }
        });
        if let Some(uid) = self.browser.confirm_delete.clone() {
            ui.colored_label(theme::WARNING, "Delete this study from the local cache?");
            ui.horizontal(|ui| {
                if ui.button("delete").clicked() {
                    match Store::open(&self.launch.cache).and_then(|mut s| s.remove_study(&uid)) {
                        Ok(n) => {
                            self.session.status = format!("{n} file(s) removed from the cache")
                        }
                        Err(e) => self.session.status = format!("not deleted: {e}"),
                    }
                    self.browser.confirm_delete = None;
                    self.refresh_studies();
                }
                if ui.button("keep").clicked() {
                    self.browser.confirm_delete = None;
                }
            });
        }
        ui.separator();
        let needle = self.browser.search.to_lowercase();
        let mut open = None;
        let mut pin = None;
        let mut delete = None;
        let mut send_to = None;
        let nodes = self.browser.pacs.node_names();
        // What is open: today's study (highlighted) and the priors hung beside it.
        let open_now = self.session.open_study.clone();
        let priors_open: std::collections::HashSet<&str> = self
            .session
            .sets
            .iter()
            .map(|s| s.study_uid.as_str())
            .filter(|u| open_now.as_deref() != Some(*u))
            .collect();
        egui::ScrollArea::vertical().show(ui, |ui| {
            for s in &self.browser.studies {
                let date = s.date.clone().unwrap_or_default();
                let age = s
                    .birth_date
                    .as_deref()
                    .and_then(|b| super::series::age_at(b, &date))
                    .map(|a| format!(" ({a})"))
                    .unwrap_or_default();
                let is_open = open_now.as_deref() == Some(s.study_uid.as_str());
                let text = format!(
                    "{}  {}\n{}{age}  {}  {}{}{}",
                    s.patient_name.replace('^', " "),
                    s.patient_id,
                    super::series::show_date(&date),
                    s.modalities_label(),
                    s.description.clone().unwrap_or_default(),
                    match s.retrieval {
                        Some(crate::store::RetrievalState::Incomplete) => "  (incomplete)",
                        _ => "",
                    },
                    if is_open {
                        "\nopen"
                    } else if priors_open.contains(s.study_uid.as_str()) {
                        "\nopen as prior"
                    } else {
                        ""
                    }
                );
                // The search finds the date as written in DICOM too (20260105).
                let searched = format!("{text} {date}").to_lowercase();
                if !needle.is_empty() && !searched.contains(&needle) {
                    continue;
                }
                let r = ui.selectable_label(is_open, text);
                if is_open && std::mem::take(&mut self.browser.scroll_to_open) {
                    r.scroll_to_me(None);
                }
                if r.clicked() {
                    open = Some(s.study_uid.clone());
                }
                r.context_menu(|ui| {
                    if ui.button("open").clicked() {
                        open = Some(s.study_uid.clone());
                    }
                    if ui
                        .button(if s.pinned {
                            "unpin"
                        } else {
                            "pin (never evicted)"
                        })
                        .clicked()
                    {
                        pin = Some((s.study_uid.clone(), !s.pinned));
                    }
                    if !nodes.is_empty() {
                        ui.menu_button("send to", |ui| {
                            for (i, n) in nodes.iter().enumerate() {
                                if ui.button(n).clicked() {
                                    send_to = Some((i, s.study_uid.clone()));
                                }
                            }
                        });
                    }
                    if ui.button("delete…").clicked() {
                        delete = Some(s.study_uid.clone());
                    }
                });
                if s.pinned {
                    ui.colored_label(theme::PINNED, "pinned");
                }
                for (node, state) in self.browser.pacs.sends_of(&s.study_uid) {
                    match state {
                        pacs::SendState::Running { done, to_send } => {
                            let f = if *to_send > 0 {
                                *done as f32 / *to_send as f32
                            } else {
                                0.0
                            };
                            ui.add(
                                egui::ProgressBar::new(f)
                                    .desired_width(140.0)
                                    .text(format!("sending to {node} {done}/{to_send}")),
                            );
                        }
                        pacs::SendState::Done { complete, text } => {
                            ui.colored_label(
                                if *complete { theme::OK } else { theme::WARNING },
                                format!("sent to {node}: {text}"),
                            );
                        }
                        pacs::SendState::Failed(e) => {
                            ui.colored_label(theme::ERROR, format!("not sent to {node}: {e}"))
                                .on_hover_text(e);
                        }
                    }
                }
            }
        });
        if let Some(uid) = open {
            self.open(&[uid]);
        }
        if let Some((uid, p)) = pin {
            if let Err(e) = Store::open(&self.launch.cache).and_then(|s| s.set_pinned(&uid, p)) {
                self.session.status = format!("pin: {e}");
            }
            self.refresh_studies();
        }
        if let Some((node, uid)) = send_to {
            self.browser.pacs.start_send(node, &uid, None);
        }
        if delete.is_some() {
            self.browser.confirm_delete = delete;
        }
    }
}
