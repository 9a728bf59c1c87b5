//! Measurements in the viewer: kept in the cache per instance (patient points when
//! the image has a plane), loaded with the study, added, edited, deleted, listed.

use eframe::egui::{self};

use std::sync::Arc;

use super::viewport::{Shape, Viewport};
use super::*;
use crate::dicom::ImageHeader;
use crate::store::Store;

/// A measurement on screen: where it is and its row in the cache index.
#[derive(Debug, Clone, Copy)]
pub(super) struct Meas {
    pub(super) id: i64,
    /// Its image: set and index ([`NOWHERE`] for a measurement on an MPR
    /// plane none of the MPR's planes passes through now).
    pub(super) set: usize,
    pub(super) index: usize,
    pub(super) shape: Shape,
    /// On an MPR plane: the stack it was reformatted from and its points in
    /// patient coordinates (the first `shape.points().len()`), which place it
    /// on whichever plane goes through them.
    pub(super) mpr: Option<(usize, [[f64; 3]; 4])>,
}

/// The set of a measurement shown on no image.
pub(super) const NOWHERE: usize = usize::MAX;

/// How far from a plane (in its steps) a point still lies on it.
const ON_PLANE: f64 = 0.25;

/// A shape's points as kept in the cache: patient coordinates when the image has
/// a plane (so they survive any re-sorting or reformatting), else image ones.
pub(super) fn stored_points(
    h: &ImageHeader,
    frame: u32,
    shape: &Shape,
) -> (&'static str, Vec<[f64; 3]>) {
    match plane_of(h, frame) {
        Some(plane) => (
            "patient",
            shape
                .points()
                .iter()
                .map(|q| {
                    let v = plane.patient_point(q[0] - 0.5, q[1] - 0.5);
                    [v.x, v.y, v.z]
                })
                .collect(),
        ),
        None => (
            "image",
            shape.points().iter().map(|q| [q[0], q[1], 0.0]).collect(),
        ),
    }
}

/// The image plane of a frame (for patient coordinates), if it has one.
pub(super) fn plane_of(
    h: &ImageHeader,
    frame: u32,
) -> Option<crate::imaging::geometry::ImagePlane> {
    let f = h.frame(frame).ok()?;
    crate::imaging::geometry::ImagePlane::new(
        f.image_position?,
        f.image_orientation?,
        f.pixel_spacing.unwrap_or([1.0, 1.0]),
    )
}

impl App {
    /// Measurements kept in the cache for the open images, placed back on them.
    pub(super) fn load_measurements(&mut self) {
        self.session.measurements.clear();
        let Ok(store) = Store::open(&self.launch.cache) else {
            return;
        };
        let mut at: std::collections::HashMap<(String, u32), (usize, usize)> =
            std::collections::HashMap::new();
        for (s, ls) in self.session.sets.iter().enumerate() {
            for (i, f) in ls.set.frames.iter().enumerate() {
                if let Some(h) = self.session.headers.get(f.instance) {
                    at.insert((h.sop_instance_uid.clone(), f.frame), (s, i));
                }
            }
        }
        let sops: Vec<String> = self
            .session
            .headers
            .iter()
            .map(|h| h.sop_instance_uid.clone())
            .collect();
        let rows = match store.measurements_of(&sops) {
            Ok(r) => r,
            Err(e) => {
                self.session.notice = Some(format!("measurements not loaded: {e}"));
                Vec::new()
            }
        };
        self.session.mpr_rows.clear();
        for m in rows {
            if m.space == "mpr" {
                // Placed when the stack is reformatted (see `place_on_mpr`).
                self.session.mpr_rows.push(m);
                continue;
            }
            let Some(&(set, index)) = at.get(&(m.sop_uid.clone(), m.frame)) else {
                continue;
            };
            let fr = &self.session.sets[set].set.frames[index];
            let Some(h) = self.session.headers.get(fr.instance) else {
                continue;
            };
            let to_image = |p: [f64; 3]| -> Option<[f64; 2]> {
                if m.space == "patient" {
                    let plane = plane_of(h, fr.frame)?;
                    let (c, r) = plane.image_point(&nalgebra::Point3::new(p[0], p[1], p[2]));
                    Some([c + 0.5, r + 0.5])
                } else {
                    Some([p[0], p[1]])
                }
            };
            let points: Option<Vec<[f64; 2]>> = m.points.iter().map(|p| to_image(*p)).collect();
            let Some(shape) = points.and_then(|p| Shape::from_points(&m.kind, &p)) else {
                continue;
            };
            self.session.measurements.push(Meas {
                id: m.id,
                set,
                index,
                shape,
                mpr: None,
            });
        }
        let reformatted: Vec<usize> = self.session.mpr.keys().copied().collect();
        for s in reformatted {
            self.place_on_mpr(s);
        }
    }

