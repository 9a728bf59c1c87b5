//! GPU equals CPU: every image is drawn through the real wgpu pipeline (offscreen,
//! on whatever Vulkan adapter the machine has — Mesa's lavapipe in CI) and compared
//! with the CPU reference renderer, within ±1 of 255, under the file's VOI, each VOI
//! function, min-max, no VOI and user inversion: pydicom's real corpus (signed and
//! unsigned 8–16-bit, MONOCHROME1/2, palette, RGB and YBR, compressed) and synthetic
//! series (VOI LUT Sequence, Modality LUT Sequence, signed 16-bit, fractional
//! rescale, window width 1, MONOCHROME1 with Presentation LUT Shape).

mod common;

use std::path::PathBuf;

use lightbox::dicom::Image;
use lightbox::imaging::lut::VoiFunction;
use lightbox::imaging::render::{self, RenderOptions, VoiChoice};
use lightbox::render::{GpuDisplay, headless_device};

fn option_sets() -> Vec<(&'static str, RenderOptions)> {
    let with = |voi: VoiChoice, function: Option<VoiFunction>, invert: bool| RenderOptions {
        voi,
        function,
        invert,
        ..Default::default()
    };
    vec![
        ("file VOI", with(VoiChoice::Auto, None, false)),
        (
            "LINEAR_EXACT",
            with(VoiChoice::Auto, Some(VoiFunction::LinearExact), false),
        ),
        (
            "SIGMOID",
            with(VoiChoice::Auto, Some(VoiFunction::Sigmoid), false),
        ),
        ("min-max", with(VoiChoice::MinMax, None, false)),
        ("no VOI", with(VoiChoice::None, None, false)),
        ("inverted", with(VoiChoice::Auto, None, true)),
    ]
}

/// What `compare` did: renderings compared, mismatches, and every file or option
/// set it could not compare (file name, why) — which the tests check against the
/// files they expect to be skipped, so nothing is skipped silently.
struct Comparison {
    compared: usize,
    failures: Vec<String>,
    skipped: Vec<(String, String)>,
}

/// Compare GPU and CPU renderings of every frame-0 of `files`.
fn compare(files: &[PathBuf]) -> Comparison {
    let (device, queue, adapter) = headless_device().unwrap_or_else(|e| {
        panic!("{e} (the GPU tests need a Vulkan driver; CI installs mesa-vulkan-drivers)")
    });
    eprintln!("adapter: {adapter}");
    let gpu = GpuDisplay::new(&device, wgpu_format());
    let mut compared = 0;
    let mut failures = Vec::new();
    let mut skipped = Vec::new();
    for f in files {
        let name = f
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let image = match Image::open(f) {
            Ok(i) => i,
            Err(e) => {
                skipped.push((name, format!("open: {e}")));
                continue;
            }
        };
        let pixels = match image.frame(0) {
            Ok(p) => p,
            Err(e) => {
                skipped.push((name, format!("decode: {e}")));
                continue;
            }
        };
        let texture = match gpu.upload(&device, &queue, &pixels) {
            Ok(t) => t,
            Err(e) => {
                skipped.push((name, format!("upload: {e}")));
                continue;
            }
        };
        for (what, opts) in option_sets() {
            let cpu = match render::render(&image.header, 0, &pixels, &opts) {
                Ok(c) => c,
                Err(e) => {
                    skipped.push((name.clone(), format!("render ({what}): {e}")));
                    continue;
                }
            };
            let (plan, _) = render::display_plan(&image.header, 0, &pixels, &opts).expect("plan");
            let out = gpu
                .render_offscreen(
                    &device,
                    &queue,
                    &texture,
                    &plan,
                    image.header.shutter.as_ref(),
                )
                .expect("GPU render");
            let ch = cpu.channels as usize;
            let mut worst = 0i32;
            let mut at = 0usize;
            for i in 0..(cpu.width * cpu.height) as usize {
                for c in 0..3 {
                    let want = cpu.data[i * ch + if ch == 1 { 0 } else { c }] as i32;
                    let got = out[i * 4 + c] as i32;
                    if (want - got).abs() > worst {
                        worst = (want - got).abs();
                        at = i;
                    }
                }
            }
            compared += 1;
            if worst > 1 {
                failures.push(format!(
                    "{} ({what}): GPU differs from CPU by {worst} levels at pixel {at}",
                    f.display()
                ));
            }
        }
    }
    Comparison {
        compared,
        failures,
        skipped,
    }
}

