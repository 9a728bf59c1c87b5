//! Volume rendering, the CPU reference every GPU path is tested against:
//! orthographic rays through a volume in patient coordinates (gantry tilt and
//! uneven stacks as the reslicer places them), trilinear samples of stored
//! values, a transfer function of modality values (colour and opacity per
//! millimetre, corrected for the step: `1 − (1 − α)^step`), gradient shading
//! with a headlight, front-to-back compositing with early termination at
//! [`OPAQUE`], and empty-space skipping over a min/max grid of
//! [`BRICK`]³-voxel bricks. Skipping is exact: a brick is passed over only when
//! the transfer function is clear over its whole value range (or, for MIP,
//! when it cannot raise the maximum already found), and the samples after it
//! stay on the same lattice, so an image with skipping equals one without.
//! MIP is the second mode: the largest modality value along each ray, shown
//! through a window.
//!
//! The camera: azimuth 0, elevation 0 looks from the patient's front
//! (anterior to posterior) with the head up and the patient's left on the
//! right of the picture; a positive azimuth turns the viewer towards the
//! patient's left side (90°: from the left), a positive elevation raises it
//! towards the head (90°: from above). The picture frames the volume's bounding
//! sphere, so nothing is cut off at any angle.

use nalgebra::{Matrix3, Point3, Vector3, Vector4};
use rayon::prelude::*;
use serde::Deserialize;

use super::geometry::direction_label;
use super::lut::{VoiFunction, Window};
use super::reslice::{SliceCoords, Stored, Voxels};

/// Bricks of the occupancy grid are this many voxels a side.
pub const BRICK: usize = 8;
/// A ray stops once its accumulated opacity reaches this.
pub const OPAQUE: f64 = 0.99;
/// The most points a transfer function may have.
pub const MAX_POINTS: usize = 32;

/// Headlight Blinn–Phong (the light at the eye, so the half vector is the
/// light): ambient, diffuse, specular weights and the specular exponent.
pub const SHADE: [f64; 4] = [0.3, 0.7, 0.25, 20.0];

/// The built-in presets: `(name, file text)`.
pub const PRESETS: &[(&str, &str)] = &[
    ("bone", include_str!("../../assets/vr/bone.toml")),
    (
        "soft-tissue",
        include_str!("../../assets/vr/soft-tissue.toml"),
    ),
    ("angio", include_str!("../../assets/vr/angio.toml")),
    ("lung", include_str!("../../assets/vr/lung.toml")),
    ("mr", include_str!("../../assets/vr/mr.toml")),
];

/// What went wrong, said for the user.
#[derive(Debug, Clone, PartialEq)]
pub struct VrError(pub String);

impl std::fmt::Display for VrError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for VrError {}

fn err<T>(s: impl Into<String>) -> Result<T, VrError> {
    Err(VrError(s.into()))
}

/// One control point: a value, its colour (0–1) and its opacity per mm.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TfPoint {
    pub value: f64,
    pub rgb: [f64; 3],
    pub opacity: f64,
}

/// What a transfer function's values are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TfUnits {
    /// Modality values (HU on CT).
    Modality,
    /// Fractions of the volume's range (0 its lowest value, 1 its highest).
    Fraction,
}

/// A piecewise-linear transfer function.
#[derive(Debug, Clone, PartialEq)]
pub struct TransferFunction {
    pub name: String,
    pub units: TfUnits,
    /// Increasing values.
    pub points: Vec<TfPoint>,
    /// The function's own window (centre, width), in its units.
    pub window: (f64, f64),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TfFile {
    name: String,
    units: Option<String>,
    window: [f64; 2],
    points: Vec<[f64; 5]>,
}

impl TransferFunction {
    /// Parse a preset file's text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<TransferFunction, VrError> {
        let f: TfFile = toml::from_str(text)
            .map_err(|e| VrError(format!("{origin}: not a transfer function: {e}")))?;
        let units = match f.units.as_deref() {
            None | Some("modality") => TfUnits::Modality,
            Some("fraction") => TfUnits::Fraction,
            Some(u) => return err(format!("{origin}: units {u:?} (modality or fraction)")),
        };
        if f.points.len() < 2 || f.points.len() > MAX_POINTS {
            return err(format!(
                "{origin}: {} points (2 to {MAX_POINTS})",
                f.points.len()
            ));
        }
        let mut points = Vec::with_capacity(f.points.len());
        for (k, p) in f.points.iter().enumerate() {
            if !p.iter().all(|x| x.is_finite()) || !p[1..].iter().all(|x| (0.0..=1.0).contains(x)) {
                return err(format!(
                    "{origin}: point {} {p:?}: colour and opacity must be 0 to 1",
                    k + 1
                ));
            }
            if let Some(prev) = points.last().map(|q: &TfPoint| q.value)
                && p[0] <= prev
            {
                return err(format!(
                    "{origin}: point {}: values must increase ({} after {prev})",
                    k + 1,
                    p[0]
                ));
            }
            points.push(TfPoint {
                value: p[0],
                rgb: [p[1], p[2], p[3]],
                opacity: p[4],
            });
        }
        let [c, w] = f.window;
        if !(c.is_finite() && w.is_finite() && w > 0.0) {
            return err(format!("{origin}: window [{c}, {w}] needs a width > 0"));
        }
        Ok(TransferFunction {
            name: f.name,
            units,
            points,
            window: (c, w),
        })
    }

    /// A built-in preset by name (see [`PRESETS`]).
    pub fn named(name: &str) -> Option<TransferFunction> {
        let (_, text) = PRESETS.iter().find(|(n, _)| *n == name)?;
        TransferFunction::parse(text, &format!("preset {name}")).ok()
    }

