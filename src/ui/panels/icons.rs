//! The toolbar's icons: small vector drawings made with the painter in a
//! button-sized square (egui has no icon font and the viewer ships no image
//! files), one per [`Command`], and the icon button that carries the command's
//! label as its accessible name and its tooltip with the shortcut.

use eframe::egui::{self, Align2, FontId, Pos2, Rect, Sense, Shape, Stroke, Vec2, pos2, vec2};

use super::super::command::Command;
use super::super::viewport::Tool;

/// The side of a toolbar button, points.
pub(in crate::ui) const BUTTON: f32 = 26.0;

/// A button drawn as the icon of `command`: accessible name = the command's
/// label, tooltip = what it does and its keys. `selected` draws it pressed in
/// (a tool or a toggle that is on). Returns the response (clicked, for menus).
pub(in crate::ui) fn icon_button(
    ui: &mut egui::Ui,
    command: Command,
    selected: Option<bool>,
    label: String,
) -> egui::Response {
    let (rect, response) = ui.allocate_exact_size(Vec2::splat(BUTTON), Sense::click());
    let enabled = ui.is_enabled();
    response.widget_info(|| match selected {
        Some(on) => egui::WidgetInfo::selected(egui::Role::Button, enabled, on, &label),
        None => egui::WidgetInfo::labeled(egui::Role::Button, enabled, &label),
    });
    if ui.is_rect_visible(rect) {
        let on = selected.unwrap_or(false);
        let visuals = ui.style().interact_selectable(&response, on);
        let fill = if on || response.hovered() {
            visuals.bg_fill
        } else {
            visuals.weak_bg_fill
        };
        ui.painter().rect(
            rect,
            visuals.corner_radius,
            fill,
            visuals.bg_stroke,
            egui::StrokeKind::Inside,
        );
        let colour = visuals.fg_stroke.color;
        draw(
            ui.painter(),
            rect.shrink(4.0),
            command,
            Stroke::new(1.5, colour),
        );
    }
    response.on_hover_ui(|ui| {
        ui.label(command.hover_text());
    })
}

/// Two-letter names of the window presets, by their full name.
fn preset_glyph(name: &str) -> String {
    let mut c = name.chars();
    match (c.next(), c.next()) {
        (Some(a), Some(b)) => format!("{}{}", a.to_ascii_uppercase(), b),
        (Some(a), None) => a.to_ascii_uppercase().to_string(),
        _ => "?".into(),
    }
}

