//! The audit trail: security-relevant events appended to `<cache>/audit/audit.jsonl`,
//! one JSON object a line, shaped after the DICOM audit message (PS3.15 A.5, the
//! schema IHE ATNA uses): the event (a DCM code from PS3.16 CID 400 and its
//! action, outcome and type codes), the active participants (Lightbox and the
//! peer: AE title, role, network access point), the audit source, and the
//! participant objects (studies by Study Instance UID, the patient, a query).
//!
//! Patient identifiers are written here and nowhere in ordinary logs. The file is
//! opened for appending on each event and the line written with one `write`, so
//! several Lightbox processes (the viewer, `listen`) share it without tearing
//! lines; each event is flushed to the disk before the call returns. A failure to
//! write the trail is logged as an error and does not stop the work (a reading
//! station must keep serving).

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A coded value (code, coding scheme, meaning).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Code {
    #[serde(rename = "csd-code")]
    pub code: String,
    #[serde(rename = "codeSystemName")]
    pub scheme: String,
    #[serde(rename = "originalText")]
    pub meaning: String,
}

fn dcm(code: &str, meaning: &str) -> Code {
    Code {
        code: code.into(),
        scheme: "DCM".into(),
        meaning: meaning.into(),
    }
}

/// The events Lightbox records (PS3.16 CID 400 Audit Event ID).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventId {
    ApplicationActivity,
    AuditLogUsed,
    InstancesAccessed,
    InstancesTransferred,
    StudyDeleted,
    Export,
    Import,
    Query,
    SecurityAlert,
}

impl EventId {
    pub fn code(self) -> Code {
        match self {
            EventId::ApplicationActivity => dcm("110100", "Application Activity"),
            EventId::AuditLogUsed => dcm("110101", "Audit Log Used"),
            EventId::InstancesAccessed => dcm("110103", "DICOM Instances Accessed"),
            EventId::InstancesTransferred => dcm("110104", "DICOM Instances Transferred"),
            EventId::StudyDeleted => dcm("110105", "DICOM Study Deleted"),
            EventId::Export => dcm("110106", "Export"),
            EventId::Import => dcm("110107", "Import"),
            EventId::Query => dcm("110112", "Query"),
            EventId::SecurityAlert => dcm("110113", "Security Alert"),
        }
    }
}

/// Event type codes used with the events above (PS3.16 CID 401, 403, 7050).
pub mod kind {
    use super::{Code, dcm};
    pub fn application_start() -> Code {
        dcm("110120", "Application Start")
    }
    pub fn application_stop() -> Code {
        dcm("110121", "Application Stop")
    }
    /// An association refused: a wrong AE title, a failed TLS handshake.
    pub fn node_authentication() -> Code {
        dcm("110126", "Node Authentication")
    }
    /// De-identification (anonymize).
    pub fn deidentified() -> Code {
        dcm("113100", "Basic Application Confidentiality Profile")
    }
}

/// What the event did to its objects (PS3.15 A.5.1: C, R, U, D, E).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Action {
    #[serde(rename = "C")]
    Create,
    #[serde(rename = "R")]
    Read,
    #[serde(rename = "U")]
    Update,
    #[serde(rename = "D")]
    Delete,
    #[serde(rename = "E")]
    Execute,
}

/// How it ended (PS3.15 A.5.1: 0 success, 4 minor failure, 8 serious, 12 major).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    MinorFailure,
    SeriousFailure,
    MajorFailure,
}

impl Outcome {
    fn value(self) -> u8 {
        match self {
            Outcome::Success => 0,
            Outcome::MinorFailure => 4,
            Outcome::SeriousFailure => 8,
            Outcome::MajorFailure => 12,
        }
    }
}

/// A participant's role in a transfer (PS3.16 CID 402).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Application,
    Source,
    Destination,
}

impl Role {
    fn code(self) -> Code {
        match self {
            Role::Application => dcm("110150", "Application"),
            Role::Source => dcm("110153", "Source Role ID"),
            Role::Destination => dcm("110152", "Destination Role ID"),
        }
    }
}

/// An active participant: Lightbox, or the peer at the other end.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Participant {
    /// An AE title, or the program.
    #[serde(rename = "UserID")]
    pub user_id: String,
    /// Our process id.
    #[serde(rename = "AlternativeUserID", skip_serializing_if = "Option::is_none")]
    pub alternative_user_id: Option<String>,
    /// The operating-system user running Lightbox.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_name: Option<String>,
    pub user_is_requestor: bool,
    #[serde(rename = "RoleIDCode", skip_serializing_if = "Option::is_none")]
    pub role_id_code: Option<Code>,
    /// Host name or IP address.
    #[serde(
        rename = "NetworkAccessPointID",
        skip_serializing_if = "Option::is_none"
    )]
    pub network_access_point_id: Option<String>,
    /// 1: machine name, 2: IP address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network_access_point_type_code: Option<u8>,
}

