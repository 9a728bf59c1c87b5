//! The CPU reslicer, the reference every GPU volume path is tested against: a
//! plane given the DICOM way (the centre of its first pixel, its row and column
//! direction cosines, its pixel spacing, columns × rows) sampled from a volume in
//! patient coordinates — trilinear interpolation of modality values, or nearest
//! voxel — with a padding value outside the volume; and thick slabs along the
//! plane's normal (MIP, MinIP, average) for a thickness in millimetres, sampled
//! at no more than half the volume's finest spacing, so a slab's thickness is
//! what its annotation says.
//!
//! The volume is seen through [`Voxels`] (dimensions, the patient-from-voxel
//! affine, a modality value per voxel), so this module reads no file and knows
//! no storage format; rows are computed in parallel (rayon).

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
    fn index(&self, t: f64) -> Option<f64> {
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

/// A plane to sample: its geometry and size.
#[derive(Debug, Clone, PartialEq)]
pub struct PlaneSpec {
    pub plane: ImagePlane,
    pub columns: usize,
    pub rows: usize,
}

impl PlaneSpec {
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

/// The spacing between samples across a slab: no more than half the volume's
/// finest voxel spacing (so thin features are not stepped over).
pub fn slab_step(vol: &dyn Voxels) -> f64 {
    let m = vol.patient_from_voxel();
    let finest = (0..3)
        .map(|c| Vector3::new(m[(0, c)], m[(1, c)], m[(2, c)]).norm())
        .filter(|s| *s > 0.0)
        .fold(f64::INFINITY, f64::min);
    // An unevenly spaced stack's closest slices are closer than its mean step.
    let closest = vol.slice_coords().map_or(f64::INFINITY, |sc| {
        let step = Vector3::new(m[(0, 2)], m[(1, 2)], m[(2, 2)]).norm();
        sc.coords
            .windows(2)
            .map(|w| (w[1] - w[0]) * step)
            .fold(f64::INFINITY, f64::min)
    });
    let finest = finest.min(closest);
    if finest.is_finite() {
        finest / 2.0
    } else {
        0.5
    }
}

/// The offsets (mm, along the normal) a slab of `thickness` is sampled at:
/// evenly from −thickness/2 to +thickness/2, both ends included, `step` or closer.
pub fn slab_offsets(thickness: f64, step: f64) -> Vec<f64> {
    let n = (thickness / step).ceil().max(1.0) as usize;
    (0..=n)
        .map(|k| -thickness / 2.0 + thickness * k as f64 / n as f64)
        .collect()
}

/// Sample `spec` from `vol`: `rows × columns` modality values, row-major.
pub fn reslice(
    vol: &dyn Voxels,
    spec: &PlaneSpec,
    opts: &Options,
) -> Result<Vec<f64>, ResliceError> {
    let dims = vol.dims();
    if dims.contains(&0) || spec.columns == 0 || spec.rows == 0 {
        return Err(ResliceError::Empty);
    }
    let inv = vol
        .patient_from_voxel()
        .try_inverse()
        .ok_or(ResliceError::Singular)?;
    let offsets = match opts.slab {
        None => vec![0.0],
        Some(s) if s.thickness_mm.is_finite() && s.thickness_mm > 0.0 => {
            slab_offsets(s.thickness_mm, slab_step(vol))
        }
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
    let mut out = vec![0.0; spec.columns * spec.rows];
    out.par_chunks_mut(spec.columns)
        .enumerate()
        .for_each(|(j, row)| {
            for (i, px) in row.iter_mut().enumerate() {
                let base = origin + di * i as f64 + dj * j as f64;
                let mut acc = match opts.slab.map(|s| s.mode) {
                    Some(SlabMode::Mip) => f64::NEG_INFINITY,
                    Some(SlabMode::MinIp) => f64::INFINITY,
                    _ => 0.0,
                };
                for &o in &offsets {
                    let v = sample(vol, dims, base + dn * o, opts);
                    acc = match opts.slab.map(|s| s.mode) {
                        Some(SlabMode::Mip) => acc.max(v),
                        Some(SlabMode::MinIp) => acc.min(v),
                        _ => acc + v,
                    };
                }
                *px = match opts.slab.map(|s| s.mode) {
                    Some(SlabMode::Mip | SlabMode::MinIp) => acc,
                    _ => acc / offsets.len() as f64,
                };
            }
        });
    Ok(out)
}

/// The value at voxel coordinates `v` (voxel centres at integers).
fn sample(vol: &dyn Voxels, dims: [usize; 3], mut v: Vector3<f64>, opts: &Options) -> f64 {
    if let Some(sc) = vol.slice_coords() {
        match sc.index(v.z) {
            Some(z) => v.z = z,
            None => return opts.padding,
        }
    }
    // Half a voxel beyond the outer centres still belongs to the volume (its
    // edge voxels' extent); beyond that is padding.
    let inside = (0..3).all(|a| v[a] >= -0.5 && v[a] <= dims[a] as f64 - 0.5);
    if !inside {
        return opts.padding;
    }
    let clamp = |x: f64, n: usize| x.clamp(0.0, (n - 1) as f64);
    let (x, y, z) = (
        clamp(v.x, dims[0]),
        clamp(v.y, dims[1]),
        clamp(v.z, dims[2]),
    );
    match opts.interpolation {
        Interpolation::Nearest => {
            vol.modality(x.round() as usize, y.round() as usize, z.round() as usize)
        }
        Interpolation::Trilinear => {
            let (x0, y0, z0) = (x.floor() as usize, y.floor() as usize, z.floor() as usize);
            let (x1, y1, z1) = (
                (x0 + 1).min(dims[0] - 1),
                (y0 + 1).min(dims[1] - 1),
                (z0 + 1).min(dims[2] - 1),
            );
            let (fx, fy, fz) = (x - x0 as f64, y - y0 as f64, z - z0 as f64);
            let lerp = |a: f64, b: f64, t: f64| a + (b - a) * t;
            let c = |xx, yy, zz| vol.modality(xx, yy, zz);
            let c00 = lerp(c(x0, y0, z0), c(x1, y0, z0), fx);
            let c10 = lerp(c(x0, y1, z0), c(x1, y1, z0), fx);
            let c01 = lerp(c(x0, y0, z1), c(x1, y0, z1), fx);
            let c11 = lerp(c(x0, y1, z1), c(x1, y1, z1), fx);
            lerp(lerp(c00, c10, fy), lerp(c01, c11, fy), fz)
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
        .unwrap_or_else(|| slab_step(vol) * 2.0);
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
        // Sampled at half the finest spacing (0.5 mm here) or closer.
        let o = slab_offsets(10.0, slab_step(&vol));
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
