//! Geometry and series building on synthetic series written to disk: slices come
//! out ordered by position whatever the file names or acquisition order, spacing
//! comes from positions, and gaps, duplicates, tilt and mixed orientations are
//! reported.

mod common;

use std::path::Path;

use lightbox::model::{self, DisplaySet, GeometryIssue, SortBasis};
use lightbox::scan;
use lightbox::synth::{self, SeriesSpec};

fn write(dir: &Path, spec: &SeriesSpec) {
    synth::write_series(dir, spec, |k, c, r| ((k * 7 + c + r) % 4096) as i32)
        .expect("write series");
}

/// The only display set of the only series under `dir`, with its headers.
fn one_set(dir: &Path) -> (DisplaySet, Vec<lightbox::dicom::ImageHeader>, Vec<String>) {
    let scan = scan::scan(dir).expect("scan");
    assert!(scan.failures.is_empty(), "{:?}", scan.failures);
    let patients = model::build(&scan.headers);
    assert_eq!(patients.len(), 1);
    let series = &patients[0].studies[0].series[0];
    assert_eq!(series.display_sets.len(), 1, "{:?}", series.warnings);
    (
        series.display_sets[0].clone(),
        scan.headers,
        series.warnings.clone(),
    )
}

fn instance_numbers(set: &DisplaySet, headers: &[lightbox::dicom::ImageHeader]) -> Vec<i64> {
    set.frames
        .iter()
        .map(|f| headers[f.instance].instance_number.unwrap_or(-1))
        .collect()
}

#[test]
fn hashed_file_names_are_sorted_by_position() {
    let tmp = common::tempdir();
    let spec = SeriesSpec::axial("sorted", 12, 16, 2.5);
    write(tmp.path(), &spec);
    let (set, headers, _) = one_set(tmp.path());
    assert_eq!(set.sorted_by, SortBasis::Position);
    // Instance 1 is the lowest slice; axial stacks read superior first.
    assert_eq!(
        instance_numbers(&set, &headers),
        (1..=12).rev().collect::<Vec<_>>()
    );
    let g = set.geometry.expect("geometry");
    assert_eq!(g.plane, "axial");
    assert!((g.spacing_mm.expect("spacing") - 2.5).abs() < 1e-9);
    assert!(g.issues.is_empty(), "{:?}", g.issues);
}

#[test]
fn reversed_acquisition_is_ordered_by_position_not_instance_number() {
    let tmp = common::tempdir();
    let mut spec = SeriesSpec::axial("reversed", 10, 16, 3.0);
    spec.positions.reverse(); // instance 1 is the highest slice
    // Files written in the other order: neither file nor instance order decides.
    spec.positions.swap(2, 7);
    write(tmp.path(), &spec);
    let (set, headers, _) = one_set(tmp.path());
    let z: Vec<f64> = set
        .frames
        .iter()
        .map(|f| headers[f.instance].frames[0].image_position.expect("ipp")[2])
        .collect();
    assert!(z.windows(2).all(|w| w[0] > w[1]), "superior first: {z:?}");
    let g = set.geometry.expect("geometry");
    // Positions along the reading normal (toward the feet) increase.
    assert!(g.positions_mm.windows(2).all(|w| w[1] > w[0]));
    assert_eq!(g.normal, [0.0, 0.0, -1.0]);
}

#[test]
fn missing_slice_is_reported_as_a_gap() {
    let tmp = common::tempdir();
    let mut spec = SeriesSpec::axial("gap", 10, 16, 1.25);
    spec.positions.remove(4);
    write(tmp.path(), &spec);
    let (set, _, _) = one_set(tmp.path());
    let g = set.geometry.expect("geometry");
    assert_eq!(
        g.issues,
        vec![GeometryIssue::Gap {
            // Superior first: slices 9, 8, 7, 6, 5 | 3, 2, 1, 0.
            after_slice: 4,
            distance_mm: 2.5,
            missing_estimate: 1
        }]
    );
    assert!((g.spacing_mm.expect("spacing") - 1.25).abs() < 1e-9);
}