/// Draw the icon of `command` in `r` (about 18 points square).
fn draw(p: &egui::Painter, r: Rect, command: Command, s: Stroke) {
    use Command::*;
    let c = r.center();
    let (w, h) = (r.width(), r.height());
    let at = |x: f32, y: f32| pos2(r.left() + x * w, r.top() + y * h);
    let text = |t: &str, size: f32| {
        p.text(
            c,
            Align2::CENTER_CENTER,
            t,
            FontId::proportional(size),
            s.color,
        );
    };
    match command {
        Layout(rows, cols) => grid(p, r, rows, cols, s),
        Preset(i) => {
            let name = crate::imaging::lut::CT_PRESETS
                .get(i)
                .map(|x| x.0)
                .unwrap_or("?");
            text(&preset_glyph(name), 12.0);
        }
        Invert => {
            // A disc, its left half filled: black and white swapped.
            p.circle_stroke(c, w * 0.45, s);
            let half: Vec<Pos2> = (0..=16)
                .map(|k| {
                    let a = std::f32::consts::FRAC_PI_2 + k as f32 * std::f32::consts::PI / 16.0;
                    c + vec2(a.cos(), -a.sin()) * w * 0.45
                })
                .collect();
            p.add(Shape::convex_polygon(half, s.color, Stroke::NONE));
        }
        Reset => {
            // An arrow turning back on itself (anticlockwise), its head at the end.
            let (a0, a1, radius) = (-0.9f32, 3.6f32, w * 0.4);
            arc(p, c, radius, a0, a1, s);
            let end = c + vec2(a1.cos(), -a1.sin()) * radius;
            let t = vec2(-a1.sin(), -a1.cos());
            let n = vec2(-t.y, t.x);
            p.add(Shape::convex_polygon(
                vec![
                    end + t * 4.0,
                    end - t * 1.5 + n * 3.5,
                    end - t * 1.5 - n * 3.5,
                ],
                s.color,
                Stroke::NONE,
            ));
        }
        SetTool(Tool::Window) => {
            // A square split on its diagonal, one half filled: contrast.
            p.rect_stroke(r.shrink(1.0), 1.0, s, egui::StrokeKind::Inside);
            let q = r.shrink(1.0);
            p.add(Shape::convex_polygon(
                vec![q.left_bottom(), q.right_top(), q.right_bottom()],
                s.color,
                Stroke::NONE,
            ));
        }
        SetTool(Tool::Length) => {
            let (a, b) = (at(0.1, 0.9), at(0.9, 0.1));
            p.line_segment([a, b], s);
            let n = vec2(0.25, 0.25) * w * 0.6;
            p.line_segment([a - n, a + n], s);
            p.line_segment([b - n, b + n], s);
        }
        SetTool(Tool::Angle) => {
            let v = at(0.1, 0.9);
            p.line_segment([v, at(0.95, 0.9)], s);
            p.line_segment([v, at(0.7, 0.1)], s);
            arc(p, v, w * 0.45, 0.0, 1.2, s);
        }
        SetTool(Tool::Cobb) => {
            p.line_segment([at(0.05, 0.2), at(0.95, 0.35)], s);
            p.line_segment([at(0.05, 0.85), at(0.95, 0.6)], s);
            p.line_segment([at(0.5, 0.28), at(0.5, 0.72)], Stroke::new(1.0, s.color));
        }
        SetTool(Tool::Ellipse) => {
            p.add(Shape::ellipse_stroke(c, vec2(w * 0.48, h * 0.32), s));
        }
        SetTool(Tool::Rect) => {
            p.rect_stroke(
                Rect::from_center_size(c, vec2(w * 0.9, h * 0.6)),
                0.0,
                s,
                egui::StrokeKind::Middle,
            );
        }
        ToggleLink => {
            // Two links of a chain.
            for dx in [-0.18, 0.18] {
                p.rect_stroke(
                    Rect::from_center_size(c + vec2(dx * w, 0.0), vec2(w * 0.55, h * 0.35)),
                    h * 0.17,
                    s,
                    egui::StrokeKind::Middle,
                );
            }
        }
        ToggleCine => {
            p.add(Shape::convex_polygon(
                vec![at(0.2, 0.1), at(0.9, 0.5), at(0.2, 0.9)],
                s.color,
                Stroke::NONE,
            ));
        }
        ToggleSyncView => {
            // Two contrast squares joined by a line.
            for x in [0.0, 0.6] {
                let q = Rect::from_min_size(at(x, 0.3), vec2(w * 0.4, h * 0.4));
                p.rect_stroke(q, 0.0, s, egui::StrokeKind::Middle);
                p.add(Shape::convex_polygon(
                    vec![q.left_bottom(), q.right_top(), q.right_bottom()],
                    s.color,
                    Stroke::NONE,
                ));
            }
            p.line_segment([at(0.4, 0.5), at(0.6, 0.5)], s);
        }
        ToggleReverseWlDrag => {
            // Arrows both ways, across and up-down.
            arrow(p, at(0.5, 0.5), at(0.05, 0.5), s);
            arrow(p, at(0.5, 0.5), at(0.95, 0.5), s);
            arrow(p, at(0.5, 0.5), at(0.5, 0.05), s);
            arrow(p, at(0.5, 0.5), at(0.5, 0.95), s);
        }
        Mpr => {
            // A cube: the three planes of a volume.
            let d = vec2(w * 0.3, -h * 0.3);
            let front = Rect::from_min_size(at(0.0, 0.3), vec2(w * 0.7, h * 0.7));
            p.rect_stroke(front, 0.0, s, egui::StrokeKind::Middle);
            for corner in [front.left_top(), front.right_top(), front.right_bottom()] {
                p.line_segment([corner, corner + d], s);
            }
            p.line_segment([front.left_top() + d, front.right_top() + d], s);
            p.line_segment([front.right_top() + d, front.right_bottom() + d], s);
        }
        ToggleTags => {
            // A list: the header's lines.
            for (k, y) in [0.15, 0.38, 0.62, 0.85].iter().enumerate() {
                p.line_segment([at(0.0, *y), at(0.2, *y)], s);
                let end = if k % 2 == 0 { 1.0 } else { 0.75 };
                p.line_segment([at(0.32, *y), at(end, *y)], s);
            }
        }
        ExportImage | ExportView | ExportDeidentified => {
            // An arrow out of a tray.
            p.line_segment([at(0.05, 0.6), at(0.05, 0.95)], s);
            p.line_segment([at(0.05, 0.95), at(0.95, 0.95)], s);
            p.line_segment([at(0.95, 0.95), at(0.95, 0.6)], s);
            arrow(p, at(0.5, 0.75), at(0.5, 0.02), s);
        }
        ToggleFullscreen => {
            // Four corners pushed outwards.
            let k = 0.3;
            for (x, y, dx, dy) in [
                (0.0, 0.0, 1.0, 1.0),
                (1.0, 0.0, -1.0, 1.0),
                (0.0, 1.0, 1.0, -1.0),
                (1.0, 1.0, -1.0, -1.0),
            ] {
                let o = at(x, y);
                p.line_segment([o, o + vec2(dx * k * w, 0.0)], s);
                p.line_segment([o, o + vec2(0.0, dy * k * h)], s);
            }
        }
        ToggleHelp => text("?", 16.0),
        _ => text("·", 16.0),
    }
}

