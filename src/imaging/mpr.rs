//! Multiplanar reformatting of a stack: three planes through a crosshair — the
//! stack's own plane ("along" it), one across its rows (the "coronal" of an
//! axial stack) and one across its columns (the "sagittal") — each a stack of
//! parallel images with its own Image Position / Orientation and Pixel Spacing,
//! so that annotations, orientation markers, reference lines and measurements
//! work on them as on acquired images.
//!
//! The [`Crosshair`] is plain data: the point where the three planes meet and
//! a rotation of the stack's axes about it (oblique and double-oblique planes).
//! A plane's [`Layout`] follows from it: the rotated axes, the pixel spacing of
//! the stack axis each image axis comes from, and an extent that covers the
//! whole volume, with one image through the centre. At home (no rotation, the
//! centre on a voxel) the images pass through voxel centres, so a reformat
//! samples stored values exactly. Images need evenly spaced, parallel slices of
//! one grayscale pixel format and rescale.

use nalgebra::{Point3, Rotation3, Unit, Vector3};

use crate::dicom::ImageHeader;
use crate::error::{Error, Result};
use crate::imaging::geometry::ImagePlane;
use crate::imaging::reslice::SliceCoords;
use crate::model::{DisplaySet, GeometryIssue, reading_normal};

/// Which reformat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Plane {
    /// The stack's own plane: columns × rows, one image per slice (at home,
    /// the acquired slices themselves).
    Along,
    /// One image per source row: columns × slices (coronal for an axial stack).
    AcrossRows,
    /// One image per source column: rows × slices (sagittal for an axial stack).
    AcrossColumns,
}

impl Plane {
    /// The three, in the order MPR hangs them.
    pub const ALL: [Plane; 3] = [Plane::Along, Plane::AcrossRows, Plane::AcrossColumns];

    /// Its place in [`Plane::ALL`].
    pub fn index(self) -> usize {
        match self {
            Plane::Along => 0,
            Plane::AcrossRows => 1,
            Plane::AcrossColumns => 2,
        }
    }

    pub fn label(self, source_plane: &str) -> &'static str {
        match (source_plane, self) {
            ("axial", Plane::Along) => "axial",
            ("coronal", Plane::Along) => "coronal",
            ("sagittal", Plane::Along) => "sagittal",
            (_, Plane::Along) => "reformat C",
            ("axial", Plane::AcrossRows) => "coronal",
            ("axial", Plane::AcrossColumns) => "sagittal",
            ("coronal", Plane::AcrossRows) => "axial",
            ("coronal", Plane::AcrossColumns) => "sagittal",
            ("sagittal", Plane::AcrossRows) => "axial",
            ("sagittal", Plane::AcrossColumns) => "coronal",
            (_, Plane::AcrossRows) => "reformat A",
            (_, Plane::AcrossColumns) => "reformat B",
        }
    }
}

/// Where a stack's voxels lie in patient space, in its display order: the
/// affine taking (column, row, slice coordinate, 1) to patient mm — the slice
/// axis the mean step from the first image to the last, so a gantry tilt is a
/// shear, not a lie — and, for a stack whose images are not evenly spaced,
/// where each really is ([`SliceCoords`]: planes are then sampled between the
/// real positions and gaps left empty). None without Image Position /
/// Orientation.
pub fn placement(
    set: &DisplaySet,
    headers: &[ImageHeader],
) -> Option<(nalgebra::Matrix4<f64>, Option<SliceCoords>)> {
    let g = set.geometry.as_ref()?;
    let n = set.frames.len();
    let first = set.frames.first()?;
    let info = headers.get(first.instance)?.frame(first.frame).ok()?;
    let plane = ImagePlane::new(
        info.image_position?,
        info.image_orientation?,
        info.pixel_spacing.unwrap_or([1.0, 1.0]),
    )?;
    let step: Vector3<f64> = if n > 1 {
        let last = set.frames[n - 1];
        let p = headers
            .get(last.instance)?
            .frame(last.frame)
            .ok()?
            .image_position?;
        (Vector3::new(p[0], p[1], p[2]) - plane.position.coords) / (n - 1) as f64
    } else {
        plane.normal() * info.slice_thickness.unwrap_or(1.0)
    };
    let mut m = plane.patient_from_image();
    m[(0, 2)] = step.x;
    m[(1, 2)] = step.y;
    m[(2, 2)] = step.z;
    let coords = g
        .spacing_mm
        .and_then(|typical| SliceCoords::from_positions(&g.positions_mm, typical));
    Some((m, coords))
}