#[test]
fn duplicate_positions_and_uneven_spacing_are_reported() {
    let tmp = common::tempdir();
    let mut spec = SeriesSpec::axial("dup", 8, 16, 2.0);
    spec.positions[5] = spec.positions[4];
    write(tmp.path(), &spec);
    let (set, _, _) = one_set(tmp.path());
    let issues = set.issues().to_vec();
    assert!(
        // Superior first: z 14, 12, 8, 8, ...: slices 2 and 3 coincide.
        issues.contains(&GeometryIssue::Duplicate { slice: 3 }),
        "{issues:?}"
    );

    let tmp = common::tempdir();
    let mut spec = SeriesSpec::axial("uneven", 8, 16, 2.0);
    spec.positions[3][2] += 0.4;
    write(tmp.path(), &spec);
    let (set, _, _) = one_set(tmp.path());
    assert!(
        set.issues()
            .iter()
            .any(|i| matches!(i, GeometryIssue::UnevenSpacing { .. })),
        "{:?}",
        set.issues()
    );
}

#[test]
fn gantry_tilt_is_measured() {
    let tmp = common::tempdir();
    let mut spec = SeriesSpec::axial("tilt", 10, 16, 2.0);
    let tilt = 15f64.to_radians();
    for (k, p) in spec.positions.iter_mut().enumerate() {
        p[1] += k as f64 * 2.0 * tilt.tan(); // table moves along y as slices advance in z
    }
    write(tmp.path(), &spec);
    let (set, _, _) = one_set(tmp.path());
    let deg = set
        .issues()
        .iter()
        .find_map(|i| match i {
            GeometryIssue::GantryTilt { degrees } => Some(*degrees),
            _ => None,
        })
        .expect("tilt reported");
    assert!((deg - 15.0).abs() < 0.01, "{deg}");
}

#[test]
fn oblique_stack_sorts_along_its_normal_and_labels_edges() {
    let tmp = common::tempdir();
    let mut spec = SeriesSpec::axial("oblique", 9, 16, 2.0);
    let a = 50f64.to_radians();
    // Rows run left; columns run posterior and up by 50°: normal = (0, -sin, cos).
    spec.orientation = [1.0, 0.0, 0.0, 0.0, a.cos(), a.sin()];
    let normal = [0.0, -a.sin(), a.cos()];
    spec.positions = (0..9)
        .map(|k| [0.0, normal[1] * 2.0 * k as f64, normal[2] * 2.0 * k as f64])
        .collect();
    spec.positions.swap(0, 8);
    spec.positions.swap(2, 5);
    write(tmp.path(), &spec);
    let (set, _, _) = one_set(tmp.path());
    let g = set.geometry.expect("geometry");
    assert_eq!(g.plane, "oblique");
    assert!((g.spacing_mm.expect("spacing") - 2.0).abs() < 1e-6);
    assert!(g.issues.is_empty(), "{:?}", g.issues);
    let plane =
        lightbox::imaging::geometry::ImagePlane::new([0.0; 3], spec.orientation, [1.0, 1.0])
            .expect("plane");
    let l = plane.edge_labels();
    assert_eq!((l.left.as_str(), l.right.as_str()), ("R", "L"));
    assert_eq!((l.top.as_str(), l.bottom.as_str()), ("FA", "HP"));
}

#[test]
fn sagittal_mr_is_labelled_and_spaced() {
    let tmp = common::tempdir();
    synth::write_mr(
        tmp.path(),
        &synth::MrSpec {
            slices: 6,
            size: 32,
            ..Default::default()
        },
    )
    .expect("mr");
    let (set, headers, _) = one_set(tmp.path());
    let g = set.geometry.expect("geometry");
    assert_eq!(g.plane, "sagittal");
    assert!((g.spacing_mm.expect("spacing") - 4.0).abs() < 1e-9);
    let f = &headers[set.frames[0].instance].frames[0];
    let plane = lightbox::imaging::geometry::ImagePlane::new(
        f.image_position.expect("ipp"),
        f.image_orientation.expect("iop"),
        f.pixel_spacing.expect("ps"),
    )
    .expect("plane");
    let l = plane.edge_labels();
    assert_eq!(
        [l.left, l.right, l.top, l.bottom],
        ["A", "P", "H", "F"].map(String::from)
    );
}

