//! Entry points for the fuzz targets in `fuzz/` (cargo-fuzz, libFuzzer) and for the
//! regression tests that replay what they found (`tests/fuzz_regressions.rs`):
//! each takes hostile bytes and drives one parser Lightbox owns or feeds, the way
//! the program does, discarding the result. None may panic, hang or allocate past
//! its bound, whatever the input; errors are the expected outcome.
//!
//! Not part of the program's interface: the functions exist so the fuzzers and the
//! tests reach private parsers through one door.

use std::path::Path;

use crate::dicom::{self, ImageHeader, ReadMode};

/// A Part 10 file: open (the guard, the header parse), the typed header, and the
/// first frame's decode through whatever transfer syntax it declares.
/// True when the file opened with a usable header.
pub fn open_file(data: &[u8]) -> bool {
    let label = Path::new("fuzz.dcm");
    let _ = dicom::open_bytes(data, label, ReadMode::HeaderOnly);
    match dicom::open_bytes(data, label, ReadMode::Full) {
        Ok(obj) => {
            let _ = dicom::dump::to_text(&obj);
            let _ = dicom::dump::to_json(&obj);
            match ImageHeader::from_object(label, &obj) {
                Ok(h) => {
                    let _ = dicom::decode_frame(&obj, &h, 0);
                    true
                }
                Err(_) => false,
            }
        }
        Err(_) => false,
    }
}

/// The codecs a pixel-decoding target can feed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    Native,
    Rle,
    JpegBaseline,
    JpegExtended,
    JpegLossless,
    JpegLs,
    Jpeg2000,
}

impl Codec {
    pub fn transfer_syntax(self) -> &'static str {
        match self {
            Codec::Native => "1.2.840.10008.1.2.1",
            Codec::Rle => "1.2.840.10008.1.2.5",
            Codec::JpegBaseline => "1.2.840.10008.1.2.4.50",
            Codec::JpegExtended => "1.2.840.10008.1.2.4.51",
            Codec::JpegLossless => "1.2.840.10008.1.2.4.70",
            Codec::JpegLs => "1.2.840.10008.1.2.4.80",
            Codec::Jpeg2000 => "1.2.840.10008.1.2.4.90",
        }
    }
}

/// The image a pixel-decoding input describes: its first 5 bytes are the
/// geometry and format (rows and columns as u16 little endian, 1–1024; flags),
/// the rest the pixel data (native) or the one fragment (encapsulated).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame {
    pub rows: u16,
    pub columns: u16,
    pub samples: u16,
    pub bits_allocated: u16,
    pub bits_stored: u16,
    pub signed: bool,
    /// For 3 samples: RGB, YBR_FULL, YBR_FULL_422.
    pub colour: u8,
}

impl Frame {
    /// Largest rows or columns a fuzz input can declare.
    pub const MAX_SIDE: u16 = 1024;

    /// Read the 5 parameter bytes.
    pub fn from_prefix(p: [u8; 5]) -> Frame {
        let side = |lo: u8, hi: u8| u16::from_le_bytes([lo, hi]) % Self::MAX_SIDE + 1;
        let flags = p[4];
        let bits_allocated = if flags & 2 != 0 { 16 } else { 8 };
        Frame {
            rows: side(p[0], p[1]),
            columns: side(p[2], p[3]),
            samples: if flags & 1 != 0 { 3 } else { 1 },
            bits_allocated,
            bits_stored: if flags & 0x20 != 0 && bits_allocated == 16 {
                12
            } else {
                bits_allocated
            },
            signed: flags & 4 != 0,
            colour: (flags >> 3) & 3,
        }
    }

    /// The 5 parameter bytes that describe this frame.
    pub fn prefix(&self) -> [u8; 5] {
        let mut flags = 0u8;
        if self.samples == 3 {
            flags |= 1;
        }
        if self.bits_allocated == 16 {
            flags |= 2;
        }
        if self.signed {
            flags |= 4;
        }
        flags |= (self.colour & 3) << 3;
        if self.bits_stored == 12 {
            flags |= 0x20;
        }
        let r = (self.rows.clamp(1, Self::MAX_SIDE) - 1).to_le_bytes();
        let c = (self.columns.clamp(1, Self::MAX_SIDE) - 1).to_le_bytes();
        [r[0], r[1], c[0], c[1], flags]
    }

