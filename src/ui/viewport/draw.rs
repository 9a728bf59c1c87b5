//! Drawing a measurement (and its label with the calibration it was made in),
//! outlined so that it reads over bone as over air.

use super::legible::{Placer, outlined_line, outlined_stroke, outlined_text_within};
use super::*;
use crate::ui::theme;
use eframe::egui::{self, FontId, Pos2, Rect, Vec2};

/// Draw a measurement and its value (always with its calibration).
pub(super) fn draw_measurement(
    painter: &egui::Painter,
    rect: Rect,
    view: &FrameView<'_>,
    modality: Option<&crate::imaging::lut::ModalityTransform>,
    shape: Shape,
    to_screen: &dyn Fn([f64; 2]) -> Pos2,
) {
    use crate::imaging::measure;
    let color = theme::MEASUREMENT;
    let width = 1.5;
    let size = theme::text_size(rect.size(), painter.ctx().pixels_per_point());
    let font = FontId::proportional(size + 1.0);
    // Labels stay inside the viewport, out of the scroll bar's strip.
    let area = Placer::area_of(rect);
    let label = |at: Pos2, align: egui::Align2, text: &str| {
        outlined_text_within(painter, area, at, align, text, font.clone(), color);
    };
    let cal = &view.header.calibration;
    match shape {
        Shape::Line(a, b) => {
            let (pa, pb) = (to_screen(a), to_screen(b));
            outlined_line(painter, pa, pb, width, color);
            let m = measure::length(a, b, cal);
            // Above the middle of the line, kept inside the viewport.
            let mid = pa + (pb - pa) / 2.0 - Vec2::new(0.0, 6.0);
            label(mid, egui::Align2::CENTER_BOTTOM, &m.label());
        }
        Shape::Ellipse(a, b) | Shape::Rect(a, b) => {
            let (pa, pb) = (to_screen(a), to_screen(b));
            let r = Rect::from_two_pos(pa, pb);
            let ellipse = matches!(shape, Shape::Ellipse(..));
            outlined_stroke(painter, width, color, |stroke| {
                if ellipse {
                    egui::Shape::ellipse_stroke(r.center(), r.size() / 2.0, stroke)
                } else {
                    egui::Shape::rect_stroke(r, 0.0, stroke, egui::StrokeKind::Middle)
                }
            });
            let values = view.pixels.filter(|_| view.preview.is_none());
            let text = match (values, modality) {
                (Some(px), Some(m)) => match &px.samples {
                    crate::dicom::pixels::Samples::Mono(v) => {
                        let stats = if ellipse {
                            measure::ellipse_stats(v, px.columns, px.rows, a, b, m, cal)
                        } else {
                            measure::rect_stats(v, px.columns, px.rows, a, b, m, cal)
                        };
                        stats.map(|s| {
                            let unit = if view.header.modality.as_deref() == Some("CT") {
                                " HU"
                            } else {
                                ""
                            };
                            format!(
                                "mean {:.1}{unit}  SD {:.1}\nmin {:.0}  max {:.0}\narea {}",
                                s.mean,
                                s.sd,
                                s.min,
                                s.max,
                                s.area.label()
                            )
                        })
                    }
                    _ => None,
                },
                _ => None,
            };
            // Beside the region, on the side with room.
            let (at, align) = if r.max.x + 230.0 < area.max.x {
                (
                    Pos2::new(r.max.x + 6.0, r.center().y),
                    egui::Align2::LEFT_CENTER,
                )
            } else {
                (
                    Pos2::new(r.min.x - 6.0, r.center().y),
                    egui::Align2::RIGHT_CENTER,
                )
            };
            label(
                at,
                align,
                &text.unwrap_or_else(|| "no grey values here".into()),
            );
        }
        Shape::Angle(a, v, c) => {
            let (pa, pv, pc) = (to_screen(a), to_screen(v), to_screen(c));
            outlined_line(painter, pa, pv, width, color);
            outlined_line(painter, pv, pc, width, color);
            label(
                pv + Vec2::new(8.0, -8.0),
                egui::Align2::LEFT_BOTTOM,
                &shape.value_label(cal),
            );
        }
        Shape::Cobb(l1, l2) => {
            let (p1, q1, p2, q2) = (
                to_screen(l1[0]),
                to_screen(l1[1]),
                to_screen(l2[0]),
                to_screen(l2[1]),
            );
            outlined_line(painter, p1, q1, width, color);
            outlined_line(painter, p2, q2, width, color);
            // A dashed connector between the line middles, the value beside it.
            let (m1, m2) = (p1 + (q1 - p1) / 2.0, p2 + (q2 - p2) / 2.0);
            super::legible::outlined_dashed(painter, &[m1, m2], 1.0, color, 4.0, 4.0);
            let mid = m1 + (m2 - m1) / 2.0;
            label(
                mid + Vec2::new(8.0, 0.0),
                egui::Align2::LEFT_CENTER,
                &shape.value_label(cal),
            );
        }
    }
}