#[test]
fn mixed_orientation_series_is_split_with_a_warning() {
    let tmp = common::tempdir();
    let axial = SeriesSpec::axial("mixed", 5, 16, 2.0);
    let mut sagittal = axial.clone();
    sagittal.orientation = [0.0, 1.0, 0.0, 0.0, 0.0, -1.0];
    sagittal.positions = (0..4).map(|k| [k as f64 * 3.0, 0.0, 0.0]).collect();
    sagittal.series_uid = axial.series_uid.clone();
    // Different SOP Instance UIDs: derive from another seed, same series UID.
    write(&tmp.path().join("a"), &axial);
    let mut s2 = sagittal.clone();
    s2.series_description = "other".into();
    synth::write_series(
        &tmp.path().join("b"),
        &SeriesSpec {
            series_uid: format!("{}.9", axial.series_uid),
            ..s2
        },
        |_, _, _| 0,
    )
    .expect("write");
    // Rewrite the sagittal files into the same series by giving them the series UID.
    let scan = scan::scan(tmp.path()).expect("scan");
    let mut headers = scan.headers;
    for h in headers.iter_mut() {
        h.series_uid = axial.series_uid.clone();
    }
    let patients = model::build(&headers);
    let series = &patients[0].studies[0].series[0];
    assert_eq!(series.display_sets.len(), 2);
    assert!(
        series
            .warnings
            .iter()
            .any(|w| w.contains("mixed orientation")),
        "{:?}",
        series.warnings
    );
    let sizes: Vec<usize> = series.display_sets.iter().map(|d| d.frames.len()).collect();
    assert_eq!(sizes, vec![5, 4]);
}

#[test]
fn volume_has_the_right_affine_and_hounsfield_values() {
    let tmp = common::tempdir();
    let spec = synth::CtSpec {
        slices: 20,
        size: 64,
        ..Default::default()
    };
    synth::write_ct(tmp.path(), &spec).expect("ct");
    let (set, headers, _) = one_set(tmp.path());
    let vol = lightbox::volume::load(&set, &headers).expect("volume");
    assert_eq!(vol.dims, [64, 64, 20]);
    assert_eq!(
        vol.fast_slices, 20,
        "uncompressed slices take the fast path"
    );
    let ps = spec.fov_mm / 64.0;
    assert!((vol.spacing_mm[0] - ps).abs() < 1e-9 && (vol.spacing_mm[2] - 1.0).abs() < 1e-9);
    // Voxel (x, y, z) → patient: check the centre of the vertebral body (x=0, y=62 mm).
    let m = vol.patient_from_voxel;
    let inv = m.try_inverse().expect("invertible");
    let first_z = headers[set.frames[0].instance].frames[0]
        .image_position
        .expect("ipp")[2];
    let v = inv * nalgebra::Vector4::new(0.0, 62.0, first_z + 5.0, 1.0);
    let (x, y, z) = (
        v.x.round() as usize,
        v.y.round() as usize,
        v.z.round() as usize,
    );
    let hu = vol.value(x, y, z);
    assert!(
        (hu - 250.0).abs() <= 8.0,
        "cancellous bone should be 250 ± noise HU, got {hu}"
    );
    // Air in the corner, lung lateral to the heart.
    assert!((vol.value(0, 0, 0) + 1000.0).abs() <= 8.0);
    let v = inv * nalgebra::Vector4::new(-75.0, -60.0, first_z + 5.0, 1.0);
    let lung = vol.value(
        v.x.round() as usize,
        v.y.round() as usize,
        v.z.round() as usize,
    );
    assert!((lung + 850.0).abs() <= 60.0, "lung {lung}");
    let (lo, hi) = vol.modality_range().expect("range");
    assert!(lo >= -1010.0 && (990.0..=1010.0).contains(&hi), "{lo} {hi}");
}

#[test]
fn projection_radiograph_is_calibrated_at_detector() {
    let tmp = common::tempdir();
    synth::write_cr(tmp.path()).expect("cr");
    let scan = scan::scan(tmp.path()).expect("scan");
    let h = &scan.headers[0];
    assert_eq!(
        h.calibration.basis,
        lightbox::dicom::CalibrationBasis::Detector
    );
    assert_eq!(h.calibration.spacing_mm, Some([0.2, 0.2]));
    assert_eq!(h.calibration.basis.label(), "at detector");
}

