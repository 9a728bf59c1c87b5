//! MPR in the viewer: a stack's two orthogonal reformats added as display sets
//! (with real headers, once: they stay cached while the study is open), hung 1×3
//! beside it, their images computed on demand; M again gives back the layout MPR
//! replaced.

use std::sync::Arc;

use super::loader::{Compact, LoadedSet};
use super::viewport::Viewport;
use super::*;
use crate::dicom::ImageHeader;
use crate::dicom::pixels::FramePixels;

/// How S, ] and [ change a reformat's slab.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlabChange {
    Cycle,
    Thicker,
    Thinner,
}

/// Slab thicknesses [ and ] step through (mm); S starts at 10.
const SLAB_STEPS: [f64; 8] = [2.0, 3.0, 5.0, 10.0, 15.0, 20.0, 30.0, 50.0];

/// The decoded frames of a stack seen as a volume by the reference reslicer:
/// voxel (x, y, z) is column x, row y of the z-th slice from the lowest along
/// the stack's normal.
struct Frames<'a> {
    src: &'a crate::imaging::mpr::Source,
    frames: &'a [Arc<Compact>],
    slope: f64,
    intercept: f64,
}

impl crate::imaging::reslice::Voxels for Frames<'_> {
    fn dims(&self) -> [usize; 3] {
        [
            self.src.columns as usize,
            self.src.rows as usize,
            self.src.slices,
        ]
    }
    fn patient_from_voxel(&self) -> nalgebra::Matrix4<f64> {
        let s = self.src;
        let lowest = s.last_position - s.normal * (s.spacing * (s.slices - 1) as f64);
        let (x, y, z) = (s.row_dir * s.cs, s.col_dir * s.rs, s.normal * s.spacing);
        nalgebra::Matrix4::new(
            x.x, y.x, z.x, lowest.x, x.y, y.y, z.y, lowest.y, x.z, y.z, z.z, lowest.z, 0.0, 0.0,
            0.0, 1.0,
        )
    }
    fn modality(&self, x: usize, y: usize, z: usize) -> f64 {
        let n = self.src.slices;
        // Display order: the highest slice first unless the stack is reversed.
        let shown = if self.src.reversed { n - 1 - z } else { z };
        let v = self.frames[shown].sample(x + self.src.columns as usize * y) as f64;
        v * self.slope + self.intercept
    }
}

/// A slab reformat image `k` of `plane`: the reference reslicer over the
/// plane the derived header describes, back in stored values.
fn slab_image(
    src: &crate::imaging::mpr::Source,
    frames: &[Arc<Compact>],
    header: &ImageHeader,
    slab: crate::imaging::reslice::Slab,
) -> Option<Vec<i32>> {
    use crate::imaging::reslice::{self, Options, PlaneSpec};
    let info = header.frames.first()?;
    let spec = PlaneSpec::of_image(header)?;
    let (slope, intercept) = (info.rescale.slope, info.rescale.intercept);
    if slope == 0.0 || !slope.is_finite() {
        return None;
    }
    let vol = Frames {
        src,
        frames,
        slope,
        intercept,
    };
    let lowest = frames
        .iter()
        .filter_map(|f| f.min_sample())
        .min()
        .unwrap_or(0) as f64;
    let opts = Options {
        slab: Some(slab),
        padding: lowest * slope + intercept,
        ..Options::default()
    };
    let values = reslice::reslice(&vol, &spec, &opts).ok()?;
    Some(
        values
            .iter()
            .map(|m| ((m - intercept) / slope).round() as i32)
            .collect(),
    )
}