    /// A preset name, or the path of a preset file.
    pub fn load(spec: &str) -> Result<TransferFunction, VrError> {
        if let Some(tf) = TransferFunction::named(spec) {
            return Ok(tf);
        }
        let path = std::path::Path::new(spec);
        if !path.exists() {
            let names: Vec<&str> = PRESETS.iter().map(|(n, _)| *n).collect();
            return err(format!(
                "no preset {spec:?} (presets: {}; or the path of a preset file)",
                names.join(", ")
            ));
        }
        let text = std::fs::read_to_string(path)
            .map_err(|e| VrError(format!("{}: cannot read: {e}", path.display())))?;
        TransferFunction::parse(&text, &path.display().to_string())
    }

    /// The function in modality units for a volume whose values span
    /// `range` (fractions are laid over it; modality units are kept).
    pub fn for_range(&self, range: (f64, f64)) -> TransferFunction {
        if self.units == TfUnits::Modality {
            return self.clone();
        }
        let (lo, hi) = range;
        let span = (hi - lo).max(1e-9);
        let mut tf = self.with(|v| lo + v * span);
        tf.window = (lo + self.window.0 * span, self.window.1 * span);
        tf.units = TfUnits::Modality;
        tf
    }

    /// Moved like a window: the function's own window becomes (centre,
    /// width), every point moving and stretching with it.
    pub fn with_window(&self, centre: f64, width: f64) -> TransferFunction {
        let (c0, w0) = self.window;
        let scale = width.max(1e-9) / w0;
        let mut tf = self.with(|v| centre + (v - c0) * scale);
        tf.window = (centre, width.max(1e-9));
        tf
    }

    fn with(&self, f: impl Fn(f64) -> f64) -> TransferFunction {
        TransferFunction {
            points: self
                .points
                .iter()
                .map(|p| TfPoint {
                    value: f(p.value),
                    ..*p
                })
                .collect(),
            ..self.clone()
        }
    }

    /// Colour and opacity per mm at value `v`.
    pub fn eval(&self, v: f64) -> ([f64; 3], f64) {
        let p = &self.points;
        let k = p.partition_point(|q| q.value <= v);
        if k == 0 {
            return (p[0].rgb, p[0].opacity);
        }
        if k == p.len() {
            return (p[k - 1].rgb, p[k - 1].opacity);
        }
        let (a, b) = (&p[k - 1], &p[k]);
        let f = (v - a.value) / (b.value - a.value);
        let mix = |x: f64, y: f64| x + (y - x) * f;
        (
            [
                mix(a.rgb[0], b.rgb[0]),
                mix(a.rgb[1], b.rgb[1]),
                mix(a.rgb[2], b.rgb[2]),
            ],
            mix(a.opacity, b.opacity),
        )
    }

    /// The largest opacity anywhere in `lo..=hi`.
    pub fn max_opacity(&self, lo: f64, hi: f64) -> f64 {
        self.points
            .iter()
            .filter(|p| p.value > lo && p.value < hi)
            .map(|p| p.opacity)
            .fold(self.eval(lo).1.max(self.eval(hi).1), f64::max)
    }
}

/// Where the viewer stands.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct View {
    pub azimuth_deg: f64,
    pub elevation_deg: f64,
    pub columns: usize,
    pub rows: usize,
    /// 1: the volume's bounding sphere fills the shorter side.
    pub zoom: f64,
    /// The camera moved sideways and down (screen right, screen down), in
    /// lengths of the picture's shorter side.
    pub pan: [f64; 2],
}

/// The rays of a view, in patient mm: pixel (i, j)'s ray starts at
/// `origin + i·right·pixel_mm + j·down·pixel_mm` and runs along `forward`
/// for `depth_mm`.
#[derive(Debug, Clone, PartialEq)]
pub struct Camera {
    pub origin: Point3<f64>,
    pub right: Vector3<f64>,
    pub down: Vector3<f64>,
    pub forward: Vector3<f64>,
    pub pixel_mm: f64,
    pub depth_mm: f64,
    pub columns: usize,
    pub rows: usize,
}

impl Camera {
    /// The patient directions at the picture's left, right, top and bottom
    /// edges (as orientation markers: "R", "L", "H", "F", or e.g. "LA").
    pub fn edge_labels(&self) -> [String; 4] {
        [
            direction_label(&-self.right),
            direction_label(&self.right),
            direction_label(&-self.down),
            direction_label(&self.down),
        ]
    }
}

/// Voxel (x, y, slice coordinate) → patient mm, for the volume's corners.
fn corners(vol: &dyn Voxels) -> Vec<Point3<f64>> {
    let m = vol.patient_from_voxel();
    let [nx, ny, nz] = vol.dims();
    let mut out = Vec::with_capacity(8);
    for &x in &[-0.5, nx as f64 - 0.5] {
        for &y in &[-0.5, ny as f64 - 0.5] {
            for &z in &[-0.5, nz as f64 - 0.5] {
                let p = m * Vector4::new(x, y, z, 1.0);
                out.push(Point3::new(p.x, p.y, p.z));
            }
        }
    }
    out
}

