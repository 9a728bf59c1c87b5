//! Typed header of one DICOM instance: identity (patient/study/series/instance), pixel
//! format, per-frame geometry and display attributes. Built from a data set read
//! without its pixel data, so indexing never pays for decoding.

use std::path::{Path, PathBuf};

use dicom_dictionary_std::tags;
use dicom_object::DefaultDicomObject;
use serde::Serialize;

use super::attr::{self, Item};
use crate::error::{Error, Result};
use crate::values::Palette;
use crate::values::lut::{Lut, ModalityTransform, Rescale, VoiFunction, Window};

/// Photometric Interpretation (C.7.6.3.1.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Photometric {
    Monochrome1,
    Monochrome2,
    PaletteColor,
    Rgb,
    YbrFull,
    YbrFull422,
    YbrPartial422,
    YbrPartial420,
    YbrIct,
    YbrRct,
    Other(String),
}

impl Photometric {
    pub fn parse(s: &str) -> Photometric {
        match s.trim() {
            "MONOCHROME1" => Self::Monochrome1,
            "MONOCHROME2" => Self::Monochrome2,
            "PALETTE COLOR" => Self::PaletteColor,
            "RGB" => Self::Rgb,
            "YBR_FULL" => Self::YbrFull,
            "YBR_FULL_422" => Self::YbrFull422,
            "YBR_PARTIAL_422" => Self::YbrPartial422,
            "YBR_PARTIAL_420" => Self::YbrPartial420,
            "YBR_ICT" => Self::YbrIct,
            "YBR_RCT" => Self::YbrRct,
            other => Self::Other(other.to_string()),
        }
    }
    pub fn is_monochrome(&self) -> bool {
        matches!(self, Self::Monochrome1 | Self::Monochrome2)
    }
}

/// How the pixel data is laid out (Image Pixel module, C.7.6.3).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PixelFormat {
    pub rows: u32,
    pub columns: u32,
    pub samples_per_pixel: u16,
    pub bits_allocated: u16,
    pub bits_stored: u16,
    pub high_bit: u16,
    /// Pixel Representation 1: two's complement.
    pub signed: bool,
    pub photometric: Photometric,
    /// Planar Configuration: 0 interleaved, 1 colour-by-plane.
    pub planar_configuration: u16,
    pub number_of_frames: u32,
    pub pixel_padding_value: Option<i64>,
}

impl PixelFormat {
    /// Smallest and largest stored value the format can hold.
    pub fn stored_range(&self) -> (i64, i64) {
        let bits = self.bits_stored.clamp(1, 32) as u32;
        if self.signed {
            (-(1i64 << (bits - 1)), (1i64 << (bits - 1)) - 1)
        } else {
            (0, (1i64 << bits) - 1)
        }
    }
}

/// What a pixel spacing is measured against; every measurement states it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CalibrationBasis {
    /// Pixel Spacing of a cross-sectional image: in the patient.
    Patient,
    /// Only Imager Pixel Spacing: at the detector plane, magnification not corrected.
    Detector,
    /// Pixel Spacing of a projection image that was calibrated (differs from the
    /// imager spacing, or a Pixel Spacing Calibration Type is given).
    Calibrated,
    /// Imager Pixel Spacing corrected by the Estimated Radiographic Magnification Factor.
    Magnified,
    /// The physical deltas of the image's ultrasound regions (all alike, in cm).
    UsRegion,
    /// No spacing: measurements are in pixels.
    Pixels,
}

impl CalibrationBasis {
    pub fn label(&self) -> &'static str {
        match self {
            Self::Patient => "Pixel Spacing",
            Self::Detector => "at detector",
            Self::Calibrated => "calibrated",
            Self::Magnified => "magnification corrected",
            Self::UsRegion => "US region",
            Self::Pixels => "pixels (uncalibrated)",
        }
    }
}

/// Pixel spacing to use for measurements, and where it came from.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Calibration {
    /// Row spacing (between rows, vertical) then column spacing (horizontal), mm.
    pub spacing_mm: Option<[f64; 2]>,
    pub basis: CalibrationBasis,
}

/// Per-frame attributes (identical for all frames of a classic image).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FrameInfo {
    pub image_position: Option<[f64; 3]>,
    pub image_orientation: Option<[f64; 6]>,
    pub pixel_spacing: Option<[f64; 2]>,
    pub slice_thickness: Option<f64>,
    pub rescale: Rescale,
    pub windows: Vec<Window>,
}

