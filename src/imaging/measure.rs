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
    let c0 = ((cx - rx).floor().max(0.0)) as u32;
    let c1 = ((cx + rx).ceil().min(columns as f64)) as u32;
    let r0 = ((cy - ry).floor().max(0.0)) as u32;
    let r1 = ((cy + ry).ceil().min(rows as f64)) as u32;
    let (mut n, mut sum, mut sum2) = (0usize, 0.0, 0.0);
    let (mut min, mut max) = (f64::INFINITY, f64::NEG_INFINITY);
    for r in r0..r1 {
        for c in c0..c1 {
            let (x, y) = (c as f64 + 0.5, r as f64 + 0.5);
            if ((x - cx) / rx).powi(2) + ((y - cy) / ry).powi(2) > 1.0 {
                continue;
            }
            let Some(&s) = stored.get((r * columns + c) as usize) else {
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
