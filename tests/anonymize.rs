//! De-identified export, checked as a PACS administrator would before sending a
//! teaching case out: none of the patient's identifiers, dates or UIDs left in any
//! byte of any file (sequences and private tags included), the files still valid
//! for DCMTK, pixels and geometry unchanged, references between instances still
//! pointing at the right (renamed) instances, and a file with burned-in
//! annotation refused.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use dicom_core::{DataElement, PrimitiveValue, VR, value::DataSetSequence};
use dicom_dictionary_std::tags;
use dicom_object::{InMemDicomObject, open_file};
use lightbox::dicom::Image;

fn files_in(dir: &Path) -> Vec<PathBuf> {
    lightbox::scan::list_files(dir).expect("list")
}

fn string(o: &InMemDicomObject, tag: dicom_core::Tag) -> String {
    lightbox::dicom::attr::string(o, tag).unwrap_or_default()
}

/// A CT series, one slice made to carry everything an anonymiser must find: an
/// institution, an operator, a private tag, a nested person name and a reference
/// to another slice; and one more slice saying its pixels have burned-in text.
fn fixture(dir: &Path) -> (Vec<PathBuf>, Vec<String>) {
    let spec = lightbox::synth::CtSpec {
        slices: 6,
        size: 32,
        ..Default::default()
    };
    lightbox::synth::write_ct(&dir.join("ct"), &spec).expect("ct");
    let files = files_in(&dir.join("ct"));
    let first = open_file(&files[0]).expect("open");
    let other = open_file(&files[1]).expect("open");
    let referenced = string(&other, tags::SOP_INSTANCE_UID);
    let mut o = first.clone();
    let put = |o: &mut dicom_object::DefaultDicomObject, tag, vr, v: &str| {
        o.put(DataElement::new(tag, vr, PrimitiveValue::from(v)));
    };
    put(
        &mut o,
        tags::INSTITUTION_NAME,
        VR::LO,
        "GENERAL HOSPITAL OF NOWHERE",
    );
    put(&mut o, tags::OPERATORS_NAME, VR::PN, "TECH^TERESA");
    put(&mut o, tags::PATIENT_AGE, VR::AS, "056Y");
    put(&mut o, tags::OTHER_PATIENT_NAMES, VR::PN, "ALIAS^ALFRED");
    put(&mut o, tags::STATION_NAME, VR::SH, "CTROOM7");
    o.put(DataElement::new(
        dicom_core::Tag(0x0009, 0x0010),
        VR::LO,
        PrimitiveValue::from("ACME PRIVATE"),
    ));
    o.put(DataElement::new(
        dicom_core::Tag(0x0009, 0x1001),
        VR::LO,
        PrimitiveValue::from("SECRET-MRN-991"),
    ));
    let mut item = InMemDicomObject::new_empty();
    item.put(DataElement::new(
        tags::REFERENCED_SOP_CLASS_UID,
        VR::UI,
        PrimitiveValue::from(string(&other, tags::SOP_CLASS_UID).as_str()),
    ));
    item.put(DataElement::new(
        tags::REFERENCED_SOP_INSTANCE_UID,
        VR::UI,
        PrimitiveValue::from(referenced.as_str()),
    ));
    item.put(DataElement::new(
        tags::VERIFYING_OBSERVER_NAME,
        VR::PN,
        PrimitiveValue::from("DOCTOR^NESTED"),
    ));
    o.put(DataElement::new(
        tags::REFERENCED_IMAGE_SEQUENCE,
        VR::SQ,
        DataSetSequence::from(vec![item]),
    ));
    o.write_to_file(&files[0]).expect("write");
    let mut burned = open_file(&files[2]).expect("open");
    put(&mut burned, tags::BURNED_IN_ANNOTATION, VR::CS, "YES");
    burned.write_to_file(&files[2]).expect("write");
    let mut secrets = vec![
        "PHANTOM".to_string(),
        "LBX0001".into(),
        "SYN0001".into(),
        "REFERRER".into(),
        "GENERAL HOSPITAL".into(),
        "TERESA".into(),
        "ALFRED".into(),
        "CTROOM7".into(),
        "SECRET-MRN".into(),
        "NESTED".into(),
        "056Y".into(),
        spec.study_date.clone(),
    ];
    for f in &files {
        let o = open_file(f).expect("open");
        for t in [
            tags::STUDY_INSTANCE_UID,
            tags::SERIES_INSTANCE_UID,
            tags::SOP_INSTANCE_UID,
            tags::FRAME_OF_REFERENCE_UID,
        ] {
            secrets.push(string(&o, t));
        }
    }
    (files, secrets)
}

fn anonymize(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_lightbox"))
        .arg("anonymize")
        .args(args)
        .output()
        .expect("run lightbox")
}

