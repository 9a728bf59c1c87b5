//! Marker segments of the interchange format (ISO 10918-1 B.2): the quantisation
//! tables (DQT), Huffman tables (DHT), restart interval (DRI), frame header (SOF0,
//! SOF1, SOF3) and scan header (SOS), parsed into what the decoders need. The walk
//! from marker to marker is [`super::decode`].

use super::huffman::Huffman;
use super::{Component, JpegError, R, ZIGZAG, bad};

/// DQT: up to four quantisation tables, stored in natural (not zigzag) order.
pub(super) fn dqt(seg: &[u8], qt: &mut [[u16; 64]; 4]) -> R<()> {
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
                let v = *seg.get(i).ok_or(JpegError::Invalid("short DQT".into()))? as u16;
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
    Ok(())
}

/// DHT: DC (class 0) and AC (class 1) Huffman tables, ids 0 to 3.
pub(super) fn dht(seg: &[u8], dc: &mut [Huffman], ac: &mut [Huffman]) -> R<()> {
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
    Ok(())
}

/// DRI: MCUs (lossless: samples) between restart markers, 0 for none.
pub(super) fn dri(seg: &[u8]) -> usize {
    seg.get(0..2)
        .map(|b| u16::from_be_bytes([b[0], b[1]]) as usize)
        .unwrap_or(0)
}

/// What the frame header says about the image as a whole.
#[derive(Debug, Clone, Copy)]
pub(super) struct FrameHeader {
    pub(super) precision: u8,
    /// SOF3 (process 14).
    pub(super) lossless: bool,
    pub(super) width: usize,
    pub(super) height: usize,
    /// Largest horizontal and vertical sampling factors.
    pub(super) hmax: usize,
    pub(super) vmax: usize,
}

/// SOF0, SOF1 or SOF3 (`marker`): precision, size and components. The components
/// are appended to `comps` and every plane is (re)allocated to whole MCUs.
pub(super) fn sof(seg: &[u8], marker: u8, comps: &mut Vec<Component>) -> R<FrameHeader> {
    if seg.len() < 6 {
        return bad("short SOF");
    }
    let precision = seg[0];
    let lossless = marker == 0xC3;
    let ok = if lossless {
        (2..=16).contains(&precision)
    } else {
        precision == 8 || precision == 12
    };
    if !ok {
        return bad(format!("sample precision {precision}"));
    }
    let height = u16::from_be_bytes([seg[1], seg[2]]) as usize;
    let width = u16::from_be_bytes([seg[3], seg[4]]) as usize;
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
    let hmax = comps.iter().map(|c| c.h).max().unwrap_or(1);
    let vmax = comps.iter().map(|c| c.v).max().unwrap_or(1);
    let mcux = width.div_ceil(8 * hmax);
    let mcuy = height.div_ceil(8 * vmax);
    for c in comps.iter_mut() {
        c.bw = mcux * c.h;
        c.bh = mcuy * c.v;
        c.plane = vec![0; c.bw * 8 * c.bh * 8];
    }
    Ok(FrameHeader {
        precision,
        lossless,
        width,
        height,
        hmax,
        vmax,
    })
}

/// A scan header.
#[derive(Debug)]
pub(super) struct ScanHeader {
    /// (component index, DC table, AC table) per component in the scan.
    pub(super) components: Vec<(usize, usize, usize)>,
    /// Start of spectral selection (lossless: the predictor).
    pub(super) ss: u8,
    /// Successive approximation low bit (lossless: the point transform).
    pub(super) al: u8,
}

/// SOS: the scan's components (by id, among the frame's) and their tables.
pub(super) fn sos(seg: &[u8], comps: &[Component]) -> R<ScanHeader> {
    let ns = *seg.first().ok_or(JpegError::Invalid("short SOS".into()))? as usize;
    if ns == 0 || seg.len() < 1 + 2 * ns + 3 {
        return bad("short SOS");
    }
    let mut components = Vec::new();
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
        components.push((ci, td, ta));
    }
    Ok(ScanHeader {
        components,
        ss: seg[1 + 2 * ns],
        al: seg[3 + 2 * ns] & 15,
    })
}
