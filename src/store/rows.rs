//! The typed rows the index hands out: studies, series, instances, the last
//! retrieve of a study, measurements and totals. What SQLite stores as text is
//! parsed here, once: a study's modalities (`"CT,MR"`) become a list, a retrieval's
//! state (`'in-progress'`, `'incomplete'`, `'complete'`) an enum.

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use serde::{Deserialize, Serialize};

/// A study as the browser lists it.
#[derive(Debug, Clone, Serialize)]
pub struct StudyRow {
    pub study_uid: String,
    pub patient_id: String,
    pub patient_name: String,
    /// Patient's Birth Date (YYYYMMDD), when the files gave it.
    pub birth_date: Option<String>,
    pub date: Option<String>,
    pub description: Option<String>,
    /// The distinct modalities of its series, as the index lists them.
    pub modalities: Vec<String>,
    pub series: usize,
    pub instances: usize,
    pub bytes: u64,
    pub pinned: bool,
    /// State of the last retrieve from a PACS; None for studies that were imported
    /// or pushed.
    pub retrieval: Option<RetrievalState>,
}

impl StudyRow {
    /// The modalities as one label, comma-separated ("CT,MR"), as listings show them.
    pub fn modalities_label(&self) -> String {
        self.modalities.join(",")
    }

    /// Whether any of its series has this modality.
    pub fn has_modality(&self, modality: &str) -> bool {
        self.modalities.iter().any(|m| m == modality)
    }
}

/// The `modalities` column (kept by a trigger as SQLite's `group_concat`, comma
/// separated) as a list; empty entries (series without a modality) are dropped.
pub(super) fn parse_modalities(stored: &str) -> Vec<String> {
    stored
        .split(',')
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .map(str::to_string)
        .collect()
}

/// How the last retrieve of a study from a PACS ended (or that it has not).
/// Stored as the text the schema's CHECK constraint allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RetrievalState {
    /// Started and not finished: still running, or interrupted (the process died).
    InProgress,
    /// Finished, but something is missing or failed (see the note).
    Incomplete,
    /// The node's final response said so, nothing failed, and every instance it
    /// listed is cached.
    Complete,
}

impl RetrievalState {
    /// Every state, in the order of the schema's CHECK constraint.
    pub const ALL: [RetrievalState; 3] = [
        RetrievalState::InProgress,
        RetrievalState::Incomplete,
        RetrievalState::Complete,
    ];

    /// The text stored in the index (and shown in JSON listings).
    pub fn as_str(self) -> &'static str {
        match self {
            RetrievalState::InProgress => "in-progress",
            RetrievalState::Incomplete => "incomplete",
            RetrievalState::Complete => "complete",
        }
    }

    /// The state stored as `text`, if it is one.
    pub fn from_stored(text: &str) -> Option<RetrievalState> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

impl std::fmt::Display for RetrievalState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl ToSql for RetrievalState {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.as_str()))
    }
}

impl FromSql for RetrievalState {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        let text = value.as_str()?;
        RetrievalState::from_stored(text)
            .ok_or_else(|| FromSqlError::Other(format!("unknown retrieval state {text:?}").into()))
    }
}

/// What a retrieve expects of one series (see `Store::set_retrieval_series`).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RetrievalSeries {
    pub series_uid: String,
    /// Instances the node listed.
    pub expected: usize,
    /// The middle image by Instance Number (fetched first), when listed.
    pub middle_sop: Option<String>,
}

/// One instance a retrieve expects (see `Store::set_retrieval_instances`): its
/// Instance Number and, when the node gave them (a C-FIND return key, WADO-RS
/// `/metadata`), its Image Position and Orientation (Patient).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ExpectedInstance {
    pub series_uid: String,
    pub sop_uid: String,
    pub number: Option<i64>,
    pub position: Option<[f64; 3]>,
    pub orientation: Option<[f64; 6]>,
}

/// The last retrieve of a study (see `Store::set_retrieval`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Retrieval {
    pub study_uid: String,
    pub node: String,
    pub state: RetrievalState,
    pub expected: usize,
    pub cached: usize,
    pub note: Option<String>,
}

/// A stored measurement.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct MeasurementRow {
    pub id: i64,
    pub sop_uid: String,
    pub frame: u32,
    /// "length", "ellipse", "rectangle", "angle" or "cobb".
    pub kind: String,
    /// "patient" (points in mm, LPS), "image" (pixel coordinates) or "mpr"
    /// (patient points on a plane reformatted from the stack whose first
    /// image is `sop_uid`).
    pub space: String,
    /// Its points (two to four), each `[x, y, z]` (z = 0 in image space).
    pub points: Vec<[f64; 3]>,
}

/// A series as listings show it.
#[derive(Debug, Clone, Serialize)]
pub struct SeriesRow {
    pub series_uid: String,
    pub study_uid: String,
    pub number: Option<i64>,
    pub modality: Option<String>,
    pub description: Option<String>,
    pub instances: usize,
}

/// An instance as listings show it (latest version).
#[derive(Debug, Clone, Serialize)]
pub struct InstanceRow {
    pub sop_uid: String,
    pub series_uid: String,
    pub instance_number: Option<i64>,
    pub version: u32,
    pub transfer_syntax: String,
    pub size: u64,
    pub path: String,
    pub linked: bool,
}

/// Totals of the cache.
#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct Stats {
    pub patients: usize,
    pub studies: usize,
    pub series: usize,
    pub instances: usize,
    pub bytes: u64,
    pub pinned_studies: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modalities_are_read_as_a_list() {
        assert_eq!(parse_modalities("CT,MR"), ["CT", "MR"]);
        assert_eq!(parse_modalities("CT"), ["CT"]);
        assert!(parse_modalities("").is_empty());
        assert_eq!(parse_modalities("CT,,SR"), ["CT", "SR"]);
    }

    #[test]
    fn retrieval_states_keep_their_stored_text() {
        for s in RetrievalState::ALL {
            assert_eq!(RetrievalState::from_stored(s.as_str()), Some(s));
            // JSON listings show the same text the index stores.
            assert_eq!(
                serde_json::to_value(s).expect("json"),
                serde_json::Value::from(s.as_str())
            );
        }
        assert_eq!(RetrievalState::from_stored("done"), None);
    }
}
