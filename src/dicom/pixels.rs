//! Pixel decoding: one frame of any supported transfer syntax into stored values.
//!
//! Native (uncompressed) pixel data is unpacked here directly — 1/8/16/32 bits,
//! Bits Stored < Bits Allocated (masked and sign-extended), planar configuration,
//! YBR_FULL(_422) — because that is both the fast path and the one where the details
//! matter. Encapsulated pixel data goes through the `dicom-pixeldata` codecs
//! (JPEG, JPEG-LS, JPEG 2000, RLE) and then through the same unpacking.

use dicom_core::value::Value;
use dicom_dictionary_std::tags;
use dicom_object::DefaultDicomObject;
use dicom_pixeldata::PixelDecoder;

use super::codec;
use super::color::{ybr_full_to_rgb, ybr_partial_to_rgb};
use super::header::{ImageHeader, Photometric, PixelFormat};
use crate::error::{Error, Result};

pub use crate::values::pixels::{FramePixels, Samples};

/// Human-readable transfer syntax name.
pub fn transfer_syntax_name(uid: &str) -> String {
    use dicom_encoding::TransferSyntaxIndex;
    dicom_transfer_syntax_registry::TransferSyntaxRegistry
        .get(uid)
        .map(|ts| format!("{} ({uid})", ts.name()))
        .unwrap_or_else(|| format!("unknown transfer syntax {uid}"))
}

/// Whether the transfer syntax keeps pixel data native (not encapsulated).
pub fn is_native(ts_uid: &str) -> bool {
    matches!(
        ts_uid,
        "1.2.840.10008.1.2"
            | "1.2.840.10008.1.2.1"
            | "1.2.840.10008.1.2.2"
            | "1.2.840.10008.1.2.1.99"
    )
}

