//! An index that cannot be trusted: found when a process first opens it (SQLite's
//! `PRAGMA quick_check`), checked in full by `verify` (`PRAGMA integrity_check`),
//! and replaced by `cache rebuild`, which sets the damaged file aside (never
//! deletes it), indexes the stored files afresh, and carries over what only the
//! index knew — pins, measurements, retrieve bookkeeping — as far as the damaged
//! file still gives them up.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{Connection, OpenFlags, params};
use serde::Serialize;

use super::{IndexResult, Store, io_err, now};
use crate::error::{Error, Result};

/// Index files this process has checked (each is checked once per process: the
/// viewer opens the cache from several threads).
static CHECKED: Mutex<Option<HashSet<PathBuf>>> = Mutex::new(None);

/// What `rebuild` of a damaged index did.
#[derive(Debug, Default, Serialize)]
pub struct Salvage {
    /// Where the damaged index was set aside.
    pub damaged_copy: PathBuf,
    /// What SQLite said of it.
    pub reason: String,
    /// Instances indexed from the files.
    pub instances: usize,
    pub pins: usize,
    pub measurements: usize,
    pub retrievals: usize,
    /// What could not be read back from the damaged file.
    pub lost: Vec<String>,
}

/// A measurement row: SOP instance, frame, kind, space, points, created.
type MeasurementRecord = (String, i64, String, String, String, i64);
/// A retrieve row: study, node, state, expected, cached, note, updated.
type RetrievalRecord = (String, String, String, i64, i64, Option<String>, i64);

/// Rows only the index holds, read from a damaged copy.
#[derive(Debug, Default)]
struct Kept {
    pins: Vec<String>,
    measurements: Vec<MeasurementRecord>,
    retrievals: Vec<RetrievalRecord>,
}

impl Store {
    /// `PRAGMA quick_check`, the first time this process opens this index.
    pub(super) fn check_once(&self) -> Result<()> {
        let key = self.index_path();
        {
            let seen = CHECKED.lock().unwrap_or_else(|p| p.into_inner());
            if seen.as_ref().is_some_and(|s| s.contains(&key)) {
                return Ok(());
            }
        }
        let problems = self.pragma_check("quick_check(8)")?;
        if let Some(first) = problems.first() {
            return Err(Error::IndexDamaged {
                path: key,
                reason: format!("SQLite's quick check: {}", first.trim()),
            });
        }
        CHECKED
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_or_insert_with(HashSet::new)
            .insert(key);
        Ok(())
    }

    /// `PRAGMA integrity_check`: the problems SQLite finds (none when it says ok).
    pub(super) fn integrity_problems(&self) -> Result<Vec<String>> {
        self.pragma_check("integrity_check(100)")
    }

    fn pragma_check(&self, pragma: &str) -> Result<Vec<String>> {
        let context = format!("checking the index ({pragma})");
        let mut stmt = self
            .conn
            .prepare(&format!("PRAGMA {pragma}"))
            .during(&context)?;
        let rows: Vec<String> = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .during(&context)?
            .collect::<rusqlite::Result<_>>()
            .during(&context)?;
        Ok(rows.into_iter().filter(|r| r != "ok").collect())
    }

    /// Rebuild the cache at `root` whose index is damaged (`reason`): the index
    /// (with its WAL) is renamed `index.sqlite.damaged-<time>`, a new one is
    /// created and filled from the files under `objects/`, and the pins,
    /// measurements and retrieve records the damaged file still yields are copied
    /// over.
    pub fn rebuild_damaged(root: &Path, reason: &str) -> Result<(Store, Salvage)> {
        let index = root.join("index.sqlite");
        let stamp = now();
        let aside = root.join(format!("index.sqlite.damaged-{stamp}"));
        std::fs::rename(&index, &aside).map_err(io_err(&index))?;
        let wal = root.join("index.sqlite-wal");
        if wal.exists() {
            let to = root.join(format!("index.sqlite.damaged-{stamp}-wal"));
            std::fs::rename(&wal, &to).map_err(io_err(&wal))?;
        }
        let _ = std::fs::remove_file(root.join("index.sqlite-shm"));
        CHECKED
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_or_insert_with(HashSet::new)
            .remove(&index);
        let mut salvage = Salvage {
            damaged_copy: aside.clone(),
            reason: reason.to_string(),
            ..Default::default()
        };
        let kept = read_kept(&aside, &mut salvage.lost);
        let mut store = Store::open(root)?;
        salvage.instances = store.rebuild()?;
        store.restore(&kept, &mut salvage)?;
        Ok((store, salvage))
    }

    /// Put back what only the index knew, for the studies and instances the files
    /// still hold.
    fn restore(&mut self, kept: &Kept, salvage: &mut Salvage) -> Result<()> {
        const CONTEXT: &str = "restoring pins and measurements";
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .during(CONTEXT)?;
        for study in &kept.pins {
            salvage.pins += tx
                .execute(
                    "UPDATE studies SET pinned = 1 WHERE study_uid = ?1",
                    params![study],
                )
                .during(CONTEXT)?;
        }
        for (sop, frame, kind, space, points, created) in &kept.measurements {
            salvage.measurements += tx
                .execute(
                    "INSERT INTO measurements (sop_uid, frame, kind, space, points, created_at)
                     SELECT ?1, ?2, ?3, ?4, ?5, ?6
                     WHERE EXISTS (SELECT 1 FROM instances WHERE sop_uid = ?1)",
                    params![sop, frame, kind, space, points, created],
                )
                .during(CONTEXT)?;
        }
        for (study, node, state, expected, cached, note, at) in &kept.retrievals {
            salvage.retrievals += tx
                .execute(
                    "INSERT OR REPLACE INTO retrievals
                     (study_uid, node, state, expected, cached, note, updated_at)
                     SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7
                     WHERE EXISTS (SELECT 1 FROM studies WHERE study_uid = ?1)",
                    params![study, node, state, expected, cached, note, at],
                )
                .during(CONTEXT)?;
        }
        tx.commit().during(CONTEXT)
    }
}

/// Whatever of the index-only rows a damaged file still gives up; what it does not
/// is named in `lost`.
fn read_kept(path: &Path, lost: &mut Vec<String>) -> Kept {
    let mut kept = Kept::default();
    let conn = match Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    ) {
        Ok(c) => c,
        Err(e) => {
            lost.push(format!("pins, measurements and retrieve records: {e}"));
            return kept;
        }
    };
    let mut read =
        |what: &str, sql: &str, f: &mut dyn FnMut(&rusqlite::Row) -> rusqlite::Result<()>| {
            let r = conn.prepare(sql).and_then(|mut stmt| {
                let mut rows = stmt.query([])?;
                while let Some(row) = rows.next()? {
                    f(row)?;
                }
                Ok(())
            });
            if let Err(e) = r {
                lost.push(format!("{what}: {e}"));
            }
        };
    read(
        "pins",
        "SELECT study_uid FROM studies WHERE pinned = 1",
        &mut |r| {
            kept.pins.push(r.get(0)?);
            Ok(())
        },
    );
    read(
        "measurements",
        "SELECT sop_uid, frame, kind, space, points, created_at FROM measurements ORDER BY id",
        &mut |r| {
            kept.measurements.push((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
            ));
            Ok(())
        },
    );
    read(
        "retrieve records",
        "SELECT study_uid, node, state, expected, cached, note, updated_at FROM retrievals",
        &mut |r| {
            kept.retrievals.push((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
            ));
            Ok(())
        },
    );
    kept
}
