//! Lookup-table values as the standard defines them (PS3.3 C.11): Rescale, LUTs from
//! a descriptor and data, the VOI LUT Function, windows and the modality
//! transformation. Plain data shared by the header (which reads them), the display
//! pipeline (which applies them, `imaging::lut`) and the GPU (which encodes them).

use serde::Serialize;

/// Rescale Slope / Intercept (C.11.1.1.2). Identity when the file has none.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Rescale {
    pub slope: f64,
    pub intercept: f64,
}

impl Default for Rescale {
    fn default() -> Self {
        Self {
            slope: 1.0,
            intercept: 0.0,
        }
    }
}

impl Rescale {
    /// Modality value of a stored value.
    pub fn apply(&self, stored: f64) -> f64 {
        stored * self.slope + self.intercept
    }
    /// True when the transformation changes nothing.
    pub fn is_identity(&self) -> bool {
        self.slope == 1.0 && self.intercept == 0.0
    }
}

/// A LUT as defined by a LUT Descriptor (C.11.1.1.1) and its LUT Data.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Lut {
    /// Input value mapped to the first entry.
    pub first_mapped: i64,
    /// Bits per entry, as used to scale the output (may be corrected from the data).
    pub bits: u16,
    /// The entries.
    #[serde(skip)]
    pub data: Vec<u16>,
    /// LUT Explanation, if given.
    pub explanation: Option<String>,
}

impl Lut {
    /// Build from the three descriptor words and the data words, applying the
    /// standard's rules: 0 entries means 65536; the first mapped value is signed
    /// when the input is signed; 8-bit entries may come packed two per word.
    pub fn from_descriptor(
        descriptor: [u16; 3],
        signed_input: bool,
        data_words: &[u16],
        data_bytes_len: usize,
        explanation: Option<String>,
    ) -> Option<Lut> {
        let n = if descriptor[0] == 0 {
            65536
        } else {
            descriptor[0] as usize
        };
        let first_mapped = if signed_input {
            descriptor[1] as i16 as i64
        } else {
            descriptor[1] as i64
        };
        let mut bits = descriptor[2];
        let data: Vec<u16> = if data_words.len() >= n {
            data_words[..n].to_vec()
        } else if bits == 8 && data_bytes_len >= n && data_words.len() * 2 >= n {
            // 8-bit entries packed two per 16-bit word, low byte first.
            data_words
                .iter()
                .flat_map(|w| [w & 0xff, w >> 8])
                .take(n)
                .collect()
        } else {
            return None;
        };
        if n == 0 || data.is_empty() {
            return None;
        }
        // Some writers declare 16 bits for 8-bit data or the reverse; scale by what the
        // data really needs when it exceeds the declared depth (as DCMTK does).
        let max = data.iter().copied().max().unwrap_or(0);
        if !(1..=16).contains(&bits) || (bits < 16 && max as u32 >= (1u32 << bits)) {
            bits = 16 - max.leading_zeros() as u16;
            bits = bits.max(1);
        }
        Some(Lut {
            first_mapped,
            bits,
            data,
            explanation,
        })
    }

    /// The entry for an input value, clamped at both ends (C.11.2.1.1).
    pub fn lookup(&self, x: i64) -> u16 {
        let last = self.data.len() as i64 - 1;
        let i = (x - self.first_mapped).clamp(0, last);
        self.data[i as usize]
    }

    /// Largest representable entry, `2^bits - 1`.
    pub fn max_output(&self) -> f64 {
        ((1u32 << self.bits) - 1) as f64
    }
}

/// VOI LUT Function (C.11.2.1.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum VoiFunction {
    #[default]
    Linear,
    LinearExact,
    Sigmoid,
}

impl VoiFunction {
    /// Parse the attribute value; unknown values fall back to LINEAR as the standard
    /// requires for absent values.
    pub fn parse(s: &str) -> Option<VoiFunction> {
        match s.trim().to_ascii_uppercase().as_str() {
            "LINEAR" => Some(Self::Linear),
            "LINEAR_EXACT" => Some(Self::LinearExact),
            "SIGMOID" => Some(Self::Sigmoid),
            _ => None,
        }
    }
}

/// One window: centre and width, with the file's explanation if any.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Window {
    pub center: f64,
    pub width: f64,
    pub explanation: Option<String>,
}

impl Window {
    pub fn new(center: f64, width: f64) -> Self {
        Self {
            center,
            width,
            explanation: None,
        }
    }
}

/// The modality transformation of an image.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum ModalityTransform {
    Rescale(Rescale),
    Lut(Lut),
}

impl ModalityTransform {
    /// Modality value for a stored value.
    pub fn apply(&self, stored: i64) -> f64 {
        match self {
            ModalityTransform::Rescale(r) => r.apply(stored as f64),
            ModalityTransform::Lut(l) => l.lookup(stored) as f64,
        }
    }
}