/// Decode frame `frame` (0-based) of an object read with its pixel data.
pub fn decode_frame(
    obj: &DefaultDicomObject,
    header: &ImageHeader,
    frame: u32,
) -> Result<FramePixels> {
    let fmt = header.pixel.as_ref().ok_or_else(|| Error::Unsupported {
        path: header.path.clone(),
        what: format!(
            "no pixel data (SOP Class {}): not an image",
            header.sop_class_uid
        ),
    })?;
    if frame >= fmt.number_of_frames {
        return Err(Error::Usage(format!(
            "{}: frame {frame} does not exist (the image has {} frame(s); frames count from 0)",
            header.path.display(),
            fmt.number_of_frames
        )));
    }
    let decode_err = |reason: String| Error::Decode {
        path: header.path.clone(),
        frame,
        syntax: transfer_syntax_name(&header.transfer_syntax),
        reason,
    };
    if obj.get(tags::PIXEL_DATA).is_none() {
        if obj.get(tags::FLOAT_PIXEL_DATA).is_some()
            || obj.get(tags::DOUBLE_FLOAT_PIXEL_DATA).is_some()
        {
            return Err(Error::Unsupported {
                path: header.path.clone(),
                what: "Float/Double Float Pixel Data".into(),
            });
        }
        return Err(Error::Missing {
            path: header.path.clone(),
            attribute: "Pixel Data",
        });
    }
    let pixel_elem = obj
        .element(tags::PIXEL_DATA)
        .map_err(|e| decode_err(e.to_string()))?;
    match pixel_elem.value() {
        Value::Primitive(p) => {
            let bytes = little_endian_samples(p, &header.transfer_syntax, fmt.bits_allocated);
            let frame_bits = frame_bits(fmt);
            let start_bit = frame_bits * frame as usize;
            let needed = (start_bit + frame_bits).div_ceil(8);
            if bytes.len() < needed {
                return Err(decode_err(format!(
                    "pixel data is truncated: {} bytes, frame needs bytes up to {}",
                    bytes.len(),
                    needed
                )));
            }
            unpack(&bytes, start_bit, fmt, &fmt.photometric, fmt.bits_allocated).map_err(decode_err)
        }
        Value::PixelSequence(_) => {
            let ts = header.transfer_syntax.as_str();
            match ts {
                "1.2.840.10008.1.2.5" => {
                    let data =
                        codec::frame_bytes(obj, fmt.number_of_frames, frame).map_err(decode_err)?;
                    let bytes = codec::rle_decode(&data, fmt).map_err(decode_err)?;
                    let mut f = fmt.clone();
                    f.planar_configuration = 0;
                    unpack(&bytes, 0, &f, &fmt.photometric, fmt.bits_allocated).map_err(decode_err)
                }
                "1.2.840.10008.1.2.4.50"
                | "1.2.840.10008.1.2.4.51"
                | "1.2.840.10008.1.2.4.57"
                | "1.2.840.10008.1.2.4.70" => {
                    let data =
                        codec::frame_bytes(obj, fmt.number_of_frames, frame).map_err(decode_err)?;
                    codec::check_jpeg_size(&data, fmt.columns, fmt.rows).map_err(decode_err)?;
                    let lossless = ts == "1.2.840.10008.1.2.4.57" || ts == "1.2.840.10008.1.2.4.70";
                    let decoded = match super::jpeg::decode(&data, &fmt.photometric) {
                        Ok(d) => d,
                        Err(super::jpeg::JpegError::Unsupported(why)) if lossless => {
                            // Subsampled or oddly restarted lossless streams.
                            return decode_with_pixeldata(obj, fmt, frame, ts)
                                .map_err(|e| decode_err(format!("{why}; fallback decoder: {e}")));
                        }
                        Err(super::jpeg::JpegError::Unsupported(why)) => {
                            // Progressive 8-bit streams.
                            let (bytes, out_pi) = codec::jpeg8_decode(&data, &fmt.photometric)
                                .map_err(|e| decode_err(format!("{why}; fallback decoder: {e}")))?;
                            let components = if out_pi == Photometric::Rgb { 3 } else { 1 };
                            super::jpeg::Decoded {
                                width: fmt.columns as usize,
                                height: fmt.rows as usize,
                                components,
                                precision: 8,
                                samples: bytes.into_iter().map(i32::from).collect(),
                                photometric: out_pi,
                            }
                        }
                        Err(e) => return Err(decode_err(e.to_string())),
                    };
                    if (decoded.width, decoded.height) != (fmt.columns as usize, fmt.rows as usize)
                    {
                        return Err(decode_err(format!(
                            "JPEG frame is {}×{}, the header says {}×{}",
                            decoded.width, decoded.height, fmt.columns, fmt.rows
                        )));
                    }
                    let mut f = fmt.clone();
                    f.planar_configuration = 0;
                    f.bits_allocated = 16;
                    f.bits_stored = f.bits_stored.min(decoded.precision as u16).max(1);
                    f.high_bit = f.bits_stored - 1;
                    if decoded.components == 1 && fmt.samples_per_pixel == 1 {
                        // Straight to stored values: mask and sign-extend as the header says.
                        let (bs, signed) = (f.bits_stored, f.signed);
                        let values = decoded
                            .samples
                            .into_iter()
                            .map(|v| normalize(v as u32, bs, bs - 1, signed) as i32)
                            .collect();
                        return Ok(FramePixels {
                            rows: fmt.rows,
                            columns: fmt.columns,
                            bits_stored: bs,
                            samples: Samples::Mono(values),
                        });
                    }
                    if decoded.components != fmt.samples_per_pixel as usize {
                        return Err(decode_err(format!(
                            "JPEG frame has {} component(s), the header says {} sample(s) per pixel",
                            decoded.components, fmt.samples_per_pixel
                        )));
                    }
                    let pi = if decoded.photometric == Photometric::Rgb {
                        Photometric::Rgb
                    } else {
                        fmt.photometric.clone()
                    };
                    let bytes: Vec<u8> = decoded
                        .samples
                        .iter()
                        .flat_map(|&v| (v as u16).to_le_bytes())
                        .collect();
                    unpack(&bytes, 0, &f, &pi, 16).map_err(decode_err)
                }
                _ => decode_with_pixeldata(obj, fmt, frame, ts).map_err(decode_err),
            }
        }
        Value::Sequence(_) => Err(decode_err("Pixel Data is a sequence".into())),
    }
}

