//! The screen↔image transform of a viewport: zoom, pan, rotation, flips and the
//! pixel aspect ratio, as an affine map both ways.

use super::*;
use crate::dicom::ImageHeader;
use eframe::egui::{Pos2, Rect};

/// `screen = a · image + t` (points; image in pixel coordinates, centres at +0.5).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Affine {
    /// Row-major 2×2.
    pub a: [f32; 4],
    pub t: Pos2,
    /// Screen points per millimetre.
    pub points_per_mm: f32,
}

impl Affine {
    pub fn screen(&self, q: [f64; 2]) -> Pos2 {
        let (x, y) = (q[0] as f32, q[1] as f32);
        Pos2::new(
            self.a[0] * x + self.a[1] * y + self.t.x,
            self.a[2] * x + self.a[3] * y + self.t.y,
        )
    }

    pub(super) fn inverse(&self) -> [f32; 4] {
        let [a, b, c, d] = self.a;
        let det = a * d - b * c;
        [d / det, -b / det, -c / det, a / det]
    }

    pub fn image(&self, p: Pos2) -> [f64; 2] {
        let [a, b, c, d] = self.inverse();
        let (x, y) = (p.x - self.t.x, p.y - self.t.y);
        [(a * x + b * y) as f64, (c * x + d * y) as f64]
    }
}

impl Viewport {
    /// Millimetres per image pixel (row spacing, column spacing); 1 when unknown.
    pub(super) fn spacing(header: &ImageHeader, frame: u32) -> (f32, f32) {
        header
            .frame(frame)
            .ok()
            .and_then(|f| f.pixel_spacing)
            .or(header.imager_pixel_spacing)
            .map(|s| (s[0] as f32, s[1] as f32))
            .filter(|s| s.0 > 0.0 && s.1 > 0.0)
            .unwrap_or((1.0, 1.0))
    }

    /// The image → screen mapping: fit (rotated extents), zoom, rotation, flips, pan.
    pub(super) fn affine(&self, rect: Rect, w: f32, h: f32, rs: f32, cs: f32) -> Affine {
        let (ex, ey) = if self.rotation % 2 == 1 {
            (h * rs, w * cs)
        } else {
            (w * cs, h * rs)
        };
        let s = (rect.width() / ex).min(rect.height() / ey) * self.zoom;
        // M = F · R^k · diag(cs·s, rs·s), applied about the image centre.
        let mut m = [cs * s, 0.0, 0.0, rs * s];
        for _ in 0..self.rotation % 4 {
            // Clockwise on screen (y down): (x, y) → (−y, x).
            m = [-m[2], -m[3], m[0], m[1]];
        }
        if self.flip_h {
            m[0] = -m[0];
            m[1] = -m[1];
        }
        if self.flip_v {
            m[2] = -m[2];
            m[3] = -m[3];
        }
        let c = rect.center() + self.pan;
        let (hx, hy) = (w / 2.0, h / 2.0);
        Affine {
            a: m,
            t: Pos2::new(c.x - (m[0] * hx + m[1] * hy), c.y - (m[2] * hx + m[3] * hy)),
            points_per_mm: s,
        }
    }
}