/// A reformat's axes hung as a reader expects its anatomical plane: `step`
/// is the stack axis its images follow one another along, `a` and `b` the two
/// in its plane, each (direction, mm). The plane is named by the patient axis
/// `step` is nearest (x: sagittal, y: coronal, z: axial); the in-plane axis
/// nearer the plane's screen-right direction runs along the rows and the
/// other down the columns, each turned to point the standard way, and the
/// images run in the reading order of stacks ([`reading_normal`]: superior,
/// right or anterior first), whose naming of the plane this follows.
fn standard_axes(
    step: (Vector3<f64>, f64),
    a: (Vector3<f64>, f64),
    b: (Vector3<f64>, f64),
) -> [(Vector3<f64>, f64); 3] {
    let (x, y, z) = (Vector3::x(), Vector3::y(), Vector3::z());
    let n = step.0.map(f64::abs);
    // (screen right, screen down) in patient LPS.
    let (right, down) = if n.z >= n.x && n.z >= n.y {
        (x, y) // axial: patient's left on screen right, posterior down
    } else if n.x >= n.y {
        (y, -z) // sagittal: posterior on screen right, feet down
    } else {
        (x, -z) // coronal: patient's left on screen right, feet down
    };
    let (row, col) = if a.0.dot(&right).abs() >= b.0.dot(&right).abs() {
        (a, b)
    } else {
        (b, a)
    };
    let toward = |(v, mm): (Vector3<f64>, f64), want: Vector3<f64>| {
        if v.dot(&want) < 0.0 {
            (-v, mm)
        } else {
            (v, mm)
        }
    };
    [
        toward(row, right),
        toward(col, down),
        (reading_normal(step.0), step.1),
    ]
}

/// A stack that can be reformatted.
#[derive(Debug, Clone)]
pub struct Source {
    pub columns: u32,
    pub rows: u32,
    pub slices: usize,
    /// Header of the slice highest along the images' normal (it becomes the top
    /// row), and
    /// its frame's attributes.
    pub last: ImageHeader,
    pub last_info: crate::dicom::header::FrameInfo,
    pub row_dir: Vector3<f64>,
    pub col_dir: Vector3<f64>,
    pub normal: Vector3<f64>,
    /// The display order runs against `normal` (the reading order put the
    /// highest slice first): the top row is then display slice 0.
    pub reversed: bool,
    /// Row spacing, column spacing and slice spacing, mm.
    pub rs: f64,
    pub cs: f64,
    pub spacing: f64,
    pub last_position: Vector3<f64>,
    pub plane: &'static str,
    /// Where the voxels lie in display order (see [`placement`]), and the
    /// real slice positions of an unevenly spaced stack.
    pub affine: nalgebra::Matrix4<f64>,
    pub slice_coords: Option<SliceCoords>,
    /// Evenly spaced and not tilted: every voxel of a plane at home is a
    /// voxel centre, so such images can be copied, not interpolated.
    pub regular: bool,
    /// What the reader should know of the stack's geometry (tilt, uneven
    /// spacing, gaps), for the planes' annotation.
    pub note: Option<String>,
    /// Each slice's Instance Number, in display order: the stack's own plane
    /// at home is those slices, and is numbered as they are.
    pub instance_numbers: Vec<Option<i64>>,
}

