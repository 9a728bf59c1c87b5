//! The series strip: a thumbnail per display set, clicked or dragged onto a
//! viewport, each saying whether it is today's study ("current") or a prior (with
//! its date) and the patient's age at it, with a menu to send the series to a
//! node; and how dates and ages are shown.

use eframe::egui::{self, Vec2};

use super::super::*;
use crate::ui::theme;

impl App {
    /// One thumbnail per display set (never fewer than series); click to show it
    /// in the active viewport, or drag it onto any viewport.
    pub(in crate::ui) fn series_strip(&mut self, ui: &mut egui::Ui) {
        let mut assign = None;
        let mut send_to = None;
        let nodes = self.browser.pacs.node_names();
        // Today's study: the one asked for (else the newest open).
        let today = self.session.open_study.clone().or_else(|| {
            self.session
                .sets
                .iter()
                .max_by(|a, b| a.study_date.cmp(&b.study_date))
                .map(|s| s.study_uid.clone())
        });
        egui::ScrollArea::horizontal()
            .id_salt("series-strip")
            .show(ui, |ui| {
                ui.horizontal(|ui| {
                    for (i, s) in self.session.sets.iter().enumerate() {
                        let loaded = self.residency.slots[i]
                            .iter()
                            .filter(|s| s.full().is_some())
                            .count();
                        let n = s.set.frames.len();
                        let current = today.as_deref() == Some(s.study_uid.as_str());
                        let header = s
                            .set
                            .frames
                            .first()
                            .and_then(|f| self.session.headers.get(f.instance));
                        let age = header.and_then(|h| age_of(h, &s.study_date));
                        let date = show_date(&s.study_date);
                        let when = match (current, age) {
                            (true, Some(a)) => format!("current {date} · {a}"),
                            (true, None) => format!("current {date}"),
                            (false, Some(a)) => format!("prior {date} · {a}"),
                            (false, None) => format!("prior {date}"),
                        };
                        let label = egui::RichText::new(format!(
                            "{} {}\n{when}\n{}",
                            s.modality,
                            s.label,
                            if s.derived.is_some() {
                                format!("{n} im, reformatted")
                            } else if loaded < n {
                                format!("{loaded}/{n} loading")
                            } else {
                                format!("{n} im")
                            }
                        ))
                        .color(if current {
                            theme::CURRENT
                        } else {
                            theme::PRIOR
                        });
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
                                "{}\n{}\nclick: show in the active viewport; drag onto a viewport",
                                s.series_description, s.study_description
                            ))
                        });
                        if r.inner.clicked() {
                            assign = Some(i);
                        }
                        if let Some(h) = header.filter(|_| !nodes.is_empty() && s.derived.is_none())
                        {
                            r.inner.context_menu(|ui| {
                                ui.menu_button("send series to", |ui| {
                                    for (k, name) in nodes.iter().enumerate() {
                                        if ui.button(name).clicked() {
                                            send_to = Some((
                                                k,
                                                h.study_uid.clone(),
                                                h.series_uid.clone(),
                                            ));
                                        }
                                    }
                                });
                            });
                        }
                    }
                });
            });
        if let Some((node, study, series)) = send_to {
            self.browser.pacs.start_send(node, &study, Some(series));
            self.session.status = "sending the series (progress under the study in Local)".into();
        }
        if let Some(i) = assign {
            let active = self.grid.active;
            self.show_set(active, i);
        }
    }
}

/// A DICOM date (YYYYMMDD) as a date: "2026-01-05"; anything else as it is.
pub(in crate::ui) fn show_date(da: &str) -> String {
    match parse_date(da) {
        Some((y, m, d)) => format!("{y:04}-{m:02}-{d:02}"),
        None if da.trim().is_empty() => "no date".into(),
        None => da.trim().to_string(),
    }
}

fn parse_date(da: &str) -> Option<(i32, u32, u32)> {
    let t = da.trim();
    let t = t.replace(['.', '-'], "");
    if t.len() != 8 || !t.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (y, m, d) = (
        t[0..4].parse().ok()?,
        t[4..6].parse().ok()?,
        t[6..8].parse().ok()?,
    );
    ((1..=12).contains(&m) && (1..=31).contains(&d)).then_some((y, m, d))
}

/// The patient's age at the study: Patient's Age (0010,1010) when the image
/// gives it, else from the birth date and the study date.
pub(in crate::ui) fn age_of(h: &crate::dicom::ImageHeader, study_date: &str) -> Option<String> {
    let given = h
        .annotation_attrs
        .iter()
        .find(|(k, _)| *k == "PatientAge")
        .and_then(|(_, v)| show_age_string(v));
    given.or_else(|| age_at(h.patient_birth_date.as_deref()?, study_date))
}

/// An Age String ("045Y", "006M", "012W", "003D") as "45 y", "6 mo", "12 wk", "3 d".
fn show_age_string(v: &str) -> Option<String> {
    let v = v.trim();
    let (n, unit) = v.split_at(v.len().checked_sub(1)?);
    let n: u32 = n.parse().ok()?;
    let unit = match unit {
        "Y" | "y" => "y",
        "M" | "m" => "mo",
        "W" | "w" => "wk",
        "D" | "d" => "d",
        _ => return None,
    };
    Some(format!("{n} {unit}"))
}

/// Age on `date` of someone born on `birth` (both YYYYMMDD): years from 2 on,
/// months under 2 years, days under a month.
pub(in crate::ui) fn age_at(birth: &str, date: &str) -> Option<String> {
    let (by, bm, bd) = parse_date(birth)?;
    let (y, m, d) = parse_date(date)?;
    let mut months = (y - by) * 12 + m as i32 - bm as i32;
    if d < bd {
        months -= 1;
    }
    if months < 0 {
        return None;
    }
    Some(if months >= 24 {
        format!("{} y", months / 12)
    } else if months >= 1 {
        format!("{months} mo")
    } else {
        format!(
            "{} d",
            (day_number(y, m, d) - day_number(by, bm, bd)).max(0)
        )
    })
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn day_number(y: i32, m: u32, d: u32) -> i64 {
    let (y, m) = if m <= 2 {
        (y as i64 - 1, m as i64 + 9)
    } else {
        (y as i64, m as i64 - 3)
    };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_show_as_dates_and_ages_in_the_unit_a_reader_uses() {
        assert_eq!(show_date("20260105"), "2026-01-05");
        assert_eq!(show_date("2026.01.05"), "2026-01-05");
        assert_eq!(show_date(""), "no date");
        assert_eq!(show_date("2026"), "2026");
        assert_eq!(age_at("19700101", "20260105").as_deref(), Some("56 y"));
        assert_eq!(age_at("19700106", "20260105").as_deref(), Some("55 y"));
        assert_eq!(age_at("20250101", "20260105").as_deref(), Some("12 mo"));
        assert_eq!(age_at("20251225", "20260105").as_deref(), Some("11 d"));
        assert_eq!(age_at("20270101", "20260105"), None);
        assert_eq!(day_number(1970, 1, 1), 0);
        assert_eq!(day_number(2000, 3, 1) - day_number(2000, 2, 28), 2);
        assert_eq!(show_age_string("045Y").as_deref(), Some("45 y"));
        assert_eq!(show_age_string("006M").as_deref(), Some("6 mo"));
        assert_eq!(show_age_string("Y"), None);
    }
}
