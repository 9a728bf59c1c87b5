//! `lightbox render --mpr … --dicom`: planes resliced from the synthetic CT and
//! written as derived images, checked by others — DCMTK's and dicom3tools'
//! validators (`dciodvfy`), pydicom reading the pixels back against the source
//! slices' own pixels, DCMTK rendering the file as our PNG shows it — and the
//! geometry read back by `lightbox series`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use lightbox::synth::CtSpec;

/// A CT of 30 slices of 64² with 2 mm pixels 2 mm apart (so a coronal plane
/// can pass through voxel centres only); its slices' Image Positions, top first.
fn ct(dir: &Path) -> Vec<[f64; 3]> {
    common::write_ct(
        dir,
        &CtSpec {
            slices: 30,
            size: 64,
            spacing_mm: 2.0,
            fov_mm: 128.0,
            ..Default::default()
        },
    );
    let scan = lightbox::scan::scan(dir).expect("scan");
    let mut ipp: Vec<[f64; 3]> = scan
        .headers
        .iter()
        .map(|h| h.frame(0).expect("frame").image_position.expect("ipp"))
        .collect();
    ipp.sort_by(|a, b| b[2].total_cmp(&a[2]));
    ipp
}

fn lightbox(args: &[&str]) -> std::process::Output {
    common::run_ok(Command::new(env!("CARGO_BIN_EXE_lightbox")).args(args))
}

fn fmt3(p: [f64; 3]) -> String {
    format!("{},{},{}", p[0], p[1], p[2])
}

/// Run a pydicom check script with `args`; it prints "ok" or raises.
fn pydicom_check(script: &str, args: &[&str]) {
    let out = Command::new(common::python())
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("python");
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).trim().ends_with("ok"),
        "pydicom check failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// dicom3tools' IOD validator: no errors (warnings are printed).
fn dciodvfy(file: &Path) {
    let tool = common::require_tool("dciodvfy", "dicom3tools");
    let out = Command::new(tool).arg(file).output().expect("dciodvfy");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("dciodvfy {}:\n{text}", file.display());
    let errors: Vec<&str> = text.lines().filter(|l| l.starts_with("Error")).collect();
    assert!(errors.is_empty(), "dciodvfy found errors:\n{text}");
    assert!(
        text.contains("CTImage"),
        "not validated as a CT image:\n{text}"
    );
}

/// DCMTK renders the file with its first window as our PNG shows it (±1 level).
fn dcmtk_shows_our_png(dcm: &Path, png: &Path, tmp: &Path) {
    let tool = common::require_tool("dcmj2pnm", "dcmtk");
    let pgm = tmp.join("dcmtk.pgm");
    common::run_ok(
        Command::new(tool)
            .args(["--use-window", "1"])
            .arg(dcm)
            .arg(&pgm),
    );
    let theirs = common::read_pnm(&pgm);
    let ours = image::open(png).expect("our png").to_luma8();
    assert_eq!((ours.width(), ours.height()), (theirs.width, theirs.height));
    let worst = ours
        .as_raw()
        .iter()
        .zip(&theirs.data)
        .map(|(&a, &b)| (a as i32 - b as i32).abs())
        .max()
        .unwrap_or(0);
    assert!(
        worst <= 1,
        "our PNG and DCMTK's rendering differ by {worst} levels"
    );
}

const CORONAL_CHECK: &str = r#"
import sys, glob, pydicom
der = pydicom.dcmread(sys.argv[1])
row = int(sys.argv[3])
src = [pydicom.dcmread(f) for f in glob.glob(sys.argv[2] + "/*.dcm")]
src.sort(key=lambda d: -float(d.ImagePositionPatient[2]))
a = der.pixel_array
assert a.shape == (len(src), 64), a.shape
for j, s in enumerate(src):
    assert (a[j] == s.pixel_array[row]).all(), f"row {j} differs from slice {j}'s row {row}"
assert list(der.ImageType) == ["DERIVED", "SECONDARY", "REFORMATTED"], der.ImageType
assert der.SOPClassUID == "1.2.840.10008.5.1.4.1.1.2"
s0 = src[0]
assert der.StudyInstanceUID == s0.StudyInstanceUID
assert der.FrameOfReferenceUID == s0.FrameOfReferenceUID
assert der.SeriesInstanceUID != s0.SeriesInstanceUID
assert der.SOPInstanceUID not in {s.SOPInstanceUID for s in src}
assert der.PatientID == s0.PatientID and der.PatientName == s0.PatientName
assert [float(v) for v in der.ImageOrientationPatient] == [1, 0, 0, 0, 0, -1]
assert [float(v) for v in der.PixelSpacing] == [2, 2]
want = [float(s0.ImagePositionPatient[0]), float(s0.ImagePositionPatient[1]) + 2 * row,
        float(s0.ImagePositionPatient[2])]
