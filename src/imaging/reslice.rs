//! The CPU reslicer, the reference every GPU volume path is tested against: a
//! plane given the DICOM way (the centre of its first pixel, its row and column
//! direction cosines, its pixel spacing, columns × rows) sampled from a volume in
//! patient coordinates — trilinear interpolation of modality values, or nearest
//! voxel — with a padding value outside the volume; and thick slabs along the
//! plane's normal (MIP, MinIP, average) for a thickness in millimetres, sampled
//! at no more than half the volume's voxel spacing along that normal (half the
//! slice spacing for slabs parallel to the slices), so thin features are not
//! stepped over, and a slab's thickness is what its annotation says.
//!
//! The volume is seen through [`Voxels`] (dimensions, the patient-from-voxel
//! affine, a modality value per voxel; optionally the stored values and their
//! rescale, which a loop specialised for i16/u16 then interpolates directly), so
//! this module reads no file; rows are computed in parallel (rayon), each
//! pixel's slab line after its neighbour's, so the voxels read are still in cache. Samples outside
//! the volume (or in a gap between slices) do not count toward a slab; a pixel
//! with none inside is padding.

use nalgebra::{Matrix4, Point3, Vector3, Vector4};
use rayon::prelude::*;

use super::geometry::ImagePlane;

/// What the reslicer needs of a volume.
pub trait Voxels: Sync {
    /// Columns, rows, slices (x fastest).
    fn dims(&self) -> [usize; 3];
    /// Voxel index (x, y, z, 1) → patient mm (LPS).
    fn patient_from_voxel(&self) -> Matrix4<f64>;
    /// Modality value (after Rescale) of voxel (x, y, z).
    fn modality(&self, x: usize, y: usize, z: usize) -> f64;
    /// Where the slices really are, for stacks that are not evenly spaced: the
    /// affine's third column is then the mean step, and slice `k` lies at slice
    /// coordinate `coords[k]` (0 for the first, n − 1 for the last, increasing).
    /// `None`: slice `k` is at `k`.
    fn slice_coords(&self) -> Option<&SliceCoords> {
        None
    }
    /// The voxels as stored, with the rescale that makes them modality values
    /// (slope, intercept), when the volume holds them so: the reslicer then
    /// interpolates stored values directly (rescale is linear, so the result is
    /// the same) in a loop specialised for the type.
    fn stored(&self) -> Option<(Stored<'_>, f64, f64)> {
        None
    }
}

/// Stored voxel values, x fastest.
#[derive(Debug, Clone, Copy)]
pub enum Stored<'a> {
    I16(&'a [i16]),
    U16(&'a [u16]),
}

/// The real positions of an unevenly spaced stack, in units of its mean step
/// (see [`Voxels::slice_coords`]), and the spacing beyond which two neighbours
/// have slices missing between them: a sample there is padding, never a blend
/// of images a gap apart.
#[derive(Debug, Clone, PartialEq)]
pub struct SliceCoords {
    pub coords: Vec<f64>,
    /// Neighbours further apart than this (same units) have a gap between them.
    pub gap_over: f64,
}

impl SliceCoords {
    /// From the slices' positions along the stack (mm, increasing or
    /// decreasing, as the stack is ordered) and its typical spacing: `None`
    /// when the stack is evenly spaced (within 1 % of a step), so the affine
    /// alone places it.
    pub fn from_positions(positions_mm: &[f64], typical_mm: f64) -> Option<SliceCoords> {
        let n = positions_mm.len();
        if n < 3 {
            return None;
        }
        let span = positions_mm[n - 1] - positions_mm[0];
        if span == 0.0 || !span.is_finite() {
            return None;
        }
        let step = span / (n - 1) as f64;
        let coords: Vec<f64> = positions_mm
            .iter()
            .map(|p| (p - positions_mm[0]) / step)
            .collect();
        let even = coords
            .iter()
            .enumerate()
            .all(|(k, c)| (c - k as f64).abs() < 0.01);
        if even || coords.windows(2).any(|w| w[1] <= w[0]) {
            return None;
        }
        Some(SliceCoords {
            coords,
            gap_over: 1.5 * typical_mm.abs() / step.abs(),
        })
    }

    /// The fractional slice index of slice coordinate `t`; `None` in a gap.
    /// Between the outer slices' centres and half a neighbour's distance
    /// beyond, the edge slice is used.
    pub(crate) fn index(&self, t: f64) -> Option<f64> {
        let c = &self.coords;
        let n = c.len();
        if t <= c[0] {
            return (c[0] - t <= (c[1] - c[0]) / 2.0).then_some(0.0);
        }
        if t >= c[n - 1] {
            return (t - c[n - 1] <= (c[n - 1] - c[n - 2]) / 2.0).then_some((n - 1) as f64);
        }
        let k = c.partition_point(|&x| x <= t).clamp(1, n - 1) - 1;
        let d = c[k + 1] - c[k];
        if d > self.gap_over {
            // Each side of a gap keeps its own slice for half a typical
            // spacing; the rest of the gap is empty.
            let half = self.gap_over / 1.5 / 2.0;
            return if t - c[k] <= half {
                Some(k as f64)
            } else if c[k + 1] - t <= half {
                Some((k + 1) as f64)
            } else {
                None
            };
        }
        Some(k as f64 + (t - c[k]) / d)
    }
}

/// How a point between voxel centres gets its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interpolation {
    Nearest,
    Trilinear,
}