impl Source {
    /// Check that `set` can be reformatted; say why not otherwise.
    pub fn new(set: &DisplaySet, headers: &[ImageHeader]) -> Result<Source> {
        let no = |why: &str| Err(Error::Series(format!("MPR: {why}")));
        let Some(g) = set.geometry.as_ref() else {
            return no("the images have no Image Position/Orientation (Patient)");
        };
        if set.frames.len() < 3 {
            return no("a stack of at least 3 slices is needed");
        }
        // Tilted, unevenly spaced or gapped stacks are cut in patient space
        // (the placement's shear and slice positions); two images at one
        // place are two stacks.
        if g.issues
            .iter()
            .any(|i| matches!(i, GeometryIssue::Duplicate { .. }))
        {
            return no("two images at the same position: the series holds more than one stack");
        }
        let Some(sp) = g.spacing_mm.filter(|&s| s > 0.0) else {
            return no("the slice spacing is unknown");
        };
        let Some((affine, slice_coords)) = placement(set, headers) else {
            return no("the images have no position, orientation or pixel spacing");
        };
        // The top row of a reformat is the slice highest along the images' own
        // normal (row × column): the last of the stack, or the first when the
        // reading order runs the other way (axial stacks are read superior first).
        let own_normal = {
            let f = &headers[set.frames[0].instance];
            let o = f
                .frame(set.frames[0].frame)?
                .image_orientation
                .unwrap_or([1.0, 0.0, 0.0, 0.0, 1.0, 0.0]);
            Vector3::new(o[0], o[1], o[2]).cross(&Vector3::new(o[3], o[4], o[5]))
        };
        let reversed = own_normal.dot(&Vector3::new(g.normal[0], g.normal[1], g.normal[2])) < 0.0;
        let last_ref = if reversed {
            set.frames[0]
        } else {
            set.frames[set.frames.len() - 1]
        };
        let last = &headers[last_ref.instance];
        let px = last
            .pixel
            .as_ref()
            .ok_or_else(|| Error::Series("MPR: not an image".into()))?;
        if px.samples_per_pixel != 1
            || px.photometric == crate::dicom::header::Photometric::PaletteColor
        {
            return no("grayscale images only");
        }
        if last.modality_lut.is_some() {
            return no("images with a Modality LUT Sequence are not supported");
        }
        let info = last.frame(last_ref.frame)?;
        let rescale = info.rescale;
        for r in &set.frames {
            let h = &headers[r.instance];
            if h.frame(r.frame)?.rescale != rescale
                || h.pixel.as_ref().map(|p| (p.signed, p.rows, p.columns))
                    != Some((px.signed, px.rows, px.columns))
            {
                return no("the slices differ in pixel format or rescale");
            }
        }
        let (Some(pos), Some(o), Some(ps)) = (
            info.image_position,
            info.image_orientation,
            info.pixel_spacing,
        ) else {
            return no("the images have no position, orientation or pixel spacing");
        };
        let row_dir = Vector3::new(o[0], o[1], o[2]).normalize();
        let col_dir = Vector3::new(o[3], o[4], o[5]).normalize();
        let normal = if reversed {
            -Vector3::new(g.normal[0], g.normal[1], g.normal[2])
        } else {
            Vector3::new(g.normal[0], g.normal[1], g.normal[2])
        };
        let tilt = g.issues.iter().find_map(|i| match i {
            GeometryIssue::GantryTilt { degrees } => Some(*degrees),
            _ => None,
        });
        let mut notes: Vec<String> = g
            .issues
            .iter()
            .map(|i| match i {
                GeometryIssue::GantryTilt { degrees } => {
                    format!("gantry tilt {degrees:.1}°: cut in patient space")
                }
                GeometryIssue::UnevenSpacing { min_mm, max_mm } => format!(
                    "uneven slices ({min_mm:.2}–{max_mm:.2} mm): interpolated between their positions"
                ),
                other => format!("{other}: left empty"),
            })
            .collect();
        // A stack whose positions say more than its list of issues.
        if let (true, Some(sc)) = (notes.is_empty(), &slice_coords) {
            notes.push(
                match sc.coords.windows(2).position(|w| w[1] - w[0] > sc.gap_over) {
                    Some(k) => format!("gap after slice {}: left empty", k + 1),
                    None => "uneven slices: interpolated between their positions".into(),
                },
            );
        }
        let regular = tilt.is_none() && slice_coords.is_none();
        Ok(Source {
            // A multi-frame image's frames share one number.
            instance_numbers: if set.multiframe {
                Vec::new()
            } else {
                set.frames
                    .iter()
                    .map(|r| headers[r.instance].instance_number)
                    .collect()
            },
            affine,
            regular,
            slice_coords,
            note: (!notes.is_empty()).then(|| notes.join("; ")),
            columns: px.columns,
            rows: px.rows,
            slices: set.frames.len(),
            last: last.clone(),
            last_info: info.clone(),
            row_dir,
            col_dir,
            normal,
            reversed,
            rs: ps[0],
            cs: ps[1],
            // A regular stack's images follow the placement's step (the mean
            // from first to last), so the home grid lands on every slice; the
            // median may differ by a rounding and, over 2,000 slices, add an
            // image.
            spacing: if regular {
                let step = affine.fixed_view::<3, 1>(0, 2).norm();
                if step > 0.0 { step } else { sp }
            } else {
                sp
            },
            last_position: Vector3::new(pos[0], pos[1], pos[2]),
            plane: g.plane,
        })
    }

