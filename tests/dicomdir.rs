//! CD / USB media through their DICOMDIR: a CD made by DCMTK's `dcmmkdir` (as a
//! modality or PACS burns it) and pydicom's DICOMDIR test set are read with the right
//! patient/study/series tree; file names are matched case-insensitively; files the
//! DICOMDIR references but the media lacks are named.

mod common;

use std::path::Path;
use std::process::Command;

use lightbox::{model, scan};

/// A CD image: DICOM/CT/IM0001... and DICOM/MR/IM0001... plus a DICOMDIR by dcmmkdir.
fn make_cd(root: &Path) {
    let src = root.join("src");
    common::ct_mr_study(&src, 6, 4, 32);
    let cd = root.join("cd");
    for kind in ["ct", "mr"] {
        let dst = cd.join("DICOM").join(kind.to_uppercase());
        std::fs::create_dir_all(&dst).expect("mkdir");
        let mut files = scan::list_files(&src.join(kind)).expect("list");
        files.sort();
        for (i, f) in files.iter().enumerate() {
            std::fs::copy(f, dst.join(format!("IM{:04}", i + 1))).expect("copy");
        }
    }
    let tool = common::require_tool("dcmmkdir", "dcmtk");
    // -Nxc: the synthetic CT is implicit VR, which the general-purpose CD profile frowns on.
    common::run_ok(
        Command::new(tool)
            .current_dir(&cd)
            .args(["+r", "-Nxc", "DICOM"]),
    );
    assert!(cd.join("DICOMDIR").exists(), "dcmmkdir wrote no DICOMDIR");
}

/// Lower-case every name under `dir` (as some systems mount ISO 9660 media).
fn lowercase_tree(dir: &Path) {
    for e in std::fs::read_dir(dir).expect("dir") {
        let p = e.expect("entry").path();
        if p.is_dir() {
            lowercase_tree(&p);
        }
        let name = p
            .file_name()
            .expect("name")
            .to_string_lossy()
            .to_lowercase();
        std::fs::rename(&p, p.with_file_name(name)).expect("rename");
    }
}

#[test]
fn dcmmkdir_cd_is_read_through_its_dicomdir_in_any_case() {
    let tmp = common::tempdir();
    make_cd(tmp.path());
    let cd = tmp.path().join("cd");
    lowercase_tree(&cd);
    // A stray file the DICOMDIR does not mention is not part of the media's content.
    std::fs::write(cd.join("autorun.inf"), b"[autorun]").expect("write");
    let s = scan::scan(&cd).expect("scan");
    let (dd, counts) = s.dicomdir.clone().expect("read through the DICOMDIR");
    assert_eq!(dd.file_name().expect("name"), "dicomdir");
    assert!(counts.contains(&("IMAGE".to_string(), 10)), "{counts:?}");
    assert!(s.failures.is_empty(), "{:?}", s.failures);
    assert_eq!(s.headers.len(), 10);
    let patients = model::build(&s.headers);
    assert_eq!(
        patients.len(),
        2,
        "the CT and MR phantoms are different patients"
    );
    let series_sizes: Vec<usize> = patients
        .iter()
        .flat_map(|p| p.studies.iter())
        .flat_map(|st| st.series.iter())
        .map(|se| se.display_sets[0].frames.len())
        .collect();
    assert_eq!(series_sizes.iter().sum::<usize>(), 10);
    assert!(
        series_sizes.contains(&6) && series_sizes.contains(&4),
        "{series_sizes:?}"
    );
}

#[test]
fn files_missing_from_the_media_are_named() {
    let tmp = common::tempdir();
    make_cd(tmp.path());
    let cd = tmp.path().join("cd");
    std::fs::remove_file(cd.join("DICOM/MR/IM0002")).expect("remove");
    let s = scan::scan(&cd).expect("scan");
    assert_eq!(s.headers.len(), 9);
    assert_eq!(s.failures.len(), 1, "{:?}", s.failures);
    assert!(
        s.failures[0].1.contains("DICOM/MR/IM0002") && s.failures[0].1.contains("not on the media"),
        "{:?}",
        s.failures
    );
}

