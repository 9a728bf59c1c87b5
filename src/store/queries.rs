//! Lookups in the index: studies (with their counts, kept by triggers), series,
//! instances, the cached versions of an instance, the last retrieve of a study, and
//! the cache's totals. Also the two small writes the browser makes on a study:
//! recording a retrieve and touching it when it is opened.

use std::collections::HashSet;

use rusqlite::{Connection, OptionalExtension, params};

use super::rows::parse_modalities;
use super::{
    ExpectedInstance, IndexResult, InstanceRow, Retrieval, RetrievalSeries, SeriesRow, Stats,
    Store, StudyRow, now,
};
use crate::error::{Error, Result};

/// Cached versions of a SOP instance: (version, size, CRC-32), oldest first (on
/// the connection or inside a transaction).
pub(super) fn versions(conn: &Connection, sop_uid: &str) -> rusqlite::Result<Vec<(u32, u64, u32)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT version, size, crc32 FROM instances WHERE sop_uid = ?1 ORDER BY version",
    )?;
    stmt.query_map(params![sop_uid], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect()
}

impl Store {
    /// A study's patient (Patient ID, name) and instance count, for the audit
    /// trail; `None` when the study is not cached.
    pub fn patient_of(&self, study_uid: &str) -> Result<Option<(String, String, u64)>> {
        self.conn
            .query_row(
                "SELECT p.patient_id, p.name, st.instances FROM studies st
                 JOIN patients p ON p.key = st.patient_key WHERE st.study_uid = ?1",
                params![study_uid],
                |r| Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)? as u64)),
            )
            .optional()
            .during("finding a study's patient")
    }

    /// Studies in the cache, most recent study date first.
    pub fn studies(&self) -> Result<Vec<StudyRow>> {
        const CONTEXT: &str = "listing studies";
        let mut stmt = self
            .conn
            .prepare(
                "SELECT st.study_uid, p.patient_id, p.name, st.date, st.description,
                        st.modalities, st.series_count, st.instances, st.bytes, st.pinned, r.state,
                        p.birth_date
                 FROM studies st JOIN patients p ON p.key = st.patient_key
                 LEFT JOIN retrievals r ON r.study_uid = st.study_uid
                 ORDER BY st.date DESC, st.study_uid",
            )
            .during(CONTEXT)?;
        stmt.query_map([], |r| {
            Ok(StudyRow {
                study_uid: r.get(0)?,
                patient_id: r.get(1)?,
                patient_name: r.get(2)?,
                date: r.get(3)?,
                description: r.get(4)?,
                modalities: parse_modalities(
                    r.get::<_, Option<String>>(5)?.as_deref().unwrap_or(""),
                ),
                series: r.get::<_, i64>(6)? as usize,
                instances: r.get::<_, i64>(7)? as usize,
                bytes: r.get::<_, i64>(8)? as u64,
                pinned: r.get::<_, i64>(9)? != 0,
                retrieval: r.get(10)?,
                birth_date: r.get(11)?,
            })
        })
        .during(CONTEXT)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .during(CONTEXT)
    }

    /// Series of a study, by series number.
    pub fn series_of(&self, study_uid: &str) -> Result<Vec<SeriesRow>> {
        const CONTEXT: &str = "listing the series of a study";
        let mut stmt = self
            .conn
            .prepare(
                "SELECT se.series_uid, se.study_uid, se.number, se.modality, se.description, se.instances
                 FROM series se WHERE se.study_uid = ?1 ORDER BY se.number, se.series_uid",
            )
            .during(CONTEXT)?;
        stmt.query_map(params![study_uid], |r| {
            Ok(SeriesRow {
                series_uid: r.get(0)?,
                study_uid: r.get(1)?,
                number: r.get(2)?,
                modality: r.get(3)?,
                description: r.get(4)?,
                instances: r.get::<_, i64>(5)? as usize,
            })
        })
        .during(CONTEXT)?
        .collect::<rusqlite::Result<_>>()
        .during(CONTEXT)
    }

    /// SOP Instance UIDs cached for a study.
    pub fn sop_uids_of_study(&self, study_uid: &str) -> Result<HashSet<String>> {
        const CONTEXT: &str = "listing the instances of a study";
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT DISTINCT i.sop_uid FROM instances i JOIN series se ON i.series_uid = se.series_uid
                 WHERE se.study_uid = ?1",
            )
            .during(CONTEXT)?;
        stmt.query_map(params![study_uid], |r| r.get(0))
            .during(CONTEXT)?
            .collect::<rusqlite::Result<_>>()
            .during(CONTEXT)
    }

    /// Instances of a series (latest version of each), by instance number.
    pub fn instances_of(&self, series_uid: &str) -> Result<Vec<InstanceRow>> {
        const CONTEXT: &str = "listing the instances of a series";
        let mut stmt = self
            .conn
            .prepare(
                "SELECT sop_uid, series_uid, instance_number, max(version), transfer_syntax, size, path, linked
                 FROM instances WHERE series_uid = ?1 GROUP BY sop_uid ORDER BY instance_number, sop_uid",
            )
            .during(CONTEXT)?;
        stmt.query_map(params![series_uid], |r| {
            Ok(InstanceRow {
                sop_uid: r.get(0)?,
                series_uid: r.get(1)?,
                instance_number: r.get(2)?,
                version: r.get(3)?,
                transfer_syntax: r.get(4)?,
                size: r.get::<_, i64>(5)? as u64,
                path: r.get(6)?,
                linked: r.get::<_, i64>(7)? != 0,
            })
        })
        .during(CONTEXT)?
        .collect::<rusqlite::Result<_>>()
        .during(CONTEXT)
    }

    /// Record the state of a retrieve (see [`Retrieval`]).
    pub fn set_retrieval(&self, r: &Retrieval) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO retrievals (study_uid, node, state, expected, cached, note, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (study_uid) DO UPDATE SET node = excluded.node, state = excluded.state,
                     expected = excluded.expected, cached = excluded.cached, note = excluded.note,
                     updated_at = excluded.updated_at",
                params![
                    r.study_uid,
                    r.node,
                    r.state,
                    r.expected as i64,
                    r.cached as i64,
                    r.note,
                    now()
                ],
            )
            .during("recording a retrieve")?;
        Ok(())
    }

    /// Record what a retrieve expects of each series of a study (replacing what
    /// an earlier retrieve expected).
    pub fn set_retrieval_series(&self, study_uid: &str, series: &[RetrievalSeries]) -> Result<()> {
        const CONTEXT: &str = "recording the series a retrieve expects";
        // A write transaction taken before anything is read (see `Store`).
        self.conn.execute_batch("BEGIN IMMEDIATE").during(CONTEXT)?;
        let written = (|| -> rusqlite::Result<()> {
            self.conn.execute(
                "DELETE FROM retrieval_series WHERE study_uid = ?1",
                params![study_uid],
            )?;
            for s in series {
                self.conn.execute(
                    "INSERT INTO retrieval_series (study_uid, series_uid, expected, middle_sop)
                     VALUES (?1, ?2, ?3, ?4)",
                    params![study_uid, s.series_uid, s.expected as i64, s.middle_sop],
                )?;
            }
            Ok(())
        })();
        match written {
            Ok(()) => self.conn.execute_batch("COMMIT").during(CONTEXT),
            Err(e) => {
                let _ = self.conn.execute_batch("ROLLBACK");
                Err(e).during(CONTEXT)
            }
        }
    }

    /// Record the instances a retrieve expects of a study, with where the node
    /// says they lie (replacing what an earlier retrieve expected).
    pub fn set_retrieval_instances(
        &self,
        study_uid: &str,
        instances: &[ExpectedInstance],
    ) -> Result<()> {
        const CONTEXT: &str = "recording the instances a retrieve expects";
        let join = |v: &[f64]| {
            v.iter()
                .map(|x| x.to_string())
                .collect::<Vec<_>>()
                .join("\\")
        };
        self.conn.execute_batch("BEGIN IMMEDIATE").during(CONTEXT)?;
        let written = (|| -> rusqlite::Result<()> {
            self.conn.execute(
                "DELETE FROM retrieval_instances WHERE study_uid = ?1",
                params![study_uid],
            )?;
            let mut insert = self.conn.prepare(
                "INSERT OR REPLACE INTO retrieval_instances
                 (study_uid, series_uid, sop_uid, number, position, orientation)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            for i in instances {
                insert.execute(params![
                    study_uid,
                    i.series_uid,
                    i.sop_uid,
                    i.number,
                    i.position.map(|p| join(&p)),
                    i.orientation.map(|o| join(&o)),
                ])?;
            }
            Ok(())
        })();
        match written {
            Ok(()) => self.conn.execute_batch("COMMIT").during(CONTEXT),
            Err(e) => {
                let _ = self.conn.execute_batch("ROLLBACK");
                Err(e).during(CONTEXT)
            }
        }
    }

    /// The instances the last retrieve of a study expects.
    pub fn retrieval_instances(&self, study_uid: &str) -> Result<Vec<ExpectedInstance>> {
        const CONTEXT: &str = "reading the instances a retrieve expects";
        let mut stmt = self
            .conn
            .prepare(
                "SELECT series_uid, sop_uid, number, position, orientation
                 FROM retrieval_instances WHERE study_uid = ?1 ORDER BY series_uid, number",
            )
            .during(CONTEXT)?;
        stmt.query_map(params![study_uid], |r| {
            let position: Option<String> = r.get(3)?;
            let orientation: Option<String> = r.get(4)?;
            Ok(ExpectedInstance {
                series_uid: r.get(0)?,
                sop_uid: r.get(1)?,
                number: r.get(2)?,
                position: position.as_deref().and_then(crate::dicom::attr::decimals),
                orientation: orientation
                    .as_deref()
                    .and_then(crate::dicom::attr::decimals),
            })
        })
        .during(CONTEXT)?
        .collect::<rusqlite::Result<_>>()
        .during(CONTEXT)
    }

    /// What the last retrieve of a study expects of each series.
    pub fn retrieval_series(&self, study_uid: &str) -> Result<Vec<RetrievalSeries>> {
        const CONTEXT: &str = "reading the series a retrieve expects";
        let mut stmt = self
            .conn
            .prepare(
                "SELECT series_uid, expected, middle_sop FROM retrieval_series
                 WHERE study_uid = ?1 ORDER BY series_uid",
            )
            .during(CONTEXT)?;
        stmt.query_map(params![study_uid], |r| {
            Ok(RetrievalSeries {
                series_uid: r.get(0)?,
                expected: r.get::<_, i64>(1)? as usize,
                middle_sop: r.get(2)?,
            })
        })
        .during(CONTEXT)?
        .collect::<rusqlite::Result<_>>()
        .during(CONTEXT)
    }

    /// The last retrieve of a study, if any.
    pub fn retrieval(&self, study_uid: &str) -> Result<Option<Retrieval>> {
        self.conn
            .query_row(
                "SELECT study_uid, node, state, expected, cached, note FROM retrievals WHERE study_uid = ?1",
                params![study_uid],
                |r| {
                    Ok(Retrieval {
                        study_uid: r.get(0)?,
                        node: r.get(1)?,
                        state: r.get(2)?,
                        expected: r.get::<_, i64>(3)? as usize,
                        cached: r.get::<_, i64>(4)? as usize,
                        note: r.get(5)?,
                    })
                },
            )
            .optional()
            .during("reading the last retrieve of a study")
    }

    /// Totals: patients, studies, series, instances, bytes of copied files, pins.
    pub fn stats(&self) -> Result<Stats> {
        let count = |sql: &str| -> Result<i64> {
            self.conn
                .query_row(sql, [], |r| r.get(0))
                .during("counting the cache's totals")
        };
        Ok(Stats {
            patients: count("SELECT count(*) FROM patients")? as usize,
            studies: count("SELECT count(*) FROM studies")? as usize,
            series: count("SELECT count(*) FROM series")? as usize,
            instances: count("SELECT count(DISTINCT sop_uid) FROM instances")? as usize,
            bytes: count("SELECT coalesce(sum(size), 0) FROM instances WHERE linked = 0")? as u64,
            pinned_studies: count("SELECT count(*) FROM studies WHERE pinned = 1")? as usize,
        })
    }

    /// An error naming the study unless the cache holds it.
    pub(super) fn require_study(&self, study_uid: &str) -> Result<()> {
        let n: i64 = self
            .conn
            .query_row(
                "SELECT count(*) FROM studies WHERE study_uid = ?1",
                params![study_uid],
                |r| r.get(0),
            )
            .during("looking up a study")?;
        if n == 0 {
            return Err(Error::Usage(format!("no study {study_uid} in the cache")));
        }
        Ok(())
    }

    /// Record that a study was opened now (eviction removes the least recently opened).
    pub fn touch(&self, study_uid: &str) -> Result<()> {
        self.conn
            .execute(
                "UPDATE studies SET last_access = ?2 WHERE study_uid = ?1",
                params![study_uid, now()],
            )
            .during("recording that a study was opened")?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::RetrievalState;
    use super::*;

    /// Every state is accepted by the schema's CHECK constraint and read back as
    /// itself (the enum stores the text existing caches hold).
    #[test]
    fn retrieval_states_round_trip_through_the_index() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        assert_eq!(store.retrieval("1.2.3").expect("read"), None);
        for state in RetrievalState::ALL {
            let r = Retrieval {
                study_uid: "1.2.3".into(),
                node: "PACS".into(),
                state,
                expected: 10,
                cached: 7,
                note: Some("why".into()),
            };
            store.set_retrieval(&r).expect("record");
            assert_eq!(store.retrieval("1.2.3").expect("read"), Some(r));
        }
        // A state this Lightbox does not know reads as a typed index error.
        store
            .conn
            .execute_batch(
                "PRAGMA ignore_check_constraints = ON;
                 UPDATE retrievals SET state = 'paused';",
            )
            .expect("write an unknown state");
        let e = store.retrieval("1.2.3").expect_err("unknown state");
        assert!(
            matches!(&e, Error::Index { context, .. } if context.contains("retrieve")),
            "{e}"
        );
    }
}