/// Decode through the `dicom-pixeldata` codecs (JPEG-LS, JPEG 2000, and lossless
/// JPEG our decoder declines).
fn decode_with_pixeldata(
    obj: &DefaultDicomObject,
    fmt: &PixelFormat,
    frame: u32,
    ts: &str,
) -> std::result::Result<FramePixels, String> {
    if ts == "1.2.840.10008.1.2.4.80" || ts == "1.2.840.10008.1.2.4.81" {
        let data = codec::frame_bytes(obj, fmt.number_of_frames, frame)?;
        codec::check_jpeg_size(&data, fmt.columns, fmt.rows)?;
    }
    if is_jpeg2000(ts) {
        // dicom-pixeldata's adapter writes the codestream's own size into a buffer
        // sized from the header (and panics when they differ), and OpenJPEG
        // allocates what the codestream declares: both are checked first.
        let data = codec::frame_bytes(obj, fmt.number_of_frames, frame)?;
        check_j2k_size(&data, fmt)?;
    }
    let decoded = obj
        .decode_pixel_data_frame(frame)
        .map_err(|e| super::chain(&e))?;
    let data = decoded.data();
    // Codecs return samples at the header's Bits Allocated (8 or 16).
    let bits_allocated = decoded.bits_allocated();
    let out_pi = photometric_after_codec(ts, &fmt.photometric);
    let mut f = fmt.clone();
    f.planar_configuration = 0;
    f.bits_allocated = bits_allocated;
    if f.bits_stored > bits_allocated {
        f.bits_stored = bits_allocated;
        f.high_bit = bits_allocated - 1;
    }
    let need = frame_bits(&f).div_ceil(8);
    if data.len() < need {
        return Err(format!(
            "codec returned {} bytes, the frame needs {need}",
            data.len()
        ));
    }
    unpack(data, 0, &f, &out_pi, bits_allocated)
}

/// Previews are made only when the reduced frame keeps at least this many
/// pixels on its shorter side.
const PREVIEW_MIN_SIDE: u32 = 128;

/// The resolution levels a preview of this image's frames would drop (see
/// [`decode_frame_preview`]); 0: it has none (not a grey JPEG 2000 image, or
/// too small to gain).
pub fn preview_levels(header: &ImageHeader) -> u32 {
    let Some(fmt) = header.pixel.as_ref() else {
        return 0;
    };
    let side = fmt.rows.min(fmt.columns);
    let levels = (1..=3u32)
        .rev()
        .find(|&r| side >> r >= PREVIEW_MIN_SIDE)
        .unwrap_or(0);
    if is_jpeg2000(&header.transfer_syntax)
        && fmt.samples_per_pixel == 1
        && matches!(fmt.bits_allocated, 8 | 16)
    {
        levels
    } else {
        0
    }
}

