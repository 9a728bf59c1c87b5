//! Scanning a folder: every file under it is read header-only, in parallel. Files
//! that are not DICOM or cannot be parsed are named with their reason, never dropped
//! silently.

use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::dicom::{self, ImageHeader};

/// Headers found under a folder and the files that failed.
#[derive(Debug, Default)]
pub struct Scan {
    pub headers: Vec<ImageHeader>,
    /// (file, reason) for every file that is not a readable DICOM object.
    pub failures: Vec<(PathBuf, String)>,
}

/// All regular files under `root` (or `root` itself), sorted for stable output.
/// Hidden files and folders (".git", ".DS_Store") are skipped.
pub fn list_files(root: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    if root.is_file() {
        out.push(root.to_path_buf());
        return Ok(out);
    }
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let name = entry.file_name();
            if name.to_string_lossy().starts_with('.') {
                continue;
            }
            let ft = entry.file_type()?;
            let path = entry.path();
            if ft.is_dir() {
                stack.push(path);
            } else if ft.is_file() || (ft.is_symlink() && path.is_file()) {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Read the header of every file under `root` in parallel.
pub fn scan(root: &Path) -> std::io::Result<Scan> {
    let files = list_files(root)?;
    Ok(scan_files(&files))
}

/// Read the headers of the given files in parallel, keeping input order.
pub fn scan_files(files: &[PathBuf]) -> Scan {
    let results: Vec<_> = files
        .par_iter()
        .map(|p| (p, dicom::read_header(p)))
        .collect();
    let mut scan = Scan::default();
    for (p, r) in results {
        match r {
            Ok(h) => scan.headers.push(h),
            Err(e) => scan.failures.push((p.clone(), e.to_string())),
        }
    }
    scan
}