#[test]
fn broken_dicomdir_falls_back_to_a_folder_scan_and_says_so() {
    let tmp = common::tempdir();
    make_cd(tmp.path());
    let cd = tmp.path().join("cd");
    std::fs::write(cd.join("DICOMDIR"), b"garbage, not a directory").expect("write");
    let s = scan::scan(&cd).expect("scan");
    assert!(s.dicomdir.is_none());
    assert_eq!(
        s.headers.len(),
        10,
        "every image still found by the folder scan"
    );
    assert_eq!(s.failures.len(), 1);
    assert!(
        s.failures[0].1.contains("folder was scanned instead"),
        "{:?}",
        s.failures
    );
}

#[test]
fn pydicom_dicomdir_test_set() {
    let dir = common::pydicom_test_files().join("dicomdirtests");
    let s = scan::scan(&dir).expect("scan");
    let (_, counts) = s.dicomdir.clone().expect("DICOMDIR used");
    assert_eq!(
        counts,
        vec![
            ("PATIENT".to_string(), 2),
            ("STUDY".to_string(), 6),
            ("SERIES".to_string(), 13),
            ("IMAGE".to_string(), 31)
        ]
    );
    assert!(s.failures.is_empty(), "{:?}", s.failures);
    assert_eq!(s.headers.len(), 31);
    let patients = model::build(&s.headers);
    let ids: Vec<_> = patients
        .iter()
        .map(|p| p.id.clone().unwrap_or_default())
        .collect();
    assert_eq!(ids, vec!["77654033", "98890234"]);
    let studies: usize = patients.iter().map(|p| p.studies.len()).sum();
    assert_eq!(studies, 6);
}

#[test]
fn a_dicomdir_whose_last_record_overruns_the_file_is_read_with_a_warning() {
    // pydicom's DICOMDIR-nooffset: elements were removed without fixing the
    // lengths, so the sequence and its last record declare more bytes than the
    // file holds. DCMTK and pydicom read it; so does Lightbox, and says so.
    let tmp = common::tempdir();
    let src = common::pydicom_test_files().join("dicomdirtests");
    let cd = tmp.path().join("cd");
    for f in lightbox::scan::list_files(&src).expect("list") {
        let rel = f.strip_prefix(&src).expect("under");
        if rel.to_string_lossy().starts_with("DICOMDIR") {
            continue;
        }
        let dst = cd.join(rel);
        std::fs::create_dir_all(dst.parent().expect("parent")).expect("mkdir");
        std::fs::copy(&f, &dst).expect("copy");
    }
    let nooffset = src.join("DICOMDIR-nooffset");
    std::fs::copy(&nooffset, cd.join("DICOMDIR")).expect("copy");
    // The reference readers agree that it is readable.
    let dcmdump = common::require_tool("dcmdump", "dcmtk");
    common::run_ok(Command::new(dcmdump).arg(cd.join("DICOMDIR")));
    let s = scan::scan(&cd).expect("scan");
    let (_, counts) = s
        .dicomdir
        .clone()
        .expect("read through the DICOMDIR, not a folder scan");
    assert_eq!(
        counts,
        vec![
            ("PATIENT".to_string(), 2),
            ("STUDY".to_string(), 6),
            ("SERIES".to_string(), 13),
            ("IMAGE".to_string(), 31)
        ]
    );
    assert_eq!(s.headers.len(), 31);
    assert!(s.failures.is_empty(), "{:?}", s.failures);
    assert!(
        s.warnings.len() == 1 && s.warnings[0].contains("read as far as it goes"),
        "{:?}",
        s.warnings
    );
    // A DICOMDIR cut in the middle of a record is still refused (and the folder
    // scanned instead).
    let bytes = std::fs::read(&nooffset).expect("read");
    std::fs::write(cd.join("DICOMDIR"), &bytes[..bytes.len() - 100]).expect("write");
    let s = scan::scan(&cd).expect("scan");
    assert!(s.dicomdir.is_none());
    assert!(
        s.failures
            .iter()
            .any(|(_, why)| why.contains("the folder was scanned instead")),
        "{:?}",
        s.failures
    );
}