    /// How many reformatted images a plane has at home.
    pub fn count(&self, plane: Plane) -> usize {
        match plane {
            Plane::Along => self.slices,
            Plane::AcrossRows => self.rows as usize,
            Plane::AcrossColumns => self.columns as usize,
        }
    }

    /// Patient position (mm) of the centre of voxel (column, row, slice), the
    /// slice counted from the lowest along `normal`.
    pub fn patient_point(&self, column: f64, row: f64, slice: f64) -> Point3<f64> {
        // To display order, then to the slice coordinate of an uneven stack.
        let last = (self.slices - 1) as f64;
        let shown = if self.reversed { last - slice } else { slice };
        let t = match &self.slice_coords {
            Some(sc) => {
                let k = (shown.max(0.0) as usize).min(self.slices - 1);
                let f = shown - k as f64;
                let next = (k + 1).min(self.slices - 1);
                sc.coords[k] + (sc.coords[next] - sc.coords[k]) * f
            }
            None => shown,
        };
        let p = self.affine * nalgebra::Vector4::new(column, row, t, 1.0);
        Point3::new(p.x, p.y, p.z)
    }

    /// The crosshair MPR starts from: no rotation, the centre on the middle
    /// voxel.
    pub fn home(&self) -> Crosshair {
        Crosshair {
            centre: self.patient_point(
                (self.columns / 2) as f64,
                (self.rows / 2) as f64,
                (self.slices / 2) as f64,
            ),
            rotations: [Rotation3::identity(); 3],
        }
    }

    /// The centres of the volume's eight corner voxels.
    fn corners(&self) -> [Point3<f64>; 8] {
        let (c, r, s) = (
            (self.columns.max(1) - 1) as f64,
            (self.rows.max(1) - 1) as f64,
            (self.slices.max(1) - 1) as f64,
        );
        std::array::from_fn(|k| {
            self.patient_point(
                if k & 1 == 0 { 0.0 } else { c },
                if k & 2 == 0 { 0.0 } else { r },
                if k & 4 == 0 { 0.0 } else { s },
            )
        })
    }

    /// A plane's axes before rotation: along its rows, down its columns, from
    /// one image to the next, with the spacing of the stack axis each comes
    /// from: (direction, mm) three times. The stack's own plane keeps its
    /// axes and reading order (it is the acquired images). The two reformats
    /// are hung the way a reader expects their anatomical plane whatever the
    /// acquisition ([`standard_axes`]): an axial with anterior up and the
    /// patient's right on screen left, a coronal head up and right on screen
    /// left, a sagittal head up and anterior on screen left; read superior,
    /// anterior, right first.
    fn axes(&self, plane: Plane) -> [(Vector3<f64>, f64); 3] {
        let normal = (self.normal, self.spacing);
        let rows = (self.row_dir, self.cs);
        let columns = (self.col_dir, self.rs);
        match plane {
            Plane::Along => {
                let reading = if self.reversed {
                    -self.normal
                } else {
                    self.normal
                };
                [rows, columns, (reading, self.spacing)]
            }
            Plane::AcrossRows => standard_axes(columns, rows, normal),
            Plane::AcrossColumns => standard_axes(rows, columns, normal),
        }
    }

