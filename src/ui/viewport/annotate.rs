//! What is written on a viewport: its border, corner annotations, orientation
//! markers, scale bar, the probe read-out.

use super::*;
use crate::imaging::geometry::ImagePlane;
use crate::imaging::lut::{Voi, Window};
use crate::imaging::render::DisplayPlan;
use crate::ui::theme;
use eframe::egui::{self, FontId, Pos2, Rect, Vec2};

impl Viewport {
    pub(super) fn frame_border(&self, painter: &egui::Painter, rect: Rect, active: bool) {
        let color = if active {
            theme::ACTIVE_BORDER
        } else {
            theme::BORDER
        };
        painter.rect_stroke(
            rect.shrink(0.5),
            0.0,
            egui::Stroke::new(1.0, color),
            egui::StrokeKind::Inside,
        );
    }

    pub(super) fn annotate(
        &self,
        painter: &egui::Painter,
        rect: Rect,
        view: &FrameView<'_>,
        voi_text: &str,
        points_per_mm: f32,
        magnification: f32,
    ) -> Vec<String> {
        let h = view.header;
        let font = FontId::monospace(12.0);
        let color = theme::ANNOTATION;
        let pad = 6.0;
        // Each corner gets at most half the width (monospace: ~7.3 points a char).
        let fit = |text: String| -> String {
            let max = ((rect.width() / 2.0 - pad) / 7.3).max(4.0) as usize;
            text.lines()
                .map(|l| {
                    if l.chars().count() > max {
                        let mut t: String = l.chars().take(max.saturating_sub(1)).collect();
                        t.push('…');
                        t
                    } else {
                        l.to_string()
                    }
                })
                .collect::<Vec<_>>()
                .join("\n")
        };
        let info = h.frame(view.frame).ok();
        let live = crate::ui::annotations::Live {
            image: format!("{}/{}", self.index + 1, view.count),
            position: view.position.clone().unwrap_or_default(),
            thickness: info
                .and_then(|f| f.slice_thickness)
                .map(|t| format!("thk {t:.1} mm"))
                .unwrap_or_default(),
            window: format!("{voi_text}{}", if self.invert { "  inv" } else { "" }),
            zoom: format!("{magnification:.2}×"),
            transform: [
                (!self.rotation.is_multiple_of(4))
                    .then(|| format!("rot {}°", 90 * (self.rotation % 4) as u32)),
                self.flip_h.then(|| "flip H".to_string()),
                self.flip_v.then(|| "flip V".to_string()),
            ]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join("  "),
        };
        let corner = |lines: &Option<Vec<String>>| {
            fit(crate::ui::annotations::fill(
                lines.as_deref().unwrap_or_default(),
                h,
                &live,
            ))
        };
        let c = &view.corners;
        let mut written = Vec::new();
        for (text, at, align) in [
            (
                corner(&c.top_left),
                rect.min + Vec2::splat(pad),
                egui::Align2::LEFT_TOP,
            ),
            (
                corner(&c.top_right),
                Pos2::new(rect.max.x - pad, rect.min.y + pad),
                egui::Align2::RIGHT_TOP,
            ),
            (
                corner(&c.bottom_left),
                Pos2::new(rect.min.x + pad, rect.max.y - pad),
                egui::Align2::LEFT_BOTTOM,
            ),
            (
                corner(&c.bottom_right),
                Pos2::new(rect.max.x - pad, rect.max.y - pad),
                egui::Align2::RIGHT_BOTTOM,
            ),
        ] {
            painter.text(at, align, &text, font.clone(), color);
            written.push(text);
        }
        // Lossy compression: its own line, in the warning colour.
        if let Some(note) = &h.lossy {
            painter.text(
                Pos2::new(rect.max.x - pad, rect.max.y - pad - 32.0),
                egui::Align2::RIGHT_BOTTOM,
                fit(note.clone()),
                font.clone(),
                theme::NOTE,
            );
        }
        // Orientation markers on all four edges, from the image plane.
        if let Some(f) = info
            && let (Some(p), Some(o)) = (f.image_position, f.image_orientation)
            && let Some(plane) = ImagePlane::new(p, o, [1.0, 1.0])
        {
            let mut l = plane.edge_labels();
            // The labels turn and flip with the image.
            for _ in 0..self.rotation % 4 {
                l = crate::imaging::geometry::EdgeLabels {
                    top: l.left,
                    right: l.top,
                    bottom: l.right,
                    left: l.bottom,
                };
            }
            if self.flip_h {
                std::mem::swap(&mut l.left, &mut l.right);
            }
            if self.flip_v {
                std::mem::swap(&mut l.top, &mut l.bottom);
            }
            let c = rect.center();
            let big = FontId::proportional(15.0);
            let mark = theme::SCALE;
            painter.text(
                Pos2::new(rect.min.x + pad, c.y),
                egui::Align2::LEFT_CENTER,
                &l.left,
                big.clone(),
                mark,
            );
            painter.text(
                Pos2::new(rect.max.x - pad, c.y),
                egui::Align2::RIGHT_CENTER,
                &l.right,
                big.clone(),
                mark,
            );
            // Below the three annotation lines at the top.
            painter.text(
                Pos2::new(c.x, rect.min.y + pad + 44.0),
                egui::Align2::CENTER_TOP,
                &l.top,
                big.clone(),
                mark,
            );
            // Above the two annotation lines at the bottom.
            painter.text(
                Pos2::new(c.x, rect.max.y - pad - 32.0),
                egui::Align2::CENTER_BOTTOM,
                &l.bottom,
                big,
                mark,
            );
        }
        // Scale bar: 5 cm (or 1 cm when zoomed in), with the calibration basis;
        // none when the image has no spacing (it would be a lie).
        if h.calibration.spacing_mm.is_none() {
            return written;
        }
        let mm_per_point = 1.0 / points_per_mm.max(1e-6);
        let bar_mm = if rect.height() * mm_per_point > 150.0 {
            50.0
        } else {
            10.0
        };
        let len = bar_mm / mm_per_point;
        let x = rect.max.x - pad - 4.0;
        let y0 = rect.center().y - len / 2.0;
        painter.line_segment(
            [Pos2::new(x, y0), Pos2::new(x, y0 + len)],
            egui::Stroke::new(1.5, color),
        );
        painter.text(
            Pos2::new(x - 4.0, y0 + len),
            egui::Align2::RIGHT_BOTTOM,
            format!("{:.0} cm {}", bar_mm / 10.0, h.calibration.basis.label()),
            FontId::proportional(11.0),
            color,
        );
        written
    }
}