    fn photometric(&self) -> &'static str {
        match (self.samples, self.colour) {
            (1, _) => "MONOCHROME2",
            (_, 1) => "YBR_FULL",
            (_, 2) => "YBR_FULL_422",
            _ => "RGB",
        }
    }
}

/// Decode one frame of `codec`: `data` is 5 parameter bytes (see [`Frame`]) and
/// the pixel data. The decoder's error, when it fails.
pub fn decode(codec: Codec, data: &[u8]) -> std::result::Result<(), String> {
    let Some((p, pixels)) = data.split_first_chunk::<5>() else {
        return Err("shorter than the 5 parameter bytes".into());
    };
    let frame = Frame::from_prefix(*p);
    let file = part10(codec, &frame, pixels);
    let label = Path::new("fuzz.dcm");
    let obj = dicom::open_bytes(&file, label, ReadMode::Full).map_err(|e| e.to_string())?;
    let h = ImageHeader::from_object(label, &obj).map_err(|e| e.to_string())?;
    let full = dicom::decode_frame(&obj, &h, 0).map(drop);
    // The reduced-resolution look the viewer takes first (JPEG 2000 only).
    let preview = dicom::pixels::decode_frame_preview(&obj, &h, 0).map(drop);
    full.and(preview).map_err(|e| e.to_string())
}

/// A Part 10 file (explicit VR little endian data set) of one frame.
pub fn part10(codec: Codec, f: &Frame, pixels: &[u8]) -> Vec<u8> {
    fn el(out: &mut Vec<u8>, group: u16, element: u16, vr: &[u8; 2], value: &[u8]) {
        let mut v = value.to_vec();
        if v.len() % 2 == 1 {
            v.push(if vr == b"UI" || vr == b"OB" { 0 } else { b' ' });
        }
        out.extend_from_slice(&group.to_le_bytes());
        out.extend_from_slice(&element.to_le_bytes());
        out.extend_from_slice(vr);
        if matches!(vr, b"OB" | b"OW" | b"SQ" | b"UN" | b"UT") {
            out.extend_from_slice(&[0, 0]);
            out.extend_from_slice(&(v.len() as u32).to_le_bytes());
        } else {
            out.extend_from_slice(&(v.len() as u16).to_le_bytes());
        }
        out.extend_from_slice(&v);
    }
    const CLASS: &str = "1.2.840.10008.5.1.4.1.1.7";
    const INSTANCE: &str = "1.2.826.0.1.3680043.10.1078.1";
    let ts = codec.transfer_syntax();
    let mut meta = Vec::new();
    el(&mut meta, 2, 1, b"OB", &[0, 1]);
    el(&mut meta, 2, 2, b"UI", CLASS.as_bytes());
    el(&mut meta, 2, 3, b"UI", INSTANCE.as_bytes());
    el(&mut meta, 2, 0x10, b"UI", ts.as_bytes());
    let mut out = vec![0u8; 128];
    out.extend_from_slice(b"DICM");
    el(&mut out, 2, 0, b"UL", &(meta.len() as u32).to_le_bytes());
    out.extend(meta);
    el(&mut out, 8, 0x16, b"UI", CLASS.as_bytes());
    el(&mut out, 8, 0x18, b"UI", INSTANCE.as_bytes());
    el(&mut out, 8, 0x60, b"CS", b"OT");
    el(
        &mut out,
        0x20,
        0x0d,
        b"UI",
        b"1.2.826.0.1.3680043.10.1078.2",
    );
    el(
        &mut out,
        0x20,
        0x0e,
        b"UI",
        b"1.2.826.0.1.3680043.10.1078.3",
    );
    el(&mut out, 0x28, 2, b"US", &f.samples.to_le_bytes());
    el(&mut out, 0x28, 4, b"CS", f.photometric().as_bytes());
    if f.samples == 3 {
        el(&mut out, 0x28, 6, b"US", &0u16.to_le_bytes());
    }
    el(&mut out, 0x28, 0x10, b"US", &f.rows.to_le_bytes());
    el(&mut out, 0x28, 0x11, b"US", &f.columns.to_le_bytes());
    el(
        &mut out,
        0x28,
        0x100,
        b"US",
        &f.bits_allocated.to_le_bytes(),
    );
    el(&mut out, 0x28, 0x101, b"US", &f.bits_stored.to_le_bytes());
    el(
        &mut out,
        0x28,
        0x102,
        b"US",
        &(f.bits_stored - 1).to_le_bytes(),
    );
    el(
        &mut out,
        0x28,
        0x103,
        b"US",
        &u16::from(f.signed).to_le_bytes(),
    );
    if codec == Codec::Native {
        let vr = if f.bits_allocated == 16 { b"OW" } else { b"OB" };
        el(&mut out, 0x7fe0, 0x10, vr, pixels);
    } else {
        out.extend_from_slice(&0x7fe0u16.to_le_bytes());
        out.extend_from_slice(&0x0010u16.to_le_bytes());
        out.extend_from_slice(b"OB\0\0");
        out.extend_from_slice(&u32::MAX.to_le_bytes());
        // Empty offset table, the fragment, the delimiter.
        out.extend_from_slice(&[0xfe, 0xff, 0x00, 0xe0, 0, 0, 0, 0]);
        let mut frag = pixels.to_vec();
        if frag.len() % 2 == 1 {
            frag.push(0);
        }
        out.extend_from_slice(&[0xfe, 0xff, 0x00, 0xe0]);
        out.extend_from_slice(&(frag.len() as u32).to_le_bytes());
        out.extend(frag);
        out.extend_from_slice(&[0xfe, 0xff, 0xdd, 0xe0, 0, 0, 0, 0]);
    }
    out
}

