//! A plane resliced from a volume as a derived DICOM image (`lightbox render
//! --mpr … --dicom`): the reference reslicer's modality values stored back in
//! the source's pixel format and rescale, with the plane's own Image Position /
//! Orientation and Pixel Spacing, new UIDs, Image Type DERIVED\SECONDARY\REFORMATTED,
//! the derivation coded (DCM 113072 multiplanar reformatting; 113078/113079
//! for MIP/MinIP slabs) and a Source Image Sequence naming the slices it was made from.
//!
//! The PNG `render --mpr` writes is rendered from this object through the same
//! pipeline as any image, so the picture and the file agree by construction.
//!
//! UIDs are derived from the source series and the request (the
//! `dicom::uid::from_seed` scheme): the same request makes the same object, and
//! planes that differ only in position (a scripted sweep) share one series.

use std::path::Path;

use dicom_core::value::DataSetSequence;
use dicom_core::{DataElement, PrimitiveValue, Tag, VR};
use dicom_dictionary_std::{tags, uids};
use dicom_object::InMemDicomObject;
use dicom_object::meta::FileMetaTableBuilder;
use nalgebra::{Vector3, Vector4};

use crate::dicom::header::Photometric;
use crate::dicom::{self, Image, ImageHeader, ReadMode, uid};
use crate::error::{Error, Result};
use crate::imaging::reslice::{self, Interpolation, PlaneSpec, SlabMode, Voxels};
use crate::model::DisplaySet;
use crate::volume::Volume;

/// What to reformat.
#[derive(Debug)]
pub struct Request<'a> {
    /// The stack the volume was built from, and the headers it indexes.
    pub set: &'a DisplaySet,
    pub headers: &'a [ImageHeader],
    pub volume: &'a Volume,
    pub spec: PlaneSpec,
    pub options: reslice::Options,
    /// What the plane is called in the Series Description: "coronal", "oblique".
    pub label: &'a str,
}

/// A reformat made.
#[derive(Debug)]
pub struct Reformat {
    /// The derived image (header and data set, pixel data included).
    pub image: Image,
    /// Samples whose value did not fit the source's pixel format and were
    /// clamped to its range (0 unless the padding or rescale is unusual).
    pub clamped: usize,
    /// Slices named in the Source Image Sequence.
    pub sources: usize,
    /// Time the reslice itself took (not the volume's loading), ms.
    pub reslice_ms: f64,
}

impl Reformat {
    /// Write the image as a DICOM file (explicit VR little endian).
    pub fn write(&self, path: &Path) -> Result<()> {
        self.image
            .object
            .write_to_file(path)
            .map_err(|e| Error::Write {
                path: path.to_path_buf(),
                reason: e.to_string(),
            })
    }
}

/// The SOP Class a reformat of `modality` images is written as.
fn sop_class(modality: &str) -> Result<&'static str> {
    match modality {
        "CT" => Ok(uids::CT_IMAGE_STORAGE),
        "MR" => Ok(uids::MR_IMAGE_STORAGE),
        other => Err(Error::Series(format!(
            "reformats of {other} images cannot be written as DICOM yet (CT and MR can)"
        ))),
    }
}

/// Attributes copied from the source when it has them (patient, study, frame of
/// reference, acquisition): (tag, VR, type 2 — written empty when absent).
const COPIED: &[(Tag, VR, bool)] = &[
    (tags::PATIENT_NAME, VR::PN, true),
    (tags::PATIENT_ID, VR::LO, true),
    (tags::PATIENT_BIRTH_DATE, VR::DA, true),
    (tags::PATIENT_SEX, VR::CS, true),
    (tags::PATIENT_AGE, VR::AS, false),
    (tags::STUDY_INSTANCE_UID, VR::UI, false),
    (tags::STUDY_DATE, VR::DA, true),
    (tags::STUDY_TIME, VR::TM, true),
    (tags::REFERRING_PHYSICIAN_NAME, VR::PN, true),
    (tags::STUDY_ID, VR::SH, true),
    (tags::ACCESSION_NUMBER, VR::SH, true),
    (tags::STUDY_DESCRIPTION, VR::LO, false),
    (tags::BODY_PART_EXAMINED, VR::CS, false),
    (tags::PATIENT_POSITION, VR::CS, true),
    (tags::FRAME_OF_REFERENCE_UID, VR::UI, false),
    (tags::POSITION_REFERENCE_INDICATOR, VR::LO, true),
    (tags::RESCALE_TYPE, VR::LO, false),
];