/// The header of one instance, as the viewer and index need it.
#[derive(Debug, Clone, Serialize)]
pub struct ImageHeader {
    pub path: PathBuf,
    pub transfer_syntax: String,
    pub sop_class_uid: String,
    pub sop_instance_uid: String,
    pub patient_name: Option<String>,
    pub patient_id: Option<String>,
    pub patient_birth_date: Option<String>,
    pub patient_sex: Option<String>,
    pub study_uid: String,
    pub study_time: Option<String>,
    pub referring_physician: Option<String>,
    pub body_part: Option<String>,
    pub study_date: Option<String>,
    pub study_description: Option<String>,
    pub accession_number: Option<String>,
    pub series_uid: String,
    pub series_number: Option<i64>,
    pub series_description: Option<String>,
    pub modality: Option<String>,
    pub frame_of_reference_uid: Option<String>,
    pub instance_number: Option<i64>,
    /// `None` for objects without pixel data (SR, PDF, KOS, ...).
    pub pixel: Option<PixelFormat>,
    /// One entry per frame (empty when there is no pixel data).
    pub frames: Vec<FrameInfo>,
    pub calibration: Calibration,
    pub imager_pixel_spacing: Option<[f64; 2]>,
    /// Patient Orientation (0020,0020): the patient directions of the rows and of
    /// the columns ("L", "F"), when both are valid (letters of A P L R H F).
    pub patient_orientation: Option<[String; 2]>,
    pub modality_lut: Option<Lut>,
    pub voi_luts: Vec<Lut>,
    pub voi_function: VoiFunction,
    /// Presentation LUT Shape given in the image (`INVERSE` or `IDENTITY`).
    pub presentation_lut_shape: Option<String>,
    #[serde(skip)]
    pub palette: Option<Palette>,
    /// "LOSSY 10:1 ISO_10918_1" when the pixels went through lossy compression
    /// (Lossy Image Compression 01, or a lossy transfer syntax now).
    pub lossy: Option<String>,
    /// Attributes corner annotations may show (keyword, value), where present.
    pub annotation_attrs: Vec<(&'static str, String)>,
    /// Display Shutter, when the image has one.
    pub shutter: Option<crate::values::Shutter>,
    /// Overlay planes (60xx).
    pub overlays: Vec<crate::values::Overlay>,
    /// Set on the viewer's stand-in for an image a retrieve listed that is not
    /// here yet: no file, never decoded (see `ui::stand_in`).
    #[serde(skip)]
    pub stand_in: Option<StandIn>,
}

/// What a stand-in header stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StandIn {
    /// The image is still to come.
    Waiting,
    /// It came: its real header is among the others, this one is no longer
    /// grouped (kept so that the indices of later headers do not move).
    Arrived,
}

/// Acquisition attributes the corner annotations can show beyond the header's
/// own fields.
pub const ANNOTATION_ATTRS: &[(&str, dicom_core::Tag)] = &[
    ("KVP", tags::KVP),
    ("Exposure", tags::EXPOSURE),
    ("XRayTubeCurrent", tags::X_RAY_TUBE_CURRENT),
    ("RepetitionTime", tags::REPETITION_TIME),
    ("EchoTime", tags::ECHO_TIME),
    ("FlipAngle", tags::FLIP_ANGLE),
    ("MagneticFieldStrength", tags::MAGNETIC_FIELD_STRENGTH),
    ("ViewPosition", tags::VIEW_POSITION),
    ("ImageLaterality", tags::IMAGE_LATERALITY),
    ("Laterality", tags::LATERALITY),
    ("ProtocolName", tags::PROTOCOL_NAME),
    ("InstitutionName", tags::INSTITUTION_NAME),
    ("ContrastBolusAgent", tags::CONTRAST_BOLUS_AGENT),
    ("ConvolutionKernel", tags::CONVOLUTION_KERNEL),
    (
        "RecommendedDisplayFrameRate",
        tags::RECOMMENDED_DISPLAY_FRAME_RATE,
    ),
    ("CineRate", tags::CINE_RATE),
    ("FrameTime", tags::FRAME_TIME),
    ("PatientAge", tags::PATIENT_AGE),
];

