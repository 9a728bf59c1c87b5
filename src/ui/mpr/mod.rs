//! MPR in the viewer: a stack's three planes through a crosshair — its own
//! plane, across its rows and across its columns — added as display sets with
//! real headers (so markers, annotations, reference lines and measurements work
//! on them as on acquired images); their images are cut on demand
//! by the reference reslicer from the decoded frames (at home, with no
//! rotation, by copying voxels: every pixel is a voxel centre).
//!
//! The crosshair ([`crate::imaging::mpr::Crosshair`]) is the state: where the
//! planes meet and how each is turned. Each plane's lines on the others come
//! from it; dragging its centre moves it, dragging a line moves that plane,
//! dragging a line's handle turns the other two planes about the viewport's own
//! normal (oblique, then double oblique), scrolling moves a plane along its own
//! normal. A turned plane's headers are written anew in the room its set was
//! given (the most images any rotation can need), so no index into the
//! session's headers ever changes. M again gives back the layout MPR replaced.

use std::sync::Arc;

mod crosshair;
mod shared;

pub(in crate::ui) use shared::MprVolume;

use super::loader::{Compact, LoadedSet};
use super::viewport::Viewport;
use super::*;
use crate::dicom::ImageHeader;
use crate::dicom::pixels::FramePixels;
use crate::imaging::mpr::{Crosshair, Layout, Plane, Source};

/// How S, ] and [ change a reformat's slab.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlabChange {
    Cycle,
    Thicker,
    Thinner,
}

/// Slab thicknesses [ and ] step through (mm); S starts at 10.
const SLAB_STEPS: [f64; 8] = [2.0, 3.0, 5.0, 10.0, 15.0, 20.0, 30.0, 50.0];

/// A stack's MPR: its crosshair and the three reformats it hangs.
#[derive(Debug, Clone)]
pub(super) struct MprSet {
    pub(super) src: Arc<Source>,
    pub(super) crosshair: Crosshair,
    /// The display sets of [`Plane::ALL`], in that order.
    pub(super) sets: [usize; 3],
    /// Where each set's headers start in the session's headers, and how many
    /// it has room for.
    base: [usize; 3],
    room: [usize; 3],
    /// Where each plane's images lie now, and where they lie at home.
    pub(super) layouts: [Layout; 3],
    home: [Layout; 3],
    /// The image of each set the viewports were last put on (a viewport on
    /// another image was scrolled: the centre follows it).
    at: [usize; 3],
    /// The stack as one volume, once every frame is decoded.
    pub(super) volume: Option<MprVolume>,
    /// The 3-D view as the reader left it (preset, angle, window, crop), for
    /// M to hang again.
    pub(super) vr_view: Option<super::viewport::VrView>,
}

impl MprSet {
    /// Which of the three planes set `set` is.
    fn view_of(&self, set: usize) -> Option<usize> {
        self.sets.iter().position(|&s| s == set)
    }

    /// Each plane on its image through the crosshair's centre, and the
    /// viewports showing it with it.
    fn put_on_centre(&mut self, viewports: &mut [Viewport]) {
        let centre = self.crosshair.centre;
        for (v, l) in self.layouts.iter().enumerate() {
            self.at[v] = l.index_of(&centre);
            for vp in viewports
                .iter_mut()
                .filter(|vp| vp.set == Some(self.sets[v]))
            {
                vp.index = self.at[v];
            }
        }
    }
}

/// Reformat image `header` (a plane of an MPR, thin or a slab) from the
/// stack's volume by the reference reslicer, back in stored values;
/// `padding`: the modality value outside the volume.
fn plane_image(
    volume: &crate::volume::VolumeView<'_>,
    header: &ImageHeader,
    slab: Option<crate::imaging::reslice::Slab>,
    padding: f64,
) -> Option<Vec<i32>> {
    use crate::imaging::reslice::{self, Options, PlaneSpec};
    let spec = PlaneSpec::of_image(header)?;
    let (slope, intercept) = (volume.rescale.slope, volume.rescale.intercept);
    if slope == 0.0 || !slope.is_finite() {
        return None;
    }
    let opts = Options {
        slab,
        padding,
        ..Options::default()
    };
    let values = reslice::reslice(volume, &spec, &opts).ok()?;
    Some(
        values
            .iter()
            .map(|m| ((m - intercept) / slope).round() as i32)
            .collect(),
    )
}

