//! `lightbox render --vr`: a stack volume-rendered from the command line, as a
//! user checks it — a bone block on the patient's left shows on the right of
//! the picture from the front and on the left from behind, a block near the
//! head shows at the top, a MIP shows each block's value through the window
//! (the DICOM linear window, computed here), the bone preset hides soft tissue
//! that the soft-tissue preset shows, the edge labels name the patient's
//! directions, and bad presets, files and numbers are refused with a reason.

mod common;

use std::path::Path;
use std::process::Command;

const SIZE: usize = 128;

/// 48 axial slices of 48², 1 mm cubes, air around three blocks of 8³ voxels:
/// bone (1500 HU) on the patient's left, bone (700 HU) near the head, soft
/// tissue (40 HU) on the patient's right.
fn blocks(dir: &Path) {
    let spec = lightbox::synth::SeriesSpec::axial("vr-blocks", 48, 48, 1.0);
    let inside = |v: usize, lo: usize| (lo..lo + 8).contains(&v);
    lightbox::synth::write_series(dir, &spec, |k, c, r| {
        let hu = if inside(c, 34) && inside(r, 20) && inside(k, 20) {
            1500
        } else if inside(c, 20) && inside(r, 20) && inside(k, 38) {
            700
        } else if inside(c, 6) && inside(r, 20) && inside(k, 20) {
            40
        } else {
            -1024
        };
        hu + 1024
    })
    .expect("write the blocks");
}

fn lightbox(args: &[&str]) -> String {
    let out = common::run_ok(Command::new(env!("CARGO_BIN_EXE_lightbox")).args(args));
    String::from_utf8_lossy(&out.stdout).to_string()
}

fn refused(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_lightbox"))
        .args(args)
        .output()
        .expect("run lightbox");
    assert!(!out.status.success(), "{args:?} should have failed");
    String::from_utf8_lossy(&out.stderr).to_string()
}

fn picture(png: &Path) -> image::RgbImage {
    let img = image::open(png).expect("read the PNG").to_rgb8();
    assert_eq!(
        img.dimensions(),
        (SIZE as u32, SIZE as u32),
        "the asked size"
    );
    img
}

/// The brightest red level in columns `c` and rows `r`.
fn brightest(img: &image::RgbImage, c: std::ops::Range<u32>, r: std::ops::Range<u32>) -> u8 {
    let mut m = 0;
    for y in r {
        for x in c.clone() {
            m = m.max(img.get_pixel(x, y)[0]);
        }
    }
    m
}

/// DICOM's linear window (C.11.2.1.2.1) to 8 bits.
fn linear(x: f64, c: f64, w: f64) -> f64 {
    let lo = c - 0.5 - (w - 1.0) / 2.0;
    let hi = c - 0.5 + (w - 1.0) / 2.0;
    if x <= lo {
        0.0
    } else if x > hi {
        255.0
    } else {
        ((x - (c - 0.5)) / (w - 1.0) + 0.5) * 255.0
    }
}

const LEFT_HALF: std::ops::Range<u32> = 10..60;
const RIGHT_HALF: std::ops::Range<u32> = 68..118;
const MIDDLE: std::ops::Range<u32> = 50..78;

