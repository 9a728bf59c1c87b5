//! Lossless JPEG (process 14, Huffman coded, predictors 1–7): the differences of a
//! scan added to their predictions, per line, with restarts at line starts.

use super::huffman::{Bits, Huffman, end_of_scan};
use super::{Component, JpegError, R, bad};

/// One scan of a lossless (process 14) JPEG: Huffman-coded differences from a
/// predictor (H.1.2), modulo 2^16, with point transform `pt`. Components must not be
/// subsampled, and restarts must fall at line starts (as every DICOM writer does);
/// anything else is reported as unsupported so the caller can fall back.
#[allow(clippy::too_many_arguments)]
pub(super) fn decode_lossless_scan(
    data: &[u8],
    start: usize,
    comps: &mut [Component],
    scan: &[(usize, usize, usize)],
    dc: &[Huffman],
    restart_interval: usize,
    width: usize,
    height: usize,
    precision: u8,
    predictor: u8,
    pt: u8,
) -> R<usize> {
    if !(1..=7).contains(&predictor) {
        return Err(JpegError::Unsupported(format!(
            "lossless predictor {predictor}"
        )));
    }
    if scan
        .iter()
        .any(|&(ci, _, _)| comps[ci].h != 1 || comps[ci].v != 1)
    {
        return Err(JpegError::Unsupported("subsampled lossless JPEG".into()));
    }
    if restart_interval > 0 && !restart_interval.is_multiple_of(width) {
        return Err(JpegError::Unsupported(
            "restart interval not a multiple of the line".into(),
        ));
    }
    if pt as u32 >= precision as u32 {
        return bad("point transform not below the precision");
    }
    let mut bits = Bits::new(data, start);
    let initial = 1i32 << (precision - pt - 1);
    let strides: Vec<usize> = scan.iter().map(|&(ci, _, _)| comps[ci].bw * 8).collect();
    let rows_per_restart = if restart_interval > 0 {
        restart_interval / width
    } else {
        usize::MAX
    };
    // Work on raw (pre point-transform) values in the planes; shift at the end.
    if scan.len() == 1 {
        // One component (every grayscale image): row slices, no per-sample lookups.
        let (ci, td, _) = scan[0];
        let stride = strides[0];
        let table = &dc[td];
        let plane = &mut comps[ci].plane;
        for y in 0..height {
            let restart_line = y > 0 && y % rows_per_restart == 0;
            if restart_line {
                bits.restart();
            }
            let (above, row) = if y == 0 {
                (None, &mut plane[..width])
            } else {
                let (a, b) = plane.split_at_mut(y * stride);
                (
                    Some(&a[(y - 1) * stride..(y - 1) * stride + width]),
                    &mut b[..width],
                )
            };
            let first_line = y == 0 || restart_line;
            for x in 0..width {
                let px = match (first_line, x, above) {
                    (true, 0, _) => initial,
                    (true, _, _) => row[x - 1],
                    (false, 0, Some(a)) => a[0],
                    (false, _, Some(a)) => predict(predictor, row[x - 1], a[x], a[x - 1]),
                    (false, _, None) => initial,
                };
                let diff = lossless_diff(&mut bits, table)?;
                row[x] = (px + diff) & 0xFFFF;
            }
        }
    } else {
        for y in 0..height {
            let restart_line = y > 0 && y % rows_per_restart == 0;
            if restart_line {
                bits.restart();
            }
            let first_line = y == 0 || restart_line;
            for x in 0..width {
                for (k, &(ci, td, _)) in scan.iter().enumerate() {
                    let stride = strides[k];
                    let plane = &mut comps[ci].plane;
                    let at = y * stride + x;
                    let px = if first_line {
                        if x == 0 { initial } else { plane[at - 1] }
                    } else if x == 0 {
                        plane[at - stride]
                    } else {
                        predict(
                            predictor,
                            plane[at - 1],
                            plane[at - stride],
                            plane[at - stride - 1],
                        )
                    };
                    let diff = lossless_diff(&mut bits, &dc[td])?;
                    plane[at] = (px + diff) & 0xFFFF;
                }
            }
        }
    }
    for &(ci, _, _) in scan {
        if pt > 0 {
            for v in comps[ci].plane.iter_mut() {
                *v <<= pt;
            }
        }
    }
    Ok(end_of_scan(data, bits.pos))
}

/// Predicted sample from its left (`ra`), upper (`rb`) and upper-left (`rc`)
/// neighbours, for selection values 1–7 (Table H.1).
#[inline]
fn predict(predictor: u8, ra: i32, rb: i32, rc: i32) -> i32 {
    match predictor {
        1 => ra,
        2 => rb,
        3 => rc,
        4 => ra + rb - rc,
        5 => ra + ((rb - rc) >> 1),
        6 => rb + ((ra - rc) >> 1),
        _ => (ra + rb) >> 1,
    }
}

/// One Huffman-coded difference of a lossless scan (H.1.2.2): category 16 means 32768.
#[inline]
fn lossless_diff(bits: &mut Bits<'_>, table: &Huffman) -> R<i32> {
    match bits.decode(table)? {
        t @ 0..=15 => Ok(bits.receive_extend(t)),
        16 => Ok(32768),
        _ => bad("lossless difference category > 16"),
    }
}
