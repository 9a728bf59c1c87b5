//! De-identification for export, after DICOM PS3.15 Annex E's Basic Application
//! Level Confidentiality Profile: identifying attributes removed or emptied, the
//! patient's name and ID replaced by the pseudonyms given, every UID replaced by a
//! new one (consistently across the export, so studies, series, frames of
//! reference and references between instances still hold together), private
//! attributes, overlays and curves removed, dates and times emptied and all person
//! names cleared anywhere, sequences included. Two profile options may be asked
//! for: *Retain Longitudinal Temporal Information with Full Dates* (priors keep
//! their order) and keeping the study/series descriptions (the user's call: they
//! are not cleaned).
//!
//! Files that say their pixels carry burned-in annotation (Burned In Annotation
//! = YES) are refused: removing text from pixels is not something this module
//! pretends to do. Geometry, pixel data and display attributes are untouched.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use dicom_core::header::Header;
use dicom_core::value::{DataSetSequence, Value};
use dicom_core::{DataElement, PrimitiveValue, Tag, VR};
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;

use crate::error::{Error, Result};

/// What to keep and what to call the patient.
#[derive(Debug, Clone)]
pub struct Options {
    pub patient_name: String,
    pub patient_id: String,
    /// Retain Longitudinal Temporal Information with Full Dates Option.
    pub keep_dates: bool,
    /// Keep Study/Series Description and Protocol Name as they are.
    pub keep_descriptions: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            patient_name: "ANONYMOUS".into(),
            patient_id: "ANON".into(),
            keep_dates: false,
            keep_descriptions: false,
        }
    }
}

/// Attributes removed (X in the profile), wherever they are. Some are retired
/// from the standard but still occur in older files.
#[allow(deprecated)]
const REMOVE: &[Tag] = &[
    tags::INSTITUTION_NAME,
    tags::INSTITUTION_ADDRESS,
    tags::INSTITUTIONAL_DEPARTMENT_NAME,
    tags::INSTITUTION_CODE_SEQUENCE,
    tags::STATION_NAME,
    tags::OPERATORS_NAME,
    tags::OPERATOR_IDENTIFICATION_SEQUENCE,
    tags::PERFORMING_PHYSICIAN_NAME,
    tags::PERFORMING_PHYSICIAN_IDENTIFICATION_SEQUENCE,
    tags::NAME_OF_PHYSICIANS_READING_STUDY,
    tags::PHYSICIANS_READING_STUDY_IDENTIFICATION_SEQUENCE,
    tags::PHYSICIANS_OF_RECORD,
    tags::PHYSICIANS_OF_RECORD_IDENTIFICATION_SEQUENCE,
    tags::REFERRING_PHYSICIAN_ADDRESS,
    tags::REFERRING_PHYSICIAN_TELEPHONE_NUMBERS,
    tags::REFERRING_PHYSICIAN_IDENTIFICATION_SEQUENCE,
    tags::REQUESTING_PHYSICIAN,
    tags::REQUESTING_SERVICE,
    tags::OTHER_PATIENT_I_DS,
    tags::OTHER_PATIENT_I_DS_SEQUENCE,
    tags::OTHER_PATIENT_NAMES,
    tags::PATIENT_BIRTH_NAME,
    tags::PATIENT_BIRTH_TIME,
    tags::PATIENT_ADDRESS,
    tags::PATIENT_TELEPHONE_NUMBERS,
    tags::PATIENT_MOTHER_BIRTH_NAME,
    tags::MILITARY_RANK,
    tags::BRANCH_OF_SERVICE,
    tags::ETHNIC_GROUP,
    tags::OCCUPATION,
    tags::COUNTRY_OF_RESIDENCE,
    tags::REGION_OF_RESIDENCE,
    tags::PATIENT_RELIGIOUS_PREFERENCE,
    tags::ADDITIONAL_PATIENT_HISTORY,
    tags::PATIENT_COMMENTS,
    tags::PATIENT_AGE,
    tags::PATIENT_SIZE,
    tags::PATIENT_WEIGHT,
    tags::MEDICAL_RECORD_LOCATOR,
    tags::MEDICAL_ALERTS,
    tags::ALLERGIES,
    tags::PREGNANCY_STATUS,
    tags::SMOKING_STATUS,
    tags::RESPONSIBLE_PERSON,
    tags::RESPONSIBLE_ORGANIZATION,
    tags::ISSUER_OF_PATIENT_ID,
    tags::PATIENT_INSURANCE_PLAN_CODE_SEQUENCE,
    tags::DEVICE_SERIAL_NUMBER,
    tags::PLATE_ID,
    tags::CASSETTE_ID,
    tags::GANTRY_ID,
    tags::DETECTOR_ID,
    tags::ADMISSION_ID,
    tags::ADMITTING_DIAGNOSES_DESCRIPTION,
    tags::REQUEST_ATTRIBUTES_SEQUENCE,
    tags::REFERENCED_PATIENT_SEQUENCE,
    tags::PERFORMED_PROCEDURE_STEP_ID,
    tags::PERFORMED_PROCEDURE_STEP_DESCRIPTION,
    tags::PERFORMED_LOCATION,
    tags::SCHEDULED_PROCEDURE_STEP_ID,
    tags::REQUESTED_PROCEDURE_ID,
    tags::REQUESTED_PROCEDURE_DESCRIPTION,
    tags::STUDY_COMMENTS,
    tags::IMAGE_COMMENTS,
    tags::ACQUISITION_COMMENTS,
    tags::DERIVATION_DESCRIPTION,
    tags::TEXT_COMMENTS,
    tags::INTERPRETATION_TEXT,
    tags::CONTENT_SEQUENCE,
    tags::CURRENT_PATIENT_LOCATION,
    tags::PATIENT_STATE,
    tags::DISCHARGE_DIAGNOSIS_DESCRIPTION,
    tags::FRAME_COMMENTS,
    tags::IDENTIFYING_COMMENTS,
];

