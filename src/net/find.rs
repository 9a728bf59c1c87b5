//! C-FIND SCU: Study Root and Patient Root, levels PATIENT to IMAGE, the matching
//! keys a reading room uses (wildcards, date ranges, modality), return keys for a
//! study browser, pending/final statuses, C-CANCEL on a user cancel or a result
//! limit, and character sets (the identifier says ISO_IR 192 when a key is not
//! ASCII; answers are decoded by their own Specific Character Set).

use std::sync::atomic::{AtomicBool, Ordering};

use dicom_core::{DataElement, PrimitiveValue, Tag, VR};
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use serde::Serialize;

use super::dimse::{self, Event, Link, field};
use super::scu::{self, Peer, sop};
use super::{failure, status};
use crate::error::{Error, NetFailure, Result};

/// Query/Retrieve level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Patient,
    Study,
    Series,
    Image,
}

impl Level {
    pub fn code(self) -> &'static str {
        match self {
            Level::Patient => "PATIENT",
            Level::Study => "STUDY",
            Level::Series => "SERIES",
            Level::Image => "IMAGE",
        }
    }
}

impl std::str::FromStr for Level {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "patient" => Ok(Level::Patient),
            "study" => Ok(Level::Study),
            "series" => Ok(Level::Series),
            "image" | "instance" => Ok(Level::Image),
            _ => Err(format!(
                "level must be patient, study, series or image, not {s:?}"
            )),
        }
    }
}

/// Information model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Model {
    #[default]
    StudyRoot,
    PatientRoot,
}

impl Model {
    pub fn find_sop(self) -> &'static str {
        match self {
            Model::StudyRoot => sop::STUDY_ROOT_FIND,
            Model::PatientRoot => sop::PATIENT_ROOT_FIND,
        }
    }
}

/// Matching keys (all optional; `*` and `?` wildcards where the standard allows).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Keys {
    pub patient_name: Option<String>,
    pub patient_id: Option<String>,
    pub accession: Option<String>,
    /// A date (YYYYMMDD) or range (`20240101-`, `-20241231`, `20240101-20241231`).
    pub date: Option<String>,
    pub modality: Option<String>,
    pub study_description: Option<String>,
    pub referring_physician: Option<String>,
    pub body_part: Option<String>,
    pub study_uid: Option<String>,
    pub series_uid: Option<String>,
    pub sop_uid: Option<String>,
}

/// A C-FIND request.
#[derive(Debug, Clone, Serialize)]
pub struct Query {
    pub model: Model,
    pub level: Level,
    pub keys: Keys,
    /// Stop (C-CANCEL) after this many matches.
    pub limit: Option<usize>,
}

impl Query {
    /// The level and the keys given, as `Key=value` pairs (for the audit trail).
    pub fn describe(&self) -> String {
        let k = &self.keys;
        let level = format!("{:?}", self.level).to_uppercase();
        let mut out = vec![format!("QueryRetrieveLevel={level}")];
        for (name, v) in [
            ("PatientName", &k.patient_name),
            ("PatientID", &k.patient_id),
            ("AccessionNumber", &k.accession),
            ("StudyDate", &k.date),
            ("Modality", &k.modality),
            ("StudyDescription", &k.study_description),
            ("ReferringPhysicianName", &k.referring_physician),
            ("BodyPartExamined", &k.body_part),
            ("StudyInstanceUID", &k.study_uid),
            ("SeriesInstanceUID", &k.series_uid),
            ("SOPInstanceUID", &k.sop_uid),
        ] {
            if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
                out.push(format!("{name}={v}"));
            }
        }
        out.join(" ")
    }
}

fn valid_date(d: &str) -> bool {
    d.len() == 8 && d.bytes().all(|b| b.is_ascii_digit())
}