/// Patient Orientation's two values when each is one to three patient directions
/// (A P L R H F), no axis twice, the two along different axes; else None
/// (quadruped terms, a single value, stray text).
fn patient_orientation(value: &str) -> Option<[String; 2]> {
    let axes = |v: &str| -> Option<Vec<usize>> {
        let a: Vec<usize> = v
            .chars()
            .map(|c| "LRAPHF".find(c).map(|i| i / 2))
            .collect::<Option<_>>()?;
        let distinct = a.iter().enumerate().all(|(i, x)| !a[..i].contains(x));
        (!a.is_empty() && a.len() <= 3 && distinct).then_some(a)
    };
    let v: Vec<&str> = value.split('\\').map(str::trim).collect();
    let [rows, columns] = v[..] else {
        return None;
    };
    (axes(rows)?[0] != axes(columns)?[0]).then(|| [rows.to_string(), columns.to_string()])
}

/// The lossy-compression warning for an image, with ratio and method if given.
fn lossy_note(ds: &Item, ts: &str) -> Option<String> {
    let said = attr::string(ds, tags::LOSSY_IMAGE_COMPRESSION);
    let flagged = said.as_deref().is_some_and(|v| v.trim() == "01");
    let denied = said.as_deref().is_some_and(|v| v.trim() == "00");
    // JPEG baseline/extended are always lossy; JPEG-LS near-lossless and JPEG
    // 2000 may be either: the file's own statement decides for those.
    let lossy_ts = matches!(ts, "1.2.840.10008.1.2.4.50" | "1.2.840.10008.1.2.4.51")
        || (!denied
            && matches!(
                ts,
                "1.2.840.10008.1.2.4.81" | "1.2.840.10008.1.2.4.91" | "1.2.840.10008.1.2.4.203"
            ));
    if !flagged && !lossy_ts {
        return None;
    }
    let ratio = attr::floats(ds, tags::LOSSY_IMAGE_COMPRESSION_RATIO)
        .filter(|v| !v.is_empty())
        .map(|v| {
            v.iter()
                .map(|r| {
                    if r.fract() == 0.0 {
                        format!("{r:.0}:1")
                    } else {
                        format!("{r:.1}:1")
                    }
                })
                .collect::<Vec<_>>()
                .join(" ")
        });
    let method =
        attr::string(ds, tags::LOSSY_IMAGE_COMPRESSION_METHOD).map(|m| m.replace('\\', " "));
    let mut note = "LOSSY".to_string();
    for part in [ratio, method].into_iter().flatten() {
        note.push(' ');
        note.push_str(&part);
    }
    Some(note)
}