    /// The key MPR measurements of stack `src_set` are kept under: its first
    /// image.
    fn mpr_key(&self, src_set: usize) -> Option<String> {
        let f = self.session.sets.get(src_set)?.set.frames.first()?;
        Some(
            self.session
                .headers
                .get(f.instance)?
                .sop_instance_uid
                .clone(),
        )
    }

    /// Put the measurements on the MPR planes of stack `src_set` (those kept
    /// in the cache, taken in once, and those drawn since) on the plane that
    /// goes through all their points now, if one does.
    pub(super) fn place_on_mpr(&mut self, src_set: usize) {
        let Some(key) = self.mpr_key(src_set) else {
            return;
        };
        let rows: Vec<crate::store::MeasurementRow> = {
            let (mine, others) = std::mem::take(&mut self.session.mpr_rows)
                .into_iter()
                .partition(|r| r.sop_uid == key);
            self.session.mpr_rows = others;
            mine
        };
        for r in rows {
            let mut points = [[0.0; 3]; 4];
            for (p, q) in points.iter_mut().zip(&r.points) {
                *p = *q;
            }
            // The shape's kind and number of points; where it is comes next.
            let flat: Vec<[f64; 2]> = r.points.iter().map(|_| [0.0, 0.0]).collect();
            let Some(shape) = Shape::from_points(&r.kind, &flat) else {
                continue;
            };
            self.session.measurements.push(Meas {
                id: r.id,
                set: NOWHERE,
                index: 0,
                shape,
                mpr: Some((src_set, points)),
            });
        }
        let Some(m) = self.session.mpr.get(&src_set) else {
            return;
        };
        let views: Vec<(usize, crate::imaging::mpr::Layout)> = m
            .sets
            .iter()
            .copied()
            .zip(m.layouts.iter().cloned())
            .collect();
        let headers = Arc::clone(&self.session.headers);
        let sets = &self.session.sets;
        for meas in &mut self.session.measurements {
            let Some((s, points)) = meas.mpr else {
                continue;
            };
            if s != src_set {
                continue;
            }
            let n = meas.shape.points().len();
            let pts: Vec<nalgebra::Point3<f64>> = points[..n]
                .iter()
                .map(|p| nalgebra::Point3::new(p[0], p[1], p[2]))
                .collect();
            meas.set = NOWHERE;
            for (set, l) in &views {
                let t: Vec<f64> = pts
                    .iter()
                    .map(|p| (p - l.first).dot(&l.step) / l.step_mm)
                    .collect();
                let k = t[0].round();
                if k < 0.0 || k >= l.count as f64 || t.iter().any(|x| (x - k).abs() > ON_PLANE) {
                    continue;
                }
                let index = k as usize;
                let Some(h) = sets
                    .get(*set)
                    .and_then(|ls| ls.set.frames.get(index))
                    .and_then(|f| headers.get(f.instance))
                else {
                    continue;
                };
                let Some(plane) = plane_of(h, 0) else {
                    continue;
                };
                let image: Vec<[f64; 2]> = pts
                    .iter()
                    .map(|p| {
                        let (c, r) = plane.image_point(p);
                        [c + 0.5, r + 0.5]
                    })
                    .collect();
                if let Some(shape) = Shape::from_points(meas.shape.kind(), &image) {
                    meas.shape = shape;
                    meas.set = *set;
                    meas.index = index;
                    break;
                }
            }
        }
    }

