//! A bounds check run before a data set is handed to the parser.
//!
//! `dicom-parser` allocates (and zero-fills) a value's declared length before reading
//! it, so a 700-byte file declaring a 3.7 GB element costs minutes of CPU and
//! gigabytes of memory. This walker follows the element structure the way the parser
//! will — explicit or implicit VR, sequences and items of defined or undefined length,
//! UN values holding implicit VR sequences — and rejects any value that runs past the
//! end of the file, naming the element, before any allocation happens.

use dicom_core::Tag;
use dicom_core::dictionary::DataDictionary;
use dicom_dictionary_std::StandardDataDictionary;

const UNDEFINED: u32 = 0xFFFF_FFFF;
const MAX_DEPTH: usize = 64;

#[derive(Clone, Copy)]
struct Enc {
    explicit: bool,
    big_endian: bool,
}

struct Walker<'a> {
    buf: &'a [u8],
    /// Offset of `buf[0]` in the file, for messages.
    base: usize,
    /// Bytes of the file from `buf[0]` on (more than `buf.len()` for a prefix).
    available: usize,
}

/// Why a check did not pass.
#[derive(Debug)]
pub enum Problem {
    /// The buffer is a prefix of the file and ended before the walk could finish.
    NeedMore,
    /// A value runs past the end of the file (or the structure is unusable).
    Bad(String),
}

impl From<String> for Problem {
    fn from(s: String) -> Self {
        Problem::Bad(s)
    }
}

impl From<&str> for Problem {
    fn from(s: &str) -> Self {
        Problem::Bad(s.to_string())
    }
}