impl ImageHeader {
    /// Parse from a data set (read with or without pixel data).
    pub fn from_object(path: &Path, obj: &DefaultDicomObject) -> Result<ImageHeader> {
        let ts = obj
            .meta()
            .transfer_syntax()
            .trim_end_matches('\0')
            .to_string();
        let ds: &Item = obj;
        // SOP Instance UID is Type 1, but some real files lack it (and their meta
        // header too): keep them displayable under a UID derived from the path.
        let sop_instance_uid = attr::string(ds, tags::SOP_INSTANCE_UID)
            .or_else(|| {
                let m = obj
                    .meta()
                    .media_storage_sop_instance_uid()
                    .trim_end_matches('\0')
                    .trim()
                    .to_string();
                (!m.is_empty()).then_some(m)
            })
            .unwrap_or_else(|| format!("unknown-instance:{}", path.display()));
        let sop_class_uid = attr::string(ds, tags::SOP_CLASS_UID).unwrap_or_else(|| {
            obj.meta()
                .media_storage_sop_class_uid()
                .trim_end_matches('\0')
                .to_string()
        });
        // Study and Series UIDs are Type 1, but scanned or secondary-capture files
        // sometimes lack them: keep the image, in a group of its own.
        let study_uid = attr::string(ds, tags::STUDY_INSTANCE_UID)
            .unwrap_or_else(|| format!("unknown-study:{sop_instance_uid}"));
        let series_uid = attr::string(ds, tags::SERIES_INSTANCE_UID)
            .unwrap_or_else(|| format!("unknown-series:{sop_instance_uid}"));

        let pixel = pixel_format(path, ds)?;
        let signed = pixel.as_ref().is_some_and(|p| p.signed);
        let frames = match &pixel {
            Some(p) => frame_infos(ds, p.number_of_frames),
            None => Vec::new(),
        };
        let imager_pixel_spacing = attr::floats_n::<2>(ds, tags::IMAGER_PIXEL_SPACING)
            .filter(|s| s.iter().all(|v| *v > 0.0));
        let modality = attr::string(ds, tags::MODALITY);
        let calibration = calibration(
            ds,
            frames.first().and_then(|f| f.pixel_spacing),
            imager_pixel_spacing,
            modality.as_deref(),
        );
        let modality_lut = attr::first_item(ds, tags::MODALITY_LUT_SEQUENCE)
            .and_then(|item| lut_from_item(item, signed));
        // The first value mapped by a VOI LUT is in the representation of the modality
        // output: signed when stored values are, or when rescaling can go negative.
        let voi_signed = signed || frames.first().is_some_and(|f| f.rescale.intercept < 0.0);
        let voi_luts = attr::items(ds, tags::VOILUT_SEQUENCE)
            .map(|items| {
                items
                    .iter()
                    .filter_map(|i| lut_from_item(i, voi_signed))
                    .collect()
            })
            .unwrap_or_default();
        let voi_function = attr::string(ds, tags::VOILUT_FUNCTION)
            .and_then(|s| VoiFunction::parse(&s))
            .unwrap_or_default();
        let palette = match &pixel {
            Some(p) if p.photometric == Photometric::PaletteColor => Some(
                Palette::from_dataset(ds, p.signed).ok_or_else(|| Error::Invalid {
                    path: path.to_path_buf(),
                    attribute: "Palette Color Lookup Table",
                    reason: "descriptor or data missing or inconsistent".into(),
                })?,
            ),
            _ => None,
        };

        Ok(ImageHeader {
            path: path.to_path_buf(),
            transfer_syntax: ts,
            sop_class_uid,
            sop_instance_uid,
            patient_name: attr::string(ds, tags::PATIENT_NAME),
            patient_id: attr::string(ds, tags::PATIENT_ID),
            patient_birth_date: attr::string(ds, tags::PATIENT_BIRTH_DATE),
            patient_sex: attr::string(ds, tags::PATIENT_SEX),
            study_uid,
            study_time: attr::string(ds, tags::STUDY_TIME),
            referring_physician: attr::string(ds, tags::REFERRING_PHYSICIAN_NAME),
            body_part: attr::string(ds, tags::BODY_PART_EXAMINED),
            study_date: attr::string(ds, tags::STUDY_DATE),
            study_description: attr::string(ds, tags::STUDY_DESCRIPTION),
            accession_number: attr::string(ds, tags::ACCESSION_NUMBER),
            series_uid,
            series_number: attr::int(ds, tags::SERIES_NUMBER),
            series_description: attr::string(ds, tags::SERIES_DESCRIPTION),
            modality,
            frame_of_reference_uid: attr::string(ds, tags::FRAME_OF_REFERENCE_UID),
            instance_number: attr::int(ds, tags::INSTANCE_NUMBER),
            pixel,
            frames,
            calibration,
            imager_pixel_spacing,
            patient_orientation: attr::string(ds, tags::PATIENT_ORIENTATION)
                .and_then(|v| patient_orientation(&v)),
            modality_lut,
            voi_luts,
            voi_function,
            presentation_lut_shape: attr::string(ds, tags::PRESENTATION_LUT_SHAPE),
            palette,
            lossy: lossy_note(ds, obj.meta().transfer_syntax().trim_end_matches('\0')),
            annotation_attrs: ANNOTATION_ATTRS
                .iter()
                .filter_map(|(k, t)| Some((*k, attr::string(ds, *t)?)))
                .collect(),
            shutter: crate::values::Shutter::from_item(ds),
            overlays: crate::values::Overlay::all(ds),
            stand_in: None,
        })
    }

    /// Frame attributes, or an error naming the frame when it does not exist.
    pub fn frame(&self, frame: u32) -> Result<&FrameInfo> {
        self.frames.get(frame as usize).ok_or_else(|| {
            Error::Usage(format!(
                "{}: frame {} does not exist (the image has {} frame(s); frames count from 0)",
                self.path.display(),
                frame,
                self.frames.len()
            ))
        })
    }

    /// The modality transformation for a frame: the LUT sequence wins over rescale.
    pub fn modality_transform(&self, frame: &FrameInfo) -> ModalityTransform {
        match &self.modality_lut {
            Some(l) => ModalityTransform::Lut(l.clone()),
            None => ModalityTransform::Rescale(frame.rescale),
        }
    }