/// Descriptions: removed unless the user keeps them.
const DESCRIPTIONS: &[Tag] = &[
    tags::STUDY_DESCRIPTION,
    tags::SERIES_DESCRIPTION,
    tags::PROTOCOL_NAME,
];

/// Attributes kept but emptied (Z): they are required to be present.
const EMPTY: &[Tag] = &[
    tags::PATIENT_BIRTH_DATE,
    tags::PATIENT_SEX,
    tags::ACCESSION_NUMBER,
    tags::STUDY_ID,
    tags::REFERRING_PHYSICIAN_NAME,
];

/// UIDs that name things of the standard (classes, syntaxes, coding schemes),
/// not instances: kept.
fn is_standard_uid(uid: &str) -> bool {
    uid.starts_with("1.2.840.10008.")
}

/// New UIDs for old ones, the same for the same old UID within one export.
#[derive(Debug, Default)]
pub struct UidMap {
    salt: String,
    map: HashMap<String, String>,
}

impl UidMap {
    /// A map with a fresh salt: an export done twice gets different UIDs.
    pub fn new() -> UidMap {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        UidMap {
            salt: format!("{nanos}.{}", std::process::id()),
            map: HashMap::new(),
        }
    }

    pub fn get(&mut self, old: &str) -> String {
        let old = old.trim_end_matches(['\0', ' ']);
        if old.is_empty() || is_standard_uid(old) {
            return old.to_string();
        }
        let salt = &self.salt;
        self.map
            .entry(old.to_string())
            .or_insert_with(|| super::uid::from_seed(&format!("deid.{salt}.{old}")))
            .clone()
    }
}

fn empty(tag: Tag, vr: VR) -> DataElement<InMemDicomObject> {
    DataElement::new(tag, vr, PrimitiveValue::Empty)
}

/// De-identify one data set (recursively). `top` is the outermost level, where
/// the patient's pseudonyms and the de-identification record go.
fn clean(obj: &InMemDicomObject, uids: &mut UidMap, opts: &Options, top: bool) -> InMemDicomObject {
    let mut out = InMemDicomObject::new_empty();
    for e in obj.iter() {
        let tag = e.tag();
        let vr = e.vr();
        // Private attributes, overlays (60xx) and curves (50xx) go.
        if tag.group() % 2 == 1 || (0x5000..=0x50FF).contains(&tag.group()) {
            continue;
        }
        if (0x6000..=0x60FF).contains(&tag.group()) {
            continue;
        }
        if REMOVE.contains(&tag) || (!opts.keep_descriptions && DESCRIPTIONS.contains(&tag)) {
            continue;
        }
        if tag == tags::PATIENT_NAME {
            out.put(DataElement::new(
                tag,
                VR::PN,
                PrimitiveValue::from(opts.patient_name.as_str()),
            ));
            continue;
        }
        if tag == tags::PATIENT_ID {
            out.put(DataElement::new(
                tag,
                VR::LO,
                PrimitiveValue::from(opts.patient_id.as_str()),
            ));
            continue;
        }
        if EMPTY.contains(&tag) || vr == VR::PN {
            out.put(empty(tag, vr));
            continue;
        }
        if matches!(vr, VR::DA | VR::DT | VR::TM) && !opts.keep_dates {
            out.put(empty(tag, vr));
            continue;
        }
        match e.value() {
            Value::Sequence(seq) => {
                let items: Vec<InMemDicomObject> = seq
                    .items()
                    .iter()
                    .map(|i| clean(i, uids, opts, false))
                    .collect();
                out.put(DataElement::new(tag, VR::SQ, DataSetSequence::from(items)));
            }
            Value::Primitive(p) if vr == VR::UI => {
                let mapped: Vec<String> = p.to_multi_str().iter().map(|u| uids.get(u)).collect();
                out.put(DataElement::new(
                    tag,
                    VR::UI,
                    PrimitiveValue::Strs(mapped.into()),
                ));
            }
            _ => {
                out.put(e.clone());
            }
        }
    }
    if top {
        out.put(DataElement::new(
            tags::PATIENT_IDENTITY_REMOVED,
            VR::CS,
            PrimitiveValue::from("YES"),
        ));
        let mut method =
            "DICOM PS3.15 E.1 Basic Application Level Confidentiality Profile (Lightbox)"
                .to_string();
        if opts.keep_dates {
            method.push_str("; Retain Longitudinal Temporal Information with Full Dates");
        }
        if opts.keep_descriptions {
            method.push_str("; descriptions kept");
        }
        out.put(DataElement::new(
            tags::DEIDENTIFICATION_METHOD,
            VR::LO,
            PrimitiveValue::from(method.chars().take(64).collect::<String>()),
        ));
    }
    out
}

