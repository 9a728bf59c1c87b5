//! Measurements on one image, in image pixel coordinates (column, row; pixel
//! centres at +0.5), with their calibration always stated: millimetres from Pixel
//! Spacing, "at detector" from Imager Pixel Spacing, magnification corrected or
//! calibrated where the file says so — and pixels when there is no spacing, never
//! silently millimetres.

use serde::Serialize;

use crate::dicom::header::{Calibration, CalibrationBasis};
use crate::imaging::lut::ModalityTransform;

/// A measured value with its unit and calibration basis.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Measured {
    pub value: f64,
    /// "mm", "mm²", "px", "px²".
    pub unit: &'static str,
    pub basis: CalibrationBasis,
}

impl Measured {
    /// "52.3 mm (Pixel Spacing)", "48.1 mm at detector", "85 px (uncalibrated)".
    pub fn label(&self) -> String {
        match self.basis {
            CalibrationBasis::Pixels => format!("{:.0} {} (uncalibrated)", self.value, self.unit),
            CalibrationBasis::Detector => format!("{:.1} {} at detector", self.value, self.unit),
            b => format!("{:.1} {} ({})", self.value, self.unit, b.label()),
        }
    }
}

/// Row and column spacing in mm, or None when measurements are in pixels.
fn spacing(cal: &Calibration) -> Option<(f64, f64)> {
    match (cal.basis, cal.spacing_mm) {
        (CalibrationBasis::Pixels, _) | (_, None) => None,
        (_, Some([r, c])) => Some((r, c)),
    }
}

/// Distance between two image points.
pub fn length(a: [f64; 2], b: [f64; 2], cal: &Calibration) -> Measured {
    let (dc, dr) = (b[0] - a[0], b[1] - a[1]);
    match spacing(cal) {
        Some((rs, cs)) => Measured {
            value: ((dc * cs).powi(2) + (dr * rs).powi(2)).sqrt(),
            unit: "mm",
            basis: cal.basis,
        },
        None => Measured {
            value: (dc * dc + dr * dr).sqrt(),
            unit: "px",
            basis: CalibrationBasis::Pixels,
        },
    }
}

/// Statistics of an ellipse region, in modality units (HU for CT).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RoiStats {
    pub pixels: usize,
    pub mean: f64,
    pub sd: f64,
    pub min: f64,
    pub max: f64,
    pub area: Measured,
}

/// Statistics of the pixels whose centres lie inside the ellipse inscribed in the
/// box from `a` to `b` (image coordinates), after the modality transformation.
pub fn ellipse_stats(
    stored: &[i32],
    columns: u32,
    rows: u32,
    a: [f64; 2],
    b: [f64; 2],
    modality: &ModalityTransform,
    cal: &Calibration,
) -> Option<RoiStats> {
    let (cx, cy) = ((a[0] + b[0]) / 2.0, (a[1] + b[1]) / 2.0);
    let (rx, ry) = ((b[0] - a[0]).abs() / 2.0, (b[1] - a[1]).abs() / 2.0);
    if rx <= 0.0 || ry <= 0.0 {
        return None;
    }
    let inside = |x: f64, y: f64| ((x - cx) / rx).powi(2) + ((y - cy) / ry).powi(2) <= 1.0;
    region_stats(stored, columns, rows, a, b, &inside, modality, cal)
}

/// Statistics of the pixels whose centres lie inside the box from `a` to `b`.
pub fn rect_stats(
    stored: &[i32],
    columns: u32,
    rows: u32,
    a: [f64; 2],
    b: [f64; 2],
    modality: &ModalityTransform,
    cal: &Calibration,
) -> Option<RoiStats> {
    let (x0, x1) = (a[0].min(b[0]), a[0].max(b[0]));
    let (y0, y1) = (a[1].min(b[1]), a[1].max(b[1]));
    let inside = |x: f64, y: f64| x >= x0 && x <= x1 && y >= y0 && y <= y1;
    region_stats(stored, columns, rows, a, b, &inside, modality, cal)
}