/// The display set of a plane laid out by `layout`, its headers at `base`.
fn plane_set(
    layout: &Layout,
    base: usize,
    from: &crate::model::DisplaySet,
) -> crate::model::DisplaySet {
    let (positions, normal) = layout.positions();
    let (r, d) = (layout.row, layout.down);
    let orientation = [r.x, r.y, r.z, d.x, d.y, d.z];
    let plane = crate::imaging::geometry::ImagePlane::new([0.0; 3], orientation, layout.spacing)
        .map(|p| crate::imaging::geometry::plane_name(&p))
        .unwrap_or("oblique");
    crate::model::DisplaySet {
        frames: (0..layout.count)
            .map(|k| crate::model::FrameRef {
                instance: base + k,
                frame: 0,
            })
            .collect(),
        rows: layout.rows,
        columns: layout.columns,
        sorted_by: from.sorted_by,
        geometry: Some(crate::model::StackGeometry {
            plane,
            orientation,
            normal,
            spacing_mm: Some(layout.step_mm),
            min_spacing_mm: Some(layout.step_mm),
            max_spacing_mm: Some(layout.step_mm),
            positions_mm: positions,
            issues: Vec::new(),
        }),
        multiframe: false,
    }
}

/// The colour of each plane's lines and of its viewport's frame.
pub(super) const PLANE_COLOURS: [eframe::egui::Color32; 3] = [
    theme::MPR_ALONG,
    theme::MPR_ACROSS_ROWS,
    theme::MPR_ACROSS_COLUMNS,
];

