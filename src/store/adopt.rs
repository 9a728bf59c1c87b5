//! Adopting staged objects into the cache: the groups the [`super::ingest`] writer
//! hands over, and what a dead receiver left under `incoming/` (recovered when the
//! cache is opened). Staged bytes are fsynced, placed under `objects/` (hard link,
//! or a durable copy), their folders fsynced, the group indexed in one transaction,
//! and only then are the staged names removed.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use super::files::{file_crc, object_path, place, sync_files};
use super::import::index_instance;
use super::queries::versions;
use super::temporaries::{alive, owner};
use super::{IndexResult, Outcome, Store, index_error, io_err};
use crate::dicom::{self, ImageHeader};
use crate::error::Result;

/// Objects adopted per transaction when recovering a staging folder.
const RECOVERY_GROUP: usize = 128;

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

impl Store {
    /// Adopt what dead receivers left staged under `incoming/` (folders whose lock
    /// nobody holds): objects they acknowledged but had not yet indexed. Objects
    /// still arriving (`*.part`, never acknowledged) are removed; complete staged
    /// files that are not readable DICOM (cut short by a power failure) are moved
    /// to `quarantine/`. Returns the number of objects adopted.
    pub fn recover_incoming(&mut self) -> Result<usize> {
        let incoming = self.root.join("incoming");
        let dirs = match std::fs::read_dir(&incoming) {
            Ok(dirs) => dirs,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(io_err(&incoming)(e)),
        };
        let mut adopted = 0;
        for dir in dirs.flatten() {
            let name = dir.file_name().to_string_lossy().into_owned();
            let dir = dir.path();
            if !dir.is_dir() {
                continue;
            }
            if name.starts_with(".new-") {
                // A staging folder being made (see `ingest::staging_folder`): it
                // holds no object before it is renamed; a dead maker's goes.
                if !owner(&name).is_some_and(alive) {
                    let _ = std::fs::remove_dir_all(&dir);
                }
                continue;
            }
            let lock_path = dir.join(".lock");
            let lock = match std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&lock_path)
            {
                Ok(lock) => lock,
                // Its receiver finished and removed it meanwhile.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_err(&lock_path)(e)),
            };
            if lock.try_lock().is_err() {
                continue; // a live receiver owns it
            }
            let entries: Vec<PathBuf> = match std::fs::read_dir(&dir) {
                Ok(d) => d.flatten().map(|e| e.path()).collect(),
                // Its receiver finished and removed it between our look and
                // its lock (the lock went with the folder).
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_err(&dir)(e)),
            };
            // Still arriving when the receiver died: never acknowledged, so the
            // peer still has it; removed.
            let mut partial = 0;
            for p in entries
                .iter()
                .filter(|p| p.extension().is_some_and(|x| x == "part"))
            {
                match std::fs::remove_file(p) {
                    Ok(()) => partial += 1,
                    Err(e) => tracing::warn!("{}: could not remove ({e})", p.display()),
                }
            }
            if partial > 0 {
                tracing::info!(
                    "{}: removed {partial} object(s) a dead receiver had not finished",
                    dir.display()
                );
            }
            let files: Vec<&PathBuf> = entries
                .iter()
                .filter(|p| p.extension().is_some_and(|x| x == "dcm"))
                .collect();
            let mut staged = Vec::new();
            for f in files {
                let read = dicom::read_header(f)
                    .and_then(|h| file_crc(f).map(|sc| (h, sc)).map_err(io_err(f)));
                match read {
                    Ok((header, (size, crc))) => staged.push(Staged {
                        header,
                        size,
                        crc,
                        source: "recovered".into(),
                    }),
                    Err(e) => self.quarantine(&dir, f, &e),
                }
            }
            for chunk in staged.chunks(RECOVERY_GROUP) {
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
            // Emptied: the folder goes. Otherwise what is left (objects that could
            // not be adopted) is tried again on the next open.
            let removed = std::fs::remove_file(&lock_path).and_then(|()| std::fs::remove_dir(&dir));
            if let Err(e) = removed {
                tracing::warn!(
                    "{}: staging folder kept ({e}); what is left is tried again on the next open",
                    dir.display()
                );
            }
        }
        if adopted > 0 {
            tracing::info!("recovered {adopted} staged object(s) into the cache");
        }
        Ok(adopted)
    }

    /// Move an unreadable staged file to `quarantine/` (out of the way of the next
    /// recovery); a failure to do so is logged, and the file stays where it is.
    fn quarantine(&self, dir: &Path, file: &Path, why: &crate::error::Error) {
        let q = self.root.join("quarantine");
        let name = format!(
            "{}-{}",
            dir.file_name().unwrap_or_default().to_string_lossy(),
            file.file_name().unwrap_or_default().to_string_lossy()
        );
        let moved = std::fs::create_dir_all(&q).and_then(|()| std::fs::rename(file, q.join(&name)));
        match moved {
            Ok(()) => tracing::warn!(
                "staged object {} is unreadable ({why}); moved to {}",
                file.display(),
                q.join(&name).display()
            ),
            Err(e) => tracing::warn!(
                "staged object {} is unreadable ({why}) and could not be moved to {} ({e})",
                file.display(),
                q.display()
            ),
        }
    }

    /// Adopt a group of staged objects (see [`super::ingest`]): fsync the staged files,
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
            Err(e) => {
                let e = index_error("starting to adopt received objects", e).to_string();
                return vec![Err(e); group.len()];
            }
        };
        let mut known: HashMap<&str, Vec<(u32, u64, u32)>> = HashMap::new();
        let mut placed: Vec<(usize, PathBuf, Outcome)> = Vec::new();
        // Names this group created under objects/ (removed again on a rollback).
        let mut created: Vec<PathBuf> = Vec::new();
        let mut dirs = BTreeSet::new();
        for (i, s) in group.iter().enumerate() {
            if let Err(e) = &synced[i] {
                results[i] = Err(e.clone());
                continue;
            }
            let sop = s.header.sop_instance_uid.as_str();
            let versions = match known.get_mut(sop) {
                Some(v) => v,
                None => match versions(&tx, sop).during("looking up cached versions") {
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
                let rel = object_path(&s.header, version);
                let dst = root.join(&rel);
                let existed = dst.exists();
                match place(&s.header.path, &dst, (s.size, s.crc)) {
                    Ok(true) => {
                        if !existed {
                            created.push(dst);
                        }
                        break Ok(rel);
                    }
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
                .and_then(|()| tx.commit().during("committing received objects"))
                .map_err(|e| e.to_string()),
        };
        match indexed {
            Ok(()) => {
                for (i, _, outcome) in placed {
                    results[i] = Ok(outcome);
                }
            }
            // Rolled back (a full disk, say): the names placed under objects/ are
            // removed again — the staged files keep the bytes, and the next recovery
            // adopts them — so no unindexed file is left behind.
            Err(e) => {
                for f in &created {
                    if let Err(e) = std::fs::remove_file(f) {
                        tracing::warn!("{}: not removed after a rollback: {e}", f.display());
                    }
                }
                for (i, _, _) in placed {
                    results[i] = Err(e.clone());
                }
            }
        }
        // 5. Staged names of what is now in the cache go.
        for (s, r) in group.iter().zip(&results) {
            if r.is_ok()
                && let Err(e) = std::fs::remove_file(&s.header.path)
            {
                // Harmless (the next recovery finds it a duplicate), but say so.
                tracing::warn!(
                    "{}: adopted, but the staged copy stays: {e}",
                    s.header.path.display()
                );
            }
        }
        results
    }
}
