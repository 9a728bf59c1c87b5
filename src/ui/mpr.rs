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

use super::loader::{Compact, LoadedSet};
use super::viewport::{CrossAction, CrossLine, CrosshairView, Viewport};
use super::*;
use crate::dicom::ImageHeader;
use crate::dicom::pixels::FramePixels;
use crate::imaging::mpr::{Crosshair, Layout, Plane, Source};
use crate::volume::{SharedVolume, Volume};

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
}

/// An MPR's stack as a volume: its frames' shared block, where it lies, its
/// rescale, and the modality value outside it.
#[derive(Debug, Clone)]
pub(super) struct MprVolume {
    pub(super) block: Arc<SharedVolume>,
    pub(super) patient_from_voxel: nalgebra::Matrix4<f64>,
    pub(super) slice_coords: Option<crate::imaging::reslice::SliceCoords>,
    pub(super) rescale: crate::imaging::lut::Rescale,
    pub(super) padding: f64,
}

impl MprVolume {
    /// The block read as a volume (a read lock for as long as it lives).
    pub(super) fn view(&self) -> crate::volume::VolumeView<'_> {
        self.block.view(
            self.patient_from_voxel,
            self.rescale,
            self.slice_coords.as_ref(),
        )
    }
}

impl MprSet {
    /// Which of the three planes set `set` is.
    fn view_of(&self, set: usize) -> Option<usize> {
        self.sets.iter().position(|&s| s == set)
    }
}

