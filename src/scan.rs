//! Scanning a folder: every file under it is read header-only, in parallel. Files
//! that are not DICOM or cannot be parsed are named with their reason, never dropped
//! silently. A folder with a DICOMDIR (a CD or USB root) is read through it: the
//! files it references, resolved as on real media; a missing referenced file is a
//! failure, and an unreadable DICOMDIR falls back to a folder scan (and says so).

use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::dicom::{self, ImageHeader, dicomdir};

/// Headers found under a folder and the files that failed.
#[derive(Debug, Default)]
pub struct Scan {
    pub headers: Vec<ImageHeader>,
    /// (file, reason) for every file that is not a readable DICOM object.
    pub failures: Vec<(PathBuf, String)>,
    /// The DICOMDIR the scan went through, with its record counts.
    pub dicomdir: Option<(PathBuf, Vec<(String, usize)>)>,
    /// Defects read past (a DICOMDIR's overrunning lengths), for the user.
    pub warnings: Vec<String>,
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

/// Read the header of every file under `root` in parallel (through its DICOMDIR
/// when it has one).
pub fn scan(root: &Path) -> std::io::Result<Scan> {
    if root.is_dir()
        && let Some(dd_path) = dicomdir::find(root)
    {
        match dicomdir::read(&dd_path) {
            Ok(dd) if !dd.files.is_empty() => {
                let found: Vec<PathBuf> = dd.files.iter().filter_map(|f| f.path.clone()).collect();
                let mut scan = scan_files(&found);
                for f in dd.files.iter().filter(|f| f.path.is_none()) {
                    scan.failures.push((
                        dd.root.join(&f.file_id),
                        format!(
                            "{}: references {} ({}), which is not on the media",
                            dd_path.display(),
                            f.file_id,
                            f.record_type
                        ),
                    ));
                }
                scan.dicomdir = Some((dd_path, dd.record_counts));
                scan.warnings.extend(dd.warnings);
                return Ok(scan);
            }
            Ok(_) => {}
            Err(e) => {
                let files = list_files(root)?;
                let mut scan = scan_files(&files);
                scan.failures.retain(|(p, _)| p != &dd_path);
                scan.failures
                    .push((dd_path, format!("{e} (the folder was scanned instead)")));
                return Ok(scan);
            }
        }
    }
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