/// Check a DA matching value: a date or a range.
pub fn check_date(v: &str) -> std::result::Result<(), String> {
    let ok = match v.split_once('-') {
        None => valid_date(v),
        Some((a, b)) => {
            (a.is_empty() || valid_date(a))
                && (b.is_empty() || valid_date(b))
                && !(a.is_empty() && b.is_empty())
                && (a.is_empty() || b.is_empty() || a <= b)
        }
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "date {v:?} is not YYYYMMDD or a range (20240101-, -20241231, 20240101-20241231)"
        ))
    }
}

pub fn check_uid(name: &str, v: &str) -> std::result::Result<(), String> {
    // A backslash-separated list is allowed (UID list matching).
    let ok = v.split('\\').all(|u| {
        !u.is_empty() && u.len() <= 64 && u.bytes().all(|b| b.is_ascii_digit() || b == b'.')
    });
    if ok {
        Ok(())
    } else {
        Err(format!("{name} {v:?} is not a UID"))
    }
}

impl Query {
    pub fn new(level: Level) -> Query {
        Query {
            model: Model::StudyRoot,
            level,
            keys: Keys::default(),
            limit: None,
        }
    }

    /// Check the query before anything is sent: dates, UIDs, keys that exist at
    /// this level, the unique keys a hierarchical query needs above its level.
    pub fn validate(&self) -> Result<()> {
        let k = &self.keys;
        let bad = |m: String| Err(Error::Usage(m));
        if let Some(d) = &k.date {
            check_date(d).or_else(bad)?;
        }
        for (n, v) in [
            ("study UID", &k.study_uid),
            ("series UID", &k.series_uid),
            ("SOP instance UID", &k.sop_uid),
        ] {
            if let Some(v) = v {
                check_uid(n, v).or_else(bad)?;
            }
        }
        let single = |v: &Option<String>| v.as_ref().is_some_and(|u| !u.contains('\\'));
        match (self.model, self.level) {
            (Model::StudyRoot, Level::Patient) => {
                return bad(
                    "the study root model has no PATIENT level: use --model patient".into(),
                );
            }
            (Model::PatientRoot, Level::Study) if !single(&k.patient_id) => {
                return bad("a patient root query at STUDY level needs --patient-id".into());
            }
            (Model::PatientRoot, Level::Series | Level::Image) if !single(&k.patient_id) => {
                return bad("a patient root query below STUDY level needs --patient-id".into());
            }
            _ => {}
        }
        if matches!(self.level, Level::Series | Level::Image) && !single(&k.study_uid) {
            return bad(format!(
                "a {} level query needs --study UID (queries are hierarchical)",
                self.level.code()
            ));
        }
        if self.level == Level::Image && !single(&k.series_uid) {
            return bad(
                "an IMAGE level query needs --series UID (queries are hierarchical)".into(),
            );
        }
        let series_only = [("--body-part", &k.body_part)];
        if matches!(self.level, Level::Patient | Level::Study) {
            for (n, v) in series_only {
                if v.is_some() {
                    return bad(format!(
                        "{n} is a series attribute: query at --level series (with --study)"
                    ));
                }
            }
        }
        if self.level == Level::Patient {
            for (n, v) in [
                ("--accession", &k.accession),
                ("--date", &k.date),
                ("--modality", &k.modality),
                ("--study-description", &k.study_description),
                ("--referring", &k.referring_physician),
                ("--study", &k.study_uid),
                ("--series", &k.series_uid),
            ] {
                if v.is_some() {
                    return bad(format!("{n} is not a PATIENT level key: use --level study"));
                }
            }
        }
        Ok(())
    }

