//! Importing files and folders (folders recursively, CD roots through their
//! DICOMDIR, zip archives through [`super::zip`]): each file's fate is decided
//! against the index (new, duplicate, new version), files are copied in parallel and
//! made durable, then the whole import is indexed in one transaction.

use std::path::{Path, PathBuf};
use std::sync::PoisonError;
use std::sync::atomic::{AtomicU64, Ordering};

use rayon::prelude::*;
use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use super::files::{
    SYNC_THREAD_NAME, SYNC_THREADS, file_crc, fsync, object_path, stage_copy, sync_files,
};
use super::queries::versions;
use super::zip::{is_zip, remove_unpacked, unzip};
use super::{IndexResult, Store, io_err, now};
use crate::dicom::ImageHeader;
use crate::error::{Error, Result};
use crate::scan;

/// How an imported file enters the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportMode {
    /// Copied into the cache (the default).
    Copy,
    /// Indexed where it is (read-only media); the file must stay there.
    Link,
}

/// What happened to one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Stored,
    /// Same SOP Instance UID and same bytes as what the cache holds: skipped.
    Duplicate,
    /// Same SOP Instance UID, different bytes: kept as a new version.
    NewVersion(u32),
}

/// A file that could not be imported, and why.
type Failure = (PathBuf, String);

/// A file whose SOP Instance UID is known: its header, the cached versions
/// (version, size, CRC-32), and its own size and CRC-32.
type Checked = (ImageHeader, Vec<(u32, u64, u32)>, u64, u32);

/// Summary of an import.
#[derive(Debug, Default, Serialize)]
pub struct ImportReport {
    pub studies: usize,
    pub series: usize,
    pub stored: usize,
    pub duplicates: usize,
    pub new_versions: Vec<String>,
    /// (file, reason) for files that are not DICOM, unsupported, or failed to store.
    pub failures: Vec<(PathBuf, String)>,
    /// The cache's file system filled up: the files after that were not stored.
    pub cache_full: bool,
    /// Defects read past (a DICOMDIR's overrunning lengths).
    pub warnings: Vec<String>,
}

/// What an import does with one file.
struct Plan {
    header: ImageHeader,
    bytes_crc: Option<(u64, u32)>,
    outcome: Outcome,
    rel: PathBuf,
}

/// Remove files an import placed under `objects/` before its index transaction
/// failed (they were never indexed).
fn remove_placed(files: &[PathBuf]) {
    for f in files {
        if let Err(e) = std::fs::remove_file(f) {
            tracing::warn!("{}: not removed after a failed import: {e}", f.display());
        }
    }
}

impl Store {
    /// Import files and folders (folders recursively, CD roots through their
    /// DICOMDIR). Files are read and copied in parallel, each made durable; then the
    /// index is updated in one transaction.
    pub fn import(&mut self, inputs: &[PathBuf], mode: ImportMode) -> Result<ImportReport> {
        self.import_with_progress(inputs, mode, &|_, _| {})
    }

    /// [`Store::import`], calling `progress(done, total)` as files are written (from
    /// worker threads), for a progress bar.
    pub fn import_with_progress(
        &mut self,
        inputs: &[PathBuf],
        mode: ImportMode,
        progress: &(dyn Fn(u64, u64) + Sync),
    ) -> Result<ImportReport> {
        let mut report = ImportReport::default();
        // Zip archives are unpacked (with limits) into tmp/ and imported as folders.
        let mut unpacked = Vec::new();
        let mut sources: Vec<PathBuf> = Vec::new();
        for input in inputs {
            if is_zip(input) {
                if mode == ImportMode::Link {
                    report.failures.push((
                        input.clone(),
                        "a zip archive cannot be linked in place; import it without --link".into(),
                    ));
                    continue;
                }
                match unzip(input, &self.root.join("tmp")) {
                    Ok(dir) => {
                        sources.push(dir.clone());
                        unpacked.push(dir);
                    }
                    Err(e) => report.failures.push((input.clone(), e)),
                }
            } else {
                sources.push(input.clone());
            }
        }
        let result = self.import_sources(&sources, mode, &mut report, progress);
        for d in unpacked {
            remove_unpacked(&d);
        }
        result.map(|()| report)
    }

