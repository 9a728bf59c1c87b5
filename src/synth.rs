//! Deterministic synthetic studies for tests, benchmarks and the quick start: no
//! patient data anywhere. The same spec always writes the same bytes.
//!
//! - [`write_ct`]: a chest/abdomen CT phantom in Hounsfield units (air -1000, lung
//!   -850, fat -100, soft tissue 40–60, cancellous bone 250, cortical bone 1000),
//!   12 bits stored, rescale intercept -1024, soft-tissue and lung windows.
//! - [`write_mr`]: a sagittal head MR stack.
//! - [`write_cr`]: a chest CR, MONOCHROME1, Imager Pixel Spacing only.
//! - [`write_series`]: the general writer the three use, also used by geometry tests
//!   to write shuffled, gapped, tilted or oblique stacks.

use std::path::{Path, PathBuf};

use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::{tags, uids};
use dicom_object::InMemDicomObject;
use dicom_object::meta::FileMetaTableBuilder;
use nalgebra::{Point3, Vector3};
use rayon::prelude::*;

use crate::error::{Error, Result};

use crate::dicom::uid::fnv;
pub use crate::dicom::uid::from_seed as uid;

/// Deterministic noise in [-1, 1] for a pixel.
fn noise(x: usize, y: usize, z: usize) -> f64 {
    let mut h = (x as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ (y as u64).wrapping_mul(0xC2B2_AE3D_27D4_EB4F)
        ^ (z as u64).wrapping_mul(0x1656_67B1_9E37_79F9);
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    (h % 20001) as f64 / 10000.0 - 1.0
}

/// Everything that identifies and lays out a synthetic series.
#[derive(Debug, Clone)]
pub struct SeriesSpec {
    pub patient_name: String,
    pub patient_id: String,
    pub study_uid: String,
    pub study_date: String,
    pub study_description: String,
    pub series_uid: String,
    pub series_number: i32,
    pub series_description: String,
    pub modality: String,
    pub sop_class: String,
    pub transfer_syntax: String,
    pub rows: usize,
    pub columns: usize,
    /// Row spacing, column spacing (mm).
    pub pixel_spacing: [f64; 2],
    /// Only Imager Pixel Spacing (projection radiography) instead of Pixel Spacing.
    pub imager_spacing_only: bool,
    pub orientation: [f64; 6],
    /// Image Position (Patient) of each slice, in acquisition order.
    pub positions: Vec<[f64; 3]>,
    pub slice_thickness: Option<f64>,
    pub bits_stored: u16,
    pub signed: bool,
    pub photometric: String,
    pub rescale: Option<(f64, f64)>,
    /// (centre, width, explanation)
    pub windows: Vec<(f64, f64, String)>,
    pub presentation_lut_shape: Option<String>,
    /// VOI LUT Function (LINEAR, LINEAR_EXACT, SIGMOID), if any.
    pub voi_function: Option<String>,
    /// A VOI LUT Sequence item: (first value mapped, bits per entry, entries).
    pub voi_lut: Option<(u16, u16, Vec<u16>)>,
    /// A Modality LUT Sequence item (replaces Rescale Slope/Intercept).
    pub modality_lut: Option<(u16, u16, Vec<u16>)>,
    pub frame_of_reference: String,
    pub accession: String,
    pub referring_physician: String,
    /// Body Part Examined (empty: absent).
    pub body_part: String,
}

impl SeriesSpec {
    /// An axial, unsigned 12-bit CT-like series of `n` slices of `size`², 1 mm
    /// pixels, `spacing_mm` apart starting at z = 0: the starting point for tests that
    /// then change orientation, positions, signedness or windows.
    pub fn axial(seed: &str, n: usize, size: usize, spacing_mm: f64) -> SeriesSpec {
        let origin = -(size as f64) / 2.0 + 0.5;
        SeriesSpec {
            patient_name: "TEST^GEOMETRY".into(),
            patient_id: "LBXTEST".into(),
            study_uid: uid(&format!("{seed}.study")),
            study_date: "20260101".into(),
            study_description: "geometry test".into(),
            series_uid: uid(&format!("{seed}.series")),
            series_number: 1,
            series_description: seed.into(),
            modality: "CT".into(),
            sop_class: uids::CT_IMAGE_STORAGE.into(),
            transfer_syntax: uids::EXPLICIT_VR_LITTLE_ENDIAN.into(),
            rows: size,
            columns: size,
            pixel_spacing: [1.0, 1.0],
            imager_spacing_only: false,
            orientation: [1.0, 0.0, 0.0, 0.0, 1.0, 0.0],
            positions: (0..n)
                .map(|k| [origin, origin, k as f64 * spacing_mm])
                .collect(),
            slice_thickness: Some(spacing_mm),
            bits_stored: 12,
            signed: false,
            photometric: "MONOCHROME2".into(),
            rescale: Some((1.0, -1024.0)),
            windows: vec![(40.0, 400.0, "SOFT TISSUE".into())],
            presentation_lut_shape: None,
            voi_function: None,
            voi_lut: None,
            modality_lut: None,
            frame_of_reference: uid(&format!("{seed}.for")),
            accession: "SYN0001".into(),
            referring_physician: "REFERRER^SYNTHETIC".into(),
            body_part: String::new(),
        }
    }
}

/// Write one file per position; `value(slice, column, row)` gives the stored value.
/// Files are named by a hash of their SOP Instance UID, so names carry no order.
/// Returns the paths in slice order.
pub fn write_series<F>(dir: &Path, spec: &SeriesSpec, value: F) -> Result<Vec<PathBuf>>
where
    F: Fn(usize, usize, usize) -> i32 + Sync,
{
    std::fs::create_dir_all(dir).map_err(|e| Error::Write {
        path: dir.to_path_buf(),
        reason: e.to_string(),
    })?;
    (0..spec.positions.len())
        .into_par_iter()
        .map(|k| {
            let sop = uid(&format!("{}.{k}", spec.series_uid));
            let path = dir.join(format!("IM{:08X}.dcm", fnv(sop.as_bytes(), 7) as u32));
            let pixels: Vec<u16> = (0..spec.rows)
                .flat_map(|r| (0..spec.columns).map(move |c| (r, c)))
                .map(|(r, c)| value(k, c, r) as u16)
                .collect();
            let obj = instance(spec, k, &sop, pixels);
            let file = obj
                .with_meta(
                    FileMetaTableBuilder::new()
                        .transfer_syntax(spec.transfer_syntax.as_str())
                        .media_storage_sop_class_uid(spec.sop_class.as_str())
                        .media_storage_sop_instance_uid(sop.as_str()),
                )
                .map_err(|e| Error::Write {
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
            file.write_to_file(&path).map_err(|e| Error::Write {
                path: path.clone(),
                reason: e.to_string(),
            })?;
            Ok(path)
        })
        .collect()
}

fn ds(values: &[f64]) -> String {
    values
        .iter()
        .map(|v| fmt_ds(*v))
        .collect::<Vec<_>>()
        .join("\\")
}

/// Decimal string within the 16-character limit of DS.
fn fmt_ds(v: f64) -> String {
    let s = format!("{v:.6}");
    let s = s.trim_end_matches('0').trim_end_matches('.').to_string();
    if s.len() <= 16 { s } else { format!("{v:.4e}") }
}

fn instance(spec: &SeriesSpec, k: usize, sop: &str, pixels: Vec<u16>) -> InMemDicomObject {
    let mut o = InMemDicomObject::new_empty();
    let mut s = |tag, vr, v: &str| {
        o.put(DataElement::new(tag, vr, PrimitiveValue::from(v)));
    };
    s(tags::SPECIFIC_CHARACTER_SET, VR::CS, "ISO_IR 192");
    s(tags::IMAGE_TYPE, VR::CS, "ORIGINAL\\PRIMARY\\AXIAL");
    s(tags::SOP_CLASS_UID, VR::UI, &spec.sop_class);
    s(tags::SOP_INSTANCE_UID, VR::UI, sop);
    s(tags::STUDY_DATE, VR::DA, &spec.study_date);
    s(tags::SERIES_DATE, VR::DA, &spec.study_date);
    s(tags::STUDY_TIME, VR::TM, "083000");
    s(tags::ACCESSION_NUMBER, VR::SH, &spec.accession);
    s(
        tags::REFERRING_PHYSICIAN_NAME,
        VR::PN,
        &spec.referring_physician,
    );
    if !spec.body_part.is_empty() {
        s(tags::BODY_PART_EXAMINED, VR::CS, &spec.body_part);
    }
    s(tags::MODALITY, VR::CS, &spec.modality);
    s(tags::MANUFACTURER, VR::LO, "Lightbox synthetic phantom");
    s(tags::STUDY_DESCRIPTION, VR::LO, &spec.study_description);
    s(tags::SERIES_DESCRIPTION, VR::LO, &spec.series_description);
    s(tags::PATIENT_NAME, VR::PN, &spec.patient_name);
    s(tags::PATIENT_ID, VR::LO, &spec.patient_id);
    s(tags::PATIENT_BIRTH_DATE, VR::DA, "19700101");
    s(tags::PATIENT_SEX, VR::CS, "O");
    s(tags::STUDY_INSTANCE_UID, VR::UI, &spec.study_uid);
    s(tags::SERIES_INSTANCE_UID, VR::UI, &spec.series_uid);
    s(tags::STUDY_ID, VR::SH, "1");
    s(tags::SERIES_NUMBER, VR::IS, &spec.series_number.to_string());
    s(tags::INSTANCE_NUMBER, VR::IS, &(k + 1).to_string());
    if spec.imager_spacing_only {
        s(tags::IMAGER_PIXEL_SPACING, VR::DS, &ds(&spec.pixel_spacing));
        s(tags::PATIENT_ORIENTATION, VR::CS, "L\\F");
    } else {
        s(
            tags::IMAGE_POSITION_PATIENT,
            VR::DS,
            &ds(&spec.positions[k]),
        );
        s(
            tags::IMAGE_ORIENTATION_PATIENT,
            VR::DS,
            &ds(&spec.orientation),
        );
        s(
            tags::FRAME_OF_REFERENCE_UID,
            VR::UI,
            &spec.frame_of_reference,
        );
        s(tags::PIXEL_SPACING, VR::DS, &ds(&spec.pixel_spacing));
    }
    if let Some(t) = spec.slice_thickness {
        s(tags::SLICE_THICKNESS, VR::DS, &fmt_ds(t));
    }
    s(tags::PHOTOMETRIC_INTERPRETATION, VR::CS, &spec.photometric);
    if let Some((slope, intercept)) = spec.rescale {
        s(tags::RESCALE_INTERCEPT, VR::DS, &fmt_ds(intercept));
        s(tags::RESCALE_SLOPE, VR::DS, &fmt_ds(slope));
        s(
            tags::RESCALE_TYPE,
            VR::LO,
            if spec.modality == "CT" { "HU" } else { "US" },
        );
    }
    if !spec.windows.is_empty() {
        let c: Vec<f64> = spec.windows.iter().map(|w| w.0).collect();
        let w: Vec<f64> = spec.windows.iter().map(|w| w.1).collect();
        let e: Vec<&str> = spec.windows.iter().map(|w| w.2.as_str()).collect();
        s(tags::WINDOW_CENTER, VR::DS, &ds(&c));
        s(tags::WINDOW_WIDTH, VR::DS, &ds(&w));
        s(tags::WINDOW_CENTER_WIDTH_EXPLANATION, VR::LO, &e.join("\\"));
    }
    if let Some(p) = &spec.presentation_lut_shape {
        s(tags::PRESENTATION_LUT_SHAPE, VR::CS, p);
    }
    if let Some(f) = &spec.voi_function {
        s(tags::VOILUT_FUNCTION, VR::CS, f);
    }
    for (seq_tag, lut) in [
        (tags::VOILUT_SEQUENCE, &spec.voi_lut),
        (tags::MODALITY_LUT_SEQUENCE, &spec.modality_lut),
    ] {
        if let Some((first, bits, data)) = lut {
            let mut item = InMemDicomObject::new_empty();
            let n = if data.len() == 65536 {
                0
            } else {
                data.len() as u16
            };
            item.put(DataElement::new(
                tags::LUT_DESCRIPTOR,
                VR::US,
                PrimitiveValue::U16([n, *first, *bits].as_slice().into()),
            ));
            item.put(DataElement::new(
                tags::LUT_DATA,
                VR::OW,
                PrimitiveValue::U16(data.as_slice().into()),
            ));
            item.put(DataElement::new(
                tags::LUT_EXPLANATION,
                VR::LO,
                PrimitiveValue::from("SYNTHETIC LUT"),
            ));
            if seq_tag == tags::MODALITY_LUT_SEQUENCE {
                item.put(DataElement::new(
                    tags::MODALITY_LUT_TYPE,
                    VR::LO,
                    PrimitiveValue::from("HU"),
                ));
            }
            o.put(DataElement::new(
                seq_tag,
                VR::SQ,
                dicom_core::value::DataSetSequence::from(vec![item]),
            ));
        }
    }
    let us = |tag, v: u16| DataElement::new(tag, VR::US, PrimitiveValue::from(v));
    o.put(us(tags::SAMPLES_PER_PIXEL, 1));
    o.put(us(tags::ROWS, spec.rows as u16));
    o.put(us(tags::COLUMNS, spec.columns as u16));
    o.put(us(tags::BITS_ALLOCATED, 16));
    o.put(us(tags::BITS_STORED, spec.bits_stored));
    o.put(us(tags::HIGH_BIT, spec.bits_stored - 1));
    o.put(us(tags::PIXEL_REPRESENTATION, spec.signed as u16));
    o.put(DataElement::new(
        tags::PIXEL_DATA,
        VR::OW,
        PrimitiveValue::U16(pixels.into()),
    ));
    o
}

/// The CT phantom's parameters.
#[derive(Debug, Clone)]
pub struct CtSpec {
    pub slices: usize,
    pub size: usize,
    /// Distance between slices, mm.
    pub spacing_mm: f64,
    /// Field of view, mm (pixel spacing = fov / size).
    pub fov_mm: f64,
    pub seed: String,
    pub patient_name: String,
    pub patient_id: String,
    pub study_date: String,
    pub transfer_syntax: String,
    pub study_description: String,
    pub accession: String,
    pub referring_physician: String,
}

impl Default for CtSpec {
    fn default() -> Self {
        Self {
            slices: 400,
            size: 512,
            spacing_mm: 1.0,
            fov_mm: 358.4,
            seed: "lightbox-ct".into(),
            patient_name: "PHANTOM^CHEST".into(),
            patient_id: "LBX0001".into(),
            study_date: "20260105".into(),
            transfer_syntax: uids::IMPLICIT_VR_LITTLE_ENDIAN.into(),
            study_description: "CT CHEST ABDOMEN (synthetic)".into(),
            accession: "SYN0001".into(),
            referring_physician: "REFERRER^SYNTHETIC".into(),
        }
    }
}

/// Hounsfield value of the phantom at patient position (x, y, z) in mm. The body
/// runs along z from 0 (pelvis) to 400 (lung apices); x to the patient's left,
/// y posterior.
pub fn ct_phantom_hu(x: f64, y: f64, z: f64) -> f64 {
    let e =
        |cx: f64, cy: f64, a: f64, b: f64| ((x - cx) / a).powi(2) + ((y - cy) / b).powi(2) <= 1.0;
    // Table under the patient.
    if (118.0..126.0).contains(&y) && x.abs() < 200.0 {
        return 100.0;
    }
    if !e(0.0, 0.0, 160.0, 115.0) {
        return -1000.0;
    }
    if !e(0.0, 0.0, 154.0, 109.0) {
        return -100.0; // subcutaneous fat
    }
    // Spine: cortical ring, cancellous core, canal.
    let r_vert = ((x).powi(2) + (y - 62.0).powi(2)).sqrt();
    if ((x).powi(2) + (y - 90.0).powi(2)).sqrt() <= 8.0 {
        return 15.0;
    }
    if r_vert <= 18.0 {
        return if r_vert >= 16.0 { 1000.0 } else { 250.0 };
    }
    // Aorta (left of the spine), all levels.
    if ((x - 22.0).powi(2) + (y - 35.0).powi(2)).sqrt() <= 12.0 {
        return 45.0;
    }
    if (200.0..=390.0).contains(&z) {
        // Lung nodule: 12 mm solid sphere in the right lung.
        if ((x + 70.0).powi(2) + (y + 20.0).powi(2) + (z - 300.0).powi(2)).sqrt() <= 6.0 {
            return 30.0;
        }
        if (200.0..=300.0).contains(&z) && e(15.0, -35.0, 50.0, 45.0) {
            return 40.0; // heart
        }
        if e(-75.0, -5.0, 55.0, 80.0) || e(75.0, -5.0, 55.0, 80.0) {
            // vessels: small bright dots on a grid
            let (gx, gy) = ((x + 200.0) % 18.0, (y + 200.0) % 18.0);
            if (gx - 9.0).powi(2) + (gy - 9.0).powi(2) <= 4.0 {
                return 40.0;
            }
            return -850.0;
        }
    }
    if (60.0..=220.0).contains(&z) && e(-70.0, 10.0, 70.0, 65.0) {
        return 60.0; // liver
    }
    if (40.0..=140.0).contains(&z) && (e(-60.0, 55.0, 25.0, 35.0) || e(60.0, 55.0, 25.0, 35.0)) {
        return 30.0; // kidneys
    }
    50.0 // muscle / soft tissue
}

fn study_uid_for(seed: &str) -> String {
    uid(&format!("{seed}.study"))
}

/// The CT's pixel spacing, the centre of its first column/row, and the z of its
/// first slice (small test volumes are centred on the chest: lungs, heart, nodule).
fn ct_geometry(spec: &CtSpec) -> (f64, f64, f64) {
    let ps = spec.fov_mm / spec.size as f64;
    let origin = -spec.fov_mm / 2.0 + ps / 2.0;
    let extent = spec.slices as f64 * spec.spacing_mm;
    let z0 = if extent < 400.0 {
        300.0 - extent / 2.0
    } else {
        0.0
    };
    (ps, origin, z0)
}

/// The series attributes the CT stack and its scout share (patient, study, frame
/// of reference, pixel format, rescale to HU).
fn ct_series(spec: &CtSpec, what: &str, positions: Vec<[f64; 3]>) -> SeriesSpec {
    let (ps, _, _) = ct_geometry(spec);
    SeriesSpec {
        patient_name: spec.patient_name.clone(),
        patient_id: spec.patient_id.clone(),
        study_uid: study_uid_for(&spec.seed),
        study_date: spec.study_date.clone(),
        study_description: spec.study_description.clone(),
        series_uid: uid(&format!("{}.series.{what}", spec.seed)),
        series_number: 2,
        series_description: format!("Axial {} mm", fmt_ds(spec.spacing_mm)),
        modality: "CT".into(),
        sop_class: uids::CT_IMAGE_STORAGE.into(),
        transfer_syntax: spec.transfer_syntax.clone(),
        rows: spec.size,
        columns: spec.size,
        pixel_spacing: [ps, ps],
        imager_spacing_only: false,
        orientation: [1.0, 0.0, 0.0, 0.0, 1.0, 0.0],
        positions,
        slice_thickness: Some(spec.spacing_mm),
        bits_stored: 12,
        signed: false,
        photometric: "MONOCHROME2".into(),
        rescale: Some((1.0, -1024.0)),
        windows: vec![
            (40.0, 400.0, "SOFT TISSUE".into()),
            (-600.0, 1500.0, "LUNG".into()),
        ],
        presentation_lut_shape: None,
        voi_function: None,
        voi_lut: None,
        modality_lut: None,
        frame_of_reference: uid(&format!("{}.for", spec.seed)),
        accession: spec.accession.clone(),
        referring_physician: spec.referring_physician.clone(),
        body_part: "CHEST".into(),
    }
}

/// Write the CT phantom; returns the number of files written.
pub fn write_ct(dir: &Path, spec: &CtSpec) -> Result<usize> {
    let (ps, origin, z0) = ct_geometry(spec);
    let positions: Vec<[f64; 3]> = (0..spec.slices)
        .map(|k| [origin, origin, z0 + k as f64 * spec.spacing_mm])
        .collect();
    let series = ct_series(spec, "ct", positions.clone());
    let files = write_series(dir, &series, |k, c, r| {
        let p = positions[k];
        let (x, y, z) = (p[0] + c as f64 * ps, p[1] + r as f64 * ps, p[2]);
        let hu = ct_phantom_hu(x, y, z) + 8.0 * noise(c, r, k);
        (hu.round() + 1024.0).clamp(0.0, 4095.0) as i32
    })?;
    Ok(files.len())
}

/// Write a coronal scout (localizer) for the CT of `spec`, in its study and frame
/// of reference: the mean attenuation along y through the phantom, head up, like
/// the projection a CT scanner plans its axial series on. Returns 1.
pub fn write_ct_localizer(dir: &Path, spec: &CtSpec) -> Result<usize> {
    let (ps, origin, z0) = ct_geometry(spec);
    // 20 mm beyond the axial range at each end, rows at the column spacing.
    let extent = spec.slices as f64 * spec.spacing_mm;
    let (z_top, z_bottom) = (z0 + extent + 20.0, z0 - 20.0);
    let top = z_top - ps / 2.0;
    let series = SeriesSpec {
        series_number: 1,
        series_description: "Scout".into(),
        rows: ((z_top - z_bottom) / ps).round().max(1.0) as usize,
        // Rows to the patient's left, columns towards the feet: a coronal image
        // seen from the front.
        orientation: [1.0, 0.0, 0.0, 0.0, 0.0, -1.0],
        slice_thickness: None,
        windows: vec![(-250.0, 700.0, "SCOUT".into())],
        ..ct_series(spec, "scout", vec![[origin, 0.0, top]])
    };
    write_series(dir, &series, |_, c, r| {
        let (x, z) = (origin + c as f64 * ps, top - r as f64 * ps);
        // Mean HU along y through the table and the body, every 5 mm.
        let ys = (-130..=130).step_by(5);
        let n = ys.clone().count() as f64;
        let mean = ys.map(|y| ct_phantom_hu(x, y as f64, z)).sum::<f64>() / n;
        (mean.round() + 1024.0).clamp(0.0, 4095.0) as i32
    })?;
    Ok(1)
}

/// The MR series' parameters.
#[derive(Debug, Clone)]
pub struct MrSpec {
    pub slices: usize,
    pub size: usize,
    pub seed: String,
}

impl Default for MrSpec {
    fn default() -> Self {
        Self {
            slices: 24,
            size: 256,
            seed: "lightbox-mr".into(),
        }
    }
}

/// Write a sagittal T2-like head MR stack; returns the number of files.
pub fn write_mr(dir: &Path, spec: &MrSpec) -> Result<usize> {
    let ps = 240.0 / spec.size as f64;
    let spacing = 4.0;
    // Sagittal: rows run anterior→posterior (+y), columns run head→feet (-z).
    let orientation = [0.0, 1.0, 0.0, 0.0, 0.0, -1.0];
    let x0 = -(spec.slices as f64 - 1.0) * spacing / 2.0;
    let positions: Vec<[f64; 3]> = (0..spec.slices)
        .map(|k| [x0 + k as f64 * spacing, -120.0 + ps / 2.0, 120.0 - ps / 2.0])
        .collect();
    let series = SeriesSpec {
        patient_name: "PHANTOM^HEAD".into(),
        patient_id: "LBX0002".into(),
        study_uid: study_uid_for(&spec.seed),
        study_date: "20260106".into(),
        study_description: "MR HEAD (synthetic)".into(),
        series_uid: uid(&format!("{}.series.mr", spec.seed)),
        series_number: 3,
        series_description: "SAG T2".into(),
        modality: "MR".into(),
        sop_class: uids::MR_IMAGE_STORAGE.into(),
        transfer_syntax: uids::EXPLICIT_VR_LITTLE_ENDIAN.into(),
        rows: spec.size,
        columns: spec.size,
        pixel_spacing: [ps, ps],
        imager_spacing_only: false,
        orientation,
        positions: positions.clone(),
        slice_thickness: Some(3.0),
        bits_stored: 12,
        signed: false,
        photometric: "MONOCHROME2".into(),
        rescale: None,
        windows: vec![(700.0, 1400.0, "T2".into())],
        presentation_lut_shape: None,
        voi_function: None,
        voi_lut: None,
        modality_lut: None,
        frame_of_reference: uid(&format!("{}.for", spec.seed)),
        accession: "SYN0002".into(),
        referring_physician: "REFERRER^SYNTHETIC".into(),
        body_part: "HEAD".into(),
    };
    let files = write_series(dir, &series, |k, c, r| {
        let p = Point3::from(positions[k]);
        let q = p
            + Vector3::new(0.0, 1.0, 0.0) * (c as f64 * ps)
            + Vector3::new(0.0, 0.0, -1.0) * (r as f64 * ps);
        let (x, y, z) = (q.x, q.y, q.z);
        let d = ((x / 75.0).powi(2) + (y / 95.0).powi(2) + ((z - 10.0) / 85.0).powi(2)).sqrt();
        let v = if d > 1.0 {
            0.0
        } else if d > 0.93 {
            60.0 // skull
        } else if d > 0.88 {
            1500.0 // CSF
        } else if ((x / 6.0).powi(2) + (y / 30.0).powi(2) + ((z - 20.0) / 20.0).powi(2)) <= 1.0 {
            1600.0 // ventricle
        } else {
            800.0 // brain
        };
        (v + 20.0 * noise(c, r, k)).clamp(0.0, 4095.0) as i32
    })?;
    Ok(files.len())
}

/// Write one chest CR: MONOCHROME1 (low values white), Imager Pixel Spacing 0.2 mm,
/// no Pixel Spacing — measurements on it are "at detector".
pub fn write_cr(dir: &Path) -> Result<usize> {
    write_cr_sized(dir, 1248, 1024)
}

/// The chest CR at another matrix (the same 205 × 250 mm detector area, finer
/// Imager Pixel Spacing): 3000 × 2500 is a full-resolution radiograph.
pub fn write_cr_sized(dir: &Path, rows: usize, cols: usize) -> Result<usize> {
    let spacing = 0.2 * 1024.0 / cols.max(1) as f64;
    let (kx, ky) = (cols as f64 / 1024.0, rows as f64 / 1248.0);
    let series = SeriesSpec {
        patient_name: "PHANTOM^CHEST".into(),
        patient_id: "LBX0001".into(),
        study_uid: study_uid_for("lightbox-cr"),
        study_date: "20251201".into(),
        study_description: "CR CHEST PA (synthetic)".into(),
        series_uid: uid("lightbox-cr.series"),
        series_number: 1,
        series_description: "PA".into(),
        modality: "CR".into(),
        sop_class: uids::COMPUTED_RADIOGRAPHY_IMAGE_STORAGE.into(),
        transfer_syntax: uids::EXPLICIT_VR_LITTLE_ENDIAN.into(),
        rows,
        columns: cols,
        pixel_spacing: [spacing, spacing],
        imager_spacing_only: true,
        orientation: [1.0, 0.0, 0.0, 0.0, 1.0, 0.0],
        positions: vec![[0.0; 3]],
        slice_thickness: None,
        bits_stored: 12,
        signed: false,
        photometric: "MONOCHROME1".into(),
        rescale: None,
        windows: vec![(2048.0, 4096.0, "FULL".into())],
        presentation_lut_shape: Some("INVERSE".into()),
        voi_function: None,
        voi_lut: None,
        modality_lut: None,
        frame_of_reference: String::new(),
        accession: "SYN0003".into(),
        referring_physician: "REFERRER^SYNTHETIC".into(),
        body_part: "CHEST".into(),
    };
    let files = write_series(dir, &series, |_, c, r| {
        let (x, y) = (
            (c as f64 - cols as f64 / 2.0) / kx,
            (r as f64 - rows as f64 / 2.0) / ky,
        );
        let inside = (x / 460.0).powi(2) + (y / 600.0).powi(2) <= 1.0;
        let lung = ((x.abs() - 200.0) / 150.0).powi(2) + ((y + 40.0) / 380.0).powi(2) <= 1.0;
        let spine = x.abs() < 40.0;
        let rib = lung && ((y + 1000.0) % 90.0) < 14.0;
        let v = if !inside {
            3800.0
        } else if spine {
            900.0
        } else if rib {
            1700.0
        } else if lung {
            3200.0
        } else {
            2000.0
        };
        (v + 30.0 * noise(c, r, 0)).clamp(0.0, 4095.0) as i32
    })?;
    Ok(files.len())
}

/// The demo studies: the chest CT phantom (`slices` × `size`²), its prior two years
/// earlier (half the slices, another seed), the head MR and the chest CR. Returns
/// the number of files and the current and prior CT study UIDs.
pub fn write_demo(dir: &Path, slices: usize, size: usize) -> Result<(usize, String, String)> {
    let current = CtSpec {
        slices,
        size,
        accession: "DEMO-CT-2026".into(),
        ..Default::default()
    };
    let prior = CtSpec {
        slices: (slices / 2).max(1),
        size,
        spacing_mm: 2.0,
        seed: "lightbox-ct-prior".into(),
        study_date: "20240105".into(),
        study_description: "CT CHEST ABDOMEN (synthetic prior)".into(),
        accession: "DEMO-CT-2024".into(),
        ..Default::default()
    };
    let mut n = write_ct(&dir.join("ct"), &current)?;
    n += write_ct_localizer(&dir.join("ct-scout"), &current)?;
    n += write_ct(&dir.join("ct-prior"), &prior)?;
    n += write_mr(&dir.join("mr"), &MrSpec::default())?;
    n += write_cr(&dir.join("cr"))?;
    Ok((n, study_uid_for(&current.seed), study_uid_for(&prior.seed)))
}
