//! Display shutters and overlay planes: the shutter hides exactly what its shapes
//! leave out (checked against the geometry by hand), and overlays burn in exactly
//! where DCMTK's `dcm2pnm` draws them (synthetic planes at offsets, and pydicom's
//! real overlay example).

mod common;

use std::path::Path;
use std::process::Command;

use dicom_core::{DataElement, PrimitiveValue, Tag, VR};
use lightbox::dicom::Image;
use lightbox::imaging::render::{RenderOptions, render};

fn first(dir: &Path) -> std::path::PathBuf {
    lightbox::scan::list_files(dir).expect("list")[0].clone()
}

#[test]
fn the_shutter_hides_what_lies_outside_its_shapes() {
    let tmp = common::tempdir();
    common::write_display_cases(tmp.path());
    // Rectangle columns 6–58, rows 3–50, and a circle of radius 27 around row 30,
    // column 33 (1-based); outside: P-value 0x8000, level 128 of 255.
    let image = Image::open(&first(&tmp.path().join("shutter-rc"))).expect("open");
    let px = image.frame(0).expect("frame");
    let shown = render(&image.header, 0, &px, &RenderOptions::default()).expect("render");
    let whole = render(
        &image.header,
        0,
        &px,
        &RenderOptions {
            ignore_shutter: true,
            ..Default::default()
        },
    )
    .expect("render");
    let (mut inside, mut outside) = (0, 0);
    for r in 0..64u32 {
        for c in 0..64u32 {
            let (x, y) = (c as f64 + 1.0, r as f64 + 1.0);
            let visible = (6.0..=58.0).contains(&x)
                && (3.0..=50.0).contains(&y)
                && (y - 30.0).powi(2) + (x - 33.0).powi(2) <= 27.0 * 27.0;
            let i = (r * 64 + c) as usize;
            if visible {
                inside += 1;
                assert_eq!(shown.data[i], whole.data[i], "({c}, {r}) is inside");
            } else {
                outside += 1;
                assert_eq!(shown.data[i], 128, "({c}, {r}) is outside");
            }
        }
    }
    assert!(inside > 1500 && outside > 1000, "{inside} {outside}");
    // The concave polygon (a notch up to row 32 from the bottom edge), white.
    let image = Image::open(&first(&tmp.path().join("shutter-poly"))).expect("open");
    let px = image.frame(0).expect("frame");
    let shown = render(&image.header, 0, &px, &RenderOptions::default()).expect("render");
    let at = |row: u32, col: u32| shown.data[((row - 1) * 64 + col - 1) as usize];
    for (row, col, visible) in [
        (10, 32, true),  // under the top edge
        (50, 10, true),  // in the left leg
        (50, 54, true),  // in the right leg
        (50, 32, false), // in the notch
        (2, 10, false),  // above the top edge
        (30, 62, false), // right of the right edge
    ] {
        assert_eq!(at(row, col) != 255, visible, "row {row} column {col}");
    }
}

/// A 64² image with two overlay planes: a frame and a diagonal over the whole
/// image, and a 24×16 checkerboard whose first pixel is at row 10, column 20.
fn with_overlays(dir: &Path) -> std::path::PathBuf {
    let mut spec = lightbox::synth::SeriesSpec::axial("overlays", 1, 64, 1.0);
    spec.rescale = None;
    lightbox::synth::write_series(dir, &spec, |_, c, r| (c * 2 + r) as i32).expect("write");
    let f = first(dir);
    let mut o = dicom_object::open_file(&f).expect("open");
    let pack = |w: usize, h: usize, bit: &dyn Fn(usize, usize) -> bool| -> Vec<u8> {
        let mut v = vec![0u8; (w * h).div_ceil(8).next_multiple_of(2)];
        for r in 0..h {
            for c in 0..w {
                if bit(c, r) {
                    let k = r * w + c;
                    v[k / 8] |= 1 << (k % 8);
                }
            }
        }
        v
    };
    // (group, columns, rows, origin row and column, bits)
    type Plane = (u16, usize, usize, [i16; 2], Vec<u8>);
    let planes: [Plane; 2] = [
        (
            0x6000,
            64,
            64,
            [1, 1],
            pack(64, 64, &|c, r| {
                c == 0 || r == 0 || c == 63 || r == 63 || c == r
            }),
        ),
        (
            0x6002,
            24,
            16,
            [10, 20],
            pack(24, 16, &|c, r| (c / 4 + r / 4) % 2 == 0),
        ),
    ];
    for (g, w, h, origin, bits) in planes {
        let put = |o: &mut dicom_object::DefaultDicomObject, e: u16, vr, v: PrimitiveValue| {
            o.put(DataElement::new(Tag(g, e), vr, v));
        };
        put(&mut o, 0x0010, VR::US, PrimitiveValue::from(h as u16));
        put(&mut o, 0x0011, VR::US, PrimitiveValue::from(w as u16));
        put(&mut o, 0x0040, VR::CS, PrimitiveValue::from("G"));
        put(
            &mut o,
            0x0050,
            VR::SS,
            PrimitiveValue::I16(origin.to_vec().into()),
        );
        put(&mut o, 0x0100, VR::US, PrimitiveValue::from(1u16));
        put(&mut o, 0x0102, VR::US, PrimitiveValue::from(0u16));
        put(&mut o, 0x3000, VR::OW, PrimitiveValue::from(bits));
    }
    o.write_to_file(&f).expect("write");
    f
}