/// The camera of `view` on `vol`.
pub fn camera(vol: &dyn Voxels, view: &View) -> Camera {
    let (a, e) = (
        view.azimuth_deg.to_radians(),
        view.elevation_deg.to_radians(),
    );
    // Azimuth turns about the patient's long axis (z): 0 looks along +y
    // (anterior to posterior), 90° along −x (from the patient's left).
    let fwd_h = Vector3::new(-a.sin(), a.cos(), 0.0);
    let right = Vector3::new(a.cos(), a.sin(), 0.0);
    let head = Vector3::z();
    let forward = fwd_h * e.cos() - head * e.sin();
    let up = head * e.cos() + fwd_h * e.sin();
    let down = -up;
    let cs = corners(vol);
    let centre = Point3::from(cs.iter().map(|p| p.coords).sum::<Vector3<f64>>() / cs.len() as f64);
    let radius = cs
        .iter()
        .map(|p| (p - centre).norm())
        .fold(0.0, f64::max)
        .max(1e-6);
    let (w, h) = (view.columns.max(1), view.rows.max(1));
    let pixel_mm = 2.0 * radius / w.min(h) as f64 / view.zoom.max(1e-6);
    let shift = pixel_mm * w.min(h) as f64;
    let origin = centre + right * (view.pan[0] * shift) + down * (view.pan[1] * shift)
        - forward * radius
        - right * pixel_mm * (w as f64 - 1.0) / 2.0
        - down * pixel_mm * (h as f64 - 1.0) / 2.0;
    Camera {
        origin,
        right,
        down,
        forward,
        pixel_mm,
        depth_mm: 2.0 * radius,
        columns: w,
        rows: h,
    }
}

/// How the rays become pixels.
#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    /// Colour and opacity from a transfer function (in modality units: see
    /// [`TransferFunction::for_range`]), composited front to back.
    Composite(TransferFunction),
    /// The largest value along the ray, through this window (linear).
    Mip(Window),
}

/// Rendering options.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    pub mode: Mode,
    /// Step along the ray (mm); default half the finest voxel spacing.
    pub step_mm: Option<f64>,
    pub shading: bool,
    /// Pass over empty bricks (exact; off only to test that it is).
    pub skipping: bool,
    /// Only what lies inside this box is drawn (see [`Crop`]).
    pub crop: Option<Crop>,
}

/// A crop box in the volume's voxel coordinates (column, row, slice
/// coordinate): its low and high corners. A sample outside it counts as
/// outside the volume.
pub type Crop = [[f64; 3]; 2];

impl Options {
    pub fn new(mode: Mode) -> Options {
        Options {
            mode,
            step_mm: None,
            shading: true,
            skipping: true,
            crop: None,
        }
    }
}

/// The finest voxel spacing of `vol` (mm), from its affine.
pub fn finest_spacing(vol: &dyn Voxels) -> f64 {
    let m = vol.patient_from_voxel();
    (0..3)
        .map(|c| Vector3::new(m[(0, c)], m[(1, c)], m[(2, c)]).norm())
        .fold(f64::INFINITY, f64::min)
}

/// Min and max stored value of each brick, over its voxels and the next one
/// along each axis (a trilinear sample in a brick reads those).
#[derive(Debug, Clone, PartialEq)]
pub struct Occupancy {
    pub bricks: [usize; 3],
    pub min: Vec<i32>,
    pub max: Vec<i32>,
}

impl Occupancy {
    /// The grid of a volume holding its stored values.
    pub fn of(vol: &dyn Voxels) -> Result<Occupancy, VrError> {
        let Some((data, _, _)) = vol.stored() else {
            return err("volume rendering needs the volume's stored values");
        };
        let [nx, ny, nz] = vol.dims();
        let b = [nx.div_ceil(BRICK), ny.div_ceil(BRICK), nz.div_ceil(BRICK)];
        let at = |i: usize| -> i32 {
            match data {
                Stored::I16(v) => v[i] as i32,
                Stored::U16(v) => v[i] as i32,
            }
        };
        let (min, max): (Vec<Vec<i32>>, Vec<Vec<i32>>) = (0..b[2])
            .into_par_iter()
            .map(|bz| {
                let mut lo = vec![i32::MAX; b[0] * b[1]];
                let mut hi = vec![i32::MIN; b[0] * b[1]];
                for by in 0..b[1] {
                    for bx in 0..b[0] {
                        let (mut l, mut h) = (i32::MAX, i32::MIN);
                        for z in bz * BRICK..((bz + 1) * BRICK + 1).min(nz) {
                            for y in by * BRICK..((by + 1) * BRICK + 1).min(ny) {
                                let row = nx * (y + ny * z);
                                for x in bx * BRICK..((bx + 1) * BRICK + 1).min(nx) {
                                    let s = at(row + x);
                                    l = l.min(s);
                                    h = h.max(s);
                                }
                            }
                        }
                        lo[bx + b[0] * by] = l;
                        hi[bx + b[0] * by] = h;
                    }
                }
                (lo, hi)
            })
            .unzip();
        Ok(Occupancy {
            bricks: b,
            min: min.concat(),
            max: max.concat(),
        })
    }

    /// Per brick: whether `tf` gives anything in it any opacity.
    pub fn visible(&self, tf: &TransferFunction, slope: f64, intercept: f64) -> Vec<bool> {
        self.min
            .iter()
            .zip(&self.max)
            .map(|(&l, &h)| {
                let (a, b) = (slope * l as f64 + intercept, slope * h as f64 + intercept);
                tf.max_opacity(a.min(b), a.max(b)) > 0.0
            })
            .collect()
    }

    /// Per brick: the stored value giving its largest modality value.
    pub fn brightest(&self, slope: f64) -> Vec<i32> {
        if slope < 0.0 {
            self.min.clone()
        } else {
            self.max.clone()
        }
    }
}

/// The sampling plan of a view, in voxel coordinates (x, y and the slice
/// coordinate, centres at integers): shared by the CPU and GPU paths.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub camera: Camera,
    /// Pixel (0, 0)'s ray start.
    pub origin: Vector3<f64>,
    pub du: Vector3<f64>,
    pub dv: Vector3<f64>,
    /// One step along the ray.
    pub step: Vector3<f64>,
    pub step_mm: f64,
    pub steps: usize,
    /// Patient-from-voxel's inverse, transposed: voxel gradients → patient.
    pub gradient: Matrix3<f64>,
    /// The volume's box in voxel coordinates.
    pub lo: Vector3<f64>,
    pub hi: Vector3<f64>,
}