impl App {
    /// S, ] and [: the active viewport's reformat as a thick slab (MIP, MinIP,
    /// AvgIP), thicker or thinner; its images are cut again by the reference
    /// reslicer.
    pub(super) fn change_slab(&mut self, how: SlabChange) {
        use crate::imaging::reslice::{Slab, SlabMode};
        let Some(set) = self
            .grid
            .viewports
            .get(self.grid.active)
            .and_then(|v| v.set)
        else {
            return;
        };
        let Some(ls) = self.session.sets.get_mut(set) else {
            return;
        };
        if ls.derived.is_none() {
            self.session.notice =
                Some("slabs are cut on MPR reformats: press M, then S on one of them".into());
            return;
        }
        let step = |t: f64, up: bool| -> f64 {
            if up {
                SLAB_STEPS
                    .iter()
                    .copied()
                    .find(|&s| s > t + 1e-9)
                    .unwrap_or(t)
            } else {
                SLAB_STEPS
                    .iter()
                    .rev()
                    .copied()
                    .find(|&s| s < t - 1e-9)
                    .unwrap_or(t)
            }
        };
        let new = match (how, ls.slab) {
            (SlabChange::Cycle, None) => Some(Slab {
                thickness_mm: 10.0,
                mode: SlabMode::Mip,
            }),
            (SlabChange::Cycle, Some(s)) => match s.mode {
                SlabMode::Mip => Some(Slab {
                    mode: SlabMode::MinIp,
                    ..s
                }),
                SlabMode::MinIp => Some(Slab {
                    mode: SlabMode::Average,
                    ..s
                }),
                SlabMode::Average => None,
            },
            (_, None) => None,
            (SlabChange::Thicker, Some(s)) => Some(Slab {
                thickness_mm: step(s.thickness_mm, true),
                ..s
            }),
            (SlabChange::Thinner, Some(s)) => Some(Slab {
                thickness_mm: step(s.thickness_mm, false),
                ..s
            }),
        };
        if new == ls.slab {
            return;
        }
        ls.slab = new;
        // Its images are cut again (the thumbnail stays the thin plane's).
        if let Some(slots) = self.residency.slots.get_mut(set) {
            for slot in slots.iter_mut() {
                slot.pixels = None;
                slot.texture = None;
            }
        }
        self.residency.expanded.retain(|k, _| k.0 != set);
        self.ctx.request_repaint();
    }

    /// M: into MPR (see [`App::start_mpr`]), or, in MPR, back to the layout and
    /// viewports it replaced, exactly as they were (priors included). The
    /// reformats stay cached: M again hangs them without computing them anew.
    pub fn toggle_mpr(&mut self) {
        if let Some(saved) = self.grid.mpr_saved.take() {
            self.grid.layout = saved.layout;
            self.grid.viewports = saved.viewports;
            self.grid.active = saved.active;
            self.grid.maximized = saved.maximized;
            self.session.notice = None;
            return;
        }
        let saved = SavedGrid {
            layout: self.grid.layout,
            viewports: self.grid.viewports.clone(),
            active: self.grid.active,
            maximized: self.grid.maximized,
        };
        if self.start_mpr() {
            self.grid.mpr_saved = Some(saved);
        }
    }