/// An enhanced multi-frame CT: geometry and rescale only in functional groups,
/// frames stored out of order.
#[test]
fn enhanced_multiframe_frames_sort_by_per_frame_position() {
    use dicom_core::value::DataSetSequence;
    use dicom_core::{DataElement, PrimitiveValue, VR};
    use dicom_dictionary_std::{tags, uids};
    use dicom_object::InMemDicomObject;
    use dicom_object::meta::FileMetaTableBuilder;

    let item =
        |elems: Vec<DataElement<InMemDicomObject>>| InMemDicomObject::from_element_iter(elems);
    let seq = |tag, items: Vec<InMemDicomObject>| {
        DataElement::new(tag, VR::SQ, DataSetSequence::from(items))
    };
    let text = |tag, vr, v: &str| DataElement::new(tag, vr, PrimitiveValue::from(v));
    let us = |tag, v: u16| DataElement::new(tag, VR::US, PrimitiveValue::from(v));

    let z_order = [4.0, 0.0, 3.0, 1.0, 2.0]; // stored order of the frames' z (×2.5 mm)
    let (rows, cols) = (8u16, 6u16);
    let shared = item(vec![
        seq(
            tags::PIXEL_MEASURES_SEQUENCE,
            vec![item(vec![
                text(tags::PIXEL_SPACING, VR::DS, "0.5\\0.75"),
                text(tags::SLICE_THICKNESS, VR::DS, "2.5"),
            ])],
        ),
        seq(
            tags::PLANE_ORIENTATION_SEQUENCE,
            vec![item(vec![text(
                tags::IMAGE_ORIENTATION_PATIENT,
                VR::DS,
                "1\\0\\0\\0\\1\\0",
            )])],
        ),
        seq(
            tags::PIXEL_VALUE_TRANSFORMATION_SEQUENCE,
            vec![item(vec![
                text(tags::RESCALE_INTERCEPT, VR::DS, "-1024"),
                text(tags::RESCALE_SLOPE, VR::DS, "1"),
            ])],
        ),
    ]);
    let per_frame: Vec<InMemDicomObject> = z_order
        .iter()
        .map(|z| {
            item(vec![seq(
                tags::PLANE_POSITION_SEQUENCE,
                vec![item(vec![text(
                    tags::IMAGE_POSITION_PATIENT,
                    VR::DS,
                    &format!("-10\\-20\\{}", z * 2.5),
                )])],
            )])
        })
        .collect();
    let mut pixels: Vec<u16> = Vec::new();
    for z in z_order {
        pixels.extend(std::iter::repeat_n(
            1000 + (z as u16) * 10,
            rows as usize * cols as usize,
        ));
    }
    let sop = "2.25.1234567";
    let mut o = InMemDicomObject::new_empty();
    o.put(text(
        tags::SOP_CLASS_UID,
        VR::UI,
        uids::ENHANCED_CT_IMAGE_STORAGE,
    ));
    o.put(text(tags::SOP_INSTANCE_UID, VR::UI, sop));
    o.put(text(tags::STUDY_INSTANCE_UID, VR::UI, "2.25.1"));
    o.put(text(tags::SERIES_INSTANCE_UID, VR::UI, "2.25.2"));
    o.put(text(tags::MODALITY, VR::CS, "CT"));
    o.put(text(tags::NUMBER_OF_FRAMES, VR::IS, "5"));
    o.put(us(tags::SAMPLES_PER_PIXEL, 1));
    o.put(text(
        tags::PHOTOMETRIC_INTERPRETATION,
        VR::CS,
        "MONOCHROME2",
    ));
    o.put(us(tags::ROWS, rows));
    o.put(us(tags::COLUMNS, cols));
    o.put(us(tags::BITS_ALLOCATED, 16));
    o.put(us(tags::BITS_STORED, 12));
    o.put(us(tags::HIGH_BIT, 11));
    o.put(us(tags::PIXEL_REPRESENTATION, 0));
    o.put(seq(tags::SHARED_FUNCTIONAL_GROUPS_SEQUENCE, vec![shared]));
    o.put(seq(tags::PER_FRAME_FUNCTIONAL_GROUPS_SEQUENCE, per_frame));
    o.put(DataElement::new(
        tags::PIXEL_DATA,
        VR::OW,
        PrimitiveValue::U16(pixels.into()),
    ));
    let file = o
        .with_meta(
            FileMetaTableBuilder::new()
                .transfer_syntax(uids::EXPLICIT_VR_LITTLE_ENDIAN)
                .media_storage_sop_class_uid(uids::ENHANCED_CT_IMAGE_STORAGE)
                .media_storage_sop_instance_uid(sop),
        )
        .expect("meta");
    let tmp = common::tempdir();
    file.write_to_file(tmp.path().join("enhanced.dcm"))
        .expect("write");

    let (set, headers, _) = one_set(tmp.path());
    assert!(set.multiframe);
    assert_eq!(
        set.frames.iter().map(|f| f.frame).collect::<Vec<_>>(),
        vec![0, 2, 4, 3, 1]
    );
    let g = set.geometry.clone().expect("geometry");
    assert!((g.spacing_mm.expect("spacing") - 2.5).abs() < 1e-9);
    let f0 = &headers[0].frames[0];
    assert_eq!(f0.pixel_spacing, Some([0.5, 0.75]));
    assert_eq!(f0.rescale.intercept, -1024.0);
    let vol = lightbox::volume::load(&set, &headers).expect("volume");
    assert_eq!(vol.dims, [6, 8, 5]);
    assert_eq!(vol.spacing_mm, [0.75, 0.5, 2.5]);
    // The volume follows the stack's reading order (superior first); its affine
    // says so: voxel z 0 is the top slice, z steps 2.5 mm toward the feet.
    for z in 0..5 {
        assert_eq!(vol.value(3, 4, z), 1000.0 + 10.0 * (4 - z) as f64 - 1024.0);
    }
    let m = vol.patient_from_voxel;
    assert_eq!((m[(0, 3)], m[(1, 3)], m[(2, 3)]), (-10.0, -20.0, 10.0));
    assert!((m[(2, 2)] + 2.5).abs() < 1e-9);
}

