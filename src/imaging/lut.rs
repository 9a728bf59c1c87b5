//! The grayscale display pipeline of PS3.4 N.2 / PS3.3 C.11, exactly:
//! stored value → Modality LUT (rescale or LUT sequence) → VOI LUT (window with
//! LINEAR / LINEAR_EXACT / SIGMOID, or a VOI LUT sequence) → Presentation LUT
//! (IDENTITY / INVERSE, MONOCHROME1 inverted *after* VOI) → output level.
//!
//! Everything here is pure. The functions compute normalised output in `[0, 1]`;
//! [`GrayPipeline::table`] turns them into a lookup table over every possible stored
//! value so a 512² frame costs one table read per pixel.

use serde::Serialize;

pub use crate::values::lut::{Lut, ModalityTransform, Rescale, VoiFunction, Window};

impl Window {
    /// Normalised output in `[0, 1]` for a modality value `x` (C.11.2.1.2).
    /// Widths the standard forbids (< 1 for LINEAR, ≤ 0 otherwise) are clamped to the
    /// smallest legal width, which turns the window into a threshold.
    ///
    /// ```
    /// use lightbox::imaging::lut::{quantize, VoiFunction, Window};
    /// // A soft-tissue window: 40 HU sits just above the middle grey, -160 HU is black.
    /// let w = Window::new(40.0, 400.0);
    /// assert_eq!(quantize(w.apply(VoiFunction::Linear, 40.0), 255), 128);
    /// assert_eq!(quantize(w.apply(VoiFunction::Linear, -160.0), 255), 0);
    /// assert_eq!(quantize(w.apply(VoiFunction::Linear, 240.0), 255), 255);
    /// ```
    pub fn apply(&self, function: VoiFunction, x: f64) -> f64 {
        let c = self.center;
        match function {
            VoiFunction::Linear => {
                let w = self.width.max(1.0);
                let lo = c - 0.5 - (w - 1.0) / 2.0;
                let hi = c - 0.5 + (w - 1.0) / 2.0;
                if x <= lo {
                    0.0
                } else if x > hi {
                    1.0
                } else {
                    (x - (c - 0.5)) / (w - 1.0) + 0.5
                }
            }
            VoiFunction::LinearExact => {
                let w = if self.width > 0.0 {
                    self.width
                } else {
                    f64::MIN_POSITIVE
                };
                if x <= c - w / 2.0 {
                    0.0
                } else if x > c + w / 2.0 {
                    1.0
                } else {
                    (x - c) / w + 0.5
                }
            }
            VoiFunction::Sigmoid => {
                let w = if self.width > 0.0 {
                    self.width
                } else {
                    f64::MIN_POSITIVE
                };
                1.0 / (1.0 + (-4.0 * (x - c) / w).exp())
            }
        }
    }
}

/// The VOI transformation chosen for display.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Voi {
    /// A window with its function.
    Window {
        window: Window,
        function: VoiFunction,
    },
    /// A VOI LUT from the VOI LUT Sequence.
    Lut(Lut),
    /// No VOI: the full range of the modality output is mapped linearly.
    Identity { min: f64, max: f64 },
}

impl Voi {
    /// Normalised output in `[0, 1]` for a modality value.
    pub fn apply(&self, x: f64) -> f64 {
        match self {
            Voi::Window { window, function } => window.apply(*function, x),
            Voi::Lut(l) => l.lookup(x.floor() as i64) as f64 / l.max_output(),
            Voi::Identity { min, max } => {
                if max <= min {
                    0.0
                } else {
                    ((x - min) / (max - min)).clamp(0.0, 1.0)
                }
            }
        }
    }
}

/// Stored value → output level, for one grayscale frame.
#[derive(Debug, Clone, PartialEq)]
pub struct GrayPipeline {
    pub modality: ModalityTransform,
    pub voi: Voi,
    /// Invert after VOI (MONOCHROME1, Presentation LUT Shape INVERSE, or the user).
    pub invert: bool,
}

impl GrayPipeline {
    /// Normalised display value in `[0, 1]` for a stored value.
    pub fn apply(&self, stored: i64) -> f64 {
        let y = self.voi.apply(self.modality.apply(stored));
        if self.invert { 1.0 - y } else { y }
    }

    /// Quantise to `0..=max_level` (255 for 8-bit output, 65535 for 16-bit).
    pub fn level(&self, stored: i64, max_level: u16) -> u16 {
        quantize(self.apply(stored), max_level)
    }

    /// A table over every stored value in `min..=max` (inclusive): entry `i` is the
    /// output level of stored value `min + i`.
    pub fn table(&self, min: i64, max: i64, max_level: u16) -> Vec<u16> {
        (min..=max).map(|v| self.level(v, max_level)).collect()
    }
}

/// Round a normalised value to an integer output level.
pub fn quantize(y: f64, max_level: u16) -> u16 {
    (y.clamp(0.0, 1.0) * max_level as f64).round() as u16
}

/// Named window presets with the values radiologists use (centre/width in HU).
pub const CT_PRESETS: &[(&str, f64, f64)] = &[
    ("brain", 40.0, 80.0),
    ("subdural", 75.0, 215.0),
    ("stroke", 40.0, 40.0),
    ("lung", -600.0, 1500.0),
    ("mediastinum", 50.0, 350.0),
    ("abdomen", 50.0, 400.0),
    ("liver", 30.0, 150.0),
    ("bone", 400.0, 1800.0),
];

