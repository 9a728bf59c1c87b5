//! What is drawn on top of the pixels by the image's own attributes: the Display
//! Shutter (PS3.3 C.7.6.11: rectangular, circular and polygonal shapes; what lies
//! outside all of them is shown in the Shutter Presentation Value) and the
//! overlay planes of groups 6000–601E (PS3.3 C.9.2: a bitmap per plane, graphics
//! or region of interest, possibly one per frame).
//!
//! The values and what they mean for a pixel; `dicom::display` reads them from a
//! data set.
//!
//! Coordinates follow the standard: 1-based, row before column. A pixel (column
//! c, row r, 0-based) is tested at its centre, (r + 1, c + 1) in those terms, on
//! the CPU and on the GPU alike.

use serde::Serialize;

/// A display shutter: the image shows only inside every shape given.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Shutter {
    /// Left, right (columns), upper, lower (rows) edges, inclusive.
    pub rect: Option<[f64; 4]>,
    /// Centre (row, column) and radius, in pixels.
    pub circle: Option<([f64; 2], f64)>,
    /// Vertices (row, column).
    pub polygon: Vec<[f64; 2]>,
    /// Grey level outside, as a P-value 0–65535 (0: black).
    pub value: u16,
}

impl Shutter {
    /// Is the pixel at (column, row), 0-based, shown?
    pub fn shows(&self, column: u32, row: u32) -> bool {
        let (x, y) = (column as f64 + 1.0, row as f64 + 1.0);
        if let Some([l, r, u, d]) = self.rect
            && !(x >= l && x <= r && y >= u && y <= d)
        {
            return false;
        }
        if let Some(([cy, cx], rad)) = self.circle
            && (y - cy).powi(2) + (x - cx).powi(2) > rad * rad
        {
            return false;
        }
        if !self.polygon.is_empty() && !inside_polygon(&self.polygon, y, x) {
            return false;
        }
        true
    }
}

/// Even-odd rule, half-open edges (a point on a left/top edge is inside).
pub fn inside_polygon(v: &[[f64; 2]], y: f64, x: f64) -> bool {
    let mut inside = false;
    let n = v.len();
    let mut j = n - 1;
    for i in 0..n {
        let ([yi, xi], [yj, xj]) = (v[i], v[j]);
        if (yi > y) != (yj > y) {
            // x of the edge at height y, compared without dividing: the sign of
            // (x - xi)(yj - yi) - (xj - xi)(y - yi) against the edge's direction.
            let lhs = (x - xi) * (yj - yi);
            let rhs = (xj - xi) * (y - yi);
            if (yj > yi && lhs < rhs) || (yj < yi && lhs > rhs) {
                inside = !inside;
            }
        }
        j = i;
    }
    inside
}

/// One overlay plane.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Overlay {
    /// 0x6000, 0x6002, ...
    pub group: u16,
    pub rows: u32,
    pub columns: u32,
    /// Row and column (1-based) of the plane's first pixel on the image.
    pub origin: [i32; 2],
    /// "G" (graphics) or "R" (region of interest).
    pub kind: String,
    pub label: Option<String>,
    /// Image frame (1-based) of the plane's first frame, and its frame count.
    pub first_frame: u32,
    pub frames: u32,
    /// Bit-packed data, all frames: pixel k of frame f at bit (f·rows·columns + k).
    #[serde(skip)]
    pub bits: Vec<u8>,
}

impl Overlay {
    /// Is bit (column, row) of the plane set on image frame `frame` (0-based)?
    /// Coordinates are the plane's own (0-based).
    pub fn bit(&self, frame: u32, column: u32, row: u32) -> bool {
        let Some(f) = (frame + 1).checked_sub(self.first_frame) else {
            return false;
        };
        if f >= self.frames || column >= self.columns || row >= self.rows {
            return false;
        }
        let k = (f as usize * self.rows as usize + row as usize) * self.columns as usize
            + column as usize;
        self.bits.get(k / 8).is_some_and(|b| b >> (k % 8) & 1 == 1)
    }

    /// Does the plane cover image pixel (column, row), 0-based, on `frame`?
    pub fn covers(&self, frame: u32, column: u32, row: u32) -> bool {
        let c = column as i64 - (self.origin[1] as i64 - 1);
        let r = row as i64 - (self.origin[0] as i64 - 1);
        c >= 0 && r >= 0 && self.bit(frame, c as u32, r as u32)
    }

    /// Does the plane apply to image frame `frame` (0-based)?
    pub fn on_frame(&self, frame: u32) -> bool {
        frame + 1 >= self.first_frame && frame + 1 < self.first_frame + self.frames
    }
}
