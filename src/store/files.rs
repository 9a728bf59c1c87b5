//! Where the cache keeps its files and how they become durable: the cache root,
//! object paths made from UIDs (only valid UIDs become path components), staging
//! copies under `tmp/`, placing staged files (hard link or durable copy), fsync of
//! files and folders (several at once, on named threads), and checksums.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::io_err;
use crate::dicom::ImageHeader;
use crate::error::{Error, Result};

/// Most threads fsyncing a group at once (the file system merges their commits).
pub(super) const SYNC_THREADS: usize = 8;

/// Name of the threads that fsync (Linux shows at most 15 characters).
pub(super) const SYNC_THREAD_NAME: &str = "cache-fsync";

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

/// Where an instance's file lives (relative to the root):
/// `objects/<study>/<series>/<sop>.dcm`, later versions `<sop>.v<N>.dcm`.
pub(super) fn object_path(h: &ImageHeader, version: u32) -> PathBuf {
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

/// The version an object's file name says (`<sop>.v<N>.dcm`; else 1).
pub(super) fn version_from_name(rel: &Path) -> u32 {
    rel.file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_suffix(".dcm"))
        .and_then(|n| n.rsplit_once(".v"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(1)
}

/// fsync one file or folder.
pub(super) fn fsync(path: &Path) -> std::result::Result<(), String> {
    std::fs::File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(|e| format!("{}: cannot fsync: {e}", path.display()))
}

/// fsync files or folders, several at once (the file system merges the journal
/// commits of concurrent fsyncs). One result per path, in order. A thread that
/// cannot be started leaves its share to this one.
pub(super) fn sync_files<'a>(
    paths: impl Iterator<Item = &'a Path>,
) -> Vec<std::result::Result<(), String>> {
    let paths: Vec<&Path> = paths.collect();
    if paths.is_empty() {
        return Vec::new();
    }
    let per = paths.len().div_ceil(SYNC_THREADS).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = paths
            .chunks(per)
            .map(|c| {
                let started = std::thread::Builder::new()
                    .name(SYNC_THREAD_NAME.into())
                    .spawn_scoped(scope, move || {
                        c.iter().map(|p| fsync(p)).collect::<Vec<_>>()
                    });
                (c, started)
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|(c, started)| match started {
                Ok(h) => h.join().unwrap_or_else(|_| {
                    c.iter()
                        .map(|p| Err(format!("{}: fsync thread failed", p.display())))
                        .collect()
                }),
                Err(e) => {
                    tracing::warn!("cannot start an fsync thread ({e}); syncing on this one");
                    c.iter().map(|p| fsync(p)).collect()
                }
            })
            .collect()
    })
}

/// Put a staged file at `dst`: a hard link (same file system, no copy), else a
/// durable copy. `Ok(false)`: `dst` already holds other bytes (try another name);
/// `Ok(true)` also when it holds these very bytes (left by an interrupted adopt).
pub(super) fn place(
    staged: &Path,
    dst: &Path,
    (size, crc): (u64, u32),
) -> std::result::Result<bool, String> {
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
pub(super) fn file_crc(path: &Path) -> std::io::Result<(u64, u32)> {
    let bytes = std::fs::read(path)?;
    Ok((bytes.len() as u64, crc32fast::hash(&bytes)))
}

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Copy `src` into a new file under `root/tmp` (not yet fsynced). Returns its path,
/// size and CRC-32.
pub(super) fn stage_copy(src: &Path, root: &Path) -> Result<(PathBuf, (u64, u32))> {
    let bytes = std::fs::read(src).map_err(io_err(src))?;
    let tmp = root.join("tmp").join(format!(
        "{}-{}.part",
        std::process::id(),
        TMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::write(&tmp, &bytes).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        if super::is_full_io(&e) {
            Error::CacheFull {
                path: root.to_path_buf(),
                what: format!("copying {}", src.display()),
            }
        } else {
            Error::Write {
                path: tmp.clone(),
                reason: e.to_string(),
            }
        }
    })?;
    Ok((tmp, (bytes.len() as u64, crc32fast::hash(&bytes))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_valid_uids_become_path_components() {
        assert_eq!(uid_component("1.2.840.10008"), "1.2.840.10008");
        for hostile in ["", "..", "../../etc", "/etc", "1..2", ".1", "1.", "1/2"] {
            let c = uid_component(hostile);
            assert!(c.starts_with('x') && c.len() == 17, "{hostile:?} -> {c}");
        }
        assert_ne!(uid_component("a"), uid_component("b"));
    }

    #[test]
    fn versions_are_read_back_from_file_names() {
        assert_eq!(version_from_name(Path::new("objects/1/2/3.4.dcm")), 1);
        assert_eq!(version_from_name(Path::new("objects/1/2/3.4.v3.dcm")), 3);
    }

    #[test]
    fn fsync_reports_every_path_in_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let files: Vec<PathBuf> = (0..20)
            .map(|i| {
                let p = dir.path().join(format!("{i}"));
                std::fs::write(&p, b"x").expect("write");
                p
            })
            .collect();
        let missing = dir.path().join("missing");
        let mut paths: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
        paths.insert(7, &missing);
        let r = sync_files(paths.iter().copied());
        assert_eq!(r.len(), 21);
        assert!(r[7].as_ref().is_err_and(|e| e.contains("missing")));
        assert_eq!(r.iter().filter(|r| r.is_ok()).count(), 20);
    }
}