    /// Whether this instance is a multi-frame image.
    pub fn is_multiframe(&self) -> bool {
        self.pixel.as_ref().is_some_and(|p| p.number_of_frames > 1)
    }
}

fn pixel_format(path: &Path, ds: &Item) -> Result<Option<PixelFormat>> {
    let has_pixels = ds.get(tags::PIXEL_DATA).is_some()
        || ds.get(tags::FLOAT_PIXEL_DATA).is_some()
        || ds.get(tags::DOUBLE_FLOAT_PIXEL_DATA).is_some();
    let Some(rows) = attr::int(ds, tags::ROWS) else {
        if has_pixels {
            return Err(Error::Missing {
                path: path.to_path_buf(),
                attribute: "Rows",
            });
        }
        return Ok(None);
    };
    let invalid = |attribute: &'static str, reason: String| Error::Invalid {
        path: path.to_path_buf(),
        attribute,
        reason,
    };
    let missing = |attribute: &'static str| Error::Missing {
        path: path.to_path_buf(),
        attribute,
    };
    let columns = attr::int(ds, tags::COLUMNS).ok_or_else(|| missing("Columns"))?;
    if !(1..=65535).contains(&rows) || !(1..=65535).contains(&columns) {
        return Err(invalid("Rows/Columns", format!("{rows}×{columns}")));
    }
    let bits_allocated =
        attr::int(ds, tags::BITS_ALLOCATED).ok_or_else(|| missing("Bits Allocated"))?;
    if ![1, 8, 16, 32].contains(&bits_allocated) {
        return Err(invalid(
            "Bits Allocated",
            format!("{bits_allocated} (supported: 1, 8, 16, 32)"),
        ));
    }
    let bits_stored = attr::int(ds, tags::BITS_STORED).unwrap_or(bits_allocated);
    if bits_stored < 1 || bits_stored > bits_allocated {
        return Err(invalid(
            "Bits Stored",
            format!("{bits_stored} with Bits Allocated {bits_allocated}"),
        ));
    }
    let mut high_bit = attr::int(ds, tags::HIGH_BIT).unwrap_or(bits_stored - 1);
    if high_bit < bits_stored - 1 || high_bit >= bits_allocated {
        // Inconsistent High Bit: the standard fixes High Bit = Bits Stored - 1 for
        // all current IODs, so trust Bits Stored.
        high_bit = bits_stored - 1;
    }
    let samples = attr::int(ds, tags::SAMPLES_PER_PIXEL).unwrap_or(1);
    if samples != 1 && samples != 3 {
        return Err(invalid("Samples per Pixel", format!("{samples}")));
    }
    let photometric = attr::string(ds, tags::PHOTOMETRIC_INTERPRETATION)
        .map(|s| Photometric::parse(&s))
        .unwrap_or(if samples == 3 {
            Photometric::Rgb
        } else {
            Photometric::Monochrome2
        });
    let frames = attr::int(ds, tags::NUMBER_OF_FRAMES).unwrap_or(1).max(1);
    if frames > 1_000_000 {
        return Err(invalid("Number of Frames", format!("{frames}")));
    }
    let signed = attr::int(ds, tags::PIXEL_REPRESENTATION).unwrap_or(0) == 1;
    Ok(Some(PixelFormat {
        rows: rows as u32,
        columns: columns as u32,
        samples_per_pixel: samples as u16,
        bits_allocated: bits_allocated as u16,
        bits_stored: bits_stored as u16,
        high_bit: high_bit as u16,
        signed,
        photometric,
        planar_configuration: attr::int(ds, tags::PLANAR_CONFIGURATION).unwrap_or(0) as u16,
        number_of_frames: frames as u32,
        pixel_padding_value: attr::int(ds, tags::PIXEL_PADDING_VALUE),
    }))
}

/// Windows of a data set or functional group item.
fn windows(item: &Item) -> Vec<Window> {
    let (Some(c), Some(w)) = (
        attr::floats(item, tags::WINDOW_CENTER),
        attr::floats(item, tags::WINDOW_WIDTH),
    ) else {
        return Vec::new();
    };
    let explanations: Vec<String> = attr::string(item, tags::WINDOW_CENTER_WIDTH_EXPLANATION)
        .map(|s| s.split('\\').map(|p| p.trim().to_string()).collect())
        .unwrap_or_default();
    c.iter()
        .zip(w.iter())
        .enumerate()
        .map(|(i, (&center, &width))| Window {
            center,
            width,
            explanation: explanations.get(i).filter(|s| !s.is_empty()).cloned(),
        })
        .collect()
}

