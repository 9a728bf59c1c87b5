//! DICOMDIR (PS3.10 media directory) reading: the files a CD or USB stick says it
//! holds, resolved the way real media need — case-insensitively, ignoring ISO 9660
//! version suffixes (`;1`) and trailing dots — and never outside the media root.

use std::path::{Path, PathBuf};

use dicom_dictionary_std::tags;

use super::ReadMode;
use super::attr;
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
    /// Defects read past, as DCMTK and pydicom do (said to the user).
    pub warnings: Vec<String>,
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

/// Read a DICOMDIR file and resolve the files it references. A DICOMDIR whose
/// last directory record (and so its sequence) declares more bytes than the file
/// holds — what a writer leaves when it drops elements without fixing the lengths
/// (pydicom's `DICOMDIR-nooffset`) — is read as far as the file goes, with a
/// warning, as DCMTK and pydicom read it.
pub fn read(path: &Path) -> Result<DicomDir> {
    let bytes = std::fs::read(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    read_bytes(&bytes, path)
}

/// [`read`] on a DICOMDIR's bytes; `path` is where it lies (file IDs resolve
/// beside it).
pub fn read_bytes(bytes: &[u8], path: &Path) -> Result<DicomDir> {
    let mut warnings = Vec::new();
    let obj = match super::open_bytes(bytes, path, ReadMode::Full) {
        Ok(o) => o,
        Err(first) => {
            let Some((patched, over)) = clamp_overrun(bytes) else {
                return Err(first);
            };
            let o = super::open_bytes(&patched, path, ReadMode::Full).map_err(|_| first)?;
            warnings.push(format!(
                "{}: the directory records declare {over} byte(s) more than the file holds; \
                 read as far as it goes",
                path.display()
            ));
            o
        }
    };
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
        warnings,
    })
}

/// A copy of a DICOMDIR (explicit VR little endian, as media must be) whose
/// Directory Record Sequence and records are clamped to the end of the file, with
/// how many bytes they overran; None when nothing overruns or the layout is not
/// one this can follow.
fn clamp_overrun(bytes: &[u8]) -> Option<(Vec<u8>, usize)> {
    let u16_at = |p: usize| Some(u16::from_le_bytes(bytes.get(p..p + 2)?.try_into().ok()?));
    let u32_at = |p: usize| Some(u32::from_le_bytes(bytes.get(p..p + 4)?.try_into().ok()?));
    if bytes.get(128..132)? != b"DICM" {
        return None;
    }
    // Meta group: (0002,0000) UL first, its value the group's length.
    if (u16_at(132)?, u16_at(134)?) != (0x0002, 0x0000) {
        return None;
    }
    let mut p = 144usize.checked_add(u32_at(140)? as usize)?;
    let end = bytes.len();
    let mut out = bytes.to_vec();
    while p + 8 <= end {
        let (group, element) = (u16_at(p)?, u16_at(p + 2)?);
        let vr = bytes.get(p + 4..p + 6)?;
        let long = matches!(
            vr,
            b"OB"
                | b"OW"
                | b"OF"
                | b"OD"
                | b"OL"
                | b"OV"
                | b"SQ"
                | b"UT"
                | b"UN"
                | b"UC"
                | b"UR"
                | b"SV"
                | b"UV"
        );
        let (len_at, header) = if long { (p + 8, 12) } else { (p + 6, 8) };
        let len = if long {
            u32_at(len_at)?
        } else {
            u32::from(u16_at(len_at)?)
        };
        if (group, element) != (0x0004, 0x1220) {
            if len == u32::MAX {
                return None;
            }
            p = p.checked_add(header + len as usize)?;
            continue;
        }
        let start = p + header;
        if !long || start > end {
            // Not the sequence the fallback mends (a 2-byte length cannot hold
            // the clamped one; found by the dicomdir target: a 16-bit length
            // at the file's last bytes, written past its end).
            return None;
        }
        let mut over = 0;
        if len != u32::MAX && start + len as usize > end {
            over = start + len as usize - end;
            out[len_at..len_at + 4].copy_from_slice(&((end - start) as u32).to_le_bytes());
        }
        // The records: the last one that overruns is clamped too.
        let mut q = start;
        while q + 8 <= end {
            if (u16_at(q)?, u16_at(q + 2)?) != (0xfffe, 0xe000) {
                break;
            }
            let item = u32_at(q + 4)?;
            if item == u32::MAX {
                return None;
            }
            if q + 8 + item as usize > end {
                over = over.max(q + 8 + item as usize - end);
                out[q + 4..q + 8].copy_from_slice(&((end - q - 8) as u32).to_le_bytes());
                break;
            }
            q += 8 + item as usize;
        }
        return (over > 0).then_some((out, over));
    }
    None
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
