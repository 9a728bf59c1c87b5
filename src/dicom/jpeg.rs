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

use super::header::Photometric;

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

#[derive(Clone, Default)]
struct Huffman {
    /// (code length, code) -> symbol, via canonical decoding tables.
    maxcode: [i32; 18],
    valptr: [i32; 17],
    mincode: [i32; 17],
    values: Vec<u8>,
    /// Fast lookup for codes up to 9 bits: (length, symbol), length 0 = slow path.
    fast: Vec<(u8, u8)>,
}

const FAST_BITS: u32 = 9;

impl Huffman {
    fn new(counts: &[u8; 16], values: Vec<u8>) -> R<Huffman> {
        let mut h = Huffman {
            values,
            ..Default::default()
        };
        let mut code = 0i32;
        let mut k = 0i32;
        for l in 1..=16usize {
            let n = counts[l - 1] as i32;
            if n > 0 {
                h.valptr[l] = k;
                h.mincode[l] = code;
                code += n;
                k += n;
                h.maxcode[l] = code - 1;
            } else {
                h.maxcode[l] = -1;
            }
            if code > (1 << l) {
                return bad("Huffman table overfull");
            }
            code <<= 1;
        }
        h.maxcode[17] = i32::MAX;
        if k as usize > h.values.len() {
            return bad("Huffman table has fewer values than codes");
        }
        // Fast table.
        h.fast = vec![(0, 0); 1 << FAST_BITS];
        let mut code = 0u32;
        let mut idx = 0usize;
        for l in 1..=FAST_BITS as usize {
            for _ in 0..counts[l - 1] {
                let shift = FAST_BITS - l as u32;
                for fill in 0..(1u32 << shift) {
                    h.fast[((code << shift) | fill) as usize] = (l as u8, h.values[idx]);
                }
                code += 1;
                idx += 1;
            }
            code <<= 1;
        }
        Ok(h)
    }
}

struct Bits<'a> {
    data: &'a [u8],
    pos: usize,
    acc: u64,
    n: u32,
    /// A marker was hit: feed zeros from now on.
    marker: bool,
}

impl<'a> Bits<'a> {
    fn new(data: &'a [u8], pos: usize) -> Self {
        Bits {
            data,
            pos,
            acc: 0,
            n: 0,
            marker: false,
        }
    }
    fn fill(&mut self) {
        while self.n <= 56 {
            let mut b = 0u8;
            if !self.marker && self.pos < self.data.len() {
                b = self.data[self.pos];
                if b == 0xFF {
                    let next = self.data.get(self.pos + 1).copied().unwrap_or(0);
                    if next == 0x00 {
                        self.pos += 2;
                    } else {
                        self.marker = true;
                        b = 0;
                    }
                } else {
                    self.pos += 1;
                }
            }
            self.acc |= (b as u64) << (56 - self.n);
            self.n += 8;
        }
    }
    fn peek(&mut self, k: u32) -> u32 {
        if self.n < k {
            self.fill();
        }
        (self.acc >> (64 - k)) as u32
    }
    fn skip(&mut self, k: u32) {
        self.acc <<= k;
        self.n -= k;
    }
    fn get(&mut self, k: u32) -> u32 {
        if k == 0 {
            return 0;
        }
        let v = self.peek(k);
        self.skip(k);
        v
    }
    fn decode(&mut self, h: &Huffman) -> R<u8> {
        let p = self.peek(FAST_BITS) as usize;
        let (len, sym) = h.fast[p];
        if len > 0 {
            self.skip(len as u32);
            return Ok(sym);
        }
        let mut code = self.get(1) as i32;
        for l in 1..=16usize {
            if code <= h.maxcode[l] && h.maxcode[l] >= 0 {
                let i = h.valptr[l] + code - h.mincode[l];
                return h
                    .values
                    .get(i as usize)
                    .copied()
                    .ok_or(JpegError::Invalid("bad Huffman code".into()));
            }
            code = (code << 1) | self.get(1) as i32;
        }
        bad("bad Huffman code")
    }
    /// Receive and extend (F.2.2.1).
    fn receive_extend(&mut self, s: u8) -> i32 {
        if s == 0 {
            return 0;
        }
        let v = self.get(s as u32) as i32;
        if v < (1 << (s - 1)) {
            v - (1 << s) + 1
        } else {
            v
        }
    }
    /// Skip to the next RST marker (restart interval boundary).
    fn restart(&mut self) {
        self.acc = 0;
        self.n = 0;
        self.marker = false;
        // Find the RST marker.
        while self.pos + 1 < self.data.len() {
            if self.data[self.pos] == 0xFF && (0xD0..=0xD7).contains(&self.data[self.pos + 1]) {
                self.pos += 2;
                return;
            }
            self.pos += 1;
        }
    }
}

