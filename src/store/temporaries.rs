//! Crash hygiene: what a writer leaves in the cache's `tmp/` while it works (an
//! import's `<pid>-<n>.part` copies, a zip import's `zip-<pid>-<n>/` folder) is
//! removed by the next writer that opens the cache once its owner is dead, so a
//! killed import never leaves garbage that grows with every crash; `verify` reports
//! whatever is still there.

use std::path::{Path, PathBuf};

use super::Store;

/// A temporary entry of `tmp/`: its path, its size in bytes (a folder: the files in
/// it), and whether the process that made it is still running.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Temporary {
    pub(super) path: PathBuf,
    pub(super) bytes: u64,
    pub(super) live: bool,
}

/// The process id a temporary entry's name carries (`123-4.part`, `zip-123-4`,
/// a staging folder being made: `.new-123-4`).
pub(super) fn owner(name: &str) -> Option<u32> {
    let rest = name.strip_prefix("zip-").unwrap_or(name);
    let rest = rest.strip_prefix(".new-").unwrap_or(rest);
    rest.split('-').next()?.parse().ok()
}

/// Whether process `pid` is running (this one always is). Where there is no
/// `/proc`, every owner is taken to be alive: nothing is removed that might be in
/// use.
pub(super) fn alive(pid: u32) -> bool {
    if pid == std::process::id() {
        return true;
    }
    let proc_root = Path::new("/proc");
    if !proc_root.join("self").exists() {
        return true;
    }
    proc_root.join(pid.to_string()).exists()
}

/// Bytes in a file, or in the files under a folder.
fn size_of(path: &Path) -> u64 {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => std::fs::read_dir(path)
            .map(|d| d.flatten().map(|e| size_of(&e.path())).sum())
            .unwrap_or(0),
        Ok(m) => m.len(),
        Err(_) => 0,
    }
}

impl Store {
    /// The entries of `tmp/`. A name that carries no process id is nobody's: it
    /// counts as left over.
    pub(super) fn temporaries(&self) -> Vec<Temporary> {
        let Ok(dir) = std::fs::read_dir(self.root.join("tmp")) else {
            return Vec::new();
        };
        dir.flatten()
            .map(|e| {
                let path = e.path();
                let name = e.file_name().to_string_lossy().into_owned();
                Temporary {
                    bytes: size_of(&path),
                    live: owner(&name).is_some_and(alive),
                    path,
                }
            })
            .collect()
    }

    /// Remove what dead writers left in `tmp/`: (entries removed, their bytes).
    /// What cannot be removed is logged and stays for `verify` to report.
    pub(super) fn sweep_temporaries(&self) -> (usize, u64) {
        let mut removed = (0, 0);
        for t in self.temporaries().into_iter().filter(|t| !t.live) {
            let gone = if t.path.is_dir() {
                std::fs::remove_dir_all(&t.path)
            } else {
                std::fs::remove_file(&t.path)
            };
            match gone {
                Ok(()) => {
                    removed.0 += 1;
                    removed.1 += t.bytes;
                }
                Err(e) => tracing::warn!(
                    "{}: left over from a crashed import, cannot be removed: {e}",
                    t.path.display()
                ),
            }
        }
        if removed.0 > 0 {
            tracing::info!(
                "{}: removed {} temporary file(s) ({} KB) left by a crashed import",
                self.root.display(),
                removed.0,
                removed.1.div_ceil(1024)
            );
        }
        removed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporary_names_carry_their_owner() {
        assert_eq!(owner("1234-7.part"), Some(1234));
        assert_eq!(owner("zip-99-0"), Some(99));
        assert_eq!(owner(".new-42-3"), Some(42));
        assert_eq!(owner("notes.txt"), None);
        assert!(alive(std::process::id()));
    }
}