/// Statistics over the pixels of the bounding box `a`–`b` whose centres are
/// `inside`.
#[allow(clippy::too_many_arguments)]
fn region_stats(
    stored: &[i32],
    columns: u32,
    rows: u32,
    a: [f64; 2],
    b: [f64; 2],
    inside: &dyn Fn(f64, f64) -> bool,
    modality: &ModalityTransform,
    cal: &Calibration,
) -> Option<RoiStats> {
    let clamp = |v: f64, max: u32| v.clamp(0.0, max as f64) as u32;
    let c0 = clamp(a[0].min(b[0]).floor(), columns);
    let c1 = clamp(a[0].max(b[0]).ceil(), columns);
    let r0 = clamp(a[1].min(b[1]).floor(), rows);
    let r1 = clamp(a[1].max(b[1]).ceil(), rows);
    let (mut n, mut sum, mut sum2) = (0usize, 0.0, 0.0);
    let (mut min, mut max) = (f64::INFINITY, f64::NEG_INFINITY);
    for r in r0..r1 {
        for c in c0..c1 {
            if !inside(c as f64 + 0.5, r as f64 + 0.5) {
                continue;
            }
            let Some(&s) = stored.get(r as usize * columns as usize + c as usize) else {
                continue;
            };
            let v = modality.apply(s as i64);
            n += 1;
            sum += v;
            sum2 += v * v;
            min = min.min(v);
            max = max.max(v);
        }
    }
    if n == 0 {
        return None;
    }
    let mean = sum / n as f64;
    let sd = (sum2 / n as f64 - mean * mean).max(0.0).sqrt();
    let area = match spacing(cal) {
        Some((rs, cs)) => Measured {
            value: n as f64 * rs * cs,
            unit: "mm²",
            basis: cal.basis,
        },
        None => Measured {
            value: n as f64,
            unit: "px²",
            basis: CalibrationBasis::Pixels,
        },
    };
    Some(RoiStats {
        pixels: n,
        mean,
        sd,
        min,
        max,
        area,
    })
}

/// An angle in degrees, measured in physical space (so non-square pixels do not
/// skew it); `square_pixels_assumed` when the image has no spacing.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Angle {
    pub degrees: f64,
    pub square_pixels_assumed: bool,
}

impl Angle {
    pub fn label(&self) -> String {
        if self.square_pixels_assumed {
            format!("{:.1}° (pixel aspect unknown)", self.degrees)
        } else {
            format!("{:.1}°", self.degrees)
        }
    }
}

/// A vector between image points in millimetres (or pixels without spacing).
fn physical(a: [f64; 2], b: [f64; 2], cal: &Calibration) -> [f64; 2] {
    let (rs, cs) = spacing(cal).unwrap_or((1.0, 1.0));
    [(b[0] - a[0]) * cs, (b[1] - a[1]) * rs]
}

fn between(u: [f64; 2], v: [f64; 2]) -> Option<f64> {
    let (nu, nv) = (u[0].hypot(u[1]), v[0].hypot(v[1]));
    if nu == 0.0 || nv == 0.0 {
        return None;
    }
    let cos = ((u[0] * v[0] + u[1] * v[1]) / (nu * nv)).clamp(-1.0, 1.0);
    Some(cos.acos().to_degrees())
}

/// The angle at `vertex` between the arms to `a` and `c` (0–180°).
pub fn angle(a: [f64; 2], vertex: [f64; 2], c: [f64; 2], cal: &Calibration) -> Option<Angle> {
    Some(Angle {
        degrees: between(physical(vertex, a, cal), physical(vertex, c, cal))?,
        square_pixels_assumed: spacing(cal).is_none(),
    })
}

/// The Cobb angle between two lines (each given by two points): the acute angle
/// between them (0–90°), whichever way each was drawn.
pub fn cobb(l1: [[f64; 2]; 2], l2: [[f64; 2]; 2], cal: &Calibration) -> Option<Angle> {
    let d = between(physical(l1[0], l1[1], cal), physical(l2[0], l2[1], cal))?;
    Some(Angle {
        degrees: if d > 90.0 { 180.0 - d } else { d },
        square_pixels_assumed: spacing(cal).is_none(),
    })
}