/// Plan the rays of `view` through `vol`.
pub fn plan(vol: &dyn Voxels, view: &View, step_mm: Option<f64>) -> Result<Plan, VrError> {
    let cam = camera(vol, view);
    let m = vol.patient_from_voxel();
    let Some(inv) = m.try_inverse() else {
        return err("the volume's geometry is degenerate (its axes are not independent)");
    };
    let step_mm = step_mm.unwrap_or_else(|| finest_spacing(vol) / 2.0);
    if !(step_mm.is_finite() && step_mm > 0.0) {
        return err(format!("a ray step of {step_mm} mm"));
    }
    let steps = (cam.depth_mm / step_mm).ceil() as usize + 1;
    if steps > 1 << 16 {
        return err(format!(
            "{steps} samples per ray at {step_mm} mm (at most 65536)"
        ));
    }
    let inv3 = inv.fixed_view::<3, 3>(0, 0).into_owned();
    let o = inv * cam.origin.to_homogeneous();
    let [nx, ny, nz] = vol.dims();
    let (zlo, zhi) = match vol.slice_coords() {
        Some(sc) => {
            let c = &sc.coords;
            let n = c.len();
            (
                c[0] - (c[1] - c[0]) / 2.0,
                c[n - 1] + (c[n - 1] - c[n - 2]) / 2.0,
            )
        }
        None => (-0.5, nz as f64 - 0.5),
    };
    Ok(Plan {
        origin: Vector3::new(o.x, o.y, o.z),
        du: inv3 * cam.right * cam.pixel_mm,
        dv: inv3 * cam.down * cam.pixel_mm,
        step: inv3 * cam.forward * step_mm,
        step_mm,
        steps,
        gradient: inv3.transpose(),
        lo: Vector3::new(-0.5, -0.5, zlo),
        hi: Vector3::new(nx as f64 - 0.5, ny as f64 - 0.5, zhi),
        camera: cam,
    })
}

impl Plan {
    /// The plan with its box cut down to `crop` (the volume's box when None).
    pub fn cropped(mut self, crop: Option<&Crop>) -> Plan {
        if let Some([lo, hi]) = crop {
            for a in 0..3 {
                self.lo[a] = self.lo[a].max(lo[a]);
                self.hi[a] = self.hi[a].min(hi[a]);
            }
        }
        self
    }

    /// Whether sample point `q` (voxel coordinates) lies in the box.
    pub fn holds(&self, q: &Vector3<f64>) -> bool {
        (0..3).all(|a| q[a] >= self.lo[a] && q[a] <= self.hi[a])
    }

    /// The first and one-past-last steps of the ray from `p` that can be
    /// inside the box (a step's margin either side; the samples decide).
    pub fn span(&self, p: &Vector3<f64>) -> (usize, usize) {
        let (mut t0, mut t1) = (0.0f64, self.steps as f64);
        for a in 0..3 {
            let d = self.step[a];
            if d.abs() < 1e-12 {
                if p[a] < self.lo[a] || p[a] > self.hi[a] {
                    return (0, 0);
                }
                continue;
            }
            let (u, v) = ((self.lo[a] - p[a]) / d, (self.hi[a] - p[a]) / d);
            t0 = t0.max(u.min(v));
            t1 = t1.min(u.max(v));
        }
        if t1 < t0 {
            return (0, 0);
        }
        let k0 = (t0.floor() - 1.0).max(0.0) as usize;
        let k1 = ((t1.ceil() + 2.0) as usize).min(self.steps);
        (k0, k1)
    }
}

/// A rendered picture.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    pub columns: usize,
    pub rows: usize,
    /// RGB, 8 bits, row-major.
    pub rgb: Vec<u8>,
    /// Samples evaluated, and samples passed over in empty bricks.
    pub samples: u64,
    pub skipped: u64,
    pub plan: Plan,
}

/// Stored-value sampling of a volume (the reslicer's rules: half a voxel
/// beyond the outer centres is inside; gaps between slices are empty).
struct Sampler<'a> {
    data: Stored<'a>,
    dims: [usize; 3],
    coords: Option<&'a SliceCoords>,
}