    /// The most images a plane can have at any rotation: the volume's
    /// diagonal over its step, and one either side.
    pub fn max_count(&self, plane: Plane) -> usize {
        let c = self.corners();
        let diagonal = (c[7] - c[0]).norm();
        let step = self.axes(plane)[2].1;
        (diagonal / step).ceil() as usize + 3
    }

    /// Where `plane`'s images lie for `crosshair`: its axes turned by the
    /// rotation, and, along each, whole steps from the centre that cover every
    /// voxel centre of the volume.
    pub fn layout(&self, plane: Plane, crosshair: &Crosshair) -> Layout {
        let [(u, su), (v, sv), (w, sw)] = self.axes(plane);
        let rotation = crosshair.rotations[plane.index()];
        let (u, v, w) = (rotation * u, rotation * v, rotation * w);
        let corners = self.corners();
        // Whole steps from the centre to the nearest and furthest corner along
        // an axis (a corner a rounding error beyond a step counts as on it).
        let range = |axis: &Vector3<f64>, step: f64| -> (i64, i64) {
            let (lo, hi) = corners.iter().fold((f64::MAX, f64::MIN), |(lo, hi), p| {
                let t = (p - crosshair.centre).dot(axis) / step;
                (lo.min(t), hi.max(t))
            });
            ((lo + 1e-6).floor() as i64, (hi - 1e-6).ceil() as i64)
        };
        let (i0, i1) = range(&u, su);
        let (j0, j1) = range(&v, sv);
        let (k0, k1) = range(&w, sw);
        Layout {
            plane,
            first: crosshair.centre
                + u * (i0 as f64 * su)
                + v * (j0 as f64 * sv)
                + w * (k0 as f64 * sw),
            row: u,
            down: v,
            step: w,
            spacing: [sv, su],
            step_mm: sw,
            columns: (i1 - i0 + 1).max(1) as u32,
            rows: (j1 - j0 + 1).max(1) as u32,
            count: (k1 - k0 + 1).max(1) as usize,
            at_centre: (-k0).max(0) as usize,
            oblique: rotation.angle() > 1e-9,
        }
    }

    /// A layout whose images are the acquired slices themselves: the stack's
    /// own plane at home, on a stack whose slices the home grid meets (not
    /// an uneven one, whose images are interpolated between them).
    fn is_acquired(&self, layout: &Layout) -> bool {
        layout.plane == Plane::Along
            && !layout.oblique
            && layout.count == self.slices
            && self.slice_coords.is_none()
    }

    /// The header of image `k` of a plane laid out by [`Source::layout`]: the
    /// last slice's, with the new geometry and size, a derived SOP Instance UID
    /// and a series description.
    pub fn plane_header(&self, layout: &Layout, k: usize) -> ImageHeader {
        let mut h = self.last.clone();
        let name = layout.plane.label(self.plane);
        let pos = layout.first + layout.step * (k as f64 * layout.step_mm);
        let (row, down) = (layout.row, layout.down);
        h.sop_instance_uid = format!("{}.mpr.{name}.{k}", self.last.sop_instance_uid);
        h.series_description = Some(format!(
            "MPR {}{name} ({})",
            if layout.oblique { "oblique " } else { "" },
            self.last.series_description.clone().unwrap_or_default()
        ));
        // The stack's own plane at home is the acquired slices: numbered as
        // they are (a reader quotes "image 201"); a reformat counts its own.
        h.instance_number = if self.is_acquired(layout) {
            self.instance_numbers
                .get(k)
                .copied()
                .flatten()
                .or(Some(k as i64 + 1))
        } else {
            Some(k as i64 + 1)
        };
        h.overlays.clear();
        h.shutter = None;
        if let Some(p) = h.pixel.as_mut() {
            p.rows = layout.rows;
            p.columns = layout.columns;
        }
        let mut info = self.last_info.clone();
        info.image_position = Some([pos.x, pos.y, pos.z]);
        info.image_orientation = Some([row.x, row.y, row.z, down.x, down.y, down.z]);
        info.pixel_spacing = Some(layout.spacing);
        // The acquired slices keep their own thickness (a 3 mm slice 4 mm
        // apart is still 3 mm thick); a reformat's is its sampling step.
        if !self.is_acquired(layout) || info.slice_thickness.is_none() {
            info.slice_thickness = Some(layout.step_mm);
        }
        h.frames = vec![info];
        h.calibration = crate::dicom::header::Calibration {
            spacing_mm: Some(layout.spacing),
            basis: h.calibration.basis,
        };
        h
    }

