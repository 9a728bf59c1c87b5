//! The MPR crosshair kept with the viewports: a scrolled plane moves the
//! centre along its normal, the others follow; the crosshair as each plane's
//! image shows it; drags on it (centre, line, handle, slab face); X; planes
//! laid out anew when turned.

use std::sync::Arc;

use super::super::viewport::{CrossAction, CrossLine, CrosshairView};
use super::super::*;
use super::{PLANE_COLOURS, plane_set};
use crate::imaging::mpr::Plane;

impl App {
    /// Keep the crosshair and the viewports together: a viewport scrolled to
    /// another image of its plane moves the centre along that plane's normal;
    /// every plane's viewports are then put on the image through the centre.
    /// Called after keys and the wheel, before what is shown is made resident.
    pub(in crate::ui) fn follow_crosshair(&mut self) {
        if self.grid.mpr_saved.is_none() {
            return;
        }
        for m in self.session.mpr.values_mut() {
            let mut centre = m.crosshair.centre;
            for (v, l) in m.layouts.iter().enumerate() {
                let scrolled = self
                    .grid
                    .viewports
                    .iter()
                    .find(|vp| vp.set == Some(m.sets[v]) && vp.index != m.at[v]);
                if let Some(vp) = scrolled {
                    let t = (centre - l.first).dot(&l.step) / l.step_mm;
                    centre += l.step * ((vp.index as f64 - t) * l.step_mm);
                }
            }
            m.crosshair.centre = centre;
            m.put_on_centre(&mut self.grid.viewports);
        }
    }

    /// The crosshair as viewport `set`'s image `index` shows it: the centre
    /// and the other planes' lines in image coordinates.
    pub(in crate::ui) fn crosshair_view(&self, set: usize, index: usize) -> Option<CrosshairView> {
        let (src_set, v) = self.mpr_of(set)?;
        let m = self.session.mpr.get(&src_set)?;
        let (fr, h) = self.session.frame(set, index)?;
        let plane = super::measurements::plane_of(h, fr.frame)?;
        let (c, r) = plane.image_point(&m.crosshair.centre);
        let n = plane.normal();
        let [rs, cs] = plane.spacing_mm;
        let lines = (0..3)
            .filter(|&q| q != v)
            .filter_map(|q| {
                let w = m.layouts[q].step;
                let d = n.cross(&w);
                let to_image = |x: nalgebra::Vector3<f64>| {
                    [x.dot(&plane.row_dir) / cs, x.dot(&plane.col_dir) / rs]
                };
                // A slab's faces, half its thickness either side along its
                // normal (which lies in this image's plane).
                let slab = self.session.sets.get(m.sets[q]).and_then(|ls| ls.slab);
                let half = slab.map(|s| to_image(w * (s.thickness_mm / 2.0)));
                (d.norm() > 1e-6).then(|| CrossLine {
                    plane: q,
                    dir: to_image(d),
                    colour: PLANE_COLOURS[q],
                    slab: half,
                })
            })
            .collect();
        Some(CrosshairView {
            centre: [c + 0.5, r + 0.5],
            lines,
            colour: PLANE_COLOURS[v],
        })
    }