/// A quick look at a JPEG 2000 frame: the codestream decoded at a lower
/// resolution level (ISO 15444-1 "reduce": 2^levels fewer samples each way,
/// skipping the finer sub-bands and most of the tier-1 work, ~5% of a full
/// decode at two levels), each sample then repeated over its 2^levels square so
/// the frame has the header's size, geometry and calibration. Returns the frame
/// and the levels dropped; None when the frame is not a grey JPEG 2000 one, or
/// too small to gain. The values are the lowest sub-band's, not the image's:
/// only for finding one's way while the full frames are decoded.
pub fn decode_frame_preview(
    obj: &DefaultDicomObject,
    header: &ImageHeader,
    frame: u32,
) -> Result<Option<Preview>> {
    let (Some(fmt), levels) = (header.pixel.as_ref(), preview_levels(header)) else {
        return Ok(None);
    };
    let ts = header.transfer_syntax.as_str();
    if levels == 0 || frame >= fmt.number_of_frames {
        return Ok(None);
    }
    let decode_err = |reason: String| Error::Decode {
        path: header.path.clone(),
        frame,
        syntax: transfer_syntax_name(ts),
        reason,
    };
    let data = codec::frame_bytes(obj, fmt.number_of_frames, frame).map_err(decode_err)?;
    check_j2k_size(&data, fmt).map_err(decode_err)?;
    // A codestream with fewer decomposition levels than asked for refuses the
    // reduction: fewer levels then.
    let mut tried = Vec::new();
    let (image, levels) = loop {
        let r = levels - tried.len() as u32;
        if r == 0 {
            return Ok(None);
        }
        match jpeg2k::Image::from_bytes_with(&data, jpeg2k::DecodeParameters::new().reduce(r)) {
            Ok(i) => break (i, r),
            Err(e) => tried.push(e.to_string()),
        }
    };
    let Some(c) = image.components().first() else {
        return Err(decode_err(
            "the JPEG 2000 codestream has no component".into(),
        ));
    };
    let (w, h) = (
        fmt.columns.div_ceil(1 << levels),
        fmt.rows.div_ceil(1 << levels),
    );
    if (c.width(), c.height()) != (w, h) || c.data().len() != w as usize * h as usize {
        return Err(decode_err(format!(
            "the JPEG 2000 frame at 1/{} is {}×{}, expected {w}×{h}",
            1 << levels,
            c.width(),
            c.height()
        )));
    }
    // As the full decode does: samples at Bits Allocated, then masked and
    // sign-extended as the header says.
    let bytes: Vec<u8> = if fmt.bits_allocated == 8 {
        c.data().iter().map(|&v| v as u8).collect()
    } else {
        c.data()
            .iter()
            .flat_map(|&v| (v as u16).to_le_bytes())
            .collect()
    };
    let mut f = fmt.clone();
    f.rows = h;
    f.columns = w;
    f.planar_configuration = 0;
    let small = unpack(&bytes, 0, &f, &fmt.photometric, fmt.bits_allocated).map_err(decode_err)?;
    Ok(Some(Preview {
        small,
        levels,
        rows: fmt.rows,
        columns: fmt.columns,
    }))
}

/// Which sample of a reduced frame `small_columns` wide covers sample `i`
/// (row-major) of the full frame, `columns` wide, `levels` levels up.
pub fn preview_source(i: usize, columns: u32, small_columns: u32, levels: u32) -> usize {
    let (x, y) = (i % columns as usize, i / columns as usize);
    (y >> levels) * small_columns as usize + (x >> levels)
}

/// A frame decoded at a lower resolution level: the reduced frame, the levels
/// dropped (each sample covers a 2^levels square of the full grid), and the
/// full frame's size.
#[derive(Debug, Clone, PartialEq)]
pub struct Preview {
    pub small: FramePixels,
    pub levels: u32,
    pub rows: u32,
    pub columns: u32,
}

impl Preview {
    /// Which reduced sample covers full-grid sample `i` (row-major).
    pub fn source(&self, i: usize) -> usize {
        preview_source(i, self.columns, self.small.columns, self.levels)
    }

    /// The preview on the full grid, each reduced sample repeated over its
    /// square.
    pub fn upsampled(&self) -> FramePixels {
        let n = self.rows as usize * self.columns as usize;
        let samples = match &self.small.samples {
            Samples::Mono(v) => Samples::Mono((0..n).map(|i| v[self.source(i)]).collect()),
            Samples::Rgb(v) => Samples::Rgb(
                (0..n)
                    .flat_map(|i| {
                        let k = 3 * self.source(i);
                        [v[k], v[k + 1], v[k + 2]]
                    })
                    .collect(),
            ),
        };
        FramePixels {
            rows: self.rows,
            columns: self.columns,
            bits_stored: self.small.bits_stored,
            samples,
        }
    }
}

fn is_jpeg2000(ts: &str) -> bool {
    ts.starts_with("1.2.840.10008.1.2.4.9") || ts.starts_with("1.2.840.10008.1.2.4.20")
}