/// Look up a preset by name (case-insensitive).
pub fn preset(name: &str) -> Option<Window> {
    CT_PRESETS
        .iter()
        .find(|(n, _, _)| n.eq_ignore_ascii_case(name))
        .map(|&(n, c, w)| Window {
            center: c,
            width: w,
            explanation: Some(n.to_string()),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lin(c: f64, w: f64, x: f64) -> f64 {
        Window::new(c, w).apply(VoiFunction::Linear, x)
    }

    #[test]
    fn linear_matches_standard_formula_and_edges() {
        // c=40, w=400: lower edge c-0.5-(w-1)/2 = -160, upper c-0.5+(w-1)/2 = 239
        assert_eq!(lin(40.0, 400.0, -160.0), 0.0);
        assert!(lin(40.0, 400.0, -159.0) > 0.0);
        assert_eq!(lin(40.0, 400.0, 239.5), 1.0);
        assert!(lin(40.0, 400.0, 238.0) < 1.0);
        // centre - 0.5 maps to exactly one half
        assert!((lin(40.0, 400.0, 39.5) - 0.5).abs() < 1e-12);
        // 8-bit output at the standard's formula
        let y: f64 = ((100.0 - 39.5) / 399.0 + 0.5) * 255.0;
        assert_eq!(quantize(lin(40.0, 400.0, 100.0), 255), y.round() as u16);
    }

    #[test]
    fn window_width_one_is_a_threshold() {
        // w=1: x <= c-0.5 -> 0, else 1
        assert_eq!(lin(100.0, 1.0, 99.5), 0.0);
        assert_eq!(lin(100.0, 1.0, 99.0), 0.0);
        assert_eq!(lin(100.0, 1.0, 100.0), 1.0);
        // illegal widths behave like width 1, never NaN
        assert_eq!(lin(100.0, 0.0, 100.0), 1.0);
        assert!(!lin(100.0, -5.0, 50.0).is_nan());
    }

    #[test]
    fn linear_exact_differs_from_linear_by_half() {
        let w = Window::new(0.0, 100.0);
        // LINEAR_EXACT: (x - c)/w + 0.5 ; LINEAR: (x - (c-0.5))/(w-1) + 0.5
        let e = w.apply(VoiFunction::LinearExact, 0.0);
        let l = w.apply(VoiFunction::Linear, 0.0);
        assert!((e - 0.5).abs() < 1e-12);
        assert!((l - (0.5 / 99.0 + 0.5)).abs() < 1e-12);
        assert_eq!(w.apply(VoiFunction::LinearExact, -50.0), 0.0);
        assert!(w.apply(VoiFunction::LinearExact, -49.9) > 0.0);
        assert_eq!(w.apply(VoiFunction::LinearExact, 50.1), 1.0);
        assert!((w.apply(VoiFunction::LinearExact, 50.0) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn sigmoid_matches_formula() {
        let w = Window::new(10.0, 40.0);
        assert!((w.apply(VoiFunction::Sigmoid, 10.0) - 0.5).abs() < 1e-12);
        let x: f64 = 30.0;
        let expect = 1.0 / (1.0 + (-4.0 * (x - 10.0) / 40.0).exp());
        assert!((w.apply(VoiFunction::Sigmoid, x) - expect).abs() < 1e-12);
    }

    #[test]
    fn signed_12_bit_with_rescale_and_monochrome1() {
        // signed 12-bit stored values, slope 2, intercept -10
        let p = GrayPipeline {
            modality: ModalityTransform::Rescale(Rescale {
                slope: 2.0,
                intercept: -10.0,
            }),
            voi: Voi::Window {
                window: Window::new(0.0, 4096.0),
                function: VoiFunction::Linear,
            },
            invert: true,
        };
        // stored -2048 -> -4106 (below window) -> 0 -> inverted 255
        assert_eq!(p.level(-2048, 255), 255);
        // stored 2047 -> 4084 (above window) -> 255 -> inverted 0
        assert_eq!(p.level(2047, 255), 0);
        // stored 5 -> 0 -> near the middle
        let mid = p.level(5, 255);
        assert!((127..=128).contains(&mid), "{mid}");
    }

    #[test]
    fn lut_descriptor_rules() {
        // 0 entries means 65536; signed first mapped value
        let data: Vec<u16> = (0..65536u32).map(|i| (i >> 4) as u16).collect();
        let l =
            Lut::from_descriptor([0, 0xFC00, 12], true, &data, data.len() * 2, None).expect("lut");
        assert_eq!(l.data.len(), 65536);
        assert_eq!(l.first_mapped, -1024);
        assert_eq!(l.lookup(-5000), 0);
        assert_eq!(l.lookup(-1024 + 32), 2);
        assert_eq!(l.lookup(100_000), 4095);
        // 8-bit entries packed in words
        let packed = [0x0100u16, 0x0302];
        let l = Lut::from_descriptor([4, 0, 8], false, &packed, 4, None).expect("lut");
        assert_eq!(l.data, vec![0, 1, 2, 3]);
        // declared 8 bits but 16-bit data: scale by what the data needs
        let l = Lut::from_descriptor([2, 0, 8], false, &[0, 4095], 4, None).expect("lut");
        assert_eq!(l.bits, 12);
    }

    #[test]
    fn presets_exist_with_radiology_values() {
        let lung = preset("LUNG").expect("lung");
        assert_eq!((lung.center, lung.width), (-600.0, 1500.0));
        let brain = preset("brain").expect("brain");
        assert_eq!((brain.center, brain.width), (40.0, 80.0));
        for name in [
            "brain",
            "subdural",
            "stroke",
            "lung",
            "mediastinum",
            "abdomen",
            "liver",
            "bone",
        ] {
            assert!(preset(name).is_some(), "{name}");
        }
    }
}