    /// A crosshair drag in viewport image `index` of set `set`.
    pub(in crate::ui) fn move_crosshair(&mut self, set: usize, index: usize, action: CrossAction) {
        let Some((src_set, v)) = self.mpr_of(set) else {
            return;
        };
        let Some(plane) = self
            .session
            .frame(set, index)
            .and_then(|(fr, h)| super::measurements::plane_of(h, fr.frame))
        else {
            return;
        };
        let at = |q: [f64; 2]| plane.patient_point(q[0] - 0.5, q[1] - 0.5);
        let Some(m) = self.session.mpr.get_mut(&src_set) else {
            return;
        };
        let centre = m.crosshair.centre;
        // The centre as this viewport's image shows it (on its plane).
        let n = plane.normal();
        let here = centre - n * (centre - plane.position).dot(&n);
        let turned = match action {
            CrossAction::MoveCentre(q) => {
                m.crosshair.centre = at(q) + n * (centre - plane.position).dot(&n);
                Vec::new()
            }
            CrossAction::MoveLine { other, to } => {
                let w = m.layouts[other].step;
                m.crosshair.centre = centre + w * (at(to) - here).dot(&w);
                Vec::new()
            }
            CrossAction::Slab { other, to } => {
                // Twice the distance from the plane, in half millimetres, at
                // least 1 mm.
                let w = m.layouts[other].step;
                let mm = (2.0 * (at(to) - here).dot(&w).abs() * 2.0).round() / 2.0;
                let set = m.sets[other];
                let mode = self
                    .session
                    .sets
                    .get(set)
                    .and_then(|ls| ls.slab)
                    .map(|s| s.mode)
                    .unwrap_or(crate::imaging::reslice::SlabMode::Mip);
                self.set_slab(
                    set,
                    Some(crate::imaging::reslice::Slab {
                        thickness_mm: mm.max(1.0),
                        mode,
                    }),
                );
                return;
            }
            CrossAction::Rotate { from, to } => {
                let (a, b) = (at(from) - here, at(to) - here);
                let angle = n.dot(&a.cross(&b)).atan2(a.dot(&b));
                if !angle.is_finite() || angle == 0.0 {
                    return;
                }
                m.crosshair = m.crosshair.turned_on(Plane::ALL[v], &n, angle);
                (0..3).filter(|&q| q != v).collect()
            }
        };
        let before: Vec<(usize, crate::imaging::mpr::Layout)> = self
            .session
            .mpr
            .get(&src_set)
            .map(|m| {
                turned
                    .iter()
                    .map(|&q| (m.sets[q], m.layouts[q].clone()))
                    .collect()
            })
            .unwrap_or_default();
        self.lay_out_again(src_set, &turned);
        self.keep_scale(src_set, &before);
        self.follow_crosshair();
        self.ctx.request_repaint();
    }

    /// After a turn, the turned planes' viewports keep their scale (points
    /// per mm) and the crosshair's centre where it was on screen, though a
    /// turned plane's images are larger (they cover the volume at any angle):
    /// the anatomy turns in place instead of shrinking and jumping.
    fn keep_scale(&mut self, src_set: usize, before: &[(usize, crate::imaging::mpr::Layout)]) {
        let Some(m) = self.session.mpr.get(&src_set) else {
            return;
        };
        let centre = m.crosshair.centre;
        // The centre on a layout's images (pixel coordinates, centres at
        // +0.5), less the image's middle: what the viewport's map turns.
        let offset = |l: &crate::imaging::mpr::Layout| {
            let d = centre - l.first;
            [
                d.dot(&l.row) / l.spacing[1] + 0.5 - l.columns as f64 / 2.0,
                d.dot(&l.down) / l.spacing[0] + 0.5 - l.rows as f64 / 2.0,
            ]
        };
        for (set, old) in before {
            let Some(v) = m.view_of(*set) else {
                continue;
            };
            let new = &m.layouts[v];
            let fit = |l: &crate::imaging::mpr::Layout, rect: egui::Rect, quarter: bool| {
                let (w, h) = (
                    l.columns as f32 * l.spacing[1] as f32,
                    l.rows as f32 * l.spacing[0] as f32,
                );
                let (ex, ey) = if quarter { (h, w) } else { (w, h) };
                (rect.width() / ex).min(rect.height() / ey)
            };
            let (a, b) = (offset(old), offset(new));
            for vp in self
                .grid
                .viewports
                .iter_mut()
                .filter(|vp| vp.set == Some(*set))
            {
                let (Some(rect), Some(map)) = (vp.rect, vp.mapping) else {
                    continue;
                };
                let quarter = vp.rotation % 2 == 1;
                let (f0, f1) = (fit(old, rect, quarter), fit(new, rect, quarter));
                if !(f0 > 0.0 && f1 > 0.0) {
                    continue;
                }
                vp.zoom *= f0 / f1;
                let m = map.a;
                let screen = |q: [f64; 2]| {
                    let (x, y) = (q[0] as f32, q[1] as f32);
                    egui::vec2(m[0] * x + m[1] * y, m[2] * x + m[3] * y)
                };
                vp.pan += screen(a) - screen(b);
            }
        }
    }