/// The JPEG 2000 codestream's image size (SIZ, ISO 15444-1 A.5.1) against the
/// header's Rows, Columns, Samples per Pixel and Bits Allocated.
fn check_j2k_size(data: &[u8], fmt: &PixelFormat) -> std::result::Result<(), String> {
    const SOC_SIZ: [u8; 4] = [0xFF, 0x4F, 0xFF, 0x51];
    let head = &data[..data.len().min(4096)];
    let at = head
        .windows(4)
        .position(|w| w == SOC_SIZ)
        .ok_or("no JPEG 2000 codestream header (SOC, SIZ) in the frame")?;
    let siz = &data[at + 4..];
    let be32 = |o: usize| -> std::result::Result<u32, String> {
        siz.get(o..o + 4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
            .ok_or_else(|| "JPEG 2000 SIZ marker cut short".to_string())
    };
    let (x, y, x0, y0) = (be32(4)?, be32(8)?, be32(12)?, be32(16)?);
    let components = siz
        .get(36..38)
        .map(|b| u16::from_be_bytes([b[0], b[1]]))
        .ok_or("JPEG 2000 SIZ marker cut short")?;
    let width = x.saturating_sub(x0);
    let height = y.saturating_sub(y0);
    if width != fmt.columns || height != fmt.rows || components != fmt.samples_per_pixel {
        return Err(format!(
            "the JPEG 2000 codestream is {width}x{height} with {components} component(s); \
             the header says {}x{} with {}",
            fmt.columns, fmt.rows, fmt.samples_per_pixel
        ));
    }
    for c in 0..components as usize {
        let b = siz
            .get(38 + 3 * c..41 + 3 * c)
            .ok_or("JPEG 2000 SIZ marker cut short")?;
        let precision = u16::from(b[0] & 0x7F) + 1;
        if precision > fmt.bits_allocated || b[1] != 1 || b[2] != 1 {
            return Err(format!(
                "JPEG 2000 component {c}: {precision} bits, subsampled {}x{}; \
                 the header allows {} bits, no subsampling",
                b[1], b[2], fmt.bits_allocated
            ));
        }
    }
    Ok(())
}

/// Photometric interpretation of the samples a dicom-pixeldata codec hands back:
/// JPEG 2000 undoes its component transform (YBR_ICT/RCT come back as RGB); JPEG-LS
/// and lossless JPEG return the samples as they were encoded.
fn photometric_after_codec(ts: &str, pi: &Photometric) -> Photometric {
    let j2k = is_jpeg2000(ts);
    match pi {
        Photometric::YbrIct | Photometric::YbrRct if j2k => Photometric::Rgb,
        // YBR_FULL_422 after a codec that does not subsample means full-resolution YBR.
        Photometric::YbrFull422 => Photometric::YbrFull,
        other => other.clone(),
    }
}

/// The native Pixel Data value as little-endian samples of `bits_allocated` bits.
///
/// In a big-endian file the parser has already turned OW words (and OL/OF values)
/// into native numbers, while OB stays in stream order; 32-bit samples carried in
/// OW words still have their two words in big-endian order. Each case is put back
/// into the little-endian layout the unpacker reads.
fn little_endian_samples<'a>(
    p: &'a dicom_core::PrimitiveValue,
    ts: &str,
    bits_allocated: u16,
) -> std::borrow::Cow<'a, [u8]> {
    use dicom_core::PrimitiveValue as P;
    let bytes = p.to_bytes();
    if ts != "1.2.840.10008.1.2.2" {
        return bytes;
    }
    let swap = |unit: usize, bytes: &[u8]| -> Vec<u8> {
        let mut v = bytes.to_vec();
        for c in v.chunks_exact_mut(unit) {
            c.reverse();
        }
        v
    };
    match (p, bits_allocated) {
        (P::U8(_), 16) => swap(2, &bytes).into(),
        (P::U8(_), 32) => swap(4, &bytes).into(),
        (P::U16(_) | P::I16(_), 32) => {
            let mut v = bytes.into_owned();
            for c in v.chunks_exact_mut(4) {
                c.swap(0, 2);
                c.swap(1, 3);
            }
            v.into()
        }
        _ => bytes,
    }
}

