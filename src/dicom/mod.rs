//! Reading DICOM: Part 10 files (with or without preamble) and bare data sets
//! without a file meta header, typed headers, pixel decoding and header dumps.
//! Only this module touches the `dicom-*` crates' reading and decoding APIs.

pub mod anonymize;
pub mod attr;
pub mod codec;
pub mod color;
pub mod dicomdir;
pub mod display;
pub mod dump;
pub mod guard;
pub mod header;
pub mod jpeg;
pub mod pixels;
pub mod transcode;
pub mod uid;
mod unknown;

use std::path::Path;

use dicom_dictionary_std::tags;
use dicom_object::file::ReadPreamble;
use dicom_object::meta::FileMetaTableBuilder;
use dicom_object::{DefaultDicomObject, InMemDicomObject, OpenFileOptions};

pub use header::{CalibrationBasis, ImageHeader, Photometric, PixelFormat, StandIn};
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

fn sniff(head: &[u8]) -> std::result::Result<Layout, String> {
    let n = head.len();
    if n >= 132 && &head[128..132] == b"DICM" {
        return Ok(Layout::Part10);
    }
    if n < 8 {
        return Err(format!("only {n} bytes"));
    }
    let group_le = u16::from_le_bytes([head[0], head[1]]);
    let group_be = u16::from_be_bytes([head[0], head[1]]);
    let vr_like = head[4].is_ascii_uppercase() && head[5].is_ascii_uppercase();
    if group_le == 0x0002 && vr_like {
        return Ok(Layout::MetaNoPreamble);
    }
    // A bare data set starts with a low, even group number (0008 in practice).
    let plausible = |g: u16| (0x0002..=0x0028).contains(&g) && g.is_multiple_of(2);
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
    Err("no DICM marker and no recognisable data set at the start".into())
}

/// Bytes read for a header before looking further (most headers are a few KiB;
/// longer ones are read whole).
const HEADER_PREFIX: usize = 16 * 1024;

/// Open a DICOM file, reading either the header or everything.
///
/// The bytes are read once into memory and bounds-checked by [`guard::check`]
/// before `dicom-object` parses them; for a header only a prefix is read, and the
/// whole file only when the header is longer than that.
pub fn open(path: &Path, mode: ReadMode) -> Result<DefaultDicomObject> {
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let file_len = std::fs::metadata(path).map_err(io)?.len() as usize;
    let bytes = match mode {
        ReadMode::Full => std::fs::read(path).map_err(io)?,
        ReadMode::HeaderOnly => {
            use std::io::Read;
            let mut buf = Vec::with_capacity(HEADER_PREFIX.min(file_len));
            std::fs::File::open(path)
                .map_err(io)?
                .take(HEADER_PREFIX as u64)
                .read_to_end(&mut buf)
                .map_err(io)?;
            buf
        }
    };
    let not_dicom = |reason: String| Error::NotDicom {
        path: path.to_path_buf(),
        reason,
    };
    match parse_bytes(&bytes, file_len, mode) {
        Ok(obj) => Ok(obj),
        Err(Parse::NeedMore) => {
            let all = std::fs::read(path).map_err(io)?;
            let len = all.len();
            parse_bytes(&all, len, mode).map_err(|e| match e {
                Parse::NeedMore => not_dicom("file ends inside its header".into()),
                Parse::Bad(r) => not_dicom(r),
            })
        }
        Err(Parse::Bad(r)) => Err(not_dicom(r)),
    }
}

/// Parse a Part 10 file held in memory (e.g. received over the network); `label`
/// names it in errors.
pub fn open_bytes(bytes: &[u8], label: &Path, mode: ReadMode) -> Result<DefaultDicomObject> {
    parse_bytes(bytes, bytes.len(), mode).map_err(|e| Error::NotDicom {
        path: label.to_path_buf(),
        reason: match e {
            Parse::NeedMore => "data set ends inside its header".into(),
            Parse::Bad(r) => r,
        },
    })
}

enum Parse {
    /// The prefix ended before the header did.
    NeedMore,
    Bad(String),
}