    fn import_sources(
        &mut self,
        inputs: &[PathBuf],
        mode: ImportMode,
        report: &mut ImportReport,
        progress: &(dyn Fn(u64, u64) + Sync),
    ) -> Result<()> {
        let mut headers = Vec::new();
        for input in inputs {
            let s = scan::scan(input).map_err(io_err(input))?;
            report.failures.extend(s.failures);
            report.warnings.extend(s.warnings);
            headers.extend(
                s.headers
                    .into_iter()
                    .filter(|h| h.sop_class_uid != crate::model::MEDIA_STORAGE_DIRECTORY),
            );
        }
        // Decide each file's fate against the index, then write files in parallel.
        // The common case — a SOP Instance UID the cache has never seen, once in this
        // import — is read once, checksummed while it is copied. Only known UIDs are
        // checksummed first, to tell duplicates from new versions.
        let mut per_uid: std::collections::HashMap<String, usize> =
            std::collections::HashMap::new();
        for h in headers.iter() {
            *per_uid.entry(h.sop_instance_uid.clone()).or_default() += 1;
        }
        let mut fresh = Vec::new();
        let mut known = Vec::new();
        for h in headers {
            let existing =
                versions(&self.conn, &h.sop_instance_uid).during("looking up cached versions")?;
            if existing.is_empty() && per_uid.get(&h.sop_instance_uid) == Some(&1) {
                fresh.push(h);
            } else {
                known.push((h, existing));
            }
        }
        let rel_for = |h: &ImageHeader, version: u32| match mode {
            ImportMode::Copy => object_path(h, version),
            ImportMode::Link => std::fs::canonicalize(&h.path).unwrap_or_else(|_| h.path.clone()),
        };
        let mut plans: Vec<Plan> = fresh
            .into_iter()
            .map(|h| Plan {
                rel: rel_for(&h, 1),
                header: h,
                bytes_crc: None,
                outcome: Outcome::Stored,
            })
            .collect();
        let checked: Vec<std::result::Result<Checked, Failure>> = known
            .into_par_iter()
            .map(|(h, existing)| match file_crc(&h.path) {
                Ok((size, crc)) => Ok((h, existing, size, crc)),
                Err(e) => Err((h.path.clone(), e.to_string())),
            })
            .collect();
        for c in checked {
            let (h, existing, size, crc) = match c {
                Ok(v) => v,
                Err(f) => {
                    report.failures.push(f);
                    continue;
                }
            };
            // The same instance twice in one import is a duplicate too.
            let same_batch = plans.iter().any(|p| {
                p.header.sop_instance_uid == h.sop_instance_uid && p.bytes_crc == Some((size, crc))
            });
            if same_batch || existing.iter().any(|&(_, s, c)| (s, c) == (size, crc)) {
                report.duplicates += 1;
                continue;
            }
            let earlier_in_batch = plans
                .iter()
                .filter(|p| p.header.sop_instance_uid == h.sop_instance_uid)
                .count() as u32;
            let version = existing.iter().map(|e| e.0).max().unwrap_or(0) + earlier_in_batch + 1;
            let outcome = if version > 1 {
                Outcome::NewVersion(version)
            } else {
                Outcome::Stored
            };
            plans.push(Plan {
                rel: rel_for(&h, version),
                header: h,
                bytes_crc: Some((size, crc)),
                outcome,
            });
        }
        let root = self.root.clone();
        let total = plans.len() as u64;
        let done = AtomicU64::new(0);
        // Once the file system is full, the remaining copies are not attempted.
        let full = std::sync::atomic::AtomicBool::new(false);
        // Copy: each file is written to tmp/ (in parallel, checksummed as it goes)
        // and fsynced by a pool of threads as soon as it is written, so the disk
        // writes back while the copy goes on (concurrent fsyncs also share journal
        // commits); then the files are renamed into place and their folders fsynced
        // once each.
        type StagedPlan = std::result::Result<(Plan, Option<PathBuf>), Failure>;
        let (sync_tx, sync_rx) = std::sync::mpsc::channel::<(usize, PathBuf)>();
        let sync_rx = std::sync::Mutex::new(sync_rx);
        let sync_results: std::sync::Mutex<
            std::collections::HashMap<usize, std::result::Result<(), String>>,
        > = Default::default();
        let record = |i: usize, r: std::result::Result<(), String>| {
            sync_results
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(i, r);
        };
        let staged: Vec<StagedPlan> = std::thread::scope(|scope| {
            let mut syncers = 0;
            for _ in 0..SYNC_THREADS {
                let started = std::thread::Builder::new()
                    .name(SYNC_THREAD_NAME.into())
                    .spawn_scoped(scope, || {
                        loop {
                            let next = match sync_rx.lock() {
                                Ok(rx) => rx.recv(),
                                Err(_) => return,
                            };
                            let Ok((i, path)) = next else { return };
                            record(i, fsync(&path));
                        }
                    });
                match started {
                    Ok(_) => syncers += 1,
                    Err(e) => tracing::warn!("cannot start an fsync thread: {e}"),
                }
            }
            // No fsync thread at all: each copy is fsynced where it is written.
            let inline = syncers == 0;
            let staged = plans
                .into_par_iter()
                .enumerate()
                .map(|(i, mut p)| {
                    progress(done.fetch_add(1, Ordering::Relaxed) + 1, total);
                    if full.load(Ordering::Relaxed) {
                        return Err((
                            p.header.path.clone(),
                            format!(
                                "{}: not stored: no space left on device in the cache",
                                p.header.path.display()
                            ),
                        ));
                    }
                    let r = match mode {
                        ImportMode::Copy => stage_copy(&p.header.path, &root).map(|(t, v)| {
                            if inline {
                                record(i, fsync(&t));
                            } else if let Err(unsent) = sync_tx.send((i, t.clone())) {
                                record(i, fsync(&unsent.0.1));
                            }
                            (Some(t), v)
                        }),
                        ImportMode::Link => match p.bytes_crc {
                            Some(v) => Ok((None, v)),
                            None => file_crc(&p.header.path)
                                .map(|v| (None, v))
                                .map_err(io_err(&p.header.path)),
                        },
                    };
                    match r {
                        Ok((tmp, v)) => {
                            p.bytes_crc = Some(v);
                            Ok((p, tmp))
                        }
                        Err(e) => {
                            if matches!(e, Error::CacheFull { .. }) {
                                full.store(true, Ordering::Relaxed);
                            }
                            Err((p.header.path.clone(), e.to_string()))
                        }
                    }
                })
                .collect();
            drop(sync_tx);
            staged
        });
        let mut sync_results = sync_results
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner);
        let mut written: Vec<std::result::Result<Plan, Failure>> = Vec::with_capacity(staged.len());
        // Files this import put under objects/: removed again if indexing fails, so a
        // failed import leaves no unindexed file behind.
        let mut placed_files: Vec<PathBuf> = Vec::new();
        for (i, s) in staged.into_iter().enumerate() {
            let (p, tmp) = match s {
                Ok(v) => v,
                Err(f) => {
                    written.push(Err(f));
                    continue;
                }
            };
            let Some(tmp) = tmp else {
                written.push(Ok(p));
                continue;
            };
            let dst = root.join(&p.rel);
            let placed = sync_results
                .remove(&i)
                .unwrap_or_else(|| Err(format!("{}: not fsynced", tmp.display())))
                .and_then(|()| {
                    let dir = dst.parent().unwrap_or(&root);
                    std::fs::create_dir_all(dir)
                        .and_then(|()| std::fs::rename(&tmp, &dst))
                        .map_err(|e| {
                            if super::is_full_io(&e) {
                                full.store(true, Ordering::Relaxed);
                            }
                            format!("{}: cannot write: {e}", dst.display())
                        })
                });
            match placed {
                Ok(()) => {
                    if mode == ImportMode::Copy {
                        placed_files.push(dst.clone());
                    }
                    written.push(Ok(p))
                }
                Err(e) => {
                    let _ = std::fs::remove_file(&tmp);
                    written.push(Err((p.header.path.clone(), e)));
                }
            }
        }
        // Make the renames durable: each folder written to, once.
        if mode == ImportMode::Copy {
            let dirs: std::collections::BTreeSet<PathBuf> = written
                .iter()
                .filter_map(|w| w.as_ref().ok())
                .filter_map(|p| self.root.join(&p.rel).parent().map(Path::to_path_buf))
                .collect();
            if let Some(e) = sync_files(dirs.iter().map(PathBuf::as_path))
                .into_iter()
                .find_map(|r| r.err())
            {
                remove_placed(&placed_files);
                return Err(Error::Write {
                    path: self.root.join("objects"),
                    reason: e,
                });
            }
        }
        report.cache_full = full.load(Ordering::Relaxed);
        let indexed = self.index_written(written, mode, report, inputs);
        if let Err(e) = indexed {
            remove_placed(&placed_files);
            return Err(super::full_or(&self.root, e));
        }
        Ok(())
    }

    /// Index what an import wrote, in one transaction (immediate: it writes).
    fn index_written(
        &mut self,
        written: Vec<std::result::Result<Plan, Failure>>,
        mode: ImportMode,
        report: &mut ImportReport,
        inputs: &[PathBuf],
    ) -> Result<()> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .during("starting the import")?;
        // Per study, with its patient: the audit trail's import event.
        let mut studies = crate::audit::Studies::default();
        let mut series = std::collections::HashSet::new();
        let source = match mode {
            ImportMode::Copy => "import",
            ImportMode::Link => "import-link",
        };
        for w in written {
            let p = match w {
                Ok(p) => p,
                Err(f) => {
                    report.failures.push(f);
                    continue;
                }
            };
            index_instance(
                &tx,
                &p.header,
                &p.rel,
                mode == ImportMode::Link,
                p.bytes_crc.unwrap_or_default(),
                p.outcome.clone(),
                source,
            )?;
            studies.add(
                &p.header.study_uid,
                p.header.patient_id.as_deref().unwrap_or(""),
                p.header.patient_name.as_deref().unwrap_or(""),
            );
            series.insert(p.header.series_uid.clone());
            match p.outcome {
                Outcome::NewVersion(v) => report.new_versions.push(format!(
                    "{}: SOP Instance {} differs from the cached copy; kept as version {v}",
                    p.header.path.display(),
                    p.header.sop_instance_uid
                )),
                _ => report.stored += 1,
            }
        }
        tx.commit().during("committing the import")?;
        if !studies.is_empty() {
            use crate::audit::{Action, Event, EventId, Role};
            let from: Vec<String> = inputs.iter().map(|p| p.display().to_string()).collect();
            Event::new(
                EventId::Import,
                Action::Create,
                "lightbox",
                Role::Application,
            )
            .describe(format!("imported from {}", from.join(", ")))
            .studies(&studies)
            .record(&self.root);
        }
        report.studies = studies.len();
        report.series = series.len();
        Ok(())
    }
}

