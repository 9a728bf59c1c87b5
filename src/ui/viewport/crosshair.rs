//! An MPR crosshair on a viewport: the other planes' lines through the centre
//! (with a gap around it, so the point looked at stays visible), a handle on
//! each line to turn the planes, a slab's faces as dashed lines either side of
//! its plane's line (dragged, they make it thicker or thinner), and what a drag
//! on them asks.

use super::legible::outlined_line;
use super::*;
use crate::ui::theme;
use eframe::egui::{Pos2, Response};

/// Within this many points of the centre a press holds the centre; of a
/// handle, the handle; of a line, the line.
const CENTRE_GRAB: f32 = 10.0;
const HANDLE_GRAB: f32 = 9.0;
const LINE_GRAB: f32 = 5.0;
/// The lines leave this much room around the centre.
const GAP: f32 = 12.0;
/// Handles sit this far from the centre, as a fraction of the viewport's
/// smaller side.
const HANDLE_AT: f32 = 0.3;

/// A line on screen: its plane, a unit direction, its colour, and its
/// slab's face offset (screen points, perpendicular).
type ScreenLine = (usize, Vec2, egui::Color32, Option<Vec2>);

/// The crosshair on screen: the centre and its lines.
fn on_screen(map: &Affine, c: &CrosshairView) -> (Pos2, Vec<ScreenLine>) {
    let centre = map.screen(c.centre);
    let lines = c
        .lines
        .iter()
        .filter_map(|l| {
            let far = map.screen([c.centre[0] + l.dir[0], c.centre[1] + l.dir[1]]);
            let dir = far - centre;
            let slab = l
                .slab
                .map(|o| map.screen([c.centre[0] + o[0], c.centre[1] + o[1]]) - centre);
            (dir.length() > 1e-6).then(|| (l.plane, dir.normalized(), l.colour, slab))
        })
        .collect();
    (centre, lines)
}

/// Distance from `p` to the line through `a` along unit `d`.
fn off_line(p: Pos2, a: Pos2, d: Vec2) -> f32 {
    let v = p - a;
    (v.x * d.y - v.y * d.x).abs()
}

impl Viewport {
    /// The handles of each line (two, either side of the centre).
    fn handles(rect: Rect, centre: Pos2, d: Vec2) -> [Pos2; 2] {
        let r = HANDLE_AT * rect.width().min(rect.height());
        [centre + d * r, centre - d * r]
    }

    /// A drag on the crosshair: which part a press takes (the centre, a
    /// handle, a line), and what moving it asks. None when the drag is not the
    /// crosshair's.
    pub(super) fn crosshair_input(
        &mut self,
        response: &Response,
        rect: Rect,
        map: &Affine,
        cross: &CrosshairView,
        origin: Option<Pos2>,
    ) -> Option<CrossAction> {
        let (centre, lines) = on_screen(map, cross);
        if response.drag_started_by(egui::PointerButton::Primary)
            && let Some(p) = origin
        {
            self.cross_grab = if p.distance(centre) < CENTRE_GRAB {
                Some(CrossGrab::Centre)
            } else if lines.iter().any(|&(_, d, _, _)| {
                Self::handles(rect, centre, d)
                    .iter()
                    .any(|h| h.distance(p) < HANDLE_GRAB)
            }) {
                Some(CrossGrab::Handle(map.image(p)))
            } else if let Some(&(q, ..)) = lines.iter().find(|&&(_, d, _, slab)| {
                slab.is_some_and(|o| {
                    [1.0, -1.0]
                        .iter()
                        .any(|s| off_line(p, centre + o * *s, d) < LINE_GRAB)
                })
            }) {
                Some(CrossGrab::Slab(q))
            } else {
                lines
                    .iter()
                    .filter(|&&(_, d, _, _)| off_line(p, centre, d) < LINE_GRAB)
                    .filter(|_| p.distance(centre) > GAP)
                    .min_by(|a, b| off_line(p, centre, a.1).total_cmp(&off_line(p, centre, b.1)))
                    .map(|&(q, ..)| CrossGrab::Line(q))
            };
        }
        let grab = self.cross_grab?;
        if response.drag_stopped() || !response.dragged_by(egui::PointerButton::Primary) {
            self.cross_grab = None;
        }
        let to = map.image(response.interact_pointer_pos()?);
        match grab {
            CrossGrab::Centre => Some(CrossAction::MoveCentre(to)),
            CrossGrab::Line(other) => Some(CrossAction::MoveLine { other, to }),
            CrossGrab::Slab(other) => Some(CrossAction::Slab { other, to }),
            CrossGrab::Handle(from) => {
                if let Some(g) = self.cross_grab.as_mut() {
                    *g = CrossGrab::Handle(to);
                }
                (from != to).then_some(CrossAction::Rotate { from, to })
            }
        }
    }

    /// Draw the crosshair: each line across the viewport but for a gap at the
    /// centre, its two handles, and this plane's colour around the viewport.
    pub(super) fn draw_crosshair(
        &self,
        painter: &egui::Painter,
        rect: Rect,
        map: &Affine,
        cross: &CrosshairView,
    ) {
        let (centre, lines) = on_screen(map, cross);
        let reach = rect.width() + rect.height();
        for (_, d, colour, slab) in lines {
            for s in [1.0, -1.0] {
                let from = centre + d * (s * GAP);
                let to = centre + d * (s * reach);
                outlined_line(painter, from, to, 1.0, colour);
            }
            // The slab's faces, dashed, the whole length.
            if let Some(o) = slab {
                for s in [1.0, -1.0] {
                    let at = centre + o * s;
                    super::legible::outlined_dashed(
                        painter,
                        &[at - d * reach, at + d * reach],
                        1.0,
                        colour,
                        6.0,
                        4.0,
                    );
                }
            }
            for h in Self::handles(rect, centre, d) {
                if rect.contains(h) {
                    painter.circle(
                        h,
                        4.0,
                        colour,
                        egui::Stroke::new(theme::OUTLINE_WIDTH, theme::OUTLINE),
                    );
                }
            }
        }
        painter.rect_stroke(
            rect.shrink(1.5),
            0.0,
            egui::Stroke::new(2.0, cross.colour),
            egui::StrokeKind::Inside,
        );
    }
}