impl From<String> for Parse {
    fn from(s: String) -> Self {
        Parse::Bad(s)
    }
}

fn parse_bytes(
    bytes: &[u8],
    file_len: usize,
    mode: ReadMode,
) -> std::result::Result<DefaultDicomObject, Parse> {
    let mut obj = parse_raw(bytes, file_len, mode)?;
    unknown::resolve(&mut obj);
    Ok(obj)
}

fn parse_raw(
    bytes: &[u8],
    file_len: usize,
    mode: ReadMode,
) -> std::result::Result<DefaultDicomObject, Parse> {
    let header_only = mode == ReadMode::HeaderOnly;
    let layout = sniff(bytes)?;
    let (ts, meta) = match layout {
        Layout::Bare(ts) => (ts.to_string(), None),
        Layout::Part10 | Layout::MetaNoPreamble => {
            let start = if matches!(layout, Layout::Part10) {
                132
            } else {
                0
            };
            let meta = parse_meta(bytes, start)
                .ok_or_else(|| "cannot read the file meta group".to_string())?;
            let ts = meta
                .transfer_syntax
                .clone()
                .or_else(|| guess_syntax(bytes.get(meta.end..).unwrap_or(&[])).map(str::to_string))
                .ok_or_else(|| "no transfer syntax and no recognisable data set".to_string())?;
            (ts, Some(meta))
        }
    };
    let offset = meta.as_ref().map(|m| m.end).unwrap_or(0);
    if ts == DEFLATED {
        // Inflate first, so the bounds check sees the real data set.
        let inflated = inflate(bytes.get(offset..).unwrap_or(&[]))?;
        let len = inflated.len();
        let mut obj = read_dataset_lenient(&inflated, 0, EXPLICIT_LE, meta, header_only, len)
            .map_err(Parse::Bad)?;
        obj.meta_mut().transfer_syntax = DEFLATED.to_string();
        return Ok(obj);
    }
    match guard::check(bytes, offset, &ts, header_only, file_len) {
        Err(guard::Problem::NeedMore) => return Err(Parse::NeedMore),
        Ok(end)
            if matches!(layout, Layout::Part10 | Layout::MetaNoPreamble)
                && meta.as_ref().is_some_and(|m| m.length_agrees) =>
        {
            // The common case: a well-formed Part 10 file, parsed by dicom-object.
            let start = if matches!(layout, Layout::Part10) {
                128
            } else {
                0
            };
            let opts = OpenFileOptions::new().read_preamble(ReadPreamble::Never);
            let opts = if header_only {
                opts.read_until(tags::PIXEL_DATA)
            } else {
                opts
            };
            let slice = &bytes[start..end.unwrap_or(bytes.len()).max(start)];
            if let Ok(obj) = opts.from_reader(slice) {
                return Ok(obj);
            }
        }
        _ => {}
    }
    // Damaged meta group, a data set not encoded as declared, or no meta at all.
    read_dataset_lenient(bytes, offset, &ts, meta, header_only, file_len).map_err(Parse::Bad)
}

const DEFLATED: &str = "1.2.840.10008.1.2.1.99";
const EXPLICIT_LE: &str = "1.2.840.10008.1.2.1";
/// Largest inflated data set accepted from a Deflated file (a zip bomb stops here).
const MAX_INFLATED: u64 = 1 << 30;

fn inflate(compressed: &[u8]) -> std::result::Result<Vec<u8>, String> {
    use std::io::Read;
    let mut out = Vec::new();
    flate2::read::DeflateDecoder::new(compressed)
        .take(MAX_INFLATED + 1)
        .read_to_end(&mut out)
        .map_err(|e| format!("cannot inflate Deflated data set: {e}"))?;
    if out.len() as u64 > MAX_INFLATED {
        return Err(format!(
            "Deflated data set inflates past {} MiB",
            MAX_INFLATED >> 20
        ));
    }
    Ok(out)
}