/// A participant object: a study, the patient, a query.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ParticipantObject {
    /// 1: person, 2: system object.
    pub participant_object_type_code: u8,
    /// 1: patient, 3: report, 24: query.
    pub participant_object_type_code_role: u8,
    #[serde(rename = "ParticipantObjectIDTypeCode")]
    pub participant_object_id_type_code: Code,
    #[serde(rename = "ParticipantObjectID")]
    pub participant_object_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub participant_object_name: Option<String>,
    /// The query's keys (as `Key=value` pairs; PS3.15 stores the data set).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub participant_object_query: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub participant_object_description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub number_of_instances: Option<u64>,
}

/// Who wrote the message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditSource {
    #[serde(rename = "AuditSourceID")]
    pub id: String,
    #[serde(
        rename = "AuditEnterpriseSiteID",
        skip_serializing_if = "Option::is_none"
    )]
    pub site: Option<String>,
}

/// One audit message: one line of the trail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Message {
    /// UTC, RFC 3339 with milliseconds.
    pub event_date_time: String,
    #[serde(rename = "EventID")]
    pub event_id: Code,
    pub event_action_code: Action,
    pub event_outcome_indicator: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_outcome_description: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub event_type_code: Vec<Code>,
    pub active_participant: Vec<Participant>,
    pub audit_source_identification: AuditSource,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub participant_object_identification: Vec<ParticipantObject>,
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// The studies an event concerns, each with its instance count and patient
/// (Patient ID, name), counted one object at a time.
#[derive(Debug, Default)]
pub struct Studies(std::collections::BTreeMap<String, (u64, String, String)>);

impl Studies {
    /// One more object of `study`, whose patient is (`patient_id`, `name`).
    pub fn add(&mut self, study: &str, patient_id: &str, name: &str) {
        self.0
            .entry(study.to_string())
            .or_insert_with(|| (0, patient_id.to_string(), name.to_string()))
            .0 += 1;
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Studies counted.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Objects counted.
    pub fn total(&self) -> u64 {
        self.0.values().map(|v| v.0).sum()
    }
}

/// An event being described; [`Event::record`] appends it.
#[derive(Debug, Clone)]
pub struct Event {
    msg: Message,
}

impl Event {
    /// An event now, with Lightbox (this process, as `ae_title`) as a participant
    /// in `role`, the requestor unless a peer is added as one.
    pub fn new(id: EventId, action: Action, ae_title: &str, role: Role) -> Event {
        let host = host_name();
        let me = Participant {
            user_id: ae_title.to_string(),
            alternative_user_id: Some(std::process::id().to_string()),
            user_name: std::env::var("USER").ok().filter(|u| !u.is_empty()),
            user_is_requestor: true,
            role_id_code: Some(role.code()),
            network_access_point_id: Some(host.clone()),
            network_access_point_type_code: Some(1),
        };
        Event {
            msg: Message {
                event_date_time: chrono::Utc::now()
                    .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                event_id: id.code(),
                event_action_code: action,
                event_outcome_indicator: 0,
                event_outcome_description: None,
                event_type_code: Vec::new(),
                active_participant: vec![me],
                audit_source_identification: AuditSource {
                    id: format!("lightbox@{host}"),
                    site: None,
                },
                participant_object_identification: Vec::new(),
            },
        }
    }

    /// How it ended, and why when it failed.
    pub fn outcome(mut self, outcome: Outcome, description: impl Into<String>) -> Event {
        self.msg.event_outcome_indicator = outcome.value();
        let d = description.into();
        self.msg.event_outcome_description = (!d.is_empty()).then_some(d);
        self
    }

    /// An event type code (see [`kind`]).
    pub fn kind(mut self, code: Code) -> Event {
        self.msg.event_type_code.push(code);
        self
    }

    /// The peer: its AE title and address (IP or host name), its role, and
    /// whether it asked (then Lightbox did not).
    pub fn peer(mut self, ae_title: &str, address: &str, role: Role, requestor: bool) -> Event {
        if requestor {
            for p in &mut self.msg.active_participant {
                p.user_is_requestor = false;
            }
        }
        let ip = address.parse::<std::net::IpAddr>().is_ok();
        self.msg.active_participant.push(Participant {
            user_id: ae_title.trim().to_string(),
            alternative_user_id: None,
            user_name: None,
            user_is_requestor: requestor,
            role_id_code: Some(role.code()),
            network_access_point_id: Some(address.to_string()),
            network_access_point_type_code: Some(if ip { 2 } else { 1 }),
        });
        self
    }

