//! Zip archives on import: recognised by their magic, unpacked into a fresh folder
//! under `tmp/` (then imported as a folder), with limits: no entry may leave that
//! folder, and the expansion stops at a multiple of the archive's size (zip bombs).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Largest expansion accepted from a zip archive, as a multiple of its size and
/// in bytes (a zip bomb stops here), and most entries.
const MAX_ZIP_RATIO: u64 = 200;
const MAX_ZIP_BYTES: u64 = 32 << 30;
const MAX_ZIP_ENTRIES: usize = 200_000;

/// Whether `path` is a file that starts like a zip archive.
pub(super) fn is_zip(path: &Path) -> bool {
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
pub(crate) fn unzip(archive: &Path, tmp: &Path) -> std::result::Result<PathBuf, String> {
    use std::io::Read;
    let file = std::fs::File::open(archive).map_err(|e| format!("cannot open: {e}"))?;
    let archive_len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let budget = (archive_len.saturating_mul(MAX_ZIP_RATIO)).clamp(1 << 20, MAX_ZIP_BYTES);
    let mut zip =
        ::zip::ZipArchive::new(file).map_err(|e| format!("not a readable zip archive: {e}"))?;
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
        remove_unpacked(dir);
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

/// Remove a folder [`unzip`] made (a failure is logged: it only takes space in `tmp/`).
pub(crate) fn remove_unpacked(dir: &Path) {
    if let Err(e) = std::fs::remove_dir_all(dir) {
        tracing::warn!("{}: unpacked archive not removed: {e}", dir.display());
    }
}