    /// The header of reformatted image `k` of `plane` at home (see
    /// [`Source::plane_header`]).
    pub fn header(&self, plane: Plane, k: usize) -> ImageHeader {
        self.plane_header(&self.layout(plane, &self.home()), k)
    }

    /// Reformatted image `k` at home from a volume of the stack's stored
    /// values (every pixel is a voxel centre): `voxel(x, y, z)` with z the
    /// slice's place in display order.
    pub fn image_of(
        &self,
        plane: Plane,
        k: usize,
        voxel: &dyn Fn(usize, usize, usize) -> i32,
    ) -> Vec<i32> {
        let w = self.columns as usize;
        self.image(plane, k, &|slice, i| voxel(i % w, i / w, slice))
    }

    /// Reformatted image `k` at home from the stack's stored values (nearest
    /// voxel: at home every pixel of a regular stack is a voxel centre):
    /// `sample(slice, i)` gives sample `i` (row-major) of slice `slice` in
    /// display order. Each pixel's voxel is found from the image's geometry
    /// (the inverse of the stack's placement), so this holds for any axes
    /// [`Source::axes`] hangs the plane by.
    pub fn image(&self, plane: Plane, k: usize, sample: &dyn Fn(usize, usize) -> i32) -> Vec<i32> {
        let l = self.layout(plane, &self.home());
        let n = (l.columns as usize) * (l.rows as usize);
        let Some(inverse) = self.affine.try_inverse() else {
            return vec![0; n];
        };
        // Voxel index space: (column, row, display slice).
        let to_index = |v: Vector3<f64>, w: f64| {
            let q = inverse * nalgebra::Vector4::new(v.x, v.y, v.z, w);
            Vector3::new(q.x, q.y, q.z)
        };
        let origin = to_index((l.first + l.step * (k as f64 * l.step_mm)).coords, 1.0);
        let across = to_index(l.row * l.spacing[1], 0.0);
        let down = to_index(l.down * l.spacing[0], 0.0);
        let (w, h, d) = (self.columns as i64, self.rows as i64, self.slices as i64);
        let mut out = Vec::with_capacity(n);
        for j in 0..l.rows {
            let line = origin + down * j as f64;
            for i in 0..l.columns {
                let v = line + across * i as f64;
                let (c, r, z) = (v.x.round() as i64, v.y.round() as i64, v.z.round() as i64);
                out.push(
                    if (0..w).contains(&c) && (0..h).contains(&r) && (0..d).contains(&z) {
                        sample(z as usize, (r * w + c) as usize)
                    } else {
                        0
                    },
                );
            }
        }
        out
    }

    /// Positions of the reformatted images at home along their normal (mm),
    /// and that normal.
    pub fn positions(&self, plane: Plane) -> (Vec<f64>, [f64; 3]) {
        self.layout(plane, &self.home()).positions()
    }
}

/// Where the three planes of an MPR meet, and how each is turned from the
/// stack's own axes (about that point), in [`Plane::ALL`]'s order.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Crosshair {
    /// Patient mm.
    pub centre: Point3<f64>,
    pub rotations: [Rotation3<f64>; 3],
}

