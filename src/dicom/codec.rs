//! Codecs Lightbox runs itself, and the frame ↔ fragment mapping they share.
//!
//! - RLE Lossless (PS3.5 Annex G) for 8, 16 and 32 bits, any samples per pixel
//!   (the `dicom-pixeldata` adapter stops at 16 bits).
//! - The fallback for 8-bit JPEG streams [`super::jpeg`] declines (progressive):
//!   `jpeg-decoder`, with the colour transform DCMTK and pydicom would choose (a
//!   stream without JFIF/Adobe markers in an RGB image holds RGB samples).

use dicom_core::value::Value;
use dicom_dictionary_std::tags;
use dicom_object::DefaultDicomObject;

use super::header::{Photometric, PixelFormat};

/// The compressed bytes of one frame. Frames map to fragments one-to-one when the
/// counts agree; a single frame takes every fragment; otherwise the Extended or Basic
/// Offset Table is used, and without one a new frame starts at each fragment that
/// opens with a JPEG SOI marker.
pub fn frame_bytes(obj: &DefaultDicomObject, frames: u32, frame: u32) -> Result<Vec<u8>, String> {
    let elem = obj.element(tags::PIXEL_DATA).map_err(|e| e.to_string())?;
    let Value::PixelSequence(seq) = elem.value() else {
        return Err("Pixel Data is not encapsulated".into());
    };
    let fragments = seq.fragments();
    if fragments.is_empty() {
        return Err("encapsulated Pixel Data has no fragments".into());
    }
    if frames == 1 {
        return Ok(fragments.iter().flat_map(|f| f.iter().copied()).collect());
    }
    if fragments.len() == frames as usize {
        return Ok(fragments[frame as usize].to_vec());
    }
    // Byte offsets of each fragment's item (8-byte item header + value).
    let mut starts = Vec::with_capacity(fragments.len());
    let mut pos = 0u64;
    for f in fragments {
        starts.push(pos);
        pos += 8 + f.len() as u64;
    }
    let gather = |begin: u64, end: u64| -> Vec<u8> {
        fragments
            .iter()
            .zip(starts.iter())
            .filter(|(_, s)| **s >= begin && **s < end)
            .flat_map(|(f, _)| f.iter().copied())
            .collect()
    };
    let extended: Option<Vec<u64>> = obj.get(tags::EXTENDED_OFFSET_TABLE).and_then(|e| {
        let b = e.to_bytes().ok()?;
        Some(
            b.chunks_exact(8)
                .map(|c| u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
                .collect(),
        )
    });
    let basic: Vec<u64> = seq.offset_table().iter().map(|&o| o as u64).collect();
    for table in [extended.unwrap_or_default(), basic] {
        if table.len() == frames as usize {
            let begin = table[frame as usize];
            let end = table.get(frame as usize + 1).copied().unwrap_or(u64::MAX);
            let bytes = gather(begin, end);
            if !bytes.is_empty() {
                return Ok(bytes);
            }
        }
    }
    // No usable table: frames begin at fragments starting with SOI (FFD8) for JPEG.
    let firsts: Vec<usize> = fragments
        .iter()
        .enumerate()
        .filter(|(_, f)| f.len() >= 2 && f[0] == 0xFF && f[1] == 0xD8)
        .map(|(i, _)| i)
        .collect();
    if firsts.len() == frames as usize {
        let a = firsts[frame as usize];
        let b = firsts
            .get(frame as usize + 1)
            .copied()
            .unwrap_or(fragments.len());
        return Ok(fragments[a..b]
            .iter()
            .flat_map(|f| f.iter().copied())
            .collect());
    }
    Err(format!(
        "cannot find frame {frame}: {} fragments for {frames} frames and no usable offset table",
        fragments.len()
    ))
}

/// Decode one RLE Lossless frame into little-endian interleaved samples.
pub fn rle_decode(data: &[u8], fmt: &PixelFormat) -> Result<Vec<u8>, String> {
    if data.len() < 64 {
        return Err("RLE header truncated".into());
    }
    let word = |i: usize| {
        u32::from_le_bytes([
            data[4 * i],
            data[4 * i + 1],
            data[4 * i + 2],
            data[4 * i + 3],
        ]) as usize
    };
    let segments = word(0);
    let bytes_per_sample = (fmt.bits_allocated as usize).div_ceil(8);
    let spp = fmt.samples_per_pixel as usize;
    if segments != bytes_per_sample * spp || segments > 15 {
        return Err(format!(
            "RLE header has {segments} segments, expected {} for {spp} sample(s) of {} bits",
            bytes_per_sample * spp,
            fmt.bits_allocated
        ));
    }
    let pixels = fmt.rows as usize * fmt.columns as usize;
    let mut out = vec![0u8; pixels * spp * bytes_per_sample];
    for s in 0..segments {
        let start = word(s + 1);
        let end = if s + 1 < segments {
            word(s + 2)
        } else {
            data.len()
        };
        if start < 64 || start > end || end > data.len() {
            return Err(format!(
                "RLE segment {s} offsets {start}..{end} out of range"
            ));
        }
        let plane = packbits(&data[start..end], pixels)?;
        // Segment order: sample by sample, most significant byte first.
        let sample = s / bytes_per_sample;
        let byte = bytes_per_sample - 1 - (s % bytes_per_sample);
        for (i, v) in plane.into_iter().enumerate() {
            out[(i * spp + sample) * bytes_per_sample + byte] = v;
        }
    }
    Ok(out)
}

/// PackBits decoding of one segment, stopping at `n` bytes (a short segment is an
/// error; trailing padding is ignored).
fn packbits(src: &[u8], n: usize) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(n);
    let mut i = 0;
    while out.len() < n && i < src.len() {
        let h = src[i] as i8;
        i += 1;
        if h >= 0 {
            let len = h as usize + 1;
            let lit = src
                .get(i..i + len)
                .ok_or("RLE literal run past end of segment")?;
            out.extend_from_slice(lit);
            i += len;
        } else if h != -128 {
            let v = *src.get(i).ok_or("RLE replicate run past end of segment")?;
            i += 1;
            out.extend(std::iter::repeat_n(v, (1 - h as isize) as usize));
        }
    }
    if out.len() < n {
        return Err(format!(
            "RLE segment decodes to {} bytes, expected {n}",
            out.len()
        ));
    }
    out.truncate(n);
    Ok(out)
}

