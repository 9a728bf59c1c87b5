//! One viewport on screen: its input (drag W/L, pan, zoom, wheel, measuring,
//! editing, locating, drops) applied to its own state, then its image painted and
//! what sits on it drawn.

use super::*;
use crate::imaging::lut::Window;
use crate::imaging::render::{self, DisplayPlan};
use crate::render::Placement;
use crate::ui::theme;
use eframe::egui::{self, FontId, Pos2, Rect, Sense};
use eframe::egui_wgpu::{self};
use std::sync::Arc;

impl Viewport {
    /// Show the viewport in `rect`: the image, its annotations, and input.
    pub fn show(
        &mut self,
        ui: &mut egui::Ui,
        rect: Rect,
        key: u64,
        active: bool,
        view: Option<FrameView<'_>>,
    ) -> Interaction {
        let response = ui.interact(
            rect,
            ui.scope_id().with(("viewport", key)),
            Sense::click_and_drag(),
        );
        let painter = ui.painter_at(rect);
        painter.rect_filled(rect, 0.0, theme::BACKGROUND);
        self.rect = Some(rect);
        // Filled again by what is written on the image this frame.
        self.drawn.clear();
        let mut out = Interaction {
            clicked: response.clicked() || response.drag_started(),
            double_clicked: response.double_clicked(),
            new_shape: None,
            edited: None,
            crosshair: None,
            locate: None,
            dropped_set: response.dnd_release_payload::<SeriesDrag>().map(|p| p.0),
        };
        let drop_target = response.dnd_hover_payload::<SeriesDrag>().is_some();
        let Some(view) = view else {
            painter.text(
                rect.center(),
                egui::Align2::CENTER_CENTER,
                match &self.note {
                    Some(n) => format!("{n}\ndrag a series here"),
                    None => "drag a series here".into(),
                },
                FontId::proportional(14.0),
                theme::MUTED,
            );
            self.frame_border(&painter, rect, active);
            return out;
        };
        let (rs, cs) = Self::spacing(view.header, view.frame);
        // The stack scroll bar at the right edge: position, what is decoded; a
        // click or drag on it jumps there.
        // (The slice changes after this frame is drawn, so what is drawn and what
        // the annotation names stay the same image.)
        let jump = self.scroll_bar(ui, rect, key, &view);
        if jump.is_some() {
            out.clicked = true;
        }
        if response.dragged_by(egui::PointerButton::Middle) {
            self.pan += response.drag_delta();
        }
        let plan = view
            .pixels
            .and_then(|p| render::display_plan(view.header, view.frame, p, &self.options()).ok());
        let ppp = ui.ctx().pixels_per_point();
        // The image's size from its header (known before it is decoded).
        let size = view
            .header
            .pixel
            .as_ref()
            .map(|p| (p.columns, p.rows))
            .or(view.pixels.map(|p| (p.columns, p.rows)))
            .unwrap_or((1, 1));
        let (w, h) = (size.0 as f32, size.1 as f32);
        // The wheel moves through the stack before the frame is drawn (see
        // `App::wheel_scroll`); ctrl + wheel zooms about the pointer here.
        self.hovered = response.hovered();
        if response.hovered() {
            let wheel = wheel_input(ui.ctx());
            if wheel.zoom != 1.0 {
                let before = self.affine(rect, w, h, rs, cs);
                let at = response.hover_pos().unwrap_or(rect.center());
                let q = before.image(at);
                self.zoom = (self.zoom * wheel.zoom).clamp(0.05, 40.0);
                let after = self.affine(rect, w, h, rs, cs);
                // Keep the image point under the pointer where it was.
                self.pan += at - after.screen(q);
                out.clicked = true;
            }
        }
        if std::mem::take(&mut self.one_to_one) {
            // The fit scale (zoom 1) in points per mm; 1:1 puts one column of
            // image pixels on one physical pixel.
            let fit = self.affine(rect, w, h, rs, cs).points_per_mm / self.zoom;
            self.zoom = (1.0 / (ppp * cs * fit)).clamp(0.05, 40.0);
        }
        let map = self.affine(rect, w, h, rs, cs);
        self.mapping = Some(map);
        let to_image = |p: Pos2| map.image(p);
        if response.clicked()
            && ui.input(|i| i.modifiers.shift)
            && let Some(p) = response.interact_pointer_pos()
        {
            out.locate = Some(to_image(p));
        }
        // Editing: a press on a measurement's point (within 8 points) drags that
        // point, whatever the tool.
        let origin = ui.input(|i| i.pointer.press_origin());
        // A drag on an MPR's crosshair moves it (and nothing else).
        if let Some(cross) = &view.crosshair {
            out.crosshair = self.crosshair_input(&response, rect, &map, cross, origin);
        } else {
            self.cross_grab = None;
        }
        let crossing = self.cross_grab.is_some() || out.crosshair.is_some();
        if response.drag_started_by(egui::PointerButton::Primary)
            && !crossing
            && let Some(p) = origin
        {
            let near = view
                .shapes
                .iter()
                .flat_map(|(pos, s)| {
                    s.points()
                        .into_iter()
                        .enumerate()
                        .map(move |(k, q)| (*pos, k, *s, q))
                })
                .map(|(pos, k, s, q)| (pos, k, s, map.screen(q).distance(p)))
                .filter(|x| x.3 < 8.0)
                .min_by(|a, b| a.3.total_cmp(&b.3));
            if let Some((pos, k, s, _)) = near {
                self.editing = Some((pos, k, s));
            }
        }
        if let Some((pos, k, s)) = self.editing {
            if response.dragged_by(egui::PointerButton::Primary)
                && let Some(p) = response.interact_pointer_pos()
            {
                self.editing = Some((pos, k, s.with_point(k, to_image(p))));
            }
            if response.drag_stopped() {
                out.edited = Some((pos, s));
                self.editing = None;
            }
        }
        let editing = self.editing.is_some() || out.edited.is_some() || crossing;
        // A two-stroke shape is forgotten when the image or the tool changes.
        if self.pending.is_some()
            && (self.pending_at != (view.set, self.index)
                || !matches!(view.tool, Tool::Angle | Tool::Cobb))
        {
            self.pending = None;
        }
        if view.tool != Tool::Window && !editing {
            // The drag starts where the button went down, not where egui noticed
            // the movement.
            if response.drag_started_by(egui::PointerButton::Primary)
                && let Some(p) = origin.or(response.interact_pointer_pos())
            {
                let q = to_image(p);
                self.drawing = Some((q, q));
            }
            if response.dragged_by(egui::PointerButton::Primary)
                && let (Some(p), Some(d)) = (response.interact_pointer_pos(), self.drawing.as_mut())
            {
                d.1 = to_image(p);
            }
            let stroke = if response.drag_stopped() {
                self.drawing
                    .take()
                    .filter(|(a, b)| (a[0] - b[0]).abs() + (a[1] - b[1]).abs() > 1.0)
            } else if response.clicked()
                && view.tool == Tool::Angle
                && let Some((_, v)) = self.pending
                && let Some(p) = response.interact_pointer_pos()
            {
                // The angle's second arm may be placed with a click.
                Some((v, to_image(p)))
            } else {
                None
            };
            if let Some((a, b)) = stroke {
                out.new_shape = match (view.tool, self.pending.take()) {
                    (Tool::Ellipse, _) => Some(Shape::Ellipse(a, b)),
                    (Tool::Rect, _) => Some(Shape::Rect(a, b)),
                    (Tool::Angle, Some((p, v))) => Some(Shape::Angle(p, v, b)),
                    (Tool::Cobb, Some((p, q))) => Some(Shape::Cobb([p, q], [a, b])),
                    (Tool::Angle | Tool::Cobb, None) => {
                        self.pending = Some((a, b));
                        self.pending_at = (view.set, self.index);
                        None
                    }
                    _ => Some(Shape::Line(a, b)),
                };
            }
        }
        let ctrl = ui.input(|i| i.modifiers.ctrl);
        let primary = response.dragged_by(egui::PointerButton::Primary);
        if primary && ctrl {
            // Ctrl + drag: zoom (up enlarges).
            let d = response.drag_delta();
            self.zoom = (self.zoom * (1.0 - d.y * 0.005)).clamp(0.05, 40.0);
        } else if ((primary && view.tool == Tool::Window && !editing)
            || response.dragged_by(egui::PointerButton::Secondary))
            && let Some((plan, _)) = &plan
        {
            let d = response.drag_delta();
            let sign = if view.invert_wl_drag { -1.0 } else { 1.0 };
            let current = current_window(plan);
            let scale = (current.width / 400.0).max(1.0);
            self.window = Some(Window::new(
                current.center - sign * d.y as f64 * scale,
                (current.width + sign * d.x as f64 * scale).max(1.0),
            ));
        }
        let stack = (view.header.series_uid.clone(), size.0, size.1);
        if let (Some((plan, _)), Some(texture)) = (&plan, &view.texture) {
            self.last_drawn = Some((stack.clone(), Arc::clone(texture), plan.clone()));
        }
        match (&plan, &view.texture) {
            (Some((plan, voi_text)), Some(texture)) => {
                // Framebuffer pixel (relative to the viewport) → image pixel:
                // image = A⁻¹ (pixel / ppp + rect.min − t).
                let [a, b, c, d] = map.inverse();
                let (ox, oy) = (rect.min.x - map.t.x, rect.min.y - map.t.y);
                let placement = Placement {
                    m: [
                        [a / ppp, b / ppp, a * ox + b * oy],
                        [c / ppp, d / ppp, c * ox + d * oy],
                    ],
                    origin: [rect.min.x * ppp, rect.min.y * ppp],
                    bilinear: self.bilinear,
                };
                ui.painter().add(egui_wgpu::Callback::new_paint_callback(
                    rect,
                    ImageCallback {
                        key,
                        texture: Arc::clone(texture),
                        plan: plan.clone(),
                        placement,
                        shutter: view.header.shutter.clone().filter(|_| self.shutter),
                    },
                ));
                if let Some(cross) = &view.crosshair {
                    self.draw_crosshair(&painter, rect, &map, cross);
                }
                let magnification = map.points_per_mm * cs * ppp;
                let corners = self.annotate(
                    &painter,
                    rect,
                    &view,
                    voi_text,
                    map.points_per_mm,
                    magnification,
                );
                // What is written on the image, for screen readers (and tests);
                // joined only when AccessKit asks.
                response.widget_info(|| {
                    let text = corners
                        .iter()
                        .filter(|c| !c.is_empty())
                        .map(String::as_str)
                        .collect::<Vec<_>>()
                        .join("\n");
                    egui::WidgetInfo::labeled(egui::accesskit::Role::Image, true, text)
                });
                // Probe: the value and patient position under the pointer.
                if let Some(p) = response.hover_pos() {
                    self.draw_probe(&painter, rect, &view, plan, map.image(p));
                }
                let to_screen = |q: [f64; 2]| map.screen(q);
                if self.overlays {
                    for (tex, [l, t, r, b]) in &view.overlays {
                        let mut mesh = egui::Mesh::with_texture(*tex);
                        let corners = [[*l, *t], [*r, *t], [*r, *b], [*l, *b]];
                        let uvs = [(0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0)];
                        for (q, (u, v)) in corners.iter().zip(uvs) {
                            mesh.vertices.push(egui::epaint::Vertex {
                                pos: map.screen(*q),
                                uv: Pos2::new(u, v),
                                color: theme::OVERLAY,
                            });
                        }
                        mesh.add_triangle(0, 1, 2);
                        mesh.add_triangle(0, 2, 3);
                        painter.add(egui::Shape::mesh(mesh));
                    }
                }
                // (The reference line is drawn by `annotate`, beneath the text.)
                self.reference = view.reference;
                let modality = match plan {
                    DisplayPlan::Gray(g) => Some(&g.modality),
                    _ => None,
                };
                let mut shapes: Vec<Shape> = view
                    .shapes
                    .iter()
                    .map(|(pos, s)| match self.editing {
                        Some((e, _, edited)) if e == *pos => edited,
                        _ => *s,
                    })
                    .collect();
                let hover = response.hover_pos().map(|p| map.image(p));
                match (view.tool, self.pending, self.drawing) {
                    (Tool::Ellipse, _, Some((a, b))) => shapes.push(Shape::Ellipse(a, b)),
                    (Tool::Rect, _, Some((a, b))) => shapes.push(Shape::Rect(a, b)),
                    (Tool::Angle, Some((p, v)), d) => {
                        if let Some(c) = d.map(|d| d.1).or(hover) {
                            shapes.push(Shape::Angle(p, v, c));
                        } else {
                            shapes.push(Shape::Line(p, v));
                        }
                    }
                    (Tool::Cobb, Some((p, q)), Some((a, b))) => {
                        shapes.push(Shape::Cobb([p, q], [a, b]))
                    }
                    (Tool::Cobb, Some((p, q)), None) => shapes.push(Shape::Line(p, q)),
                    (_, _, Some((a, b))) => shapes.push(Shape::Line(a, b)),
                    _ => {}
                }
                for shape in &shapes {
                    draw_measurement(&painter, rect, &view, modality, *shape, &to_screen);
                }
            }
            _ => {
                let msg = match view.error {
                    Some(e) => format!("cannot display this image:\n{e}"),
                    // An image a retrieve listed that is not here yet: nothing
                    // of another slice is drawn in its place.
                    None if view.header.stand_in.is_some() => {
                        let n = format!("image {}/{}", self.index + 1, view.count);
                        let msg = match &view.arriving {
                            Some(note) => format!("{n} is arriving…\n{note}"),
                            None => format!(
                                "{n} was listed by the PACS but has not arrived\n\
                                 (retrieve the study again)"
                            ),
                        };
                        response.widget_info(|| {
                            egui::WidgetInfo::labeled(egui::accesskit::Role::Image, true, &msg)
                        });
                        msg
                    }
                    None => {
                        // Still decoding: the last image stays, "loading…" over it.
                        if let Some((drawn, texture, plan)) = &self.last_drawn
                            && *drawn == stack
                        {
                            let [a, b, c, d] = map.inverse();
                            let (ox, oy) = (rect.min.x - map.t.x, rect.min.y - map.t.y);
                            ui.painter().add(egui_wgpu::Callback::new_paint_callback(
                                rect,
                                ImageCallback {
                                    key,
                                    texture: Arc::clone(texture),
                                    plan: plan.clone(),
                                    placement: Placement {
                                        m: [
                                            [a / ppp, b / ppp, a * ox + b * oy],
                                            [c / ppp, d / ppp, c * ox + d * oy],
                                        ],
                                        origin: [rect.min.x * ppp, rect.min.y * ppp],
                                        bilinear: self.bilinear,
                                    },
                                    shutter: None,
                                },
                            ));
                        }
                        format!("loading image {}…", self.index + 1)
                    }
                };
                painter.text(
                    rect.center(),
                    egui::Align2::CENTER_CENTER,
                    msg,
                    FontId::proportional(14.0),
                    theme::WARNING,
                );
            }
        }
        self.draw_scroll_bar(&painter, rect, &view);
        self.frame_border(&painter, rect, active);
        if let Some(i) = jump
            && i != self.index
        {
            self.index = i;
            ui.ctx().request_repaint();
        }
        if drop_target {
            painter.rect_stroke(
                rect.shrink(2.0),
                0.0,
                egui::Stroke::new(3.0, theme::MEASUREMENT),
                egui::StrokeKind::Inside,
            );
        }
        out
    }
}
