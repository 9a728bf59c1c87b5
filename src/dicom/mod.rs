//! Reading DICOM: Part 10 files (with or without preamble) and bare data sets
//! without a file meta header, typed headers, pixel decoding and header dumps.
//! Only this module touches the `dicom-*` crates' reading and decoding APIs.

pub mod attr;
pub mod dump;
pub mod header;
pub mod pixels;

use std::io::Read;
use std::path::Path;

use dicom_dictionary_std::tags;
use dicom_object::meta::FileMetaTableBuilder;
use dicom_object::file::ReadPreamble;
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
    match layout {
        Layout::Part10 => opts()
            .read_preamble(ReadPreamble::Always)
            .open_file(path)
            .map_err(|e| not_dicom(&e)),
        Layout::MetaNoPreamble => opts()
            .read_preamble(ReadPreamble::Never)
            .open_file(path)
            .map_err(|e| not_dicom(&e)),
        Layout::Bare(ts_uid) => {
            use dicom_encoding::TransferSyntaxIndex;
            let ts = dicom_transfer_syntax_registry::TransferSyntaxRegistry
                .get(ts_uid)
                .ok_or_else(|| Error::NotDicom {
                    path: path.to_path_buf(),
                    reason: format!("transfer syntax {ts_uid} not registered"),
                })?;
            let file = std::fs::File::open(path).map_err(|source| Error::Io {
                path: path.to_path_buf(),
                source,
            })?;
            let ds = InMemDicomObject::read_dataset_with_ts(std::io::BufReader::new(file), ts)
                .map_err(|e| not_dicom(&e))?;
            let sop_class = attr::string(&ds, tags::SOP_CLASS_UID).unwrap_or_default();
            let sop_inst = attr::string(&ds, tags::SOP_INSTANCE_UID).unwrap_or_default();
            let meta = FileMetaTableBuilder::new()
                .media_storage_sop_class_uid(sop_class)
                .media_storage_sop_instance_uid(sop_inst)
                .transfer_syntax(ts_uid)
                .build()
                .map_err(|e| not_dicom(&e))?;
            Ok(ds.with_exact_meta(meta))
        }
    }
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