/// Markers in a JPEG stream before its first scan.
#[derive(Debug, Default)]
pub struct JpegInfo {
    pub jfif: bool,
    pub adobe: bool,
    /// The frame header's (SOFn, or JPEG-LS's SOF55) width and height, and
    /// its components.
    pub frame: Option<(u16, u16, u8)>,
}

/// Scan JPEG markers up to the first SOS.
pub fn jpeg_info(data: &[u8]) -> JpegInfo {
    let mut info = JpegInfo::default();
    let mut i = 2;
    while i + 4 <= data.len() {
        if data[i] != 0xFF {
            i += 1;
            continue;
        }
        let m = data[i + 1];
        if m == 0xFF || m == 0x00 || (0xD0..=0xD8).contains(&m) || m == 0x01 {
            i += if m == 0xFF { 1 } else { 2 };
            continue;
        }
        let len = u16::from_be_bytes([data[i + 2], data[i + 3]]) as usize;
        let body = data.get(i + 4..i + 2 + len).unwrap_or(&[]);
        match m {
            0xE0 if body.starts_with(b"JFIF") => info.jfif = true,
            0xEE if body.starts_with(b"Adobe") => info.adobe = true,
            0xC0..=0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF | 0xF7
                if body.len() >= 6 && info.frame.is_none() =>
            {
                let height = u16::from_be_bytes([body[1], body[2]]);
                let width = u16::from_be_bytes([body[3], body[4]]);
                info.frame = Some((width, height, body[5]));
            }
            0xDA => break,
            _ => {}
        }
        i += 2 + len;
    }
    info
}

/// A JPEG or JPEG-LS frame's own size against the header's Columns × Rows,
/// before any decoder allocates what the stream declares (found by fuzzing:
/// a 148-byte lossless stream declaring 65469 × 194 pixels in a 64 × 64
/// image). A frame header whose height is 0 (defined later by DNL) passes.
pub fn check_jpeg_size(data: &[u8], columns: u32, rows: u32) -> Result<(), String> {
    match jpeg_info(data).frame {
        Some((w, h, _)) if h != 0 && (u32::from(w), u32::from(h)) != (columns, rows) => Err(
            format!("JPEG frame is {w}×{h}, the header says {columns}×{rows}"),
        ),
        _ => Ok(()),
    }
}

/// Decode an 8-bit JPEG (baseline or extended) frame to interleaved samples, with the
/// colour transform DICOM implies.
pub fn jpeg8_decode(data: &[u8], pi: &Photometric) -> Result<(Vec<u8>, Photometric), String> {
    let info = jpeg_info(data);
    let mut decoder = jpeg_decoder::Decoder::new(data);
    let rgb_as_stored = *pi == Photometric::Rgb && !info.jfif && !info.adobe;
    if rgb_as_stored {
        decoder.set_color_transform(jpeg_decoder::ColorTransform::None);
    }
    let pixels = decoder.decode().map_err(|e| format!("JPEG decoder: {e}"))?;
    let meta = decoder
        .info()
        .ok_or("JPEG decoder returned no frame information")?;
    let out_pi = match meta.pixel_format {
        jpeg_decoder::PixelFormat::RGB24 => Photometric::Rgb,
        jpeg_decoder::PixelFormat::L8 => Photometric::Monochrome2,
        other => return Err(format!("unsupported JPEG pixel format {other:?}")),
    };
    Ok((pixels, out_pi))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packbits_literal_and_replicate() {
        // literal 3 bytes, replicate 0x07 four times, no-op
        let src = [2u8, 1, 2, 3, 0xFD, 7, 0x80];
        assert_eq!(
            packbits(&src, 7).expect("decode"),
            vec![1, 2, 3, 7, 7, 7, 7]
        );
        assert!(packbits(&src, 9).is_err());
        assert!(packbits(&[5u8, 1], 6).is_err());
    }
}
