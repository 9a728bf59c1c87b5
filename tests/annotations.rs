//! Corner annotations per modality: the built-in layout shows kV and mAs on CT,
//! TR and TE on MR; empty values leave no holes and lines of nothing vanish; a
//! user's file replaces only the corners it names; unknown placeholders are
//! reported.

mod common;

use lightbox::ui::annotations::{Layouts, Live, fill};

fn header(name: &str) -> lightbox::dicom::ImageHeader {
    lightbox::dicom::read_header(&common::pydicom_test_files().join(name)).expect("header")
}

#[test]
fn ct_and_mr_show_their_acquisition_and_empty_values_leave_no_holes() {
    let (layouts, problems) = Layouts::load(None);
    assert!(problems.is_empty(), "{problems:?}");
    let live = Live {
        image: "3/10".into(),
        ..Default::default()
    };
    let ct = header("CT_small.dcm");
    let c = layouts.corners("CT");
    let bottom = fill(c.bottom_left.as_deref().expect("lines"), &ct, &live);
    assert_eq!(bottom, "Im 1  3/10\n120 kV  170 mAs", "{bottom}");
    // No birth date: the sex and the file's Patient's Age (000Y), no trailing gap.
    let top = fill(c.top_left.as_deref().expect("lines"), &ct, &live);
    assert_eq!(top, "CompressedSamples CT1\n1CT1\nO  0 y", "{top}");
    let mr = header("MR_small.dcm");
    let c = layouts.corners("MR");
    let bottom = fill(c.bottom_left.as_deref().expect("lines"), &mr, &live);
    assert!(bottom.ends_with("TR 4000 ms  TE 240 ms"), "{bottom}");
    // A modality without a table of its own gets the default corners.
    assert_eq!(layouts.corners("US"), layouts.corners("default"));
}

#[test]
fn a_users_file_replaces_only_the_corners_it_names() {
    let tmp = common::tempdir();
    let f = tmp.path().join("annotations.toml");
    std::fs::write(
        &f,
        "[CT]\ntop_left = [\"{PatientID}  {AccessionNumber}\"]\n[US]\ntop_right = [\"{Nonsense}\"]\n",
    )
    .expect("write");
    let (layouts, problems) = Layouts::load(Some(&f));
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].contains("{Nonsense}"), "{problems:?}");
    let (built_in, _) = Layouts::load(None);
    let mine = layouts.corners("CT");
    let theirs = built_in.corners("CT");
    assert_eq!(
        mine.top_left.as_deref(),
        Some(&["{PatientID}  {AccessionNumber}".to_string()][..])
    );
    assert_eq!(
        mine.bottom_left, theirs.bottom_left,
        "kept from the built-in CT table"
    );
    assert_eq!(
        mine.top_right, theirs.top_right,
        "kept from the default table"
    );
}