    /// The identifier: the matching keys, and empty return keys for the level.
    pub fn identifier(&self) -> InMemDicomObject {
        let k = &self.keys;
        let mut o = InMemDicomObject::new_empty();
        let mut put = |tag: Tag, vr: VR, v: &Option<String>| {
            o.put(DataElement::new(
                tag,
                vr,
                match v {
                    Some(s) => PrimitiveValue::from(s.as_str()),
                    None => PrimitiveValue::Empty,
                },
            ));
        };
        let none = &None;
        put(
            tags::QUERY_RETRIEVE_LEVEL,
            VR::CS,
            &Some(self.level.code().into()),
        );
        let patient_keys = self.level == Level::Patient
            || (self.level == Level::Study && self.model == Model::StudyRoot)
            || self.model == Model::PatientRoot;
        if patient_keys {
            put(tags::PATIENT_NAME, VR::PN, &k.patient_name);
            put(tags::PATIENT_ID, VR::LO, &k.patient_id);
        }
        match self.level {
            Level::Patient => {
                put(tags::PATIENT_BIRTH_DATE, VR::DA, none);
                put(tags::PATIENT_SEX, VR::CS, none);
                put(tags::NUMBER_OF_PATIENT_RELATED_STUDIES, VR::IS, none);
            }
            Level::Study => {
                put(tags::PATIENT_BIRTH_DATE, VR::DA, none);
                put(tags::PATIENT_SEX, VR::CS, none);
                put(tags::STUDY_INSTANCE_UID, VR::UI, &k.study_uid);
                put(tags::STUDY_DATE, VR::DA, &k.date);
                put(tags::STUDY_TIME, VR::TM, none);
                put(tags::ACCESSION_NUMBER, VR::SH, &k.accession);
                put(tags::STUDY_ID, VR::SH, none);
                put(tags::STUDY_DESCRIPTION, VR::LO, &k.study_description);
                put(tags::MODALITIES_IN_STUDY, VR::CS, &k.modality);
                put(
                    tags::REFERRING_PHYSICIAN_NAME,
                    VR::PN,
                    &k.referring_physician,
                );
                put(tags::NUMBER_OF_STUDY_RELATED_SERIES, VR::IS, none);
                put(tags::NUMBER_OF_STUDY_RELATED_INSTANCES, VR::IS, none);
            }
            Level::Series => {
                put(tags::STUDY_INSTANCE_UID, VR::UI, &k.study_uid);
                put(tags::SERIES_INSTANCE_UID, VR::UI, &k.series_uid);
                put(tags::MODALITY, VR::CS, &k.modality);
                put(tags::SERIES_NUMBER, VR::IS, none);
                put(tags::SERIES_DESCRIPTION, VR::LO, none);
                put(tags::SERIES_DATE, VR::DA, &k.date);
                put(tags::BODY_PART_EXAMINED, VR::CS, &k.body_part);
                put(tags::NUMBER_OF_SERIES_RELATED_INSTANCES, VR::IS, none);
            }
            Level::Image => {
                put(tags::STUDY_INSTANCE_UID, VR::UI, &k.study_uid);
                put(tags::SERIES_INSTANCE_UID, VR::UI, &k.series_uid);
                put(tags::SOP_INSTANCE_UID, VR::UI, &k.sop_uid);
                put(tags::SOP_CLASS_UID, VR::UI, none);
                put(tags::INSTANCE_NUMBER, VR::IS, none);
                // Where each image lies (a viewer opening the study while it
                // arrives places the images not yet here).
                put(tags::IMAGE_POSITION_PATIENT, VR::DS, none);
                put(tags::IMAGE_ORIENTATION_PATIENT, VR::DS, none);
            }
        }
        if self.level != Level::Study && k.study_description.is_some() {
            put(tags::STUDY_DESCRIPTION, VR::LO, &k.study_description);
        }
        let non_ascii = [
            &k.patient_name,
            &k.patient_id,
            &k.accession,
            &k.study_description,
            &k.referring_physician,
            &k.body_part,
            &k.modality,
        ]
        .iter()
        .any(|v| v.as_ref().is_some_and(|s| !s.is_ascii()));
        if non_ascii {
            put(
                tags::SPECIFIC_CHARACTER_SET,
                VR::CS,
                &Some("ISO_IR 192".into()),
            );
        }
        o
    }
}