/// The probe line for image point `q`: stored value, modality value (HU for CT)
/// and patient position, or nothing outside the image.
pub(super) fn probe(view: &FrameView<'_>, plan: &DisplayPlan, q: [f64; 2]) -> Option<String> {
    use crate::dicom::pixels::Samples;
    let px = view.pixels?;
    let (c, r) = (q[0].floor(), q[1].floor());
    if c < 0.0 || r < 0.0 || c >= px.columns as f64 || r >= px.rows as f64 {
        return None;
    }
    let i = r as usize * px.columns as usize + c as usize;
    let value = match (&px.samples, plan) {
        (Samples::Mono(v), DisplayPlan::Gray(g)) => {
            let s = *v.get(i)?;
            let m = g.modality.apply(s as i64);
            let unit = if view.header.modality.as_deref() == Some("CT") {
                " HU"
            } else {
                ""
            };
            format!("stored {s}  value {m:.1}{unit}")
        }
        (Samples::Mono(v), _) => format!("stored {}", v.get(i)?),
        (Samples::Rgb(v), _) => {
            let k = i * 3;
            format!("RGB {} {} {}", v.get(k)?, v.get(k + 1)?, v.get(k + 2)?)
        }
    };
    let position = view
        .header
        .frame(view.frame)
        .ok()
        .and_then(|f| {
            crate::imaging::geometry::ImagePlane::new(
                f.image_position?,
                f.image_orientation?,
                f.pixel_spacing?,
            )
        })
        .map(|plane| {
            let p = plane.patient_point(c, r);
            format!("  ({:.1}, {:.1}, {:.1}) mm", p.x, p.y, p.z)
        })
        .unwrap_or_default();
    Some(format!("[{c:.0}, {r:.0}]  {value}{position}"))
}

/// The window a plan applies (for W/L drags that start from it).
pub(super) fn current_window(plan: &DisplayPlan) -> Window {
    match plan {
        DisplayPlan::Gray(g) => match &g.voi {
            Voi::Window { window, .. } => window.clone(),
            Voi::Identity { min, max } => Window::new((min + max) / 2.0, (max - min).max(1.0)),
            Voi::Lut(l) => {
                let n = l.data.len() as f64;
                Window::new(l.first_mapped as f64 + n / 2.0, n.max(1.0))
            }
        },
        _ => Window::new(128.0, 256.0),
    }
}
