//! Re-encoding an object in an uncompressed transfer syntax, for a node that
//! accepts nothing else (the send fallback; objects are otherwise sent as stored).
//!
//! A native data set is re-encoded (implicit ↔ explicit VR, byte order): the
//! values are unchanged. A compressed one is decoded frame by frame with the same
//! decoders the display uses and written native: Mono frames at their Bits
//! Allocated with the stored values as they are; colour frames interleaved RGB
//! (Photometric Interpretation RGB, Planar Configuration 0), since the decoders
//! return RGB. An image that went through lossy compression says so afterwards
//! (Lossy Image Compression "01" and its method), as PS3.3 C.7.6.1.1.5 requires.

use std::path::Path;

use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::tags;
use dicom_encoding::TransferSyntaxIndex;
use dicom_object::InMemDicomObject;

use super::pixels::is_native;
use super::{ImageHeader, ReadMode, Samples, decode_frame, open};
use crate::error::{Error, Result};

/// The data set of `path` encoded in the native transfer syntax `to`, and
/// whether its pixel data had to be decompressed.
pub fn native_dataset(path: &Path, to: &str) -> Result<(Vec<u8>, bool)> {
    let unsupported = |what: String| Error::Unsupported {
        path: path.to_path_buf(),
        what,
    };
    let syntax = dicom_transfer_syntax_registry::TransferSyntaxRegistry
        .get(to)
        .filter(|_| is_native(to) && to != "1.2.840.10008.1.2.1.99")
        .ok_or_else(|| unsupported(format!("{to} is not an uncompressed transfer syntax")))?;
    let obj = open(path, ReadMode::Full)?;
    let stored = obj
        .meta()
        .transfer_syntax()
        .trim_end_matches('\0')
        .to_string();
    let decompress = !is_native(&stored);
    let mut ds: InMemDicomObject = if decompress {
        let header = ImageHeader::from_object(path, &obj)?;
        let fmt = header.pixel.clone().ok_or_else(|| {
            unsupported("compressed, but no pixel data to decompress".to_string())
        })?;
        let frames = fmt.number_of_frames.max(1);
        let bytes_per = usize::from(fmt.bits_allocated.div_ceil(8));
        let mut pixels = Vec::with_capacity(
            fmt.rows as usize
                * fmt.columns as usize
                * usize::from(fmt.samples_per_pixel)
                * frames as usize
                * bytes_per,
        );
        let mut colour = false;
        for f in 0..frames {
            let frame = decode_frame(&obj, &header, f)?;
            match &frame.samples {
                Samples::Mono(v) => {
                    for &x in v {
                        pixels.extend_from_slice(&x.to_le_bytes()[..bytes_per]);
                    }
                }
                Samples::Rgb(v) => {
                    colour = true;
                    for &x in v {
                        pixels.extend_from_slice(&x.to_le_bytes()[..bytes_per]);
                    }
                }
            }
        }
        if pixels.len() % 2 == 1 {
            pixels.push(0);
        }
        let mut ds = obj.into_inner();
        ds.remove_element(tags::EXTENDED_OFFSET_TABLE);
        ds.remove_element(tags::EXTENDED_OFFSET_TABLE_LENGTHS);
        let vr = if fmt.bits_allocated > 8 {
            VR::OW
        } else {
            VR::OB
        };
        ds.put(DataElement::new(
            tags::PIXEL_DATA,
            vr,
            PrimitiveValue::U8(pixels.into()),
        ));
        if colour {
            ds.put(DataElement::new(
                tags::PHOTOMETRIC_INTERPRETATION,
                VR::CS,
                PrimitiveValue::from("RGB"),
            ));
            ds.put(DataElement::new(
                tags::PLANAR_CONFIGURATION,
                VR::US,
                PrimitiveValue::from(0u16),
            ));
        }
        if header.lossy.is_some() {
            let said = super::attr::string(&ds, tags::LOSSY_IMAGE_COMPRESSION);
            if said.as_deref().map(str::trim) != Some("01") {
                ds.put(DataElement::new(
                    tags::LOSSY_IMAGE_COMPRESSION,
                    VR::CS,
                    PrimitiveValue::from("01"),
                ));
                if let Some(method) = lossy_method(&stored) {
                    ds.put(DataElement::new(
                        tags::LOSSY_IMAGE_COMPRESSION_METHOD,
                        VR::CS,
                        PrimitiveValue::from(method),
                    ));
                }
            }
        }
        ds
    } else {
        obj.into_inner()
    };
    // A Deflated source was inflated on reading; nothing else to undo.
    ds.remove_element(tags::DATA_SET_TRAILING_PADDING);
    let mut out = Vec::new();
    ds.write_dataset_with_ts(&mut out, syntax)
        .map_err(|e| unsupported(format!("re-encoding in {to}: {}", super::chain(&e))))?;
    Ok((out, decompress))
}

/// The Lossy Image Compression Method (0028,2114) term for a lossy syntax.
fn lossy_method(ts: &str) -> Option<&'static str> {
    match ts {
        "1.2.840.10008.1.2.4.50" | "1.2.840.10008.1.2.4.51" => Some("ISO_10918_1"),
        "1.2.840.10008.1.2.4.81" => Some("ISO_14495_1"),
        "1.2.840.10008.1.2.4.91" => Some("ISO_15444_1"),
        "1.2.840.10008.1.2.4.203" => Some("ISO_15444_15"),
        _ => None,
    }
}