/// How the samples across a slab's thickness become one value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlabMode {
    /// Maximum intensity projection.
    Mip,
    /// Minimum intensity projection (airways).
    MinIp,
    /// Average intensity.
    Average,
}

impl SlabMode {
    /// As the annotation names it: "MIP", "MinIP", "AvgIP".
    pub fn label(self) -> &'static str {
        match self {
            SlabMode::Mip => "MIP",
            SlabMode::MinIp => "MinIP",
            SlabMode::Average => "AvgIP",
        }
    }
}

/// A thick slab centred on the plane.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Slab {
    pub thickness_mm: f64,
    pub mode: SlabMode,
}

impl Slab {
    /// As the annotation shows it: "MIP 10.0 mm".
    pub fn label(&self) -> String {
        format!("{} {} mm", self.mode.label(), format_mm(self.thickness_mm))
    }
}

/// Millimetres as the annotation shows them: "0.7", "10.0", "0.625".
pub fn format_mm(v: f64) -> String {
    let s = format!("{v:.3}");
    let t = s.trim_end_matches('0');
    if t.ends_with('.') {
        format!("{t}0")
    } else {
        t.to_string()
    }
}

/// A plane to sample: its geometry and size.
#[derive(Debug, Clone, PartialEq)]
pub struct PlaneSpec {
    pub plane: ImagePlane,
    pub columns: usize,
    pub rows: usize,
}

impl PlaneSpec {
    /// The plane of an image's first frame (Image Position/Orientation, Pixel
    /// Spacing, Columns × Rows), when its header has them.
    pub fn of_image(header: &crate::dicom::ImageHeader) -> Option<PlaneSpec> {
        let info = header.frames.first()?;
        let (p, o) = (info.image_position?, info.image_orientation?);
        let px = header.pixel.as_ref()?;
        Some(PlaneSpec {
            plane: ImagePlane {
                position: Point3::new(p[0], p[1], p[2]),
                row_dir: Vector3::new(o[0], o[1], o[2]),
                col_dir: Vector3::new(o[3], o[4], o[5]),
                spacing_mm: info.pixel_spacing?,
            },
            columns: px.columns as usize,
            rows: px.rows as usize,
        })
    }

    /// Patient position (mm) of the centre of pixel (column `i`, row `j`).
    pub fn point(&self, i: f64, j: f64) -> Point3<f64> {
        let p = &self.plane;
        p.position + p.row_dir * (i * p.spacing_mm[1]) + p.col_dir * (j * p.spacing_mm[0])
    }

    /// The unit normal (row × column), the direction slabs extend along.
    pub fn normal(&self) -> Vector3<f64> {
        self.plane.row_dir.cross(&self.plane.col_dir).normalize()
    }
}

/// Options of a reslice.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Options {
    pub interpolation: Interpolation,
    pub slab: Option<Slab>,
    /// The value of a sample outside the volume.
    pub padding: f64,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            interpolation: Interpolation::Trilinear,
            slab: None,
            padding: -1024.0,
        }
    }
}

/// Why a plane cannot be sampled.
#[derive(Debug, Clone, PartialEq)]
pub enum ResliceError {
    /// The volume's affine has no inverse (degenerate geometry).
    Singular,
    /// An empty volume, or a plane of no pixels.
    Empty,
    /// A slab thickness that is not a positive finite number of millimetres.
    BadSlab(f64),
}

impl std::fmt::Display for ResliceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ResliceError::Singular => write!(f, "the volume's geometry is degenerate"),
            ResliceError::Empty => write!(f, "nothing to sample (an empty volume or plane)"),
            ResliceError::BadSlab(t) => write!(f, "slab thickness {t} mm is not positive"),
        }
    }
}

/// The spacing between samples across a slab along `normal` (unit): half the
/// volume's sampling distance in that direction (half the slice spacing for a
/// slab along the slices' normal, half the pixel spacing across them), so thin
/// features are not stepped over. An unevenly spaced stack counts its closest
/// slices.
pub fn slab_step(vol: &dyn Voxels, normal: &Vector3<f64>) -> f64 {
    let m = vol.patient_from_voxel();
    let Some(inv) = m.try_inverse() else {
        return 0.5;
    };
    let mut v = inv * Vector4::new(normal.x, normal.y, normal.z, 0.0);
    if let Some(sc) = vol.slice_coords() {
        let closest = sc
            .coords
            .windows(2)
            .map(|w| w[1] - w[0])
            .fold(f64::INFINITY, f64::min);
        if closest > 0.0 && closest.is_finite() {
            v.z /= closest;
        }
    }
    let per_mm = Vector3::new(v.x, v.y, v.z).norm();
    if per_mm.is_finite() && per_mm > 0.0 {
        0.5 / per_mm
    } else {
        0.5
    }
}

