//! Sequential DCT decoding (processes 1, 2 and 4): one scan's MCUs — Huffman-coded
//! DC differences and run-length AC coefficients, dequantised, through libjpeg's
//! integer inverse DCT into each component's sample plane, level-shifted and
//! clamped to the precision.

use super::huffman::{Bits, Huffman, end_of_scan};
use super::{Component, R, ZIGZAG, bad};

/// Decode one scan starting at `start`; returns where the next marker begins.
#[allow(clippy::too_many_arguments)]
pub(super) fn decode_scan(
    data: &[u8],
    start: usize,
    comps: &mut [Component],
    scan: &[(usize, usize, usize)],
    dc: &[Huffman],
    ac: &[Huffman],
    qt: &[[u16; 64]; 4],
    restart_interval: usize,
    hmax: usize,
    vmax: usize,
    width: usize,
    height: usize,
    precision: u8,
) -> R<usize> {
    for &(ci, _, _) in scan {
        comps[ci].dc_pred = 0;
    }
    let mut bits = Bits::new(data, start);
    let single = scan.len() == 1;
    let (mcux, mcuy) = if single {
        // Non-interleaved: one block per MCU, over the component's own extent.
        let c = &comps[scan[0].0];
        (
            (width * c.h).div_ceil(8 * hmax),
            (height * c.v).div_ceil(8 * vmax),
        )
    } else {
        (width.div_ceil(8 * hmax), height.div_ceil(8 * vmax))
    };
    let level_shift = 1i32 << (precision - 1);
    let max = (1i32 << precision) - 1;
    let mut block = [0i32; 64];
    let mut out = [0i32; 64];
    let mut mcus = 0usize;
    for my in 0..mcuy {
        for mx in 0..mcux {
            if restart_interval > 0 && mcus > 0 && mcus.is_multiple_of(restart_interval) {
                bits.restart();
                for &(ci, _, _) in scan {
                    comps[ci].dc_pred = 0;
                }
            }
            mcus += 1;
            for &(ci, td, ta) in scan {
                let (bh_n, bv_n) = if single {
                    (1, 1)
                } else {
                    (comps[ci].h, comps[ci].v)
                };
                for by in 0..bv_n {
                    for bx in 0..bh_n {
                        block.fill(0);
                        let t = bits.decode(&dc[td])?;
                        if t > 16 {
                            return bad("DC magnitude category > 16");
                        }
                        let diff = bits.receive_extend(t);
                        let c = &mut comps[ci];
                        c.dc_pred += diff;
                        let q = &qt[c.tq];
                        block[0] = c.dc_pred * q[0] as i32;
                        let mut k = 1;
                        while k < 64 {
                            let rs = bits.decode(&ac[ta])?;
                            let (r, s) = ((rs >> 4) as usize, rs & 15);
                            if s == 0 {
                                if r == 15 {
                                    k += 16;
                                    continue;
                                }
                                break;
                            }
                            k += r;
                            if k > 63 {
                                return bad("AC coefficient index past 63");
                            }
                            let z = ZIGZAG[k];
                            block[z] = bits.receive_extend(s) * q[z] as i32;
                            k += 1;
                        }
                        idct(&block, &mut out, if precision > 8 { 1 } else { 2 });
                        let (col, row) = if single {
                            (mx, my)
                        } else {
                            (mx * c.h + bx, my * c.v + by)
                        };
                        if col >= c.bw || row >= c.bh {
                            continue;
                        }
                        let stride = c.bw * 8;
                        for y in 0..8 {
                            let line = (row * 8 + y) * stride + col * 8;
                            for x in 0..8 {
                                c.plane[line + x] = (out[y * 8 + x] + level_shift).clamp(0, max);
                            }
                        }
                    }
                }
            }
        }
    }
    // Continue after the scan's entropy-coded data.
    Ok(end_of_scan(data, bits.pos))
}

