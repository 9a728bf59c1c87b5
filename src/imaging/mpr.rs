//! Multiplanar reformatting of a stack: the two planes orthogonal to it, one
//! image per source row (the "coronal" of an axial stack) and one per source
//! column (the "sagittal"), each with its own Image Position / Orientation and
//! Pixel Spacing so that annotations, orientation markers, reference lines and
//! measurements work on them as on acquired images. Reformatted images copy
//! stored values (nearest voxel, no interpolation) and need evenly spaced,
//! parallel slices of one grayscale pixel format and rescale.

use nalgebra::Vector3;

use crate::dicom::ImageHeader;
use crate::error::{Error, Result};
use crate::model::DisplaySet;

/// Which reformat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plane {
    /// One image per source row: columns × slices (coronal for an axial stack).
    AcrossRows,
    /// One image per source column: rows × slices (sagittal for an axial stack).
    AcrossColumns,
}

impl Plane {
    pub fn label(self, source_plane: &str) -> &'static str {
        match (source_plane, self) {
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
        if let Some(issue) = g.issues.first() {
            return Err(Error::Series(format!("MPR: {issue:?}")));
        }
        let (Some(sp), Some(lo), Some(hi)) = (g.spacing_mm, g.min_spacing_mm, g.max_spacing_mm)
        else {
            return no("the slice spacing is unknown");
        };
        if sp <= 0.0 || (hi - lo) > 0.01 * sp {
            return no("the slices are not evenly spaced");
        }
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
        Ok(Source {
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
            spacing: sp,
            last_position: Vector3::new(pos[0], pos[1], pos[2]),
            plane: g.plane,
        })
    }

    /// How many reformatted images a plane has.
    pub fn count(&self, plane: Plane) -> usize {
        match plane {
            Plane::AcrossRows => self.rows as usize,
            Plane::AcrossColumns => self.columns as usize,
        }
    }

    /// The header of reformatted image `k`: the last slice's, with the new
    /// geometry and size, a derived SOP Instance UID and a series description.
    pub fn header(&self, plane: Plane, k: usize) -> ImageHeader {
        let mut h = self.last.clone();
        let (row, pos, cols, col_spacing) = match plane {
            Plane::AcrossRows => (
                self.row_dir,
                self.last_position + self.col_dir * (k as f64 * self.rs),
                self.columns,
                self.cs,
            ),
            Plane::AcrossColumns => (
                self.col_dir,
                self.last_position + self.row_dir * (k as f64 * self.cs),
                self.rows,
                self.rs,
            ),
        };
        let down = -self.normal;
        let slab = match plane {
            Plane::AcrossRows => self.rs,
            Plane::AcrossColumns => self.cs,
        };
        let name = plane.label(self.plane);
        h.sop_instance_uid = format!("{}.mpr.{name}.{k}", self.last.sop_instance_uid);
        h.series_description = Some(format!(
            "MPR {name} ({})",
            self.last.series_description.clone().unwrap_or_default()
        ));
        h.instance_number = Some(k as i64 + 1);
        h.overlays.clear();
        h.shutter = None;
        if let Some(p) = h.pixel.as_mut() {
            p.rows = self.slices as u32;
            p.columns = cols;
        }
        let mut info = self.last_info.clone();
        info.image_position = Some([pos.x, pos.y, pos.z]);
        info.image_orientation = Some([row.x, row.y, row.z, down.x, down.y, down.z]);
        info.pixel_spacing = Some([self.spacing, col_spacing]);
        info.slice_thickness = Some(slab);
        h.frames = vec![info];
        h.calibration = crate::dicom::header::Calibration {
            spacing_mm: Some([self.spacing, col_spacing]),
            basis: h.calibration.basis,
        };
        h
    }

    /// Reformatted image `k` from the stack's stored values: `sample(slice, i)`
    /// gives sample `i` (row-major) of slice `slice` in display order.
    pub fn image(&self, plane: Plane, k: usize, sample: &dyn Fn(usize, usize) -> i32) -> Vec<i32> {
        let n = self.slices;
        let (w, cols) = (
            self.columns as usize,
            self.count(match plane {
                Plane::AcrossRows => Plane::AcrossColumns,
                Plane::AcrossColumns => Plane::AcrossRows,
            }),
        );
        let mut out = Vec::with_capacity(n * cols);
        for r in 0..n {
            let slice = if self.reversed { r } else { n - 1 - r };
            for c in 0..cols {
                let i = match plane {
                    Plane::AcrossRows => k * w + c,
                    Plane::AcrossColumns => c * w + k,
                };
                out.push(sample(slice, i));
            }
        }
        out
    }

    /// Positions of the reformatted images along their normal (mm).
    pub fn positions(&self, plane: Plane) -> (Vec<f64>, [f64; 3]) {
        let first = self.header(plane, 0);
        let f = &first.frames[0];
        let (Some(p), Some(o)) = (f.image_position, f.image_orientation) else {
            return (Vec::new(), [0.0, 0.0, 1.0]);
        };
        let n = Vector3::new(o[0], o[1], o[2]).cross(&Vector3::new(o[3], o[4], o[5]));
        let step = match plane {
            Plane::AcrossRows => self.col_dir * self.rs,
            Plane::AcrossColumns => self.row_dir * self.cs,
        };
        let p0 = Vector3::new(p[0], p[1], p[2]);
        (
            (0..self.count(plane))
                .map(|k| (p0 + step * k as f64).dot(&n))
                .collect(),
            [n.x, n.y, n.z],
        )
    }
}