/// The volume's finest voxel spacing (mm): the default pixel size of planes.
fn finest_spacing(vol: &dyn Voxels) -> f64 {
    let m = vol.patient_from_voxel();
    let finest = (0..3)
        .map(|c| Vector3::new(m[(0, c)], m[(1, c)], m[(2, c)]).norm())
        .filter(|s| *s > 0.0)
        .fold(f64::INFINITY, f64::min);
    if finest.is_finite() { finest } else { 1.0 }
}

/// The offsets (mm, along the normal) a slab of `thickness` is sampled at:
/// evenly from −thickness/2 to +thickness/2, both ends included, `step` or closer.
pub fn slab_offsets(thickness: f64, step: f64) -> Vec<f64> {
    let n = (thickness / step).ceil().max(1.0) as usize;
    (0..=n)
        .map(|k| -thickness / 2.0 + thickness * k as f64 / n as f64)
        .collect()
}

/// The voxel axis a slab runs along when the plane lies in the volume's grid:
/// its normal along that axis alone and the plane at one coordinate on it
/// (an axial slab of an axial stack, a sagittal one across its columns).
fn grid_axis(di: Vector3<f64>, dj: Vector3<f64>, dn: Vector3<f64>) -> Option<usize> {
    let tiny = |x: f64| x.abs() < 1e-9;
    (0..3).find(|&a| {
        !tiny(dn[a]) && tiny(di[a]) && tiny(dj[a]) && (0..3).all(|b| b == a || tiny(dn[b]))
    })
}

/// Offsets (mm) of a slab along a grid axis: at every voxel centre the slab
/// contains and half-way between neighbours (so no gap exceeds half a
/// spacing), and at both faces. A bright voxel inside the slab is sampled at
/// its own value, as a MIP must show it. `at` is the plane's coordinate on the
/// axis (voxel units), `per_mm` the axis coordinate's change per mm along the
/// normal, `centres` the voxel centres' coordinates, increasing.
fn aligned_offsets(thickness: f64, at: f64, per_mm: f64, centres: &[f64]) -> Vec<f64> {
    let half = thickness / 2.0;
    let mut points: Vec<f64> = centres.to_vec();
    points.extend(centres.windows(2).map(|w| (w[0] + w[1]) / 2.0));
    let mut offsets: Vec<f64> = points
        .iter()
        .map(|c| (c - at) / per_mm)
        .filter(|o| o.abs() <= half + 1e-9)
        .map(|o| o.clamp(-half, half))
        .chain([-half, half])
        .collect();
    offsets.sort_by(f64::total_cmp);
    offsets.dedup_by(|a, b| (*a - *b).abs() < 1e-9);
    offsets
}

/// Where the samples of a plane lie in voxel space: what [`reslice`] walks,
/// and what a GPU path must walk to agree with it.
#[derive(Debug, Clone, PartialEq)]
pub struct Sampling {
    /// Voxel coordinates (voxel centres at integers) of pixel (0, 0)'s centre.
    pub origin: Vector3<f64>,
    /// Their change per column, per row, and per mm along the plane's normal.
    pub di: Vector3<f64>,
    pub dj: Vector3<f64>,
    pub dn: Vector3<f64>,
    /// Offsets along the normal (mm) each pixel takes its samples at: `[0]`
    /// for a thin plane.
    pub offsets: Vec<f64>,
}

/// How `spec` is sampled from `vol` under `opts` (see [`Sampling`]).
pub fn sampling(
    vol: &dyn Voxels,
    spec: &PlaneSpec,
    opts: &Options,
) -> Result<Sampling, ResliceError> {
    let dims = vol.dims();
    if dims.contains(&0) || spec.columns == 0 || spec.rows == 0 {
        return Err(ResliceError::Empty);
    }
    let inv = vol
        .patient_from_voxel()
        .try_inverse()
        .ok_or(ResliceError::Singular)?;
    let thickness = match opts.slab {
        None => None,
        Some(s) if s.thickness_mm.is_finite() && s.thickness_mm > 0.0 => Some(s.thickness_mm),
        Some(s) => return Err(ResliceError::BadSlab(s.thickness_mm)),
    };
    let normal = spec.normal();
    // Voxel coordinates move linearly with the pixel indices and the offset.
    let to_voxel = |p: Point3<f64>| -> Vector3<f64> {
        let v = inv * Vector4::new(p.x, p.y, p.z, 1.0);
        Vector3::new(v.x, v.y, v.z)
    };
    let origin = to_voxel(spec.point(0.0, 0.0));
    let di = to_voxel(spec.point(1.0, 0.0)) - origin;
    let dj = to_voxel(spec.point(0.0, 1.0)) - origin;
    let dn = to_voxel(spec.point(0.0, 0.0) + normal) - origin;
    let offsets = match thickness {
        None => vec![0.0],
        Some(t) => {
            let step = slab_step(vol, &normal);
            match grid_axis(di, dj, dn) {
                Some(a) => {
                    let centres: Vec<f64> = match (a, vol.slice_coords()) {
                        (2, Some(sc)) => sc.coords.clone(),
                        _ => (0..dims[a]).map(|k| k as f64).collect(),
                    };
                    aligned_offsets(t, origin[a], dn[a], &centres)
                }
                None => slab_offsets(t, step),
            }
        }
    };
    Ok(Sampling {
        origin,
        di,
        dj,
        dn,
        offsets,
    })
}