impl Sampler<'_> {
    #[inline]
    fn at(&self, x: usize, y: usize, z: usize) -> f64 {
        let i = x + self.dims[0] * (y + self.dims[1] * z);
        match self.data {
            Stored::I16(v) => v[i] as f64,
            Stored::U16(v) => v[i] as f64,
        }
    }

    /// The stored value at voxel coordinates `q`, or None outside.
    fn sample(&self, q: &Vector3<f64>) -> Option<f64> {
        let z = match self.coords {
            Some(sc) => sc.index(q.z)?,
            None => q.z,
        };
        let w = [q.x, q.y, z];
        let mut b = [0usize; 3];
        let mut e = [0usize; 3];
        let mut f = [0f64; 3];
        for a in 0..3 {
            let n = self.dims[a] as f64;
            if !(w[a] >= -0.5 && w[a] <= n - 0.5) {
                return None;
            }
            let c = w[a].clamp(0.0, n - 1.0);
            b[a] = c as usize;
            f[a] = c - b[a] as f64;
            e[a] = (b[a] + 1).min(self.dims[a] - 1);
        }
        let mix = |x: f64, y: f64, t: f64| x + (y - x) * t;
        let c00 = mix(self.at(b[0], b[1], b[2]), self.at(e[0], b[1], b[2]), f[0]);
        let c10 = mix(self.at(b[0], e[1], b[2]), self.at(e[0], e[1], b[2]), f[0]);
        let c01 = mix(self.at(b[0], b[1], e[2]), self.at(e[0], b[1], e[2]), f[0]);
        let c11 = mix(self.at(b[0], e[1], e[2]), self.at(e[0], e[1], e[2]), f[0]);
        Some(mix(mix(c00, c10, f[1]), mix(c01, c11, f[1]), f[2]))
    }

    /// The last slice whose coordinate is ≤ t (clamped), and that slice's
    /// coordinate.
    fn slice_at(&self, t: f64) -> usize {
        match self.coords {
            Some(sc) => {
                sc.coords
                    .partition_point(|&c| c <= t)
                    .clamp(1, sc.coords.len())
                    - 1
            }
            None => (t.max(0.0) as usize).min(self.dims[2] - 1),
        }
    }

    fn coord(&self, k: usize) -> f64 {
        match self.coords {
            Some(sc) => sc.coords[k],
            None => k as f64,
        }
    }

    /// The brick holding point `q` and the ray parameter (in steps from
    /// `p0`) at which the ray `p0 + k·step` leaves it.
    fn brick(
        &self,
        q: &Vector3<f64>,
        p0: &Vector3<f64>,
        step: &Vector3<f64>,
        bricks: [usize; 3],
    ) -> (usize, f64) {
        let mut idx = [0usize; 3];
        let mut exit = f64::INFINITY;
        for a in 0..3 {
            let (k, lo, hi) = if a < 2 {
                let k = (q[a].max(0.0) as usize).min(self.dims[a] - 1) / BRICK;
                (k, (k * BRICK) as f64, ((k + 1) * BRICK) as f64)
            } else {
                let k = self.slice_at(q[a]) / BRICK;
                let last = self.dims[2] - 1;
                (
                    k,
                    self.coord(k * BRICK),
                    self.coord(((k + 1) * BRICK).min(last)),
                )
            };
            idx[a] = k;
            let lo = if k == 0 { f64::NEG_INFINITY } else { lo };
            let hi = if k + 1 == bricks[a] {
                f64::INFINITY
            } else {
                hi
            };
            let d = step[a];
            let t = if d > 1e-12 {
                (hi - p0[a]) / d
            } else if d < -1e-12 {
                (lo - p0[a]) / d
            } else {
                f64::INFINITY
            };
            exit = exit.min(t);
        }
        (idx[0] + bricks[0] * (idx[1] + bricks[1] * idx[2]), exit)
    }
}

/// Render `vol` as `view` sees it.
pub fn render(vol: &dyn Voxels, view: &View, opts: &Options) -> Result<Rendered, VrError> {
    render_with(vol, view, opts, &Occupancy::of(vol)?)
}

/// [`render`] with the volume's occupancy grid made already ([`Occupancy::of`]
/// it: one pass over every voxel, which a viewer turning the volume makes once).
pub fn render_with(
    vol: &dyn Voxels,
    view: &View,
    opts: &Options,
    occupancy: &Occupancy,
) -> Result<Rendered, VrError> {
    let Some((data, slope, intercept)) = vol.stored() else {
        return err("volume rendering needs the volume's stored values");
    };
    let plan = plan(vol, view, opts.step_mm)?.cropped(opts.crop.as_ref());
    let sampler = Sampler {
        data,
        dims: vol.dims(),
        coords: vol.slice_coords(),
    };
    let visible = match &opts.mode {
        Mode::Composite(tf) => occupancy.visible(tf, slope, intercept),
        Mode::Mip(_) => Vec::new(),
    };
    let brightest: Vec<f64> = match &opts.mode {
        Mode::Mip(_) => occupancy
            .brightest(slope)
            .iter()
            .map(|&s| slope * s as f64 + intercept)
            .collect(),
        Mode::Composite(_) => Vec::new(),
    };
    let light = -plan.camera.forward;
    let (w, h) = (plan.camera.columns, plan.camera.rows);
    let counts = std::sync::atomic::AtomicU64::new(0);
    let skipped_total = std::sync::atomic::AtomicU64::new(0);
    let rgb: Vec<u8> = (0..h)
        .into_par_iter()
        .flat_map_iter(|j| {
            let mut row = Vec::with_capacity(w * 3);
            let (mut evaluated, mut skipped) = (0u64, 0u64);
            for i in 0..w {
                let p0 = plan.origin + plan.du * i as f64 + plan.dv * j as f64;
                let (k0, k1) = plan.span(&p0);
                let px = match &opts.mode {
                    Mode::Composite(tf) => {
                        let mut c = [0.0f64; 3];
                        let mut acc = 0.0f64;
                        let mut k = k0;
                        while k < k1 {
                            let q = p0 + plan.step * k as f64;
                            if opts.skipping {
                                let (b, exit) =
                                    sampler.brick(&q, &p0, &plan.step, occupancy.bricks);
                                if !visible[b] {
                                    let next = ((exit - 1e-3).floor() as usize).max(k + 1);
                                    skipped += (next.min(k1) - k) as u64;
                                    k = next;
                                    continue;
                                }
                            }
                            k += 1;
                            evaluated += 1;
                            if !plan.holds(&q) {
                                continue;
                            }
                            let Some(s) = sampler.sample(&q) else {
                                continue;
                            };
                            let (rgb, a) = tf.eval(slope * s + intercept);
                            if a <= 0.0 {
                                continue;
                            }
                            let alpha = 1.0 - (1.0 - a.min(1.0)).powf(plan.step_mm);
                            let lit = if opts.shading {
                                shade(&sampler, &q, s, slope, &plan.gradient, &light)
                            } else {
                                (1.0, 0.0)
                            };
                            for ch in 0..3 {
                                let col = (rgb[ch] * lit.0 + lit.1).min(1.0);
                                c[ch] += (1.0 - acc) * alpha * col;
                            }
                            acc += (1.0 - acc) * alpha;
                            if acc >= OPAQUE {
                                break;
                            }
                        }
                        c
                    }
                    Mode::Mip(window) => {
                        let mut best = f64::NEG_INFINITY;
                        let mut k = k0;
                        while k < k1 {
                            let q = p0 + plan.step * k as f64;
                            if opts.skipping {
                                let (b, exit) =
                                    sampler.brick(&q, &p0, &plan.step, occupancy.bricks);
                                if brightest[b] <= best {
                                    let next = ((exit - 1e-3).floor() as usize).max(k + 1);
                                    skipped += (next.min(k1) - k) as u64;
                                    k = next;
                                    continue;
                                }
                            }
                            k += 1;
                            evaluated += 1;
                            if !plan.holds(&q) {
                                continue;
                            }
                            if let Some(s) = sampler.sample(&q) {
                                best = best.max(slope * s + intercept);
                            }
                        }
                        if best == f64::NEG_INFINITY {
                            [0.0; 3]
                        } else {
                            let g = window.apply(VoiFunction::Linear, best);
                            [g; 3]
                        }
                    }
                };
                row.extend(
                    px.iter()
                        .map(|&v| (v.clamp(0.0, 1.0) * 255.0).round() as u8),
                );
            }
            counts.fetch_add(evaluated, std::sync::atomic::Ordering::Relaxed);
            skipped_total.fetch_add(skipped, std::sync::atomic::Ordering::Relaxed);
            row
        })
        .collect();
    Ok(Rendered {
        columns: w,
        rows: h,
        rgb,
        samples: counts.into_inner(),
        skipped: skipped_total.into_inner(),
        plan,
    })
}