impl Crosshair {
    /// What turning the crosshair on `plane`'s image does: the two other
    /// planes turned by `angle` radians about `axis` (right-handed; the
    /// image's normal) through the centre, `plane` itself as it was.
    pub fn turned_on(&self, plane: Plane, axis: &Vector3<f64>, angle: f64) -> Crosshair {
        let turn = Rotation3::from_axis_angle(&Unit::new_normalize(*axis), angle);
        let mut rotations = self.rotations;
        for (k, r) in rotations.iter_mut().enumerate() {
            if k != plane.index() {
                *r = turn * *r;
            }
        }
        Crosshair {
            centre: self.centre,
            rotations,
        }
    }
}

/// Where one plane's images lie (see [`Source::layout`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Layout {
    pub plane: Plane,
    /// Patient position of pixel (0, 0) of image 0.
    pub first: Point3<f64>,
    /// Along rows (increasing column), down columns, from one image to the next.
    pub row: Vector3<f64>,
    pub down: Vector3<f64>,
    pub step: Vector3<f64>,
    /// Pixel Spacing: between rows, between columns (mm).
    pub spacing: [f64; 2],
    pub step_mm: f64,
    pub columns: u32,
    pub rows: u32,
    pub count: usize,
    /// The image through the crosshair's centre.
    pub at_centre: usize,
    /// The crosshair is turned from the stack's axes.
    pub oblique: bool,
}

impl Layout {
    /// The images' positions along their orientation's normal (row × column),
    /// and that normal.
    pub fn positions(&self) -> (Vec<f64>, [f64; 3]) {
        let n = self.row.cross(&self.down);
        (
            (0..self.count)
                .map(|k| {
                    (self.first + self.step * (k as f64 * self.step_mm))
                        .coords
                        .dot(&n)
                })
                .collect(),
            [n.x, n.y, n.z],
        )
    }

