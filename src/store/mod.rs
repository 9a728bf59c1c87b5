//! The local study cache: one file per SOP instance under `objects/`, indexed in
//! SQLite (`index.sqlite`, WAL, versioned schema).
//!
//! Nothing is lost and nothing is half-indexed: an imported file is written to
//! `tmp/`, fsynced and renamed into place (and its folder fsynced) before the
//! transaction that indexes it begins; a received one goes through a staging folder
//! under `incoming/` and is adopted in groups by [`ingest`] under the same rule. A
//! crash in between leaves an orphan file, which `verify` reports and `rebuild` (or
//! re-importing) indexes, or a staged file, which the next open adopts — never an
//! index row without its file. Paths come from UIDs only when they are valid UIDs
//! (digits and dots, at most 64 characters); anything else is replaced by a hash, so
//! a crafted UID cannot leave the cache root.
//!
//! This module holds [`Store`] (opening a cache) and the helpers its parts share;
//! each part is one concern, and its items are re-exported here:
//! - `schema`: the SQLite schema and its versioned migrations;
//! - `rows`: the typed rows listings return ([`StudyRow`], [`RetrievalState`], …);
//! - `import` (files, folders, DICOMDIR) and `zip` (archives, with limits);
//! - `files`: where objects live and how they are made durable;
//! - `queries`: studies, series, instances, retrievals, totals;
//! - `measurements`: measurement rows;
//! - `sent`: what each node acknowledged (so `send` resends nothing);
//! - `adopt`: staged objects (from [`ingest`], or left by a dead receiver) into
//!   the cache;
//! - `maintenance`: verify, rebuild, evict, pin, remove;
//! - [`ingest`]: receiving objects from the network at speed.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::Connection;

use crate::error::{Error, Result};

mod adopt;
mod files;
mod import;
pub mod ingest;
mod maintenance;
mod measurements;
mod queries;
mod repair;
mod rows;
mod schema;
mod sent;
mod temporaries;
mod zip;

pub(crate) use adopt::Staged;
pub use files::{default_root, uid_component};
pub use import::{ImportMode, ImportReport, Outcome};
pub use ingest::{Durability, Ingest, Receipt, Receiving};
pub use maintenance::{RepairReport, VerifyReport};
pub use repair::Salvage;
pub use rows::{
    ExpectedInstance, InstanceRow, MeasurementRow, Retrieval, RetrievalSeries, RetrievalState,
    SeriesRow, Stats, StudyRow,
};
pub use sent::SentRecord;
pub(crate) use zip::{remove_unpacked, unzip};

/// An open cache.
#[derive(Debug)]
pub struct Store {
    root: PathBuf,
    conn: Connection,
}

impl Store {
    /// Open (creating if needed) the cache at `root` and bring its schema up to date.
    /// Temporary files that a dead writer left in `tmp/` are removed, and objects
    /// that a dead receiver left staged are adopted (see
    /// [`Store::recover_incoming`]); if that fails the cache still opens, with a
    /// warning, and the next open tries again.
    ///
    /// A cache folder that cannot be written is [`Error::CacheReadOnly`]; an index
    /// that SQLite finds malformed (checked with `PRAGMA quick_check` the first
    /// time a process opens it) is [`Error::IndexDamaged`], and nothing is written
    /// to it; a newer schema is [`Error::Unsupported`].
    pub fn open(root: &Path) -> Result<Store> {
        for d in [root.join("objects"), root.join("tmp")] {
            std::fs::create_dir_all(&d).map_err(|e| writable_err(root, &d, e))?;
        }
        probe_writable(root)?;
        let index = root.join("index.sqlite");
        let damaged = |e: Error| damaged_index(&index, e);
        let conn = Connection::open(&index)
            .during("opening the index")
            .map_err(damaged)?;
        if conn.is_readonly(rusqlite::MAIN_DB).unwrap_or(false) {
            return Err(Error::CacheReadOnly {
                path: root.to_path_buf(),
                reason: format!("{} can only be read", index.display()),
            });
        }
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .during("setting the busy timeout")?;
        conn.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;",
        )
        .during("setting the journal mode")
        .map_err(damaged)?;
        let mut store = Store {
            root: root.to_path_buf(),
            conn,
        };
        store.check_once().map_err(damaged)?;
        store.migrate().map_err(damaged)?;
        store.sweep_temporaries();
        if let Err(e) = store.recover_incoming() {
            tracing::warn!("{}: staged objects not recovered: {e}", root.display());
        }
        Ok(store)
    }

    /// The cache root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The index file (named in errors about its contents).
    fn index_path(&self) -> PathBuf {
        self.root.join("index.sqlite")
    }
}