/// The decoded frames of a stack as one volume, in their display order (as
/// `volume::load` reads a stack: the affine says which way it runs): voxel
/// (x, y, z) is column x, row y of frame z; in the one 16-bit type every
/// frame fits (None when they fit none, or a frame is colour).
pub(super) fn volume_of_frames(src: &Source, frames: &[Arc<Compact>]) -> Option<Volume> {
    use crate::volume::VoxelData;
    let n = src.slices;
    let plane = src.columns as usize * src.rows as usize;
    if frames.len() != n
        || frames
            .iter()
            .any(|f| f.rows != src.rows || f.columns != src.columns)
    {
        return None;
    }
    let kinds: Vec<bool> = frames
        .iter()
        .map(|f| f.sixteen_bits())
        .collect::<Option<_>>()?;
    fn values(f: &Compact, plane: usize) -> impl Iterator<Item = i32> + '_ {
        (0..plane).map(move |i| f.sample(i))
    }
    // Straight into the one buffer (no wider copy on the way: a 2,000-slice
    // CT is a gigabyte of 16-bit values).
    let data = if kinds.iter().all(|&signed| !signed) {
        VoxelData::U16(
            frames
                .iter()
                .flat_map(|f| values(f, plane))
                .map(|v| v as u16)
                .collect(),
        )
    } else {
        // Signed: every unsigned frame must fit i16 too.
        let fits = frames
            .iter()
            .zip(&kinds)
            .all(|(f, &signed)| signed || values(f, plane).all(|v| v <= i16::MAX as i32));
        if !fits {
            return None;
        }
        VoxelData::I16(
            frames
                .iter()
                .flat_map(|f| values(f, plane))
                .map(|v| v as i16)
                .collect(),
        )
    };
    Some(Volume {
        dims: [src.columns as usize, src.rows as usize, n],
        spacing_mm: [src.cs, src.rs, src.spacing],
        patient_from_voxel: src.affine,
        rescale: src.last_info.rescale,
        data,
        issues: Vec::new(),
        fast_slices: 0,
        slice_coords: src.slice_coords.clone(),
    })
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
        let (sets, at) = (m.sets, m.at);
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
        self.grid.viewports[3].vr = Some(super::viewport::VrView::new(src_set, mode));
        self.grid.active = 0;
        self.session.notice = None;
    }

    /// The MPR showing set `set`, and which of its planes that is.
    fn mpr_of(&self, set: usize) -> Option<(usize, usize)> {
        let (src_set, _) = self.session.sets.get(set)?.derived?;
        let v = self.session.mpr.get(&src_set)?.view_of(set)?;
        Some((src_set, v))
    }

    /// Keep the crosshair and the viewports together: a viewport scrolled to
    /// another image of its plane moves the centre along that plane's normal;
    /// every plane's viewports are then put on the image through the centre.
    /// Called after keys and the wheel, before what is shown is made resident.
    pub(super) fn follow_crosshair(&mut self) {
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
            for (v, l) in m.layouts.iter().enumerate() {
                m.at[v] = l.index_of(&centre);
                for vp in self.grid.viewports.iter_mut() {
                    if vp.set == Some(m.sets[v]) {
                        vp.index = m.at[v];
                    }
                }
            }
        }
    }

    /// The crosshair as viewport `set`'s image `index` shows it: the centre
    /// and the other planes' lines in image coordinates.
    pub(super) fn crosshair_view(&self, set: usize, index: usize) -> Option<CrosshairView> {
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
    pub(super) fn move_crosshair(&mut self, set: usize, index: usize, action: CrossAction) {
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
        self.lay_out_again(src_set, &turned);
        self.follow_crosshair();
        self.ctx.request_repaint();
    }

    /// X: the crosshair back home (no rotation, the middle voxel).
    pub(super) fn reset_crosshair(&mut self) {
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
        self.lay_out_again(src_set, &changed);
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

    /// The stack of the MPR of `src_set` as one volume once every frame is
    /// decoded: the block its frames were decoded into (`loader`), or, for a
    /// stack that has none (one that grew while it arrived), a block made now
    /// from its frames, which then become views of it. None while decoding
    /// (or for a stack no 16-bit type holds: the notice says so).
    pub(super) fn shared_volume(&mut self, src_set: usize) -> Option<MprVolume> {
        let m = self.session.mpr.get(&src_set)?;
        if let Some(v) = &m.volume {
            return Some(v.clone());
        }
        let src = Arc::clone(&m.src);
        let frames: Vec<Arc<Compact>> = self
            .residency
            .slots
            .get(src_set)?
            .iter()
            .map(|s| s.pixels.clone())
            .collect::<Option<_>>()?;
        let dims = [src.columns as usize, src.rows as usize, src.slices];
        // The frames are slice z of one block, in order: that block.
        let shared = frames
            .first()
            .and_then(|f| f.volume_slice())
            .and_then(|(b, _)| {
                let all = frames.iter().enumerate().all(|(z, f)| {
                    f.volume_slice()
                        .is_some_and(|(c, k)| Arc::ptr_eq(b, c) && k == z)
                });
                (all && b.dims == dims).then(|| Arc::clone(b))
            });
        let block = match shared {
            Some(b) => b,
            None => {
                let Some(volume) = volume_of_frames(&src, &frames) else {
                    self.session.notice = Some(
                        "MPR: the stack's values fit no one 16-bit type; planes cannot be cut"
                            .into(),
                    );
                    return None;
                };
                let bits = frames.first().map(|f| f.bits_stored).unwrap_or(16);
                drop(frames);
                let block = Arc::new(SharedVolume::of(volume.dims, volume.data));
                for (z, slot) in self.residency.slots[src_set].iter_mut().enumerate() {
                    slot.pixels = Some(Arc::new(Compact::of_volume(&block, z, bits)));
                }
                block
            }
        };
        let mut volume = MprVolume {
            block,
            patient_from_voxel: src.affine,
            slice_coords: src.slice_coords.clone(),
            rescale: src.last_info.rescale,
            padding: 0.0,
        };
        let lowest = volume.view().modality_range().map(|r| r.0);
        volume.padding = lowest.unwrap_or(volume.rescale.intercept);
        if let Some(m) = self.session.mpr.get_mut(&src_set) {
            m.volume = Some(volume.clone());
        }
        Some(volume)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imaging::reslice::Voxels;

    /// The volume the viewer makes of a stack's decoded frames is the one
    /// `volume::load` reads from the files (the reference reslicer's), voxel
    /// for voxel and in the same place; and its slices, as frames, are the
    /// frames they replace.
    #[test]
    fn the_volume_of_decoded_frames_is_the_stack_read_as_a_volume() {
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
        let src = Source::new(set, &headers).expect("source");
        let frames: Vec<Arc<Compact>> = set
            .frames
            .iter()
            .map(|f| {
                let img = crate::dicom::Image::open(&headers[f.instance].path).expect("open");
                Arc::new(Compact::new(img.frame(f.frame).expect("frame")))
            })
            .collect();
        let ours = volume_of_frames(&src, &frames).expect("one 16-bit type");
        let theirs = crate::volume::load(set, &headers).expect("volume");
        assert_eq!(ours.dims, theirs.dims);
        assert!(
            (ours.patient_from_voxel - Voxels::patient_from_voxel(&theirs)).norm() < 1e-6,
            "{} vs {}",
            ours.patient_from_voxel,
            theirs.patient_from_voxel
        );
        let [nx, ny, nz] = ours.dims;
        for z in 0..nz {
            for (x, y) in [(0, 0), (nx / 2, ny / 3), (nx - 1, ny - 1), (7, 40)] {
                assert_eq!(
                    ours.stored(x, y, z),
                    theirs.stored(x, y, z),
                    "({x},{y},{z})"
                );
            }
        }
        let shared = Arc::new(SharedVolume::of(ours.dims, ours.data.clone()));
        for (z, f) in frames.iter().enumerate() {
            let view = Compact::of_volume(&shared, z, f.bits_stored);
            assert_eq!(view.expand(), f.expand(), "frame {z}");
        }
    }
}