#[test]
fn nothing_identifying_survives_and_the_images_are_unchanged() {
    let tmp = common::tempdir();
    let (files, secrets) = fixture(tmp.path());
    let out = tmp.path().join("out");
    let o = anonymize(&[
        tmp.path().join("ct").to_str().expect("utf8"),
        "--out",
        out.to_str().expect("utf8"),
        "--patient-name",
        "CASE^042",
        "--patient-id",
        "TEACH042",
    ]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "one file refused: {stderr}");
    assert!(stderr.contains("Burned In Annotation"), "{stderr}");
    let written = files_in(&out);
    assert_eq!(written.len(), files.len() - 1);
    let dcmdump = common::require_tool("dcmdump", "dcmtk");
    for w in &written {
        let bytes = std::fs::read(w).expect("read");
        let text = String::from_utf8_lossy(&bytes);
        for s in &secrets {
            assert!(
                !text.contains(s.as_str()),
                "{}: still holds {s:?}",
                w.display()
            );
        }
        // DCMTK reads what was written.
        common::run_ok(Command::new(&dcmdump).arg("-q").arg(w));
        let o = open_file(w).expect("open");
        assert_eq!(string(&o, tags::PATIENT_NAME), "CASE^042");
        assert_eq!(string(&o, tags::PATIENT_ID), "TEACH042");
        assert_eq!(string(&o, tags::PATIENT_IDENTITY_REMOVED), "YES");
        assert_eq!(
            o.meta()
                .media_storage_sop_instance_uid
                .trim_end_matches('\0'),
            string(&o, tags::SOP_INSTANCE_UID)
        );
    }
    // Pixels and geometry: the same slices at the same positions, same values.
    let before = lightbox::scan::scan(&tmp.path().join("ct")).expect("scan");
    let after = lightbox::scan::scan(&out).expect("scan");
    let pos = |s: &lightbox::scan::Scan| -> Vec<([f64; 3], Vec<i32>)> {
        let mut v: Vec<_> = s
            .headers
            .iter()
            .filter(|h| h.path != files[2])
            .map(|h| {
                let img = Image::open(&h.path).expect("open");
                let lightbox::dicom::pixels::Samples::Mono(px) =
                    img.frame(0).expect("frame").samples
                else {
                    panic!("grey")
                };
                (h.frame(0).expect("f").image_position.expect("pos"), px)
            })
            .collect();
        v.sort_by(|a, b| a.0[2].total_cmp(&b.0[2]));
        v
    };
    assert_eq!(pos(&before), pos(&after));
    // One study, one series, one frame of reference still; the reference in the
    // sequence names the renamed slice it pointed at.
    let objs: Vec<_> = written
        .iter()
        .map(|w| open_file(w).expect("open"))
        .collect();
    for t in [
        tags::STUDY_INSTANCE_UID,
        tags::SERIES_INSTANCE_UID,
        tags::FRAME_OF_REFERENCE_UID,
    ] {
        let set: std::collections::BTreeSet<String> = objs.iter().map(|o| string(o, t)).collect();
        assert_eq!(set.len(), 1, "{t:?}: {set:?}");
        assert!(set.iter().all(|u| u.starts_with("2.25.")), "{set:?}");
    }
    let with_ref = objs
        .iter()
        .find(|o| o.get(tags::REFERENCED_IMAGE_SEQUENCE).is_some())
        .expect("the sequence is kept");
    let item = &with_ref
        .get(tags::REFERENCED_IMAGE_SEQUENCE)
        .and_then(|e| e.items())
        .expect("items")[0];
    let target = string(item, tags::REFERENCED_SOP_INSTANCE_UID);
    let z_of = |o: &dicom_object::DefaultDicomObject| string(o, tags::IMAGE_POSITION_PATIENT);
    let referenced = objs
        .iter()
        .find(|o| string(o, tags::SOP_INSTANCE_UID) == target)
        .expect("the reference points at an exported slice");
    let original = open_file(&files[1]).expect("open");
    assert_eq!(
        z_of(referenced),
        z_of(&original),
        "it is the same slice as before"
    );
    assert!(
        item.get(tags::VERIFYING_OBSERVER_NAME)
            .is_none_or(|e| e.to_str().is_ok_and(|s| s.trim().is_empty()))
    );
}

#[test]
fn dates_are_kept_only_when_asked_and_the_output_folder_must_be_new() {
    let tmp = common::tempdir();
    let (_, _) = fixture(tmp.path());
    let out = tmp.path().join("dated");
    let o = anonymize(&[
        tmp.path().join("ct").to_str().expect("utf8"),
        "--out",
        out.to_str().expect("utf8"),
        "--keep-dates",
    ]);
    assert_eq!(o.status.code(), Some(2));
    let w = files_in(&out);
    let obj = open_file(&w[0]).expect("open");
    assert_eq!(string(&obj, tags::STUDY_DATE), "20260105");
    assert_eq!(
        string(&obj, tags::PATIENT_BIRTH_DATE),
        "",
        "birth date always goes"
    );
    assert_eq!(string(&obj, tags::PATIENT_NAME), "ANONYMOUS");
    // Exporting into a folder that already holds files is refused, not merged.
    let again = anonymize(&[
        tmp.path().join("ct").to_str().expect("utf8"),
        "--out",
        out.to_str().expect("utf8"),
    ]);
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("not empty"));
}