/// The CT and MR Image modules' acquisition attributes (type 2 unless noted),
/// copied from the source.
const CT_COPIED: &[(Tag, VR, bool)] = &[
    (tags::KVP, VR::DS, true),
    (tags::ACQUISITION_NUMBER, VR::IS, true),
    (tags::CONVOLUTION_KERNEL, VR::SH, false),
];
const MR_COPIED: &[(Tag, VR, bool)] = &[
    (tags::SCANNING_SEQUENCE, VR::CS, false),
    (tags::SEQUENCE_VARIANT, VR::CS, false),
    (tags::SCAN_OPTIONS, VR::CS, true),
    (tags::MR_ACQUISITION_TYPE, VR::CS, true),
    (tags::REPETITION_TIME, VR::DS, false),
    (tags::ECHO_TIME, VR::DS, true),
    (tags::ECHO_TRAIN_LENGTH, VR::IS, true),
    (tags::INVERSION_TIME, VR::DS, false),
    (tags::SEQUENCE_NAME, VR::SH, false),
    (tags::MAGNETIC_FIELD_STRENGTH, VR::DS, false),
    (tags::IMAGING_FREQUENCY, VR::DS, false),
    (tags::IMAGED_NUCLEUS, VR::SH, false),
    (tags::ACQUISITION_NUMBER, VR::IS, false),
];

/// Decimal string within DS's 16 characters.
fn ds(v: f64) -> String {
    let v = if v == 0.0 { 0.0 } else { v }; // no "-0"
    for digits in (0..=10).rev() {
        let s = format!("{v:.digits$}");
        let s = if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s
        };
        if s.len() <= 16 {
            return if s == "-0" { "0".into() } else { s };
        }
    }
    format!("{v:.3e}")
}

fn ds_list(values: &[f64]) -> String {
    values.iter().map(|v| ds(*v)).collect::<Vec<_>>().join("\\")
}

/// A code sequence item (value, scheme, meaning).
fn code(value: &str, scheme: &str, meaning: &str) -> InMemDicomObject {
    let mut item = InMemDicomObject::new_empty();
    item.put(DataElement::new(
        tags::CODE_VALUE,
        VR::SH,
        PrimitiveValue::from(value),
    ));
    item.put(DataElement::new(
        tags::CODING_SCHEME_DESIGNATOR,
        VR::SH,
        PrimitiveValue::from(scheme),
    ));
    item.put(DataElement::new(
        tags::CODE_MEANING,
        VR::LO,
        PrimitiveValue::from(meaning),
    ));
    item
}

/// LO-sized text (64 characters), cut at a character boundary.
fn lo_text(s: &str) -> String {
    s.chars().take(64).collect()
}

/// Slice indices of the volume the plane (and its slab) draws samples from:
/// the slices around the range of slice coordinates its corners reach.
fn slices_touched(vol: &Volume, spec: &PlaneSpec, half_slab: f64) -> Vec<usize> {
    let n = vol.dims[2];
    let Some(inv) = vol.patient_from_voxel.try_inverse() else {
        return (0..n).collect();
    };
    let normal = spec.normal();
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for (i, j) in [
        (0.0, 0.0),
        ((spec.columns - 1) as f64, 0.0),
        (0.0, (spec.rows - 1) as f64),
        ((spec.columns - 1) as f64, (spec.rows - 1) as f64),
    ] {
        for o in [-half_slab, half_slab] {
            let p = spec.point(i, j) + normal * o;
            let z = (inv * Vector4::new(p.x, p.y, p.z, 1.0)).z;
            lo = lo.min(z);
            hi = hi.max(z);
        }
    }
    let coord = |k: usize| {
        vol.slice_coords
            .as_ref()
            .map_or(k as f64, |sc| sc.coords[k])
    };
    // Trilinear interpolation reads the neighbours on both sides.
    let below = (0..n).rev().find(|&k| coord(k) <= lo).unwrap_or(0);
    let above = (0..n).find(|&k| coord(k) >= hi).unwrap_or(n - 1);
    (below..=above).filter(|&k| k < n).collect()
}