impl Walker<'_> {
    fn u16(&self, at: usize, enc: Enc) -> Option<u16> {
        let b = self.buf.get(at..at + 2)?;
        Some(if enc.big_endian {
            u16::from_be_bytes([b[0], b[1]])
        } else {
            u16::from_le_bytes([b[0], b[1]])
        })
    }
    fn u32(&self, at: usize, enc: Enc) -> Option<u32> {
        let b = self.buf.get(at..at + 4)?;
        Some(if enc.big_endian {
            u32::from_be_bytes([b[0], b[1], b[2], b[3]])
        } else {
            u32::from_le_bytes([b[0], b[1], b[2], b[3]])
        })
    }

    fn too_long(&self, tag: Tag, at: usize, len: u32) -> Problem {
        if at + 12 <= self.buf.len()
            && self.buf.len() < self.available
            && at + 12 + (len as usize) <= self.available
        {
            return Problem::NeedMore;
        }
        Problem::Bad(format!(
            "element ({:04X},{:04X}) at byte {} declares {len} bytes but only {} remain (truncated or corrupt file)",
            tag.group(),
            tag.element(),
            self.base + at,
            self.available.saturating_sub(at)
        ))
    }

    /// Walk a data set from `pos` to `end` (or to an item delimiter when `end` is
    /// None). Returns the position after it. Stops quietly at structure it cannot
    /// follow: the parser reports that better.
    fn dataset(
        &self,
        mut pos: usize,
        end: Option<usize>,
        enc: Enc,
        depth: usize,
        stop_at_pixels: bool,
    ) -> Result<Option<usize>, Problem> {
        if depth > MAX_DEPTH {
            return Err(Problem::Bad(format!(
                "sequences nested deeper than {MAX_DEPTH} levels"
            )));
        }
        let limit = end.unwrap_or(self.buf.len());
        while pos + 8 <= limit {
            let (Some(g), Some(e)) = (self.u16(pos, enc), self.u16(pos + 2, enc)) else {
                return Ok(None);
            };
            let tag = Tag(g, e);
            if g == 0xFFFE {
                let len = self.u32(pos + 4, enc).unwrap_or(0);
                if e == 0xE00D {
                    if end.is_none() && depth > 0 {
                        return Ok(Some(pos + 8)); // the end of an item
                    }
                    // Anywhere else the parser steps over a delimiter's 8 bytes
                    // (its length field unread) and reads on: so does the walk
                    // (found by fuzzing: one at the top of a command set hid a
                    // 754 MB UL after it).
                    pos += 8;
                    continue;
                }
                if len != UNDEFINED && len != 0 {
                    // An item tag where an element belongs: dicom-parser reads it as
                    // an element of that length, so the length must fit too. In
                    // implicit VR its VR is the dictionary's: (FFFE,0000) is a
                    // group length, UL (found by the pdu target: 1 byte long, read
                    // as no number, the byte taken for the next header).
                    if !enc.explicit {
                        let vr = self.vr(pos, tag, enc);
                        self.whole_numbers(pos, tag, &vr, len)?;
                    }
                    if pos + 8 + len as usize > self.available {
                        return Err(self.too_long(tag, pos, len));
                    }
                    if e == 0xE000 {
                        // An item where an element belongs: the parser reads its
                        // content as a data set (found by the command target).
                        let stop = pos + 8 + len as usize;
                        if stop > self.buf.len() {
                            return Err(Problem::NeedMore);
                        }
                        self.dataset(pos + 8, Some(stop), enc, depth + 1, false)?;
                    }
                    pos += 8 + len as usize;
                } else if len == UNDEFINED && e == 0xE000 {
                    // Likewise an item of undefined length, to its delimiter
                    // (found by the find_answer target).
                    match self.dataset(pos + 8, None, enc, depth + 1, false)? {
                        Some(p) => pos = p,
                        None => return Ok(None),
                    }
                } else if len == UNDEFINED && e != 0xE0DD {
                    // Any other (FFFE,xxxx) of undefined length is a sequence to
                    // the parser: its items are walked as it will (found by the
                    // command target: (FFFE,1C2E) then a 1-byte item whose
                    // "element" declared 3.4 GB).
                    match self.items(pos + 8, None, enc, depth + 1, true)? {
                        Some(p) => pos = p,
                        None => return Ok(None),
                    }
                } else {
                    pos += 8;
                }
                continue;
            }
            if stop_at_pixels && depth == 0 && tag == Tag(0x7FE0, 0x0010) {
                // Pixel data is checked too: a truncated image must not allocate its
                // declared size either.
                let (len, header) = self.length(pos, tag, enc)?;
                if len != UNDEFINED && pos + header + len as usize > self.available {
                    return Err(self.too_long(tag, pos, len));
                }
                return Ok(Some(pos));
            }
            let (len, header) = match self.length(pos, tag, enc) {
                Ok(v) => v,
                Err(_) => return Ok(None),
            };
            let vr = self.vr(pos, tag, enc);
            let value = pos + header;
            if len == UNDEFINED {
                // Sequence (or UN / encapsulated pixel data) of undefined length.
                // `dicom-parser` reads the items of an undefined-length UN in the
                // data set's own encoding (not implicit VR as CP-246 says), so walk
                // them the way it will.
                match self.items(value, None, enc, depth + 1, tag != Tag(0x7FE0, 0x0010))? {
                    Some(p) => pos = p,
                    None => return Ok(None),
                }
                continue;
            }
            self.whole_numbers(pos, tag, &vr, len)?;
            let stop = value + len as usize;
            if stop > self.available || end.is_some_and(|e| stop > e) {
                return Err(self.too_long(tag, pos, len));
            }
            if stop > self.buf.len() {
                return Err(Problem::NeedMore);
            }
            if vr == *b"SQ" || (vr == *b"UN" && is_sequence_in_dictionary(tag)) {
                let inner = if vr == *b"UN" {
                    Enc {
                        explicit: false,
                        big_endian: false,
                    }
                } else {
                    enc
                };
                self.items(value, Some(stop), inner, depth + 1, true)?;
            }
            pos = stop;
        }
        if let Some(e) = end
            && pos < e
            && e <= self.buf.len()
        {
            // Fewer than 8 bytes left in a defined-length item: dicom-parser
            // reads the next header across the item's end and on from there
            // (found by the open_file target: 6 bytes left, and a 1.2 GB
            // element read from the bytes after the item).
            return Err(Problem::Bad(format!(
                "element at byte {} crosses the end of its item at byte {}",
                self.base + pos,
                self.base + e
            )));
        }
        Ok(Some(pos))
    }

    /// Walk sequence items until the sequence delimiter or `end`. Items of a sequence
    /// hold data sets (`datasets`); items of encapsulated pixel data hold fragments.
    fn items(
        &self,
        mut pos: usize,
        end: Option<usize>,
        enc: Enc,
        depth: usize,
        datasets: bool,
    ) -> Result<Option<usize>, Problem> {
        let limit = end.unwrap_or(self.buf.len());
        while pos + 8 <= limit {
            let (Some(g), Some(e)) = (self.u16(pos, enc), self.u16(pos + 2, enc)) else {
                return Ok(None);
            };
            if g != 0xFFFE {
                return Err(Problem::Bad(format!(
                    "expected a sequence item at byte {}, found ({g:04X},{e:04X})",
                    self.base + pos
                )));
            }
            let len = self.u32(pos + 4, enc).unwrap_or(0);
            match e {
                0xE0DD => {
                    if let Some(e) = end
                        && pos + 8 < e
                    {
                        // The parser ends the sequence at its delimiter and reads
                        // on from there, inside what the sequence's length still
                        // covers (found by the pdu target: a 2 GB element read
                        // from the rest of a 16-byte sequence).
                        return Err(Problem::Bad(format!(
                            "sequence delimiter at byte {} inside a sequence of defined length ending at byte {}",
                            self.base + pos,
                            self.base + e
                        )));
                    }
                    return Ok(Some(pos + 8));
                }
                0xE000 if len == UNDEFINED => {
                    match self.dataset(pos + 8, None, enc, depth, false)? {
                        Some(p) => pos = p,
                        None => return Ok(None),
                    }
                }
                0xE000 => {
                    let stop = pos + 8 + len as usize;
                    if stop > self.available || (end.is_some() && stop > limit) {
                        return Err(self.too_long(Tag(g, e), pos, len));
                    }
                    if stop > self.buf.len() {
                        return Err(Problem::NeedMore);
                    }
                    if datasets {
                        self.dataset(pos + 8, Some(stop), enc, depth, false)?;
                    }
                    pos = stop;
                }
                _ => return Ok(None),
            }
        }
        Ok(Some(pos))
    }

    fn vr(&self, pos: usize, tag: Tag, enc: Enc) -> [u8; 2] {
        if enc.explicit {
            let b = &self.buf[pos + 4..pos + 6];
            [b[0], b[1]]
        } else if is_sequence_in_dictionary(tag) {
            *b"SQ"
        } else {
            // As dicom-rs's implicit VR decoder reads it: a context-dependent
            // VR relaxed (US or SS → US, OB or OW → OW), so a US-or-SS value of
            // odd length is caught as the desync it is (found by fuzzing: a
            // 1-byte (0060,3006) in a command set hid a 3.6 GB UL).
            match StandardDataDictionary.by_tag(tag).map(|d| d.vr) {
                Some(vr) => {
                    let s = vr.relaxed().to_bytes();
                    [s[0], s[1]]
                }
                None => *b"??",
            }
        }
    }

    /// A binary value must be a whole number of its numbers: dicom-parser reads
    /// the whole numbers only and then takes the rest of the value for the
    /// next element's header. The O* VRs are read as their numbers too (OW as
    /// US, OF as FL, OL as UL, OD as FD, OV as UV): a 4-byte OV (Extended
    /// Offset Table, in implicit VR) was read as no numbers at all, and its
    /// value taken for a 4 GB element's header (found by the command target).
    fn whole_numbers(&self, pos: usize, tag: Tag, vr: &[u8; 2], len: u32) -> Result<(), Problem> {
        let unit = match vr {
            b"US" | b"SS" | b"OW" => 2,
            b"UL" | b"SL" | b"FL" | b"AT" | b"OF" | b"OL" => 4,
            b"FD" | b"SV" | b"UV" | b"OD" | b"OV" => 8,
            _ => 1,
        };
        if !len.is_multiple_of(unit) {
            return Err(Problem::Bad(format!(
                "element {tag} at byte {}: {} value of {len} bytes, not a multiple of {unit}",
                self.base + pos,
                String::from_utf8_lossy(vr)
            )));
        }
        Ok(())
    }

    fn length(&self, pos: usize, _tag: Tag, enc: Enc) -> Result<(u32, usize), Problem> {
        if !enc.explicit {
            return Ok((self.u32(pos + 4, enc).ok_or("short header")?, 8));
        }
        let vr = self.buf.get(pos + 4..pos + 6).ok_or("short header")?;
        // An unknown VR (not one of the standard's) is read as UN, with a 4-byte
        // length, by the parser.
        let known = dicom_core::VR::from_binary([vr[0], vr[1]]);
        let long = match known {
            None => true,
            Some(v) => {
                use dicom_core::VR::*;
                matches!(
                    v,
                    OB | OW | OF | OD | OL | OV | SQ | UN | UT | UC | UR | SV | UV
                )
            }
        };
        if long {
            Ok((self.u32(pos + 8, enc).ok_or("short header")?, 12))
        } else {
            Ok((self.u16(pos + 6, enc).ok_or("short header")? as u32, 8))
        }
    }
}

