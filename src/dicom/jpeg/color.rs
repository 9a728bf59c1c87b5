//! From decoded component planes to interleaved samples: the padding cropped,
//! chroma upsampled with libjpeg's "fancy" triangle filter, and YCbCr converted to
//! RGB in libjpeg's fixed point, with the colour space decided as libjpeg does
//! (JFIF, Adobe transform flag, component IDs; the DICOM header breaks the tie).

use super::{Component, Decoded, R, bad};
use crate::dicom::header::Photometric;

/// The decoded image from its component planes.
#[allow(clippy::too_many_arguments)]
pub(super) fn assemble(
    comps: Vec<Component>,
    width: usize,
    height: usize,
    precision: u8,
    hmax: usize,
    vmax: usize,
    jfif: bool,
    adobe: Option<u8>,
    pi: &Photometric,
) -> R<Decoded> {
    let n = comps.len();
    if n == 1 {
        let mut comps = comps;
        let c = &mut comps[0];
        let stride = c.bw * 8;
        let samples = if stride == width {
            // Rows are contiguous: drop the padding rows and reuse the buffer.
            let mut plane = std::mem::take(&mut c.plane);
            plane.truncate(width * height);
            plane
        } else {
            (0..height)
                .flat_map(|y| c.plane[y * stride..y * stride + width].iter().copied())
                .collect()
        };
        return Ok(Decoded {
            width,
            height,
            components: 1,
            precision,
            samples,
            photometric: pi.clone(),
        });
    }
    if n != 3 {
        return bad(format!("{n} colour components (1 or 3 are decoded)"));
    }
    // Full-resolution planes.
    let planes: Vec<Vec<i32>> = comps
        .iter()
        .map(|c| upsample(c, width, height, hmax, vmax))
        .collect();
    // Colour space, as libjpeg decides it; the DICOM header breaks the tie.
    let ids: Vec<u8> = comps.iter().map(|c| c.id).collect();
    let ycbcr = if jfif {
        true
    } else if let Some(t) = adobe {
        t != 0
    } else if ids == [b'R', b'G', b'B'] {
        false
    } else {
        !matches!(pi, Photometric::Rgb)
    };
    let max = (1i32 << precision) - 1;
    let half = 1 << (precision - 1);
    let mut samples = Vec::with_capacity(width * height * 3);
    for ((&a, &b), &c) in planes[0].iter().zip(&planes[1]).zip(&planes[2]) {
        if ycbcr {
            // libjpeg's fixed-point YCbCr → RGB (jdcolor.c), 16 fraction bits.
            const ONE_HALF: i64 = 1 << 15;
            let fix = |x: f64| (x * 65536.0 + 0.5) as i64;
            let (y, cb, cr) = (a as i64, (b - half) as i64, (c - half) as i64);
            let r = y + ((fix(1.402) * cr + ONE_HALF) >> 16);
            let g = y + ((-fix(0.344_14) * cb + ONE_HALF - fix(0.714_14) * cr) >> 16);
            let bl = y + ((fix(1.772) * cb + ONE_HALF) >> 16);
            for v in [r, g, bl] {
                samples.push((v as i32).clamp(0, max));
            }
        } else {
            samples.extend_from_slice(&[a, b, c]);
        }
    }
    Ok(Decoded {
        width,
        height,
        components: 3,
        precision,
        samples,
        photometric: Photometric::Rgb,
    })
}

/// Upsample a component plane to the image size: libjpeg's triangle filter for
/// 2:1 horizontal (and 2:1 vertical), replication otherwise.
fn upsample(c: &Component, width: usize, height: usize, hmax: usize, vmax: usize) -> Vec<i32> {
    let stride = c.bw * 8;
    let (fx, fy) = (hmax / c.h, vmax / c.v);
    let cw = (width * c.h).div_ceil(hmax);
    let ch = (height * c.v).div_ceil(vmax);
    let at = |x: usize, y: usize| c.plane[y.min(ch - 1) * stride + x.min(cw - 1)];
    let mut out = vec![0i32; width * height];
    if fx == 1 && fy == 1 {
        for y in 0..height {
            for x in 0..width {
                out[y * width + x] = at(x, y);
            }
        }
    } else if fx == 2 && fy == 1 {
        for y in 0..height {
            for x in 0..width {
                let sx = x / 2;
                let v = at(sx, y) * 3;
                out[y * width + x] = if x % 2 == 0 {
                    if sx == 0 {
                        at(0, y)
                    } else {
                        (v + at(sx - 1, y) + 1) >> 2
                    }
                } else if sx + 1 >= cw {
                    at(sx, y)
                } else {
                    (v + at(sx + 1, y) + 2) >> 2
                };
            }
        }
    } else if fx == 2 && fy == 2 {
        for y in 0..height {
            let sy = y / 2;
            let ny = if y % 2 == 0 {
                sy.saturating_sub(1)
            } else {
                (sy + 1).min(ch - 1)
            };
            // Vertical pass: 3*nearer + farther row.
            let col = |sx: usize| at(sx, sy) * 3 + at(sx, ny);
            for x in 0..width {
                let sx = x / 2;
                let here = col(sx);
                out[y * width + x] = if x % 2 == 0 {
                    if sx == 0 {
                        (here * 4 + 8) >> 4
                    } else {
                        (here * 3 + col(sx - 1) + 8) >> 4
                    }
                } else if sx + 1 >= cw {
                    (here * 4 + 7) >> 4
                } else {
                    (here * 3 + col(sx + 1) + 7) >> 4
                };
            }
        }
    } else {
        for y in 0..height {
            for x in 0..width {
                out[y * width + x] = at(x / fx, y / fy);
            }
        }
    }
    out
}