/// Reslice the plane and make it a derived image.
pub fn reformat(req: &Request<'_>) -> Result<Reformat> {
    let set = req.set;
    let vol = req.volume;
    let mid = set.frames[set.frames.len() / 2];
    let source = &req.headers[mid.instance];
    let px = source
        .pixel
        .as_ref()
        .ok_or_else(|| Error::Series("not an image series".into()))?;
    let modality = source.modality.as_deref().unwrap_or("OT");
    let class = sop_class(modality)?;
    let started = std::time::Instant::now();
    let values = reslice::reslice(vol, &req.spec, &req.options)
        .map_err(|e| Error::Series(format!("reslice: {e}")))?;
    let reslice_ms = started.elapsed().as_secs_f64() * 1e3;

    // Modality values back to stored values in the source's format.
    let (lo, hi) = px.stored_range();
    let r = vol.rescale;
    let mut clamped = 0;
    let stored: Vec<i64> = values
        .iter()
        .map(|v| {
            let s = ((v - r.intercept) / r.slope).round();
            if s < lo as f64 || s > hi as f64 || !s.is_finite() {
                clamped += 1;
            }
            if s.is_finite() {
                (s as i64).clamp(lo, hi)
            } else {
                lo
            }
        })
        .collect();
    let words: Vec<u16> = stored.iter().map(|&s| s as u16).collect();

    // The source's own attributes, read again (the header keeps only some).
    let src = dicom::open(&source.path, ReadMode::HeaderOnly)?;
    let mut o = InMemDicomObject::new_empty();
    let put = |o: &mut InMemDicomObject, tag, vr, v: &str| {
        o.put(DataElement::new(tag, vr, PrimitiveValue::from(v)));
    };
    // Specific Character Set first: the copied names and text are in it.
    if let Ok(e) = src.element(tags::SPECIFIC_CHARACTER_SET) {
        o.put(e.clone());
    }
    let copied = [
        COPIED,
        if modality == "CT" {
            CT_COPIED
        } else {
            MR_COPIED
        },
    ];
    for &(tag, vr, type2) in copied.iter().flat_map(|c| c.iter()) {
        match src.element(tag) {
            Ok(e) => {
                o.put(e.clone());
            }
            Err(_) if type2 => {
                o.put(DataElement::new(tag, vr, PrimitiveValue::Empty));
            }
            Err(_) => {}
        }
    }
    if modality == "MR" {
        for (tag, name) in [
            (tags::SCANNING_SEQUENCE, "Scanning Sequence"),
            (tags::SEQUENCE_VARIANT, "Sequence Variant"),
        ] {
            if o.element(tag).is_err() {
                return Err(Error::Series(format!(
                    "{}: the MR image has no {} (required of MR images); \
                     its reformat cannot be written as DICOM",
                    source.path.display(),
                    name
                )));
            }
        }
    }

    // New series and instance, derived from the source series and the request.
    let p = &req.spec.plane;
    let slab = req.options.slab;
    let grid = format!(
        "{}|reformat|{:.6?}|{:.6?}|{:.6?}|{}x{}|{:?}|{:?}",
        source.series_uid,
        p.row_dir.as_slice(),
        p.col_dir.as_slice(),
        p.spacing_mm,
        req.spec.columns,
        req.spec.rows,
        slab,
        req.options.interpolation,
    );
    let series_uid = uid::from_seed(&grid);
    let sop_uid = uid::from_seed(&format!("{grid}|{:.6?}", p.position.coords.as_slice()));
    put(&mut o, tags::SOP_CLASS_UID, VR::UI, class);
    put(&mut o, tags::SOP_INSTANCE_UID, VR::UI, &sop_uid);
    put(&mut o, tags::SERIES_INSTANCE_UID, VR::UI, &series_uid);
    put(&mut o, tags::MODALITY, VR::CS, modality);
    let number = source
        .series_number
        .map_or(String::new(), |n| (n + 1000).to_string());
    put(&mut o, tags::SERIES_NUMBER, VR::IS, &number);
    put(&mut o, tags::INSTANCE_NUMBER, VR::IS, "1");
    let what = match slab {
        Some(s) => format!("{} {:.1} mm {}", s.mode.label(), s.thickness_mm, req.label),
        None => format!("MPR {}", req.label),
    };
    let of = source.series_description.as_deref().unwrap_or("").trim();
    let description = if of.is_empty() {
        what.clone()
    } else {
        format!("{what} of {of}")
    };
    put(
        &mut o,
        tags::SERIES_DESCRIPTION,
        VR::LO,
        &lo_text(&description),
    );
    put(&mut o, tags::MANUFACTURER, VR::LO, "Lightbox");
    put(
        &mut o,
        tags::SOFTWARE_VERSIONS,
        VR::LO,
        concat!("Lightbox ", env!("CARGO_PKG_VERSION")),
    );
    put(
        &mut o,
        tags::IMAGE_TYPE,
        VR::CS,
        "DERIVED\\SECONDARY\\REFORMATTED",
    );
    let interp = match req.options.interpolation {
        Interpolation::Trilinear => "trilinear",
        Interpolation::Nearest => "nearest voxel",
    };
    put(
        &mut o,
        tags::DERIVATION_DESCRIPTION,
        VR::ST,
        &format!("{what}, {interp} interpolation of modality values, by Lightbox"),
    );
    let derivation = match slab.map(|s| s.mode) {
        // DICOM has no code for an average-intensity slab: it is a thick MPR.
        None | Some(SlabMode::Average) => code("113072", "DCM", "Multiplanar reformatting"),
        Some(SlabMode::Mip) => code("113078", "DCM", "Maximum intensity projection"),
        Some(SlabMode::MinIp) => code("113079", "DCM", "Minimum intensity projection"),
    };
    o.put(DataElement::new(
        tags::DERIVATION_CODE_SEQUENCE,
        VR::SQ,
        DataSetSequence::from(vec![derivation]),
    ));
    let touched = slices_touched(vol, &req.spec, slab.map_or(0.0, |s| s.thickness_mm / 2.0));
    let items: Vec<InMemDicomObject> = touched
        .iter()
        .map(|&k| {
            let fr = set.frames[k];
            let h = &req.headers[fr.instance];
            let mut item = InMemDicomObject::new_empty();
            item.put(DataElement::new(
                tags::REFERENCED_SOP_CLASS_UID,
                VR::UI,
                PrimitiveValue::from(h.sop_class_uid.as_str()),
            ));
            item.put(DataElement::new(
                tags::REFERENCED_SOP_INSTANCE_UID,
                VR::UI,
                PrimitiveValue::from(h.sop_instance_uid.as_str()),
            ));
            if h.is_multiframe() {
                item.put(DataElement::new(
                    tags::REFERENCED_FRAME_NUMBER,
                    VR::IS,
                    PrimitiveValue::from((fr.frame + 1).to_string()),
                ));
            }
            item.put(DataElement::new(
                tags::PURPOSE_OF_REFERENCE_CODE_SEQUENCE,
                VR::SQ,
                DataSetSequence::from(vec![code(
                    "121322",
                    "DCM",
                    "Source image for image processing operation",
                )]),
            ));
            item
        })
        .collect();
    let sources = items.len();
    o.put(DataElement::new(
        tags::SOURCE_IMAGE_SEQUENCE,
        VR::SQ,
        DataSetSequence::from(items),
    ));

    // Image Plane: the plane itself.
    put(
        &mut o,
        tags::IMAGE_POSITION_PATIENT,
        VR::DS,
        &ds_list(p.position.coords.as_slice()),
    );
    let (row, col) = (p.row_dir.normalize(), p.col_dir.normalize());
    put(
        &mut o,
        tags::IMAGE_ORIENTATION_PATIENT,
        VR::DS,
        &ds_list(&[row.x, row.y, row.z, col.x, col.y, col.z]),
    );
    put(&mut o, tags::PIXEL_SPACING, VR::DS, &ds_list(&p.spacing_mm));
    match slab {
        Some(s) => put(&mut o, tags::SLICE_THICKNESS, VR::DS, &ds(s.thickness_mm)),
        None => {
            o.put(DataElement::new(
                tags::SLICE_THICKNESS,
                VR::DS,
                PrimitiveValue::Empty,
            ));
        }
    }

    // Image Pixel, rescale and the source's windows.
    let us = |tag, v: u16| DataElement::new(tag, VR::US, PrimitiveValue::from(v));
    o.put(us(tags::SAMPLES_PER_PIXEL, 1));
    let photometric = if px.photometric == Photometric::Monochrome1 {
        "MONOCHROME1"
    } else {
        "MONOCHROME2"
    };
    put(
        &mut o,
        tags::PHOTOMETRIC_INTERPRETATION,
        VR::CS,
        photometric,
    );
    let too_big = |n: usize| {
        u16::try_from(n).map_err(|_| {
            Error::Usage(format!(
                "a reformat of {}×{} pixels does not fit a DICOM image (65535 at most)",
                req.spec.columns, req.spec.rows
            ))
        })
    };
    o.put(us(tags::ROWS, too_big(req.spec.rows)?));
    o.put(us(tags::COLUMNS, too_big(req.spec.columns)?));
    o.put(us(tags::BITS_ALLOCATED, 16));
    o.put(us(tags::BITS_STORED, px.bits_stored));
    o.put(us(tags::HIGH_BIT, px.bits_stored - 1));
    o.put(us(tags::PIXEL_REPRESENTATION, px.signed as u16));
    put(&mut o, tags::RESCALE_INTERCEPT, VR::DS, &ds(r.intercept));
    put(&mut o, tags::RESCALE_SLOPE, VR::DS, &ds(r.slope));
    if modality == "CT" && o.element(tags::RESCALE_TYPE).is_err() {
        put(&mut o, tags::RESCALE_TYPE, VR::LO, "HU");
    }
    let windows = &source.frame(mid.frame)?.windows;
    if !windows.is_empty() {
        let c: Vec<f64> = windows.iter().map(|w| w.center).collect();
        let w: Vec<f64> = windows.iter().map(|w| w.width).collect();
        put(&mut o, tags::WINDOW_CENTER, VR::DS, &ds_list(&c));
        put(&mut o, tags::WINDOW_WIDTH, VR::DS, &ds_list(&w));
        if windows.iter().all(|w| w.explanation.is_some()) {
            let e: Vec<String> = windows
                .iter()
                .map(|w| lo_text(w.explanation.as_deref().unwrap_or("")))
                .collect();
            put(
                &mut o,
                tags::WINDOW_CENTER_WIDTH_EXPLANATION,
                VR::LO,
                &e.join("\\"),
            );
        }
    }
    o.put(DataElement::new(
        tags::PIXEL_DATA,
        VR::OW,
        PrimitiveValue::U16(words.into()),
    ));
    let object = o
        .with_meta(
            FileMetaTableBuilder::new()
                .transfer_syntax(uids::EXPLICIT_VR_LITTLE_ENDIAN)
                .media_storage_sop_class_uid(class)
                .media_storage_sop_instance_uid(sop_uid.as_str()),
        )
        .map_err(|e| Error::Series(format!("making the reformat's file meta: {e}")))?;
    let label = std::path::PathBuf::from(format!("reformat {sop_uid}"));
    let header = ImageHeader::from_object(&label, &object)?;
    Ok(Reformat {
        image: Image { header, object },
        clamped,
        sources,
        reslice_ms,
    })
}

/// The volume's centre voxel's patient position: where named planes cross.
pub fn volume_centre(vol: &dyn Voxels) -> Vector3<f64> {
    let d = vol.dims();
    let c = Vector4::new(
        (d[0].max(1) - 1) as f64 / 2.0,
        (d[1].max(1) - 1) as f64 / 2.0,
        (d[2].max(1) - 1) as f64 / 2.0,
        1.0,
    );
    let p = vol.patient_from_voxel() * c;
    Vector3::new(p.x, p.y, p.z)
}

#[cfg(test)]
mod tests {
    use super::ds;

    #[test]
    fn decimal_strings_fit_sixteen_characters_and_keep_what_they_can() {
        assert_eq!(ds(0.5), "0.5");
        assert_eq!(ds(-1024.0), "-1024");
        assert_eq!(ds(-0.0), "0");
        assert_eq!(ds(-123.456789012345), "-123.4567890123");
        assert!(ds(1.0 / 3.0).len() <= 16);
        assert!(ds(-1e-12).len() <= 16);
    }
}