    /// The image whose plane is nearest `p`.
    pub fn index_of(&self, p: &Point3<f64>) -> usize {
        let k = ((p - self.first).dot(&self.step) / self.step_mm).round();
        k.clamp(0.0, (self.count.max(1) - 1) as f64) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model;

    /// A 9 × 7 axial stack of 5 slices, 0.5 × 0.8 mm pixels, 2 mm apart.
    fn source() -> Source {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut spec = crate::synth::SeriesSpec::axial("mpr-unit", 5, 9, 2.0);
        spec.rows = 7;
        spec.pixel_spacing = [0.8, 0.5];
        crate::synth::write_series(dir.path(), &spec, |k, c, r| (k * 100 + r * 10 + c) as i32)
            .expect("series");
        let files = crate::scan::list_files(dir.path()).expect("list");
        let headers = crate::scan::scan_files(&files).headers;
        let patients = model::build(&headers);
        let set = &patients[0].studies[0].series[0].display_sets[0];
        Source::new(set, &headers).expect("source")
    }

    fn close(a: &Vector3<f64>, b: &Vector3<f64>) -> bool {
        (a - b).norm() < 1e-9
    }

    #[test]
    fn at_home_every_pixel_of_every_plane_is_a_voxel_centre() {
        let src = source();
        let home = src.home();
        for plane in Plane::ALL {
            let l = src.layout(plane, &home);
            assert_eq!(l.count, src.count(plane), "{plane:?}");
            for k in 0..l.count {
                for (i, j) in [(0, 0), (l.columns - 1, l.rows - 1), (3, 2)] {
                    let p = l.first
                        + l.step * (k as f64 * l.step_mm)
                        + l.row * (i as f64 * l.spacing[1])
                        + l.down * (j as f64 * l.spacing[0]);
                    // Back to voxel indices: whole numbers inside the volume.
                    let d = p - src.patient_point(0.0, 0.0, 0.0);
                    let v = [
                        d.dot(&src.row_dir) / src.cs,
                        d.dot(&src.col_dir) / src.rs,
                        d.dot(&src.normal) / src.spacing,
                    ];
                    let dims = [src.columns as f64, src.rows as f64, src.slices as f64];
                    for a in 0..3 {
                        assert!((v[a] - v[a].round()).abs() < 1e-9, "{plane:?} {k}: {v:?}");
                        assert!(v[a] > -0.5 && v[a] < dims[a] - 0.5, "{plane:?} {k}: {v:?}");
                    }
                }
            }
            // The image at the centre holds it.
            let c = l.first + l.step * (l.at_centre as f64 * l.step_mm);
            assert!(((home.centre - c).dot(&l.step)).abs() < 1e-9, "{plane:?}");
        }
        // The stack's own plane at home is the stack: columns × rows, the
        // acquired pixel spacing.
        let along = src.layout(Plane::Along, &home);
        assert_eq!((along.columns, along.rows), (9, 7));
        assert_eq!(along.spacing, [0.8, 0.5]);
    }

    #[test]
    fn a_turned_plane_still_covers_the_volume_and_goes_through_the_centre() {
        let src = source();
        let home = src.home();
        let turn = Rotation3::from_axis_angle(&Unit::new_normalize(src.normal), 0.6)
            * Rotation3::from_axis_angle(&Unit::new_normalize(src.row_dir), 0.3);
        let turned = Crosshair {
            centre: home.centre + src.row_dir * 0.37,
            rotations: [turn; 3],
        };
        for plane in Plane::ALL {
            let l = src.layout(plane, &turned);
            assert!(l.oblique);
            // Orthonormal axes.
            assert!((l.row.dot(&l.down)).abs() < 1e-12);
            assert!((l.row.cross(&l.down).dot(&l.step).abs() - 1.0).abs() < 1e-12);
            // Every voxel corner lies within the images' extent.
            for p in src.corners() {
                let d = p - l.first;
                let (i, j, k) = (
                    d.dot(&l.row) / l.spacing[1],
                    d.dot(&l.down) / l.spacing[0],
                    d.dot(&l.step) / l.step_mm,
                );
                assert!(
                    i > -1e-6 && i < (l.columns - 1) as f64 + 1e-6,
                    "{plane:?} column {i}"
                );
                assert!(
                    j > -1e-6 && j < (l.rows - 1) as f64 + 1e-6,
                    "{plane:?} row {j}"
                );
                assert!(
                    k > -1e-6 && k < (l.count - 1) as f64 + 1e-6,
                    "{plane:?} image {k}"
                );
            }
            assert!(l.count <= src.max_count(plane));
            assert_eq!(l.index_of(&turned.centre), l.at_centre);
            let c = l.first + l.step * (l.at_centre as f64 * l.step_mm);
            assert!(((turned.centre - c).dot(&l.step)).abs() < 1e-9, "{plane:?}");
        }
    }

    #[test]
    fn half_a_turn_about_the_vertical_swaps_the_sagittal_left_and_right() {
        let src = source();
        let home = src.home();
        let before = src.layout(Plane::AcrossColumns, &home);
        // Turned about the patient's long axis (the axial stack's normal).
        let turned = home.turned_on(Plane::Along, &src.normal, std::f64::consts::PI);
        assert_eq!(
            src.layout(Plane::Along, &turned),
            src.layout(Plane::Along, &home),
            "the plane turned on stays"
        );
        let after = src.layout(Plane::AcrossColumns, &turned);
        assert!(
            close(&after.row, &-before.row),
            "its rows run the other way"
        );
        assert!(close(&after.down, &before.down), "still head up");
        let h = src.plane_header(&after, after.at_centre);
        let o = h.frames[0].image_orientation.expect("orientation");
        let plane =
            crate::imaging::geometry::ImagePlane::new([0.0; 3], o, [1.0, 1.0]).expect("plane");
        let labels = plane.edge_labels();
        let home_plane = crate::imaging::geometry::ImagePlane::new(
            [0.0; 3],
            src.plane_header(&before, 0).frames[0]
                .image_orientation
                .expect("orientation"),
            [1.0, 1.0],
        )
        .expect("plane");
        let home_labels = home_plane.edge_labels();
        assert_eq!(labels.left, home_labels.right);
        assert_eq!(labels.right, home_labels.left);
        assert_eq!(labels.top, home_labels.top);
    }
}
