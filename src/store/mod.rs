//! The local study cache: one file per SOP instance under `objects/`, indexed in
//! SQLite (`index.sqlite`, WAL, versioned schema).
//!
//! Nothing is lost and nothing is half-indexed: an imported file is written to
//! `tmp/`, fsynced and renamed into place (and its folder fsynced) before the
//! transaction that indexes it begins; a received one goes through a staging folder
//! under `incoming/` and is adopted in groups by [`ingest`] under the same rule. A
//! crash in between leaves an orphan file, which `verify` reports and `rebuild` (or
//! re-importing) indexes, or a staged file, which the next open adopts — never an
//! index row without its file. Paths come from UIDs only when they are valid UIDs (digits and dots, at most
//! 64 characters); anything else is replaced by a hash, so a crafted UID cannot
//! leave the cache root.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use rayon::prelude::*;
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use crate::dicom::{self, ImageHeader};
use crate::error::{Error, Result};
use crate::scan;

pub mod ingest;
pub use ingest::{Durability, Ingest, Receipt, Receiving};

/// A received object in a staging file, ready to be adopted into the cache.
#[derive(Debug, Clone)]
pub(crate) struct Staged {
    /// Its header; `path` is the staging file.
    pub header: ImageHeader,
    pub size: u64,
    pub crc: u32,
    /// Recorded in the index: "c-store", "c-move", "c-get", "recovered".
    pub source: String,
}

/// Most threads fsyncing a group at once (the file system merges their commits).
const SYNC_THREADS: usize = 8;

/// Schema migrations, applied in order; `PRAGMA user_version` records how many ran.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE patients (
    key INTEGER PRIMARY KEY,
    patient_id TEXT NOT NULL,
    name TEXT NOT NULL,
    birth_date TEXT,
    sex TEXT,
    UNIQUE (patient_id, name)
);
CREATE TABLE studies (
    study_uid TEXT PRIMARY KEY,
    patient_key INTEGER NOT NULL REFERENCES patients(key),
    date TEXT, time TEXT, description TEXT, accession TEXT, referring_physician TEXT,
    last_access INTEGER NOT NULL,
    pinned INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE series (
    series_uid TEXT PRIMARY KEY,
    study_uid TEXT NOT NULL REFERENCES studies(study_uid),
    number INTEGER, modality TEXT, description TEXT, body_part TEXT
);
CREATE INDEX series_by_study ON series(study_uid);
CREATE TABLE instances (
    sop_uid TEXT NOT NULL,
    version INTEGER NOT NULL,
    series_uid TEXT NOT NULL REFERENCES series(series_uid),
    sop_class TEXT NOT NULL,
    instance_number INTEGER,
    transfer_syntax TEXT NOT NULL,
    path TEXT NOT NULL,
    linked INTEGER NOT NULL,
    size INTEGER NOT NULL,
    crc32 INTEGER NOT NULL,
    source TEXT NOT NULL,
    stored_at INTEGER NOT NULL,
    PRIMARY KEY (sop_uid, version)
);
CREATE INDEX instances_by_series ON instances(series_uid);
"#,
    r#"
-- Counts kept per series and per study by triggers, so listings never scan or
-- aggregate the instances.
ALTER TABLE series ADD COLUMN instances INTEGER NOT NULL DEFAULT 0;
ALTER TABLE series ADD COLUMN bytes INTEGER NOT NULL DEFAULT 0;
ALTER TABLE studies ADD COLUMN modalities TEXT NOT NULL DEFAULT '';
ALTER TABLE studies ADD COLUMN series_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE studies ADD COLUMN instances INTEGER NOT NULL DEFAULT 0;
ALTER TABLE studies ADD COLUMN bytes INTEGER NOT NULL DEFAULT 0;
UPDATE series SET
    instances = (SELECT count(DISTINCT i.sop_uid) FROM instances i WHERE i.series_uid = series.series_uid),
    bytes = (SELECT coalesce(sum(i.size), 0) FROM instances i WHERE i.series_uid = series.series_uid);
UPDATE studies SET
    modalities = (SELECT coalesce(group_concat(DISTINCT se.modality), '') FROM series se WHERE se.study_uid = studies.study_uid),
    series_count = (SELECT count(*) FROM series se WHERE se.study_uid = studies.study_uid),
    instances = (SELECT coalesce(sum(se.instances), 0) FROM series se WHERE se.study_uid = studies.study_uid),
    bytes = (SELECT coalesce(sum(se.bytes), 0) FROM series se WHERE se.study_uid = studies.study_uid);
-- `instances` counts SOP instances (not versions); `bytes` counts every version.
CREATE TRIGGER instances_counted AFTER INSERT ON instances BEGIN
    UPDATE series SET bytes = bytes + NEW.size,
        instances = instances + NOT EXISTS (SELECT 1 FROM instances o
                                           WHERE o.sop_uid = NEW.sop_uid AND o.version <> NEW.version)
    WHERE series_uid = NEW.series_uid;
    UPDATE studies SET bytes = bytes + NEW.size,
        instances = instances + NOT EXISTS (SELECT 1 FROM instances o
                                           WHERE o.sop_uid = NEW.sop_uid AND o.version <> NEW.version)
    WHERE study_uid = (SELECT study_uid FROM series WHERE series_uid = NEW.series_uid);
END;
CREATE TRIGGER instances_uncounted AFTER DELETE ON instances BEGIN
    UPDATE series SET bytes = bytes - OLD.size,
        instances = instances - NOT EXISTS (SELECT 1 FROM instances o WHERE o.sop_uid = OLD.sop_uid)
    WHERE series_uid = OLD.series_uid;
    UPDATE studies SET bytes = bytes - OLD.size,
        instances = instances - NOT EXISTS (SELECT 1 FROM instances o WHERE o.sop_uid = OLD.sop_uid)
    WHERE study_uid = (SELECT study_uid FROM series WHERE series_uid = OLD.series_uid);
END;
CREATE TRIGGER series_counted AFTER INSERT ON series BEGIN
    UPDATE studies SET series_count = series_count + 1,
        modalities = (SELECT coalesce(group_concat(DISTINCT se.modality), '') FROM series se
                      WHERE se.study_uid = NEW.study_uid)
    WHERE study_uid = NEW.study_uid;
END;
CREATE TRIGGER series_uncounted AFTER DELETE ON series BEGIN
    UPDATE studies SET series_count = series_count - 1,
        modalities = (SELECT coalesce(group_concat(DISTINCT se.modality), '') FROM series se
                      WHERE se.study_uid = OLD.study_uid)
    WHERE study_uid = OLD.study_uid;
END;
CREATE INDEX studies_by_date ON studies(date DESC, study_uid);
"#,
    r#"
-- The last retrieve of a study from a PACS: complete only when the node's final
-- response said so, nothing failed, and every instance it listed is cached.
CREATE TABLE retrievals (
    study_uid TEXT PRIMARY KEY,
    node TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('in-progress', 'incomplete', 'complete')),
    expected INTEGER NOT NULL,
    cached INTEGER NOT NULL,
    note TEXT,
    updated_at INTEGER NOT NULL
);
"#,
    r#"