assert [float(v) for v in der.ImagePositionPatient] == want, (der.ImagePositionPatient, want)
assert der.RescaleIntercept == s0.RescaleIntercept and der.RescaleSlope == s0.RescaleSlope
refs = {i.ReferencedSOPInstanceUID for i in der.SourceImageSequence}
assert refs == {s.SOPInstanceUID for s in src}, len(refs)
assert der.DerivationCodeSequence[0].CodeValue == "113072"
print("ok")
"#;

#[test]
fn a_coronal_reformat_is_valid_dicom_holding_the_source_pixels_where_its_position_says() {
    let tmp = common::tempdir();
    let dir = tmp.path().join("ct");
    let ipp = ct(&dir);
    let row = 20;
    let top = ipp[0];
    let position = [top[0], top[1] + 2.0 * row as f64, top[2]];
    let dcm = tmp.path().join("coronal.dcm");
    let png = tmp.path().join("coronal.png");
    let out = lightbox(&[
        "render",
        dir.to_str().expect("utf-8"),
        "--mpr",
        "coronal",
        "--position",
        &fmt3(position),
        "--spacing",
        "2",
        "--size",
        "64x30",
        "--out",
        png.to_str().expect("utf-8"),
        "--dicom",
        dcm.to_str().expect("utf-8"),
    ]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("coronal 64×30 at 2.0 mm"), "{said}");
    assert!(said.contains("30 source slices referenced"), "{said}");
    dciodvfy(&dcm);
    pydicom_check(
        CORONAL_CHECK,
        &[
            dcm.to_str().expect("utf-8"),
            dir.to_str().expect("utf-8"),
            &row.to_string(),
        ],
    );
    dcmtk_shows_our_png(&dcm, &png, tmp.path());
    // Read back as a series of its own: a coronal image, 2 mm pixels.
    let alone = tmp.path().join("alone");
    std::fs::create_dir(&alone).expect("mkdir");
    std::fs::copy(&dcm, alone.join("coronal.dcm")).expect("copy");
    let series = lightbox(&["series", alone.to_str().expect("utf-8")]);
    let text = String::from_utf8_lossy(&series.stdout);
    assert!(
        text.contains("64×30, coronal") && text.contains("pixel 2.000×2.000 mm"),
        "{text}"
    );
    assert!(text.contains("MPR coronal of"), "{text}");
}

const MIP_CHECK: &str = r#"
import sys, glob, numpy, pydicom
der = pydicom.dcmread(sys.argv[1])
k = int(sys.argv[3])
src = [pydicom.dcmread(f) for f in glob.glob(sys.argv[2] + "/*.dcm")]
src.sort(key=lambda d: -float(d.ImagePositionPatient[2]))
want = numpy.max([s.pixel_array for s in src[k - 2:k + 3]], axis=0)
got = der.pixel_array
assert got.shape == want.shape, got.shape
assert (got == want).all(), f"{(got != want).sum()} pixels differ from the maximum of slices {k-2}..{k+2}"
# Not the same as the middle slice alone: the slab adds something.
assert (got != src[k].pixel_array).any()
assert float(der.SliceThickness) == 8.0
assert der.DerivationCodeSequence[0].CodeValue == "113078"
assert der.SeriesDescription.startswith("MIP 8.0 mm axial"), der.SeriesDescription
refs = {i.ReferencedSOPInstanceUID for i in der.SourceImageSequence}
spanned = {s.SOPInstanceUID for s in src[k - 2:k + 3]}
assert spanned <= refs and len(refs) <= 7, (len(refs), len(spanned))
print("ok")
"#;