/// Headlight shading at `q` (stored value `s`): the factor for the colour
/// and the specular term added to it. Where the gradient vanishes the
/// colour is unshaded.
fn shade(
    sampler: &Sampler<'_>,
    q: &Vector3<f64>,
    s: f64,
    slope: f64,
    to_patient: &Matrix3<f64>,
    light: &Vector3<f64>,
) -> (f64, f64) {
    let mut g = Vector3::zeros();
    for a in 0..3 {
        let mut e = Vector3::zeros();
        e[a] = 1.0;
        let (plus, minus) = (sampler.sample(&(q + e)), sampler.sample(&(q - e)));
        g[a] = match (plus, minus) {
            (Some(p), Some(m)) => (p - m) / 2.0,
            (Some(p), None) => p - s,
            (None, Some(m)) => s - m,
            (None, None) => 0.0,
        };
    }
    let g = to_patient * g * slope;
    let norm = g.norm();
    if norm < 1e-6 {
        return (1.0, 0.0);
    }
    let d = (g.dot(light) / norm).abs();
    let [ka, kd, ks, shininess] = SHADE;
    (ka + kd * d, ks * d.powf(shininess))
}

#[cfg(test)]
mod tests {
    use super::*;
    use nalgebra::Matrix4;

    /// A volume of stored i16 values with an affine, for the tests.
    struct Phantom {
        dims: [usize; 3],
        m: Matrix4<f64>,
        data: Vec<i16>,
        coords: Option<SliceCoords>,
    }

    impl Voxels for Phantom {
        fn dims(&self) -> [usize; 3] {
            self.dims
        }
        fn patient_from_voxel(&self) -> Matrix4<f64> {
            self.m
        }
        fn modality(&self, x: usize, y: usize, z: usize) -> f64 {
            self.data[x + self.dims[0] * (y + self.dims[1] * z)] as f64 - 1024.0
        }
        fn slice_coords(&self) -> Option<&SliceCoords> {
            self.coords.as_ref()
        }
        fn stored(&self) -> Option<(Stored<'_>, f64, f64)> {
            Some((Stored::I16(&self.data), 1.0, -1024.0))
        }
    }

    /// A 1 mm isotropic cube of `n` voxels a side centred on the origin, HU
    /// from `f(patient point)`.
    fn phantom(n: usize, f: impl Fn(Point3<f64>) -> f64) -> Phantom {
        let h = (n as f64 - 1.0) / 2.0;
        let m = Matrix4::new(
            1.0, 0.0, 0.0, -h, 0.0, 1.0, 0.0, -h, 0.0, 0.0, 1.0, -h, 0.0, 0.0, 0.0, 1.0,
        );
        let mut data = Vec::with_capacity(n * n * n);
        for z in 0..n {
            for y in 0..n {
                for x in 0..n {
                    let p = Point3::new(x as f64 - h, y as f64 - h, z as f64 - h);
                    data.push((f(p) + 1024.0).round() as i16);
                }
            }
        }
        Phantom {
            dims: [n, n, n],
            m,
            data,
            coords: None,
        }
    }

    fn view(az: f64, el: f64, size: usize) -> View {
        View {
            pan: [0.0, 0.0],
            azimuth_deg: az,
            elevation_deg: el,
            columns: size,
            rows: size,
            zoom: 1.0,
        }
    }

    fn bone() -> Options {
        Options::new(Mode::Composite(
            TransferFunction::named("bone").expect("preset"),
        ))
    }

    /// Mean brightness of the picture's quarter on the given side.
    fn brightness(r: &Rendered, x: std::ops::Range<usize>, y: std::ops::Range<usize>) -> f64 {
        let mut sum = 0.0;
        let mut n = 0.0;
        for j in y {
            for i in x.clone() {
                sum += r.rgb[3 * (i + r.columns * j)] as f64;
                n += 1.0;
            }
        }
        sum / n
    }