    /// Keep a new measurement (in patient coordinates when the image has a plane).
    pub(super) fn add_measurement(&mut self, set: usize, index: usize, shape: Shape) {
        let Some((fr, h)) = self.session.frame(set, index) else {
            return;
        };
        let kind = shape.kind();
        let (space, points) = stored_points(h, fr.frame, &shape);
        // On an MPR plane: kept in patient coordinates under its stack.
        let on_mpr = match self.session.sets[set].derived {
            Some((src_set, _)) if space == "patient" => {
                let Some(key) = self.mpr_key(src_set) else {
                    return;
                };
                let mut p = [[0.0; 3]; 4];
                for (a, b) in p.iter_mut().zip(&points) {
                    *a = *b;
                }
                Some((src_set, p, key))
            }
            _ => None,
        };
        let row = crate::store::MeasurementRow {
            id: 0,
            sop_uid: match &on_mpr {
                Some((_, _, key)) => key.clone(),
                None => h.sop_instance_uid.clone(),
            },
            frame: if on_mpr.is_some() { 0 } else { fr.frame },
            kind: kind.into(),
            space: if on_mpr.is_some() { "mpr" } else { space }.into(),
            points,
        };
        let id = Store::open(&self.launch.cache)
            .and_then(|s| s.add_measurement(&row))
            .unwrap_or_else(|e| {
                self.session.status = format!("measurement not saved: {e}");
                -1
            });
        self.session.measurements.push(Meas {
            id,
            set,
            index,
            shape,
            mpr: on_mpr.map(|(s, p, _)| (s, p)),
        });
    }

    /// A measurement moved: kept in the cache (patient coordinates) too.
    pub(super) fn edit_measurement(&mut self, pos: usize, shape: Shape) {
        let Some(m) = self.session.measurements.get_mut(pos) else {
            return;
        };
        m.shape = shape;
        let (id, set, index) = (m.id, m.set, m.index);
        let Some((fr, h)) = self.session.frame(set, index) else {
            return;
        };
        let (_, points) = stored_points(h, fr.frame, &shape);
        if let Some(m) = self.session.measurements.get_mut(pos)
            && let Some((_, p)) = m.mpr.as_mut()
        {
            for (a, b) in p.iter_mut().zip(&points) {
                *a = *b;
            }
        }
        if id < 0 {
            return;
        }
        if let Err(e) =
            Store::open(&self.launch.cache).and_then(|s| s.update_measurement(id, &points))
        {
            self.session.notice = Some(format!("measurement not updated in the cache: {e}"));
        }
    }

    pub(super) fn delete_measurement(&mut self, pos: usize) {
        let m = self.session.measurements.remove(pos);
        if m.id >= 0
            && let Err(e) = Store::open(&self.launch.cache).and_then(|s| s.delete_measurement(m.id))
        {
            self.session.status = format!("measurement not deleted from the cache: {e}");
        }
    }

    /// The measurement list: value with calibration, where it is; click to go
    /// there, "del" to delete.
    pub(super) fn measurement_list(&mut self, ui: &mut egui::Ui) {
        ui.heading("Measurements");
        if self.session.measurements.is_empty() {
            ui.label("L length, A angle, C Cobb angle,\nE ellipse ROI, Q rectangle ROI");
        }
        let mut goto = None;
        let mut delete = None;
        for (k, m) in self.session.measurements.iter().enumerate() {
            let Some(ls) = self.session.sets.get(m.set) else {
                continue;
            };
            let Some(h) = ls
                .set
                .frames
                .get(m.index)
                .and_then(|f| self.session.headers.get(f.instance))
            else {
                continue;
            };
            let value = m.shape.value_label(&h.calibration);
            ui.horizontal(|ui| {
                if ui
                    .small_button("del")
                    .on_hover_text("delete this measurement")
                    .clicked()
                {
                    delete = Some(k);
                }
                // Truncated, never widening the panel (which would move the
                // image under the pointer).
                if ui
                    .add(
                        egui::Button::new(format!("{value}  {} im {}", ls.modality, m.index + 1))
                            .frame(false)
                            .truncate(),
                    )
                    .on_hover_text("go to this image")
                    .clicked()
                {
                    goto = Some((m.set, m.index));
                }
            });
        }
        if let Some((set, index)) = goto
            && let Some(v) = self.grid.viewports.get_mut(self.grid.active)
        {
            if v.set != Some(set) {
                *v = Viewport::new();
                v.set = Some(set);
            }
            v.index = index;
        }
        if let Some(k) = delete {
            self.handle(super::command::Command::DeleteMeasurement(k));
        }
    }
}