-- Measurements, per instance and frame: points in patient coordinates (mm, LPS)
-- when the image has a plane, else in image pixel coordinates.
CREATE TABLE measurements (
    id INTEGER PRIMARY KEY,
    sop_uid TEXT NOT NULL,
    frame INTEGER NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('length', 'ellipse')),
    space TEXT NOT NULL CHECK (space IN ('patient', 'image')),
    points TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX measurements_by_sop ON measurements(sop_uid);
"#,
];

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
}

/// A study as the browser lists it.
#[derive(Debug, Clone, Serialize)]
pub struct StudyRow {
    pub study_uid: String,
    pub patient_id: String,
    pub patient_name: String,
    pub date: Option<String>,
    pub description: Option<String>,
    pub modalities: String,
    pub series: usize,
    pub instances: usize,
    pub bytes: u64,
    pub pinned: bool,
    /// State of the last retrieve from a PACS ("complete", "incomplete",
    /// "in-progress"); None for studies that were imported or pushed.
    pub retrieval: Option<String>,
}

/// The last retrieve of a study.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Retrieval {
    pub study_uid: String,
    pub node: String,
    pub state: String,
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
    /// "length" or "ellipse".
    pub kind: String,
    /// "patient" (points in mm, LPS) or "image" (pixel coordinates).
    pub space: String,
    /// Two points, each `[x, y, z]` (z = 0 in image space).
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
}

impl VerifyReport {
    pub fn is_clean(&self) -> bool {
        self.missing.is_empty() && self.orphaned.is_empty() && self.corrupt.is_empty()
    }
}

/// An open cache.
#[derive(Debug)]
pub struct Store {
    root: PathBuf,
    conn: Connection,
}