    /// A study, with the number of instances concerned when known.
    pub fn study(mut self, uid: &str, instances: Option<u64>) -> Event {
        if uid.is_empty()
            || self
                .msg
                .participant_object_identification
                .iter()
                .any(|o| o.participant_object_id == uid && o.participant_object_type_code == 2)
        {
            return self;
        }
        self.msg
            .participant_object_identification
            .push(ParticipantObject {
                participant_object_type_code: 2,
                participant_object_type_code_role: 3,
                participant_object_id_type_code: dcm("110180", "Study Instance UID"),
                participant_object_id: uid.to_string(),
                participant_object_name: None,
                participant_object_query: None,
                participant_object_description: None,
                number_of_instances: instances,
            });
        self
    }

    /// Every study of `studies`, with its count, and its patient.
    pub fn studies(mut self, studies: &Studies) -> Event {
        for (study, (n, id, name)) in &studies.0 {
            self = self.study(study, Some(*n)).patient(id, name);
        }
        self
    }

    /// The patient (Patient ID and name), once per event.
    pub fn patient(mut self, id: &str, name: &str) -> Event {
        if (id.is_empty() && name.is_empty())
            || self
                .msg
                .participant_object_identification
                .iter()
                .any(|o| o.participant_object_type_code == 1 && o.participant_object_id == id)
        {
            return self;
        }
        self.msg
            .participant_object_identification
            .push(ParticipantObject {
                participant_object_type_code: 1,
                participant_object_type_code_role: 1,
                participant_object_id_type_code: Code {
                    code: "2".into(),
                    scheme: "RFC-3881".into(),
                    meaning: "Patient Number".into(),
                },
                participant_object_id: id.to_string(),
                participant_object_name: (!name.is_empty()).then(|| name.to_string()),
                participant_object_query: None,
                participant_object_description: None,
                number_of_instances: None,
            });
        self
    }

    /// A query: the information model's SOP Class UID and its keys.
    pub fn query(mut self, sop_class: &str, keys: &str) -> Event {
        self.msg
            .participant_object_identification
            .push(ParticipantObject {
                participant_object_type_code: 2,
                participant_object_type_code_role: 24,
                participant_object_id_type_code: dcm("110181", "SOP Class UID"),
                participant_object_id: sop_class.to_string(),
                participant_object_name: None,
                participant_object_query: Some(keys.to_string()),
                participant_object_description: None,
                number_of_instances: None,
            });
        self
    }

    /// A free-text description of what was done (a folder exported to, a count).
    pub fn describe(mut self, text: impl Into<String>) -> Event {
        let t = text.into();
        self.msg.event_outcome_description =
            Some(match self.msg.event_outcome_description.take() {
                Some(d) => format!("{d}; {t}"),
                None => t,
            });
        self
    }

    pub fn message(&self) -> &Message {
        &self.msg
    }

    /// Append it to the trail of the cache at `cache_root`. A failure is logged
    /// (as an error) and otherwise ignored: the work goes on.
    pub fn record(self, cache_root: &Path) {
        if let Err(e) = append(cache_root, &self.msg) {
            tracing::error!("audit trail: {e}");
        }
    }
}

/// The cache whose trail takes events from code that has no cache of its own at
/// hand (a query, a refused TLS handshake): set once by the program at start.
static DEFAULT_ROOT: std::sync::RwLock<Option<PathBuf>> = std::sync::RwLock::new(None);

/// Set the cache of [`Event::record_default`].
pub fn set_default_root(cache_root: &Path) {
    if let Ok(mut r) = DEFAULT_ROOT.write() {
        *r = Some(cache_root.to_path_buf());
    }
}

impl Event {
    /// Append it to the trail of the program's cache (see [`set_default_root`]);
    /// without one (the library used on its own) it is dropped.
    pub fn record_default(self) {
        let root = DEFAULT_ROOT.read().ok().and_then(|r| r.clone());
        match root {
            Some(root) => self.record(&root),
            None => tracing::debug!("no audit trail set: event not recorded"),
        }
    }
}

/// The trail's file in a cache.
pub fn path(cache_root: &Path) -> PathBuf {
    cache_root.join("audit").join("audit.jsonl")
}

/// Append one message (one `write` of one line, then fdatasync).
pub fn append(cache_root: &Path, msg: &Message) -> Result<()> {
    let p = path(cache_root);
    let fail = |e: std::io::Error| Error::Write {
        path: p.clone(),
        reason: e.to_string(),
    };
    if let Some(dir) = p.parent() {
        std::fs::create_dir_all(dir).map_err(fail)?;
    }
    let mut line = serde_json::to_vec(msg).map_err(|e| Error::Write {
        path: p.clone(),
        reason: e.to_string(),
    })?;
    line.push(b'\n');
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&p)
        .map_err(fail)?;
    f.write_all(&line).map_err(fail)?;
    f.sync_data().map_err(fail)
}