    /// Reformat the active viewport's stack (MPR): its two orthogonal planes are
    /// added as display sets (once: they are cached) and hung beside it (1×3),
    /// with reference lines. False when the active viewport has no stack to
    /// reformat (the notice says why).
    pub fn start_mpr(&mut self) -> bool {
        use crate::imaging::mpr::{Plane, Source};
        let Some(src_set) = self
            .grid
            .viewports
            .get(self.grid.active)
            .and_then(|v| v.set)
        else {
            return false;
        };
        if self.session.sets[src_set].derived.is_some() {
            self.session.notice = Some("MPR: choose an acquired stack, not a reformat".into());
            return false;
        }
        if let Some((cached, listed)) = self
            .arriving_count(&self.session.sets[src_set].study_uid)
            .filter(|(c, l)| c < l)
        {
            self.session.notice = Some(format!(
                "MPR: the study is still arriving ({cached} of {listed} images); MPR once it is in"
            ));
            return false;
        }
        let absent = self.session.sets[src_set]
            .set
            .frames
            .iter()
            .filter(|f| {
                self.session
                    .headers
                    .get(f.instance)
                    .is_some_and(|h| h.stand_in.is_some())
            })
            .count();
        if absent > 0 {
            self.session.notice = Some(format!(
                "MPR: {absent} image(s) of this stack have not arrived; MPR once they are in"
            ));
            return false;
        }
        if let Some(existing) = self
            .session
            .sets
            .iter()
            .position(|s| s.derived.map(|d| d.0) == Some(src_set))
        {
            // Already reformatted: hang it again.
            self.hang_mpr(src_set, existing);
            return true;
        }
        let src = match Source::new(&self.session.sets[src_set].set, &self.session.headers) {
            Ok(s) => s,
            Err(e) => {
                self.session.notice = Some(e.to_string());
                return false;
            }
        };
        let mut headers: Vec<ImageHeader> = self.session.headers.as_ref().clone();
        let first_new = self.session.sets.len();
        for plane in [Plane::AcrossRows, Plane::AcrossColumns] {
            let base = headers.len();
            let count = src.count(plane);
            headers.extend((0..count).map(|k| src.header(plane, k)));
            let (positions, normal) = src.positions(plane);
            let name = plane.label(src.plane);
            let h0 = &headers[base];
            let orientation = h0.frames[0].image_orientation.unwrap_or_default();
            let step = match plane {
                Plane::AcrossRows => src.rs,
                Plane::AcrossColumns => src.cs,
            };
            let from = &self.session.sets[src_set];
            let ls = LoadedSet {
                label: format!("MPR {name} ({count})"),
                modality: from.modality.clone(),
                study_uid: from.study_uid.clone(),
                study_date: from.study_date.clone(),
                study_description: from.study_description.clone(),
                series_description: format!("MPR {name}"),
                set: crate::model::DisplaySet {
                    frames: (0..count)
                        .map(|k| crate::model::FrameRef {
                            instance: base + k,
                            frame: 0,
                        })
                        .collect(),
                    rows: src.slices as u32,
                    columns: match plane {
                        Plane::AcrossRows => src.columns,
                        Plane::AcrossColumns => src.rows,
                    },
                    sorted_by: from.set.sorted_by,
                    geometry: Some(crate::model::StackGeometry {
                        plane: name,
                        orientation,
                        normal,
                        spacing_mm: Some(step),
                        min_spacing_mm: Some(step),
                        max_spacing_mm: Some(step),
                        positions_mm: positions,
                        issues: Vec::new(),
                    }),
                    multiframe: false,
                },
                derived: Some((src_set, plane)),
                slab: None,
            };
            self.residency
                .slots
                .push((0..count).map(|_| Slot::default()).collect());
            self.residency.thumbs.push(None);
            self.session.sets.push(ls);
        }
        self.session.headers = Arc::new(headers);
        self.session.mpr.insert(src_set, Arc::new(src));
        self.hang_mpr(src_set, first_new);
        true
    }

    /// The source stack and its two reformats side by side.
    pub(super) fn hang_mpr(&mut self, src_set: usize, first_derived: usize) {
        let keep = self.grid.viewports.get(self.grid.active).cloned();
        self.set_layout(1, 3);
        if let Some(v) = keep {
            self.grid.viewports[0] = v;
        }
        let window = self.grid.viewports[0].window.clone();
        for (k, set) in [(1, first_derived), (2, first_derived + 1)] {
            let n = self.session.sets[set].set.frames.len();
            let v = &mut self.grid.viewports[k];
            *v = Viewport::new();
            v.set = Some(set);
            v.index = n / 2;
            v.window = window.clone();
        }
        self.grid.viewports[0].set = Some(src_set);
        self.grid.active = 0;
        self.session.notice = None;
    }