fn db_err(e: rusqlite::Error) -> Error {
    Error::Series(format!("cache index: {e}"))
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// A UID as a path component: itself when it is a valid UID, else `x` + a hash.
pub fn uid_component(uid: &str) -> String {
    let valid = !uid.is_empty()
        && uid.len() <= 64
        && uid.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && !uid.starts_with('.')
        && !uid.ends_with('.')
        && !uid.contains("..");
    if valid {
        uid.to_string()
    } else {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in uid.bytes() {
            h ^= b as u64;
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        format!("x{h:016x}")
    }
}

/// The default cache root: `$LIGHTBOX_CACHE`, else `$XDG_DATA_HOME/lightbox/cache`,
/// else `~/.local/share/lightbox/cache`.
pub fn default_root() -> PathBuf {
    if let Some(p) = std::env::var_os("LIGHTBOX_CACHE") {
        return PathBuf::from(p);
    }
    let data = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."));
    data.join("lightbox").join("cache")
}

impl Store {
    /// Open (creating if needed) the cache at `root` and bring its schema up to date.
    pub fn open(root: &Path) -> Result<Store> {
        for d in [root.join("objects"), root.join("tmp")] {
            std::fs::create_dir_all(&d).map_err(io_err(&d))?;
        }
        let conn = Connection::open(root.join("index.sqlite")).map_err(db_err)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(db_err)?;
        conn.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;",
        )
        .map_err(db_err)?;
        let mut store = Store {
            root: root.to_path_buf(),
            conn,
        };
        store.migrate()?;
        if let Err(e) = store.recover_incoming() {
            tracing::warn!("{}: staged objects not recovered: {e}", root.display());
        }
        Ok(store)
    }

    /// Adopt what dead receivers left staged under `incoming/` (folders whose lock
    /// nobody holds): objects they acknowledged but had not yet indexed. Staged
    /// files that are not readable DICOM (cut short by a power failure) are moved
    /// to `quarantine/`. Returns the number of objects adopted.
    pub fn recover_incoming(&mut self) -> Result<usize> {
        let incoming = self.root.join("incoming");
        let Ok(dirs) = std::fs::read_dir(&incoming) else {
            return Ok(0);
        };
        let mut adopted = 0;
        for dir in dirs.flatten() {
            let dir = dir.path();
            if !dir.is_dir() {
                continue;
            }
            let lock_path = dir.join(".lock");
            let lock = std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&lock_path)
                .map_err(io_err(&lock_path))?;
            if lock.try_lock().is_err() {
                continue; // a live receiver owns it
            }
            let files: Vec<PathBuf> = std::fs::read_dir(&dir)
                .map_err(io_err(&dir))?
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "dcm"))
                .collect();
            let mut staged = Vec::new();
            for f in files {
                let read = dicom::read_header(&f)
                    .and_then(|h| file_crc(&f).map(|sc| (h, sc)).map_err(io_err(&f)));
                match read {
                    Ok((header, (size, crc))) => staged.push(Staged {
                        header,
                        size,
                        crc,
                        source: "recovered".into(),
                    }),
                    Err(e) => {
                        let q = self.root.join("quarantine");
                        let _ = std::fs::create_dir_all(&q);
                        let name = format!(
                            "{}-{}",
                            dir.file_name().unwrap_or_default().to_string_lossy(),
                            f.file_name().unwrap_or_default().to_string_lossy()
                        );
                        tracing::warn!(
                            "staged object {} is unreadable ({e}); moved to {}",
                            f.display(),
                            q.join(&name).display()
                        );
                        let _ = std::fs::rename(&f, q.join(name));
                    }
                }
            }
            for chunk in staged.chunks(128) {
                for (s, r) in chunk.iter().zip(self.adopt(chunk)) {
                    match r {
                        Ok(_) => adopted += 1,
                        Err(e) => tracing::warn!(
                            "staged object {} not recovered: {e}",
                            s.header.path.display()
                        ),
                    }
                }
            }
            let _ = std::fs::remove_file(&lock_path);
            let _ = std::fs::remove_dir(&dir);
        }
        if adopted > 0 {
            tracing::info!("recovered {adopted} staged object(s) into the cache");
        }
        Ok(adopted)
    }

    /// Adopt a group of staged objects (see [`ingest`]): fsync the staged files,
    /// hard-link each to its place under `objects/` (a new version when the SOP
    /// instance is cached with other bytes; skipped when identical), fsync those
    /// folders, index the group in one transaction, then drop the staged names.
    pub(crate) fn adopt(&mut self, group: &[Staged]) -> Vec<std::result::Result<Outcome, String>> {
        let mut results: Vec<std::result::Result<Outcome, String>> =
            vec![Err("not adopted".to_string()); group.len()];
        // 1. The staged bytes are durable.
        let synced = sync_files(group.iter().map(|s| s.header.path.as_path()));
        // 2. Place each under objects/, inside a write transaction so that versions
        //    are decided against everyone else's commits.
        let root = self.root.clone();
        let tx = match self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        {
            Ok(tx) => tx,
            Err(e) => return vec![Err(db_err(e).to_string()); group.len()],
        };
        let mut known: std::collections::HashMap<&str, Vec<(u32, u64, u32)>> =
            std::collections::HashMap::new();
        let mut placed: Vec<(usize, PathBuf, Outcome)> = Vec::new();
        let mut dirs = std::collections::BTreeSet::new();
        for (i, s) in group.iter().enumerate() {
            if let Err(e) = &synced[i] {
                results[i] = Err(e.clone());
                continue;
            }
            let sop = s.header.sop_instance_uid.as_str();
            let versions = match known.get_mut(sop) {
                Some(v) => v,
                None => match versions(&tx, sop) {
                    Ok(v) => known.entry(sop).or_insert(v),
                    Err(e) => {
                        results[i] = Err(e.to_string());
                        continue;
                    }
                },
            };
            if versions
                .iter()
                .any(|&(_, sz, c)| (sz, c) == (s.size, s.crc))
            {
                results[i] = Ok(Outcome::Duplicate);
                continue;
            }
            let mut version = versions.iter().map(|v| v.0).max().unwrap_or(0) + 1;
            let rel = loop {
                let rel = Self::object_path(&s.header, version);
                match place(&s.header.path, &root.join(&rel), (s.size, s.crc)) {
                    Ok(true) => break Ok(rel),
                    Ok(false) => version += 1, // another file holds that name
                    Err(e) => break Err(e),
                }
            };
            match rel {
                Ok(rel) => {
                    if let Some(d) = root.join(&rel).parent() {
                        dirs.insert(d.to_path_buf());
                    }
                    versions.push((version, s.size, s.crc));
                    let outcome = if version > 1 {
                        Outcome::NewVersion(version)
                    } else {
                        Outcome::Stored
                    };
                    placed.push((i, rel, outcome));
                }
                Err(e) => results[i] = Err(e),
            }
        }
        // 3. The names are durable, 4. then the rows.
        let dir_sync = sync_files(dirs.iter().map(PathBuf::as_path))
            .into_iter()
            .find_map(|r| r.err());
        let indexed = match dir_sync {
            Some(e) => Err(e),
            None => placed
                .iter()
                .try_for_each(|(i, rel, outcome)| {
                    let s = &group[*i];
                    index_instance(
                        &tx,
                        &s.header,
                        rel,
                        false,
                        (s.size, s.crc),
                        outcome.clone(),
                        &s.source,
                    )
                })
                .and_then(|()| tx.commit().map_err(db_err))
                .map_err(|e| e.to_string()),
        };
        match indexed {
            Ok(()) => {
                for (i, _, outcome) in placed {
                    results[i] = Ok(outcome);
                }
            }
            // Rolled back: the links stay as orphans and the staged files stay, so the
            // next recovery adopts them again.
            Err(e) => {
                for (i, _, _) in placed {
                    results[i] = Err(e.clone());
                }
            }
        }
        // 5. Staged names of what is now in the cache go.
        for (s, r) in group.iter().zip(&results) {
            if r.is_ok() {
                let _ = std::fs::remove_file(&s.header.path);
            }
        }
        results
    }

    /// The cache root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn migrate(&mut self) -> Result<()> {
        let version: i64 = self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(db_err)?;
        if version as usize > MIGRATIONS.len() {
            return Err(Error::Series(format!(
                "cache index schema version {version} is newer than this Lightbox knows ({})",
                MIGRATIONS.len()
            )));
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            let tx = self.conn.transaction().map_err(db_err)?;
            tx.execute_batch(sql).map_err(db_err)?;
            tx.execute_batch(&format!("PRAGMA user_version = {}", i + 1))
                .map_err(db_err)?;
            tx.commit().map_err(db_err)?;
        }
        Ok(())
    }

    /// Where an instance's file lives (relative to the root).
    fn object_path(h: &ImageHeader, version: u32) -> PathBuf {
        let name = if version <= 1 {
            format!("{}.dcm", uid_component(&h.sop_instance_uid))
        } else {
            format!("{}.v{version}.dcm", uid_component(&h.sop_instance_uid))
        };
        PathBuf::from("objects")
            .join(uid_component(&h.study_uid))
            .join(uid_component(&h.series_uid))
            .join(name)
    }

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
            let _ = std::fs::remove_dir_all(d);
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
        struct Plan {
            header: ImageHeader,
            bytes_crc: Option<(u64, u32)>,
            outcome: Outcome,
            rel: PathBuf,
        }
        let mut per_uid: std::collections::HashMap<String, usize> =
            std::collections::HashMap::new();
        for h in headers.iter() {
            *per_uid.entry(h.sop_instance_uid.clone()).or_default() += 1;
        }
        let mut fresh = Vec::new();
        let mut known = Vec::new();
        for h in headers {
            let existing = versions(&self.conn, &h.sop_instance_uid)?;
            if existing.is_empty() && per_uid.get(&h.sop_instance_uid) == Some(&1) {
                fresh.push(h);
            } else {
                known.push((h, existing));
            }
        }
        let rel_for = |h: &ImageHeader, version: u32| match mode {
            ImportMode::Copy => Self::object_path(h, version),
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
        let staged: Vec<StagedPlan> = std::thread::scope(|scope| {
            for _ in 0..SYNC_THREADS {
                scope.spawn(|| {
                    loop {
                        let next = match sync_rx.lock() {
                            Ok(rx) => rx.recv(),
                            Err(_) => return,
                        };
                        let Ok((i, path)) = next else { return };
                        let r = std::fs::File::open(&path)
                            .and_then(|f| f.sync_all())
                            .map_err(|e| format!("{}: cannot fsync: {e}", path.display()));
                        if let Ok(mut m) = sync_results.lock() {
                            m.insert(i, r);
                        }
                    }
                });
            }
            let staged = plans
                .into_par_iter()
                .enumerate()
                .map(|(i, mut p)| {
                    progress(done.fetch_add(1, Ordering::Relaxed) + 1, total);
                    let r = match mode {
                        ImportMode::Copy => stage_copy(&p.header.path, &root).map(|(t, v)| {
                            let _ = sync_tx.send((i, t.clone()));
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
                        Err(e) => Err((p.header.path.clone(), e.to_string())),
                    }
                })
                .collect();
            drop(sync_tx);
            staged
        });
        let mut sync_results = sync_results.into_inner().unwrap_or_default();
        let mut written: Vec<std::result::Result<Plan, Failure>> = Vec::with_capacity(staged.len());
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
                        .map_err(|e| format!("{}: cannot write: {e}", dst.display()))
                });
            match placed {
                Ok(()) => written.push(Ok(p)),
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
                return Err(Error::Write {
                    path: self.root.join("objects"),
                    reason: e,
                });
            }
        }
        // Files are durable: index them in one transaction.
        let tx = self.conn.transaction().map_err(db_err)?;
        let mut studies = std::collections::HashSet::new();
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
            studies.insert(p.header.study_uid.clone());
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
        tx.commit().map_err(db_err)?;
        report.studies = studies.len();
        report.series = series.len();
        Ok(())
    }

    /// Studies in the cache, most recent study date first.
    pub fn studies(&self) -> Result<Vec<StudyRow>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT st.study_uid, p.patient_id, p.name, st.date, st.description,
                        st.modalities, st.series_count, st.instances, st.bytes, st.pinned, r.state
                 FROM studies st JOIN patients p ON p.key = st.patient_key
                 LEFT JOIN retrievals r ON r.study_uid = st.study_uid
                 ORDER BY st.date DESC, st.study_uid",
            )
            .map_err(db_err)?;
        let rows = stmt
            .query_map([], |r| {
                Ok(StudyRow {
                    study_uid: r.get(0)?,
                    patient_id: r.get(1)?,
                    patient_name: r.get(2)?,
                    date: r.get(3)?,
                    description: r.get(4)?,
                    modalities: r.get::<_, Option<String>>(5)?.unwrap_or_default(),
                    series: r.get::<_, i64>(6)? as usize,
                    instances: r.get::<_, i64>(7)? as usize,
                    bytes: r.get::<_, i64>(8)? as u64,
                    pinned: r.get::<_, i64>(9)? != 0,
                    retrieval: r.get(10)?,
                })
            })
            .map_err(db_err)?
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(db_err)?;
        Ok(rows)
    }

    /// Series of a study, by series number.
    pub fn series_of(&self, study_uid: &str) -> Result<Vec<SeriesRow>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT se.series_uid, se.study_uid, se.number, se.modality, se.description, se.instances
                 FROM series se WHERE se.study_uid = ?1 ORDER BY se.number, se.series_uid",
            )
            .map_err(db_err)?;
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
        .map_err(db_err)?
        .collect::<std::result::Result<_, _>>()
        .map_err(db_err)
    }

    /// SOP Instance UIDs cached for a study.
    pub fn sop_uids_of_study(&self, study_uid: &str) -> Result<std::collections::HashSet<String>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT DISTINCT i.sop_uid FROM instances i JOIN series se ON i.series_uid = se.series_uid
                 WHERE se.study_uid = ?1",
            )
            .map_err(db_err)?;
        stmt.query_map(params![study_uid], |r| r.get(0))
            .map_err(db_err)?
            .collect::<std::result::Result<_, _>>()
            .map_err(db_err)
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
            .map_err(db_err)?;
        Ok(())
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
            .map_err(db_err)
    }

    /// Keep a measurement; returns its id.
    pub fn add_measurement(&self, m: &MeasurementRow) -> Result<i64> {
        let points = serde_json::to_string(&m.points).map_err(|e| Error::Series(e.to_string()))?;
        self.conn
            .execute(
                "INSERT INTO measurements (sop_uid, frame, kind, space, points, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![m.sop_uid, m.frame, m.kind, m.space, points, now()],
            )
            .map_err(db_err)?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Measurements on the given instances.
    pub fn measurements_of(&self, sop_uids: &[String]) -> Result<Vec<MeasurementRow>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT id, sop_uid, frame, kind, space, points FROM measurements
                 WHERE sop_uid = ?1 ORDER BY id",
            )
            .map_err(db_err)?;
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
                .map_err(db_err)?;
            for row in rows {
                let (id, sop_uid, frame, kind, space, points) = row.map_err(db_err)?;
                // A row whose points cannot be read is skipped, not fatal.
                if let Ok(points) = serde_json::from_str(&points) {
                    out.push(MeasurementRow {
                        id,
                        sop_uid,
                        frame,
                        kind,
                        space,
                        points,
                    });
                }
            }
        }
        Ok(out)
    }

    /// Delete a measurement.
    /// Move a measurement's points (an edit in the viewer); an error when the
    /// measurement no longer exists.
    pub fn update_measurement(&self, id: i64, points: &[[f64; 3]]) -> Result<()> {
        let json = serde_json::to_string(points).map_err(|e| Error::Series(e.to_string()))?;
        let n = self
            .conn
            .execute(
                "UPDATE measurements SET points = ?1 WHERE id = ?2",
                params![json, id],
            )
            .map_err(db_err)?;
        if n == 0 {
            return Err(Error::Series(format!(
                "measurement {id} is not in the cache"
            )));
        }
        Ok(())
    }

    pub fn delete_measurement(&self, id: i64) -> Result<()> {
        self.conn
            .execute("DELETE FROM measurements WHERE id = ?1", params![id])
            .map_err(db_err)?;
        Ok(())
    }

    /// Instances of a series (latest version of each), by instance number.
    pub fn instances_of(&self, series_uid: &str) -> Result<Vec<InstanceRow>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT sop_uid, series_uid, instance_number, max(version), transfer_syntax, size, path, linked
                 FROM instances WHERE series_uid = ?1 GROUP BY sop_uid ORDER BY instance_number, sop_uid",
            )
            .map_err(db_err)?;
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
        .map_err(db_err)?
        .collect::<std::result::Result<_, _>>()
        .map_err(db_err)
    }

    /// Totals: patients, studies, series, instances, bytes of copied files, pins.
    pub fn stats(&self) -> Result<Stats> {
        let count = |sql: &str| -> Result<i64> {
            self.conn.query_row(sql, [], |r| r.get(0)).map_err(db_err)
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

    fn require_study(&self, study_uid: &str) -> Result<()> {
        let n: i64 = self
            .conn
            .query_row(
                "SELECT count(*) FROM studies WHERE study_uid = ?1",
                params![study_uid],
                |r| r.get(0),
            )
            .map_err(db_err)?;
        if n == 0 {
            return Err(Error::Usage(format!("no study {study_uid} in the cache")));
        }
        Ok(())
    }

    /// Pin (or unpin) a study: pinned studies are never evicted.
    pub fn set_pinned(&self, study_uid: &str, pinned: bool) -> Result<()> {
        self.require_study(study_uid)?;
        self.conn
            .execute(
                "UPDATE studies SET pinned = ?2 WHERE study_uid = ?1",
                params![study_uid, pinned as i64],
            )
            .map_err(db_err)?;
        Ok(())
    }

    /// Record that a study was opened now (eviction removes the least recently opened).
    pub fn touch(&self, study_uid: &str) -> Result<()> {
        self.conn
            .execute(
                "UPDATE studies SET last_access = ?2 WHERE study_uid = ?1",
                params![study_uid, now()],
            )
            .map_err(db_err)?;
        Ok(())
    }

    /// Remove a whole study: its rows first (one transaction), then its copied files,
    /// so a crash in between leaves unindexed files (reported by `verify`), never rows
    /// without files. Linked files are left where they are. Returns the files removed.
    pub fn remove_study(&mut self, study_uid: &str) -> Result<usize> {
        self.require_study(study_uid)?;
        let tx = self.conn.transaction().map_err(db_err)?;
        let paths: Vec<String> = {
            let mut stmt = tx
                .prepare(
                    "SELECT i.path FROM instances i JOIN series se ON i.series_uid = se.series_uid
                     WHERE se.study_uid = ?1 AND i.linked = 0",
                )
                .map_err(db_err)?;
            stmt.query_map(params![study_uid], |r| r.get(0))
                .map_err(db_err)?
                .collect::<std::result::Result<_, _>>()
                .map_err(db_err)?
        };
        tx.execute(
            "DELETE FROM measurements WHERE sop_uid IN (SELECT i.sop_uid FROM instances i
             JOIN series se ON i.series_uid = se.series_uid WHERE se.study_uid = ?1)",
            params![study_uid],
        )
        .map_err(db_err)?;
        tx.execute(
            "DELETE FROM instances WHERE series_uid IN (SELECT series_uid FROM series WHERE study_uid = ?1)",
            params![study_uid],
        )
        .map_err(db_err)?;
        tx.execute(
            "DELETE FROM series WHERE study_uid = ?1",
            params![study_uid],
        )
        .map_err(db_err)?;
        tx.execute(
            "DELETE FROM studies WHERE study_uid = ?1",
            params![study_uid],
        )
        .map_err(db_err)?;
        tx.execute(
            "DELETE FROM retrievals WHERE study_uid = ?1",
            params![study_uid],
        )
        .map_err(db_err)?;
        tx.execute(
            "DELETE FROM patients WHERE key NOT IN (SELECT patient_key FROM studies)",
            [],
        )
        .map_err(db_err)?;
        tx.commit().map_err(db_err)?;
        let mut removed = 0;
        for p in &paths {
            let full = self.root.join(p);
            if std::fs::remove_file(&full).is_ok() {
                removed += 1;
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
                .map_err(db_err)?;
            let Some(uid) = next else { break };
            self.remove_study(&uid)?;
            removed.push(uid);
        }
        Ok(removed)
    }

    /// Check every indexed file (present, same size and CRC-32) and look for files no
    /// row names.
    pub fn verify(&self) -> Result<VerifyReport> {
        let mut stmt = self
            .conn
            .prepare("SELECT sop_uid, version, path, linked, size, crc32 FROM instances")
            .map_err(db_err)?;
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
            .map_err(db_err)?
            .collect::<std::result::Result<_, _>>()
            .map_err(db_err)?;
        let mut report = VerifyReport {
            checked: rows.len(),
            ..Default::default()
        };
        let known: std::collections::HashSet<PathBuf> = rows
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
        Ok(report)
    }

    /// Recreate the index from the files under `objects/` alone (linked files are
    /// dropped: re-import them). Returns the number of instances indexed.
    pub fn rebuild(&mut self) -> Result<usize> {
        let objects = self.root.join("objects");
        let files = scan::list_files(&objects).map_err(io_err(&objects))?;
        let s = scan::scan_files(&files);
        let with_crc: Vec<(ImageHeader, u64, u32)> = s
            .headers
            .into_par_iter()
            .filter_map(|h| file_crc(&h.path).ok().map(|(size, crc)| (h, size, crc)))
            .collect();
        let root = self.root.clone();
        let tx = self.conn.transaction().map_err(db_err)?;
        tx.execute_batch(
            "DELETE FROM instances; DELETE FROM series; DELETE FROM studies; DELETE FROM patients;",
        )
        .map_err(db_err)?;
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
        tx.commit().map_err(db_err)?;
        Ok(n)
    }
}

fn version_from_name(rel: &Path) -> u32 {
    rel.file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_suffix(".dcm"))
        .and_then(|n| n.rsplit_once(".v"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(1)
}

/// Largest expansion accepted from a zip archive (a zip bomb stops here).
const MAX_ZIP_RATIO: u64 = 200;
const MAX_ZIP_BYTES: u64 = 32 << 30;
const MAX_ZIP_ENTRIES: usize = 200_000;

fn is_zip(path: &Path) -> bool {
    use std::io::Read;
    let mut magic = [0u8; 4];
    path.is_file()
        && std::fs::File::open(path)
            .and_then(|mut f| f.read_exact(&mut magic))
            .is_ok()
        && magic == *b"PK\x03\x04"
}

static UNZIP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Unpack a zip archive into a fresh folder under `tmp`, refusing entries that would
/// leave it and stopping at MAX_ZIP_RATIO × the archive's size (zip bombs).
fn unzip(archive: &Path, tmp: &Path) -> std::result::Result<PathBuf, String> {
    use std::io::Read;
    let file = std::fs::File::open(archive).map_err(|e| format!("cannot open: {e}"))?;
    let archive_len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let budget = (archive_len.saturating_mul(MAX_ZIP_RATIO)).clamp(1 << 20, MAX_ZIP_BYTES);
    let mut zip =
        zip::ZipArchive::new(file).map_err(|e| format!("not a readable zip archive: {e}"))?;
    if zip.len() > MAX_ZIP_ENTRIES {
        return Err(format!(
            "{} entries: more than the {MAX_ZIP_ENTRIES} accepted",
            zip.len()
        ));
    }
    let dir = tmp.join(format!(
        "zip-{}-{}",
        std::process::id(),
        UNZIP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let mut used = 0u64;
    let fail = |dir: &Path, msg: String| {
        let _ = std::fs::remove_dir_all(dir);
        Err(msg)
    };
    for i in 0..zip.len() {
        let mut entry = match zip.by_index(i) {
            Ok(e) => e,
            Err(e) => return fail(&dir, format!("entry {i}: {e}")),
        };
        if entry.is_dir() {
            continue;
        }
        let Some(name) = entry.enclosed_name() else {
            return fail(
                &dir,
                format!(
                    "entry {:?} would be written outside the archive folder",
                    entry.name()
                ),
            );
        };
        let dst = dir.join(name);
        if let Some(parent) = dst.parent()
            && let Err(e) = std::fs::create_dir_all(parent)
        {
            return fail(&dir, format!("cannot create {}: {e}", parent.display()));
        }
        let mut out = match std::fs::File::create(&dst) {
            Ok(f) => f,
            Err(e) => return fail(&dir, format!("cannot create {}: {e}", dst.display())),
        };
        let left = budget - used;
        let copied = match std::io::copy(&mut (&mut entry).take(left + 1), &mut out) {
            Ok(n) => n,
            Err(e) => return fail(&dir, format!("entry {:?}: {e}", entry.name())),
        };
        used += copied;
        if used > budget {
            return fail(
                &dir,
                format!(
                    "expands past {} MiB ({MAX_ZIP_RATIO}× its size): refused as a possible zip bomb",
                    budget >> 20
                ),
            );
        }
    }
    Ok(dir)
}

/// Cached versions of a SOP instance: (version, size, CRC-32), oldest first (on
/// the connection or inside a transaction).
fn versions(conn: &Connection, sop_uid: &str) -> Result<Vec<(u32, u64, u32)>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT version, size, crc32 FROM instances WHERE sop_uid = ?1 ORDER BY version",
        )
        .map_err(db_err)?;
    stmt.query_map(params![sop_uid], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .map_err(db_err)?
        .collect::<std::result::Result<_, _>>()
        .map_err(db_err)
}

/// fsync files or folders, several at once (the file system merges the journal
/// commits of concurrent fsyncs). One result per path, in order.
fn sync_files<'a>(paths: impl Iterator<Item = &'a Path>) -> Vec<std::result::Result<(), String>> {
    let paths: Vec<&Path> = paths.collect();
    if paths.is_empty() {
        return Vec::new();
    }
    let sync = |p: &Path| {
        std::fs::File::open(p)
            .and_then(|f| f.sync_all())
            .map_err(|e| format!("{}: cannot fsync: {e}", p.display()))
    };
    let per = paths.len().div_ceil(SYNC_THREADS).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = paths
            .chunks(per)
            .map(|c| scope.spawn(move || c.iter().map(|p| sync(p)).collect::<Vec<_>>()))
            .collect();
        handles
            .into_iter()
            .zip(paths.chunks(per))
            .flat_map(|(h, c)| {
                h.join().unwrap_or_else(|_| {
                    c.iter()
                        .map(|p| Err(format!("{}: fsync thread failed", p.display())))
                        .collect()
                })
            })
            .collect()
    })
}

