//! The palettes of a PALETTE COLOR image (C.7.9): three LUTs, red, green, blue.

use super::lut::Lut;

/// Red, green and blue palette LUTs of a PALETTE COLOR image.
#[derive(Debug, Clone, PartialEq)]
pub struct Palette {
    pub red: Lut,
    pub green: Lut,
    pub blue: Lut,
}

impl Palette {
    /// 8-bit RGB for a stored index.
    pub fn rgb8(&self, index: i64) -> [u8; 3] {
        let c = |l: &Lut| ((l.lookup(index) as f64 / l.max_output()) * 255.0).round() as u8;
        [c(&self.red), c(&self.green), c(&self.blue)]
    }
}
