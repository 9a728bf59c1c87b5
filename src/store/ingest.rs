//! Receiving objects into the cache at network speed without giving up its rules.
//!
//! A network receiver (the Storage SCP, C-MOVE and C-GET) streams each object into
//! its own staging folder `incoming/<pid>-<n>/` — never holding an object in memory —
//! and hands it to one writer thread per [`Ingest`]. The writer adopts staged files
//! into the cache in groups: it fsyncs them (in parallel, so the file system merges
//! the journal commits), hard-links each to its place under `objects/`, fsyncs those
//! folders, commits the index rows in one transaction, and only then removes the
//! staged names. An index row therefore never exists without its durable file.
//!
//! When the sender is told "stored" depends on [`Durability`]:
//! - [`Durability::Batched`] (default): once the object is written to its staging
//!   file (it survives a crash of Lightbox itself; the group fsync follows within
//!   milliseconds). The association's A-RELEASE is answered only after everything
//!   it sent is durable and indexed.
//! - [`Durability::Strict`]: only after the object's group is durable and indexed.
//!
//! The staging folder is locked (`flock`) while its `Ingest` lives. Opening the cache
//! adopts what a dead process left in unlocked staging folders — files it had
//! acknowledged but not yet indexed — so a `SIGKILL` loses nothing.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use serde::{Deserialize, Serialize};

use super::{Outcome, Staged, Store, io_err};
use crate::dicom;
use crate::error::{Error, Result};

/// When a received object is acknowledged (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Durability {
    /// Acknowledge once written; group fsync follows; A-RELEASE waits for it.
    #[default]
    Batched,
    /// Acknowledge only once fsynced and indexed.
    Strict,
}

impl std::str::FromStr for Durability {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "batched" => Ok(Durability::Batched),
            "strict" => Ok(Durability::Strict),
            _ => Err(format!("durability must be batched or strict, not {s:?}")),
        }
    }
}

/// Objects adopted per group at most (a group also ends when the queue is empty).
const MAX_GROUP: usize = 128;
/// Staged objects waiting for the writer before receivers block (back-pressure).
const QUEUE: usize = 256;

/// What happened to one received object.
#[derive(Debug, Clone)]
pub struct Receipt {
    pub sop_instance_uid: String,
    pub sop_class_uid: String,
    pub study_uid: String,
    pub series_uid: String,
    /// Its patient (Patient ID, name), for the audit trail.
    pub patient_id: Option<String>,
    pub patient_name: Option<String>,
    /// Known only in [`Durability::Strict`] mode (batched: `None`).
    pub outcome: Option<Outcome>,
}

enum Msg {
    Object(
        Box<Staged>,
        Option<SyncSender<std::result::Result<Outcome, String>>>,
    ),
    Flush(SyncSender<std::result::Result<(), String>>),
}

/// Counters of an ingest.
#[derive(Debug, Default)]
pub struct IngestStats {
    /// Objects durable and indexed (new instances and new versions).
    pub stored: AtomicU64,
    /// Objects that were already in the cache, byte for byte.
    pub duplicates: AtomicU64,
    /// Objects that could not be adopted (they stay staged for the next start).
    pub failed: AtomicU64,
}

/// A writer that adopts staged objects into one cache (see the module docs).
pub struct Ingest {
    root: PathBuf,
    dir: PathBuf,
    durability: Durability,
    tx: Option<SyncSender<Msg>>,
    writer: Option<JoinHandle<()>>,
    counter: AtomicU64,
    stats: Arc<IngestStats>,
    _lock: File,
}

impl std::fmt::Debug for Ingest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ingest")
            .field("dir", &self.dir)
            .field("durability", &self.durability)
            .finish()
    }
}

static INGEST_COUNTER: AtomicU64 = AtomicU64::new(0);

