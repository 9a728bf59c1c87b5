//! DICOMDIR (PS3.10 media directory) reading: the files a CD or USB stick says it
//! holds, resolved the way real media need — case-insensitively, ignoring ISO 9660
//! version suffixes (`;1`) and trailing dots — and never outside the media root.

use std::path::{Path, PathBuf};

use dicom_dictionary_std::tags;

use super::attr;
use super::{ReadMode, open};
use crate::error::{Error, Result};

/// One directory record that references a file.
#[derive(Debug, Clone, PartialEq)]
pub struct Referenced {
    /// Directory Record Type (IMAGE, SR DOCUMENT, PRESENTATION, ...).
    pub record_type: String,
    /// Referenced File ID as written, components joined with `/`.
    pub file_id: String,
    /// The file on disk, when it exists under the root.
    pub path: Option<PathBuf>,
    pub sop_instance_uid: Option<String>,
}

/// A parsed DICOMDIR.
#[derive(Debug, Clone)]
pub struct DicomDir {
    /// The folder the DICOMDIR is in: file IDs are relative to it.
    pub root: PathBuf,
    /// Count of records by type, in first-seen order (PATIENT, STUDY, SERIES, IMAGE...).
    pub record_counts: Vec<(String, usize)>,
    /// Every record that references a file.
    pub files: Vec<Referenced>,
}

/// Find a file named DICOMDIR (any case) directly in `dir`.
pub fn find(dir: &Path) -> Option<PathBuf> {
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok())
        .find(|e| {
            e.file_name()
                .to_string_lossy()
                .eq_ignore_ascii_case("DICOMDIR")
                && e.path().is_file()
        })
        .map(|e| e.path())
}

/// Read a DICOMDIR file and resolve the files it references.
pub fn read(path: &Path) -> Result<DicomDir> {
    let obj = open(path, ReadMode::Full)?;
    let records =
        attr::items(&obj, tags::DIRECTORY_RECORD_SEQUENCE).ok_or_else(|| Error::Missing {
            path: path.to_path_buf(),
            attribute: "Directory Record Sequence",
        })?;
    let root = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut record_counts: Vec<(String, usize)> = Vec::new();
    let mut files = Vec::new();
    for r in records {
        let record_type =
            attr::string(r, tags::DIRECTORY_RECORD_TYPE).unwrap_or_else(|| "UNKNOWN".into());
        match record_counts.iter_mut().find(|(t, _)| *t == record_type) {
            Some((_, n)) => *n += 1,
            None => record_counts.push((record_type.clone(), 1)),
        }
        let Some(id) = attr::string(r, tags::REFERENCED_FILE_ID) else {
            continue;
        };
        let components: Vec<String> = id.split('\\').map(|c| c.trim().to_string()).collect();
        files.push(Referenced {
            record_type,
            file_id: components.join("/"),
            path: resolve(&root, &components),
            sop_instance_uid: attr::string(r, tags::REFERENCED_SOP_INSTANCE_UID_IN_FILE),
        });
    }
    Ok(DicomDir {
        root,
        record_counts,
        files,
    })
}

/// Resolve File ID components under `root`. Components must be plain names (no
/// separators, no `.`/`..`): a crafted DICOMDIR cannot point outside the media.
pub fn resolve(root: &Path, components: &[String]) -> Option<PathBuf> {
    let mut cur = root.to_path_buf();
    for c in components {
        if c.is_empty() || c == "." || c == ".." || c.contains(['/', '\\', '\0']) || c.contains(':')
        {
            return None;
        }
        let exact = cur.join(c);
        if exact.exists() {
            cur = exact;
            continue;
        }
        let want = normalise(c);
        let entry = std::fs::read_dir(&cur)
            .ok()?
            .filter_map(|e| e.ok())
            .find(|e| normalise(&e.file_name().to_string_lossy()) == want)?;
        cur = entry.path();
    }
    cur.is_file().then_some(cur)
}

/// Upper case, without an ISO 9660 version suffix (`;1`) or a trailing dot.
fn normalise(name: &str) -> String {
    let base = name.split(';').next().unwrap_or(name);
    base.trim_end_matches('.').to_ascii_uppercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traversal_components_are_refused() {
        let root = std::env::temp_dir();
        for bad in ["..", ".", "", "a/b", "a\\b", "C:"] {
            assert_eq!(resolve(&root, &[bad.to_string()]), None, "{bad:?}");
        }
    }

    #[test]
    fn names_normalise_like_cd_media() {
        assert_eq!(normalise("im000001;1"), "IM000001");
        assert_eq!(normalise("IM000001."), "IM000001");
        assert_eq!(normalise("Se000002"), "SE000002");
    }
}