/// One C-FIND answer.
#[derive(Debug, Clone)]
pub struct Match {
    pub level: Level,
    pub attrs: InMemDicomObject,
}

impl Match {
    /// A text attribute, decoded and trimmed (None when absent or empty).
    pub fn get(&self, tag: Tag) -> Option<String> {
        crate::dicom::attr::string(&self.attrs, tag).filter(|s| !s.is_empty())
    }

    pub fn count(&self, tag: Tag) -> Option<usize> {
        self.get(tag).and_then(|s| s.trim().parse().ok())
    }

    /// The DICOM JSON model of the answer.
    pub fn to_json(&self) -> serde_json::Value {
        dicom_json::to_value(&self.attrs).unwrap_or(serde_json::Value::Null)
    }
}

/// How a C-FIND ended.
#[derive(Debug)]
pub struct FindOutcome {
    pub matches: Vec<Match>,
    /// Final status.
    pub status: u16,
    /// Ended by C-CANCEL (a user cancel or the limit).
    pub cancelled: bool,
    /// Some answers came with 0xFF01 (optional keys not supported).
    pub partial_keys: bool,
}

/// Largest identifier accepted in an answer.
const MAX_IDENTIFIER: usize = 1 << 20;

/// Run a C-FIND on its own association. `on_match` sees each answer as it comes
/// (a browser fills its table progressively); `cancel` stops with C-CANCEL.
pub fn find(
    peer: &Peer,
    q: &Query,
    cancel: &AtomicBool,
    on_match: &mut dyn FnMut(&Match),
) -> Result<FindOutcome> {
    q.validate()?;
    if super::dicomweb::is_dicomweb(&peer.node) {
        let result = super::dicomweb::find(peer, q, cancel, on_match);
        audit(peer, q, &result);
        return result;
    }
    let class = q.model.find_sop();
    let ts = super::uncompressed();
    let result = scu::associate(peer, &[(class.to_string(), ts)], &[]).and_then(|mut assoc| {
        let result = find_on(peer, &mut assoc, q, cancel, on_match);
        match &result {
            Ok(_) => scu::release(assoc),
            Err(_) => assoc.abort_now(),
        }
        result
    });
    audit(peer, q, &result);
    result
}

/// The query in the audit trail, with its keys (patient identifiers among
/// them, which is why they go there and nowhere else).
fn audit(peer: &Peer, q: &Query, r: &Result<FindOutcome>) {
    use crate::audit::{Action, Event, EventId, Outcome, Role};
    let n = &peer.node;
    let (outcome, text) = match r {
        Ok(o) => (Outcome::Success, format!("{} match(es)", o.matches.len())),
        Err(e) => (Outcome::SeriousFailure, e.to_string()),
    };
    Event::new(
        EventId::Query,
        Action::Execute,
        &peer.calling_ae,
        Role::Source,
    )
    .peer(&n.ae_title, &n.host, Role::Destination, false)
    .query(q.model.find_sop(), &q.describe())
    .outcome(outcome, text)
    .record_default();
}