/// Bits in one frame of native pixel data.
pub fn frame_bits(fmt: &PixelFormat) -> usize {
    let per_pixel = match fmt.photometric {
        Photometric::YbrFull422 | Photometric::YbrPartial422 if fmt.samples_per_pixel == 3 => {
            // 4:2:2: two samples per pixel on average
            2 * fmt.bits_allocated as usize
        }
        _ => fmt.samples_per_pixel as usize * fmt.bits_allocated as usize,
    };
    fmt.rows as usize * fmt.columns as usize * per_pixel
}

/// Read sample `i` (0-based, counting samples) of `bits_allocated` bits starting at
/// bit `start_bit`. Bytes are little-endian; 1-bit data is LSB first.
#[inline]
fn raw_sample(bytes: &[u8], start_bit: usize, i: usize, bits_allocated: u16) -> u32 {
    match bits_allocated {
        8 => bytes[start_bit / 8 + i] as u32,
        16 => {
            let o = start_bit / 8 + 2 * i;
            u16::from_le_bytes([bytes[o], bytes[o + 1]]) as u32
        }
        32 => {
            let o = start_bit / 8 + 4 * i;
            u32::from_le_bytes([bytes[o], bytes[o + 1], bytes[o + 2], bytes[o + 3]])
        }
        _ => {
            let bit = start_bit + i;
            ((bytes[bit / 8] >> (bit % 8)) & 1) as u32
        }
    }
}

/// Mask to Bits Stored at High Bit and sign-extend when signed (C.7.6.3.1.1).
#[inline]
pub fn normalize(raw: u32, bits_stored: u16, high_bit: u16, signed: bool) -> i64 {
    let shift = (high_bit + 1).saturating_sub(bits_stored) as u32;
    let bits = bits_stored as u32;
    let v = if bits >= 32 {
        raw >> shift
    } else {
        (raw >> shift) & ((1u32 << bits) - 1)
    };
    if signed && bits < 32 && (v >> (bits - 1)) & 1 == 1 {
        v as i64 - (1i64 << bits)
    } else if signed {
        v as i32 as i64
    } else {
        v as i64
    }
}

