//! A volume rendering in a viewport: its picture drawn to fit, the patient's
//! directions at its edges, what it shows in its corners, the crop box while
//! the pointer is over it; a left drag turns the volume
//! (or, from a face's handle, moves that face of the crop box), a right drag
//! moves the transfer function's window (as W/L does an image's), a middle
//! drag pans, the wheel brings it nearer. The picture itself is made
//! elsewhere (`ui::vr`), from this viewport's plain state.

use super::legible::outlined_text_within;
use super::*;
use crate::ui::theme;
use eframe::egui::{Align2, FontId, Sense};

/// Degrees the volume turns per point dragged.
const TURN_PER_POINT: f64 = 0.4;
/// A press within this many points of a crop face's handle moves that face.
const CROP_GRAB: f32 = 8.0;
/// The crop box keeps at least this fraction of the volume along each axis.
const MIN_CROP: f64 = 0.02;

impl Viewport {
    /// Show the volume rendering in `rect`; input edits `self.vr`.
    pub fn show_vr(
        &mut self,
        ui: &mut egui::Ui,
        rect: Rect,
        key: u64,
        active: bool,
        frame: &VrFrame,
    ) -> Interaction {
        let response = ui.interact(
            rect,
            ui.scope_id().with(("viewport", key)),
            Sense::click_and_drag(),
        );
        let painter = ui.painter_at(rect);
        painter.rect_filled(rect, 0.0, theme::BACKGROUND);
        self.rect = Some(rect);
        self.drawn.clear();
        self.hovered = response.hovered();
        let out = Interaction {
            clicked: response.clicked() || response.drag_started(),
            double_clicked: response.double_clicked(),
            ..Default::default()
        };
        // Where the picture is on screen: picture pixel → screen point.
        let ppp = ui.ctx().pixels_per_point();
        let size = frame
            .picture
            .map(|(_, s)| s)
            .or(frame.gpu.as_ref().map(|(_, s)| *s));
        let shown = size.map(|[w, h]| {
            let s = (rect.width() / w as f32).min(rect.height() / h as f32);
            let size = Vec2::new(w as f32, h as f32) * s;
            // On whole physical pixels: a picture made at the viewport's size
            // is drawn texel for pixel.
            let min = ((rect.center() - size / 2.0) * ppp).round() / ppp;
            (Rect::from_min_size(min, size), s)
        });
        let to_screen = |q: [f32; 2]| -> egui::Pos2 {
            match shown {
                Some((r, s)) => r.min + Vec2::new(q[0], q[1]) * s,
                None => rect.center(),
            }
        };
        let origin = ui.input(|i| i.pointer.press_origin());
        if response.drag_started_by(egui::PointerButton::Primary) {
            self.crop_grab = origin.and_then(|p| {
                frame
                    .crop
                    .as_ref()?
                    .faces
                    .iter()
                    .find_map(|&(face, at, _)| {
                        (to_screen(at).distance(p) < CROP_GRAB).then_some(face)
                    })
            });
        }
        if !response.dragged_by(egui::PointerButton::Primary) {
            self.crop_grab = None;
        }
        if let Some(v) = self.vr.as_mut() {
            let d = response.drag_delta();
            if let (Some((axis, side)), Some(c), Some((_, s))) =
                (self.crop_grab, &frame.crop, shown)
            {
                // The face moves by the drag's share of its handle's travel.
                if let Some(&(_, _, dir)) = c.faces.iter().find(|f| f.0 == (axis, side)) {
                    let dir = Vec2::new(dir[0], dir[1]) * s;
                    let travel = dir.length_sq();
                    if travel > 1e-3 {
                        let t = (d.dot(dir) / travel) as f64;
                        let [lo, hi] = &mut v.crop;
                        if side == 0 {
                            lo[axis] = (lo[axis] + t).clamp(0.0, hi[axis] - MIN_CROP);
                        } else {
                            hi[axis] = (hi[axis] + t).clamp(lo[axis] + MIN_CROP, 1.0);
                        }
                    }
                }
            } else if response.dragged_by(egui::PointerButton::Primary) {
                v.azimuth_deg = (v.azimuth_deg - d.x as f64 * TURN_PER_POINT).rem_euclid(360.0);
                v.elevation_deg =
                    (v.elevation_deg + d.y as f64 * TURN_PER_POINT).clamp(-90.0, 90.0);
            }
            if response.dragged_by(egui::PointerButton::Middle) {
                let side = rect.width().min(rect.height()).max(1.0);
                v.pan[0] -= (d.x / side) as f64;
                v.pan[1] -= (d.y / side) as f64;
            }
            if response.dragged_by(egui::PointerButton::Secondary) {
                let (c, w) = v.window.unwrap_or(frame.window);
                let scale = (w / 400.0).max(1.0);
                v.window = Some((c - d.y as f64 * scale, (w + d.x as f64 * scale).max(1.0)));
            }
            if response.hovered() {
                let wheel = wheel_input(ui.ctx());
                let notches = wheel.slices as f64 + (wheel.zoom as f64).ln() * 10.0;
                if notches != 0.0 {
                    v.zoom = (v.zoom * (0.1 * notches).exp()).clamp(0.2, 20.0);
                }
            }
        }
        let drawn = match (frame.picture, &frame.gpu, shown) {
            (Some((texture, _)), _, Some((on_screen, _))) => {
                painter.image(
                    texture,
                    on_screen,
                    Rect::from_min_max(egui::pos2(0.0, 0.0), egui::pos2(1.0, 1.0)),
                    egui::Color32::WHITE,
                );
                true
            }
            (None, Some((f, _)), Some((on_screen, _))) => {
                ui.painter()
                    .add(eframe::egui_wgpu::Callback::new_paint_callback(
                        on_screen,
                        super::gpu::VrCallback {
                            key,
                            frame: f.clone(),
                            origin: (on_screen.min.x * ppp, on_screen.min.y * ppp),
                        },
                    ));
                true
            }
            _ => false,
        };
        if drawn {
            // The crop box while the pointer is here (the picture stays clean
            // for reading and export).
            let here = response.hovered() || self.crop_grab.is_some();
            if let Some(c) = frame.crop.as_ref().filter(|_| here) {
                for a in 0..8usize {
                    for bit in [1usize, 2, 4] {
                        if a & bit == 0 {
                            super::legible::outlined_line(
                                &painter,
                                to_screen(c.corners[a]),
                                to_screen(c.corners[a | bit]),
                                1.0,
                                theme::CROP_BOX,
                            );
                        }
                    }
                }
                for &((axis, side), at, _) in &c.faces {
                    let grabbed = self.crop_grab == Some((axis, side));
                    painter.rect_filled(
                        Rect::from_center_size(
                            to_screen(at),
                            Vec2::splat(if grabbed { 9.0 } else { 7.0 }),
                        ),
                        1.0,
                        theme::CROP_BOX,
                    );
                }
            }
        } else {
            painter.text(
                rect.center(),
                Align2::CENTER_CENTER,
                "rendering the volume…",
                FontId::proportional(14.0),
                theme::MUTED,
            );
        }
        let size = theme::text_size(rect.size(), ui.ctx().pixels_per_point());
        let font = FontId::proportional(size);
        let area = rect.shrink(theme::ANNOTATION_INSET);
        let mut written = Vec::new();
        for (kind, pos, align, text) in [
            (
                "top_left",
                area.left_top(),
                Align2::LEFT_TOP,
                &frame.corners[0],
            ),
            (
                "bottom_left",
                area.left_bottom(),
                Align2::LEFT_BOTTOM,
                &frame.corners[1],
            ),
        ] {
            let r = outlined_text_within(
                &painter,
                area,
                pos,
                align,
                text,
                font.clone(),
                theme::ANNOTATION,
            );
            written.push((kind, r, text.clone(), theme::ANNOTATION));
        }
        let marker = FontId::proportional(size + theme::MARKER_EXTRA);
        let [left, right, top, bottom] = &frame.edges;
        // The top and bottom markers go below / above the corner text when a
        // narrow viewport puts them in its way.
        let (top_text, bottom_text) = (written[0].1, written[1].1);
        let gap = theme::ANNOTATION_INSET;
        let reach = marker.size;
        let under = |r: Rect, x: f32| r.min.x - reach <= x && x <= r.max.x + reach;
        let x = area.center().x;
        let top_at = if under(top_text, x) {
            egui::pos2(x, top_text.max.y + gap)
        } else {
            area.center_top()
        };
        let bottom_at = if under(bottom_text, x) {
            egui::pos2(x, bottom_text.min.y - gap)
        } else {
            area.center_bottom()
        };
        for (kind, pos, align, text) in [
            ("marker_left", area.left_center(), Align2::LEFT_CENTER, left),
            (
                "marker_right",
                area.right_center(),
                Align2::RIGHT_CENTER,
                right,
            ),
            ("marker_top", top_at, Align2::CENTER_TOP, top),
            ("marker_bottom", bottom_at, Align2::CENTER_BOTTOM, bottom),
        ] {
            let r = outlined_text_within(
                &painter,
                area,
                pos,
                align,
                text,
                marker.clone(),
                theme::MARKER,
            );
            written.push((kind, r, text.clone(), theme::MARKER));
        }
        self.drawn = written
            .into_iter()
            .map(|(kind, rect, text, color)| Drawn {
                kind,
                rect,
                text,
                color,
            })
            .collect();
        let label = format!("{}\n{}", frame.corners[0], frame.corners[1]);
        response
            .widget_info(|| egui::WidgetInfo::labeled(egui::accesskit::Role::Image, true, &label));
        self.frame_border(&painter, rect, active);
        out
    }
}