/// The "more layouts" icon: a 3×3 grid of dots.
pub(in crate::ui) fn more_layouts(ui: &mut egui::Ui, label: &str, hover: &str) -> egui::Response {
    let (rect, response) = ui.allocate_exact_size(Vec2::splat(BUTTON), Sense::click());
    let enabled = ui.is_enabled();
    response.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Button, enabled, label));
    if ui.is_rect_visible(rect) {
        let visuals = ui.style().interact(&response);
        ui.painter().rect(
            rect,
            visuals.corner_radius,
            visuals.weak_bg_fill,
            visuals.bg_stroke,
            egui::StrokeKind::Inside,
        );
        let r = rect.shrink(6.0);
        for i in 0..3 {
            for j in 0..3 {
                let p = pos2(
                    r.left() + r.width() * i as f32 / 2.0,
                    r.top() + r.height() * j as f32 / 2.0,
                );
                ui.painter().circle_filled(p, 1.6, visuals.fg_stroke.color);
            }
        }
    }
    response.on_hover_text(hover)
}

/// `rows` × `cols` little panes.
fn grid(p: &egui::Painter, r: Rect, rows: usize, cols: usize, s: Stroke) {
    let (rows, cols) = (rows.max(1), cols.max(1));
    let cell = vec2(r.width() / cols as f32, r.height() / rows as f32);
    let thin = Stroke::new(1.0, s.color);
    for i in 0..rows {
        for j in 0..cols {
            let min = r.min + vec2(j as f32 * cell.x, i as f32 * cell.y);
            p.rect_stroke(
                Rect::from_min_size(min, cell).shrink(0.5),
                0.0,
                thin,
                egui::StrokeKind::Inside,
            );
        }
    }
}

/// A circular arc from angle `a0` to `a1` (radians, counter-clockwise, screen y down).
fn arc(p: &egui::Painter, c: Pos2, radius: f32, a0: f32, a1: f32, s: Stroke) {
    let n = 20;
    let pts: Vec<Pos2> = (0..=n)
        .map(|k| {
            let a = a0 + (a1 - a0) * k as f32 / n as f32;
            c + vec2(a.cos(), -a.sin()) * radius
        })
        .collect();
    p.add(Shape::line(pts, s));
}

/// A line from `from` to `to` with a head at `to`.
fn arrow(p: &egui::Painter, from: Pos2, to: Pos2, s: Stroke) {
    p.line_segment([from, to], s);
    let d = (to - from).normalized() * 4.0;
    let n = vec2(-d.y, d.x);
    p.line_segment([to, to - d + n], s);
    p.line_segment([to, to - d - n], s);
}

#[cfg(test)]
mod tests {
    use super::preset_glyph;

    #[test]
    fn preset_glyphs_are_two_letters() {
        assert_eq!(preset_glyph("lung"), "Lu");
        assert_eq!(preset_glyph("bone"), "Bo");
        assert_eq!(preset_glyph("x"), "X");
    }
}
