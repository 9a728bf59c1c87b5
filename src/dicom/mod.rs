//! Reading DICOM: Part 10 files (with or without preamble) and bare data sets
//! without a file meta header, typed headers, pixel decoding and header dumps.
//! Only this module touches the `dicom-*` crates' reading and decoding APIs.

pub mod attr;
pub mod codec;
pub mod dump;
pub mod header;
pub mod jpeg12;
pub mod pixels;

use std::io::Read;
use std::path::Path;

use dicom_dictionary_std::tags;
use dicom_object::file::ReadPreamble;
use dicom_object::meta::FileMetaTableBuilder;
use dicom_object::{DefaultDicomObject, InMemDicomObject, OpenFileOptions};

pub use header::{CalibrationBasis, ImageHeader, Photometric, PixelFormat};
pub use pixels::{FramePixels, Samples, decode_frame};

use crate::error::{Error, Result};

/// How much of a file to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadMode {
    /// Stop before Pixel Data: for indexing and dumps.
    HeaderOnly,
    /// Everything, for decoding.
    Full,
}

/// What the first bytes of a file say about its layout.
enum Layout {
    /// 128-byte preamble and "DICM".
    Part10,
    /// File meta group without the preamble.
    MetaNoPreamble,
    /// A bare data set in the given transfer syntax.
    Bare(&'static str),
}

fn sniff(path: &Path) -> Result<Layout> {
    let mut f = std::fs::File::open(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut head = [0u8; 132];
    let mut n = 0;
    while n < head.len() {
        match f.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(source) => {
                return Err(Error::Io {
                    path: path.to_path_buf(),
                    source,
                });
            }
        }
    }
    if n == 132 && &head[128..132] == b"DICM" {
        return Ok(Layout::Part10);
    }
    if n < 8 {
        return Err(Error::NotDicom {
            path: path.to_path_buf(),
            reason: format!("only {n} bytes"),
        });
    }
    let group_le = u16::from_le_bytes([head[0], head[1]]);
    let group_be = u16::from_be_bytes([head[0], head[1]]);
    let vr_like = head[4].is_ascii_uppercase() && head[5].is_ascii_uppercase();
    if group_le == 0x0002 && vr_like {
        return Ok(Layout::MetaNoPreamble);
    }
    // A bare data set starts with a low group number (0008 in practice).
    let plausible = |g: u16| (0x0002..=0x0028).contains(&g) && g % 2 == 0;
    if plausible(group_le) {
        return Ok(Layout::Bare(if vr_like {
            "1.2.840.10008.1.2.1"
        } else {
            "1.2.840.10008.1.2"
        }));
    }
    if plausible(group_be) && vr_like {
        return Ok(Layout::Bare("1.2.840.10008.1.2.2"));
    }
    Err(Error::NotDicom {
        path: path.to_path_buf(),
        reason: "no DICM marker and no recognisable data set at the start".into(),
    })
}

/// Open a DICOM file, reading either the header or everything.
pub fn open(path: &Path, mode: ReadMode) -> Result<DefaultDicomObject> {
    let not_dicom = |e: &dyn std::error::Error| Error::NotDicom {
        path: path.to_path_buf(),
        reason: chain(e),
    };
    let layout = sniff(path)?;
    let opts = || {
        let o = OpenFileOptions::new();
        match mode {
            ReadMode::HeaderOnly => o.read_until(tags::PIXEL_DATA),
            ReadMode::Full => o,
        }
    };
    let read_bare =
        |offset: usize, ts_uid: &str, meta: Option<MetaFields>| -> Result<DefaultDicomObject> {
            let bytes = std::fs::read(path).map_err(|source| Error::Io {
                path: path.to_path_buf(),
                source,
            })?;
            let body = bytes.get(offset..).unwrap_or(&[]);
            read_dataset_lenient(body, ts_uid, meta).map_err(|reason| Error::NotDicom {
                path: path.to_path_buf(),
                reason,
            })
        };
    match layout {
        Layout::Part10 | Layout::MetaNoPreamble => {
            let preamble = if matches!(layout, Layout::Part10) {
                ReadPreamble::Always
            } else {
                ReadPreamble::Never
            };
            match opts().read_preamble(preamble).open_file(path) {
                Ok(obj) => Ok(obj),
                Err(e) => {
                    // A damaged file meta group (no group length, no transfer syntax)
                    // or a data set not encoded as its meta group says: parse the meta
                    // group ourselves and read the data set leniently.
                    let first_error = not_dicom(&e);
                    let bytes = std::fs::read(path).map_err(|source| Error::Io {
                        path: path.to_path_buf(),
                        source,
                    })?;
                    let start = if matches!(layout, Layout::Part10) {
                        132
                    } else {
                        0
                    };
                    let Some(meta) = parse_meta(&bytes, start) else {
                        return Err(first_error);
                    };
                    let ts = meta
                        .transfer_syntax
                        .clone()
                        .or_else(|| {
                            guess_syntax(bytes.get(meta.end..).unwrap_or(&[])).map(str::to_string)
                        })
                        .ok_or(first_error)?;
                    let end = meta.end;
                    read_bare(end, &ts, Some(meta))
                }
            }
        }
        Layout::Bare(ts_uid) => read_bare(0, ts_uid, None),
    }
}

/// The few file meta attributes Lightbox needs, parsed without `dicom-object`.
#[derive(Debug, Default)]
struct MetaFields {
    transfer_syntax: Option<String>,
    sop_class: Option<String>,
    sop_instance: Option<String>,
    /// Offset of the first data set byte.
    end: usize,
}

/// Walk group 0002 (always explicit VR little endian) from `start`.
fn parse_meta(bytes: &[u8], start: usize) -> Option<MetaFields> {
    let mut m = MetaFields::default();
    let mut i = start;
    while i + 8 <= bytes.len() {
        let group = u16::from_le_bytes([bytes[i], bytes[i + 1]]);
        if group != 0x0002 {
            break;
        }
        let element = u16::from_le_bytes([bytes[i + 2], bytes[i + 3]]);
        let vr = &bytes[i + 4..i + 6];
        let (len, header) = if matches!(vr, b"OB" | b"OW" | b"UN" | b"SQ" | b"UT" | b"UC" | b"UR") {
            let l = bytes.get(i + 8..i + 12)?;
            (u32::from_le_bytes([l[0], l[1], l[2], l[3]]) as usize, 12)
        } else {
            (u16::from_le_bytes([bytes[i + 6], bytes[i + 7]]) as usize, 8)
        };
        let value = bytes.get(i + header..i + header + len)?;
        let text = || {
            let s = String::from_utf8_lossy(value)
                .trim_end_matches(['\0', ' '])
                .to_string();
            (!s.is_empty()).then_some(s)
        };
        match element {
            0x0002 => m.sop_class = text(),
            0x0003 => m.sop_instance = text(),
            0x0010 => m.transfer_syntax = text(),
            _ => {}
        }
        i += header + len;
    }
    (i > start).then(|| {
        m.end = i;
        m
    })
}

/// Explicit or implicit VR little endian, from the first element of a data set.
fn guess_syntax(body: &[u8]) -> Option<&'static str> {
    if body.len() < 8 {
        return None;
    }
    Some(
        if body[4].is_ascii_uppercase() && body[5].is_ascii_uppercase() {
            "1.2.840.10008.1.2.1"
        } else {
            "1.2.840.10008.1.2"
        },
    )
}