/// Sample `spec` from `vol`: `rows × columns` modality values, row-major.
pub fn reslice(
    vol: &dyn Voxels,
    spec: &PlaneSpec,
    opts: &Options,
) -> Result<Vec<f64>, ResliceError> {
    let dims = vol.dims();
    let Sampling {
        origin,
        di,
        dj,
        dn,
        offsets,
    } = sampling(vol, spec, opts)?;
    let walk = Walk {
        origin,
        di,
        dj,
        dn,
        dims,
        offsets,
        mode: opts.slab.map(|s| s.mode),
        interpolation: opts.interpolation,
        coords: vol.slice_coords(),
    };
    let mut out = vec![0.0; spec.columns * spec.rows];
    match vol.stored() {
        Some((data, slope, intercept)) if slope != 0.0 && slope.is_finite() => {
            // In stored units a negative slope turns maxima into minima.
            let walk = Walk {
                mode: match walk.mode {
                    Some(SlabMode::Mip) if slope < 0.0 => Some(SlabMode::MinIp),
                    Some(SlabMode::MinIp) if slope < 0.0 => Some(SlabMode::Mip),
                    m => m,
                },
                ..walk
            };
            let modality = |v: f64| {
                if v.is_nan() {
                    opts.padding
                } else {
                    v * slope + intercept
                }
            };
            match data {
                Stored::I16(d) => walk.run(&mut out, spec.columns, &|i| d[i] as f64),
                Stored::U16(d) => walk.run(&mut out, spec.columns, &|i| d[i] as f64),
            }
            out.par_iter_mut().for_each(|v| *v = modality(*v));
        }
        _ => {
            let (nx, ny) = (dims[0], dims[1]);
            walk.run(&mut out, spec.columns, &|i| {
                vol.modality(i % nx, (i / nx) % ny, i / (nx * ny))
            });
            out.par_iter_mut().for_each(|v| {
                if v.is_nan() {
                    *v = opts.padding
                }
            });
        }
    }
    Ok(out)
}

/// How the samples of a plane walk through voxel space.
struct Walk<'a> {
    /// Voxel coordinates of pixel (0, 0), and their step per column, per row
    /// and per mm along the normal.
    origin: Vector3<f64>,
    di: Vector3<f64>,
    dj: Vector3<f64>,
    dn: Vector3<f64>,
    dims: [usize; 3],
    /// Offsets along the normal (mm) a pixel's value is taken from.
    offsets: Vec<f64>,
    mode: Option<SlabMode>,
    interpolation: Interpolation,
    coords: Option<&'a SliceCoords>,
}