    /// X: the crosshair back home (no rotation, the middle voxel).
    pub(in crate::ui) fn reset_crosshair(&mut self) {
        let Some(set) = self.active_set() else {
            return;
        };
        let Some((src_set, _)) = self.mpr_of(set) else {
            self.session.notice = Some("X puts an MPR's crosshair back: press M first".into());
            return;
        };
        let Some(m) = self.session.mpr.get_mut(&src_set) else {
            return;
        };
        m.crosshair = m.src.home();
        let changed: Vec<usize> = (0..3).filter(|&v| m.layouts[v] != m.home[v]).collect();
        let before: Vec<(usize, crate::imaging::mpr::Layout)> = changed
            .iter()
            .map(|&q| (m.sets[q], m.layouts[q].clone()))
            .collect();
        self.lay_out_again(src_set, &changed);
        // Back home at the scale the turns kept (the home images are smaller).
        self.keep_scale(src_set, &before);
        if let Some(m) = self.session.mpr.get_mut(&src_set) {
            m.at = m.layouts.clone().map(|l| l.at_centre);
            for (v, &set) in m.sets.iter().enumerate() {
                for vp in self
                    .grid
                    .viewports
                    .iter_mut()
                    .filter(|vp| vp.set == Some(set))
                {
                    vp.index = m.at[v];
                }
            }
        }
        self.ctx.request_repaint();
    }

    /// Planes `views` of the MPR of `src_set` laid out anew from its
    /// crosshair: their headers written again in their room, their images
    /// to be cut again, its measurements put on the planes through them.
    fn lay_out_again(&mut self, src_set: usize, views: &[usize]) {
        self.lay_out_planes(src_set, views);
        // Measurements go to the planes through their points now.
        self.place_on_mpr(src_set);
    }

    fn lay_out_planes(&mut self, src_set: usize, views: &[usize]) {
        let Some(m) = self.session.mpr.get_mut(&src_set) else {
            return;
        };
        let mut changed = Vec::new();
        for &v in views {
            let plane = Plane::ALL[v];
            // Not turned: the home grid, whose pixels are voxel centres.
            let layout = if m.crosshair.rotations[v] == nalgebra::Rotation3::identity() {
                m.home[v].clone()
            } else {
                m.src.layout(plane, &m.crosshair)
            };
            if layout.count > m.room[v] {
                // Cannot happen (the room is the most any rotation needs).
                tracing::warn!(
                    "MPR: {} images do not fit the room of {}",
                    layout.count,
                    m.room[v]
                );
                continue;
            }
            let headers = Arc::make_mut(&mut self.session.headers);
            for k in 0..layout.count {
                headers[m.base[v] + k] = m.src.plane_header(&layout, k);
            }
            let set = m.sets[v];
            if let Some(ls) = self.session.sets.get_mut(set) {
                ls.set = plane_set(&layout, m.base[v], &ls.set);
                ls.label = format!("MPR {} ({})", plane.label(m.src.plane), layout.count);
            }
            m.at[v] = layout.at_centre;
            m.layouts[v] = layout;
            changed.push(set);
        }
        for set in changed {
            if let Some(slots) = self.residency.slots.get_mut(set) {
                let n = self.session.sets[set].set.frames.len();
                *slots = (0..n).map(|_| Slot::default()).collect();
            }
            self.residency.expanded.retain(|k, _| k.0 != set);
            self.residency.overlay_textures.retain(|k, _| k.0 != set);

            // On the image through the centre (not a scroll to follow).
            let at = self
                .session
                .mpr
                .get(&src_set)
                .and_then(|m| Some(m.at[m.view_of(set)?]))
                .unwrap_or(0);
            for vp in self
                .grid
                .viewports
                .iter_mut()
                .filter(|vp| vp.set == Some(set))
            {
                vp.last_drawn = None;
                vp.index = at;
            }
        }
    }
}