/// Where a file's data set starts when its bytes can be sent as they are: after
/// the file meta group of a Part 10 file (with or without preamble) whose data
/// set is encoded as its transfer syntax says. `None` for a bare data set, or one
/// whose VR encoding contradicts the meta (an implicit VR data set behind an
/// explicit VR transfer syntax): those are re-encoded to be sent.
pub fn dataset_start(path: &Path) -> Result<Option<u64>> {
    use std::io::Read;
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut head = Vec::with_capacity(HEADER_PREFIX);
    std::fs::File::open(path)
        .map_err(io)?
        .take(HEADER_PREFIX as u64)
        .read_to_end(&mut head)
        .map_err(io)?;
    let not_dicom = |reason: &str| Error::NotDicom {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    };
    let start = match sniff(&head).map_err(|r| not_dicom(&r))? {
        Layout::Part10 => 132,
        Layout::MetaNoPreamble => 0,
        Layout::Bare(_) => return Ok(None),
    };
    let meta =
        parse_meta(&head, start).ok_or_else(|| not_dicom("cannot read the file meta group"))?;
    let body = head.get(meta.end..).unwrap_or(&[]);
    let agrees = match meta.transfer_syntax.as_deref() {
        Some(ts @ ("1.2.840.10008.1.2" | "1.2.840.10008.1.2.1")) => {
            body.len() < 8 || guess_syntax(body) == Some(ts)
        }
        Some(_) => true,
        None => false,
    };
    Ok(agrees.then_some(meta.end as u64))
}

/// The few file meta attributes Lightbox needs, parsed without `dicom-object`.
#[derive(Debug, Default)]
struct MetaFields {
    transfer_syntax: Option<String>,
    sop_class: Option<String>,
    sop_instance: Option<String>,
    /// Offset of the first data set byte.
    end: usize,
    /// The group's own length (0002,0000) agrees with the elements walked:
    /// only then is the group handed to dicom-object's meta reader, which
    /// reads as many bytes as that length says.
    length_agrees: bool,
}

