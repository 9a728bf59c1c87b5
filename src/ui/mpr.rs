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

impl App {
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
            for k in wanted {
                if self.residency.slots[set]
                    .get(k)
                    .is_none_or(|s| s.pixels.is_some())
                {
                    continue;
                }
                let data = src.image(plane, k, &|s, i| frames[s].sample(i));
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
