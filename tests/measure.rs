//! Measurements against the phantom's known geometry and hand-computed HU
//! statistics, with the calibration basis stated: Pixel Spacing for CT, "at
//! detector" for the CR (Imager Pixel Spacing only), pixels when there is none.

mod common;

use lightbox::dicom::Image;
use lightbox::dicom::header::{Calibration, CalibrationBasis};
use lightbox::dicom::pixels::Samples;
use lightbox::imaging::measure::{angle, cobb, ellipse_stats, length, rect_stats};
use lightbox::synth;

/// The middle CT slice of a 256² phantom (FOV 358.4 mm: 1.4 mm pixels).
fn ct_slice() -> (Image, Vec<i32>) {
    let tmp = common::tempdir();
    synth::write_ct(
        &tmp.path().join("ct"),
        &synth::CtSpec {
            slices: 3,
            size: 256,
            ..Default::default()
        },
    )
    .expect("ct");
    let f = lightbox::scan::list_files(&tmp.path().join("ct")).expect("list")[1].clone();
    let image = Image::open(&f).expect("open");
    let Samples::Mono(v) = image.frame(0).expect("frame").samples else {
        panic!("grey CT")
    };
    (image, v)
}

/// Image coordinates (column, row) of a patient point (x, y) mm on an axial slice.
fn at(image: &Image, x: f64, y: f64) -> [f64; 2] {
    let f = image.header.frame(0).expect("frame");
    let p = f.image_position.expect("position");
    let s = f.pixel_spacing.expect("spacing");
    // Pixel centres: position is the centre of the first pixel, at +0.5.
    [(x - p[0]) / s[1] + 0.5, (y - p[1]) / s[0] + 0.5]
}

#[test]
fn lengths_match_the_phantom_and_say_their_calibration() {
    let (image, _) = ct_slice();
    let cal = image.header.calibration;
    assert_eq!(cal.basis, CalibrationBasis::Patient);
    // The body is an ellipse 320 mm wide and 230 mm deep.
    let w = length(at(&image, -160.0, 0.0), at(&image, 160.0, 0.0), &cal);
    let d = length(at(&image, 0.0, -115.0), at(&image, 0.0, 115.0), &cal);
    let px = cal.spacing_mm.expect("spacing")[0];
    assert!((w.value - 320.0).abs() < 0.5 * px, "{w:?}");
    assert!((d.value - 230.0).abs() < 0.5 * px, "{d:?}");
    assert_eq!(w.label(), "320.0 mm (Pixel Spacing)");
    // An oblique line: 3-4-5.
    let o = length(at(&image, 0.0, 0.0), at(&image, 30.0, 40.0), &cal);
    assert!((o.value - 50.0).abs() < 1e-6, "{o:?}");
    // No spacing: pixels, and it says so.
    let none = Calibration {
        spacing_mm: None,
        basis: CalibrationBasis::Pixels,
    };
    let p = length([0.0, 0.0], [3.0, 4.0], &none);
    assert_eq!(p.label(), "5 px (uncalibrated)");
}

#[test]
fn a_cr_measured_at_the_detector_says_so() {
    let tmp = common::tempdir();
    synth::write_cr(&tmp.path().join("cr")).expect("cr");
    let f = lightbox::scan::list_files(&tmp.path().join("cr")).expect("list")[0].clone();
    let image = Image::open(&f).expect("open");
    let cal = image.header.calibration;
    assert_eq!(cal.basis, CalibrationBasis::Detector);
    let m = length([0.0, 0.0], [100.0, 0.0], &cal);
    assert!(m.label().ends_with("mm at detector"), "{}", m.label());
}