fn rescale(item: &Item) -> Option<Rescale> {
    let slope = attr::float(item, tags::RESCALE_SLOPE);
    let intercept = attr::float(item, tags::RESCALE_INTERCEPT);
    if slope.is_none() && intercept.is_none() {
        return None;
    }
    let slope = slope.filter(|s| *s != 0.0).unwrap_or(1.0);
    Some(Rescale {
        slope,
        intercept: intercept.unwrap_or(0.0),
    })
}

/// Frame attributes from the top level, overridden by the shared and then the
/// per-frame functional groups of enhanced multi-frame images (C.7.6.16).
fn frame_infos(ds: &Item, n: u32) -> Vec<FrameInfo> {
    let base = FrameInfo {
        image_position: attr::floats_n::<3>(ds, tags::IMAGE_POSITION_PATIENT),
        image_orientation: attr::floats_n::<6>(ds, tags::IMAGE_ORIENTATION_PATIENT),
        pixel_spacing: attr::floats_n::<2>(ds, tags::PIXEL_SPACING)
            .filter(|s| s.iter().all(|v| *v > 0.0)),
        slice_thickness: attr::float(ds, tags::SLICE_THICKNESS),
        rescale: rescale(ds).unwrap_or_default(),
        windows: windows(ds),
    };
    let shared = attr::first_item(ds, tags::SHARED_FUNCTIONAL_GROUPS_SEQUENCE);
    let per_frame = attr::items(ds, tags::PER_FRAME_FUNCTIONAL_GROUPS_SEQUENCE);
    if shared.is_none() && per_frame.is_none() {
        return vec![base; n as usize];
    }
    let apply = |info: &mut FrameInfo, group: &Item| {
        if let Some(i) = attr::first_item(group, tags::PLANE_POSITION_SEQUENCE)
            && let Some(p) = attr::floats_n::<3>(i, tags::IMAGE_POSITION_PATIENT)
        {
            info.image_position = Some(p);
        }
        if let Some(i) = attr::first_item(group, tags::PLANE_ORIENTATION_SEQUENCE)
            && let Some(o) = attr::floats_n::<6>(i, tags::IMAGE_ORIENTATION_PATIENT)
        {
            info.image_orientation = Some(o);
        }
        if let Some(i) = attr::first_item(group, tags::PIXEL_MEASURES_SEQUENCE) {
            if let Some(s) = attr::floats_n::<2>(i, tags::PIXEL_SPACING) {
                info.pixel_spacing = Some(s);
            }
            if let Some(t) = attr::float(i, tags::SLICE_THICKNESS) {
                info.slice_thickness = Some(t);
            }
        }
        if let Some(i) = attr::first_item(group, tags::PIXEL_VALUE_TRANSFORMATION_SEQUENCE)
            && let Some(r) = rescale(i)
        {
            info.rescale = r;
        }
        if let Some(i) = attr::first_item(group, tags::FRAME_VOILUT_SEQUENCE) {
            let w = windows(i);
            if !w.is_empty() {
                info.windows = w;
            }
        }
    };
    let mut with_shared = base;
    if let Some(s) = shared {
        apply(&mut with_shared, s);
    }
    (0..n as usize)
        .map(|i| {
            let mut info = with_shared.clone();
            if let Some(item) = per_frame.and_then(|p| p.get(i)) {
                apply(&mut info, item);
            }
            info
        })
        .collect()
}