#[test]
fn image_and_patient_coordinates_round_trip_on_an_oblique_plane() {
    use lightbox::imaging::geometry::ImagePlane;
    let s = std::f64::consts::FRAC_1_SQRT_2;
    let plane = ImagePlane::new(
        [-120.0, 30.0, 75.0],
        [s, s, 0.0, 0.0, 0.0, -1.0],
        [0.8, 0.6],
    )
    .expect("plane");
    for (c, r) in [(0.0, 0.0), (10.5, 3.25), (511.0, 255.5)] {
        let p = plane.patient_point(c, r);
        let (c2, r2) = plane.image_point(&p);
        assert!(
            (c - c2).abs() < 1e-9 && (r - r2).abs() < 1e-9,
            "{c},{r} -> {c2},{r2}"
        );
    }
}

#[test]
fn reference_lines_of_axial_slices_cross_the_scout_where_they_are() {
    use lightbox::imaging::geometry::{ImagePlane, reference_line};
    let tmp = common::tempdir();
    let spec = synth::CtSpec {
        slices: 20,
        size: 64,
        spacing_mm: 2.5,
        ..Default::default()
    };
    synth::write_ct(&tmp.path().join("ct"), &spec).expect("ct");
    synth::write_ct_localizer(&tmp.path().join("scout"), &spec).expect("scout");
    let plane = |h: &lightbox::dicom::ImageHeader| {
        let f = h.frame(0).expect("frame");
        ImagePlane::new(
            f.image_position.expect("position"),
            f.image_orientation.expect("orientation"),
            f.pixel_spacing.expect("spacing"),
        )
        .expect("plane")
    };
    let scout_file = &lightbox::scan::list_files(&tmp.path().join("scout")).expect("list")[0];
    let scout = lightbox::dicom::read_header(scout_file).expect("scout");
    let px = scout.pixel.as_ref().expect("pixels");
    let sp = plane(&scout);
    let axials = lightbox::scan::list_files(&tmp.path().join("ct")).expect("list");
    assert_eq!(axials.len(), 20);
    for f in &axials {
        let h = lightbox::dicom::read_header(f).expect("axial");
        let ap = plane(&h);
        let z = ap.position.z;
        // The scout's rows go down from its top at the row spacing: the slice at z
        // is the row (top − z) / spacing, across the whole width.
        let row = (sp.position.z - z) / sp.spacing_mm[0];
        let (p, q) = reference_line(&sp, px.columns, px.rows, &ap).expect("a line");
        for e in [p, q] {
            assert!((e[1] - row).abs() < 1e-6, "z {z}: {p:?} {q:?}, row {row}");
        }
        let (l, r) = (p[0].min(q[0]), p[0].max(q[0]));
        assert_eq!((l, r), (-0.5, px.columns as f64 - 0.5));
        // Axial on axial: parallel, no line.
        assert!(reference_line(&ap, 64, 64, &ap).is_none());
    }
    // A sagittal plane at x = 10 mm cuts the coronal scout along a column.
    let sag = ImagePlane::new(
        [10.0, -100.0, 400.0],
        [0.0, 1.0, 0.0, 0.0, 0.0, -1.0],
        [1.0, 1.0],
    )
    .expect("sagittal");
    let (p, q) = reference_line(&sp, px.columns, px.rows, &sag).expect("a line");
    let col = (10.0 - sp.position.x) / sp.spacing_mm[1];
    assert!(
        (p[0] - col).abs() < 1e-6 && (q[0] - col).abs() < 1e-6,
        "{p:?} {q:?}"
    );
    // A slice beyond the scout's extent misses it.
    let far = ImagePlane::new(
        [0.0, 0.0, 5000.0],
        [1.0, 0.0, 0.0, 0.0, 1.0, 0.0],
        [1.0, 1.0],
    )
    .expect("far");
    assert!(reference_line(&sp, px.columns, px.rows, &far).is_none());
}