/// Index one instance (its patient, study and series rows as needed) inside `tx`;
/// its file is already durable at `rel` (relative to the root, or absolute when
/// `linked`). An instance already indexed under this version is left as it is.
pub(super) fn index_instance(
    tx: &rusqlite::Transaction<'_>,
    h: &ImageHeader,
    rel: &Path,
    linked: bool,
    (size, crc): (u64, u32),
    outcome: Outcome,
    source: &str,
) -> Result<()> {
    let pid = h.patient_id.clone().unwrap_or_default();
    let pname = h.patient_name.clone().unwrap_or_default();
    tx.execute(
        "INSERT INTO patients (patient_id, name, birth_date, sex) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (patient_id, name) DO UPDATE SET birth_date = coalesce(excluded.birth_date, birth_date),
             sex = coalesce(excluded.sex, sex)",
        params![pid, pname, h.patient_birth_date, h.patient_sex],
    )
    .during("indexing the patient")?;
    let key: i64 = tx
        .query_row(
            "SELECT key FROM patients WHERE patient_id = ?1 AND name = ?2",
            params![pid, pname],
            |r| r.get(0),
        )
        .during("looking up the patient")?;
    tx.execute(
        "INSERT INTO studies (study_uid, patient_key, date, time, description, accession, referring_physician, last_access)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (study_uid) DO NOTHING",
        params![h.study_uid, key, h.study_date, h.study_time, h.study_description, h.accession_number, h.referring_physician, now()],
    )
    .during("indexing the study")?;
    tx.execute(
        "INSERT INTO series (series_uid, study_uid, number, modality, description, body_part)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (series_uid) DO NOTHING",
        params![
            h.series_uid,
            h.study_uid,
            h.series_number,
            h.modality,
            h.series_description,
            h.body_part
        ],
    )
    .during("indexing the series")?;
    let version = match outcome {
        Outcome::NewVersion(v) => v,
        _ => 1,
    };
    let exists: Option<i64> = tx
        .query_row(
            "SELECT 1 FROM instances WHERE sop_uid = ?1 AND version = ?2",
            params![h.sop_instance_uid, version],
            |r| r.get(0),
        )
        .optional()
        .during("looking up the instance")?;
    if exists.is_none() {
        tx.execute(
            "INSERT INTO instances (sop_uid, version, series_uid, sop_class, instance_number, transfer_syntax,
                                    path, linked, size, crc32, source, stored_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            params![
                h.sop_instance_uid,
                version,
                h.series_uid,
                h.sop_class_uid,
                h.instance_number,
                h.transfer_syntax,
                rel.to_string_lossy(),
                linked as i64,
                size as i64,
                crc,
                source,
                now()
            ],
        )
        .during("indexing the instance")?;
    }
    Ok(())
}