#[test]
fn a_mip_from_the_front_and_from_behind_puts_the_patients_left_where_a_reader_expects() {
    let tmp = common::tempdir();
    let dir = tmp.path().join("ct");
    blocks(&dir);
    let d = dir.to_str().expect("utf-8");
    let size = format!("{SIZE}x{SIZE}");
    let (c, w) = (1500.0, 2000.0);
    let front = tmp.path().join("front.png");
    let said = lightbox(&[
        "render",
        d,
        "--vr",
        "mip",
        "--window",
        "1500,2000",
        "--size",
        &size,
        "--out",
        front.to_str().expect("utf-8"),
    ]);
    assert!(
        said.contains("edges: left R, right L, top H, bottom F"),
        "{said}"
    );
    let img = picture(&front);
    let bone = linear(1500.0, c, w);
    let right = brightest(&img, RIGHT_HALF, MIDDLE) as f64;
    assert!(
        (right - bone).abs() <= 1.0,
        "the 1500 HU block on the patient's left shows on the right at {right}, the window says {bone:.1}"
    );
    let soft = linear(40.0, c, w);
    let left = brightest(&img, LEFT_HALF, MIDDLE) as f64;
    assert!(
        (left - soft).abs() <= 1.0,
        "the left of the picture shows the patient's right (40 HU → {soft:.1}), got {left}"
    );
    let head = linear(700.0, c, w);
    let top = brightest(&img, 54..74, 0..44) as f64;
    assert!(
        (top - head).abs() <= 1.0,
        "the 700 HU block near the head shows at the top at {top}, the window says {head:.1}"
    );
    let bottom = brightest(&img, 0..SIZE as u32, 90..SIZE as u32);
    assert_eq!(bottom, 0, "nothing below the blocks but air");

    let back = tmp.path().join("back.png");
    let said = lightbox(&[
        "render",
        d,
        "--vr",
        "mip",
        "--window",
        "1500,2000",
        "--azimuth",
        "180",
        "--size",
        &size,
        "--out",
        back.to_str().expect("utf-8"),
    ]);
    assert!(
        said.contains("edges: left L, right R, top H, bottom F"),
        "{said}"
    );
    let img = picture(&back);
    let left = brightest(&img, LEFT_HALF, MIDDLE) as f64;
    assert!(
        (left - bone).abs() <= 1.0,
        "from behind the patient's left is on the left: {left} vs {bone:.1}"
    );

    let side = lightbox(&[
        "render",
        d,
        "--vr",
        "mip",
        "--azimuth",
        "90",
        "--size",
        &size,
        "--out",
        back.to_str().expect("utf-8"),
    ]);
    assert!(
        side.contains("edges: left A, right P, top H, bottom F"),
        "from the patient's left: {side}"
    );
    let above = lightbox(&[
        "render",
        d,
        "--vr",
        "mip",
        "--elevation",
        "90",
        "--size",
        &size,
        "--out",
        back.to_str().expect("utf-8"),
    ]);
    assert!(
        above.contains("edges: left R, right L, top P, bottom A"),
        "from above the head: {above}"
    );
}

#[test]
fn the_bone_preset_shows_bone_and_hides_soft_tissue_that_the_soft_tissue_preset_shows() {
    let tmp = common::tempdir();
    let dir = tmp.path().join("ct");
    blocks(&dir);
    let d = dir.to_str().expect("utf-8");
    let size = format!("{SIZE}x{SIZE}");
    let png = tmp.path().join("bone.png");
    let said = lightbox(&[
        "render",
        d,
        "--vr",
        "bone",
        "--size",
        &size,
        "--out",
        png.to_str().expect("utf-8"),
    ]);
    assert!(said.contains("CT bone"), "{said}");
    assert!(said.contains("passed over in empty bricks"), "{said}");
    let img = picture(&png);
    let bone = *img.get_pixel(86, 64);
    assert!(
        bone[0] > 120 && bone[0] >= bone[1] && bone[1] >= bone[2],
        "the bone block is bone-coloured: {bone:?}"
    );
    assert_eq!(
        brightest(&img, LEFT_HALF, MIDDLE),
        0,
        "the bone preset shows no soft tissue"
    );

    let png = tmp.path().join("soft.png");
    lightbox(&[
        "render",
        d,
        "--vr",
        "soft-tissue",
        "--size",
        &size,
        "--out",
        png.to_str().expect("utf-8"),
    ]);
    let img = picture(&png);
    assert!(
        brightest(&img, LEFT_HALF, MIDDLE) > 40,
        "the soft-tissue preset shows the 40 HU block"
    );

    // Moving the bone preset's window up past 1500 HU hides the 700 HU block
    // but keeps the 1500 HU one.
    let png = tmp.path().join("high.png");
    lightbox(&[
        "render",
        d,
        "--vr",
        "bone",
        "--window",
        "1300,300",
        "--size",
        &size,
        "--out",
        png.to_str().expect("utf-8"),
    ]);
    let img = picture(&png);
    assert_eq!(brightest(&img, 54..74, 0..44), 0, "700 HU hidden");
    assert!(brightest(&img, RIGHT_HALF, MIDDLE) > 120, "1500 HU kept");
}