impl Ingest {
    /// Start an ingest on the cache at `root` (opened, and migrated, by the writer).
    pub fn start(root: &Path, durability: Durability) -> Result<Ingest> {
        // Open once here so that schema errors and stale staging folders are dealt
        // with before anything is acknowledged.
        let store = Store::open(root)?;
        let (dir, lock) = staging_folder(root)?;
        let (tx, rx) = sync_channel(QUEUE);
        let stats = Arc::new(IngestStats::default());
        let errors = Arc::new(Mutex::new(Vec::new()));
        let writer = {
            let stats = Arc::clone(&stats);
            let errors = Arc::clone(&errors);
            std::thread::Builder::new()
                .name("ingest-writer".into())
                .spawn(move || writer_loop(store, rx, &stats, &errors))
                .map_err(|e| Error::Write {
                    path: dir.clone(),
                    reason: format!("cannot start the cache writer: {e}"),
                })?
        };
        Ok(Ingest {
            root: root.to_path_buf(),
            dir,
            durability,
            tx: Some(tx),
            writer: Some(writer),
            counter: AtomicU64::new(0),
            stats,
            _lock: lock,
        })
    }

    /// The cache root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn durability(&self) -> Durability {
        self.durability
    }

    pub fn stats(&self) -> &IngestStats {
        &self.stats
    }

    /// Begin receiving one object: a staging file that starts with `prefix` (the
    /// preamble and file meta group) and takes the data set as it arrives. It is
    /// named `N.part` while it arrives and `N.dcm` once complete, so that what a
    /// killed receiver was still writing (never acknowledged) is told apart from
    /// what it had acknowledged.
    pub fn begin(&self, prefix: &[u8]) -> Result<Receiving<'_>> {
        let path = self.dir.join(format!(
            "{}.part",
            self.counter.fetch_add(1, Ordering::Relaxed)
        ));
        let file = File::create(&path).map_err(|e| Error::Write {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        let mut r = Receiving {
            ingest: self,
            file: Some(std::io::BufWriter::with_capacity(64 * 1024, file)),
            path,
            size: 0,
            crc: crc32fast::Hasher::new(),
        };
        r.write(prefix)?;
        Ok(r)
    }

    fn send(&self, msg: Msg) -> Result<()> {
        self.tx
            .as_ref()
            .ok_or_else(|| writer_stopped(&self.dir))?
            .send(msg)
            .map_err(|_| writer_stopped(&self.dir))
    }

    /// Wait until everything handed over so far is durable and indexed. Reports the
    /// objects that could not be adopted since the previous flush.
    pub fn flush(&self) -> Result<()> {
        let (tx, rx) = sync_channel(1);
        self.send(Msg::Flush(tx))?;
        match rx.recv() {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(Error::Write {
                path: self.dir.clone(),
                reason: e,
            }),
            Err(_) => Err(writer_stopped(&self.dir)),
        }
    }
}

/// Make this ingest's staging folder `incoming/<pid>-<n>/`, already locked when it
/// appears under that name: it is made as `incoming/.new-<pid>-<n>/`, its `.lock`
/// taken, and only then renamed. A recovery running at the same moment (another
/// thread or process opening the cache) therefore never finds it unlocked and
/// empty and removes it under the receiver (seen in CI: a C-GET's first object
/// failed with "cannot write: No such file or directory").
fn staging_folder(root: &Path) -> Result<(PathBuf, File)> {
    let incoming = root.join("incoming");
    let name = format!(
        "{}-{}",
        std::process::id(),
        INGEST_COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    let fresh = incoming.join(format!(".new-{name}"));
    std::fs::create_dir_all(&fresh).map_err(io_err(&fresh))?;
    let lock_path = fresh.join(".lock");
    let lock = File::create(&lock_path).map_err(io_err(&lock_path))?;
    lock.try_lock().map_err(|e| Error::Write {
        path: lock_path.clone(),
        reason: format!("cannot lock the staging folder: {e}"),
    })?;
    let dir = incoming.join(name);
    std::fs::rename(&fresh, &dir).map_err(io_err(&dir))?;
    Ok((dir, lock))
}

/// The writer thread is gone (it panicked, or the ingest is shutting down): what is
/// staged under `dir` stays there for the next open of the cache.
fn writer_stopped(dir: &Path) -> Error {
    Error::Write {
        path: dir.to_path_buf(),
        reason: "the cache writer has stopped; received objects stay staged".into(),
    }
}

impl Drop for Ingest {
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(w) = self.writer.take()
            && w.join().is_err()
        {
            tracing::error!(
                "{}: the cache writer panicked; objects it had not adopted stay staged",
                self.dir.display()
            );
        }
        // Empty (everything adopted): remove the staging folder. Otherwise it stays,
        // and the next open of the cache adopts what is left.
        let _ = std::fs::remove_file(self.dir.join(".lock"));
        if std::fs::remove_dir(&self.dir).is_err() {
            tracing::warn!(
                "{}: objects left staged; they are adopted when the cache is next opened",
                self.dir.display()
            );
        }
    }
}