    #[test]
    fn every_preset_parses_and_bad_files_say_why() {
        for (name, _) in PRESETS {
            assert!(TransferFunction::named(name).is_some(), "{name}");
        }
        let bad =
            "name = \"x\"\nwindow = [0.0, 10.0]\npoints = [[5.0, 0, 0, 0, 0], [1.0, 0, 0, 0, 1]]";
        let e = TransferFunction::parse(bad, "x.toml").expect_err("decreasing");
        assert!(e.0.contains("must increase"), "{e}");
        let bad =
            "name = \"x\"\nwindow = [0.0, 10.0]\npoints = [[0.0, 0, 0, 0, 0], [1.0, 0, 0, 0, 2]]";
        assert!(TransferFunction::parse(bad, "x.toml").is_err());
        let e = TransferFunction::load("no-such-preset").expect_err("unknown");
        assert!(e.0.contains("bone"), "{e}");
    }

    #[test]
    fn a_window_moves_and_stretches_the_function() {
        let tf = TransferFunction::named("bone").expect("preset");
        let (c0, w0) = tf.window;
        let moved = tf.with_window(c0 + 100.0, w0 * 2.0);
        // The value that had opacity α at c0 + d now has it at c0 + 100 + 2d.
        for d in [-200.0, 0.0, 150.0] {
            let a = tf.eval(c0 + d).1;
            let b = moved.eval(c0 + 100.0 + 2.0 * d).1;
            assert!((a - b).abs() < 1e-12, "{d}: {a} vs {b}");
        }
        assert_eq!(tf.max_opacity(-1024.0, 150.0), 0.0);
        assert!(tf.max_opacity(-1024.0, 151.0) > 0.0);
        let mr = TransferFunction::named("mr")
            .expect("preset")
            .for_range((0.0, 1000.0));
        assert_eq!(mr.units, TfUnits::Modality);
        assert!((mr.points[1].value - 120.0).abs() < 1e-9);
    }

    #[test]
    fn a_bone_sphere_shows_as_a_disc_of_its_radius() {
        let vol = phantom(40, |p| {
            if p.coords.norm() <= 10.0 {
                1000.0
            } else {
                -1000.0
            }
        });
        let r = render(&vol, &view(0.0, 0.0, 64), &bone()).expect("render");
        let cam = &r.plan.camera;
        // Pixel centres within the sphere's silhouette are lit, those clearly
        // outside are black.
        let c = (cam.columns as f64 - 1.0) / 2.0;
        for j in 0..cam.rows {
            for i in 0..cam.columns {
                let d = ((i as f64 - c).powi(2) + (j as f64 - c).powi(2)).sqrt() * cam.pixel_mm;
                let v = r.rgb[3 * (i + cam.columns * j)];
                if d < 9.0 {
                    assert!(v > 40, "({i},{j}) at {d:.1} mm: {v}");
                } else if d > 11.0 {
                    assert_eq!(v, 0, "({i},{j}) at {d:.1} mm");
                }
            }
        }
        // The middle (facing the light) is brighter than the rim.
        let mid = r.rgb[3 * (32 + 64 * 32)];
        let rim_i = (c + 8.5 / cam.pixel_mm).round() as usize;
        let rim = r.rgb[3 * (rim_i + 64 * 32)];
        assert!(mid > rim, "middle {mid}, rim {rim}");
    }

    #[test]
    fn the_patients_left_is_on_the_right_from_the_front_and_the_head_on_top() {
        // Bone at the patient's left (+x) and at the head (+z).
        let vol = phantom(40, |p| {
            let left = (p - Point3::new(12.0, 0.0, 0.0)).norm() < 5.0;
            let head = (p - Point3::new(0.0, 0.0, 14.0)).norm() < 4.0;
            if left || head { 1000.0 } else { -1000.0 }
        });
        let front = render(&vol, &view(0.0, 0.0, 48), &bone()).expect("render");
        assert_eq!(
            front.plan.camera.edge_labels(),
            ["R", "L", "H", "F"].map(String::from)
        );
        assert!(
            brightness(&front, 28..48, 16..32) > 20.0,
            "left marker on the right"
        );
        assert!(brightness(&front, 0..20, 16..32) < 1.0);
        assert!(brightness(&front, 16..32, 0..16) > 10.0, "head on top");
        assert!(brightness(&front, 16..32, 32..48) < 1.0);
        // From behind the left is on the left.
        let back = render(&vol, &view(180.0, 0.0, 48), &bone()).expect("render");
        assert!(brightness(&back, 0..20, 16..32) > 20.0);
        assert!(brightness(&back, 28..48, 16..32) < 1.0);
        // From the left (azimuth 90) the left marker faces the viewer, in the middle.
        let side = render(&vol, &view(90.0, 0.0, 48), &bone()).expect("render");
        assert_eq!(side.plan.camera.edge_labels()[1], "P");
        // From above (elevation 90) the head marker is in the middle.
        let top = render(&vol, &view(0.0, 90.0, 48), &bone()).expect("render");
        assert!(brightness(&top, 20..28, 20..28) > 20.0);
        assert_eq!(top.plan.camera.edge_labels()[1], "L");
    }

