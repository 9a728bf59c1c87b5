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

/// Compare GPU and CPU renderings of every frame-0 of `files`; returns the number
/// of renderings compared and the mismatches.
fn compare(files: &[PathBuf]) -> (usize, Vec<String>) {
    let (device, queue, adapter) = headless_device().unwrap_or_else(|e| {
        panic!("{e} (the GPU tests need a Vulkan driver; CI installs mesa-vulkan-drivers)")
    });
    eprintln!("adapter: {adapter}");
    let gpu = GpuDisplay::new(&device, wgpu_format());
    let mut compared = 0;
    let mut failures = Vec::new();
    for f in files {
        let Ok(image) = Image::open(f) else { continue };
        let Ok(pixels) = image.frame(0) else { continue };
        let Ok(texture) = gpu.upload(&device, &queue, &pixels) else {
            continue;
        };
        for (what, opts) in option_sets() {
            let Ok(cpu) = render::render(&image.header, 0, &pixels, &opts) else {
                continue;
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
    (compared, failures)
}

fn wgpu_format() -> eframe::egui_wgpu::wgpu::TextureFormat {
    eframe::egui_wgpu::wgpu::TextureFormat::Rgba8Unorm
}

#[test]
fn gpu_renders_the_pydicom_corpus_like_the_cpu() {
    let files = common::pydicom_corpus();
    let (compared, failures) = compare(&files);
    eprintln!("{compared} GPU renderings compared with the CPU reference");
    assert!(compared >= 200, "too few comparisons: {compared}");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn gpu_renders_every_lut_case_like_the_cpu() {
    let tmp = common::tempdir();
    common::write_display_cases(tmp.path());
    let files = lightbox::scan::list_files(tmp.path()).expect("list");
    let (compared, failures) = compare(&files);
    eprintln!("{compared} GPU renderings compared with the CPU reference");
    assert!(compared >= 60, "too few comparisons: {compared}");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
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