#[test]
fn roi_statistics_match_the_hand_computed_hounsfield_values() {
    let (image, stored) = ct_slice();
    let cal = image.header.calibration;
    let modality = image
        .header
        .modality_transform(image.header.frame(0).expect("frame"));
    let px = image.header.pixel.as_ref().expect("pixel format");
    let (columns, rows) = (px.columns, px.rows);
    // An 8 mm radius circle inside the aorta (centre (22, 35) mm, radius 12 mm,
    // 45 HU, noise ±8 HU): the phantom's own values, computed by hand below.
    let a = at(&image, 22.0 - 8.0, 35.0 - 8.0);
    let b = at(&image, 22.0 + 8.0, 35.0 + 8.0);
    let s = ellipse_stats(&stored, columns, rows, a, b, &modality, &cal).expect("stats");
    // Hand computation: every pixel centre inside the circle, HU = stored - 1024.
    let f = image.header.frame(0).expect("frame");
    let (p, sp) = (f.image_position.expect("pos"), f.pixel_spacing.expect("sp"));
    let mut v = Vec::new();
    for r in 0..rows {
        for c in 0..columns {
            let (x, y) = (p[0] + c as f64 * sp[1], p[1] + r as f64 * sp[0]);
            if ((x - 22.0).powi(2) + (y - 35.0).powi(2)).sqrt() <= 8.0 {
                v.push(stored[(r * columns + c) as usize] as f64 - 1024.0);
            }
        }
    }
    let mean = v.iter().sum::<f64>() / v.len() as f64;
    assert_eq!(s.pixels, v.len());
    assert!((s.mean - mean).abs() < 1e-9, "{s:?} vs {mean}");
    assert!((s.mean - 45.0).abs() < 2.0, "aorta is 45 HU: {s:?}");
    assert!(s.min >= 45.0 - 8.5 && s.max <= 45.0 + 8.5, "{s:?}");
    let area = std::f64::consts::PI * 64.0;
    assert!((s.area.value - area).abs() / area < 0.1, "{:?}", s.area);
    assert!(
        s.area.label().ends_with("mm² (Pixel Spacing)"),
        "{}",
        s.area.label()
    );
}

#[test]
fn rectangle_roi_matches_the_hand_computed_hounsfield_values() {
    let (image, stored) = ct_slice();
    let cal = image.header.calibration;
    let modality = image
        .header
        .modality_transform(image.header.frame(0).expect("frame"));
    let px = image.header.pixel.as_ref().expect("pixel format");
    let (columns, rows) = (px.columns, px.rows);
    // A 16 mm square inside the aorta (radius 12 mm: the corners are at 11.3 mm).
    let (x0, y0, x1, y1) = (14.0, 27.0, 30.0, 43.0);
    let s = rect_stats(
        &stored,
        columns,
        rows,
        at(&image, x1, y1),
        at(&image, x0, y0),
        &modality,
        &cal,
    )
    .expect("stats");
    let f = image.header.frame(0).expect("frame");
    let (p, sp) = (f.image_position.expect("pos"), f.pixel_spacing.expect("sp"));
    let mut v = Vec::new();
    for r in 0..rows {
        for c in 0..columns {
            let (x, y) = (p[0] + c as f64 * sp[1], p[1] + r as f64 * sp[0]);
            if (x0..=x1).contains(&x) && (y0..=y1).contains(&y) {
                v.push(stored[(r * columns + c) as usize] as f64 - 1024.0);
            }
        }
    }
    let mean = v.iter().sum::<f64>() / v.len() as f64;
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / v.len() as f64;
    assert_eq!(s.pixels, v.len());
    assert!((s.mean - mean).abs() < 1e-9, "{s:?} vs {mean}");
    assert!((s.sd - var.sqrt()).abs() < 1e-6, "{s:?}");
    assert!((s.mean - 45.0).abs() < 2.0, "aorta is 45 HU: {s:?}");
    assert_eq!(
        s.min,
        v.iter().copied().fold(f64::INFINITY, f64::min),
        "{s:?}"
    );
    let area = v.len() as f64 * sp[0] * sp[1];
    assert!((s.area.value - area).abs() < 1e-9);
    assert!((s.area.value - 256.0).abs() / 256.0 < 0.25, "{:?}", s.area);
}

#[test]
fn angles_are_measured_in_millimetres_not_pixels() {
    // Anisotropic pixels: 1 mm between rows, 2 mm between columns.
    let cal = Calibration {
        spacing_mm: Some([1.0, 2.0]),
        basis: CalibrationBasis::Patient,
    };
    // Arms of (10, 0) and (5, 10) pixels are (20, 0) and (10, 10) mm: 45°, where
    // the pixel grid would say 63.4°.
    let a = angle([10.0, 0.0], [0.0, 0.0], [5.0, 10.0], &cal).expect("angle");
    assert!((a.degrees - 45.0).abs() < 1e-9, "{a:?}");
    assert_eq!(a.label(), "45.0°");
    let none = Calibration {
        spacing_mm: None,
        basis: CalibrationBasis::Pixels,
    };
    let p = angle([10.0, 0.0], [0.0, 0.0], [5.0, 10.0], &none).expect("angle");
    assert!((p.degrees - 63.434_948_8).abs() < 1e-6, "{p:?}");
    assert!(p.label().contains("pixel aspect unknown"), "{}", p.label());
    // A straight angle and a degenerate arm.
    let s = angle([-3.0, 0.0], [0.0, 0.0], [7.0, 0.0], &cal).expect("angle");
    assert!((s.degrees - 180.0).abs() < 1e-9);
    assert!(angle([0.0, 0.0], [0.0, 0.0], [1.0, 1.0], &cal).is_none());
}