fn is_sequence_in_dictionary(tag: Tag) -> bool {
    StandardDataDictionary.by_tag(tag).is_some_and(|d| {
        matches!(
            d.vr,
            dicom_core::dictionary::VirtualVr::Exact(dicom_core::VR::SQ)
        )
    })
}

/// Check the data set in `bytes` (starting at `offset`, encoded in `ts_uid`) for
/// values that run past the end of the file (`file_len` bytes; `bytes` may be a
/// prefix). With `header_only` the walk stops at Pixel Data and returns its offset.
pub fn check(
    bytes: &[u8],
    offset: usize,
    ts_uid: &str,
    header_only: bool,
    file_len: usize,
) -> Result<Option<usize>, Problem> {
    let enc = Enc {
        explicit: ts_uid != "1.2.840.10008.1.2",
        big_endian: ts_uid == "1.2.840.10008.1.2.2",
    };
    if ts_uid == "1.2.840.10008.1.2.1.99" {
        // Deflated: the bytes on disk are not the data set.
        return Ok(None);
    }
    let w = Walker {
        buf: bytes.get(offset..).unwrap_or(&[]),
        base: offset,
        available: file_len.saturating_sub(offset),
    };
    let truncated_buffer = bytes.len() < file_len;
    match w.dataset(0, None, enc, 0, header_only)? {
        Some(p) if header_only && p < w.buf.len() => Ok(Some(offset + p)),
        _ if truncated_buffer => Err(Problem::NeedMore),
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn explicit_element(tag: (u16, u16), vr: &[u8; 2], len: u32) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&tag.0.to_le_bytes());
        v.extend_from_slice(&tag.1.to_le_bytes());
        v.extend_from_slice(vr);
        v.extend_from_slice(&[0, 0]);
        v.extend_from_slice(&len.to_le_bytes());
        v
    }

    #[test]
    fn rejects_huge_declared_length() {
        let mut b = explicit_element((0x0009, 0x0010), b"UN", 3_758_161_918);
        b.extend_from_slice(&[0u8; 16]);
        let Err(Problem::Bad(e)) = check(&b, 0, "1.2.840.10008.1.2.1", false, b.len()) else {
            panic!("must reject")
        };
        assert!(e.contains("(0009,0010)") && e.contains("3758161918"), "{e}");
    }

    #[test]
    fn an_odd_length_us_or_ss_value_is_refused_in_implicit_vr() {
        // (0060,3006) Histogram Last Bin Value, "US or SS", 1 byte long: the
        // parser reads no number and takes the byte for the next header.
        let mut b = vec![0x60, 0x00, 0x06, 0x30, 1, 0, 0, 0, 0];
        b.extend_from_slice(&[0x00, 0x00, 0x00, 0x00, 0x00, 0x05, 0x00, 0x00]);
        b.extend_from_slice(&[0u8; 64]);
        let Err(Problem::Bad(e)) = check(&b, 0, "1.2.840.10008.1.2", false, b.len()) else {
            panic!("must reject")
        };
        assert!(
            e.contains("(0060,3006)") && e.contains("not a multiple of 2"),
            "{e}"
        );
    }

    #[test]
    fn an_o_vr_value_that_is_not_whole_numbers_is_refused() {
        // The command target's find: (7FE0,0001) Extended Offset Table (OV in
        // the dictionary) 4 bytes long in implicit VR; the parser reads no
        // 8-byte number and takes (7FE0,7FFF) with length 0xFF000001 from the
        // value and what follows.
        let b = [
            0xe0, 0x7f, 0x01, 0x00, 0x04, 0x00, 0x00, 0x00, 0xe0, 0x7f, 0xff, 0x7f, 0x01, 0x00,
            0x00, 0xff, 0xf6,
        ];
        let Err(Problem::Bad(e)) = check(&b, 0, "1.2.840.10008.1.2", false, b.len()) else {
            panic!("must reject")
        };
        assert!(
            e.contains("(7FE0,0001)") && e.contains("OV value of 4 bytes, not a multiple of 8"),
            "{e}"
        );
        // An explicit VR OW of odd length, likewise.
        let mut b = explicit_element((0x0009, 0x1001), b"OW", 3);
        b.extend_from_slice(&[1, 2, 3]);
        let Err(Problem::Bad(e)) = check(&b, 0, "1.2.840.10008.1.2.1", false, b.len()) else {
            panic!("must reject")
        };
        assert!(e.contains("not a multiple of 2"), "{e}");
    }

    #[test]
    fn an_fffe_group_length_in_implicit_vr_is_a_ul() {
        // The pdu target's find: (FFFE,0000) 1 byte long in an implicit VR
        // command set is a group length to the parser (UL), read as no number.
        let mut b = vec![0xfe, 0xff, 0x00, 0x00, 1, 0, 0, 0, 0x38];
        b.extend_from_slice(&[0u8; 40]);
        let Err(Problem::Bad(e)) = check(&b, 0, "1.2.840.10008.1.2", false, b.len()) else {
            panic!("must reject")
        };
        assert!(
            e.contains("(FFFE,0000)") && e.contains("not a multiple of 4"),
            "{e}"
        );
    }

    #[test]
    fn an_element_header_across_the_end_of_its_item_is_refused() {
        // A sequence of one 22-byte item: one CS element (10 bytes), then 12
        // bytes holding a (0000,0000) with an unknown VR (a 12-byte header) and
        // 6 bytes left: the parser reads the next header across the item's end.
        let mut b = explicit_element((0x0008, 0x1115), b"SQ", 8 + 22);
        b.extend_from_slice(&[0xFE, 0xFF, 0x00, 0xE0, 22, 0, 0, 0]);
        b.extend_from_slice(&[0x08, 0x00, 0x60, 0x00, b'C', b'S', 2, 0, b'C', b'T']);
        b.extend_from_slice(&[0u8; 12]);
        b.extend_from_slice(&[0u8; 64]);
        // The item ends 6 bytes into the second zero element's header.
        let n = b.len();
        let mut c = b.clone();
        c[16] = 16; // item length 16: 10 + 6
        c[8] = 8 + 16;
        let Err(Problem::Bad(e)) = check(&c, 0, "1.2.840.10008.1.2.1", false, n) else {
            panic!("must reject")
        };
        assert!(e.contains("crosses the end of its item"), "{e}");
        // Whole elements to the item's end are fine.
        assert!(check(&b, 0, "1.2.840.10008.1.2.1", false, n).is_ok());
    }

    #[test]
    fn an_fffe_element_of_undefined_length_is_walked_as_a_sequence() {
        // The command target's find: (FFFE,1C2E) undefined, then an item of 1
        // byte, in which the parser read a header declaring 3.4 GB.
        let b = [
            0xfe, 0xff, 0x2e, 0x1c, 0xff, 0xff, 0xff, 0xff, 0xfe, 0xff, 0x00, 0xe0, 0x01, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x00, 0x1b, 0x83, 0xff, 0xff, 0xc9,
        ];
        let Err(Problem::Bad(e)) = check(&b, 0, "1.2.840.10008.1.2", false, b.len()) else {
            panic!("must reject")
        };
        assert!(e.contains("crosses the end of its item"), "{e}");
    }

    #[test]
    fn a_sequence_delimiter_inside_a_defined_length_sequence_is_refused() {
        // (0048,0008) SQ of 16 bytes whose first 8 are a sequence delimiter:
        // the parser ends the sequence there and reads the next 8 bytes as an
        // element (the pdu target: a 2 GB one).
        let mut b = vec![0x48, 0x00, 0x08, 0x00, 16, 0, 0, 0];
        b.extend_from_slice(&[0xfe, 0xff, 0xdd, 0xe0, 4, 0, 0, 0]);
        b.extend_from_slice(&[0x00, 0x6e, 0x00, 0x00, 0x00, 0x6a, 0x01, 0x80]);
        b.extend_from_slice(&[0u8; 32]);
        let Err(Problem::Bad(e)) = check(&b, 0, "1.2.840.10008.1.2", false, b.len()) else {
            panic!("must reject")
        };
        assert!(e.contains("sequence delimiter at byte 8"), "{e}");
    }

    #[test]
    fn a_delimiter_at_the_top_does_not_end_the_walk() {
        // (FFFE,E00D) with a junk length, then an implicit VR UL declaring
        // 754974720 bytes in a 26-byte data set.
        let b = [
            0xfe, 0xff, 0x0d, 0xe0, 0x50, 0x4b, 0x05, 0x01, 0x00, 0x80, 0x00, 0x81, 0, 0, 0, 0,
            0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x2d, 0x06, 0x5d,
        ];
        let Err(Problem::Bad(e)) = check(&b, 0, "1.2.840.10008.1.2", false, b.len()) else {
            panic!("must reject")
        };
        assert!(e.contains("754974720"), "{e}");
    }

    #[test]
    fn accepts_well_formed_sequence_of_undefined_length() {
        // (0008,1115) SQ undefined; item undefined containing (0008,0060) CS "CT"; delimiters
        let mut b = explicit_element((0x0008, 0x1115), b"SQ", UNDEFINED);
        b.extend_from_slice(&[0xFE, 0xFF, 0x00, 0xE0, 0xFF, 0xFF, 0xFF, 0xFF]);
        b.extend_from_slice(&[0x08, 0x00, 0x60, 0x00, b'C', b'S', 2, 0, b'C', b'T']);
        b.extend_from_slice(&[0xFE, 0xFF, 0x0D, 0xE0, 0, 0, 0, 0]);
        b.extend_from_slice(&[0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0]);
        assert!(check(&b, 0, "1.2.840.10008.1.2.1", false, b.len()).is_ok());
        // a nested value running past the end is caught
        let mut bad = explicit_element((0x0008, 0x1115), b"SQ", UNDEFINED);
        bad.extend_from_slice(&[0xFE, 0xFF, 0x00, 0xE0, 0xFF, 0xFF, 0xFF, 0xFF]);
        bad.extend_from_slice(&[0x08, 0x00, 0x60, 0x00, b'C', b'S', 0xFF, 0x7F]);
        assert!(check(&bad, 0, "1.2.840.10008.1.2.1", false, bad.len()).is_err());
    }
}