fn unpack(
    bytes: &[u8],
    start_bit: usize,
    fmt: &PixelFormat,
    pi: &Photometric,
    bits_allocated: u16,
) -> std::result::Result<FramePixels, String> {
    let n = fmt.rows as usize * fmt.columns as usize;
    let (bs, hb) = (fmt.bits_stored, fmt.high_bit);
    if fmt.samples_per_pixel == 1 {
        let mut out = Vec::with_capacity(n);
        match (bits_allocated, bs, hb, fmt.signed) {
            // Fast paths for the overwhelmingly common layouts.
            (16, _, _, false) if hb + 1 == bs => {
                let mask = if bs >= 16 { 0xffff } else { (1u16 << bs) - 1 };
                let o = start_bit / 8;
                out.extend(
                    bytes[o..o + 2 * n]
                        .chunks_exact(2)
                        .map(|c| (u16::from_le_bytes([c[0], c[1]]) & mask) as i32),
                );
            }
            (16, 16, 15, true) => {
                let o = start_bit / 8;
                out.extend(
                    bytes[o..o + 2 * n]
                        .chunks_exact(2)
                        .map(|c| i16::from_le_bytes([c[0], c[1]]) as i32),
                );
            }
            _ => {
                for i in 0..n {
                    let v = normalize(
                        raw_sample(bytes, start_bit, i, bits_allocated),
                        bs,
                        hb,
                        fmt.signed,
                    );
                    let v = i32::try_from(v)
                        .map_err(|_| format!("stored value {v} exceeds the 32-bit signed range"))?;
                    out.push(v);
                }
            }
        }
        return Ok(FramePixels {
            rows: fmt.rows,
            columns: fmt.columns,
            bits_stored: bs,
            samples: Samples::Mono(out),
        });
    }
    if bits_allocated == 1 {
        return Err("colour with Bits Allocated 1 is not valid".into());
    }
    // Colour: gather R/G/B (or Y/Cb/Cr) triples.
    let sample = |i: usize| {
        normalize(
            raw_sample(bytes, start_bit, i, bits_allocated),
            bs,
            hb,
            false,
        ) as u32
    };
    let mut rgb = Vec::with_capacity(3 * n);
    match pi {
        Photometric::YbrFull422 | Photometric::YbrPartial422 => {
            // Y1 Y2 Cb Cr for each horizontal pair (C.7.6.3.1.2); an odd last column
            // shares its chroma with nothing and reuses its own pair.
            let cols = fmt.columns as usize;
            let pairs_per_row = cols.div_ceil(2);
            // An odd last column still reads a whole Y Y Cb Cr group: with odd
            // columns the frame needs more than 2 samples a pixel.
            let samples = fmt.rows as usize * pairs_per_row * 4;
            let needed = (start_bit + samples * bits_allocated as usize).div_ceil(8);
            if needed > bytes.len() {
                return Err(format!(
                    "pixel data holds {} bytes; {} YBR_FULL_422 rows of {cols} columns need {needed}",
                    bytes.len(),
                    fmt.rows
                ));
            }
            for r in 0..fmt.rows as usize {
                for c in 0..cols {
                    let pair = r * pairs_per_row + c / 2;
                    let y = sample(pair * 4 + (c % 2)) as f64;
                    let cb = sample(pair * 4 + 2) as f64;
                    let cr = sample(pair * 4 + 3) as f64;
                    let px = if *pi == Photometric::YbrFull422 {
                        ybr_full_to_rgb(y, cb, cr, bs)
                    } else {
                        ybr_partial_to_rgb(y, cb, cr)
                    };
                    rgb.extend_from_slice(&px);
                }
            }
        }
        _ => {
            let planar = fmt.planar_configuration == 1;
            for i in 0..n {
                let (a, b, c) = if planar {
                    (sample(i), sample(n + i), sample(2 * n + i))
                } else {
                    (sample(3 * i), sample(3 * i + 1), sample(3 * i + 2))
                };
                let px = match pi {
                    Photometric::YbrFull | Photometric::YbrIct | Photometric::YbrRct => {
                        ybr_full_to_rgb(a as f64, b as f64, c as f64, bs)
                    }
                    Photometric::YbrPartial420 | Photometric::YbrPartial422 => {
                        ybr_partial_to_rgb(a as f64, b as f64, c as f64)
                    }
                    _ => [a, b, c],
                };
                rgb.extend_from_slice(&px);
            }
        }
    }
    Ok(FramePixels {
        rows: fmt.rows,
        columns: fmt.columns,
        bits_stored: bs,
        samples: Samples::Rgb(rgb),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_masks_and_sign_extends() {
        // 12 bits stored in 16, with garbage (overlay) bits above
        assert_eq!(normalize(0xF800, 12, 11, true), -2048);
        assert_eq!(normalize(0xF7FF, 12, 11, true), 2047);
        assert_eq!(normalize(0xFFFF, 12, 11, false), 4095);
        assert_eq!(normalize(0x0FFF, 12, 11, true), -1);
        // high bit not at bits_stored-1: value shifted
        assert_eq!(normalize(0x0FF0, 8, 11, false), 0xFF);
        assert_eq!(normalize(0xFFFF_FFFF, 32, 31, true), -1);
        assert_eq!(normalize(0xFFFF_FFFF, 32, 31, false), 4_294_967_295);
    }

    #[test]
    fn one_bit_is_lsb_first() {
        let bytes = [0b0000_0101u8];
        assert_eq!(raw_sample(&bytes, 0, 0, 1), 1);
        assert_eq!(raw_sample(&bytes, 0, 1, 1), 0);
        assert_eq!(raw_sample(&bytes, 0, 2, 1), 1);
        // frames are bit-contiguous: frame 1 of a 3-pixel image starts at bit 3
        assert_eq!(raw_sample(&[0b0000_1000u8], 3, 0, 1), 1);
    }
}
