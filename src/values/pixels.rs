//! Stored pixel values of one decoded frame: what the decoder produces and the
//! display pipeline and the GPU consume.

/// Decoded samples of one frame.
#[derive(Debug, Clone, PartialEq)]
pub enum Samples {
    /// One stored value per pixel (grayscale, or palette indices), masked and
    /// sign-extended as Pixel Representation says.
    Mono(Vec<i32>),
    /// Interleaved RGB, each sample in `0..=2^bits_stored - 1`.
    Rgb(Vec<u32>),
}

/// One decoded frame.
#[derive(Debug, Clone, PartialEq)]
pub struct FramePixels {
    pub rows: u32,
    pub columns: u32,
    /// Bits per sample of the values in `samples`.
    pub bits_stored: u16,
    pub samples: Samples,
}

impl FramePixels {
    /// Smallest and largest grayscale value (None for colour or empty frames).
    pub fn min_max(&self) -> Option<(i32, i32)> {
        match &self.samples {
            Samples::Mono(v) => {
                let mut it = v.iter().copied();
                let first = it.next()?;
                Some(it.fold((first, first), |(lo, hi), x| (lo.min(x), hi.max(x))))
            }
            Samples::Rgb(_) => None,
        }
    }
}