/// Put a staged file at `dst`: a hard link (same file system, no copy), else a
/// durable copy. `Ok(false)`: `dst` already holds other bytes (try another name);
/// `Ok(true)` also when it holds these very bytes (left by an interrupted adopt).
fn place(staged: &Path, dst: &Path, (size, crc): (u64, u32)) -> std::result::Result<bool, String> {
    if let Some(d) = dst.parent() {
        std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
    }
    match std::fs::hard_link(staged, dst) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            Ok(file_crc(dst).is_ok_and(|v| v == (size, crc)))
        }
        Err(_) => {
            // No hard links here (another file system, FAT): copy, fsync, rename.
            let bytes = std::fs::read(staged).map_err(|e| format!("{}: {e}", staged.display()))?;
            let tmp = dst.with_extension("part");
            let write = || -> std::io::Result<()> {
                use std::io::Write;
                let mut f = std::fs::File::create(&tmp)?;
                f.write_all(&bytes)?;
                f.sync_all()?;
                std::fs::rename(&tmp, dst)
            };
            write().map_err(|e| {
                let _ = std::fs::remove_file(&tmp);
                format!("{}: cannot write: {e}", dst.display())
            })?;
            Ok(true)
        }
    }
}

/// Size and CRC-32 of a file.
fn file_crc(path: &Path) -> std::io::Result<(u64, u32)> {
    let bytes = std::fs::read(path)?;
    Ok((bytes.len() as u64, crc32fast::hash(&bytes)))
}

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Copy `src` into a new file under `root/tmp` (not yet fsynced). Returns its path,
/// size and CRC-32.
fn stage_copy(src: &Path, root: &Path) -> Result<(PathBuf, (u64, u32))> {
    let bytes = std::fs::read(src).map_err(io_err(src))?;
    let tmp = root.join("tmp").join(format!(
        "{}-{}.part",
        std::process::id(),
        TMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::write(&tmp, &bytes).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::Write {
            path: tmp.clone(),
            reason: e.to_string(),
        }
    })?;
    Ok((tmp, (bytes.len() as u64, crc32fast::hash(&bytes))))
}

#[allow(clippy::too_many_arguments)]
fn index_instance(
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
    .map_err(db_err)?;
    let key: i64 = tx
        .query_row(
            "SELECT key FROM patients WHERE patient_id = ?1 AND name = ?2",
            params![pid, pname],
            |r| r.get(0),
        )
        .map_err(db_err)?;
    tx.execute(
        "INSERT INTO studies (study_uid, patient_key, date, time, description, accession, referring_physician, last_access)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (study_uid) DO NOTHING",
        params![h.study_uid, key, h.study_date, h.study_time, h.study_description, h.accession_number, h.referring_physician, now()],
    )
    .map_err(db_err)?;
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
    .map_err(db_err)?;
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
        .map_err(db_err)?;
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
        .map_err(db_err)?;
    }
    Ok(())
}
