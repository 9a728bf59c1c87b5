//! Exports from the viewer: the image as PNG (CPU reference, turned and flipped as
//! shown), the view with its annotations, and the series de-identified (with its form).

use std::path::PathBuf;

use eframe::egui::{self};

use super::*;

/// The de-identified export form.
#[derive(Debug, Clone)]
pub(super) struct DeidForm {
    pub(super) open: bool,
    pub(super) options: crate::dicom::anonymize::Options,
}

impl App {
    /// A file name in the export folder that does not exist yet.
    pub(super) fn export_path(
        &self,
        stem: &str,
        ext: &str,
    ) -> std::result::Result<PathBuf, String> {
        let dir = &self.launch.export_dir;
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let stem: String = stem
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        (1..10_000)
            .map(|k| {
                if k == 1 {
                    dir.join(format!("{stem}.{ext}"))
                } else {
                    dir.join(format!("{stem}-{k}.{ext}"))
                }
            })
            .find(|p| !p.exists())
            .ok_or_else(|| format!("{}: too many exports named {stem}", dir.display()))
    }

    /// The active viewport's image as PNG: the CPU reference pipeline with the
    /// viewport's window and inversion, turned and flipped as shown, at the image's
    /// own resolution, without annotations.
    pub fn export_image(&mut self) {
        let r = (|| -> std::result::Result<PathBuf, String> {
            let v = self
                .grid
                .viewports
                .get(self.grid.active)
                .ok_or("no viewport")?;
            let set = v.set.ok_or("nothing shown")?;
            let (fr, h) = self.session.frame(set, v.index).ok_or("no image")?;
            let slot = &self.residency.slots[set][v.index];
            let px = slot
                .full()
                .ok_or("not decoded yet (a reduced-resolution preview is shown)")?
                .expand();
            let r = crate::imaging::render::render(h, fr.frame, &px, &v.options())
                .map_err(|e| e.to_string())?;
            let bytes: Vec<u8> = r.data.iter().map(|&x| x.min(255) as u8).collect();
            let mut img = if r.channels == 1 {
                image::GrayImage::from_raw(r.width, r.height, bytes).map(image::DynamicImage::from)
            } else {
                image::RgbImage::from_raw(r.width, r.height, bytes).map(image::DynamicImage::from)
            }
            .ok_or("rendered size mismatch")?;
            for _ in 0..v.rotation % 4 {
                img = img.rotate90();
            }
            if v.flip_h {
                img = img.fliph();
            }
            if v.flip_v {
                img = img.flipv();
            }
            let ls = &self.session.sets[set];
            let path = self.export_path(
                &format!(
                    "{}-{}-im{}",
                    ls.modality,
                    ls.label.split(" (").next().unwrap_or(""),
                    v.index + 1
                ),
                "png",
            )?;
            img.save(&path)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            self.audit_export(&format!("image exported to {}", path.display()));
            Ok(path)
        })();
        self.report_export(r.map(|p| format!("saved {}", p.display())));
    }

    /// An export of what the active viewport shows, in the audit trail: its study
    /// and patient.
    fn audit_export(&self, what: &str) {
        use crate::audit::{Action, Event, EventId, Role};
        let Some(v) = self.grid.viewports.get(self.grid.active) else {
            return;
        };
        let Some((_, h)) = v.set.and_then(|set| self.session.frame(set, v.index)) else {
            return;
        };
        Event::new(EventId::Export, Action::Read, "lightbox", Role::Application)
            .study(&h.study_uid, Some(1))
            .patient(
                h.patient_id.as_deref().unwrap_or(""),
                h.patient_name.as_deref().unwrap_or(""),
            )
            .describe(what)
            .record(&self.launch.cache);
    }

