//! Huffman coding of the entropy-coded segments (ISO 10918-1 F.2.2, C): canonical
//! decoding tables with a 9-bit fast path, the bit reader that unstuffs 0xFF00 and
//! stops at markers, and restart-marker handling. Shared by the sequential (DCT)
//! and lossless decoders.

use super::{JpegError, R, bad};

/// One Huffman table (DHT), ready for decoding.
#[derive(Clone, Default)]
pub(super) struct Huffman {
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
    pub(super) fn new(counts: &[u8; 16], values: Vec<u8>) -> R<Huffman> {
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

/// Reads the bits of an entropy-coded segment.
pub(super) struct Bits<'a> {
    data: &'a [u8],
    /// The next byte to read (after the scan: where its data ended, roughly).
    pub(super) pos: usize,
    acc: u64,
    n: u32,
    /// A marker was hit: feed zeros from now on.
    marker: bool,
}

impl<'a> Bits<'a> {
    pub(super) fn new(data: &'a [u8], pos: usize) -> Self {
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
    pub(super) fn decode(&mut self, h: &Huffman) -> R<u8> {
        let p = self.peek(FAST_BITS) as usize;
        let Some(&(len, sym)) = h.fast.get(p) else {
            return bad("the scan uses a Huffman table that was never defined");
        };
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
    pub(super) fn receive_extend(&mut self, s: u8) -> i32 {
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
    pub(super) fn restart(&mut self) {
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

/// Where the next marker after a scan's entropy-coded data starts.
pub(super) fn end_of_scan(data: &[u8], mut p: usize) -> usize {
    while p + 1 < data.len()
        && !(data[p] == 0xFF && data[p + 1] != 0x00 && !(0xD0..=0xD7).contains(&data[p + 1]))
    {
        p += 1;
    }
    p
}

#[cfg(test)]
mod tests {
    use super::{Bits, Huffman, end_of_scan};

    /// Codes "0" → 5 and "10" → 7.
    fn table() -> Huffman {
        let mut counts = [0u8; 16];
        counts[0] = 1;
        counts[1] = 1;
        Huffman::new(&counts, vec![5, 7]).expect("table")
    }

    #[test]
    fn canonical_codes_decode_in_order() {
        let t = table();
        // 0 10 10 0 then padding.
        let data = [0b0101_0000u8];
        let mut bits = Bits::new(&data, 0);
        let got: Vec<u8> = (0..4).map(|_| bits.decode(&t).expect("code")).collect();
        assert_eq!(got, [5, 7, 7, 5]);
    }

    #[test]
    fn an_overfull_table_is_refused() {
        let mut counts = [0u8; 16];
        counts[0] = 3; // three 1-bit codes cannot exist
        assert!(Huffman::new(&counts, vec![1, 2, 3]).is_err());
    }

    #[test]
    fn stuffed_bytes_are_data_and_markers_end_the_data() {
        let data = [0xFF, 0x00, 0x12, 0xFF, 0xD9];
        let mut bits = Bits::new(&data, 0);
        assert_eq!(bits.get(8), 0xFF);
        assert_eq!(bits.get(8), 0x12);
        // At the marker, zeros are fed.
        assert_eq!(bits.get(8), 0);
        assert_eq!(end_of_scan(&data, 0), 3);
    }

    #[test]
    fn receive_extend_gives_negative_values_below_half_the_range() {
        // 3 bits: 010 = 2, below 4: 2 - 8 + 1 = -5; 110 = 6 stays 6.
        let data = [0b0101_1000u8];
        let mut bits = Bits::new(&data, 0);
        assert_eq!(bits.receive_extend(3), -5);
        assert_eq!(bits.receive_extend(3), 6);
    }
}