#[test]
fn mpr_images_hold_the_voxels_at_the_positions_their_headers_say() {
    use lightbox::imaging::geometry::ImagePlane;
    use lightbox::imaging::mpr::{Plane, Source};
    let tmp = common::tempdir();
    synth::write_ct(
        &tmp.path().join("ct"),
        &synth::CtSpec {
            slices: 12,
            size: 40,
            spacing_mm: 2.5,
            ..Default::default()
        },
    )
    .expect("ct");
    let (set, headers, _) = one_set(&tmp.path().join("ct"));
    let src = Source::new(&set, &headers).expect("reformattable");
    // The stack's voxels, by slice (display order) and sample.
    let slices: Vec<Vec<i32>> = set
        .frames
        .iter()
        .map(|r| {
            let img = lightbox::dicom::Image::open(&headers[r.instance].path).expect("open");
            match img.frame(r.frame).expect("frame").samples {
                lightbox::dicom::pixels::Samples::Mono(v) => v,
                _ => panic!("grey"),
            }
        })
        .collect();
    let plane_of = |h: &lightbox::dicom::ImageHeader| {
        let f = h.frame(0).expect("frame");
        ImagePlane::new(
            f.image_position.expect("pos"),
            f.image_orientation.expect("ori"),
            f.pixel_spacing.expect("spacing"),
        )
        .expect("plane")
    };
    let stack: Vec<ImagePlane> = set
        .frames
        .iter()
        .map(|r| plane_of(&headers[r.instance]))
        .collect();
    // The stack's own plane is the acquired slices, numbered as they are (a
    // reader quotes an image number from either).
    let numbers =
        |of: &dyn Fn(usize) -> Option<i64>| (0..set.frames.len()).map(of).collect::<Vec<_>>();
    let acquired = numbers(&|k| headers[set.frames[k].instance].instance_number);
    assert_eq!(
        numbers(&|k| src.header(Plane::Along, k).instance_number),
        acquired
    );
    assert_ne!(
        acquired.first(),
        Some(&Some(1)),
        "this test wants the display order against the numbering"
    );
    for (plane, name) in [
        (Plane::AcrossRows, "coronal"),
        (Plane::AcrossColumns, "sagittal"),
    ] {
        assert_eq!(plane.label("axial"), name);
        for k in [0usize, 17, 39] {
            let h = src.header(plane, k);
            let img = src.image(plane, k, &|s, i| slices[s][i]);
            let p = h.pixel.as_ref().expect("pixels");
            assert_eq!((p.rows, p.columns), (12, 40));
            assert_eq!(img.len(), 12 * 40);
            let mp = plane_of(&h);
            for (r, c) in [(0u32, 0u32), (5, 9), (11, 39), (3, 20)] {
                // The patient point of this reformatted pixel is a voxel centre of
                // the stack, and the value there is that voxel's.
                let at = mp.patient_point(c as f64, r as f64);
                let (s, (sc, sr)) = stack
                    .iter()
                    .enumerate()
                    .map(|(s, pl)| (s, pl.image_point(&at)))
                    .min_by(|a, b| {
                        let d = |x: &(usize, (f64, f64))| {
                            let p = stack[x.0].patient_point((x.1).0, (x.1).1);
                            (p - at).norm()
                        };
                        d(a).total_cmp(&d(b))
                    })
                    .expect("a slice");
                let on = stack[s].patient_point(sc, sr);
                assert!(
                    (on - at).norm() < 1e-6,
                    "{name} {k} ({c}, {r}) is off the stack"
                );
                assert!((sc - sc.round()).abs() < 1e-6 && (sr - sr.round()).abs() < 1e-6);
                let voxel = slices[s][sr.round() as usize * 40 + sc.round() as usize];
                assert_eq!(img[(r * 40 + c) as usize], voxel, "{name} {k} ({c}, {r})");
            }
            // Head up: the top row is the highest slice.
            assert!(mp.patient_point(0.0, 0.0).z > mp.patient_point(0.0, 11.0).z);
            assert_eq!(lightbox::imaging::geometry::plane_name(&mp), name);
        }
        // Positions advance by the pixel spacing across the stack.
        let (pos, _) = src.positions(plane);
        assert_eq!(pos.len(), 40);
        let step = (pos[1] - pos[0]).abs();
        assert!((step - 358.4 / 40.0).abs() < 1e-9, "{step}");
    }
    // A stack with a slice missing is reformatted in patient space: not
    // regular (no voxel copies), its gap named for the planes' annotation,
    // and its corners where the first and last slices are.
    let mut gappy = set.clone();
    gappy.frames.remove(5);
    if let Some(g) = gappy.geometry.as_mut() {
        g.positions_mm.remove(5);
        g.max_spacing_mm = Some(5.0);
    }
    let src = Source::new(&gappy, &headers).expect("a gap is cut around");
    assert!(!src.regular);
    let note = src.note.clone().unwrap_or_default();
    assert!(note.contains("gap after slice 5"), "{note}");
    let top = headers[gappy.frames[0].instance].frames[0]
        .image_position
        .expect("position");
    let corner = src.patient_point(0.0, 0.0, (gappy.frames.len() - 1) as f64);
    let lowest = src.patient_point(0.0, 0.0, 0.0);
    assert!(
        ((corner.z - top[2]).abs() < 1e-6) || ((lowest.z - top[2]).abs() < 1e-6),
        "{corner} / {lowest} vs {top:?}"
    );
}