/// Walk group 0002 (always explicit VR little endian) from `start`.
fn parse_meta(bytes: &[u8], start: usize) -> Option<MetaFields> {
    let mut m = MetaFields::default();
    let mut i = start;
    // The group length's value and where the elements it counts begin.
    let mut declared: Option<(usize, usize)> = None;
    while i + 8 <= bytes.len() {
        let group = u16::from_le_bytes([bytes[i], bytes[i + 1]]);
        if group != 0x0002 {
            break;
        }
        let element = u16::from_le_bytes([bytes[i + 2], bytes[i + 3]]);
        let vr = &bytes[i + 4..i + 6];
        // An unknown VR has a 4-byte length, as dicom-rs reads it (found by
        // fuzzing: a meta element of VR "U1" was 14 KB to this walk and 775 MB
        // to dicom-object, which allocated it).
        let long = match dicom_core::VR::from_binary([vr[0], vr[1]]) {
            None => true,
            Some(v) => {
                use dicom_core::VR::*;
                matches!(
                    v,
                    OB | OW | OF | OD | OL | OV | SQ | UN | UT | UC | UR | SV | UV
                )
            }
        };
        let (len, header) = if long {
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
            0x0000 if len == 4 && i == start => {
                let group = u32::from_le_bytes([value[0], value[1], value[2], value[3]]);
                declared = Some((group as usize, i + header + len));
            }
            0x0002 => m.sop_class = text(),
            0x0003 => m.sop_instance = text(),
            0x0010 => m.transfer_syntax = text(),
            _ => {}
        }
        i += header + len;
    }
    (i > start).then(|| {
        m.end = i;
        m.length_agrees = declared.is_some_and(|(length, from)| from + length == i);
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

/// Read the data set at `bytes[offset..]` in `ts_uid`. When a little-endian data
/// set does not fit the VR encoding its transfer syntax says, the other one is tried
/// (some writers put an implicit VR data set behind an explicit VR transfer syntax).
/// Each attempt is bounds-checked by [`guard::check`] before parsing.
fn read_dataset_lenient(
    bytes: &[u8],
    offset: usize,
    ts_uid: &str,
    meta: Option<MetaFields>,
    header_only: bool,
    file_len: usize,
) -> std::result::Result<DefaultDicomObject, String> {
    use dicom_encoding::TransferSyntaxIndex;
    let registry = dicom_transfer_syntax_registry::TransferSyntaxRegistry;
    let ts = registry
        .get(ts_uid)
        .ok_or_else(|| format!("unknown transfer syntax {ts_uid}"))?;
    let mut encodings = vec![ts_uid];
    if ts_uid != "1.2.840.10008.1.2.2" && ts_uid != "1.2.840.10008.1.2.1.99" {
        let implicit = ts_uid == "1.2.840.10008.1.2";
        encodings.push(if implicit {
            "1.2.840.10008.1.2.1"
        } else {
            "1.2.840.10008.1.2"
        });
    }
    let mut errors: Vec<String> = Vec::new();
    let mut parsed = None;
    for enc_uid in encodings {
        let attempt = match guard::check(bytes, offset, enc_uid, header_only, file_len) {
            Ok(end) => {
                // Header only: parse up to (not including) Pixel Data.
                let body = bytes
                    .get(offset..end.unwrap_or(bytes.len()).max(offset))
                    .unwrap_or(&[]);
                let enc = if enc_uid == ts_uid {
                    Some(ts)
                } else {
                    registry.get(enc_uid)
                };
                match enc {
                    Some(enc) => {
                        InMemDicomObject::read_dataset_with_ts(body, enc).map_err(|e| chain(&e))
                    }
                    None => Err(format!("unknown transfer syntax {enc_uid}")),
                }
            }
            Err(guard::Problem::NeedMore) => Err("file ends inside its header".to_string()),
            Err(guard::Problem::Bad(e)) => Err(e),
        };
        match attempt {
            Ok(ds) => {
                parsed = Some(ds);
                break;
            }
            Err(e) => {
                let how = if enc_uid == "1.2.840.10008.1.2" {
                    "implicit VR"
                } else {
                    "as declared"
                };
                errors.push(format!("{how}: {e}"));
            }
        }
    }
    let ds = parsed.ok_or_else(|| errors.join("; "))?;
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

    /// A reduced-resolution look at one frame, when its codec offers one (see
    /// [`pixels::decode_frame_preview`]).
    pub fn frame_preview(&self, frame: u32) -> Result<Option<pixels::Preview>> {
        pixels::decode_frame_preview(&self.object, &self.header, frame)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A meta element of an unknown VR has a 4-byte length (as dicom-rs reads
    /// it), and a group length that does not agree with the elements keeps
    /// the group from dicom-object's meta reader (found by fuzzing: a "U1"
    /// element that dicom-object read as 775 MB).
    #[test]
    fn the_meta_walk_reads_lengths_as_dicom_rs_does() {
        let mut b = vec![0u8; 128];
        b.extend_from_slice(b"DICM");
        let start = b.len();
        let el = |b: &mut Vec<u8>, e: u16, vr: &[u8; 2], v: &[u8]| {
            b.extend_from_slice(&[2, 0]);
            b.extend_from_slice(&e.to_le_bytes());
            b.extend_from_slice(vr);
            b.extend_from_slice(&(v.len() as u16).to_le_bytes());
            b.extend_from_slice(v);
        };
        el(&mut b, 0, b"UL", &28u32.to_le_bytes());
        el(&mut b, 0x10, b"UI", b"1.2.840.10008.1.2.1\0");
        let good = parse_meta(&b, start).expect("a meta group");
        assert!(good.length_agrees);
        assert_eq!(good.transfer_syntax.as_deref(), Some("1.2.840.10008.1.2.1"));
        // (0002,0003) "U1": reserved bytes, then a 4-byte length of 775 MB.
        let mut bad = b.clone();
        bad.extend_from_slice(&[2, 0, 3, 0, b'U', b'1', b'I', b':', 0, 0x2e, 0x32, 0x2e]);
        bad.extend_from_slice(&[b'2'; 20_000]);
        assert!(parse_meta(&bad, start).is_none(), "775 MB in a 20 KB file");
        // A group length that says more than the elements hold.
        let mut long = b.clone();
        long[start + 8] = 200;
        assert!(
            !parse_meta(&long, start)
                .expect("still walked")
                .length_agrees
        );
    }
}