#[test]
fn bad_presets_files_and_numbers_are_refused_with_a_reason() {
    let tmp = common::tempdir();
    let dir = tmp.path().join("ct");
    blocks(&dir);
    let d = dir.to_str().expect("utf-8");
    let out = tmp.path().join("x.png");
    let o = out.to_str().expect("utf-8");
    let e = refused(&["render", d, "--vr", "skin", "--out", o]);
    assert!(e.contains("bone") && e.contains("soft-tissue"), "{e}");
    let bad = tmp.path().join("bad.toml");
    std::fs::write(
        &bad,
        "name = \"x\"\nunits = \"modality\"\npoints = [[0.0, 1.0]]\n",
    )
    .expect("write");
    let e = refused(&[
        "render",
        d,
        "--vr",
        bad.to_str().expect("utf-8"),
        "--out",
        o,
    ]);
    assert!(e.contains("bad.toml"), "the file is named: {e}");
    let e = refused(&["render", d, "--vr", "bone", "--zoom", "0", "--out", o]);
    assert!(e.contains("--zoom expects a positive number"), "{e}");
    let file = std::fs::read_dir(&dir)
        .expect("list")
        .next()
        .expect("a file")
        .expect("entry")
        .path();
    let e = refused(&[
        "render",
        file.to_str().expect("utf-8"),
        "--vr",
        "bone",
        "--out",
        o,
    ]);
    assert!(e.contains("--vr needs a folder"), "{e}");
    let e = refused(&["render", d, "--size", "64x64", "--out", o]);
    assert!(e.contains("--size goes with --mpr or --vr"), "{e}");
    assert!(!out.exists(), "nothing written");
}

#[test]
fn render_vr_on_the_gpu_draws_what_the_cpu_draws() {
    // The same views from the command line, CPU and `--gpu` (lavapipe in
    // CI): every channel within 2 of 255, and the GPU says what a frame costs.
    let tmp = common::tempdir();
    let dir = tmp.path().join("ct");
    blocks(&dir);
    let d = dir.to_str().expect("utf-8");
    let size = format!("{SIZE}x{SIZE}");
    for (k, args) in [
        ["--vr", "bone", "--azimuth", "30"],
        ["--vr", "mip", "--elevation", "20"],
    ]
    .iter()
    .enumerate()
    {
        let cpu = tmp.path().join(format!("cpu{k}.png"));
        let gpu = tmp.path().join(format!("gpu{k}.png"));
        let mut a: Vec<&str> = vec!["render", d, "--size", &size];
        a.extend_from_slice(args);
        let mut c = a.clone();
        c.extend(["--out", cpu.to_str().expect("utf-8")]);
        lightbox(&c);
        let mut g = a.clone();
        g.extend(["--gpu", "--out", gpu.to_str().expect("utf-8")]);
        let said = lightbox(&g);
        assert!(said.contains("ms a frame"), "{said}");
        let (x, y) = (picture(&cpu), picture(&gpu));
        let off = x
            .pixels()
            .zip(y.pixels())
            .filter(|(p, q)| (0..3).any(|c| (p[c] as i32 - q[c] as i32).abs() > 2))
            .count();
        let lit = x.pixels().filter(|p| p[0] > 40).count();
        assert!(lit > 100, "{args:?}: the blocks show ({lit} lit pixels)");
        assert_eq!(off, 0, "{args:?}: {off} pixels differ by more than 2");
    }
    let e = refused(&["render", d, "--gpu", "--out", "x.png"]);
    assert!(e.contains("--gpu goes with --mpr or --vr"), "{e}");
}