/// Read a data set in `ts_uid`; when a little-endian data set fails to parse in the
/// VR encoding its transfer syntax says, try the other one (some writers put an
/// implicit VR data set behind an explicit VR transfer syntax).
fn read_dataset_lenient(
    body: &[u8],
    ts_uid: &str,
    meta: Option<MetaFields>,
) -> std::result::Result<DefaultDicomObject, String> {
    use dicom_encoding::TransferSyntaxIndex;
    let registry = dicom_transfer_syntax_registry::TransferSyntaxRegistry;
    let ts = registry
        .get(ts_uid)
        .ok_or_else(|| format!("unknown transfer syntax {ts_uid}"))?;
    let mut attempt = InMemDicomObject::read_dataset_with_ts(body, ts).map_err(|e| chain(&e));
    if attempt.is_err() && ts_uid != "1.2.840.10008.1.2.2" {
        let other = match guess_syntax(body) {
            Some("1.2.840.10008.1.2") => "1.2.840.10008.1.2",
            _ => "1.2.840.10008.1.2.1",
        };
        if let Some(alt) = registry.get(other) {
            if let Ok(ds) = InMemDicomObject::read_dataset_with_ts(body, alt) {
                attempt = Ok(ds);
            }
        }
    }
    let ds = attempt?;
    let meta = meta.unwrap_or_default();
    let sop_class = meta
        .sop_class
        .or_else(|| attr::string(&ds, tags::SOP_CLASS_UID))
        .unwrap_or_default();
    let sop_inst = meta
        .sop_instance
        .or_else(|| attr::string(&ds, tags::SOP_INSTANCE_UID))
        .unwrap_or_default();
    let file_meta = FileMetaTableBuilder::new()
        .media_storage_sop_class_uid(sop_class)
        .media_storage_sop_instance_uid(sop_inst)
        .transfer_syntax(ts_uid)
        .build()
        .map_err(|e| chain(&e))?;
    Ok(ds.with_exact_meta(file_meta))
}

/// Read a file's header (no pixel data) and type it.
pub fn read_header(path: &Path) -> Result<ImageHeader> {
    let obj = open(path, ReadMode::HeaderOnly)?;
    ImageHeader::from_object(path, &obj)
}

/// An opened image: its typed header and the full data set for decoding frames.
#[derive(Debug)]
pub struct Image {
    pub header: ImageHeader,
    pub object: DefaultDicomObject,
}

impl Image {
    /// Open and fully read an image file.
    pub fn open(path: &Path) -> Result<Image> {
        let object = open(path, ReadMode::Full)?;
        let header = ImageHeader::from_object(path, &object)?;
        Ok(Image { header, object })
    }

    /// Decode one frame (0-based).
    pub fn frame(&self, frame: u32) -> Result<FramePixels> {
        decode_frame(&self.object, &self.header, frame)
    }
}

/// Join an error with its sources into one line.
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let m = c.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cur = c.source();
    }
    s
}
