//! GPU MPR equals the CPU reference reslicer: planes and slabs cut by the wgpu
//! pipeline (a 3-D texture of stored values, `shaders/mpr.wgsl`) on whatever
//! Vulkan adapter the machine has — Mesa's lavapipe in CI — against
//! `imaging::reslice` followed by the CPU window, within ±1 of 255 at every
//! pixel: axial, coronal, sagittal, double oblique, nearest voxel, a plane half
//! outside the volume (padding), MIP/MinIP/AvgIP slabs along the slices and on
//! an oblique plane, an unevenly spaced stack and one with a gap. Moving the
//! plane or the window uploads nothing.

mod common;

use std::path::Path;

use eframe::egui_wgpu::wgpu;
use lightbox::imaging::geometry::ImagePlane;
use lightbox::imaging::lut::{GrayPipeline, ModalityTransform, Voi, VoiFunction, Window, quantize};
use lightbox::imaging::render::DisplayPlan;
use lightbox::imaging::reslice::{self, Interpolation, Named, Options, PlaneSpec, Slab, SlabMode};
use lightbox::model;
use lightbox::render::{GpuMpr, Placement, headless_device};
use lightbox::synth::CtSpec;
use lightbox::volume::Volume;
use nalgebra::{Point3, Vector3};

fn volume_of(dir: &Path) -> Volume {
    let scan = lightbox::scan::scan(dir).expect("scan");
    assert!(scan.failures.is_empty(), "{:?}", scan.failures);
    let patients = model::build(&scan.headers);
    let set = &patients[0].studies[0].series[0].display_sets[0];
    lightbox::volume::load(set, &scan.headers).expect("volume")
}

/// An axial stack at `heights` (mm) of a field that varies along all three
/// axes (so interpolation errors show), 48² pixels.
fn stack(dir: &Path, seed: &str, heights: &[f64]) -> Volume {
    let mut spec = lightbox::synth::SeriesSpec::axial(seed, heights.len(), 48, 1.0);
    let origin = spec.positions[0];
    spec.positions = heights.iter().map(|z| [origin[0], origin[1], *z]).collect();
    spec.slice_thickness = Some(1.0);
    let zs = heights.to_vec();
    lightbox::synth::write_series(dir, &spec, |k, c, r| {
        (1024.0 + 9.0 * zs[k] + 7.0 * c as f64 - 5.0 * r as f64).round() as i32
    })
    .expect("write");
    volume_of(dir)
}

struct Case {
    what: String,
    spec: PlaneSpec,
    opts: Options,
    window: Window,
}

fn case(what: &str, spec: PlaneSpec, opts: Options, window: &Window) -> Case {
    Case {
        what: what.into(),
        spec,
        opts,
        window: window.clone(),
    }
}

fn thin() -> Options {
    Options {
        padding: -1024.0,
        ..Options::default()
    }
}

fn slab(mm: f64, mode: SlabMode) -> Options {
    Options {
        slab: Some(Slab {
            thickness_mm: mm,
            mode,
        }),
        ..thin()
    }
}

/// A double-oblique plane through the volume's centre.
fn oblique(vol: &Volume) -> PlaneSpec {
    let row = Vector3::new(0.9, 0.3, 0.2).normalize();
    let col = Vector3::new(-0.1, 0.2, -1.0);
    let col = (col - row * col.dot(&row)).normalize();
    reslice::centred_plane(vol, row, col, None, None)
}

/// Pixels where the GPU and the CPU differ by more than 1 of 255 (described),
/// and the number of distinct grey levels of the CPU image (a test of a flat
/// image would prove nothing).
fn compare(
    gpu: &GpuMpr,
    device: &wgpu::Device,
    queue: &wgpu::Queue,
    texture: &lightbox::render::VolumeTexture,
    vol: &Volume,
    c: &Case,
) -> (Vec<String>, usize) {
    let cpu = reslice::reslice(vol, &c.spec, &c.opts).expect("reslice");
    let want: Vec<u16> = cpu
        .iter()
        .map(|&m| quantize(c.window.apply(VoiFunction::Linear, m), 255))
        .collect();
    let plan = DisplayPlan::Gray(GrayPipeline {
        modality: ModalityTransform::Rescale(vol.rescale),
        voi: Voi::Window {
            window: c.window.clone(),
            function: VoiFunction::Linear,
        },
        invert: false,
    });
    let sampling = reslice::sampling(vol, &c.spec, &c.opts).expect("sampling");
    let size = (c.spec.columns as u32, c.spec.rows as u32);
    let draw = gpu.prepare(
        device,
        texture,
        vol,
        &sampling,
        &c.opts,
        size,
        &plan,
        &Placement::identity(),
    );
    let rgba = gpu
        .render_offscreen(device, queue, &draw)
        .expect("GPU render");
    let mut bad = Vec::new();
    for (k, w) in want.iter().enumerate() {
        let g = rgba[4 * k] as i32;
        if (g - *w as i32).abs() > 1 {
            bad.push(format!(
                "{}: pixel ({}, {}) GPU {g} CPU {w} ({:.2})",
                c.what,
                k % c.spec.columns,
                k / c.spec.columns,
                cpu[k]
            ));
        }
    }
    let levels: std::collections::BTreeSet<u16> = want.iter().copied().collect();
    (bad, levels.len())
}