    /// Compute the reformatted images on screen (and drop the others), once every
    /// slice of their stack is decoded.
    pub(super) fn reformat(&mut self, shown: &[(usize, usize)]) {
        for set in 0..self.session.sets.len() {
            let Some((src_set, plane)) = self.session.sets[set].derived else {
                continue;
            };
            for (i, slot) in self.residency.slots[set].iter_mut().enumerate() {
                if slot.pixels.is_some()
                    && !shown.iter().any(|&(s, j)| s == set && j.abs_diff(i) <= 2)
                {
                    slot.pixels = None;
                }
            }
            let mid = self.session.sets[set].set.frames.len() / 2;
            let mut wanted: Vec<usize> = shown
                .iter()
                .filter(|&&(s, i)| {
                    s == set
                        && self.residency.slots[set]
                            .get(i)
                            .is_some_and(|x| x.pixels.is_none())
                })
                .map(|&(_, i)| i)
                .collect();
            if self.residency.thumbs.get(set).is_some_and(Option::is_none) {
                wanted.push(mid);
            }
            if wanted.is_empty() {
                continue;
            }
            let Some(src) = self.session.mpr.get(&src_set).cloned() else {
                continue;
            };
            let frames: Option<Vec<Arc<Compact>>> = self.residency.slots[src_set]
                .iter()
                .map(|s| s.pixels.clone())
                .collect();
            let Some(frames) = frames else {
                continue; // still decoding: the viewport shows "loading…"
            };
            let slab = self.session.sets[set].slab;
            for k in wanted {
                if self.residency.slots[set]
                    .get(k)
                    .is_none_or(|s| s.pixels.is_some())
                {
                    continue;
                }
                let data = match slab {
                    Some(slab) => {
                        let h =
                            &self.session.headers[self.session.sets[set].set.frames[k].instance];
                        match slab_image(&src, &frames, h, slab) {
                            Some(d) => d,
                            None => continue,
                        }
                    }
                    None => src.image(plane, k, &|s, i| frames[s].sample(i)),
                };
                let bits = frames[0].bits_stored;
                let h = &self.session.headers[self.session.sets[set].set.frames[k].instance];
                let (rows, columns) = h
                    .pixel
                    .as_ref()
                    .map(|p| (p.rows, p.columns))
                    .unwrap_or((0, 0));
                let px = FramePixels {
                    rows,
                    columns,
                    bits_stored: bits,
                    samples: crate::dicom::pixels::Samples::Mono(data),
                };
                self.residency.slots[set][k].pixels = Some(Arc::new(Compact::new(px)));
                self.residency.slots[set][k].texture = None;
                if k == mid && self.residency.thumbs.get(set).is_some_and(Option::is_none) {
                    self.make_thumbnail(set, k);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imaging::mpr::Plane;
    use crate::imaging::reslice::{self, Options, PlaneSpec, Slab, SlabMode};

    #[test]
    fn a_slab_of_decoded_frames_is_the_reference_reslicers_slab_of_the_volume() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (_, _, _) = crate::synth::write_demo(dir.path(), 40, 64).expect("demo");
        let files = crate::scan::list_files(dir.path()).expect("list");
        let headers = crate::scan::scan_files(&files).headers;
        let patients = crate::model::build(&headers);
        let set = patients
            .iter()
            .flat_map(|p| &p.studies)
            .flat_map(|s| &s.series)
            .flat_map(|s| &s.display_sets)
            .filter(|d| d.frames.len() == 40)
            .max_by_key(|d| headers[d.frames[0].instance].study_date.clone())
            .expect("the CT");
        let src = crate::imaging::mpr::Source::new(set, &headers).expect("source");
        let frames: Vec<Arc<Compact>> = set
            .frames
            .iter()
            .map(|f| {
                let img = crate::dicom::Image::open(&headers[f.instance].path).expect("open");
                Arc::new(Compact::new(img.frame(f.frame).expect("frame")))
            })
            .collect();
        let vol = crate::volume::load(set, &headers).expect("volume");
        let slab = Slab {
            thickness_mm: 10.0,
            mode: SlabMode::Mip,
        };
        for plane in [Plane::AcrossRows, Plane::AcrossColumns] {
            for k in [20, 31, 40] {
                let h = src.header(plane, k);
                let ours = slab_image(&src, &frames, &h, slab).expect("slab");
                let info = &h.frames[0];
                let px = h.pixel.as_ref().expect("pixels");
                let spec = PlaneSpec::of_image(&h).expect("the reformat's plane");
                let opts = Options {
                    slab: Some(slab),
                    padding: vol.modality_range().expect("range").0,
                    ..Options::default()
                };
                let (a, b) = (info.rescale.slope, info.rescale.intercept);
                let theirs: Vec<i32> = reslice::reslice(&vol, &spec, &opts)
                    .expect("reslice")
                    .iter()
                    .map(|m| ((m - b) / a).round() as i32)
                    .collect();
                // Within one stored unit: the two sum the same samples in a
                // different order (modality values here, stored values there),
                // so a value on a rounding tie may round either way.
                let bad: Vec<(usize, i32, i32)> = ours
                    .iter()
                    .zip(&theirs)
                    .enumerate()
                    .filter(|(_, (x, y))| (**x - **y).abs() > 1)
                    .map(|(i, (x, y))| (i, *x, *y))
                    .take(8)
                    .collect();
                assert!(
                    bad.is_empty(),
                    "{plane:?} {k}: {bad:?} ({} wide)",
                    px.columns
                );
            }
        }
    }
}
