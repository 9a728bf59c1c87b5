//! Viewports that follow each other: scrolling by patient position in a frame of
//! reference (or by the offsets captured when linked), window/zoom/pan following,
//! locating a point in every viewport, and cine.

use std::time::Instant;

use eframe::egui::{self, Vec2};

use super::viewport::Viewport;
use super::*;
use crate::imaging::geometry::nearest_slice;

impl App {
    /// Position of a viewport's current slice along its stack's normal (mm), and
    /// its frame of reference.
    pub(super) fn position(&self, v: &Viewport) -> Option<(f64, [f64; 3], Option<String>)> {
        let ls = self.session.sets.get(v.set?)?;
        let g = ls.set.geometry.as_ref()?;
        let z = *g.positions_mm.get(v.index)?;
        let for_uid = ls
            .set
            .frames
            .get(v.index)
            .and_then(|f| self.session.headers.get(f.instance))
            .and_then(|h| h.frame_of_reference_uid.clone());
        Some((z, g.normal, for_uid))
    }

    /// Link (or unlink) all viewports to the active one, keeping today's offsets.
    pub(super) fn toggle_link(&mut self) {
        if self.grid.link.is_some() {
            self.grid.link = None;
            return;
        }
        let Some((z0, _, _)) = self
            .grid
            .viewports
            .get(self.grid.active)
            .and_then(|v| self.position(v))
        else {
            return;
        };
        self.grid.link = Some(
            self.grid
                .viewports
                .iter()
                .map(|v| self.position(v).map(|p| p.0 - z0).unwrap_or(0.0))
                .collect(),
        );
    }

    /// Scroll the other viewports with the active one: by patient position when
    /// they share its frame of reference (and parallel slices), else by the offset
    /// captured when the user linked them.
    pub(super) fn sync(&mut self) {
        let Some(active) = self.grid.viewports.get(self.grid.active) else {
            return;
        };
        let Some((z0, n0, for0)) = self.position(active) else {
            return;
        };
        let mut targets = Vec::new();
        for (i, v) in self.grid.viewports.iter().enumerate() {
            if i == self.grid.active {
                continue;
            }
            let Some((_, n, for_uid)) = self.position(v) else {
                continue;
            };
            let parallel = (n[0] * n0[0] + n[1] * n0[1] + n[2] * n0[2]).abs() > 0.99;
            let target = match (&self.grid.link, for_uid.is_some() && for_uid == for0) {
                (Some(offsets), _) => z0 + offsets.get(i).copied().unwrap_or(0.0),
                (None, true) if parallel => z0,
                _ => continue,
            };
            let Some(g) = v
                .set
                .and_then(|s| self.session.sets.get(s))
                .and_then(|ls| ls.set.geometry.as_ref())
            else {
                continue;
            };
            if let Some(idx) = nearest_slice(&g.positions_mm, target) {
                targets.push((i, idx));
            }
        }
        for (i, idx) in targets {
            self.grid.viewports[i].index = idx;
        }
    }

    /// Window and inversion follow the active viewport in the other viewports of
    /// the same modality (today's CT and its priors read at the same window); zoom
    /// and pan too where they share its frame of reference, or when linked.
    pub(super) fn sync_views(&mut self) {
        let Some(a) = self.grid.viewports.get(self.grid.active).cloned() else {
            return;
        };
        let Some(set) = a.set else { return };
        let modality = self.session.sets.get(set).map(|s| s.modality.clone());
        let for0 = self.position(&a).and_then(|p| p.2);
        let mut updates = Vec::new();
        for (i, v) in self.grid.viewports.iter().enumerate() {
            if i == self.grid.active {
                continue;
            }
            let Some(s) = v.set else { continue };
            if self.session.sets.get(s).map(|x| x.modality.clone()) != modality {
                continue;
            }
            let same_space = self.grid.link.is_some()
                || (for0.is_some() && self.position(v).and_then(|p| p.2) == for0);
            updates.push((i, same_space));
        }
        for (i, same_space) in updates {
            let v = &mut self.grid.viewports[i];
            v.window = a.window.clone();
            v.invert = a.invert;
            if same_space {
                v.zoom = a.zoom;
                v.pan = a.pan;
            }
        }
    }

