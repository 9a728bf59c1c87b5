//! Keeping the cache healthy: `verify` (every indexed file present with its size and
//! CRC-32, no unindexed files, no temporary file of a dead writer, SQLite's
//! integrity check), `rebuild` (the index from the files alone), pins,
//! removing a study (rows first, then files) and eviction of the least recently
//! opened unpinned studies.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use super::files::{file_crc, version_from_name};
use super::import::index_instance;
use super::{IndexResult, Outcome, Store, io_err};
use crate::dicom::ImageHeader;
use crate::error::Result;
use crate::scan;

/// Findings of `verify`.
#[derive(Debug, Default, Serialize)]
pub struct VerifyReport {
    pub checked: usize,
    /// Indexed instances whose file is gone.
    pub missing: Vec<String>,
    /// Files under `objects/` that no index row names.
    pub orphaned: Vec<PathBuf>,
    /// Files whose size or CRC-32 no longer match the index.
    pub corrupt: Vec<String>,
    /// Temporary files in `tmp/` left by a writer that is gone (path, bytes):
    /// the next writer to open the cache removes them; listed here when it could
    /// not.
    pub leftovers: Vec<(PathBuf, u64)>,
    /// What SQLite's `PRAGMA integrity_check` found wrong in the index itself.
    pub index_problems: Vec<String>,
}

/// What `verify --repair` did.
#[derive(Debug, Default, Serialize)]
pub struct RepairReport {
    /// Unindexed files under `objects/` indexed again.
    pub indexed: usize,
    /// Unindexed files that are not readable DICOM, moved to `lost+found/`.
    pub quarantined: Vec<PathBuf>,
    /// Rows whose file is gone, removed (the study must be fetched again).
    pub dropped_rows: Vec<String>,
    /// Temporary files of dead writers removed.
    pub removed_leftovers: usize,
}

impl VerifyReport {
    pub fn is_clean(&self) -> bool {
        self.missing.is_empty()
            && self.orphaned.is_empty()
            && self.corrupt.is_empty()
            && self.leftovers.is_empty()
            && self.index_problems.is_empty()
    }
}

impl Store {
    /// Pin (or unpin) a study: pinned studies are never evicted.
    pub fn set_pinned(&self, study_uid: &str, pinned: bool) -> Result<()> {
        self.require_study(study_uid)?;
        self.conn
            .execute(
                "UPDATE studies SET pinned = ?2 WHERE study_uid = ?1",
                params![study_uid, pinned as i64],
            )
            .during("pinning a study")?;
        Ok(())
    }