/// One PDU as the network reader sees it, then (for P-DATA) each command value
/// parsed as a DIMSE command set. True when the PDU was read.
pub fn pdu(data: &[u8]) -> bool {
    let mut r = data;
    match crate::net::dimse::read_pdu(&mut r, 1 << 20) {
        Ok(dicom_ul::Pdu::PData { data: values }) => {
            for v in values {
                if v.value_type == dicom_ul::pdu::PDataValueType::Command {
                    command(&v.data);
                }
            }
            true
        }
        Ok(_) => true,
        Err(_) => false,
    }
}

/// A DIMSE command set, and the fields the SCP and SCU read from it.
/// True when it parsed and names a command.
pub fn command(data: &[u8]) -> bool {
    use dicom_dictionary_std::tags;
    match crate::net::dimse::parse_command(data) {
        Ok(cmd) => {
            let _ = crate::net::dimse::int(&cmd, tags::STATUS);
            let _ = crate::net::dimse::string(&cmd, tags::AFFECTED_SOP_INSTANCE_UID);
            let _ = crate::net::dimse::has_data_set(&cmd);
            crate::net::dimse::int(&cmd, tags::COMMAND_FIELD).is_some()
        }
        Err(_) => false,
    }
}

/// A C-FIND answer's identifier (first byte: implicit or explicit VR), as the
/// browser reads it: every column it shows, the counts, the JSON model.
/// True when the identifier parsed.
pub fn find_answer(data: &[u8]) -> bool {
    use dicom_dictionary_std::tags;
    let Some((&which, rest)) = data.split_first() else {
        return false;
    };
    let ts = if which & 1 == 0 {
        "1.2.840.10008.1.2"
    } else {
        "1.2.840.10008.1.2.1"
    };
    if let Ok(attrs) = crate::net::dimse::parse_dataset(rest, ts) {
        let m = crate::net::find::Match {
            level: crate::net::find::Level::Study,
            attrs,
        };
        for tag in [
            tags::PATIENT_NAME,
            tags::PATIENT_ID,
            tags::PATIENT_BIRTH_DATE,
            tags::STUDY_DATE,
            tags::STUDY_DESCRIPTION,
            tags::MODALITIES_IN_STUDY,
            tags::ACCESSION_NUMBER,
            tags::STUDY_INSTANCE_UID,
        ] {
            let _ = m.get(tag);
        }
        let _ = m.count(tags::NUMBER_OF_STUDY_RELATED_INSTANCES);
        let _ = m.to_json();
        return true;
    }
    false
}