fn run(vol: &Volume, cases: &[Case]) {
    let (device, queue, adapter) = headless_device().unwrap_or_else(|e| {
        panic!("{e} (the GPU tests need a Vulkan driver; CI installs mesa-vulkan-drivers)")
    });
    eprintln!("adapter: {adapter}");
    let gpu = GpuMpr::new(&device, wgpu::TextureFormat::Rgba8Unorm);
    let texture = gpu.upload(&device, &queue, vol).expect("upload");
    let mut failures = Vec::new();
    for c in cases {
        let (bad, levels) = compare(&gpu, &device, &queue, &texture, vol, c);
        assert!(levels > 3, "{}: only {levels} grey levels", c.what);
        eprintln!(
            "{}: {} mismatches of {}",
            c.what,
            bad.len(),
            c.spec.columns * c.spec.rows
        );
        failures.extend(bad.into_iter().take(5));
    }
    assert!(failures.is_empty(), "{failures:#?}");
    assert_eq!(gpu.uploads(), 1, "every plane cut from the one upload");
}

#[test]
fn gpu_planes_and_slabs_of_a_ct_equal_the_cpu_reslicer() {
    let tmp = common::tempdir();
    let dir = tmp.path().join("ct");
    lightbox::synth::write_ct(
        &dir,
        &CtSpec {
            slices: 40,
            size: 96,
            spacing_mm: 2.5,
            fov_mm: 240.0,
            ..Default::default()
        },
    )
    .expect("CT");
    let vol = volume_of(&dir);
    let soft = Window::new(40.0, 400.0);
    let lung = Window::new(-600.0, 1500.0);
    let wide = Window::new(200.0, 2400.0);
    let named = |n| reslice::named_plane(&vol, n);
    let mut half_out = named(Named::Coronal);
    half_out.plane.position += Vector3::new(60.0, 0.0, 40.0);
    let cases = vec![
        case("axial", named(Named::Axial), thin(), &soft),
        case("coronal", named(Named::Coronal), thin(), &wide),
        case("sagittal", named(Named::Sagittal), thin(), &soft),
        case("double oblique", oblique(&vol), thin(), &wide),
        case(
            "nearest coronal",
            named(Named::Coronal),
            Options {
                interpolation: Interpolation::Nearest,
                ..thin()
            },
            &wide,
        ),
        case("half outside (padding)", half_out, thin(), &wide),
        case(
            "axial 10 mm MIP",
            named(Named::Axial),
            slab(10.0, SlabMode::Mip),
            &wide,
        ),
        case(
            "coronal 8 mm MinIP",
            named(Named::Coronal),
            slab(8.0, SlabMode::MinIp),
            &lung,
        ),
        case(
            "oblique 10 mm MIP",
            oblique(&vol),
            slab(10.0, SlabMode::Mip),
            &wide,
        ),
        case(
            "oblique 6 mm AvgIP",
            oblique(&vol),
            slab(6.0, SlabMode::Average),
            &soft,
        ),
    ];
    run(&vol, &cases);
}

#[test]
fn gpu_planes_of_uneven_and_gapped_stacks_equal_the_cpu_reslicer() {
    let tmp = common::tempdir();
    let coronal = |vol: &Volume, top: f64, rows: usize| {
        let m = vol.patient_from_voxel;
        PlaneSpec {
            plane: ImagePlane {
                position: Point3::new(m[(0, 3)], m[(1, 3)] + 17.3, top),
                row_dir: Vector3::x(),
                col_dir: -Vector3::z(),
                spacing_mm: [0.5, 1.0],
            },
            columns: 48,
            rows,
        }
    };
    let wide = Window::new(1200.0, 2400.0);
    // Slices 2 and 3 mm apart in turn.
    let mut heights = vec![0.0];
    for k in 0..16 {
        let last = *heights.last().expect("a slice");
        heights.push(last + if k % 2 == 0 { 2.0 } else { 3.0 });
    }
    let uneven = stack(&tmp.path().join("uneven"), "gpu-uneven", &heights);
    assert!(uneven.slice_coords.is_some(), "an uneven stack");
    let top = *heights.last().expect("top");
    run(
        &uneven,
        &[
            case("uneven coronal", coronal(&uneven, top, 86), thin(), &wide),
            case(
                "uneven axial 6 mm MIP",
                reslice::named_plane(&uneven, Named::Axial),
                slab(6.0, SlabMode::Mip),
                &wide,
            ),
        ],
    );
    // Every 2 mm from 0 to 20 and from 30 to 50: 10 mm missing.
    let heights: Vec<f64> = (0..=10)
        .map(|k| 2.0 * k as f64)
        .chain((15..=25).map(|k| 2.0 * k as f64))
        .collect();
    let gapped = stack(&tmp.path().join("gap"), "gpu-gap", &heights);
    assert!(gapped.slice_coords.is_some(), "a gapped stack");
    run(
        &gapped,
        &[case(
            "gap coronal",
            coronal(&gapped, 49.87, 100),
            thin(),
            &wide,
        )],
    );
}