/// Inverse DCT in the integer arithmetic of libjpeg's `jidctint.c` ("islow", the
/// method DCMTK decodes with): the Loeffler–Ligtenberg–Moschytz factorisation with
/// 13-bit constants, `pass1_bits` of extra precision between the passes (2 for 8-bit
/// samples, 1 for 12-bit). Matching it keeps Lightbox within a level of the
/// reference renderer on lossy images. Output is not yet level-shifted.
fn idct(input: &[i32; 64], out: &mut [i32; 64], pass1_bits: u32) {
    const CONST_BITS: u32 = 13;
    const F0_298: i64 = 2446;
    const F0_390: i64 = 3196;
    const F0_541: i64 = 4433;
    const F0_765: i64 = 6270;
    const F0_899: i64 = 7373;
    const F1_175: i64 = 9633;
    const F1_501: i64 = 12299;
    const F1_847: i64 = 15137;
    const F1_961: i64 = 16069;
    const F2_053: i64 = 16819;
    const F2_562: i64 = 20995;
    const F3_072: i64 = 25172;
    let descale = |x: i64, n: u32| (x + (1 << (n - 1))) >> n;
    // One 1-D pass over 8 values `v`, producing 8 outputs descaled by `shift`.
    let pass = |v: [i64; 8], shift: u32| -> [i64; 8] {
        // Even part.
        let (z2, z3) = (v[2], v[6]);
        let z1 = (z2 + z3) * F0_541;
        let tmp2 = z1 - z3 * F1_847;
        let tmp3 = z1 + z2 * F0_765;
        let tmp0 = (v[0] + v[4]) << CONST_BITS;
        let tmp1 = (v[0] - v[4]) << CONST_BITS;
        let (tmp10, tmp13, tmp11, tmp12) = (tmp0 + tmp3, tmp0 - tmp3, tmp1 + tmp2, tmp1 - tmp2);
        // Odd part.
        let (t0, t1, t2, t3) = (v[7], v[5], v[3], v[1]);
        let (z1, z2, z3, z4) = (t0 + t3, t1 + t2, t0 + t2, t1 + t3);
        let z5 = (z3 + z4) * F1_175;
        let (t0, t1, t2, t3) = (t0 * F0_298, t1 * F2_053, t2 * F3_072, t3 * F1_501);
        let (z1, z2) = (-z1 * F0_899, -z2 * F2_562);
        let z3 = -z3 * F1_961 + z5;
        let z4 = -z4 * F0_390 + z5;
        let t0 = t0 + z1 + z3;
        let t1 = t1 + z2 + z4;
        let t2 = t2 + z2 + z3;
        let t3 = t3 + z1 + z4;
        [
            descale(tmp10 + t3, shift),
            descale(tmp11 + t2, shift),
            descale(tmp12 + t1, shift),
            descale(tmp13 + t0, shift),
            descale(tmp13 - t0, shift),
            descale(tmp12 - t1, shift),
            descale(tmp11 - t2, shift),
            descale(tmp10 - t3, shift),
        ]
    };
    let mut ws = [0i64; 64];
    for col in 0..8 {
        let v: [i64; 8] = std::array::from_fn(|row| input[row * 8 + col] as i64);
        let r = pass(v, CONST_BITS - pass1_bits);
        for row in 0..8 {
            ws[row * 8 + col] = r[row];
        }
    }
    for row in 0..8 {
        let v: [i64; 8] = std::array::from_fn(|col| ws[row * 8 + col]);
        let r = pass(v, CONST_BITS + pass1_bits + 3);
        for col in 0..8 {
            out[row * 8 + col] = r[col] as i32;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::idct;

    #[test]
    fn a_dc_only_block_is_flat_at_an_eighth_of_its_coefficient() {
        for pass1_bits in [1, 2] {
            let mut input = [0i32; 64];
            input[0] = 80;
            let mut out = [0i32; 64];
            idct(&input, &mut out, pass1_bits);
            assert!(out.iter().all(|&v| v == 10), "{out:?}");
        }
    }
}