#[derive(Clone)]
struct Component {
    id: u8,
    h: usize,
    v: usize,
    tq: usize,
    /// Blocks per line / column in this component (padded to whole MCUs).
    bw: usize,
    bh: usize,
    /// Decoded samples (bw*8 × bh*8).
    plane: Vec<i32>,
    dc_pred: i32,
}

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
    let (mut width, mut height, mut precision) = (0usize, 0usize, 8u8);
    let (mut hmax, mut vmax) = (1usize, 1usize);
    let mut restart_interval = 0usize;
    let mut jfif = false;
    let mut adobe: Option<u8> = None;
    let mut pos = 2;
    let mut frame_seen = false;
    let mut scans = 0;
    let mut lossless = false;
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
            0xDB => {
                let mut i = 0;
                while i < seg.len() {
                    let pq = seg[i] >> 4;
                    let tq = (seg[i] & 15) as usize;
                    if tq > 3 {
                        return bad("quantisation table id > 3");
                    }
                    i += 1;
                    for k in 0..64 {
                        let v = if pq == 0 {
                            let v =
                                *seg.get(i).ok_or(JpegError::Invalid("short DQT".into()))? as u16;
                            i += 1;
                            v
                        } else {
                            let b = seg
                                .get(i..i + 2)
                                .ok_or(JpegError::Invalid("short DQT".into()))?;
                            i += 2;
                            u16::from_be_bytes([b[0], b[1]])
                        };
                        qt[tq][ZIGZAG[k]] = v;
                    }
                }
            }
            0xC4 => {
                let mut i = 0;
                while i + 17 <= seg.len() {
                    let tc = seg[i] >> 4;
                    let th = (seg[i] & 15) as usize;
                    if th > 3 || tc > 1 {
                        return bad("Huffman table class/id out of range");
                    }
                    let mut counts = [0u8; 16];
                    counts.copy_from_slice(&seg[i + 1..i + 17]);
                    let total: usize = counts.iter().map(|&c| c as usize).sum();
                    let values = seg
                        .get(i + 17..i + 17 + total)
                        .ok_or(JpegError::Invalid("short DHT".into()))?
                        .to_vec();
                    let table = Huffman::new(&counts, values)?;
                    if tc == 0 {
                        dc[th] = table;
                    } else {
                        ac[th] = table;
                    }
                    i += 17 + total;
                }
            }
            0xDD => {
                restart_interval = seg
                    .get(0..2)
                    .map(|b| u16::from_be_bytes([b[0], b[1]]) as usize)
                    .unwrap_or(0);
            }
            0xC0 | 0xC1 | 0xC3 => {
                if seg.len() < 6 {
                    return bad("short SOF");
                }
                precision = seg[0];
                lossless = m == 0xC3;
                let ok = if lossless {
                    (2..=16).contains(&precision)
                } else {
                    precision == 8 || precision == 12
                };
                if !ok {
                    return bad(format!("sample precision {precision}"));
                }
                height = u16::from_be_bytes([seg[1], seg[2]]) as usize;
                width = u16::from_be_bytes([seg[3], seg[4]]) as usize;
                let n = seg[5] as usize;
                if width == 0 || height == 0 {
                    return Err(JpegError::Unsupported("image height defined by DNL".into()));
                }
                if n != 1 && n != 3 {
                    return Err(JpegError::Unsupported(format!("{n} components")));
                }
                if seg.len() < 6 + 3 * n {
                    return bad("short SOF");
                }
                for k in 0..n {
                    let c = &seg[6 + 3 * k..9 + 3 * k];
                    let (h, v) = ((c[1] >> 4) as usize, (c[1] & 15) as usize);
                    if !(1..=4).contains(&h) || !(1..=4).contains(&v) || c[2] > 3 {
                        return bad("bad component sampling or table");
                    }
                    comps.push(Component {
                        id: c[0],
                        h,
                        v,
                        tq: c[2] as usize,
                        bw: 0,
                        bh: 0,
                        plane: Vec::new(),
                        dc_pred: 0,
                    });
                }
                hmax = comps.iter().map(|c| c.h).max().unwrap_or(1);
                vmax = comps.iter().map(|c| c.v).max().unwrap_or(1);
                let mcux = width.div_ceil(8 * hmax);
                let mcuy = height.div_ceil(8 * vmax);
                for c in comps.iter_mut() {
                    c.bw = mcux * c.h;
                    c.bh = mcuy * c.v;
                    c.plane = vec![0; c.bw * 8 * c.bh * 8];
                }
                frame_seen = true;
            }
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
                if !frame_seen {
                    return bad("scan before frame header");
                }
                let ns = *seg.first().ok_or(JpegError::Invalid("short SOS".into()))? as usize;
                if ns == 0 || seg.len() < 1 + 2 * ns + 3 {
                    return bad("short SOS");
                }
                let mut scan: Vec<(usize, usize, usize)> = Vec::new(); // (component index, dc, ac)
                for k in 0..ns {
                    let id = seg[1 + 2 * k];
                    let t = seg[2 + 2 * k];
                    let ci = comps
                        .iter()
                        .position(|c| c.id == id)
                        .ok_or(JpegError::Invalid("scan names an unknown component".into()))?;
                    let (td, ta) = ((t >> 4) as usize, (t & 15) as usize);
                    if td > 3 || ta > 3 {
                        return bad("Huffman table id > 3");
                    }
                    scan.push((ci, td, ta));
                }
                if lossless {
                    let ss = seg[1 + 2 * ns];
                    let al = seg[3 + 2 * ns] & 15;
                    let end = decode_lossless_scan(
                        data,
                        pos + len,
                        &mut comps,
                        &scan,
                        &dc,
                        restart_interval,
                        width,
                        height,
                        precision,
                        ss,
                        al,
                    )?;
                    scans += 1;
                    pos = end;
                    continue;
                }
                let end = decode_scan(
                    data,
                    pos + len,
                    &mut comps,
                    &scan,
                    &dc,
                    &ac,
                    &qt,
                    restart_interval,
                    hmax,
                    vmax,
                    width,
                    height,
                    precision,
                )?;
                scans += 1;
                pos = end;
                continue;
            }
            _ => {}
        }
        pos += len;
    }
    if scans == 0 {
        return bad("no scan");
    }
    if lossless {
        // Lossless streams carry samples as they were: no colour transform.
        return assemble(
            comps,
            width,
            height,
            precision,
            hmax,
            vmax,
            false,
            Some(0),
            pi,
        )
        .map(|mut d| {
            d.photometric = pi.clone();
            d
        });
    }
    assemble(comps, width, height, precision, hmax, vmax, jfif, adobe, pi)
}

#[allow(clippy::too_many_arguments)]
fn decode_scan(
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

/// One scan of a lossless (process 14) JPEG: Huffman-coded differences from a
/// predictor (H.1.2), modulo 2^16, with point transform `pt`. Components must not be
/// subsampled, and restarts must fall at line starts (as every DICOM writer does);
/// anything else is reported as unsupported so the caller can fall back.
#[allow(clippy::too_many_arguments)]
fn decode_lossless_scan(
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

/// Where the next marker after a scan's entropy-coded data starts.
fn end_of_scan(data: &[u8], mut p: usize) -> usize {
    while p + 1 < data.len()
        && !(data[p] == 0xFF && data[p + 1] != 0x00 && !(0xD0..=0xD7).contains(&data[p + 1]))
    {
        p += 1;
    }
    p
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

#[allow(clippy::too_many_arguments)]
fn assemble(
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