    /// Remove a whole study: its rows first (one transaction), then its copied files,
    /// so a crash in between leaves unindexed files (reported by `verify`), never rows
    /// without files. Linked files are left where they are. Returns the files removed.
    pub fn remove_study(&mut self, study_uid: &str) -> Result<usize> {
        self.require_study(study_uid)?;
        let who = self.patient_of(study_uid).ok().flatten();
        const CONTEXT: &str = "removing a study";
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .during(CONTEXT)?;
        let paths: Vec<String> = {
            let mut stmt = tx
                .prepare(
                    "SELECT i.path FROM instances i JOIN series se ON i.series_uid = se.series_uid
                     WHERE se.study_uid = ?1 AND i.linked = 0",
                )
                .during(CONTEXT)?;
            stmt.query_map(params![study_uid], |r| r.get(0))
                .during(CONTEXT)?
                .collect::<rusqlite::Result<_>>()
                .during(CONTEXT)?
        };
        tx.execute(
            "DELETE FROM measurements WHERE sop_uid IN (SELECT i.sop_uid FROM instances i
             JOIN series se ON i.series_uid = se.series_uid WHERE se.study_uid = ?1)",
            params![study_uid],
        )
        .during(CONTEXT)?;
        tx.execute(
            "DELETE FROM instances WHERE series_uid IN (SELECT series_uid FROM series WHERE study_uid = ?1)",
            params![study_uid],
        )
        .during(CONTEXT)?;
        tx.execute(
            "DELETE FROM series WHERE study_uid = ?1",
            params![study_uid],
        )
        .during(CONTEXT)?;
        tx.execute(
            "DELETE FROM studies WHERE study_uid = ?1",
            params![study_uid],
        )
        .during(CONTEXT)?;
        for table in ["retrievals", "retrieval_series", "retrieval_instances"] {
            tx.execute(
                &format!("DELETE FROM {table} WHERE study_uid = ?1"),
                params![study_uid],
            )
            .during(CONTEXT)?;
        }
        tx.execute(
            "DELETE FROM patients WHERE key NOT IN (SELECT patient_key FROM studies)",
            [],
        )
        .during(CONTEXT)?;
        tx.commit().during(CONTEXT)?;
        let (patient_id, name, instances) = who.unwrap_or_default();
        use crate::audit::{Action, Event, EventId, Role};
        Event::new(
            EventId::StudyDeleted,
            Action::Delete,
            "lightbox",
            Role::Application,
        )
        .study(study_uid, Some(instances))
        .patient(&patient_id, &name)
        .record(&self.root);
        let mut removed = 0;
        for p in &paths {
            let full = self.root.join(p);
            match std::fs::remove_file(&full) {
                Ok(()) => removed += 1,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                // Unindexed now: `verify` reports it, `rebuild` would index it again.
                Err(e) => tracing::warn!("{}: not removed: {e}", full.display()),
            }
            // Drop emptied series/study folders.
            let mut dir = full.parent().map(Path::to_path_buf);
            while let Some(d) = dir {
                if d == self.root.join("objects") || std::fs::remove_dir(&d).is_err() {
                    break;
                }
                dir = d.parent().map(Path::to_path_buf);
            }
        }
        Ok(removed)
    }

    /// Remove least recently opened, unpinned studies until the copied files take at
    /// most `cap_bytes`. Returns the study UIDs removed, in order.
    pub fn evict(&mut self, cap_bytes: u64) -> Result<Vec<String>> {
        let mut removed = Vec::new();
        loop {
            if self.stats()?.bytes <= cap_bytes {
                break;
            }
            let next: Option<String> = self
                .conn
                .query_row(
                    "SELECT study_uid FROM studies WHERE pinned = 0 ORDER BY last_access, study_uid LIMIT 1",
                    [],
                    |r| r.get(0),
                )
                .optional()
                .during("choosing a study to evict")?;
            let Some(uid) = next else { break };
            self.remove_study(&uid)?;
            removed.push(uid);
        }
        Ok(removed)
    }

    /// Check every indexed file (present, same size and CRC-32) and look for files no
    /// row names.
    pub fn verify(&self) -> Result<VerifyReport> {
        const CONTEXT: &str = "listing instances to verify";
        let index_problems = self.integrity_problems()?;
        let mut stmt = self
            .conn
            .prepare("SELECT sop_uid, version, path, linked, size, crc32 FROM instances")
            .during(CONTEXT)?;
        let rows: Vec<(String, u32, String, bool, u64, u32)> = stmt
            .query_map([], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get::<_, i64>(3)? != 0,
                    r.get(4)?,
                    r.get(5)?,
                ))
            })
            .during(CONTEXT)?
            .collect::<rusqlite::Result<_>>()
            .during(CONTEXT)?;
        let mut report = VerifyReport {
            checked: rows.len(),
            index_problems,
            ..Default::default()
        };
        let known: HashSet<PathBuf> = rows
            .iter()
            .filter(|r| !r.3)
            .map(|r| self.root.join(&r.2))
            .collect();
        let root = &self.root;
        let results: Vec<(String, Option<bool>)> = rows
            .par_iter()
            .map(|(sop, version, path, linked, size, crc)| {
                let full = if *linked {
                    PathBuf::from(path)
                } else {
                    root.join(path)
                };
                let label = format!("{sop} (version {version}) at {}", full.display());
                match file_crc(&full) {
                    Err(_) => (label, None),
                    Ok((s, c)) => (label, Some((s, c) == (*size, *crc))),
                }
            })
            .collect();
        for (label, state) in results {
            match state {
                None => report.missing.push(label),
                Some(false) => report.corrupt.push(label),
                Some(true) => {}
            }
        }
        let objects = self.root.join("objects");
        for f in scan::list_files(&objects).map_err(io_err(&objects))? {
            if !known.contains(&f) {
                report.orphaned.push(f);
            }
        }
        report.leftovers = self
            .temporaries()
            .into_iter()
            .filter(|t| !t.live)
            .map(|t| (t.path, t.bytes))
            .collect();
        Ok(report)
    }

    /// Repair what `verify` found: unindexed files are indexed (or, when they are
    /// not readable DICOM, moved to `lost+found/`), rows whose file is gone are
    /// removed, leftovers of dead writers are deleted. Files whose checksum changed
    /// are left as they are: nothing can say which bytes are right.
    pub fn repair(&mut self, found: &VerifyReport) -> Result<RepairReport> {
        let mut out = RepairReport {
            removed_leftovers: self.sweep_temporaries().0,
            ..Default::default()
        };
        let root = self.root.clone();
        const CONTEXT: &str = "repairing the index";
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .during(CONTEXT)?;
        for path in &found.orphaned {
            let header = crate::dicom::read_header(path).and_then(|h| {
                file_crc(path)
                    .map(|v| (h, v))
                    .map_err(|source| crate::error::Error::Io {
                        path: path.clone(),
                        source,
                    })
            });
            let rel = path
                .strip_prefix(&root)
                .map(Path::to_path_buf)
                .unwrap_or_else(|_| path.clone());
            match header {
                Ok((h, v)) => {
                    let version = version_from_name(&rel);
                    let outcome = if version > 1 {
                        Outcome::NewVersion(version)
                    } else {
                        Outcome::Stored
                    };
                    index_instance(&tx, &h, &rel, false, v, outcome, "repair")?;
                    out.indexed += 1;
                }
                Err(e) => {
                    let dst = root.join("lost+found").join(&rel);
                    if let Some(d) = dst.parent() {
                        std::fs::create_dir_all(d).map_err(io_err(d))?;
                    }
                    std::fs::rename(path, &dst).map_err(io_err(path))?;
                    tracing::warn!("{}: moved to lost+found: {e}", path.display());
                    out.quarantined.push(dst);
                }
            }
        }
        for label in &found.missing {
            // The label is "<sop> (version <n>) at <path>".
            let Some((sop, rest)) = label.split_once(" (version ") else {
                continue;
            };
            let Some((version, _)) = rest.split_once(')') else {
                continue;
            };
            let Ok(version) = version.parse::<u32>() else {
                continue;
            };
            let n = tx
                .execute(
                    "DELETE FROM instances WHERE sop_uid = ?1 AND version = ?2",
                    params![sop, version],
                )
                .during(CONTEXT)?;
            if n > 0 {
                out.dropped_rows.push(label.clone());
            }
        }
        // Series and studies left without instances go too.
        tx.execute_batch(
            "DELETE FROM series WHERE NOT EXISTS (SELECT 1 FROM instances i WHERE i.series_uid = series.series_uid);
             DELETE FROM studies WHERE NOT EXISTS (SELECT 1 FROM series se WHERE se.study_uid = studies.study_uid);
             DELETE FROM patients WHERE key NOT IN (SELECT patient_key FROM studies);",
        )
        .during(CONTEXT)?;
        tx.commit().during(CONTEXT)?;
        Ok(out)
    }

    /// Recreate the index from the files under `objects/` alone (linked files are
    /// dropped: re-import them). Returns the number of instances indexed.
    pub fn rebuild(&mut self) -> Result<usize> {
        let objects = self.root.join("objects");
        let files = scan::list_files(&objects).map_err(io_err(&objects))?;
        let s = scan::scan_files(&files);
        // Files that cannot be indexed stay where they are (`verify` lists them as
        // unindexed); each is named in the log.
        for (path, why) in &s.failures {
            tracing::warn!("{}: not indexed by the rebuild: {why}", path.display());
        }
        let with_crc: Vec<(ImageHeader, u64, u32)> = s
            .headers
            .into_par_iter()
            .filter_map(|h| match file_crc(&h.path) {
                Ok((size, crc)) => Some((h, size, crc)),
                Err(e) => {
                    tracing::warn!("{}: not indexed by the rebuild: {e}", h.path.display());
                    None
                }
            })
            .collect();
        let root = self.root.clone();
        const CONTEXT: &str = "rebuilding the index";
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .during(CONTEXT)?;
        tx.execute_batch(
            "DELETE FROM instances; DELETE FROM series; DELETE FROM studies; DELETE FROM patients;",
        )
        .during(CONTEXT)?;
        let mut n = 0;
        for (h, size, crc) in with_crc {
            let rel = h
                .path
                .strip_prefix(&root)
                .map(Path::to_path_buf)
                .unwrap_or_else(|_| h.path.clone());
            let version = version_from_name(&rel);
            let outcome = if version > 1 {
                Outcome::NewVersion(version)
            } else {
                Outcome::Stored
            };
            index_instance(&tx, &h, &rel, false, (size, crc), outcome, "rebuild")?;
            n += 1;
        }
        tx.commit().during(CONTEXT)?;
        Ok(n)
    }
}
