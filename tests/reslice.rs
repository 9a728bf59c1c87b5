//! The CPU reference reslicer (`imaging::reslice`) against SimpleITK's
//! `ResampleImageFilter` (linear interpolation, the same output grid) on the
//! synthetic CT read from its DICOM files by each side: the coronal and sagittal
//! planes and a double-oblique one agree within 1 HU on average and a few HU at
//! most — two independent readers of the series' geometry cutting the same
//! planes. And a stack written in reverse order lands where its positions say.

mod common;

use std::path::Path;
use std::process::Command;

use lightbox::imaging::geometry::ImagePlane;
use lightbox::imaging::reslice::{self, Named, Options, PlaneSpec};
use lightbox::model::{self, DisplaySet};
use lightbox::synth::CtSpec;
use nalgebra::{Point3, Vector3};

fn one_set(dir: &Path) -> (DisplaySet, Vec<lightbox::dicom::ImageHeader>) {
    let scan = lightbox::scan::scan(dir).expect("scan");
    assert!(scan.failures.is_empty(), "{:?}", scan.failures);
    let patients = model::build(&scan.headers);
    let series = &patients[0].studies[0].series[0];
    assert_eq!(series.display_sets.len(), 1, "{:?}", series.warnings);
    (series.display_sets[0].clone(), scan.headers)
}