#[test]
fn an_axial_mip_slab_is_the_maximum_of_the_slices_its_thickness_spans() {
    // 8 mm centred on a slice of a 2 mm stack: that slice and two either side.
    let tmp = common::tempdir();
    let dir = tmp.path().join("ct");
    let ipp = ct(&dir);
    let k = 12;
    let dcm = tmp.path().join("mip.dcm");
    let png = tmp.path().join("mip.png");
    let out = lightbox(&[
        "render",
        dir.to_str().expect("utf-8"),
        "--mpr",
        "axial",
        "--position",
        &fmt3(ipp[k]),
        "--spacing",
        "2",
        "--size",
        "64x64",
        "--slab",
        "8",
        "--mode",
        "mip",
        "--out",
        png.to_str().expect("utf-8"),
        "--dicom",
        dcm.to_str().expect("utf-8"),
    ]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("MIP 8.0 mm"), "{said}");
    dciodvfy(&dcm);
    pydicom_check(
        MIP_CHECK,
        &[
            dcm.to_str().expect("utf-8"),
            dir.to_str().expect("utf-8"),
            &k.to_string(),
        ],
    );
    dcmtk_shows_our_png(&dcm, &png, tmp.path());
}

#[test]
fn impossible_planes_are_refused_with_the_reason() {
    let tmp = common::tempdir();
    let dir = tmp.path().join("ct");
    ct(&dir);
    let d = dir.to_str().expect("utf-8");
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_lightbox"))
            .args(args)
            .output()
            .expect("run");
        assert!(!out.status.success(), "{args:?} was accepted");
        common::all_output(&out)
    };
    let png = tmp.path().join("x.png");
    let p = png.to_str().expect("utf-8");
    let e = run(&["render", d, "--mpr", "oblique", "--out", p]);
    assert!(e.contains("--mpr oblique needs --orientation"), "{e}");
    let e = run(&[
        "render",
        d,
        "--mpr",
        "oblique",
        "--orientation",
        "1,0,0,0.5,1,0",
        "--out",
        p,
    ]);
    assert!(e.contains("not at right angles"), "{e}");
    let e = run(&[
        "render", d, "--mpr", "coronal", "--size", "0x10", "--out", p,
    ]);
    assert!(e.contains("--size expects COLSxROWS"), "{e}");
    let e = run(&["render", d, "--mpr", "coronal", "--slab", "0", "--out", p]);
    assert!(e.contains("--slab expects a positive thickness"), "{e}");
    let file: PathBuf = std::fs::read_dir(&dir)
        .expect("list")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .next()
        .expect("a file");
    let e = run(&[
        "render",
        file.to_str().expect("utf-8"),
        "--mpr",
        "axial",
        "--out",
        p,
    ]);
    assert!(e.contains("--mpr needs a folder"), "{e}");
    assert!(!png.exists(), "a PNG was written for a refused plane");
}

#[test]
fn render_mpr_on_the_gpu_draws_what_the_cpu_draws() {
    // The same oblique MIP and coronal plane, CPU and `--gpu` (lavapipe in
    // CI): the PNGs agree within 1 of 255 and the GPU says what a frame costs.
    let tmp = common::tempdir();
    let dir = tmp.path().join("ct");
    ct(&dir);
    let d = dir.to_str().expect("utf-8");
    let cases: [&[&str]; 2] = [
        &[
            "--mpr",
            "oblique",
            "--orientation",
            "0.8,0.6,0,-0.117,0.156,-0.981",
            "--slab",
            "10",
            "--mode",
            "mip",
        ],
        &["--mpr", "coronal", "--window", "40,400"],
    ];
    for (k, args) in cases.iter().enumerate() {
        let cpu = tmp.path().join(format!("cpu{k}.png"));
        let gpu = tmp.path().join(format!("gpu{k}.png"));
        let mut a: Vec<&str> = vec!["render", d];
        a.extend_from_slice(args);
        let mut c = a.clone();
        c.extend(["--out", cpu.to_str().expect("utf-8")]);
        lightbox(&c);
        let mut g = a.clone();
        g.extend(["--gpu", "--out", gpu.to_str().expect("utf-8")]);
        let out = lightbox(&g);
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(said.contains("ms a frame"), "{said}");
        let x = image::open(&cpu).expect("cpu png").to_luma8();
        let y = image::open(&gpu).expect("gpu png").to_luma8();
        assert_eq!(x.dimensions(), y.dimensions());
        let off = x
            .pixels()
            .zip(y.pixels())
            .filter(|(p, q)| (p.0[0] as i32 - q.0[0] as i32).abs() > 1)
            .count();
        let levels: std::collections::BTreeSet<u8> = x.pixels().map(|p| p.0[0]).collect();
        assert!(levels.len() > 3, "{args:?}: a flat picture proves nothing");
        assert_eq!(off, 0, "{args:?}: {off} pixels differ by more than 1");
    }
}