    /// The active viewport as shown, annotations and measurements included: a
    /// screenshot of its rectangle, saved when the frame has been read back.
    pub fn export_view(&mut self) {
        let Some(rect) = self
            .grid
            .viewports
            .get(self.grid.active)
            .and_then(|v| v.rect)
        else {
            self.report_export(Err("nothing shown".into()));
            return;
        };
        let path = match self.export_path("view", "png") {
            Ok(p) => p,
            Err(e) => {
                self.report_export(Err(e));
                return;
            }
        };
        self.audit_export(&format!("view exported to {}", path.display()));
        let (tx, ctx) = (self.exports.tx.clone(), self.ctx.clone());
        let ppp = self.ctx.pixels_per_point();
        self.ctx.request_screenshot(move |shot| {
            let part = shot.region(&rect, Some(ppp));
            let [w, h] = part.size;
            let rgba: Vec<u8> = part.pixels.iter().flat_map(|c| c.to_array()).collect();
            let msg = match image::RgbaImage::from_raw(w as u32, h as u32, rgba) {
                Some(img) => match img.save(&path) {
                    Ok(()) => format!("saved {}", path.display()),
                    Err(e) => format!("export failed: {}: {e}", path.display()),
                },
                None => "export failed: screenshot size mismatch".into(),
            };
            let _ = tx.send(msg);
            ctx.request_repaint();
        });
    }

    /// The active viewport's series, de-identified, into a new folder (on a
    /// worker thread).
    pub fn export_series_deidentified(&mut self) {
        let Some(set) = self.active_set() else {
            self.report_export(Err("nothing shown".into()));
            return;
        };
        let files: Vec<PathBuf> = {
            let mut seen = std::collections::BTreeSet::new();
            self.session.sets[set]
                .set
                .frames
                .iter()
                .filter_map(|f| self.session.headers.get(f.instance))
                .filter(|h| h.stand_in.is_none() && seen.insert(h.path.clone()))
                .map(|h| h.path.clone())
                .collect()
        };
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let out = match self.export_path(&format!("deidentified-{stamp}"), "d") {
            Ok(p) => p.with_extension(""),
            Err(e) => {
                self.report_export(Err(e));
                return;
            }
        };
        let (tx, ctx) = (self.exports.tx.clone(), self.ctx.clone());
        let opts = self.exports.deid.options.clone();
        self.exports.last = Some(format!("de-identifying {} file(s)…", files.len()));
        let spawned = std::thread::Builder::new()
            .name("export".into())
            .spawn(move || {
                let msg = match crate::dicom::anonymize::export(&files, &out, &opts) {
                    Ok(r) if r.refused.is_empty() => {
                        format!(
                            "saved {} de-identified file(s) in {}",
                            r.written.len(),
                            out.display()
                        )
                    }
                    Ok(r) => format!(
                        "saved {} de-identified file(s) in {}; {} refused: {}",
                        r.written.len(),
                        out.display(),
                        r.refused.len(),
                        r.refused.first().map(|x| x.1.as_str()).unwrap_or("")
                    ),
                    Err(e) => format!("export failed: {e}"),
                };
                let _ = tx.send(msg);
                ctx.request_repaint();
            });
        if let Err(e) = spawned {
            self.exports.last = Some(format!("export: cannot start a thread: {e}"));
        }
    }

    pub(super) fn report_export(&mut self, r: std::result::Result<String, String>) {
        self.exports.last = Some(match r {
            Ok(m) => m,
            Err(e) => format!("export failed: {e}"),
        });
    }

    /// The de-identified export form.
    pub(super) fn deid_window(&mut self, ctx: &egui::Context) {
        let mut open = self.exports.deid.open;
        let mut go = false;
        egui::Window::new("Export series, de-identified")
            .open(&mut open)
            .collapsible(false)
            .show(ctx, |ui| {
                ui.label("DICOM PS3.15 Basic Application Level Confidentiality Profile: names, IDs and UIDs replaced; private tags, overlays and identifying attributes removed.");
                egui::Grid::new("deid").num_columns(2).show(ui, |ui| {
                    let l = ui.label("Patient name");
                    ui.text_edit_singleline(&mut self.exports.deid.options.patient_name)
                        .labelled_by(l.id);
                    ui.end_row();
                    let l = ui.label("Patient ID");
                    ui.text_edit_singleline(&mut self.exports.deid.options.patient_id)
                        .labelled_by(l.id);
                    ui.end_row();
                });
                ui.checkbox(&mut self.exports.deid.options.keep_dates, "keep dates (longitudinal option)");
                ui.checkbox(
                    &mut self.exports.deid.options.keep_descriptions,
                    "keep study/series descriptions (check them first)",
                );
                ui.label(format!("into a new folder in {}", self.launch.export_dir.display()));
                if ui.button("export series").clicked() {
                    go = true;
                }
            });
        self.exports.deid.open = open && !go;
        if go {
            self.export_series_deidentified();
        }
    }
}