/// SimpleITK's resampling of the series in `dir` onto `spec`'s grid (linear,
/// `padding` outside): rows × columns values, row-major.
fn simpleitk(dir: &Path, spec: &PlaneSpec, padding: f64) -> Vec<f64> {
    let p = &spec.plane;
    let n = p.row_dir.cross(&p.col_dir).normalize();
    let script = r#"
import json, sys
import SimpleITK as sitk
a = json.loads(sys.argv[2])
r = sitk.ImageSeriesReader()
r.SetFileNames(r.GetGDCMSeriesFileNames(sys.argv[1]))
img = sitk.Cast(r.Execute(), sitk.sitkFloat64)
f = sitk.ResampleImageFilter()
f.SetInterpolator(sitk.sitkLinear)
f.SetOutputOrigin(a["origin"])
f.SetOutputSpacing([a["spacing"][1], a["spacing"][0], 1.0])
f.SetOutputDirection([a["row"][0], a["col"][0], a["n"][0],
                      a["row"][1], a["col"][1], a["n"][1],
                      a["row"][2], a["col"][2], a["n"][2]])
f.SetSize([a["columns"], a["rows"], 1])
f.SetDefaultPixelValue(a["padding"])
out = sitk.GetArrayFromImage(f.Execute(img))
print(json.dumps([float(v) for v in out.ravel()]))
"#;
    let args = serde_json::json!({
        "origin": [p.position.x, p.position.y, p.position.z],
        "spacing": p.spacing_mm,
        "row": [p.row_dir.x, p.row_dir.y, p.row_dir.z],
        "col": [p.col_dir.x, p.col_dir.y, p.col_dir.z],
        "n": [n.x, n.y, n.z],
        "columns": spec.columns,
        "rows": spec.rows,
        "padding": padding,
    });
    let out = Command::new(common::python())
        .arg("-c")
        .arg(script)
        .arg(dir)
        .arg(args.to_string())
        .output()
        .expect("python");
    assert!(
        out.status.success(),
        "SimpleITK failed (pip install -r tests/oracle/requirements.txt, as .ci/run does): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("SimpleITK's values")
}

/// Mean and largest absolute difference where both sides are inside the volume.
fn compare(ours: &[f64], theirs: &[f64], padding: f64) -> (f64, f64, usize) {
    assert_eq!(ours.len(), theirs.len());
    let both: Vec<f64> = ours
        .iter()
        .zip(theirs)
        .filter(|(a, b)| **a != padding && **b != padding)
        .map(|(a, b)| (a - b).abs())
        .collect();
    let mean = both.iter().sum::<f64>() / both.len().max(1) as f64;
    let max = both.iter().copied().fold(0.0, f64::max);
    (mean, max, both.len())
}

#[test]
fn coronal_sagittal_and_double_oblique_planes_agree_with_simpleitk() {
    let tmp = common::tempdir();
    let dir = tmp.path().join("ct");
    common::write_ct(
        &dir,
        &CtSpec {
            slices: 48,
            size: 96,
            spacing_mm: 2.5,
            ..Default::default()
        },
    );
    let (set, headers) = one_set(&dir);
    let vol = lightbox::volume::load(&set, &headers).expect("volume");
    // Padding far from any HU, so a sample outside is never mistaken for one in.
    let padding = -9999.0;
    let opts = Options {
        padding,
        ..Options::default()
    };
    let row = Vector3::new(0.8, 0.5, 0.3).normalize();
    let n0 = Vector3::new(0.1, -0.4, 0.9).normalize();
    let col = (n0 - row * n0.dot(&row)).normalize();
    let c = reslice::named_plane(&vol, Named::Axial).point(47.5, 47.5);
    let oblique = PlaneSpec {
        plane: ImagePlane {
            position: c - row * 40.0 - col * 40.0,
            row_dir: row,
            col_dir: col,
            spacing_mm: [1.0, 1.0],
        },
        columns: 80,
        rows: 80,
    };
    for (name, spec) in [
        ("coronal", reslice::named_plane(&vol, Named::Coronal)),
        ("sagittal", reslice::named_plane(&vol, Named::Sagittal)),
        ("double oblique", oblique),
    ] {
        let ours = reslice::reslice(&vol, &spec, &opts).expect("reslice");
        let theirs = simpleitk(&dir, &spec, padding);
        let (mean, max, n) = compare(&ours, &theirs, padding);
        println!("{name}: mean {mean:.4} HU, max {max:.4} HU over {n} samples");
        assert!(
            n > spec.columns * spec.rows / 2,
            "{name}: only {n} samples inside on both sides"
        );
        // The phantom has real edges (air, fat, bone): a sub-voxel difference
        // in where either side puts a sample would show as tens of HU there.
        assert!(
            mean < 1.0 && max < 5.0,
            "{name}: mean {mean:.3} HU, max {max:.3} HU over {n} samples"
        );
        // Not all padding or all the same value: the plane cuts the phantom.
        let inside: Vec<f64> = ours.iter().copied().filter(|v| *v != padding).collect();
        let lo = inside.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = inside.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        assert!(hi - lo > 500.0, "{name}: {lo}..{hi} HU, not the phantom");
    }
}

#[test]
fn a_coronal_plane_cuts_each_slice_where_its_image_position_says() {
    // A coronal plane on the stack's own grid (one row per slice, one column
    // per pixel) through row 20 of the images: its row k is row 20 of the slice
    // whose Image Position is k slices below the top, value for value (HU),
    // read from that file directly — so the volume is neither flipped nor
    // shifted, whatever order the files come in.
    let tmp = common::tempdir();
    let dir = tmp.path().join("ct");
    common::write_ct(
        &dir,
        &CtSpec {
            slices: 24,
            size: 64,
            ..Default::default()
        },
    );
    let (set, headers) = one_set(&dir);
    let vol = lightbox::volume::load(&set, &headers).expect("volume");
    let info = |h: &lightbox::dicom::ImageHeader| h.frame(0).expect("frame").clone();
    let top = headers
        .iter()
        .max_by(|a, b| {
            let za = info(a).image_position.expect("ipp")[2];
            let zb = info(b).image_position.expect("ipp")[2];
            za.total_cmp(&zb)
        })
        .expect("slices");
    let t = info(top);
    let [px, py, pz] = t.image_position.expect("ipp");
    let ps = t.pixel_spacing.expect("spacing");
    let dz = set
        .geometry
        .as_ref()
        .and_then(|g| g.spacing_mm)
        .expect("slice spacing");
    let row = 20usize;
    let spec = PlaneSpec {
        plane: ImagePlane {
            position: Point3::new(px, py + row as f64 * ps[0], pz),
            row_dir: Vector3::x(),
            col_dir: -Vector3::z(),
            spacing_mm: [dz, ps[1]],
        },
        columns: 64,
        rows: headers.len(),
    };
    let out = reslice::reslice(&vol, &spec, &Options::default()).expect("reslice");
    for h in &headers {
        let f = info(h);
        let z = f.image_position.expect("ipp")[2];
        let k = ((pz - z) / dz).round() as usize;
        let img = lightbox::dicom::Image::open(&h.path).expect("open");
        let pixels = img.frame(0).expect("decode");
        let lightbox::dicom::pixels::Samples::Mono(v) = &pixels.samples else {
            panic!("not grayscale");
        };
        for i in 0..64 {
            let hu = f.rescale.apply(v[row * 64 + i] as f64);
            let got = out[k * 64 + i];
            assert!(
                (got - hu).abs() < 1e-6,
                "slice at z {z} (row {k} of the plane), column {i}: {got} vs {hu}"
            );
        }
    }
}

/// An axial stack at the given slice heights (mm) whose value is a field linear
/// in position: HU = 10·z + column index (stored with the usual −1024 intercept).
fn linear_stack(dir: &Path, seed: &str, heights: &[f64]) {
    let mut spec = lightbox::synth::SeriesSpec::axial(seed, heights.len(), 32, 1.0);
    let origin = spec.positions[0];
    spec.positions = heights.iter().map(|z| [origin[0], origin[1], *z]).collect();
    spec.slice_thickness = Some(1.0);
    let zs = heights.to_vec();
    lightbox::synth::write_series(dir, &spec, |k, c, _r| {
        (1024.0 + 10.0 * zs[k] + c as f64).round() as i32
    })
    .expect("write");
}

/// The coronal plane on the stack's own columns, 1 mm rows from the top slice down.
fn coronal_on_grid(vol: &lightbox::volume::Volume, top: f64, bottom: f64) -> PlaneSpec {
    let m = vol.patient_from_voxel;
    PlaneSpec {
        plane: ImagePlane {
            position: Point3::new(m[(0, 3)], m[(1, 3)] + 10.0, top),
            row_dir: Vector3::x(),
            col_dir: -Vector3::z(),
            spacing_mm: [1.0, 1.0],
        },
        columns: 32,
        rows: (top - bottom).round() as usize + 1,
    }
}

#[test]
fn an_unevenly_spaced_stack_is_sampled_between_its_real_slice_positions() {
    // Slices 2 and 3 mm apart in turn: the mean step would put every other
    // slice up to 0.6 mm off, 6 HU in this field; interpolating between the
    // real positions is exact for a linear field.
    let tmp = common::tempdir();
    let dir = tmp.path().join("uneven");
    let mut heights = vec![0.0];
    for k in 0..16 {
        let last = *heights.last().expect("a slice");
        heights.push(last + if k % 2 == 0 { 2.0 } else { 3.0 });
    }
    linear_stack(&dir, "uneven", &heights);
    let (set, headers) = one_set(&dir);
    assert!(
        set.issues()
            .iter()
            .any(|i| matches!(i, lightbox::model::GeometryIssue::UnevenSpacing { .. })),
        "{:?}",
        set.issues()
    );
    let vol = lightbox::volume::load(&set, &headers).expect("volume");
    let top = *heights.last().expect("top");
    let spec = coronal_on_grid(&vol, top, 0.0);
    let out = reslice::reslice(&vol, &spec, &Options::default()).expect("reslice");
    let mut worst: f64 = 0.0;
    for j in 0..spec.rows {
        for i in 0..spec.columns {
            let p = spec.point(i as f64, j as f64);
            let want = 10.0 * p.z + i as f64;
            worst = worst.max((out[j * spec.columns + i] - want).abs());
        }
    }
    assert!(worst < 1e-6, "worst error {worst} HU");
}

#[test]
fn a_gap_in_a_stack_is_left_empty_not_filled_in() {
    // Slices every 2 mm from 0 to 20 and from 30 to 50: 10 mm missing. Samples
    // more than a half spacing into the gap are padding; the rest is exact.
    let tmp = common::tempdir();
    let dir = tmp.path().join("gap");
    let heights: Vec<f64> = (0..=10)
        .map(|k| 2.0 * k as f64)
        .chain((15..=25).map(|k| 2.0 * k as f64))
        .collect();
    linear_stack(&dir, "gap", &heights);
    let (set, headers) = one_set(&dir);
    assert!(
        set.issues()
            .iter()
            .any(|i| matches!(i, lightbox::model::GeometryIssue::Gap { .. })),
        "{:?}",
        set.issues()
    );
    let vol = lightbox::volume::load(&set, &headers).expect("volume");
    let padding = -9999.0;
    let spec = coronal_on_grid(&vol, 50.0, 0.0);
    let opts = Options {
        padding,
        ..Options::default()
    };
    let out = reslice::reslice(&vol, &spec, &opts).expect("reslice");
    for j in 0..spec.rows {
        let z = 50.0 - j as f64;
        for i in 0..spec.columns {
            let got = out[j * spec.columns + i];
            if z > 21.0 && z < 29.0 {
                assert_eq!(got, padding, "z = {z} mm, in the gap, was filled in");
            } else if z <= 20.0 || z >= 30.0 {
                let want = 10.0 * z + i as f64;
                assert!((got - want).abs() < 1e-6, "z = {z}: {got} != {want}");
            }
        }
    }
}
