//! A sequential DCT JPEG decoder (ISO 10918-1 processes 1, 2 and 4: baseline and
//! extended, Huffman coded, 8- and 12-bit samples).
//!
//! `jpeg-decoder` stops at 8 bits, yet 12-bit "JPEG Extended" is still common in
//! CT and MR archives. This decoder covers both precisions with one code path and
//! follows libjpeg 6b where the standard leaves room — the integer "islow" IDCT,
//! fixed-point YCbCr conversion, colour space from JFIF/Adobe markers and component
//! IDs, "fancy" (triangle) chroma upsampling — so it agrees with DCMTK, the
//! reference renderer, within a level. It also decodes lossless JPEG (process 14,
//! predictors 1–7). Progressive and arithmetic-coded JPEG are reported as
//! unsupported (callers fall back to `jpeg-decoder` or dicom-pixeldata).
//!
//! Where things are: `markers` parses the marker segments (tables, frame and scan
//! headers) that [`decode`] walks; `huffman` holds the tables and the bit reader
//! of the entropy-coded data; `sequential` decodes DCT scans (with libjpeg's
//! integer IDCT) and `lossless` predictive ones, each into per-component planes;
//! `color` turns the planes into interleaved samples (upsampling, YCbCr → RGB).

mod color;
mod huffman;
mod lossless;
mod markers;
mod sequential;

use crate::dicom::header::Photometric;
use huffman::Huffman;

/// Result of decoding: samples interleaved, 1 or 3 per pixel.
#[derive(Debug)]
pub struct Decoded {
    pub width: usize,
    pub height: usize,
    pub components: usize,
    pub precision: u8,
    /// Interleaved samples in `0..2^precision`.
    pub samples: Vec<i32>,
    /// RGB after colour conversion, or the stored colour space.
    pub photometric: Photometric,
}

/// Errors are plain text; `Unsupported` lets the caller try another decoder.
#[derive(Debug)]
pub enum JpegError {
    Unsupported(String),
    Invalid(String),
}

impl std::fmt::Display for JpegError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unsupported(s) => write!(f, "unsupported JPEG: {s}"),
            Self::Invalid(s) => write!(f, "invalid JPEG: {s}"),
        }
    }
}

type R<T> = Result<T, JpegError>;

fn bad<T>(s: impl Into<String>) -> R<T> {
    Err(JpegError::Invalid(s.into()))
}

/// One component of the frame and, once its scans are decoded, its samples.
#[derive(Clone)]
struct Component {
    id: u8,
    /// Horizontal and vertical sampling factors.
    h: usize,
    v: usize,
    /// Quantisation table.
    tq: usize,
    /// Blocks per line / column in this component (padded to whole MCUs).
    bw: usize,
    bh: usize,
    /// Decoded samples (bw*8 × bh*8).
    plane: Vec<i32>,
    dc_pred: i32,
}

/// Zigzag order: the natural (row-major) index of the k-th coefficient.
const ZIGZAG: [usize; 64] = [
    0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20,
    13, 6, 7, 14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59,
    52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
];

/// Decode a JPEG stream. `pi` is the DICOM Photometric Interpretation, the hint
/// used when the stream has no JFIF/Adobe marker.
pub fn decode(data: &[u8], pi: &Photometric) -> R<Decoded> {
    if data.len() < 4 || data[0] != 0xFF || data[1] != 0xD8 {
        return bad("no SOI marker");
    }
    let mut qt = [[0u16; 64]; 4];
    let mut dc: Vec<Huffman> = vec![Huffman::default(); 4];
    let mut ac: Vec<Huffman> = vec![Huffman::default(); 4];
    let mut comps: Vec<Component> = Vec::new();
    let mut frame: Option<markers::FrameHeader> = None;
    let mut restart_interval = 0usize;
    let mut jfif = false;
    let mut adobe: Option<u8> = None;
    let mut pos = 2;
    let mut scans = 0;
    loop {
        // Find the next marker.
        while pos < data.len() && data[pos] != 0xFF {
            pos += 1;
        }
        while pos < data.len() && data[pos] == 0xFF {
            pos += 1;
        }
        if pos >= data.len() {
            break;
        }
        let m = data[pos];
        pos += 1;
        if m == 0xD9 {
            break; // EOI
        }
        if (0xD0..=0xD7).contains(&m) || m == 0x01 {
            continue;
        }
        let len = match data.get(pos..pos + 2) {
            Some(b) => u16::from_be_bytes([b[0], b[1]]) as usize,
            None => return bad("truncated marker segment"),
        };
        if len < 2 || pos + len > data.len() {
            return bad(format!("marker FF{m:02X} segment runs past the end"));
        }
        let seg = &data[pos + 2..pos + len];
        match m {
            0xE0 if seg.starts_with(b"JFIF\0") => jfif = true,
            0xEE if seg.len() >= 12 && seg.starts_with(b"Adobe") => adobe = Some(seg[11]),
            0xDB => markers::dqt(seg, &mut qt)?,
            0xC4 => markers::dht(seg, &mut dc, &mut ac)?,
            0xDD => restart_interval = markers::dri(seg),
            // One frame header per stream (hierarchical JPEG is refused): a
            // second one would resize everything the first one sized (found by
            // fuzzing: a 256 × 256 stream whose second header asked for 61 MB).
            0xC0 | 0xC1 | 0xC3 if frame.is_some() => return bad("a second frame header"),
            0xC0 | 0xC1 | 0xC3 => frame = Some(markers::sof(seg, m, &mut comps)?),
            0xC2 | 0xC6 | 0xCA | 0xCE => {
                return Err(JpegError::Unsupported("progressive JPEG".into()));
            }
            0xC7 | 0xCB | 0xCF => {
                return Err(JpegError::Unsupported(
                    "differential or arithmetic lossless JPEG".into(),
                ));
            }
            0xC5 | 0xC9 | 0xCD => {
                return Err(JpegError::Unsupported(
                    "arithmetic or hierarchical JPEG".into(),
                ));
            }
            0xDA => {
                let Some(f) = frame else {
                    return bad("scan before frame header");
                };
                let scan = markers::sos(seg, &comps)?;
                pos = if f.lossless {
                    lossless::decode_lossless_scan(
                        data,
                        pos + len,
                        &mut comps,
                        &scan.components,
                        &dc,
                        restart_interval,
                        f.width,
                        f.height,
                        f.precision,
                        scan.ss,
                        scan.al,
                    )?
                } else {
                    sequential::decode_scan(
                        data,
                        pos + len,
                        &mut comps,
                        &scan.components,
                        &dc,
                        &ac,
                        &qt,
                        restart_interval,
                        f.hmax,
                        f.vmax,
                        f.width,
                        f.height,
                        f.precision,
                    )?
                };
                scans += 1;
                continue;
            }
            _ => {}
        }
        pos += len;
    }
    let Some(f) = frame.filter(|_| scans > 0) else {
        return bad("no scan");
    };
    if f.lossless {
        // Lossless streams carry samples as they were: no colour transform.
        return color::assemble(
            comps,
            f.width,
            f.height,
            f.precision,
            f.hmax,
            f.vmax,
            false,
            Some(0),
            pi,
        )
        .map(|mut d| {
            d.photometric = pi.clone();
            d
        });
    }
    color::assemble(
        comps,
        f.width,
        f.height,
        f.precision,
        f.hmax,
        f.vmax,
        jfif,
        adobe,
        pi,
    )
}