/// A reader expects each plane of an MPR hung the standard way whatever the
/// stack was acquired as: the axial anterior up with the patient's right on
/// screen left, the coronal head up with right on screen left, the sagittal
/// head up with anterior on screen left. A sagittal MR and a coronal stack
/// (with its columns running up, and read the other way) are reformatted into
/// such planes, each pixel still the voxel its position says.
#[test]
fn mpr_of_sagittal_and_coronal_stacks_hangs_every_plane_as_a_reader_expects() {
    use lightbox::imaging::geometry::{ImagePlane, plane_name};
    use lightbox::imaging::mpr::{Plane, Source};
    let tmp = common::tempdir();
    let (n, size) = (6usize, 10usize);
    // Sagittal: rows run posterior, columns to the feet, slices right to left.
    let mut sag = synth::SeriesSpec::axial("mpr-sagittal", n, size, 3.0);
    sag.orientation = [0.0, 1.0, 0.0, 0.0, 0.0, -1.0];
    sag.positions = (0..n).map(|k| [-7.5 + 3.0 * k as f64, -4.5, 4.5]).collect();
    // Coronal, its columns running up (head) and its slices posterior first.
    let mut cor = synth::SeriesSpec::axial("mpr-coronal", n, size, 2.0);
    cor.orientation = [1.0, 0.0, 0.0, 0.0, 0.0, 1.0];
    cor.positions = (0..n).map(|k| [-4.5, 5.0 - 2.0 * k as f64, -4.5]).collect();
    for (spec, acquired) in [(sag, "sagittal"), (cor, "coronal")] {
        let dir = tmp.path().join(acquired);
        // Every voxel a different value.
        synth::write_series(&dir, &spec, |k, c, r| (k * 1000 + r * 10 + c) as i32).expect("series");
        let (set, headers, _) = one_set(&dir);
        let src = Source::new(&set, &headers).expect("reformattable");
        let stack: Vec<(ImagePlane, Vec<i32>)> = set
            .frames
            .iter()
            .map(|r| {
                let h = &headers[r.instance];
                let f = h.frame(r.frame).expect("frame");
                let plane = ImagePlane::new(
                    f.image_position.expect("pos"),
                    f.image_orientation.expect("ori"),
                    f.pixel_spacing.expect("spacing"),
                )
                .expect("plane");
                let img = lightbox::dicom::Image::open(&h.path).expect("open");
                let v = match img.frame(r.frame).expect("frame").samples {
                    lightbox::dicom::pixels::Samples::Mono(v) => v,
                    _ => panic!("grey"),
                };
                (plane, v)
            })
            .collect();
        let mut names = Vec::new();
        for plane in Plane::ALL {
            let name = plane.label(acquired);
            names.push(name);
            for k in [0, src.count(plane) / 2, src.count(plane) - 1] {
                let h = src.header(plane, k);
                let f = h.frame(0).expect("frame");
                let mp = ImagePlane::new(
                    f.image_position.expect("pos"),
                    f.image_orientation.expect("ori"),
                    f.pixel_spacing.expect("spacing"),
                )
                .expect("plane");
                assert_eq!(plane_name(&mp), name, "{acquired} stack, {plane:?}");
                let e = mp.edge_labels();
                let want = match name {
                    "axial" => ["R", "L", "A", "P"],
                    "coronal" => ["R", "L", "H", "F"],
                    _ => ["A", "P", "H", "F"],
                };
                if plane != Plane::Along {
                    assert_eq!(
                        [&e.left[..], &e.right[..], &e.top[..], &e.bottom[..]],
                        want,
                        "{acquired} stack: its {name} reformat {k}"
                    );
                }
                // Every pixel is the voxel at the position its header says.
                let img = src.image(plane, k, &|s, i| stack[s].1[i]);
                let p = h.pixel.as_ref().expect("pixels");
                for r in 0..p.rows {
                    for c in 0..p.columns {
                        let at = mp.patient_point(c as f64, r as f64);
                        let (s, (sc, sr)) = stack
                            .iter()
                            .enumerate()
                            .map(|(s, (pl, _))| (s, pl.image_point(&at)))
                            .find(|(s, (sc, sr))| {
                                (stack[*s].0.patient_point(*sc, *sr) - at).norm() < 1e-6
                            })
                            .unwrap_or_else(|| {
                                panic!("{acquired} {name} {k} ({c}, {r}) off the stack")
                            });
                        let voxel = stack[s].1[sr.round() as usize * size + sc.round() as usize];
                        assert_eq!(
                            img[(r * p.columns + c) as usize],
                            voxel,
                            "{acquired} stack, {name} {k} ({c}, {r})"
                        );
                    }
                }
            }
            // Read superior, anterior or right first.
            let (pos, _) = src.positions(plane);
            let first = src.header(plane, 0).frames[0].image_position.expect("pos");
            let last = src.header(plane, pos.len() - 1).frames[0]
                .image_position
                .expect("pos");
            if plane != Plane::Along {
                let d = [last[0] - first[0], last[1] - first[1], last[2] - first[2]];
                match name {
                    "axial" => assert!(d[2] < 0.0, "{acquired}: axial read head first"),
                    "coronal" => assert!(d[1] > 0.0, "{acquired}: coronal read anterior first"),
                    _ => assert!(d[0] > 0.0, "{acquired}: sagittal read right first"),
                }
            }
        }
        names.sort();
        assert_eq!(names, ["axial", "coronal", "sagittal"], "{acquired}");
    }
}