    /// Show the patient point under image point `q` of viewport `from` in every
    /// other viewport of its frame of reference: each scrolls to its slice nearest
    /// to the point (shift-click; in MPR, click the coronal to find the axial).
    pub(super) fn locate(&mut self, from: usize, set: usize, index: usize, q: [f64; 2]) {
        let Some((fr, h)) = self.session.frame(set, index) else {
            return;
        };
        let (Some(plane), Some(for_uid)) = (
            super::measurements::plane_of(h, fr.frame),
            h.frame_of_reference_uid.clone(),
        ) else {
            return;
        };
        let p = plane.patient_point(q[0] - 0.5, q[1] - 0.5);
        let mut moves = Vec::new();
        for (i, v) in self.grid.viewports.iter().enumerate() {
            if i == from {
                continue;
            }
            let Some(ls) = v.set.and_then(|s| self.session.sets.get(s)) else {
                continue;
            };
            let same = ls
                .set
                .frames
                .first()
                .and_then(|f| self.session.headers.get(f.instance))
                .and_then(|h| h.frame_of_reference_uid.as_ref())
                == Some(&for_uid);
            let Some(g) = ls.set.geometry.as_ref().filter(|_| same) else {
                continue;
            };
            let d = g.normal[0] * p.x + g.normal[1] * p.y + g.normal[2] * p.z;
            if let Some(k) = nearest_slice(&g.positions_mm, d) {
                moves.push((i, k));
            }
        }
        for (i, k) in moves {
            self.grid.viewports[i].index = k;
        }
    }

    /// The frame rate the active image asks for (Recommended Display Frame Rate,
    /// Cine Rate, or 1000 / Frame Time), 10 frames/s when it says nothing.
    pub(super) fn file_frame_rate(&self) -> f32 {
        let Some(h) = self.header_of(self.grid.active) else {
            return 10.0;
        };
        let get = |k: &str| -> Option<f32> {
            h.annotation_attrs
                .iter()
                .find(|(a, _)| *a == k)
                .and_then(|(_, v)| v.trim().parse::<f32>().ok())
                .filter(|x| x.is_finite() && *x > 0.0)
        };
        get("RecommendedDisplayFrameRate")
            .or_else(|| get("CineRate"))
            .or_else(|| get("FrameTime").map(|ms| 1000.0 / ms))
            .map(|f| f.clamp(1.0, 60.0))
            .unwrap_or(10.0)
    }

    /// Cine: the active viewport advances one frame each 1/fps, every frame shown
    /// (none skipped); a frame not yet decoded is waited for. When the display
    /// cannot keep up, the status bar says how many frames a second it shows.
    pub(super) fn cine_step(&mut self, ctx: &egui::Context) {
        let Some(fps) = self.grid.cine else {
            self.grid.cine_last = Instant::now();
            self.grid.cine_stats = None;
            self.grid.cine_rate = None;
            return;
        };
        let interval = std::time::Duration::from_secs_f32(1.0 / fps.max(0.1));
        let now = Instant::now();
        if now.duration_since(self.grid.cine_last) >= interval {
            let next = self.grid.viewports.get(self.grid.active).and_then(|v| {
                let set = v.set?;
                let n = self.session.sets.get(set)?.set.frames.len().max(1);
                Some((set, (v.index + 1) % n))
            });
            let ready = next.is_some_and(|(set, i)| {
                self.session.sets[set].derived.is_some()
                    || self
                        .residency
                        .slots
                        .get(set)
                        .and_then(|s| s.get(i))
                        .is_some_and(|s| s.pixels.is_some() || s.error.is_some())
            });
            if let (Some((_, i)), true) = (next, ready) {
                if let Some(v) = self.grid.viewports.get_mut(self.grid.active) {
                    v.index = i;
                }
                // On time: the next frame is due one interval after this one was;
                // late: one interval from now (the rate drops, frames are not skipped).
                self.grid.cine_last = if now.duration_since(self.grid.cine_last) < interval * 2 {
                    self.grid.cine_last + interval
                } else {
                    now
                };
                let (since, shown) = self.grid.cine_stats.get_or_insert((now, 0));
                *shown += 1;
                let secs = now.duration_since(*since).as_secs_f32();
                if secs >= 2.0 {
                    let rate = *shown as f32 / secs;
                    self.grid.cine_rate = Some(rate);
                    self.grid.cine_stats = Some((now, 0));
                }
            }
        }
        ctx.request_repaint_after(interval / 4);
    }
}

/// What view synchronisation compares: window, inversion, zoom and pan.
pub(super) fn view_state(v: &Viewport) -> (Option<(f64, f64)>, bool, f32, Vec2) {
    (
        v.window.as_ref().map(|w| (w.center, w.width)),
        v.invert,
        v.zoom,
        v.pan,
    )
}
