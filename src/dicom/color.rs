//! Colour as stored: reading PALETTE COLOR lookup tables (plain and segmented, 8- and 16-bit entries) and the
//! YBR → RGB conversions of PS3.3 C.7.6.3.1.2.

use dicom_dictionary_std::tags;

use crate::dicom::attr::{self, Item};

use crate::values::{Lut, Palette};

impl Palette {
    /// Read the three palettes, expanding segmented ones (C.7.9.2).
    pub fn from_dataset(ds: &Item, signed_index: bool) -> Option<Palette> {
        let one = |desc_tag, data_tag, seg_tag| -> Option<Lut> {
            let d = attr::words(ds, desc_tag)?;
            if d.len() < 3 {
                return None;
            }
            let descriptor = [d[0], d[1], d[2]];
            if let Some(words) = attr::words(ds, data_tag) {
                let len = attr::bytes(ds, data_tag).map(|b| b.len()).unwrap_or(0);
                return Lut::from_descriptor(descriptor, signed_index, &words, len, None);
            }
            let seg = attr::words(ds, seg_tag)?;
            let n = if d[0] == 0 { 65536 } else { d[0] as usize };
            let expanded = expand_segmented(&seg, n, d[2])?;
            let len = expanded.len() * 2;
            Lut::from_descriptor(descriptor, signed_index, &expanded, len, None)
        };
        Some(Palette {
            red: one(
                tags::RED_PALETTE_COLOR_LOOKUP_TABLE_DESCRIPTOR,
                tags::RED_PALETTE_COLOR_LOOKUP_TABLE_DATA,
                tags::SEGMENTED_RED_PALETTE_COLOR_LOOKUP_TABLE_DATA,
            )?,
            green: one(
                tags::GREEN_PALETTE_COLOR_LOOKUP_TABLE_DESCRIPTOR,
                tags::GREEN_PALETTE_COLOR_LOOKUP_TABLE_DATA,
                tags::SEGMENTED_GREEN_PALETTE_COLOR_LOOKUP_TABLE_DATA,
            )?,
            blue: one(
                tags::BLUE_PALETTE_COLOR_LOOKUP_TABLE_DESCRIPTOR,
                tags::BLUE_PALETTE_COLOR_LOOKUP_TABLE_DATA,
                tags::SEGMENTED_BLUE_PALETTE_COLOR_LOOKUP_TABLE_DATA,
            )?,
        })
    }
}

/// Expand segmented palette data (C.7.9.2): discrete (0), linear (1) and indirect
/// (2) segments. Returns `None` for malformed data rather than guessing.
pub fn expand_segmented(seg: &[u16], n: usize, bits: u16) -> Option<Vec<u16>> {
    // 8-bit segmented data is stored one value per word, like 16-bit.
    let _ = bits;
    let mut out: Vec<u16> = Vec::with_capacity(n);
    // Offsets of where each segment started in `out`, for indirect segments.
    let mut starts: Vec<(usize, usize)> = Vec::new(); // (position in seg, position in out)
    let mut i = 0usize;
    let mut guard = 0usize;
    while i < seg.len() && out.len() < n {
        guard += 1;
        if guard > 1_000_000 {
            return None;
        }
        let op = seg[i];
        let len = *seg.get(i + 1)? as usize;
        starts.push((i, out.len()));
        match op {
            0 => {
                let vals = seg.get(i + 2..i + 2 + len)?;
                out.extend_from_slice(vals);
                i += 2 + len;
            }
            1 => {
                let y1 = *seg.get(i + 2)? as f64;
                let y0 = *out.last()? as f64;
                for k in 1..=len {
                    out.push((y0 + (y1 - y0) * k as f64 / len as f64).round() as u16);
                }
                i += 3;
            }
            2 => {
                let lo = *seg.get(i + 2)? as u32;
                let hi = *seg.get(i + 3)? as u32;
                let offset = (lo | (hi << 16)) as usize;
                // Copy `len` segments starting at the byte offset given (in words).
                let first = starts.iter().position(|(p, _)| *p == offset)?;
                let sub: Vec<usize> = starts[first..].iter().map(|(p, _)| *p).take(len).collect();
                if sub.len() < len {
                    return None;
                }
                // Re-run those segments.
                for p in sub {
                    let end = next_segment(seg, p)?;
                    let expanded = expand_segmented_nested(&seg[p..end], out.last().copied())?;
                    out.extend(expanded);
                }
                i += 4;
            }
            _ => return None,
        }
    }
    if out.len() < n {
        return None;
    }
    out.truncate(n);
    Some(out)
}

fn next_segment(seg: &[u16], p: usize) -> Option<usize> {
    let len = *seg.get(p + 1)? as usize;
    match seg.get(p)? {
        0 => Some(p + 2 + len),
        1 => Some(p + 3),
        _ => None,
    }
}

fn expand_segmented_nested(seg: &[u16], previous: Option<u16>) -> Option<Vec<u16>> {
    let len = *seg.get(1)? as usize;
    match seg[0] {
        0 => Some(seg.get(2..2 + len)?.to_vec()),
        1 => {
            let y1 = *seg.get(2)? as f64;
            let y0 = previous? as f64;
            Some(
                (1..=len)
                    .map(|k| (y0 + (y1 - y0) * k as f64 / len as f64).round() as u16)
                    .collect(),
            )
        }
        _ => None,
    }
}

/// YBR_FULL → RGB for samples of `bits` bits (C.7.6.3.1.2), rounded and clamped.
pub fn ybr_full_to_rgb(y: f64, cb: f64, cr: f64, bits: u16) -> [u32; 3] {
    let bits = bits.clamp(1, 32) as u32;
    let half = (1u64 << (bits - 1)) as f64;
    let max = ((1u64 << bits) - 1) as f64;
    let r = y + 1.402 * (cr - half);
    let g = y - 0.344_136 * (cb - half) - 0.714_136 * (cr - half);
    let b = y + 1.772 * (cb - half);
    let c = |v: f64| v.round().clamp(0.0, max) as u32;
    [c(r), c(g), c(b)]
}

/// YBR_PARTIAL → RGB (8-bit head-room coding).
pub fn ybr_partial_to_rgb(y: f64, cb: f64, cr: f64) -> [u32; 3] {
    let yy = 1.164_383_6 * (y - 16.0);
    let r = yy + 1.596_026_8 * (cr - 128.0);
    let g = yy - 0.391_762_3 * (cb - 128.0) - 0.812_967_6 * (cr - 128.0);
    let b = yy + 2.017_232_1 * (cb - 128.0);
    let c = |v: f64| v.round().clamp(0.0, 255.0) as u32;
    [c(r), c(g), c(b)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segmented_discrete_and_linear() {
        // discrete 2 values, then linear 4 steps to 100
        let seg = [0u16, 2, 0, 20, 1, 4, 100];
        let out = expand_segmented(&seg, 6, 16).expect("expand");
        assert_eq!(out, vec![0, 20, 40, 60, 80, 100]);
    }

    #[test]
    fn segmented_rejects_garbage() {
        assert!(expand_segmented(&[7, 1, 1], 3, 16).is_none());
        assert!(expand_segmented(&[0, 10, 1], 3, 16).is_none());
    }

    #[test]
    fn ybr_grey_stays_grey() {
        assert_eq!(ybr_full_to_rgb(100.0, 128.0, 128.0, 8), [100, 100, 100]);
        // pure red in YBR_FULL
        let [r, g, b] = ybr_full_to_rgb(76.245, 84.972, 255.0, 8);
        assert!(r >= 254 && g <= 1 && b <= 1, "{r} {g} {b}");
    }
}