/// Run a C-FIND on an open association.
pub fn find_on(
    peer: &Peer,
    assoc: &mut scu::Association,
    q: &Query,
    cancel: &AtomicBool,
    on_match: &mut dyn FnMut(&Match),
) -> Result<FindOutcome> {
    let class = q.model.find_sop();
    let Some((pc, ts)) = scu::context_for(assoc, class) else {
        return Err(failure(
            peer.label(),
            NetFailure::Rejected(format!(
                "the node does not offer C-FIND in the {} model",
                match q.model {
                    Model::StudyRoot => "study root",
                    Model::PatientRoot => "patient root",
                }
            )),
        ));
    };
    let id = scu::next_message_id();
    let mut rq = dimse::request(field::C_FIND_RQ, id, class, true);
    dimse::put_us(&mut rq, tags::PRIORITY, 0);
    let identifier = q.identifier();
    let data = encode_identifier(&identifier, &ts).map_err(|k| failure(peer.label(), k))?;
    dimse::send_message(assoc, pc, &rq, Some(&data))?;
    let mut reader = dimse::Reader::default();
    let mut out = FindOutcome {
        matches: Vec::new(),
        status: status::SUCCESS,
        cancelled: false,
        partial_keys: false,
    };
    let mut cancel_sent = false;
    loop {
        let ev = reader.next(assoc).map_err(|e| scu::in_context(peer, e))?;
        let cmd = match ev {
            Event::Command { command, .. } => command,
            Event::Abort => {
                return Err(failure(
                    peer.label(),
                    NetFailure::Aborted("the node aborted the association during C-FIND".into()),
                ));
            }
            other => return Err(scu::unexpected(peer, assoc, "a C-FIND response", &other)),
        };
        if dimse::int(&cmd, tags::COMMAND_FIELD) != Some(field::C_FIND_RSP) {
            return Err(failure(
                peer.label(),
                NetFailure::Operation(format!(
                    "answered C-FIND with command 0x{:04X}",
                    dimse::int(&cmd, tags::COMMAND_FIELD).unwrap_or(0)
                )),
            ));
        }
        let st = dimse::int(&cmd, tags::STATUS).unwrap_or(0xFFFF);
        if scu::is_pending(st) {
            out.partial_keys |= st == status::PENDING_WARNING;
            if !dimse::has_data_set(&cmd) {
                continue;
            }
            let (_, bytes) = reader
                .read_dataset(assoc, MAX_IDENTIFIER)
                .map_err(|e| scu::in_context(peer, e))?;
            if cancel_sent {
                continue; // answers in flight before the C-CANCEL arrived
            }
            let attrs = dimse::parse_dataset(&bytes, &ts).map_err(|e| {
                failure(
                    peer.label(),
                    NetFailure::Operation(format!("unreadable C-FIND answer: {e}")),
                )
            })?;
            let m = Match {
                level: q.level,
                attrs,
            };
            on_match(&m);
            out.matches.push(m);
            let over = q.limit.is_some_and(|l| out.matches.len() >= l);
            if over || cancel.load(Ordering::Relaxed) {
                scu::send_cancel(assoc, pc, id)?;
                cancel_sent = true;
                out.cancelled = true;
            }
            continue;
        }
        // Final response (a data set after a final status is not expected; skip it).
        if dimse::has_data_set(&cmd) {
            let _ = reader.read_dataset(assoc, MAX_IDENTIFIER);
        }
        out.status = st;
        if st == status::CANCEL {
            out.cancelled = true;
        } else if st != status::SUCCESS {
            let comment = dimse::string(&cmd, tags::ERROR_COMMENT)
                .map(|c| format!(": {c}"))
                .unwrap_or_default();
            return Err(failure(
                peer.label(),
                NetFailure::Operation(format!(
                    "C-FIND failed with status {}{comment}",
                    status::describe(st)
                )),
            ));
        }
        return Ok(out);
    }
}

/// Encode an identifier; UTF-8 when it declares ISO_IR 192.
fn encode_identifier(o: &InMemDicomObject, ts: &str) -> std::result::Result<Vec<u8>, NetFailure> {
    use dicom_encoding::TransferSyntaxIndex;
    let utf8 = crate::dicom::attr::string(o, tags::SPECIFIC_CHARACTER_SET)
        .is_some_and(|c| c.contains("192"));
    if !utf8 {
        return dimse::encode_dataset(o, ts);
    }
    let syntax = dicom_transfer_syntax_registry::TransferSyntaxRegistry
        .get(ts)
        .ok_or_else(|| NetFailure::Local(format!("transfer syntax {ts} not known")))?;
    let mut out = Vec::new();
    o.write_dataset_with_ts_cs(
        &mut out,
        syntax,
        dicom_encoding::text::SpecificCharacterSet::ISO_IR_192,
    )
    .map_err(|e| NetFailure::Local(e.to_string()))?;
    Ok(out)
}
