//! Measurement rows: kept per instance and frame, their points as JSON (patient
//! coordinates in mm when the image has a plane, else image pixels). They go with
//! their study when it is removed (see [`Store::remove_study`]).

use rusqlite::params;

use super::{IndexResult, MeasurementRow, Store, now};
use crate::error::{Error, Result};

impl Store {
    /// Keep a measurement; returns its id.
    pub fn add_measurement(&self, m: &MeasurementRow) -> Result<i64> {
        let points = self.points_json(&m.points)?;
        self.conn
            .execute(
                "INSERT INTO measurements (sop_uid, frame, kind, space, points, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![m.sop_uid, m.frame, m.kind, m.space, points, now()],
            )
            .during("storing a measurement")?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Measurements on the given instances. A row whose points cannot be read is
    /// left out (with a warning naming its id), not fatal to the others.
    pub fn measurements_of(&self, sop_uids: &[String]) -> Result<Vec<MeasurementRow>> {
        const CONTEXT: &str = "reading measurements";
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT id, sop_uid, frame, kind, space, points FROM measurements
                 WHERE sop_uid = ?1 ORDER BY id",
            )
            .during(CONTEXT)?;
        let mut out = Vec::new();
        for sop in sop_uids {
            let rows = stmt
                .query_map(params![sop], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, u32>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, String>(4)?,
                        r.get::<_, String>(5)?,
                    ))
                })
                .during(CONTEXT)?;
            for row in rows {
                let (id, sop_uid, frame, kind, space, points) = row.during(CONTEXT)?;
                match serde_json::from_str(&points) {
                    Ok(points) => out.push(MeasurementRow {
                        id,
                        sop_uid,
                        frame,
                        kind,
                        space,
                        points,
                    }),
                    Err(e) => tracing::warn!(
                        "{}: measurement {id} left out: its points are unreadable ({e})",
                        self.index_path().display()
                    ),
                }
            }
        }
        Ok(out)
    }

    /// Move a measurement's points (an edit in the viewer); an error when the
    /// measurement no longer exists.
    pub fn update_measurement(&self, id: i64, points: &[[f64; 3]]) -> Result<()> {
        let json = self.points_json(points)?;
        let n = self
            .conn
            .execute(
                "UPDATE measurements SET points = ?1 WHERE id = ?2",
                params![json, id],
            )
            .during("updating a measurement")?;
        if n == 0 {
            return Err(Error::Usage(format!(
                "measurement {id} is not in the cache"
            )));
        }
        Ok(())
    }

    /// Delete a measurement.
    pub fn delete_measurement(&self, id: i64) -> Result<()> {
        self.conn
            .execute("DELETE FROM measurements WHERE id = ?1", params![id])
            .during("deleting a measurement")?;
        Ok(())
    }

    /// Points as the JSON the `points` column holds.
    fn points_json(&self, points: &[[f64; 3]]) -> Result<String> {
        serde_json::to_string(points).map_err(|e| Error::Invalid {
            path: self.index_path(),
            attribute: "measurement points",
            reason: e.to_string(),
        })
    }
}