/// One object being received into its staging file.
#[derive(Debug)]
pub struct Receiving<'a> {
    ingest: &'a Ingest,
    file: Option<std::io::BufWriter<File>>,
    path: PathBuf,
    size: u64,
    crc: crc32fast::Hasher,
}

impl Receiving<'_> {
    /// Append received bytes.
    pub fn write(&mut self, bytes: &[u8]) -> Result<()> {
        let Some(f) = self.file.as_mut() else {
            return Err(Error::Usage("object already finished".into()));
        };
        f.write_all(bytes).map_err(|e| Error::Write {
            path: self.path.clone(),
            reason: e.to_string(),
        })?;
        self.size += bytes.len() as u64;
        self.crc.update(bytes);
        Ok(())
    }

    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        self.size
    }

    pub fn is_empty(&self) -> bool {
        self.size == 0
    }

    /// The object is complete: check it is a readable DICOM object, then hand it to
    /// the writer (and, in strict mode, wait until it is durable and indexed).
    /// `source` is recorded in the index ("c-store", "c-move", "c-get").
    pub fn finish(mut self, source: &str) -> Result<Receipt> {
        let file = self.file.take();
        let closed = match file {
            Some(f) => f.into_inner().map_err(|e| e.into_error()).map(drop),
            None => Ok(()),
        };
        closed.map_err(|e| Error::Write {
            path: self.path.clone(),
            reason: e.to_string(),
        })?;
        // Complete: from here on it is an object the next open adopts.
        let done = self.path.with_extension("dcm");
        std::fs::rename(&self.path, &done).map_err(|e| Error::Write {
            path: self.path.clone(),
            reason: e.to_string(),
        })?;
        self.path = done;
        // Header only: the pixel data is not decoded here.
        let mut header = dicom::read_header(&self.path)?;
        header.path = self.path.clone();
        let receipt = Receipt {
            sop_instance_uid: header.sop_instance_uid.clone(),
            sop_class_uid: header.sop_class_uid.clone(),
            study_uid: header.study_uid.clone(),
            series_uid: header.series_uid.clone(),
            patient_id: header.patient_id.clone(),
            patient_name: header.patient_name.clone(),
            outcome: None,
        };
        let staged = Staged {
            header,
            size: self.size,
            crc: std::mem::take(&mut self.crc).finalize(),
            source: source.to_string(),
        };
        // From here the staging file belongs to the writer.
        let path = std::mem::take(&mut self.path);
        match self.ingest.durability {
            Durability::Batched => {
                self.ingest.send(Msg::Object(Box::new(staged), None))?;
                Ok(receipt)
            }
            Durability::Strict => {
                let (tx, rx) = sync_channel(1);
                self.ingest.send(Msg::Object(Box::new(staged), Some(tx)))?;
                match rx.recv() {
                    Ok(Ok(outcome)) => Ok(Receipt {
                        outcome: Some(outcome),
                        ..receipt
                    }),
                    Ok(Err(reason)) => Err(Error::Write { path, reason }),
                    Err(_) => Err(writer_stopped(&path)),
                }
            }
        }
    }
}