impl Walk<'_> {
    /// Fill `out` (rows of `columns`) with each pixel's value from `voxel`
    /// (the value of the voxel at a linear index, x fastest);
    /// NaN where no sample is inside the volume. Samples outside do not count
    /// toward a slab's maximum, minimum or average.
    fn run<F>(&self, out: &mut [f64], columns: usize, voxel: &F)
    where
        F: Fn(usize) -> f64 + Sync,
    {
        let init = match self.mode {
            Some(SlabMode::Mip) => f64::NEG_INFINITY,
            Some(SlabMode::MinIp) => f64::INFINITY,
            _ => 0.0,
        };
        // Each pixel walks its line along the normal; the next pixel's line
        // reads nearly the same voxels, still in cache.
        let steps: Vec<Vector3<f64>> = self.offsets.iter().map(|&o| self.dn * o).collect();
        out.par_chunks_mut(columns)
            .enumerate()
            .for_each(|(j, row)| {
                let row0 = self.origin + self.dj * j as f64;
                for (i, px) in row.iter_mut().enumerate() {
                    let base = row0 + self.di * i as f64;
                    let (mut acc, mut count) = (init, 0u32);
                    // A line whose ends lie between the outer voxel centres lies
                    // there whole (the volume is convex): no edge handling inside.
                    let interior = self.coords.is_none()
                        && self.interpolation == Interpolation::Trilinear
                        && self.interior(base + steps[0])
                        && self.interior(base + steps[steps.len() - 1]);
                    if interior {
                        let line = steps
                            .iter()
                            .map(|step| self.trilinear_interior(voxel, base + step));
                        *px = match self.mode {
                            Some(SlabMode::Mip) => line.fold(f64::NEG_INFINITY, f64::max),
                            Some(SlabMode::MinIp) => line.fold(f64::INFINITY, f64::min),
                            _ => line.sum::<f64>() / steps.len() as f64,
                        };
                        continue;
                    }
                    for step in &steps {
                        let v = self.sample(voxel, base + step);
                        if v.is_nan() {
                            continue;
                        }
                        count += 1;
                        acc = match self.mode {
                            Some(SlabMode::Mip) => acc.max(v),
                            Some(SlabMode::MinIp) => acc.min(v),
                            _ => acc + v,
                        };
                    }
                    *px = match (count, self.mode) {
                        (0, _) => f64::NAN,
                        (_, Some(SlabMode::Mip | SlabMode::MinIp)) => acc,
                        (n, _) => acc / n as f64,
                    };
                }
            });
    }

    /// Whether `v` lies where every trilinear neighbour exists: from the first
    /// voxel centre to just before the last, on each axis.
    #[inline(always)]
    fn interior(&self, v: Vector3<f64>) -> bool {
        (0..3).all(|a| v[a] >= 0.0 && v[a] < (self.dims[a] - 1) as f64)
    }

    /// Trilinear interpolation at an interior point (see [`Walk::interior`]).
    #[inline(always)]
    fn trilinear_interior<F>(&self, voxel: &F, v: Vector3<f64>) -> f64
    where
        F: Fn(usize) -> f64,
    {
        let (nx, nxy) = (self.dims[0], self.dims[0] * self.dims[1]);
        let (x0, y0, z0) = (v.x as usize, v.y as usize, v.z as usize);
        let (fx, fy, fz) = (v.x - x0 as f64, v.y - y0 as f64, v.z - z0 as f64);
        let i = x0 + nx * y0 + nxy * z0;
        let lerp = |a: f64, b: f64, t: f64| a + (b - a) * t;
        let c00 = lerp(voxel(i), voxel(i + 1), fx);
        let c10 = lerp(voxel(i + nx), voxel(i + nx + 1), fx);
        let c01 = lerp(voxel(i + nxy), voxel(i + nxy + 1), fx);
        let c11 = lerp(voxel(i + nxy + nx), voxel(i + nxy + nx + 1), fx);
        lerp(lerp(c00, c10, fy), lerp(c01, c11, fy), fz)
    }

    /// The value at voxel coordinates `v` (voxel centres at integers); NaN
    /// outside the volume or in a gap between slices.
    #[inline(always)]
    fn sample<F>(&self, voxel: &F, mut v: Vector3<f64>) -> f64
    where
        F: Fn(usize) -> f64,
    {
        let dims = self.dims;
        if let Some(sc) = self.coords {
            match sc.index(v.z) {
                Some(z) => v.z = z,
                None => return f64::NAN,
            }
        }
        // Half a voxel beyond the outer centres still belongs to the volume
        // (its edge voxels' extent); beyond that is outside.
        let inside = (0..3).all(|a| v[a] >= -0.5 && v[a] <= dims[a] as f64 - 0.5);
        if !inside {
            return f64::NAN;
        }
        let clamp = |x: f64, n: usize| x.clamp(0.0, (n - 1) as f64);
        let (x, y, z) = (
            clamp(v.x, dims[0]),
            clamp(v.y, dims[1]),
            clamp(v.z, dims[2]),
        );
        // Non-negative here, so truncation is floor (and +0.5 rounds): no
        // libm call per sample on targets without SSE4.1.
        let (nx, nxy) = (dims[0], dims[0] * dims[1]);
        match self.interpolation {
            Interpolation::Nearest => {
                let (x, y, z) = ((x + 0.5) as usize, (y + 0.5) as usize, (z + 0.5) as usize);
                voxel(x.min(dims[0] - 1) + nx * y.min(dims[1] - 1) + nxy * z.min(dims[2] - 1))
            }
            Interpolation::Trilinear => {
                let (x0, y0, z0) = (x as usize, y as usize, z as usize);
                let i = x0 + nx * y0 + nxy * z0;
                // Steps to the next voxel along x, y, z (0 at the last one).
                let sx = usize::from(x0 + 1 < dims[0]);
                let sy = if y0 + 1 < dims[1] { nx } else { 0 };
                let sz = if z0 + 1 < dims[2] { nxy } else { 0 };
                let (fx, fy, fz) = (x - x0 as f64, y - y0 as f64, z - z0 as f64);
                let lerp = |a: f64, b: f64, t: f64| a + (b - a) * t;
                let c00 = lerp(voxel(i), voxel(i + sx), fx);
                let c10 = lerp(voxel(i + sy), voxel(i + sy + sx), fx);
                let c01 = lerp(voxel(i + sz), voxel(i + sz + sx), fx);
                let c11 = lerp(voxel(i + sz + sy), voxel(i + sz + sy + sx), fx);
                lerp(lerp(c00, c10, fy), lerp(c01, c11, fy), fz)
            }
        }
    }
}

/// The named planes of a volume.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Named {
    Axial,
    Coronal,
    Sagittal,
}

/// A named plane through the volume's centre, covering its whole extent, with
/// square pixels at the volume's finest spacing along the plane's two directions. Axial is seen from the feet
/// (rows to the patient's left, columns posterior), coronal from the front
/// (left, then inferior), sagittal from the left (posterior, then inferior), as
/// DICOM viewers show them.
pub fn named_plane(vol: &dyn Voxels, which: Named) -> PlaneSpec {
    // (row direction, column direction) in LPS.
    let (row, col) = match which {
        Named::Axial => (Vector3::x(), Vector3::y()),
        Named::Coronal => (Vector3::x(), -Vector3::z()),
        Named::Sagittal => (Vector3::y(), -Vector3::z()),
    };
    centred_plane(vol, row, col, None, None)
}