/// What to read back.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Events at or after this UTC date (YYYY-MM-DD or YYYYMMDD).
    pub since: Option<String>,
    /// Events about this study.
    pub study: Option<String>,
}

/// Normalise a date to `YYYY-MM-DD` (accepts `YYYYMMDD` too).
pub fn parse_date(s: &str) -> Result<String> {
    let d = s.trim();
    let digits: String = d.chars().filter(char::is_ascii_digit).collect();
    let shaped = d.len() == 8 && digits.len() == 8
        || d.len() == 10 && digits.len() == 8 && d.as_bytes()[4] == b'-' && d.as_bytes()[7] == b'-';
    let parsed = shaped
        .then(|| chrono::NaiveDate::parse_from_str(&digits, "%Y%m%d").ok())
        .flatten();
    match parsed {
        Some(date) => Ok(date.format("%Y-%m-%d").to_string()),
        None => Err(Error::Usage(format!(
            "{s:?} is not a date (YYYY-MM-DD or YYYYMMDD)"
        ))),
    }
}

/// The messages of the trail that pass `filter`, oldest first. Lines that do not
/// parse (a torn last line after a power failure) are counted, not fatal.
pub fn read(cache_root: &Path, filter: &Filter) -> Result<(Vec<Message>, usize)> {
    let p = path(cache_root);
    let text = match std::fs::read_to_string(&p) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), 0)),
        Err(source) => return Err(Error::Io { path: p, source }),
    };
    let since = filter.since.as_deref().map(parse_date).transpose()?;
    let mut out = Vec::new();
    let mut bad = 0;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let Ok(m) = serde_json::from_str::<Message>(line) else {
            bad += 1;
            continue;
        };
        if let Some(s) = &since
            && m.event_date_time.as_str() < s.as_str()
        {
            continue;
        }
        if let Some(study) = &filter.study
            && !m
                .participant_object_identification
                .iter()
                .any(|o| o.participant_object_type_code == 2 && &o.participant_object_id == study)
        {
            continue;
        }
        out.push(m);
    }
    Ok((out, bad))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_append_as_lines_and_read_back_filtered() {
        let dir = std::env::temp_dir().join(format!("lightbox-audit-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        Event::new(EventId::Query, Action::Execute, "LIGHTBOX", Role::Source)
            .peer("PACS", "10.0.0.5", Role::Destination, false)
            .query("1.2.840.10008.5.1.4.1.2.2.1", "PatientID=123")
            .record(&dir);
        Event::new(
            EventId::InstancesTransferred,
            Action::Create,
            "LIGHTBOX",
            Role::Destination,
        )
        .peer("PACS", "10.0.0.5", Role::Source, false)
        .study("1.2.3", Some(40))
        .patient("123", "DOE^JANE")
        .record(&dir);
        // A torn line (power failure) is skipped and counted.
        std::fs::OpenOptions::new()
            .append(true)
            .open(path(&dir))
            .and_then(|mut f| f.write_all(b"{\"EventDateTime\":"))
            .expect("torn line");
        let (all, bad) = read(&dir, &Filter::default()).expect("read");
        assert_eq!((all.len(), bad), (2, 1));
        assert_eq!(all[0].event_id.code, "110112");
        assert_eq!(
            all[1].active_participant[1].network_access_point_type_code,
            Some(2)
        );
        let (one, _) = read(
            &dir,
            &Filter {
                study: Some("1.2.3".into()),
                ..Default::default()
            },
        )
        .expect("read");
        assert_eq!(one.len(), 1);
        assert_eq!(
            one[0].participant_object_identification[1]
                .participant_object_name
                .as_deref(),
            Some("DOE^JANE")
        );
        let (none, _) = read(
            &dir,
            &Filter {
                since: Some("2999-01-01".into()),
                ..Default::default()
            },
        )
        .expect("read");
        assert!(none.is_empty());
        assert!(parse_date("2026-13-01").is_err() && parse_date("20261201").is_ok());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