fn calibration(
    ds: &Item,
    pixel_spacing: Option<[f64; 2]>,
    imager: Option<[f64; 2]>,
    modality: Option<&str>,
) -> Calibration {
    let projection = matches!(
        modality,
        Some("CR" | "DX" | "MG" | "XA" | "RF" | "IO" | "PX" | "RG" | "DF")
    ) || imager.is_some();
    let calibration_type = attr::string(ds, tags::PIXEL_SPACING_CALIBRATION_TYPE);
    let magnification =
        attr::float(ds, tags::ESTIMATED_RADIOGRAPHIC_MAGNIFICATION_FACTOR).filter(|m| *m > 0.0);
    match (pixel_spacing, imager) {
        (Some(ps), _) if !projection => Calibration {
            spacing_mm: Some(ps),
            basis: CalibrationBasis::Patient,
        },
        (Some(ps), Some(ips)) => {
            let same = (ps[0] - ips[0]).abs() < 1e-6 && (ps[1] - ips[1]).abs() < 1e-6;
            Calibration {
                spacing_mm: Some(ps),
                basis: if same && calibration_type.is_none() {
                    CalibrationBasis::Detector
                } else {
                    CalibrationBasis::Calibrated
                },
            }
        }
        (Some(ps), None) => Calibration {
            spacing_mm: Some(ps),
            basis: if calibration_type.is_some() {
                CalibrationBasis::Calibrated
            } else {
                CalibrationBasis::Patient
            },
        },
        (None, Some(ips)) => match magnification {
            Some(m) if (m - 1.0).abs() > 1e-9 => Calibration {
                spacing_mm: Some([ips[0] / m, ips[1] / m]),
                basis: CalibrationBasis::Magnified,
            },
            _ => Calibration {
                spacing_mm: Some(ips),
                basis: CalibrationBasis::Detector,
            },
        },
        (None, None) => match us_region_spacing(ds) {
            Some(sp) => Calibration {
                spacing_mm: Some(sp),
                basis: CalibrationBasis::UsRegion,
            },
            None => Calibration {
                spacing_mm: None,
                basis: CalibrationBasis::Pixels,
            },
        },
    }
}

/// Row and column spacing (mm) from the Sequence of Ultrasound Regions: the 2-D
/// regions whose physical units are centimetres in both directions, when they all
/// agree (regions with different scales, or none in cm, leave the image
/// uncalibrated: a length could cross from one scale into another).
fn us_region_spacing(ds: &Item) -> Option<[f64; 2]> {
    let regions = attr::items(ds, tags::SEQUENCE_OF_ULTRASOUND_REGIONS)?;
    let mut found: Option<[f64; 2]> = None;
    for r in regions {
        // Region Spatial Format 1: a 2-D (tissue or colour flow) image.
        if attr::int(r, tags::REGION_SPATIAL_FORMAT) != Some(1) {
            continue;
        }
        let cm = |t| attr::int(r, t) == Some(3);
        if !(cm(tags::PHYSICAL_UNITS_X_DIRECTION) && cm(tags::PHYSICAL_UNITS_Y_DIRECTION)) {
            return None;
        }
        let (dx, dy) = (
            attr::float(r, tags::PHYSICAL_DELTA_X)?.abs(),
            attr::float(r, tags::PHYSICAL_DELTA_Y)?.abs(),
        );
        if dx <= 0.0 || dy <= 0.0 {
            return None;
        }
        let sp = [dy * 10.0, dx * 10.0];
        match found {
            Some(f) if (f[0] - sp[0]).abs() > 1e-9 || (f[1] - sp[1]).abs() > 1e-9 => return None,
            _ => found = Some(sp),
        }
    }
    found
}

/// A LUT from an item holding LUT Descriptor / LUT Data / LUT Explanation.
fn lut_from_item(item: &Item, signed_input: bool) -> Option<Lut> {
    let desc = attr::words(item, tags::LUT_DESCRIPTOR)?;
    if desc.len() < 3 {
        return None;
    }
    let data_bytes = attr::bytes(item, tags::LUT_DATA)?;
    let words = attr::words(item, tags::LUT_DATA)?;
    Lut::from_descriptor(
        [desc[0], desc[1], desc[2]],
        signed_input,
        &words,
        data_bytes.len(),
        attr::string(item, tags::LUT_EXPLANATION),
    )
}

#[cfg(test)]
mod tests {
    use super::patient_orientation;

    #[test]
    fn patient_orientation_takes_patient_directions_only() {
        let o = |a: &str, b: &str| Some([a.to_string(), b.to_string()]);
        assert_eq!(patient_orientation("L\\F"), o("L", "F"));
        assert_eq!(patient_orientation(" LP \\FA"), o("LP", "FA"));
        assert_eq!(patient_orientation("A\\FR"), o("A", "FR"));
        // Not two values, not patient directions, an axis twice, both along one axis.
        for bad in [
            "L", "L\\F\\A", "CR\\D", "l\\f", "LR\\F", "L\\R", "\\F", "LPHA\\F",
        ] {
            assert_eq!(patient_orientation(bad), None, "{bad:?}");
        }
    }
}