/// What an export did.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Report {
    pub written: Vec<PathBuf>,
    /// (file, reason) for files not exported.
    pub refused: Vec<(PathBuf, String)>,
}

/// De-identify `files` into `out`, one folder per series (`S001`, `S002`, …),
/// files numbered within it. The folder must be empty or new.
pub fn export(files: &[PathBuf], out: &Path, opts: &Options) -> Result<Report> {
    let write_err = |path: &Path, reason: String| Error::Write {
        path: path.to_path_buf(),
        reason,
    };
    if out.exists()
        && std::fs::read_dir(out)
            .map_err(|e| write_err(out, e.to_string()))?
            .next()
            .is_some()
    {
        return Err(Error::Usage(format!(
            "{}: not empty (export into a new or empty folder)",
            out.display()
        )));
    }
    std::fs::create_dir_all(out).map_err(|e| write_err(out, e.to_string()))?;
    let mut uids = UidMap::new();
    let mut series_dirs: HashMap<String, (PathBuf, usize)> = HashMap::new();
    let mut report = Report::default();
    // For the audit trail: the original studies and patients, with counts.
    let mut originals = crate::audit::Studies::default();
    for f in files {
        let file = match super::open(f, super::ReadMode::Full) {
            Ok(o) => o,
            Err(e) => {
                report.refused.push((f.clone(), e.to_string()));
                continue;
            }
        };
        let burned = super::attr::string(&file, tags::BURNED_IN_ANNOTATION)
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("YES"));
        if burned {
            report.refused.push((
                f.clone(),
                "Burned In Annotation is YES: the pixels themselves may identify the patient"
                    .into(),
            ));
            continue;
        }
        let mut meta = file.meta().clone();
        let cleaned = clean(&file, &mut uids, opts, true);
        let sop = super::attr::string(&cleaned, tags::SOP_INSTANCE_UID).unwrap_or_default();
        let class = super::attr::string(&cleaned, tags::SOP_CLASS_UID)
            .unwrap_or_else(|| meta.media_storage_sop_class_uid.clone());
        meta.media_storage_sop_instance_uid = sop;
        meta.media_storage_sop_class_uid = class;
        meta.source_application_entity_title = None;
        meta.sending_application_entity_title = None;
        meta.receiving_application_entity_title = None;
        meta.private_information_creator_uid = None;
        meta.private_information = None;
        meta.update_information_group_length();
        let series = super::attr::string(&cleaned, tags::SERIES_INSTANCE_UID).unwrap_or_default();
        let n = series_dirs.len();
        let (dir, count) = series_dirs
            .entry(series)
            .or_insert_with(|| (out.join(format!("S{:03}", n + 1)), 0));
        *count += 1;
        std::fs::create_dir_all(&*dir).map_err(|e| write_err(dir, e.to_string()))?;
        let path = dir.join(format!("IM{:05}.dcm", *count));
        cleaned
            .with_exact_meta(meta)
            .write_to_file(&path)
            .map_err(|e| write_err(&path, e.to_string()))?;
        report.written.push(path);
        let attr = |t| super::attr::string(&file, t).unwrap_or_default();
        originals.add(
            &attr(tags::STUDY_INSTANCE_UID),
            &attr(tags::PATIENT_ID),
            &attr(tags::PATIENT_NAME),
        );
    }
    if !originals.is_empty() {
        use crate::audit::{Action, Event, EventId, Role, kind};
        Event::new(EventId::Export, Action::Read, "lightbox", Role::Application)
            .kind(kind::deidentified())
            .describe(format!(
                "{} object(s) de-identified into {}",
                report.written.len(),
                out.display()
            ))
            .studies(&originals)
            .record_default();
    }
    Ok(report)
}