/// The plane of row direction `row` and column direction `col` (unit, at right
/// angles) through the volume's centre: `spacing` mm pixels (default: square, at
/// the volume's finest sampling distance along `row` or `col`) and `size` columns × rows (default: enough to
/// cover the volume's extent along each direction).
pub fn centred_plane(
    vol: &dyn Voxels,
    row: Vector3<f64>,
    col: Vector3<f64>,
    spacing: Option<f64>,
    size: Option<(usize, usize)>,
) -> PlaneSpec {
    let m = vol.patient_from_voxel();
    let d = vol.dims();
    let corner = |x: f64, y: f64, z: f64| {
        let v = m * Vector4::new(x, y, z, 1.0);
        Point3::new(v.x, v.y, v.z)
    };
    // The volume's voxel centres' corners, and their extent along a direction.
    let mut corners = Vec::with_capacity(8);
    for &x in &[0.0, d[0].saturating_sub(1) as f64] {
        for &y in &[0.0, d[1].saturating_sub(1) as f64] {
            for &z in &[0.0, d[2].saturating_sub(1) as f64] {
                corners.push(corner(x, y, z));
            }
        }
    }
    let centre = Point3::from(
        corners.iter().fold(Vector3::zeros(), |a, p| a + p.coords) / corners.len() as f64,
    );
    let extent = |dir: &Vector3<f64>| {
        let along: Vec<f64> = corners.iter().map(|p| p.coords.dot(dir)).collect();
        let lo = along.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = along.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        hi - lo
    };
    // The volume's sampling distance along a direction: 1 / (voxels per mm).
    let along = |dir: &Vector3<f64>| {
        m.try_inverse()
            .map(|inv| 1.0 / (inv * Vector4::new(dir.x, dir.y, dir.z, 0.0)).norm())
            .filter(|s| s.is_finite() && *s > 0.0)
    };
    let spacing = spacing
        .or_else(|| match (along(&row), along(&col)) {
            (Some(a), Some(b)) => Some(a.min(b)),
            _ => None,
        })
        .unwrap_or_else(|| finest_spacing(vol));
    let (columns, rows) = size.unwrap_or_else(|| {
        (
            (extent(&row) / spacing).round() as usize + 1,
            (extent(&col) / spacing).round() as usize + 1,
        )
    });
    let position = centre
        - row * (spacing * columns.saturating_sub(1) as f64 / 2.0)
        - col * (spacing * rows.saturating_sub(1) as f64 / 2.0);
    PlaneSpec {
        plane: ImagePlane {
            position,
            row_dir: row,
            col_dir: col,
            spacing_mm: [spacing, spacing],
        },
        columns,
        rows,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A volume in memory: its values from a function of the patient position.
    struct Phantom {
        dims: [usize; 3],
        m: Matrix4<f64>,
        values: Vec<f64>,
    }

    impl Phantom {
        fn new(dims: [usize; 3], m: Matrix4<f64>, f: impl Fn(Point3<f64>) -> f64) -> Phantom {
            let mut values = Vec::with_capacity(dims[0] * dims[1] * dims[2]);
            for z in 0..dims[2] {
                for y in 0..dims[1] {
                    for x in 0..dims[0] {
                        let v = m * Vector4::new(x as f64, y as f64, z as f64, 1.0);
                        values.push(f(Point3::new(v.x, v.y, v.z)));
                    }
                }
            }
            Phantom { dims, m, values }
        }
    }

    impl Voxels for Phantom {
        fn dims(&self) -> [usize; 3] {
            self.dims
        }
        fn patient_from_voxel(&self) -> Matrix4<f64> {
            self.m
        }
        fn modality(&self, x: usize, y: usize, z: usize) -> f64 {
            self.values[x + self.dims[0] * (y + self.dims[1] * z)]
        }
    }

    /// Anisotropic voxels (0.7 × 0.7 × 2.5 mm) of a gantry-tilted stack: the
    /// slices are sheared along y (15°), so voxel axes are not patient axes.
    fn tilted() -> Matrix4<f64> {
        let shear = 2.5 * 15f64.to_radians().tan();
        Matrix4::new(
            0.7, 0.0, 0.0, -40.0, //
            0.0, 0.7, shear, -30.0, //
            0.0, 0.0, 2.5, -50.0, //
            0.0, 0.0, 0.0, 1.0,
        )
    }

    fn unit(v: [f64; 3]) -> Vector3<f64> {
        Vector3::new(v[0], v[1], v[2]).normalize()
    }

    /// A double-oblique plane through the phantom's middle.
    fn oblique(columns: usize, rows: usize, spacing: f64) -> PlaneSpec {
        let row = unit([0.8, 0.5, 0.3]);
        let col = row
            .cross(&unit([0.1, -0.4, 0.9]))
            .normalize()
            .cross(&row)
            .normalize();
        PlaneSpec {
            plane: ImagePlane {
                position: Point3::new(-15.0, -10.0, -20.0),
                row_dir: row,
                col_dir: col,
                spacing_mm: [spacing, spacing],
            },
            columns,
            rows,
        }
    }

    #[test]
    fn trilinear_reproduces_a_linear_field_exactly_on_an_oblique_plane_of_a_tilted_stack() {
        // Trilinear interpolation is exact for a field linear in position.
        let f = |p: Point3<f64>| 3.0 * p.x - 2.0 * p.y + 0.5 * p.z + 100.0;
        let vol = Phantom::new([64, 64, 24], tilted(), f);
        let spec = oblique(20, 16, 0.9);
        let out = reslice(&vol, &spec, &Options::default()).expect("reslice");
        for j in 0..spec.rows {
            for i in 0..spec.columns {
                let want = f(spec.point(i as f64, j as f64));
                let got = out[j * spec.columns + i];
                assert!((got - want).abs() < 1e-6, "({i},{j}): {got} != {want}");
            }
        }
    }

    #[test]
    fn an_ellipsoid_cut_by_a_plane_shows_its_ellipse_within_half_a_pixel() {
        // Semi-axes 30, 20, 25 mm at the origin; the axial plane z = 10 cuts an
        // ellipse of semi-axes 30·√(1−(10/25)²) and 20·√(1−(10/25)²).
        let (a, b, c) = (30.0, 20.0, 25.0);
        let inside =
            move |p: Point3<f64>| (p.x / a).powi(2) + (p.y / b).powi(2) + (p.z / c).powi(2) <= 1.0;
        let m = Matrix4::new(
            0.5, 0.0, 0.0, -40.0, //
            0.0, 0.5, 0.0, -40.0, //
            0.0, 0.0, 0.5, -40.0, //
            0.0, 0.0, 0.0, 1.0,
        );
        let vol = Phantom::new([161, 161, 161], m, |p| if inside(p) { 1000.0 } else { 0.0 });
        let spacing = 0.5;
        let spec = PlaneSpec {
            plane: ImagePlane {
                position: Point3::new(-40.0, -40.0, 10.0),
                row_dir: Vector3::x(),
                col_dir: Vector3::y(),
                spacing_mm: [spacing, spacing],
            },
            columns: 161,
            rows: 161,
        };
        let opts = Options {
            padding: 0.0,
            ..Options::default()
        };
        let out = reslice(&vol, &spec, &opts).expect("reslice");
        let k = (1.0 - (10.0f64 / c).powi(2)).sqrt();
        let (ea, eb) = (a * k, b * k);
        // Along the x axis through the centre (row 80): the edge, half-way
        // between the last pixel outside and the first inside, is at ±ea within
        // half a pixel.
        let row = &out[80 * 161..81 * 161];
        let edge = row.iter().position(|&v| v >= 500.0).expect("edge") as f64 - 0.5;
        let x_edge = -40.0 + edge * spacing;
        assert!(
            (x_edge + ea).abs() <= spacing / 2.0 + 1e-9,
            "{x_edge} vs {}",
            -ea
        );
        // Along y (column 80).
        let col: Vec<f64> = (0..161).map(|j| out[j * 161 + 80]).collect();
        let edge = col.iter().position(|&v| v >= 500.0).expect("edge") as f64 - 0.5;
        let y_edge = -40.0 + edge * spacing;
        assert!(
            (y_edge + eb).abs() <= spacing / 2.0 + 1e-9,
            "{y_edge} vs {}",
            -eb
        );
    }

    #[test]
    fn a_slab_mip_finds_a_bright_line_a_thin_plane_misses_and_its_length_is_kept() {
        // A bright segment 40 mm long along x at y = 0, z = 4 mm: off the plane
        // z = 0 by more than two voxels (1.6 mm), inside a 10 mm slab.
        let m = Matrix4::new(
            1.0, 0.0, 0.0, -50.0, //
            0.0, 1.0, 0.0, -50.0, //
            0.0, 0.0, 1.6, -20.0, //
            0.0, 0.0, 0.0, 1.0,
        );
        let line = |p: Point3<f64>| {
            if p.y.abs() < 0.5 && (p.z - 4.0).abs() < 0.1 && (-20.0..=20.0).contains(&p.x) {
                2000.0
            } else {
                0.0
            }
        };
        let vol = Phantom::new([101, 101, 26], m, line);
        let spec = PlaneSpec {
            plane: ImagePlane {
                position: Point3::new(-50.0, -50.0, 0.0),
                row_dir: Vector3::x(),
                col_dir: Vector3::y(),
                spacing_mm: [1.0, 1.0],
            },
            columns: 101,
            rows: 101,
        };
        let thin = reslice(&vol, &spec, &Options::default()).expect("thin");
        assert!(
            thin.iter().all(|&v| v < 1.0),
            "the thin plane misses the line"
        );
        let mip = Options {
            slab: Some(Slab {
                thickness_mm: 10.0,
                mode: SlabMode::Mip,
            }),
            ..Options::default()
        };
        let out = reslice(&vol, &spec, &mip).expect("mip");
        let row = &out[50 * 101..51 * 101];
        let lit: Vec<usize> = (0..101).filter(|&i| row[i] > 1000.0).collect();
        assert_eq!(
            lit.len(),
            41,
            "40 mm at 1 mm pixels, ends included: {lit:?}"
        );
        assert!(
            (row[lit[0]] - 2000.0).abs() < 1e-6,
            "the MIP keeps the line's value: {}",
            row[lit[0]]
        );
        // A 4 mm slab does not reach it (4 mm away is beyond 2 mm).
        let narrow = Options {
            slab: Some(Slab {
                thickness_mm: 4.0,
                mode: SlabMode::Mip,
            }),
            ..Options::default()
        };
        let out = reslice(&vol, &spec, &narrow).expect("narrow");
        assert!(out.iter().all(|&v| v < 1.0), "a 4 mm slab stops at 2 mm");
    }

    #[test]
    fn minip_and_average_over_a_slab_of_known_values() {
        // Values = z in mm; a 10 mm slab centred at z = 0 averages to 0 and its
        // minimum is −5, on any plane parallel to the slices.
        let m = Matrix4::new(
            1.0, 0.0, 0.0, 0.0, //
            0.0, 1.0, 0.0, 0.0, //
            0.0, 0.0, 1.0, -20.0, //
            0.0, 0.0, 0.0, 1.0,
        );
        let vol = Phantom::new([8, 8, 41], m, |p| p.z);
        let spec = PlaneSpec {
            plane: ImagePlane {
                position: Point3::new(1.0, 1.0, 0.0),
                row_dir: Vector3::x(),
                col_dir: Vector3::y(),
                spacing_mm: [1.0, 1.0],
            },
            columns: 4,
            rows: 4,
        };
        let with = |mode| Options {
            slab: Some(Slab {
                thickness_mm: 10.0,
                mode,
            }),
            ..Options::default()
        };
        let min = reslice(&vol, &spec, &with(SlabMode::MinIp)).expect("minip");
        let avg = reslice(&vol, &spec, &with(SlabMode::Average)).expect("avg");
        let max = reslice(&vol, &spec, &with(SlabMode::Mip)).expect("mip");
        for k in 0..16 {
            assert!((min[k] + 5.0).abs() < 1e-9, "{}", min[k]);
            assert!(avg[k].abs() < 1e-9, "{}", avg[k]);
            assert!((max[k] - 5.0).abs() < 1e-9, "{}", max[k]);
        }
        // Sampled at half the spacing along the normal (0.5 mm here) or closer.
        let o = slab_offsets(10.0, slab_step(&vol, &spec.normal()));
        assert!(o.windows(2).all(|w| w[1] - w[0] <= 0.5 + 1e-12), "{o:?}");
        assert_eq!((o[0], o[o.len() - 1]), (-5.0, 5.0));
    }

    #[test]
    fn outside_the_volume_is_padding_and_nearest_takes_the_closest_voxel() {
        let m = Matrix4::identity();
        let vol = Phantom::new([4, 4, 4], m, |p| p.x + 10.0 * p.y + 100.0 * p.z);
        let spec = PlaneSpec {
            plane: ImagePlane {
                position: Point3::new(-2.0, 1.0, 2.0),
                row_dir: Vector3::x(),
                col_dir: Vector3::y(),
                spacing_mm: [1.0, 1.0],
            },
            columns: 8,
            rows: 1,
        };
        let opts = Options {
            interpolation: Interpolation::Nearest,
            padding: -7.0,
            ..Options::default()
        };
        let out = reslice(&vol, &spec, &opts).expect("reslice");
        // x = -2, -1 outside; 0..3 inside; 4, 5 outside.
        assert_eq!(out, [-7.0, -7.0, 210.0, 211.0, 212.0, 213.0, -7.0, -7.0]);
        let nudged = PlaneSpec {
            plane: ImagePlane {
                position: Point3::new(0.4, 1.6, 2.0),
                ..spec.plane
            },
            columns: 1,
            ..spec.clone()
        };
        assert_eq!(reslice(&vol, &nudged, &opts).expect("nearest"), [220.0]);
        assert_eq!(
            reslice(
                &vol,
                &spec,
                &Options {
                    slab: Some(Slab {
                        thickness_mm: 0.0,
                        mode: SlabMode::Mip
                    }),
                    ..opts
                }
            ),
            Err(ResliceError::BadSlab(0.0))
        );
    }

    #[test]
    fn named_planes_cover_the_volume_with_square_pixels_through_its_centre() {
        let m = Matrix4::new(
            0.8, 0.0, 0.0, -100.0, //
            0.0, 0.8, 0.0, -80.0, //
            0.0, 0.0, 2.0, -30.0, //
            0.0, 0.0, 0.0, 1.0,
        );
        let vol = Phantom::new([251, 201, 31], m, |_| 0.0);
        let ax = named_plane(&vol, Named::Axial);
        assert_eq!((ax.columns, ax.rows), (251, 201));
        assert_eq!(ax.plane.spacing_mm, [0.8, 0.8]);
        assert!((ax.point(125.0, 100.0) - Point3::new(0.0, 0.0, 0.0)).norm() < 1e-9);
        let cor = named_plane(&vol, Named::Coronal);
        // 60 mm of slices at 0.8 mm square pixels: 76 rows; columns to the left.
        assert_eq!((cor.columns, cor.rows), (251, 76));
        assert_eq!(cor.plane.row_dir, Vector3::x());
        assert_eq!(cor.plane.col_dir, -Vector3::z());
        let sag = named_plane(&vol, Named::Sagittal);
        assert_eq!((sag.columns, sag.rows), (201, 76));
        assert!(sag.normal().x.abs() > 0.999);
    }
}