/// A DICOMDIR file's bytes, read as media are (the overrun tolerance included).
/// The records it lists, when it was read.
pub fn dicomdir(data: &[u8]) -> Option<usize> {
    dicom::dicomdir::read_bytes(data, Path::new("/nonexistent-fuzz-media/DICOMDIR"))
        .ok()
        .map(|d| d.record_counts.iter().map(|(_, n)| n).sum())
}

/// A zip archive unpacked with the import's limits into a scratch folder under
/// `scratch`, then removed. The files it unpacked, when it was accepted.
pub fn zip(data: &[u8], scratch: &Path) -> Option<usize> {
    let archive = scratch.join(format!("fuzz-{}.zip", std::process::id()));
    std::fs::write(&archive, data).ok()?;
    let unpacked = crate::store::unzip(&archive, scratch).ok().map(|dir| {
        let n = crate::scan::list_files(&dir).map(|v| v.len()).unwrap_or(0);
        crate::store::remove_unpacked(&dir);
        n
    });
    let _ = std::fs::remove_file(&archive);
    unpacked
}

/// The configuration file's text.
/// True when it is a valid configuration.
pub fn config(data: &[u8]) -> bool {
    std::str::from_utf8(data)
        .is_ok_and(|text| crate::config::from_text(text, Path::new("fuzz.toml")).is_ok())
}

/// A hanging-protocol file's text.
/// True when it is a valid protocol.
pub fn protocol(data: &[u8]) -> bool {
    std::str::from_utf8(data).is_ok_and(|text| crate::hanging::parse("fuzz", text).is_ok())
}

/// A volume-rendering preset file's text (`render --vr FILE`, `assets/vr`).
/// True when it is a valid transfer function, which is then evaluated across
/// its range and moved like a window.
pub fn vr_preset(data: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(data) else {
        return false;
    };
    match crate::imaging::vr::TransferFunction::parse(text, "fuzz.toml") {
        Ok(tf) => {
            let tf = tf.for_range((-1024.0, 3071.0));
            let (c, w) = tf.window;
            let moved = tf.with_window(c + 10.0, w * 2.0);
            for v in [-2000.0, -1024.0, 0.0, c, 3071.0, 1e9] {
                let _ = (tf.eval(v), moved.eval(v), tf.max_opacity(-1024.0, v));
            }
            true
        }
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_survives_its_prefix() {
        for f in [
            Frame {
                rows: 64,
                columns: 64,
                samples: 1,
                bits_allocated: 16,
                bits_stored: 12,
                signed: false,
                colour: 0,
            },
            Frame {
                rows: 1024,
                columns: 1,
                samples: 3,
                bits_allocated: 8,
                bits_stored: 8,
                signed: false,
                colour: 2,
            },
        ] {
            assert_eq!(Frame::from_prefix(f.prefix()), f);
        }
    }

    #[test]
    fn a_native_frame_built_for_the_fuzzer_decodes_to_its_values() {
        let f = Frame::from_prefix([1, 0, 2, 0, 2]);
        assert_eq!((f.rows, f.columns, f.bits_allocated), (2, 3, 16));
        let values: Vec<u8> = (0..6u16).flat_map(|v| (v * 100).to_le_bytes()).collect();
        let file = part10(Codec::Native, &f, &values);
        let label = Path::new("t.dcm");
        let obj = dicom::open_bytes(&file, label, ReadMode::Full).expect("open");
        let h = ImageHeader::from_object(label, &obj).expect("header");
        let px = dicom::decode_frame(&obj, &h, 0).expect("decode");
        assert_eq!((px.rows, px.columns), (2, 3));
        assert_eq!(px.min_max(), Some((0, 500)));
    }
}