impl Drop for Receiving<'_> {
    fn drop(&mut self) {
        // Not finished (the peer aborted, the object was too large, the bytes were
        // not DICOM): nothing of it stays.
        if !self.path.as_os_str().is_empty() {
            drop(self.file.take());
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

fn writer_loop(
    mut store: Store,
    rx: Receiver<Msg>,
    stats: &IngestStats,
    errors: &Mutex<Vec<String>>,
) {
    while let Ok(first) = rx.recv() {
        let mut group = Vec::new();
        let mut waiters = Vec::new();
        let mut flush = None;
        let mut next = Some(first);
        while let Some(m) = next.take() {
            match m {
                Msg::Object(s, w) => {
                    group.push(*s);
                    waiters.push(w);
                }
                Msg::Flush(f) => {
                    flush = Some(f);
                    break;
                }
            }
            if group.len() < MAX_GROUP {
                next = rx.try_recv().ok();
            }
        }
        if !group.is_empty() {
            let results = store.adopt(&group);
            for ((r, w), s) in results.into_iter().zip(waiters).zip(&group) {
                match &r {
                    Ok(Outcome::Duplicate) => stats.duplicates.fetch_add(1, Ordering::Relaxed),
                    Ok(_) => stats.stored.fetch_add(1, Ordering::Relaxed),
                    Err(e) => {
                        tracing::error!(
                            "cannot adopt {} into the cache: {e}",
                            s.header.path.display()
                        );
                        errors
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .push(format!("{}: {e}", s.header.sop_instance_uid));
                        stats.failed.fetch_add(1, Ordering::Relaxed)
                    }
                };
                if let Some(w) = w {
                    let _ = w.send(r);
                }
            }
        }
        if let Some(f) = flush {
            // Taken even from a poisoned lock: a flush must not report success
            // over failures it could not read.
            let errs = std::mem::take(&mut *errors.lock().unwrap_or_else(PoisonError::into_inner));
            let _ = f.send(if errs.is_empty() {
                Ok(())
            } else {
                Err(format!(
                    "{} object(s) not adopted into the cache (left staged): {}",
                    errs.len(),
                    errs.join("; ")
                ))
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;

    /// Another thread recovering staging folders while receivers start (the
    /// viewer's arriving watch opens the cache while its own C-GET begins) never
    /// removes a live receiver's folder from under it.
    #[test]
    fn a_recovery_never_takes_a_staging_folder_being_made() {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().to_path_buf();
        drop(Store::open(&root).expect("cache"));
        let stop = Arc::new(AtomicBool::new(false));
        let recoverer = {
            let (root, stop) = (root.clone(), Arc::clone(&stop));
            std::thread::Builder::new()
                .name("test-recoverer".into())
                .spawn(move || {
                    let mut store = Store::open(&root).expect("cache");
                    let mut rounds = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        store.recover_incoming().expect("recovery");
                        rounds += 1;
                    }
                    rounds
                })
                .expect("spawn the recoverer")
        };
        let mut failures = Vec::new();
        for _ in 0..200 {
            let made = Ingest::start(&root, Durability::Batched)
                .and_then(|ingest| ingest.begin(b"DICM").map(drop));
            if let Err(e) = made {
                failures.push(e.to_string());
            }
        }
        stop.store(true, Ordering::Relaxed);
        let rounds = recoverer.join().expect("recoverer");
        assert!(rounds > 0, "the recovery never ran");
        assert!(
            failures.is_empty(),
            "{} of 200 receivers lost their staging folder: {:?}",
            failures.len(),
            failures.first()
        );
        let left: Vec<_> = std::fs::read_dir(root.join("incoming"))
            .expect("incoming")
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert!(left.is_empty(), "staging folders left behind: {left:?}");
    }
}