impl App {
    /// S, ] and [: the active viewport's reformat as a thick slab (MIP, MinIP,
    /// AvgIP), thicker or thinner; its images are cut again by the reference
    /// reslicer.
    pub(super) fn change_slab(&mut self, how: SlabChange) {
        use crate::imaging::reslice::{Slab, SlabMode};
        let Some(set) = self.active_set() else {
            if self
                .grid
                .viewports
                .get(self.grid.active)
                .is_some_and(|v| v.vr.is_some())
            {
                self.session.notice =
                    Some("slabs are cut on MPR planes: click a plane, then S".into());
            }
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
        self.set_slab(set, new);
    }

    /// Set `set`'s slab (a reformat's): its images are cut again.
    pub(super) fn set_slab(&mut self, set: usize, slab: Option<crate::imaging::reslice::Slab>) {
        let Some(ls) = self
            .session
            .sets
            .get_mut(set)
            .filter(|ls| ls.derived.is_some())
        else {
            return;
        };
        if ls.slab == slab {
            return;
        }
        ls.slab = slab;
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
    ///
    /// MPR opens with its crosshair at the slice being read (the active
    /// viewport's), and on the way back the stack is put on the slice through
    /// the crosshair: what was found on one is where the other opens.
    pub fn toggle_mpr(&mut self) {
        if let Some(saved) = self.grid.mpr_saved.take() {
            let shown = self
                .grid
                .viewports
                .iter()
                .find_map(|v| self.mpr_of(v.set?))
                .map(|(src_set, _)| src_set);
            // The 3-D view is kept as the reader left it.
            if let Some(src_set) = shown {
                let kept = self
                    .grid
                    .viewports
                    .iter()
                    .find_map(|v| v.vr.clone().filter(|vr| vr.source == src_set));
                if let (Some(m), Some(vr)) = (self.session.mpr.get_mut(&src_set), kept) {
                    m.vr_view = Some(vr);
                }
            }
            self.grid.layout = saved.layout;
            self.grid.viewports = saved.viewports;
            self.grid.active = saved.active;
            self.grid.maximized = saved.maximized;
            self.session.notice = None;
            if let Some(src_set) = shown {
                self.stack_to_crosshair(src_set);
            }
            return;
        }
        let saved = SavedGrid {
            layout: self.grid.layout,
            viewports: self.grid.viewports.clone(),
            active: self.grid.active,
            maximized: self.grid.maximized,
        };
        let reading = self
            .grid
            .viewports
            .get(self.grid.active)
            .and_then(|v| Some((v.set?, v.index)))
            .filter(|&(set, _)| {
                self.session
                    .sets
                    .get(set)
                    .is_some_and(|ls| ls.derived.is_none())
            });
        if self.start_mpr() {
            if let Some((set, index)) = reading {
                self.crosshair_to_slice(set, index);
            }
            self.grid.mpr_saved = Some(saved);
        }
    }

    /// Move the crosshair of `set`'s MPR along the stack's normal to its
    /// display slice `index` (keeping where it is in the slice's plane), and
    /// the planes' viewports with it.
    fn crosshair_to_slice(&mut self, set: usize, index: usize) {
        let Some(g) = self
            .session
            .sets
            .get(set)
            .and_then(|ls| ls.set.geometry.as_ref())
        else {
            return;
        };
        let Some(&depth) = g.positions_mm.get(index) else {
            return;
        };
        let n = nalgebra::Vector3::from(g.normal);
        let Some(m) = self.session.mpr.get_mut(&set) else {
            return;
        };
        let c = m.crosshair.centre;
        m.crosshair.centre = c + n * (depth - c.coords.dot(&n));
        m.put_on_centre(&mut self.grid.viewports);
    }

    /// Put the viewports showing stack `src_set` on its slice nearest the
    /// crosshair of its MPR.
    fn stack_to_crosshair(&mut self, src_set: usize) {
        let Some(m) = self.session.mpr.get(&src_set) else {
            return;
        };
        let Some(g) = self
            .session
            .sets
            .get(src_set)
            .and_then(|ls| ls.set.geometry.as_ref())
        else {
            return;
        };
        let depth = m
            .crosshair
            .centre
            .coords
            .dot(&nalgebra::Vector3::from(g.normal));
        let Some(k) = crate::imaging::geometry::nearest_slice(&g.positions_mm, depth) else {
            return;
        };
        for vp in self
            .grid
            .viewports
            .iter_mut()
            .filter(|vp| vp.set == Some(src_set))
        {
            vp.index = k;
        }
    }

    /// Reformat the active viewport's stack (MPR): its three planes through
    /// the middle voxel are added as display sets (once: they are cached) and
    /// hung 2×2 with its volume rendering. False when the active viewport has no stack to
    /// reformat (the notice says why).
    pub fn start_mpr(&mut self) -> bool {
        let Some(src_set) = self.active_set() else {
            return false;
        };
        // A reformat's viewport: the MPR of its stack.
        let src_set = self.session.sets[src_set]
            .derived
            .map(|d| d.0)
            .unwrap_or(src_set);
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
        if self.session.mpr.contains_key(&src_set) {
            // Already reformatted: hang it again.
            self.hang_mpr(src_set);
            return true;
        }
        let src = match Source::new(&self.session.sets[src_set].set, &self.session.headers) {
            Ok(s) => s,
            Err(e) => {
                self.session.notice = Some(e.to_string());
                return false;
            }
        };
        let crosshair = src.home();
        let layouts = Plane::ALL.map(|p| src.layout(p, &crosshair));
        let mut headers: Vec<ImageHeader> = self.session.headers.as_ref().clone();
        let mut sets = [0; 3];
        let mut base = [0; 3];
        let mut room = [0; 3];
        for (v, layout) in layouts.iter().enumerate() {
            let plane = layout.plane;
            base[v] = headers.len();
            room[v] = src.max_count(plane).max(layout.count);
            // The room beyond the images holds copies of the last, never shown.
            headers.extend((0..room[v]).map(|k| src.plane_header(layout, k.min(layout.count - 1))));
            let name = plane.label(src.plane);
            let from = &self.session.sets[src_set];
            let ls = LoadedSet {
                label: format!("MPR {name} ({})", layout.count),
                modality: from.modality.clone(),
                study_uid: from.study_uid.clone(),
                study_date: from.study_date.clone(),
                study_description: from.study_description.clone(),
                series_description: format!("MPR {name}"),
                set: plane_set(layout, base[v], &from.set),
                derived: Some((src_set, plane)),
                slab: None,
            };
            sets[v] = self.session.sets.len();
            self.residency
                .slots
                .push((0..layout.count).map(|_| Slot::default()).collect());
            self.residency.thumbs.push(None);
            self.session.sets.push(ls);
        }
        self.session.headers = Arc::new(headers);
        let at = layouts.clone().map(|l| l.at_centre);
        self.session.mpr.insert(
            src_set,
            MprSet {
                src: Arc::new(src),
                crosshair,
                sets,
                base,
                room,
                home: layouts.clone(),
                layouts,
                at,
                volume: None,
                vr_view: None,
            },
        );
        self.place_on_mpr(src_set);
        self.hang_mpr(src_set);
        true
    }

    /// The three planes 2×2 with the stack's volume rendering, on the
    /// crosshair's images, in the window the stack was read in.
    pub(super) fn hang_mpr(&mut self, src_set: usize) {
        let Some(m) = self.session.mpr.get(&src_set) else {
            return;
        };
        let (sets, at, kept_vr) = (m.sets, m.at, m.vr_view.clone());
        let window = self
            .grid
            .viewports
            .get(self.grid.active)
            .and_then(|v| v.window.clone());
        self.set_layout(2, 2);
        for (k, (set, index)) in sets.into_iter().zip(at).enumerate() {
            let v = &mut self.grid.viewports[k];
            *v = Viewport::new();
            v.set = Some(set);
            v.index = index;
            v.window = window.clone();
        }
        let mode = self.default_vr_mode(src_set);
        self.grid.viewports[3] = Viewport::new();
        self.grid.viewports[3].vr =
            Some(kept_vr.unwrap_or_else(|| super::viewport::VrView::new(src_set, mode)));
        self.grid.active = 0;
        self.session.notice = None;
    }

    /// The MPR showing set `set`, and which of its planes that is.
    fn mpr_of(&self, set: usize) -> Option<(usize, usize)> {
        let (src_set, _) = self.session.sets.get(set)?.derived?;
        let v = self.session.mpr.get(&src_set)?.view_of(set)?;
        Some((src_set, v))
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
            let Some(volume) = self.shared_volume(src_set) else {
                continue; // still decoding: the viewport shows "loading…"
            };
            let padding = volume.padding;
            let Some(m) = self.session.mpr.get(&src_set) else {
                continue;
            };
            let (src, v) = (Arc::clone(&m.src), m.view_of(set).unwrap_or(0));
            // On the home grid of a regular stack every pixel is a voxel:
            // copied, not interpolated.
            let home = m.layouts[v] == m.home[v] && src.regular;
            let slab = self.session.sets[set].slab;
            let bits = self.residency.slots[src_set]
                .first()
                .and_then(|s| s.pixels.as_ref())
                .map(|p| p.bits_stored)
                .unwrap_or(16);
            let view = volume.view();
            let voxel = |x: usize, y: usize, z: usize| view.stored(x, y, z);
            for k in wanted {
                if self.residency.slots[set]
                    .get(k)
                    .is_none_or(|s| s.pixels.is_some())
                {
                    continue;
                }
                let h = &self.session.headers[self.session.sets[set].set.frames[k].instance];
                let data = if home && slab.is_none() {
                    src.image_of(plane, k, &voxel)
                } else {
                    match plane_image(&view, h, slab, padding) {
                        Some(d) => d,
                        None => continue,
                    }
                };
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