/// Whether a SQLite error says the database file itself is bad.
pub(crate) fn is_damage(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase)
    )
}

/// Whether an I/O error is a full file system.
pub fn is_full_io(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::StorageFull || e.raw_os_error() == Some(28)
}

/// [`Error::CacheFull`] (naming the cache at `root`) for an index error that says
/// the disk is full; any other error as it was.
pub fn full_or(root: &Path, e: Error) -> Error {
    match e {
        Error::Index { context, source }
            if source.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull) =>
        {
            Error::CacheFull {
                path: root.to_path_buf(),
                what: context,
            }
        }
        other => other,
    }
}

/// [`Error::IndexDamaged`] for an index error that says the file is bad; any
/// other error as it was.
fn damaged_index(index: &Path, e: Error) -> Error {
    let root = index.parent().unwrap_or(index);
    let e = full_or(root, e);
    match e {
        Error::Index { context, source } if is_damage(&source) => Error::IndexDamaged {
            path: index.to_path_buf(),
            reason: format!("{source}, {context}"),
        },
        other => other,
    }
}

/// An error creating something under the cache: [`Error::CacheReadOnly`] when the
/// file system or the folder refuses writing.
fn writable_err(root: &Path, path: &Path, e: std::io::Error) -> Error {
    if is_full_io(&e) {
        return Error::CacheFull {
            path: root.to_path_buf(),
            what: format!("opening the cache ({})", path.display()),
        };
    }
    let read_only = e.kind() == std::io::ErrorKind::PermissionDenied
        || e.kind() == std::io::ErrorKind::ReadOnlyFilesystem;
    if read_only {
        Error::CacheReadOnly {
            path: root.to_path_buf(),
            reason: e.to_string(),
        }
    } else {
        Error::Io {
            path: path.to_path_buf(),
            source: e,
        }
    }
}

/// Check that the cache folder can be written before SQLite is asked to (it would
/// open a read-only file read-only and fail later with a less helpful message).
fn probe_writable(root: &Path) -> Result<()> {
    let probe = root
        .join("tmp")
        .join(format!("{}-open.probe", std::process::id()));
    std::fs::write(&probe, b"").map_err(|e| writable_err(root, &probe, e))?;
    let _ = std::fs::remove_file(&probe);
    // The index itself is not opened here: closing any descriptor of it drops
    // every POSIX lock this process holds on it, SQLite's included — another
    // process closing its last connection would then checkpoint and delete the
    // WAL under this one's open connections (their commits unseen by anyone
    // until they close, and lost in a crash). SQLite says whether it opened the
    // index read-only (see `Store::open`).
    Ok(())
}

/// A SQLite result, turned into [`Error::Index`] naming what was being done.
pub(crate) trait IndexResult<T> {
    /// `context` says what was being done, e.g. "listing studies".
    fn during(self, context: &str) -> Result<T>;
}

impl<T> IndexResult<T> for rusqlite::Result<T> {
    fn during(self, context: &str) -> Result<T> {
        self.map_err(|source| index_error(context, source))
    }
}

/// [`Error::Index`]: what was being done, and SQLite's error.
fn index_error(context: &str, source: rusqlite::Error) -> Error {
    Error::Index {
        context: context.to_string(),
        source,
    }
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Seconds since the Unix epoch (0 if the clock is before it).
fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