#[test]
fn moving_the_plane_or_the_window_is_a_uniform_write() {
    let tmp = common::tempdir();
    let heights: Vec<f64> = (0..20).map(|k| k as f64 * 1.5).collect();
    let vol = stack(&tmp.path().join("s"), "gpu-update", &heights);
    let (device, queue, _) = headless_device().expect("a GPU adapter (lavapipe)");
    let gpu = GpuMpr::new(&device, wgpu::TextureFormat::Rgba8Unorm);
    let texture = gpu.upload(&device, &queue, &vol).expect("upload");
    let plan = |w: Window| {
        DisplayPlan::Gray(GrayPipeline {
            modality: ModalityTransform::Rescale(vol.rescale),
            voi: Voi::Window {
                window: w,
                function: VoiFunction::Linear,
            },
            invert: false,
        })
    };
    let a = reslice::named_plane(&vol, Named::Coronal);
    let mut b = a.clone();
    // Rotated 20° about the vertical, the same size.
    let (s, c) = (20f64.to_radians().sin(), 20f64.to_radians().cos());
    b.plane.row_dir = Vector3::new(c, s, 0.0);
    let opts = thin();
    let size = (a.columns as u32, a.rows as u32);
    let sa = reslice::sampling(&vol, &a, &opts).expect("a");
    let draw = gpu.prepare(
        &device,
        &texture,
        &vol,
        &sa,
        &opts,
        size,
        &plan(Window::new(1000.0, 2000.0)),
        &Placement::identity(),
    );
    let sb = reslice::sampling(&vol, &b, &opts).expect("b");
    let w2 = Window::new(1100.0, 900.0);
    assert!(gpu.update(
        &queue,
        &draw,
        &vol,
        &sb,
        &opts,
        &plan(w2.clone()),
        &Placement::identity()
    ));
    let got = gpu
        .render_offscreen(&device, &queue, &draw)
        .expect("render");
    // What was drawn is the rotated plane in the new window.
    let cpu = reslice::reslice(&vol, &b, &opts).expect("reslice");
    let off = cpu
        .iter()
        .enumerate()
        .filter(|(k, m)| {
            (got[4 * k] as i32 - quantize(w2.apply(VoiFunction::Linear, **m), 255) as i32).abs() > 1
        })
        .count();
    assert_eq!(off, 0, "the updated draw shows the rotated plane");
    assert_eq!(gpu.uploads(), 1, "no upload for a new plane or window");
}

#[test]
fn a_stack_deeper_than_the_gpus_3d_textures_is_packed_and_cut_the_same() {
    // 151 slices of 48² where 3-D textures are taken to be at most 100 voxels
    // a side (as a 2,000-slice CT exceeds a 2,048 limit): two slices to a
    // layer (the last layer holds one), and every plane as the CPU cuts it.
    let tmp = common::tempdir();
    let heights: Vec<f64> = (0..151).map(|k| k as f64 * 0.8).collect();
    let vol = stack(&tmp.path().join("deep"), "deep", &heights);
    let (device, queue, _) = headless_device().expect("a GPU adapter (lavapipe)");
    let gpu = GpuMpr::new(&device, wgpu::TextureFormat::Rgba8Unorm);
    let texture = gpu
        .upload_within(&device, &queue, &vol, 100)
        .expect("packed upload");
    assert_eq!(texture.packing, 2, "two slices to a layer");
    assert_eq!(texture.dims, [48, 48, 151]);
    let wide = Window::new(1800.0, 1800.0);
    let named = |n| reslice::named_plane(&vol, n);
    let mut top = named(Named::Axial);
    // The last slice, alone in its layer.
    top.plane.position.z = heights[150];
    for c in [
        case("coronal", named(Named::Coronal), thin(), &wide),
        case("sagittal", named(Named::Sagittal), thin(), &wide),
        case("double oblique", oblique(&vol), thin(), &wide),
        case("the last slice", top, thin(), &wide),
        case(
            "oblique 12 mm MIP",
            oblique(&vol),
            slab(12.0, SlabMode::Mip),
            &wide,
        ),
    ] {
        let (bad, levels) = compare(&gpu, &device, &queue, &texture, &vol, &c);
        assert!(levels > 3, "{}: only {levels} grey levels", c.what);
        assert!(bad.is_empty(), "{}: {:?}", c.what, &bad[..bad.len().min(5)]);
    }
    // A slice wider than the limit cannot be packed: refused, the limit named.
    let e = gpu
        .upload_within(&device, &queue, &vol, 40)
        .expect_err("48 columns in 40");
    assert!(e.to_string().contains("40-voxel 3-D textures"), "{e}");
}