fn lightbox_render(file: &Path, out: &Path, extra: &[&str]) -> image::GrayImage {
    common::run_ok(
        Command::new(env!("CARGO_BIN_EXE_lightbox"))
            .arg("render")
            .arg(file)
            .arg("-o")
            .arg(out)
            .args(["--window", "95,190"])
            .args(extra),
    );
    image::open(out).expect("png").to_luma8()
}

fn dcmtk_render(file: &Path, out: &Path, extra: &[&str]) -> common::Pnm {
    let tool = common::require_tool("dcmj2pnm", "dcmtk");
    common::run_ok(
        Command::new(tool)
            .args(["+Ww", "95", "190"])
            .args(extra)
            .arg(file)
            .arg(out),
    );
    common::read_pnm(out)
}

fn assert_same(ours: &image::GrayImage, theirs: &common::Pnm, what: &str) {
    assert_eq!(
        (ours.width(), ours.height()),
        (theirs.width, theirs.height),
        "{what}"
    );
    let differ = ours
        .pixels()
        .zip(&theirs.data)
        .filter(|(a, b)| (a.0[0] as i32 - **b as i32).abs() > 1)
        .count();
    assert_eq!(differ, 0, "{what}: {differ} pixels differ from DCMTK");
}

#[test]
fn overlays_burn_in_where_dcmtk_draws_them() {
    let tmp = common::tempdir();
    let f = with_overlays(&tmp.path().join("ov"));
    let header = lightbox::dicom::read_header(&f).expect("header");
    assert_eq!(header.overlays.len(), 2);
    let ours = lightbox_render(&f, &tmp.path().join("a.png"), &[]);
    let theirs = dcmtk_render(&f, &tmp.path().join("a.pnm"), &[]);
    assert_same(&ours, &theirs, "with overlays");
    // The checkerboard's first square is white at row 10, column 20 (1-based).
    assert_eq!(ours.get_pixel(19, 9).0[0], 255);
    let bare = lightbox_render(&f, &tmp.path().join("b.png"), &["--no-overlays"]);
    let bare_dcmtk = dcmtk_render(&f, &tmp.path().join("b.pnm"), &["--no-overlays"]);
    assert_same(&bare, &bare_dcmtk, "without overlays");
    let changed = ours
        .pixels()
        .zip(bare.pixels())
        .filter(|(a, b)| a != b)
        .count();
    assert!(
        changed > 300,
        "the overlays change the picture ({changed} pixels)"
    );
}

#[test]
fn pydicoms_overlay_example_matches_dcmtk() {
    let f = common::pydicom_test_files().join("examples_overlay.dcm");
    let tmp = common::tempdir();
    let header = lightbox::dicom::read_header(&f).expect("header");
    assert!(
        !header.overlays.is_empty(),
        "the example has an overlay plane"
    );
    let ours = lightbox_render(&f, &tmp.path().join("a.png"), &[]);
    let theirs = dcmtk_render(&f, &tmp.path().join("a.pnm"), &[]);
    assert_same(&ours, &theirs, "examples_overlay.dcm");
}