    #[test]
    fn skipping_empty_bricks_changes_no_pixel() {
        // Tilted, unevenly spaced: bricks along the slice axis follow the real positions.
        let mut vol = phantom(48, |p| {
            let vessel = (p.x - 0.3 * p.z).hypot(p.y - 4.0) < 3.0;
            let ball = (p - Point3::new(-8.0, -6.0, 5.0)).norm() < 6.0;
            if ball {
                900.0
            } else if vessel {
                300.0
            } else {
                -900.0 + (p.x * 3.0)
            }
        });
        vol.m[(1, 2)] = 0.3; // gantry tilt: slices sheared along y
        let mut pos: Vec<f64> = (0..48).map(|k| k as f64).collect();
        for p in pos.iter_mut().skip(30) {
            *p += 2.0; // 3 mm between slices 29 and 30: a gap of > 1.5 × spacing
        }
        vol.coords = SliceCoords::from_positions(&pos, 1.0);
        assert!(vol.coords.is_some());
        let angio = TransferFunction::named("angio").expect("preset");
        let cases = [
            Options::new(Mode::Composite(angio)),
            bone(),
            Options::new(Mode::Mip(Window::new(300.0, 1500.0))),
        ];
        for opts in cases {
            for (az, el) in [(0.0, 0.0), (37.0, 21.0), (-120.0, -60.0)] {
                let fast = render(&vol, &view(az, el, 40), &opts).expect("render");
                let plain = render(
                    &vol,
                    &view(az, el, 40),
                    &Options {
                        skipping: false,
                        ..opts.clone()
                    },
                )
                .expect("render");
                assert!(fast.skipped > 0, "{az},{el}: nothing skipped");
                assert_eq!(fast.rgb, plain.rgb, "{az},{el} {:?}", opts.mode);
            }
        }
    }

    #[test]
    fn opacity_is_corrected_for_the_step() {
        let vol = phantom(40, |p| {
            if p.coords.norm() <= 12.0 {
                60.0 + 2.0 * p.z
            } else {
                -1000.0
            }
        });
        let tf = TransferFunction::named("soft-tissue").expect("preset");
        let at = |step: f64| {
            render(
                &vol,
                &view(0.0, 0.0, 32),
                &Options {
                    step_mm: Some(step),
                    ..Options::new(Mode::Composite(tf.clone()))
                },
            )
            .expect("render")
            .rgb
        };
        let mean = |a: &[u8], b: &[u8]| {
            a.iter()
                .zip(b)
                .map(|(x, y)| (*x as f64 - *y as f64).abs())
                .sum::<f64>()
                / a.len() as f64
        };
        // Four times the samples, each a quarter as opaque: the same picture.
        let (fine, coarse) = (at(0.25), at(1.0));
        assert!(
            mean(&fine, &coarse) < 1.5,
            "corrected: {}",
            mean(&fine, &coarse)
        );
        let lit = fine.iter().filter(|&&v| v > 30).count();
        assert!(lit > fine.len() / 20, "the ball shows ({lit} lit)");
    }

    #[test]
    fn mip_is_the_largest_value_on_the_ray() {
        let vol = phantom(32, |p| {
            if (p - Point3::new(3.0, 0.0, -2.0)).norm() < 2.5 {
                700.0
            } else {
                -200.0
            }
        });
        let w = Window::new(250.0, 1000.0);
        let r = render(
            &vol,
            &view(0.0, 0.0, 45),
            &Options::new(Mode::Mip(w.clone())),
        )
        .expect("render");
        let cam = &r.plan.camera;
        // The pixel whose ray passes through the ball's centre.
        let c = (cam.columns as f64 - 1.0) / 2.0;
        let i = (c + 3.0 / cam.pixel_mm).round() as usize;
        let j = (c + 2.0 / cam.pixel_mm).round() as usize;
        let want = |v: f64| (w.apply(VoiFunction::Linear, v) * 255.0).round() as u8;
        assert_eq!(r.rgb[3 * (i + cam.columns * j)], want(700.0));
        assert_eq!(
            r.rgb[3 * (2 + cam.columns * 2)],
            0,
            "outside the volume: black"
        );
        let inside = (c - 8.0 / cam.pixel_mm).round() as usize;
        assert_eq!(r.rgb[3 * (inside + cam.columns * inside)], want(-200.0));
    }

    #[test]
    fn a_crop_box_hides_what_lies_outside_it_and_pan_moves_the_picture() {
        // Two bone spheres, on the patient's right (−x) and left (+x).
        let n = 40;
        let vol = phantom(n, |p| {
            let r = |c: f64| ((p.x - c).powi(2) + p.y.powi(2) + p.z.powi(2)).sqrt();
            if r(-10.0) < 6.0 || r(10.0) < 6.0 {
                1200.0
            } else {
                -1000.0
            }
        });
        let size = 64;
        let full = render(&vol, &view(0.0, 0.0, size), &bone()).expect("render");
        // From the front the patient's left is on the picture's right.
        let (left, right) = (0..size / 2, size / 2..size);
        let rows = size / 4..3 * size / 4;
        assert!(brightness(&full, left.clone(), rows.clone()) > 10.0);
        assert!(brightness(&full, right.clone(), rows.clone()) > 10.0);
        // Cropped to x < 0 (voxel column below the middle): the left sphere
        // goes, the right one stays exactly as it was.
        let mut opts = bone();
        let h = (n as f64 - 1.0) / 2.0;
        opts.crop = Some([[-0.5, -0.5, -0.5], [h, n as f64 - 0.5, n as f64 - 0.5]]);
        let cut = render(&vol, &view(0.0, 0.0, size), &opts).expect("render");
        assert_eq!(
            brightness(&cut, right.clone(), rows.clone()),
            0.0,
            "cropped away"
        );
        for j in 0..size {
            for i in 0..size / 2 - 4 {
                let k = 3 * (i + size * j);
                assert_eq!(cut.rgb[k..k + 3], full.rgb[k..k + 3], "({i},{j})");
            }
        }
        // Panned a quarter of the picture to the right: the picture moves a
        // quarter to the left.
        let mut panned = view(0.0, 0.0, size);
        panned.pan = [0.25, 0.0];
        let moved = render(&vol, &panned, &bone()).expect("render");
        let shift = size / 4;
        for j in 0..size {
            for i in 0..size - shift {
                let (a, b) = (3 * (i + size * j), 3 * (i + shift + size * j));
                assert_eq!(moved.rgb[a], full.rgb[b], "({i},{j})");
            }
        }
    }
}