#[test]
fn cobb_angle_is_the_acute_angle_between_endplates_however_they_were_drawn() {
    let cal = Calibration {
        spacing_mm: Some([0.5, 0.5]),
        basis: CalibrationBasis::Detector,
    };
    // Upper endplate tilted +20°, lower one −15°: Cobb 35°.
    let line = |deg: f64, cx: f64, cy: f64, flip: bool| {
        let (dx, dy) = (deg.to_radians().cos() * 40.0, deg.to_radians().sin() * 40.0);
        let (p, q) = ([cx - dx, cy - dy], [cx + dx, cy + dy]);
        if flip { [q, p] } else { [p, q] }
    };
    for (f1, f2) in [(false, false), (true, false), (false, true), (true, true)] {
        let c = cobb(
            line(20.0, 100.0, 50.0, f1),
            line(-15.0, 100.0, 250.0, f2),
            &cal,
        )
        .expect("cobb");
        assert!((c.degrees - 35.0).abs() < 1e-9, "{f1} {f2}: {c:?}");
    }
    // Parallel endplates: 0°.
    let c = cobb(line(5.0, 0.0, 0.0, false), line(5.0, 0.0, 80.0, true), &cal).expect("cobb");
    assert!(c.degrees.abs() < 1e-6, "{c:?}");
}

#[test]
fn ultrasound_is_measured_through_its_regions_and_says_so() {
    use dicom_core::value::DataSetSequence;
    use dicom_core::{DataElement, PrimitiveValue, VR};
    use dicom_dictionary_std::tags;
    use dicom_object::InMemDicomObject;
    let tmp = common::tempdir();
    let spec = synth::SeriesSpec::axial("us", 1, 64, 1.0);
    synth::write_series(tmp.path(), &spec, |_, c, r| (c + r) as i32).expect("write");
    let f = lightbox::scan::list_files(tmp.path()).expect("list")[0].clone();
    let region = |dx: f64, dy: f64| {
        let mut r = InMemDicomObject::new_empty();
        let put = |r: &mut InMemDicomObject, t, vr, v: PrimitiveValue| {
            r.put(DataElement::new(t, vr, v));
        };
        put(
            &mut r,
            tags::REGION_SPATIAL_FORMAT,
            VR::US,
            PrimitiveValue::from(1u16),
        );
        put(
            &mut r,
            tags::PHYSICAL_UNITS_X_DIRECTION,
            VR::US,
            PrimitiveValue::from(3u16),
        );
        put(
            &mut r,
            tags::PHYSICAL_UNITS_Y_DIRECTION,
            VR::US,
            PrimitiveValue::from(3u16),
        );
        put(
            &mut r,
            tags::PHYSICAL_DELTA_X,
            VR::FD,
            PrimitiveValue::from(dx),
        );
        put(
            &mut r,
            tags::PHYSICAL_DELTA_Y,
            VR::FD,
            PrimitiveValue::from(dy),
        );
        r
    };
    let write = |regions: Vec<InMemDicomObject>| {
        let mut o = dicom_object::open_file(&f).expect("open");
        for t in [
            tags::PIXEL_SPACING,
            tags::IMAGE_POSITION_PATIENT,
            tags::IMAGE_ORIENTATION_PATIENT,
        ] {
            o.remove_element(t);
        }
        o.put(DataElement::new(
            tags::MODALITY,
            VR::CS,
            PrimitiveValue::from("US"),
        ));
        o.put(DataElement::new(
            tags::SEQUENCE_OF_ULTRASOUND_REGIONS,
            VR::SQ,
            DataSetSequence::from(regions),
        ));
        o.write_to_file(&f).expect("write");
        lightbox::dicom::read_header(&f)
            .expect("header")
            .calibration
    };
    // 0.02 cm per column, 0.025 cm per row: a 30-column, 40-row diagonal is
    // 6 mm across and 10 mm down, 11.66 mm long.
    let cal = write(vec![region(0.02, 0.025), region(0.02, 0.025)]);
    assert_eq!(cal.basis, CalibrationBasis::UsRegion);
    let m = length([0.0, 0.0], [30.0, 40.0], &cal);
    assert!((m.value - (36.0f64 + 100.0).sqrt()).abs() < 1e-9, "{m:?}");
    assert_eq!(m.label(), "11.7 mm (US region)");
    // Regions at different scales: a length could cross them, so pixels.
    let cal = write(vec![region(0.02, 0.025), region(0.05, 0.05)]);
    assert_eq!(cal.basis, CalibrationBasis::Pixels);
    assert!(
        length([0.0, 0.0], [3.0, 4.0], &cal)
            .label()
            .ends_with("(uncalibrated)")
    );
}