/// Fail unless exactly the files named in `expected` were skipped (each for the
/// reason given there, matched as a substring).
fn check_skips(skipped: &[(String, String)], expected: &[(&str, &str)]) {
    let mut problems = Vec::new();
    for (file, why) in skipped {
        if !expected.iter().any(|(f, w)| f == file && why.contains(w)) {
            problems.push(format!("{file} was skipped unexpectedly: {why}"));
        }
    }
    for (f, w) in expected {
        if !skipped
            .iter()
            .any(|(file, why)| file == f && why.contains(w))
        {
            problems.push(format!(
                "{f} was expected to be skipped ({w}) but was not: update the list"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// pydicom's files that are not rendered, and why: not images, or damaged on
/// purpose, or a VOI that does not apply. Anything else skipped fails the test.
const PYDICOM_NOT_RENDERED: &[(&str, &str)] = &[
    // Not images (no Pixel Data): RT, SR, waveform, bare data sets.
    ("ExplVR_BigEndNoMeta.dcm", "not an image"),
    ("ExplVR_LitEndNoMeta.dcm", "not an image"),
    ("empty_charset_LEI.dcm", "not an image"),
    ("no_meta_group_length.dcm", "not an image"),
    ("priv_SQ.dcm", "not an image"),
    ("reportsi.dcm", "not an image"),
    ("reportsi_with_empty_number_tags.dcm", "not an image"),
    ("rtplan.dcm", "not an image"),
    ("rtstruct.dcm", "not an image"),
    ("test-SR.dcm", "not an image"),
    ("waveform_ecg.dcm", "not an image"),
    ("meta_missing_tsyntax.dcm", "missing Rows"),
    ("nested_priv_SQ.dcm", "missing Rows"),
    // Damaged on purpose: refused with the element that lies.
    ("MR_truncated.dcm", "truncated or corrupt"),
    ("rtplan_truncated.dcm", "truncated or corrupt"),
    ("no_meta.dcm", "no DICM marker"),
    // Refused today though pydicom reads it: an SQ sent as UN with undefined length
    // (its item tag is read as a length). A known gap of dicom::guard, not damage.
    ("UN_sequence.dcm", "truncated or corrupt"),
    // A sequence delimiter inside the fragment cuts the codestream: its SIZ
    // marker no longer gives the header's size (OpenJPEG fails on it too, as
    // pydicom does; see DICOM-RS-NOTES).
    (
        "JPEG2000-embedded-sequence-delimiter.dcm",
        "the JPEG 2000 codestream is",
    ),
];

fn wgpu_format() -> eframe::egui_wgpu::wgpu::TextureFormat {
    eframe::egui_wgpu::wgpu::TextureFormat::Rgba8Unorm
}

#[test]
fn gpu_renders_the_pydicom_corpus_like_the_cpu() {
    let files = common::pydicom_corpus();
    let c = compare(&files);
    eprintln!(
        "{} GPU renderings compared with the CPU reference",
        c.compared
    );
    for (f, why) in &c.skipped {
        eprintln!("skipped {f}: {why}");
    }
    assert!(c.failures.is_empty(), "{}", c.failures.join("\n"));
    check_skips(&c.skipped, PYDICOM_NOT_RENDERED);
    // Every other file, under every option set.
    assert_eq!(
        c.compared,
        (files.len() - PYDICOM_NOT_RENDERED.len()) * option_sets().len(),
        "renderings compared"
    );
}

#[test]
fn gpu_renders_every_lut_case_like_the_cpu() {
    let tmp = common::tempdir();
    common::write_display_cases(tmp.path());
    let files = lightbox::scan::list_files(tmp.path()).expect("list");
    let c = compare(&files);
    eprintln!(
        "{} GPU renderings compared with the CPU reference",
        c.compared
    );
    assert!(c.failures.is_empty(), "{}", c.failures.join("\n"));
    // Every synthetic case is an image Lightbox must show: none may be skipped.
    check_skips(&c.skipped, &[]);
    assert_eq!(
        c.compared,
        files.len() * option_sets().len(),
        "every case under every option set"
    );
}

#[test]
fn a_window_change_is_a_uniform_write_not_an_upload() {
    use lightbox::imaging::lut::Window;
    use lightbox::render::Placement;
    let tmp = common::tempdir();
    common::write_display_cases(tmp.path());
    let f = lightbox::scan::list_files(&tmp.path().join("ct")).expect("list")[0].clone();
    let image = Image::open(&f).expect("open");
    let pixels = image.frame(0).expect("frame");
    let (device, queue, _) = headless_device().expect("GPU");
    let gpu = GpuDisplay::new(&device, wgpu_format());
    let texture = gpu.upload(&device, &queue, &pixels).expect("upload");
    let opts = |c: f64, w: f64| RenderOptions {
        voi: VoiChoice::Explicit(Window::new(c, w)),
        ..Default::default()
    };
    let plan = |o: &RenderOptions| {
        render::display_plan(&image.header, 0, &pixels, o)
            .expect("plan")
            .0
    };
    let first = opts(40.0, 400.0);
    let prepared = gpu.prepare(
        &device,
        &texture,
        &plan(&first),
        &Placement::identity(),
        None,
    );
    // A W/L drag: fifty windows, each one uniform write.
    let mut last = first.clone();
    for i in 0..50 {
        last = opts(-600.0 + i as f64 * 7.0, 1500.0 - i as f64 * 11.0);
        assert!(gpu.update(
            &queue,
            &prepared,
            &texture,
            &plan(&last),
            &Placement::identity(),
            None,
        ));
    }
    assert_eq!(gpu.uploads(), 1, "a window change uploaded a texture");
    // ... and the image on screen is the last window's.
    let out = gpu
        .render_prepared(&device, &queue, &prepared, texture.width, texture.height)
        .expect("render");
    let cpu = render::render(&image.header, 0, &pixels, &last).expect("cpu");
    let worst = cpu
        .data
        .iter()
        .enumerate()
        .map(|(i, &v)| (v as i32 - out[i * 4] as i32).abs())
        .max()
        .unwrap_or(0);
    assert!(
        worst <= 1,
        "after the drag the GPU shows another window ({worst})"
    );
    let stale = render::render(&image.header, 0, &pixels, &first).expect("cpu");
    assert_ne!(
        stale.data, cpu.data,
        "the windows differ, so the check means something"
    );
}
