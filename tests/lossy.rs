//! The lossy-compression warning a reader must see: from the transfer syntax of a
//! JPEG baseline file, and from Lossy Image Compression (0028,2110) with its ratio
//! and method on a file decompressed since.

mod common;

use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::tags;

#[test]
fn lossy_images_say_so_with_ratio_and_method() {
    let jpeg = common::pydicom_test_files().join("JPEG-lossy.dcm");
    let h = lightbox::dicom::read_header(&jpeg).expect("header");
    assert!(
        h.lossy.as_deref().is_some_and(|n| n.starts_with("LOSSY")),
        "{:?}",
        h.lossy
    );
    let tmp = common::tempdir();
    let spec = lightbox::synth::SeriesSpec::axial("lossy", 1, 16, 1.0);
    lightbox::synth::write_series(tmp.path(), &spec, |_, c, r| (c + r) as i32).expect("write");
    let f = lightbox::scan::list_files(tmp.path()).expect("list")[0].clone();
    let h = lightbox::dicom::read_header(&f).expect("header");
    assert_eq!(h.lossy, None, "uncompressed and never lossy");
    let mut o = dicom_object::open_file(&f).expect("open");
    o.put(DataElement::new(
        tags::LOSSY_IMAGE_COMPRESSION,
        VR::CS,
        PrimitiveValue::from("01"),
    ));
    o.put(DataElement::new(
        tags::LOSSY_IMAGE_COMPRESSION_RATIO,
        VR::DS,
        PrimitiveValue::from("10\\7.5"),
    ));
    o.put(DataElement::new(
        tags::LOSSY_IMAGE_COMPRESSION_METHOD,
        VR::CS,
        PrimitiveValue::from("ISO_10918_1\\ISO_15444_1"),
    ));
    o.write_to_file(&f).expect("write");
    let h = lightbox::dicom::read_header(&f).expect("header");
    assert_eq!(
        h.lossy.as_deref(),
        Some("LOSSY 10:1 7.5:1 ISO_10918_1 ISO_15444_1")
    );
}
